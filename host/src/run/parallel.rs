//! `-j N`: layers in parallel, output in layer order.
//!
//! Each layer runs on a worker thread in a fresh instance of its own: the worker sets
//! up the layer's bases and the layer, runs its iterations and tears everything down,
//! recording the result of every layer hook it called and the events of the layer's
//! body. The main thread then walks the plan through the same layer state machine as
//! a serial run ([`drive`]), with a driver that answers each hook call from the
//! worker's record instead of calling the guest, and replays each body's events. Test
//! results and leak changes are those of the serial run; absolute heap sizes (the
//! `live blocks=` figures of `-r`) differ, because every layer starts from a fresh heap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};

use super::event::{Discard, Event, TestAt, TestEnd};
use super::layer_run::SessionDriver;
use super::layers::{drive, Flow, HookCall, LayerDriver, LayerEnd, LayerHook, LayerStack, Scope};
use super::{EventSink, RunError, RunOptions, Session, Summary};
use crate::leak::policy::PolicyJudge;
use crate::text::GuestText;
use record::{BodyRecord, Recorded};

mod record;

/// The hook calls a worker made, in order.
type HookLog = Vec<(usize, LayerHook, HookCall)>;

/// Passes hook calls through to a session and logs their results.
struct Logging<'d, 's, 'e, 'p> {
    inner: &'d mut SessionDriver<'s, 'e, 'p>,
    log: HookLog,
}

impl LayerDriver for Logging<'_, '_, '_, '_> {
    fn begin(&mut self, position: usize) -> Result<(), RunError> {
        self.inner.begin(position)
    }

    fn call(&mut self, layer: usize, hook: LayerHook) -> Result<Option<HookCall>, RunError> {
        let call = self.inner.call(layer, hook)?;
        if let Some(call) = &call {
            self.log.push((layer, hook, call.clone()));
        }
        Ok(call)
    }

    fn lose_instance(&mut self) {
        self.inner.lose_instance();
    }

    fn run_layer(
        &mut self,
        position: usize,
        stack: &mut LayerStack,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<LayerEnd, RunError> {
        self.inner.run_layer(position, stack, sink, summary)
    }
}

/// What a worker recorded for one layer.
pub(super) struct LayerRecord {
    /// The set-up hooks it called, bases first.
    set_up: HookLog,
    /// The events of the layer's iterations (set-ups again after traps included).
    body: Vec<Recorded>,
    /// The body's totals (tests, and errors of set-ups repeated after traps).
    summary: Summary,
    /// How it ended, with its leak.
    end: LayerEnd,
    /// The layers still set up after the body, when its instance was replaced during it.
    lost_to: Option<Vec<usize>>,
    /// The tear-down hooks it called at the end.
    tear_down: HookLog,
}

/// Records a layer's body events and shows each to an observer as it happens, but a
/// test's own: an observer follows the layer (its iterations, fresh instances), not its tests.
struct Tee<'o> {
    record: BodyRecord,
    observer: &'o mut dyn EventSink,
}

impl EventSink for Tee<'_> {
    fn emit(&mut self, event: &Event) {
        self.observer.emit(event);
        self.record.keep(event.clone());
    }

    fn send(&mut self, event: Event) {
        self.observer.emit(&event);
        self.record.keep(event);
    }

    fn test_started(&mut self, at: TestAt, _: &GuestText) {
        self.record.started(at);
    }

    fn test_finished(&mut self, end: TestEnd<'_>) {
        self.record.finished(end);
    }
}

/// Event buffers the replay has emitted, for the workers to record into again.
///
/// A layer's record holds a few events per test and iteration (megabytes for a large
/// layer); a new buffer for every layer cost a page fault per 4 KiB, most of a `-j`
/// run's system time, where a reused one costs none.
#[derive(Default)]
pub(super) struct BufferPool(Mutex<Vec<Vec<Recorded>>>);

impl BufferPool {
    /// An empty buffer with room for `capacity` events, reused when one is free.
    fn take(&self, capacity: usize) -> Vec<Recorded> {
        let mut buffer = self.0.lock().map(|mut free| free.pop()).ok().flatten().unwrap_or_default();
        buffer.reserve(capacity);
        buffer
    }

    /// Keeps `buffer`'s memory for a later layer.
    fn give_back(&self, mut buffer: Vec<Recorded>) {
        buffer.clear();
        if let Ok(mut free) = self.0.lock() {
            free.push(buffer);
        }
    }
}

/// Runs the layer at `position` alone in fresh instances of `worker`; `observer` sees
/// the body's events but a test's own as they happen (the allocation tracer follows them).
pub(super) fn record_layer(
    worker: &mut Session<'_>,
    cx: Scope<'_>,
    position: usize,
    options: &RunOptions,
    observer: &mut dyn EventSink,
    buffers: &BufferPool,
) -> Result<LayerRecord, RunError> {
    worker.discard_instance();
    let mut driver = SessionDriver { session: worker, cx, options };
    let mut stack = LayerStack::default();
    let layer = cx.plan.layers[position].layer;
    let mut logging = Logging { inner: &mut driver, log: Vec::new() };
    let set_up_ok = stack.set_up(cx, layer, false, &mut logging, &mut Discard, &mut Summary::default())?;
    let set_up = std::mem::take(&mut logging.log);
    // Growing the record by doubling copied every entry about once more (7% of a -j2 run's
    // instructions on bigsuite); a layer records about one entry per test and iteration.
    let expected = cx.plan.layers[position].tests.len() * options.repeat as usize + 16;
    let record = BodyRecord::new(buffers.take(expected));
    let (mut body, mut summary) = (Tee { record, observer }, Summary::default());
    let generation = logging.inner.session.generation();
    let end = match set_up_ok {
        true => logging.run_layer(position, &mut stack, &mut body, &mut summary)?,
        false => LayerEnd { flow: Flow::Continue, leak: None },
    };
    let lost_to = (logging.inner.session.generation() != generation).then(|| stack.layers().to_vec());
    stack.tear_down(cx, None, &mut logging, &mut Discard, &mut Summary::default())?;
    let tear_down = logging.log;
    worker.discard_instance();
    Ok(LayerRecord { set_up, body: body.record.finish(), summary, end, lost_to, tear_down })
}

/// The main thread's own share of the layers: while the record it must replay next is not
/// in, it runs the next layer no worker has taken, rather than wait (so `-j N` keeps N
/// threads busy and never a third runnable one on N cores).
struct Share<'b, 's, 'e> {
    worker: &'s mut Session<'e>,
    next: &'b AtomicUsize,
    layers: usize,
    options: &'b RunOptions,
}

/// Answers the state machine from the workers' records, in plan order.
struct Replay<'b, 'p, 's, 'e> {
    buffers: &'b BufferPool,
    cx: Scope<'p>,
    share: Share<'b, 's, 'e>,
    received: mpsc::Receiver<(usize, Result<LayerRecord, RunError>)>,
    waiting: HashMap<usize, Result<LayerRecord, RunError>>,
    records: Vec<Option<LayerRecord>>,
    current: usize,
    /// For each layer, the position of the record whose worker last had it set up,
    /// and so tore it down last.
    torn_down_by: HashMap<usize, usize>,
}

impl Replay<'_, '_, '_, '_> {
    /// Takes the next layer no thread has taken and records it here; false when none is left.
    fn help(&mut self) -> bool {
        let index = self.share.next.fetch_add(1, Ordering::Relaxed);
        if index >= self.share.layers {
            return false;
        }
        let (cx, options, buffers) = (self.cx, self.share.options, self.buffers);
        let record = record_layer(self.share.worker, cx, index, options, &mut Discard, buffers);
        self.waiting.insert(index, record);
        true
    }

    fn find(log: &HookLog, layer: usize, hook: LayerHook) -> Option<HookCall> {
        log.iter().find(|(l, h, _)| *l == layer && *h == hook).map(|(_, _, call)| call.clone())
    }
}

impl LayerDriver for Replay<'_, '_, '_, '_> {
    fn begin(&mut self, position: usize) -> Result<(), RunError> {
        let record = loop {
            if let Some(record) = self.waiting.remove(&position) {
                break record?;
            }
            match self.received.try_recv() {
                Ok((index, record)) => {
                    self.waiting.insert(index, record);
                }
                Err(mpsc::TryRecvError::Empty) if self.help() => {}
                // Every layer is taken: the one wanted is a worker's, and comes.
                Err(_) => match self.received.recv() {
                    Ok((index, record)) => {
                        self.waiting.insert(index, record);
                    }
                    Err(_) => unreachable!("every layer is recorded before the workers stop"),
                },
            }
        };
        // The last worker to have a layer set up is the one whose tear-down the serial
        // run's would match.
        for &(layer, _, _) in &record.tear_down {
            self.torn_down_by.insert(layer, position);
        }
        self.current = position;
        self.records[position] = Some(record);
        Ok(())
    }

    fn call(&mut self, layer: usize, hook: LayerHook) -> Result<Option<HookCall>, RunError> {
        let position = match hook {
            LayerHook::SetUp => Some(self.current),
            LayerHook::TearDown => self.torn_down_by.get(&layer).copied(),
        };
        let record = position.and_then(|p| self.records[p].as_ref());
        Ok(record
            .and_then(|r| Replay::find(if hook == LayerHook::SetUp { &r.set_up } else { &r.tear_down }, layer, hook)))
    }

    fn lose_instance(&mut self) {}

    fn run_layer(
        &mut self,
        position: usize,
        stack: &mut LayerStack,
        sink: &mut dyn EventSink,
        summary: &mut Summary,
    ) -> Result<LayerEnd, RunError> {
        let record = self.records[position].as_mut().expect("begin() stored the record");
        let body = std::mem::take(&mut record.body);
        record::replay(&body, self.cx, sink);
        self.buffers.give_back(body);
        if let Some(layers) = &record.lost_to {
            stack.adopt(layers);
        }
        summary.absorb(std::mem::take(&mut record.summary));
        Ok(LayerEnd { flow: record.end.flow, leak: record.end.leak.take() })
    }
}

/// Runs the plan's layers on `options.execution.jobs` threads and replays them in order; the
/// policy judges each layer's leak as the replay reaches it, as in a serial run.
pub(super) fn run(
    session: &mut Session<'_>,
    cx: Scope<'_>,
    options: &RunOptions,
    judge: Option<&mut PolicyJudge<'_>>,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunError> {
    let layers = cx.plan.layers.len();
    // The main thread records layers too, between the ones it replays.
    let jobs = options.execution.jobs.clamp(1, layers);
    let next = AtomicUsize::new(0);
    let (results, received) = mpsc::channel();
    let stack_size = worker_stack_size(session.policy().max_stack);
    let buffers = BufferPool::default();
    let mut own = session.fork_from_start_up();
    std::thread::scope(|scope| {
        for mut worker in (1..jobs).map(|_| session.fork()) {
            let (results, next, buffers) = (results.clone(), &next, &buffers);
            let spawned = std::thread::Builder::new().stack_size(stack_size).spawn_scoped(scope, move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= layers
                    || results
                        .send((index, record_layer(&mut worker, cx, index, options, &mut Discard, buffers)))
                        .is_err()
                {
                    break;
                }
            });
            if let Err(e) = spawned {
                return Err(RunError::Thread(e.to_string()));
            }
        }
        drop(results);
        let share = Share { worker: &mut own, next: &next, layers, options };
        let mut replay = Replay {
            buffers: &buffers,
            cx,
            share,
            received,
            waiting: HashMap::new(),
            records: (0..layers).map(|_| None).collect(),
            current: 0,
            torn_down_by: HashMap::new(),
        };
        let outcome = drive(cx, options, &mut replay, judge, sink);
        // Workers finish the layer they are on and take no more.
        next.store(layers, Ordering::Relaxed);
        outcome
    })
}

/// A worker runs wasm on its own native stack: it must hold the guest's whole
/// `--max-stack` plus the host frames below and around it. Those are shallow: the deep host work
/// (compiling, reading DWARF) runs on threads of its own, so 4 MiB leaves room to spare, and the
/// default `--max-stack` plus it fits a main thread's usual 8 MiB (`cli::stack`).
pub fn worker_stack_size(max_wasm_stack: usize) -> usize {
    const HOST_MARGIN: usize = 4 << 20;
    max_wasm_stack.saturating_add(HOST_MARGIN)
}
