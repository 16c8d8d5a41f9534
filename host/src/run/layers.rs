//! The layer state machine: which layers are set up, what switching to the next
//! layer tears down and sets up, and what a trap or a layer that cannot be torn down
//! costs (the instance, and with it every layer set up in it).
//!
//! The serial run and the `-j` replay both walk the plan through [`drive`] with a
//! [`LayerDriver`] of their own, so the two cannot disagree about the layer sequence.

use std::time::Duration;

use super::event::{Event, EventSink, FreshReason, HookOutcome, LayerId, LayerRef, SuiteId, Summary};
use super::{CallResult, Outcome, RunError, RunOptions, Session};
use crate::leak::policy::PolicyJudge;
use crate::leak::stacks::LeakStacks;
use crate::leak::{Delta, Verdict, Witness};
use crate::plan::Plan;
use crate::sandbox::CapturedOutput;
use crate::text::GuestText;

/// The suite a run is in, and its plan: what events need to name things; and the replay
/// that finds a leaking layer's allocation stacks.
#[derive(Clone, Copy)]
pub(super) struct Scope<'p> {
    /// The suite.
    pub suite: SuiteId,
    /// Its file name, as reports and baselines name it.
    pub name: &'p str,
    /// Its plan.
    pub plan: &'p Plan,
    /// How stacks are found, given by the run: the layer loop that asks for them is what
    /// the replay runs again, so neither may import the other.
    pub replay: &'p dyn StackReplay,
}

/// The causes of a layer's iterations, as its verdict names them.
pub(super) struct Causes<'a> {
    /// Tests by guest index.
    pub tests: &'a [GuestText],
    /// The layer's `testSetUp of …` cause, when it has one.
    pub test_set_up: Option<&'a GuestText>,
    /// Its `testTearDown of …` cause.
    pub test_tear_down: Option<&'a GuestText>,
    /// The causes the verdict names; empty: it names none, and every cause's blocks count.
    pub named: &'a [GuestText],
}

/// What a traced replay of a leaking layer found.
pub(super) struct Replayed {
    /// Where the leaked blocks were allocated.
    pub stacks: LeakStacks,
    /// What the named causes left live, when the replay repeated the run faithfully.
    pub witness: Option<Witness>,
}

/// Finds where a leaking layer's leaked blocks were allocated.
pub(super) trait StackReplay: Sync {
    /// The stacks of the layer at `position`, replayed under `options` (the run's
    /// iterations); `first` is the run's own iteration deltas.
    fn stacks(
        &self,
        session: &Session<'_>,
        cx: Scope<'_>,
        position: usize,
        options: &RunOptions,
        first: &[Option<Delta>],
        causes: &Causes<'_>,
    ) -> Replayed;
}

impl Scope<'_> {
    /// Host layer `layer` as events name it.
    pub fn layer(&self, layer: usize) -> LayerRef {
        LayerRef { id: super::LayerId(layer as u32), name: self.plan.graph.name(layer).clone() }
    }
}

impl<'p> Scope<'p> {
    /// The name of test `test` (a guest index).
    pub fn test_name(self, test: u32) -> &'p GuestText {
        &self.plan.test_names[test as usize]
    }
}

/// The layer hooks the state machine calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LayerHook {
    /// `setUp`.
    SetUp,
    /// `tearDown`.
    TearDown,
}

/// A layer hook's result, as the state machine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HookCall {
    /// How it went.
    pub outcome: HookOutcome,
    /// How long it took.
    pub elapsed: Duration,
    /// The instance trapped and is gone.
    pub trapped: bool,
    /// What the hook wrote.
    pub output: CapturedOutput,
}

impl HookCall {
    /// A guest call's result as a hook's.
    pub fn new(result: CallResult, elapsed: Duration, output: CapturedOutput) -> Self {
        let outcome = match result.outcome {
            Outcome::Pass | Outcome::Skip(_) => HookOutcome::Ok,
            Outcome::Failure(m) | Outcome::Error(m) => HookOutcome::Failed(m),
        };
        HookCall { outcome, elapsed, trapped: result.trapped, output }
    }
}

/// Whether the run goes on after a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Flow {
    /// On to the next layer.
    Continue,
    /// `-x` stopped the run.
    Stop,
}

/// A layer whose verdict leaks, as the runner knows it once the layer is done.
#[derive(Debug, Clone)]
pub(super) struct LayerLeak {
    /// Its verdict.
    pub verdict: Verdict,
    /// Where its leaked blocks were allocated (`None` with `--no-stacks`).
    pub stacks: Option<LeakStacks>,
}

/// How a layer's iterations ended.
#[derive(Debug, Clone)]
pub(super) struct LayerEnd {
    /// Whether the run goes on.
    pub flow: Flow,
    /// Its leak, when its verdict leaks.
    pub leak: Option<LayerLeak>,
}

/// What carries out the state machine's decisions: the serial run calls the guest, the
/// `-j` replay reads what a worker recorded.
pub(super) trait LayerDriver {
    /// The layer at `position` of the plan is next (the replay waits for its worker here).
    fn begin(&mut self, position: usize) -> Result<(), RunError>;

    /// Calls `hook` of host layer `layer`; `None` when there is no result to give (a
    /// replay whose worker never got that far), which ends the set-up or skips the tear-down.
    fn call(&mut self, layer: usize, hook: LayerHook) -> Result<Option<HookCall>, RunError>;

    /// The instance is gone, and every layer set up in it.
    fn lose_instance(&mut self);

    /// Runs the iterations of the layer at `position`, which is now set up; its events
    /// end with its verdict and stacks.
    fn run_layer(
        &mut self,
        position: usize,
        stack: &mut LayerStack,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<LayerEnd, RunError>;
}

/// The layers set up in the current instance, in set-up order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct LayerStack {
    set_up: Vec<usize>,
}

impl LayerStack {
    /// The layers set up, in set-up order.
    pub fn layers(&self) -> &[usize] {
        &self.set_up
    }

    /// Takes over the state another run of the same layer ended in (the replay of a
    /// worker whose instance was replaced while the layer ran).
    pub fn adopt(&mut self, layers: &[usize]) {
        self.set_up = layers.to_vec();
    }

    /// The instance is gone: nothing is set up any more.
    pub fn instance_lost(&mut self) {
        self.set_up.clear();
    }

    fn lose(&mut self, driver: &mut dyn LayerDriver) {
        driver.lose_instance();
        self.instance_lost();
    }

    /// Sets up `layer` and those of its bases not set up yet, bases first; returns false
    /// (after reporting it and counting an error) when one failed. `replay` marks a
    /// set-up repeated in a fresh instance after a trap.
    pub fn set_up(
        &mut self,
        cx: Scope<'_>,
        layer: usize,
        replay: bool,
        driver: &mut dyn LayerDriver,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<bool, RunError> {
        for l in cx.plan.graph.set_up_order(layer, &self.set_up) {
            let Some(call) = driver.call(l, LayerHook::SetUp)? else {
                return Ok(false);
            };
            let failed = call.outcome != HookOutcome::Ok;
            let during = Some(LayerId(layer as u32));
            sink.send(Event::SetUp {
                suite: cx.suite,
                layer: cx.layer(l),
                during,
                outcome: call.outcome,
                elapsed: call.elapsed,
                replay,
                output: call.output,
            });
            if call.trapped {
                self.lose(driver);
                sink.send(Event::FreshInstance {
                    suite: cx.suite,
                    during,
                    reason: FreshReason::Trap(cx.plan.graph.name(l).clone()),
                });
            }
            if failed {
                summary.errors += 1;
                return Ok(false);
            }
            self.set_up.push(l);
        }
        Ok(true)
    }

    /// Tears down what `keep` and its bases do not need, most specific first; `None`
    /// tears down everything left at the end of the run.
    pub fn tear_down(
        &mut self,
        cx: Scope<'_>,
        keep: Option<usize>,
        driver: &mut dyn LayerDriver,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<(), RunError> {
        let at_end = keep.is_none();
        let during = keep.map(|l| LayerId(l as u32));
        for l in cx.plan.graph.tear_down_order(&self.set_up, keep) {
            if cx.plan.graph.layers[l].flags.no_tear_down {
                sink.send(Event::TearDown {
                    suite: cx.suite,
                    layer: cx.layer(l),
                    during,
                    outcome: HookOutcome::NotSupported,
                    elapsed: Duration::ZERO,
                    output: CapturedOutput::default(),
                });
                if at_end {
                    // At the very end there is nothing left to protect; zope carries on too.
                    self.set_up.retain(|&x| x != l);
                    continue;
                }
                self.lose(driver);
                let reason = FreshReason::NoTearDown(cx.plan.graph.name(l).clone());
                sink.send(Event::FreshInstance { suite: cx.suite, during, reason });
                return Ok(());
            }
            let call = driver.call(l, LayerHook::TearDown)?;
            self.set_up.retain(|&x| x != l);
            let Some(call) = call else { continue };
            if call.outcome != HookOutcome::Ok {
                summary.errors += 1;
            }
            sink.send(Event::TearDown {
                suite: cx.suite,
                layer: cx.layer(l),
                during,
                outcome: call.outcome,
                elapsed: call.elapsed,
                output: call.output,
            });
            if call.trapped {
                self.lose(driver);
                if !at_end {
                    let reason = FreshReason::Trap(cx.plan.graph.name(l).clone());
                    sink.send(Event::FreshInstance { suite: cx.suite, during, reason });
                }
                return Ok(());
            }
        }
        Ok(())
    }
}

/// Runs every layer of the plan in zope's order: switch (tear down what the next layer
/// does not need, set up what it needs), run its iterations, judge its leak by the policy,
/// and at the end tear down what is left. Returns the suite's totals but for its wall time.
pub(super) fn drive(
    cx: Scope<'_>,
    options: &RunOptions,
    driver: &mut dyn LayerDriver,
    mut judge: Option<&mut PolicyJudge<'_>>,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunError> {
    let mut summary = Summary::default();
    let mut stack = LayerStack::default();
    for (position, planned) in cx.plan.layers.iter().enumerate() {
        driver.begin(position)?;
        sink.send(Event::LayerStarted { suite: cx.suite, layer: cx.layer(planned.layer) });
        stack.tear_down(cx, Some(planned.layer), driver, sink, &mut summary)?;
        if !stack.set_up(cx, planned.layer, false, driver, sink, &mut summary)? {
            if options.stop_on_error {
                let after = GuestText::from(format!("Layer: {}.setUp", cx.plan.graph.name(planned.layer).raw()));
                sink.send(Event::Stopped { suite: cx.suite, after });
                break;
            }
            continue;
        }
        summary.layers_run += 1;
        let end = driver.run_layer(position, &mut stack, sink, &mut summary)?;
        if let Some(leak) = end.leak {
            judge_leak(cx, cx.layer(planned.layer), leak, judge.as_deref_mut(), sink, &mut summary);
        }
        if end.flow == Flow::Stop {
            break;
        }
    }
    if !stack.layers().is_empty() {
        sink.send(Event::TearingDownLeftOvers { suite: cx.suite });
        stack.tear_down(cx, None, driver, sink, &mut summary)?;
    }
    Ok(summary)
}

/// What the policy makes of a leaking layer, said right after its verdict and stacks; a
/// leak it does not excuse (every leak, without a policy) fails `--fail-on-leak`.
fn judge_leak(
    cx: Scope<'_>,
    layer: LayerRef,
    leak: LayerLeak,
    judge: Option<&mut PolicyJudge<'_>>,
    sink: &mut dyn EventSink,
    summary: &mut Summary,
) {
    let excused = match judge {
        Some(judge) => {
            let policy = judge.judge(cx.name, &leak.verdict, leak.stacks.as_ref());
            let excused = policy.excused;
            sink.send(Event::LeakPolicy { suite: cx.suite, layer: layer.clone(), policy: Box::new(policy) });
            excused
        }
        None => false,
    };
    if !excused {
        summary.unexcused.push(layer.name);
    }
}
