//! What the host keeps of a suite's names (issue 10: 131,072 tests with 4 KB names cost
//! 1.1 GB, the names held twice: decoded, then copied into the plan). The heap is counted
//! by this test's own allocator, so the figure is exact and nothing else in the process
//! (no other test, no resident pages of a parent) can move it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use leakhost::plan::{Plan, Selection};
use leakhost::run::Session;
use leakhost::sandbox::{self, Policy};
use leakhost::suite;

/// The system allocator, counting live bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A hand-written suite of `tests` unit tests whose names are `name_len` bytes each. The
/// names are overlapping windows of one buffer (each starts with its own four-character
/// number), so the guest's memory stays small whatever the names' total size.
fn suite_with_names(tests: u32, name_len: u32) -> Vec<u8> {
    let words = tests + name_len / 4 + 1;
    let wat = format!(
        r#"(module
  (memory (export "memory") 64)
  (func (export "leakhost_abi_version") (result i32) (i32.const 1))
  (func (export "leakhost_manifest") (result i32)
    (local $i i32) (local $at i32)
    ;; Word i at 0x10000 + 4i: four ASCII characters from 0x30 numbering i.
    (loop $words
      (i32.store (i32.add (i32.const 0x10000) (i32.shl (local.get $i) (i32.const 2)))
        (i32.or
          (i32.or (i32.add (i32.const 0x30) (i32.and (local.get $i) (i32.const 63)))
                  (i32.shl (i32.add (i32.const 0x30) (i32.and (i32.shr_u (local.get $i) (i32.const 6)) (i32.const 63))) (i32.const 8)))
          (i32.or (i32.shl (i32.add (i32.const 0x30) (i32.and (i32.shr_u (local.get $i) (i32.const 12)) (i32.const 63))) (i32.const 16))
                  (i32.shl (i32.add (i32.const 0x30) (i32.and (i32.shr_u (local.get $i) (i32.const 18)) (i32.const 63))) (i32.const 24)))))
      (br_if $words (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const {words}))))
    ;; Test record i at 0x200000 + 12i: its name is the {name_len} bytes from word i, in no layer.
    (local.set $i (i32.const 0))
    (loop $records
      (local.set $at (i32.add (i32.const 0x200000) (i32.mul (local.get $i) (i32.const 12))))
      (i32.store (local.get $at) (i32.add (i32.const 0x10000) (i32.shl (local.get $i) (i32.const 2))))
      (i32.store offset=4 (local.get $at) (i32.const {name_len}))
      (i32.store offset=8 (local.get $at) (i32.const -1))
      (br_if $records (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const {tests}))))
    (i32.store (i32.const 0x100) (i32.const 0x200))
    (i32.store (i32.const 0x104) (i32.const 0))
    (i32.store (i32.const 0x108) (i32.const 0x200000))
    (i32.store (i32.const 0x10c) (i32.const {tests}))
    (i32.const 0x100))
  (func (export "leakhost_status") (result i32) (i32.const 0x500))
  (func (export "leakhost_run_test") (param i32) (result i32)
    (i32.store (i32.const 0x500) (i32.const -1))
    (i32.const 0))
  (func (export "leakhost_layer_hook") (param i32 i32) (result i32)
    (i32.store (i32.const 0x500) (i32.const -1))
    (i32.const 0))
  (func (export "leakhost_counters") (result i32) (i32.const 0x600))
  (data (i32.const 0x500) "\ff\ff\ff\ff" "\00\00\00\00" "\00\00\00\00"))"#
    );
    wat::parse_str(wat).unwrap()
}

/// The most heap bytes held at once while `wasm` is loaded, started and planned, above
/// what was held before.
fn peak_heap_to_plan(wasm: &[u8], name: &str) -> usize {
    let path = std::env::temp_dir().join(format!("leakhost-names-{}-{name}.wasm", std::process::id()));
    std::fs::write(&path, wasm).unwrap();
    let policy = Policy::default();
    let engine = sandbox::engine(&policy).unwrap();
    let suite = suite::load(&engine, &path, None, &policy.module_limits).unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let session = Session::start(&engine, &suite, policy.clone()).unwrap();
    let plan = Plan::select(session.manifest(), &Selection::default());
    assert_eq!(plan.test_count(), session.manifest().tests.len());
    let peak = PEAK.load(Ordering::Relaxed) - before;
    drop((plan, session));
    let _ = std::fs::remove_file(&path);
    peak
}

#[test]
fn test_names_are_held_once() {
    const TESTS: u32 = 32_768;
    const LONG: u32 = 4096;
    let short = peak_heap_to_plan(&suite_with_names(TESTS, 8), "short");
    let long = peak_heap_to_plan(&suite_with_names(TESTS, LONG), "long");
    let names = TESTS as usize * (LONG as usize - 8);
    let grown = long.saturating_sub(short);
    // One copy of the names is 128 MiB; two would be at least 256 MiB.
    assert!(
        grown < names * 3 / 2,
        "4 KB names took {} MiB more heap than 8-byte ones (names: {} MiB)",
        grown >> 20,
        names >> 20
    );
    assert!(grown > names * 9 / 10, "the names were not all decoded? {} MiB", grown >> 20);
}

/// Writes the suites of issue 10's figure (131,072 tests, names of 4 KB and of 8 bytes) to
/// `$LEAKHOST_NAMES_DIR`, for `benches/memory.sh` to measure whole runs of: by hand only.
#[test]
#[ignore]
fn write_issue_scale_suites() {
    let dir = std::path::PathBuf::from(std::env::var("LEAKHOST_NAMES_DIR").expect("LEAKHOST_NAMES_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("names-4k.wasm"), suite_with_names(131_072, 4096)).unwrap();
    std::fs::write(dir.join("names-8.wasm"), suite_with_names(131_072, 8)).unwrap();
}
