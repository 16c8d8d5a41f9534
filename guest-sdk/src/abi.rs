//! ABI constants and record layouts shared by the guest SDK and the host (v2: v1 plus
//! allocation tracing).
//!
//! docs/abi.md is the normative description; this module is its executable form.
//! Every record is little-endian, 4-byte aligned, and addresses are offsets into the
//! exported `memory`. The host never trusts these layouts: it decodes them field by
//! field with bounds checks (see the host's `abi` module).

/// The ABI version this SDK speaks; `leakhost_abi_version` returns it.
pub const ABI_VERSION: u32 = 2;

/// The host import module of ABI v2.
pub const IMPORT_MODULE: &str = "leakhost";
/// `(kind: i32, ptr: i32, size: i32, old_ptr: i32) -> ()`, in [`IMPORT_MODULE`]: reports one
/// allocator call while the trace flag is set (ABI v2).
pub const TRACE_ALLOC: &str = "trace_alloc";

/// The `kind` argument of [`TRACE_ALLOC`].
pub mod trace {
    /// A block of `size` bytes was allocated at `ptr`.
    pub const ALLOC: u32 = 0;
    /// The block at `ptr` of `size` bytes was freed.
    pub const FREE: u32 = 1;
    /// The block at `old_ptr` moved to `ptr` and now has `size` bytes.
    pub const REALLOC: u32 = 2;
}

/// Names of the exports that make a module a leakhost suite.
pub mod export {
    /// `() -> i32`: the ABI version.
    pub const ABI_VERSION: &str = "leakhost_abi_version";
    /// `() -> i32`: address of the [`Manifest`](super::MANIFEST_SIZE) record.
    pub const MANIFEST: &str = "leakhost_manifest";
    /// `() -> i32`: address of the status record, stable for the instance's life.
    pub const STATUS: &str = "leakhost_status";
    /// `(test: i32) -> i32`: runs one test, returns an outcome code.
    pub const RUN_TEST: &str = "leakhost_run_test";
    /// `(layer: i32, hook: i32) -> i32`: runs one layer hook, returns an outcome code.
    pub const LAYER_HOOK: &str = "leakhost_layer_hook";
    /// `() -> i32`: address of a fresh counters snapshot record.
    pub const COUNTERS: &str = "leakhost_counters";
    /// `() -> i32`, ABI v2: address of the u32 trace flag the host sets to 1 to turn
    /// allocation tracing on.
    pub const TRACE_FLAG: &str = "leakhost_trace_flag";
    /// `() -> ()`, optional: WASI reactor initialisation, called once per instance.
    pub const INITIALIZE: &str = "_initialize";
    /// The linear memory every address refers to.
    pub const MEMORY: &str = "memory";
}

/// Outcome codes returned by `leakhost_run_test` and `leakhost_layer_hook`.
pub mod outcome {
    /// The test passed or the hook succeeded.
    pub const PASS: u32 = 0;
    /// An assertion did not hold.
    pub const FAILURE: u32 = 1;
    /// Anything else went wrong.
    pub const ERROR: u32 = 2;
    /// The test chose not to run.
    pub const SKIP: u32 = 3;
}

/// Hook codes for `leakhost_layer_hook`.
pub mod hook {
    /// Layer set-up, once before the layer's tests.
    pub const SET_UP: u32 = 0;
    /// Layer tear-down, once after the layer is no longer needed.
    pub const TEAR_DOWN: u32 = 1;
    /// Before every test of the layer or a layer derived from it.
    pub const TEST_SET_UP: u32 = 2;
    /// After every test of the layer or a layer derived from it.
    pub const TEST_TEAR_DOWN: u32 = 3;
}

/// Bits of a layer record's `flags` field.
pub mod layer_flags {
    /// The layer has a setUp hook.
    pub const HAS_SET_UP: u32 = 1 << 0;
    /// The layer has a tearDown hook.
    pub const HAS_TEAR_DOWN: u32 = 1 << 1;
    /// The layer has a testSetUp hook.
    pub const HAS_TEST_SET_UP: u32 = 1 << 2;
    /// The layer has a testTearDown hook.
    pub const HAS_TEST_TEAR_DOWN: u32 = 1 << 3;
    /// The layer cannot be torn down; the host discards the instance instead.
    pub const NO_TEAR_DOWN: u32 = 1 << 4;
    /// Every bit defined in v1; any other bit makes the manifest invalid.
    pub const ALL: u32 = 0b1_1111;
}

/// Layer index of a test that belongs to the default unit-test layer.
pub const UNIT_LAYER: u32 = u32::MAX;

/// Manifest: `layers_ptr, layers_len, tests_ptr, tests_len` (u32 each).
pub const MANIFEST_SIZE: u32 = 16;
/// Layer: `name_ptr, name_len, bases_ptr, bases_len, flags` (u32 each); bases are u32 layer indexes.
pub const LAYER_SIZE: u32 = 20;
/// Test: `name_ptr, name_len, layer` (u32 each).
pub const TEST_SIZE: u32 = 12;
/// Status: `kind, msg_ptr, msg_len` (u32 each); `kind` is an outcome code, set by the last call.
pub const STATUS_SIZE: u32 = 12;
/// Counters: `live_blocks, live_bytes, total_allocs` (u64 each), then
/// `types_ptr, types_len, user_ptr, user_len` (u32 each).
pub const COUNTERS_SIZE: u32 = 40;
/// Type counter: `name_ptr, name_len` (u32), `instances, bytes` (i64).
pub const TYPE_COUNTER_SIZE: u32 = 24;
/// User counter: `name_ptr, name_len` (u32), `value` (i64).
pub const USER_COUNTER_SIZE: u32 = 16;

/// Status `kind` value meaning "no outcome recorded by this call".
pub const STATUS_NONE: u32 = u32::MAX;
