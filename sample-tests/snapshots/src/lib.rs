//! A suite that traps often and prints everything a fresh instance could differ in, for
//! tests/e2e/snapshots.rs: a run whose fresh instances start from a snapshot of the
//! initialised one must print exactly what a run that starts each of them the slow way
//! prints.
//!
//! Start-up (`declare`) reads the clock and random bytes, grows the heap and fills a table
//! in memory; every test prints the clock, random bytes, the state start-up left, how many
//! tests this instance has run, and where its stack is. Every third test panics, so
//! nearly every test runs in a fresh instance. `test_grow_then_trap` grows memory before
//! it traps (a grown memory cannot be reset in place), `test_close_stdout` closes a WASI
//! descriptor (the fresh instance must have it again).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use leakhost_guest::{check, Layer, Suite, TestResult};

/// What start-up saw and built; tests print it.
static STARTUP: Mutex<Option<(String, Vec<u64>)>> = Mutex::new(None);
/// Tests run in this instance so far.
static RAN: AtomicU32 = AtomicU32::new(0);

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, len: usize) -> u16;
    #[link_name = "fd_close"]
    fn wasi_fd_close(fd: u32) -> u16;
}

fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    // SAFETY: the buffer is valid for writes of its whole length.
    let _ = unsafe { wasi_random_get(bytes.as_mut_ptr(), bytes.len()) };
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn world() -> String {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mono = Instant::now();
    format!("wall={wall} random={} mono_step={:?}", random_hex(8), mono.elapsed())
}

/// Prints the instance's state; the address of a local shows the stack pointer.
fn report(name: &str) {
    let ran = RAN.fetch_add(1, Ordering::Relaxed) + 1;
    let local = 0u8;
    let stack = std::hint::black_box(&local) as *const u8 as usize;
    let (seen, table) = STARTUP.lock().unwrap().clone().unwrap_or_default();
    let sum: u64 = table.iter().sum();
    let pages = core::arch::wasm32::memory_size(0);
    println!("{name}: ran={ran} stack={stack:#x} pages={pages} startup=[{seen}] table={}/{sum}", table.len());
    println!("{name}: now {}", world());
}

fn declare(s: &mut Suite) {
    let table: Vec<u64> = (0..50_000u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40).collect();
    *STARTUP.lock().unwrap() = Some((world(), table));
    let layer = s.layer(Layer::new("snapshots.Layer").set_up(|| report("setUp")).tear_down(|| report("tearDown")));
    for i in 0..30u32 {
        let name = format!("test_{i:02}");
        s.test_in(layer, name.clone(), move || -> TestResult {
            report(&name);
            if i % 3 == 1 {
                panic!("{name} panics after printing");
            }
            Ok(())
        });
    }
    s.test("test_grow_then_trap", || -> TestResult {
        report("test_grow_then_trap");
        let grown = core::arch::wasm32::memory_grow(0, 4);
        check!(grown != usize::MAX, "memory.grow failed");
        core::arch::wasm32::unreachable()
    });
    s.test("test_after_growth", || -> TestResult {
        report("test_after_growth");
        Ok(())
    });
    s.test("test_close_stdout", || -> TestResult {
        // SAFETY: closing a descriptor is memory-safe; the guest just cannot print afterwards.
        let errno = unsafe { wasi_fd_close(1) };
        check!(errno == 0, "fd_close(1) failed: {errno}");
        panic!("stdout closed")
    });
    s.test("test_stdout_is_back", || -> TestResult {
        report("test_stdout_is_back");
        Ok(())
    });
}

leakhost_guest::suite!(declare);
