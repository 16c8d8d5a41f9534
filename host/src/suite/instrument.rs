//! Preparing a module before it is compiled: what leakhost adds to it, and how to find
//! its way back to the module as it was written.
//!
//! - [`globals`]: one export per mutable global, so that fresh instances can start from
//!   a snapshot (`run::image`).
//! - [`alloc`]: the allocator's entry points wrapped so that they report to the host
//!   (docs/abi.md §12), for modules that do not count their own allocations (libtest
//!   binaries) or cannot trace them (ABI v1 suites, the C SDK's).
//! - [`command`]: the exports that let the host call a libtest binary's tests.
//!
//! Everything is appended at the end of its index space and replaced bodies keep their
//! size, so the module's own code stays where its DWARF says; [`CodeMap`] translates
//! what moved anyway. What is compiled and cached is the prepared module.

mod alloc;
mod code_map;
mod command;
mod globals;
mod info;
mod module;
mod rewrite;

pub use alloc::{kind as report_kind, AllocInfo, Mode, COUNT_SWITCH, HOOKS_TABLE, TRACE_SWITCH};
pub use code_map::CodeMap;
pub use command::{CommandInfo, CTORS, DROP_STRING, STACK_POINTER, TEST_PREFIX, WRAPPER_PREFIX};
pub use globals::{code_allows_snapshots, GLOBAL_EXPORT_PREFIX};
pub(crate) use module::read_leb;

use leakhost_guest::abi::export;

/// The version of what [`instrument`] does to a module; part of the cache key, so that
/// a change here never loads code compiled from an older rewrite.
pub const VERSION: u32 = 1;

/// Every export leakhost adds starts with this (`:` cannot start a Rust or C symbol,
/// so a module's own exports never collide with them).
pub const EXPORT_PREFIX: &str = ":leakhost:";

/// Environment variable that makes SDK suites count by instrumentation too, their
/// counters' heap figures replaced by the host's (`LEAKHOST_HOST_ALLOC_COUNTS=1`): for
/// checking that both agree.
pub const HOST_COUNTS_ENV: &str = "LEAKHOST_HOST_ALLOC_COUNTS";

/// Whether `name` is an export leakhost added.
pub fn is_leakhost_export(name: &str) -> bool {
    name.starts_with(EXPORT_PREFIX)
}

/// What preparing a module did, beyond its bytes.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Instrumentation {
    /// The allocator's wrapping.
    pub alloc: AllocInfo,
    /// For a WASI command without the leakhost ABI (a libtest binary): its test exports.
    pub command: Option<CommandInfo>,
    /// Where the compiled module's code was in the original module.
    pub code_map: CodeMap,
}

/// A module ready to compile.
pub struct Instrumented {
    /// The prepared module (the original's bytes when nothing could be added).
    pub bytes: Vec<u8>,
    /// Whether every mutable global is exported (none holds a reference).
    pub globals_exported: bool,
    /// What was added.
    pub instrumentation: Instrumentation,
}

/// What a module is, from its exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// It speaks the leakhost ABI and traces its own allocations (v2).
    Tracing,
    /// It speaks the leakhost ABI and counts, but cannot trace (v1).
    Counting,
    /// A WASI command without the ABI: a libtest binary, perhaps.
    Command,
    /// Anything else (it is refused after compiling).
    Other,
}

fn shape(info: &info::ModuleInfo<'_>) -> Shape {
    if info.exports_name(export::ABI_VERSION) {
        match info.exports_name(export::TRACE_FLAG) {
            true => Shape::Tracing,
            false => Shape::Counting,
        }
    } else if info.exports_name("_start") {
        Shape::Command
    } else {
        Shape::Other
    }
}

/// What, besides the module's bytes, decides what [`instrument`] makes of it: part of
/// the cache key, with the module's hash.
pub fn variant() -> (u32, bool) {
    (VERSION, host_counts_requested())
}

fn host_counts_requested() -> bool {
    std::env::var_os(HOST_COUNTS_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// Prepares a binary module: wraps its allocator where the host must count or trace
/// for it, adds a libtest binary's test exports, then the globals' exports. Bytes that
/// do not parse are returned unchanged (compiling them reports the error).
pub fn instrument(bytes: &[u8]) -> Instrumented {
    let (bytes, instrumentation) = match info::ModuleInfo::read(bytes) {
        Some(info) => rewrite_module(&info),
        None => (bytes.to_vec(), Instrumentation::default()),
    };
    let (bytes, globals_exported) = globals::export_globals(bytes);
    let mut instrumentation = instrumentation;
    // The globals' exports moved the code section (they come before it).
    instrumentation.code_map = std::mem::take(&mut instrumentation.code_map).at(code_start(&bytes).unwrap_or(0));
    Instrumented { bytes, globals_exported, instrumentation }
}

fn rewrite_module(info: &info::ModuleInfo<'_>) -> (Vec<u8>, Instrumentation) {
    let shape = shape(info);
    let mode = match (shape, host_counts_requested()) {
        (Shape::Command, _) | (Shape::Tracing | Shape::Counting, true) => Some(Mode::Count),
        (Shape::Counting, false) => Some(Mode::Trace),
        (Shape::Tracing, false) | (Shape::Other, _) => None,
    };
    let mut additions = rewrite::Additions::default();
    let alloc = mode.map(|mode| alloc::wrap(info, mode, &mut additions)).unwrap_or_default();
    let command = (shape == Shape::Command).then(|| command::export(info, &mut additions));
    if additions.is_empty() {
        return (info.bytes.to_vec(), Instrumentation { alloc, command, code_map: CodeMap::identity() });
    }
    let (bytes, code_map) = rewrite::apply(info.bytes, info, &additions);
    (bytes, Instrumentation { alloc, command, code_map })
}

/// Where the code section's contents start in `bytes`.
fn code_start(bytes: &[u8]) -> Option<u32> {
    let sections = module::Sections::split(bytes)?;
    sections.find(10).and_then(|s| u32::try_from(s.content.start).ok())
}

#[cfg(test)]
mod tests;
