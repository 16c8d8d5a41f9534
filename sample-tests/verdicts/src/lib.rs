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
}

leakhost_guest::suite!(declare);
