//! The run's record: one typed model of a run (suites → layers → iterations → tests, with
//! verdicts, stacks and policy results), built once from the events and keyed by their
//! ids ([`Recorder`]). The JSON, JUnit and HTML reports render it; the JSON report is it,
//! serialized, and reads back into it (`--baseline`, `leakhost report`). docs/json-report.md
//! describes it field by field.

mod build;
mod merge;

use serde::{Deserialize, Serialize};

pub use build::Recorder;
pub use merge::{merge, MergeError};

use crate::leak::policy::{LayerPolicy, PolicySources, PolicySummary};
use crate::leak::stacks::LeakStacks;
use crate::leak::{Delta, Snapshot, Verdict};
use crate::plan::{Partition, SelectionRecord};
use crate::run::{Counts, Execution, LayerId, Outcome, Phases, RunOptions, SuiteId, TestId};
use crate::sandbox::CapturedOutput;
use crate::text::GuestText;

/// The `schema` field of every report.
pub const REPORT_SCHEMA: &str = "leakhost-report";
/// The `version` field; bumped on any incompatible change.
pub const REPORT_VERSION: u32 = 3;

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// Always [`REPORT_SCHEMA`].
    pub schema: String,
    /// [`REPORT_VERSION`].
    pub version: u32,
    /// The run options; `None` only in a report of a run that never started.
    pub options: Option<RunOptions>,
    /// Which tests were selected.
    pub selection: SelectionRecord,
    /// Where the leak policy came from.
    pub policy_files: PolicySources,
    /// One per target, in the order given.
    pub suites: Vec<SuiteReport>,
    /// The run's totals; `None` if it aborted.
    pub totals: Option<Totals>,
    /// What the leak policy made of the whole run, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicySummary>,
    /// Why the run stopped before its end, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<GuestText>,
    /// Wall time, unless `--no-timings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
    /// How the run was carried out (`-j`, `--engine`), for the page rendered by the run
    /// itself; not written, since no result depends on it.
    #[serde(skip)]
    pub execution: Option<Execution>,
}

impl RunReport {
    /// An empty report, before any event.
    pub fn new() -> Self {
        RunReport {
            schema: REPORT_SCHEMA.into(),
            version: REPORT_VERSION,
            options: None,
            selection: SelectionRecord::default(),
            policy_files: PolicySources::default(),
            suites: Vec::new(),
            totals: None,
            policy: None,
            aborted: None,
            elapsed_s: None,
            execution: None,
        }
    }

    /// The verdicts of the layers that leak, over all suites, in run order.
    pub fn leaks(&self) -> impl Iterator<Item = &Verdict> {
        self.layers().filter_map(|(_, l)| l.verdict.as_ref().filter(|v| v.leaks()))
    }

    /// Every layer of every suite, with its suite, in run order.
    pub fn layers(&self) -> impl Iterator<Item = (&SuiteReport, &LayerReport)> {
        self.suites.iter().flat_map(|s| s.layers.iter().map(move |l| (s, l)))
    }
}

impl Default for RunReport {
    fn default() -> Self {
        Self::new()
    }
}

/// A run's totals, as zope's `Total:` line counts them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Tests in the last iteration of each layer, summed.
    pub tests: usize,
    /// Failures over all iterations.
    pub failures: usize,
    /// Errors over all iterations, layer errors included.
    pub errors: usize,
    /// Skips over all iterations.
    pub skipped: usize,
    /// Layers whose tests ran.
    pub layers_run: usize,
}

/// One target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuiteReport {
    /// Its id: its position among the run's targets.
    pub id: SuiteId,
    /// The module's file name.
    pub name: String,
    /// Its layers with selected tests, in run order.
    pub layers: Vec<LayerReport>,
    /// The final tear-down of the layers still set up.
    pub left_over: Vec<Step>,
    /// Set when `-x` stopped the run in this suite: what failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_after: Option<GuestText>,
}

/// One layer's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Its id in the suite's layer graph.
    pub id: LayerId,
    /// Its name.
    pub name: GuestText,
    /// Set-ups, tear-downs and fresh instances done to run this layer, in order.
    pub steps: Vec<Step>,
    /// One per iteration that ran.
    pub iterations: Vec<IterationReport>,
    /// With `-r`: the leak verdict, also when nothing leaks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// For a leaking layer (unless `--no-stacks`): where its leaked blocks were allocated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<LeakStacks>,
    /// For a leaking layer of a run with a policy: what the policy made of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<LayerPolicy>,
    /// In a report merged from partitions (`leakhost report`): the partition this run of
    /// the layer was part of. Each partition ran the layer on its own, with its own verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
}

impl LayerReport {
    /// Whether its leak fails `--fail-on-leak` (it leaks, and no policy excuses it).
    pub fn leak_fails(&self) -> bool {
        self.verdict.as_ref().is_some_and(Verdict::leaks) && !self.policy.as_ref().is_some_and(|p| p.excused)
    }
}

/// A set-up, tear-down or fresh instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// A layer's setUp.
    SetUp {
        /// The layer set up.
        layer: GuestText,
        /// How it went.
        #[serde(flatten)]
        outcome: StepOutcome,
        /// Set up again in a fresh instance after a trap.
        replay: bool,
        /// What the hook wrote.
        #[serde(flatten)]
        output: Output,
        /// Wall time, unless `--no-timings`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elapsed_s: Option<f64>,
    },
    /// A layer's tearDown.
    TearDown {
        /// The layer torn down.
        layer: GuestText,
        /// How it went.
        #[serde(flatten)]
        outcome: StepOutcome,
        /// What the hook wrote.
        #[serde(flatten)]
        output: Output,
        /// Wall time, unless `--no-timings`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elapsed_s: Option<f64>,
    },
    /// The runner continued in a fresh instance.
    FreshInstance {
        /// `no_tear_down` or `trap`.
        reason: String,
        /// The layer or test that caused it.
        after: GuestText,
    },
}

/// How a layer hook went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// `ok`, `failed` or `not_supported`.
    pub outcome: String,
    /// The failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<GuestText>,
}

/// Captured output, left out when there was none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// What was written.
    #[serde(default, skip_serializing_if = "GuestText::is_empty")]
    pub output: GuestText,
    /// Bytes beyond the limit, dropped.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub output_dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl From<&CapturedOutput> for Output {
    fn from(output: &CapturedOutput) -> Self {
        Output { output: output.text.clone(), output_dropped: output.dropped }
    }
}

/// One iteration of a layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IterationReport {
    /// From 1.
    pub iteration: u32,
    /// Past `-N`: added to decide a verdict.
    pub added: bool,
    /// Its counts.
    pub counts: Counts,
    /// In the order they ran.
    pub tests: Vec<TestReport>,
    /// With `-r`: the counters at its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Snapshot>,
    /// With `-r`: the change since the previous iteration's end (or set-up's); absent
    /// when a fresh instance started during it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Delta>,
    /// A fresh instance started during it.
    pub broken: bool,
    /// Wall time, unless `--no-timings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
}

/// A test's outcome, as the report names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Passed.
    Pass,
    /// Skipped itself.
    Skip,
    /// An assertion did not hold.
    Failure,
    /// Anything else went wrong.
    Error,
}

impl Kind {
    /// The kind of an outcome.
    pub fn of(outcome: &Outcome) -> Kind {
        match outcome {
            Outcome::Pass => Kind::Pass,
            Outcome::Skip(_) => Kind::Skip,
            Outcome::Failure(_) => Kind::Failure,
            Outcome::Error(_) => Kind::Error,
        }
    }
}

/// One test in one iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestReport {
    /// Its id in the suite's manifest.
    pub id: TestId,
    /// Its name.
    pub name: GuestText,
    /// How it went.
    pub outcome: Kind,
    /// The message, absent on a pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<GuestText>,
    /// What it wrote.
    #[serde(flatten)]
    pub output: Output,
    /// What it changed, its per-test hooks included, when the run measured it (absent:
    /// not measured in this iteration, or the instance trapped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<TestDelta>,
    /// The same change split by phase, when the layer has per-test hooks and the run split it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Box<Phases>>,
    /// Wall time, hooks included, unless `--no-timings`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_s: Option<f64>,
}

/// A test's change: zero without a box of its own (a report keeps one per test and
/// iteration, and most are zero).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestDelta {
    /// Nothing changed.
    Zero,
    /// What changed.
    Changed(Box<Delta>),
}

impl TestDelta {
    /// `delta`, stored small.
    pub fn of(delta: &Delta) -> Self {
        match delta.is_zero() {
            true => TestDelta::Zero,
            false => TestDelta::Changed(Box::new(delta.clone())),
        }
    }

    /// Live blocks and bytes it changed.
    pub fn blocks_bytes(&self) -> (i64, i64) {
        match self {
            TestDelta::Zero => (0, 0),
            TestDelta::Changed(d) => (d.blocks, d.bytes),
        }
    }
}

impl Serialize for TestDelta {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            TestDelta::Zero => Delta::default().serialize(s),
            TestDelta::Changed(delta) => delta.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for TestDelta {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Delta::deserialize(d).map(|delta| TestDelta::of(&delta))
    }
}

#[cfg(test)]
mod tests;
