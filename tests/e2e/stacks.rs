//! Allocation stacks (issue 11): every leak of the leakstacks suite is found by its stack,
//! down to the allocating line; clean suites, `--no-stacks` and ABI v1 suites print none.

use crate::harness::{leakhost, normalise_times, repo, suite, temp_file};

fn run(name: &str, extra: &[&str]) -> crate::harness::Run {
    let wasm = suite(name);
    let mut args = vec!["run", wasm.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

/// The line of `sample-tests/leakstacks/src/lib.rs` that carries `// leak: MARKER`.
pub fn marked_line(marker: &str) -> usize {
    let source = std::fs::read_to_string(repo().join("sample-tests/leakstacks/src/lib.rs")).unwrap();
    let tag = format!("// leak: {marker}");
    let found: Vec<usize> =
        source.lines().enumerate().filter(|(_, l)| l.trim_end().ends_with(&tag)).map(|(i, _)| i + 1).collect();
    assert_eq!(found.len(), 1, "exactly one line is marked {tag}");
    found[0]
}

/// The stack groups printed for one layer: each its heading and its frames.
fn groups(stdout: &str, layer: &str) -> Vec<(String, Vec<String>)> {
    let start =
        stdout.find(&format!("  Where {layer} leaks")).unwrap_or_else(|| panic!("no stacks for {layer}:\n{stdout}"));
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for line in stdout[start..].lines().skip(1) {
        if let Some(frame) = line.strip_prefix("      ") {
            groups.last_mut().expect("a heading first").1.push(frame.to_string());
        } else if let Some(heading) = line.strip_prefix("    ") {
            if !heading.starts_with('(') {
                groups.push((heading.to_string(), Vec::new()));
            }
        } else {
            break;
        }
    }
    groups
}

/// The group whose innermost frame is `function` at the line marked `marker`.
fn group_at<'a>(groups: &'a [(String, Vec<String>)], function: &str, marker: &str) -> &'a (String, Vec<String>) {
    let innermost = format!("{function}  leakstacks/src/lib.rs:{}", marked_line(marker));
    groups
        .iter()
        .find(|(_, frames)| frames.first() == Some(&innermost))
        .unwrap_or_else(|| panic!("no stack starts at {innermost}: {groups:#?}"))
}

/// A frame of the suite's own code: its file in its package.
fn frame(function: &str, marker: &str) -> String {
    format!("{function}  leakstacks/src/lib.rs:{}", marked_line(marker))
}

#[test]
fn every_leak_is_found_down_to_the_allocating_line() {
    let r = run("leakstacks", &["-N4", "-r"]);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let unit = groups(&r.stdout, "UnitTests");
    for (function, marker, test, per_iteration) in [
        ("leakstacks::make_cycle", "rc-a", "test_rc_cycle", "1 block, 40 bytes per iteration"),
        ("leakstacks::make_cycle", "rc-b", "test_rc_cycle", "1 block, 40 bytes per iteration"),
        ("leakstacks::audit", "audit", "test_audit_log", "1 block, 40 bytes per iteration"),
        ("leakstacks::intern_config", "box-leak", "test_box_leak", "1 block, 48 bytes per iteration"),
        ("leakstacks::forget_buffer", "forgotten-vec", "test_forgotten_vec", "1 block, 64 bytes per iteration"),
    ] {
        let (heading, frames) = group_at(&unit, function, marker);
        assert_eq!(heading, &format!("{per_iteration}, allocated by {test} at:"));
        assert_eq!(
            frames.last().unwrap(),
            &format!("leakstacks::{test}  leakstacks/src/lib.rs:{}", test_call_line(test))
        );
    }
    // The memo table's entry: allocated in a closure of `describe`, which the test calls.
    let memo = unit
        .iter()
        .find(|(heading, frames)| {
            heading.starts_with("1 block, 44 bytes per iteration") && frames[0].contains("describe")
        })
        .expect("the memo entry's stack");
    assert!(memo.1[0].ends_with(&format!("src/lib.rs:{}", marked_line("memo"))), "{memo:?}");
    assert_eq!(
        memo.1.last().unwrap(),
        &format!("leakstacks::test_memo_map  leakstacks/src/lib.rs:{}", test_call_line("test_memo_map"))
    );
    // Two calls below the test body, every frame on its line.
    let (_, deep) = group_at(&unit, "leakstacks::deep_inner", "deep-inner");
    assert_eq!(
        deep,
        &[
            frame("leakstacks::deep_inner", "deep-inner"),
            frame("leakstacks::deep_outer", "deep-outer"),
            frame("leakstacks::test_deep", "deep-test")
        ]
    );
    // A layer's testSetUp: the hook's own frame, blamed on the hook, as the verdict is.
    let fixture = groups(&r.stdout, "leakstacks.Fixture");
    let (heading, frames) = group_at(&fixture, "leakstacks::register_listener", "listener");
    assert_eq!(heading, "1 block, 56 bytes per iteration, allocated by testSetUp of leakstacks.Fixture at:");
    assert_eq!(frames.len(), 1, "the SDK's dispatch is trimmed: {frames:?}");
    // Two tests through one helper: one stack, both tests.
    let visits = groups(&r.stdout, "leakstacks.Visits");
    let (heading, _) = group_at(&visits, "leakstacks::record_visit", "visit");
    assert_eq!(heading, "2 blocks, 24 bytes per iteration, allocated by test_visit_a, test_visit_b at:");
}

/// Where test `test` calls its helper.
fn test_call_line(test: &str) -> usize {
    marked_line(&format!("in-{test}"))
}

#[test]
fn stacks_come_out_of_allocator_and_sdk_frames_and_are_the_same_every_run() {
    let first = run("leakstacks", &["-N4", "-r"]);
    let second = run("leakstacks", &["-N4", "-r"]);
    let stacks = |stdout: &str| {
        let start = stdout.find("  Where ").expect("stacks");
        let end = stdout.find("\nLeaks:").expect("a Leaks: section");
        normalise_times(&stdout[start..end])
    };
    assert_eq!(stacks(&first.stdout), stacks(&second.stdout));
    let text = stacks(&first.stdout);
    for hidden in ["alloc::", "leakhost_guest::", "__rust", "library/", "run_test"] {
        assert!(!text.contains(hidden), "{hidden} is shown:\n{text}");
    }
}

#[test]
fn a_clean_suite_prints_no_stack() {
    let r = run("samplelayers", &["-N4", "-r"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("Where "), "{}", r.stdout);
    assert!(!r.stdout.contains("allocated"), "{}", r.stdout);
}

#[test]
fn no_stacks_turns_them_off_and_keeps_the_verdicts() {
    let r = run("leakstacks", &["-N4", "-r", "--no-stacks"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("Where "), "{}", r.stdout);
    assert!(r.stdout.contains("Leak: leakstacks.Visits leaks: "), "{}", r.stdout);
}

#[test]
fn an_abi_v1_suite_gets_its_verdict_and_one_line_why_there_is_no_stack() {
    let wasm = temp_file("leaky_v1.wasm", &wat::parse_file(repo().join("tests/fixtures/leaky_v1.wat")).unwrap());
    let r = leakhost(["run", wasm.to_str().unwrap(), "-N4", "-r"]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains(
            "Leak: UnitTests leaks: grew in 8 of 8 counted iterations: blocks +1 per iteration (net +8), bytes +16"
        ),
        "{}",
        r.stdout
    );
    let why: Vec<&str> = r.stdout.lines().filter(|l| l.contains("no allocation stacks")).collect();
    assert_eq!(
        why,
        ["    (no allocation stacks: the suite speaks ABI v1, which cannot trace allocations (ABI v2 can), and its allocator was not found by name to trace it for the suite)"]
    );
}

#[test]
fn json_and_junit_carry_the_stacks() {
    let json = std::env::temp_dir().join(format!("leakhost-e2e-{}-stacks.json", std::process::id()));
    let junit = json.with_extension("xml");
    let r = run("leakstacks", &["-N4", "-r", "--json", json.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let layers = report["suites"][0]["layers"].as_array().unwrap();
    let visits = layers.iter().find(|l| l["name"] == "leakstacks.Visits").unwrap();
    let group = &visits["stacks"]["groups"][0];
    // The replay runs the run's 9 iterations: 8 counted, 2 blocks of 12 bytes each.
    assert_eq!(group["blocks"], 16);
    assert_eq!(group["bytes"], 192);
    assert_eq!(group["iterations"], 8);
    assert_eq!(group["tests"], serde_json::json!(["test_visit_a", "test_visit_b"]));
    let top = &group["frames"][0];
    assert_eq!(top["function"], "leakstacks::record_visit");
    assert_eq!(top["file"], "leakstacks/src/lib.rs");
    assert!(top["path"].as_str().unwrap().ends_with("/sample-tests/leakstacks/src/lib.rs"), "{top}");
    assert_eq!(top["line"], marked_line("visit"));
    let offsets = top["module_offsets"].as_array().unwrap();
    assert!(!offsets.is_empty() && offsets.iter().all(|o| o.as_u64().unwrap() > 0), "{top}");
    let clean = layers.iter().find(|l| l["name"] == "UnitTests").unwrap();
    assert!(clean["stacks"]["groups"].as_array().unwrap().len() >= 8);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc.descendants().find(|n| n.attribute("name") == Some("test_visit_b")).unwrap();
    let out = case.children().find(|n| n.has_tag_name("system-out")).expect("system-out").text().unwrap();
    assert!(out.contains(&frame("leakstacks::record_visit", "visit")), "{out}");
}
