//! `leakhost run` and `leakhost list`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::options::Size;
use super::reports::Reports;
use super::{engine_for, load_all, BuildArgs, CliError, ColorChoice, SandboxArgs, SelectionArgs};
use super::{EXIT_LEAKED, EXIT_OK, EXIT_TESTS_FAILED};
use crate::plan::Plan;
use crate::report::{HumanReporter, ProgressReporter};
use crate::run::{Event, EventSink, Execution, ReplayBudget, RunOptions, SuiteRun, Summary, DEFAULT_REPLAY_BUDGET};
use crate::sandbox::EpochTicker;
use crate::suite::Cache;
use crate::text::GuestText;

/// Run suites' tests, layer by layer, as zope.testrunner does.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Suites: .wasm files, or Cargo package directories to build for wasm32-wasip1. Building runs
    /// the package's build scripts and proc-macros natively, outside the sandbox: for a suite you do
    /// not trust, build it in an isolated environment and run the .wasm.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<PathBuf>,

    /// Repeat each layer's tests N times in place.
    #[arg(short = 'N', long = "repeat", alias = "repeats", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// More output: -v dots, -vv test names, -vvv test times.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Minimal output: only failures, errors, leaks and the total.
    #[arg(short, long)]
    pub quiet: bool,

    /// Report what each iteration leaked (needs -N 2 or more); with -v per type, with -vv per test.
    #[arg(short = 'r', long = "report-refcounts", visible_alias = "report-leaks",
          aliases = ["report-leak", "report-refcount"])]
    pub report_leaks: bool,

    /// Leading iterations not counted by the leak verdict.
    #[arg(long, value_name = "K", default_value_t = crate::run::DEFAULT_WARMUP)]
    pub warmup: usize,

    /// Do not replay leaking layers to report where their leaked blocks were allocated.
    #[arg(long)]
    pub no_stacks: bool,

    /// Most live blocks a traced replay follows at once; past it the replay stops recording.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPLAY_BUDGET.traced_blocks)]
    pub max_traced_blocks: usize,

    /// Most allocation stacks a traced replay captures.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPLAY_BUDGET.captures)]
    pub max_stack_captures: usize,

    /// Most distinct allocation stacks a traced replay keeps.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_REPLAY_BUDGET.stacks)]
    pub max_distinct_stacks: usize,

    /// Most bytes of distinct frame names and paths one layer's stacks keep, e.g. 16M.
    #[arg(long, value_name = "SIZE", default_value_t = Size::of(DEFAULT_REPLAY_BUDGET.frame_text))]
    pub max_frame_text: Size,

    /// Exit with status 3 when a layer leaks (and no test failed).
    #[arg(long, requires = "report_leaks")]
    pub fail_on_leak: bool,

    /// With -r, add iterations to a layer whose verdict the -N iterations leave undecided, up to N
    /// in all (docs/verdicts.md); N equal to -N adds none.
    #[arg(long, value_name = "N", default_value_t = crate::run::DEFAULT_MAX_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_iterations: u32,

    /// Exit with status 3 also when a layer is still undecided at --max-iterations (and no test failed).
    #[arg(long, requires = "report_leaks")]
    pub fail_on_undecided: bool,
    /// Allowances for known leaks (default: leakhost.toml beside the suite; docs/policy.md).
    #[arg(long, value_name = "FILE", requires = "report_leaks")]
    pub allow: Option<PathBuf>,

    /// Compare the leaks with an earlier --json report: --fail-on-leak then fails only on
    /// a leak that is new or grows faster (docs/policy.md).
    #[arg(long, value_name = "REPORT.json", requires = "report_leaks")]
    pub baseline: Option<PathBuf>,

    /// Run layers in parallel on N threads, each layer in its own instance; output stays in layer order.
    #[arg(short = 'j', long = "jobs", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: u32,

    /// Stop at the first failing or erroring test (the rest of its layer and its iterations too).
    #[arg(short = 'x', long = "stop-on-error")]
    pub stop_on_error: bool,

    /// List the selected tests instead of running them.
    #[arg(long)]
    pub list_tests: bool,

    /// Write the whole run as JSON to FILE (schema: docs/json-report.md).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write JUnit XML to FILE: a testsuite per layer.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write every event as it happens, one JSON object per line, to FILE; `-` for stdout,
    /// which moves the human output to stderr (schema: docs/events.md).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,

    /// Write a self-contained HTML report to FILE: summary, growth plots, per-test and type tables, failures.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,

    /// Leave timings out of the JSON, JUnit and event reports, so two runs give byte-identical files.
    #[arg(long)]
    pub no_timings: bool,

    /// Colour the output.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Seed of the guest's deterministic random numbers.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Give the guest the host's real clocks and random numbers (runs stop being reproducible).
    #[arg(long)]
    pub real_world: bool,

    #[command(flatten)]
    pub selection: SelectionArgs,

    #[command(flatten)]
    pub sandbox: SandboxArgs,

    #[command(flatten)]
    pub build: BuildArgs,
}

/// List the tests a run would run, by layer, without running them.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Suites: .wasm files, or Cargo package directories to build for wasm32-wasip1. Building runs
    /// the package's build scripts and proc-macros natively, outside the sandbox: for a suite you do
    /// not trust, build it in an isolated environment and run the .wasm.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<PathBuf>,

    #[command(flatten)]
    pub selection: SelectionArgs,

    #[command(flatten)]
    pub sandbox: SandboxArgs,

    #[command(flatten)]
    pub build: BuildArgs,
}

/// Sends every event to several sinks, in order.
struct Fanout<'a>(Vec<&'a mut dyn EventSink>);

impl EventSink for Fanout<'_> {
    fn emit(&mut self, event: &Event) {
        for sink in self.0.iter_mut() {
            sink.emit(event);
        }
    }
}

/// zope's `--list-tests` output, with a heading per suite when there are several and
/// the shuffle seed when the order is shuffled, so the listing can be repeated.
fn print_listing(loaded: &[super::Loaded<'_>], plans: &[Plan], shuffle: Option<u64>) {
    let mut out = std::io::stdout().lock();
    if let Some(seed) = shuffle {
        let _ = writeln!(out, "Tests shuffled with seed {seed}.");
    }
    for (l, plan) in loaded.iter().zip(plans) {
        if loaded.len() > 1 {
            let _ = writeln!(out, "Suite {}:", GuestText::from(l.suite.display_name()).line());
        }
        for layer in &plan.layers {
            let _ = writeln!(out, "Listing {} tests:", plan.graph.name(layer.layer).line());
            for &test in &layer.tests {
                let _ = writeln!(out, "  {}", plan.test_names[test as usize].line());
            }
        }
    }
}

/// `leakhost list`: what `run` would run, without running it.
pub fn list(args: &ListArgs, cache: Option<&Cache>) -> Result<ExitCode, CliError> {
    let (policy, engine) = engine_for(&args.sandbox, 0, false)?;
    let _ticker = policy.timeout.map(|_| EpochTicker::start(&engine));
    let loaded = load_all(&engine, &args.targets, &policy, cache, &args.build)?;
    let selection = args.selection.selection();
    let plans: Vec<Plan> = loaded.iter().map(|l| Plan::select(l.session.manifest(), &selection)).collect();
    args.selection.check_selected(&selection, &loaded, &plans)?;
    print_listing(&loaded, &plans, selection.shuffle);
    Ok(ExitCode::from(EXIT_OK))
}

fn check_run_args(args: &RunArgs) -> Result<(), CliError> {
    if args.report_leaks && args.repeat < 2 {
        return Err(CliError::Usage("-r needs -N 2 or more: leaks show as growth between iterations".into()));
    }
    if args.report_leaks && args.warmup >= args.repeat as usize {
        let message = format!("--warmup {} leaves no iteration of -N {} to count", args.warmup, args.repeat);
        return Err(CliError::Usage(message));
    }
    Ok(())
}

/// The run options these arguments describe, with the policy loaded from its files: the
/// one place the command line becomes what the runner obeys.
fn run_options(args: &RunArgs) -> Result<RunOptions, CliError> {
    let policy =
        super::policy::load(args.report_leaks, args.allow.as_deref(), args.baseline.as_deref(), &args.targets)?;
    Ok(RunOptions {
        repeat: args.repeat,
        max_iterations: args.max_iterations,
        measure: args.report_leaks,
        warmup: args.warmup,
        stop_on_error: args.stop_on_error,
        execution: Execution { jobs: args.jobs as usize, engine: args.sandbox.engine },
        seed: args.seed,
        stacks: !args.no_stacks,
        replay_budget: ReplayBudget {
            traced_blocks: args.max_traced_blocks,
            captures: args.max_stack_captures,
            stacks: args.max_distinct_stacks,
            frame_text: usize::try_from(args.max_frame_text.0).unwrap_or(usize::MAX),
        },
        fail_on_leak: args.fail_on_leak,
        fail_on_undecided: args.fail_on_undecided,
        policy: std::sync::Arc::new(policy),
    })
}

/// The exit status a finished run's summary maps to under `options`.
fn exit_status(summary: &Summary, options: &RunOptions) -> u8 {
    if !summary.ok() {
        EXIT_TESTS_FAILED
    } else if (options.fail_on_leak && !summary.unexcused.is_empty())
        || (options.fail_on_undecided && !summary.undecided.is_empty())
    {
        EXIT_LEAKED
    } else {
        EXIT_OK
    }
}

/// `leakhost run`.
pub fn run(args: &RunArgs, cache: Option<&Cache>) -> Result<ExitCode, CliError> {
    check_run_args(args)?;
    args.color.apply();
    let (policy, engine) = engine_for(&args.sandbox, args.seed, args.real_world)?;
    let _ticker = policy.timeout.map(|_| EpochTicker::start(&engine));
    let mut loaded = load_all(&engine, &args.targets, &policy, cache, &args.build)?;
    let selection = args.selection.selection();
    let plans: Vec<Plan> = loaded.iter().map(|l| Plan::select(l.session.manifest(), &selection)).collect();
    args.selection.check_selected(&selection, &loaded, &plans)?;
    if args.list_tests {
        print_listing(&loaded, &plans, selection.shuffle);
        return Ok(ExitCode::from(EXIT_OK));
    }
    let options = run_options(args)?;
    let (json, junit, html, events) =
        (args.json.as_deref(), args.junit.as_deref(), args.html.as_deref(), args.events.as_deref());
    let mut reports = Reports::open(json, junit, html, events, !args.no_timings)?;
    if let Some(seed) = selection.shuffle {
        println!("Tests shuffled with seed {seed}.");
    }
    let human_out: Box<dyn Write> =
        if reports.events_to_stdout { Box::new(std::io::stderr().lock()) } else { Box::new(std::io::stdout().lock()) };
    let human = HumanReporter::new(human_out, if args.quiet { 0 } else { args.verbose })
        .quiet(args.quiet)
        .show_output(args.sandbox.show_output)
        .several_suites(loaded.len() > 1);
    let total_tests = plans.iter().map(Plan::test_count).sum::<usize>() * args.repeat as usize;
    let mut human = ProgressReporter::new(human, total_tests, !args.quiet && args.verbose == 0);
    let result = {
        let mut sinks: Vec<&mut dyn EventSink> = vec![&mut human];
        sinks.extend(reports.sinks());
        let mut suites: Vec<SuiteRun<'_, '_>> = loaded
            .iter_mut()
            .zip(&plans)
            .map(|(l, plan)| SuiteRun {
                name: l.suite.display_name(),
                path: l.suite.path.display().to_string(),
                session: &mut l.session,
                plan,
            })
            .collect();
        crate::run::run(&mut suites, &options, &selection.record(), &mut Fanout(sinks))
    };
    drop(human);
    // Reports are written whatever happened: an aborted run's report says why it stopped.
    reports.write()?;
    super::leave_to_exit(loaded);
    Ok(ExitCode::from(exit_status(&result?, &options)))
}
