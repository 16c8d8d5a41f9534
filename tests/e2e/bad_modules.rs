//! Bad input end to end: paths that are not suites, files that are not modules, modules
//! that are not suites, and suites whose ABI data is malformed. Each must be rejected
//! with exit status 2 and one clear `leakhost: error:` line, never a panic.
//! The modules are hand-written WAT in tests/fixtures, compiled here with the `wat` crate.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::harness::{self, Run};

/// The path of `tests/fixtures/<name>.wat`.
fn fixture(name: &str) -> PathBuf {
    harness::repo().join("tests/fixtures").join(format!("{name}.wat"))
}

/// Compiles `tests/fixtures/<name>.wat` to a binary module.
fn wasm(name: &str) -> Vec<u8> {
    wat::parse_file(fixture(name)).unwrap_or_else(|e| panic!("{name}.wat does not compile: {e}"))
}

/// Compiles fixture `name` and writes it to a temporary `<name>.wasm`.
fn compiled(name: &str) -> PathBuf {
    harness::temp_file(&format!("{name}.wasm"), &wasm(name))
}

fn run(args: &[&OsStr]) -> Run {
    let run = harness::leakhost(args);
    let all = format!("{}{}", run.stdout, run.stderr);
    assert!(!all.contains("panicked"), "leakhost panicked: {run:#?}");
    run
}

/// Runs `leakhost run <target>` and asserts that it ends with status 2 and exactly one stderr
/// line `leakhost: error: ...` that names the target and, apart from the target's path,
/// contains `expected`. Returns what the run printed on stdout.
fn assert_fatal(target: &Path, expected: &str) -> String {
    let path = target.display().to_string();
    let run = run(&[OsStr::new("run"), target.as_os_str()]);
    assert_eq!(run.status, 2, "exit status for {path}: {run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one stderr line, got:\n{}", run.stderr);
    let message =
        lines[0].strip_prefix("leakhost: error: ").unwrap_or_else(|| panic!("unexpected error line: {}", lines[0]));
    assert!(message.contains(&path), "error line does not name {path}: {message}");
    // The path itself must not be what matches (a file named truncated.wasm, say).
    let message = message.replacen(&path, "<target>", 1);
    assert!(message.contains(expected), "error line lacks {expected:?}: {message}");
    run.stdout
}

/// Like [`assert_fatal`], for input rejected before anything runs: stdout stays empty.
fn assert_rejected(target: &Path, expected: &str) {
    let stdout = assert_fatal(target, expected);
    assert_eq!(stdout, "", "stdout for {}", target.display());
}

/// Compiles fixture `name` and asserts that leakhost rejects it with `expected`.
fn assert_fixture_rejected(name: &str, expected: &str) {
    assert_rejected(&compiled(name), expected);
}

/// A fresh, empty directory under the system temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `len` deterministic pseudo-random bytes (xorshift64*).
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

// ---- the good fixture: the ABI is implementable without the Rust SDK ----

#[test]
fn hand_written_minimal_suite_passes() {
    let path = compiled("minimal_ok");
    let run = run(&[OsStr::new("run"), path.as_os_str()]);
    assert_eq!(run.status, 0, "{run:#?}");
    assert!(run.stdout.contains("Ran 1 tests with 0 failures, 0 errors and 0 skipped"), "{}", run.stdout);
    assert_eq!(run.stderr, "");
}

#[test]
fn hand_written_minimal_suite_reports_no_leaks() {
    // -r makes the host call leakhost_counters and decode the all-zero record.
    let path = compiled("minimal_ok");
    let args = ["run", "-N", "3", "-r"].map(OsStr::new);
    let run = run(&[&args[..], &[path.as_os_str()]].concat());
    assert_eq!(run.status, 0, "{run:#?}");
    assert!(run.stdout.contains("Ran 1 tests with 0 failures"), "{}", run.stdout);
}

// ---- targets that are not files of a module ----

#[test]
fn missing_path() {
    let path = std::env::temp_dir().join(format!("leakhost-e2e-{}-does-not-exist.wasm", std::process::id()));
    assert_rejected(&path, "no such file");
}

#[test]
fn directory_without_cargo_toml() {
    assert_rejected(&temp_dir("not-a-package"), "not a suite package (no Cargo.toml)");
}

#[test]
fn empty_file() {
    assert_rejected(&harness::temp_file("empty.wasm", b""), "the file is empty");
}

#[test]
fn truncated_module() {
    let path = harness::temp_file("truncated.wasm", &wasm("minimal_ok")[..20]);
    assert_rejected(&path, "invalid WebAssembly module: failed to parse WebAssembly module: unexpected end-of-file");
}

#[test]
fn random_bytes() {
    let bytes = pseudo_random(1024, 0x5EED_1EAC_4057);
    assert_rejected(&harness::temp_file("random.wasm", &bytes), "no \\0asm header");
}

#[test]
fn text_file() {
    let path = harness::temp_file("notes.wasm", b"These are not the bytes you are looking for.\n");
    assert_rejected(&path, "not a WebAssembly module: a text file");
}

#[test]
fn text_file_cut_inside_a_character() {
    // The host looks at the first 512 bytes; here byte 511 starts a two-byte 'é'.
    let text = format!("a{}\n", "é".repeat(300));
    assert_eq!(text.as_bytes()[511], "é".as_bytes()[0]);
    let path = harness::temp_file("accents.wasm", text.as_bytes());
    assert_rejected(&path, "not a WebAssembly module: a text file");
}

#[test]
fn component_and_unknown_binary_version() {
    let path = harness::temp_file("component.wasm", b"\0asm\x0d\0\x01\0");
    assert_rejected(&path, "a WebAssembly component; leakhost runs core modules");
    let path = harness::temp_file("version2.wasm", b"\0asm\x02\0\0\0");
    assert_rejected(&path, "unknown binary version [2, 0, 0, 0]");
}

#[test]
fn module_that_does_not_validate() {
    let bytes = wat::parse_str("(module (func (result i32) (i64.const 0)))").unwrap();
    let path = harness::temp_file("invalid.wasm", &bytes);
    assert_rejected(&path, "invalid WebAssembly module:");
    assert_rejected(&path, "type mismatch");
}

#[test]
fn wat_text_passed_directly() {
    let path = harness::temp_file("plain.wat", b"(module\n  (memory (export \"memory\") 1))\n");
    assert_rejected(&path, "WebAssembly text");
}

#[test]
fn wat_fixture_with_leading_comment_passed_directly() {
    // Real .wat files often start with a comment, as every fixture here does.
    assert_rejected(&fixture("minimal_ok"), "WebAssembly text");
}

// ---- modules that are not suites ----

#[test]
fn wasi_command() {
    assert_fixture_rejected("command", "WASI command");
}

#[test]
fn module_without_abi_exports() {
    assert_fixture_rejected("no_abi", "exports none of the leakhost_* functions");
}

#[test]
fn missing_export() {
    assert_fixture_rejected("missing_export", "missing export leakhost_counters");
}

#[test]
fn mistyped_export() {
    assert_fixture_rejected(
        "mistyped_export",
        "export leakhost_run_test has the wrong signature; expected (i32) -> (i32)",
    );
}

#[test]
fn foreign_import() {
    assert_fixture_rejected("foreign_import", "imports env::something");
}

#[test]
fn wrong_abi_version() {
    assert_fixture_rejected("wrong_version", "ABI version 3 is not supported (this leakhost speaks versions 1 and 2)");
}

#[test]
fn trap_in_manifest_is_one_line() {
    assert_fixture_rejected("trap_in_manifest", "cannot start an instance: leakhost_manifest: wasm trap");
}

// ---- suites with malformed ABI data ----

#[test]
fn status_record_out_of_bounds() {
    assert_fixture_rejected("oob_status", "status record at 0xfffffff8..+12 lies outside linear memory");
}

#[test]
fn lying_manifest() {
    assert_fixture_rejected("lying_manifest", "layer count 1000000 exceeds the limit of 65536");
}

#[test]
fn layer_array_beyond_memory() {
    assert_fixture_rejected("lying_array", "layer array at 0xff00..+20000 lies outside linear memory");
}

#[test]
fn name_out_of_bounds() {
    assert_fixture_rejected("oob_name", "name of test 0 at 0x20000..+1 lies outside linear memory");
}

#[test]
fn name_not_utf8() {
    assert_fixture_rejected("bad_utf8", "name of test 0 is not valid UTF-8");
}

#[test]
fn duplicate_tests() {
    assert_fixture_rejected("duplicate_tests", "two tests in layer \"UnitTests\" are named \"t\"");
}

#[test]
fn unknown_base() {
    assert_fixture_rejected("unknown_base", "layer \"L\" names base index 5");
}

#[test]
fn cyclic_bases() {
    assert_fixture_rejected("cyclic_bases", "layer bases form a cycle: A -> B -> A");
}

/// docs/abi.md §7: "a Status or Counters record that violates them later ends the run the same way"
/// (exit status 2), so an out-of-bounds status message must not become an ordinary test failure.
/// The run has started by then, so stdout may show its progress.
#[test]
fn status_message_out_of_bounds_ends_the_run() {
    let expected = "invalid ABI data: status message at 0x20000..+4 lies outside linear memory";
    let stdout = assert_fatal(&compiled("bad_status_message"), expected);
    assert!(!stdout.contains("Tests with failures"), "{stdout}");
}
