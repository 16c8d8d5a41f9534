//! Hostile suites and hostile surroundings (issue 10): each test reproduces an attack
//! from the security review and checks that the host contains it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{self, suite, Run};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-hostile-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_with_cache(cache: &Path, key: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("LEAKHOST_CACHE_DIR", cache)
        .env("LEAKHOST_CACHE_KEY", key)
        .output()
        .unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_cache_directory_others_can_write_is_refused_with_one_line_and_the_run_goes_on() {
    let dir = fresh_dir("world-writable-cache");
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let wasm = suite("leak");
    let run = run_with_cache(&cache, &dir.join("cache.key"), &["inspect", wasm.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{run:#?}");
    let warnings: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(warnings[0].starts_with("leakhost: warning: cache directory "), "{}", warnings[0]);
    assert!(warnings[0].contains("running without the cache"), "{}", warnings[0]);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0, "nothing is written to a refused cache");
}

#[test]
fn a_planted_cache_entry_is_not_loaded() {
    let dir = fresh_dir("planted-entry");
    let (cache, key) = (dir.join("cache"), dir.join("cache.key"));
    let (leak, other) = (suite("leak"), suite("samplelayers"));
    let inspect = |wasm: &Path| run_with_cache(&cache, &key, &["inspect", wasm.to_str().unwrap()]);
    assert_eq!(inspect(&leak).status, 0);
    assert_eq!(inspect(&other).status, 0);
    // Swap the entries: each is valid, but for the other module's key.
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&cache).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    assert_eq!(entries.len(), 2);
    let (a, b) = (std::fs::read(&entries[0]).unwrap(), std::fs::read(&entries[1]).unwrap());
    std::fs::write(&entries[0], b).unwrap();
    std::fs::write(&entries[1], a).unwrap();
    let run = run_with_cache(&cache, &key, &["list", leak.to_str().unwrap()]);
    let line = inspect(&leak).stdout.lines().find(|l| l.starts_with("Compilation: ")).unwrap_or_default().to_string();
    assert!(line.starts_with("Compilation: loaded from cache"), "rebuilt after the swapped entry: {line}");
    let direct = harness::leakhost(["list", leak.to_str().unwrap(), "--no-cache"]);
    assert_eq!(run.stdout, direct.stdout, "the swapped entry must not make it list another suite's tests");
}

/// The hand-written minimal suite (tests/fixtures/minimal_ok.wat) with `extra` fields
/// added to the module and `body` run by its one test before it passes.
fn hostile_suite(name: &str, extra: &str, body: &str) -> PathBuf {
    let wat = std::fs::read_to_string(harness::repo().join("tests/fixtures/minimal_ok.wat")).unwrap();
    let run_test = "(func (export \"leakhost_run_test\") (param i32) (result i32)";
    assert!(wat.contains(run_test));
    // Imports must come before the memory, so the extra fields go first.
    let wat = wat.replacen(run_test, &format!("{run_test}\n{body}"), 1).replacen(
        "\n(module",
        &format!("\n(module\n{extra}"),
        1,
    );
    let bytes = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{name}: {e}\n{wat}"));
    harness::temp_file(&format!("{name}.wasm"), &bytes)
}

/// `tables` funcref tables, each grown by `elements` and filled by the test.
fn table_bomb(name: &str, tables: usize, elements: u32) -> PathBuf {
    let extra: String = (0..tables).map(|i| format!("(table $t{i} 0 funcref)\n")).collect();
    let body: String = (0..tables)
        .map(|i| {
            format!(
                "(drop (table.grow $t{i} (ref.null func) (i32.const {elements})))
                 (table.fill $t{i} (i32.const 0) (ref.null func) (table.size $t{i}))\n"
            )
        })
        .collect();
    hostile_suite(name, &extra, &body)
}

#[test]
fn table_elements_count_against_the_memory_limit() {
    // The review's module: 100 tables of 1,048,576 funcrefs ran at 836 MB under --max-memory 1M.
    let path = table_bomb("table-bomb", 100, 1 << 20);
    let run = harness::leakhost(["run", path.to_str().unwrap(), "--max-memory", "1M"]);
    assert_eq!(run.status, 1, "{run:#?}");
    assert!(run.stdout.contains("exceeded the memory limit of 1 MiB (--max-memory)"), "{}", run.stdout);
}

#[test]
fn table_elements_are_summed_over_all_tables_of_an_instance() {
    // Each table alone (16 KiB) is far under the limit; the 100 together (1.6 MiB) are not.
    let path = table_bomb("table-sum", 100, 2048);
    let run = harness::leakhost(["run", path.to_str().unwrap(), "--max-memory", "1M"]);
    assert_eq!(run.status, 1, "{run:#?}");
    assert!(run.stdout.contains("exceeded the memory limit of 1 MiB (--max-memory)"), "{}", run.stdout);
    // Under a limit that holds them, the same test passes.
    let run = harness::leakhost(["run", path.to_str().unwrap(), "--max-memory", "4M"]);
    assert_eq!(run.status, 0, "{run:#?}");
}

/// Runs `leakhost run` on `path` and returns its one stderr line, asserting exit status 2.
fn refused(path: &Path, extra: &[&str]) -> String {
    let mut args = vec!["run", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = harness::leakhost(&args);
    assert_eq!(run.status, 2, "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {}", run.stderr);
    lines[0].to_string()
}

/// A module with one function of `depth` nested loops, in the flat text form (which the
/// `wat` parser reads without recursing).
fn nested_loops(depth: usize) -> Vec<u8> {
    wat::parse_str(format!("(module (func {} {}))", "loop ".repeat(depth), "end ".repeat(depth))).unwrap()
}

#[test]
fn deeply_nested_control_flow_is_refused_before_compiling() {
    // The review's module: 100,000 nested loops still compiled after 300 s.
    let path = harness::temp_file("nested-loops.wasm", &nested_loops(100_000));
    let line = refused(&path, &[]);
    assert!(line.contains("control-flow nesting depth 1001 exceeds the limit of 1000"), "{line}");
    assert!(line.contains("--max-nesting"), "{line}");
}

#[test]
fn too_many_functions_are_refused_before_compiling() {
    let wat = format!("(module {})", "(func)".repeat(200_000));
    let path = harness::temp_file("many-functions.wasm", &wat::parse_str(wat).unwrap());
    let line = refused(&path, &[]);
    assert!(line.contains("function count 200000 exceeds the limit of 50000"), "{line}");
    assert!(line.contains("--max-functions"), "{line}");
}

#[test]
fn a_module_past_the_size_limit_is_refused_before_it_is_read_or_cached() {
    // A 200 MB file (sparse, so the test writes almost nothing): a wasm header and a
    // data segment's worth of zeros.
    let dir = fresh_dir("huge-module");
    let path = dir.join("huge.wasm");
    let file = std::fs::File::create(&path).unwrap();
    std::io::Write::write_all(&mut &file, b"\0asm\x01\0\0\0").unwrap();
    file.set_len(200 << 20).unwrap();
    let line = refused(&path, &[]);
    assert!(line.contains("larger than the limit of 64 MiB; raise it with --max-module-size"), "{line}");
    // The limit is the flag's, and a module under it goes on to the usual checks.
    let small = hostile_suite("size-limit", "", "");
    let line = refused(&small, &["--max-module-size", "100"]);
    assert!(line.contains("larger than the limit of 100 bytes"), "{line}");
    assert_eq!(harness::leakhost(["run", small.to_str().unwrap()]).status, 0);
}

#[test]
fn a_guest_opening_files_in_a_loop_gets_emfile_and_the_host_keeps_its_descriptors() {
    // The test opens "f" in the first preopen (fd 3) without closing it. It passes only
    // if open number MAX_OPEN_FILES + 1 fails with EMFILE (33) and none before it fails.
    let extra = r#"
      (import "wasi_snapshot_preview1" "path_open"
        (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (data (i32.const 0x700) "f")
      (global $opened (mut i32) (i32.const 0))"#;
    let body = r#"
      (local $errno i32)
      (block $done
        (loop $again
          (if (i32.ne (local.tee $errno (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x700) (i32.const 1)
                         (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0x710)))
                      (i32.const 0))
            (then
              (if (i32.and (i32.eq (global.get $opened) (i32.const 256))
                           (i32.eq (call $path_open (i32.const 3) (i32.const 0) (i32.const 0x700) (i32.const 1)
                             (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 0x710))
                             (i32.const 33)))
                (then (br $done)))
              ;; An unknown outcome code carries what happened: opened * 1000 + errno.
              (i32.store (i32.const 0x500) (i32.const -1))
              (return (i32.add (i32.mul (global.get $opened) (i32.const 1000)) (local.get $errno)))))
          (global.set $opened (i32.add (global.get $opened) (i32.const 1)))
          (br_if $again (i32.lt_u (global.get $opened) (i32.const 100000)))
          (i32.store (i32.const 0x500) (i32.const -1))
          (return (i32.const 1))))"#;
    let path = hostile_suite("fd-bomb", extra, body);
    let dir = fresh_dir("fd-bomb");
    std::fs::write(dir.join("f"), b"data").unwrap();
    let junit = dir.join("report.xml");
    let spec = format!("{}::/d", dir.display());
    let run = harness::leakhost(["run", path.to_str().unwrap(), "--dir", &spec, "--junit", junit.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{run:#?}");
    let report = std::fs::read_to_string(&junit).unwrap();
    assert!(report.contains("tests=\"1\"") && !report.contains("<failure"), "{report}");
}

#[test]
fn an_infinite_loop_in_the_counters_export_is_a_one_line_error() {
    let wat = std::fs::read_to_string(harness::repo().join("tests/fixtures/minimal_ok.wat")).unwrap();
    let counters = r#"(func (export "leakhost_counters") (result i32) (i32.const 0x600))"#;
    assert!(wat.contains(counters));
    let looping = r#"(func (export "leakhost_counters") (result i32) (loop (br 0)) (i32.const 0x600))"#;
    let bytes = wat::parse_str(wat.replace(counters, looping)).unwrap();
    let path = harness::temp_file("counters-loop.wasm", &bytes);
    let run = harness::leakhost(["run", path.to_str().unwrap(), "-N", "2", "-r", "--timeout", "0.1"]);
    assert_eq!(run.status, 2, "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].ends_with("leakhost_counters: exceeded the time limit of 0.1 s (--timeout)"), "{}", lines[0]);
}

#[test]
fn real_sleeps_in_a_loop_cannot_run_past_the_time_limit() {
    // Each 0.2 s sleep is under the 0.3 s limit, but the second one would pass it; before
    // the fix the loop slept on and only the epoch tick stopped it, after the limit.
    let extra = r#"
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      ;; A relative monotonic-clock subscription of 200 ms at 0x800 (docs: WASI subscription layout).
      (data (i32.const 0x810) "\01\00\00\00")
      (data (i32.const 0x818) "\00\c2\eb\0b\00\00\00\00")"#;
    let body = r#"
      (drop (call $poll (i32.const 0x800) (i32.const 0x900) (i32.const 1) (i32.const 0x940)))
      (drop (call $poll (i32.const 0x800) (i32.const 0x900) (i32.const 1) (i32.const 0x940)))
      (drop (call $poll (i32.const 0x800) (i32.const 0x900) (i32.const 1) (i32.const 0x940)))"#;
    let path = hostile_suite("sleep-loop", extra, body);
    let run = harness::leakhost(["run", path.to_str().unwrap(), "--real-world", "--timeout", "0.3"]);
    assert_eq!(run.status, 1, "{run:#?}");
    let block = harness::block(&run.stdout, "Error in test t");
    assert!(block.starts_with("slept for 0.200 s, past the time limit of 0.300 s (--timeout), "), "{block}");
}

#[test]
fn a_counters_snapshot_flooding_the_host_with_names_is_refused() {
    // The review's module: 16,384 type rows whose 4 KB names overlap in one buffer cost
    // the host 1.67 GB for 4 tests. Rows at 0x10000 (24 bytes each), names at 0x70000 + i.
    let wat = std::fs::read_to_string(harness::repo().join("tests/fixtures/minimal_ok.wat")).unwrap();
    let counters = r#"(func (export "leakhost_counters") (result i32) (i32.const 0x600))"#;
    let flood = r#"(func (export "leakhost_counters") (result i32) (local $i i32) (local $row i32)
      (loop $rows
        (local.set $row (i32.add (i32.const 0x10000) (i32.mul (local.get $i) (i32.const 24))))
        (i32.store (local.get $row) (i32.add (i32.const 0x70000) (local.get $i)))
        (i32.store offset=4 (local.get $row) (i32.const 4096))
        (i64.store offset=8 (local.get $row) (i64.const 1))
        (i64.store offset=16 (local.get $row) (i64.const 8))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $rows (i32.lt_u (local.get $i) (i32.const 16384))))
      (i32.store (i32.const 0x618) (i32.const 0x10000))
      (i32.store (i32.const 0x61c) (i32.const 16384))
      (i32.const 0x600))"#;
    assert!(wat.contains(counters));
    let wat =
        wat.replace(counters, flood).replace(r#"(memory (export "memory") 1)"#, r#"(memory (export "memory") 8)"#);
    let path = harness::temp_file("counter-flood.wasm", &wat::parse_str(wat).unwrap());
    let run = harness::leakhost(["run", path.to_str().unwrap(), "-N", "2", "-r"]);
    assert_eq!(run.status, 2, "{run:#?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].contains("the counter names of one snapshot take more than 1048576 bytes"), "{}", lines[0]);
}

#[test]
fn a_guest_cannot_plant_symlinks_that_lead_out_of_a_writable_directory() {
    // "up" -> "../../.." and "abs" -> "/etc" must fail with EPERM (63); "ok" -> "f" works.
    let extra = r#"
      (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
      (data (i32.const 0x700) "../../..")
      (data (i32.const 0x720) "up")
      (data (i32.const 0x740) "/etc")
      (data (i32.const 0x760) "abs")
      (data (i32.const 0x780) "f")
      (data (i32.const 0x7a0) "ok")"#;
    let body = r#"
      (i32.store (i32.const 0x500) (i32.const -1))
      (if (i32.ne (call $symlink (i32.const 0x700) (i32.const 8) (i32.const 3) (i32.const 0x720) (i32.const 2))
                  (i32.const 63))
        (then (return (i32.const 101))))
      (if (i32.ne (call $symlink (i32.const 0x740) (i32.const 4) (i32.const 3) (i32.const 0x760) (i32.const 3))
                  (i32.const 63))
        (then (return (i32.const 102))))
      (if (i32.ne (call $symlink (i32.const 0x780) (i32.const 1) (i32.const 3) (i32.const 0x7a0) (i32.const 2))
                  (i32.const 0))
        (then (return (i32.const 103))))"#;
    let path = hostile_suite("symlink-escape", extra, body);
    let dir = fresh_dir("symlink-escape");
    std::fs::write(dir.join("f"), b"data").unwrap();
    let spec = format!("{}::/d:rw", dir.display());
    let run = harness::leakhost(["run", path.to_str().unwrap(), "--dir", &spec]);
    assert_eq!(run.status, 0, "{run:#?}");
    assert!(std::fs::symlink_metadata(dir.join("ok")).unwrap().file_type().is_symlink());
    assert!(std::fs::symlink_metadata(dir.join("up")).is_err());
    assert!(std::fs::symlink_metadata(dir.join("abs")).is_err());
}
