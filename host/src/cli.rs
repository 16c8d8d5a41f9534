//! The command line: one clap-derived options struct per command, wired to the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::plan::Plan;
use crate::report::{HumanReporter, JsonReporter};
use crate::run::{EventSink, RunOptions, Session};
use crate::sandbox::{self, EpochTicker, Policy, Preopen};
use crate::suite;

/// Exit status when every test passed.
pub const EXIT_OK: u8 = 0;
/// Exit status when a test failed or errored, or a layer hook failed.
pub const EXIT_TESTS_FAILED: u8 = 1;
/// Exit status for a usage error or a bad module.
pub const EXIT_USAGE: u8 = 2;
/// Exit status with `--fail-on-leak` when a layer leaks and no test failed.
pub const EXIT_LEAKED: u8 = 3;

/// Run wasm32-wasip1 test suites in a sandbox, repeat them, and report leaks deterministically.
#[derive(Debug, Parser)]
#[command(name = "leakhost", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a suite's tests, layer by layer, as zope.testrunner does.
    Run(RunArgs),
}

/// Options of `leakhost run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// A suite: a .wasm file, or a Cargo package directory to build for wasm32-wasip1.
    pub target: PathBuf,

    /// Repeat each layer's tests N times in place.
    #[arg(short = 'N', long = "repeat", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// More output: -v dots, -vv test names, -vvv test times.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Report what each iteration leaked (needs -N 2 or more); with -v per type, with -vv per test.
    #[arg(short = 'r', long = "report-refcounts", visible_alias = "report-leaks")]
    pub report_leaks: bool,

    /// Leading iterations not counted by the leak verdict.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub warmup: usize,

    /// Exit with status 3 when a layer leaks (and no test failed).
    #[arg(long, requires = "report_leaks")]
    pub fail_on_leak: bool,

    /// Write the whole run as JSON to FILE (schema: docs/json-report.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Leave timings out of the JSON report, so two runs give byte-identical files.
    #[arg(long)]
    pub no_timings: bool,

    /// Seed of the guest's deterministic random numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Give the guest the host's real clocks and random numbers (runs stop being reproducible).
    #[arg(long)]
    pub real_world: bool,

    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// What the suite may touch and how much it may take.
#[derive(Debug, Args)]
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
}

impl SandboxArgs {
    fn policy(&self, seed: u64, real_world: bool) -> Result<Policy, String> {
        if !self.timeout.is_finite() || self.timeout < 0.0 {
            return Err(format!(
                "--timeout {}: expected a number of seconds, 0 or more",
                self.timeout
            ));
        }
        let as_usize = |flag: &str, n: u64| usize::try_from(n).map_err(|_| format!("{flag} {n}: too large"));
        Ok(Policy {
            seed,
            real_world,
            max_memory: as_usize("--max-memory", self.max_memory)?,
            output_limit: as_usize("--max-output", self.max_output)?,
            timeout: (self.timeout > 0.0).then(|| std::time::Duration::from_secs_f64(self.timeout)),
            fuel: self.fuel,
            max_stack: as_usize("--max-stack", self.max_stack)?,
            dirs: self.dirs.clone(),
            env: self.env.clone(),
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
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{spec:?}: expected a size such as 4096, 64K, 256M or 1G"))?;
    n.checked_mul(1 << shift).ok_or_else(|| format!("{spec:?}: too large"))
}

/// Parses the process arguments and runs; returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run(&args),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("leakhost: error: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn run(args: &RunArgs) -> ExitCode {
    if args.report_leaks && args.repeat < 2 {
        return fail("-r needs -N 2 or more: leaks show as growth between iterations");
    }
    if args.report_leaks && args.warmup >= args.repeat as usize {
        return fail(format_args!(
            "--warmup {} leaves no iteration of -N {} to count",
            args.warmup, args.repeat
        ));
    }
    let policy = match args.sandbox.policy(args.seed, args.real_world) {
        Ok(policy) => policy,
        Err(e) => return fail(e),
    };
    let engine = match sandbox::engine(&policy) {
        Ok(engine) => engine,
        Err(e) => return fail(e),
    };
    let loaded = suite::resolve(&args.target).and_then(|path| suite::load(&engine, &path));
    let suite = match loaded {
        Ok(suite) => suite,
        Err(e) => return fail(e),
    };
    let _ticker = policy.timeout.map(|_| EpochTicker::start(&engine));
    let mut session = match Session::start(&engine, &suite, policy) {
        Ok(session) => session,
        Err(e) => return fail(format_args!("{}: {e}", suite.path.display())),
    };
    let plan = Plan::new(session.manifest());
    let options = RunOptions {
        repeat: args.repeat,
        measure: args.report_leaks,
        warmup: args.warmup,
    };
    let mut human = HumanReporter::new(std::io::stdout().lock(), args.verbose).show_output(args.sandbox.show_output);
    let mut json = args
        .json
        .as_ref()
        .map(|_| JsonReporter::new(&suite.display_name(), &options, !args.no_timings));
    let result = {
        let mut sinks: Vec<&mut dyn EventSink> = vec![&mut human];
        if let Some(json) = json.as_mut() {
            sinks.push(json);
        }
        session.run(&plan, &options, &mut Fanout(sinks))
    };
    if let (Some(path), Some(json)) = (&args.json, json) {
        if let Err(e) = json.write_to(path) {
            return fail(format_args!("{}: cannot write the JSON report: {e}", path.display()));
        }
    }
    match result {
        Ok(summary) if !summary.ok() => ExitCode::from(EXIT_TESTS_FAILED),
        Ok(summary) if args.fail_on_leak && !summary.leaks.is_empty() => ExitCode::from(EXIT_LEAKED),
        Ok(_) => ExitCode::from(EXIT_OK),
        Err(e) => fail(format_args!("{}: {e}", suite.path.display())),
    }
}

/// Sends every event to several sinks, in order.
struct Fanout<'a>(Vec<&'a mut dyn EventSink>);

impl EventSink for Fanout<'_> {
    fn emit(&mut self, event: &crate::run::Event<'_>) {
        for sink in self.0.iter_mut() {
            sink.emit(event);
        }
    }
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
    fn env_needs_a_name() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("=x").is_err());
        assert!(parse_env("novalue").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
