//! A `-j` worker's record of a layer's body events, kept until the replay reaches the layer.
//!
//! Most of a body is a test that passed silently and unmeasured: a `TestStarted` and its
//! `TestFinished`, 240 bytes as events. Such a pair is kept as its ids and time (a sixth
//! of that) and rebuilt by the replay, so a large layer's record stays in a core's cache
//! and costs few page faults. A start that is not such a pair's is kept as its ids too;
//! every other event is kept whole. The runner hands a test's events over unmade
//! ([`EventSink::test_started`], [`EventSink::test_finished`]), so a worker never makes
//! (nor clones the name of, nor drops) the two events of a quiet pass: the replay makes them once.

use std::time::Duration;

use super::super::event::{Event, EventSink, TestAt, TestEnd};
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

/// Records a layer's body, pairing each `TestStarted` with the end after it.
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

    /// Keeps `event`, which is not one of a test's own (those come to [`Self::started`]
    /// and [`Self::finished`]).
    pub fn keep(&mut self, event: Event) {
        self.flush_started();
        self.entries.push(Recorded::Event(Box::new(event)));
    }

    /// Keeps the start of the test at `at`.
    pub fn started(&mut self, at: TestAt) {
        self.flush_started();
        self.started = Some(at);
    }

    /// Keeps a test's end: with its start as one small entry when it passed quietly.
    pub fn finished(&mut self, end: TestEnd<'_>) {
        if self.started == Some(end.at) && end.is_quiet_pass() {
            self.started = None;
            self.entries.push(Recorded::Passed { at: end.at, elapsed: end.elapsed });
        } else {
            self.keep(end.into_event());
        }
    }

    fn flush_started(&mut self) {
        if let Some(at) = self.started.take() {
            self.entries.push(Recorded::Started(at));
        }
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
            &Recorded::Started(at) => sink.test_started(at, cx.test_name(at.test.0)),
            &Recorded::Passed { at, elapsed } => {
                let name = cx.test_name(at.test.0);
                sink.test_started(at, name);
                let (output, delta, phases) = (CapturedOutput::default(), None, None);
                sink.test_finished(TestEnd { at, name, outcome: Outcome::Pass, output, elapsed, delta, phases });
            }
        }
    }
}

#[cfg(test)]
mod tests;
