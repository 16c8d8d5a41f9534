//! Building the run's record from its events, by id: every event names its suite, layer,
//! iteration and test, so nothing here depends on which event came last.

use std::collections::HashMap;
use std::time::Duration;

use super::{
    IterationReport, Kind, LayerReport, Output, RunReport, Step, StepOutcome, SuiteReport, TestDelta, TestReport,
    Totals,
};
use crate::run::{Event, EventSink, FreshReason, HookOutcome, LayerId, SuiteId, Summary};
use crate::text::GuestText;

/// Collects a run's events into its [`RunReport`].
pub struct Recorder {
    report: RunReport,
    timings: bool,
    /// Where each (suite, layer) is in `report.suites[suite].layers`.
    layers: HashMap<(SuiteId, LayerId), usize>,
}

fn step_outcome(outcome: &HookOutcome) -> StepOutcome {
    let (outcome, message) = match outcome {
        HookOutcome::Ok => ("ok", None),
        HookOutcome::Failed(m) => ("failed", Some(m.clone())),
        HookOutcome::NotSupported => ("not_supported", None),
    };
    StepOutcome { outcome: outcome.into(), message }
}

impl Recorder {
    /// A recorder; `timings` keeps wall times (`--no-timings` leaves them out, so that two
    /// records of the same run are equal).
    pub fn new(timings: bool) -> Self {
        Recorder { report: RunReport::new(), timings, layers: HashMap::new() }
    }

    /// The record so far (all of it, once the run has finished).
    pub fn report(&self) -> &RunReport {
        &self.report
    }

    /// The record.
    pub fn into_report(self) -> RunReport {
        self.report
    }

    fn secs(&self, d: Duration) -> Option<f64> {
        self.timings.then_some(d.as_secs_f64())
    }

    fn suite(&mut self, suite: SuiteId) -> Option<&mut SuiteReport> {
        self.report.suites.get_mut(suite.0 as usize)
    }

    fn layer(&mut self, suite: SuiteId, layer: LayerId) -> Option<&mut LayerReport> {
        let at = *self.layers.get(&(suite, layer))?;
        self.suite(suite)?.layers.get_mut(at)
    }

    fn iteration(&mut self, suite: SuiteId, layer: LayerId, iteration: u32) -> Option<&mut IterationReport> {
        let iterations = &mut self.layer(suite, layer)?.iterations;
        // Iterations are numbered from 1 and recorded as they start.
        let at = (iteration as usize).checked_sub(1)?;
        iterations.get_mut(at).filter(|i| i.iteration == iteration)
    }

    /// A step goes to the planned layer it was done for, or to the final tear-down.
    fn step(&mut self, suite: SuiteId, during: Option<LayerId>, step: Step) {
        match during {
            Some(layer) => {
                if let Some(layer) = self.layer(suite, layer) {
                    layer.steps.push(step);
                }
            }
            None => {
                if let Some(suite) = self.suite(suite) {
                    suite.left_over.push(step);
                }
            }
        }
    }

    fn suite_started(&mut self, suite: SuiteId, name: &str) {
        let at = suite.0 as usize;
        while self.report.suites.len() <= at {
            let id = SuiteId(self.report.suites.len() as u32);
            let report =
                SuiteReport { id, name: String::new(), layers: Vec::new(), left_over: Vec::new(), stopped_after: None };
            self.report.suites.push(report);
        }
        self.report.suites[at].name = name.to_string();
    }

    fn layer_started(&mut self, suite: SuiteId, id: LayerId, name: &GuestText) {
        let Some(report) = self.suite(suite) else { return };
        report.layers.push(LayerReport {
            id,
            name: name.clone(),
            steps: Vec::new(),
            iterations: Vec::new(),
            verdict: None,
            stacks: None,
            policy: None,
            partition: None,
        });
        let at = report.layers.len() - 1;
        self.layers.insert((suite, id), at);
    }

    fn iteration_started(&mut self, suite: SuiteId, layer: LayerId, iteration: u32, planned: u32) {
        let Some(layer) = self.layer(suite, layer) else { return };
        // The previous iteration's size: a report keeps every test record to the end, and
        // a doubled vector's spare room was a third of its memory.
        let expected = layer.iterations.last().map_or(0, |i| i.tests.len());
        layer.iterations.push(IterationReport {
            iteration,
            added: iteration > planned,
            counts: Default::default(),
            tests: Vec::with_capacity(expected),
            snapshot: None,
            delta: None,
            broken: false,
            elapsed_s: None,
        });
    }

    fn finished(&mut self, summary: &Summary) {
        self.report.elapsed_s = self.secs(summary.elapsed);
        self.report.totals = Some(Totals {
            tests: summary.tests,
            failures: summary.failures,
            errors: summary.errors,
            skipped: summary.skipped,
            layers_run: summary.layers_run,
        });
    }

    /// Set-ups, tear-downs and fresh instances.
    fn hook_event(&mut self, event: &Event) {
        match event {
            Event::SetUp { suite, layer, during, outcome, elapsed, replay, output } => {
                let (outcome, output, elapsed_s) = (step_outcome(outcome), Output::from(output), self.secs(*elapsed));
                let step = Step::SetUp { layer: layer.name.clone(), outcome, replay: *replay, output, elapsed_s };
                self.step(*suite, *during, step);
            }
            Event::TearDown { suite, layer, during, outcome, elapsed, output } => {
                let (outcome, output, elapsed_s) = (step_outcome(outcome), Output::from(output), self.secs(*elapsed));
                self.step(*suite, *during, Step::TearDown { layer: layer.name.clone(), outcome, output, elapsed_s });
            }
            Event::FreshInstance { suite, during, reason } => {
                let (reason, after) = match reason {
                    FreshReason::NoTearDown(layer) => ("no_tear_down", layer.clone()),
                    FreshReason::Trap(what) => ("trap", what.clone()),
                };
                self.step(*suite, *during, Step::FreshInstance { reason: reason.into(), after });
            }
            _ => {}
        }
    }

    /// Tests and iterations.
    fn iteration_event(&mut self, event: &Event) {
        match event {
            Event::IterationStarted { suite, layer, iteration, planned } => {
                self.iteration_started(*suite, layer.id, *iteration, *planned)
            }
            Event::TestFinished { suite, layer, test, iteration, outcome, output, elapsed, delta, phases } => {
                let record = TestReport {
                    id: test.id,
                    name: test.name.clone(),
                    outcome: Kind::of(outcome),
                    message: outcome.message().cloned(),
                    output: output.into(),
                    delta: delta.as_deref().map(TestDelta::of),
                    phases: phases.clone(),
                    elapsed_s: self.secs(*elapsed),
                };
                if let Some(it) = self.iteration(*suite, *layer, *iteration) {
                    it.tests.push(record);
                }
            }
            Event::IterationFinished { suite, layer, iteration, counts, elapsed, snapshot, delta, broken, .. } => {
                let elapsed_s = self.secs(*elapsed);
                if let Some(it) = self.iteration(*suite, layer.id, *iteration) {
                    it.counts = *counts;
                    it.snapshot = snapshot.as_deref().cloned();
                    it.delta = delta.as_deref().cloned();
                    it.broken = *broken;
                    it.elapsed_s = elapsed_s;
                    it.tests.shrink_to_fit();
                }
            }
            _ => {}
        }
    }
}

impl EventSink for Recorder {
    fn emit(&mut self, event: &Event) {
        match event {
            Event::RunStarted(start) => {
                self.report.options = Some(start.options.clone());
                self.report.execution = Some(start.execution);
                self.report.selection = start.selection.clone();
                self.report.policy_files = start.policy.clone();
            }
            Event::SuiteStarted { suite, name, .. } => self.suite_started(*suite, name),
            Event::LayerStarted { suite, layer } => self.layer_started(*suite, layer.id, &layer.name),
            Event::SetUp { .. } | Event::TearDown { .. } | Event::FreshInstance { .. } => self.hook_event(event),
            Event::IterationStarted { .. } | Event::TestFinished { .. } | Event::IterationFinished { .. } => {
                self.iteration_event(event)
            }
            Event::Verdict { suite, layer, verdict } => {
                if let Some(report) = self.layer(*suite, layer.id) {
                    report.verdict = Some(verdict.as_ref().clone());
                }
            }
            Event::LeakStacks { suite, layer, stacks } => {
                if let Some(report) = self.layer(*suite, layer.id) {
                    report.stacks = Some(stacks.as_ref().clone());
                }
            }
            Event::LeakPolicy { suite, layer, policy } => {
                if let Some(report) = self.layer(*suite, layer.id) {
                    report.policy = Some(policy.as_ref().clone());
                }
            }
            Event::Stopped { suite, after } => {
                if let Some(report) = self.suite(*suite) {
                    report.stopped_after = Some(after.clone());
                }
            }
            Event::PolicyFinished { summary } => self.report.policy = Some(summary.as_ref().clone()),
            Event::RunAborted { reason } => self.report.aborted = Some(reason.clone()),
            Event::RunFinished { summary } => self.finished(summary),
            Event::TestStarted { .. } | Event::TearingDownLeftOvers { .. } | Event::SuiteFinished { .. } => {}
        }
    }
}
