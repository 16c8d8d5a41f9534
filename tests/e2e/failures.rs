//! The failures suite: outcome blocks, layer errors, fresh instances, counts and exit status.

use crate::harness::{block, leakhost, normalise_times, suite};

fn run(extra: &[&str]) -> crate::harness::Run {
    let wasm = suite("failures");
    let mut args = vec!["run", wasm.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

#[test]
fn outcomes_are_reported_as_zope_does_and_the_run_carries_on() {
    let r = run(&[]);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    let out = &r.stdout;
    assert!(block(out, "Failure in test test_check_fails").starts_with("check failed: 1 + 1 == 3"), "{out}");
    let assert_block = block(out, "Failure in test test_assert_fails");
    assert!(assert_block.contains("assertion `left == right` failed") && assert_block.contains("right: 3"));
    assert!(assert_block.starts_with("panicked at failures/src/lib.rs:"), "{assert_block}");
    assert!(block(out, "Error in test test_panics").contains("something broke"));
    assert!(block(out, "Error in test test_returns_error").contains("backend returned an error"));
    assert!(!out.contains("in test test_skipped"), "a skip is counted, not reported as a block");
    assert!(!out.contains("in test test_passes") && !out.contains("test_after_trap_passes"));
    assert!(out.contains("  Ran 7 tests with 2 failures, 2 errors and 1 skipped in "), "{out}");
    let total = "Total: 13 tests, 2 failures, 4 errors and 1 skipped in N.NNN seconds.\n";
    assert!(normalise_times(out).ends_with(total), "{out}");
}

#[test]
fn a_failing_set_up_skips_its_layer_and_counts_one_error() {
    let out = normalise_times(&run(&["-v"]).stdout);
    assert!(out.contains("Running failures.BrokenSetUp tests:\n  Tear down UnitTests in N.NNN seconds.\n  Set up failures.BrokenSetUp failed: database unavailable\nRunning failures.NoTearDown tests:\n"), "{out}");
    assert!(!out.contains("test_never_runs"), "{out}");
    let errors = &out[out.find("Tests with errors:\n").expect("-v lists errors")..];
    assert!(errors.contains("\n   Layer: failures.BrokenSetUp.setUp\n"), "{errors}");
    assert!(errors.contains("\n   test_panics\n") && errors.contains("\n   test_panics_in_layer\n"), "{errors}");
    let failures = &out[out.find("Tests with failures:\n").expect("-v lists failures")..];
    assert!(failures.contains("\n   test_check_fails\n   test_assert_fails\n"), "{failures}");
}

#[test]
fn a_layer_without_tear_down_continues_in_a_fresh_instance() {
    let out = normalise_times(&run(&[]).stdout);
    // NoTearDownAfter's tests pass only if NoTearDown's global state is gone.
    assert!(out.contains("Running failures.NoTearDownAfter tests:\n  Tear down failures.NoTearDown ... not supported\n  Running in a fresh instance.\n  Set up failures.NoTearDownAfter in N.NNN seconds.\n  Ran 2 tests with 0 failures, 0 errors and 0 skipped"), "{out}");
}

#[test]
fn a_trap_inside_a_layer_sets_the_layer_up_again() {
    let out = run(&["-v"]).stdout;
    // test_layer_set_up_again passes only if TrapInLayer's setUp ran again in the fresh instance.
    assert!(out.contains("Continuing in a fresh instance after test_panics_in_layer trapped.\n  Set up failures.TrapInLayer again in "), "{out}");
    assert!(out.contains("  Ran 2 tests with 0 failures, 1 errors and 0 skipped"), "{out}");
}

#[test]
fn repeated_iterations_sum_failures_but_count_tests_once() {
    let r = run(&["-N2"]);
    assert_eq!(r.status, 1);
    // 3 test errors per iteration, twice, plus the one layer error.
    assert!(
        normalise_times(&r.stdout).ends_with("Total: 13 tests, 4 failures, 7 errors and 2 skipped in N.NNN seconds.\n"),
        "{}",
        r.stdout
    );
}
