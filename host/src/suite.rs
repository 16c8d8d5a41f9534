//! Finding, building, loading and compiling a suite, and checking that it speaks the ABI.

mod build;
pub mod build_c;
mod build_tests;
mod cache;
pub mod instrument;
mod limits;
pub mod source;
pub mod symbols;

pub use build::{resolve, BuildOptions};
pub use build_tests::{resolve_all, Resolved};
pub use cache::{Cache, CacheError, Compilation, EntryKey, StableHasher, CACHE_DIR_ENV, CACHE_KEY_ENV};
pub use limits::{
    ModuleLimits, DEFAULT_MAX_CODE_SIZE, DEFAULT_MAX_FUNCTIONS, DEFAULT_MAX_LOCALS, DEFAULT_MAX_MODULE_SIZE,
    DEFAULT_MAX_NESTING, DEFAULT_MAX_TOTAL_LOCALS,
};
pub use source::SourceFile;

use std::path::{Path, PathBuf};

use leakhost_guest::abi::export;
use thiserror::Error;
use wasmtime::{Engine, ExternType, Module, ValType};

/// Why a target could not become a compiled suite.
#[derive(Debug, Error)]
pub enum SuiteError {
    /// The path does not exist.
    #[error("{0}: no such file or directory")]
    NotFound(PathBuf),
    /// A directory that is not a Cargo package.
    #[error("{0}: a directory, but not a suite package (no Cargo.toml)")]
    NotAPackage(PathBuf),
    /// Reading the file failed.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is larger than `--max-module-size`.
    #[error("{path}: the module is larger than the limit of {}; raise it with --max-module-size", crate::text::human_bytes(*.limit as u64))]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: usize,
    },
    /// The module exceeds a structural limit that bounds compilation.
    #[error("{path}: {what} {value} exceeds the limit of {limit} before compiling; raise it with {flag}")]
    TooComplex {
        /// The file.
        path: PathBuf,
        /// What was measured.
        what: &'static str,
        /// The module's value.
        value: u64,
        /// The limit.
        limit: u64,
        /// The flag that raises the limit.
        flag: &'static str,
    },
    /// The file is not a binary wasm module.
    #[error("{path}: not a WebAssembly module: {why}")]
    NotWasm {
        /// The file.
        path: PathBuf,
        /// What it looks like instead.
        why: String,
    },
    /// wasmtime could not validate or compile it.
    #[error("{path}: invalid WebAssembly module: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// wasmtime's reason.
        reason: String,
    },
    /// A valid module that lacks the leakhost exports.
    #[error("{path}: not a leakhost suite: {why}")]
    NotASuite {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        why: String,
    },
    /// It imports something the sandbox does not provide.
    #[error("{path}: imports {module}::{name}, which the sandbox does not provide (only WASI preview1 and leakhost::trace_alloc)")]
    ForeignImport {
        /// The file.
        path: PathBuf,
        /// The import's module.
        module: String,
        /// The import's name.
        name: String,
    },
    /// A libtest binary that lists no tests.
    #[error("{0}: the test binary lists no tests")]
    NoLibtestTests(PathBuf),
    /// A suite that registers no test at all, which is always a mistake.
    #[error("{0}: the suite registers no tests; mark functions with #[leakhost_guest::test], or register tests in the function given to suite!(...)")]
    NoTests(PathBuf),
    /// The wasm32-wasip1 Rust target is missing from the toolchain that builds the package.
    #[error("the wasm32-wasip1 target is not installed; run `{0}`")]
    TargetMissing(String),
    /// `cargo build` failed or could not start.
    #[error("{dir}: building the suite failed: {why}")]
    Build {
        /// The package directory.
        dir: PathBuf,
        /// What went wrong.
        why: String,
    },
}

/// A module that passed every static check, compiled for the run's engine.
pub struct Suite {
    /// Where it came from.
    pub path: PathBuf,
    /// The compiled module.
    pub module: Module,
    /// Whether it is a reactor with `_initialize`, to be called once per instance.
    pub has_initialize: bool,
    /// Whether no function of the module changes a table or re-initialises memory
    /// from a segment, so that a snapshot holds all of an instance's state (`run::image`).
    pub code_allows_snapshots: bool,
    /// Whether every mutable global is exported, so fresh instances may start from a snapshot.
    pub globals_exported: bool,
    /// What leakhost added to the module before compiling it (`instrument`).
    pub instrumentation: std::sync::Arc<instrument::Instrumentation>,
    /// Whether it was compiled now or loaded from the cache.
    pub compilation: Compilation,
    /// The file it was read from, where its debug sections stay until stacks are named.
    pub source: std::sync::Arc<SourceFile>,
}

impl Suite {
    /// A short name for messages: the file name.
    pub fn display_name(&self) -> String {
        self.path.file_name().map_or_else(|| self.path.display().to_string(), |n| n.to_string_lossy().into_owned())
    }
}

/// Whether text starts, after blank lines and `;;` or `(; ;)` comments, with `(module`.
fn looks_like_wat(mut text: &str) -> bool {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix(";;") {
            text = rest.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(rest) = text.strip_prefix("(;") {
            text = rest.split_once(";)").map_or("", |(_, after)| after);
        } else {
            return text.starts_with("(module");
        }
    }
}

/// Explains bytes that are not a core wasm module, or returns `None` if they look like one.
fn not_wasm_reason(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return Some("the file is empty".into());
    }
    if !bytes.starts_with(b"\0asm") {
        // Enough to see past a licence header or a long leading comment.
        let head = &bytes[..bytes.len().min(64 * 1024)];
        // A multi-byte character cut at the 512-byte mark is still text.
        let text = match std::str::from_utf8(head) {
            Ok(_) => true,
            Err(e) => e.error_len().is_none(),
        };
        let looks_wat = text && looks_like_wat(&String::from_utf8_lossy(head));
        return Some(match (looks_wat, text) {
            (true, _) => "a WebAssembly text file; compile it to a binary .wasm first".into(),
            (false, true) => "a text file".into(),
            (false, false) => "no \\0asm header".into(),
        });
    }
    match bytes.get(4..8) {
        None => Some("truncated header".into()),
        Some([1, 0, 0, 0]) => None,
        Some([_, _, 1, 0]) => Some("a WebAssembly component; leakhost runs core modules".into()),
        Some(v) => Some(format!("unknown binary version {v:?}")),
    }
}

/// Reads, compiles (or loads from `cache`) and checks the module at `path`; a module
/// past `limits` is refused before it is compiled or cached.
pub fn load(engine: &Engine, path: &Path, cache: Option<&Cache>, limits: &ModuleLimits) -> Result<Suite, SuiteError> {
    let lean = source::read(path, limits.max_size)?;
    let cached = cache.and_then(|c| c.load(engine, &lean.source.lean_hash())).and_then(|entry| {
        // An entry of an older layout is compiled again.
        let prepared = serde_json::from_slice::<Prepared>(&entry.prepared).ok()?;
        Some((entry.module, prepared, Compilation::FromCache(entry.path)))
    });
    let ((module, prepared, compilation), source) = match cached {
        Some(hit) => (hit, lean.source),
        None => {
            let (bytes, source) = lean.into_bytes()?;
            (compile(engine, path, &bytes, &source, cache, limits)?, source)
        }
    };
    let Prepared { globals_exported, code_allows_snapshots, instrumentation } = prepared;
    let not_a_suite = |why| SuiteError::NotASuite { path: path.to_path_buf(), why };
    // A WASI command without the ABI may be a libtest binary: `run::bare` lists its tests.
    let has_initialize = match instrumentation.command {
        Some(_) => check_memory(&module).map(|()| false).map_err(not_a_suite)?,
        None => check_exports(&module).map_err(not_a_suite)?,
    };
    for import in module.imports() {
        // ABI v2's tracing import; the linker checks its signature.
        let tracing =
            import.module() == leakhost_guest::abi::IMPORT_MODULE && import.name() == leakhost_guest::abi::TRACE_ALLOC;
        if import.module() != "wasi_snapshot_preview1" && !tracing {
            return Err(SuiteError::ForeignImport {
                path: path.to_path_buf(),
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
    }
    let instrumentation = std::sync::Arc::new(instrumentation);
    let source = std::sync::Arc::new(source);
    Ok(Suite {
        path: path.to_path_buf(),
        module,
        has_initialize,
        code_allows_snapshots,
        globals_exported,
        instrumentation,
        compilation,
        source,
    })
}

/// What instrumentation found in a module, kept with its compiled code in the cache so
/// that a hit neither instruments nor scans the module again.
#[derive(serde::Serialize, serde::Deserialize)]
struct Prepared {
    globals_exported: bool,
    code_allows_snapshots: bool,
    instrumentation: instrument::Instrumentation,
}

/// Instruments the lean module `bytes`, checks it against the limits and compiles it,
/// storing it in `cache` when there is one.
fn compile(
    engine: &Engine,
    path: &Path,
    bytes: &[u8],
    source: &SourceFile,
    cache: Option<&Cache>,
    limits: &ModuleLimits,
) -> Result<(Module, Prepared, Compilation), SuiteError> {
    // Exports the mutable globals, so that fresh instances can start from a snapshot.
    let instrument::Instrumented { bytes, globals_exported, instrumentation } = instrument::instrument(bytes);
    if let Some(e) = limits.check(&bytes) {
        let (what, value, limit, flag) = (e.what, e.value, e.limit, e.flag);
        return Err(SuiteError::TooComplex { path: path.to_path_buf(), what, value, limit, flag });
    }
    let module = Module::new(engine, &bytes)
        .map_err(|e| SuiteError::Invalid { path: path.to_path_buf(), reason: format!("{e:#}") })?;
    // Compiling costs far more than this scan, which a hit then never repeats.
    let code_allows_snapshots = globals_exported && instrument::code_allows_snapshots(&bytes);
    let prepared = Prepared { globals_exported, code_allows_snapshots, instrumentation };
    let compilation = match cache {
        // A cache that cannot be written only costs speed; the run goes on.
        Some(cache) => {
            let stored = serde_json::to_vec(&prepared)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|p| cache.store(engine, &source.lean_hash(), &p, &module));
            Compilation::CompiledAndCached(stored.map_err(|e| e.to_string()))
        }
        None => Compilation::Compiled,
    };
    Ok((module, prepared, compilation))
}

/// The required exports and their signatures: (name, params, results).
const REQUIRED: [(&str, &[ValTypeTag], &[ValTypeTag]); 6] = [
    (export::ABI_VERSION, &[], &[ValTypeTag::I32]),
    (export::MANIFEST, &[], &[ValTypeTag::I32]),
    (export::STATUS, &[], &[ValTypeTag::I32]),
    (export::RUN_TEST, &[ValTypeTag::I32], &[ValTypeTag::I32]),
    (export::LAYER_HOOK, &[ValTypeTag::I32, ValTypeTag::I32], &[ValTypeTag::I32]),
    (export::COUNTERS, &[], &[ValTypeTag::I32]),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ValTypeTag {
    I32,
}

fn tags_match(types: impl ExactSizeIterator<Item = ValType>, want: &[ValTypeTag]) -> bool {
    types.len() == want.len()
        && types.zip(want).all(|(t, w)| match w {
            ValTypeTag::I32 => matches!(t, ValType::I32),
        })
}

fn signature(params: &[ValTypeTag], results: &[ValTypeTag]) -> String {
    let list = |ts: &[ValTypeTag]| ts.iter().map(|_| "i32").collect::<Vec<_>>().join(", ");
    format!("({}) -> ({})", list(params), list(results))
}

/// Checks that the module exports a 32-bit memory as `memory`.
fn check_memory(module: &Module) -> Result<(), String> {
    match module.get_export(export::MEMORY) {
        Some(ExternType::Memory(m)) if !m.is_64() && !m.is_shared() => Ok(()),
        Some(ExternType::Memory(_)) => Err("its memory is 64-bit or shared; ABI v1 needs a 32-bit memory".into()),
        _ => Err("it does not export its memory as \"memory\"".into()),
    }
}

/// Checks the ABI exports; returns whether `_initialize` exists.
fn check_exports(module: &Module) -> Result<bool, String> {
    let missing: Vec<&str> = REQUIRED.iter().map(|r| r.0).filter(|name| module.get_export(name).is_none()).collect();
    if missing.len() == REQUIRED.len() {
        let command = module.get_export("_start").is_some();
        return Err(if command {
            "a WASI command (it exports _start) without any leakhost_* export; build the suite as a cdylib with leakhost-guest".into()
        } else {
            "it exports none of the leakhost_* functions; a Rust suite needs `leakhost_guest::suite!();` at its crate root (also with #[leakhost_guest::test] functions)".into()
        });
    }
    if !missing.is_empty() {
        return Err(format!("missing export {}", missing.join(", ")));
    }
    for (name, params, results) in REQUIRED {
        match module.get_export(name) {
            Some(ExternType::Func(f)) if tags_match(f.params(), params) && tags_match(f.results(), results) => {}
            Some(ExternType::Func(_)) => {
                return Err(format!("export {name} has the wrong signature; expected {}", signature(params, results)))
            }
            _ => return Err(format!("export {name} is not a function")),
        }
    }
    check_memory(module)?;
    match module.get_export(export::INITIALIZE) {
        None => Ok(false),
        Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => Ok(true),
        Some(_) => Err("export _initialize must be a function () -> ()".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_bytes_that_are_not_a_module() {
        assert_eq!(not_wasm_reason(b"").unwrap(), "the file is empty");
        assert!(not_wasm_reason(b"(module)").unwrap().contains("WebAssembly text"));
        assert!(not_wasm_reason(b";; a comment\n(; block ;)\n  (module)").unwrap().contains("WebAssembly text"));
        let cut = format!("a{}", "\u{e9}".repeat(300));
        assert_eq!(not_wasm_reason(cut.as_bytes()).unwrap(), "a text file");
        assert_eq!(not_wasm_reason(b"hello").unwrap(), "a text file");
        assert_eq!(not_wasm_reason(&[0xff, 0xfe, 0, 1]).unwrap(), "no \\0asm header");
        assert_eq!(not_wasm_reason(b"\0asm\x01").unwrap(), "truncated header");
        assert!(not_wasm_reason(b"\0asm\x0d\0\x01\0").unwrap().contains("component"));
        assert_eq!(not_wasm_reason(b"\0asm\x01\0\0\0"), None);
    }
}
