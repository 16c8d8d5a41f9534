//! The allocation tracer of one traced replay: it follows every live block, remembers
//! what each allocator call in a counted iteration added to a block (a new block's size,
//! a reallocation's growth) and by which call of the host (test or hook) it was made, and
//! captures the stacks of exactly the calls a second replay asks for, within a budget.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use leakhost_guest::abi::trace;

use super::super::event::{Event, EventSink};
use super::super::ReplayBudget;
use crate::leak::stacks::{RawFrame, StackId, StackTable};
use crate::leak::Delta;
use crate::sandbox::{AllocCall, AllocTracer, CallPhase};

/// The longest function name a captured frame keeps (the symbolizer caps what it shows).
const MAX_RAW_NAME: usize = 4096;

/// What one allocator call in a counted iteration added to a live block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Piece {
    /// The call's number in the replay.
    pub seq: u64,
    /// The host's call it happened in.
    pub phase: Option<CallPhase>,
    /// 1 for a new block, 0 for a reallocation.
    pub blocks: u64,
    /// Bytes it added (a reallocation that shrank a block: fewer).
    pub bytes: i64,
}

/// A live block the tracer knows.
#[derive(Debug, Clone, Default)]
struct Block {
    size: u32,
    /// What calls in counted iterations added to it; empty for a block that only older
    /// iterations touched.
    pieces: Vec<Piece>,
}

/// What a replay saw, once it is over.
#[derive(Default)]
pub(super) struct Traced {
    /// What calls in counted iterations added to the blocks live at the end of the last
    /// iteration, in call order.
    pub survivors: Vec<Piece>,
    /// Blocks and bytes live at the end, as the tracer counts them.
    pub live: (u64, u64),
    /// The stacks captured, by call number.
    pub captured: HashMap<u64, StackId>,
    pub table: StackTable,
    /// The replay's own iteration deltas.
    pub deltas: Vec<Option<Delta>>,
    /// The counters' live blocks and bytes at the end of the last iteration.
    pub counters: Option<(u64, u64)>,
    /// A fresh instance replaced the traced one during the layer.
    pub lost: bool,
    /// Why the tracer stopped recording before the end, if it did.
    pub stopped: Option<String>,
}

#[derive(Default)]
struct TraceState {
    warmup: u32,
    /// The iterations the replay runs: the last one's end is when blocks are counted.
    last: u32,
    /// The iteration running, 0 between iterations.
    iteration: u32,
    phase: Option<CallPhase>,
    /// Allocations (and reallocations) seen so far: a call's number in the replay.
    seq: u64,
    live: HashMap<u32, Block>,
    /// The call numbers whose stack is wanted (the second replay).
    capture: Option<HashSet<u64>>,
    budget: Option<ReplayBudget>,
    captures: usize,
    /// Function names by index, each copied (and capped) once.
    names: HashMap<u32, Option<Arc<str>>>,
    out: Traced,
}

/// The allocation tracer of one replay.
pub(super) struct Tracer(Mutex<TraceState>);

impl Tracer {
    /// A tracer for a replay of `iterations` iterations, the first `warmup` not counted;
    /// with `capture`, the stacks of those calls are captured.
    pub fn new(warmup: usize, iterations: u32, budget: ReplayBudget, capture: Option<HashSet<u64>>) -> Self {
        Tracer(Mutex::new(TraceState {
            warmup: warmup as u32,
            last: iterations,
            capture,
            budget: Some(budget),
            ..TraceState::default()
        }))
    }

    fn lock(&self) -> MutexGuard<'_, TraceState> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the replay saw.
    pub fn finish(&self) -> Traced {
        std::mem::take(&mut self.lock().out)
    }
}

impl TraceState {
    fn counted(&self) -> bool {
        self.iteration > self.warmup
    }

    fn stop(&mut self, why: String) {
        if self.out.stopped.is_none() {
            self.out.stopped = Some(why);
        }
    }

    fn name(&mut self, frame: &wasmtime::FrameInfo) -> Option<Arc<str>> {
        self.names
            .entry(frame.func_index())
            .or_insert_with(|| {
                frame.func_name().map(|name| {
                    let mut cut = name.len().min(MAX_RAW_NAME);
                    while !name.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    Arc::from(&name[..cut])
                })
            })
            .clone()
    }

    /// Captures the stack of call `seq` when the second replay wants it and the budget allows.
    fn capture(&mut self, seq: u64, backtrace: &mut dyn FnMut() -> wasmtime::WasmBacktrace) {
        if !self.capture.as_ref().is_some_and(|wanted| wanted.contains(&seq)) {
            return;
        }
        let budget = self.budget.unwrap_or_default();
        if self.captures >= budget.captures {
            return self.stop(format!("it captured {} stacks (--max-stack-captures)", budget.captures));
        }
        self.captures += 1;
        let backtrace = backtrace();
        let frames: Vec<RawFrame> = backtrace
            .frames()
            .iter()
            .map(|f| RawFrame {
                func_index: f.func_index(),
                name: self.name(f),
                module_offset: f.module_offset().and_then(|o| u32::try_from(o).ok()),
            })
            .collect();
        if self.out.table.len() >= budget.stacks {
            return self.stop(format!("it met {} distinct stacks (--max-distinct-stacks)", budget.stacks));
        }
        let stack = self.out.table.intern(frames);
        self.out.captured.insert(seq, stack);
    }
}

impl AllocTracer for Tracer {
    fn enter(&self, phase: CallPhase) {
        self.lock().phase = Some(phase);
    }

    fn record(&self, call: AllocCall, backtrace: &mut dyn FnMut() -> wasmtime::WasmBacktrace) {
        let mut state = self.lock();
        if state.out.stopped.is_some() {
            return;
        }
        let mut block = match call.kind {
            trace::FREE => {
                state.live.remove(&call.ptr);
                return;
            }
            trace::REALLOC => state.live.remove(&call.old_ptr).unwrap_or_default(),
            trace::ALLOC => Block::default(),
            // An unknown kind is the guest's mistake; it must not make up a block.
            _ => return,
        };
        state.seq += 1;
        let seq = state.seq;
        if state.counted() {
            // A reallocation of a block the tracer knows adds what it grew; of one it does
            // not (from before tracing began), the whole block, as a new one.
            let new_block = call.kind == trace::ALLOC || (block.size == 0 && block.pieces.is_empty());
            let bytes = i64::from(call.size) - if new_block { 0 } else { i64::from(block.size) };
            block.pieces.push(Piece { seq, phase: state.phase, blocks: u64::from(new_block), bytes });
        }
        block.size = call.size;
        let budget = state.budget.unwrap_or_default();
        if state.live.len() >= budget.traced_blocks {
            return state
                .stop(format!("more than {} blocks were live at once (--max-traced-blocks)", budget.traced_blocks));
        }
        state.live.insert(call.ptr, block);
        state.capture(seq, backtrace);
    }
}

/// Tells the tracer where the replay is: which iteration runs, when the instance is lost,
/// and when the last iteration ends.
pub(super) struct Observer(pub Arc<Tracer>);

impl EventSink for Observer {
    fn emit(&mut self, event: &Event) {
        let mut state = self.0.lock();
        match event {
            Event::IterationStarted { iteration, .. } => state.iteration = *iteration,
            Event::FreshInstance { .. } => {
                // The old heap is gone, and with it every block the tracer knew.
                state.live.clear();
                state.out.lost = true;
            }
            Event::IterationFinished { iteration, delta, snapshot, .. } => {
                state.out.deltas.push(delta.as_deref().cloned());
                if *iteration == state.last {
                    let mut survivors: Vec<Piece> =
                        state.live.values().flat_map(|b| b.pieces.iter().copied()).collect();
                    survivors.sort_by_key(|p| p.seq);
                    state.out.survivors = survivors;
                    let bytes = state.live.values().map(|b| u64::from(b.size)).sum();
                    state.out.live = (state.live.len() as u64, bytes);
                    state.out.counters = snapshot.as_ref().map(|s| (s.live_blocks, s.live_bytes));
                }
                state.iteration = 0;
            }
            _ => {}
        }
    }
}
