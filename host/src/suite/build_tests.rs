//! The tests a package already has: for a Cargo package that does not depend on the
//! SDK, `leakhost run DIR` builds them as `cargo test --no-run --target wasm32-wasip1`
//! does, and every test binary it produced (the library's unit tests, each integration
//! test, each binary's unit tests) becomes a suite (`run::bare` runs them).
//!
//! Building runs build scripts and proc-macros natively, as a suite's build does; the
//! same notice says so for a package outside the current workspace.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::build::{
    cargo_in, native_code_notice, resolve, run_cargo, target_missing, wasm_target_installed, BuildOptions,
};
use super::SuiteError;

/// The SDK's crate: a package that depends on it is a suite, built as a cdylib.
const SDK_CRATE: &str = "leakhost-guest";

/// A module to load, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The `.wasm` file.
    pub path: PathBuf,
    /// It is one of the test binaries a package directory was built into (one without
    /// tests is then skipped rather than refused).
    pub built_test: bool,
}

/// Turns a target into the modules to load: a package's test binaries when it does not
/// depend on the SDK, else the one module [`resolve`] gives.
pub fn resolve_all(target: &Path, options: &BuildOptions) -> Result<Vec<Resolved>, SuiteError> {
    let manifest = target.join("Cargo.toml");
    if target.is_dir() && !super::build_c::is_c_suite(target) && manifest.is_file() && !uses_sdk(&manifest)? {
        return build_tests(target, &manifest, options);
    }
    Ok(vec![Resolved { path: resolve(target, options)?, built_test: false }])
}

/// Whether the package's manifest depends on the SDK (in `[dependencies]` or a
/// target's, under its own name or renamed). A virtual manifest does not.
fn uses_sdk(manifest: &Path) -> Result<bool, SuiteError> {
    let text =
        std::fs::read_to_string(manifest).map_err(|source| SuiteError::Read { path: manifest.into(), source })?;
    let build_error = |why: String| SuiteError::Build { dir: manifest.parent().unwrap_or(manifest).into(), why };
    let doc: toml::Table = text.parse().map_err(|e| build_error(format!("{}: {e}", manifest.display())))?;
    if !doc.contains_key("package") {
        // A virtual workspace: `resolve` says what to give instead.
        return Ok(true);
    }
    let depends = |table: Option<&toml::Value>| {
        table.and_then(toml::Value::as_table).is_some_and(|deps| {
            deps.iter().any(|(name, spec)| {
                name == SDK_CRATE || spec.get("package").and_then(|p| p.as_str()) == Some(SDK_CRATE)
            })
        })
    };
    let targets = doc.get("target").and_then(toml::Value::as_table);
    Ok(depends(doc.get("dependencies")) || targets.into_iter().flatten().any(|(_, t)| depends(t.get("dependencies"))))
}

/// `cargo test --no-run` for wasm32-wasip1 (the dev profile unless the options name
/// another), and the test binaries it built, in a stable order.
fn build_tests(dir: &Path, manifest: &Path, options: &BuildOptions) -> Result<Vec<Resolved>, SuiteError> {
    if !wasm_target_installed(dir) {
        return Err(target_missing(dir));
    }
    let build_error = |why: String| SuiteError::Build { dir: dir.to_path_buf(), why };
    let manifest = manifest.canonicalize().map_err(|e| build_error(e.to_string()))?;
    let mut stderr = std::io::stderr();
    if let Some(notice) = native_code_notice(dir, &manifest) {
        let _ = writeln!(stderr, "{notice}");
    }
    let profile = options.profile.as_deref().unwrap_or("dev");
    let _ = writeln!(stderr, "leakhost: building the tests of {} for wasm32-wasip1 (profile {profile})", dir.display());
    // In the package, so its own toolchain and cargo configuration apply.
    let mut command = cargo_in(manifest.parent().unwrap_or(dir));
    command.args(["test", "--no-run", "--target", "wasm32-wasip1", "--profile", profile]);
    let started = Instant::now();
    let output = run_cargo(command, &manifest).map_err(build_error)?;
    let binaries = test_binaries(&String::from_utf8_lossy(&output.stdout), &manifest);
    if binaries.is_empty() {
        return Err(build_error(
            "cargo built no test binary (does the package have a library, binaries or tests?)".into(),
        ));
    }
    let _ = writeln!(
        stderr,
        "leakhost: built {} test binaries in {:.2} s",
        binaries.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(binaries.into_iter().map(|path| Resolved { path, built_test: true }).collect())
}

/// The test binaries of the package among cargo's JSON messages: the library's first,
/// then its binaries', then its integration tests, each kind by name.
fn test_binaries(messages: &str, manifest: &Path) -> Vec<PathBuf> {
    let rank = |kind: &str| match kind {
        "lib" | "rlib" | "cdylib" | "dylib" | "staticlib" | "proc-macro" => 0,
        "bin" => 1,
        "test" => 2,
        _ => 3,
    };
    let mut found: Vec<(usize, String, PathBuf)> = messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["profile"]["test"] == true)
        .filter(|msg| msg["manifest_path"].as_str().map(Path::new) == Some(manifest))
        .filter_map(|msg| {
            let executable = PathBuf::from(msg["executable"].as_str()?);
            let kind = msg["target"]["kind"].as_array()?.first()?.as_str()?.to_string();
            let name = msg["target"]["name"].as_str()?.to_string();
            Some((rank(&kind), name, executable))
        })
        .collect();
    found.sort();
    found.dedup_by(|a, b| a.2 == b.2);
    found.into_iter().map(|(_, _, path)| path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(manifest: &str, kind: &str, name: &str, test: bool, exe: Option<&str>) -> String {
        serde_json::json!({
            "reason": "compiler-artifact",
            "manifest_path": manifest,
            "target": { "kind": [kind], "name": name },
            "profile": { "test": test },
            "executable": exe,
        })
        .to_string()
    }

    #[test]
    fn the_test_binaries_of_the_package_are_found_in_a_stable_order() {
        let messages = [
            artifact("/p/Cargo.toml", "test", "zeta", true, Some("/t/zeta-1.wasm")),
            artifact("/dep/Cargo.toml", "lib", "dep", true, Some("/t/dep-9.wasm")),
            artifact("/p/Cargo.toml", "lib", "p", false, None),
            artifact("/p/Cargo.toml", "test", "alpha", true, Some("/t/alpha-2.wasm")),
            artifact("/p/Cargo.toml", "lib", "p", true, Some("/t/p-3.wasm")),
            "not json".to_string(),
        ]
        .join("\n");
        let found = test_binaries(&messages, Path::new("/p/Cargo.toml"));
        assert_eq!(found, ["/t/p-3.wasm", "/t/alpha-2.wasm", "/t/zeta-1.wasm"].map(PathBuf::from));
    }

    #[test]
    fn a_package_uses_the_sdk_by_name_renamed_or_per_target() {
        let dir = std::env::temp_dir().join(format!("leakhost-uses-sdk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("Cargo.toml");
        for (text, uses) in [
            ("[package]\nname = \"a\"\n[dependencies]\nslab = \"0.4\"\n", false),
            ("[package]\nname = \"a\"\n[dependencies]\nleakhost-guest = { path = \"x\" }\n", true),
            ("[package]\nname = \"a\"\n[dependencies]\nlg = { package = \"leakhost-guest\", path = \"x\" }\n", true),
            ("[package]\nname = \"a\"\n[target.'cfg(target_os = \"wasi\")'.dependencies]\nleakhost-guest = \"0.1\"\n", true),
            ("[package]\nname = \"a\"\n[dev-dependencies]\nleakhost-guest = \"0.1\"\n", false),
            ("[workspace]\nmembers = [\"a\"]\n", true),
        ] {
            std::fs::write(&manifest, text).unwrap();
            assert_eq!(uses_sdk(&manifest).unwrap(), uses, "{text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
