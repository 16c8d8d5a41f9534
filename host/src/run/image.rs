//! Snapshots of an initialised instance, so that fresh instances skip the guest's
//! start-up (`_initialize`, the suite's `declare`, the first manifest read).
//!
//! wasmtime only lets the host see exported globals, so a suite is loaded with one
//! extra export per mutable global (`suite::instrument`); nothing else about the module
//! changes. After the first instance has started and its manifest was read, its linear
//! memory, its mutable globals (the stack pointer among them) and its WASI world (fake
//! clock, random stream positions) are copied into an [`InitImage`]. A fresh instance
//! is then instantiated without calling anything in it, and given the image: the pages
//! that differ from a just-instantiated memory, the grown pages, the globals and the
//! world. The suite cannot tell it from one that ran its own start-up.
//!
//! Modules whose code can change a table or re-initialise memory from a segment
//! (`table.set`/`grow`/`fill`/`copy`/`init`, `elem.drop`, `memory.init`, `data.drop`)
//! are not snapshotted: a table holds functions of one instance that cannot be carried
//! into another. Neither are runs with `--dir` (descriptors opened during start-up live
//! in the host) or `--real-world`. Those suites start every instance the slow way.

use std::ops::Range;
use std::sync::OnceLock;

use wasmtime::{Instance, Memory, Store, Val};

use crate::sandbox::{GuestState, WorldState};
pub use crate::suite::instrument::GLOBAL_EXPORT_PREFIX;
use written::WrittenPages;

mod written;

/// Environment variable that turns snapshots off (`LEAKHOST_NO_SNAPSHOT=1`): every
/// fresh instance runs the guest's start-up again. For testing that both agree.
pub const NO_SNAPSHOT_ENV: &str = "LEAKHOST_NO_SNAPSHOT";

/// A wasm page.
const PAGE: usize = 64 * 1024;
/// The granularity at which a snapshot's memory is compared with a fresh one: a page, the
/// unit in which writes are tracked.
const CHUNK: usize = written::PAGE;

/// How an instance's resets find what its calls changed.
#[derive(Default)]
pub enum WriteTracking {
    /// Not known yet: the next reset compares all of memory, then starts tracking.
    #[default]
    Start,
    /// The kernel notes the pages written since the last reset.
    On(WrittenPages),
    /// Every reset compares all of memory (no kernel support, or the calls write so much
    /// of it that comparing is cheaper than tracking).
    Off,
}

impl WriteTracking {
    /// Tracks writes to `memory` from now on, where the kernel can.
    fn start(memory: &[u8]) -> Self {
        WrittenPages::track(memory).map_or(WriteTracking::Off, WriteTracking::On)
    }
}

/// An initialised instance's state, from which fresh instances start.
pub struct InitImage {
    memory: SparseMemory,
    /// The mutable globals' export names and values.
    globals: Vec<(String, Val)>,
    world: Option<WorldState>,
    /// The parts of `memory` that differ from a just-instantiated instance's,
    /// found by the first restore.
    dirty: OnceLock<Vec<Range<usize>>>,
}

impl InitImage {
    /// Copies the state of `instance`.
    pub fn capture(store: &mut Store<GuestState>, instance: &Instance, memory: Memory) -> Self {
        let names: Vec<String> = instance
            .exports(&mut *store)
            .map(|export| export.name())
            .filter(|name| name.starts_with(GLOBAL_EXPORT_PREFIX))
            .map(str::to_string)
            .collect();
        let mut globals = Vec::with_capacity(names.len());
        for name in names {
            if let Some(global) = instance.get_global(&mut *store, &name) {
                globals.push((name, global.get(&mut *store)));
            }
        }
        InitImage {
            memory: SparseMemory::copy(memory.data(&*store)),
            globals,
            world: store.data().world(),
            dirty: OnceLock::new(),
        }
    }

    /// Gives a just-instantiated `instance` this image's state; its writes are tracked
    /// from then on, where the kernel can, for [`Self::reset`].
    pub fn restore(
        &self,
        store: &mut Store<GuestState>,
        instance: &Instance,
        memory: Memory,
    ) -> Result<WriteTracking, String> {
        let have = memory.data_size(&*store);
        if self.memory.len() < have {
            return Err("a fresh instance's memory is larger than the snapshot's".into());
        }
        let dirty = self.dirty.get_or_init(|| dirty_chunks(&self.memory, memory.data(&*store)));
        if self.memory.len() > have {
            memory.grow(&mut *store, ((self.memory.len() - have) / PAGE) as u64).map_err(|e| format!("{e:#}"))?;
        }
        let data = memory.data_mut(&mut *store);
        for range in dirty {
            for start in range.clone().step_by(CHUNK) {
                data[start..start + CHUNK].copy_from_slice(self.memory.chunk(start / CHUNK));
            }
        }
        let tracking = WriteTracking::start(data);
        self.set_globals_and_world(store, instance)?;
        Ok(tracking)
    }

    /// Puts an instance of the snapshot's module, whose calls may have changed anything
    /// but its tables, back into this image's state, in place; `false` when its memory
    /// has grown since (a memory cannot shrink, so only a fresh instance will do).
    ///
    /// With `tracking` on, only the pages written since the last reset are compared: a
    /// layer of bigsuite (benches/gen.py) writes a few dozen of its 592 pages, and comparing
    /// them all was a fifth of a `-j` worker's time.
    pub fn reset(
        &self,
        store: &mut Store<GuestState>,
        instance: &Instance,
        memory: Memory,
        tracking: &mut WriteTracking,
    ) -> Result<bool, String> {
        let data = memory.data_mut(&mut *store);
        if data.len() != self.memory.len() {
            return Ok(false);
        }
        let mut written = Vec::new();
        match tracking {
            WriteTracking::On(pages) if pages.covers(data) && pages.written(&mut written) => {
                let mut count = 0;
                for i in written::pages(&written) {
                    self.restore_chunk(data, i);
                    count += 1;
                }
                // A tracked write costs a fault; past an eighth of memory, comparing costs less.
                if count > data.len() / CHUNK / 8 || !pages.protect() {
                    *tracking = WriteTracking::Off;
                }
            }
            _ => {
                // A test touches few pages; comparing is much cheaper than copying everything
                // (and a zero chunk is compared with one 4 KiB of zeros that stays in cache).
                for i in 0..data.len() / CHUNK {
                    self.restore_chunk(data, i);
                }
                if !matches!(tracking, WriteTracking::Off) {
                    *tracking = WriteTracking::start(data);
                }
            }
        }
        self.set_globals_and_world(store, instance)?;
        Ok(true)
    }

    /// Puts chunk `i` of `data` back to the image's, when it differs.
    fn restore_chunk(&self, data: &mut [u8], i: usize) {
        let (now, then) = (&mut data[i * CHUNK..(i + 1) * CHUNK], self.memory.chunk(i));
        if now != then {
            now.copy_from_slice(then);
        }
    }

    fn set_globals_and_world(&self, store: &mut Store<GuestState>, instance: &Instance) -> Result<(), String> {
        for (name, value) in &self.globals {
            let global = instance.get_global(&mut *store, name).ok_or_else(|| format!("no export {name}"))?;
            global.set(&mut *store, *value).map_err(|e| format!("{name}: {e:#}"))?;
        }
        if let Some(world) = &self.world {
            store.data_mut().restore_world(world);
        }
        Ok(())
    }
}

/// Zeros, to compare and copy a zero chunk from.
static ZERO_CHUNK: [u8; CHUNK] = [0; CHUNK];

/// A linear memory's bytes without its all-zero chunks: most of a fresh guest's memory
/// (its stack, its unused heap) is zero, and copying those pages cost a page fault each,
/// a third of a small suite's start-up.
struct SparseMemory {
    len: usize,
    /// For each chunk, the index of its bytes in `bytes`, or [`SparseMemory::ZERO`].
    at: Vec<u32>,
    bytes: Vec<u8>,
}

impl SparseMemory {
    const ZERO: u32 = u32::MAX;

    /// A copy of `memory` (a whole number of wasm pages).
    fn copy(memory: &[u8]) -> Self {
        debug_assert_eq!(memory.len() % CHUNK, 0);
        let kept: Vec<usize> =
            (0..memory.len() / CHUNK).filter(|&i| memory[i * CHUNK..(i + 1) * CHUNK] != ZERO_CHUNK).collect();
        let mut at = vec![Self::ZERO; memory.len() / CHUNK];
        let mut bytes = Vec::with_capacity(kept.len() * CHUNK);
        for (n, &i) in kept.iter().enumerate() {
            at[i] = n as u32;
            bytes.extend_from_slice(&memory[i * CHUNK..(i + 1) * CHUNK]);
        }
        SparseMemory { len: memory.len(), at, bytes }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// The bytes of chunk `i`.
    fn chunk(&self, i: usize) -> &[u8] {
        match self.at[i] {
            Self::ZERO => &ZERO_CHUNK,
            n => &self.bytes[n as usize * CHUNK..(n as usize + 1) * CHUNK],
        }
    }
}

/// The chunks of `snapshot` that differ from `fresh` (zero past its end), merged into runs.
fn dirty_chunks(snapshot: &SparseMemory, fresh: &[u8]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for start in (0..snapshot.len()).step_by(CHUNK) {
        let end = start + CHUNK;
        let chunk = snapshot.chunk(start / CHUNK);
        let same = match fresh.get(start..end) {
            Some(old) => old == chunk,
            None => chunk == ZERO_CHUNK,
        };
        if same {
            continue;
        }
        match runs.last_mut() {
            Some(last) if last.end == start => last.end = end,
            _ => runs.push(start..end),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{self, Capture, Policy};

    /// A module whose memory (4 pages, growable) the test writes through `poke`.
    const POKE: &str = r#"(module
        (memory (export "memory") 4 8)
        (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
        (func (export "grow") (result i32) (memory.grow (i32.const 1)))
        (data (i32.const 70000) "start-up"))"#;

    /// Resets after random writes leave memory as the image, tracked or compared, and
    /// tracking (where the kernel has it) lists the written pages (a written page that
    /// went unlisted would fail the equality).
    #[test]
    fn a_reset_puts_back_every_written_page() {
        let policy = Policy::default();
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, wat::parse_str(POKE).unwrap()).unwrap();
        let mut store = sandbox::store(&engine, &policy, &Capture::for_policy(&policy)).unwrap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let memory = instance.get_memory(&mut store, "memory").unwrap();
        let poke = instance.get_typed_func::<(i32, i32), ()>(&mut store, "poke").unwrap();
        poke.call(&mut store, (5, 1)).unwrap();
        let image = InitImage::capture(&mut store, &instance, memory);
        let expected = memory.data(&store).to_vec();
        let mut tracking = WriteTracking::Start;
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..40 {
            for _ in 0..round % 7 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let addr = (seed % expected.len() as u64) as i32;
                poke.call(&mut store, (addr, (seed >> 32) as i32 | 1)).unwrap();
            }
            assert!(image.reset(&mut store, &instance, memory, &mut tracking).unwrap());
            assert!(memory.data(&store) == &expected[..], "round {round}");
            if round == 1 && WrittenPages::track(memory.data(&store)).is_some() {
                assert!(matches!(tracking, WriteTracking::On(_)), "tracking starts after the first reset");
            }
        }
        // Grown memory cannot shrink back: the reset declines.
        let grow = instance.get_typed_func::<(), i32>(&mut store, "grow").unwrap();
        assert_eq!(grow.call(&mut store, ()).unwrap(), 4);
        assert!(!image.reset(&mut store, &instance, memory, &mut tracking).unwrap());
    }

    #[test]
    fn dirty_chunks_cover_every_difference_and_grown_memory() {
        let fresh = vec![0u8; 4 * CHUNK];
        let mut snap = vec![0u8; 6 * CHUNK];
        snap[CHUNK + 5] = 1;
        snap[2 * CHUNK] = 2;
        snap[5 * CHUNK + 1] = 3;
        let sparse = SparseMemory::copy(&snap);
        assert_eq!(sparse.bytes.len(), 3 * CHUNK, "zero chunks are not kept");
        assert_eq!(dirty_chunks(&sparse, &fresh), [CHUNK..3 * CHUNK, 5 * CHUNK..6 * CHUNK]);
        let whole: Vec<u8> = (0..6).flat_map(|i| sparse.chunk(i).to_vec()).collect();
        assert_eq!(whole, snap);
    }
}
