//! The compiled-module cache, seen from the command line.

use std::process::Command;

use crate::harness::{cache_key, suite};

fn inspect(cache: &std::path::Path, extra: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(extra)
        .arg("inspect")
        .arg(suite("leak"))
        .env("LEAKHOST_CACHE_DIR", cache)
        .env("LEAKHOST_CACHE_KEY", cache_key())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.lines().find(|l| l.starts_with("Compilation: ")).unwrap().to_string()
}

fn fresh_cache(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-cache-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_second_run_of_an_unchanged_suite_does_not_recompile() {
    let cache = fresh_cache("second-run");
    assert!(inspect(&cache, &[]).starts_with("Compilation: compiled, cached at "));
    assert!(inspect(&cache, &[]).starts_with("Compilation: loaded from cache "));
    assert_eq!(inspect(&cache, &["--no-cache"]), "Compilation: compiled (cache off)");
}

#[test]
fn a_corrupt_entry_is_rebuilt_not_trusted() {
    let cache = fresh_cache("corrupt");
    inspect(&cache, &[]);
    for entry in std::fs::read_dir(&cache).unwrap() {
        let path = entry.unwrap().path();
        let mut bytes = std::fs::read(&path).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
        std::fs::write(&path, bytes).unwrap();
    }
    assert!(inspect(&cache, &[]).starts_with("Compilation: compiled, cached at "));
    assert!(inspect(&cache, &[]).starts_with("Compilation: loaded from cache "));
}

#[test]
fn a_different_engine_configuration_misses() {
    let cache = fresh_cache("engine");
    inspect(&cache, &[]);
    // Fuel changes the generated code, so the entry compiled without it must not be used.
    let line = {
        let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
            .args(["inspect", suite("leak").to_str().unwrap(), "--fuel", "1000000"])
            .env("LEAKHOST_CACHE_DIR", &cache)
            .env("LEAKHOST_CACHE_KEY", cache_key())
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().lines().find(|l| l.starts_with("Compilation: ")).unwrap().to_string()
    };
    assert!(line.starts_with("Compilation: compiled, cached at "), "{line}");
}
