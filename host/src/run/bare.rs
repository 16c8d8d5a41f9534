//! libtest binaries as suites: a WASI command built by `cargo test --no-run --target
//! wasm32-wasip1`, run without the leakhost SDK.
//!
//! The tests come from running the binary with `--list` in the sandbox; each becomes a
//! test of zope's default layer. An instance runs `__wasm_call_ctors` once (never
//! `_start`, so libtest's harness never runs), then the host calls test functions
//! directly: a `() -> ()` test by its own function, a `Result` test through libtest's
//! wrapper closure, which prints `Error: {err:?}` as libtest does and returns
//! `Result<(), String>`. A panic aborts (wasm32 is panic=abort): the test fails with the
//! panic message it printed, and the runner continues in a fresh instance. The heap
//! figures are the host's, from the module's instrumented allocator
//! (`sandbox::alloc_hooks`).

mod listing;

use std::sync::Arc;

use wasmtime::{Engine, Func, Instance, InstancePre, Memory, Store, Val};

use super::call::{InstanceError, Limits};
use super::{CallResult, Outcome};
use crate::abi::{Counters, Manifest, TestDecl, MAX_NAME_LEN, MAX_TESTS};
use crate::sandbox::{self, Capture, GuestState, Policy};
use crate::suite::instrument::{CommandInfo, CTORS, DROP_STRING, STACK_POINTER, TEST_PREFIX, WRAPPER_PREFIX};
use crate::suite::Suite;
use crate::text::GuestText;

/// How a suite's instances start, and which kind of module they are.
#[derive(Clone)]
pub enum Startup {
    /// A suite that speaks the ABI; `_initialize` runs first when it has one.
    Abi {
        /// Whether it exports `_initialize`.
        has_initialize: bool,
    },
    /// A libtest binary (`bare`).
    Bare(Arc<Bare>),
}

impl Startup {
    /// How `suite`'s instances start; lists a libtest binary's tests in the sandbox.
    pub fn of(
        engine: &Engine,
        pre: &InstancePre<GuestState>,
        policy: &Policy,
        suite: &Suite,
    ) -> Result<Self, InstanceError> {
        match suite.instrumentation.command {
            Some(_) => Ok(Startup::Bare(Arc::new(Bare::describe(engine, pre, policy, suite)?))),
            None => Ok(Startup::Abi { has_initialize: suite.has_initialize }),
        }
    }

    /// What the report should say about the module (tests that cannot run, an
    /// allocator that was not found).
    pub fn notes(&self) -> &[String] {
        match self {
            Startup::Abi { .. } => &[],
            Startup::Bare(bare) => bare.notes(),
        }
    }
}

/// The most output a listing may print (a million tests of 64-byte names).
const MAX_LISTING_OUTPUT: usize = 64 << 20;

/// What fills a `Result` test's return slot before the call; a `Result<(), String>`
/// that is `Ok` writes one word of it (its niche), an `Err` at least two (a `String`
/// has a capacity and a length, neither of which can be this pattern).
const SLOT_PATTERN: u32 = 0xa5a5_a5a5;
/// The return slot's size: room for `Result<(), String>` under any layout rustc picks.
const SLOT_BYTES: u32 = 16;

/// How the host runs one listed test.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Runnable {
    /// Calls the `() -> ()` test function exported under this name.
    Direct(String),
    /// Calls libtest's wrapper closure exported under this name.
    Wrapper(String),
    /// Does not call anything; the test is skipped with this reason.
    Skip(GuestText),
}

/// A libtest binary's tests, as the host runs them.
#[derive(Debug)]
pub struct Bare {
    manifest: Manifest,
    hash: blake3::Hash,
    tests: Vec<Runnable>,
    notes: Vec<String>,
}

impl Bare {
    /// Lists the tests of the libtest binary `suite` by running it with `--list` in the
    /// sandbox, and finds how to call each.
    pub fn describe(
        engine: &Engine,
        pre: &InstancePre<GuestState>,
        policy: &Policy,
        suite: &Suite,
    ) -> Result<Bare, InstanceError> {
        let command = suite.instrumentation.command.clone().unwrap_or_default();
        let not_libtest = |why: String| InstanceError::NotLibtest(why);
        if !command.ctors {
            return Err(not_libtest("it has no __wasm_call_ctors in its name section".into()));
        }
        let program = suite.display_name();
        let run = |args: &[&str]| list(engine, pre, policy, &program, args);
        let (mut listed, mut notes) = match run(listing::JSON_ALL).ok().and_then(|out| listing::parse_json(&out)) {
            Some(mut all) => {
                let without = run(listing::JSON_NO_SHOULD_PANIC).map_err(not_libtest)?;
                listing::mark_should_panic(&mut all, &listing::parse_json(&without).unwrap_or_default());
                (all, Vec::new())
            }
            None => {
                let all = run(listing::TERSE_ALL).map_err(not_libtest)?;
                let ignored = run(listing::TERSE_IGNORED).map_err(not_libtest)?;
                let note = "its libtest lists no JSON, so #[should_panic] tests cannot be told apart: they run, and fail when they panic";
                (listing::from_terse(&all, &ignored), vec![note.to_string()])
            }
        };
        check_names(&listed).map_err(not_libtest)?;
        let tests = runnables(&mut listed, &command, &mut notes).map_err(InstanceError::NoRunnableTests)?;
        if suite.instrumentation.alloc.wrapped.is_empty() {
            notes.push(
                "its allocator was not found (no __rust_alloc or malloc in its name section): leak reports count memory pages only"
                    .into(),
            );
        }
        let names: Vec<TestDecl> =
            listed.iter().map(|t| TestDecl { name: GuestText::from(t.name.as_str()), layer: None }).collect();
        let mut hasher = blake3::Hasher::new();
        for test in &names {
            hasher.update(test.name.raw().as_bytes()).update(&[0]);
        }
        let manifest = Manifest { layers: Vec::new(), tests: names };
        Ok(Bare { manifest, hash: hasher.finalize(), tests, notes })
    }

    /// The manifest: one default layer of the listed tests, and its fingerprint.
    pub fn manifest(&self) -> (Manifest, blake3::Hash) {
        (self.manifest.clone(), self.hash)
    }

    /// What a reader of the report should know about this binary (tests that cannot
    /// run, an allocator that was not found), one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
}

fn check_names(listed: &[listing::Listed]) -> Result<(), String> {
    if listed.len() > MAX_TESTS as usize {
        return Err(format!("it lists {} tests, more than the limit of {MAX_TESTS}", listed.len()));
    }
    let mut seen = std::collections::HashSet::with_capacity(listed.len());
    for test in listed {
        if test.name.is_empty() || test.name.len() > MAX_NAME_LEN as usize {
            return Err(format!("it lists a test name of {} bytes (1 to {MAX_NAME_LEN} allowed)", test.name.len()));
        }
        if !seen.insert(test.name.as_str()) {
            return Err(format!("it lists test {:?} twice", test.name));
        }
    }
    Ok(())
}

/// How to run each listed test, and a note for those that cannot run; an error when
/// none of those that should run can.
fn runnables(
    listed: &mut [listing::Listed],
    command: &CommandInfo,
    notes: &mut Vec<String>,
) -> Result<Vec<Runnable>, String> {
    let paths = command.tests.iter().chain(&command.wrappers).map(String::as_str);
    let krate = listing::crate_of(listed, paths);
    let has = |list: &[String], path: &str| list.binary_search_by(|p| p.as_str().cmp(path)).is_ok();
    let mut missing = 0;
    let tests: Vec<Runnable> = listed
        .iter()
        .map(|test| {
            if test.should_panic {
                return Runnable::Skip("#[should_panic]: cannot run on wasm32 (panic=abort); libtest ignores it too".into());
            }
            if let Some(reason) = &test.ignored {
                return Runnable::Skip(GuestText::from(match reason.as_str() {
                    "" => "ignored".to_string(),
                    reason => format!("ignored, {reason}"),
                }));
            }
            let path = krate.as_deref().map(|k| format!("{k}::{}", test.name));
            match path {
                Some(path) if has(&command.tests, &path) => Runnable::Direct(format!("{TEST_PREFIX}{path}")),
                Some(path) if has(&command.wrappers, &path) && command.stack_pointer => {
                    Runnable::Wrapper(format!("{WRAPPER_PREFIX}{path}"))
                }
                _ => {
                    missing += 1;
                    Runnable::Skip(GuestText::from("not runnable: its function is not in the module by name (inlined away? build the tests with the dev profile)"))
                }
            }
        })
        .collect();
    let runnable = tests.iter().filter(|t| !matches!(t, Runnable::Skip(_))).count();
    if missing > 0 && runnable == 0 {
        return Err(format!(
            "none of its {missing} tests can run: their functions are not in the module by name (a release build inlines them into libtest's harness); build the tests with the dev profile (`cargo test --no-run`, or `leakhost run DIR` without --cargo-profile)"
        ));
    }
    if missing > 0 {
        notes.push(format!(
            "{missing} listed tests are not runnable: their functions are not in the module by name (inlined away in a release build?); they are skipped with the reason"
        ));
    }
    Ok(tests)
}

/// Runs the binary as a command with `args` and returns what it printed.
fn list(
    engine: &Engine,
    pre: &InstancePre<GuestState>,
    policy: &Policy,
    program: &str,
    args: &[&str],
) -> Result<String, String> {
    let capture = Capture::new(MAX_LISTING_OUTPUT);
    let argv: Vec<&str> = std::iter::once(program).chain(args.iter().copied()).collect();
    // Lets libtest accept its unstable listing flags on a stable toolchain.
    let state =
        sandbox::state_with_args(policy, &capture, &argv, &[("RUSTC_BOOTSTRAP", "1")]).map_err(|e| e.to_string())?;
    let mut store = sandbox::store_of(engine, state);
    let limits = Limits::new(policy);
    limits.arm(&mut store);
    let instance = pre.instantiate(&mut store).map_err(|e| limits.describe(&e))?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start").map_err(|e| format!("_start: {e}"))?;
    limits.arm(&mut store);
    let ended = start.call(&mut store, ());
    let output = capture.take();
    if output.dropped > 0 {
        return Err(format!("`{}` printed more than {} bytes", args.join(" "), MAX_LISTING_OUTPUT));
    }
    let text = output.text.raw().to_string();
    match ended {
        Ok(()) => Ok(text),
        Err(e) if e.downcast_ref::<wasmtime_wasi::I32Exit>().is_some_and(|exit| exit.0 == 0) => Ok(text),
        Err(e) => {
            let said = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
            let how = match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => format!("exited with status {}", exit.0),
                None => limits.describe(&e).lines().next().unwrap_or("").to_string(),
            };
            Err(format!(
                "running it with `{}` {how}{}",
                args.join(" "),
                if said.is_empty() { String::new() } else { format!(": {said}") }
            ))
        }
    }
}

/// The calls of one instance of a libtest binary.
pub struct BareCalls {
    bare: Arc<Bare>,
    capture: Capture,
    /// Each test's function, looked up on first use.
    funcs: Vec<Option<Func>>,
}

impl BareCalls {
    /// The calls of an instance that has run its constructors (or was given a
    /// snapshot's state, which includes them).
    pub fn new(bare: Arc<Bare>, capture: Capture) -> Self {
        let funcs = vec![None; bare.tests.len()];
        BareCalls { bare, capture, funcs }
    }

    /// Runs the module's constructors, as `_start` would before `main`.
    pub fn construct(store: &mut Store<GuestState>, instance: &Instance, limits: &Limits) -> Result<(), InstanceError> {
        let ctors = instance
            .get_typed_func::<(), ()>(&mut *store, CTORS)
            .map_err(|e| InstanceError::Start(format!("__wasm_call_ctors: {e}")))?;
        limits.arm(store);
        ctors
            .call(&mut *store, ())
            .map_err(|e| InstanceError::Start(format!("__wasm_call_ctors: {}", limits.describe(&e))))
    }

    /// The manifest of the binary.
    pub fn bare(&self) -> &Bare {
        &self.bare
    }

    fn func(
        &mut self,
        store: &mut Store<GuestState>,
        instance: &Instance,
        index: usize,
        name: &str,
    ) -> Result<Func, InstanceError> {
        if let Some(func) = self.funcs[index] {
            return Ok(func);
        }
        let func =
            instance.get_func(&mut *store, name).ok_or_else(|| InstanceError::Start(format!("no export {name}")))?;
        self.funcs[index] = Some(func);
        Ok(func)
    }

    /// Runs test `index`.
    pub fn run_test(
        &mut self,
        store: &mut Store<GuestState>,
        instance: &Instance,
        memory: Memory,
        limits: &Limits,
        index: u32,
    ) -> Result<CallResult, InstanceError> {
        let index = index as usize;
        let runnable =
            self.bare.tests.get(index).cloned().ok_or_else(|| InstanceError::Start(format!("no test {index}")))?;
        let mark = self.capture.mark();
        let outcome = match runnable {
            Runnable::Skip(reason) => return Ok(CallResult { outcome: Outcome::Skip(reason), trapped: false }),
            Runnable::Direct(name) => {
                let func = self.func(store, instance, index, &name)?.typed::<(), ()>(&*store).map_err(start_error)?;
                limits.arm(store);
                func.call(&mut *store, ()).map(|()| Outcome::Pass)
            }
            Runnable::Wrapper(name) => {
                let func =
                    self.func(store, instance, index, &name)?.typed::<(i32, i32), ()>(&*store).map_err(start_error)?;
                self.call_wrapper(store, instance, memory, limits, func, mark)?
            }
        };
        Ok(match outcome {
            Ok(outcome) => CallResult { outcome, trapped: false },
            Err(error) => {
                let printed = self.capture.since(mark);
                let outcome = match listing::panic_message(&printed) {
                    Some(message) => Outcome::Failure(message.into()),
                    None => Outcome::Error(limits.describe(&error).into()),
                };
                CallResult { outcome, trapped: true }
            }
        })
    }

    /// Calls libtest's wrapper of a `Result` test with a return slot below the stack
    /// pointer, and reads whether it returned `Err`.
    fn call_wrapper(
        &mut self,
        store: &mut Store<GuestState>,
        instance: &Instance,
        memory: Memory,
        limits: &Limits,
        func: wasmtime::TypedFunc<(i32, i32), ()>,
        mark: usize,
    ) -> Result<wasmtime::Result<Outcome>, InstanceError> {
        let sp = instance
            .get_global(&mut *store, STACK_POINTER)
            .ok_or_else(|| InstanceError::Start(format!("no export {STACK_POINTER}")))?;
        let top = sp.get(&mut *store).i32().unwrap_or(0) as u32;
        let slot = top
            .checked_sub(SLOT_BYTES)
            .map(|s| s & !15)
            .filter(|&s| s as usize + SLOT_BYTES as usize <= memory.data_size(&*store));
        let Some(slot) = slot else {
            return Err(InstanceError::Start(format!("the stack pointer {top:#x} leaves no room for a return slot")));
        };
        let pattern = SLOT_PATTERN.to_le_bytes().repeat(SLOT_BYTES as usize / 4);
        memory.data_mut(&mut *store)[slot as usize..(slot + SLOT_BYTES) as usize].copy_from_slice(&pattern);
        // The callee's frames go below the slot.
        sp.set(&mut *store, Val::I32(slot as i32)).map_err(start_error)?;
        limits.arm(store);
        if let Err(error) = func.call(&mut *store, (slot as i32, 1)) {
            return Ok(Err(error));
        }
        sp.set(&mut *store, Val::I32(top as i32)).map_err(start_error)?;
        let bytes = &memory.data(&*store)[slot as usize..(slot + SLOT_BYTES) as usize];
        let changed: Vec<bool> = bytes.chunks_exact(4).map(|w| w != SLOT_PATTERN.to_le_bytes()).collect();
        if changed.iter().filter(|&&c| c).count() <= 1 {
            return Ok(Ok(Outcome::Pass));
        }
        let message = listing::error_text(&self.capture.since(mark))
            .unwrap_or_else(|| "the test returned an error (libtest printed no `Error:` line)".to_string());
        // `Err(String)` is the string itself at the slot (the niche layout): free it, so
        // a failing test does not also leak its message.
        if changed == [true, true, true, false] {
            if let Ok(drop) = instance.get_typed_func::<i32, ()>(&mut *store, DROP_STRING) {
                limits.arm(store);
                if let Err(error) = drop.call(&mut *store, slot as i32) {
                    return Ok(Err(error));
                }
            }
        }
        Ok(Ok(Outcome::Failure(message.into())))
    }
}

fn start_error(e: wasmtime::Error) -> InstanceError {
    InstanceError::Start(format!("{e:#}"))
}

/// A counters snapshot of a libtest binary: the heap as its instrumented allocator
/// reported it (no per-type rows and no user counters: those need the SDK).
pub fn counters(store: &Store<GuestState>, memory: Memory) -> (Counters, u64) {
    let account = store.data().alloc_account();
    let counters = Counters {
        live_blocks: account.live_blocks,
        live_bytes: account.live_bytes,
        total_allocs: account.total_allocs,
        types: Vec::new(),
        user: Vec::new(),
    };
    (counters, memory.data_size(store) as u64)
}

#[cfg(test)]
mod tests {
    use super::listing::Listed;
    use super::*;

    fn listed(name: &str, ignored: Option<&str>, should_panic: bool) -> Listed {
        Listed { name: name.into(), ignored: ignored.map(str::to_string), should_panic }
    }

    #[test]
    fn each_listed_test_is_called_directly_through_its_wrapper_or_skipped_with_the_reason() {
        let command = CommandInfo {
            tests: vec!["demo::tests::unit".into()],
            wrappers: vec!["demo::tests::result".into(), "demo::tests::unit".into()],
            ctors: true,
            stack_pointer: true,
            drop_string: true,
        };
        let mut tests = vec![
            listed("tests::unit", None, false),
            listed("tests::result", None, false),
            listed("tests::inlined", None, false),
            listed("tests::slow", Some(""), false),
            listed("tests::net", Some("needs network"), false),
            listed("tests::panics", None, true),
        ];
        let mut notes = Vec::new();
        let runnables = runnables(&mut tests, &command, &mut notes).unwrap();
        let skip = |r: &Runnable| match r {
            Runnable::Skip(reason) => reason.raw().to_string(),
            other => format!("{other:?}"),
        };
        assert_eq!(runnables[0], Runnable::Direct(":leakhost:test:demo::tests::unit".into()));
        assert_eq!(runnables[1], Runnable::Wrapper(":leakhost:wrapper:demo::tests::result".into()));
        assert!(skip(&runnables[2]).starts_with("not runnable: "));
        assert_eq!(skip(&runnables[3]), "ignored");
        assert_eq!(skip(&runnables[4]), "ignored, needs network");
        assert!(skip(&runnables[5]).starts_with("#[should_panic]"));
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("1 listed tests are not runnable"), "{notes:?}");
    }

    #[test]
    fn a_binary_none_of_whose_tests_can_run_is_refused() {
        let command = CommandInfo { ctors: true, ..CommandInfo::default() };
        let mut tests = vec![listed("tests::a", None, false), listed("tests::b", Some(""), false)];
        let why = runnables(&mut tests, &command, &mut Vec::new()).unwrap_err();
        assert!(why.starts_with("none of its 1 tests can run"), "{why}");
        // Only ignored tests: nothing should run, nothing is missing.
        let mut ignored = vec![listed("tests::b", Some(""), false)];
        assert!(runnables(&mut ignored, &command, &mut Vec::new()).is_ok());
    }
}
