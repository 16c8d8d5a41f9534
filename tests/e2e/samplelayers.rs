//! The reference sample suite: layer order, set-up and tear-down lines, -N, -v, and zero leaks.

use crate::harness::{leakhost, normalise_times, repo, suite};

/// zope.testrunner 8.3's full run of samplelayers, times normalised (the rules behind it, and
/// the suite's structure: docs/layers.md).
const REFERENCE: &str = "\
Running UnitTests tests:
  Set up UnitTests in N.NNN seconds.
  Ran 156 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running samplelayers.Layer1 tests:
  Tear down UnitTests in N.NNN seconds.
  Set up samplelayers.Layer1 in N.NNN seconds.
  Ran 9 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running samplelayers.Layer11 tests:
  Set up samplelayers.Layer11 in N.NNN seconds.
  Ran 26 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running samplelayers.Layer111 tests:
  Set up samplelayers.Layerx in N.NNN seconds.
  Set up samplelayers.Layer111 in N.NNN seconds.
  Ran 26 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running samplelayers.Layer112 tests:
  Tear down samplelayers.Layer111 in N.NNN seconds.
  Set up samplelayers.Layer112 in N.NNN seconds.
  Ran 26 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running samplelayers.Layer12 tests:
  Tear down samplelayers.Layer112 in N.NNN seconds.
  Tear down samplelayers.Layerx in N.NNN seconds.
  Tear down samplelayers.Layer11 in N.NNN seconds.
  Set up samplelayers.Layer12 in N.NNN seconds.
  Ran 26 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running samplelayers.Layer121 tests:
  Set up samplelayers.Layer121 in N.NNN seconds.
  Ran 26 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Running samplelayers.Layer122 tests:
  Tear down samplelayers.Layer121 in N.NNN seconds.
  Set up samplelayers.Layer122 in N.NNN seconds.
  Ran 26 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Tearing down left over layers:
  Tear down samplelayers.Layer122 in N.NNN seconds.
  Tear down samplelayers.Layer12 in N.NNN seconds.
  Tear down samplelayers.Layer1 in N.NNN seconds.
Total: 321 tests, 0 failures, 0 errors and 0 skipped in N.NNN seconds.
";

#[test]
fn full_run_reproduces_the_reference_layer_sequence() {
    let run = leakhost(["run".as_ref(), suite("samplelayers").as_os_str()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(normalise_times(&run.stdout), REFERENCE);
}

#[test]
fn a_package_directory_is_built_and_run() {
    suite("samplelayers"); // Build once through the harness so this run only checks freshness.
    let run = leakhost(["run".as_ref(), repo().join("sample-tests/samplelayers").as_os_str()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(normalise_times(&run.stdout), REFERENCE);
}

#[test]
fn repeat_runs_each_layer_four_times_in_place() {
    let run = leakhost(["run".as_ref(), suite("samplelayers").as_os_str(), "-N4".as_ref()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let out = normalise_times(&run.stdout);
    // Eight layers, each with Iteration 1..4 between one set-up and one tear-down.
    for i in 1..=4 {
        assert_eq!(out.matches(&format!("\nIteration {i}\n")).count(), 8, "{out}");
    }
    assert_eq!(out.matches("  Ran 156 tests").count(), 4);
    assert_eq!(out.matches("  Ran 26 tests").count(), 24);
    assert_eq!(out.matches("  Ran 9 tests").count(), 4);
    assert_eq!(out.matches("  Set up samplelayers.Layer1 ").count(), 1);
    // Total counts the last iteration of each layer.
    assert!(out.ends_with("Total: 321 tests, 0 failures, 0 errors and 0 skipped in N.NNN seconds.\n"), "{out}");
    let layer_lines: Vec<&str> = out.lines().filter(|l| !l.starts_with("Iteration") && !l.contains(" Ran ")).collect();
    let reference_lines: Vec<&str> = REFERENCE.lines().filter(|l| !l.contains(" Ran ")).collect();
    assert_eq!(layer_lines, reference_lines);
}

#[test]
fn leak_report_shows_only_zero_changes_and_no_verdict() {
    let run = leakhost(["run".as_ref(), suite("samplelayers").as_os_str(), "-N4".as_ref(), "-r".as_ref()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("  live blocks=")).collect();
    assert_eq!(lines.len(), 8 * 3, "{}", run.stdout);
    for line in lines {
        let changes: Vec<&str> = line.split_whitespace().filter(|w| w.starts_with("change=")).collect();
        assert_eq!(changes, ["change=0"; 3], "{line}");
    }
    assert!(!run.stdout.contains("grows"), "{}", run.stdout);
    assert!(!run.stdout.contains("Leaks:"), "{}", run.stdout);
}

#[test]
fn verbosity_prints_dots_names_and_times() {
    let wasm = suite("samplelayers");
    let dots = leakhost(["run".as_ref(), wasm.as_os_str(), "-v".as_ref()]).stdout;
    assert!(dots.contains(&format!("    {}\n", ".".repeat(156))), "{dots}");
    let names = leakhost(["run".as_ref(), wasm.as_os_str(), "-vv".as_ref()]).stdout;
    assert!(names.contains("\n test_x1 (sampletests.test1.TestA)\n"), "{names}");
    // -vv prints every test name once, indented by one space (zope's layout).
    let named = names.lines().filter(|l| l.starts_with(' ') && !l.starts_with("  ")).count();
    assert_eq!(named, 321, "{names}");
    let times = leakhost(["run".as_ref(), wasm.as_os_str(), "-vvv".as_ref()]).stdout;
    let timed = times.lines().find(|l| l.starts_with(" test_x1 (sampletests.test1.TestA)")).unwrap();
    assert!(timed.ends_with(" s)") && timed.contains(" (0."), "{timed}");
}
