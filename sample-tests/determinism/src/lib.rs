//! Everything a guest can observe that differs between machines unless the host pins it: clocks, random
//! numbers, hash-map order, NaN bit patterns, relaxed SIMD, memory growth, environment and arguments.
//! Each test prints what it saw, so the report (`--json`, with every test's output) holds the values, and
//! tests/e2e/determinism.rs and tests/cross-arch.sh compare reports across engines and architectures.
//!
//! | test | prints | checks (the contract of docs/determinism.md) |
//! |---|---|---|
//! | `test_clocks` | wall clock, monotonic steps, a 1 s sleep | the clock moves forward; a sleep advances it by at least 1 s |
//! | `test_random` | 16 bytes from WASI `random_get` | none: the bytes follow `--seed` |
//! | `test_hash_order` | iteration order of a `HashMap` with std's random keys | none: the order follows `--seed` |
//! | `test_nan_bits` | bits of NaNs from float ops | every NaN is the canonical one (0x7ff8000000000000, 0x7fc00000) |
//! | `test_relaxed_simd` | results of relaxed SIMD ops on inputs where hosts differ | wasmtime's deterministic semantics |
//! | `test_memory_growth` | linear-memory pages around a 1 MiB allocation | memory grew by whole pages and no more |
//! | `test_world_is_empty` | arguments and environment | both empty (without `--env`) |
//!
//! Counters: `nan bits f64` and `nan bits f32` are set to the bits of `0.0 / 0.0` (a set value, not an
//! increment, so repeating with `-N` reports no growth).

// `x / x` and `x - x` on black-boxed zeros and infinities are how this suite makes NaNs.
#![allow(clippy::eq_op)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakhost_guest::{check, check_eq, Counter, Suite, TestError, TestResult};

/// The NaN wasmtime produces with NaN canonicalisation on: quiet, positive, no payload.
const CANONICAL_F64: u64 = 0x7ff8_0000_0000_0000;
const CANONICAL_F32: u32 = 0x7fc0_0000;

static NAN_BITS_F64: Counter = Counter::new("nan bits f64");
static NAN_BITS_F32: Counter = Counter::new("nan bits f32");

/// Sets `counter` to `value` (counters only add).
fn set(counter: &'static Counter, value: i64) {
    counter.add(value - counter.get());
}

fn test_clocks() -> TestResult {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|e| TestError::Failure(e.to_string()))?;
    let start = Instant::now();
    let step = start.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let slept = start.elapsed();
    println!("wall clock: {}.{:09} s since 1970", wall.as_secs(), wall.subsec_nanos());
    println!("one monotonic step: {} ns; after a 1 s sleep: {} ns", step.as_nanos(), slept.as_nanos());
    check!(step > Duration::ZERO, "the monotonic clock did not move");
    check!(slept >= Duration::from_secs(1), "a 1 s sleep took {slept:?}");
    Ok(())
}

#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    /// WASI's random source, called directly so nothing between it and the test reshapes the bytes.
    #[link_name = "random_get"]
    fn wasi_random_get(buf: *mut u8, len: usize) -> u16;
}

fn test_random() -> TestResult {
    let mut bytes = [0u8; 16];
    // SAFETY: the buffer is valid for writes of its whole length.
    let errno = unsafe { wasi_random_get(bytes.as_mut_ptr(), bytes.len()) };
    check_eq!(errno, 0);
    let hex = bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    });
    println!("random bytes: {hex}");
    Ok(())
}

fn test_hash_order() -> TestResult {
    // std seeds every RandomState from the WASI random source, so this order is the seed's.
    let map: HashMap<u32, ()> = (0..12).map(|k| (k, ())).collect();
    let order: Vec<u32> = map.keys().copied().collect();
    println!("hash map order: {order:?}");
    check_eq!(order.len(), 12);
    Ok(())
}

/// Float operations whose NaN results have host-specific bits without canonicalisation: x86_64 makes
/// negative "default" NaNs, aarch64 positive ones, and both pass payloads through differently.
fn nans_f64() -> [(&'static str, f64); 6] {
    let (zero, inf, one) = (black_box(0.0f64), black_box(f64::INFINITY), black_box(1.0f64));
    let signalling = black_box(f64::from_bits(0x7ff0_0000_0000_0001));
    let negative = black_box(f64::from_bits(0xfff8_0000_0000_0000));
    [
        ("0/0", zero / zero),
        ("inf-inf", inf - inf),
        ("0*inf", zero * inf),
        ("sqrt(-1)", (-one).sqrt()),
        ("sNaN+1", signalling + one),
        ("-NaN*1", negative * one),
    ]
}

fn nans_f32() -> [(&'static str, f32); 5] {
    let (zero, inf, one) = (black_box(0.0f32), black_box(f32::INFINITY), black_box(1.0f32));
    let payload = black_box(f64::from_bits(0x7ff8_0000_dead_beef));
    [
        ("0/0", zero / zero),
        ("inf-inf", inf - inf),
        ("sqrt(-1)", (-one).sqrt()),
        ("-NaN*1", black_box(f32::from_bits(0xffc0_0001)) * one),
        ("demote(NaN payload)", payload as f32),
    ]
}

fn test_nan_bits() -> TestResult {
    let mut wrong = Vec::new();
    for (op, value) in nans_f64() {
        println!("f64 {op}: {:#018x}", value.to_bits());
        if value.to_bits() != CANONICAL_F64 {
            wrong.push(format!("f64 {op}"));
        }
    }
    for (op, value) in nans_f32() {
        println!("f32 {op}: {:#010x}", value.to_bits());
        if value.to_bits() != CANONICAL_F32 {
            wrong.push(format!("f32 {op}"));
        }
    }
    let (zero64, zero32) = (black_box(0.0f64), black_box(0.0f32));
    set(&NAN_BITS_F64, (zero64 / zero64).to_bits() as i64);
    set(&NAN_BITS_F32, i64::from((zero32 / zero32).to_bits()));
    check!(wrong.is_empty(), "NaNs not canonical: {}", wrong.join(", "));
    Ok(())
}

/// Relaxed SIMD results on inputs where x86_64, aarch64 and Pulley may legally differ.
#[target_feature(enable = "simd128,relaxed-simd")]
fn relaxed_simd() -> Vec<(&'static str, [u32; 4])> {
    use core::arch::wasm32::*;
    let lanes = |v: v128| {
        [u32x4_extract_lane::<0>(v), u32x4_extract_lane::<1>(v), u32x4_extract_lane::<2>(v), u32x4_extract_lane::<3>(v)]
    };
    let floats = black_box(f32x4(f32::NAN, 3e9, -3e9, -1.5));
    // 1 + 2^-12 squared is 1 + 2^-11 + 2^-24: fused, the 2^-24 survives the subtraction; unfused it rounds away.
    let near_one = black_box(f32x4_splat(1.0 + 1.0 / 4096.0));
    let minus = black_box(f32x4_splat(-(1.0 + 1.0 / 2048.0)));
    let table = black_box(u8x16(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    let indices = black_box(u8x16(0, 17, 0x80, 0x8f, 31, 15, 16, 0xff, 1, 2, 3, 4, 5, 6, 7, 8));
    let zeros = black_box(f32x4(0.0, -0.0, f32::NAN, 1.0));
    let neg_zeros = black_box(f32x4(-0.0, 0.0, 1.0, f32::NAN));
    let mask = black_box(u32x4(0x0000_ffff, 0xffff_0000, 0x8000_0000, 0x7fff_ffff));
    vec![
        ("i32x4.relaxed_trunc_f32x4_s", lanes(i32x4_relaxed_trunc_f32x4(floats))),
        ("i32x4.relaxed_trunc_f32x4_u", lanes(u32x4_relaxed_trunc_f32x4(floats))),
        ("f32x4.relaxed_madd", lanes(f32x4_relaxed_madd(near_one, near_one, minus))),
        ("i8x16.relaxed_swizzle", lanes(i8x16_relaxed_swizzle(table, indices))),
        ("f32x4.relaxed_min", lanes(f32x4_relaxed_min(zeros, neg_zeros))),
        ("f32x4.relaxed_max", lanes(f32x4_relaxed_max(zeros, neg_zeros))),
        (
            "i32x4.relaxed_laneselect",
            lanes(i32x4_relaxed_laneselect(u32x4_splat(0x1111_1111), u32x4_splat(0x2222_2222), mask)),
        ),
    ]
}

/// What wasmtime's deterministic relaxed SIMD gives (the non-relaxed instruction each op relaxes).
const RELAXED_EXPECTED: [[u32; 4]; 7] = [
    [0, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff],
    [0, 3_000_000_000, 0, 0],
    [0x3380_0000; 4],
    [0, 0x0000_0f00, 0x0403_0201, 0x0807_0605],
    [0x8000_0000, 0x8000_0000, 0x7fc0_0000, 0x7fc0_0000],
    [0, 0, 0x7fc0_0000, 0x7fc0_0000],
    [0x2222_1111, 0x1111_2222, 0x2222_2222, 0x1111_1111],
];

fn test_relaxed_simd() -> TestResult {
    // Safe on wasm: a module using a feature the engine lacks fails validation, it never misbehaves.
    let results = relaxed_simd();
    let mut wrong = Vec::new();
    for ((op, got), expected) in results.iter().zip(RELAXED_EXPECTED) {
        println!("{op}: {got:08x?}");
        if *got != expected {
            wrong.push(format!("{op}: expected {expected:08x?}"));
        }
    }
    check!(wrong.is_empty(), "relaxed SIMD is not deterministic: {}", wrong.join("; "));
    Ok(())
}

fn test_memory_growth() -> TestResult {
    let before = core::arch::wasm32::memory_size::<0>();
    let block = black_box(vec![1u8; 1 << 20]);
    let during = core::arch::wasm32::memory_size::<0>();
    drop(block);
    println!("linear memory: {before} pages, {during} with 1 MiB more allocated");
    check!(during >= before, "memory shrank");
    check!(during - before <= 17, "1 MiB took {} pages", during - before);
    Ok(())
}

fn test_world_is_empty() -> TestResult {
    let args: Vec<String> = std::env::args().collect();
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    println!("arguments: {args:?}; environment: {vars:?}");
    check!(args.is_empty(), "the guest sees arguments {args:?}");
    Ok(())
}

fn declare(s: &mut Suite) {
    s.test("test_clocks", test_clocks);
    s.test("test_random", test_random);
    s.test("test_hash_order", test_hash_order);
    s.test("test_nan_bits", test_nan_bits);
    s.test("test_relaxed_simd", test_relaxed_simd);
    s.test("test_memory_growth", test_memory_growth);
    s.test("test_world_is_empty", test_world_is_empty);
}

leakhost_guest::suite!(declare);
