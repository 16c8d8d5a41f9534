//! Fresh instances from a snapshot of the initialised one (issue 17): a run must be byte
//! for byte the run whose fresh instances each run the guest's start-up again
//! (`LEAKHOST_NO_SNAPSHOT=1`), on a suite that traps often and prints everything a
//! fresh instance could differ in (sample-tests/snapshots).

use std::process::Command;

use crate::harness::{cache_dir, suite, temp_file};

/// The `--json --no-timings` report of a run, with or without snapshots.
fn report(flags: &[&str], snapshots: bool, name: &str) -> String {
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
        .env_remove("LEAKHOST_NO_SNAPSHOT");
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
