//! What the human output and the exit status say around the tests themselves: layer
//! errors as zope lists them, skip reasons, set-up output, report files that cannot be
//! written, and the documented exit statuses.

use crate::harness::{leakhost, suite, temp_file};

fn run(name: &str, extra: &[&str]) -> crate::harness::Run {
    let wasm = suite(name);
    let mut args = vec!["run", wasm.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

#[test]
fn a_broken_base_is_listed_under_each_layer_that_needed_it() {
    let r = run("layertraps", &["-v"]);
    let errors = &r.stdout[r.stdout.find("Tests with errors:").expect("errors listed")..];
    assert!(
        errors.contains("\n   Layer: layertraps.F1_NeedsIt.setUp\n   Layer: layertraps.F2_NeedsIt.setUp\n"),
        "{errors}"
    );
    assert!(!errors.contains("F_BrokenBase"), "{errors}");
}

#[test]
fn very_verbose_output_gives_the_skip_reason() {
    let r = run("failures", &["-vv"]);
    assert!(r.stdout.contains("\n test_skipped (skipped: not on wasm)\n"), "{}", r.stdout);
}

#[test]
fn set_up_output_is_shown_with_the_set_up_not_the_first_test() {
    let r = run("hostile", &["-vv"]);
    let set_up = r.stdout.find("  Set up hostile.\\e[31mRed\\nLayer in ").expect("set-up line");
    assert!(r.stdout[set_up..].lines().nth(1) == Some("set-up writes \\e[2J"), "{}", r.stdout);
    let json = temp_file("setup-output.json", b"");
    run("hostile", &["--json", json.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let layer = &report["suites"][0]["layers"][1];
    assert_eq!(layer["steps"][1]["output"], "set-up writes \u{1b}[2J\n", "{layer:#}");
    assert!(layer["iterations"][0]["tests"][0].get("output").is_none(), "{layer:#}");
}

#[test]
fn a_report_that_cannot_be_written_stops_the_run_before_it_starts() {
    for flag in ["--junit", "--json"] {
        let r = run("samplelayers", &[flag, "/nonexistent-dir/report"]);
        assert_eq!(r.status, 4, "{flag}: {}", r.stderr);
        assert_eq!(r.stdout, "", "{flag}: no test may run");
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        assert!(r.stderr.starts_with("leakhost: error: /nonexistent-dir/report: cannot write the "), "{}", r.stderr);
    }
}

#[test]
fn exit_statuses_are_as_documented() {
    assert_eq!(run("samplelayers", &[]).status, 0);
    assert_eq!(run("failures", &[]).status, 1);
    assert_eq!(run("samplelayers", &["--bogus"]).status, 2);
    assert_eq!(run("leak", &["-N3", "-r", "--fail-on-leak"]).status, 3);
    assert_eq!(run("samplelayers", &["--json", "/nonexistent-dir/r.json"]).status, 4);
    let readme = std::fs::read_to_string(crate::harness::repo().join("README.md")).unwrap();
    for status in ["| 0 |", "| 1 |", "| 2 |", "| 3 |", "| 4 |"] {
        assert!(readme.contains(status), "README documents exit status {status}");
    }
}
