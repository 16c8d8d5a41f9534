//! The compiled-module cache: compile a suite once, load it in a fraction of a
//! millisecond afterwards.
//!
//! An entry is keyed by the module's content hash and a hash of everything in the
//! engine that compiled code depends on (target, Cranelift flags, tunables, wasm
//! features, wasmtime's version), so a changed suite, engine setting or wasmtime
//! misses. Entries carry a checksum that is verified before wasmtime sees them: a
//! corrupt or truncated entry is rebuilt, never trusted. Writers go through a
//! temporary file and an atomic rename, so concurrent runs can share the cache.

use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};

use wasmtime::{Engine, Module};

/// Environment variable that overrides the cache directory.
pub const CACHE_DIR_ENV: &str = "LEAKHOST_CACHE_DIR";

/// Magic bytes at the start of every entry; bumped if the entry format changes.
const MAGIC: &[u8; 8] = b"LHCACHE1";
const CHECKSUM_LEN: usize = 32;

/// How a suite's module was obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compilation {
    /// Compiled; the cache was off.
    Compiled,
    /// Compiled, and stored at this path (or storing failed, with the reason).
    CompiledAndCached(Result<PathBuf, String>),
    /// Loaded from this cache entry.
    FromCache(PathBuf),
}

/// A directory of compiled modules.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    /// The cache in `$LEAKHOST_CACHE_DIR`, else in the user's cache directory; `None`
    /// when neither exists.
    pub fn default_location() -> Option<Cache> {
        let dir = std::env::var_os(CACHE_DIR_ENV)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("leakhost")))?;
        Some(Cache { dir })
    }

    /// A cache in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// The entry path for `bytes` compiled by `engine`.
    pub fn entry_path(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut engine_hash);
        let content = blake3::hash(bytes);
        self.dir.join(format!("{}-{:016x}.cwasm", content.to_hex(), engine_hash.finish()))
    }

    /// Loads the entry for `bytes`, or `None` if there is none or it cannot be trusted
    /// (a bad entry is removed so that the next store replaces it).
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Option<(Module, PathBuf)> {
        let path = self.entry_path(engine, bytes);
        let data = std::fs::read(&path).ok()?;
        let payload = verified_payload(&data);
        // SAFETY: the payload is exactly what `Module::serialize` produced for an engine
        // with the same compatibility hash: its checksum matched, and wasmtime itself
        // rejects artifacts from an incompatible engine or version.
        let module = payload.and_then(|payload| unsafe { Module::deserialize(engine, payload) }.ok());
        if module.is_none() {
            let _ = std::fs::remove_file(&path);
        }
        module.map(|module| (module, path))
    }

    /// Stores `module` (compiled from `bytes`) and returns the entry's path.
    pub fn store(&self, engine: &Engine, bytes: &[u8], module: &Module) -> io::Result<PathBuf> {
        let path = self.entry_path(engine, bytes);
        let payload = module.serialize().map_err(|e| io::Error::other(e.to_string()))?;
        std::fs::create_dir_all(&self.dir)?;
        let mut data = Vec::with_capacity(MAGIC.len() + CHECKSUM_LEN + payload.len());
        data.extend_from_slice(MAGIC);
        data.extend_from_slice(blake3::hash(&payload).as_bytes());
        data.extend_from_slice(&payload);
        write_atomically(&path, &data)?;
        Ok(path)
    }
}

/// The payload of an entry whose magic and checksum are right.
fn verified_payload(data: &[u8]) -> Option<&[u8]> {
    let rest = data.strip_prefix(MAGIC.as_slice())?;
    let (checksum, payload) = rest.split_at_checked(CHECKSUM_LEN)?;
    (blake3::hash(payload).as_bytes() == checksum).then_some(payload)
}

/// Writes to a unique temporary file beside `path`, then renames it into place, so a
/// reader sees either no entry or a whole one.
fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = path.with_extension(format!("tmp-{}-{unique}", std::process::id()));
    std::fs::write(&temp, data)?;
    std::fs::rename(&temp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAT: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;

    fn fresh_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("leakhost-cache-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn setup(name: &str) -> (Engine, Cache, Vec<u8>, Module) {
        let engine = Engine::default();
        let bytes = wat::parse_str(WAT).unwrap();
        let module = Module::new(&engine, &bytes).unwrap();
        (engine, Cache::new(fresh_dir(name)), bytes, module)
    }

    #[test]
    fn a_stored_module_loads_back() {
        let (engine, cache, bytes, module) = setup("roundtrip");
        assert!(cache.load(&engine, &bytes).is_none());
        let path = cache.store(&engine, &bytes, &module).unwrap();
        let (loaded, from) = cache.load(&engine, &bytes).expect("a hit");
        assert_eq!(from, path);
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &loaded, &[]).unwrap();
        let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
        assert_eq!(f.call(&mut store, ()).unwrap(), 7);
    }

    #[test]
    fn corrupt_and_truncated_entries_are_rejected_and_removed() {
        let (engine, cache, bytes, module) = setup("corrupt");
        let path = cache.store(&engine, &bytes, &module).unwrap();
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        for bad in [flipped, good[..good.len() / 2].to_vec(), b"LHCACHE1".to_vec(), Vec::new()] {
            std::fs::write(&path, &bad).unwrap();
            assert!(cache.load(&engine, &bytes).is_none());
            assert!(!path.exists(), "a bad entry is removed");
        }
    }

    #[test]
    fn keys_depend_on_content_and_engine_configuration() {
        let (engine, cache, bytes, _) = setup("keys");
        let other_bytes = wat::parse_str(r#"(module (func (export "g")))"#).unwrap();
        assert_ne!(cache.entry_path(&engine, &bytes), cache.entry_path(&engine, &other_bytes));
        let mut config = wasmtime::Config::new();
        config.consume_fuel(true);
        let fuel_engine = Engine::new(&config).unwrap();
        assert_ne!(cache.entry_path(&engine, &bytes), cache.entry_path(&fuel_engine, &bytes));
        assert_eq!(cache.entry_path(&engine, &bytes), cache.entry_path(&Engine::default(), &bytes));
    }

    #[test]
    fn the_two_engines_keep_separate_entries() {
        use crate::sandbox::{engine, EngineKind, Policy};
        let cache = Cache::new(fresh_dir("engines"));
        let bytes = wat::parse_str(WAT).unwrap();
        let build = |kind| engine(&Policy { engine: kind, ..Policy::default() }).unwrap();
        let (cranelift, pulley) = (build(EngineKind::Cranelift), build(EngineKind::Pulley));
        assert_ne!(cache.entry_path(&cranelift, &bytes), cache.entry_path(&pulley, &bytes));
        let stored = cache.store(&pulley, &bytes, &Module::new(&pulley, &bytes).unwrap()).unwrap();
        assert!(cache.load(&cranelift, &bytes).is_none(), "Pulley bytecode is never handed to Cranelift");
        assert_eq!(cache.load(&pulley, &bytes).map(|(_, path)| path), Some(stored));
    }

    #[test]
    fn concurrent_writers_leave_one_whole_entry() {
        let (engine, cache, bytes, module) = setup("concurrent");
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| cache.store(&engine, &bytes, &module).unwrap());
            }
        });
        assert!(cache.load(&engine, &bytes).is_some());
        let leftovers = std::fs::read_dir(&cache.dir).unwrap().count();
        assert_eq!(leftovers, 1, "temporary files are renamed away");
    }
}
