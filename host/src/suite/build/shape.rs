//! Whether a package can be a suite, read from its `Cargo.toml` before anything is compiled:
//! a wrong shape is found in a second, not after the whole dependency tree has built.
//!
//! Accepted shapes (README, "Suite shapes"): a library with `crate-type = ["cdylib"]` (what
//! `leakhost new` writes), or a binary (`src/main.rs` or a `[[bin]]`) that calls
//! `leakhost_guest::suite!()`, whose `.wasm` exports the same functions.

use std::path::Path;

/// Why a package cannot be a suite, with what to change.
pub(super) fn check(dir: &Path, manifest: &Path) -> Result<(), String> {
    // A manifest cargo cannot read either is left to cargo, whose message is the better one.
    let Some(table) = std::fs::read_to_string(manifest).ok().and_then(|t| t.parse::<toml::Table>().ok()) else {
        return Ok(());
    };
    let shape = Shape::of(dir, &table);
    if !shape.package {
        return Err(format!(
            "{} has no [package] (a virtual workspace?); give the suite's package directory",
            manifest.display()
        ));
    }
    match (shape.lib, shape.cdylib, shape.bin) {
        (_, true, _) | (_, _, true) => Ok(()),
        (true, false, false) => Err(format!(
            "the library is not a cdylib, so it would build no .wasm; add `crate-type = [\"cdylib\"]` under [lib] in {}",
            manifest.display()
        )),
        (false, _, false) => Err(format!(
            "the package has no library and no binary; a suite is a cdylib: add src/lib.rs and \
             `[lib] crate-type = [\"cdylib\"]` to {}",
            manifest.display()
        )),
    }
}

/// What the manifest and the files beside it declare.
struct Shape {
    package: bool,
    lib: bool,
    cdylib: bool,
    bin: bool,
}

impl Shape {
    fn of(dir: &Path, table: &toml::Table) -> Shape {
        let package = table.get("package").and_then(toml::Value::as_table);
        // cargo's target auto-discovery, unless the manifest turns it off.
        let auto = |key: &str| package.and_then(|p| p.get(key)).and_then(toml::Value::as_bool).unwrap_or(true);
        let lib_table = table.get("lib").and_then(toml::Value::as_table);
        let crate_types: Vec<&str> = lib_table
            .and_then(|lib| lib.get("crate-type").or_else(|| lib.get("crate_type")))
            .and_then(toml::Value::as_array)
            .map(|types| types.iter().filter_map(toml::Value::as_str).collect())
            .unwrap_or_default();
        let lib = lib_table.is_some() || (auto("autolib") && dir.join("src/lib.rs").is_file());
        let declared_bins = table.get("bin").and_then(toml::Value::as_array).is_some_and(|bins| !bins.is_empty());
        let found_bins = auto("autobins") && (dir.join("src/main.rs").is_file() || dir.join("src/bin").is_dir());
        Shape {
            package: package.is_some(),
            lib,
            cdylib: lib && crate_types.contains(&"cdylib"),
            bin: declared_bins || found_bins,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A package directory with `manifest` and the source files named.
    fn package(name: &str, manifest: &str, files: &[&str]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("leakhost-shape-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::write(
            dir.join("Cargo.toml"),
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n{manifest}"),
        )
        .unwrap();
        for file in files {
            std::fs::write(dir.join(file), "").unwrap();
        }
        dir
    }

    fn shape(name: &str, manifest: &str, files: &[&str]) -> Result<(), String> {
        let dir = package(name, manifest, files);
        let result = check(&dir, &dir.join("Cargo.toml"));
        std::fs::remove_dir_all(&dir).unwrap();
        result
    }

    #[test]
    fn a_cdylib_or_a_binary_is_a_suite() {
        assert_eq!(shape("cdylib", "[lib]\ncrate-type = [\"cdylib\"]\n", &["src/lib.rs"]), Ok(()));
        assert_eq!(shape("both", "[lib]\ncrate-type = [\"rlib\", \"cdylib\"]\n", &["src/lib.rs"]), Ok(()));
        assert_eq!(shape("main", "", &["src/main.rs"]), Ok(()));
        assert_eq!(shape("binlist", "[[bin]]\nname = \"s\"\npath = \"s.rs\"\n", &[]), Ok(()));
        assert_eq!(shape("lib_and_main", "", &["src/lib.rs", "src/main.rs"]), Ok(()));
    }

    #[test]
    fn a_plain_library_is_told_the_line_to_add() {
        let why = shape("rlib", "", &["src/lib.rs"]).unwrap_err();
        assert!(why.starts_with("the library is not a cdylib, so it would build no .wasm; add `crate-type = [\"cdylib\"]` under [lib] in "), "{why}");
        let why = shape("rlib2", "[lib]\ncrate-type = [\"rlib\"]\n", &["src/lib.rs"]).unwrap_err();
        assert!(why.contains("add `crate-type = [\"cdylib\"]`"), "{why}");
        // A plain library beside a binary is a binary suite; with autobins off there is no binary.
        assert_eq!(shape("withbin", "[lib]\n", &["src/lib.rs", "src/main.rs"]), Ok(()));
        let why = shape("nobins", "autobins = false\n[lib]\n", &["src/lib.rs", "src/main.rs"]).unwrap_err();
        assert!(why.contains("add `crate-type = [\"cdylib\"]`"), "{why}");
    }

    #[test]
    fn a_package_without_targets_or_a_virtual_workspace_is_refused() {
        let why = shape("empty", "", &[]).unwrap_err();
        assert!(why.starts_with("the package has no library and no binary"), "{why}");
        let dir = package("virtual", "", &[]);
        std::fs::write(dir.join("Cargo.toml"), "[workspace]\nmembers = [\"a\"]\n").unwrap();
        let why = check(&dir, &dir.join("Cargo.toml")).unwrap_err();
        assert!(why.contains("has no [package] (a virtual workspace?)"), "{why}");
        std::fs::remove_dir_all(&dir).unwrap();
        // A manifest cargo would refuse is cargo's to explain.
        let dir = package("broken", "[lib\n", &[]);
        assert_eq!(check(&dir, &dir.join("Cargo.toml")), Ok(()));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
