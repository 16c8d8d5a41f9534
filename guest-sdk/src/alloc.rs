//! The counting global allocator: live blocks, live bytes and total allocations.
//!
//! Counting is three relaxed atomic adds on wasm32 (plain loads and stores without
//! the threads proposal); no host call sits on the allocation path.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

static LIVE_BLOCKS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicU64 = AtomicU64::new(0);
static TOTAL_ALLOCS: AtomicU64 = AtomicU64::new(0);

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
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            on_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        on_dealloc(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        if !new_ptr.is_null() {
            LIVE_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size() as u64, Ordering::Relaxed);
            TOTAL_ALLOCS.fetch_add(1, Ordering::Relaxed);
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
