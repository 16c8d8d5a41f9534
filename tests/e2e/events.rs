//! The live event stream (`--events`): docs/events.md.

use std::collections::HashMap;

use serde_json::Value;

use crate::harness::{leakhost, suite, temp_file, Run};

fn stream(name: &str, file: &str, extra: &[&str]) -> (Run, Vec<Value>) {
    let wasm = suite(name);
    let path = temp_file(file, b"");
    let mut args = vec!["run", wasm.to_str().unwrap(), "--events", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = leakhost(args);
    let text = std::fs::read_to_string(&path).unwrap();
    let events = text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    (run, events)
}

/// What a consumer that follows the stream computes, as docs/events.md says.
fn replay(events: &[Value]) -> (u64, u64, u64, u64) {
    let mut last_tests: HashMap<(u64, u64), u64> = HashMap::new();
    let (mut failures, mut errors, mut skipped) = (0, 0, 0);
    for e in events {
        match e["event"].as_str().unwrap() {
            "iteration_finished" => {
                let c = &e["counts"];
                last_tests.insert(
                    (e["suite"].as_u64().unwrap(), e["layer"]["id"].as_u64().unwrap()),
                    c["tests"].as_u64().unwrap(),
                );
                failures += c["failures"].as_u64().unwrap();
                errors += c["errors"].as_u64().unwrap();
                skipped += c["skipped"].as_u64().unwrap();
            }
            "set_up" | "tear_down" if e["outcome"] == "failed" => errors += 1,
            _ => {}
        }
    }
    (last_tests.values().sum(), failures, errors, skipped)
}

#[test]
fn a_replayed_stream_gives_the_totals_the_human_output_prints() {
    for (name, file, flags) in [
        ("failures", "failures.jsonl", &["-N2"][..]),
        ("layertraps", "layertraps.jsonl", &["-N2", "-r"][..]),
        ("samplelayers", "samplelayers.jsonl", &["-N3", "-r", "-j2"][..]),
    ] {
        let (run, events) = stream(name, file, flags);
        let (tests, failures, errors, skipped) = replay(&events);
        let total = format!("Total: {tests} tests, {failures} failures, {errors} errors and {skipped} skipped in ");
        assert!(run.stdout.contains(&total), "{name}: {total:?} not in\n{}", run.stdout);
        let last = events.last().unwrap();
        assert_eq!(last["event"], "run_finished", "{name}");
        let summary = &last["summary"];
        assert_eq!((summary["tests"].as_u64(), summary["errors"].as_u64()), (Some(tests), Some(errors)), "{name}");
    }
}

#[test]
fn the_stream_is_versioned_and_names_everything_by_id() {
    let (_, events) = stream("layertraps", "ids.jsonl", &["-N2"]);
    assert_eq!(events[0]["event"], "run_started");
    assert_eq!(events[0]["schema"], "leakhost-events");
    assert_eq!(events[0]["version"], 2);
    // Planned: 12 selected tests, of which 3 never run (their layers fail to set up).
    assert_eq!(events[0]["tests"], 12);
    for e in &events[1..] {
        assert!(e.get("schema").is_none());
        if let Some(layer) = e.get("layer").filter(|l| l.is_object()) {
            assert!(layer["id"].is_u64() && layer["name"].is_string(), "{e}");
        }
        if let Some(test) = e.get("test") {
            assert!(test["id"].is_u64() && test["name"].is_string(), "{e}");
        }
    }
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for kind in ["suite_started", "layer_started", "set_up", "tear_down", "fresh_instance", "iteration_started"] {
        assert!(kinds.contains(&kind), "{kind} missing");
    }
    assert_eq!(kinds.iter().filter(|k| **k == "suite_finished").count(), 1);
}

#[test]
fn two_streams_without_timings_are_byte_identical() {
    let wasm = suite("leak");
    let read = |file: &str| {
        let path = temp_file(file, b"");
        leakhost(["run", wasm.to_str().unwrap(), "-N3", "-r", "--no-timings", "--events", path.to_str().unwrap()]);
        std::fs::read(path).unwrap()
    };
    let (a, b) = (read("a.jsonl"), read("b.jsonl"));
    assert_eq!(a, b);
    assert!(!String::from_utf8(a).unwrap().contains("elapsed_s"));
}

#[test]
fn events_on_stdout_move_the_human_output_to_stderr() {
    let wasm = suite("samplelayers");
    let r = leakhost(["run", wasm.to_str().unwrap(), "--events", "-"]);
    assert_eq!(r.status, 0);
    assert!(r.stdout.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()), "{}", r.stdout);
    assert!(r.stderr.contains("Total: 321 tests, 0 failures"), "{}", r.stderr);
}

#[test]
fn run_started_names_the_engine_the_jobs_and_the_options() {
    let (_, events) = stream("samplelayers", "engine.jsonl", &["--engine", "pulley", "--seed", "7", "-j2"]);
    let started = &events[0];
    assert_eq!(started["execution"], serde_json::json!({"jobs": 2, "engine": "pulley"}), "{started}");
    assert_eq!(started["options"]["seed"].as_u64(), Some(7), "{started}");
    let (_, events) = stream("samplelayers", "engine-default.jsonl", &["-N3", "-r"]);
    let started = &events[0];
    assert_eq!(started["execution"]["engine"], "cranelift");
    let options = &started["options"];
    assert_eq!((options["repeat"].as_u64(), options["measure"].as_bool()), (Some(3), Some(true)), "{started}");
}
