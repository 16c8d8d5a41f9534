//! Turning a target into a `.wasm` file: a file is taken as it is, a Cargo package
//! directory is built for wasm32-wasip1 first.
//!
//! cargo runs in the package's directory, as the user would run it there, so that the package's
//! `rust-toolchain.toml` and `.cargo/config.toml` apply. Building runs the package's build scripts
//! and proc-macros (and those of its dependencies) on the host, outside the sandbox; a one-line
//! notice says so, once per machine, when the package is not part of the workspace the user is
//! working in.

mod shape;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::{SuiteError, CACHE_DIR_ENV};

/// How package directories are built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    /// The cargo profile; `None` means `release`.
    pub profile: Option<String>,
    /// Whether a C suite may pass flags that make clang or wasm-ld run other programs.
    pub allow_native_flags: bool,
}

impl BuildOptions {
    /// The profile cargo is asked for.
    pub fn profile(&self) -> &str {
        self.profile.as_deref().unwrap_or("release")
    }
}

/// Turns a target into a `.wasm` path, building a package directory first.
pub fn resolve(target: &Path, options: &BuildOptions) -> Result<PathBuf, SuiteError> {
    let meta = std::fs::metadata(target).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SuiteError::NotFound(target.to_path_buf()),
        _ => SuiteError::Read { path: target.to_path_buf(), source },
    })?;
    if !meta.is_dir() {
        return Ok(target.to_path_buf());
    }
    if super::build_c::is_c_suite(target) {
        let why = |e: super::build_c::CBuildError| SuiteError::Build { dir: target.to_path_buf(), why: e.to_string() };
        return super::build_c::build(target, options.allow_native_flags).map_err(why);
    }
    let manifest = target.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(SuiteError::NotAPackage(target.to_path_buf()));
    }
    build_package(target, &manifest, options)
}

/// The toolchain file that governs `dir` for rustup, in it or in a directory above.
fn toolchain_file(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().flat_map(|d| ["rust-toolchain.toml", "rust-toolchain"].map(|f| d.join(f))).find(|f| f.is_file())
}

/// Whether the user chose the toolchain leakhost runs under (`cargo +nightly run`,
/// `RUSTUP_TOOLCHAIN=...`): rustup says why it picked it. Without rustup's word, a
/// `RUSTUP_TOOLCHAIN` in the environment was set by the user.
fn toolchain_chosen_by_user() -> bool {
    match std::env::var("RUSTUP_TOOLCHAIN_SOURCE") {
        Ok(source) => source == "cli" || source == "env",
        Err(_) => std::env::var_os("RUSTUP_TOOLCHAIN").is_some(),
    }
}

/// `cargo` or `rustc` as it runs in `dir`: there, so that the package's `.cargo/config.toml`
/// applies; and, when a toolchain file governs `dir`, through rustup's proxy on PATH, without
/// the toolchain leakhost was started under (`cargo run` passes its own), so the file picks it.
fn tool(name: &str, env_var: &str, dir: &Path) -> Command {
    let pinned = toolchain_file(dir).is_some();
    let program = match pinned {
        true => name.into(),
        false => std::env::var_os(env_var).unwrap_or_else(|| name.into()),
    };
    let mut command = Command::new(program);
    command.current_dir(dir);
    if pinned && !toolchain_chosen_by_user() {
        command.env_remove("RUSTUP_TOOLCHAIN");
    }
    command
}

pub(super) fn cargo_in(dir: &Path) -> Command {
    tool("cargo", "CARGO", dir)
}

/// Whether the toolchain that builds `dir` has the wasm32-wasip1 standard library.
pub(super) fn wasm_target_installed(dir: &Path) -> bool {
    let Ok(out) = tool("rustc", "RUSTC", dir).args(["--print", "sysroot"]).stderr(Stdio::null()).output() else {
        return true; // Let cargo report whatever is wrong with the toolchain.
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    sysroot.is_empty() || Path::new(&sysroot).join("lib/rustlib/wasm32-wasip1").is_dir()
}

/// The root manifest of the workspace `manifest` belongs to (of the current directory's
/// workspace when `None`), as cargo sees it; `None` when there is none.
fn workspace_root(manifest: Option<&Path>) -> Option<PathBuf> {
    let mut command = match manifest.and_then(Path::parent) {
        Some(dir) => cargo_in(dir),
        None => Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())),
    };
    command.args(["locate-project", "--workspace", "--message-format", "plain"]);
    if let Some(manifest) = manifest {
        command.arg("--manifest-path").arg(manifest);
    }
    let out = command.stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    let root = String::from_utf8(out.stdout).ok()?;
    out.status.success().then(|| PathBuf::from(root.trim())).and_then(|p| p.canonicalize().ok())
}

/// Issue 10, item 9: building runs native code, and a package from elsewhere is the case where
/// the user may not have read it. Said once per package directory and machine (issue 27): a
/// note on every run stops being read.
/// Runs a `cargo build`-like `command` on `manifest` with JSON messages on stdout: cargo's own
/// progress on a terminal, else its output kept and shown only when it fails, so its errors are
/// always cargo's own. `Err` is why it failed, one clause.
pub(super) fn run_cargo(mut command: Command, manifest: &Path) -> Result<std::process::Output, String> {
    let terminal = std::io::stderr().is_terminal();
    command
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    if terminal {
        command.stderr(Stdio::inherit());
    } else {
        command.arg("--quiet").stderr(Stdio::piped());
    }
    let output = command.output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let _ = std::io::stderr().write_all(&output.stderr);
        let code = output.status.code().map_or_else(|| output.status.to_string(), |c| format!("status {c}"));
        return Err(format!("cargo exited with {code}; its errors are above"));
    }
    Ok(output)
}

/// The wasm32-wasip1 target is missing from the toolchain that builds `package`: the command that adds it.
pub(super) fn target_missing(package: &Path) -> SuiteError {
    // rustup adds a target to the toolchain of the directory it runs in.
    let fix = match toolchain_file(package) {
        Some(file) => format!("cd {} && rustup target add wasm32-wasip1", file.parent().unwrap_or(package).display()),
        None => "rustup target add wasm32-wasip1".to_string(),
    };
    SuiteError::TargetMissing(fix)
}

pub(super) fn native_code_notice(dir: &Path, manifest: &Path) -> Option<String> {
    let target = workspace_root(Some(manifest));
    if target.is_some() && target == workspace_root(None) {
        return None;
    }
    if !first_notice(manifest) {
        return None;
    }
    Some(format!(
        "leakhost: note: {} is not in the current workspace; building it runs its build scripts and \
         proc-macros natively, outside the sandbox. For a suite you do not trust, build it in an isolated \
         environment and run the .wasm (this note is shown once per package directory)",
        dir.display()
    ))
}

/// Whether the note for the package of `manifest` (canonical) is due: leakhost keeps an empty
/// marker per package directory beside its module cache. When the marker cannot be kept, the
/// note is shown every time rather than never.
fn first_notice(manifest: &Path) -> bool {
    let root = std::env::var_os(CACHE_DIR_ENV)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("leakhost")));
    let Some(notes) = root.map(|r| r.join("notes")) else { return true };
    let marker = notes.join(blake3::hash(manifest.as_os_str().as_encoded_bytes()).to_hex().as_str());
    if marker.exists() {
        return false;
    }
    let _ = std::fs::create_dir_all(&notes);
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).open(&marker);
    true
}

/// Builds the package for wasm32-wasip1 with the chosen profile and returns its cdylib.
fn build_package(dir: &Path, manifest: &Path, options: &BuildOptions) -> Result<PathBuf, SuiteError> {
    let build_error = |why: String| SuiteError::Build { dir: dir.to_path_buf(), why };
    let manifest = manifest.canonicalize().map_err(|e| build_error(e.to_string()))?;
    let package = manifest.parent().unwrap_or(dir);
    shape::check(package, &manifest).map_err(build_error)?;
    if !wasm_target_installed(package) {
        return Err(target_missing(package));
    }
    let mut stderr = std::io::stderr();
    if let Some(notice) = native_code_notice(dir, &manifest) {
        let _ = writeln!(stderr, "{notice}");
    }
    let profile = options.profile();
    let _ = writeln!(stderr, "leakhost: building {} for wasm32-wasip1 (profile {profile})", dir.display());
    // On a terminal cargo draws its own progress; elsewhere its output is kept and shown only
    // when the build fails, so logs stay short and errors are still cargo's own.
    let mut command = cargo_in(package);
    command.args(["build", "--target", "wasm32-wasip1", "--profile", profile]);
    let started = Instant::now();
    let output = run_cargo(command, &manifest).map_err(build_error)?;
    let wasm = find_artifact(&String::from_utf8_lossy(&output.stdout), &manifest).map_err(build_error)?;
    let name = wasm.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let _ = writeln!(stderr, "leakhost: built {name} in {:.2} s", started.elapsed().as_secs_f64());
    Ok(wasm)
}

/// The package's `.wasm` among cargo's JSON messages, or what to change when there is none
/// (`shape::check` has refused most such packages before the build).
fn find_artifact(messages: &str, manifest: &Path) -> Result<PathBuf, String> {
    let own: Vec<serde_json::Value> = messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| msg["manifest_path"].as_str().map(Path::new) == Some(manifest))
        .collect();
    let strings = |value: &serde_json::Value| -> Vec<String> {
        value.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(String::from)).collect()
    };
    let wasm = own
        .iter()
        .flat_map(|msg| strings(&msg["filenames"]))
        .map(PathBuf::from)
        .find(|f| f.extension().is_some_and(|e| e == "wasm"));
    if let Some(wasm) = wasm {
        return Ok(wasm);
    }
    let has_lib = own.iter().any(|msg| strings(&msg["target"]["kind"]).iter().any(|k| k.contains("lib")));
    Err(if own.is_empty() {
        format!(
            "{} built no package of its own (a virtual workspace?); give the suite's package directory",
            manifest.display()
        )
    } else if has_lib {
        format!(
            "the library is not a cdylib, so no .wasm was built; add `crate-type = [\"cdylib\"]` under [lib] in {}",
            manifest.display()
        )
    } else {
        format!(
            "the package has no library, so no .wasm was built; a suite is a cdylib: add src/lib.rs and \
             `[lib] crate-type = [\"cdylib\"]` to {}",
            manifest.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(manifest: &str, kind: &str, file: &str) -> String {
        serde_json::json!({
            "reason": "compiler-artifact",
            "manifest_path": manifest,
            "target": { "kind": [kind] },
            "filenames": [file],
        })
        .to_string()
    }

    #[test]
    fn the_wasm_of_the_package_is_found_among_its_dependencies() {
        let messages = [
            artifact("/dep/Cargo.toml", "lib", "/t/libdep.rlib"),
            "not json".into(),
            artifact("/s/Cargo.toml", "cdylib", "/t/s.wasm"),
        ]
        .join("\n");
        assert_eq!(find_artifact(&messages, Path::new("/s/Cargo.toml")), Ok(PathBuf::from("/t/s.wasm")));
    }

    #[test]
    fn a_missing_cdylib_names_the_line_to_add() {
        let rlib = artifact("/s/Cargo.toml", "lib", "/t/libs.rlib");
        let why = find_artifact(&rlib, Path::new("/s/Cargo.toml")).unwrap_err();
        assert!(why.contains("add `crate-type = [\"cdylib\"]` under [lib] in /s/Cargo.toml"), "{why}");
        let bin = artifact("/s/Cargo.toml", "bin", "/t/s");
        let why = find_artifact(&bin, Path::new("/s/Cargo.toml")).unwrap_err();
        assert!(why.contains("has no library"), "{why}");
        let why = find_artifact("", Path::new("/s/Cargo.toml")).unwrap_err();
        assert!(why.contains("virtual workspace"), "{why}");
    }

    #[test]
    fn the_default_profile_is_release() {
        assert_eq!(BuildOptions::default().profile(), "release");
        assert_eq!(BuildOptions { profile: Some("dev".into()), ..BuildOptions::default() }.profile(), "dev");
    }
}
