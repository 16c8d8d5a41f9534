//! Verdicts from the whole series (docs/verdicts.md) on the hard shapes of
//! `sample-tests/verdicts`, at `-N4 -r` and at `-N12 -r`.

use crate::harness::{leakhost, suite, temp_file, Run};

fn run(extra: &[&str]) -> Run {
    let wasm = suite("verdicts");
    let mut args = vec!["run", wasm.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

/// The verdict line of `layer` (`Leak:`, `Settled:`, `Undecided:`), if it has one.
fn verdict<'a>(stdout: &'a str, layer: &str) -> Option<&'a str> {
    let start = stdout.find(&format!("Running verdicts.{layer} tests:"))?;
    let end = stdout[start + 1..].find("Running ").map_or(stdout.len(), |i| start + 1 + i);
    stdout[start..end].lines().find(|l| ["  Leak: ", "  Settled: ", "  Undecided: "].iter().any(|p| l.starts_with(p)))
}

#[test]
fn every_hard_shape_gets_its_verdict_at_n4_and_n12() {
    let expected: [(&str, Option<&str>); 8] = [
        ("BoundedCache", Some("  Settled: verdicts.BoundedCache settled: grew in 3 of ")),
        (
            "Every3rd",
            Some("  Leak: verdicts.Every3rd leaks: grew in 5 of 14 counted iterations: blocks +1 every 3 iterations"),
        ),
        (
            "Every8th",
            Some("  Leak: verdicts.Every8th leaks: grew in 4 of 26 counted iterations: blocks +1 every 8 iterations"),
        ),
        ("FreshKeyMemo", Some("  Leak: verdicts.FreshKeyMemo leaks: grew in 4 of 28 counted iterations: bytes +")),
        ("LazyGlobal", Some("  Settled: verdicts.LazyGlobal settled: grew in 4 of ")),
        ("HookLeak", Some("  Leak: verdicts.HookLeak leaks: grew in ")),
        ("SetUpOnce", None),
        ("RealCrates", None),
    ];
    let causes = [
        ("Every3rd", "; caused by test_every_3rd"),
        ("Every8th", "; caused by test_every_8th"),
        ("FreshKeyMemo", "; caused by test_fresh_key_memo"),
        ("HookLeak", "; caused by testSetUp of verdicts.HookLeak"),
    ];
    for n in ["-N4", "-N12"] {
        let r = run(&[n, "-r"]);
        assert_eq!(r.status, 0, "{n}: {}", r.stderr);
        for (layer, line) in expected {
            let got = verdict(&r.stdout, layer);
            match line {
                Some(line) => assert!(got.is_some_and(|g| g.starts_with(line)), "{n} {layer}: {got:?}\n{}", r.stdout),
                None => assert_eq!(got, None, "{n} {layer}"),
            }
        }
        for (layer, cause) in causes {
            assert!(verdict(&r.stdout, layer).unwrap().contains(cause), "{n} {layer}");
        }
        // The hook is blamed, never the layer's clean tests.
        assert!(!verdict(&r.stdout, "HookLeak").unwrap().contains("test_clean"), "{n}");
        let leaks = &r.stdout[r.stdout.find("\nLeaks:\n").expect("leaks listed")..];
        assert_eq!(leaks.lines().filter(|l| l.starts_with("  verdicts.")).count(), 4, "{n}: {leaks}");
        assert!(!r.stdout.contains("Undecided"), "{n}: {}", r.stdout);
    }
}

#[test]
fn added_iterations_are_marked_and_only_where_the_series_had_not_decided() {
    let r = run(&["-N4", "-r"]);
    let block = |layer: &str| {
        let start = r.stdout.find(&format!("Running verdicts.{layer} tests:")).unwrap();
        let end = r.stdout[start + 1..].find("Running ").map_or(r.stdout.len(), |i| start + 1 + i);
        r.stdout[start..end].to_string()
    };
    // Flat in every counted iteration: nothing added.
    for clean in ["SetUpOnce", "RealCrates"] {
        assert!(!block(clean).contains("added to decide"), "{clean}: {}", block(clean));
        assert!(block(clean).contains("\nIteration 4\n"), "{clean}");
    }
    // The cache settles after 8 flat iterations following its fill (iterations 2-4): iteration 12.
    let cache = block("BoundedCache");
    assert!(cache.contains("\nIteration 12 (added to decide a leak)\n") && !cache.contains("Iteration 13"), "{cache}");
    // The 8th-call leak grows in iterations 3, 11, 19 and 27. Its first growth came before
    // per-test measurement started (a clean layer pays for none), so it takes one growth
    // more to name its test: decided at 27.
    let every_8th = block("Every8th");
    assert!(every_8th.contains("\nIteration 27 (added to decide a leak)\n") && !every_8th.contains("Iteration 28"));
}

#[test]
fn json_and_junit_record_the_added_iterations_and_the_shapes() {
    let (json, xml) = (temp_file("verdicts.json", b""), temp_file("verdicts.xml", b""));
    let r = run(&["-N4", "-r", "--json", json.to_str().unwrap(), "--junit", xml.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let layers = doc["suites"][0]["layers"].as_array().unwrap();
    let cache = layers.iter().find(|l| l["name"] == "verdicts.BoundedCache").unwrap();
    let iterations = cache["iterations"].as_array().unwrap();
    assert_eq!(iterations.len(), 12);
    assert_eq!(iterations.iter().filter(|i| i["added"] == true).count(), 8);
    assert_eq!(cache["verdict"]["shape"], "settled");
    assert_eq!(doc["options"]["max_iterations"], 32);
    let text = std::fs::read_to_string(&xml).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let suite = doc.descendants().find(|n| n.attribute("name") == Some("verdicts.BoundedCache")).unwrap();
    let property = |name: &str| {
        suite
            .descendants()
            .find(|n| n.has_tag_name("property") && n.attribute("name") == Some(name))
            .and_then(|n| n.attribute("value"))
            .map(str::to_string)
    };
    assert_eq!(property("iterations").as_deref(), Some("12"), "{text}");
    assert_eq!(property("added_iterations").as_deref(), Some("8"));
    assert_eq!(property("verdict").as_deref(), Some("settled"));
}

#[test]
fn samplelayers_at_n4_is_unchanged_by_the_rule() {
    let r = leakhost(["run", suite("samplelayers").to_str().unwrap(), "-N4", "-r"]);
    assert_eq!(r.status, 0);
    assert!(!r.stdout.contains("added to decide"), "{}", r.stdout);
    assert!(!r.stdout.contains("Leak") && !r.stdout.contains("Settled") && !r.stdout.contains("Undecided"));
    assert_eq!(r.stdout.matches("\nIteration ").count(), 8 * 4, "four iterations in each of the eight layers");
}
