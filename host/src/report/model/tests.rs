use super::*;
use crate::leak::{Growth, Metric, Shape};
use crate::plan::Partition;
use crate::report::{read_json, to_json};
use crate::run::{Event, EventSink, HookOutcome, LayerRef, RunStart, Summary, TestRef};

fn layer(id: u32, name: &str) -> LayerRef {
    LayerRef { id: LayerId(id), name: name.into() }
}

fn test(id: u32) -> TestRef {
    TestRef { id: TestId(id), name: format!("t{id}").into() }
}

fn finished(layer: u32, t: u32, iteration: u32) -> Event {
    Event::TestFinished {
        suite: SuiteId(0),
        layer: LayerId(layer),
        test: test(t),
        iteration,
        outcome: Outcome::Pass,
        output: CapturedOutput::default(),
        elapsed: Default::default(),
        delta: Some(Box::new(Delta { blocks: 1, ..Delta::default() })),
        phases: None,
    }
}

fn started(partition: Option<Partition>) -> Event {
    let selection = SelectionRecord { partition, ..SelectionRecord::default() };
    let options = RunOptions { repeat: 2, measure: true, ..RunOptions::default() };
    Event::RunStarted(Box::new(RunStart {
        suites: 1,
        layers: 2,
        tests: 2,
        options,
        execution: Default::default(),
        selection,
        policy: Default::default(),
    }))
}

fn leaking() -> Verdict {
    let growth = vec![Growth::from_deltas(Metric::Blocks, vec![1; 8])];
    Verdict {
        shape: Shape::Leaks,
        layer: "B".into(),
        counted: 8,
        growth,
        tests: Vec::new(),
        evidence: Default::default(),
    }
}

/// A run of layers A (test 0) and B (test 1), one iteration each, B leaking; the events of
/// the two layers are interleaved as no runner emits them, to show nothing depends on order.
fn record(partition: Option<Partition>) -> RunReport {
    let mut recorder = Recorder::new(false);
    let (a, b) = (layer(0, "A"), layer(1, "B"));
    let iteration =
        |l: &LayerRef| Event::IterationStarted { suite: SuiteId(0), layer: l.clone(), iteration: 1, planned: 1 };
    let set_up = |l: &LayerRef, during: u32| Event::SetUp {
        suite: SuiteId(0),
        layer: l.clone(),
        during: Some(LayerId(during)),
        outcome: HookOutcome::Ok,
        elapsed: Default::default(),
        replay: false,
        output: CapturedOutput::default(),
    };
    let events = [
        started(partition),
        Event::SuiteStarted { suite: SuiteId(0), name: "s.wasm".into(), layers: 2, tests: 2 },
        Event::LayerStarted { suite: SuiteId(0), layer: a.clone() },
        Event::LayerStarted { suite: SuiteId(0), layer: b.clone() },
        set_up(&b, 1),
        set_up(&a, 0),
        iteration(&b),
        iteration(&a),
        finished(1, 1, 1),
        finished(0, 0, 1),
        Event::Verdict { suite: SuiteId(0), layer: b.clone(), verdict: Box::new(leaking()) },
        Event::RunFinished { summary: Box::new(Summary { tests: 2, leaks: vec![leaking()], ..Summary::default() }) },
    ];
    events.iter().for_each(|e| recorder.emit(e));
    recorder.into_report()
}

#[test]
fn events_land_where_their_ids_say_whatever_their_order() {
    let report = record(None);
    let layers = &report.suites[0].layers;
    assert_eq!((layers[0].name.raw(), layers[1].name.raw()), ("A", "B"));
    assert_eq!(layers[0].iterations[0].tests[0].id, TestId(0));
    assert_eq!(layers[1].iterations[0].tests[0].id, TestId(1));
    assert!(matches!(&layers[0].steps[0], Step::SetUp { layer, .. } if layer.raw() == "A"));
    assert!(layers[1].verdict.as_ref().is_some_and(Verdict::leaks) && layers[0].verdict.is_none());
    assert!(layers[1].leak_fails() && !layers[0].leak_fails());
}

#[test]
fn a_record_reads_back_from_its_json_unchanged() {
    let mut report = record(None);
    let text = to_json(&report);
    // How the run was carried out is not written: no result depends on it.
    report.execution = None;
    assert_eq!(read_json(&text).expect("a report"), report);
    assert!(!text.contains("elapsed_s"), "no timings were kept");
}

#[test]
fn the_partitions_of_one_run_merge_and_other_runs_do_not() {
    let part = |index| record(Some(Partition { index, count: 2 }));
    let merged = merge(vec![part(2), part(1)]).expect("the two partitions merge");
    assert_eq!(merged.selection.partition, None);
    let layers: Vec<(&str, u32)> =
        merged.suites[0].layers.iter().map(|l| (l.name.raw(), l.partition.expect("marked").index)).collect();
    assert_eq!(layers, [("A", 1), ("A", 2), ("B", 1), ("B", 2)]);
    assert_eq!(merged.totals.as_ref().map(|t| t.tests), Some(4));
    assert_eq!(merged.leaks().count(), 2);

    assert!(matches!(merge(vec![part(1)]), Ok(one) if one.selection.partition.is_some()));
    let missing = merge(vec![part(1), record(Some(Partition { index: 3, count: 3 }))]).unwrap_err();
    assert!(matches!(missing, MergeError::Partitions(_)), "{missing}");
    let mut other = part(2);
    other.options.as_mut().expect("options").repeat = 9;
    assert!(matches!(merge(vec![part(1), other]), Err(MergeError::Mismatch { index: 2, .. })));
    assert!(matches!(merge(vec![record(None), part(2)]), Err(MergeError::Partitions(_))));
    assert_eq!(merge(Vec::new()), Err(MergeError::Empty));
}
