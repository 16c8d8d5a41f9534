//! `-j N`: layers in parallel, output in layer order.
//!
//! Each layer runs on a worker thread in a fresh instance of its own: the worker sets
//! up the layer's bases and the layer, runs its iterations and tears everything
//! down, recording the events. The main thread replays the records in zope's layer
//! order, rebuilding the set-up and tear-down sequence a serial run would print from
//! the plan, with each hook's outcome and time taken from the worker that ran it.
//! Test results and leak changes are those of the serial run; absolute heap sizes
//! (the `live blocks=` figures of `-r`) differ, because every layer starts from a
//! fresh heap instead of the previous layer's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{Counts, Event, EventSink, FreshReason, HookOutcome, Outcome, RunError, RunOptions, Session, Summary};
use crate::leak::{Delta, Snapshot, Verdict};
use crate::plan::Plan;
use crate::sandbox::CapturedOutput;

/// An event with owned data, so it can cross from a worker to the main thread.
enum Recorded {
    SetUp {
        layer: String,
        outcome: HookOutcome,
        elapsed: Duration,
        replay: bool,
    },
    TearDown {
        layer: String,
        outcome: HookOutcome,
        elapsed: Duration,
    },
    FreshInstance {
        no_tear_down: bool,
        after: String,
    },
    IterationStarted {
        layer: String,
        iteration: u32,
        of: u32,
    },
    TestStarted {
        layer: String,
        test: String,
    },
    TestFinished {
        layer: String,
        test: String,
        iteration: u32,
        outcome: Outcome,
        output: CapturedOutput,
        elapsed: Duration,
        delta: Option<Delta>,
    },
    IterationFinished {
        layer: String,
        iteration: u32,
        of: u32,
        counts: Counts,
        elapsed: Duration,
        snapshot: Option<Snapshot>,
        delta: Option<Delta>,
        broken: bool,
    },
    Verdict(Verdict),
    Stopped {
        after: String,
    },
}

impl Recorded {
    fn from_event(event: &Event<'_>) -> Option<Recorded> {
        Some(match *event {
            Event::SetUp { layer, outcome, elapsed, replay } => {
                Recorded::SetUp { layer: layer.into(), outcome: outcome.clone(), elapsed, replay }
            }
            Event::TearDown { layer, outcome, elapsed } => {
                Recorded::TearDown { layer: layer.into(), outcome: outcome.clone(), elapsed }
            }
            Event::FreshInstance { reason } => match reason {
                FreshReason::NoTearDown(after) => Recorded::FreshInstance { no_tear_down: true, after: after.into() },
                FreshReason::Trap(after) => Recorded::FreshInstance { no_tear_down: false, after: after.into() },
            },
            Event::IterationStarted { layer, iteration, of } => {
                Recorded::IterationStarted { layer: layer.into(), iteration, of }
            }
            Event::TestStarted { layer, test } => Recorded::TestStarted { layer: layer.into(), test: test.into() },
            Event::TestFinished { layer, test, iteration, outcome, output, elapsed, delta } => Recorded::TestFinished {
                layer: layer.into(),
                test: test.into(),
                iteration,
                outcome: outcome.clone(),
                output: output.clone(),
                elapsed,
                delta: delta.cloned(),
            },
            Event::IterationFinished { layer, iteration, of, counts, elapsed, snapshot, delta, broken } => {
                Recorded::IterationFinished {
                    layer: layer.into(),
                    iteration,
                    of,
                    counts,
                    elapsed,
                    snapshot: snapshot.cloned(),
                    delta: delta.cloned(),
                    broken,
                }
            }
            Event::Verdict { verdict } => Recorded::Verdict(verdict.clone()),
            Event::Stopped { after } => Recorded::Stopped { after: after.into() },
            // Layer switches and run boundaries are the replay's to emit.
            Event::SuiteStarted { .. }
            | Event::LayerStarted { .. }
            | Event::TearingDownLeftOvers
            | Event::Aborted { .. }
            | Event::Finished { .. } => return None,
        })
    }

    fn emit(&self, sink: &mut dyn EventSink) {
        let event = match self {
            Recorded::SetUp { layer, outcome, elapsed, replay } => {
                Event::SetUp { layer, outcome, elapsed: *elapsed, replay: *replay }
            }
            Recorded::TearDown { layer, outcome, elapsed } => Event::TearDown { layer, outcome, elapsed: *elapsed },
            Recorded::FreshInstance { no_tear_down, after } => Event::FreshInstance {
                reason: if *no_tear_down { FreshReason::NoTearDown(after) } else { FreshReason::Trap(after) },
            },
            Recorded::IterationStarted { layer, iteration, of } => {
                Event::IterationStarted { layer, iteration: *iteration, of: *of }
            }
            Recorded::TestStarted { layer, test } => Event::TestStarted { layer, test },
            Recorded::TestFinished { layer, test, iteration, outcome, output, elapsed, delta } => Event::TestFinished {
                layer,
                test,
                iteration: *iteration,
                outcome,
                output,
                elapsed: *elapsed,
                delta: delta.as_ref(),
            },
            Recorded::IterationFinished { layer, iteration, of, counts, elapsed, snapshot, delta, broken } => {
                Event::IterationFinished {
                    layer,
                    iteration: *iteration,
                    of: *of,
                    counts: *counts,
                    elapsed: *elapsed,
                    snapshot: snapshot.as_ref(),
                    delta: delta.as_ref(),
                    broken: *broken,
                }
            }
            Recorded::Verdict(verdict) => Event::Verdict { verdict },
            Recorded::Stopped { after } => Event::Stopped { after },
        };
        sink.emit(&event);
    }
}

#[derive(Default)]
struct Recorder(Vec<Recorded>);

impl EventSink for Recorder {
    fn emit(&mut self, event: &Event<'_>) {
        self.0.extend(Recorded::from_event(event));
    }
}

/// What a worker recorded for one layer.
struct LayerRecord {
    set_up: Vec<Recorded>,
    body: Vec<Recorded>,
    tear_down: Vec<Recorded>,
    summary: Summary,
    stopped: bool,
}

fn record_layer(
    worker: &mut Session<'_>,
    plan: &Plan,
    index: usize,
    options: &RunOptions,
) -> Result<LayerRecord, RunError> {
    let (mut set_up, mut body, mut tear_down) = (Recorder::default(), Recorder::default(), Recorder::default());
    let (summary, stopped) =
        worker.run_isolated(plan, &plan.layers[index], options, [&mut set_up, &mut body, &mut tear_down])?;
    Ok(LayerRecord { set_up: set_up.0, body: body.0, tear_down: tear_down.0, summary, stopped })
}

/// Rebuilds the serial run's layer switches from the workers' records.
struct Replay<'p> {
    plan: &'p Plan,
    /// Host layers a serial run would have set up at this point, in set-up order.
    set_up: Vec<usize>,
    /// For each set-up layer, the record (by layer position) whose worker tore it down last.
    tear_downs: HashMap<usize, usize>,
    records: Vec<Option<Vec<Recorded>>>,
}

impl Replay<'_> {
    fn tear_down_record(&self, layer: usize) -> Option<&Recorded> {
        let name = self.plan.graph.name(layer);
        let position = *self.tear_downs.get(&layer)?;
        self.records[position].as_ref()?.iter().find(|r| matches!(r, Recorded::TearDown { layer, .. } if layer == name))
    }

    /// Tears down what `keep` does not need, as serial `tear_down_unneeded` would.
    fn tear_down(&mut self, keep: Option<usize>, sink: &mut dyn EventSink, summary: &mut Summary) {
        for layer in self.plan.graph.tear_down_order(&self.set_up, keep) {
            let name = self.plan.graph.name(layer);
            if self.plan.graph.layers[layer].flags.no_tear_down {
                sink.emit(&Event::TearDown {
                    layer: name,
                    outcome: &HookOutcome::NotSupported,
                    elapsed: Duration::ZERO,
                });
                self.set_up.retain(|&l| l != layer);
                if keep.is_some() {
                    sink.emit(&Event::FreshInstance { reason: FreshReason::NoTearDown(name) });
                    self.set_up.clear();
                    return;
                }
                continue;
            }
            if let Some(record) = self.tear_down_record(layer) {
                if let Recorded::TearDown { outcome: HookOutcome::Failed(_), .. } = record {
                    summary.errors += 1;
                }
                record.emit(sink);
            }
            self.set_up.retain(|&l| l != layer);
        }
    }

    fn layer(&mut self, position: usize, record: LayerRecord, sink: &mut dyn EventSink, summary: &mut Summary) {
        let layer = self.plan.layers[position].layer;
        sink.emit(&Event::LayerStarted { layer: self.plan.graph.name(layer) });
        self.tear_down(Some(layer), sink, summary);
        for base in self.plan.graph.set_up_order(layer, &self.set_up) {
            let name = self.plan.graph.name(base);
            let Some(set_up) = record
                .set_up
                .iter()
                .find(|r| matches!(r, Recorded::SetUp { layer, replay: false, .. } if layer == name))
            else {
                break;
            };
            set_up.emit(sink);
            if !matches!(set_up, Recorded::SetUp { outcome: HookOutcome::Ok, .. }) {
                break;
            }
            self.set_up.push(base);
        }
        for event in &record.body {
            event.emit(sink);
        }
        for base in self.plan.graph.needed(layer) {
            self.tear_downs.insert(base, position);
        }
        self.records[position] = Some(record.tear_down);
        summary.absorb(record.summary);
    }
}

/// Runs the plan's layers on `options.jobs` threads and replays them in order.
pub(super) fn run(
    session: &mut Session<'_>,
    plan: &Plan,
    options: &RunOptions,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    let jobs = options.jobs.clamp(1, plan.layers.len());
    let next = AtomicUsize::new(0);
    let (results, received) = mpsc::channel::<(usize, Result<LayerRecord, RunError>)>();
    let mut replay = Replay {
        plan,
        set_up: Vec::new(),
        tear_downs: HashMap::new(),
        records: plan.layers.iter().map(|_| None).collect(),
    };
    let mut summary = Summary::default();
    let outcome = std::thread::scope(|scope| {
        for mut worker in (0..jobs).map(|_| session.fork()) {
            let (results, next) = (results.clone(), &next);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= plan.layers.len() {
                    break;
                }
                if results.send((index, record_layer(&mut worker, plan, index, options))).is_err() {
                    break;
                }
            });
        }
        drop(results);
        let mut waiting: HashMap<usize, Result<LayerRecord, RunError>> = HashMap::new();
        for position in 0..plan.layers.len() {
            let record = loop {
                if let Some(record) = waiting.remove(&position) {
                    break record;
                }
                match received.recv() {
                    Ok((index, record)) => {
                        waiting.insert(index, record);
                    }
                    Err(_) => unreachable!("every layer is sent before the workers stop"),
                }
            };
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    next.store(plan.layers.len(), Ordering::Relaxed);
                    return Err(error);
                }
            };
            let stopped = record.stopped;
            replay.layer(position, record, sink, &mut summary);
            if stopped {
                // Workers finish the layer they are on and take no more.
                next.store(plan.layers.len(), Ordering::Relaxed);
                break;
            }
        }
        Ok(())
    });
    outcome?;
    if !replay.set_up.is_empty() {
        sink.emit(&Event::TearingDownLeftOvers);
        replay.tear_down(None, sink, &mut summary);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}
