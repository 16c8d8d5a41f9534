//! `leakhost new`, and building the package it creates: progress lines, profiles, and build
//! errors that name the fix (issue 15), and the native-code notice (issue 10, item 9).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{cache_dir, Run};

/// A fresh, empty directory for one test.
fn empty_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-{}-new-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `leakhost` in `dir`, as a user would from there. With `target_dir`, builds share it, so
/// only the first test to build pays for compiling the SDK.
fn leakhost_in(dir: &Path, target_dir: Option<&Path>, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_leakhost"));
    command.args(args).current_dir(dir).env_remove("CARGO_TARGET_DIR").env("NO_COLOR", "1");
    command.env("LEAKHOST_CACHE_DIR", cache_dir());
    if let Some(target_dir) = target_dir {
        command.env("CARGO_TARGET_DIR", target_dir);
    }
    let out = command.output().expect("leakhost runs");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn shared_target() -> PathBuf {
    std::env::temp_dir().join(format!("leakhost-e2e-{}-new-target", std::process::id()))
}

/// `leakhost new NAME` in a fresh directory; returns the directory it ran in.
fn new_suite(name: &str) -> PathBuf {
    let dir = empty_dir(name);
    let r = leakhost_in(&dir, None, &["new", name]);
    assert_eq!(r.status, 0, "{r:#?}");
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn a_new_suite_builds_and_runs_from_an_empty_directory() {
    let dir = empty_dir("demo");
    let created = leakhost_in(&dir, None, &["new", "demo"]);
    assert_eq!(created.status, 0, "{created:#?}");
    assert_eq!(created.stdout, "Created suite demo in demo\nRun it with: leakhost run demo -N4 -r\n");
    let manifest = std::fs::read_to_string(dir.join("demo/Cargo.toml")).unwrap();
    let sdk = crate::harness::repo().join("guest-sdk").canonicalize().unwrap();
    assert!(manifest.contains(&format!("leakhost-guest = {{ path = \"{}\" }}", sdk.display())), "{manifest}");
    assert!(manifest.contains("crate-type = [\"cdylib\"]"), "{manifest}");
    assert!(std::fs::read_to_string(dir.join("demo/.gitignore")).unwrap().contains("/target"));

    let r = leakhost_in(&dir, None, &["run", "demo", "-N4", "-r"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("Running demo.Words tests:\n"), "{}", r.stdout);
    assert!(r.stdout.contains("Total: 2 tests, 0 failures, 0 errors and 0 skipped in "), "{}", r.stdout);
    assert!(!r.stdout.contains("Leaks:"), "the template leaks:\n{}", r.stdout);
    assert_eq!(r.stdout.matches("change=0").count(), 3 * 3 * 2, "{}", r.stdout);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stderr);
    assert!(lines[0].starts_with("leakhost: note: demo is not in the current workspace; building it runs its build scripts and proc-macros natively"), "{}", lines[0]);
    assert!(lines[0].contains("build it in an isolated environment and run the .wasm"), "{}", lines[0]);
    assert_eq!(lines[1], "leakhost: building demo for wasm32-wasip1 (profile release)");
    assert!(lines[2].starts_with("leakhost: built demo.wasm in ") && lines[2].ends_with(" s"), "{}", lines[2]);
}

#[test]
fn a_new_c_suite_builds_and_runs_from_an_empty_directory() {
    let dir = empty_dir("cdemo");
    let created = leakhost_in(&dir, None, &["new", "--c", "cdemo"]);
    assert_eq!(created.status, 0, "{created:#?}");
    for file in ["leakhost-c.toml", "suite.c", ".gitignore"] {
        assert!(dir.join("cdemo").join(file).is_file(), "{file} not written");
    }
    let r = leakhost_in(&dir, None, &["run", "cdemo", "-N4", "-r"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains(" 0 failures, 0 errors and 0 skipped in "), "{}", r.stdout);
    assert!(!r.stdout.contains("Leaks:"), "the template leaks:\n{}", r.stdout);
}

#[test]
fn new_refuses_what_it_cannot_create_in_one_line() {
    let dir = new_suite("taken");
    let sdk = crate::harness::repo().join("guest-sdk");
    let cases: [(&[&str], &str); 4] = [
        (&["new", "--c", "taken"], "leakhost: error: taken: already exists and is not empty"),
        (&["new", "taken"], "leakhost: error: taken: already exists and is not empty"),
        (&["new", "2fast"], "leakhost: error: \"2fast\": not a valid package name"),
        (&["new", "other", "--sdk-path", "taken"], "leakhost: error: taken: not the leakhost-guest SDK"),
    ];
    for (args, expected) in cases {
        let r = leakhost_in(&dir, None, args);
        assert_eq!(r.status, 2, "{args:?}: {r:#?}");
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with(expected), "{args:?}: {}", r.stderr);
    }
    assert!(!dir.join("other").exists() && !dir.join("csuite").exists() && !dir.join("2fast").exists());
    let given = leakhost_in(&dir, None, &["new", "given", "--name", "named", "--sdk-path", sdk.to_str().unwrap()]);
    assert_eq!(given.status, 0, "{given:#?}");
    assert!(std::fs::read_to_string(dir.join("given/Cargo.toml")).unwrap().contains("name = \"named\""));
}

#[test]
fn debug_keeps_a_leak_that_the_optimiser_removes() {
    let dir = new_suite("optdemo");
    let lib = dir.join("optdemo/src/lib.rs");
    let forgets = "#[leakhost_guest::test]\nfn forgets_a_vec() {\n    std::mem::forget(vec![0u8; 16]);\n}\n";
    std::fs::write(&lib, std::fs::read_to_string(&lib).unwrap() + forgets).unwrap();
    let target = shared_target();
    let release = leakhost_in(&dir, Some(&target), &["run", "optdemo", "-N4", "-r", "-u"]);
    assert_eq!(release.status, 0, "{release:#?}");
    assert!(!release.stdout.contains("Leaks:"), "release kept the allocation:\n{}", release.stdout);
    let debug = leakhost_in(&dir, Some(&target), &["run", "optdemo", "-N4", "-r", "-u", "--debug"]);
    assert_eq!(debug.status, 0, "{debug:#?}");
    assert!(debug.stderr.contains("leakhost: building optdemo for wasm32-wasip1 (profile dev)\n"), "{}", debug.stderr);
    assert!(
        debug
            .stdout
            .contains("UnitTests leaks: grew in 8 of 8 counted iterations: blocks +1 per iteration (net +8), bytes +16 per iteration (net +128); caused by forgets_a_vec"),
        "{}",
        debug.stdout
    );
    let named = leakhost_in(&dir, Some(&target), &["list", "optdemo", "--cargo-profile", "dev"]);
    assert_eq!(named.status, 0, "{named:#?}");
    assert!(named.stderr.contains("(profile dev)"), "{}", named.stderr);
    assert!(named.stdout.contains("  forgets_a_vec\n"), "{}", named.stdout);
}

/// Each broken package is reported with what to change, in one error line after cargo's own output.
#[test]
fn build_and_load_errors_name_the_fix() {
    let dir = new_suite("fixdemo");
    let target = shared_target();
    let manifest = dir.join("fixdemo/Cargo.toml");
    let lib = dir.join("fixdemo/src/lib.rs");
    let last_line = |r: &Run| r.stderr.lines().last().unwrap_or_default().to_string();
    let run = || leakhost_in(&dir, Some(&target), &["run", "fixdemo"]);

    edit(&manifest, "crate-type = [\"cdylib\"]", "crate-type = [\"rlib\"]");
    let r = run();
    assert_eq!(r.status, 2, "{r:#?}");
    assert!(last_line(&r).contains("add `crate-type = [\"cdylib\"]` under [lib] in "), "{}", r.stderr);
    edit(&manifest, "crate-type = [\"rlib\"]", "crate-type = [\"cdylib\"]");

    edit(&lib, "leakhost_guest::suite!();", "");
    let r = run();
    assert_eq!(r.status, 2, "{r:#?}");
    assert!(last_line(&r).contains("needs `leakhost_guest::suite!();` at its crate root"), "{}", r.stderr);
    std::fs::write(&lib, std::fs::read_to_string(&lib).unwrap() + "leakhost_guest::suite!();\n").unwrap();

    edit(&lib, "#[leakhost_guest::test]", "#[allow(dead_code)]");
    edit(&lib, "#[leakhost_guest::test(layer = Words)]", "#[allow(dead_code)]");
    let r = run();
    assert_eq!(r.status, 2, "{r:#?}");
    assert!(
        last_line(&r).contains("the suite registers no tests; mark functions with #[leakhost_guest::test]"),
        "{}",
        r.stderr
    );

    let misused = "#[leakhost_guest::test]\nfn takes_a_number(_n: u32) {}\n\
                   #[leakhost_guest::test(layr = Words)]\nfn misspelt() {}\nleakhost_guest::suite!();\n";
    std::fs::write(&lib, misused).unwrap();
    let r = run();
    assert_eq!(r.status, 2, "{r:#?}");
    assert!(r.stderr.contains("fn takes_a_number: parameters are layer states, `&T` or `&mut T`"), "{}", r.stderr);
    assert!(r.stderr.contains("unknown argument `layr`"), "{}", r.stderr);

    std::fs::write(&lib, "fn broken() -> u32 { \"text\" }\n").unwrap();
    let r = run();
    assert_eq!(r.status, 2, "{r:#?}");
    assert!(r.stderr.contains("error[E0308]: mismatched types"), "cargo's errors are not shown:\n{}", r.stderr);
    assert!(
        last_line(&r).ends_with("building the suite failed: cargo exited with status 101; its errors are above"),
        "{}",
        r.stderr
    );
}

/// Issue 10, item 9: `run --help` says where the sandbox ends, and a suite of the workspace the user
/// is in builds without the note (it is the user's own code).
#[test]
fn help_and_the_note_say_that_builds_run_natively() {
    let help = leakhost_in(&crate::harness::repo(), None, &["run", "--help"]);
    assert_eq!(help.status, 0, "{help:#?}");
    let flat = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Building runs the package's build scripts and proc-macros natively, outside the sandbox"),
        "{flat}"
    );
    assert!(flat.contains("build it in an isolated environment and run the .wasm"), "{flat}");
    assert!(flat.contains("--cargo-profile <NAME>") && flat.contains("--debug"), "{flat}");

    crate::harness::suite("samplelayers"); // built once by the harness, so this only checks freshness
    let member = leakhost_in(&crate::harness::repo().join("sample-tests"), None, &["list", "samplelayers"]);
    assert_eq!(member.status, 0, "{member:#?}");
    assert!(!member.stderr.contains("note:"), "{}", member.stderr);
    assert!(
        member.stderr.starts_with("leakhost: building samplelayers for wasm32-wasip1 (profile release)\n"),
        "{}",
        member.stderr
    );
}
