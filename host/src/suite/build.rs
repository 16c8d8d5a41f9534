//! Turning a target into a `.wasm` file: a file is taken as it is, a Cargo package
//! directory is built for wasm32-wasip1 first.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::SuiteError;

/// Turns a target into a `.wasm` path, building a package directory first.
pub fn resolve(target: &Path) -> Result<PathBuf, SuiteError> {
    let meta = std::fs::metadata(target).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => SuiteError::NotFound(target.to_path_buf()),
        _ => SuiteError::Read { path: target.to_path_buf(), source },
    })?;
    if !meta.is_dir() {
        return Ok(target.to_path_buf());
    }
    if super::build_c::is_c_suite(target) {
        let why = |e: super::build_c::CBuildError| SuiteError::Build { dir: target.to_path_buf(), why: e.to_string() };
        return super::build_c::build(target).map_err(why);
    }
    let manifest = target.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(SuiteError::NotAPackage(target.to_path_buf()));
    }
    build_package(target, &manifest)
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn wasm_target_installed() -> bool {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).args(["--print", "sysroot"]).output() else {
        return true; // Let cargo report whatever is wrong with the toolchain.
    };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    sysroot.is_empty() || Path::new(&sysroot).join("lib/rustlib/wasm32-wasip1").is_dir()
}

/// Builds the package in release mode for wasm32-wasip1 and returns its cdylib.
fn build_package(dir: &Path, manifest: &Path) -> Result<PathBuf, SuiteError> {
    if !wasm_target_installed() {
        return Err(SuiteError::TargetMissing);
    }
    let build_error = |why: String| SuiteError::Build { dir: dir.to_path_buf(), why };
    let manifest = manifest.canonicalize().map_err(|e| build_error(e.to_string()))?;
    let output = cargo()
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--quiet",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| build_error(format!("cannot run cargo: {e}")))?;
    if !output.status.success() {
        return Err(build_error(format!("cargo exited with {}", output.status)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut artifacts = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| msg["manifest_path"].as_str().map(Path::new) == Some(manifest.as_path()))
        .flat_map(|msg| {
            msg["filenames"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|f| f.as_str().map(PathBuf::from))
        })
        .filter(|f| f.extension().is_some_and(|e| e == "wasm"));
    artifacts.next().ok_or_else(|| build_error("the package built no .wasm (is it a cdylib?)".into()))
}
