//! Fresh instances from a snapshot of the initialised one (issue 17): a run must be byte
//! for byte the run whose fresh instances each run the guest's start-up again
//! (`LEAKHOST_NO_SNAPSHOT=1`), on a suite that traps often and prints everything a
//! fresh instance could differ in (sample-tests/snapshots).

use std::process::Command;

use crate::harness::{cache_dir, suite, temp_file};

/// The `--json --no-timings` report of a run, with or without snapshots.
fn report(flags: &[&str], snapshots: bool, name: &str) -> String {
    report_with(flags, snapshots, &[], name)
}

/// [`report`], with more environment.
fn report_with(flags: &[&str], snapshots: bool, env: &[(&str, &str)], name: &str) -> String {
    let json = temp_file(name, b"");
    let mut command = Command::new(env!("CARGO_BIN_EXE_leakhost"));
    command
        .arg("run")
        .arg(suite("snapshots"))
        .args(flags)
        .arg("--json")
        .arg(&json)
        .arg("--no-timings")
        .env("NO_COLOR", "1")
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .env_remove("LEAKHOST_NO_SNAPSHOT")
        .env_remove("LEAKHOST_NO_WRITE_TRACKING")
        .envs(env.iter().copied());
    if !snapshots {
        command.env("LEAKHOST_NO_SNAPSHOT", "1");
    }
    let out = command.output().expect("leakhost runs");
    // The suite's tests fail on purpose.
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&json).expect("the report was written")
}

#[test]
fn runs_from_snapshots_equal_runs_that_start_every_instance_up() {
    for (i, flags) in [&[][..], &["-N3"], &["-N3", "-j2"], &["-N2", "-r"]].into_iter().enumerate() {
        let with = report(flags, true, &format!("snapshots-with-{i}.json"));
        let without = report(flags, false, &format!("snapshots-without-{i}.json"));
        assert_eq!(with, without, "{flags:?}");
        // Nearly every test ran in a fresh instance, and each saw the state start-up left.
        assert!(with.matches("\"fresh_instance\"").count() >= 11, "{flags:?}");
        assert!(with.contains("test_stdout_is_back: ran=1 "), "stdout is open again: {flags:?}");
        assert!(with.contains("table=50000/"), "{flags:?}");
    }
}

/// An instance reset in place finds what its calls wrote from the kernel where it can
/// (run/image/written.rs); the run is the one whose resets compare all of memory.
#[test]
fn resets_that_track_writes_equal_resets_that_compare_everything() {
    for (i, flags) in [&["-N3"][..], &["-N3", "-j2"], &["-N2", "-r", "-j2"]].into_iter().enumerate() {
        let tracked = report(flags, true, &format!("snapshots-tracked-{i}.json"));
        let off = [("LEAKHOST_NO_WRITE_TRACKING", "1")];
        let compared = report_with(flags, true, &off, &format!("snapshots-compared-{i}.json"));
        assert_eq!(tracked, compared, "{flags:?}");
        assert!(tracked.matches("\"fresh_instance\"").count() >= 11, "{flags:?}");
    }
}

#[test]
fn fresh_instances_continue_the_clock_and_random_stream_of_start_up() {
    let with = report(&[], true, "snapshots-world.json");
    // Start-up read the clock once (1 µs) and 8 random bytes; every fresh instance's first
    // test reads the clock next, at 2 µs, 3 µs and 4 µs, and the same random bytes.
    let firsts: Vec<&str> = with.split("ran=1 ").skip(1).collect();
    assert!(firsts.len() >= 11);
    let world = |s: &str| s.split_once(": now ").map(|(_, w)| w.split("\\n").next().unwrap_or("").to_string());
    let first = world(firsts[0]).expect("a clock reading");
    assert!(first.starts_with("wall=1704067200000004000 random="), "{first}");
    assert!(firsts.iter().all(|s| world(s).as_ref() == Some(&first)), "{with}");
}

/// A hand-written suite whose manifest names its first test with 16 random letters, and
/// whose tests all trap: every fresh instance declares another manifest (with the host's
/// randomness, 2^-64 odds of two being equal).
const RANDOM_MANIFEST: &str = r#"(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "leakhost_abi_version") (result i32) (i32.const 1))
  (func (export "leakhost_manifest") (result i32) (local $i i32)
    (drop (call $random (i32.const 0x400) (i32.const 16)))
    (loop $letters
      (i32.store8 (i32.add (i32.const 0x400) (local.get $i))
        (i32.add (i32.const 97) (i32.and (i32.load8_u (i32.add (i32.const 0x400) (local.get $i))) (i32.const 15))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $letters (i32.lt_u (local.get $i) (i32.const 16))))
    (i32.const 0x100))
  (func (export "leakhost_status") (result i32) (i32.const 0x500))
  (func (export "leakhost_run_test") (param i32) (result i32) (unreachable))
  (func (export "leakhost_layer_hook") (param i32 i32) (result i32)
    (i32.store (i32.const 0x500) (i32.const -1))
    (i32.const 0))
  (func (export "leakhost_counters") (result i32) (i32.const 0x600))
  (data (i32.const 0x100) "\00\02\00\00" "\00\00\00\00" "\00\03\00\00" "\02\00\00\00")
  (data (i32.const 0x300) "\00\04\00\00" "\10\00\00\00" "\ff\ff\ff\ff" "\10\04\00\00" "\01\00\00\00" "\ff\ff\ff\ff")
  (data (i32.const 0x410) "u")
  (data (i32.const 0x500) "\ff\ff\ff\ff" "\00\00\00\00" "\00\00\00\00"))"#;

#[test]
fn a_fresh_instance_that_declares_another_manifest_stops_the_run() {
    let wasm = temp_file("snapshots-random-manifest.wasm", &wat::parse_str(RANDOM_MANIFEST).unwrap());
    // --real-world: host randomness, so snapshots are off and every fresh instance runs start-up.
    let run = crate::harness::leakhost(["run", wasm.to_str().unwrap(), "--real-world"]);
    assert_eq!(run.status, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("a fresh instance declared a different manifest than the first one"), "{}", run.stderr);
    // The deterministic world gives every instance the same manifest.
    let run = crate::harness::leakhost(["run", wasm.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
}
