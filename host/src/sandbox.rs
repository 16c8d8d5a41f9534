//! The sandbox a suite runs in: engine settings, the WASI policy, and output capture.
//!
//! Deny by default: no preopened directories, no environment, no arguments, no
//! network. Clocks and randomness are deterministic unless the caller asks for
//! real ones, so two runs of the same module see the same world.

pub mod alloc_hooks;
mod capture;
mod engine;
mod files;
mod limiter;
mod poll;
mod ticker;
mod trace_call;
mod world;

pub use files::MAX_OPEN_FILES;
use limiter::Limiter;
pub use limiter::TABLE_ELEMENT_BYTES;
// What a module may be before it is compiled is part of the policy; `suite::limits` checks it.
pub use crate::suite::{
    ModuleLimits, DEFAULT_MAX_CODE_SIZE, DEFAULT_MAX_FUNCTIONS, DEFAULT_MAX_LOCALS, DEFAULT_MAX_MODULE_SIZE,
    DEFAULT_MAX_NESTING, DEFAULT_MAX_TOTAL_LOCALS,
};
pub use crate::text::human_bytes;
use trace_call::charge_trace_call;
pub use trace_call::TRACE_CALL_FUEL;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use wasmtime::{Engine, Linker, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

pub use capture::{Capture, CapturedOutput, OutputBudget};
pub use engine::{engine, EngineKind};
pub use ticker::EpochTicker;
use world::seeded_bytes;
pub use world::{FakeTime, SeededStream};

/// Default cap on captured guest output per test; the rest is dropped and counted.
pub const DEFAULT_OUTPUT_LIMIT: usize = 64 * 1024;
/// Default cap on the captured output all tests of a run keep together (`--max-total-output`).
pub const DEFAULT_MAX_TOTAL_OUTPUT: u64 = 4 * 1024 * 1024;
/// Default linear-memory limit per instance.
pub const DEFAULT_MAX_MEMORY: usize = 256 * 1024 * 1024;

/// Errors setting up the sandbox.
#[derive(Debug, Error)]
pub enum SandboxError {
    /// wasmtime rejected the engine configuration.
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    /// The WASI imports could not be linked.
    #[error("cannot link WASI: {0}")]
    Linker(String),
    /// A `--dir` could not be opened.
    #[error("--dir {}: {why}", dir.display())]
    Preopen {
        /// The host directory.
        dir: PathBuf,
        /// Why it could not be opened.
        why: String,
    },
}

/// A host directory the guest may open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// The directory on the host.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Whether the guest may create, change and delete files in it.
    pub writable: bool,
}

impl std::str::FromStr for Preopen {
    type Err = String;

    /// Parses `HOST[::GUEST][:rw|:ro]`; the guest path defaults to the host path.
    fn from_str(spec: &str) -> Result<Self, String> {
        let (rest, writable) = match spec.rsplit_once(':') {
            Some((rest, "rw")) if !rest.ends_with(':') || rest.ends_with("::") => (rest, true),
            Some((rest, "ro")) if !rest.ends_with(':') || rest.ends_with("::") => (rest, false),
            _ => (spec, false),
        };
        let (host, guest) = match rest.split_once("::") {
            Some((host, guest)) => (host, guest),
            None => (rest, rest),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!("{spec:?}: expected HOST[::GUEST][:rw]"));
        }
        Ok(Preopen { host: PathBuf::from(host), guest: guest.to_string(), writable })
    }
}

/// What a suite may see and use, and how much of the host it may take.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Seed for the guest's random bytes (deterministic mode).
    pub seed: u64,
    /// Give the guest the host's real clocks and randomness instead of deterministic ones.
    pub real_world: bool,
    /// Linear-memory limit per instance, in bytes.
    pub max_memory: usize,
    /// Captured output kept per test, in bytes.
    pub output_limit: usize,
    /// Captured output kept by the whole run, shared by every clone of the policy.
    pub total_output: OutputBudget,
    /// Wall-time limit of any one call into the guest (a test, a hook, initialisation).
    pub timeout: Option<Duration>,
    /// Instruction budget (wasmtime fuel) of any one call into the guest.
    pub fuel: Option<u64>,
    /// Size of the wasm call stack, in bytes.
    pub max_stack: usize,
    /// Directories the guest may open.
    pub dirs: Vec<Preopen>,
    /// Environment variables the guest sees.
    pub env: Vec<(String, String)>,
    /// How the suite's code is executed.
    pub engine: EngineKind,
    /// What a module may be before it is compiled (size, functions, nesting).
    pub module_limits: ModuleLimits,
}

/// Default wall-time limit per call.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default wasm stack size (wasmtime's own default).
pub const DEFAULT_MAX_STACK: usize = 512 * 1024;
/// How often the epoch ticks; timeouts are rounded up to it.
pub const EPOCH_PERIOD: Duration = Duration::from_millis(10);

impl Default for Policy {
    fn default() -> Self {
        Policy {
            seed: 0,
            real_world: false,
            max_memory: DEFAULT_MAX_MEMORY,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            total_output: OutputBudget::new(DEFAULT_MAX_TOTAL_OUTPUT),
            timeout: Some(DEFAULT_TIMEOUT),
            fuel: None,
            max_stack: DEFAULT_MAX_STACK,
            dirs: Vec::new(),
            env: Vec::new(),
            engine: EngineKind::default(),
            module_limits: ModuleLimits::default(),
        }
    }
}

impl Policy {
    /// Epoch ticks a call may run before it is interrupted.
    pub fn deadline_ticks(&self) -> Option<u64> {
        self.timeout.map(|t| t.as_nanos().div_ceil(EPOCH_PERIOD.as_nanos()).max(1) as u64)
    }
}

/// A limit the guest ran into, carried as the trap's error.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum LimitExceeded {
    /// Linear memory and table elements together would grow past `--max-memory`.
    #[error("exceeded the memory limit of {} (--max-memory)", human_bytes(*.0 as u64))]
    Memory(usize),
    /// The instance's tables together would grow past the table limit.
    #[error("exceeded the limit of {0} table elements per instance")]
    Table(usize),
    /// A sleep that would take the call past its time limit, counting what it used before.
    #[error(
        "slept for {:.3} s, past the time limit of {:.3} s (--timeout), {:.3} s into the call",
        .requested.as_secs_f64(),
        .limit.as_secs_f64(),
        .used.as_secs_f64()
    )]
    Sleep {
        /// The sleep asked for.
        requested: Duration,
        /// The limit.
        limit: Duration,
        /// The call's time used before the sleep.
        used: Duration,
    },
}

/// Per-instance host state.
pub struct GuestState {
    wasi: WasiP1Ctx,
    limiter: Limiter,
    /// The deterministic clock, or `None` with `--real-world`.
    fake_time: Option<FakeTime>,
    /// Where the deterministic random streams are, or `None` with `--real-world`.
    streams: Option<[SeededStream; 2]>,
    /// The per-call time limit, which a real sleep may not exceed.
    timeout: Option<Duration>,
    /// When the current call into the guest started: real sleeps count against its limit.
    call_started: std::time::Instant,
    /// Whether the store meters fuel (`--fuel`): asking a store without fuel for it
    /// builds an error, a third of a traced call's cost.
    fuel: bool,
    /// Traced calls made since the clock was last read against the time limit.
    trace_calls: u32,
    /// Files the guest holds open, bounded.
    open_files: usize,
    /// Where an ABI v2 guest's allocator calls go while the host traces them.
    tracer: Option<Arc<dyn AllocTracer>>,
    /// What an instrumented allocator reported (`alloc_hooks`).
    alloc: alloc_hooks::AllocAccount,
    /// Whether those reports also go to `tracer` (a module that cannot trace by itself).
    forward_allocs: bool,
}

impl GuestState {
    /// Sends this instance's allocator calls to `tracer` (ABI v2 `leakhost.trace_alloc`).
    pub fn set_tracer(&mut self, tracer: Option<Arc<dyn AllocTracer>>) {
        self.tracer = tracer;
    }

    /// Whether a tracer is installed.
    pub fn traced(&self) -> bool {
        self.tracer.is_some()
    }

    /// The heap as an instrumented allocator reported it.
    pub fn alloc_account(&self) -> &alloc_hooks::AllocAccount {
        &self.alloc
    }
}

/// One allocator call an ABI v2 guest reported (docs/abi.md, tracing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocCall {
    /// `leakhost_guest::abi::trace::{ALLOC, FREE, REALLOC}`.
    pub kind: u32,
    /// The block (the new one for a reallocation).
    pub ptr: u32,
    /// Its size in bytes, as requested.
    pub size: u32,
    /// The block a reallocation moved from; 0 otherwise.
    pub old_ptr: u32,
}

/// Which export the host is about to call, for a tracer that blames allocations on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPhase {
    /// Test `0` (a guest index).
    Test(u32),
    /// Hook `code` (`abi::hook`) of host layer `layer`.
    Hook {
        /// The host layer.
        layer: usize,
        /// Which hook.
        code: u32,
    },
}

/// Receives the allocator calls of a traced instance.
pub trait AllocTracer: Send + Sync {
    /// The host is about to call into the guest for `phase`.
    fn enter(&self, phase: CallPhase);

    /// Records `call`; `backtrace` captures the guest's stack (names only), which only
    /// the calls the tracer keeps should pay for.
    fn record(&self, call: AllocCall, backtrace: &mut dyn FnMut() -> wasmtime::WasmBacktrace);
}

/// The parts of an instance's WASI state that guest calls change and that a fresh
/// instance started from a snapshot must take over: the fake clock's reading and the
/// positions in the seeded random streams. (Output capture is cleared separately;
/// descriptors are never opened before a snapshot is taken, see `run::image`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldState {
    clock: u64,
    random: [u64; 2],
    /// An instrumented allocator's account: the blocks start-up allocated.
    alloc: alloc_hooks::AllocAccount,
}

impl GuestState {
    /// The deterministic world's state, `None` with `--real-world`.
    pub fn world(&self) -> Option<WorldState> {
        let (time, streams) = (self.fake_time.as_ref()?, self.streams.as_ref()?);
        let random = [streams[0].position(), streams[1].position()];
        Some(WorldState { clock: time.get(), random, alloc: self.alloc.clone() })
    }

    /// Puts the deterministic world where `state` says, as if this instance had made
    /// the same calls as the one `state` was read from.
    pub fn restore_world(&mut self, state: &WorldState) {
        if let (Some(time), Some(streams)) = (&self.fake_time, &self.streams) {
            time.set(state.clock);
            streams[0].seek(state.random[0]);
            streams[1].seek(state.random[1]);
            self.alloc = state.alloc.clone();
        }
    }
}

/// Builds the linker with WASI preview1 and the `leakhost` tracing import of ABI v2.
pub fn linker(engine: &Engine) -> Result<Linker<GuestState>, SandboxError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut GuestState| &mut state.wasi)
        .map_err(|e| SandboxError::Linker(e.to_string()))?;
    linker
        .func_wrap(
            leakhost_guest::abi::IMPORT_MODULE,
            leakhost_guest::abi::TRACE_ALLOC,
            |mut caller: wasmtime::Caller<'_, GuestState>, kind: i32, ptr: i32, size: i32, old_ptr: i32| {
                // A guest may call it untraced (its flag is its own memory): then it is a no-op.
                let Some(tracer) = caller.data().tracer.clone() else { return Ok(()) };
                charge_trace_call(&mut caller)?;
                let call = AllocCall { kind: kind as u32, ptr: ptr as u32, size: size as u32, old_ptr: old_ptr as u32 };
                tracer.record(call, &mut || wasmtime::WasmBacktrace::force_capture(&caller));
                Ok(())
            },
        )
        .map_err(|e| SandboxError::Linker(e.to_string()))?;
    // wasmtime-wasi's poll_oneoff sleeps on the host thread, where neither the epoch
    // deadline nor the fake clock reaches; leakhost's own version honours both.
    linker.allow_shadowing(true);
    poll::add_to_linker(&mut linker).map_err(|e| SandboxError::Linker(e.to_string()))?;
    files::add_to_linker(&mut linker).map_err(|e| SandboxError::Linker(e.to_string()))?;
    Ok(linker)
}

/// Creates a store for one instance under `policy`, its output going to `capture`.
pub fn store(engine: &Engine, policy: &Policy, capture: &Capture) -> Result<Store<GuestState>, SandboxError> {
    Ok(store_of(engine, state(policy, capture)?))
}

/// A store for one instance with the host state `state`, under its limits.
pub fn store_of(engine: &Engine, state: GuestState) -> Store<GuestState> {
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    store
}

/// The host state of an instance that has not made any call yet.
pub fn state(policy: &Policy, capture: &Capture) -> Result<GuestState, SandboxError> {
    state_with_args(policy, capture, &[], &[])
}

/// [`state`] for a WASI command run with `args` (its name first) and, besides the
/// policy's, the environment `env` (`run::bare` lists a libtest binary's tests so).
pub fn state_with_args(
    policy: &Policy,
    capture: &Capture,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<GuestState, SandboxError> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.stdout(capture.clone()).stderr(capture.clone()).args(args);
    for (name, value) in env {
        wasi.env(name, value);
    }
    let fake_time = (!policy.real_world).then(FakeTime::default);
    let streams = (!policy.real_world)
        .then(|| [SeededStream::new(seeded_bytes(policy.seed)), SeededStream::new(seeded_bytes(policy.seed ^ 0x5eed))]);
    if let (Some(time), Some([secure, insecure])) = (&fake_time, &streams) {
        wasi.wall_clock(time.clone())
            .monotonic_clock(time.clone())
            .secure_random(secure.clone())
            .insecure_random(insecure.clone())
            .insecure_random_seed(policy.seed as u128);
    }
    for (name, value) in &policy.env {
        wasi.env(name, value);
    }
    for dir in &policy.dirs {
        let perms = if dir.writable { FsPerms::ReadWrite } else { FsPerms::ReadOnly };
        wasi.preopened_dir(&dir.host, &dir.guest, perms)
            .map_err(|e| SandboxError::Preopen { dir: dir.host.clone(), why: e.to_string() })?;
    }
    let limiter = Limiter::new(policy.max_memory);
    // No sockets: p1 has no call that opens one, and these keep it so if that changes.
    wasi.allow_tcp(false).allow_udp(false).allow_ip_name_lookup(false);
    let mut wasi = wasi.build_p1();
    files::cap_resource_table(&mut wasi);
    Ok(GuestState {
        wasi,
        limiter,
        fake_time,
        streams,
        timeout: policy.timeout,
        open_files: 0,
        call_started: std::time::Instant::now(),
        fuel: policy.fuel.is_some(),
        trace_calls: 0,
        tracer: None,
        alloc: alloc_hooks::AllocAccount::default(),
        forward_allocs: false,
    })
}

/// Gives the instance in `store` the host state of one that has made no call (see
/// [`state`]), except what its limiter counted: the instance keeps its memory and its
/// tables, so they must stay counted against `--max-memory`.
pub fn reset_state(store: &mut Store<GuestState>, policy: &Policy, capture: &Capture) -> Result<(), SandboxError> {
    let mut fresh = state(policy, capture)?;
    fresh.limiter = std::mem::take(&mut store.data_mut().limiter);
    *store.data_mut() = fresh;
    Ok(())
}

/// Marks the start of a call into the guest, so that a real sleep and a traced
/// allocation can be held to what is left of the call's time limit (call it wherever
/// the epoch deadline is armed).
pub fn start_call(store: &mut Store<GuestState>) {
    let state = store.data_mut();
    // Only a real sleep or a traced call under a time limit asks when its call started.
    // Reading the clock for every call was a fifth of a trivial test's cost on a VM's clock.
    if state.timeout.is_some() && (state.fake_time.is_none() || state.tracer.is_some()) {
        state.call_started = std::time::Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preopen_specs_parse() {
        let p: Preopen = "data::/data:rw".parse().unwrap();
        assert_eq!(p, Preopen { host: "data".into(), guest: "/data".into(), writable: true });
        let p: Preopen = "fixtures".parse().unwrap();
        assert_eq!(p, Preopen { host: "fixtures".into(), guest: "fixtures".into(), writable: false });
        let p: Preopen = "in::/in:ro".parse().unwrap();
        assert!(!p.writable);
        assert!("::/x".parse::<Preopen>().is_err());
    }

    #[test]
    fn bytes_print_in_the_largest_whole_unit() {
        assert_eq!(human_bytes(256 << 20), "256 MiB");
        assert_eq!(human_bytes(512 << 10), "512 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
    }

    #[test]
    fn timeouts_round_up_to_whole_ticks() {
        let policy = Policy { timeout: Some(Duration::from_millis(15)), ..Policy::default() };
        assert_eq!(policy.deadline_ticks(), Some(2));
        assert_eq!(Policy { timeout: None, ..Policy::default() }.deadline_ticks(), None);
    }

    #[test]
    fn capture_keeps_up_to_the_limit_and_counts_the_rest() {
        let capture = Capture::new(5);
        capture.write(b"hello world");
        let out = capture.take();
        assert_eq!(out, CapturedOutput { text: "hello".into(), dropped: 6 });
        assert_eq!(capture.take(), CapturedOutput::default());
    }
}
