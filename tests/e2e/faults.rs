//! The faults suite: limits, sandbox escapes, proc_exit and traps, each reported, and the run carrying on.
//!
//! Every test runs the whole suite (15 tests) with short limits and asserts on the blocks it cares about,
//! and on the `Ran 15 tests` line, which shows that the run went on after every fault. See
//! sample-tests/faults/src/lib.rs for what each guest test does and expects.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{block, leakhost, suite, Run};

/// Lines the flood prints; must match `FLOOD_LINES` in sample-tests/faults.
const FLOOD_LINES: usize = 200_000;

/// Runs the faults suite with `extra`, plus `--timeout 0.5` and `--max-memory 32M` unless `extra` sets them
/// (a flag given twice is a usage error).
fn run(extra: &[&str]) -> Run {
    let wasm = suite("faults");
    let mut args = vec!["run", wasm.to_str().unwrap()];
    for (flag, value) in [("--timeout", "0.5"), ("--max-memory", "32M")] {
        if !extra.iter().any(|a| a.starts_with(flag)) {
            args.extend([flag, value]);
        }
    }
    args.extend_from_slice(extra);
    leakhost(args)
}

/// Asserts that no Failure or Error block names any of `tests`.
fn assert_no_block(stdout: &str, tests: &[&str]) {
    for test in tests {
        assert!(!stdout.contains(&format!(" in test {test}\n")), "{test} should pass, but:\n{stdout}");
    }
}

/// The guest tests that must pass under every flag combination used here (except a wrong --env).
const SANDBOX_TESTS: [&str; 5] = [
    "test_read_etc_passwd",
    "test_escape_with_dotdot",
    "test_escape_with_symlink",
    "test_write_read_only",
    "test_env_is_empty_by_default",
];

/// Preopen directories for one test: `ROOT/data` (read-only, as `/data`) and `ROOT/out` (`:rw`, as `/out`).
struct Dirs {
    root: PathBuf,
    data: PathBuf,
    out: PathBuf,
}

impl Dirs {
    /// Fresh directories unique to this process and test: `data` holds `input.txt` (`leakhost`) and the
    /// symlinks `link` -> `/etc` and `rel` -> `../../..`; `out` is empty.
    fn new(test: &str) -> Self {
        let root = std::env::temp_dir().join(format!("leakhost-faults-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (data, out) = (root.join("data"), root.join("out"));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(data.join("input.txt"), "leakhost").unwrap();
        std::os::unix::fs::symlink("/etc", data.join("link")).unwrap();
        std::os::unix::fs::symlink("../../..", data.join("rel")).unwrap();
        Dirs { root, data, out }
    }

    /// `--dir DATA::/data --dir OUT::/out:rw`.
    fn args(&self) -> Vec<String> {
        vec![
            "--dir".into(),
            format!("{}::/data", self.data.display()),
            "--dir".into(),
            format!("{}::/out:rw", self.out.display()),
        ]
    }

    /// Removes everything; called at the end of a passing test, so a failing one leaves its evidence.
    fn remove(self) {
        std::fs::remove_dir_all(&self.root).unwrap();
    }
}

/// The sorted names in `dir`.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Everything the flood prints.
fn flood_text() -> String {
    (0..FLOOD_LINES).map(|i| format!("line {i}\n")).collect()
}

/// The N of the one `[N more bytes of output dropped]` line.
fn dropped_notice(stdout: &str) -> u64 {
    let notices: Vec<&str> =
        stdout.lines().filter_map(|l| l.strip_prefix('[')?.strip_suffix(" more bytes of output dropped]")).collect();
    assert_eq!(notices.len(), 1, "expected one drop notice in:\n{stdout}");
    notices[0].parse().unwrap()
}

#[test]
fn every_fault_is_reported_and_the_run_carries_on() {
    let r = run(&[]);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.stderr, "");
    let out = &r.stdout;
    let loop_block = block(out, "Error in test test_infinite_loop");
    assert!(loop_block.starts_with("exceeded the time limit of 0.5 s (--timeout)"), "{loop_block}");
    let bomb = block(out, "Error in test test_memory_bomb");
    assert!(bomb.starts_with("exceeded the memory limit of 32 MiB (--max-memory)"), "{bomb}");
    let recursion = block(out, "Error in test test_deep_recursion");
    assert!(recursion.starts_with("overflowed the wasm stack of 512 KiB (--max-stack)"), "{recursion}");
    let exit = block(out, "Error in test test_proc_exit");
    assert!(exit.contains("proc_exit(7)"), "{exit}");
    let unreachable = block(out, "Error in test test_unreachable");
    assert!(unreachable.contains("unreachable"), "{unreachable}");
    assert_no_block(out, &SANDBOX_TESTS);
    assert_no_block(out, &["test_stdout_flood", "test_write_read_write", "test_read_preopen", "test_still_running"]);
    // Only the five faults are errors; without --dir the two preopen tests skip; test_still_running ran.
    assert!(out.contains("\n  Ran 15 tests with 0 failures, 5 errors and 2 skipped in "), "{out}");
    // A passing test's output is not shown without --show-output.
    assert!(!out.contains("line 0\n") && !out.contains("output dropped"), "{out}");
}

#[test]
fn a_stdout_flood_passes_and_is_cut_at_max_output() {
    let flood = flood_text();
    for (flags, kept) in [(&["--show-output", "--max-output", "1K"][..], 1024), (&["--show-output"][..], 64 * 1024)] {
        let r = run(flags);
        assert_eq!(r.status, 1, "{flags:?}: {}\n{}", r.stdout, r.stderr);
        let out = &r.stdout;
        assert_no_block(out, &["test_stdout_flood"]);
        assert!(out.contains("\n  Ran 15 tests with 0 failures, 5 errors and 2 skipped in "), "{flags:?}: {out}");
        let dropped = dropped_notice(out);
        assert!(dropped > 0);
        assert_eq!(dropped, (flood.len() - kept) as u64, "{flags:?}");
        // What is kept is the start of the flood, and nothing more.
        let start = out.find("line 0\nline 1\n").expect("the flood's output is shown");
        assert_eq!(&out[start..start + kept], &flood[..kept], "{flags:?}");
        // The reporter ends the cut text with a newline if it has none, then gives the notice.
        let newline = if flood[..kept].ends_with('\n') { "" } else { "\n" };
        let rest = &out[start + kept..];
        assert!(
            rest.starts_with(&format!("{newline}[{dropped} more bytes of output dropped]\n")),
            "{flags:?}: {}",
            &rest[..rest.len().min(200)]
        );
    }
}

#[test]
fn preopens_confine_the_suite_and_read_only_means_read_only() {
    let dirs = Dirs::new("preopens");
    let args = dirs.args();
    let r = run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    let out = &r.stdout;
    assert_no_block(out, &SANDBOX_TESTS);
    assert_no_block(out, &["test_write_read_write", "test_read_preopen", "test_still_running"]);
    assert!(out.contains("\n  Ran 15 tests with 0 failures, 5 errors and 0 skipped in "), "{out}");

    // The :rw directory got exactly the file the guest wrote.
    assert_eq!(listing(&dirs.out), ["hello.txt"]);
    assert_eq!(std::fs::read_to_string(dirs.out.join("hello.txt")).unwrap(), "hi");
    // The read-only directory is as it was.
    assert_eq!(listing(&dirs.data), ["input.txt", "link", "rel"]);
    assert_eq!(std::fs::read_to_string(dirs.data.join("input.txt")).unwrap(), "leakhost");
    assert_eq!(std::fs::read_link(dirs.data.join("link")).unwrap(), Path::new("/etc"));
    assert_eq!(std::fs::read_link(dirs.data.join("rel")).unwrap(), Path::new("../../.."));
    // Nothing appeared next to the preopens (`/out/../escaped.txt`) or through the symlink to /etc.
    assert_eq!(listing(&dirs.root), ["data", "out"]);
    assert!(!Path::new("/etc/leakhost-escape").exists());
    dirs.remove();
}

#[test]
fn the_guest_sees_only_the_environment_it_is_given() {
    // The host's own environment is not inherited, even a variable the guest looks for.
    let wasm = suite("faults");
    let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(["run", wasm.to_str().unwrap(), "--timeout", "0.5", "--max-memory", "32M"])
        .env_remove("CARGO_TARGET_DIR")
        .env("NO_COLOR", "1")
        .env("LEAKHOST_FAULTS_ENV", "from the host")
        .output()
        .expect("leakhost runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert_no_block(&stdout, &["test_env_is_empty_by_default"]);

    let given = run(&["--env", "LEAKHOST_FAULTS_ENV=given"]);
    assert_eq!(given.status, 1, "{}\n{}", given.stdout, given.stderr);
    assert_no_block(&given.stdout, &["test_env_is_empty_by_default"]);
    assert!(given.stdout.contains("\n  Ran 15 tests with 0 failures, 5 errors and 2 skipped in "), "{}", given.stdout);

    let wrong = run(&["--env", "LEAKHOST_FAULTS_ENV=wrong"]);
    assert_eq!(wrong.status, 1);
    let failure = block(&wrong.stdout, "Failure in test test_env_is_empty_by_default");
    assert!(failure.contains(r#"("LEAKHOST_FAULTS_ENV", "wrong")"#), "{failure}");
    assert!(wrong.stdout.contains("\n  Ran 15 tests with 1 failures, 5 errors and 2 skipped in "), "{}", wrong.stdout);
}

#[test]
fn fuel_runs_out_before_the_time_limit() {
    let r = run(&["--fuel", "100000", "--timeout", "60"]);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    let out = &r.stdout;
    let loop_block = block(out, "Error in test test_infinite_loop");
    assert!(loop_block.starts_with("ran out of fuel: used the budget of 100000 (--fuel)"), "{loop_block}");
    assert!(!loop_block.contains("time limit"), "{loop_block}");
    // 200 000 formatted lines cost far more than 100 000 units, so the flood errors too: six errors.
    assert!(block(out, "Error in test test_stdout_flood").starts_with("ran out of fuel"), "{out}");
    assert_no_block(out, &SANDBOX_TESTS);
    assert_no_block(out, &["test_still_running"]);
    assert!(out.contains("\n  Ran 15 tests with 0 failures, 6 errors and 2 skipped in "), "{out}");
}

#[test]
fn a_dir_that_cannot_be_opened_is_a_usage_error() {
    let dirs = Dirs::new("missing-dir");
    let missing = dirs.root.join("missing");
    let file = dirs.data.join("input.txt");
    // The reason must be the true one: a file is not a directory, it is not missing.
    for (host, why) in [(&missing, "no such"), (&file, "not a directory")] {
        let r = run(&["--dir", &format!("{}::/data", host.display())]);
        assert_eq!(r.status, 2, "{}\n{}", r.stdout, r.stderr);
        assert_eq!(r.stdout, "");
        assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
        let expected = format!("leakhost: error: --dir {}: ", host.display());
        assert!(r.stderr.starts_with(&expected), "expected {expected:?}..., got {:?}", r.stderr);
        assert!(r.stderr.to_lowercase().contains(why), "expected {why:?} in {:?}", r.stderr);
    }
    dirs.remove();
}

#[test]
fn bad_flag_values_are_usage_errors() {
    for (flags, needles) in [
        (&["--max-memory", "lots"][..], &["--max-memory", "lots", "expected a size"][..]),
        (&["--max-stack", "1X"][..], &["--max-stack", "1X"][..]),
        (&["--max-output=-1"][..], &["--max-output", "-1", "expected a size"][..]),
        (&["--env", "novalue"][..], &["--env", "novalue", "NAME=VALUE"][..]),
        (&["--env", "=x"][..], &["--env", "NAME=VALUE"][..]),
        (&["--dir", "::/x"][..], &["--dir", "HOST[::GUEST][:rw]"][..]),
        (&["--timeout=-1"][..], &["--timeout -1", "0 or more"][..]),
        (&["--timeout", "soon"][..], &["--timeout", "soon"][..]),
        (&["--fuel", "lots"][..], &["--fuel", "lots"][..]),
    ] {
        let r = run(flags);
        assert_eq!(r.status, 2, "{flags:?}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(r.stdout, "", "{flags:?}");
        for needle in needles {
            assert!(r.stderr.contains(needle), "{flags:?}: no {needle:?} in {:?}", r.stderr);
        }
    }
}

#[test]
fn a_huge_timeout_does_not_crash_the_host() {
    // 1e20 s is finite but more than a Duration holds: either no limit or a usage error, never a panic.
    // The fuel budget ends the infinite loop in case the host takes it as no limit.
    let r = run(&["--timeout", "1e20", "--fuel", "100000"]);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(
        r.status == 1
            || (r.status == 2 && r.stderr.starts_with("leakhost: error: --timeout ") && r.stderr.lines().count() == 1),
        "status {}: {}",
        r.status,
        r.stderr
    );
}

#[test]
fn a_long_sleep_passes_at_once_on_the_fake_clock_and_is_refused_on_the_real_one() {
    // Default (deterministic) run: the hour-long sleep passes; had it slept for real,
    // this test would hang instead of failing.
    let out = run(&[]).stdout;
    assert_no_block(&out, &["test_sleep_an_hour"]);
    let real = run(&["--real-world"]);
    let sleep_block = block(&real.stdout, "Error in test test_sleep_an_hour");
    assert!(
        sleep_block.starts_with("slept for 3600.000 s, past the time limit of 0.500 s (--timeout)"),
        "{sleep_block}"
    );
}
