//! C and C++ suites (guest-sdk-c, sample-tests-c): built from their leakhost-c.toml by `leakhost run`,
//! reported like Rust suites, zlib's leaks found; and `inspect --check` on every sample suite.
//! Needs clang, lld, wasi-libc, libclang-rt-dev-wasm32 and libc++-dev-wasm32 (tests/setup.sh).

use std::path::PathBuf;
use std::process::Command;

use crate::harness::{block, cache_dir, leakhost, normalise_times, repo, suite, temp_file, Run};

fn c_suite(name: &str) -> PathBuf {
    repo().join("sample-tests-c").join(name)
}

fn run_c(name: &str, extra: &[&str]) -> Run {
    let dir = c_suite(name);
    let mut args = vec!["run", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    leakhost(args)
}

/// A fresh, empty directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-c-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Source locations differ between the ports (`failures/src/lib.rs:52:36`, `sample-tests-c/…/suite.c:24`);
/// everything else must not.
fn normalise(text: &str) -> String {
    let location = regex::Regex::new(r"at [^\s:]+\.(rs|c|cpp):\d+(:\d+)?").unwrap();
    location.replace_all(&normalise_times(text), "at LOCATION").into_owned()
}

#[test]
fn the_c_port_of_failures_reports_exactly_what_the_rust_suite_does() {
    // Built first: a build says so on stderr (tests/e2e/hardening.rs), a run of a built suite does not.
    run_c("failures", &["--list-tests"]);
    for flags in [&[][..], &["-v"], &["-N2"]] {
        let rust = leakhost([&["run", suite("failures").to_str().unwrap()][..], flags].concat());
        let c = run_c("failures", flags);
        assert_eq!(c.stderr, "", "{flags:?}");
        assert_eq!((c.status, normalise(&c.stdout)), (rust.status, normalise(&rust.stdout)), "{flags:?}");
    }
    // The comparison is not vacuous: the messages and locations are there.
    let c = run_c("failures", &[]).stdout;
    let assert_block = block(&c, "Failure in test test_assert_fails");
    assert!(assert_block.starts_with("panicked at suite.c:"), "{assert_block}");
    assert!(assert_block.ends_with("assertion `left == right` failed\n  left: 2\n right: 3"), "{assert_block}");
    assert!(block(&c, "Failure in test test_check_fails")
        .starts_with("check failed: 1 + 1 == 3\n  left: 2\n right: 3\nat "));
}

#[test]
fn the_c_port_of_leak_reports_the_same_changes_types_counters_and_verdicts() {
    // Absolute heap sizes differ (each SDK's own allocations); every change must not.
    let absolute = regex::Regex::new(r"(live blocks|live bytes|pages)=\d+ *").unwrap();
    let same = |text: &str| absolute.replace_all(&normalise_times(text), "$1=X ").into_owned();
    // -N6: the leaked list's buffer grows in the fifth run, in both ports. Without stacks: the
    // C SDK speaks ABI v1, which has no allocation tracing (tests/e2e/stacks.rs).
    for flags in [&["-N4", "-r", "-vv", "--no-stacks"][..], &["-N6", "-r", "-v", "--no-stacks"]] {
        let rust = leakhost([&["run", suite("leak").to_str().unwrap()][..], flags].concat());
        let c = run_c("leak", flags);
        assert_eq!((c.status, same(&c.stdout)), (rust.status, same(&rust.stdout)), "{flags:?}");
    }
    let c = run_c("leak", &["-N4", "-r"]).stdout;
    let verdict = c.lines().find(|l| l.starts_with("  Leak: UnitTests")).expect("a verdict");
    assert!(verdict.contains("blocks +1 per iteration (net +8), bytes +"), "{verdict}");
    assert!(
        verdict.contains("leak::ClassicLeakable +1 per iteration (net +8), leak::Leakable +1 per iteration (net +8)"),
        "{verdict}"
    );
    let witnessed =
        "caused by test_leak (leak.TestSomething); its traced replay found 8 blocks (304 bytes) of them still live";
    assert!(verdict.ends_with(witnessed), "{verdict}");
}

/// The `Leaks:` section of a run's output, one verdict per line.
fn leaks(stdout: &str) -> Vec<&str> {
    let Some(start) = stdout.find("\nLeaks:\n") else { return Vec::new() };
    stdout[start + 8..].lines().take_while(|l| l.starts_with("  ")).map(str::trim).collect()
}

#[test]
fn zlib_clean_tests_get_no_verdict_and_each_leak_is_attributed() {
    let r = run_c("zlib", &["-N4", "-r"]);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Total: 13 tests, 0 failures, 0 errors and 0 skipped"), "{}", r.stdout);
    let verdicts = leaks(&r.stdout);
    assert_eq!(verdicts.len(), 2, "{}", r.stdout);
    // The error path leaks its 4096-byte output buffer, once per run, and nothing else there leaks.
    assert_eq!(
        verdicts[0],
        "zlib.ErrorPaths leaks: grew in 8 of 8 counted iterations: blocks +1 per iteration (net +8), bytes +4096 per iteration (net +32768); caused by test_error_path_leaks_buffer; its traced replay found 8 blocks (32768 bytes) of them still live"
    );
    // Forgetting deflateEnd leaks deflate's state and its four buffers; forgetting inflateEnd, inflate's state.
    let forgotten = verdicts[1];
    assert!(forgotten.starts_with("zlib.ForgottenEnd leaks: grew in 8 of 8 counted iterations: "), "{forgotten}");
    let causes = forgotten.split_once("; caused by ").expect("attributed").1;
    let causes = causes.split_once("; its traced replay found ").map_or(causes, |(causes, _)| causes);
    let named: Vec<&str> = causes.split("); ").map(|c| c.split(" (").next().unwrap()).collect();
    assert_eq!(named, ["test_forgets_deflate_end", "test_forgets_inflate_end"], "{forgotten}");
    assert!(
        causes.starts_with("test_forgets_deflate_end (grew in 8 of 8 counted iterations: blocks +5 per"),
        "{causes}"
    );
    assert!(causes.contains("test_forgets_inflate_end (grew in 8 of 8 counted iterations: blocks +1 per"), "{causes}");
    assert!(causes.matches("counter \"open streams\" +1 per iteration").count() == 2, "{causes}");
    for clean in ["UnitTests", "zlib.Streams"] {
        assert!(!r.stdout.contains(&format!("Leak: {clean}")), "{clean} got a verdict:\n{}", r.stdout);
    }
    assert_eq!(run_c("zlib", &["-N4", "-r", "--fail-on-leak"]).status, 3);
}

#[test]
fn a_cxx_suite_counts_new_and_tracked_types() {
    let r = run_c("cxx", &["-N4", "-r"]);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    // A Node, a Widget and the Widget's heap-allocated name; the Widget is also a tracked type.
    assert_eq!(
        leaks(&r.stdout),
        ["cxx.Registry leaks: grew in 8 of 8 counted iterations: blocks +3 per iteration (net +24), bytes +56 per iteration (net +448), cxx::Widget +1 per iteration (net +8); caused by test_registers_and_forgets; its traced replay found 24 blocks (448 bytes) of them still live"]
    );
}

#[test]
fn the_c_sdk_counts_every_allocation_function_and_reports_abort_and_assert() {
    let r = run_c("alloc", &["--show-output"]);
    assert_eq!(r.status, 1, "{}\n{}", r.stdout, r.stderr);
    // The counting checks run inside the guest; here they must all have passed.
    assert!(r.stdout.contains("  Ran 12 tests with 2 failures, 1 errors and 0 skipped"), "{}", r.stdout);
    // The SDK makes a message valid UTF-8 itself: a stray byte and an overlong form become '?'.
    assert_eq!(block(&r.stdout, "Failure in test test_message_made_utf8"), "bytes ? ??? \u{e9}");
    assert_eq!(block(&r.stdout, "Error in test test_abort"), "abort() called");
    let assert_block = block(&r.stdout, "Failure in test test_assert");
    assert!(assert_block.starts_with("panicked at suite.c:"), "{assert_block}");
    assert!(assert_block.ends_with("\nassertion failed: 1 + 1 == 3"), "{assert_block}");
    // Written without a newline, so only the SDK's flush after the test gets it out.
    assert!(r.stdout.contains("flushed without a newline"), "{}", r.stdout);
}

#[test]
fn a_c_suite_is_built_once_and_rebuilt_when_a_source_changes() {
    let dir = temp_dir("csuite");
    std::fs::write(dir.join("leakhost-c.toml"), "name = \"csuite\"\nsources = [\"suite.c\"]\n").unwrap();
    let source = |body: &str| {
        let text = format!("#include <leakhost.h>\nstatic lh_result t(void) {{ {body} }}\nvoid lh_declare(void) {{ lh_test(\"t\", t); }}\n");
        std::fs::write(dir.join("suite.c"), text).unwrap();
    };
    source("return LH_PASS;");
    let target = dir.to_str().unwrap();
    assert_eq!(leakhost(["run", target]).status, 0);
    let wasm = dir.join("target/leakhost-c/csuite.wasm");
    let built = std::fs::metadata(&wasm).unwrap().modified().unwrap();
    assert_eq!(leakhost(["run", target]).status, 0);
    assert_eq!(std::fs::metadata(&wasm).unwrap().modified().unwrap(), built, "an unchanged suite is not rebuilt");
    source("LH_CHECK_EQ_INT(1, 2); return LH_PASS;");
    let r = leakhost(["run", target]);
    assert_eq!(r.status, 1, "a changed source is rebuilt: {}", r.stdout);
    assert!(block(&r.stdout, "Failure in test t").starts_with("check failed: 1 == 2"), "{}", r.stdout);
}

#[test]
fn build_problems_are_one_line_that_names_the_fix() {
    let bad = temp_dir("cbad");
    std::fs::write(bad.join("leakhost-c.toml"), "source = [\"suite.c\"]\n").unwrap();
    let r = leakhost(["run", bad.to_str().unwrap()]);
    assert_eq!(r.status, 2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("leakhost-c.toml: line 1: unknown field `source`, expected one of `name`, `sources`"),
        "{}",
        r.stderr
    );

    let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(["run", c_suite("failures").to_str().unwrap()])
        .env("LEAKHOST_CC", "/nonexistent/clang")
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains(
            "/nonexistent/clang is not installed; install the Debian package clang (`apt-get install -y clang`"
        ),
        "{stderr}"
    );
}

/// Runs `leakhost run DIR` with a fake `clang` that finds nothing but what `found` lists, and only it on
/// the PATH; returns stderr.
fn build_with_fake_clang(dir: &std::path::Path, found: &[&str]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let mut script = String::from("#!/bin/sh\ncase \"$*\" in\n  --version) echo \"fake clang 0\" ;;\n");
    for (arg, file) in
        [("-print-libgcc-file-name", "libclang_rt.builtins-wasm32.a"), ("-print-file-name=libc.a", "libc.a")]
    {
        // clang prints a found file's full path, and the bare name of one it does not find.
        let answer = if found.contains(&file) { format!("{}", dir.join(file).display()) } else { file.to_string() };
        std::fs::write(dir.join(file), "").unwrap();
        script.push_str(&format!("  *{arg}*) echo {answer} ;;\n"));
    }
    script.push_str("  *) echo wasm-ld ;;\nesac\n");
    let clang = bin.join("clang");
    std::fs::write(&clang, script).unwrap();
    std::fs::set_permissions(&clang, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(["run", dir.to_str().unwrap()])
        .env("PATH", &bin)
        .env("LEAKHOST_CC", &clang)
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_missing_part_of_the_toolchain_is_named_by_its_debian_package() {
    let dir = temp_dir("fake-clang");
    std::fs::write(dir.join("leakhost-c.toml"), "sources = [\"suite.c\"]\n").unwrap();
    std::fs::write(dir.join("suite.c"), "void lh_declare(void) {}\n").unwrap();
    let cases = [
        (&[][..], "clang's wasm32 runtime (libclang_rt.builtins-wasm32.a) is not installed; install the Debian package libclang-rt-dev-wasm32"),
        (&["libclang_rt.builtins-wasm32.a"], "wasi-libc (libc.a for wasm32-wasi) is not installed; install the Debian package wasi-libc"),
        (&["libclang_rt.builtins-wasm32.a", "libc.a"], "wasm-ld is not installed; install the Debian package lld"),
    ];
    for (found, message) in cases {
        let stderr = build_with_fake_clang(&dir, found);
        assert!(stderr.contains(message), "{found:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

/// `leakhost inspect --check TARGET`.
fn check(target: &std::path::Path) -> Run {
    leakhost(["inspect", "--check", target.to_str().unwrap()])
}

#[test]
fn every_sample_suite_conforms() {
    let wat = temp_file("minimal_ok.wasm", &wat::parse_file(repo().join("tests/fixtures/minimal_ok.wat")).unwrap());
    let mut targets: Vec<PathBuf> = ["failures", "faults", "leak", "samplelayers"].into_iter().map(suite).collect();
    targets.extend(["failures", "leak", "zlib", "cxx", "alloc"].into_iter().map(c_suite));
    targets.push(wat);
    for target in targets {
        let r = check(&target);
        assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains("\nResult: conforms ("), "{}", r.stdout);
        assert!(!r.stdout.contains("FAIL"), "{}", r.stdout);
    }
    let layers = check(&suite("samplelayers")).stdout;
    // Layer111 has three bases up to Layer1: four set-ups, four of each test hook, four tear-downs.
    assert!(
        layers.contains("  ok    hooks of samplelayers.Layer111 follow the status protocol: 16 calls\n"),
        "{layers}"
    );
    let broken = check(&c_suite("failures")).stdout;
    assert!(broken.contains("  note  hooks of failures.BrokenSetUp follow the status protocol: setUp of failures.BrokenSetUp returned 2: database unavailable"), "{broken}");
}

#[test]
fn the_check_says_which_rule_a_suite_breaks() {
    let fixture = |name: &str| {
        let bytes = wat::parse_file(repo().join(format!("tests/fixtures/{name}.wat"))).unwrap();
        temp_file(&format!("{name}.wasm"), &bytes)
    };
    let r = check(&fixture("nonconforming_counters"));
    assert_eq!(r.status, 1, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("  FAIL  counters are readable and stable: two snapshots in a row differ (live blocks 1 then 2,"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\nResult: does not conform ("), "{}", r.stdout);

    let r = check(&fixture("nonconforming_hooks"));
    assert_eq!(r.status, 1, "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "  FAIL  hooks of L follow the status protocol: setUp of L returned 1 but the status kind is STATUS_NONE"
        ),
        "{}",
        r.stdout
    );

    let r = check(&fixture("command"));
    assert_eq!(r.status, 1);
    assert!(r.stdout.contains("  FAIL  the module exports the ABI and imports only WASI: "), "{}", r.stdout);
}

/// The first ```c block after `marker` in `doc` (a path relative to the repository).
fn c_block(doc: &str, marker: &str) -> String {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let from = &text[text.find(marker).unwrap_or_else(|| panic!("{marker:?} not in {doc}"))..];
    let start = from.find("```c\n").expect("a C block") + 5;
    from[start..start + from[start..].find("```").unwrap()].to_string()
}

#[test]
fn the_documented_c_examples_and_the_template_build_as_written() {
    let template = std::fs::read_to_string(repo().join("host/templates/c/suite.c")).unwrap();
    let examples = [
        ("readme", c_block("README.md", "For C and C++"), "Total: 2 tests, 0 failures"),
        ("sdk-readme", c_block("guest-sdk-c/README.md", "## A suite"), "Total: 2 tests, 0 failures"),
        ("template", template, "Total: 2 tests, 0 failures"),
    ];
    for (name, source, total) in examples {
        let dir = temp_dir(name);
        std::fs::write(dir.join("suite.c"), source).unwrap();
        let manifest = if name == "template" {
            std::fs::read_to_string(repo().join("host/templates/c/leakhost-c.toml")).unwrap()
        } else {
            "sources = [\"suite.c\"]\n".to_string()
        };
        std::fs::write(dir.join("leakhost-c.toml"), manifest).unwrap();
        let r = leakhost(["run", dir.to_str().unwrap(), "-N3", "-r"]);
        assert_eq!(r.status, 0, "{name}: {}\n{}", r.stdout, r.stderr);
        assert!(r.stdout.contains(total), "{name}: {}", r.stdout);
        assert!(!r.stdout.contains("Leaks:"), "{name}: {}", r.stdout);
    }
    // docs/abi.md §8 writes the records by hand, without the SDK: plain clang builds it.
    let dir = temp_dir("abi-example");
    std::fs::write(dir.join("suite.c"), c_block("docs/abi.md", "## 8. Example in C")).unwrap();
    let wasm = dir.join("suite.wasm");
    let status = Command::new("clang")
        .args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-o"])
        .arg(&wasm)
        .arg(dir.join("suite.c"))
        .status()
        .expect("clang runs (tests/setup.sh installs it)");
    assert!(status.success());
    let r = leakhost(["run", wasm.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{}", r.stdout);
    assert!(check(&wasm).stdout.contains("\nResult: conforms ("));
}

/// The line of `sample-tests-c/NAME/suite.c` that contains `text` (exactly one does).
fn c_line(name: &str, text: &str) -> usize {
    let source = std::fs::read_to_string(c_suite(name).join("suite.c")).unwrap();
    let found: Vec<usize> = source.lines().enumerate().filter(|(_, l)| l.contains(text)).map(|(i, _)| i + 1).collect();
    assert_eq!(found.len(), 1, "{text:?} is on exactly one line of {name}/suite.c");
    found[0]
}

/// The frames printed under `Where LAYER leaks`, every group's, in order.
fn stack_frames<'a>(stdout: &'a str, layer: &str) -> Vec<&'a str> {
    let start =
        stdout.find(&format!("  Where {layer} leaks")).unwrap_or_else(|| panic!("no stacks for {layer}:\n{stdout}"));
    stdout[start..]
        .lines()
        .skip(1)
        .take_while(|l| l.starts_with("    "))
        .filter_map(|l| l.strip_prefix("      "))
        .collect()
}

#[test]
fn c_suites_print_allocation_stacks_with_their_source_lines() {
    // The C SDK speaks ABI v1, which cannot trace: its instrumented allocator does.
    let r = run_c("leak", &["-N4", "-r"]);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let frames = stack_frames(&r.stdout, "UnitTests");
    // The entry, then what the vector that keeps it grew by (C sources relative to the suite's directory).
    let entry = format!("test_leak  suite.c:{}", c_line("leak", "entry *e = malloc(sizeof *e);"));
    let growth = format!("push  suite.c:{}", c_line("leak", "void **items = realloc(v->items, cap * sizeof *items);"));
    let pushed = format!("test_leak  suite.c:{}", c_line("leak", "LH_CHECK(push(&leaked, e));"));
    assert_eq!(frames, [entry, growth, pushed]);
    assert!(!r.stdout.contains("no allocation stacks"), "{}", r.stdout);
    // zlib's forgotten deflateEnd: deflate's state and buffers, from zlib's own allocation down to the test.
    let r = run_c("zlib", &["-N4", "-r"]);
    assert_eq!(r.status, 0, "{}\n{}", r.stdout, r.stderr);
    let frames = stack_frames(&r.stdout, "zlib.ForgottenEnd");
    let init = format!("init_deflate  suite.c:{}", c_line("zlib", "int rc = deflateInit2(s,"));
    let test = format!("test_forgets_deflate_end  suite.c:{}", c_line("zlib", "test_forgets_deflate_end(void) {"));
    // zlib's sources are those libz-sys ships: the crate and version say whose they are.
    let (zutil, deflate) = ("zcalloc  libz-sys-", "deflateInit2_  libz-sys-");
    let chain = [zutil, deflate, &init, "deflate_some  suite.c:", &test];
    let stack =
        frames.windows(5).find(|w| w[4] == test).unwrap_or_else(|| panic!("no stack ends in {test}: {frames:#?}"));
    for (frame, want) in stack.iter().zip(chain) {
        assert!(frame.starts_with(want), "{frame} is not {want}…: {stack:#?}");
    }
    assert!(stack[0].contains("/src/zlib/zutil.c:") && stack[1].contains("/src/zlib/deflate.c:"), "{stack:#?}");
}
