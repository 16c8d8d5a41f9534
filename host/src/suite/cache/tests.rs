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

/// What a caller stores with the compiled code.
const PREPARED: &[u8] = br#"{"instrumented":true}"#;

/// An engine, a cache, the content hash of [`WAT`]'s module and the module compiled.
fn setup(name: &str) -> (Engine, Cache, blake3::Hash, Module) {
    let engine = Engine::default();
    let bytes = wat::parse_str(WAT).unwrap();
    let module = Module::new(&engine, &bytes).unwrap();
    (engine, cache_in(name), blake3::hash(&bytes), module)
}

fn call_f(engine: &Engine, module: &Module) -> i32 {
    let mut store = wasmtime::Store::new(engine, ());
    let instance = wasmtime::Instance::new(&mut store, module, &[]).unwrap();
    let f = instance.get_typed_func::<(), i32>(&mut store, "f").unwrap();
    f.call(&mut store, ()).unwrap()
}

#[test]
fn a_stored_module_loads_back() {
    let (engine, cache, content, module) = setup("roundtrip");
    assert!(cache.load(&engine, &content).is_none());
    let path = cache.store(&engine, &content, PREPARED, &module).unwrap();
    let hit = cache.load(&engine, &content).expect("a hit");
    assert_eq!((hit.path.as_path(), hit.prepared.as_slice()), (path.as_path(), PREPARED));
    assert_eq!(call_f(&engine, &hit.module), 7);
}

#[test]
fn corrupt_and_truncated_entries_are_rejected_and_removed() {
    let (engine, cache, content, module) = setup("corrupt");
    let path = cache.store(&engine, &content, PREPARED, &module).unwrap();
    let good = std::fs::read(&path).unwrap();
    let mut flipped = good.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let trailer = good.len() - TRAILER_LEN;
    // The caller's part is authenticated as the code is: one changed byte of it.
    let mut prepared = good.clone();
    prepared[trailer - PREPARED.len() + 1] ^= 1;
    // A length that claims more than the entry holds, and one that moves a byte of the
    // payload into the caller's part.
    let mut long = good.clone();
    long[trailer..trailer + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut shifted = good.clone();
    shifted[trailer..trailer + 4].copy_from_slice(&(PREPARED.len() as u32 + 1).to_le_bytes());
    // A payload byte (the code wasmtime would map).
    let mut code = good.clone();
    code[trailer / 2] ^= 1;
    let truncated = [good[..good.len() / 2].to_vec(), good[good.len() / 2..].to_vec(), MAGIC.to_vec(), Vec::new()];
    for bad in [flipped, prepared, long, shifted, code].into_iter().chain(truncated) {
        std::fs::write(&path, &bad).unwrap();
        assert!(cache.load(&engine, &content).is_none());
        assert!(!path.exists(), "a bad entry is removed");
    }
}

#[test]
fn an_entry_copied_from_another_modules_key_is_rejected() {
    let (engine, cache, content, _) = setup("copied");
    let other_bytes = wat::parse_str(OTHER_WAT).unwrap();
    let other_module = Module::new(&engine, &other_bytes).unwrap();
    let other = blake3::hash(&other_bytes);
    let other_path = cache.store(&engine, &other, PREPARED, &other_module).unwrap();
    // Self-consistent and correctly MAC'd, but for another key.
    std::fs::copy(&other_path, cache.entry_path(&engine, &content)).unwrap();
    assert!(cache.load(&engine, &content).is_none(), "another module's entry must not load");
    assert!(!cache.entry_path(&engine, &content).exists());
    assert_eq!(call_f(&engine, &cache.load(&engine, &other).unwrap().module), 8);
}

#[test]
fn a_patched_entry_with_a_recomputed_checksum_is_rejected() {
    let (engine, cache, content, module) = setup("patched");
    let path = cache.store(&engine, &content, PREPARED, &module).unwrap();
    let data = std::fs::read(&path).unwrap();
    let mut body = data[..data.len() - MAC_LEN - MAGIC.len()].to_vec();
    let middle = body.len() / 2;
    body[middle] ^= 1;
    // What an attacker without the secret can do: recompute an unkeyed checksum, or a
    // MAC under a key of their own.
    for forged in [*blake3::hash(&body).as_bytes(), *blake3::keyed_hash(&[0; 32], &body).as_bytes()] {
        let mut entry = body.clone();
        entry.extend_from_slice(&forged);
        entry.extend_from_slice(MAGIC);
        std::fs::write(&path, &entry).unwrap();
        assert!(cache.load(&engine, &content).is_none());
    }
}

#[test]
fn an_entry_others_can_write_is_not_mapped() {
    // wasmtime maps the entry: a writer other than the user could change the code
    // after it was authenticated, so such a file is refused however good its MAC.
    let (engine, cache, content, module) = setup("group-writable");
    let path = cache.store(&engine, &content, PREPARED, &module).unwrap();
    assert!(cache.load(&engine, &content).is_some());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o620)).unwrap();
    assert!(cache.load(&engine, &content).is_none());
    assert!(!path.exists(), "the entry is removed, to be rebuilt");
}

#[test]
fn the_payload_comes_first_so_wasmtime_can_map_the_file() {
    let (engine, cache, content, module) = setup("layout");
    let path = cache.store(&engine, &content, PREPARED, &module).unwrap();
    let data = std::fs::read(&path).unwrap();
    assert!(data.starts_with(b"\x7fELF"));
    assert!(data.ends_with(MAGIC));
}

#[test]
fn an_entry_written_under_another_users_secret_is_rejected() {
    let (engine, cache, content, module) = setup("other-secret");
    let dir = fresh_dir("other-secret-2");
    let theirs = Cache::open(&cache.dir, &dir.join("their.key")).unwrap();
    theirs.store(&engine, &content, PREPARED, &module).unwrap();
    assert!(cache.load(&engine, &content).is_none());
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
    let (engine, cache, content, module) = setup("symlink");
    let path = cache.entry_path(&engine, &content);
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
    assert!(cache.load(&engine, &content).is_none());
    std::os::unix::fs::symlink(&victim, &path).unwrap();
    cache.store(&engine, &content, PREPARED, &module).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(cache.load(&engine, &content).is_some());
}

#[test]
fn keys_depend_on_content_and_engine_configuration() {
    let (engine, _, content, _) = setup("keys");
    let other_bytes = blake3::hash(&wat::parse_str(OTHER_WAT).unwrap());
    assert_ne!(EntryKey::new(&engine, &content), EntryKey::new(&engine, &other_bytes));
    let mut config = wasmtime::Config::new();
    config.consume_fuel(true);
    let fuel_engine = Engine::new(&config).unwrap();
    assert_ne!(EntryKey::new(&engine, &content), EntryKey::new(&fuel_engine, &content));
    let mut config = wasmtime::Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::None);
    assert_ne!(EntryKey::new(&engine, &content), EntryKey::new(&Engine::new(&config).unwrap(), &content));
    // Deterministic: a second engine with the same settings gets the same key.
    assert_eq!(EntryKey::new(&engine, &content), EntryKey::new(&Engine::default(), &content));
    let key = EntryKey::new(&engine, &content);
    let (module_hash, engine_hash) = key.as_str().split_once('-').unwrap();
    assert_eq!(module_hash, content.to_hex().as_str());
    assert_eq!(engine_hash.len(), 64);
}

#[test]
fn concurrent_writers_leave_one_whole_entry() {
    let (engine, cache, content, module) = setup("concurrent");
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| cache.store(&engine, &content, PREPARED, &module).unwrap());
        }
    });
    assert!(cache.load(&engine, &content).is_some());
    let leftovers = std::fs::read_dir(&cache.dir).unwrap().count();
    assert_eq!(leftovers, 1, "temporary files are renamed away");
}

#[test]
fn the_two_engines_keep_separate_entries() {
    use crate::sandbox::{engine, EngineKind, Policy};
    let cache = cache_in("engines");
    let bytes = wat::parse_str(WAT).unwrap();
    let content = blake3::hash(&bytes);
    let build = |kind| engine(&Policy { engine: kind, ..Policy::default() }).unwrap();
    let (cranelift, pulley) = (build(EngineKind::Cranelift), build(EngineKind::Pulley));
    assert_ne!(cache.entry_path(&cranelift, &content), cache.entry_path(&pulley, &content));
    let stored = cache.store(&pulley, &content, PREPARED, &Module::new(&pulley, &bytes).unwrap()).unwrap();
    assert!(cache.load(&cranelift, &content).is_none(), "Pulley bytecode is never handed to Cranelift");
    assert_eq!(cache.load(&pulley, &content).map(|hit| hit.path), Some(stored));
}
