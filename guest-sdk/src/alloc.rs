//! The counting global allocator: live blocks, live bytes and total allocations.
//!
//! Counting is three relaxed atomic adds on wasm32 (plain loads and stores without
//! the threads proposal). The host call that reports each allocation for its stack
//! (ABI v2) sits behind one load of a flag that only the host sets, when it replays a
//! leaking layer: an ordinary run makes no host call on the allocation path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::abi::trace;

static LIVE_BLOCKS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static TOTAL_ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Non-zero while the host traces allocations; the host writes it through the address
/// `leakhost_trace_flag` returns.
static TRACE_FLAG: AtomicU32 = AtomicU32::new(0);

/// Where the trace flag lives, for `leakhost_trace_flag`.
pub(crate) fn trace_flag_addr() -> usize {
    &TRACE_FLAG as *const AtomicU32 as usize
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "leakhost")]
unsafe extern "C" {
    #[link_name = "trace_alloc"]
    fn host_trace_alloc(kind: u32, ptr: u32, size: u32, old_ptr: u32);
}

/// Reports one allocator call to the host when it asked for them.
#[inline(always)]
fn trace(kind: u32, ptr: *mut u8, size: usize, old_ptr: *mut u8) {
    if TRACE_FLAG.load(Ordering::Relaxed) != 0 {
        report(kind, ptr, size, old_ptr);
    }
}

// Kept out of line so the untraced path stays a load and a branch.
#[inline(never)]
#[cold]
fn report(kind: u32, ptr: *mut u8, size: usize, old_ptr: *mut u8) {
    #[cfg(target_arch = "wasm32")]
    // SAFETY: the host provides this import to every ABI v2 module; it only reads its arguments.
    unsafe {
        host_trace_alloc(kind, ptr as u32, size as u32, old_ptr as u32)
    };
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (kind, ptr, size, old_ptr);
}

/// A [`System`] allocator that counts what it hands out.
pub struct CountingAllocator;

/// Allocation counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocCounts {
    /// Blocks allocated and not yet freed.
    pub live_blocks: u64,
    /// Bytes in those blocks, as requested (not as rounded up by the allocator).
    pub live_bytes: u64,
    /// Allocations ever made, reallocations included.
    pub total_allocs: u64,
}

/// Reads the counters; reading never allocates.
pub fn counts() -> AllocCounts {
    AllocCounts {
        live_blocks: LIVE_BLOCKS.load(Ordering::Relaxed),
        live_bytes: LIVE_BYTES.load(Ordering::Relaxed),
        total_allocs: TOTAL_ALLOCS.load(Ordering::Relaxed),
    }
}

fn on_alloc(size: usize) {
    LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(size as u64, Ordering::Relaxed);
    TOTAL_ALLOCS.fetch_add(1, Ordering::Relaxed);
}

fn on_dealloc(size: usize) {
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_sub(size as u64, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            on_alloc(layout.size());
            trace(trace::ALLOC, ptr, layout.size(), std::ptr::null_mut());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            on_alloc(layout.size());
            trace(trace::ALLOC, ptr, layout.size(), std::ptr::null_mut());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        on_dealloc(layout.size());
        trace(trace::FREE, ptr, layout.size(), std::ptr::null_mut());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            LIVE_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            TOTAL_ALLOCS.fetch_add(1, Ordering::Relaxed);
            trace(trace::REALLOC, new_ptr, new_size, ptr);
        }
        new_ptr
    }
}

#[cfg(target_arch = "wasm32")]
#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_bytes_and_reallocs() {
        let a = CountingAllocator;
        let before = counts();
        let layout = Layout::from_size_align(24, 8).unwrap();
        unsafe {
            let p = a.alloc(layout);
            let q = a.realloc(p, layout, 100);
            let mid = counts();
            assert_eq!(mid.live_blocks, before.live_blocks + 1);
            assert_eq!(mid.live_bytes, before.live_bytes + 100);
            assert_eq!(mid.total_allocs, before.total_allocs + 2);
            a.dealloc(q, Layout::from_size_align(100, 8).unwrap());
        }
        let after = counts();
        assert_eq!(after.live_blocks, before.live_blocks);
        assert_eq!(after.live_bytes, before.live_bytes);
    }
}
