//! Option groups shared by several commands.

use clap::{Args, ValueEnum};

use crate::plan::{Partition, Pattern, Selection};
use crate::sandbox::{EngineKind, Policy, Preopen};
use crate::suite::BuildOptions;

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
    #[arg(long, value_name = "SIZE", default_value = "256M", value_parser = parse_size)]
    pub max_memory: u64,

    /// Wall-time limit of each test and each hook, in seconds; 0 for none.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,

    /// Deterministic instruction budget (wasmtime fuel) of each test and each hook.
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,

    /// Size of the wasm call stack, e.g. 512K.
    #[arg(long, value_name = "SIZE", default_value = "512K", value_parser = parse_size)]
    pub max_stack: u64,

    /// Print every test's output as it finishes, not only with failures and errors (on at -vv).
    #[arg(long)]
    pub show_output: bool,

    /// Captured output kept per test; the rest is dropped with a notice.
    #[arg(long, value_name = "SIZE", default_value = "64K", value_parser = parse_size)]
    pub max_output: u64,

    /// Captured output kept by the whole run, all tests together; the rest is dropped with a notice.
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::sandbox::DEFAULT_MAX_TOTAL_OUTPUT))]
    pub max_total_output: Size,

    /// How the suite's code runs: compiled to native code, or interpreted by Pulley
    /// (slower; a second execution path that must give the same results).
    #[arg(long, value_enum, value_name = "ENGINE", default_value = "cranelift")]
    pub engine: EngineKind,
    /// Largest module file accepted, e.g. 64M; checked before it is compiled.
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub max_module_size: u64,

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
    #[arg(long, value_name = "SIZE", default_value_t = Size(crate::suite::DEFAULT_MAX_CODE_SIZE as u64))]
    pub max_code_size: Size,
}

/// A size in bytes as the command line writes it: a number with an optional K, M or G
/// suffix, shown (in `--help`) with the largest suffix that divides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl std::str::FromStr for Size {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        parse_size(spec).map(Size)
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            0 => write!(f, "0"),
            n if n % (1 << 30) == 0 => write!(f, "{}G", n >> 30),
            n if n % (1 << 20) == 0 => write!(f, "{}M", n >> 20),
            n if n % (1 << 10) == 0 => write!(f, "{}K", n >> 10),
            n => write!(f, "{n}"),
        }
    }
}

/// The longest `--timeout` accepted: a year; anything longer is meant as "none".
const MAX_TIMEOUT_SECS: u64 = 365 * 24 * 3600;

/// The largest `--max-stack`: every thread that runs wasm reserves this much native stack.
const MAX_WASM_STACK: u64 = 256 << 20;

impl SandboxArgs {
    /// The sandbox policy these options describe.
    pub fn policy(&self, seed: u64, real_world: bool) -> Result<Policy, String> {
        if !self.timeout.is_finite() || self.timeout < 0.0 {
            return Err(format!("--timeout {}: expected a number of seconds, 0 or more", self.timeout));
        }
        let as_usize = |flag: &str, n: u64| usize::try_from(n).map_err(|_| format!("{flag} {n}: too large"));
        let timeout = match self.timeout {
            0.0 => None,
            secs => Some(
                std::time::Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| d.as_secs() <= MAX_TIMEOUT_SECS)
                    .ok_or_else(|| format!("--timeout {secs}: more than {MAX_TIMEOUT_SECS} seconds; use 0 for none"))?,
            ),
        };
        if self.max_stack > MAX_WASM_STACK {
            return Err(format!("--max-stack {}: more than the largest allowed, 256M", self.max_stack));
        }
        // Checked here, before any suite loads, so the message names the flag and nothing else.
        for dir in &self.dirs {
            match std::fs::metadata(&dir.host) {
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => return Err(format!("--dir {}: not a directory", dir.host.display())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(format!("--dir {}: no such directory", dir.host.display()))
                }
                Err(e) => return Err(format!("--dir {}: {e}", dir.host.display())),
            }
        }
        Ok(Policy {
            seed,
            real_world,
            max_memory: as_usize("--max-memory", self.max_memory)?,
            output_limit: as_usize("--max-output", self.max_output)?,
            total_output: crate::sandbox::OutputBudget::new(self.max_total_output.0),
            timeout,
            fuel: self.fuel,
            max_stack: as_usize("--max-stack", self.max_stack)?,
            dirs: self.dirs.clone(),
            env: self.env.clone(),
            engine: self.engine,
            module_limits: crate::suite::ModuleLimits {
                max_size: as_usize("--max-module-size", self.max_module_size)?,
                max_functions: self.max_functions,
                max_nesting: self.max_nesting,
                max_locals: self.max_locals,
                max_total_locals: self.max_total_locals,
                max_code_size: as_usize("--max-code-size", self.max_code_size.0)?,
            },
        })
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
fn parse_size(spec: &str) -> Result<u64, String> {
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
    fn sizes_show_with_the_largest_exact_suffix() {
        let shown: Vec<String> = [0, 4 << 20, 64 << 10, 3 << 30, 1000].map(|n| Size(n).to_string()).into();
        assert_eq!(shown, ["0", "4M", "64K", "3G", "1000"]);
        assert_eq!("4M".parse::<Size>(), Ok(Size(4 << 20)));
    }

    #[test]
    fn env_needs_a_name() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }
}
