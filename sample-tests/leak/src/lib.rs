//! zope.testrunner's leak demo (testrunner-ex/leak.py), ported: a test that appends to a global list on
//! every run, so repeating it (`-N`) with leak reports (`-r`) shows steady growth.
//!
//! Per run, `test_leak (leak.TestSomething)` leaves behind one `leak::ClassicLeakable` and one
//! `leak::Leakable` (8 bytes each), one heap block for the entry (32 bytes on wasm32-wasip1), and +1 on the
//! user counter "open handles". `test_no_leak (leak.TestSomething)` allocates and frees, and leaves nothing.
//!
//! The layer `leak.Mixed` holds 20 tests of which only `test_13 (leak.Mixed)` leaks (one boxed cache
//! entry and +1 on "cache entries" per run), so per-test attribution has to single it out.

use std::cell::RefCell;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use leakhost_guest::{check, check_eq, Counter, Layer, Suite, TestResult, Tracked};

/// Python's old-style class in the original; here just a second tracked type.
struct ClassicLeakable {
    serial: u64,
}

/// The original's new-style class.
struct Leakable {
    serial: u64,
}

/// `(ClassicLeakable(), Leakable(), time.time())`. Boxed because every Python object is its own heap
/// allocation: each run then leaks a block, not only bytes whenever the list's buffer happens to grow.
type Entry = Box<(Tracked<ClassicLeakable>, Tracked<Leakable>, SystemTime)>;

thread_local! {
    static LEAKED: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

static OPEN_HANDLES: Counter = Counter::new("open handles");

fn test_leak() -> TestResult {
    let serial = LEAKED.with_borrow(|leaked| leaked.len() as u64) + 1;
    let entry =
        Box::new((Tracked::new(ClassicLeakable { serial }), Tracked::new(Leakable { serial }), SystemTime::now()));
    check!(entry.2.duration_since(UNIX_EPOCH).is_ok(), "the clock is before 1970");
    LEAKED.with_borrow_mut(|leaked| leaked.push(entry));
    OPEN_HANDLES.add(1);
    LEAKED.with_borrow(|leaked| -> TestResult {
        let (classic, new_style, _) = &**leaked.last().expect("just pushed");
        check_eq!(classic.serial, leaked.len() as u64);
        check_eq!(new_style.serial, leaked.len() as u64);
        Ok(())
    })
}

fn test_no_leak() -> TestResult {
    // black_box keeps the optimiser from eliding the allocation, which would make this test vacuous.
    let squares: Vec<u64> = black_box((0..1000).map(|i| i * i).collect());
    check_eq!(squares.iter().sum::<u64>(), 332_833_500);
    Ok(())
}

thread_local! {
    // Boxed on purpose: one heap block per entry, so the leak shows in every iteration's
    // block count instead of only when the Vec's buffer grows.
    #[allow(clippy::vec_box)]
    static CACHE: RefCell<Vec<Box<[u8; 40]>>> = const { RefCell::new(Vec::new()) };
}

static CACHE_ENTRIES: Counter = Counter::new("cache entries");

/// The one leaking test of `leak.Mixed`: a cache that only ever grows.
const LEAKING_MIXED_TEST: usize = 13;

fn mixed_test(n: usize) -> TestResult {
    // Every test allocates and frees, so the leaking one does not stand out by allocating at all.
    let scratch: Vec<usize> = black_box((0..n * 10).collect());
    check_eq!(scratch.len(), n * 10);
    if n == LEAKING_MIXED_TEST {
        CACHE.with_borrow_mut(|cache| cache.push(Box::new([n as u8; 40])));
        CACHE_ENTRIES.increment();
    }
    Ok(())
}

fn declare(s: &mut Suite) {
    s.test("test_leak (leak.TestSomething)", test_leak);
    s.test("test_no_leak (leak.TestSomething)", test_no_leak);
    let mixed = s.layer(Layer::new("leak.Mixed"));
    for n in 1..=20 {
        s.test_in(mixed, format!("test_{n:02} (leak.Mixed)"), move || mixed_test(n));
    }
}

leakhost_guest::suite!(declare);
