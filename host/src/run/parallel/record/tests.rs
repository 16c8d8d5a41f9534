use std::time::Duration;

use super::*;
use crate::abi::{Manifest, TestDecl};
use crate::leak::Delta;
use crate::plan::{Plan, Selection};
use crate::run::event::{LayerId, SuiteId, TestId, TestRef};
use crate::text::GuestText;

/// Collects what it is sent.
#[derive(Default)]
struct Collect(Vec<Event>);

impl EventSink for Collect {
    fn emit(&mut self, event: &Event) {
        self.0.push(event.clone());
    }
}

fn plan() -> Plan {
    let tests = (0..3).map(|i| TestDecl { name: format!("t{i}").into(), layer: None }).collect();
    Plan::select(&Manifest { layers: Vec::new(), tests }, &Selection::default())
}

fn test_ref(cx: Scope<'_>, test: u32) -> TestRef {
    TestRef { id: TestId(test), name: cx.test_name(test).clone() }
}

fn started(cx: Scope<'_>, test: u32, iteration: u32) -> Event {
    Event::TestStarted { suite: cx.suite, layer: LayerId(0), test: test_ref(cx, test), iteration }
}

fn finished(cx: Scope<'_>, test: u32, iteration: u32, outcome: Outcome, delta: Option<Delta>) -> Event {
    Event::TestFinished {
        suite: cx.suite,
        layer: LayerId(0),
        test: test_ref(cx, test),
        iteration,
        outcome,
        output: CapturedOutput::default(),
        elapsed: Duration::from_micros(u64::from(test) + 7),
        delta: delta.map(Box::new),
        phases: None,
    }
}

/// Gives `record` an event as the runner does: a test's own unmade, any other whole.
fn hand_over(record: &mut BodyRecord, event: Event) {
    match event {
        Event::TestStarted { suite, layer, test, iteration } => {
            record.started(TestAt { suite, layer, test: test.id, iteration })
        }
        Event::TestFinished { suite, layer, test, iteration, outcome, output, elapsed, delta, phases } => {
            let at = TestAt { suite, layer, test: test.id, iteration };
            record.finished(TestEnd { at, name: &test.name, outcome, output, elapsed, delta, phases })
        }
        other => record.keep(other),
    }
}

#[test]
fn a_replayed_record_is_the_events_it_kept() {
    let plan = plan();
    let cx = Scope { suite: SuiteId(2), name: "s.wasm", plan: &plan, replay: &crate::run::trace::TracedReplay };
    let measured = Delta { blocks: 1, bytes: 16, ..Delta::default() };
    let events = vec![
        started(cx, 0, 1),
        finished(cx, 0, 1, Outcome::Pass, None),
        started(cx, 1, 1),
        finished(cx, 1, 1, Outcome::Failure(GuestText::from("no")), None),
        started(cx, 2, 1),
        finished(cx, 2, 1, Outcome::Pass, Some(measured)),
        // A start followed by something else, then a start the record ends on.
        started(cx, 0, 2),
        Event::Stopped { suite: cx.suite, after: GuestText::from("t0") },
        started(cx, 1, 2),
    ];
    let mut record = BodyRecord::new(Vec::new());
    for event in events.clone() {
        hand_over(&mut record, event);
    }
    let entries = record.finish();
    // Only the silent, unmeasured pass is compacted.
    assert_eq!(entries.iter().filter(|e| matches!(e, Recorded::Passed { .. })).count(), 1);
    assert_eq!(entries.iter().filter(|e| matches!(e, Recorded::Started(_))).count(), 4, "starts kept as ids");
    assert_eq!(entries.len(), events.len() - 1);
    let mut replayed = Collect::default();
    replay(&entries, cx, &mut replayed);
    assert_eq!(replayed.0, events);
}

#[test]
fn an_entry_is_smaller_than_an_event() {
    assert!(std::mem::size_of::<Recorded>() * 4 <= std::mem::size_of::<Event>() * 2);
}
