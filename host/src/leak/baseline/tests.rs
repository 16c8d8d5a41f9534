use super::*;
use crate::leak::LeakingTest;
use crate::leak::Shape;

fn key() -> RunKey {
    RunKey {
        schema: "leakhost-report".into(),
        version: 1,
        suites: vec!["leak.wasm".into()],
        repeat: 4,
        measure: true,
        warmup: 1,
        stop_on_error: false,
    }
}

fn verdict(layer: &str, blocks: i64, bytes: i64) -> Verdict {
    let growth = vec![
        Growth::from_deltas(Metric::Blocks, vec![blocks; 3]),
        Growth::from_deltas(Metric::Bytes, vec![bytes, bytes + 8, bytes]),
    ];
    Verdict { shape: Shape::Leaks, layer: layer.into(), counted: 3, growth, tests: Vec::new() }
}

/// A report as `--json` writes it, as far as a baseline reads it.
fn report(key: &RunKey, leaks: &[Verdict]) -> String {
    serde_json::json!({
        "schema": key.schema, "version": key.version,
        "options": {"repeat": key.repeat, "measure": key.measure, "warmup": key.warmup, "stop_on_error": key.stop_on_error},
        "suites": key.suites.iter().map(|s| serde_json::json!({"name": s, "layers": []})).collect::<Vec<_>>(),
        "leaks": leaks, "totals": null,
    })
    .to_string()
}

#[test]
fn only_new_and_faster_leaks_fail_and_improvements_are_listed() {
    let baseline =
        Baseline::parse(&report(&key(), &[verdict("A", 1, 32), verdict("B", 2, 64), verdict("C", 1, 8)])).unwrap();
    let now = [verdict("A", 1, 32), verdict("B", 1, 64), verdict("D", 1, 8), verdict("E", 3, 8)];
    let Comparison::Compared(diff) = baseline.compare(&key(), &now) else { panic!("incomparable") };
    assert_eq!(diff.unchanged, vec![GuestText::from("A")]);
    assert_eq!(diff.slower.len(), 1);
    assert_eq!(diff.slower[0].1, vec![Change { metric: "blocks".into(), was: Some(2), now: Some(1) }]);
    assert_eq!(diff.fixed, vec![GuestText::from("C")]);
    assert_eq!(diff.new, vec![GuestText::from("D"), GuestText::from("E")]);
    assert_eq!(diff.failing().count(), 2);

    let faster = [verdict("A", 2, 32)];
    let Comparison::Compared(diff) = baseline.compare(&key(), &faster) else { panic!("incomparable") };
    assert_eq!(diff.faster[0].1, vec![Change { metric: "blocks".into(), was: Some(1), now: Some(2) }]);
    assert_eq!(diff.failing().collect::<Vec<_>>(), vec![&GuestText::from("A")]);
}

#[test]
fn a_leak_explained_only_by_tests_compares_by_their_sum() {
    let growth = vec![Growth::from_deltas(Metric::Blocks, vec![1, 1])];
    let tests = vec![
        LeakingTest { test: "t1".into(), growth: growth.clone() },
        LeakingTest { test: "t2".into(), growth: growth.clone() },
    ];
    let only_tests = Verdict { shape: Shape::Leaks, layer: "L".into(), counted: 2, growth: Vec::new(), tests };
    let baseline = Baseline::parse(&report(&key(), std::slice::from_ref(&only_tests))).unwrap();
    let Comparison::Compared(diff) = baseline.compare(&key(), &[only_tests]) else { panic!("incomparable") };
    assert_eq!(diff.unchanged, vec![GuestText::from("L")]);
}

#[test]
fn another_suite_version_or_option_set_is_not_compared() {
    type Change = fn(&mut RunKey);
    let cases: [(Change, &str); 4] = [
        (|k| k.suites = vec!["other.wasm".into()], "it is of other.wasm, this run of leak.wasm"),
        (|k| k.version = 7, "it has schema version 7, this leakhost writes version 1"),
        (|k| k.repeat = 6, "it was run with -N 6 --warmup 1 -r, this run with -N 4 --warmup 1 -r"),
        (|k| k.schema = "leakhost-events".into(), "it is not a leakhost JSON report"),
    ];
    for (change, expected) in cases {
        let mut other = key();
        change(&mut other);
        let baseline = Baseline::parse(&report(&other, &[])).unwrap();
        match baseline.compare(&key(), &[]) {
            Comparison::Incomparable(reason) => assert!(reason.starts_with(expected), "{reason}"),
            Comparison::Compared(diff) => panic!("compared: {diff:?}"),
        }
    }
    assert!(Baseline::parse("{not json").unwrap_err().starts_with("not JSON: "));
}
