//! Building a C or C++ suite directory, one that holds a `leakhost-c.toml`, into a WASI reactor with
//! clang and the C guest SDK (`guest-sdk-c/`, embedded in the binary so a suite builds anywhere).
//!
//! The output goes to `DIR/target/leakhost-c/NAME.wasm` beside a stamp: a hash of the manifest, every
//! source, every file in the suite directory and its include directories, the SDK, the compiler's
//! version and the command lines. A run whose stamp matches reuses the module without calling clang.

mod flags;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Deserialize;
use thiserror::Error;

/// The file that marks a directory as a C suite.
pub const MANIFEST_NAME: &str = "leakhost-c.toml";

/// The SDK, compiled into every C suite.
const SDK_HEADER: &str = include_str!("../../../guest-sdk-c/leakhost.h");
const SDK_SOURCE: &str = include_str!("../../../guest-sdk-c/leakhost.c");

/// What every suite is compiled with before its own flags: clang 14 does not know `wasm32-wasip1` and
/// silently falls back to the host's headers, so the older name is used (every clang accepts it).
const COMPILE_FLAGS: &[&str] = &["--target=wasm32-wasi", "-O2"];

/// Link flags of the SDK: the allocation functions are wrapped so that every block is counted (libc's
/// own calls too), `abort` and `__assert_fail` so that they report a message. `-u` pulls the real
/// allocator in before wrapping: without it wasm-ld 14 resolves `__real_malloc` to a wrong function.
pub const LINK_FLAGS: &[&str] = &[
    "--target=wasm32-wasi",
    "-mexec-model=reactor",
    "-Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,--wrap=aligned_alloc",
    "-Wl,--wrap=posix_memalign,--wrap=malloc_usable_size,--wrap=abort,--wrap=__assert_fail",
    "-Wl,-u,malloc,-u,calloc,-u,realloc,-u,free,-u,aligned_alloc,-u,malloc_usable_size",
];

/// Debian's packages for what a C suite needs, named in messages and installed by tests/setup.sh.
pub const DEBIAN_PACKAGES: &str = "clang lld wasi-libc libclang-rt-dev-wasm32";

/// Why a C suite could not be built.
#[derive(Debug, Error)]
pub enum CBuildError {
    /// The manifest cannot be read or parsed.
    #[error("{path}: {why}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A tool or library of the toolchain is missing.
    #[error("{what} is not installed; install the Debian package {package} (`apt-get install -y {package}`, or run tests/setup.sh)")]
    Missing {
        /// What was looked for.
        what: String,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// A flag in the manifest makes clang or wasm-ld run another program.
    #[error(
        "{path}: flag {flag} {why}; that runs native code of the suite's choosing, so it is refused (give --allow-native-flags to allow it, or build the suite yourself and run the .wasm)"
    )]
    NativeFlag {
        /// The manifest.
        path: PathBuf,
        /// The flag, quoted.
        flag: String,
        /// What it does.
        why: &'static str,
    },
    /// A source file named in the manifest does not exist.
    #[error("source {0} does not exist")]
    NoSource(PathBuf),
    /// Finding the sources of a crates.io package failed.
    #[error("cannot find the sources of package {package}: {why}")]
    CrateSources {
        /// The package.
        package: String,
        /// What went wrong.
        why: String,
    },
    /// clang failed; its diagnostics went to standard error.
    #[error("{tool} failed on {file} ({status}); its messages are above")]
    Compile {
        /// clang or clang++.
        tool: String,
        /// The file it was compiling, or the module it was linking.
        file: String,
        /// Its exit status.
        status: String,
    },
    /// Reading or writing the build directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// `leakhost-c.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CManifest {
    /// The module's name; the directory's name if absent.
    name: Option<String>,
    /// C and C++ sources, relative to the suite directory.
    #[serde(default)]
    sources: Vec<String>,
    /// Include directories, relative to the suite directory.
    #[serde(default)]
    include: Vec<String>,
    /// Flags for every compilation.
    #[serde(default)]
    flags: Vec<String>,
    /// Flags for C files only, and for C++ files only.
    #[serde(default)]
    cflags: Vec<String>,
    #[serde(default)]
    cxxflags: Vec<String>,
    /// Extra link flags.
    #[serde(default)]
    link_flags: Vec<String>,
    /// Links with clang++ and libc++; needed for C++ sources.
    #[serde(default)]
    cxx: bool,
    /// Sources shipped inside a crates.io package (e.g. zlib inside libz-sys).
    crate_sources: Option<CrateSources>,
}

/// `[crate_sources]`: C sources taken from a package that Cargo fetches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CrateSources {
    /// A Cargo manifest, relative to the suite directory, that depends on the package.
    manifest: String,
    /// The package's name.
    package: String,
    /// The directory inside the package that holds the sources; it is also an include directory.
    dir: String,
    /// Sources, relative to `dir`.
    sources: Vec<String>,
}

/// Whether `dir` is a C suite directory.
pub fn is_c_suite(dir: &Path) -> bool {
    dir.join(MANIFEST_NAME).is_file()
}

/// One compilation: which tool, which file, with which arguments.
struct Step {
    tool: String,
    file: PathBuf,
    args: Vec<String>,
    output: PathBuf,
}

/// Builds the C suite in `dir` (or reuses its last build) and returns the `.wasm`. Flags
/// that make clang or wasm-ld run other programs are refused unless `allow_native_flags`.
pub fn build(dir: &Path, allow_native_flags: bool) -> Result<PathBuf, CBuildError> {
    // Absolute, so that the prefix map of the compile steps makes every path relative to the suite.
    let dir = &dir.canonicalize().map_err(|source| CBuildError::Io { path: dir.to_path_buf(), source })?;
    let (text, manifest, name) = read_manifest(dir)?;
    let native = native_flag(&manifest);
    if let (Some((flag, why)), false) = (&native, allow_native_flags) {
        let (path, flag) = (dir.join(MANIFEST_NAME), crate::input::quote(flag));
        return Err(CBuildError::NativeFlag { path, flag, why });
    }
    let out_dir = dir.join("target/leakhost-c");
    let sdk_dir = out_dir.join("sdk");
    write_if_changed(&sdk_dir.join("leakhost.h"), SDK_HEADER)?;
    write_if_changed(&sdk_dir.join("leakhost.c"), SDK_SOURCE)?;
    let (sources, includes) = inputs(dir, &manifest, &sdk_dir)?;
    let (cc, cxx) = (tool("LEAKHOST_CC", "clang"), tool("LEAKHOST_CXX", "clang++"));
    let version = compiler_version(&cc)?;
    let obj_dir = out_dir.join(format!("{name}.o"));
    let wasm = out_dir.join(format!("{name}.wasm"));
    let steps = plan(dir, &manifest, (&cc, &cxx), (&sources, &includes), &obj_dir, &wasm);

    let stamp_path = out_dir.join(format!("{name}.stamp"));
    let stamp = stamp(&text, &version, &steps, &sources, &includes)?;
    if wasm.is_file() && std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return Ok(wasm);
    }
    check_toolchain(&cc, if manifest.cxx { Some(&cxx) } else { None })?;
    let mut stderr = std::io::stderr();
    if let Some(notice) = native_code_notice(dir, native.as_ref().map(|(flag, _)| flag.as_str())) {
        let _ = writeln!(stderr, "{notice}");
    }
    let _ = writeln!(stderr, "leakhost: building {} for wasm32-wasi with {cc}", dir.display());
    let started = Instant::now();
    std::fs::create_dir_all(&obj_dir).map_err(|source| CBuildError::Io { path: obj_dir.clone(), source })?;
    for step in &steps {
        // Concurrent builds of one suite each write their own file; the rename makes each output whole.
        let temp = temp_beside(&step.output);
        run(step, &temp)?;
        std::fs::rename(&temp, &step.output).map_err(|source| CBuildError::Io { path: step.output.clone(), source })?;
    }
    write_if_changed(&stamp_path, &stamp)?;
    let _ = writeln!(stderr, "leakhost: built {name}.wasm in {:.2} s", started.elapsed().as_secs_f64());
    Ok(wasm)
}

/// The first flag of the manifest that makes clang or wasm-ld run another program.
fn native_flag(manifest: &CManifest) -> Option<(String, &'static str)> {
    [&manifest.flags, &manifest.cflags, &manifest.cxxflags, &manifest.link_flags]
        .into_iter()
        .find_map(|list| flags::native_flag(list))
}

/// Issue 22, item 8: a build runs clang and wasm-ld natively on the suite's sources, which
/// can read any file the user can (`#include "/home/..."`), and with `native` allowed,
/// programs of the suite's choosing. Said as the Cargo build says it (`build::resolve`):
/// for a directory outside the current one, or whenever a native flag is allowed.
fn native_code_notice(dir: &Path, native: Option<&str>) -> Option<String> {
    if let Some(flag) = native {
        return Some(format!(
            "leakhost: note: {} passes {} (allowed by --allow-native-flags), so building it runs programs of its \
             choosing natively, outside the sandbox",
            dir.join(MANIFEST_NAME).display(),
            crate::input::quote(flag)
        ));
    }
    let cwd = std::env::current_dir().and_then(|d| d.canonicalize()).ok();
    if cwd.is_some_and(|cwd| dir.starts_with(cwd)) {
        return None;
    }
    Some(format!(
        "leakhost: note: {} is not in the current directory; building it runs clang and wasm-ld natively on its \
         sources, outside the sandbox (they can read any file you can). For a suite you do not trust, build it in \
         an isolated environment and run the .wasm",
        dir.display()
    ))
}

/// The manifest's text, its parsed form and the module's name.
fn read_manifest(dir: &Path) -> Result<(String, CManifest, String), CBuildError> {
    let path = dir.join(MANIFEST_NAME);
    // The user named the directory, and a build reads its sources wherever their links lead.
    let text = crate::input::read_text(&path, crate::input::DEFAULT_MAX_INPUT, crate::input::Links::Follow)
        .map_err(|e| CBuildError::Manifest { path: path.clone(), why: format!("cannot read it: {e}") })?;
    let manifest: CManifest = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(String::new(), |s| format!("line {}: ", text[..s.start].matches('\n').count() + 1));
        let why = format!("{line}{}", crate::input::clip_quotes(&one_line(e.message())));
        CBuildError::Manifest { path: path.clone(), why }
    })?;
    let name = match &manifest.name {
        Some(name) => name.clone(),
        None => dir.file_name().map_or("suite".into(), |n| n.to_string_lossy().into()),
    };
    if name.is_empty() || name.contains(['/', '\\']) {
        return Err(CBuildError::Manifest {
            path,
            why: format!("name {} is not a file name", crate::input::quote(&name)),
        });
    }
    Ok((text, manifest, name))
}

/// Every source (the crate's, the suite's, then the SDK's) and include directory, checked to exist.
fn inputs(dir: &Path, manifest: &CManifest, sdk_dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), CBuildError> {
    let (mut sources, mut includes) = (Vec::new(), vec![sdk_dir.to_path_buf(), dir.to_path_buf()]);
    includes.extend(manifest.include.iter().map(|i| dir.join(i)));
    if let Some(crate_sources) = &manifest.crate_sources {
        let root = cached_crate_dir(dir, crate_sources)?;
        sources.extend(crate_sources.sources.iter().map(|s| root.join(s)));
        includes.push(root);
    }
    sources.extend(manifest.sources.iter().map(|s| dir.join(s)));
    sources.push(sdk_dir.join("leakhost.c"));
    if let Some(missing) = sources.iter().find(|s| !s.is_file()) {
        return Err(CBuildError::NoSource(missing.clone()));
    }
    if sources.iter().any(|s| is_cxx(s)) && !manifest.cxx {
        let why = "C++ sources need `cxx = true`".into();
        return Err(CBuildError::Manifest { path: dir.join(MANIFEST_NAME), why });
    }
    Ok((sources, includes))
}

/// One compile step per source, then the link.
fn plan(
    dir: &Path,
    manifest: &CManifest,
    (cc, cxx): (&str, &str),
    (sources, includes): (&[PathBuf], &[PathBuf]),
    obj_dir: &Path,
    wasm: &Path,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut objects = Vec::new();
    for (i, source) in sources.iter().enumerate() {
        let stem = source.file_stem().map_or("src".into(), |s| s.to_string_lossy());
        let object = obj_dir.join(format!("{i}-{stem}.o"));
        let cxx_file = is_cxx(source);
        let mut args: Vec<String> = COMPILE_FLAGS.iter().map(|f| f.to_string()).collect();
        args.extend(includes.iter().map(|i| format!("-I{}", i.display())));
        // __FILE__ (in check messages) and debug info name the suite's files relative to its directory.
        args.push(format!("-ffile-prefix-map={}/=", dir.display()));
        args.extend(manifest.flags.iter().cloned());
        args.extend(if cxx_file { &manifest.cxxflags } else { &manifest.cflags }.iter().cloned());
        args.extend(["-c".into(), source.display().to_string()]);
        let tool = if cxx_file { cxx } else { cc }.to_string();
        steps.push(Step { tool, file: source.clone(), args, output: object.clone() });
        objects.push(object);
    }
    let mut link: Vec<String> = LINK_FLAGS.iter().map(|f| f.to_string()).collect();
    link.extend(manifest.link_flags.iter().cloned());
    link.extend(objects.iter().map(|o| o.display().to_string()));
    let linker = if manifest.cxx { cxx } else { cc }.to_string();
    steps.push(Step { tool: linker, file: wasm.to_path_buf(), args: link, output: wasm.to_path_buf() });
    steps
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_cxx(path: &Path) -> bool {
    path.extension().is_some_and(|e| ["cc", "cpp", "cxx", "C", "c++"].iter().any(|x| e == *x))
}

fn tool(env: &str, default: &str) -> String {
    std::env::var(env).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

/// `PATH.tmp-PID`: another process building the same suite never writes the same temporary file.
fn temp_beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    PathBuf::from(name)
}

fn write_if_changed(path: &Path, contents: &str) -> Result<(), CBuildError> {
    if std::fs::read_to_string(path).is_ok_and(|c| c == contents) {
        return Ok(());
    }
    let io = |source| CBuildError::Io { path: path.to_path_buf(), source };
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new("."))).map_err(io)?;
    // Concurrent builds of the same suite write the same bytes; a rename keeps readers from a half file.
    let temp = temp_beside(path);
    std::fs::write(&temp, contents).map_err(io)?;
    std::fs::rename(&temp, path).map_err(io)
}

/// The compiler's version line, part of the stamp.
fn compiler_version(cc: &str) -> Result<String, CBuildError> {
    let out = Command::new(cc)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|_| CBuildError::Missing { what: cc.to_string(), package: "clang" })?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string())
}

/// Checks clang's wasm runtime library, wasm-ld and wasi-libc (and clang++ with libc++ for C++),
/// naming the Debian package of whatever is missing. Only before a build: a current build needs none.
fn check_toolchain(cc: &str, cxx: Option<&str>) -> Result<(), CBuildError> {
    let missing = |what: &str, package| CBuildError::Missing { what: what.to_string(), package };
    compiler_version(cc)?;
    let print = |tool: &str, arg: &str| -> Option<PathBuf> {
        let out = Command::new(tool).args(["--target=wasm32-wasi", arg]).stdin(Stdio::null()).output().ok()?;
        let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        // clang prints the bare name back when it does not find the file.
        (path.is_absolute() && path.is_file()).then_some(path)
    };
    print(cc, "-print-libgcc-file-name")
        .ok_or_else(|| missing("clang's wasm32 runtime (libclang_rt.builtins-wasm32.a)", "libclang-rt-dev-wasm32"))?;
    print(cc, "-print-file-name=libc.a").ok_or_else(|| missing("wasi-libc (libc.a for wasm32-wasi)", "wasi-libc"))?;
    let has_wasm_ld = print(cc, "-print-prog-name=wasm-ld").is_some()
        || Command::new("wasm-ld").arg("--version").stdin(Stdio::null()).output().is_ok();
    if !has_wasm_ld {
        return Err(missing("wasm-ld", "lld"));
    }
    if let Some(cxx) = cxx {
        Command::new(cxx).arg("--version").stdin(Stdio::null()).output().map_err(|_| missing(cxx, "clang"))?;
        print(cxx, "-print-file-name=libc++.a")
            .ok_or_else(|| missing("libc++ for wasm32-wasi (libc++.a)", "libc++-dev-wasm32"))?;
    }
    Ok(())
}

/// [`crate_dir`], remembered in the build directory while the Cargo manifest and lock file are unchanged:
/// `cargo metadata` costs a third of a second on every run otherwise.
fn cached_crate_dir(dir: &Path, spec: &CrateSources) -> Result<PathBuf, CBuildError> {
    let manifest = dir.join(&spec.manifest);
    let mut key = blake3::Hasher::new();
    for file in [manifest.clone(), manifest.with_file_name("Cargo.lock")] {
        key.update(&std::fs::read(&file).unwrap_or_default());
    }
    key.update(format!("{}\0{}", spec.package, spec.dir).as_bytes());
    let key = key.finalize().to_hex().to_string();
    let memo = dir.join("target/leakhost-c").join(format!("{}.crate-dir", spec.package));
    if let Some((k, path)) = std::fs::read_to_string(&memo).ok().as_deref().and_then(|m| m.split_once('\n')) {
        if k == key && Path::new(path).is_dir() {
            return Ok(PathBuf::from(path));
        }
    }
    let root = crate_dir(dir, spec)?;
    // Only a cache: if it cannot be written, the next run asks cargo again.
    let _ = write_if_changed(&memo, &format!("{key}\n{}", root.display()));
    Ok(root)
}

/// The directory `spec.dir` inside the package `spec.package`, found with `cargo metadata` (which
/// fetches the package on first use).
fn crate_dir(dir: &Path, spec: &CrateSources) -> Result<PathBuf, CBuildError> {
    let fail = |why: String| CBuildError::CrateSources { package: spec.package.clone(), why };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(dir.join(&spec.manifest))
        .env_remove("CARGO_TARGET_DIR")
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| fail(format!("cannot run cargo: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!("cargo metadata exited with {}", out.status)));
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| fail(format!("unreadable cargo metadata: {e}")))?;
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == spec.package.as_str())
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or_else(|| fail(format!("{} does not depend on it", spec.manifest)))?;
    let root = Path::new(manifest).parent().unwrap_or(Path::new("/")).join(&spec.dir);
    if !root.is_dir() {
        return Err(fail(format!("{} is not a directory", root.display())));
    }
    Ok(root)
}

/// The hash that decides whether the last build is still current.
fn stamp(
    manifest: &str,
    version: &str,
    steps: &[Step],
    sources: &[PathBuf],
    includes: &[PathBuf],
) -> Result<String, CBuildError> {
    let mut hasher = blake3::Hasher::new();
    for part in [manifest, version, SDK_HEADER, SDK_SOURCE] {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    for step in steps {
        hasher.update(step.tool.as_bytes());
        hasher.update(step.output.display().to_string().as_bytes());
        for arg in &step.args {
            hasher.update(&(arg.len() as u64).to_le_bytes());
            hasher.update(arg.as_bytes());
        }
    }
    let mut files: Vec<PathBuf> = sources.to_vec();
    for include in includes {
        // Headers live beside the sources or in the include directories; a top-level scan covers both.
        if let Ok(entries) = std::fs::read_dir(include) {
            files.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_file()));
        }
    }
    files.sort();
    files.dedup();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|source| CBuildError::Io { path: file.clone(), source })?;
        hasher.update(file.display().to_string().as_bytes());
        hasher.update(blake3::hash(&bytes).as_bytes());
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn run(step: &Step, output: &Path) -> Result<(), CBuildError> {
    let status = Command::new(&step.tool)
        .args(&step.args)
        .arg("-o")
        .arg(output)
        .stdin(Stdio::null())
        // Diagnostics are about the user's own sources; stdout too, so no build chatter mixes with the report.
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|_| CBuildError::Missing { what: step.tool.clone(), package: "clang" })?;
    if !status.success() {
        return Err(CBuildError::Compile {
            tool: step.tool.clone(),
            file: step.file.display().to_string(),
            status: status.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_rejects_unknown_keys_and_takes_every_documented_one() {
        let full = r#"
            name = "zlib"
            sources = ["suite.c"]
            include = ["inc"]
            flags = ["-Wall"]
            cflags = ["-std=c11"]
            cxxflags = ["-std=c++17"]
            link_flags = []
            cxx = false
            [crate_sources]
            manifest = "src/Cargo.toml"
            package = "libz-sys"
            dir = "src/zlib"
            sources = ["adler32.c"]
        "#;
        let m: CManifest = toml::from_str(full).unwrap();
        assert_eq!(m.name.as_deref(), Some("zlib"));
        assert_eq!(m.crate_sources.unwrap().sources, ["adler32.c"]);
        let err = toml::from_str::<CManifest>("source = [\"a.c\"]").unwrap_err().to_string();
        assert!(err.contains("unknown field `source`"), "{err}");
    }

    #[test]
    fn cxx_sources_are_told_by_their_extension() {
        assert!(is_cxx(Path::new("a.cpp")) && is_cxx(Path::new("b.cc")) && is_cxx(Path::new("c.cxx")));
        assert!(!is_cxx(Path::new("a.c")) && !is_cxx(Path::new("h.h")));
    }

    #[test]
    fn a_missing_compiler_names_the_debian_package() {
        let err = check_toolchain("/nonexistent/clang-for-leakhost-test", None).unwrap_err().to_string();
        assert!(err.contains("install the Debian package clang"), "{err}");
    }
}
