//! Allocation stacks for the layers that leak, by replay.
//!
//! A run measures without tracing. When a layer's verdict leaks, the layer is run
//! again alone, in fresh instances of a forked session, with the guest's allocation
//! tracing on (ABI v2): a first replay surveys every allocator call and finds the
//! blocks allocated in counted iterations that are still live at the end of the
//! layer; a second replay captures the stack (names only) of exactly those calls.
//! A run is deterministic, so both replays make the same calls; where they, or the
//! replay and the first run, differ, the report says so instead of guessing.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use leakhost_guest::abi::trace;

use super::event::{Event, EventSink, LayerRef};
use super::layers::Scope;
use super::parallel::{record_layer, BufferPool};
use super::{RunError, RunOptions, Session};
use crate::leak::stacks::{self, LeakStacks, LeakedBlock, RawFrame, StackId, StackTable};
use crate::leak::Delta;
use crate::sandbox::{AllocCall, AllocTracer};
use crate::suite::symbols::Symbolizer;
use crate::text::GuestText;

/// Emits a [`Event::LeakStacks`] for every layer of the suite whose verdict leaked; a
/// replay that fails gives a note instead of stacks, never a failed run.
pub(super) fn emit_stacks(
    session: &Session<'_>,
    cx: Scope<'_>,
    options: &RunOptions,
    leaking: Vec<(LayerRef, Vec<Option<Delta>>)>,
    sink: &mut dyn EventSink,
) {
    if leaking.is_empty() {
        return;
    }
    // The bytes the module was compiled from (with the exports snapshots add), so that
    // module offsets in backtraces and the DWARF's code section agree; read once per suite.
    let symbolizer = Symbolizer::new(session.module_bytes());
    for (layer, first) in leaking {
        let stacks = match session.untraceable() {
            Some(why) => LeakStacks::unavailable(why),
            None => match cx.plan.layers.iter().position(|p| p.layer == layer.id.0 as usize) {
                // The run itself went well: a replay that cannot run costs the stacks, not the run.
                Some(position) => {
                    layer_stacks(session, cx, position, options, &first, &symbolizer).unwrap_or_else(|e| {
                        LeakStacks::unavailable(format!("no allocation stacks: the replay failed: {e}"))
                    })
                }
                None => continue,
            },
        };
        sink.send(Event::LeakStacks { suite: cx.suite, layer, stacks: Box::new(stacks) });
    }
}

/// Replays the layer at `position` twice with tracing on and groups its leaked blocks.
fn layer_stacks(
    session: &Session<'_>,
    cx: Scope<'_>,
    position: usize,
    options: &RunOptions,
    first: &[Option<Delta>],
    symbolizer: &Symbolizer<'_>,
) -> Result<LeakStacks, RunError> {
    let options =
        RunOptions { measure: true, every_test_delta: false, jobs: 1, stop_on_error: false, ..options.clone() };
    let survey = replay(session, cx, position, &options, None)?;
    let wanted: HashSet<u64> = survey.survivors.iter().map(|(seq, _)| *seq).collect();
    let capture = replay(session, cx, position, &options, Some(wanted))?;
    let mut notes = Vec::new();
    if let Some(note) = compare_counts(first, &survey.deltas, options.warmup) {
        notes.push(note);
    }
    let survey_sizes: Vec<(u64, u32)> = survey.survivors.iter().map(|(seq, b)| (*seq, b.size)).collect();
    let capture_sizes: Vec<(u64, u32)> = capture.survivors.iter().map(|(seq, b)| (*seq, b.size)).collect();
    if survey_sizes != capture_sizes || survey.lost || capture.lost {
        notes.push(
            "the two replays of this layer allocated differently (or lost their instance); only blocks whose stack was captured are shown"
                .to_string(),
        );
    }
    let mut missing = (0u64, 0u64);
    let blocks: Vec<LeakedBlock> = capture
        .survivors
        .iter()
        .filter_map(|(seq, block)| match capture.captured.get(seq) {
            Some(&stack) => Some(LeakedBlock { stack, size: u64::from(block.size), test: block.test.clone() }),
            None => {
                missing = (missing.0 + 1, missing.1 + u64::from(block.size));
                None
            }
        })
        .collect();
    if missing.0 > 0 {
        notes.push(format!("{} blocks ({} bytes) have no captured stack", missing.0, missing.1));
    }
    // Every note so far says the groups may miss leaked blocks; the one below does not.
    let partial = !notes.is_empty();
    let counted = (options.repeat.max(1) as usize).saturating_sub(options.warmup);
    let groups =
        stacks::group(&blocks, counted, |id| symbolizer.frames(&session.code_map().translate(capture.table.get(id))));
    if !symbolizer.has_lines() {
        notes.push(
            "names only: the suite has no DWARF line tables (build it with debug = \"line-tables-only\" for file:line)"
                .into(),
        );
    }
    Ok(LeakStacks { groups, notes: notes.into_iter().map(GuestText::from).collect(), partial })
}

/// Says how the replay's counted deltas differ from the first run's, if they do.
fn compare_counts(first: &[Option<Delta>], replay: &[Option<Delta>], warmup: usize) -> Option<String> {
    let pairs = first.iter().zip(replay).enumerate().skip(warmup);
    for (i, (a, b)) in pairs {
        if let (Some(a), Some(b)) = (a, b) {
            if (a.blocks, a.bytes) != (b.blocks, b.bytes) {
                return Some(format!(
                    "the replay differs from the run in iteration {}: blocks {:+}, bytes {:+} then, blocks {:+}, bytes {:+} now; the stacks are the replay's",
                    i + 1,
                    a.blocks,
                    a.bytes,
                    b.blocks,
                    b.bytes
                ));
            }
        }
    }
    (first.len() != replay.len()).then(|| "the replay ran a different number of iterations than the run".to_string())
}

/// What one traced replay of a layer saw.
struct Replayed {
    /// Blocks allocated in counted iterations and live at the layer's end, by call number.
    survivors: Vec<(u64, Block)>,
    /// The stacks captured, by call number.
    captured: HashMap<u64, StackId>,
    table: StackTable,
    /// The replay's own iteration deltas.
    deltas: Vec<Option<Delta>>,
    /// A fresh instance replaced the traced one during the layer.
    lost: bool,
}

fn replay(
    session: &Session<'_>,
    cx: Scope<'_>,
    position: usize,
    options: &RunOptions,
    capture: Option<HashSet<u64>>,
) -> Result<Replayed, RunError> {
    let tracer = Arc::new(Tracer::new(options, capture));
    let mut worker = session.fork();
    worker.set_tracer(tracer.clone());
    let mut observer = Observer(tracer.clone());
    record_layer(&mut worker, cx, position, options, &mut observer, &BufferPool::default())?;
    drop(worker);
    let state = std::mem::take(&mut *tracer.lock());
    Ok(Replayed {
        survivors: state.survivors,
        captured: state.captured,
        table: state.table,
        deltas: state.deltas,
        lost: state.lost,
    })
}

/// A live block the tracer knows.
#[derive(Debug, Clone)]
struct Block {
    size: u32,
    /// The iteration it was allocated in (0: outside any).
    iteration: u32,
    test: Option<GuestText>,
    seq: u64,
}

#[derive(Default)]
struct TraceState {
    warmup: u32,
    planned: u32,
    /// The iteration running, 0 between iterations.
    iteration: u32,
    test: Option<GuestText>,
    /// Allocations (and reallocations) seen so far: a call's number in the replay.
    seq: u64,
    live: HashMap<u32, Block>,
    /// The call numbers whose stack is wanted (the second replay).
    capture: Option<HashSet<u64>>,
    captured: HashMap<u64, StackId>,
    table: StackTable,
    survivors: Vec<(u64, Block)>,
    deltas: Vec<Option<Delta>>,
    lost: bool,
}

/// The allocation tracer of one replay.
struct Tracer(Mutex<TraceState>);

impl Tracer {
    fn new(options: &RunOptions, capture: Option<HashSet<u64>>) -> Self {
        Tracer(Mutex::new(TraceState {
            warmup: options.warmup as u32,
            planned: options.repeat.max(1),
            capture,
            ..TraceState::default()
        }))
    }

    fn lock(&self) -> MutexGuard<'_, TraceState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl AllocTracer for Tracer {
    fn record(&self, call: AllocCall, backtrace: &mut dyn FnMut() -> wasmtime::WasmBacktrace) {
        let mut state = self.lock();
        match call.kind {
            trace::FREE => {
                state.live.remove(&call.ptr);
                return;
            }
            trace::REALLOC => {
                state.live.remove(&call.old_ptr);
            }
            trace::ALLOC => {}
            // An unknown kind is the guest's mistake; it must not make up a block.
            _ => return,
        }
        state.seq += 1;
        let seq = state.seq;
        let block = Block { size: call.size, iteration: state.iteration, test: state.test.clone(), seq };
        state.live.insert(call.ptr, block);
        if state.capture.as_ref().is_some_and(|wanted| wanted.contains(&seq)) {
            let frames = raw_frames(&backtrace());
            let stack = state.table.intern(frames);
            state.captured.insert(seq, stack);
        }
    }
}

fn raw_frames(backtrace: &wasmtime::WasmBacktrace) -> Vec<RawFrame> {
    backtrace
        .frames()
        .iter()
        .map(|f| RawFrame {
            func_index: f.func_index(),
            name: f.func_name().map(str::to_string),
            module_offset: f.module_offset().and_then(|o| u32::try_from(o).ok()),
        })
        .collect()
}

/// Tells the tracer where the replay is: which iteration and test allocate.
struct Observer(Arc<Tracer>);

impl EventSink for Observer {
    fn emit(&mut self, event: &Event) {
        let mut state = self.0.lock();
        match event {
            Event::IterationStarted { iteration, .. } => state.iteration = *iteration,
            Event::TestStarted { test, .. } => state.test = Some(test.name.clone()),
            Event::TestFinished { .. } => state.test = None,
            Event::FreshInstance { .. } => {
                // The old heap is gone, and with it every block the tracer knew.
                state.live.clear();
                state.lost = true;
            }
            Event::IterationFinished { iteration, delta, .. } => {
                state.deltas.push(delta.as_deref().cloned());
                if *iteration == state.planned {
                    let warmup = state.warmup;
                    let mut survivors: Vec<(u64, Block)> =
                        state.live.values().filter(|b| b.iteration > warmup).map(|b| (b.seq, b.clone())).collect();
                    survivors.sort_by_key(|(seq, _)| *seq);
                    state.survivors = survivors;
                }
                state.iteration = 0;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::compare_counts;
    use crate::leak::Delta;

    fn delta(blocks: i64, bytes: i64) -> Option<Delta> {
        Some(Delta { blocks, bytes, pages: 0, types: Vec::new(), counters: Vec::new() })
    }

    #[test]
    fn a_replay_that_matches_the_run_needs_no_note() {
        let run = [delta(5, 500), delta(1, 32), delta(1, 32)];
        assert_eq!(compare_counts(&run, &run, 1), None);
        // The warm-up iteration may differ (a fresh heap warms up differently).
        assert_eq!(compare_counts(&run, &[delta(9, 900), delta(1, 32), delta(1, 32)], 1), None);
    }

    #[test]
    fn a_replay_that_differs_says_where() {
        let run = [delta(5, 500), delta(1, 32), delta(1, 32)];
        let replay = [delta(5, 500), delta(1, 32), delta(2, 64)];
        let note = compare_counts(&run, &replay, 1).expect("a note");
        assert!(note.contains("iteration 3: blocks +1, bytes +32 then, blocks +2, bytes +64 now"), "{note}");
        assert!(compare_counts(&run, &run[..2], 1).expect("a note").contains("number of iterations"));
    }
}
