//! A suite of hostile tests: each one hits a sandbox limit, tries to get out of the sandbox, or ends its
//! instance in a way a test must not. End-to-end tests (tests/e2e/faults.rs) run it and assert on what the
//! host reports for each, so the names, the order and the messages below are part of the contract; change
//! them only together with those tests.
//!
//! Every test is in the default unit layer, in this order. "Host flags" are what tests/e2e/faults.rs
//! passes: `--timeout 0.5 --max-memory 32M`, the default `--max-stack 512K` and `--max-output 64K`, and for
//! the file-system tests `--dir DATA::/data` (read-only; holds `input.txt` = `leakhost`, a symlink `link` ->
//! `/etc` and a symlink `rel` -> `../../..`) and `--dir OUT::/out:rw` (empty).
//!
//! | test | the host must report | why |
//! |---|---|---|
//! | `test_infinite_loop` | Error: `exceeded the time limit of 0.5 s (--timeout)`; with `--fuel N`: `ran out of fuel` | `loop` over `black_box` |
//! | `test_memory_bomb` | Error: `exceeded the memory limit of 32 MiB (--max-memory)` | keeps 1 MiB chunks forever |
//! | `test_deep_recursion` | Error: `overflowed the wasm stack of 512 KiB (--max-stack)` | unbounded recursion |
//! | `test_stdout_flood` | pass; its output cut at `--max-output`, then `[N more bytes of output dropped]` | 200 000 lines (`line 0` .. `line 199999`) |
//! | `test_read_etc_passwd` | pass (Failure `read /etc/passwd: sandbox escaped` if the read works) | no preopen covers `/etc` |
//! | `test_escape_with_dotdot` | pass (Failure naming the path if any read works) | `..` out of `/data`, absolute and relative to a cwd of `/data` |
//! | `test_escape_with_symlink` | pass (Failure naming the path if any read works) | `/data/link/passwd`, `/data/rel/etc/passwd` |
//! | `test_write_read_only` | pass (Failure naming the operation if any works) | create, open for writing, append, mkdir, remove, rename in `/data`, and a write through `link` |
//! | `test_write_read_write` | pass: `/out/hello.txt` holds `hi` on the host; skipped if `/out` is not preopened | also checks that `/out/../escaped.txt` cannot be written |
//! | `test_read_preopen` | pass: `/data/input.txt` reads `leakhost`; skipped if `/data` is not preopened | |
//! | `test_env_is_empty_by_default` | pass with no `--env` or with `--env LEAKHOST_FAULTS_ENV=given`; Failure otherwise | the guest sees exactly the `--env` variables, and no arguments |
//! | `test_proc_exit` | Error: `the guest called proc_exit(7); a suite must not exit` | `std::process::exit(7)` |
//! | `test_unreachable` | Error: wasmtime's trap text, which names `unreachable` | the wasm `unreachable` instruction |
//! | `test_sleep_an_hour` | pass (deterministic clock); Error "slept for 3600.000 s, past the time limit" with `--real-world` | a sleep never hangs the run |
//! | `test_still_running` | pass | proves the run went on after every fault above |
//!
//! Totals of one run with those flags: 14 tests, 0 failures, 5 errors (the loop, the bomb, the recursion,
//! `proc_exit`, `unreachable`), and 2 skipped without the `--dir`s (`test_write_read_write`,
//! `test_read_preopen`) or 0 with them. `--env LEAKHOST_FAULTS_ENV=` with any value but `given` adds a
//! failure. A small `--fuel` budget may also end `test_stdout_flood` (and others) with `ran out of fuel`.

use std::fs::{self, OpenOptions};
use std::hint::black_box;
use std::io::Write as _;
use std::path::Path;

use leakhost_guest::{check, check_eq, skip, Suite, TestError, TestResult};

/// Lines `test_stdout_flood` prints: `line 0` to `line 199999`, each ending in `\n`.
pub const FLOOD_LINES: usize = 200_000;

/// The environment variable `test_env_is_empty_by_default` accepts, and its only accepted value.
pub const ENV_NAME: &str = "LEAKHOST_FAULTS_ENV";
const ENV_VALUE: &str = "given";

/// A Failure naming every attempt that worked, or a pass if none did.
fn none_worked(attempts: Vec<(String, bool)>) -> TestResult {
    let escaped: Vec<String> = attempts.into_iter().filter(|(_, ok)| *ok).map(|(what, _)| what).collect();
    if escaped.is_empty() {
        Ok(())
    } else {
        Err(TestError::Failure(format!("{}: sandbox escaped", escaped.join(", "))))
    }
}

fn read_attempt(path: &str) -> (String, bool) {
    (format!("read {path}"), fs::read(path).is_ok())
}

/// Never returns; black_box keeps the frames from being turned into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    black_box(recurse(depth + 1)).wrapping_add(1)
}

fn limits(s: &mut Suite) {
    s.test("test_infinite_loop", || -> () {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    });
    s.test("test_memory_bomb", || -> () {
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        loop {
            chunks.push(black_box(vec![0u8; 1 << 20]));
            black_box(&chunks);
        }
    });
    s.test("test_deep_recursion", || -> () {
        black_box(recurse(black_box(0)));
    });
    s.test("test_stdout_flood", || -> TestResult {
        // Buffered, so the flood is a few large writes rather than 200 000 host calls.
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
        for i in 0..FLOOD_LINES {
            writeln!(out, "line {i}")?;
        }
        out.flush()?;
        Ok(())
    });
}

fn escapes(s: &mut Suite) {
    s.test("test_read_etc_passwd", || -> TestResult {
        match fs::read_to_string("/etc/passwd") {
            Ok(_) => Err(TestError::Failure("read /etc/passwd: sandbox escaped".into())),
            Err(_) => Ok(()),
        }
    });
    s.test("test_escape_with_dotdot", || -> TestResult {
        let mut attempts: Vec<(String, bool)> = [
            "/data/../../../../etc/passwd",
            "/data/../etc/passwd",
            "/data/./../../etc/hostname",
            "/data/input.txt/../../etc/passwd",
            "/../etc/passwd",
            "../etc/hostname",
            "../../../../etc/passwd",
        ]
        .into_iter()
        .map(read_attempt)
        .collect();
        // The same relative escapes again with the working directory inside the preopen.
        if std::env::set_current_dir("/data").is_ok() {
            for path in ["../etc/hostname", "../../../../etc/passwd", "./../../../etc/passwd"] {
                let (what, ok) = read_attempt(path);
                attempts.push((format!("{what} (cwd /data)"), ok));
            }
            // wasi-libc cannot go back to "/" unless it is preopened; later tests use absolute paths.
            let _ = std::env::set_current_dir("/");
        }
        none_worked(attempts)
    });
    s.test("test_escape_with_symlink", || -> TestResult {
        none_worked(vec![read_attempt("/data/link/passwd"), read_attempt("/data/rel/etc/passwd")])
    });
    s.test("test_write_read_only", || -> TestResult {
        let writable = |path: &str| OpenOptions::new().write(true).open(path).is_ok();
        let appendable = |path: &str| OpenOptions::new().append(true).open(path).is_ok();
        none_worked(vec![
            ("create /data/new.txt".into(), fs::File::create("/data/new.txt").is_ok()),
            ("open /data/input.txt for writing".into(), writable("/data/input.txt")),
            ("open /data/input.txt for appending".into(), appendable("/data/input.txt")),
            ("create directory /data/newdir".into(), fs::create_dir("/data/newdir").is_ok()),
            ("create /data/link/leakhost-escape".into(), fs::File::create("/data/link/leakhost-escape").is_ok()),
            ("rename /data/input.txt".into(), fs::rename("/data/input.txt", "/data/renamed.txt").is_ok()),
            ("remove /data/input.txt".into(), fs::remove_file("/data/input.txt").is_ok()),
        ])
    });
    s.test("test_write_read_write", || -> TestResult {
        if !Path::new("/out").is_dir() {
            skip!("/out is not preopened (--dir HOST::/out:rw)");
        }
        fs::write("/out/hello.txt", "hi")?;
        check_eq!(fs::read_to_string("/out/hello.txt")?, "hi");
        none_worked(vec![
            ("write /out/../escaped.txt".into(), fs::write("/out/../escaped.txt", "x").is_ok()),
            ("write /out/../../escaped.txt".into(), fs::write("/out/../../escaped.txt", "x").is_ok()),
        ])
    });
    s.test("test_read_preopen", || -> TestResult {
        if !Path::new("/data").is_dir() {
            skip!("/data is not preopened (--dir HOST::/data)");
        }
        check_eq!(fs::read_to_string("/data/input.txt")?, "leakhost");
        Ok(())
    });
}

fn world(s: &mut Suite) {
    s.test("test_env_is_empty_by_default", || -> TestResult {
        let vars: Vec<(String, String)> = std::env::vars().collect();
        let expected: Vec<(String, String)> = match std::env::var_os(ENV_NAME) {
            Some(_) => vec![(ENV_NAME.to_string(), ENV_VALUE.to_string())],
            None => Vec::new(),
        };
        check_eq!(vars, expected);
        let args: Vec<String> = std::env::args().collect();
        check!(args.is_empty(), "the guest sees arguments: {args:?}");
        Ok(())
    });
    s.test("test_proc_exit", || -> () { std::process::exit(7) });
    s.test("test_unreachable", || -> () {
        #[cfg(target_arch = "wasm32")]
        core::arch::wasm32::unreachable();
        #[cfg(not(target_arch = "wasm32"))]
        std::process::abort();
    });
    // On the deterministic clock an hour passes at once; with --real-world a sleep past
    // --timeout is refused. Either way the run does not hang.
    s.test("test_sleep_an_hour", || -> TestResult {
        let started = std::time::Instant::now();
        std::thread::sleep(std::time::Duration::from_secs(3600));
        check!(started.elapsed() >= std::time::Duration::from_secs(3600), "the guest clock did not move on");
        Ok(())
    });
    s.test("test_still_running", || -> TestResult {
        check_eq!(2 + 2, 4);
        Ok(())
    });
}

fn declare(s: &mut Suite) {
    limits(s);
    escapes(s);
    world(s);
}

leakhost_guest::suite!(declare);
