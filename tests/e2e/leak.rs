//! The seed leak scenario, per-test attribution, verdicts, --fail-on-leak and the JSON report.

use crate::harness::{leakhost, suite, temp_file};

fn run(extra: &[&str]) -> crate::harness::Run {
    let wasm = suite("leak");
    let mut args = vec!["run", wasm.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

/// The `-r` lines of one layer.
fn leak_lines<'a>(stdout: &'a str, layer: &str) -> Vec<&'a str> {
    let start = stdout.find(&format!("Running {layer} tests:")).unwrap();
    let end = stdout[start + 1..].find("Running ").map_or(stdout.len(), |i| start + 1 + i);
    stdout[start..end].lines().filter(|l| l.starts_with("  live blocks=")).collect()
}

fn change_values(line: &str) -> Vec<i64> {
    line.split_whitespace().filter_map(|w| w.strip_prefix("change=")).map(|v| v.parse().unwrap()).collect()
}

#[test]
fn every_counted_iteration_shows_the_same_positive_change() {
    // Three counted iterations cannot tell a leak from a cache that fills (docs/verdicts.md):
    // iterations are added until the growth spans the horizon of 8 counted iterations.
    let r = run(&["-N4", "-r"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let lines = leak_lines(&r.stdout, "UnitTests");
    assert_eq!(lines.len(), 8, "{}", r.stdout);
    for (i, line) in lines.iter().enumerate() {
        // One block per run; linear memory does not grow.
        let changes = change_values(line);
        assert_eq!((changes[0], changes[2]), (1, 0), "{line}");
        if i < 3 {
            // One boxed entry of 32 bytes (later iterations also grow the Vec that holds them).
            assert_eq!(changes[1], 32, "{line}");
        }
    }
    for added in 5..=9 {
        assert!(r.stdout.contains(&format!("\nIteration {added} (added to decide a leak)\n")), "{}", r.stdout);
    }
    assert!(!r.stdout.contains("Iteration 10"), "{}", r.stdout);
}

#[test]
fn max_iterations_equal_to_n_adds_none_and_leaves_the_verdict_undecided() {
    let r = run(&["-N4", "-r", "--max-iterations", "4"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let lines = leak_lines(&r.stdout, "UnitTests");
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    for line in &lines {
        assert_eq!(change_values(line), [1, 32, 0], "{line}");
    }
    assert!(!r.stdout.contains("added to decide"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\nUndecided (--max-iterations):\n  UnitTests is undecided: grew in 3 of 3 counted"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("\nLeaks:"), "{}", r.stdout);
    assert_eq!(run(&["-N4", "-r", "--max-iterations", "4", "--fail-on-leak"]).status, 0);
    assert_eq!(run(&["-N4", "-r", "--max-iterations", "4", "--fail-on-undecided"]).status, 3);
}

#[test]
fn leak_details_list_both_tracked_types() {
    let r = run(&["-N5", "-r", "-v"]);
    let details: Vec<&str> = r.stdout.lines().filter(|l| l.contains("leak::")).collect();
    // Eight counted iterations (four planned, the rest added to decide), a row per type each.
    assert_eq!(details.iter().filter(|l| l.trim_start().starts_with("leak::ClassicLeakable ")).count(), 8);
    assert_eq!(details.iter().filter(|l| l.trim_start().starts_with("leak::Leakable ")).count(), 8);
    let row = details.iter().find(|l| l.contains("leak::Leakable")).unwrap();
    assert_eq!(row.split_whitespace().collect::<Vec<_>>(), ["leak::Leakable", "1", "8"]);
    assert!(r.stdout.contains("Leak details, changes in instances and bytes by type:"));
    assert!(r.stdout.contains("      open handles"), "{}", r.stdout);
}

#[test]
fn the_verdict_names_the_layer_the_test_and_the_types() {
    let r = run(&["-N4", "-r"]);
    let verdict = r.stdout.lines().find(|l| l.starts_with("  Leak: UnitTests")).expect("a verdict");
    for part in [
        "grew in 8 of 8 counted iterations: ",
        "blocks +1 per iteration (net +8)",
        "bytes +",
        "leak::ClassicLeakable +1 per iteration (net +8)",
        "leak::Leakable +1 per iteration (net +8)",
        "counter \"open handles\" +1 per iteration (net +8)",
    ] {
        assert!(verdict.contains(part), "{part} missing from {verdict}");
    }
    // The traced replay witnesses the leak: 8 counted iterations of one 38-byte block.
    let witnessed =
        "caused by test_leak (leak.TestSomething); its traced replay found 8 blocks (304 bytes) of them still live";
    assert!(verdict.ends_with(witnessed), "{verdict}");
    assert!(r.stdout.contains("\nLeaks:\n  UnitTests leaks: grew in 8 of 8 counted iterations"), "{}", r.stdout);
}

#[test]
fn one_leaking_test_among_many_is_singled_out() {
    let r = run(&["-N4", "-r", "-vv"]);
    let verdict = r.stdout.lines().find(|l| l.starts_with("  Leak: leak.Mixed")).expect("a verdict");
    let witnessed = "caused by test_13 (leak.Mixed); its traced replay found 8 blocks (368 bytes) of them still live";
    assert!(verdict.ends_with(witnessed), "{verdict}");
    assert!(verdict.contains("counter \"cache entries\" +1"), "{verdict}");
    // -vv shows per-test changes; after warm-up only test_13 changes anything in leak.Mixed.
    let mixed = &r.stdout[r.stdout.find("Running leak.Mixed tests:").unwrap()..];
    let after_warmup = &mixed[mixed.find("Iteration 2").unwrap()..];
    let changed: Vec<&str> = after_warmup
        .lines()
        .zip(after_warmup.lines().skip(1))
        .filter(|(_, next)| next.starts_with("      changed:"))
        .map(|(test, _)| test.trim())
        .collect();
    assert_eq!(changed, ["test_13 (leak.Mixed)"; 8]);
}

#[test]
fn warmup_changes_which_iterations_count() {
    // Two warm-up iterations: the eight counted ones that decide are 3 to 10.
    let r = run(&["-N4", "-r", "--warmup", "2"]);
    assert!(r.stdout.contains("UnitTests leaks: grew in 8 of 8 counted iterations"), "{}", r.stdout);
    assert!(r.stdout.contains("\nIteration 10 (added to decide a leak)\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("\nIteration 11"), "{}", r.stdout);
    let bad = run(&["-N2", "-r", "--warmup", "2"]);
    assert_eq!(bad.status, 2);
    assert!(bad.stderr.contains("leaves no iteration"), "{}", bad.stderr);
}

#[test]
fn fail_on_leak_gives_its_own_exit_status() {
    assert_eq!(run(&["-N3", "-r"]).status, 0);
    assert_eq!(run(&["-N3", "-r", "--fail-on-leak"]).status, 3);
    let clean = leakhost(["run", suite("samplelayers").to_str().unwrap(), "-N3", "-r", "--fail-on-leak"]);
    assert_eq!(clean.status, 0, "{}", clean.stdout);
}

#[test]
fn report_leaks_needs_two_iterations() {
    let r = run(&["-r"]);
    assert_eq!(r.status, 2);
    assert_eq!(r.stderr.lines().count(), 1);
    assert!(r.stderr.starts_with("leakhost: error: -r needs -N 2 or more"), "{}", r.stderr);
}

#[test]
fn json_without_timings_is_byte_identical_across_runs() {
    let (a, b) = (temp_file("a.json", b""), temp_file("b.json", b""));
    for path in [&a, &b] {
        let r = run(&["-N4", "-r", "--no-timings", "--json", path.to_str().unwrap()]);
        assert_eq!(r.status, 0, "{}", r.stderr);
    }
    let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert!(!text.contains("elapsed_s"));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["schema"], "leakhost-report");
    assert_eq!(doc["version"], 3);
    assert_eq!(doc["suites"][0]["layers"][0]["name"], "UnitTests");
    let iterations = doc["suites"][0]["layers"][0]["iterations"].as_array().unwrap();
    assert_eq!(iterations.len(), 9);
    assert_eq!(iterations[3]["added"], false);
    assert_eq!(iterations[4]["added"], true);
    let verdict = &doc["suites"][0]["layers"][0]["verdict"];
    assert_eq!(verdict["shape"], "leaks");
    assert_eq!(doc["suites"][0]["layers"][0]["iterations"][1]["delta"]["blocks"], 1);
    assert_eq!(verdict["tests"][0]["test"], "test_leak (leak.TestSomething)");
    assert_eq!(doc["totals"]["tests"], 22);
}

#[test]
fn json_keeps_timings_unless_asked_not_to() {
    let path = temp_file("timed.json", b"");
    run(&["-N2", "--json", path.to_str().unwrap()]);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    assert!(doc["elapsed_s"].is_f64());
    assert!(doc["suites"][0]["layers"][0]["iterations"][0]["tests"][0]["elapsed_s"].is_f64());
}

#[test]
fn real_clocks_and_randomness_are_available_on_request() {
    let r = run(&["-N3", "-r", "--real-world"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(r.stdout.contains("UnitTests leaks: grew in 8 of 8 counted iterations"), "{}", r.stdout);
}

#[test]
fn sparse_and_dense_per_test_measurement_give_the_same_verdicts() {
    // Without -vv or --json tests are measured only in counted iterations (not in the warm-up);
    // the verdicts must be those of measuring every test in every iteration.
    let leaks =
        |out: &str| out[out.find("\nLeaks:\n").expect("leaks listed")..out.rfind("\nTotal:").unwrap()].to_string();
    for n in ["-N3", "-N5"] {
        let sparse = run(&[n, "-r"]).stdout;
        let dense = run(&[n, "-r", "--json", temp_file(&format!("dense{n}.json"), b"").to_str().unwrap()]).stdout;
        assert_eq!(leaks(&sparse), leaks(&dense), "{n}");
    }
}
