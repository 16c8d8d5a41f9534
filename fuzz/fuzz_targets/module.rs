//! Suite validation on arbitrary bytes: `leakhost::suite::load` reads, classifies, compiles
//! and checks a module and must return `Ok` or `Err` without panicking. `load` takes a path
//! (there is no in-memory entry point), so each input is written to a temporary file
//! private to this process and removed again after the call.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use leakhost::sandbox::{engine, Policy};
use leakhost::suite;
use libfuzzer_sys::fuzz_target;

/// Loads the module at a path; built once, around the engine of the default policy
/// (a closure, so this crate need not depend on wasmtime to name the engine's type).
type Loader = Box<dyn Fn(&Path) -> Result<(), suite::SuiteError> + Send + Sync>;

fn loader() -> &'static Loader {
    static LOADER: OnceLock<Loader> = OnceLock::new();
    LOADER.get_or_init(|| {
        let engine = engine(&Policy::default()).expect("the default engine builds");
        // No compilation cache: every input is compiled and checked afresh.
        Box::new(move |path| suite::load(&engine, path, None, &suite::ModuleLimits::default()).map(drop))
    })
}

fn scratch() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| std::env::temp_dir().join(format!("leakhost-fuzz-module-{}.wasm", std::process::id())))
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("the temporary module file is writable");
    // Ok or Err are both fine; a panic (or an abort) is the finding.
    let _ = loader()(path);
    // Removed after every input, so no file outlives the fuzzer.
    let _ = std::fs::remove_file(path);
});
