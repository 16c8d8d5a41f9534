//! The iterations of one layer that is set up, and the driver that runs a plan in one
//! session ([`SessionDriver`]: layer hooks and tests call the guest): the loop, the tests with their per-test
//! hooks, and the measurement around them. What the numbers mean is [`crate::leak`]'s
//! to decide: this only records them in a [`Series`] and asks its [`Rule`].

use std::time::Instant;

use super::event::{
    Counts, Event, EventSink, FreshReason, LayerId, LayerRef, Phases, Summary, TestAt, TestEnd, TestId,
};
use super::layers::{Causes, Flow, HookCall, LayerDriver, LayerEnd, LayerHook, LayerLeak, LayerStack, Replayed, Scope};
use super::{Outcome, RunError, RunOptions, Session};
use crate::abi::hook;
use crate::leak::{self, Delta, Rule, Series, Snapshot, Verdict, WholeSeries};
use crate::plan::PlannedLayer;
use crate::text::GuestText;

/// The latest counters snapshot that is still the guest's state, so that consecutive
/// measurements share one snapshot instead of taking two.
struct Meter {
    on: bool,
    last: Option<Snapshot>,
}

impl Meter {
    /// The state now: the last snapshot if nothing ran since, else a new one.
    fn now(&mut self, session: &mut Session<'_>) -> Result<Snapshot, RunError> {
        match self.last.take() {
            Some(snapshot) => Ok(snapshot),
            None => session.snapshot(),
        }
    }

    /// Something ran unmeasured: the last snapshot no longer holds.
    fn stale(&mut self) {
        self.last = None;
    }

    /// Makes sure a snapshot of the state now is held, when measuring.
    fn settle(&mut self, session: &mut Session<'_>) -> Result<Option<&Snapshot>, RunError> {
        if self.on && self.last.is_none() {
            self.last = Some(session.snapshot()?);
        }
        Ok(self.last.as_ref())
    }
}

/// How a test left its layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LayerState {
    Intact,
    /// Setting the layer up again in a fresh instance failed; its remaining tests cannot run.
    Lost,
}

/// How an iteration ended.
enum IterationEnd {
    /// It ran every test.
    Whole(Counts),
    /// The layer was lost or `-x` stopped it; it measured nothing.
    CutShort { counts: Counts, flow: Flow },
}

/// One layer's run: its iterations, and the series its verdict is drawn from.
pub(super) struct LayerRun<'p> {
    cx: Scope<'p>,
    /// The layer's position in the plan.
    position: usize,
    planned: &'p PlannedLayer,
    options: &'p RunOptions,
    layer: LayerRef,
    /// Layers whose testSetUp and testTearDown run around each test, most basic first.
    test_hooks: Vec<usize>,
    /// The names of the testSetUp and the testTearDown causes, when any of them has the
    /// hook: each is then a cause of its own in the series, after the tests.
    hook_causes: [Option<GuestText>; 2],
    /// This iteration's changes by the testSetUp and the testTearDown hooks, summed over tests.
    hook_deltas: [Option<Delta>; 2],
    /// Whether this iteration measures the per-test hooks apart from the test bodies.
    split_phases: bool,
    rule: WholeSeries,
    series: Series,
}

/// The name a per-test hook goes by as a cause: `testSetUp of LAYER` (the layers that
/// have the hook, most specific last).
fn hook_cause(kind: &str, layers: &[&GuestText]) -> GuestText {
    let names: Vec<&str> = layers.iter().map(|l| l.raw()).collect();
    GuestText::from(format!("{kind} of {}", names.join(", ")))
}

/// Adds `delta` into `sum`.
fn accumulate(sum: &mut Option<Delta>, delta: &Delta) {
    let total = sum.get_or_insert_with(Delta::default);
    *total = leak::sum(total, delta);
}

impl<'p> LayerRun<'p> {
    /// A run of the layer at `position` of the plan, which is set up.
    pub fn new(cx: Scope<'p>, position: usize, options: &'p RunOptions) -> Self {
        let planned = &cx.plan.layers[position];
        let graph = &cx.plan.graph;
        let test_hooks: Vec<usize> = graph
            .test_hook_order(planned.layer)
            .into_iter()
            .filter(|&l| graph.layers[l].flags.test_set_up || graph.layers[l].flags.test_tear_down)
            .collect();
        let with = |flag: fn(&crate::abi::LayerFlags) -> bool| -> Vec<&GuestText> {
            test_hooks.iter().filter(|&&l| flag(&graph.layers[l].flags)).map(|&l| graph.name(l)).collect()
        };
        let (set_ups, tear_downs) = (with(|f| f.test_set_up), with(|f| f.test_tear_down));
        let hook_causes = [
            (!set_ups.is_empty()).then(|| hook_cause("testSetUp", &set_ups)),
            (!tear_downs.is_empty()).then(|| hook_cause("testTearDown", &tear_downs)),
        ];
        let mut causes: Vec<GuestText> =
            planned.tests.iter().map(|&t| cx.plan.test_names[t as usize].clone()).collect();
        causes.extend(hook_causes.iter().flatten().cloned());
        LayerRun {
            cx,
            position,
            planned,
            options,
            layer: cx.layer(planned.layer),
            test_hooks,
            hook_causes,
            hook_deltas: [None, None],
            split_phases: false,
            rule: WholeSeries,
            series: Series::new(options.warmup, causes),
        }
    }

    /// Iterations announced in advance (`-N`).
    fn planned_iterations(&self) -> u32 {
        self.options.repeat.max(1)
    }

    /// Whether another iteration is due after `done`: the one place the loop's bound
    /// lives. Past `-N`, iterations are added while the verdict is undecided, up to
    /// `--max-iterations`.
    fn another(&self, done: u32) -> bool {
        if done < self.planned_iterations() {
            return true;
        }
        if !self.options.measure || done >= self.options.max_iterations {
            return false;
        }
        let verdict = self.rule.judge(&self.layer.name, &self.series);
        // Also a leak whose growth came while its causes went unmeasured (or unsplit),
        // until a cause can be named, and capacity growth, until it settles.
        verdict.wants_more()
    }

    /// Runs the iterations, then, when measuring, gives the verdict and, for a leak, the
    /// allocation stacks from a traced replay of the same iterations.
    pub fn run(
        mut self,
        driver: &mut SessionDriver<'_, '_, '_>,
        stack: &mut LayerStack,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<LayerEnd, RunError> {
        let mut meter = Meter { on: self.options.measure, last: None };
        meter.settle(driver.session)?;
        let mut io = Io { driver, stack, sink, summary, meter };
        let (mut done, mut last) = (0, Counts::default());
        while self.another(done) {
            done += 1;
            match self.iteration(done, &mut io)? {
                IterationEnd::Whole(counts) => last = counts,
                IterationEnd::CutShort { counts, flow } => {
                    io.summary.tests += counts.tests;
                    return Ok(LayerEnd { flow, leak: None });
                }
            }
        }
        // zope's Total counts each layer's tests once: those of its last iteration.
        io.summary.tests += last.tests;
        let leak = match self.options.measure {
            true => self.conclude(done, &mut io),
            false => None,
        };
        Ok(LayerEnd { flow: Flow::Continue, leak })
    }

    /// The verdict on the `done` iterations and, for a leak, its stacks: emitted, counted
    /// in the summary, and returned for the policy.
    fn conclude(&self, done: u32, io: &mut Io<'_, '_, '_, '_, '_>) -> Option<LayerLeak> {
        let mut verdict = self.rule.judge(&self.layer.name, &self.series);
        let mut stacks = None;
        if verdict.leaks() && self.options.stacks {
            let replayed = self.replay(done, &verdict, io);
            if let Some(witness) = replayed.witness {
                verdict = verdict.witnessed(witness);
            }
            stacks = verdict.leaks().then_some(replayed.stacks);
        }
        if verdict.leaks() {
            io.summary.leaks.push(verdict.clone());
        } else if verdict.undecided() {
            io.summary.undecided.push(verdict.clone());
        }
        let (suite, layer) = (self.cx.suite, self.layer.clone());
        io.sink.send(Event::Verdict { suite, layer: layer.clone(), verdict: Box::new(verdict.clone()) });
        if let Some(stacks) = &stacks {
            io.sink.send(Event::LeakStacks { suite, layer, stacks: Box::new(stacks.clone()) });
        }
        verdict.leaks().then_some(LayerLeak { verdict, stacks })
    }

    /// The traced replay of the `done` iterations, for the causes `verdict` names.
    fn replay(&self, done: u32, verdict: &Verdict, io: &Io<'_, '_, '_, '_, '_>) -> Replayed {
        let named: Vec<GuestText> = verdict.tests.iter().map(|t| t.test.clone()).collect();
        let causes = Causes {
            tests: &self.cx.plan.test_names,
            test_set_up: self.hook_causes[0].as_ref(),
            test_tear_down: self.hook_causes[1].as_ref(),
            named: &named,
        };
        let replay = self.options.replay(done);
        let (session, first) = (&*io.driver.session, &self.series.deltas());
        self.cx.replay.stacks(session, self.cx, self.position, &replay, first, &causes)
    }

    fn iteration(&mut self, iteration: u32, io: &mut Io<'_, '_, '_, '_, '_>) -> Result<IterationEnd, RunError> {
        let (suite, layer, planned) = (self.cx.suite, self.layer.clone(), self.planned_iterations());
        io.sink.send(Event::IterationStarted { suite, layer: layer.clone(), iteration, planned });
        let started = Instant::now();
        let start = io.meter.last.clone();
        let generation = io.driver.session.generation();
        let mut counts = Counts::default();
        let measure = self.options.measure && self.rule.needs_causes(&self.series);
        // Splitting a test's change by phase costs two snapshots more; it is only needed to
        // blame a hook, so only once the layer has grown.
        self.split_phases = measure && self.series.grew_yet();
        self.hook_deltas = [None, None];
        for (position, &test) in self.planned.tests.iter().enumerate() {
            let (state, delta, whole) = self.test(test, iteration, measure, io, &mut counts)?;
            self.series.record_test(position, delta, whole);
            let stop = self.options.stop_on_error && counts.failures + counts.errors > 0;
            if stop {
                io.sink.send(Event::Stopped { suite, after: self.cx.plan.test_names[test as usize].clone() });
            }
            if state == LayerState::Lost || stop {
                // The partial iteration still reports what ran, but measures nothing.
                let elapsed = started.elapsed();
                io.sink.send(Event::IterationFinished {
                    suite,
                    layer,
                    iteration,
                    planned,
                    counts,
                    elapsed,
                    snapshot: None,
                    delta: None,
                    broken: true,
                });
                self.record_hooks();
                io.summary.add(&counts);
                let flow = if stop { Flow::Stop } else { Flow::Continue };
                return Ok(IterationEnd::CutShort { counts, flow });
            }
        }
        let elapsed = started.elapsed();
        let broken = io.driver.session.generation() != generation;
        let end = io.meter.settle(io.driver.session)?.cloned();
        let delta = match (&start, &end) {
            (Some(before), Some(after)) if !broken => Some(leak::diff(before, after)),
            _ => None,
        };
        io.sink.send(Event::IterationFinished {
            suite,
            layer,
            iteration,
            planned,
            counts,
            elapsed,
            snapshot: end.map(Box::new),
            delta: delta.clone().map(Box::new),
            broken,
        });
        self.record_hooks();
        self.series.record_iteration(delta, broken);
        io.summary.add(&counts);
        Ok(IterationEnd::Whole(counts))
    }

    /// Runs one test inside its layers' per-test hooks and, when `measure`, returns what
    /// it changed (its body, and the whole test when the hooks were measured apart);
    /// after a trap the layer is set up again in a fresh instance.
    fn test(
        &mut self,
        test: u32,
        iteration: u32,
        measure: bool,
        io: &mut Io<'_, '_, '_, '_, '_>,
        counts: &mut Counts,
    ) -> Result<(LayerState, Option<Delta>, Option<Delta>), RunError> {
        let (suite, cx) = (self.cx.suite, self.cx);
        let before = match measure {
            true => Some(io.meter.now(io.driver.session)?),
            false => {
                io.meter.stale();
                None
            }
        };
        let (at, name) = (TestAt { suite, layer: self.layer.id, test: TestId(test), iteration }, cx.test_name(test));
        io.sink.test_started(at, name);
        let started = Instant::now();
        let split = measure && self.split_phases && !self.test_hooks.is_empty();
        let session = &mut *io.driver.session;
        let (mut outcome, mut trapped, entered) = self.test_set_ups(session)?;
        let after_set_up = if split && !trapped { Some(session.snapshot()?) } else { None };
        if outcome == Outcome::Pass {
            let result = session.call_test(test)?;
            (outcome, trapped) = (result.outcome, result.trapped);
        }
        let after_body = if split && !trapped { Some(session.snapshot()?) } else { None };
        if !trapped {
            trapped = self.test_tear_downs(session, entered, &mut outcome)?;
        }
        let elapsed = started.elapsed();
        let output = session.take_output();
        counts.record(&outcome);
        let (delta, phases) = match (trapped, before) {
            (false, Some(before)) => {
                let after = session.snapshot()?;
                let phases = after_set_up.zip(after_body).map(|(set_up, body)| {
                    Box::new(Phases {
                        test_set_up: leak::diff(&before, &set_up),
                        body: leak::diff(&set_up, &body),
                        test_tear_down: leak::diff(&body, &after),
                    })
                });
                let delta = leak::diff(&before, &after);
                io.meter.last = Some(after);
                (Some(delta), phases)
            }
            _ => (None, None),
        };
        // With per-test hooks, the test answers for its body and the hooks for themselves.
        let (cause, whole) = match &phases {
            Some(phases) => {
                accumulate(&mut self.hook_deltas[0], &phases.test_set_up);
                accumulate(&mut self.hook_deltas[1], &phases.test_tear_down);
                (Some(phases.body.clone()), delta.clone())
            }
            None => (delta.clone(), None),
        };
        let delta_event = delta.clone().map(Box::new);
        io.sink.test_finished(TestEnd { at, name, outcome, output, elapsed, delta: delta_event, phases });
        match trapped {
            false => Ok((LayerState::Intact, cause, whole)),
            true => Ok((self.recover(test, io)?, None, None)),
        }
    }

    /// After test `test` trapped: the layer set up again in a fresh instance, or lost.
    fn recover(&self, test: u32, io: &mut Io<'_, '_, '_, '_, '_>) -> Result<LayerState, RunError> {
        let cx = self.cx;
        io.driver.session.discard_instance();
        io.stack.instance_lost();
        let reason = FreshReason::Trap(cx.plan.test_names[test as usize].clone());
        let during = Some(LayerId(self.planned.layer as u32));
        io.sink.send(Event::FreshInstance { suite: cx.suite, during, reason });
        match io.stack.set_up(cx, self.planned.layer, true, io.driver, io.sink, io.summary)? {
            true => Ok(LayerState::Intact),
            false => Ok(LayerState::Lost),
        }
    }

    /// Closes the iteration's hook causes: their summed changes, after the tests.
    fn record_hooks(&mut self) {
        let mut position = self.planned.tests.len();
        for (present, delta) in self.hook_causes.iter().zip(std::mem::take(&mut self.hook_deltas)) {
            if present.is_some() {
                self.series.record_cause(position, delta);
                position += 1;
            }
        }
    }

    /// Calls the testSetUp hooks, most basic layer first, until one fails; returns the
    /// outcome so far, whether it trapped, and how many hooks were entered.
    fn test_set_ups(&self, session: &mut Session<'_>) -> Result<(Outcome, bool, usize), RunError> {
        for (entered, &l) in self.test_hooks.iter().enumerate() {
            let result = session.call_hook(self.cx.plan, l, hook::TEST_SET_UP)?;
            if let Outcome::Failure(m) | Outcome::Error(m) = &result.outcome {
                let message = format!("testSetUp of {} failed: {}", self.cx.plan.graph.name(l).raw(), m.raw());
                return Ok((Outcome::Error(message.into()), result.trapped, entered));
            }
        }
        Ok((Outcome::Pass, false, self.test_hooks.len()))
    }

    /// Calls the testTearDown hooks of the `entered` layers, most specific first; a
    /// failure turns a passing outcome into an error. Returns whether one trapped.
    fn test_tear_downs(
        &self,
        session: &mut Session<'_>,
        entered: usize,
        outcome: &mut Outcome,
    ) -> Result<bool, RunError> {
        for &l in self.test_hooks[..entered].iter().rev() {
            let result = session.call_hook(self.cx.plan, l, hook::TEST_TEAR_DOWN)?;
            if let Outcome::Failure(m) | Outcome::Error(m) = &result.outcome {
                if !outcome.failed() {
                    let message = format!("testTearDown of {} failed: {}", self.cx.plan.graph.name(l).raw(), m.raw());
                    *outcome = Outcome::Error(GuestText::from(message));
                }
            }
            if result.trapped {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// What a layer's iterations work on, bundled so each step takes it whole.
struct Io<'a, 's, 'e, 'p, 'k> {
    driver: &'a mut SessionDriver<'s, 'e, 'p>,
    stack: &'a mut LayerStack,
    sink: &'k mut dyn EventSink,
    summary: &'a mut Summary,
    meter: Meter,
}

/// Carries out the layer state machine's decisions in `session`.
pub(super) struct SessionDriver<'s, 'e, 'p> {
    /// The session whose instances run everything.
    pub session: &'s mut Session<'e>,
    /// The suite and plan.
    pub cx: Scope<'p>,
    /// How to run.
    pub options: &'p RunOptions,
}

impl LayerDriver for SessionDriver<'_, '_, '_> {
    fn begin(&mut self, _position: usize) -> Result<(), RunError> {
        Ok(())
    }

    fn call(&mut self, layer: usize, which: LayerHook) -> Result<Option<HookCall>, RunError> {
        let code = match which {
            // A set-up needs an instance even when the layer has no hook (the unit-test
            // layer): its tests run in it.
            LayerHook::SetUp => {
                self.session.instance()?;
                hook::SET_UP
            }
            LayerHook::TearDown => hook::TEAR_DOWN,
        };
        let started = Instant::now();
        let result = self.session.call_hook(self.cx.plan, layer, code)?;
        let elapsed = started.elapsed();
        Ok(Some(HookCall::new(result, elapsed, self.session.take_output())))
    }

    fn lose_instance(&mut self) {
        self.session.discard_instance();
    }

    fn run_layer(
        &mut self,
        position: usize,
        stack: &mut LayerStack,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<LayerEnd, RunError> {
        let (cx, options) = (self.cx, self.options);
        LayerRun::new(cx, position, options).run(self, stack, sink, summary)
    }
}
