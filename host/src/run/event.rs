//! What a run reports: events as they happen, and the counts they add up to.

use std::time::Duration;

use crate::leak::{Delta, Snapshot, Verdict};
use crate::sandbox::CapturedOutput;

use super::Outcome;

/// Why the runner replaced the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreshReason<'a> {
    /// A layer that cannot be torn down had to go.
    NoTearDown(&'a str),
    /// A test or hook trapped.
    Trap(&'a str),
}

/// How a layer hook went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookOutcome {
    /// It ran (or there was none to run).
    Ok,
    /// It failed, with the message.
    Failed(String),
    /// The layer cannot be torn down.
    NotSupported,
}

/// Test counts of one iteration or of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Tests run.
    pub tests: usize,
    /// Failures.
    pub failures: usize,
    /// Errors.
    pub errors: usize,
    /// Skipped tests.
    pub skipped: usize,
}

impl Counts {
    pub(super) fn record(&mut self, outcome: &Outcome) {
        self.tests += 1;
        match outcome {
            Outcome::Pass => {}
            Outcome::Failure(_) => self.failures += 1,
            Outcome::Error(_) => self.errors += 1,
            Outcome::Skip(_) => self.skipped += 1,
        }
    }
}

/// The run's result, as zope's `Total:` line counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tests in the last iteration of each layer, summed.
    pub tests: usize,
    /// Failures over all iterations.
    pub failures: usize,
    /// Errors over all iterations, layer set-up and tear-down errors included.
    pub errors: usize,
    /// Skips over all iterations.
    pub skipped: usize,
    /// Layers whose tests ran.
    pub layers_run: usize,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Verdicts of the layers that leak.
    pub leaks: Vec<Verdict>,
}

impl Summary {
    /// Whether anything failed or errored.
    pub fn ok(&self) -> bool {
        self.failures == 0 && self.errors == 0
    }

    /// Adds another suite's totals (several targets make one run).
    pub fn absorb(&mut self, other: Summary) {
        self.tests += other.tests;
        self.failures += other.failures;
        self.errors += other.errors;
        self.skipped += other.skipped;
        self.layers_run += other.layers_run;
        self.elapsed += other.elapsed;
        self.leaks.extend(other.leaks);
    }

    pub(super) fn add(&mut self, counts: &Counts) {
        self.failures += counts.failures;
        self.errors += counts.errors;
        self.skipped += counts.skipped;
    }
}

/// Something that happened during a run; reporters render these and nothing else.
#[derive(Debug)]
pub enum Event<'a> {
    /// A suite starts (emitted when a run has several).
    SuiteStarted {
        /// The suite's file name.
        suite: &'a str,
    },
    /// The run stopped early because of `-x`.
    Stopped {
        /// The test that failed.
        after: &'a str,
    },
    /// The tests of a layer are about to run.
    LayerStarted {
        /// The layer.
        layer: &'a str,
    },
    /// A layer was set up (or failed to be).
    SetUp {
        /// The layer.
        layer: &'a str,
        /// How it went.
        outcome: &'a HookOutcome,
        /// How long it took.
        elapsed: Duration,
        /// Re-done in a fresh instance after a trap, not part of zope's layer sequence.
        replay: bool,
    },
    /// A layer was torn down (or could not be).
    TearDown {
        /// The layer.
        layer: &'a str,
        /// How it went.
        outcome: &'a HookOutcome,
        /// How long it took.
        elapsed: Duration,
    },
    /// The runner continues in a fresh instance.
    FreshInstance {
        /// Why.
        reason: FreshReason<'a>,
    },
    /// An iteration of a layer's tests starts.
    IterationStarted {
        /// The layer.
        layer: &'a str,
        /// 1-based.
        iteration: u32,
        /// Of how many.
        of: u32,
    },
    /// A test is about to run.
    TestStarted {
        /// The layer.
        layer: &'a str,
        /// The test.
        test: &'a str,
    },
    /// A test finished.
    TestFinished {
        /// The layer.
        layer: &'a str,
        /// The test.
        test: &'a str,
        /// 1-based iteration.
        iteration: u32,
        /// How it went.
        outcome: &'a Outcome,
        /// Everything it wrote.
        output: &'a CapturedOutput,
        /// Wall time, hooks included.
        elapsed: Duration,
        /// What the test itself changed, hooks included, when measuring and the instance survived.
        delta: Option<&'a Delta>,
    },
    /// An iteration of a layer finished.
    IterationFinished {
        /// The layer.
        layer: &'a str,
        /// 1-based.
        iteration: u32,
        /// Of how many.
        of: u32,
        /// Its counts.
        counts: Counts,
        /// Wall time.
        elapsed: Duration,
        /// The counters at its end, when measuring.
        snapshot: Option<&'a Snapshot>,
        /// The change since the end of the previous iteration (or of set-up), when
        /// measuring and no fresh instance came in between.
        delta: Option<&'a Delta>,
        /// The instance was replaced during it, so its snapshot does not continue the previous one.
        broken: bool,
    },
    /// A layer's leak verdict, after its last iteration, when measuring.
    Verdict {
        /// The verdict (which may be that nothing leaks).
        verdict: &'a Verdict,
    },
    /// The final tear-down of what is still set up begins.
    TearingDownLeftOvers,
    /// The run cannot go on (the guest broke the ABI or could not be restarted);
    /// no [`Event::Finished`] follows.
    Aborted {
        /// What went wrong.
        reason: &'a str,
    },
    /// The whole run is over (all suites).
    Finished {
        /// Totals.
        summary: &'a Summary,
    },
}

/// Receives events as they happen.
pub trait EventSink {
    /// Handles one event.
    fn emit(&mut self, event: &Event<'_>);
}
