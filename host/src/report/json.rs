//! The JSON report: the whole run as one versioned document (docs/json-report.md).
//!
//! Timings live only in `elapsed_s` fields, which `--no-timings` leaves out, so two
//! runs of the same module under the same options give byte-identical files.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::leak::stacks::LeakStacks;
use crate::leak::{Delta, Snapshot, Verdict};
use crate::run::{Counts, Event, EventSink, FreshReason, HookOutcome, Outcome, Phases, RunStart, Summary};
use crate::sandbox::CapturedOutput;
use crate::text::GuestText;

/// The `schema` field of every report.
pub const JSON_SCHEMA: &str = "leakhost-report";
/// The `version` field; bumped on any incompatible change.
pub const JSON_VERSION: u32 = 2;

#[derive(Serialize)]
struct Report {
    schema: &'static str,
    version: u32,
    options: Option<ReportOptions>,
    suites: Vec<SuiteReport>,
    leaks: Vec<Verdict>,
    undecided: Vec<Verdict>,
    totals: Option<Totals>,
    /// Why the run stopped before its end, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    aborted: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_s: Option<f64>,
}

#[derive(Serialize)]
struct SuiteReport {
    name: String,
    layers: Vec<LayerReport>,
    /// The final tear-down of the layers still set up.
    left_over: Vec<Step>,
    /// Set when `-x` stopped the run in this suite: the test that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_after: Option<String>,
}

#[derive(Serialize)]
struct ReportOptions {
    repeat: u32,
    max_iterations: u32,
    measure: bool,
    warmup: usize,
    stop_on_error: bool,
}

#[derive(Serialize)]
struct Totals {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    layers_run: usize,
}

#[derive(Serialize)]
struct LayerReport {
    name: GuestText,
    /// Set-ups, tear-downs and instance changes made to run this layer, in order.
    steps: Vec<Step>,
    iterations: Vec<IterationReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<Verdict>,
    /// Where a leaking layer's leaked blocks were allocated (optional addition to version 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    stacks: Option<LeakStacks>,
}

#[derive(Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
enum Step {
    SetUp {
        layer: GuestText,
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<GuestText>,
        replay: bool,
        #[serde(flatten)]
        output: Output,
        #[serde(skip_serializing_if = "Option::is_none")]
        elapsed_s: Option<f64>,
    },
    TearDown {
        layer: GuestText,
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<GuestText>,
        #[serde(flatten)]
        output: Output,
        #[serde(skip_serializing_if = "Option::is_none")]
        elapsed_s: Option<f64>,
    },
    FreshInstance {
        reason: &'static str,
        after: GuestText,
    },
}

/// Captured output, left out when there was none.
#[derive(Serialize)]
struct Output {
    #[serde(skip_serializing_if = "GuestText::is_empty")]
    output: GuestText,
    #[serde(skip_serializing_if = "is_zero")]
    output_dropped: u64,
}

impl From<&CapturedOutput> for Output {
    fn from(output: &CapturedOutput) -> Self {
        Output { output: output.text.clone(), output_dropped: output.dropped }
    }
}

#[derive(Serialize)]
struct IterationReport {
    iteration: u32,
    /// Past `-N`: added to decide an undecided verdict.
    added: bool,
    counts: Counts,
    tests: Vec<TestReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    snapshot: Option<Snapshot>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<Delta>,
    broken: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_s: Option<f64>,
}

#[derive(Serialize)]
struct TestReport {
    name: GuestText,
    outcome: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<GuestText>,
    #[serde(flatten)]
    output: Output,
    /// Small, as `phases`: a report keeps a record per test and iteration until the end,
    /// and most changes are zero or not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<TestDelta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phases: Option<Box<Phases>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elapsed_s: Option<f64>,
}

/// A test's change: zero without a box of its own.
enum TestDelta {
    Zero,
    Changed(Box<Delta>),
}

impl TestDelta {
    fn of(delta: &Delta) -> Self {
        match delta.is_zero() {
            true => TestDelta::Zero,
            false => TestDelta::Changed(Box::new(delta.clone())),
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

/// A test's outcome, as the report names it.
#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Pass,
    Failure,
    Error,
    Skip,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Collects events into a [`Report`] and writes it at the end.
pub struct JsonReporter {
    report: Report,
    timings: bool,
    pending: Vec<TestReport>,
    /// The final tear-down has begun; steps go to `left_over`.
    left_over: bool,
}

fn hook_outcome(outcome: &HookOutcome) -> (&'static str, Option<GuestText>) {
    match outcome {
        HookOutcome::Ok => ("ok", None),
        HookOutcome::Failed(m) => ("failed", Some(m.clone())),
        HookOutcome::NotSupported => ("not_supported", None),
    }
}

impl JsonReporter {
    /// A reporter; `timings` keeps `elapsed_s` fields.
    pub fn new(timings: bool) -> Self {
        JsonReporter {
            report: Report {
                schema: JSON_SCHEMA,
                version: JSON_VERSION,
                options: None,
                suites: Vec::new(),
                leaks: Vec::new(),
                undecided: Vec::new(),
                totals: None,
                aborted: None,
                elapsed_s: None,
            },
            timings,
            pending: Vec::new(),
            left_over: false,
        }
    }

    fn secs(&self, d: Duration) -> Option<f64> {
        self.timings.then_some(d.as_secs_f64())
    }

    fn suite(&mut self) -> &mut SuiteReport {
        if self.report.suites.is_empty() {
            self.report.suites.push(SuiteReport {
                name: String::new(),
                layers: Vec::new(),
                left_over: Vec::new(),
                stopped_after: None,
            });
        }
        self.report.suites.last_mut().expect("a suite exists")
    }

    fn layer(&mut self) -> Option<&mut LayerReport> {
        self.suite().layers.last_mut()
    }

    fn steps(&mut self) -> &mut Vec<Step> {
        let left_over = self.left_over;
        let suite = self.suite();
        match suite.layers.last_mut() {
            Some(layer) if !left_over => &mut layer.steps,
            _ => &mut suite.left_over,
        }
    }

    /// The report as pretty-printed JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.report).expect("the report serializes");
        text.push('\n');
        text
    }

    /// Writes [`Self::to_json`]'s text to `out` as it is serialized: the text of a large
    /// run is larger than the report it renders (1.1 GB for a million tests at -N3).
    pub fn write_json(&self, out: impl std::io::Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(out);
        serde_json::to_writer_pretty(&mut out, &self.report)?;
        out.write_all(b"\n")?;
        out.flush()
    }

    /// Writes the report to `path`.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        self.write_json(std::fs::File::create(path)?)
    }
}

impl JsonReporter {
    /// A set-up, tear-down or fresh instance, as a step of the layer (or of the final tear-down).
    fn step(&mut self, event: &Event) {
        match event {
            Event::SetUp { layer, outcome, elapsed, replay, output, .. } => {
                let (outcome, message) = hook_outcome(outcome);
                let elapsed_s = self.secs(*elapsed);
                let (layer, replay, output) = (layer.name.clone(), *replay, output.into());
                self.steps().push(Step::SetUp { layer, outcome, message, replay, output, elapsed_s });
            }
            Event::TearDown { layer, outcome, elapsed, output, .. } => {
                let (outcome, message) = hook_outcome(outcome);
                let elapsed_s = self.secs(*elapsed);
                let (layer, output) = (layer.name.clone(), output.into());
                self.steps().push(Step::TearDown { layer, outcome, message, output, elapsed_s });
            }
            Event::FreshInstance { reason, .. } => {
                let (reason, after) = match reason {
                    FreshReason::NoTearDown(layer) => ("no_tear_down", layer.clone()),
                    FreshReason::Trap(what) => ("trap", what.clone()),
                };
                self.steps().push(Step::FreshInstance { reason, after });
            }
            _ => {}
        }
    }

    /// The run's totals and verdicts.
    fn finished(&mut self, summary: &Summary) {
        self.report.leaks = summary.leaks.clone();
        self.report.undecided = summary.undecided.clone();
        self.report.elapsed_s = self.secs(summary.elapsed);
        self.report.totals = Some(Totals {
            tests: summary.tests,
            failures: summary.failures,
            errors: summary.errors,
            skipped: summary.skipped,
            layers_run: summary.layers_run,
        });
    }

    /// The tests of the iteration that ends, in a vector of their number: the report keeps
    /// them to the end, and a doubled vector's spare room was a third of its memory.
    fn take_pending(&mut self) -> Vec<TestReport> {
        let next = Vec::with_capacity(self.pending.len());
        let mut tests = std::mem::replace(&mut self.pending, next);
        tests.shrink_to_fit();
        tests
    }

    fn test_finished(
        &mut self,
        name: &GuestText,
        outcome: &Outcome,
        output: &CapturedOutput,
        elapsed: Duration,
        delta: Option<&Delta>,
        phases: &Option<Box<Phases>>,
    ) {
        let kind = match outcome {
            Outcome::Pass => Kind::Pass,
            Outcome::Failure(_) => Kind::Failure,
            Outcome::Error(_) => Kind::Error,
            Outcome::Skip(_) => Kind::Skip,
        };
        let elapsed_s = self.secs(elapsed);
        self.pending.push(TestReport {
            name: name.clone(),
            outcome: kind,
            message: outcome.message().cloned(),
            output: output.into(),
            delta: delta.map(TestDelta::of),
            phases: phases.clone(),
            elapsed_s,
        });
    }

    #[allow(clippy::too_many_arguments)]
    fn iteration_finished(
        &mut self,
        iteration: u32,
        added: bool,
        counts: Counts,
        elapsed: Duration,
        snapshot: Option<&Snapshot>,
        delta: Option<&Delta>,
        broken: bool,
    ) {
        let iteration = IterationReport {
            iteration,
            added,
            counts,
            tests: self.take_pending(),
            snapshot: snapshot.cloned(),
            delta: delta.cloned(),
            broken,
            elapsed_s: self.secs(elapsed),
        };
        if let Some(layer) = self.layer() {
            layer.iterations.push(iteration);
        }
    }
}

impl EventSink for JsonReporter {
    fn wants_every_test_delta(&self) -> bool {
        true
    }

    fn emit(&mut self, event: &Event) {
        match event {
            Event::RunStarted(RunStart { repeat, max_iterations, measure, warmup, stop_on_error, .. }) => {
                self.report.options = Some(ReportOptions {
                    repeat: *repeat,
                    max_iterations: *max_iterations,
                    measure: *measure,
                    warmup: *warmup,
                    stop_on_error: *stop_on_error,
                })
            }
            Event::SuiteStarted { name, .. } => {
                self.left_over = false;
                self.report.suites.push(SuiteReport {
                    name: name.clone(),
                    layers: Vec::new(),
                    left_over: Vec::new(),
                    stopped_after: None,
                });
            }
            Event::Stopped { after, .. } => self.suite().stopped_after = Some(after.raw().to_string()),
            Event::LayerStarted { layer, .. } => self.suite().layers.push(LayerReport {
                name: layer.name.clone(),
                steps: Vec::new(),
                iterations: Vec::new(),
                verdict: None,
                stacks: None,
            }),
            Event::SetUp { .. } | Event::TearDown { .. } | Event::FreshInstance { .. } => self.step(event),
            Event::IterationStarted { .. } | Event::TestStarted { .. } | Event::SuiteFinished { .. } => {}
            Event::TestFinished { test, outcome, output, elapsed, delta, phases, .. } => {
                self.test_finished(&test.name, outcome, output, *elapsed, delta.as_deref(), phases)
            }
            Event::IterationFinished { iteration, planned, counts, elapsed, snapshot, delta, broken, .. } => self
                .iteration_finished(
                    *iteration,
                    iteration > planned,
                    *counts,
                    *elapsed,
                    snapshot.as_deref(),
                    delta.as_deref(),
                    *broken,
                ),
            Event::Verdict { verdict, .. } => {
                if let Some(layer) = self.layer() {
                    layer.verdict = Some(verdict.clone());
                }
            }
            Event::LeakStacks { layer, stacks, .. } => {
                if let Some(report) = self.suite().layers.iter_mut().rev().find(|l| l.name == layer.name) {
                    report.stacks = Some(LeakStacks::clone(stacks));
                }
            }
            Event::TearingDownLeftOvers { .. } => self.left_over = true,
            Event::RunAborted { reason } => self.report.aborted = Some(reason.raw().to_string()),
            Event::RunFinished { summary } => self.finished(summary),
        }
    }
}
