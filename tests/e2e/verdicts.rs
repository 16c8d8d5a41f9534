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

/// The start of each layer's verdict line at `-N4 -r` and `-N12 -r` (`None`: no verdict).
fn expected(n: &str) -> Vec<(&'static str, Option<String>)> {
    let pages = if n == "-N4" { "8 of 8" } else { "11 of 11" };
    let lines: [(&str, Option<String>); 14] = [
        ("BoundedCache", Some("  Settled: verdicts.BoundedCache settled: grew in 3 of ".into())),
        (
            "Every3rd",
            Some("  Leak: verdicts.Every3rd leaks: grew in 5 of 14 counted iterations: blocks +1 every 3 iterations".into()),
        ),
        (
            "Every8th",
            Some("  Leak: verdicts.Every8th leaks: grew in 4 of 26 counted iterations: blocks +1 every 8 iterations".into()),
        ),
        // A table's capacity doubling: iterated on up to --max-iterations, still growing there.
        ("FreshKeyMemo", Some("  Leak: verdicts.FreshKeyMemo leaks: grew in 4 of 31 counted iterations: bytes +".into())),
        ("LazyGlobal", Some("  Settled: verdicts.LazyGlobal settled: grew in 4 of ".into())),
        ("HookLeak", Some("  Leak: verdicts.HookLeak leaks: grew in ".into())),
        ("SetUpOnce", None),
        ("RealCrates", None),
        // +1 +1 +1 -3: its level never passes its first maximum.
        ("FlushingBatch", Some("  Settled: verdicts.FlushingBatch settled: grew in 2 of ".into())),
        // +53 +53 -106: what the body took, testTearDown gives back.
        ("ShrinkInTearDown", Some("  Settled: verdicts.ShrinkInTearDown settled: grew in 1 of ".into())),
        // Its cap is reached at iteration 17 and confirmed only at 33.
        (
            "ScratchBuffer",
            Some(
                "  Undecided: verdicts.ScratchBuffer is undecided: grew in 5 of 31 counted iterations: bytes +620 every \
                 8 iterations (net +3100, capacity doubling: no new block, spacing doubles)"
                    .into(),
            ),
        ),
        (
            "UpTwoDownOne",
            Some(
                "  Leak: verdicts.UpTwoDownOne leaks: grew in 7 of 14 counted iterations: blocks +1 every 2 iterations \
                 (net +7), bytes +16 every 2 iterations (net +112); caused by test_up_two_down_one"
                    .into(),
            ),
        ),
        ("TearDownGivesOne", Some("  Leak: verdicts.TearDownGivesOne leaks: grew in ".into())),
        (
            "PageLeak",
            Some(format!(
                "  Leak: verdicts.PageLeak leaks outside the allocator: pages +1 per iteration (memory.grow), grew in \
                 {pages} counted iterations, net +{}; caused by test_memory_grow",
                &pages[..pages.find(' ').unwrap()]
            )),
        ),
    ];
    lines.into_iter().collect()
}

#[test]
fn every_hard_shape_gets_its_verdict_at_n4_and_n12() {
    let causes = [
        ("Every3rd", "; caused by test_every_3rd"),
        ("Every8th", "; caused by test_every_8th"),
        ("FreshKeyMemo", "; caused by test_fresh_key_memo"),
        ("HookLeak", "; caused by testSetUp of verdicts.HookLeak"),
        ("ScratchBuffer", "; caused by test_scratch_buffer"),
        ("TearDownGivesOne", "; caused by test_keeps_two ("),
    ];
    for n in ["-N4", "-N12"] {
        let r = run(&[n, "-r"]);
        assert_eq!(r.status, 0, "{n}: {}", r.stderr);
        for (layer, line) in expected(n) {
            let got = verdict(&r.stdout, layer);
            match line {
                Some(line) => {
                    assert!(got.is_some_and(|g| g.starts_with(&line)), "{n} {layer}: {got:?}\n{line}\n{}", r.stdout)
                }
                None => assert_eq!(got, None, "{n} {layer}"),
            }
        }
        for (layer, cause) in causes {
            assert!(verdict(&r.stdout, layer).unwrap().contains(cause), "{n} {layer}");
        }
        // The hook is blamed, never the layer's clean tests; a tear-down that gives back
        // part of what the body keeps is not blamed either.
        assert!(!verdict(&r.stdout, "HookLeak").unwrap().contains("test_clean"), "{n}");
        assert!(!verdict(&r.stdout, "TearDownGivesOne").unwrap().contains("testTearDown"), "{n}");
        // The layer keeps 1 block per iteration, the body 2 (1 in the first counted
        // iteration, before the hook was measured apart: net +2k-1 after k).
        let line = verdict(&r.stdout, "TearDownGivesOne").unwrap();
        let k = if n == "-N4" { 8 } else { 11 };
        let body = format!(
            "test_keeps_two (grew in {k} of {k} counted iterations: blocks +1 per iteration (net +{})",
            2 * k - 1
        );
        assert!(line.contains(&format!(": blocks +1 per iteration (net +{k})")) && line.contains(&body), "{n}: {line}");
        let leaks = &r.stdout[r.stdout.find("\nLeaks:\n").expect("leaks listed")..];
        let (leaks, undecided) = leaks.split_once("\nUndecided (--max-iterations):\n").expect("undecided listed");
        assert_eq!(leaks.lines().filter(|l| l.starts_with("  verdicts.")).count(), 7, "{n}: {leaks}");
        assert!(undecided.starts_with("  verdicts.ScratchBuffer is undecided: "), "{n}: {undecided}");
        assert_eq!(r.stdout.matches("Undecided").count(), 2, "{n}: only the scratch buffer, and its heading");
    }
}

#[test]
fn fail_on_leak_fails_on_the_real_leaks_only() {
    for n in ["-N4", "-N12"] {
        // The clean shapes alone: settled, undecided or no verdict, never a failure.
        let clean = "BoundedCache|LazyGlobal|SetUpOnce|RealCrates|FlushingBatch|ShrinkInTearDown|ScratchBuffer";
        let r = run(&[n, "-r", "--fail-on-leak", "--layer", clean]);
        assert_eq!(r.status, 0, "{n}: {}", r.stdout);
        assert!(!r.stdout.contains("Leak"), "{n}: {}", r.stdout);
        for leak in ["Every3rd", "FreshKeyMemo", "HookLeak", "UpTwoDownOne", "TearDownGivesOne", "PageLeak"] {
            let r = run(&[n, "-r", "--fail-on-leak", "--layer", leak]);
            assert_eq!(r.status, 3, "{n} {leak}: {}", r.stdout);
        }
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
    // Capacity growth is iterated on up to --max-iterations; the batch settles 8 flat
    // iterations after its level's maximum (iteration 3), the page leak at the horizon.
    for (layer, last) in [("ScratchBuffer", 32), ("FreshKeyMemo", 32), ("FlushingBatch", 11), ("PageLeak", 9)] {
        let b = block(layer);
        let (at, next) = (format!("\nIteration {last} (added to decide a leak)\n"), format!("Iteration {}", last + 1));
        assert!(b.contains(&at) && !b.contains(&next), "{layer}: {b}");
    }
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
    // Each quantity's levels beside its deltas; pages and capacity growth are named.
    let layer = |name: &str| layers.iter().find(|l| l["name"] == name).unwrap();
    let growth = &cache["verdict"]["growth"][0];
    let (deltas, levels) = (growth["deltas"].as_array().unwrap(), growth["levels"].as_array().unwrap());
    let mut level = 0;
    for (d, l) in deltas.iter().zip(levels) {
        level += d.as_i64().unwrap();
        assert_eq!(l.as_i64(), Some(level), "{growth}");
    }
    let pages = &layer("verdicts.PageLeak")["verdict"]["growth"];
    assert_eq!(pages.as_array().unwrap().len(), 1, "{pages}");
    assert_eq!((&pages[0]["metric"]["kind"], &pages[0]["shape"]), (&"pages".into(), &"leaks".into()));
    let scratch = &layer("verdicts.ScratchBuffer")["verdict"];
    assert_eq!((&scratch["shape"], &scratch["growth"][0]["capacity"]), (&"undecided".into(), &true.into()));
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
