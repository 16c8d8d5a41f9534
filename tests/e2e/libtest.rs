//! The tests people already have (issue 25): `sample-tests-libtest/orderbook`, an ordinary crate with
//! ordinary `#[test]`s, real dependencies (slab, lru) and no SDK, run from its `cargo test --no-run`
//! binaries, from its directory and as `cargo leakhost`: its leak blamed on its test and located at the
//! allocating line, its clean tests blamed for nothing, a panic and an `Err` reported as failures with
//! their texts, the ignored test skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::harness::{block, cache_dir, cache_key, leakhost, normalise_times, repo, temp_file, Run};

/// The sample crate.
fn crate_dir() -> PathBuf {
    repo().join("sample-tests-libtest/orderbook")
}

/// The crate's test binaries, built once per test process as a user builds them:
/// (the library's unit tests, the integration test `book`).
fn binaries() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = Command::new(env!("CARGO"))
            .args(["test", "--no-run", "--quiet", "--target", "wasm32-wasip1", "--message-format=json"])
            .current_dir(crate_dir())
            // Its own target dir, inside the crate: never the outer build's.
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("cargo runs");
        assert!(out.status.success(), "building the sample crate failed: {}", String::from_utf8_lossy(&out.stderr));
        let mut found = (None, None);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let Some(exe) = msg["executable"].as_str() else { continue };
            match msg["target"]["name"].as_str() {
                Some("orderbook") => found.0 = Some(PathBuf::from(exe)),
                Some("book") => found.1 = Some(PathBuf::from(exe)),
                _ => {}
            }
        }
        (found.0.expect("the library's test binary"), found.1.expect("the integration test binary"))
    })
}

fn run(target: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["run", target.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

/// The line of `src/lib.rs` that carries `// leak: MARKER`.
fn marked_line(marker: &str) -> usize {
    let source = std::fs::read_to_string(crate_dir().join("src/lib.rs")).unwrap();
    let tag = format!("// leak: {marker}");
    let found: Vec<usize> = source.lines().enumerate().filter(|(_, l)| l.ends_with(&tag)).map(|(i, _)| i + 1).collect();
    assert_eq!(found.len(), 1, "exactly one line is marked {tag}");
    found[0]
}

/// The verdict lines under `Leaks:`.
fn leaks(stdout: &str) -> Vec<&str> {
    let Some(start) = stdout.find("\nLeaks:\n") else { return Vec::new() };
    stdout[start + 8..].lines().take_while(|l| l.starts_with("  ")).map(str::trim).collect()
}

/// The stack under `Where UnitTests leaks`: its heading and frames.
fn first_stack(stdout: &str) -> (String, Vec<String>) {
    let start = stdout.find("  Where UnitTests leaks").unwrap_or_else(|| panic!("no stacks:\n{stdout}"));
    // Notes (in parentheses) come before the groups.
    let mut lines = stdout[start..].lines().skip(1).skip_while(|l| l.trim_start().starts_with('('));
    let heading = lines.next().expect("a group").trim().to_string();
    let frames = lines.take_while(|l| l.starts_with("      ")).map(|l| l.trim().to_string()).collect();
    (heading, frames)
}

const LEAK: &str = "UnitTests leaks: grew in 8 of 8 counted iterations: blocks +1 per iteration (net +8), bytes +";

fn assert_the_leak_is_found(stdout: &str) {
    let verdicts = leaks(stdout);
    assert_eq!(verdicts.len(), 1, "one leaking binary:\n{stdout}");
    assert!(verdicts[0].starts_with(LEAK), "{}", verdicts[0]);
    // The leaking test alone is blamed: the clean ones get no share.
    let caused = "; caused by tests::cancelling_is_audited; its traced replay found 8 blocks (";
    assert!(verdicts[0].contains(caused), "{}", verdicts[0]);
    let (heading, frames) = first_stack(stdout);
    assert_eq!(heading, "1 block, 32 bytes per iteration, allocated by tests::cancelling_is_audited at:");
    assert_eq!(frames[0], format!("orderbook::Book::cancel  orderbook/src/lib.rs:{}", marked_line("audit")));
    assert!(frames[1].starts_with("orderbook::tests::cancelling_is_audited  orderbook/src/lib.rs:"), "{frames:?}");
}

#[test]
fn its_test_binary_runs_as_a_suite_with_the_leak_blamed_and_located() {
    let (lib, _) = binaries();
    let r = run(lib, &["-N4", "-r", "-vv"]);
    // The `Err` test fails in every iteration; nothing else does.
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    assert_the_leak_is_found(&r.stdout);
    let err = block(&r.stdout, "Failure in test tests::a_zero_quantity_is_refused");
    assert!(err.starts_with("Error: BadQuantity(0)\n"), "{err}");
    assert_eq!(r.stdout.matches("\nFailure in test ").count(), 9, "the Err test, in each of 9 iterations");
    assert!(
        r.stdout.contains(" tests::replays_the_live_feed (skipped: ignored, needs a market feed)\n"),
        "{}",
        r.stdout
    );
    // Every iteration: six tests, the `Err` one failed, the ignored one skipped (zope prints no total
    // for a single layer).
    assert_eq!(
        r.stdout.matches("  Ran 6 tests with 1 failures, 0 errors and 1 skipped in ").count(),
        9,
        "{}",
        r.stdout
    );
    // The heap rows are the host's: blocks and bytes, no per-type rows without the SDK.
    assert!(r.stdout.contains("live blocks="), "{}", r.stdout);
    assert_eq!(r.stderr, "");
}

#[test]
fn its_package_directory_is_built_and_every_test_binary_run() {
    let r = run(&crate_dir(), &["-N4", "-r", "-v"]);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("leakhost: building the tests of "), "{}", r.stderr);
    assert!(r.stderr.contains("leakhost: built 2 test binaries in "), "{}", r.stderr);
    let suites: Vec<&str> = r.stdout.lines().filter(|l| l.starts_with("Suite ")).collect();
    assert_eq!(suites.len(), 2, "{}", r.stdout);
    assert!(suites[0].starts_with("Suite orderbook-") && suites[1].starts_with("Suite book-"), "{suites:?}");
    assert_the_leak_is_found(&r.stdout);
    // The integration test that panics: a failure with its message, then a fresh instance.
    let panic = block(&r.stdout, "Failure in test the_best_price_is_quoted");
    assert!(
        panic.starts_with(
            "panicked at tests/book.rs:17:5: assertion `left == right` failed: the quote moved\n  left: Some(101)\n right: Some(100)"
        ),
        "{panic}"
    );
    assert!(
        r.stdout.contains("Continuing in a fresh instance after the_best_price_is_quoted trapped."),
        "{}",
        r.stdout
    );
}

#[test]
fn cargo_leakhost_runs_the_package_it_is_started_in() {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-leakhost"))
        .args(["leakhost", "-N4", "-r"])
        .current_dir(crate_dir().join("src"))
        .env_remove("CARGO_TARGET_DIR")
        .env("NO_COLOR", "1")
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .env("LEAKHOST_CACHE_KEY", cache_key())
        .output()
        .expect("cargo-leakhost runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert_the_leak_is_found(&stdout);
}

#[test]
fn a_libtest_binary_runs_the_same_every_time() {
    let (lib, _) = binaries();
    let runs: Vec<(String, Vec<u8>)> = (0..2)
        .map(|i| {
            let json = temp_file(&format!("run{i}.json"), b"");
            let r = run(lib, &["-N4", "-r", "--no-timings", "--json", json.to_str().unwrap()]);
            (normalise_times(&r.stdout), std::fs::read(json).unwrap())
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    let report: serde_json::Value = serde_json::from_slice(&runs[0].1).unwrap();
    let frames = report.to_string();
    assert!(frames.contains("\"file\":\"orderbook/src/lib.rs\""), "the JSON carries the stacks");
}

#[test]
fn a_libtest_binary_loaded_from_the_cache_runs_as_one_compiled_afresh() {
    // A hit does not instrument the module again: its test exports, wrapped allocator and
    // offset map come from the cache entry, and must be what instrumenting finds.
    let (lib, _) = binaries();
    let report = |name: &str, extra: &[&str]| {
        let json = temp_file(name, b"");
        let mut args = vec!["-N4", "-r", "--no-timings", "--json", json.to_str().unwrap()];
        args.extend_from_slice(extra);
        let r = run(lib, &args);
        (normalise_times(&r.stdout), std::fs::read(json).unwrap())
    };
    report("warming.json", &[]);
    let (cached, fresh) = (report("cached.json", &[]), report("fresh.json", &["--no-cache"]));
    assert_eq!(cached, fresh);
    assert!(String::from_utf8_lossy(&cached.1).contains("\"file\": \"orderbook/src/lib.rs\""), "stacks with lines");
    assert!(cached.0.contains("Ran 6 tests"), "{}", cached.0);
}

#[test]
fn selection_partitions_parallel_runs_and_reports_work_as_for_sdk_suites() {
    let (lib, _) = binaries();
    let lib = lib.to_str().unwrap();
    let listed = leakhost(["list", lib, "-t", "quant"]);
    assert_eq!(
        listed.stdout,
        "Listing UnitTests tests:\n  tests::a_zero_quantity_is_refused\n  tests::quantities_are_checked\n"
    );
    let names = |r: Run| -> Vec<String> { r.stdout.lines().skip(1).map(|l| l.trim().to_string()).collect() };
    let all = names(leakhost(["list", lib]));
    let mut halves = names(leakhost(["list", lib, "--partition", "1/2"]));
    halves.extend(names(leakhost(["list", lib, "--partition", "2/2"])));
    halves.sort();
    assert_eq!((all.len(), halves), (6, all.clone()));
    // Without the failing test: a clean exit, unless leaks fail it.
    let clean = ["-N4", "-r", "-t", "!zero_quantity"];
    assert_eq!(run(Path::new(lib), &clean).status, 0);
    assert_eq!(run(Path::new(lib), &[&clean[..], &["--fail-on-leak"]].concat()).status, 3);
    let serial = run(Path::new(lib), &clean);
    let parallel = run(Path::new(lib), &[&clean[..], &["-j", "2"]].concat());
    assert_eq!(leaks(&serial.stdout), leaks(&parallel.stdout));
    let allow = temp_file(
        "leakhost.toml",
        b"[[allow]]\ntest = \"^tests::cancelling_is_audited$\"\nreason = \"the audit log is kept by design\"\n",
    );
    let allowed = run(Path::new(lib), &[&clean[..], &["--fail-on-leak", "--allow", allow.to_str().unwrap()]].concat());
    assert_eq!(allowed.status, 0, "{}", allowed.stdout);
    let place = format!("UnitTests: allowed by {}:1: the audit log is kept by design", allow.display());
    assert!(allowed.stdout.contains(&place), "{}", allowed.stdout);
    let (junit, events, html) = (temp_file("junit.xml", b""), temp_file("events.jsonl", b""), temp_file("r.html", b""));
    let files = [junit.to_str().unwrap(), events.to_str().unwrap(), html.to_str().unwrap()];
    run(Path::new(lib), &["-N4", "-r", "--junit", files[0], "--events", files[1], "--html", files[2]]);
    let xml = std::fs::read_to_string(junit).unwrap();
    assert!(xml.contains("Error: BadQuantity(0)") && xml.contains("<skipped"), "{xml}");
    let events = std::fs::read_to_string(events).unwrap();
    assert!(events.lines().any(|l| l.contains("\"leak_stacks\"") && l.contains("src/lib.rs")), "{events}");
    assert!(std::fs::read_to_string(html).unwrap().contains("tests::cancelling_is_audited"));
}

/// `leakhost run SUITE ARGS` with `LEAKHOST_HOST_ALLOC_COUNTS` set or not, its JSON report with the
/// module offsets of stack frames left out (instrumentation moves the code section, and the offsets
/// are of the compiled module).
fn json_report(suite: &Path, host_counts: bool) -> String {
    let json = temp_file("counts.json", b"");
    let mut command = Command::new(env!("CARGO_BIN_EXE_leakhost"));
    command
        .args(["run", suite.to_str().unwrap(), "-N4", "-r", "--no-timings", "--json", json.to_str().unwrap()])
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .env("LEAKHOST_CACHE_KEY", cache_key())
        .env_remove("LEAKHOST_HOST_ALLOC_COUNTS");
    if host_counts {
        command.env("LEAKHOST_HOST_ALLOC_COUNTS", "1");
    }
    command.output().expect("leakhost runs");
    let offsets = regex::Regex::new(r#""module_offsets": \[[^\]]*\]"#).unwrap();
    offsets.replace_all(&std::fs::read_to_string(json).unwrap(), "").into_owned()
}

/// The human output of `leakhost run SUITE -N4 -r`, with or without `LEAKHOST_HOST_ALLOC_COUNTS`.
fn human(suite: &Path, host_counts: bool) -> String {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leakhost"));
    command
        .args(["run", suite.to_str().unwrap(), "-N4", "-r"])
        .env("NO_COLOR", "1")
        .env_remove("LEAKHOST_HOST_ALLOC_COUNTS");
    command.env("LEAKHOST_CACHE_DIR", cache_dir()).env("LEAKHOST_CACHE_KEY", cache_key());
    if host_counts {
        command.env("LEAKHOST_HOST_ALLOC_COUNTS", "1");
    }
    String::from_utf8_lossy(&command.output().expect("leakhost runs").stdout).into_owned()
}

#[test]
fn host_counts_replace_a_suites_own_and_an_abi_v1_suite_is_traced_through_its_malloc() {
    let wat = wat::parse_file(repo().join("tests/fixtures/silent_malloc_v1.wat")).unwrap();
    let suite = temp_file("silent_malloc_v1.wasm", &wat);
    // Its own counters see nothing.
    assert_eq!(leaks(&human(&suite, false)), Vec::<&str>::new());
    let host = human(&suite, true);
    assert_eq!(
        leaks(&host),
        ["UnitTests leaks: grew in 8 of 8 counted iterations: blocks +1 per iteration (net +8), bytes +24 per iteration (net +192); caused by t; its traced replay found 8 blocks (192 bytes) of them still live"]
    );
    // ABI v1 cannot trace; its instrumented malloc does (no line tables: names only).
    let (heading, frames) = first_stack(&host);
    assert_eq!(
        (heading.as_str(), frames),
        ("1 block, 24 bytes per iteration, allocated by t at:", vec!["remember".to_string()])
    );
}

#[test]
fn fresh_instances_from_a_snapshot_report_what_instances_that_ran_start_up_do() {
    // The integration binary's panicking test needs a fresh instance in every iteration; the
    // snapshot carries the host's heap account with the rest of the instance's state.
    let (lib, book) = binaries();
    for binary in [lib, book] {
        let report = |no_snapshot: bool| {
            let json = temp_file("snapshot.json", b"");
            let mut command = Command::new(env!("CARGO_BIN_EXE_leakhost"));
            command
                .args(["run", binary.to_str().unwrap(), "-N4", "-r", "--no-timings", "--json", json.to_str().unwrap()])
                .env("LEAKHOST_CACHE_DIR", cache_dir())
                .env("LEAKHOST_CACHE_KEY", cache_key());
            if no_snapshot {
                command.env("LEAKHOST_NO_SNAPSHOT", "1");
            }
            command.output().expect("leakhost runs");
            std::fs::read_to_string(json).unwrap()
        };
        let (snapshot, start_up) = (report(false), report(true));
        assert!(snapshot.contains("\"live_blocks\": "), "{snapshot}");
        assert_eq!(snapshot, start_up, "{}", binary.display());
    }
}

#[test]
fn the_instrumented_counts_equal_the_sdks_on_an_sdk_suite() {
    // The SDK counts in its global allocator; instrumentation counts in `__rust_alloc` and friends,
    // and the report then shows the host's figures instead: every figure of the run must agree.
    for name in ["leak", "leakstacks", "samplelayers"] {
        let suite = crate::harness::suite(name);
        let (sdk, host) = (json_report(&suite, false), json_report(&suite, true));
        assert!(sdk.contains("\"blocks\": "), "{name}: a report with heap figures");
        assert_eq!(sdk, host, "{name}");
    }
}

#[test]
fn a_release_build_whose_tests_were_inlined_away_is_refused_with_the_fix() {
    let r = run(&crate_dir(), &["--cargo-profile", "release"]);
    assert_eq!(r.status, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("none of its 5 tests can run: their functions are not in the module by name"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("build the tests with the dev profile"), "{}", r.stderr);
}
