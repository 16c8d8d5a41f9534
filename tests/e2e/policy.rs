//! Leak policy: allowances (`leakhost.toml`, `--allow`) and baselines (`--baseline`), docs/policy.md.

use std::path::{Path, PathBuf};

use crate::harness::{leakhost, suite, temp_file, Run};
use crate::stacks::marked_line;

/// The leak suite copied into a directory of its own, with `toml` as its `leakhost.toml`.
fn leak_suite_with(dir: &str, toml: &str) -> PathBuf {
    suite_with("leak", dir, toml)
}

/// The sample suite `name` copied into a directory of its own, with `toml` as its `leakhost.toml`.
fn suite_with(name: &str, dir: &str, toml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-{}", std::process::id())).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::copy(suite(name), &wasm).unwrap();
    std::fs::write(wasm.with_file_name("leakhost.toml"), toml).unwrap();
    wasm
}

fn run(wasm: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", wasm.to_str().unwrap(), "-N4", "-r", "--fail-on-leak"];
    args.extend_from_slice(extra);
    leakhost(args)
}

const KNOWN: &str = r#"# The leak demo's leaks, on purpose.
[[allow]]
test = "^test_13 "
max_blocks = 1
reason = "the cache is bounded in production"

[[allow]]
layer = "^UnitTests$"
reason = "zope's demo leaks on purpose"
"#;

#[test]
fn allowed_leaks_beside_the_suite_do_not_fail_and_say_why() {
    let wasm = leak_suite_with("allowed", KNOWN);
    let junit = wasm.with_file_name("junit.xml");
    let run = run(&wasm, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    let place = wasm.with_file_name("leakhost.toml").display().to_string();
    let allowed = format!("  leak.Mixed: allowed by {place}:2: the cache is bounded in production\n");
    assert!(run.stdout.contains(&allowed), "{}", run.stdout);
    assert!(run.stdout.contains(&format!("  UnitTests: allowed by {place}:7: zope's demo leaks on purpose\n")));
    assert!(!run.stdout.contains("stale"));
    // The leaks are still reported as leaks, in every report.
    assert!(run.stdout.contains("Leaks:\n  UnitTests leaks: grew in 8 of 8 counted iterations"));
    // --allow replaces the file beside the suite.
    let none = temp_file("none.toml", b"");
    // JUnit, written as the run goes, counts an allowed leak as no failure.
    assert!(!std::fs::read_to_string(&junit).unwrap().contains("type=\"leak\""));
    let strict = self::run(&wasm, &["--allow", none.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    assert_eq!(strict.status, 3, "{}", strict.stdout);
    assert_eq!(std::fs::read_to_string(&junit).unwrap().matches("type=\"leak\"").count(), 2);
    assert!(strict.stdout.contains("  leak.Mixed: not allowed: no allowance matches\n"));
}

#[test]
fn growth_beyond_the_bound_fails_and_stale_entries_are_named() {
    let toml = format!("{KNOWN}\n[[allow]]\nlayer = 'Mixed'\ntest = 'test_01'\nreason = 'fixed in 1.2'\n")
        .replace("max_blocks = 1", "max_bytes = 39");
    let wasm = leak_suite_with("bounded", &toml);
    let run = run(&wasm, &[]);
    assert_eq!(run.status, 3, "{}{}", run.stdout, run.stderr);
    let place = wasm.with_file_name("leakhost.toml").display().to_string();
    let over = format!(
        "  leak.Mixed: not allowed: test_13 (leak.Mixed) grows by bytes +46 per iteration, more than the 39 \
         allowed by {place}:2 (the cache is bounded in production)\n"
    );
    assert!(run.stdout.contains(&over), "{over:?} not in\n{}", run.stdout);
    let stale =
        format!("  stale: {place}:11 matched no leak in this run; remove it once the leak is fixed (fixed in 1.2)\n");
    assert!(run.stdout.contains(&stale), "{stale:?} not in\n{}", run.stdout);
}

#[test]
fn a_malformed_allowance_file_is_a_usage_error_naming_the_line() {
    for (toml, line, message) in [
        ("# known\n\n[[allow]]\nlayer = 'Mixed'\n", 3, "an allowance needs a `reason`"),
        ("[[allow]]\nreason = 'r'\ntest = '(unclosed'\n", 1, "test: \"(unclosed\" is not a valid pattern"),
        ("[[allow]]\nreason = 'r'\nlayer = 'x'\nmax_blokcs = 1\n", 4, "unknown field `max_blokcs`"),
    ] {
        let wasm = leak_suite_with(&format!("malformed{line}"), toml);
        let run = run(&wasm, &[]);
        assert_eq!(run.status, 2, "{}", run.stderr);
        let place = wasm.with_file_name("leakhost.toml").display().to_string();
        assert!(run.stderr.starts_with(&format!("leakhost: error: {place}:{line}: {message}")), "{}", run.stderr);
        assert!(!run.stdout.contains("Ran"), "no test runs: {}", run.stdout);
    }
}

const FRAMES: &str = r#"# Known leaks of leakstacks, by where they are allocated.
[[allow]]
frame = "^leakstacks::register_listener$"
reason = "listeners live as long as the process"

[[allow]]
frame = "^leakstacks::audit$"
reason = "the audit log is flushed elsewhere"
"#;

/// The JUnit testcases of `xml` that fail as leaks.
fn leak_failures(xml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let failing = doc.descendants().filter(|n| n.has_tag_name("failure") && n.attribute("type") == Some("leak"));
    failing.map(|f| f.parent().unwrap().attribute("name").unwrap().to_string()).collect()
}

#[test]
fn a_frame_allowance_excuses_the_layer_whose_every_stack_it_matches() {
    let wasm = suite_with("leakstacks", "frames", FRAMES);
    let junit = wasm.with_file_name("junit.xml");
    let all = run(&wasm, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(all.status, 3, "two layers still leak: {}{}", all.stdout, all.stderr);
    let place = wasm.with_file_name("leakhost.toml").display().to_string();
    let section = &all.stdout[all.stdout.find("Allowances (").expect("an allowance section")..];
    let forgotten = marked_line("forgotten-vec");
    assert_eq!(
        section.lines().collect::<Vec<_>>(),
        [
            format!("Allowances ({place}):"),
            // audit's entry matches two of UnitTests' ten stacks (the entry and the log's
            // growth): not enough.
            format!(
                "  UnitTests: not allowed: 8 of its 10 leaking stacks match no frame allowance, the first allocated at \
                 leakstacks::forget_buffer  leakstacks/src/lib.rs:{forgotten}"
            ),
            format!("  leakstacks.Fixture: allowed by {place}:2: listeners live as long as the process"),
            "  leakstacks.Visits: not allowed: no allowance matches".into(),
        ]
    );
    // JUnit, written as the run goes, judges each leak once its stacks are in.
    let failures = leak_failures(&std::fs::read_to_string(&junit).unwrap());
    assert!(!failures.iter().any(|t| t.contains("Fixture")), "{failures:?}");
    assert!(failures.contains(&"test_visit_a".to_string()) && failures.contains(&"test_audit_log".to_string()));

    // The excused layer alone passes --fail-on-leak, and fails it without the file.
    let fixture = run(&wasm, &["--layer", "Fixture"]);
    assert_eq!(fixture.status, 0, "{}{}", fixture.stdout, fixture.stderr);
    let allowed = format!("  leakstacks.Fixture: allowed by {place}:2: listeners live as long as the process\n");
    assert!(fixture.stdout.contains(&allowed), "{}", fixture.stdout);
    let stale = format!("  stale: {place}:6 matched no leak in this run; remove it once the leak is fixed");
    assert!(fixture.stdout.contains(&stale), "{}", fixture.stdout);
    let none = temp_file("none.toml", b"");
    assert_eq!(run(&wasm, &["--layer", "Fixture", "--allow", none.to_str().unwrap()]).status, 3);
}

#[test]
fn without_stacks_a_frame_allowance_excuses_nothing_and_says_why() {
    let wasm = suite_with("leakstacks", "frames-no-stacks", FRAMES);
    let r = run(&wasm, &["--layer", "Fixture", "--no-stacks"]);
    assert_eq!(r.status, 3, "{}{}", r.stdout, r.stderr);
    let place = wasm.with_file_name("leakhost.toml").display().to_string();
    assert!(
        r.stdout.contains(
            "  leakstacks.Fixture: not allowed: frame allowances need allocation stacks: none were recorded \
             (-r records them unless --no-stacks)\n"
        ),
        "{}",
        r.stdout
    );
    let unchecked = format!(
        "  unchecked: {place}:2 has a frame pattern, and the leaks it could excuse have no allocation stacks \
         (listeners live as long as the process)\n"
    );
    assert!(r.stdout.contains(&unchecked), "{unchecked:?} not in\n{}", r.stdout);
    assert!(!r.stdout.contains("stale"), "an entry not checked is not stale: {}", r.stdout);
}

#[test]
fn a_malformed_frame_pattern_is_a_usage_error_naming_the_line() {
    let toml = "# known\n\n[[allow]]\nreason = 'r'\nframe = 'leakstacks::audit('\n";
    let wasm = suite_with("leakstacks", "frames-malformed", toml);
    let r = run(&wasm, &[]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    let place = wasm.with_file_name("leakhost.toml").display().to_string();
    let message = format!("leakhost: error: {place}:3: frame: \"leakstacks::audit(\" is not a valid pattern");
    assert!(r.stderr.starts_with(&message), "{}", r.stderr);
    assert!(!r.stdout.contains("Ran"), "no test runs: {}", r.stdout);
}

/// A `--json` report of the leak suite run with `extra`.
fn baseline(file: &str, extra: &[&str]) -> PathBuf {
    let path = temp_file(file, b"");
    let wasm = suite("leak");
    let mut args = vec!["run", wasm.to_str().unwrap(), "-N4", "-r", "--json", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    assert_eq!(leakhost(args).status, 0);
    path
}

fn against(baseline: &Path, extra: &[&str]) -> Run {
    let wasm = suite("leak");
    let mut args = vec!["run", wasm.to_str().unwrap(), "-N4", "-r", "--fail-on-leak", "--baseline"];
    args.push(baseline.to_str().unwrap());
    args.extend_from_slice(extra);
    leakhost(args)
}

#[test]
fn a_baseline_fails_only_on_new_or_faster_leaks_and_lists_improvements() {
    let same = baseline("base-same.json", &[]);
    let run = against(&same, &[]);
    assert_eq!(run.status, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("  unchanged: UnitTests\n  unchanged: leak.Mixed\n"), "{}", run.stdout);

    // Before test_13 was written (deselected), leak.Mixed did not leak: now it is new.
    let before = baseline("base-before.json", &["-t", "!test_13"]);
    let run = against(&before, &[]);
    assert_eq!(run.status, 3, "{}", run.stdout);
    assert!(run.stdout.contains("  new leak: leak.Mixed\n  unchanged: UnitTests\n"), "{}", run.stdout);

    // Once it is fixed (deselected), the baseline's leak is listed as an improvement.
    let run = against(&same, &["-t", "!test_13"]);
    assert_eq!(run.status, 0, "{}", run.stdout);
    assert!(run.stdout.contains("  improved: leak.Mixed no longer leaks\n"), "{}", run.stdout);

    // A baseline where leak.Mixed grew half as fast: it now leaks faster.
    let mut slower: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&same).unwrap()).unwrap();
    let layers = slower["suites"][0]["layers"].as_array_mut().unwrap();
    for layer in layers.iter_mut().filter(|l| l["name"] == "leak.Mixed") {
        let growth = layer["verdict"]["growth"].as_array_mut().unwrap();
        for growth in growth.iter_mut().filter(|g| g["metric"]["kind"] == "bytes") {
            growth["deltas"] = serde_json::json!([20, 20, 20]);
        }
    }
    let slower = temp_file("base-slower.json", slower.to_string().as_bytes());
    let run = against(&slower, &[]);
    assert_eq!(run.status, 3, "{}", run.stdout);
    assert!(run.stdout.contains("  leaks faster: leak.Mixed: bytes +20 -> +46\n"), "{}", run.stdout);
}

#[test]
fn a_baseline_of_another_suite_or_option_set_is_not_compared() {
    let other_options = baseline("base-n5.json", &["-N5"]);
    let run = against(&other_options, &[]);
    assert_eq!(run.status, 3, "every leak counts: {}", run.stdout);
    assert!(
        run.stdout.contains(
            "  not compared: it was run with -N 5 --warmup 1 -r, this run with -N 4 --warmup 1 -r; every leak counts\n"
        ),
        "{}",
        run.stdout
    );
    let path = temp_file("base-samplelayers.json", b"");
    let samplelayers = suite("samplelayers");
    let args = ["run", samplelayers.to_str().unwrap(), "-N4", "-r", "--json", path.to_str().unwrap()];
    leakhost(args);
    let run = against(&path, &[]);
    assert!(
        run.stdout.contains("  not compared: it is of samplelayers.wasm, this run of leak.wasm;"),
        "{}",
        run.stdout
    );
    let events = temp_file("not-a-report.json", b"{\"event\":\"run_started\"}");
    let run = against(&events, &[]);
    assert!(run.stdout.contains("  not compared: it is not a leakhost JSON report"), "{}", run.stdout);
    let garbage = temp_file("garbage.json", b"<html>");
    let run = against(&garbage, &[]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("garbage.json: not a baseline: not JSON: "), "{}", run.stderr);
}
