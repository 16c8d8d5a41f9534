//! The hard shapes of growth, each in its own layer so that the end-to-end tests can
//! check each verdict (docs/verdicts.md), at `-N4 -r` and at `-N12 -r`:
//!
//! | layer | what its test does | verdict |
//! |---|---|---|
//! | `verdicts.BoundedCache` | keeps the last 4 values it made: fills over iterations 1-4 | settled |
//! | `verdicts.Every3rd` | queues a 64-byte buffer on every 3rd call and never drains it | leaks, `test_every_3rd` |
//! | `verdicts.Every8th` | the same on every 8th call (its setUp makes the first 5) | leaks, `test_every_8th` |
//! | `verdicts.FreshKeyMemo` | memoises under a fresh integer key: grows only when the table resizes | leaks, `test_fresh_key_memo` |
//! | `verdicts.LazyGlobal` | fills a global over its first 5 calls, then never again | settled |
//! | `verdicts.HookLeak` | its testSetUp keeps a 16-byte block per test; the tests are clean | leaks, `testSetUp of verdicts.HookLeak` |
//! | `verdicts.SetUpOnce` | its setUp allocates once; the test is clean | none |
//! | `verdicts.RealCrates` | regex and serde_json, which keep caches of their own | none |
//! | `verdicts.FlushingBatch` | collects a boxed item per call and flushes the batch every 4th: `+1 +1 +1 -3` | settled |
//! | `verdicts.ShrinkInTearDown` | grows a buffer by 53 bytes; testTearDown shrinks it (`shrink_to_fit`) once it holds 150: `+53 +53 -106` | settled |
//! | `verdicts.ScratchBuffer` | refills a scratch buffer with 100 bytes per call, up to 17 calls: its capacity doubles on calls 2, 3, 5, 9, 17 | undecided (its cap is confirmed at iteration 33) |
//! | `verdicts.UpTwoDownOne` | keeps 2 boxes on odd calls and drops 1 on even calls | leaks, `test_up_two_down_one` |
//! | `verdicts.TearDownGivesOne` | keeps 2 boxes per call; testTearDown drops 1 of them | leaks, `test_keeps_two` |
//! | `verdicts.PageLeak` | grows linear memory by a page per call (`memory.grow`), outside the allocator | leaks outside the allocator, `test_memory_grow` |

// Boxed entries on purpose: each is a heap block of its own, so the counts show each one.
#![allow(clippy::vec_box)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::hint::black_box;

use leakhost_guest::{check, check_eq, Layer, Suite, TestResult};

thread_local! {
    static CACHE: RefCell<VecDeque<Box<[u8; 32]>>> = const { RefCell::new(VecDeque::new()) };
    static QUEUE_3: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static QUEUE_8: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static MEMO: RefCell<Option<HashMap<u64, u64>>> = const { RefCell::new(None) };
    static LAZY: RefCell<Vec<Box<u64>>> = const { RefCell::new(Vec::new()) };
    static HOOKED: RefCell<Vec<Box<[u8; 16]>>> = const { RefCell::new(Vec::new()) };
    static ONCE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static CALLS: Cell<u64> = const { Cell::new(0) };
    static BATCH: RefCell<Vec<Box<[u8; 16]>>> = const { RefCell::new(Vec::new()) };
    static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static KEPT: RefCell<Vec<Box<[u8; 16]>>> = const { RefCell::new(Vec::new()) };
    static KEPT_2: RefCell<Vec<Box<[u8; 16]>>> = const { RefCell::new(Vec::new()) };
}

/// A call count per test, so each shape depends only on how often its test ran.
fn next_call(counter: &'static std::thread::LocalKey<Cell<u64>>) -> u64 {
    counter.with(|c| {
        c.set(c.get() + 1);
        c.get()
    })
}

thread_local! {
    static EVERY_3RD: Cell<u64> = const { Cell::new(0) };
    static EVERY_8TH: Cell<u64> = const { Cell::new(0) };
    static MEMO_KEY: Cell<u64> = const { Cell::new(0) };
    static BATCH_CALLS: Cell<u64> = const { Cell::new(0) };
    static SCRATCH_CALLS: Cell<u64> = const { Cell::new(0) };
    static UP_DOWN_CALLS: Cell<u64> = const { Cell::new(0) };
}

fn bounded_cache() -> TestResult {
    let value = next_call(&CALLS);
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        cache.push_back(Box::new([value as u8; 32]));
        // Pre-sized, so only the boxed values grow it while it fills.
        cache.reserve(8);
        if cache.len() > 4 {
            cache.pop_front();
        }
    });
    Ok(())
}

type Queue = std::thread::LocalKey<RefCell<Vec<Vec<u8>>>>;

fn every_nth(counter: &'static std::thread::LocalKey<Cell<u64>>, queue: &'static Queue, n: u64) -> TestResult {
    let call = next_call(counter);
    queue.with(|q| {
        let mut q = q.borrow_mut();
        // Room for 64 entries up front, so only the queued buffers grow the heap.
        if q.capacity() == 0 {
            q.reserve(64);
        }
        // The error path that queues a buffer and never drains it.
        if call.is_multiple_of(n) {
            q.push(vec![call as u8; 64]);
        }
    });
    Ok(())
}

fn fresh_key_memo() -> TestResult {
    let key = next_call(&MEMO_KEY);
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        let memo = m.get_or_insert_with(HashMap::new);
        memo.insert(key, black_box(key * key));
        check!(memo.len() as u64 == key);
        Ok(())
    })
}

fn lazy_global() -> TestResult {
    LAZY.with(|l| {
        let mut l = l.borrow_mut();
        l.reserve(8);
        if l.len() < 5 {
            let n = l.len() as u64;
            l.push(Box::new(n));
        }
    });
    Ok(())
}

fn real_crates() -> TestResult {
    let re = regex::Regex::new(r"(\w+)@(\w+)\.org").expect("a valid regex");
    let found = re.captures("write to leaks@leakhost.org").map(|c| c[2].to_string());
    check_eq!(found.as_deref(), Some("leakhost"));
    let value: serde_json::Value = serde_json::from_str(r#"{"layers": [1, 2, 3], "name": "json"}"#)?;
    check_eq!(value["layers"][2], 3);
    check!(serde_json::to_string(&value)?.contains("\"json\""));
    Ok(())
}

fn flushing_batch() -> TestResult {
    let call = next_call(&BATCH_CALLS);
    BATCH.with(|b| {
        let mut batch = b.borrow_mut();
        // Room for a whole batch up front, so only the items move the heap.
        batch.reserve(8);
        batch.push(Box::new([call as u8; 16]));
        if call.is_multiple_of(4) {
            // The flush: the batch is written out and its items dropped.
            black_box(batch.iter().map(|item| item[0] as u64).sum::<u64>());
            batch.clear();
        }
    });
    Ok(())
}

fn append_output() -> TestResult {
    OUTPUT.with(|o| o.borrow_mut().extend_from_slice(&[b'x'; 53]));
    Ok(())
}

/// The layer's testTearDown: once the buffer holds 150 bytes it is written out and
/// given back to the allocator.
fn shrink_output() {
    OUTPUT.with(|o| {
        let mut out = o.borrow_mut();
        if out.len() >= 150 {
            black_box(out.len());
            out.clear();
            out.shrink_to_fit();
        }
    });
}

fn scratch_buffer() -> TestResult {
    let call = next_call(&SCRATCH_CALLS);
    SCRATCH.with(|s| {
        let mut scratch = s.borrow_mut();
        // A work area sized by the input, which stops growing after 17 calls.
        scratch.clear();
        scratch.extend(std::iter::repeat_n(7u8, 100 * call.min(17) as usize));
        check_eq!(black_box(scratch.len()), 100 * call.min(17) as usize);
        Ok(())
    })
}

fn up_two_down_one() -> TestResult {
    let call = next_call(&UP_DOWN_CALLS);
    KEPT.with(|k| {
        let mut kept = k.borrow_mut();
        if kept.capacity() == 0 {
            kept.reserve(64);
        }
        if call % 2 == 1 {
            kept.push(Box::new([1; 16]));
            kept.push(Box::new([2; 16]));
        } else {
            kept.pop();
        }
    });
    Ok(())
}

fn keeps_two() -> TestResult {
    KEPT_2.with(|k| {
        let mut kept = k.borrow_mut();
        if kept.capacity() == 0 {
            kept.reserve(64);
        }
        kept.push(Box::new([1; 16]));
        kept.push(Box::new([2; 16]));
    });
    Ok(())
}

fn memory_grow() -> TestResult {
    // A raw allocator's arena: a page taken from the host, never given to the allocator.
    check!(core::arch::wasm32::memory_grow(0, 1) != usize::MAX);
    Ok(())
}

fn declare(s: &mut Suite) {
    let layer = |s: &mut Suite, name: &str| s.layer(Layer::new(format!("verdicts.{name}")));
    let l = layer(s, "BoundedCache");
    s.test_in(l, "test_bounded_cache", bounded_cache);
    let l = layer(s, "Every3rd");
    s.test_in(l, "test_every_3rd", || every_nth(&EVERY_3RD, &QUEUE_3, 3));
    // Its set-up uses the same service 5 times, so the 8th call falls in iteration 3, then 11, 19.
    let l = s.layer(Layer::new("verdicts.Every8th").set_up(|| {
        for _ in 0..5 {
            let _ = every_nth(&EVERY_8TH, &QUEUE_8, 8);
        }
    }));
    s.test_in(l, "test_every_8th", || every_nth(&EVERY_8TH, &QUEUE_8, 8));
    let l = layer(s, "FreshKeyMemo");
    s.test_in(l, "test_fresh_key_memo", fresh_key_memo);
    let l = layer(s, "LazyGlobal");
    s.test_in(l, "test_lazy_global", lazy_global);
    let hooked = s.layer(Layer::new("verdicts.HookLeak").test_set_up(|| {
        HOOKED.with(|h| h.borrow_mut().push(Box::new([7; 16])));
    }));
    s.test_in(hooked, "test_clean_1", || -> TestResult { Ok(()) });
    s.test_in(hooked, "test_clean_2", || -> TestResult { Ok(()) });
    let once = s.layer(Layer::new("verdicts.SetUpOnce").set_up(|| ONCE.with(|o| o.borrow_mut().resize(4096, 1))));
    s.test_in(once, "test_reads_the_set_up", || -> TestResult {
        check_eq!(ONCE.with(|o| o.borrow().len()), 4096);
        Ok(())
    });
    let l = layer(s, "RealCrates");
    s.test_in(l, "test_regex_and_serde_json", real_crates);
    let l = layer(s, "FlushingBatch");
    s.test_in(l, "test_flushing_batch", flushing_batch);
    let l = s.layer(Layer::new("verdicts.ShrinkInTearDown").test_tear_down(shrink_output));
    s.test_in(l, "test_append_output", append_output);
    let l = layer(s, "ScratchBuffer");
    s.test_in(l, "test_scratch_buffer", scratch_buffer);
    let l = layer(s, "UpTwoDownOne");
    s.test_in(l, "test_up_two_down_one", up_two_down_one);
    let l = s.layer(Layer::new("verdicts.TearDownGivesOne").test_tear_down(|| {
        KEPT_2.with(|k| drop(k.borrow_mut().pop()));
    }));
    s.test_in(l, "test_keeps_two", keeps_two);
    let l = layer(s, "PageLeak");
    s.test_in(l, "test_memory_grow", memory_grow);
}

leakhost_guest::suite!(declare);
