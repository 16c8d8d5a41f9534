//! The one place the wasm engine is configured, and the choice between its two
//! execution paths. Every setting a result could depend on is pinned here
//! (docs/determinism.md gives the reasoning for each).

use wasmtime::{Config, Engine, WasmBacktraceDetails};

use super::{Policy, SandboxError};

/// How a suite's code is executed; both give the same results (docs/determinism.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// Compiled to native code by Cranelift (fast).
    #[default]
    Cranelift,
    /// Compiled to Pulley bytecode and interpreted: a second, independent execution path.
    Pulley,
}

impl EngineKind {
    /// The name `--engine` takes and `inspect` prints.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Cranelift => "cranelift",
            EngineKind::Pulley => "pulley",
        }
    }

    /// The wasmtime compilation target, or `None` for the host itself.
    fn target(self) -> Option<&'static str> {
        // Pulley's pointer width and byte order must match the host's for the host to run it.
        const PULLEY: &str = match (cfg!(target_pointer_width = "64"), cfg!(target_endian = "little")) {
            (true, true) => "pulley64",
            (true, false) => "pulley64be",
            (false, true) => "pulley32",
            (false, false) => "pulley32be",
        };
        match self {
            EngineKind::Cranelift => None,
            EngineKind::Pulley => Some(PULLEY),
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Builds the one engine a run uses; its settings follow the policy's limits.
///
/// Every setting a result could depend on is set here rather than left to a default
/// that reads the environment or the host (docs/determinism.md says why each is safe).
/// The compiled-module cache key hashes all of them, with the target.
pub fn engine(policy: &Policy) -> Result<Engine, SandboxError> {
    let mut config = Config::new();
    if let Some(target) = policy.engine.target() {
        config.target(target).map_err(|e| SandboxError::Engine(format!("--engine {}: {e}", policy.engine)))?;
    }
    config
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        // x86_64 and aarch64 produce different NaN bit patterns; canonical NaNs make float
        // results the same bits on every host and engine.
        .cranelift_nan_canonicalization(true)
        // Relaxed SIMD may otherwise lower to whatever the host CPU does fastest.
        .relaxed_simd_deterministic(true)
        // Config::new() read WASMTIME_BACKTRACE_DETAILS; the user's environment must not
        // change trap messages.
        .wasm_backtrace_details(WasmBacktraceDetails::Disable)
        .wasm_backtrace_max_frames(std::num::NonZeroUsize::new(BACKTRACE_FRAMES))
        .epoch_interruption(policy.timeout.is_some())
        .consume_fuel(policy.fuel.is_some())
        .max_wasm_stack(policy.max_stack)
        // Only checked against max_wasm_stack (leakhost makes no async calls); the native
        // stack that holds the wasm stack is the calling thread's (see run::worker_stack_size).
        .async_stack_size(policy.max_stack.saturating_add(1 << 20));
    Engine::new(&config).map_err(|e| SandboxError::Engine(e.to_string()))
}

/// Frames wasmtime collects per backtrace (its own default, pinned).
const BACKTRACE_FRAMES: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// Operations whose results differ between hosts unless the engine pins them: x86_64
    /// makes negative NaNs and truncates NaN lanes to 0x80000000 in relaxed SIMD.
    const WAT: &str = r#"(module
        (func (export "nan_f64") (param f64 f64) (result i64)
            (i64.reinterpret_f64 (f64.div (local.get 0) (local.get 1))))
        (func (export "nan_f32") (param f32) (result i32)
            (i32.reinterpret_f32 (f32.sqrt (local.get 0))))
        (func (export "relaxed_trunc_nan") (result i32)
            (i32x4.extract_lane 0 (i32x4.relaxed_trunc_f32x4_s (f32x4.splat (f32.const nan))))))"#;

    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(kind: EngineKind, name: &str, params: P) -> R {
        let engine = engine(&Policy { engine: kind, timeout: None, ..Policy::default() }).unwrap();
        let module = wasmtime::Module::new(&engine, wat::parse_str(WAT).unwrap()).unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        instance.get_typed_func::<P, R>(&mut store, name).unwrap().call(&mut store, params).unwrap()
    }

    #[test]
    fn both_engines_make_canonical_nans() {
        for kind in [EngineKind::Cranelift, EngineKind::Pulley] {
            assert_eq!(call::<_, i64>(kind, "nan_f64", (0.0f64, 0.0f64)) as u64, 0x7ff8_0000_0000_0000, "{kind}");
            assert_eq!(call::<_, i32>(kind, "nan_f32", -1.0f32) as u32, 0x7fc0_0000, "{kind}");
        }
    }

    #[test]
    fn relaxed_simd_follows_the_deterministic_semantics() {
        for kind in [EngineKind::Cranelift, EngineKind::Pulley] {
            // i32x4.trunc_sat_f32x4_s maps NaN to 0.
            assert_eq!(call::<_, i32>(kind, "relaxed_trunc_nan", ()), 0, "{kind}");
        }
    }

    #[test]
    fn pulley_is_a_separate_target() {
        let build = |kind| engine(&Policy { engine: kind, ..Policy::default() }).unwrap();
        assert!(build(EngineKind::Pulley).is_pulley());
        assert!(!build(EngineKind::Cranelift).is_pulley());
        assert_eq!(EngineKind::Pulley.to_string(), "pulley");
    }
}
