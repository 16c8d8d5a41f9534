//! Leaks that only an allocation stack finds: every test here leaks in a way a verdict can
//! name (the test) but not place (the line). `leakhost run sample-tests/leakstacks -N4 -r`
//! prints, for each, the stack down to the allocating line.
//!
//! Every allocating line ends in a `// leak: NAME` marker; tests/e2e/stacks.rs finds the
//! line numbers by these markers and checks that the stacks name them. Helpers are
//! `#[inline(never)]` so that a names-only build (no DWARF) still shows each frame.

// Boxed entries on purpose: each leak must be a heap block of its own, at its own stack.
#![allow(clippy::vec_box)]

use std::cell::RefCell;

use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use leakhost_guest::{check, Layer, Suite, TestResult};

/// A tree node that can point back at its parent: two of them form an `Rc` cycle.
struct Node {
    other: RefCell<Option<Rc<Node>>>,
    payload: [u8; 24],
}

#[inline(never)]
fn make_cycle() {
    let a = Rc::new(Node { other: RefCell::new(None), payload: [1; 24] }); // leak: rc-a
    let b = Rc::new(Node { other: RefCell::new(Some(a.clone())), payload: [2; 24] }); // leak: rc-b
    *a.other.borrow_mut() = Some(b.clone());
    black_box(a.payload[0] + b.payload[0]);
}

fn test_rc_cycle() -> TestResult {
    make_cycle(); // leak: in-test_rc_cycle
    Ok(())
}

thread_local! {
    /// A memo table nothing ever evicts.
    static MEMO: RefCell<HashMap<u64, String>> = RefCell::new(HashMap::new());
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn describe(n: u64) -> String {
    MEMO.with_borrow_mut(|memo| {
        memo.entry(n).or_insert_with(|| format!("the number {n:>20}")).clone() // leak: memo
    })
}

fn test_memo_map() -> TestResult {
    // A new key every run: the memo keeps every answer.
    let n = CALLS.fetch_add(1, Ordering::Relaxed) as u64;
    check!(describe(n).ends_with(&n.to_string())); // leak: in-test_memo_map
    Ok(())
}

thread_local! {
    /// An audit log that only grows.
    static AUDIT: RefCell<Vec<Box<[u8; 40]>>> = const { RefCell::new(Vec::new()) };
}

#[inline(never)]
fn audit(event: u8) {
    let entry = Box::new([event; 40]); // leak: audit
    AUDIT.with_borrow_mut(|log| log.push(entry));
}

fn test_audit_log() -> TestResult {
    audit(7); // leak: in-test_audit_log
    Ok(())
}

#[inline(never)]
fn intern_config() -> &'static [u8; 48] {
    Box::leak(Box::new([3; 48])) // leak: box-leak
}

fn test_box_leak() -> TestResult {
    check!(intern_config()[0] == 3); // leak: in-test_box_leak
    Ok(())
}

/// Where the forgotten vector's pointer escapes to.
static ESCAPED: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn forget_buffer() {
    let buffer: Vec<u32> = black_box(vec![5; 16]); // leak: forgotten-vec
    ESCAPED.store(buffer.as_ptr() as usize, Ordering::Relaxed);
    std::mem::forget(buffer);
}

fn test_forgotten_vec() -> TestResult {
    forget_buffer(); // leak: in-test_forgotten_vec
    Ok(())
}

thread_local! {
    static DEEP: RefCell<Vec<Box<[u64; 4]>>> = const { RefCell::new(Vec::new()) };
}

#[inline(never)]
fn deep_inner(seed: u64) {
    let block = Box::new([seed; 4]); // leak: deep-inner
    DEEP.with_borrow_mut(|kept| kept.push(block));
}

#[inline(never)]
fn deep_outer(seed: u64) {
    deep_inner(black_box(seed + 1)); // leak: deep-outer
}

fn test_deep() -> TestResult {
    deep_outer(black_box(1)); // leak: deep-test
    Ok(())
}

thread_local! {
    /// Listeners registered by the fixture's per-test set-up and never removed.
    static LISTENERS: RefCell<Vec<Box<[u8; 56]>>> = const { RefCell::new(Vec::new()) };
}

#[inline(never)]
fn register_listener() {
    let listener = Box::new([9; 56]); // leak: listener
    LISTENERS.with_borrow_mut(|all| all.push(listener));
}

fn test_uses_fixture() -> TestResult {
    check!(LISTENERS.with_borrow(|all| !all.is_empty()));
    Ok(())
}

thread_local! {
    static VISITS: RefCell<Vec<Box<[u8; 12]>>> = const { RefCell::new(Vec::new()) };
}

#[inline(never)]
fn record_visit() {
    let visit = Box::new([1; 12]); // leak: visit
    VISITS.with_borrow_mut(|all| all.push(visit));
}

/// Registered under two names: both tests leak through the same stack.
fn test_visit() -> TestResult {
    record_visit(); // leak: in-test_visit
    Ok(())
}

fn declare(s: &mut Suite) {
    s.test("test_rc_cycle", test_rc_cycle);
    s.test("test_memo_map", test_memo_map);
    s.test("test_audit_log", test_audit_log);
    s.test("test_box_leak", test_box_leak);
    s.test("test_forgotten_vec", test_forgotten_vec);
    s.test("test_deep", test_deep);
    let fixture = s.layer(Layer::new("leakstacks.Fixture").test_set_up(register_listener));
    s.test_in(fixture, "test_uses_fixture", test_uses_fixture);
    let visits = s.layer(Layer::new("leakstacks.Visits"));
    s.test_in(visits, "test_visit_a", test_visit);
    s.test_in(visits, "test_visit_b", test_visit);
}

leakhost_guest::suite!(declare);
