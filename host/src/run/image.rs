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
pub use crate::suite::instrument::{code_allows_snapshots, GLOBAL_EXPORT_PREFIX};

/// Environment variable that turns snapshots off (`LEAKHOST_NO_SNAPSHOT=1`): every
/// fresh instance runs the guest's start-up again. For testing that both agree.
pub const NO_SNAPSHOT_ENV: &str = "LEAKHOST_NO_SNAPSHOT";

/// A wasm page.
const PAGE: usize = 64 * 1024;
/// The granularity at which a snapshot's memory is compared with a fresh one.
const CHUNK: usize = 4096;

/// An initialised instance's state, from which fresh instances start.
pub struct InitImage {
    memory: Vec<u8>,
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
            memory: memory.data(&*store).to_vec(),
            globals,
            world: store.data().world(),
            dirty: OnceLock::new(),
        }
    }

    /// Gives a just-instantiated `instance` this image's state.
    pub fn restore(&self, store: &mut Store<GuestState>, instance: &Instance, memory: Memory) -> Result<(), String> {
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
            data[range.clone()].copy_from_slice(&self.memory[range.clone()]);
        }
        self.set_globals_and_world(store, instance)
    }

    /// Puts an instance of the snapshot's module, whose calls may have changed anything
    /// but its tables, back into this image's state, in place; `false` when its memory
    /// has grown since (a memory cannot shrink, so only a fresh instance will do).
    pub fn reset(&self, store: &mut Store<GuestState>, instance: &Instance, memory: Memory) -> Result<bool, String> {
        let data = memory.data_mut(&mut *store);
        if data.len() != self.memory.len() {
            return Ok(false);
        }
        // A test touches few pages; comparing is much cheaper than copying everything.
        for (now, then) in data.chunks_mut(CHUNK).zip(self.memory.chunks(CHUNK)) {
            if now != then {
                now.copy_from_slice(then);
            }
        }
        self.set_globals_and_world(store, instance)?;
        Ok(true)
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

/// The chunks of `snapshot` that differ from `fresh` (zero past its end), merged into runs.
fn dirty_chunks(snapshot: &[u8], fresh: &[u8]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for start in (0..snapshot.len()).step_by(CHUNK) {
        let end = (start + CHUNK).min(snapshot.len());
        let chunk = &snapshot[start..end];
        let same = match fresh.get(start..end) {
            Some(old) => old == chunk,
            None => chunk.iter().all(|&b| b == 0),
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

    #[test]
    fn dirty_chunks_cover_every_difference_and_grown_memory() {
        let fresh = vec![0u8; 4 * CHUNK];
        let mut snap = vec![0u8; 6 * CHUNK];
        snap[CHUNK + 5] = 1;
        snap[2 * CHUNK] = 2;
        snap[5 * CHUNK + 1] = 3;
        assert_eq!(dirty_chunks(&snap, &fresh), [CHUNK..3 * CHUNK, 5 * CHUNK..6 * CHUNK]);
    }
}
