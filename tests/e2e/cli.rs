//! The command line: selection, listing, inspect, -x, -q, several targets, shuffle, partition,
//! the JUnit and JSON reports, colour, --version and --help.

use std::collections::HashMap;
use std::process::Command;

use crate::harness::{cache_dir, cache_key, leakhost, normalise_times, suite, temp_file, Run};

fn wasm(name: &str) -> String {
    suite(name).to_str().unwrap().to_string()
}

/// `leakhost run SUITE EXTRA...`.
fn run(name: &str, extra: &[&str]) -> Run {
    let target = wasm(name);
    leakhost(["run", target.as_str()].iter().chain(extra))
}

/// Asserts a clean exit with `status` and returns stdout with times normalised.
fn expect(r: &Run, status: i32) -> String {
    assert_eq!(r.status, status, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    normalise_times(&r.stdout)
}

/// A usage error: status 2, nothing on stdout, stderr naming what is wrong; returns stderr.
fn usage_error(r: &Run, needles: &[&str]) -> String {
    assert_eq!(r.status, 2, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert_eq!(r.stdout, "");
    for needle in needles {
        assert!(r.stderr.contains(needle), "no {needle:?} in {:?}", r.stderr);
    }
    r.stderr.clone()
}

/// README, "Exit status": a usage error is one line on stderr.
fn one_line_each(stderrs: &[String]) {
    let long: Vec<&String> = stderrs.iter().filter(|e| e.lines().count() != 1).collect();
    assert!(
        long.is_empty(),
        "usage errors of more than one stderr line:\n{}",
        long.iter().map(|e| format!("{e}---\n")).collect::<String>()
    );
}

/// The "Ran" count of each layer, then the Total: `UnitTests=12 Layer1=1 ... Total=25`.
fn counts(out: &str) -> String {
    let mut layer = "";
    let mut parts = Vec::new();
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("Running ").and_then(|l| l.strip_suffix(" tests:")) {
            layer = name.trim_start_matches("samplelayers.");
        } else if let Some(rest) = line.strip_prefix("  Ran ") {
            parts.push(format!("{layer}={}", rest.split(' ').next().unwrap()));
        } else if let Some(rest) = line.strip_prefix("Total: ") {
            parts.push(format!("Total={}", rest.split(' ').next().unwrap()));
        }
    }
    parts.join(" ")
}

/// The (layer, test) pairs of a -vv run, in the order they ran.
fn ran_tests(out: &str) -> Vec<(String, String)> {
    let mut layer = String::new();
    let mut tests = Vec::new();
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("Running ").and_then(|l| l.strip_suffix(" tests:")) {
            layer = name.to_string();
        } else if line.starts_with(' ') && !line.starts_with("  ") {
            tests.push((layer.clone(), line[1..].to_string()));
        }
    }
    tests
}

fn layers_run(out: &str) -> Vec<&str> {
    out.lines().filter(|l| l.starts_with("Running ")).collect()
}

/// Hides source line numbers (`lib.rs:52:36:` becomes `lib.rs:L:`), so edits to a suite do not break
/// the exact outputs below.
fn mask_lines(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("lib.rs:") {
        out.push_str(&rest[..i + 7]);
        rest = &rest[i + 7..];
        let end = rest.find(|c: char| !c.is_ascii_digit() && c != ':').unwrap_or(rest.len());
        out.push_str(if rest[..end].ends_with(':') { "L:" } else { "L" });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn test_patterns_are_searches_negatable_and_or_ed() {
    let x1 = "UnitTests=12 Layer1=1 Layer11=2 Layer111=2 Layer112=2 Layer12=2 Layer121=2 Layer122=2 Total=25";
    assert_eq!(counts(&expect(&run("samplelayers", &["-t", "test_x1"]), 0)), x1);
    // A search, not a full match: a fragment selects the same tests; an anchor that fits none selects
    // none, which fails unless --no-tests allows it (tests/e2e/mistakes.rs).
    assert_eq!(counts(&expect(&run("samplelayers", &["-t", "x1"]), 0)), x1);
    assert_eq!(counts(&expect(&run("samplelayers", &["-t", "^x1", "--no-tests=pass"]), 0)), "Total=0");
    let not_x1 = "UnitTests=144 Layer1=8 Layer11=24 Layer111=24 Layer112=24 Layer12=24 Layer121=24 Layer122=24";
    assert_eq!(counts(&expect(&run("samplelayers", &["-t", "!test_x1"]), 0)), format!("{not_x1} Total=296"));
    let either = "UnitTests=24 Layer1=2 Layer11=4 Layer111=4 Layer112=4 Layer12=4 Layer121=4 Layer122=4 Total=50";
    assert_eq!(counts(&expect(&run("samplelayers", &["-t", "test_x1", "-t", "test_y1"]), 0)), either);
    // Any pattern selects: the unit layer's 12 file doctests lack "test_", and test_x1 adds 25.
    let mixed = "UnitTests=24 Layer1=1 Layer11=2 Layer111=2 Layer112=2 Layer12=2 Layer121=2 Layer122=2 Total=37";
    assert_eq!(counts(&expect(&run("samplelayers", &["-t", "!test_", "-t", "test_x1"]), 0)), mixed);
}

const LAYER12: &str = "\
Running samplelayers.Layer12 tests:
  Set up samplelayers.Layer1 in N.NNN seconds.
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
Total: 78 tests, 0 failures, 0 errors and 0 skipped in N.NNN seconds.
";

const UNIT_ONLY: &str = "\
Running UnitTests tests:
  Set up UnitTests in N.NNN seconds.
  Ran 156 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.
Tearing down left over layers:
  Tear down UnitTests in N.NNN seconds.
";

#[test]
fn layer_unit_and_non_unit_selection() {
    assert_eq!(expect(&run("samplelayers", &["--layer", "Layer12"]), 0), LAYER12);
    assert_eq!(expect(&run("samplelayers", &["--layer", "!Layer"]), 0), UNIT_ONLY);
    assert_eq!(expect(&run("samplelayers", &["-u"]), 0), UNIT_ONLY);
    // -f is the full run without the unit layer's lines.
    let full = expect(&run("samplelayers", &[]), 0);
    let unit_lines = ["Running UnitTests tests:", "  Set up UnitTests ", "  Ran 156 tests", "  Tear down UnitTests "];
    let without_unit: String =
        full.lines().filter(|l| !unit_lines.iter().any(|u| l.starts_with(u))).map(|l| format!("{l}\n")).collect();
    let non_unit = expect(&run("samplelayers", &["-f"]), 0);
    assert_eq!(non_unit, without_unit.replace("Total: 321 tests", "Total: 165 tests"));
}

#[test]
fn bad_selection_options_are_usage_errors() {
    let mut stderrs = vec![
        usage_error(&run("samplelayers", &["-t", "("]), &["(", "not a valid pattern"]),
        usage_error(&run("samplelayers", &["--layer", "!("]), &["!(", "not a valid pattern"]),
        usage_error(&run("samplelayers", &["-u", "-f"]), &["--unit", "--non-unit"]),
    ];
    for spec in ["0/3", "4/3", "x"] {
        stderrs.push(usage_error(&run("samplelayers", &["--partition", spec]), &["--partition", spec]));
    }
    one_line_each(&stderrs);
}

const FAILURES_LISTING: &str = "\
Listing UnitTests tests:
  test_passes
  test_check_fails
  test_assert_fails
  test_panics
  test_returns_error
  test_skipped
  test_after_trap_passes
Listing failures.BrokenSetUp tests:
  test_never_runs_1
  test_never_runs_2
Listing failures.NoTearDown tests:
  test_flag_set_1
  test_flag_set_2
Listing failures.NoTearDownAfter tests:
  test_flag_unset_1
  test_flag_unset_2
Listing failures.TrapInLayer tests:
  test_panics_in_layer
  test_layer_set_up_again
";

#[test]
fn listing_prints_the_selected_tests_in_run_order_and_runs_nothing() {
    let failures = wasm("failures");
    // Exit 0 although the suite's tests would fail: nothing ran.
    assert_eq!(expect(&leakhost(["list", &failures]), 0), FAILURES_LISTING);
    assert_eq!(expect(&run("failures", &["--list-tests"]), 0), FAILURES_LISTING);
    let selected = "\
Listing samplelayers.Layer11 tests:
  test_x1 (sampletestsl.test_11a.TestA)
  test_x1 (sampletestsl.test_11b.TestA)
Listing samplelayers.Layer111 tests:
  test_x1 (sampletestsl.test_111a.TestA)
  test_x1 (sampletestsl.test_111b.TestA)
Listing samplelayers.Layer112 tests:
  test_x1 (sampletestsl.test_112a.TestA)
  test_x1 (sampletestsl.test_112b.TestA)
";
    let samplelayers = wasm("samplelayers");
    assert_eq!(expect(&leakhost(["list", &samplelayers, "-t", "test_x1", "--layer", "Layer11"]), 0), selected);
    let r = run("failures", &["--list-tests", "--layer", "Trap", "-t", "again"]);
    assert_eq!(expect(&r, 0), "Listing failures.TrapInLayer tests:\n  test_layer_set_up_again\n");
}

const INSPECT: &str = "\
Suite: PATH
ABI version: 2
Module: reactor (_initialize)
Compilation: C
Tests: 321 in 8 layers
Layers, in run order:
  UnitTests: 156 tests
  samplelayers.Layer1: 9 tests; hooks setUp, tearDown, testSetUp, testTearDown
  samplelayers.Layer11: 26 tests; bases samplelayers.Layer1; hooks setUp, tearDown, testSetUp, testTearDown
  samplelayers.Layer111: 26 tests; bases samplelayers.Layerx, samplelayers.Layer11; hooks setUp, tearDown, testSetUp, testTearDown
  samplelayers.Layer112: 26 tests; bases samplelayers.Layerx, samplelayers.Layer11; hooks setUp, tearDown, testSetUp, testTearDown
  samplelayers.Layer12: 26 tests; bases samplelayers.Layer1; hooks setUp, tearDown, testSetUp, testTearDown
  samplelayers.Layer121: 26 tests; bases samplelayers.Layer12; hooks setUp, tearDown, testSetUp, testTearDown
  samplelayers.Layer122: 26 tests; bases samplelayers.Layer12; hooks setUp, tearDown, testSetUp, testTearDown
Layers without tests (bases only): samplelayers.Layerx
Exports:
  memory: memory, P pages at start
  _initialize: func () -> ()
  leakhost_abi_version: func () -> (i32)
  leakhost_counters: func () -> (i32)
  leakhost_layer_hook: func (i32, i32) -> (i32)
  leakhost_manifest: func () -> (i32)
  leakhost_run_test: func (i32) -> (i32)
  leakhost_status: func () -> (i32)
  leakhost_trace_flag: func () -> (i32)
Sandbox:
  engine: cranelift
  directories: none
  environment: none
  network: none
  clocks and random numbers: deterministic (seed 0)
  memory limit: 256 MiB
  time limit: 60 s per call
  fuel: unlimited
  wasm stack: 512 KiB
  output kept per test: 64 KiB
";

/// `inspect`'s output with the path, the cache line and the initial memory size hidden.
fn inspect(extra: &[&str]) -> String {
    let target = wasm("samplelayers");
    let out = expect(&leakhost(["inspect", target.as_str()].iter().chain(extra)), 0);
    let masked: Vec<String> = out
        .lines()
        .map(|l| match l {
            _ if l == format!("Suite: {target}") => "Suite: PATH".to_string(),
            _ if l.starts_with("Compilation: compiled") || l.starts_with("Compilation: loaded from cache") => {
                "Compilation: C".to_string()
            }
            _ if l.starts_with("  memory: memory, ") && l.ends_with(" pages at start") => {
                "  memory: memory, P pages at start".to_string()
            }
            _ => l.to_string(),
        })
        .collect();
    masked.join("\n") + "\n"
}

#[test]
fn inspect_shows_abi_layers_exports_and_sandbox() {
    assert_eq!(inspect(&[]), INSPECT);
    let shared = temp_file("cli-inspect-marker", b"");
    let rw_dir = shared.with_file_name("cli-inspect-rw");
    std::fs::create_dir_all(&rw_dir).unwrap();
    let (ro, rw) = (shared.parent().unwrap().display().to_string(), rw_dir.display().to_string());
    let spec = format!(
        "--dir {ro} --dir {rw}::/data:rw --env A=1 --env B=x=y --max-memory 64M --timeout 2.5 --fuel 100000000 \
         --max-stack 1M --max-output 1K --engine pulley"
    );
    let args: Vec<&str> = spec.split_whitespace().collect();
    let sandbox = format!(
        "Sandbox:
  engine: pulley
  directory: {ro} as {ro} (read-only)
  directory: {rw} as /data (read-write)
  environment: A, B
  network: none
  clocks and random numbers: deterministic (seed 0)
  memory limit: 64 MiB
  time limit: 2.5 s per call
  fuel: 100000000 per call
  wasm stack: 1 MiB
  output kept per test: 1 KiB
"
    );
    let out = inspect(&args);
    assert_eq!(&out[out.find("Sandbox:\n").unwrap()..], sandbox);
    assert_eq!(out[..out.find("Sandbox:\n").unwrap()], INSPECT[..INSPECT.find("Sandbox:\n").unwrap()]);
}

const STOPPED: &str = "\
Running UnitTests tests:
  Set up UnitTests in N.NNN seconds.


Failure in test test_check_fails
check failed: 1 + 1 == 3
  left: 2
 right: 3
at failures/src/lib.rs:L

Stopping after test_check_fails failed (-x); the remaining tests do not run.
  Ran 2 tests with 1 failures, 0 errors and 0 skipped in N.NNN seconds.
Tearing down left over layers:
  Tear down UnitTests in N.NNN seconds.
";

#[test]
fn stop_on_error_stops_after_the_first_failure() {
    let json = temp_file("cli-stopped.json", b"");
    let r = run("failures", &["-x", "--no-timings", "--json", json.to_str().unwrap()]);
    // One layer ran, so no Total (as zope).
    assert_eq!(mask_lines(&expect(&r, 1)), STOPPED);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["suites"][0]["stopped_after"], "test_check_fails");
    assert_eq!(doc["suites"][0]["layers"].as_array().unwrap().len(), 1);
    // -N: the layer's remaining iterations do not run either.
    let repeated = mask_lines(&expect(&run("failures", &["-x", "-N3"]), 1));
    assert_eq!(
        repeated,
        STOPPED.replace("UnitTests in N.NNN seconds.\n\n", "UnitTests in N.NNN seconds.\nIteration 1\n\n")
    );
    // Nor do later suites.
    let samplelayers = wasm("samplelayers");
    let two = mask_lines(&expect(&run("failures", &[samplelayers.as_str(), "-x"]), 1));
    assert_eq!(two, format!("Suite failures.wasm:\n{STOPPED}"));
}

#[test]
fn quiet_prints_only_failures_leaks_and_the_total() {
    // The failures suite: the default output without its layer lines (blocks, set-up failure, Total).
    let layer_lines = ["Running ", "  Running in ", "  Ran ", "  Tear down ", "Tearing down ", "Iteration "];
    let quiet: String = expect(&run("failures", &[]), 1)
        .lines()
        .filter(|l| !layer_lines.iter().any(|p| l.starts_with(p)))
        .filter(|l| !l.starts_with("  Set up ") || l.contains(" failed: "))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(quiet.contains("\n\n\nError in test test_panics_in_layer\n") && quiet.contains(" failed: database"));
    assert_eq!(expect(&run("failures", &["-q"]), 1), quiet);
    // The Total stays even when exactly one layer ran.
    let unit = expect(&run("samplelayers", &["-q", "-u"]), 0);
    assert_eq!(unit, "Total: 156 tests, 0 failures, 0 errors and 0 skipped in N.NNN seconds.\n");
    let leaks = expect(&run("leak", &["-q", "-N3", "-r"]), 0);
    for line in leaks.lines() {
        let kept = ["Leaks:", "  UnitTests leaks: ", "  leak.Mixed leaks: ", "Total: 22 tests"];
        assert!(kept.iter().any(|k| line.starts_with(k)), "-q printed {line:?} in:\n{leaks}");
    }
    // -q names each leak once, in the final section.
    assert!(leaks.contains("\n  UnitTests leaks: ") && leaks.contains("\n  leak.Mixed leaks: "), "{leaks}");
    assert!(leaks.ends_with("Total: 22 tests, 0 failures, 0 errors and 0 skipped in N.NNN seconds.\n"), "{leaks}");
}

/// A run's output without its Total line.
fn without_total(out: &str) -> String {
    out.lines().filter(|l| !l.starts_with("Total: ")).map(|l| format!("{l}\n")).collect()
}

#[test]
fn several_targets_run_in_one_go_with_one_total() {
    let (samplelayers, leak) = (wasm("samplelayers"), wasm("leak"));
    let both = expect(&leakhost(["run", &samplelayers, &leak]), 0);
    let total = "Total: 343 tests, 0 failures, 0 errors and 0 skipped in N.NNN seconds.\n";
    let expected = format!(
        "Suite samplelayers.wasm:\n{}Suite leak.wasm:\n{}{total}",
        without_total(&expect(&run("samplelayers", &[]), 0)),
        without_total(&expect(&run("leak", &[]), 0)),
    );
    assert_eq!(both, expected);
    // A bad second target stops the run before any test runs.
    let bad = temp_file("cli-not-a-module.wasm", b"hello\n");
    let missing = bad.with_file_name("cli-missing.wasm");
    one_line_each(&[
        usage_error(&leakhost(["run", &samplelayers, bad.to_str().unwrap()]), &["not-a-module.wasm"]),
        usage_error(&leakhost(["run", &samplelayers, missing.to_str().unwrap()]), &["cli-missing.wasm"]),
    ]);
}

#[test]
fn shuffle_prints_its_seed_and_a_seed_repeats_the_order() {
    let plain = expect(&run("samplelayers", &["-vv"]), 0);
    let shuffled = expect(&run("samplelayers", &["--shuffle", "-vv"]), 0);
    let first = shuffled.lines().next().unwrap();
    let seed = first.strip_prefix("Tests shuffled with seed ").and_then(|s| s.strip_suffix('.')).expect(first);
    seed.parse::<u64>().unwrap_or_else(|_| panic!("{first}"));
    // The printed seed repeats the run exactly.
    assert_eq!(expect(&run("samplelayers", &["--shuffle-seed", seed, "-vv"]), 0), shuffled);
    let seeded = |seed: &str| expect(&run("samplelayers", &["--shuffle-seed", seed, "-vv"]), 0);
    let (a, b, c) = (seeded("42"), seeded("42"), seeded("43"));
    assert!(a.starts_with("Tests shuffled with seed 42.\nRunning UnitTests tests:\n"), "{a}");
    assert_eq!(a, b);
    let (order_a, order_c, order_plain) = (ran_tests(&a), ran_tests(&c), ran_tests(&plain));
    assert_ne!(order_a, order_c);
    assert_ne!(order_a, order_plain);
    assert_eq!(order_plain.len(), 321);
    for order in [&order_a, &order_c] {
        let (mut sorted, mut expected) = (order.clone(), order_plain.clone());
        sorted.sort();
        expected.sort();
        assert_eq!(sorted, expected, "a shuffle runs the same tests in the same layers");
    }
    assert_eq!(layers_run(&a), layers_run(&plain));
    assert_eq!(layers_run(&c), layers_run(&plain));
}

#[test]
fn partitions_split_the_run_round_robin_and_cover_it_once() {
    let full = ran_tests(&expect(&run("samplelayers", &["-vv"]), 0));
    assert_eq!(full.len(), 321);
    let mut union = Vec::new();
    for k in 1..=3 {
        let part = ran_tests(&expect(&run("samplelayers", &["-vv", "--partition", &format!("{k}/3")]), 0));
        let expected: Vec<_> = full.iter().skip(k - 1).step_by(3).cloned().collect();
        assert_eq!(part, expected, "part {k}/3 is every third test in run order");
        union.extend(part);
    }
    let mut all = full.clone();
    all.sort();
    union.sort();
    assert_eq!(union, all, "the three parts run every test exactly once");
}

/// Reads an XML report; python3's ElementTree must parse it too.
fn read_xml(path: &std::path::Path) -> String {
    let script = "import sys, xml.etree.ElementTree as ET; print(ET.parse(sys.argv[1]).getroot().tag)";
    let py = Command::new("python3").args(["-c", script]).arg(path).output().expect("python3 runs");
    assert_eq!(String::from_utf8_lossy(&py.stdout), "testsuites\n", "{}", String::from_utf8_lossy(&py.stderr));
    std::fs::read_to_string(path).unwrap()
}

fn elements<'a, 'i>(node: roxmltree::Node<'a, 'i>, tag: &'a str) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(move |n| n.is_element() && n.has_tag_name(tag))
}

fn attr<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> &'a str {
    node.attribute(name).unwrap_or_else(|| panic!("no {name} on {node:?}"))
}

/// Checks the counts of every testsuite against its children; returns the cases as
/// (suite, case) -> (outcome element or "pass", its message attribute, its text).
fn junit_cases(doc: &roxmltree::Document) -> HashMap<(String, String), (String, String, String)> {
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let mut cases = HashMap::new();
    let mut totals = [0usize; 4];
    for suite in elements(root, "testsuite") {
        let mut counts = [0usize; 4];
        for case in elements(suite, "testcase") {
            counts[0] += 1;
            let outcome = ["failure", "error", "skipped"].iter().position(|t| elements(case, t).next().is_some());
            let (kind, message, text) = match outcome {
                Some(i) => {
                    counts[i + 1] += 1;
                    let element = elements(case, ["failure", "error", "skipped"][i]).next().unwrap();
                    let text = element.text().unwrap_or("").to_string();
                    (element.tag_name().name().to_string(), attr(element, "message").to_string(), text)
                }
                None => ("pass".to_string(), String::new(), String::new()),
            };
            cases.insert((attr(suite, "name").to_string(), attr(case, "name").to_string()), (kind, message, text));
        }
        for (i, key) in ["tests", "failures", "errors", "skipped"].iter().enumerate() {
            assert_eq!(attr(suite, key), counts[i].to_string(), "{key} of {}", attr(suite, "name"));
            totals[i] += counts[i];
        }
    }
    for (i, key) in ["tests", "failures", "errors", "skipped"].iter().enumerate() {
        assert_eq!(attr(root, key), totals[i].to_string(), "{key} of <testsuites>");
    }
    cases
}

/// The failures suite's outcomes: layer, test, JUnit element, what its message says.
const FAILURE_CASES: [(&str, &str, &str, &str); 14] = [
    ("UnitTests", "test_passes", "pass", ""),
    ("UnitTests", "test_check_fails", "failure", "check failed: 1 + 1 == 3"),
    ("UnitTests", "test_assert_fails", "failure", "assertion `left == right` failed"),
    ("UnitTests", "test_panics", "error", "something broke"),
    ("UnitTests", "test_returns_error", "error", "backend returned an error"),
    ("UnitTests", "test_skipped", "skipped", "not on wasm"),
    ("UnitTests", "test_after_trap_passes", "pass", ""),
    ("failures.BrokenSetUp", "failures.BrokenSetUp.setUp", "error", "database unavailable"),
    ("failures.NoTearDown", "test_flag_set_1", "pass", ""),
    ("failures.NoTearDown", "test_flag_set_2", "pass", ""),
    ("failures.NoTearDownAfter", "test_flag_unset_1", "pass", ""),
    ("failures.NoTearDownAfter", "test_flag_unset_2", "pass", ""),
    ("failures.TrapInLayer", "test_panics_in_layer", "error", "layer test broke"),
    ("failures.TrapInLayer", "test_layer_set_up_again", "pass", ""),
];

fn failures_junit(name: &str, extra: &[&str]) -> String {
    let path = temp_file(&format!("cli-{name}.xml"), b"");
    let mut args = vec!["--junit", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    assert_eq!(run("failures", &args).status, 1);
    read_xml(&path)
}

#[test]
fn junit_has_a_testsuite_per_layer_and_a_testcase_per_outcome() {
    let text = failures_junit("per-layer", &[]);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let suites: Vec<_> = elements(doc.root_element(), "testsuite").collect();
    let names: Vec<&str> = suites.iter().map(|s| attr(*s, "name")).collect();
    let layers = ["UnitTests", "failures.BrokenSetUp", "failures.NoTearDown", "failures.NoTearDownAfter"];
    assert_eq!(names, [&layers[..], &["failures.TrapInLayer"]].concat());
    assert!(suites.iter().all(|s| attr(*s, "package") == "failures.wasm"));
    let cases = junit_cases(&doc);
    assert_eq!(cases.len(), FAILURE_CASES.len());
    for (layer, test, kind, message) in FAILURE_CASES {
        let (got_kind, got_message, got_text) = &cases[&(layer.to_string(), test.to_string())];
        assert_eq!(got_kind, kind, "{test}");
        let carrier = if kind == "skipped" { got_message } else { got_text };
        assert!(carrier.contains(message), "{test}: no {message:?} in {carrier:?}");
    }
    // Every element carries its time unless --no-timings.
    assert!(doc.descendants().filter(|n| n.has_tag_name("testcase")).all(|n| n.attribute("time").is_some()));
}

#[test]
fn junit_message_attributes_carry_the_panic_message() {
    // CI systems show the message attribute as the one-line summary; a panic's location is not one.
    let text = failures_junit("messages", &[]);
    let cases = junit_cases(&roxmltree::Document::parse(&text).unwrap());
    for (layer, test, kind, message) in FAILURE_CASES.iter().filter(|c| c.2 != "pass") {
        let (_, got, _) = &cases[&(layer.to_string(), test.to_string())];
        assert!(got.contains(message), "{kind} of {test}: message={got:?}, expected it to contain {message:?}");
    }
}

#[test]
fn junit_without_timings_is_byte_identical_and_has_no_times() {
    let (a, b) = (failures_junit("untimed-a", &["--no-timings"]), failures_junit("untimed-b", &["--no-timings", "-q"]));
    assert_eq!(a, b);
    let doc = roxmltree::Document::parse(&a).unwrap();
    assert!(doc.descendants().all(|n| n.attribute("time").is_none()), "{a}");
}

/// The faults suite's test_stdout_flood, which prints `line 0` .. `line 199999`, as JUnit.
fn flood_junit(name: &str, extra: &[&str]) -> String {
    let path = temp_file(&format!("cli-{name}"), b"");
    let mut args = vec!["-t", "test_stdout_flood", "--max-output", "64", "--junit", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run("faults", &args);
    read_xml(&path)
}

fn system_out(text: &str) -> String {
    let doc = roxmltree::Document::parse(text).unwrap();
    let out = doc.descendants().find(|n| n.has_tag_name("system-out"));
    out.unwrap_or_else(|| panic!("no <system-out> in {text}")).text().unwrap_or("").to_string()
}

#[test]
fn junit_carries_the_output_of_a_failing_test() {
    // Fuel is deterministic: enough to print a few lines, not 200 000.
    let text = flood_junit("flood-error.xml", &["--fuel", "10000000"]);
    assert!(text.contains("<error message=\"ran out of fuel"), "{text}");
    assert!(system_out(&text).starts_with("line 0\nline 1\n"), "{text}");
}

#[test]
fn junit_carries_the_output_of_a_passing_test() {
    let text = flood_junit("flood-pass.xml", &[]);
    assert!(!text.contains("<error") && !text.contains("<failure"), "{text}");
    assert!(system_out(&text).starts_with("line 0\nline 1\n"), "{text}");
}

#[test]
fn junit_reports_leaks_as_failures_only_with_fail_on_leak() {
    let path = temp_file("cli-leak.xml", b"");
    let args = ["-N3", "-r", "--junit", path.to_str().unwrap()];
    assert_eq!(run("leak", &[&args[..], &["--fail-on-leak"]].concat()).status, 3);
    let text = read_xml(&path);
    let doc = roxmltree::Document::parse(&text).unwrap();
    let cases = junit_cases(&doc);
    let leaking = [("UnitTests", "test_leak (leak.TestSomething)"), ("leak.Mixed", "test_13 (leak.Mixed)")];
    for ((layer, test), (kind, message, _)) in &cases {
        let leaks = leaking.contains(&(layer.as_str(), test.as_str()));
        assert_eq!(kind, if leaks { "failure" } else { "pass" }, "{test}");
        assert!(!leaks || message.contains(&format!("caused by {test}")), "{message}");
    }
    let failures: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("failure")).collect();
    assert_eq!(failures.len(), 2);
    assert!(failures.iter().all(|f| f.attribute("type") == Some("leak")), "{text}");
    assert_eq!(cases.len(), 22);

    assert_eq!(run("leak", &args).status, 0);
    let text = read_xml(&path);
    let cases = junit_cases(&roxmltree::Document::parse(&text).unwrap());
    assert!(cases.values().all(|(kind, _, _)| kind == "pass"), "{text}");
}

#[test]
fn json_carries_what_junit_does() {
    let (json, xml) = (temp_file("cli-both.json", b""), temp_file("cli-both.xml", b""));
    let r = run("failures", &["--json", json.to_str().unwrap(), "--junit", xml.to_str().unwrap()]);
    assert_eq!(r.status, 1);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let text = read_xml(&xml);
    let cases = junit_cases(&roxmltree::Document::parse(&text).unwrap());
    let suite = &doc["suites"][0];
    assert_eq!(suite["name"], "failures.wasm");
    let mut seen = 0;
    for layer in suite["layers"].as_array().unwrap() {
        let name = layer["name"].as_str().unwrap();
        for step in layer["steps"].as_array().unwrap().iter().filter(|s| s["outcome"] == "failed") {
            let hook = if step["step"] == "set_up" { "setUp" } else { "tearDown" };
            let (kind, _, text) = &cases[&(name.to_string(), format!("{}.{hook}", step["layer"].as_str().unwrap()))];
            assert_eq!((kind.as_str(), text.as_str()), ("error", step["message"].as_str().unwrap()));
            seen += 1;
        }
        let first = layer["iterations"].as_array().unwrap().first();
        for test in first.map_or(&[][..], |i| i["tests"].as_array().unwrap()) {
            let (kind, message, text) = &cases[&(name.to_string(), test["name"].as_str().unwrap().to_string())];
            let outcome = test["outcome"].as_str().unwrap();
            let junit = if kind == "skipped" { "skip" } else { kind.as_str() };
            assert_eq!(outcome, junit, "{}", test["name"]);
            let carrier = if outcome == "skip" { message } else { text };
            assert_eq!(test["message"].as_str().unwrap_or(""), carrier, "{}", test["name"]);
            seen += 1;
        }
    }
    assert_eq!(seen, FAILURE_CASES.len());
    let broken = &suite["layers"][1]["steps"];
    assert!(broken.as_array().unwrap().iter().any(|s| s["step"] == "set_up"
        && s["layer"] == "failures.BrokenSetUp"
        && s["outcome"] == "failed"
        && s["message"] == "database unavailable"));
    let totals = &doc["totals"];
    assert_eq!([&totals["tests"], &totals["failures"], &totals["errors"], &totals["skipped"]], [13, 2, 4, 1]);

    let (samplelayers, leak) = (wasm("samplelayers"), wasm("leak"));
    let two = temp_file("cli-two.json", b"");
    assert_eq!(leakhost(["run", &samplelayers, &leak, "--json", two.to_str().unwrap()]).status, 0);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&two).unwrap()).unwrap();
    let suites = doc["suites"].as_array().unwrap();
    let names: Vec<&str> = suites.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["samplelayers.wasm", "leak.wasm"]);
    assert_eq!(suites[0]["layers"].as_array().unwrap().len(), 8);
    assert_eq!(suites[1]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(doc["totals"]["tests"], 343);
}

#[test]
fn json_marks_an_iteration_with_a_fresh_instance_as_broken() {
    // docs/json-report.md: `broken` is "a fresh instance started during this iteration", with or without -r.
    let json = temp_file("cli-broken.json", b"");
    assert_eq!(run("failures", &["--json", json.to_str().unwrap()]).status, 1);
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let mut broken = Vec::new();
    for layer in doc["suites"][0]["layers"].as_array().unwrap() {
        for iteration in layer["iterations"].as_array().unwrap() {
            broken.push((layer["name"].as_str().unwrap().to_string(), iteration["broken"].as_bool().unwrap()));
        }
    }
    let expected = [
        ("UnitTests", true), // test_assert_fails and test_panics trap
        ("failures.NoTearDown", false),
        ("failures.NoTearDownAfter", false), // its fresh instance starts before the iteration
        ("failures.TrapInLayer", true),      // test_panics_in_layer traps
    ];
    assert_eq!(broken, expected.map(|(l, b)| (l.to_string(), b)));
}

#[test]
fn color_always_overrides_no_color_and_pipes() {
    let out = run("failures", &["--color", "always"]).stdout;
    assert!(out.contains("\n\n\x1b[31mFailure in test test_check_fails\x1b[39m\n"), "{out:?}");
    assert!(out.contains("\x1b[31mError in test test_panics\x1b[39m\n"), "{out:?}");
    assert!(out.contains("\x1b[31mTotal: 13 tests, 2 failures, 4 errors and 1 skipped in "), "{out:?}");
    let passed = run("samplelayers", &["-u", "--color", "always"]).stdout;
    assert!(passed.contains("\x1b[32m  Ran 156 tests with 0 failures"), "{passed:?}");
    let leaked = run("leak", &["-N3", "-r", "--color", "always"]).stdout;
    assert!(leaked.contains("\x1b[33m  Leak: UnitTests leaks: "), "{leaked:?}");
    for r in [run("failures", &["--color", "never"]), run("failures", &[])] {
        assert!(!r.stdout.contains('\x1b'), "{:?}", r.stdout);
    }
    // auto, NO_COLOR unset, stdout a pipe: no colour either.
    let auto = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(["run", &wasm("failures"), "--color", "auto"])
        .env_remove("NO_COLOR")
        .env_remove("FORCE_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .env("LEAKHOST_CACHE_KEY", cache_key())
        .output()
        .unwrap();
    assert_eq!(auto.status.code(), Some(1));
    assert!(!auto.stdout.contains(&0x1b), "{}", String::from_utf8_lossy(&auto.stdout));
}

#[test]
fn version_and_help() {
    assert_eq!(expect(&leakhost(["--version"]), 0), "leakhost 0.1.0\n");
    let help = expect(&leakhost(["run", "--help"]), 0);
    for flag in ["-N, --repeat", "-r, --report-refcounts", "-t, --test", "--layer", "--junit"] {
        assert!(help.contains(flag), "run --help does not mention {flag}:\n{help}");
    }
}
