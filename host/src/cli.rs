//! The command line: one clap-derived options struct per command, wired to the library.

mod cargo;
mod error;
mod inspect;
mod new;
mod options;
mod policy;
mod report;
mod reports;
mod run;
mod stack;
mod usage;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::run::{worker_stack_size, Session};
use crate::sandbox::{self, Policy};
use crate::suite::{self, Cache, Suite};
use crate::text::GuestText;
pub use cargo::cargo_main;
pub use error::{CliError, EXIT_ENVIRONMENT, EXIT_INTERNAL, EXIT_LEAKED, EXIT_OK, EXIT_TESTS_FAILED, EXIT_USAGE};
pub use options::{BuildArgs, ColorChoice, NoTests, OptionError, SandboxArgs, SelectionArgs, Size};

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

/// The subcommands. Deferred: a run builds the arguments of its own command only, not of all
/// five (a quarter of the parse's instructions, issue 26). A command's options struct is built
/// last and its doc comment becomes the command's description, so each repeats its variant's
/// (checked by `usage::tests::descriptions_agree_built_and_unbuilt`).
#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run suites' tests, layer by layer, as zope.testrunner does.
    Run(Box<run::RunArgs>),
    /// List the tests a run would run, by layer, without running them.
    List(run::ListArgs),
    /// Show a suite's ABI version, layers, test counts, exports and sandbox.
    Inspect(inspect::InspectArgs),
    /// Create a suite package that builds and runs as created.
    New(new::NewArgs),
    /// Render JSON reports again as HTML, JUnit or JSON, merging the reports of a run's partitions.
    Report(report::ReportArgs),
}

/// Parses the process arguments and runs; returns the exit status.
pub fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match Cli::try_parse_from(&argv) {
        Ok(cli) => execute(cli),
        Err(error) => usage_error(error, &argv),
    }
}

/// Runs a parsed command line; returns the exit status.
fn execute(cli: Cli) -> ExitCode {
    let max_stack = match &cli.command {
        Command::Run(args) => args.sandbox.max_stack,
        Command::List(args) => args.sandbox.max_stack,
        Command::Inspect(args) => args.sandbox.max_stack,
        Command::New(_) | Command::Report(_) => Size(0),
    };
    let stack = worker_stack_size(usize::try_from(max_stack.0).unwrap_or(usize::MAX));
    let result = stack::run_with_stack(stack, max_stack.to_string(), move || dispatch(cli));
    match result {
        Ok(code) => code,
        Err(error) => fail(&error),
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, CliError> {
    let cache = if cli.no_cache { None } else { Cache::default_location() };
    let cache = cache.as_ref();
    match cli.command {
        Command::Run(args) => run::run(&args, cache),
        Command::List(args) => run::list(&args, cache),
        Command::Inspect(args) => inspect::inspect(&args, cache),
        Command::New(args) => new::new(&args),
        Command::Report(args) => report::report(&args),
    }
}

/// Help and version go out as clap prints them; any other parse error becomes the
/// same single `leakhost: error:` line as every other bad input, saying what to write instead.
fn usage_error(error: clap::Error, argv: &[std::ffi::OsString]) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            error.exit()
        }
        _ => fail(&CliError::Usage(usage::message(&built_command(), &error, argv))),
    }
}

/// Leaves what a finished command still holds to the process's exit. The sessions' stores hold
/// memory reservations and code mappings: unmapping them one by one costs a run more than the
/// exit that frees them all at once (issue 26). Only for values with nothing left to flush:
/// reports and output are written before this.
fn leave_to_exit<T>(value: T) {
    std::mem::forget(value);
}

/// The whole command line's definition, every subcommand's arguments included (parsing builds
/// only the command it parses into).
fn built_command() -> clap::Command {
    let mut command = Cli::command();
    command.build();
    command
}

/// Prints the error as one line and returns its exit status. Messages can carry guest
/// text (names, trap descriptions), so the line is escaped for the terminal here, once.
fn fail(error: &CliError) -> ExitCode {
    eprintln!("leakhost: error: {}", GuestText::from(error.to_string()).line());
    ExitCode::from(error.exit_code())
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
    build: &BuildArgs,
) -> Result<Vec<Loaded<'e>>, CliError> {
    let build = build.options();
    let mut loaded = Vec::new();
    for target in targets {
        // A package without the SDK gives one module per test binary.
        let resolved = suite::resolve_all(target, &build)?;
        let before = loaded.len();
        for suite::Resolved { path, built_test } in resolved {
            let suite = suite::load(engine, &path, cache, &policy.module_limits)?;
            let session = Session::start(engine, &suite, policy.clone())
                .map_err(|error| CliError::Start { path: suite.path.clone(), error })?;
            for note in session.notes() {
                eprintln!(
                    "leakhost: note: {}: {}",
                    GuestText::from(suite.display_name()).line(),
                    GuestText::from(note.as_str()).line()
                );
            }
            let bare = suite.instrumentation.command.is_some();
            match (session.manifest().tests.is_empty(), bare, built_test) {
                (false, _, _) => loaded.push(Loaded { suite, session }),
                (true, _, true) => {}
                (true, true, false) => return Err(suite::SuiteError::NoLibtestTests(suite.path.clone()).into()),
                (true, false, false) => return Err(suite::SuiteError::NoTests(suite.path.clone()).into()),
            }
        }
        if loaded.len() == before {
            return Err(suite::SuiteError::NoLibtestTests(target.clone()).into());
        }
    }
    Ok(loaded)
}

/// The policy and engine every command starts from.
fn engine_for(sandbox_args: &SandboxArgs, seed: u64, real_world: bool) -> Result<(Policy, wasmtime::Engine), CliError> {
    let policy = sandbox_args.policy(seed, real_world)?;
    let engine = sandbox::engine(&policy)?;
    Ok((policy, engine))
}
