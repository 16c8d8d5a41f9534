//! A tiny harness: build the sample suites once, run the binary, normalise output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Builds every sample suite once per test process and returns the directory of their `.wasm` files.
pub fn suite_dir() -> PathBuf {
    suite("samplelayers").parent().unwrap().to_path_buf()
}

/// Builds every sample suite once per test process and returns the `.wasm` of `name`.
pub fn suite(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let samples = repo().join("sample-tests");
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip1", "--manifest-path"])
            .arg(samples.join("Cargo.toml"))
            // The sample workspace has its own target dir, so this never waits on the outer build.
            .env_remove("CARGO_TARGET_DIR")
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the sample suites failed");
        samples.join("target/wasm32-wasip1/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// The compiled-module cache the tests share.
pub fn cache_dir() -> PathBuf {
    std::env::temp_dir().join("leakhost-e2e-cache")
}

/// The cache key the tests share, kept out of the user's config directory.
pub fn cache_key() -> PathBuf {
    std::env::temp_dir().join("leakhost-e2e-cache.key")
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    /// Exit status.
    pub status: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `leakhost` with `args`.
pub fn leakhost<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_command(Command::new(env!("CARGO_BIN_EXE_leakhost")).args(args))
}

/// Runs `leakhost` with `args` and a soft stack limit of `bytes` (`ulimit -s`), as a shell
/// with that limit would start it.
pub fn leakhost_with_stack_limit<I, S>(bytes: u64, args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_leakhost"));
    command.args(args);
    // SAFETY: getrlimit and setrlimit are async-signal-safe, as pre_exec requires.
    unsafe {
        command.pre_exec(move || {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            if libc::getrlimit(libc::RLIMIT_STACK, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = bytes;
            if libc::setrlimit(libc::RLIMIT_STACK, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run_command(&mut command)
}

fn run_command(command: &mut Command) -> Run {
    let out = command
        .env_remove("CARGO_TARGET_DIR")
        .env("NO_COLOR", "1")
        // One cache for all of this run's tests (and safe to share, as they run in parallel),
        // kept out of the user's own cache directory.
        .env("LEAKHOST_CACHE_DIR", cache_dir())
        .env("LEAKHOST_CACHE_KEY", cache_key())
        .output()
        .expect("leakhost runs");
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Replaces every duration with `N.NNN seconds` so outputs compare across runs.
pub fn normalise_times(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let mut rebuilt = Vec::with_capacity(words.len());
        let mut i = 0;
        while i < words.len() {
            let w = words[i];
            let is_secs = words.get(i + 1).is_some_and(|n| n.starts_with("seconds"));
            let is_mins = words.get(i + 1).is_some_and(|n| *n == "minutes");
            if is_mins && w.parse::<u64>().is_ok() {
                i += 2;
                continue;
            }
            if is_secs && w.parse::<f64>().is_ok() && w.contains('.') {
                rebuilt.push("N.NNN");
            } else {
                rebuilt.push(w);
            }
            i += 1;
        }
        out.push_str(&rebuilt.join(" "));
        out.push('\n');
    }
    out
}

/// The block of `Failure in test NAME` / `Error in test NAME`: from its title to the blank lines that end it
/// (a block may contain single blank lines, e.g. before wasmtime's `Caused by:`).
pub fn block<'a>(stdout: &'a str, title: &str) -> &'a str {
    let start = stdout.find(&format!("\n\n{title}\n")).unwrap_or_else(|| panic!("no block {title:?} in:\n{stdout}"));
    let body = &stdout[start + title.len() + 3..];
    let end = [body.find("\n\n\n"), body.find("\n\n  Ran ")].into_iter().flatten().min().unwrap_or(body.len());
    &body[..end]
}

/// Writes `bytes` to a fresh file named `name` in a directory of its own (tests run in
/// parallel, and two may write files of the same name).
pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("leakhost-e2e-{}", std::process::id())).join(unique.to_string());
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn normalise_times_hides_durations_only() {
    assert_eq!(
        normalise_times("  Ran 2 tests with 0 failures in 0.004 seconds.\nTotal: 1 minutes 2.000 seconds."),
        "  Ran 2 tests with 0 failures in N.NNN seconds.\nTotal: N.NNN seconds.\n"
    );
}
