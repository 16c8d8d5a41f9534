//! The event contract: everything a run reports, as owned, serialisable values.
//!
//! The runner emits the whole lifecycle (run, suite, layer, iteration, test, verdict,
//! run finished or aborted) and reporters render these events and nothing else. Every
//! event names its suite, layer and test by stable id and by name, so a consumer never
//! has to rebuild the run's structure from event order. docs/events.md describes it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::options::Execution;
use super::{Outcome, RunOptions};
use crate::leak::policy::{LayerPolicy, PolicySources, PolicySummary};
use crate::leak::stacks::LeakStacks;
use crate::leak::{Delta, Snapshot, Verdict};
use crate::plan::SelectionRecord;
use crate::sandbox::CapturedOutput;
use crate::text::GuestText;

/// A suite's position among the run's targets, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SuiteId(pub u32);

/// A layer's index in its suite's layer graph: the guest's layers in declaration
/// order, then the unit-test layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LayerId(pub u32);

/// A test's index in its suite's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TestId(pub u32);

/// A layer as events name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// Its id.
    pub id: LayerId,
    /// Its name.
    pub name: GuestText,
}

/// A test as events name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestRef {
    /// Its id.
    pub id: TestId,
    /// Its name.
    pub name: GuestText,
}

/// Why the runner replaced the instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", content = "after", rename_all = "snake_case")]
pub enum FreshReason {
    /// A layer that cannot be torn down had to go.
    NoTearDown(GuestText),
    /// A test or hook trapped: the test's or the layer's name.
    Trap(GuestText),
}

/// How a layer hook went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "message", rename_all = "snake_case")]
pub enum HookOutcome {
    /// It ran (or there was none to run).
    Ok,
    /// It failed, with the message.
    Failed(GuestText),
    /// The layer cannot be torn down.
    NotSupported,
}

/// What a measured test changed, phase by phase, when its layer has per-test hooks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    /// The layers' testSetUp hooks.
    pub test_set_up: Delta,
    /// The test body.
    pub body: Delta,
    /// The layers' testTearDown hooks.
    pub test_tear_down: Delta,
}

/// Test counts of one iteration or of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// A suite's or the whole run's result, as zope's `Total:` line counts it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Wall time.
    #[serde(rename = "elapsed_s", serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub elapsed: Duration,
    /// Verdicts of the layers that leak.
    pub leaks: Vec<Verdict>,
    /// Verdicts of the layers still undecided at `--max-iterations`.
    pub undecided: Vec<Verdict>,
    /// The leaking layers the policy does not excuse (every leaking layer without a policy):
    /// those that fail `--fail-on-leak`.
    pub unexcused: Vec<GuestText>,
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
        self.undecided.extend(other.undecided);
        self.unexcused.extend(other.unexcused);
    }

    pub(super) fn add(&mut self, counts: &Counts) {
        self.failures += counts.failures;
        self.errors += counts.errors;
        self.skipped += counts.skipped;
    }
}

/// The options and totals a run starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunStart {
    /// How many suites.
    pub suites: usize,
    /// Layers with selected tests, over all suites.
    pub layers: usize,
    /// Selected tests per iteration, over all suites.
    pub tests: usize,
    /// The run options: everything that decides what the run measures and concludes.
    pub options: RunOptions,
    /// How it is carried out (`-j`, `--engine`).
    pub execution: Execution,
    /// Which tests were selected.
    pub selection: SelectionRecord,
    /// Where the leak policy came from.
    pub policy: PolicySources,
}

/// Something that happened during a run; reporters render these and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run begins (boxed: it is large and comes once).
    RunStarted(Box<RunStart>),
    /// A suite begins.
    SuiteStarted {
        /// The suite.
        suite: SuiteId,
        /// Its file name.
        name: String,
        /// Layers with selected tests.
        layers: usize,
        /// Selected tests per iteration.
        tests: usize,
    },
    /// The tests of a layer are about to run.
    LayerStarted {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
    },
    /// A layer was set up (or failed to be).
    SetUp {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
        /// The planned layer this was done for (`None`: the final tear-down of left-over layers).
        during: Option<LayerId>,
        /// How it went.
        #[serde(flatten)]
        outcome: HookOutcome,
        /// How long it took.
        #[serde(rename = "elapsed_s", serialize_with = "seconds", deserialize_with = "from_seconds")]
        elapsed: Duration,
        /// Re-done in a fresh instance after a trap, not part of zope's layer sequence.
        replay: bool,
        /// What the hook wrote.
        output: CapturedOutput,
    },
    /// A layer was torn down (or could not be).
    TearDown {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
        /// The planned layer this was done for (`None`: the final tear-down of left-over layers).
        during: Option<LayerId>,
        /// How it went.
        #[serde(flatten)]
        outcome: HookOutcome,
        /// How long it took.
        #[serde(rename = "elapsed_s", serialize_with = "seconds", deserialize_with = "from_seconds")]
        elapsed: Duration,
        /// What the hook wrote.
        output: CapturedOutput,
    },
    /// The runner continues in a fresh instance.
    FreshInstance {
        /// The suite.
        suite: SuiteId,
        /// The planned layer this happened in (`None`: the final tear-down of left-over layers).
        during: Option<LayerId>,
        /// Why.
        #[serde(flatten)]
        reason: FreshReason,
    },
    /// An iteration of a layer's tests starts.
    IterationStarted {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
        /// From 1.
        iteration: u32,
        /// Iterations planned (`-N`); an iteration past them was added to decide a verdict.
        planned: u32,
    },
    /// A test is about to run.
    TestStarted {
        /// The suite.
        suite: SuiteId,
        /// The layer (named by the `LayerStarted` before it; ids keep per-test events small).
        layer: LayerId,
        /// The test.
        test: TestRef,
        /// From 1.
        iteration: u32,
    },
    /// A test finished.
    TestFinished {
        /// The suite.
        suite: SuiteId,
        /// The layer (named by the `LayerStarted` before it).
        layer: LayerId,
        /// The test.
        test: TestRef,
        /// From 1.
        iteration: u32,
        /// How it went.
        #[serde(flatten)]
        outcome: Outcome,
        /// Everything it wrote.
        output: CapturedOutput,
        /// Wall time, hooks included.
        #[serde(rename = "elapsed_s", serialize_with = "seconds", deserialize_with = "from_seconds")]
        elapsed: Duration,
        /// What the test changed, its per-test hooks included, when it was measured and
        /// the instance survived (boxed, as every sizeable field: see `an_event_stays_small`).
        delta: Option<Box<Delta>>,
        /// The same change split by phase, when the layer has per-test hooks.
        phases: Option<Box<Phases>>,
    },
    /// An iteration of a layer finished.
    IterationFinished {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
        /// From 1.
        iteration: u32,
        /// Iterations planned (`-N`).
        planned: u32,
        /// Its counts.
        counts: Counts,
        /// Wall time.
        #[serde(rename = "elapsed_s", serialize_with = "seconds", deserialize_with = "from_seconds")]
        elapsed: Duration,
        /// The counters at its end, when measuring.
        snapshot: Option<Box<Snapshot>>,
        /// The change since the end of the previous iteration (or of set-up), when
        /// measuring and no fresh instance came in between.
        delta: Option<Box<Delta>>,
        /// The instance was replaced during it (or it was cut short), so its numbers do
        /// not continue the previous ones.
        broken: bool,
    },
    /// A layer's leak verdict, after its last iteration, when measuring.
    Verdict {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
        /// The verdict (which may be that nothing leaks); boxed, as every sizeable field.
        verdict: Box<Verdict>,
    },
    /// Where a leaking layer's leaked blocks were allocated: right after its verdict,
    /// for every layer whose verdict leaks (unless `--no-stacks`).
    LeakStacks {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
        /// The blocks grouped by stack, and notes on what limits them.
        #[serde(flatten)]
        stacks: Box<LeakStacks>,
    },
    /// What the leak policy (allowances, baseline) makes of a leaking layer: after its
    /// verdict and stacks, when the run has a policy.
    LeakPolicy {
        /// The suite.
        suite: SuiteId,
        /// The layer.
        layer: LayerRef,
        /// The outcome.
        #[serde(flatten)]
        policy: Box<LayerPolicy>,
    },
    /// The policy's results for the whole run (stale allowances, fixed layers), after the
    /// last suite, when the run has a policy.
    PolicyFinished {
        /// The results.
        #[serde(flatten)]
        summary: Box<PolicySummary>,
    },
    /// `-x` stops the run.
    Stopped {
        /// The suite.
        suite: SuiteId,
        /// What failed: a test's name, or `Layer: NAME.setUp`.
        after: GuestText,
    },
    /// The final tear-down of what is still set up begins.
    TearingDownLeftOvers {
        /// The suite.
        suite: SuiteId,
    },
    /// A suite's layers are done.
    SuiteFinished {
        /// The suite.
        suite: SuiteId,
        /// Its totals.
        summary: Box<Summary>,
    },
    /// The whole run is over (all suites).
    RunFinished {
        /// Totals.
        summary: Box<Summary>,
    },
    /// The run cannot go on (the guest broke the ABI or could not be restarted);
    /// nothing follows.
    RunAborted {
        /// What went wrong, one line.
        reason: GuestText,
    },
}

/// Where a per-test event happened: all it names but the test's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TestAt {
    /// The suite.
    pub suite: SuiteId,
    /// The layer.
    pub layer: LayerId,
    /// The test.
    pub test: TestId,
    /// From 1.
    pub iteration: u32,
}

impl TestAt {
    /// The `TestStarted` event of the test here, named `name`.
    pub fn started(self, name: GuestText) -> Event {
        let TestAt { suite, layer, test, iteration } = self;
        Event::TestStarted { suite, layer, test: TestRef { id: test, name }, iteration }
    }
}

/// A `TestFinished` before it is made an event: the test's name is still borrowed.
#[derive(Debug)]
pub struct TestEnd<'n> {
    /// Where.
    pub at: TestAt,
    /// The test's name.
    pub name: &'n GuestText,
    /// How it went.
    pub outcome: Outcome,
    /// Everything it wrote.
    pub output: CapturedOutput,
    /// Wall time, hooks included.
    pub elapsed: Duration,
    /// What it changed, when measured.
    pub delta: Option<Box<Delta>>,
    /// The change split by phase.
    pub phases: Option<Box<Phases>>,
}

impl TestEnd<'_> {
    /// The event.
    pub fn into_event(self) -> Event {
        let TestEnd { at: TestAt { suite, layer, test, iteration }, name, outcome, output, elapsed, delta, phases } =
            self;
        let test = TestRef { id: test, name: name.clone() };
        Event::TestFinished { suite, layer, test, iteration, outcome, output, elapsed, delta, phases }
    }

    /// Whether it passed silently and unmeasured, as most tests do: such an end says no
    /// more than its place and time.
    pub fn is_quiet_pass(&self) -> bool {
        self.outcome == Outcome::Pass && self.output.is_empty() && self.delta.is_none() && self.phases.is_none()
    }
}

/// Receives events as they happen.
pub trait EventSink {
    /// Handles one event.
    fn emit(&mut self, event: &Event);

    /// Handles an event its emitter has no more use for: what the runner calls. A sink
    /// that keeps events overrides it to keep this one without a copy.
    fn send(&mut self, event: Event) {
        self.emit(&event);
    }

    /// Handles the `TestStarted` of the test at `at`, named `name`: what the runner calls
    /// for it. A sink that keeps events in a form of its own (a `-j` worker's record)
    /// overrides this and [`Self::test_finished`] to keep the two events of most tests
    /// without making them, and so without cloning the name.
    fn test_started(&mut self, at: TestAt, name: &GuestText) {
        self.send(at.started(name.clone()));
    }

    /// Handles a `TestFinished`, as [`Self::test_started`].
    fn test_finished(&mut self, end: TestEnd<'_>) {
        self.send(end.into_event());
    }
}

/// Drops every event: for the parts of a `-j` worker's run that the replay re-derives.
pub(super) struct Discard;

impl EventSink for Discard {
    fn emit(&mut self, _: &Event) {}
}

/// Durations serialise as seconds, the unit of every `elapsed_s` field.
pub(crate) fn seconds<S: serde::Serializer>(elapsed: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(elapsed.as_secs_f64())
}

/// Reads [`seconds`] back; a stream written with `--no-timings` has none (zero), and a
/// hostile one cannot make a negative or endless duration.
pub(crate) fn from_seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Ok(Duration::try_from_secs_f64(secs).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    /// A run emits a few events per test and iteration, and `-j` keeps a layer's events
    /// until they are replayed: sizeable fields are boxed (most events leave them empty),
    /// so that an event is a couple of cache lines, not four.
    #[test]
    fn an_event_stays_small() {
        let size = std::mem::size_of::<super::Event>();
        assert!(size <= 128, "an event takes {size} bytes");
    }
}
