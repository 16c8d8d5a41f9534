//! The host side of allocation accounting by instrumentation (docs/abi.md §12): the
//! function an instrumented module's allocator wrappers call, the counts it keeps per
//! instance, and the switch that turns the reports on.
//!
//! The function reaches the module through a table the module defines (an import would
//! have shifted every function index), filled after instantiation. A fresh instance
//! started from a snapshot gets the snapshot's counts with the rest of its world.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Caller, Func, Instance, Ref, Store, Val};

use super::{AllocCall, GuestState};
use crate::suite::instrument::{report_kind as kind, COUNT_SWITCH, HOOKS_TABLE, TRACE_SWITCH};

/// The most C blocks whose sizes an instance's account remembers (`free` carries no
/// size). A guest cannot hold more live blocks in its default 256 MiB than this many of
/// 64 bytes; past it, sizes are forgotten and those blocks' bytes are never taken back.
pub const MAX_REMEMBERED_BLOCKS: usize = 1 << 22;

/// An instance's heap as its allocator wrappers reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllocAccount {
    /// Blocks allocated and not freed.
    pub live_blocks: u64,
    /// Their requested bytes.
    pub live_bytes: u64,
    /// Allocations and reallocations ever made.
    pub total_allocs: u64,
    /// The sizes of live blocks of the C family, by address.
    sizes: Arc<HashMap<u32, u32, foldhash::fast::RandomState>>,
}

impl AllocAccount {
    /// Records one report; returns the allocator call it stands for (with the size the
    /// account remembered for an unsized `free`), or `None` when nothing changed (a
    /// failed allocation, `free(NULL)`, an unknown kind).
    pub fn record(&mut self, report: u32, ptr: u32, size: u32, old_ptr: u32, old_size: u32) -> Option<AllocCall> {
        let c = report & kind::UNSIZED != 0;
        match report & !kind::UNSIZED {
            kind::ALLOC if ptr != 0 => {
                self.live_blocks += 1;
                self.live_bytes = self.live_bytes.wrapping_add(u64::from(size));
                self.total_allocs += 1;
                self.remember(c, ptr, size);
                Some(AllocCall { kind: kind::ALLOC, ptr, size, old_ptr: 0 })
            }
            kind::FREE if ptr != 0 => {
                let size = self.forget(c, ptr).unwrap_or(size);
                self.live_blocks = self.live_blocks.wrapping_sub(1);
                self.live_bytes = self.live_bytes.wrapping_sub(u64::from(size));
                Some(AllocCall { kind: kind::FREE, ptr, size, old_ptr: 0 })
            }
            kind::REALLOC if old_ptr == 0 => self.record(kind::ALLOC | (report & kind::UNSIZED), ptr, size, 0, 0),
            // realloc(p, 0) that freed p; any other null result left the block as it was.
            kind::REALLOC if ptr == 0 => match size {
                0 => self.record(kind::FREE | (report & kind::UNSIZED), old_ptr, old_size, 0, 0),
                _ => None,
            },
            kind::REALLOC => {
                let old_size = self.forget(c, old_ptr).unwrap_or(old_size);
                self.live_bytes = self.live_bytes.wrapping_add(u64::from(size)).wrapping_sub(u64::from(old_size));
                self.total_allocs += 1;
                self.remember(c, ptr, size);
                Some(AllocCall { kind: kind::REALLOC, ptr, size, old_ptr })
            }
            _ => None,
        }
    }

    fn remember(&mut self, c: bool, ptr: u32, size: u32) {
        if c && self.sizes.len() < MAX_REMEMBERED_BLOCKS {
            Arc::make_mut(&mut self.sizes).insert(ptr, size);
        }
    }

    fn forget(&mut self, c: bool, ptr: u32) -> Option<u32> {
        match c && self.sizes.contains_key(&ptr) {
            true => Arc::make_mut(&mut self.sizes).remove(&ptr),
            false => None,
        }
    }
}

/// How an instance's allocator wrappers are switched on.
#[derive(Debug, Clone, Copy)]
pub struct AllocSwitch {
    global: wasmtime::Global,
    /// The host keeps the module's heap counts (a libtest binary, or a suite under
    /// `LEAKHOST_HOST_ALLOC_COUNTS`): the switch was turned on at instantiation.
    pub counts: bool,
}

/// Gives a just-instantiated instance of an instrumented module the host's report
/// function, and turns its reports on if the host keeps its counts. `None` for a
/// module whose allocator was not wrapped.
pub fn install(store: &mut Store<GuestState>, instance: &Instance) -> Result<Option<AllocSwitch>, String> {
    let Some(table) = instance.get_table(&mut *store, HOOKS_TABLE) else { return Ok(None) };
    let report = Func::wrap(&mut *store, report);
    table.set(&mut *store, 0, Ref::Func(Some(report))).map_err(|e| format!("{HOOKS_TABLE}: {e:#}"))?;
    let count = instance.get_global(&mut *store, COUNT_SWITCH);
    let Some(global) = count.or_else(|| instance.get_global(&mut *store, TRACE_SWITCH)) else { return Ok(None) };
    let switch = AllocSwitch { global, counts: count.is_some() };
    if switch.counts {
        switch.on(store)?;
    }
    Ok(Some(switch))
}

impl AllocSwitch {
    /// Turns the reports on.
    pub fn on(&self, store: &mut Store<GuestState>) -> Result<(), String> {
        self.global.set(&mut *store, Val::I32(1)).map_err(|e| format!("{COUNT_SWITCH}: {e:#}"))
    }

    /// Turns the reports on and sends them to the instance's tracer too (a module that
    /// cannot trace by itself: ABI v1, or a libtest binary).
    pub fn trace(&self, store: &mut Store<GuestState>) -> Result<(), String> {
        store.data_mut().forward_allocs = true;
        self.on(store)
    }
}

/// The function the wrappers call: `(kind, ptr, size, old_ptr, old_size)`.
fn report(mut caller: Caller<'_, GuestState>, kind: i32, ptr: i32, size: i32, old_ptr: i32, old_size: i32) {
    let state = caller.data_mut();
    let Some(call) = state.alloc.record(kind as u32, ptr as u32, size as u32, old_ptr as u32, old_size as u32) else {
        return;
    };
    if !state.forward_allocs {
        return;
    }
    if let Some(tracer) = state.tracer.clone() {
        tracer.record(call, &mut || wasmtime::WasmBacktrace::force_capture(&caller));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_blocks_are_freed_by_their_remembered_size_and_rust_blocks_by_theirs() {
        let mut account = AllocAccount::default();
        account.record(kind::ALLOC | kind::UNSIZED, 16, 10, 0, 0);
        account.record(kind::ALLOC, 64, 7, 0, 0);
        assert_eq!((account.live_blocks, account.live_bytes, account.total_allocs), (2, 17, 2));
        let freed = account.record(kind::FREE | kind::UNSIZED, 16, 0, 0, 0).unwrap();
        assert_eq!(freed.size, 10);
        account.record(kind::FREE, 64, 7, 0, 0);
        assert_eq!((account.live_blocks, account.live_bytes), (0, 0));
    }

    #[test]
    fn reallocations_move_bytes_and_edge_cases_are_what_c_says() {
        let mut account = AllocAccount::default();
        account.record(kind::REALLOC | kind::UNSIZED, 32, 8, 0, 0);
        assert_eq!((account.live_blocks, account.live_bytes), (1, 8), "realloc(NULL, n) allocates");
        account.record(kind::REALLOC | kind::UNSIZED, 48, 20, 32, 0);
        assert_eq!((account.live_blocks, account.live_bytes, account.total_allocs), (1, 20, 2));
        assert_eq!(account.record(kind::REALLOC | kind::UNSIZED, 0, 99, 48, 0), None, "a failed realloc");
        account.record(kind::REALLOC | kind::UNSIZED, 0, 0, 48, 0);
        assert_eq!((account.live_blocks, account.live_bytes), (0, 0), "realloc(p, 0) freed p");
        assert_eq!(account.record(kind::FREE | kind::UNSIZED, 0, 0, 0, 0), None);
        assert_eq!(account.record(kind::ALLOC, 0, 5, 0, 0), None);
        account.record(kind::REALLOC, 80, 30, 0, 0);
        account.record(kind::REALLOC, 96, 50, 80, 30);
        assert_eq!(account.live_bytes, 50, "Rust passes the old size");
    }
}
