//! Executing a plan: layers in zope order, N iterations, fresh instances after
//! traps, and a stream of [`Event`]s that reporters render.

mod instance;

use std::time::{Duration, Instant};

use thiserror::Error;
use wasmtime::{Engine, InstancePre};

use crate::abi::{hook, Manifest};
use crate::leak::{self, Delta, Snapshot, Verdict};
use crate::plan::{Plan, PlannedLayer};
use crate::sandbox::{self, Capture, CapturedOutput, GuestState, Policy, SandboxError};
use crate::suite::Suite;
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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            repeat: 1,
            measure: false,
            warmup: 1,
        }
    }
}

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
    fn record(&mut self, outcome: &Outcome) {
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

    fn add(&mut self, counts: &Counts) {
        self.failures += counts.failures;
        self.errors += counts.errors;
        self.skipped += counts.skipped;
    }
}

/// Something that happened during a run; reporters render these and nothing else.
#[derive(Debug)]
pub enum Event<'a> {
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
    /// The run is over.
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
        let pre = linker
            .instantiate_pre(&suite.module)
            .map_err(|e| RunError::Link(format!("{e:#}")))?;
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
        })
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
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
            Some(index) if present => Ok(self.instance()?.hook(index, code)),
            _ => Ok(CallResult {
                outcome: Outcome::Pass,
                trapped: false,
            }),
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
                sink.emit(&Event::FreshInstance {
                    reason: FreshReason::NoTearDown(name),
                });
                return Ok(());
            }
            let started = Instant::now();
            let result = self.call_hook(plan, l, hook::TEAR_DOWN)?;
            let outcome = match &result.outcome {
                Outcome::Pass | Outcome::Skip(_) => HookOutcome::Ok,
                other => HookOutcome::Failed(other.message().to_string()),
            };
            sink.emit(&Event::TearDown {
                layer: name,
                outcome: &outcome,
                elapsed: started.elapsed(),
            });
            self.set_up.retain(|&x| x != l);
            if outcome != HookOutcome::Ok {
                summary.errors += 1;
            }
            if result.trapped {
                self.discard_instance();
                if !left_over {
                    sink.emit(&Event::FreshInstance {
                        reason: FreshReason::Trap(name),
                    });
                }
                return Ok(());
            }
        }
        Ok(())
    }

    /// Runs one test with its layers' per-test hooks; restarts the instance after a trap.
    /// When measuring, `last` holds the snapshot before the test and is replaced by
    /// the one after it; the test's delta is returned unless the instance was lost.
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
    ) -> Result<(LayerState, Option<Delta>), RunError> {
        let layer_name = plan.graph.name(layer);
        let test_name = plan.test_names[test as usize].as_str();
        let measuring = last.is_some();
        sink.emit(&Event::TestStarted {
            layer: layer_name,
            test: test_name,
        });
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
            let r = self.instance()?.run_test(test);
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
        let delta = match (trapped, last.take()) {
            (false, Some(before)) => {
                let after = self.snapshot()?;
                let delta = after.as_ref().map(|after| leak::diff(&before, after));
                *last = after;
                delta
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
        sink.emit(&Event::FreshInstance {
            reason: FreshReason::Trap(test_name),
        });
        if !self.set_up_layer(plan, layer, true, sink, summary)? {
            return Ok((LayerState::Lost, None));
        }
        if measuring {
            *last = self.snapshot()?;
        }
        Ok((LayerState::Intact, None))
    }

    fn snapshot(&mut self) -> Result<Option<Snapshot>, RunError> {
        let (counters, memory_bytes) = self.instance()?.counters().map_err(RunError::Counters)?;
        Ok(Some(Snapshot::new(counters, memory_bytes)))
    }

    /// Runs the plan, emitting events; returns the totals.
    pub fn run(&mut self, plan: &Plan, options: &RunOptions, sink: &mut dyn EventSink) -> Result<Summary, RunError> {
        let started = Instant::now();
        let mut summary = Summary::default();
        for planned in &plan.layers {
            let name = plan.graph.name(planned.layer);
            sink.emit(&Event::LayerStarted { layer: name });
            self.tear_down_unneeded(plan, Some(planned.layer), sink, &mut summary)?;
            if !self.set_up_layer(plan, planned.layer, false, sink, &mut summary)? {
                continue;
            }
            summary.layers_run += 1;
            self.run_layer(plan, planned, options, sink, &mut summary)?;
        }
        if !self.set_up.is_empty() {
            sink.emit(&Event::TearingDownLeftOvers);
            self.tear_down_unneeded(plan, None, sink, &mut summary)?;
        }
        summary.elapsed = started.elapsed();
        sink.emit(&Event::Finished { summary: &summary });
        Ok(summary)
    }

    /// Runs the iterations of one layer that is set up.
    fn run_layer(
        &mut self,
        plan: &Plan,
        planned: &PlannedLayer,
        options: &RunOptions,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let layer = planned.layer;
        let name = plan.graph.name(layer);
        let repeat = options.repeat.max(1);
        let hooks: Vec<usize> = plan
            .graph
            .test_hook_order(layer)
            .into_iter()
            .filter(|&l| plan.graph.layers[l].flags.test_set_up || plan.graph.layers[l].flags.test_tear_down)
            .collect();
        let mut last = if options.measure { self.snapshot()? } else { None };
        let mut iteration_deltas: Vec<Option<Delta>> = Vec::new();
        let mut test_deltas: Vec<Vec<Option<Delta>>> = vec![Vec::new(); planned.tests.len()];
        let mut broken_flags = Vec::new();
        for iteration in 1..=repeat {
            sink.emit(&Event::IterationStarted {
                layer: name,
                iteration,
                of: repeat,
            });
            let iteration_started = Instant::now();
            let start_snapshot = last.clone();
            let mut counts = Counts::default();
            let mut broken = false;
            for (position, &test) in planned.tests.iter().enumerate() {
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
                )?;
                broken |= self.instance.as_ref().is_none() || (options.measure && delta.is_none());
                test_deltas[position].push(delta);
                if let LayerState::Lost = state {
                    summary.add(&counts);
                    summary.tests += counts.tests;
                    return Ok(());
                }
            }
            let elapsed = iteration_started.elapsed();
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
                deltas
                    .iter()
                    .zip(counted)
                    .filter(|(_, &c)| c)
                    .map(|(d, _)| d.as_ref())
                    .collect()
            }
            let tests = planned
                .tests
                .iter()
                .zip(&test_deltas)
                .filter_map(|(&test, deltas)| {
                    let growth = leak::growth(&pick(deltas, &counted));
                    (!growth.is_empty()).then(|| leak::LeakingTest {
                        test: plan.test_names[test as usize].clone(),
                        growth,
                    })
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
        Ok(())
    }
}
