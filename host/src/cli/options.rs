//! Option groups shared by several commands. Every default is a constant of the module
//! that uses it, shown by `--help` from that constant (`default_value_t`).

use clap::{Args, ValueEnum};
use thiserror::Error;

use crate::plan::{NothingSelected, Partition, Pattern, Plan, Selection};
use crate::sandbox::{self, EngineKind, Policy, Preopen};
use crate::suite::BuildOptions;

/// A flag whose value parsed but cannot be used.
#[derive(Debug, Error)]
#[error("{flag} {value}: {why}")]
pub struct OptionError {
    /// The flag, as the user writes it.
    pub flag: &'static str,
    /// Its value, as given.
    pub value: String,
    /// What is wrong with it, and what to give instead.
    pub why: String,
}

impl OptionError {
    fn new(flag: &'static str, value: impl std::fmt::Display, why: impl Into<String>) -> Self {
        OptionError { flag, value: value.to_string(), why: why.into() }
    }
}

/// How a package directory given as a target is built. Building runs the package's build scripts
/// and proc-macros natively, outside the sandbox.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Building package directories")]
pub struct BuildArgs {
    /// Build with this cargo profile instead of release (e.g. one of your own with opt-level = 1).
    #[arg(long, value_name = "NAME", conflicts_with = "debug")]
    pub cargo_profile: Option<String>,

    /// Build with cargo's dev profile: unoptimised, so a leak the optimiser would remove stays in.
    #[arg(long)]
    pub debug: bool,

    /// Let a C suite's leakhost-c.toml pass flags that make clang or wasm-ld run other programs
    /// (-B, -fuse-ld, -fplugin, -Xclang, ...); refused otherwise.
    #[arg(long)]
    pub allow_native_flags: bool,
}

impl BuildArgs {
    /// The build options these flags describe.
    pub fn options(&self) -> BuildOptions {
        let profile = if self.debug { Some("dev".to_string()) } else { self.cargo_profile.clone() };
        BuildOptions { profile, allow_native_flags: self.allow_native_flags }
    }
}

/// Which tests run (zope.testrunner's selection options).
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Selection")]
pub struct SelectionArgs {
    /// Run only tests whose name matches REGEX (a search; a leading ! negates). Repeatable; any match selects.
    #[arg(short = 't', long = "test", value_name = "REGEX")]
    pub tests: Vec<Pattern>,

    /// Run only layers whose name matches REGEX (a search; a leading ! negates). Repeatable; any match selects.
    #[arg(long = "layer", value_name = "REGEX")]
    pub layers: Vec<Pattern>,

    /// Run only the unit-test layer.
    #[arg(short = 'u', long = "unit", conflicts_with = "non_unit")]
    pub unit: bool,

    /// Run only the layers other than the unit-test layer.
    #[arg(short = 'f', long = "non-unit")]
    pub non_unit: bool,

    /// Run part K of N of the tests (1-based), a deterministic split for CI matrices.
    #[arg(long, value_name = "K/N")]
    pub partition: Option<Partition>,

    /// Shuffle the tests within each layer; the seed is printed so the order can be repeated.
    #[arg(long)]
    pub shuffle: bool,

    /// Shuffle with this seed (implies --shuffle).
    #[arg(long, value_name = "SEED")]
    pub shuffle_seed: Option<u64>,

    /// When the selection matches no test: fail (exit status 2, naming the nearest tests and
    /// layers), warn and run nothing, or pass silently.
    #[arg(long, value_enum, value_name = "WHAT", default_value_t = NoTests::Fail)]
    pub no_tests: NoTests,
}

/// What a selection that matches no test means (`--no-tests`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NoTests {
    /// A usage error: a filter that matches nothing is a typo until shown otherwise.
    Fail,
    /// A warning on stderr; the command goes on and succeeds.
    Warn,
    /// Nothing is said; the command succeeds.
    Pass,
}

impl SelectionArgs {
    /// The selection; a shuffle without a seed gets one from the clock.
    pub fn selection(&self) -> Selection {
        let seed = self.shuffle_seed.or_else(|| {
            self.shuffle.then(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64 % 1_000_000_000)
            })
        });
        Selection {
            tests: self.tests.clone(),
            layers: self.layers.clone(),
            unit_only: self.unit,
            non_unit_only: self.non_unit,
            partition: self.partition,
            shuffle: seed,
        }
    }

    /// Whether the command goes on with `plans`, `selection`'s plan of each loaded suite: a
    /// selection that matches no test is an error unless `--no-tests` says otherwise.
    pub(super) fn check_selected(
        &self,
        selection: &Selection,
        loaded: &[super::Loaded<'_>],
        plans: &[Plan],
    ) -> Result<(), Box<NothingSelected>> {
        let manifests: Vec<&crate::abi::Manifest> = loaded.iter().map(|l| l.session.manifest()).collect();
        match (selection.check(&manifests, plans), self.no_tests) {
            (Ok(()), _) | (Err(_), NoTests::Pass) => Ok(()),
            (Err(nothing), NoTests::Warn) => {
                eprintln!("leakhost: warning: {}", crate::text::GuestText::from(nothing.summary()).line());
                Ok(())
            }
            (Err(nothing), NoTests::Fail) => Err(nothing),
        }
    }
}

/// When to colour the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// When stdout is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Applies the choice process-wide.
    pub fn apply(self) {
        match self {
            ColorChoice::Auto => owo_colors::unset_override(),
            ColorChoice::Always => owo_colors::set_override(true),
            ColorChoice::Never => owo_colors::set_override(false),
        }
    }
}

/// What the suite may touch and how much it may take.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Sandbox")]
pub struct SandboxArgs {
    /// Let the guest open a host directory: HOST[::GUEST][:rw]; read-only unless :rw. Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST][:rw]")]
    pub dirs: Vec<Preopen>,

    /// Set an environment variable in the guest (it sees none by default). Repeatable.
    #[arg(long = "env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Linear-memory limit per instance, e.g. 64M or 1G.
    #[arg(long, value_name = "SIZE", default_value_t = Size::of(sandbox::DEFAULT_MAX_MEMORY))]
    pub max_memory: Size,

    /// Wall-time limit of each test and each hook, in seconds; 0 for none.
    #[arg(long, value_name = "SECONDS", default_value_t = sandbox::DEFAULT_TIMEOUT.as_secs_f64(),
          allow_negative_numbers = true)]
    pub timeout: f64,

    /// Deterministic instruction budget (wasmtime fuel) of each test and each hook.
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,

    /// Size of the wasm call stack, e.g. 512K.
    #[arg(long, value_name = "SIZE", default_value_t = Size::of(sandbox::DEFAULT_MAX_STACK))]
    pub max_stack: Size,

    /// Print every test's output as it finishes, not only with failures and errors (on at -vv).
    #[arg(long, aliases = ["nocapture", "no-capture"])]
    pub show_output: bool,

    /// Captured output kept per test; the rest is dropped with a notice.
    #[arg(long, value_name = "SIZE", default_value_t = Size::of(sandbox::DEFAULT_OUTPUT_LIMIT))]
    pub max_output: Size,

    /// Captured output kept by the whole run, all tests together; the rest is dropped with a notice.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::sandbox::DEFAULT_MAX_TOTAL_OUTPUT))]
    pub max_total_output: Size,

    /// How the suite's code runs: compiled to native code, or interpreted by Pulley
    /// (slower; a second execution path that must give the same results).
    #[arg(long, value_enum, value_name = "ENGINE", default_value_t = EngineKind::default())]
    pub engine: EngineKind,
    /// Largest module file accepted, e.g. 64M; checked before it is compiled.
    #[arg(long, value_name = "SIZE", default_value_t = Size::of(crate::suite::DEFAULT_MAX_MODULE_SIZE))]
    pub max_module_size: Size,

    /// Most functions a module may define; checked before it is compiled.
    #[arg(long, value_name = "N", default_value_t = crate::suite::DEFAULT_MAX_FUNCTIONS)]
    pub max_functions: u32,

    /// Deepest nesting of blocks, loops and ifs in a module's functions; checked before it is compiled.
    #[arg(long, value_name = "N", default_value_t = crate::suite::DEFAULT_MAX_NESTING)]
    pub max_nesting: u32,

    /// Most locals one function of a module may declare; checked before it is compiled.
    #[arg(long, value_name = "N", default_value_t = crate::suite::DEFAULT_MAX_LOCALS)]
    pub max_locals: u32,

    /// Most locals all functions of a module may declare together; checked before it is compiled.
    #[arg(long, value_name = "N", default_value_t = crate::suite::DEFAULT_MAX_TOTAL_LOCALS)]
    pub max_total_locals: u64,

    /// Largest code section (all function bodies) of a module; checked before it is compiled.
    #[arg(long, value_name = "SIZE", default_value_t = Size::of(crate::suite::DEFAULT_MAX_CODE_SIZE))]
    pub max_code_size: Size,
}

/// The longest `--timeout` accepted: a year; anything longer is meant as "none".
const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// The largest `--max-stack`: every thread that runs wasm reserves this much native stack.
const MAX_WASM_STACK: Size = Size(256 << 20);

impl SandboxArgs {
    /// The sandbox policy these options describe.
    pub fn policy(&self, seed: u64, real_world: bool) -> Result<Policy, OptionError> {
        if self.max_stack.0 > MAX_WASM_STACK.0 {
            return Err(OptionError::new(
                "--max-stack",
                self.max_stack,
                format!("more than the largest allowed, {MAX_WASM_STACK}"),
            ));
        }
        self.check_dirs()?;
        Ok(Policy {
            seed,
            real_world,
            max_memory: self.max_memory.bytes("--max-memory")?,
            output_limit: self.max_output.bytes("--max-output")?,
            total_output: crate::sandbox::OutputBudget::new(self.max_total_output.0),
            timeout: self.timeout()?,
            fuel: self.fuel,
            max_stack: self.max_stack.bytes("--max-stack")?,
            dirs: self.dirs.clone(),
            env: self.env.clone(),
            engine: self.engine,
            module_limits: crate::suite::ModuleLimits {
                max_size: self.max_module_size.bytes("--max-module-size")?,
                max_functions: self.max_functions,
                max_nesting: self.max_nesting,
                max_locals: self.max_locals,
                max_total_locals: self.max_total_locals,
                max_code_size: self.max_code_size.bytes("--max-code-size")?,
            },
        })
    }

    fn timeout(&self) -> Result<Option<std::time::Duration>, OptionError> {
        let secs = self.timeout;
        if !secs.is_finite() || secs < 0.0 {
            return Err(OptionError::new("--timeout", secs, "expected a number of seconds, 0 or more"));
        }
        if secs == 0.0 {
            return Ok(None);
        }
        let too_long =
            || OptionError::new("--timeout", secs, format!("more than {MAX_TIMEOUT_SECS} seconds; use 0 for none"));
        let duration = std::time::Duration::try_from_secs_f64(secs).map_err(|_| too_long())?;
        (duration.as_secs() <= MAX_TIMEOUT_SECS).then_some(Some(duration)).ok_or_else(too_long)
    }

    /// Checked here, before any suite loads, so the message names the flag and nothing else.
    fn check_dirs(&self) -> Result<(), OptionError> {
        for dir in &self.dirs {
            let host = dir.host.display();
            match std::fs::metadata(&dir.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(OptionError::new("--dir", host, "not a directory")),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(OptionError::new("--dir", host, "no such directory"))
                }
                Err(e) => return Err(OptionError::new("--dir", host, e.to_string())),
            }
        }
        Ok(())
    }
}

/// A size in bytes, written with an optional K, M or G suffix (powers of 1024), and shown in
/// `--help` the same way, from the constant it defaults to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    /// The size of a default given in bytes.
    pub const fn of(bytes: usize) -> Size {
        Size(bytes as u64)
    }

    /// The size as a `usize`, or why `flag` cannot take it.
    fn bytes(self, flag: &'static str) -> Result<usize, OptionError> {
        usize::try_from(self.0).map_err(|_| OptionError::new(flag, self, "too large"))
    }
}

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        parse_size(spec).map(Size)
    }
}

impl std::fmt::Display for Size {
    /// The largest suffix that shows the size exactly: 256M, 512K, 4097.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let suffix = [(30, "G"), (20, "M"), (10, "K")]
            .into_iter()
            .find(|(shift, _)| self.0 != 0 && self.0.is_multiple_of(1 << shift));
        match suffix {
            Some((shift, unit)) => write!(f, "{}{unit}", self.0 >> shift),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Parses `NAME=VALUE`.
fn parse_env(spec: &str) -> Result<(String, String), String> {
    match spec.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("{spec:?}: expected NAME=VALUE")),
    }
}

/// Parses a size in bytes with an optional K, M or G suffix (powers of 1024).
pub(super) fn parse_size(spec: &str) -> Result<u64, String> {
    let spec = spec.trim();
    let (digits, shift) = match spec.char_indices().last() {
        Some((i, 'k' | 'K')) => (&spec[..i], 10),
        Some((i, 'm' | 'M')) => (&spec[..i], 20),
        Some((i, 'g' | 'G')) => (&spec[..i], 30),
        _ => (spec, 0),
    };
    let n: u64 = digits.parse().map_err(|_| format!("{spec:?}: expected a size such as 4096, 64K, 256M or 1G"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{spec:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn sizes_show_as_they_are_written() {
        for text in ["256M", "512K", "64K", "1G", "4097", "0", "1536K"] {
            assert_eq!(text.parse::<Size>().unwrap().to_string(), text);
        }
        assert_eq!(Size::of(sandbox::DEFAULT_MAX_MEMORY).to_string(), "256M");
    }

    #[test]
    fn env_needs_a_name() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }
}
