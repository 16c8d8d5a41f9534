//! Executing a plan: layers in zope order, N iterations, fresh instances after
//! traps, and a stream of [`Event`]s that reporters render.

pub mod conformance;
mod event;
mod instance;
mod parallel;

use std::time::{Duration, Instant};

use thiserror::Error;
use wasmtime::{Engine, InstancePre};

use crate::abi::{hook, Manifest};
use crate::leak::{self, Delta, Snapshot, Verdict};
use crate::plan::{Plan, PlannedLayer};
use crate::sandbox::{self, Capture, GuestState, Policy, SandboxError};
use crate::suite::Suite;
pub use event::{Counts, Event, EventSink, FreshReason, HookOutcome, Summary};
use instance::GuestInstance;
pub use instance::{CallResult, InstanceError, Outcome};

/// Why a run could not start or continue (as opposed to tests failing).
#[derive(Debug, Error)]
pub enum RunError {
    /// The sandbox could not be built.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The module could not be linked against the sandbox.
    #[error("cannot link the module: {0}")]
    Link(String),
    /// An instance could not be started or exposed bad data.
    #[error("{0}")]
    Instance(InstanceError),
    /// Taking a counters snapshot trapped or returned a malformed record.
    #[error("cannot read the counters snapshot: {0}")]
    Counters(String),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many times each layer's tests repeat (`-N`).
    pub repeat: u32,
    /// Take counters snapshots after set-up, after every test and after every
    /// iteration, and give each layer a leak verdict.
    pub measure: bool,
    /// How many leading iterations are warm-up and not counted by the verdict.
    pub warmup: usize,
    /// Stop after the first failing or erroring test (`-x`): the rest of its layer,
    /// its remaining iterations and all later layers are skipped; set-up layers are
    /// still torn down.
    pub stop_on_error: bool,
    /// Layers run in parallel on this many threads (`-j`); 1 runs serially.
    pub jobs: usize,
    /// With `measure`: snapshot around every test in every iteration, because a report
    /// shows per-test changes. Otherwise only what the verdict needs is measured: every
    /// test in the first counted iteration, then only the tests still growing in every
    /// counted iteration so far (a test that stopped growing can no longer be named).
    pub every_test_delta: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { repeat: 1, measure: false, warmup: 1, stop_on_error: false, jobs: 1, every_test_delta: false }
    }
}

/// A suite ready to run: the template for fresh instances and the validated manifest.
pub struct Session<'e> {
    engine: &'e Engine,
    pre: InstancePre<GuestState>,
    has_initialize: bool,
    policy: Policy,
    capture: Capture,
    manifest: Manifest,
    instance: Option<GuestInstance>,
    /// Host layer indexes set up in the current instance, in set-up order.
    set_up: Vec<usize>,
    /// How many instances this session has started; a change within an iteration
    /// means its measurements span two heaps.
    instances_started: u64,
}

/// How a test left the layer.
enum LayerState {
    Intact,
    /// Re-setting the layer up in a fresh instance failed; its remaining tests cannot run.
    Lost,
}

impl<'e> Session<'e> {
    /// Links the suite, starts the first instance and reads its manifest.
    pub fn start(engine: &'e Engine, suite: &Suite, policy: Policy) -> Result<Self, RunError> {
        let linker = sandbox::linker(engine)?;
        let pre = linker.instantiate_pre(&suite.module).map_err(|e| RunError::Link(format!("{e:#}")))?;
        let capture = Capture::new(policy.output_limit);
        let mut instance =
            GuestInstance::start(engine, &pre, &policy, &capture, suite.has_initialize).map_err(RunError::Instance)?;
        let manifest = instance.manifest().map_err(RunError::Instance)?;
        capture.take();
        Ok(Session {
            engine,
            pre,
            has_initialize: suite.has_initialize,
            policy,
            capture,
            manifest,
            instance: Some(instance),
            set_up: Vec::new(),
            instances_started: 1,
        })
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// A second session over the same linked module, with no instance yet: a worker
    /// for `-j` gets its own instances, output capture and layer state.
    fn fork(&self) -> Session<'e> {
        Session {
            engine: self.engine,
            pre: self.pre.clone(),
            has_initialize: self.has_initialize,
            policy: self.policy.clone(),
            capture: Capture::new(self.policy.output_limit),
            manifest: self.manifest.clone(),
            instance: None,
            set_up: Vec::new(),
            instances_started: 0,
        }
    }

    /// Runs one layer alone in a fresh instance: its set-up chain, its iterations, and
    /// the tear-down of everything, each phase to its own sink. Tear-down failures are
    /// not counted in the returned summary (the caller decides which of them count).
    fn run_isolated(
        &mut self,
        plan: &Plan,
        planned: &PlannedLayer,
        options: &RunOptions,
        sinks: [&mut dyn EventSink; 3],
    ) -> Result<(Summary, bool), RunError> {
        let [set_up_sink, body_sink, tear_down_sink] = sinks;
        self.discard_instance();
        let mut summary = Summary::default();
        let set_up = self.set_up_layer(plan, planned.layer, false, set_up_sink, &mut summary)?;
        let mut stopped = false;
        if set_up {
            summary.layers_run += 1;
            stopped = self.run_layer(plan, planned, options, body_sink, &mut summary)?;
        }
        self.tear_down_unneeded(plan, None, tear_down_sink, &mut Summary::default())?;
        self.discard_instance();
        Ok((summary, stopped))
    }

    fn instance(&mut self) -> Result<&mut GuestInstance, RunError> {
        if self.instance.is_none() {
            let mut fresh =
                GuestInstance::start(self.engine, &self.pre, &self.policy, &self.capture, self.has_initialize)
                    .map_err(RunError::Instance)?;
            // A deterministic module declares the same suite every time; anything else
            // would make layer and test indexes meaningless.
            if fresh.manifest().map_err(RunError::Instance)? != self.manifest {
                return Err(RunError::Instance(InstanceError::ManifestChanged));
            }
            self.capture.take();
            self.instance = Some(fresh);
            self.instances_started += 1;
        }
        Ok(self.instance.as_mut().expect("instance was just started"))
    }

    fn discard_instance(&mut self) {
        self.instance = None;
        self.set_up.clear();
    }

    /// Runs one hook of host layer `layer`, if the layer has it.
    fn call_hook(&mut self, plan: &Plan, layer: usize, code: u32) -> Result<CallResult, RunError> {
        let node = &plan.graph.layers[layer];
        let present = match code {
            hook::SET_UP => node.flags.set_up,
            hook::TEAR_DOWN => node.flags.tear_down,
            hook::TEST_SET_UP => node.flags.test_set_up,
            _ => node.flags.test_tear_down,
        };
        match node.guest_index {
            Some(index) if present => self.instance()?.hook(index, code).map_err(RunError::Instance),
            _ => Ok(CallResult { outcome: Outcome::Pass, trapped: false }),
        }
    }

    /// Sets up `layer` and its bases; returns false (after reporting) if one failed.
    fn set_up_layer(
        &mut self,
        plan: &Plan,
        layer: usize,
        replay: bool,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<bool, RunError> {
        self.instance()?;
        for l in plan.graph.set_up_order(layer, &self.set_up) {
            let started = Instant::now();
            let result = self.call_hook(plan, l, hook::SET_UP)?;
            let outcome = match &result.outcome {
                Outcome::Pass | Outcome::Skip(_) => HookOutcome::Ok,
                other => HookOutcome::Failed(other.message().to_string()),
            };
            sink.emit(&Event::SetUp {
                layer: plan.graph.name(l),
                outcome: &outcome,
                elapsed: started.elapsed(),
                replay,
            });
            if result.trapped {
                self.discard_instance();
                sink.emit(&Event::FreshInstance { reason: FreshReason::Trap(plan.graph.name(l)) });
            }
            if outcome != HookOutcome::Ok {
                summary.errors += 1;
                return Ok(false);
            }
            self.set_up.push(l);
        }
        Ok(true)
    }

    /// Tears down what `keep` (and its bases) do not need; `None` tears down everything.
    fn tear_down_unneeded(
        &mut self,
        plan: &Plan,
        keep: Option<usize>,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let left_over = keep.is_none();
        for l in plan.graph.tear_down_order(&self.set_up, keep) {
            let name = plan.graph.name(l);
            if plan.graph.layers[l].flags.no_tear_down {
                sink.emit(&Event::TearDown {
                    layer: name,
                    outcome: &HookOutcome::NotSupported,
                    elapsed: Duration::ZERO,
                });
                if left_over {
                    // At the very end there is nothing left to protect; zope carries on too.
                    self.set_up.retain(|&x| x != l);
                    continue;
                }
                self.discard_instance();
                sink.emit(&Event::FreshInstance { reason: FreshReason::NoTearDown(name) });
                return Ok(());
            }
            let started = Instant::now();
            let result = self.call_hook(plan, l, hook::TEAR_DOWN)?;
            let outcome = match &result.outcome {
                Outcome::Pass | Outcome::Skip(_) => HookOutcome::Ok,
                other => HookOutcome::Failed(other.message().to_string()),
            };
            sink.emit(&Event::TearDown { layer: name, outcome: &outcome, elapsed: started.elapsed() });
            self.set_up.retain(|&x| x != l);
            if outcome != HookOutcome::Ok {
                summary.errors += 1;
            }
            if result.trapped {
                self.discard_instance();
                if !left_over {
                    sink.emit(&Event::FreshInstance { reason: FreshReason::Trap(name) });
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Runs one test with its layers' per-test hooks; restarts the instance after a trap.
    /// `last` is the latest snapshot still valid (or `None`). With `measure_test` the
    /// test is measured: a snapshot before (unless `last` is one) and after it, its delta
    /// returned unless the instance was lost; otherwise `last` is invalidated.
    #[allow(clippy::too_many_arguments)]
    fn run_test(
        &mut self,
        plan: &Plan,
        layer: usize,
        hooks: &[usize],
        test: u32,
        iteration: u32,
        sink: &mut dyn EventSink,
        counts: &mut Counts,
        summary: &mut Summary,
        last: &mut Option<Snapshot>,
        measure_test: bool,
    ) -> Result<(LayerState, Option<Delta>), RunError> {
        let layer_name = plan.graph.name(layer);
        let test_name = plan.test_names[test as usize].as_str();
        let before = match (measure_test, last.take()) {
            (true, Some(before)) => Some(before),
            (true, None) => Some(self.snapshot()?),
            (false, _) => None,
        };
        sink.emit(&Event::TestStarted { layer: layer_name, test: test_name });
        let started = Instant::now();
        let mut outcome = Outcome::Pass;
        let mut trapped = false;
        let mut entered = 0;
        for &l in hooks {
            let r = self.call_hook(plan, l, hook::TEST_SET_UP)?;
            if let Outcome::Failure(m) | Outcome::Error(m) = &r.outcome {
                outcome = Outcome::Error(format!("testSetUp of {} failed: {m}", plan.graph.name(l)));
                trapped = r.trapped;
                break;
            }
            entered += 1;
        }
        if outcome == Outcome::Pass {
            let r = self.instance()?.run_test(test).map_err(RunError::Instance)?;
            outcome = r.outcome;
            trapped = r.trapped;
        }
        if !trapped {
            for &l in hooks[..entered].iter().rev() {
                let r = self.call_hook(plan, l, hook::TEST_TEAR_DOWN)?;
                if let Outcome::Failure(m) | Outcome::Error(m) = &r.outcome {
                    if matches!(outcome, Outcome::Pass | Outcome::Skip(_)) {
                        outcome = Outcome::Error(format!("testTearDown of {} failed: {m}", plan.graph.name(l)));
                    }
                }
                if r.trapped {
                    trapped = true;
                    break;
                }
            }
        }
        let elapsed = started.elapsed();
        let output = self.capture.take();
        counts.record(&outcome);
        let delta = match (trapped, before) {
            (false, Some(before)) => {
                let after = self.snapshot()?;
                let delta = leak::diff(&before, &after);
                *last = Some(after);
                Some(delta)
            }
            _ => None,
        };
        sink.emit(&Event::TestFinished {
            layer: layer_name,
            test: test_name,
            iteration,
            outcome: &outcome,
            output: &output,
            elapsed,
            delta: delta.as_ref(),
        });
        if !trapped {
            return Ok((LayerState::Intact, delta));
        }
        self.discard_instance();
        sink.emit(&Event::FreshInstance { reason: FreshReason::Trap(test_name) });
        if !self.set_up_layer(plan, layer, true, sink, summary)? {
            return Ok((LayerState::Lost, None));
        }
        Ok((LayerState::Intact, None))
    }

    fn snapshot(&mut self) -> Result<Snapshot, RunError> {
        let (counters, memory_bytes) = self.instance()?.counters().map_err(RunError::Counters)?;
        Ok(Snapshot::new(counters, memory_bytes))
    }

    /// Runs the plan, emitting events; returns this suite's totals. The caller emits
    /// [`Event::Finished`] once all suites have run. With `options.jobs` above 1 the
    /// layers run in parallel (see [`parallel`]).
    pub fn run(&mut self, plan: &Plan, options: &RunOptions, sink: &mut dyn EventSink) -> Result<Summary, RunError> {
        if options.jobs > 1 && plan.layers.len() > 1 {
            return parallel::run(self, plan, options, sink);
        }
        let started = Instant::now();
        let mut summary = Summary::default();
        for planned in &plan.layers {
            let name = plan.graph.name(planned.layer);
            sink.emit(&Event::LayerStarted { layer: name });
            self.tear_down_unneeded(plan, Some(planned.layer), sink, &mut summary)?;
            if !self.set_up_layer(plan, planned.layer, false, sink, &mut summary)? {
                if options.stop_on_error {
                    sink.emit(&Event::Stopped { after: &format!("Layer: {name}.setUp") });
                    break;
                }
                continue;
            }
            summary.layers_run += 1;
            if self.run_layer(plan, planned, options, sink, &mut summary)? {
                break;
            }
        }
        if !self.set_up.is_empty() {
            sink.emit(&Event::TearingDownLeftOvers);
            self.tear_down_unneeded(plan, None, sink, &mut summary)?;
        }
        summary.elapsed = started.elapsed();
        Ok(summary)
    }

    /// Runs the iterations of one layer that is set up; returns true if `-x` stopped the run.
    fn run_layer(
        &mut self,
        plan: &Plan,
        planned: &PlannedLayer,
        options: &RunOptions,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<bool, RunError> {
        let layer = planned.layer;
        let name = plan.graph.name(layer);
        let repeat = options.repeat.max(1);
        let hooks: Vec<usize> = plan
            .graph
            .test_hook_order(layer)
            .into_iter()
            .filter(|&l| plan.graph.layers[l].flags.test_set_up || plan.graph.layers[l].flags.test_tear_down)
            .collect();
        let mut last = if options.measure { Some(self.snapshot()?) } else { None };
        let mut iteration_deltas: Vec<Option<Delta>> = Vec::new();
        let mut test_deltas: Vec<Vec<Option<Delta>>> = vec![Vec::new(); planned.tests.len()];
        let mut broken_flags = Vec::new();
        for iteration in 1..=repeat {
            sink.emit(&Event::IterationStarted { layer: name, iteration, of: repeat });
            let iteration_started = Instant::now();
            let start_snapshot = last.clone();
            let instances_at_start = self.instances_started;
            let mut counts = Counts::default();
            let mut broken = false;
            let counted_iteration = iteration as usize > options.warmup;
            for (position, &test) in planned.tests.iter().enumerate() {
                let measure_test = options.measure
                    && (options.every_test_delta
                        || (counted_iteration
                            && leak::still_growing(test_deltas[position].get(options.warmup..).unwrap_or_default())));
                let (state, delta) = self.run_test(
                    plan,
                    layer,
                    &hooks,
                    test,
                    iteration,
                    sink,
                    &mut counts,
                    summary,
                    &mut last,
                    measure_test,
                )?;
                broken |= self.instance.is_none() || self.instances_started != instances_at_start;
                test_deltas[position].push(delta);
                let failed = counts.failures + counts.errors > 0;
                if options.stop_on_error && failed {
                    sink.emit(&Event::Stopped { after: &plan.test_names[test as usize] });
                }
                if matches!(state, LayerState::Lost) || (options.stop_on_error && failed) {
                    // The partial iteration still reports what ran, but measures nothing.
                    sink.emit(&Event::IterationFinished {
                        layer: name,
                        iteration,
                        of: repeat,
                        counts,
                        elapsed: iteration_started.elapsed(),
                        snapshot: None,
                        delta: None,
                        broken: true,
                    });
                    summary.add(&counts);
                    summary.tests += counts.tests;
                    return Ok(options.stop_on_error && failed);
                }
            }
            let elapsed = iteration_started.elapsed();
            if options.measure && last.is_none() {
                last = Some(self.snapshot()?);
            }
            let delta = match (&start_snapshot, &last) {
                (Some(before), Some(after)) if !broken => Some(leak::diff(before, after)),
                _ => None,
            };
            sink.emit(&Event::IterationFinished {
                layer: name,
                iteration,
                of: repeat,
                counts,
                elapsed,
                snapshot: last.as_ref(),
                delta: delta.as_ref(),
                broken,
            });
            iteration_deltas.push(delta);
            broken_flags.push(broken);
            summary.add(&counts);
            if iteration == repeat {
                summary.tests += counts.tests;
            }
        }
        if options.measure {
            let counted = leak::counted_iterations(repeat as usize, options.warmup, &broken_flags);
            fn pick<'d>(deltas: &'d [Option<Delta>], counted: &[bool]) -> Vec<Option<&'d Delta>> {
                deltas.iter().zip(counted).filter(|(_, &c)| c).map(|(d, _)| d.as_ref()).collect()
            }
            let tests = planned
                .tests
                .iter()
                .zip(&test_deltas)
                .filter_map(|(&test, deltas)| {
                    let growth = leak::growth(&pick(deltas, &counted));
                    (!growth.is_empty())
                        .then(|| leak::LeakingTest { test: plan.test_names[test as usize].clone(), growth })
                })
                .collect();
            let verdict = Verdict {
                layer: name.to_string(),
                counted: counted.iter().filter(|&&c| c).count(),
                growth: leak::growth(&pick(&iteration_deltas, &counted)),
                tests,
            };
            sink.emit(&Event::Verdict { verdict: &verdict });
            if verdict.leaks() {
                summary.leaks.push(verdict);
            }
        }
        Ok(false)
    }
}
