//! A `-j` worker's record of a layer's body events, kept until the replay reaches the layer.
//!
//! Most of a body is a test that passed silently and unmeasured: a `TestStarted` and its
//! `TestFinished`, 240 bytes as events. Such a pair is kept as its ids and time (a sixth
//! of that) and rebuilt by the replay, so a large layer's record stays in a core's cache
//! and costs few page faults; every other event is kept whole.

use std::time::Duration;

use super::super::event::{Event, EventSink, LayerId, SuiteId, TestId};
use super::super::layers::Scope;
use super::super::Outcome;
use crate::sandbox::CapturedOutput;

/// One recorded entry.
pub(super) enum Recorded {
    /// An event as it was emitted (boxed, so that the common entry below stays small).
    Event(Box<Event>),
    /// A test that passed, printed nothing and was not measured: its started and finished events.
    Passed {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerId,
        /// The test.
        test: TestId,
        /// From 1.
        iteration: u32,
        /// Its wall time.
        elapsed: Duration,
    },
}

/// Records a layer's body, pairing each `TestStarted` with the event after it.
pub(super) struct BodyRecord {
    entries: Vec<Recorded>,
    /// A `TestStarted` whose next event decides how it is kept.
    started: Option<Event>,
}

impl BodyRecord {
    /// A record that writes into `buffer` (empty, with room reserved).
    pub fn new(buffer: Vec<Recorded>) -> Self {
        BodyRecord { entries: buffer, started: None }
    }

    /// Keeps `event`.
    pub fn keep(&mut self, event: Event) {
        // Matched by reference: moving events of 120 bytes in and out of a tuple cost more
        // than the rest of keeping them.
        if let Some(passed) = self.passed(&event) {
            self.started = None;
            self.entries.push(passed);
            return;
        }
        if let Some(started) = self.started.take() {
            self.entries.push(Recorded::Event(Box::new(started)));
        }
        match event {
            Event::TestStarted { .. } => self.started = Some(event),
            event => self.entries.push(Recorded::Event(Box::new(event))),
        }
    }

    /// The compact entry for the held `TestStarted` and `finished`, when they make one.
    fn passed(&self, finished: &Event) -> Option<Recorded> {
        let Event::TestFinished {
            suite,
            layer,
            test,
            iteration,
            outcome: Outcome::Pass,
            output,
            elapsed,
            delta: None,
            phases: None,
        } = finished
        else {
            return None;
        };
        let Some(Event::TestStarted { test: started, iteration: at, .. }) = &self.started else { return None };
        (started.id == test.id && at == iteration && output.is_empty()).then_some(Recorded::Passed {
            suite: *suite,
            layer: *layer,
            test: test.id,
            iteration: *iteration,
            elapsed: *elapsed,
        })
    }

    /// The entries, in order.
    pub fn finish(mut self) -> Vec<Recorded> {
        if let Some(started) = self.started.take() {
            self.entries.push(Recorded::Event(Box::new(started)));
        }
        self.entries
    }
}

/// Emits the events `entries` stand for, in order, naming tests from `cx`'s plan.
pub(super) fn replay(entries: &[Recorded], cx: Scope<'_>, sink: &mut dyn EventSink) {
    for entry in entries {
        match entry {
            Recorded::Event(event) => sink.emit(event),
            &Recorded::Passed { suite, layer, test, iteration, elapsed } => {
                sink.send(Event::TestStarted { suite, layer, test: cx.test(test.0), iteration });
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
