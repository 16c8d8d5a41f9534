//! The command line: one clap-derived options struct per command, wired to the library.

mod inspect;
mod options;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::run::Session;
use crate::sandbox::{self, Policy};
use crate::suite::{self, Cache, Suite};
pub use options::{ColorChoice, SandboxArgs, SelectionArgs};

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
#[command(name = "leakhost", version, about, args_override_self = true)]
pub struct Cli {
    /// Compile suites afresh instead of using the compiled-module cache
    /// ($LEAKHOST_CACHE_DIR, else the user's cache directory).
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run suites' tests, layer by layer, as zope.testrunner does.
    Run(run::RunArgs),
    /// List the tests a run would run, by layer, without running them.
    List(run::ListArgs),
    /// Show a suite's ABI version, layers, test counts, exports and sandbox.
    Inspect(inspect::InspectArgs),
}

/// Parses the process arguments and runs; returns the exit status.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(error),
    };
    let cache = if cli.no_cache { None } else { Cache::default_location() };
    let cache = cache.as_ref();
    match cli.command {
        Command::Run(args) => run::run(&args, cache),
        Command::List(args) => run::list(&args, cache),
        Command::Inspect(args) => inspect::inspect(&args, cache),
    }
}

/// Help and version go out as clap prints them; any other parse error becomes the
/// same single `leakhost: error:` line as every other bad input.
fn usage_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            error.exit()
        }
        _ => {
            let text = error.to_string();
            let first = text.lines().next().unwrap_or_default();
            fail(format_args!("{} (see --help)", first.strip_prefix("error: ").unwrap_or(first)))
        }
    }
}

/// Prints one error line and returns the usage/bad-input status.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("leakhost: error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// A loaded suite with its started session.
struct Loaded<'e> {
    suite: Suite,
    session: Session<'e>,
}

/// Resolves, compiles and starts every target before any test runs, so a bad
/// target stops the run before it begins rather than halfway through.
fn load_all<'e>(
    engine: &'e wasmtime::Engine,
    targets: &[PathBuf],
    policy: &Policy,
    cache: Option<&Cache>,
) -> Result<Vec<Loaded<'e>>, String> {
    targets
        .iter()
        .map(|target| {
            let suite = suite::resolve(target)
                .and_then(|path| suite::load(engine, &path, cache, &policy.module_limits))
                .map_err(|e| e.to_string())?;
            let session =
                Session::start(engine, &suite, policy.clone()).map_err(|e| format!("{}: {e}", suite.path.display()))?;
            Ok(Loaded { suite, session })
        })
        .collect()
}

/// The policy and engine every command starts from.
fn engine_for(sandbox_args: &SandboxArgs, seed: u64, real_world: bool) -> Result<(Policy, wasmtime::Engine), String> {
    let policy = sandbox_args.policy(seed, real_world)?;
    let engine = sandbox::engine(&policy).map_err(|e| e.to_string())?;
    Ok((policy, engine))
}
