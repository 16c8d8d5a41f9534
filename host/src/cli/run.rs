//! `leakhost run` and `leakhost list`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{engine_for, fail, load_all, BuildArgs, ColorChoice, SandboxArgs, SelectionArgs};
use super::{EXIT_LEAKED, EXIT_OK, EXIT_TESTS_FAILED};
use crate::plan::Plan;
use crate::report::{HumanReporter, JsonReporter, JunitReporter, ProgressReporter};
use crate::run::{Event, EventSink, RunOptions, Summary};
use crate::sandbox::EpochTicker;
use crate::suite::Cache;

/// Options of `leakhost run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Suites: .wasm files, or Cargo package directories to build for wasm32-wasip1. Building runs
    /// the package's build scripts and proc-macros natively, outside the sandbox: for a suite you do
    /// not trust, build it in an isolated environment and run the .wasm.
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<PathBuf>,

    /// Repeat each layer's tests N times in place.
    #[arg(short = 'N', long = "repeat", value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// More output: -v dots, -vv test names, -vvv test times.
    #[arg(short, long, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Minimal output: only failures, errors, leaks and the total.
    #[arg(short, long)]
    pub quiet: bool,

    /// Report what each iteration leaked (needs -N 2 or more); with -v per type, with -vv per test.
    #[arg(short = 'r', long = "report-refcounts", visible_alias = "report-leaks")]
    pub report_leaks: bool,

    /// Leading iterations not counted by the leak verdict.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub warmup: usize,

    /// Exit with status 3 when a layer leaks (and no test failed).
    #[arg(long, requires = "report_leaks")]
    pub fail_on_leak: bool,

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

    /// Leave timings out of the JSON and JUnit reports, so two runs give byte-identical files.
    #[arg(long)]
    pub no_timings: bool,

    /// Colour the output.
    #[arg(long, value_enum, default_value = "auto", value_name = "WHEN")]
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

/// Options of `leakhost list`.
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
    fn emit(&mut self, event: &Event<'_>) {
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
            let _ = writeln!(out, "Suite {}:", l.suite.display_name());
        }
        for layer in &plan.layers {
            let _ = writeln!(out, "Listing {} tests:", plan.graph.name(layer.layer));
            for &test in &layer.tests {
                let _ = writeln!(out, "  {}", plan.test_names[test as usize]);
            }
        }
    }
}

/// `leakhost list`: what `run` would run, without running it.
pub fn list(args: &ListArgs, cache: Option<&Cache>) -> ExitCode {
    let (policy, engine) = match engine_for(&args.sandbox, 0, false) {
        Ok(pair) => pair,
        Err(e) => return fail(e),
    };
    let _ticker = policy.timeout.map(|_| EpochTicker::start(&engine));
    let loaded = match load_all(&engine, &args.targets, &policy, cache, &args.build) {
        Ok(loaded) => loaded,
        Err(e) => return fail(e),
    };
    let selection = args.selection.selection();
    let plans: Vec<Plan> = loaded.iter().map(|l| Plan::select(l.session.manifest(), &selection)).collect();
    print_listing(&loaded, &plans, selection.shuffle);
    ExitCode::from(EXIT_OK)
}

/// `leakhost run`.
pub fn run(args: &RunArgs, cache: Option<&Cache>) -> ExitCode {
    if args.report_leaks && args.repeat < 2 {
        return fail("-r needs -N 2 or more: leaks show as growth between iterations");
    }
    if args.report_leaks && args.warmup >= args.repeat as usize {
        return fail(format_args!("--warmup {} leaves no iteration of -N {} to count", args.warmup, args.repeat));
    }
    args.color.apply();
    let (policy, engine) = match engine_for(&args.sandbox, args.seed, args.real_world) {
        Ok(pair) => pair,
        Err(e) => return fail(e),
    };
    let _ticker = policy.timeout.map(|_| EpochTicker::start(&engine));
    let mut loaded = match load_all(&engine, &args.targets, &policy, cache, &args.build) {
        Ok(loaded) => loaded,
        Err(e) => return fail(e),
    };
    let selection = args.selection.selection();
    let plans: Vec<Plan> = loaded.iter().map(|l| Plan::select(l.session.manifest(), &selection)).collect();
    if args.list_tests {
        print_listing(&loaded, &plans, selection.shuffle);
        return ExitCode::from(EXIT_OK);
    }
    if let Some(seed) = selection.shuffle {
        println!("Tests shuffled with seed {seed}.");
    }

    let options = RunOptions {
        repeat: args.repeat,
        measure: args.report_leaks,
        warmup: args.warmup,
        stop_on_error: args.stop_on_error,
        jobs: args.jobs as usize,
        // Per-test changes are shown at -vv and kept in the JSON report; otherwise only
        // the verdict needs them, and it needs far fewer snapshots.
        every_test_delta: args.verbose >= 2 || args.json.is_some(),
    };
    let several = loaded.len() > 1;
    let human = HumanReporter::new(std::io::stdout().lock(), if args.quiet { 0 } else { args.verbose })
        .quiet(args.quiet)
        .show_output(args.sandbox.show_output)
        .several_suites(several);
    let total_tests = plans.iter().map(Plan::test_count).sum::<usize>() * args.repeat as usize;
    let mut human = ProgressReporter::new(human, total_tests, !args.quiet && args.verbose == 0);
    let mut json = args.json.as_ref().map(|_| JsonReporter::new(&options, !args.no_timings));
    let mut junit = args.junit.as_ref().map(|_| JunitReporter::new(args.fail_on_leak, !args.no_timings));

    let result = {
        let mut sinks: Vec<&mut dyn EventSink> = vec![&mut human];
        if let Some(json) = json.as_mut() {
            sinks.push(json);
        }
        if let Some(junit) = junit.as_mut() {
            sinks.push(junit);
        }
        let mut sink = Fanout(sinks);
        let mut total = Summary::default();
        let mut failure = None;
        for (l, plan) in loaded.iter_mut().zip(&plans) {
            sink.emit(&Event::SuiteStarted { suite: &l.suite.display_name() });
            match l.session.run(plan, &options, &mut sink) {
                Ok(summary) => {
                    let stopped = args.stop_on_error && !summary.ok();
                    total.absorb(summary);
                    if stopped {
                        break;
                    }
                }
                Err(e) => {
                    failure = Some(format!("{}: {e}", l.suite.path.display()));
                    break;
                }
            }
        }
        match failure {
            Some(reason) => {
                sink.emit(&Event::Aborted { reason: &reason });
                Err(reason)
            }
            None => {
                sink.emit(&Event::Finished { summary: &total });
                Ok(total)
            }
        }
    };
    drop(human);
    if let (Some(path), Some(json)) = (&args.json, json) {
        if let Err(e) = json.write_to(path) {
            return fail(format_args!("{}: cannot write the JSON report: {e}", path.display()));
        }
    }
    if let (Some(path), Some(junit)) = (&args.junit, junit) {
        if let Err(e) = junit.write_to(path) {
            return fail(format_args!("{}: cannot write the JUnit report: {e}", path.display()));
        }
    }
    match result {
        Ok(summary) if !summary.ok() => ExitCode::from(EXIT_TESTS_FAILED),
        Ok(summary) if args.fail_on_leak && !summary.leaks.is_empty() => ExitCode::from(EXIT_LEAKED),
        Ok(_) => ExitCode::from(EXIT_OK),
        Err(e) => fail(e),
    }
}
