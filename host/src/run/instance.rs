//! One live guest instance: typed export handles looked up once, and calls that
//! turn traps into outcomes.

use std::sync::Arc;

use leakhost_guest::abi::export;
use wasmtime::{Engine, InstancePre, Memory, Store, TypedFunc};

pub use super::bare::Startup;
use super::bare::{self, BareCalls};
use super::call::Limits;
pub use super::call::{CallResult, InstanceError, Outcome};
use super::image::{InitImage, WriteTracking};
use crate::abi::{self, outcome, AbiError, Counters, Manifest};
use crate::sandbox::alloc_hooks::{self, AllocSwitch};
use crate::sandbox::{self, AllocTracer, Capture, GuestState, Policy};
use crate::text::GuestText;

/// The exports the host calls.
// One per instance; the ABI's stay inline, on every call's path.
#[allow(clippy::large_enum_variant)]
enum Calls {
    Abi {
        manifest_fn: TypedFunc<(), i32>,
        run_test: TypedFunc<i32, i32>,
        layer_hook: TypedFunc<(i32, i32), i32>,
        counters: TypedFunc<(), i32>,
    },
    Bare(BareCalls),
}

/// A started instance.
pub struct GuestInstance {
    store: Store<GuestState>,
    instance: wasmtime::Instance,
    memory: Memory,
    calls: Calls,
    /// The switch of an instrumented allocator.
    alloc: Option<AllocSwitch>,
    status_addr: u32,
    limits: Limits,
    version: u32,
    /// How a reset finds the pages its calls wrote.
    tracking: WriteTracking,
}

/// A started store, its instance, its limits and its allocator's switch.
type Instantiated = (Store<GuestState>, wasmtime::Instance, Limits, Option<AllocSwitch>);

/// Starts a store for one instance and instantiates the module in it; an instrumented
/// allocator gets the host's report function.
fn instantiate(
    engine: &Engine,
    pre: &InstancePre<GuestState>,
    policy: &Policy,
    capture: &Capture,
) -> Result<Instantiated, InstanceError> {
    let limits = Limits::new(policy);
    let mut store = sandbox::store(engine, policy, capture).map_err(InstanceError::Sandbox)?;
    limits.arm(&mut store);
    let instance = pre.instantiate(&mut store).map_err(|e| InstanceError::Start(limits.describe(&e)))?;
    let alloc = alloc_hooks::install(&mut store, &instance).map_err(InstanceError::Start)?;
    Ok((store, instance, limits, alloc))
}

fn typed<P, R>(
    store: &mut Store<GuestState>,
    instance: &wasmtime::Instance,
    name: &str,
) -> Result<TypedFunc<P, R>, InstanceError>
where
    P: wasmtime::WasmParams,
    R: wasmtime::WasmResults,
{
    // suite::load checked every signature, so this fails only on a broken invariant.
    instance.get_typed_func::<P, R>(&mut *store, name).map_err(|e| InstanceError::Start(format!("{name}: {e}")))
}

impl GuestInstance {
    /// Instantiates from the pre-linked template and runs `_initialize` if present (a
    /// libtest binary's constructors).
    pub fn start(
        engine: &Engine,
        pre: &InstancePre<GuestState>,
        policy: &Policy,
        capture: &Capture,
        startup: &Startup,
        tracer: Option<Arc<dyn AllocTracer>>,
    ) -> Result<Self, InstanceError> {
        let (mut store, instance, limits, alloc) = instantiate(engine, pre, policy, capture)?;
        let has_initialize = match startup {
            Startup::Abi { has_initialize } => *has_initialize,
            Startup::Bare(bare) => {
                BareCalls::construct(&mut store, &instance, &limits)?;
                let calls = Calls::Bare(BareCalls::new(bare.clone(), capture.clone()));
                let mut guest = GuestInstance::assemble(store, instance, limits, alloc, 0, 0, Some(calls))?;
                if let Some(tracer) = tracer {
                    guest.trace(tracer)?;
                }
                return Ok(guest);
            }
        };
        if has_initialize {
            let init = typed::<(), ()>(&mut store, &instance, export::INITIALIZE)?;
            limits.arm(&mut store);
            init.call(&mut store, ())
                .map_err(|e| InstanceError::Start(format!("_initialize: {}", limits.describe(&e))))?;
        }
        limits.arm(&mut store);
        let version = typed::<(), i32>(&mut store, &instance, export::ABI_VERSION)?
            .call(&mut store, ())
            .map_err(|e| InstanceError::Start(format!("{}: {}", export::ABI_VERSION, limits.describe(&e))))?
            as u32;
        if !abi::SUPPORTED_VERSIONS.contains(&version) {
            return Err(InstanceError::Version(version));
        }
        if version >= abi::TRACING_VERSION {
            typed::<(), i32>(&mut store, &instance, export::TRACE_FLAG).map_err(|_| InstanceError::TraceFlag)?;
        }
        limits.arm(&mut store);
        let status_addr = typed::<(), i32>(&mut store, &instance, export::STATUS)?
            .call(&mut store, ())
            .map_err(|e| InstanceError::Start(format!("{}: {}", export::STATUS, limits.describe(&e))))?
            as u32;
        let guest = GuestInstance::assemble(store, instance, limits, alloc, status_addr, version, None)?;
        // Validate the status address now, so a bad one is a module error, not a test error.
        abi::decode_status(guest.memory.data(&guest.store), status_addr).map_err(InstanceError::Abi)?;
        let mut guest = guest;
        if let Some(tracer) = tracer {
            guest.trace(tracer)?;
        }
        Ok(guest)
    }

    /// The ABI version the guest speaks.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Turns allocation tracing on: installs `tracer` and sets the guest's trace flag
    /// after initialisation, so only what the host calls afterwards is traced. A module
    /// that cannot trace by itself (ABI v1, a libtest binary) is traced through its
    /// instrumented allocator; one that can neither way is not traced.
    pub(super) fn trace(&mut self, tracer: Arc<dyn AllocTracer>) -> Result<(), InstanceError> {
        if self.version < abi::TRACING_VERSION {
            if let Some(alloc) = self.alloc {
                alloc.trace(&mut self.store).map_err(InstanceError::Start)?;
                self.store.data_mut().set_tracer(Some(tracer));
            }
            return Ok(());
        }
        let instance = self.instance;
        let flag_fn = typed::<(), i32>(&mut self.store, &instance, export::TRACE_FLAG)?;
        self.limits.arm(&mut self.store);
        let addr = flag_fn
            .call(&mut self.store, ())
            .map_err(|e| InstanceError::Start(format!("{}: {}", export::TRACE_FLAG, self.limits.describe(&e))))?
            as u32;
        let memory = self.memory.data_mut(&mut self.store);
        let flag = addr.is_multiple_of(4).then(|| memory.get_mut(addr as usize..addr as usize + 4)).flatten().ok_or(
            InstanceError::Start(format!("{}: address {addr:#x} is not an aligned u32 in memory", export::TRACE_FLAG)),
        )?;
        flag.copy_from_slice(&1u32.to_le_bytes());
        self.store.data_mut().set_tracer(Some(tracer));
        Ok(())
    }

    /// Instantiates without calling into the guest and gives the instance the state of
    /// `image` (taken from an instance whose status record was at `status_addr`).
    #[allow(clippy::too_many_arguments)]
    pub fn start_from(
        engine: &Engine,
        pre: &InstancePre<GuestState>,
        policy: &Policy,
        capture: &Capture,
        image: &InitImage,
        status_addr: u32,
        version: u32,
        startup: &Startup,
    ) -> Result<Self, InstanceError> {
        let (mut store, instance, limits, alloc) = instantiate(engine, pre, policy, capture)?;
        let memory = instance
            .get_memory(&mut store, export::MEMORY)
            .ok_or_else(|| InstanceError::Start("no memory export".into()))?;
        let tracking = image.restore(&mut store, &instance, memory).map_err(InstanceError::Restore)?;
        let calls = match startup {
            Startup::Abi { .. } => None,
            Startup::Bare(bare) => Some(Calls::Bare(BareCalls::new(bare.clone(), capture.clone()))),
        };
        let mut fresh = GuestInstance::assemble(store, instance, limits, alloc, status_addr, version, calls)?;
        fresh.tracking = tracking;
        Ok(fresh)
    }

    /// The instance with its exports looked up (`calls`, or the ABI's when `None`).
    fn assemble(
        mut store: Store<GuestState>,
        instance: wasmtime::Instance,
        limits: Limits,
        alloc: Option<AllocSwitch>,
        status_addr: u32,
        version: u32,
        calls: Option<Calls>,
    ) -> Result<Self, InstanceError> {
        let memory = instance
            .get_memory(&mut store, export::MEMORY)
            .ok_or_else(|| InstanceError::Start("no memory export".into()))?;
        let calls = match calls {
            Some(calls) => calls,
            None => Calls::Abi {
                manifest_fn: typed(&mut store, &instance, export::MANIFEST)?,
                run_test: typed(&mut store, &instance, export::RUN_TEST)?,
                layer_hook: typed(&mut store, &instance, export::LAYER_HOOK)?,
                counters: typed(&mut store, &instance, export::COUNTERS)?,
            },
        };
        let tracking = WriteTracking::Start;
        Ok(GuestInstance { store, instance, memory, calls, alloc, status_addr, limits, version, tracking })
    }

    /// Makes this instance a fresh one again, in place: the host state of one that has
    /// made no call, then `image`'s state. `false` when that is impossible (its memory
    /// grew), and a new instance must be started instead.
    pub fn reset(&mut self, policy: &Policy, capture: &Capture, image: &InitImage) -> Result<bool, InstanceError> {
        // Descriptors the guest closed or renumbered come back with a new WASI context.
        sandbox::reset_state(&mut self.store, policy, capture).map_err(InstanceError::Sandbox)?;
        image.reset(&mut self.store, &self.instance, self.memory, &mut self.tracking).map_err(InstanceError::Restore)
    }

    /// A snapshot of this instance's state, for fresh instances to start from.
    pub fn image(&mut self) -> InitImage {
        InitImage::capture(&mut self.store, &self.instance, self.memory)
    }

    /// Where the guest's status record is.
    pub fn status_addr(&self) -> u32 {
        self.status_addr
    }

    /// Calls export `name` under the per-call limits, as every call into the guest is
    /// made, for `run::conformance`, which judges what a call returns before anything is
    /// decoded. A trap comes back as the first line of its description.
    pub(super) fn call_export<P, R>(&mut self, name: &str, params: P) -> Result<R, String>
    where
        P: wasmtime::WasmParams,
        R: wasmtime::WasmResults,
    {
        let instance = self.instance;
        let func = typed::<P, R>(&mut self.store, &instance, name).map_err(|e| e.to_string())?;
        self.limits.arm(&mut self.store);
        func.call(&mut self.store, params)
            .map_err(|e| format!("{name} trapped: {}", self.limits.describe(&e).lines().next().unwrap_or_default()))
    }

    /// The guest's linear memory.
    pub(super) fn memory_data(&self) -> &[u8] {
        self.memory.data(&self.store)
    }

    /// Calls the guest for where its manifest is; `Err(Ok(..))` for a libtest binary,
    /// whose manifest is the host's.
    fn manifest_addr(&mut self) -> Result<Result<u32, (Manifest, blake3::Hash)>, InstanceError> {
        let manifest_fn = match &self.calls {
            Calls::Abi { manifest_fn, .. } => manifest_fn,
            Calls::Bare(calls) => return Ok(Err(calls.bare().manifest())),
        };
        self.limits.arm(&mut self.store);
        manifest_fn
            .call(&mut self.store, ())
            .map(|addr| Ok(addr as u32))
            .map_err(|e| InstanceError::Start(format!("{}: {}", export::MANIFEST, self.limits.describe(&e))))
    }

    /// A hash of the manifest's bytes (records, names and base lists), cheaper than
    /// decoding it; `None` when it points outside memory (it then cannot be the one
    /// that was validated).
    pub fn manifest_fingerprint(&mut self) -> Result<Option<blake3::Hash>, InstanceError> {
        match self.manifest_addr()? {
            Ok(addr) => Ok(abi::manifest_fingerprint(self.memory.data(&self.store), addr)),
            Err((_, hash)) => Ok(Some(hash)),
        }
    }

    /// Reads and validates the manifest, and hashes its bytes (see [`Self::manifest_fingerprint`]).
    pub fn manifest(&mut self) -> Result<(Manifest, blake3::Hash), InstanceError> {
        let addr = match self.manifest_addr()? {
            Ok(addr) => addr,
            Err(host) => return Ok(host),
        };
        let memory = self.memory.data(&self.store);
        let manifest = abi::decode_manifest(memory, addr).map_err(InstanceError::Abi)?;
        // Every record decode_manifest read is in bounds, so the hash exists.
        let hash = abi::manifest_fingerprint(memory, addr).ok_or(InstanceError::ManifestChanged)?;
        Ok((manifest, hash))
    }

    /// Runs test `index`; an error means the guest broke the ABI, not that the test failed.
    pub fn run_test(&mut self, index: u32) -> Result<CallResult, InstanceError> {
        let run_test = match &mut self.calls {
            Calls::Abi { run_test, .. } => run_test,
            Calls::Bare(calls) => {
                return calls.run_test(&mut self.store, &self.instance, self.memory, &self.limits, index)
            }
        };
        self.limits.arm(&mut self.store);
        let result = run_test.call(&mut self.store, index as i32);
        self.finish(result)
    }

    /// Runs `hook` of the layer with guest index `layer`; errors as for [`Self::run_test`].
    pub fn hook(&mut self, layer: u32, hook: u32) -> Result<CallResult, InstanceError> {
        let Calls::Abi { layer_hook, .. } = &self.calls else {
            // A libtest binary has no layers of its own.
            return Ok(CallResult { outcome: Outcome::Pass, trapped: false });
        };
        self.limits.arm(&mut self.store);
        let result = layer_hook.call(&mut self.store, (layer as i32, hook as i32));
        self.finish(result)
    }

    /// Takes a counters snapshot and the memory size in bytes. The heap figures are the
    /// host's where it keeps the module's counts (a libtest binary; an SDK suite under
    /// `LEAKHOST_HOST_ALLOC_COUNTS`).
    pub fn counters(&mut self) -> Result<(Counters, u64), String> {
        let counters_fn = match &self.calls {
            Calls::Abi { counters, .. } => counters,
            Calls::Bare(_) => return Ok(bare::counters(&self.store, self.memory)),
        };
        self.limits.arm(&mut self.store);
        // One line, as every fatal error: the limit or trap, without its backtrace.
        let addr = counters_fn
            .call(&mut self.store, ())
            .map_err(|e| format!("{}: {}", export::COUNTERS, self.limits.describe(&e).lines().next().unwrap_or("")))?
            as u32;
        let memory = self.memory.data(&self.store);
        let mut counters = abi::decode_counters(memory, addr).map_err(|e| e.to_string())?;
        if self.alloc.is_some_and(|a| a.counts) {
            let host = bare::counters(&self.store, self.memory).0;
            (counters.live_blocks, counters.live_bytes, counters.total_allocs) =
                (host.live_blocks, host.live_bytes, host.total_allocs);
        }
        Ok((counters, memory.len() as u64))
    }

    fn status(&self) -> Result<abi::Status, AbiError> {
        abi::decode_status(self.memory.data(&self.store), self.status_addr)
    }

    fn finish(&mut self, result: wasmtime::Result<i32>) -> Result<CallResult, InstanceError> {
        match result {
            Ok(code) => {
                let code = code as u32;
                if code == outcome::PASS {
                    return Ok(CallResult { outcome: Outcome::Pass, trapped: false });
                }
                let message = GuestText::from(self.status().map_err(InstanceError::Abi)?.message);
                let outcome = match code {
                    outcome::FAILURE => Outcome::Failure(message),
                    outcome::ERROR => Outcome::Error(message),
                    outcome::SKIP => Outcome::Skip(message),
                    other => Outcome::Error(format!("unknown outcome code {other}: {}", message.raw()).into()),
                };
                Ok(CallResult { outcome, trapped: false })
            }
            Err(error) => {
                let trap = self.limits.describe(&error);
                // A panic records its message before the abort traps; use it when present.
                let outcome = match self.status().map_err(InstanceError::Abi)? {
                    abi::Status { kind: Some(outcome::FAILURE), message } => Outcome::Failure(message.into()),
                    abi::Status { kind: Some(outcome::ERROR), message } => Outcome::Error(message.into()),
                    _ => Outcome::Error(trap.into()),
                };
                Ok(CallResult { outcome, trapped: true })
            }
        }
    }
}
