//! One live guest instance: typed export handles looked up once, and calls that
//! turn traps into outcomes.

use std::fmt;

use leakhost_guest::abi::export;
use wasmtime::{Engine, InstancePre, Memory, Store, TypedFunc};

use crate::abi::{self, outcome, AbiError, Counters, Manifest};
use crate::sandbox::{self, Capture, GuestState, Policy};

/// How a call into the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Passed or succeeded.
    Pass,
    /// An assertion did not hold.
    Failure(String),
    /// Anything else went wrong.
    Error(String),
    /// The test skipped itself.
    Skip(String),
}

impl Outcome {
    /// The message, empty for a pass.
    pub fn message(&self) -> &str {
        match self {
            Outcome::Pass => "",
            Outcome::Failure(m) | Outcome::Error(m) | Outcome::Skip(m) => m,
        }
    }
}

/// The result of one call, and whether the instance survived it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// The outcome.
    pub outcome: Outcome,
    /// The instance trapped and must be replaced.
    pub trapped: bool,
}

/// Failures of the instance itself, as opposed to a test's.
#[derive(Debug)]
pub enum InstanceError {
    /// Instantiation or `_initialize` failed.
    Start(String),
    /// A record the guest exposed is malformed.
    Abi(AbiError),
    /// `leakhost_abi_version` returned something other than 1.
    Version(u32),
    /// A fresh instance declared a different manifest than the first one.
    ManifestChanged,
}

impl fmt::Display for InstanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceError::Start(why) => write!(f, "cannot start an instance: {why}"),
            InstanceError::Abi(e) => write!(f, "invalid ABI data: {e}"),
            InstanceError::Version(v) => {
                write!(
                    f,
                    "ABI version {v} is not supported (this leakhost speaks version {})",
                    abi::ABI_VERSION
                )
            }
            InstanceError::ManifestChanged => write!(f, "a fresh instance declared a different manifest"),
        }
    }
}

/// A started instance.
pub struct GuestInstance {
    store: Store<GuestState>,
    memory: Memory,
    manifest_fn: TypedFunc<(), i32>,
    run_test: TypedFunc<i32, i32>,
    layer_hook: TypedFunc<(i32, i32), i32>,
    counters: TypedFunc<(), i32>,
    status_addr: u32,
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
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map_err(|e| InstanceError::Start(format!("{name}: {e}")))
}

impl GuestInstance {
    /// Instantiates from the pre-linked template and runs `_initialize` if present.
    pub fn start(
        engine: &Engine,
        pre: &InstancePre<GuestState>,
        policy: &Policy,
        capture: &Capture,
        has_initialize: bool,
    ) -> Result<Self, InstanceError> {
        let mut store = sandbox::store(engine, policy, capture);
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| InstanceError::Start(describe_trap(&e)))?;
        if has_initialize {
            let init = typed::<(), ()>(&mut store, &instance, export::INITIALIZE)?;
            init.call(&mut store, ())
                .map_err(|e| InstanceError::Start(format!("_initialize: {}", describe_trap(&e))))?;
        }
        let version = typed::<(), i32>(&mut store, &instance, export::ABI_VERSION)?
            .call(&mut store, ())
            .map_err(|e| InstanceError::Start(format!("{}: {}", export::ABI_VERSION, describe_trap(&e))))?
            as u32;
        if version != abi::ABI_VERSION {
            return Err(InstanceError::Version(version));
        }
        let memory = instance
            .get_memory(&mut store, export::MEMORY)
            .ok_or_else(|| InstanceError::Start("no memory export".into()))?;
        let status_addr = typed::<(), i32>(&mut store, &instance, export::STATUS)?
            .call(&mut store, ())
            .map_err(|e| InstanceError::Start(format!("{}: {}", export::STATUS, describe_trap(&e))))?
            as u32;
        let guest = GuestInstance {
            manifest_fn: typed(&mut store, &instance, export::MANIFEST)?,
            run_test: typed(&mut store, &instance, export::RUN_TEST)?,
            layer_hook: typed(&mut store, &instance, export::LAYER_HOOK)?,
            counters: typed(&mut store, &instance, export::COUNTERS)?,
            store,
            memory,
            status_addr,
        };
        // Validate the status address now, so a bad one is a module error, not a test error.
        abi::decode_status(guest.memory.data(&guest.store), status_addr).map_err(InstanceError::Abi)?;
        Ok(guest)
    }

    /// Reads and validates the manifest.
    pub fn manifest(&mut self) -> Result<Manifest, InstanceError> {
        let addr = self
            .manifest_fn
            .call(&mut self.store, ())
            .map_err(|e| InstanceError::Start(format!("{}: {}", export::MANIFEST, describe_trap(&e))))?
            as u32;
        abi::decode_manifest(self.memory.data(&self.store), addr).map_err(InstanceError::Abi)
    }

    /// Runs test `index`.
    pub fn run_test(&mut self, index: u32) -> CallResult {
        let result = self.run_test.call(&mut self.store, index as i32);
        self.finish(result)
    }

    /// Runs `hook` of the layer with guest index `layer`.
    pub fn hook(&mut self, layer: u32, hook: u32) -> CallResult {
        let result = self.layer_hook.call(&mut self.store, (layer as i32, hook as i32));
        self.finish(result)
    }

    /// Takes a counters snapshot and the memory size in bytes.
    pub fn counters(&mut self) -> Result<(Counters, u64), String> {
        let addr = self.counters.call(&mut self.store, ()).map_err(|e| describe_trap(&e))? as u32;
        let memory = self.memory.data(&self.store);
        let counters = abi::decode_counters(memory, addr).map_err(|e| e.to_string())?;
        Ok((counters, memory.len() as u64))
    }

    fn status(&self) -> Result<abi::Status, AbiError> {
        abi::decode_status(self.memory.data(&self.store), self.status_addr)
    }

    fn finish(&mut self, result: wasmtime::Result<i32>) -> CallResult {
        match result {
            Ok(code) => {
                let code = code as u32;
                if code == outcome::PASS {
                    return CallResult {
                        outcome: Outcome::Pass,
                        trapped: false,
                    };
                }
                let message = match self.status() {
                    Ok(status) => status.message,
                    Err(e) => format!("(unreadable status: {e})"),
                };
                let outcome = match code {
                    outcome::FAILURE => Outcome::Failure(message),
                    outcome::ERROR => Outcome::Error(message),
                    outcome::SKIP => Outcome::Skip(message),
                    other => Outcome::Error(format!("unknown outcome code {other}: {message}")),
                };
                CallResult {
                    outcome,
                    trapped: false,
                }
            }
            Err(error) => {
                let trap = describe_trap(&error);
                // A panic records its message before the abort traps; use it when present.
                let outcome = match self.status() {
                    Ok(abi::Status {
                        kind: Some(outcome::FAILURE),
                        message,
                    }) => Outcome::Failure(message),
                    Ok(abi::Status {
                        kind: Some(outcome::ERROR),
                        message,
                    }) => Outcome::Error(message),
                    _ => Outcome::Error(trap),
                };
                CallResult { outcome, trapped: true }
            }
        }
    }
}

/// Renders a wasmtime error from a call: the trap or exit, then wasmtime's context.
pub fn describe_trap(error: &wasmtime::Error) -> String {
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return format!("the guest called proc_exit({}); a suite must not exit", exit.0);
    }
    format!("{error:?}")
}
