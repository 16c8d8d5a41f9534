//! The cache on hostile directories: copied, patched, re-checksummed and planted entries.

use std::os::unix::fs::PermissionsExt;

use super::*;

const WAT: &str = r#"(module (func (export "f") (result i32) i32.const 7))"#;
const OTHER_WAT: &str = r#"(module (func (export "f") (result i32) i32.const 8))"#;

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-cache-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A cache in a fresh directory, with its key in a sibling directory.
fn cache_in(name: &str) -> Cache {
    let dir = fresh_dir(name);
    Cache::open(dir.join("cache"), &dir.join("config/cache.key")).unwrap()
}

fn setup(name: &str) -> (Engine, Cache, Vec<u8>, Module) {
    let engine = Engine::default();
    let bytes = wat::parse_str(WAT).unwrap();
    let module = Module::new(&engine, &bytes).unwrap();
    (engine, cache_in(name), bytes, module)
}

fn call_f(engine: &Engine, module: &Module) -> i32 {
    let mut store = wasmtime::Store::new(engine, ());
    let instance = wasmtime::Instance::new(&mut store, module, &[]).unwrap();
    let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    f.call(&mut store, ()).unwrap()
}

#[test]
fn a_stored_module_loads_back() {
    let (engine, cache, bytes, module) = setup("roundtrip");
    assert!(cache.load(&engine, &bytes).is_none());
    let path = cache.store(&engine, &bytes, &module).unwrap();
    let (loaded, from) = cache.load(&engine, &bytes).expect("a hit");
    assert_eq!(from, path);
    assert_eq!(call_f(&engine, &loaded), 7);
}

#[test]
fn corrupt_and_truncated_entries_are_rejected_and_removed() {
    let (engine, cache, bytes, module) = setup("corrupt");
    let path = cache.store(&engine, &bytes, &module).unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    for bad in [flipped, good[..good.len() / 2].to_vec(), MAGIC.to_vec(), Vec::new()] {
        std::fs::write(&path, &bad).unwrap();
        assert!(cache.load(&engine, &bytes).is_none());
        assert!(!path.exists(), "a bad entry is removed");
    }
}

#[test]
fn an_entry_copied_from_another_modules_key_is_rejected() {
    let (engine, cache, bytes, _) = setup("copied");
    let other = wat::parse_str(OTHER_WAT).unwrap();
    let other_module = Module::new(&engine, &other).unwrap();
    let other_path = cache.store(&engine, &other, &other_module).unwrap();
    // Self-consistent and correctly MAC'd, but for another key.
    std::fs::copy(&other_path, cache.entry_path(&engine, &bytes)).unwrap();
    assert!(cache.load(&engine, &bytes).is_none(), "another module's entry must not load");
    assert!(!cache.entry_path(&engine, &bytes).exists());
    assert_eq!(call_f(&engine, &cache.load(&engine, &other).unwrap().0), 8);
}

#[test]
fn a_patched_entry_with_a_recomputed_checksum_is_rejected() {
    let (engine, cache, bytes, module) = setup("patched");
    let path = cache.store(&engine, &bytes, &module).unwrap();
    let data = std::fs::read(&path).unwrap();
    let mut payload = data[MAGIC.len() + MAC_LEN..].to_vec();
    let middle = payload.len() / 2;
    payload[middle] ^= 1;
    // What an attacker without the secret can do: recompute an unkeyed checksum, or a
    // MAC under a key of their own.
    for forged in [*blake3::hash(&payload).as_bytes(), *blake3::keyed_hash(&[0; 32], &payload).as_bytes()] {
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&forged);
        entry.extend_from_slice(&payload);
        std::fs::write(&path, &entry).unwrap();
        assert!(cache.load(&engine, &bytes).is_none());
    }
}

#[test]
fn an_entry_written_under_another_users_secret_is_rejected() {
    let (engine, cache, bytes, module) = setup("other-secret");
    let dir = fresh_dir("other-secret-2");
    let theirs = Cache::open(&cache.dir, &dir.join("their.key")).unwrap();
    theirs.store(&engine, &bytes, &module).unwrap();
    assert!(cache.load(&engine, &bytes).is_none());
}

#[test]
fn a_directory_others_can_write_is_refused() {
    let dir = fresh_dir("world-writable");
    let cache_dir = dir.join("cache");
    std::fs::create_dir_all(&cache_dir).unwrap();
    std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Cache::open(&cache_dir, &dir.join("cache.key")).unwrap_err();
    assert!(matches!(err, CacheError::Directory { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("mode 777") && text.contains("running without the cache"), "{text}");
    assert!(!text.contains('\n'));
}

#[test]
fn a_key_inside_the_cache_directory_is_refused() {
    let dir = fresh_dir("key-inside");
    let err = Cache::open(&dir, &dir.join("cache.key")).unwrap_err();
    assert!(matches!(err, CacheError::Key { .. }), "{err}");
    // Also when the key's own directory does not exist yet, and through `..`.
    let err = Cache::open(&dir, &dir.join("new/sub/cache.key")).unwrap_err();
    assert!(matches!(err, CacheError::Key { .. }), "{err}");
    assert!(!dir.join("new").exists(), "nothing is created for a refused key");
    let sneaky = dir.join("../").join(dir.file_name().unwrap()).join("k");
    assert!(matches!(Cache::open(&dir, &sneaky).unwrap_err(), CacheError::Key { .. }));
}

#[test]
fn a_planted_symlink_at_the_temporary_path_is_not_followed() {
    let (engine, cache, bytes, module) = setup("symlink");
    let path = cache.entry_path(&engine, &bytes);
    let victim = cache.dir.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let temp = secret::unique_sibling(&path, "tmp");
    std::os::unix::fs::symlink(&victim, &temp).unwrap();
    let payload = module.serialize().unwrap();
    let err = write_atomically(&path, &temp, &payload).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(!path.exists());
    // A symlink planted at the entry path itself is replaced, not written through, and
    // a link to a device is never read.
    std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
    assert!(cache.load(&engine, &bytes).is_none());
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    cache.store(&engine, &bytes, &module).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(cache.load(&engine, &bytes).is_some());
}

#[test]
fn keys_depend_on_content_and_engine_configuration() {
    let (engine, _, bytes, _) = setup("keys");
    let other_bytes = wat::parse_str(OTHER_WAT).unwrap();
    assert_ne!(EntryKey::new(&engine, &bytes), EntryKey::new(&engine, &other_bytes));
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    let fuel_engine = Engine::new(&config).unwrap();
    assert_ne!(EntryKey::new(&engine, &bytes), EntryKey::new(&fuel_engine, &bytes));
    let mut config = wasmtime::Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::None);
    assert_ne!(EntryKey::new(&engine, &bytes), EntryKey::new(&Engine::new(&config).unwrap(), &bytes));
    // Deterministic: a second engine with the same settings gets the same key.
    assert_eq!(EntryKey::new(&engine, &bytes), EntryKey::new(&Engine::default(), &bytes));
    let key = EntryKey::new(&engine, &bytes);
    let (module_hash, engine_hash) = key.as_str().split_once('-').unwrap();
    assert_eq!(module_hash, blake3::hash(&bytes).to_hex().as_str());
    assert_eq!(engine_hash.len(), 64);
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

#[test]
fn the_two_engines_keep_separate_entries() {
    use crate::sandbox::{engine, EngineKind, Policy};
    let cache = cache_in("engines");
    let bytes = wat::parse_str(WAT).unwrap();
    let build = |kind| engine(&Policy { engine: kind, ..Policy::default() }).unwrap();
    let (cranelift, pulley) = (build(EngineKind::Cranelift), build(EngineKind::Pulley));
    assert_ne!(cache.entry_path(&cranelift, &bytes), cache.entry_path(&pulley, &bytes));
    let stored = cache.store(&pulley, &bytes, &Module::new(&pulley, &bytes).unwrap()).unwrap();
    assert!(cache.load(&cranelift, &bytes).is_none(), "Pulley bytecode is never handed to Cranelift");
    assert_eq!(cache.load(&pulley, &bytes).map(|(_, path)| path), Some(stored));
}
