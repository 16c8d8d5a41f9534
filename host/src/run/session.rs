//! A suite ready to run: the linked template for fresh instances, the validated
//! manifest, the snapshot fresh instances start from, and the instance currently in use.

use std::sync::{Arc, OnceLock};

use wasmtime::{Engine, InstancePre};

use super::image::{InitImage, NO_SNAPSHOT_ENV};
use super::instance::{GuestInstance, Startup};
use super::{CallResult, InstanceError, Outcome, RunError};
use crate::abi::{hook, Manifest};
use crate::leak::Snapshot;
use crate::plan::Plan;
use crate::sandbox::{self, AllocTracer, CallPhase, Capture, CapturedOutput, GuestState, Policy};
use crate::suite::instrument::{CodeMap, Instrumentation};
use crate::suite::{symbols, SourceFile, Suite};

/// A suite ready to run. Instances start lazily and are replaced after a trap.
pub struct Session<'e> {
    engine: &'e Engine,
    pre: InstancePre<GuestState>,
    /// How instances start: the ABI's way, or a libtest binary's.
    startup: Startup,
    policy: Policy,
    capture: Capture,
    manifest: Manifest,
    /// How fresh instances start: from a snapshot, or by running start-up again.
    fresh: Arc<Fresh>,
    instance: Option<GuestInstance>,
    /// Whether the instance in use is still as its start-up left it (nothing was called
    /// in it since), so that a snapshot may be taken from it.
    pristine: bool,
    /// A dropped instance kept to be reset in place into a fresh one (snapshots only).
    spare: Option<GuestInstance>,
    /// How many instances this session has started; a change within an iteration
    /// means its measurements span two heaps.
    instances_started: u64,
    /// The ABI version the suite speaks.
    abi_version: u32,
    /// Where the allocator calls of this session's instances go, when it traces them.
    tracer: Option<Arc<dyn AllocTracer>>,
    /// What leakhost added to the module: its allocator's wrapping (it can be traced
    /// through it) and where the compiled code was in the original module.
    instrumentation: Arc<Instrumentation>,
    /// The file the module was read from.
    source: Arc<SourceFile>,
    /// Names stacks against that file's DWARF, read once for the run.
    symbols: Arc<symbols::Service>,
}

/// How a session starts fresh instances; shared by its `-j` forks.
struct Fresh {
    /// Whether the policy and the module's code allow snapshots.
    allowed: bool,
    /// The state of an instance right after start-up: the first instance's, taken
    /// before `-j` forks while nothing was called in it ([`Session::fork_from_start_up`]), else
    /// the first fresh instance's, which runs start-up itself.
    snapshot: OnceLock<Start>,
    /// The first manifest's hash, which an instance that ran start-up must reproduce.
    manifest_hash: blake3::Hash,
}

/// The snapshot fresh instances start from.
struct Start {
    image: InitImage,
    status_addr: u32,
}

impl Fresh {
    /// Whether fresh instances start from a snapshot.
    fn snapshots(&self) -> bool {
        self.allowed
    }
}

/// Whether `LEAKHOST_NO_SNAPSHOT` asks for every instance to run its own start-up.
fn snapshots_disabled() -> bool {
    std::env::var_os(NO_SNAPSHOT_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

impl<'e> Session<'e> {
    /// Links the suite, starts the first instance and reads its manifest.
    pub fn start(engine: &'e Engine, suite: &Suite, policy: Policy) -> Result<Self, RunError> {
        let linker = sandbox::linker(engine)?;
        let pre = linker.instantiate_pre(&suite.module).map_err(|e| RunError::Link(format!("{e:#}")))?;
        let capture = Capture::for_policy(&policy);
        let startup = Startup::of(engine, &pre, &policy, suite).map_err(RunError::Instance)?;
        let mut instance =
            GuestInstance::start(engine, &pre, &policy, &capture, &startup, None).map_err(RunError::Instance)?;
        let abi_version = instance.version();
        let (manifest, manifest_hash) = instance.manifest().map_err(RunError::Instance)?;
        capture.clear();
        // Descriptors opened during start-up and real clocks or randomness are host
        // state a snapshot cannot carry (run::image).
        let allowed = suite.globals_exported
            && suite.code_allows_snapshots
            && policy.dirs.is_empty()
            && !policy.real_world
            && !snapshots_disabled();
        // The snapshot is taken when a fresh instance is first needed, not now: most runs
        // never need one, and copying the memory faults in every page of it (a third of
        // a small suite's page faults). `-j` takes it before forking, from this instance.
        let fresh = Arc::new(Fresh { allowed, snapshot: OnceLock::new(), manifest_hash });
        Ok(Session {
            engine,
            pre,
            startup,
            policy,
            capture,
            manifest,
            fresh,
            instance: Some(instance),
            pristine: true,
            spare: None,
            instances_started: 1,
            abi_version,
            tracer: None,
            instrumentation: suite.instrumentation.clone(),
            source: suite.source.clone(),
            symbols: Arc::default(),
        })
    }

    /// The validated manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// A second session over the same linked module, with no instance yet: a worker
    /// for `-j` gets its own instances and output capture.
    pub(super) fn fork(&self) -> Session<'e> {
        Session {
            engine: self.engine,
            pre: self.pre.clone(),
            startup: self.startup.clone(),
            policy: self.policy.clone(),
            capture: Capture::for_policy(&self.policy),
            manifest: self.manifest.clone(),
            fresh: self.fresh.clone(),
            instance: None,
            pristine: false,
            spare: None,
            instances_started: 0,
            abi_version: self.abi_version,
            tracer: None,
            instrumentation: self.instrumentation.clone(),
            source: self.source.clone(),
            symbols: self.symbols.clone(),
        }
    }

    /// The main thread's own session for `-j`. When nothing was called in the instance in
    /// use since its start-up, the snapshot fresh instances start from is taken from it
    /// now, before any worker needs one (so none runs start-up again), and the instance
    /// becomes the fork's spare, to be reset rather than a new one filled from the
    /// snapshot. Otherwise the first fresh instance runs start-up and is snapshotted.
    pub(super) fn fork_from_start_up(&mut self) -> Session<'e> {
        let mut fork = self.fork();
        if self.pristine && self.fresh.snapshots() {
            if let Some(mut instance) = self.instance.take() {
                let _ = self.fresh.snapshot.set(Start { image: instance.image(), status_addr: instance.status_addr() });
                fork.spare = Some(instance);
                self.pristine = false;
            }
        }
        fork
    }

    /// The file the module was read from, whose debug sections name its stacks.
    pub(super) fn source(&self) -> &SourceFile {
        &self.source
    }

    /// Names stacks against the [`Self::source`] file's DWARF; shared by the session's forks.
    pub(super) fn symbols(&self) -> &symbols::Service {
        &self.symbols
    }

    /// Where the compiled module's code was before leakhost instrumented it: frames
    /// captured in its instances go through [`CodeMap::translate`] before they are
    /// symbolized against the [`Self::source`] file.
    pub(super) fn code_map(&self) -> &CodeMap {
        &self.instrumentation.code_map
    }

    /// The ABI version the suite speaks (0 for a libtest binary).
    pub fn abi_version(&self) -> u32 {
        self.abi_version
    }

    /// Why leaked blocks cannot be traced to their allocation stacks, or `None` when
    /// they can: the suite traces them itself (ABI v2), or its allocator was
    /// instrumented (ABI v1 suites, libtest binaries).
    pub fn untraceable(&self) -> Option<String> {
        if self.abi_version >= crate::abi::TRACING_VERSION || self.instrumentation.alloc.mode.is_some() {
            return None;
        }
        Some(match self.startup {
            Startup::Bare(_) => "no allocation stacks: the module's allocator was not found (no __rust_alloc or malloc in its name section)".to_string(),
            Startup::Abi { .. } => format!(
                "no allocation stacks: the suite speaks ABI v{}, which cannot trace allocations (ABI v{} can), and its allocator was not found by name to trace it for the suite",
                self.abi_version,
                crate::abi::TRACING_VERSION
            ),
        })
    }

    /// Whether leaked blocks can be traced to their allocation stacks.
    pub fn can_trace(&self) -> bool {
        self.untraceable().is_none()
    }

    /// What a report should say about the module, one line each (a libtest binary's
    /// tests that cannot run, an allocator that was not found).
    pub fn notes(&self) -> &[String] {
        self.startup.notes()
    }

    /// Traces the allocations of every instance this session starts from now on.
    pub(super) fn set_tracer(&mut self, tracer: Arc<dyn AllocTracer>) {
        self.discard_instance();
        self.tracer = Some(tracer);
    }

    /// The policy instances run under.
    pub(super) fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The instance in use, starting a fresh one if there is none.
    pub(super) fn instance(&mut self) -> Result<&mut GuestInstance, RunError> {
        if self.instance.is_none() {
            let shared = Arc::clone(&self.fresh);
            let snapshots = shared.snapshots();
            let mut fresh = match (snapshots, shared.snapshot.get()) {
                (true, Some(snapshot)) => self.fresh_from_snapshot(snapshot)?,
                (true, None) => {
                    let mut first = self.start_up(None)?;
                    // Another -j worker may have set it meanwhile; both are the same state.
                    let _ = shared.snapshot.set(Start { image: first.image(), status_addr: first.status_addr() });
                    first
                }
                (false, _) => self.start_up(self.tracer.clone())?,
            };
            // A snapshot is untraced: a traced replay sets the flag in each instance made from it.
            if let Some(tracer) = self.tracer.clone().filter(|_| snapshots) {
                fresh.trace(tracer).map_err(RunError::Instance)?;
            }
            self.capture.clear();
            self.instance = Some(fresh);
            self.instances_started += 1;
        }
        Ok(self.instance.as_mut().expect("instance was just started"))
    }

    /// A fresh instance that ran start-up itself (traced by `tracer`) and declared the first manifest.
    fn start_up(&mut self, tracer: Option<Arc<dyn AllocTracer>>) -> Result<GuestInstance, RunError> {
        let mut fresh =
            GuestInstance::start(self.engine, &self.pre, &self.policy, &self.capture, &self.startup, tracer)
                .map_err(RunError::Instance)?;
        // A deterministic module declares the same suite every time; anything else would
        // make layer and test indexes meaningless.
        if fresh.manifest_fingerprint().map_err(RunError::Instance)? != Some(self.fresh.manifest_hash) {
            return Err(RunError::Instance(InstanceError::ManifestChanged));
        }
        Ok(fresh)
    }

    /// A fresh instance in the snapshot's state: the spare one reset in place when it
    /// can be, else a new one.
    fn fresh_from_snapshot(&mut self, snapshot: &Start) -> Result<GuestInstance, RunError> {
        if let Some(mut spare) = self.spare.take() {
            if spare.reset(&self.policy, &self.capture, &snapshot.image).map_err(RunError::Instance)? {
                return Ok(spare);
            }
        }
        let (image, status_addr) = (&snapshot.image, snapshot.status_addr);
        let (version, startup) = (self.abi_version, &self.startup);
        GuestInstance::start_from(
            self.engine,
            &self.pre,
            &self.policy,
            &self.capture,
            image,
            status_addr,
            version,
            startup,
        )
        .map_err(RunError::Instance)
    }

    /// Drops the instance (after a trap, or to lose a layer that cannot be torn down).
    pub(super) fn discard_instance(&mut self) {
        let dropped = self.instance.take();
        if self.fresh.snapshot.get().is_some() && dropped.is_some() {
            self.spare = dropped;
        }
    }

    /// A count that changes whenever a fresh instance starts or the current one is dropped.
    pub(super) fn generation(&self) -> (u64, bool) {
        (self.instances_started, self.instance.is_some())
    }

    /// Runs one hook of host layer `layer`, if the layer has it.
    pub(super) fn call_hook(&mut self, plan: &Plan, layer: usize, code: u32) -> Result<CallResult, RunError> {
        let node = &plan.graph.layers[layer];
        let present = match code {
            hook::SET_UP => node.flags.set_up,
            hook::TEAR_DOWN => node.flags.tear_down,
            hook::TEST_SET_UP => node.flags.test_set_up,
            _ => node.flags.test_tear_down,
        };
        match node.guest_index {
            Some(index) if present => {
                self.entering(CallPhase::Hook { layer, code });
                self.pristine = false;
                self.instance()?.hook(index, code).map_err(RunError::Instance)
            }
            _ => Ok(CallResult { outcome: Outcome::Pass, trapped: false }),
        }
    }

    /// Runs test `test` (a guest index).
    pub(super) fn call_test(&mut self, test: u32) -> Result<CallResult, RunError> {
        self.entering(CallPhase::Test(test));
        self.pristine = false;
        self.instance()?.run_test(test).map_err(RunError::Instance)
    }

    /// Tells the tracer, if any, whose allocations come next.
    fn entering(&self, phase: CallPhase) {
        if let Some(tracer) = &self.tracer {
            tracer.enter(phase);
        }
    }

    /// Takes what the guest wrote since the last take.
    pub(super) fn take_output(&self) -> CapturedOutput {
        self.capture.take()
    }

    /// A counters snapshot of the instance in use.
    pub(super) fn snapshot(&mut self) -> Result<Snapshot, RunError> {
        // The guest writes its counters records: its memory is no longer start-up's.
        self.pristine = false;
        let (counters, memory_bytes) = self.instance()?.counters().map_err(RunError::Counters)?;
        Ok(Snapshot::new(counters, memory_bytes))
    }
}
