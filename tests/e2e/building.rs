//! Building a package directory as the user would build it there (issue 27): cargo runs in the
//! package, so its `rust-toolchain.toml` and `.cargo/config.toml` apply wherever leakhost is
//! started; the package's shape is checked before anything compiles; a binary suite works; the
//! native-code note is shown once per package directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{repo, Run};

/// A fresh directory for one test.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-{}-building-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A suite package `name` in `parent`: `files` are (path, text), `Cargo.toml` among them or the
/// template's (a cdylib depending on the SDK by path).
fn package(parent: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = parent.join(name);
    let sdk = repo().join("guest-sdk");
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n\
         [dependencies]\nleakhost-guest = {{ path = \"{}\" }}\n\n[workspace]\n",
        sdk.display()
    );
    for (path, text) in [("Cargo.toml", manifest.as_str())].into_iter().chain(files.iter().copied()) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

const LIB: &str =
    "#[leakhost_guest::test]\nfn adds() {\n    leakhost_guest::check_eq!(1 + 1, 2);\n}\n\nleakhost_guest::suite!();\n";

/// Runs leakhost from `cwd`, elsewhere than the package, with builds sharing one target directory
/// (the SDK compiles once) and the notes of `cache`.
fn leakhost_from(cwd: &Path, cache: &Path, args: &[&str]) -> Run {
    let target = std::env::temp_dir().join(format!("leakhost-e2e-{}-building-target", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_leakhost"))
        .args(args)
        .current_dir(cwd)
        .env("CARGO_TARGET_DIR", target)
        .env("NO_COLOR", "1")
        .env("LEAKHOST_CACHE_DIR", cache)
        .env("LEAKHOST_CACHE_KEY", crate::harness::cache_key())
        .output()
        .expect("leakhost runs");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The cache directory of one test, made as leakhost requires (the user's alone).
fn cache(dir: &Path) -> PathBuf {
    let cache = dir.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    cache
}

/// A toolchain for rustup (`[toolchain] path = ...`) whose cargo and rustc log their calls to
/// `log` and hand over to the toolchain the tests run with.
fn logging_toolchain(dir: &Path, log: &Path) -> PathBuf {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output().expect("rustc runs").stdout;
    let sysroot = String::from_utf8(sysroot).unwrap().trim().to_string();
    let toolchain = dir.join("logging-toolchain");
    std::fs::create_dir_all(toolchain.join("bin")).unwrap();
    for tool in ["cargo", "rustc"] {
        let script =
            format!("#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexec '{sysroot}/bin/{tool}' \"$@\"\n", log.display());
        let path = toolchain.join("bin").join(tool);
        std::fs::write(&path, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    toolchain
}

#[test]
fn the_suites_rust_toolchain_file_picks_the_toolchain_wherever_leakhost_starts() {
    if Command::new("rustup").arg("--version").output().is_err() {
        eprintln!("skipped: rust-toolchain.toml is rustup's, and rustup is not installed");
        return;
    }
    let dir = fresh_dir("toolchain");
    let log = dir.join("calls.log");
    let toolchain = logging_toolchain(&dir, &log);
    let pinned = format!("[toolchain]\npath = \"{}\"\n", toolchain.display());
    package(&dir, "pinned", &[("src/lib.rs", LIB), ("rust-toolchain.toml", &pinned)]);
    // Started from elsewhere, as from `cargo run` (which passes its own toolchain on to leakhost).
    let elsewhere = fresh_dir("toolchain-elsewhere");
    let r = leakhost_from(&elsewhere, &cache(&dir), &["list", dir.join("pinned").to_str().unwrap()]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert_eq!(r.stdout, "Listing UnitTests tests:\n  adds\n");
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(calls.lines().any(|l| l.starts_with("cargo build --target wasm32-wasip1 ")), "{calls}");
    assert!(calls.lines().any(|l| l == "rustc --print sysroot"), "the target check used another toolchain: {calls}");
}

#[test]
fn the_suites_cargo_config_applies() {
    let dir = fresh_dir("config");
    let lib = "#[leakhost_guest::test]\nfn configured() {\n    leakhost_guest::check_eq!(env!(\"SUITE_MARK\"), \"from config\");\n}\n\nleakhost_guest::suite!();\n";
    let config = "[env]\nSUITE_MARK = \"from config\"\n";
    package(&dir, "configured", &[("src/lib.rs", lib), (".cargo/config.toml", config)]);
    let r = leakhost_from(&dir, &cache(&dir), &["run", "configured"]);
    // Without the package's [env], env!() does not compile.
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stdout.contains("Ran 1 tests with 0 failures"), "{}", r.stdout);
}

#[test]
fn the_shape_is_checked_before_anything_compiles() {
    let dir = fresh_dir("shape");
    // A dependency that cannot compile: were it built first, its error would come first.
    let dep = "[package]\nname = \"broken-dep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n";
    package(
        &dir,
        "broken-dep",
        &[("Cargo.toml", dep), ("src/lib.rs", "compile_error!(\"built before the check\");\n")],
    );
    // A suite (it depends on the SDK) whose library is not a cdylib. (Without the SDK it would be a
    // crate whose own tests leakhost runs.)
    let manifest = format!(
        "[package]\nname = \"plain\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
         broken-dep = {{ path = \"../broken-dep\" }}\nleakhost-guest = {{ path = \"{}\" }}\n\n[workspace]\n",
        repo().join("guest-sdk").display()
    );
    package(&dir, "plain", &[("Cargo.toml", manifest.as_str()), ("src/lib.rs", LIB)]);
    let r = leakhost_from(&dir, &cache(&dir), &["run", "plain"]);
    assert_eq!(r.status, 2, "{r:#?}");
    let manifest_path = dir.join("plain/Cargo.toml").canonicalize().unwrap();
    assert_eq!(
        r.stderr,
        format!(
            "leakhost: error: plain: building the suite failed: the library is not a cdylib, so it would build no \
             .wasm; add `crate-type = [\"cdylib\"]` under [lib] in {}\n",
            manifest_path.display()
        )
    );
}

#[test]
fn a_binary_suite_builds_and_runs() {
    let dir = fresh_dir("bin");
    let sdk = repo().join("guest-sdk");
    let manifest = format!(
        "[package]\nname = \"binsuite\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nleakhost-guest = {{ path = \"{}\" }}\n\n[workspace]\n",
        sdk.display()
    );
    let main = format!("{LIB}\nfn main() {{}}\n");
    package(&dir, "binsuite", &[("Cargo.toml", &manifest), ("src/main.rs", &main)]);
    let r = leakhost_from(&dir, &cache(&dir), &["run", "binsuite", "-N3", "-r"]);
    assert_eq!(r.status, 0, "{r:#?}");
    assert!(r.stderr.contains("leakhost: built binsuite.wasm in "), "{}", r.stderr);
    let out = crate::harness::normalise_times(&r.stdout);
    assert!(
        out.contains("Iteration 3\n  Ran 1 tests with 0 failures, 0 errors and 0 skipped in N.NNN seconds.\n"),
        "{out}"
    );
    assert_eq!(out.matches("change=0").count(), 2 * 3, "{out}");
}

#[test]
fn the_native_code_note_is_shown_once_per_package_directory() {
    let dir = fresh_dir("note");
    package(&dir, "noted", &[("src/lib.rs", LIB)]);
    let cache = cache(&dir);
    let notes = |r: &Run| r.stderr.lines().filter(|l| l.starts_with("leakhost: note: ")).count();
    let first = leakhost_from(&dir, &cache, &["list", "noted"]);
    assert_eq!(first.status, 0, "{first:#?}");
    assert_eq!(notes(&first), 1, "{}", first.stderr);
    assert!(first.stderr.contains("(this note is shown once per package directory)"), "{}", first.stderr);
    let second = leakhost_from(&dir, &cache, &["list", "noted"]);
    assert_eq!((second.status, notes(&second)), (0, 0), "{}", second.stderr);
    // Another machine (here: another cache directory) is told again.
    let other = leakhost_from(&dir, &self::cache(&dir.join("other")), &["list", "noted"]);
    assert_eq!(notes(&other), 1, "{}", other.stderr);
}
