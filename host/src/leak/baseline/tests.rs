use super::*;
use crate::leak::{LeakingTest, Metric, Shape};

fn key() -> RunKey {
    RunKey { suites: vec!["leak.wasm".into()], repeat: 4, measure: true, warmup: 1, stop_on_error: false }
}

fn verdict(layer: &str, blocks: i64, bytes: i64) -> Verdict {
    let growth = vec![
        Growth::from_deltas(Metric::Blocks, vec![blocks; 3]),
        Growth::from_deltas(Metric::Bytes, vec![bytes, bytes + 8, bytes]),
    ];
    Verdict {
        shape: Shape::Leaks,
        layer: layer.into(),
        counted: 3,
        growth,
        tests: Vec::new(),
        evidence: Default::default(),
    }
}

fn baseline(leaks: &[Verdict]) -> Baseline {
    Baseline::new(key(), leaks.iter().map(|v| ("leak.wasm".to_string(), v)))
}

#[test]
fn only_new_and_faster_leaks_fail_and_improvements_are_listed() {
    let baseline = baseline(&[verdict("A", 1, 32), verdict("B", 2, 64), verdict("C", 1, 8)]);
    assert_eq!(baseline.incomparable_with(&key()), None);
    assert_eq!(baseline.compare("leak.wasm", &verdict("A", 1, 32)), BaselineStatus::Unchanged);
    let improved = baseline.compare("leak.wasm", &verdict("B", 1, 64));
    let blocks = |was, now| Change { metric: "blocks".into(), was: Some(was), now: Some(now) };
    assert_eq!(improved, BaselineStatus::Improved { changes: vec![blocks(2, 1)] });
    assert!(improved.no_worse());
    assert_eq!(baseline.compare("leak.wasm", &verdict("D", 1, 8)), BaselineStatus::New);
    assert_eq!(baseline.compare("other.wasm", &verdict("A", 1, 32)), BaselineStatus::New, "keyed by suite too");
    let faster = baseline.compare("leak.wasm", &verdict("A", 2, 32));
    assert_eq!(faster, BaselineStatus::Faster { changes: vec![blocks(1, 2)] });
    assert!(!faster.no_worse() && !BaselineStatus::New.no_worse());
    let leaking: BTreeSet<(String, String)> =
        ["A", "B", "D"].iter().map(|l| ("leak.wasm".to_string(), l.to_string())).collect();
    assert_eq!(baseline.fixed(&leaking), vec![GuestText::from("C")]);
}

#[test]
fn a_leak_explained_only_by_tests_compares_by_their_sum() {
    let growth = vec![Growth::from_deltas(Metric::Blocks, vec![1, 1])];
    let tests = vec![
        LeakingTest { test: "t1".into(), growth: growth.clone() },
        LeakingTest { test: "t2".into(), growth: growth.clone() },
    ];
    let only_tests = Verdict {
        shape: Shape::Leaks,
        layer: "L".into(),
        counted: 2,
        growth: Vec::new(),
        tests,
        evidence: Default::default(),
    };
    let baseline = baseline(std::slice::from_ref(&only_tests));
    assert_eq!(baseline.compare("leak.wasm", &only_tests), BaselineStatus::Unchanged);
}

#[test]
fn other_suites_or_option_sets_are_not_compared() {
    type Edit = fn(&mut RunKey);
    let cases: [(Edit, &str); 3] = [
        (|k| k.suites = vec!["other.wasm".into()], "it is of leak.wasm, this run of other.wasm"),
        (|k| k.repeat = 6, "it was run with -N 4 --warmup 1 -r, this run with -N 6 --warmup 1 -r"),
        (|k| k.stop_on_error = true, "it was run with -N 4 --warmup 1 -r, this run with -N 4 --warmup 1 -r -x"),
    ];
    for (edit, expected) in cases {
        let mut run = key();
        edit(&mut run);
        assert_eq!(baseline(&[]).incomparable_with(&run).as_deref(), Some(expected));
    }
    let unreadable = Baseline::incomparable("it has schema version 2, this leakhost writes version 3".into());
    assert_eq!(
        unreadable.incomparable_with(&key()).as_deref(),
        Some("it has schema version 2, this leakhost writes version 3")
    );
}
