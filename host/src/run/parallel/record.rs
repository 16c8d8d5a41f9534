//! A `-j` worker's record of a layer's body events, kept until the replay reaches the layer.
//!
//! Most of a body is a test that passed silently and unmeasured: a `TestStarted` and its
//! `TestFinished`, 240 bytes as events. Such a pair is kept as its ids and time (a sixth
//! of that) and rebuilt by the replay, so a large layer's record stays in a core's cache
//! and costs few page faults. A start that is not such a pair's is kept as its ids too;
//! every other event is kept whole.

use std::time::Duration;

use super::super::event::{Event, EventSink, LayerId, SuiteId, TestId};
use super::super::layers::Scope;
use super::super::Outcome;
use crate::sandbox::CapturedOutput;

/// One recorded entry.
pub(super) enum Recorded {
    /// An event as it was emitted (boxed, so that the common entries below stay small).
    Event(Box<Event>),
    /// A `TestStarted` not followed by its silent pass: rebuilt from its ids.
    Started(TestAt),
    /// A test that passed, printed nothing and was not measured: its started and finished events.
    Passed {
        /// Which test, where.
        at: TestAt,
        /// Its wall time.
        elapsed: Duration,
    },
}

/// A test of one iteration, as its events name it, without its name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct TestAt {
    /// The suite.
    suite: SuiteId,
    /// The layer.
    layer: LayerId,
    /// The test.
    test: TestId,
    /// From 1.
    iteration: u32,
}

impl TestAt {
    fn started(self, cx: Scope<'_>) -> Event {
        let TestAt { suite, layer, test, iteration } = self;
        Event::TestStarted { suite, layer, test: cx.test(test.0), iteration }
    }
}

/// Records a layer's body, pairing each `TestStarted` with the event after it.
pub(super) struct BodyRecord {
    entries: Vec<Recorded>,
    /// A `TestStarted` whose next event decides how it is kept.
    started: Option<TestAt>,
}

impl BodyRecord {
    /// A record that writes into `buffer` (empty, with room reserved).
    pub fn new(buffer: Vec<Recorded>) -> Self {
        BodyRecord { entries: buffer, started: None }
    }

    /// Keeps `event`.
    pub fn keep(&mut self, event: Event) {
        // Matched by reference, and a start held as its ids: moving events of 120 bytes in
        // and out of the record cost more than the rest of keeping them.
        match &event {
            &Event::TestStarted { suite, layer, ref test, iteration } => {
                self.flush_started();
                self.started = Some(TestAt { suite, layer, test: test.id, iteration });
            }
            finished => match self.passed(finished) {
                Some(passed) => {
                    self.started = None;
                    self.entries.push(passed);
                }
                None => {
                    self.flush_started();
                    self.entries.push(Recorded::Event(Box::new(event)));
                }
            },
        }
    }

    fn flush_started(&mut self) {
        if let Some(at) = self.started.take() {
            self.entries.push(Recorded::Started(at));
        }
    }

    /// The compact entry for the held `TestStarted` and `finished`, when they make one.
    fn passed(&self, finished: &Event) -> Option<Recorded> {
        let &Event::TestFinished {
            suite,
            layer,
            ref test,
            iteration,
            outcome: Outcome::Pass,
            ref output,
            elapsed,
            delta: None,
            phases: None,
        } = finished
        else {
            return None;
        };
        let at = TestAt { suite, layer, test: test.id, iteration };
        (self.started == Some(at) && output.is_empty()).then_some(Recorded::Passed { at, elapsed })
    }

    /// The entries, in order.
    pub fn finish(mut self) -> Vec<Recorded> {
        self.flush_started();
        self.entries
    }
}

/// Emits the events `entries` stand for, in order, naming tests from `cx`'s plan.
pub(super) fn replay(entries: &[Recorded], cx: Scope<'_>, sink: &mut dyn EventSink) {
    for entry in entries {
        match entry {
            Recorded::Event(event) => sink.emit(event),
            &Recorded::Started(at) => sink.send(at.started(cx)),
            &Recorded::Passed { at, elapsed } => {
                sink.send(at.started(cx));
                let TestAt { suite, layer, test, iteration } = at;
                sink.send(Event::TestFinished {
                    suite,
                    layer,
                    test: cx.test(test.0),
                    iteration,
                    outcome: Outcome::Pass,
                    output: CapturedOutput::default(),
                    elapsed,
                    delta: None,
                    phases: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
