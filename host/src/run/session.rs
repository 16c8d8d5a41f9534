//! A suite ready to run: the linked template for fresh instances, the validated
//! manifest, and the instance currently in use.

use std::sync::Arc;

use wasmtime::{Engine, InstancePre};

use super::instance::GuestInstance;
use super::{CallResult, InstanceError, Outcome, RunError};
use crate::abi::{hook, Manifest};
use crate::leak::Snapshot;
use crate::plan::Plan;
use crate::sandbox::{self, AllocTracer, Capture, CapturedOutput, GuestState, Policy};
use crate::suite::Suite;

/// A suite ready to run. Instances start lazily and are replaced after a trap.
pub struct Session<'e> {
    engine: &'e Engine,
    pre: InstancePre<GuestState>,
    has_initialize: bool,
    policy: Policy,
    capture: Capture,
    manifest: Manifest,
    instance: Option<GuestInstance>,
    /// How many instances this session has started; a change within an iteration
    /// means its measurements span two heaps.
    instances_started: u64,
    /// The ABI version the suite speaks.
    abi_version: u32,
    /// Where the allocator calls of this session's instances go, when it traces them.
    tracer: Option<Arc<dyn AllocTracer>>,
}

impl<'e> Session<'e> {
    /// Links the suite, starts the first instance and reads its manifest.
    pub fn start(engine: &'e Engine, suite: &Suite, policy: Policy) -> Result<Self, RunError> {
        let linker = sandbox::linker(engine)?;
        let pre = linker.instantiate_pre(&suite.module).map_err(|e| RunError::Link(format!("{e:#}")))?;
        let capture = Capture::new(policy.output_limit);
        let mut instance = GuestInstance::start(engine, &pre, &policy, &capture, suite.has_initialize, None)
            .map_err(RunError::Instance)?;
        let abi_version = instance.version();
        let manifest = instance.manifest().map_err(RunError::Instance)?;
        capture.take();
        Ok(Session {
            engine,
            pre,
            has_initialize: suite.has_initialize,
            policy,
            capture,
            manifest,
            instance: Some(instance),
            instances_started: 1,
            abi_version,
            tracer: None,
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
            has_initialize: self.has_initialize,
            policy: self.policy.clone(),
            capture: Capture::new(self.policy.output_limit),
            manifest: self.manifest.clone(),
            instance: None,
            instances_started: 0,
            abi_version: self.abi_version,
            tracer: None,
        }
    }

    /// The ABI version the suite speaks.
    pub fn abi_version(&self) -> u32 {
        self.abi_version
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
            let mut fresh = GuestInstance::start(
                self.engine,
                &self.pre,
                &self.policy,
                &self.capture,
                self.has_initialize,
                self.tracer.clone(),
            )
            .map_err(RunError::Instance)?;
            // A deterministic module declares the same suite every time; anything else
            // would make layer and test indexes meaningless.
            if fresh.manifest().map_err(RunError::Instance)? != self.manifest {
                return Err(RunError::Instance(InstanceError::ManifestChanged));
            }
            self.capture.take();
            self.instance = Some(fresh);
            self.instances_started += 1;
        }
        Ok(self.instance.as_mut().expect("instance was just started"))
    }

    /// Drops the instance (after a trap, or to lose a layer that cannot be torn down).
    pub(super) fn discard_instance(&mut self) {
        self.instance = None;
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
            Some(index) if present => self.instance()?.hook(index, code).map_err(RunError::Instance),
            _ => Ok(CallResult { outcome: Outcome::Pass, trapped: false }),
        }
    }

    /// Runs test `test` (a guest index).
    pub(super) fn call_test(&mut self, test: u32) -> Result<CallResult, RunError> {
        self.instance()?.run_test(test).map_err(RunError::Instance)
    }

    /// Takes what the guest wrote since the last take.
    pub(super) fn take_output(&self) -> CapturedOutput {
        self.capture.take()
    }

    /// A counters snapshot of the instance in use.
    pub(super) fn snapshot(&mut self) -> Result<Snapshot, RunError> {
        let (counters, memory_bytes) = self.instance()?.counters().map_err(RunError::Counters)?;
        Ok(Snapshot::new(counters, memory_bytes))
    }
}
