//! A test that needs more native stack than a process's main thread starts with.
//!
//! `test_deep_calls` nests 300,000 calls whose state stays in wasm locals (nothing on the
//! shadow stack in linear memory), so only the native stack grows: about 14 MB under
//! Cranelift on x86_64, past the usual 8 MiB stack limit of a main thread. It passes when
//! `--max-stack` holds it (tests/e2e/parallel.rs runs it with 32M, serially and under `-j`)
//! and is the overflow Error when it does not (4M).

use leakhost_guest::{check, Suite};

/// Read through a volatile load, so the compiler cannot fold the recursion away.
static DEPTH: u64 = 300_000;

/// `depth` nested calls. Rotating before the xor keeps LLVM from turning the recursion
/// into a loop with an accumulator.
#[inline(never)]
fn nest(depth: u64) -> u64 {
    if depth == 0 {
        return 1;
    }
    nest(depth - 1).rotate_left(5) ^ depth
}

fn declare(s: &mut Suite) {
    s.test("test_deep_calls", || {
        // SAFETY: DEPTH is a valid, aligned static.
        let depth = unsafe { std::ptr::read_volatile(&DEPTH) };
        check!(nest(depth) != 0);
    });
}

leakhost_guest::suite!(declare);
