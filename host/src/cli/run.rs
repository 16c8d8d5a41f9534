//! `leakhost run` and `leakhost list`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::policy::{LeakPolicy, LeakRecords};
use super::{engine_for, load_all, BuildArgs, CliError, ColorChoice, SandboxArgs, SelectionArgs};
use super::{EXIT_LEAKED, EXIT_OK, EXIT_TESTS_FAILED};
use crate::leak::baseline::RunKey;
use crate::plan::Plan;
use crate::report::{
    EventsWriter, HtmlReporter, HumanReporter, JsonReporter, JunitReporter, ProgressReporter, JSON_SCHEMA, JSON_VERSION,
};
use crate::run::{Event, EventSink, RunOptions, SuiteRun};
use crate::sandbox::EpochTicker;
use crate::suite::Cache;
use crate::text::GuestText;

/// Options of `leakhost run`.
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
    fn emit(&mut self, event: &Event) {
        for sink in self.0.iter_mut() {
            sink.emit(event);
        }
    }

    fn wants_every_test_delta(&self) -> bool {
        self.0.iter().any(|sink| sink.wants_every_test_delta())
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

/// A report file, opened before the run starts so that a path that cannot be written
/// is found before any test runs, and the results of a long run are never lost to it.
struct ReportFile {
    path: PathBuf,
    what: &'static str,
    file: std::fs::File,
}

impl ReportFile {
    fn create(path: &Path, what: &'static str) -> Result<Self, CliError> {
        let file = std::fs::File::create(path).map_err(|source| CliError::Report {
            path: path.to_path_buf(),
            what,
            source,
        })?;
        Ok(ReportFile { path: path.to_path_buf(), what, file })
    }

    fn error(&self, source: std::io::Error) -> CliError {
        CliError::Report { path: self.path.clone(), what: self.what, source }
    }

    fn write(mut self, text: std::io::Result<String>) -> Result<(), CliError> {
        let written = text.and_then(|text| {
            self.file.write_all(text.as_bytes())?;
            self.file.flush()
        });
        written.map_err(|source| CliError::Report { path: self.path, what: self.what, source })
    }
}

/// What a `--baseline` report must share with this run.
fn run_key(args: &RunArgs, suites: Vec<String>) -> RunKey {
    RunKey {
        schema: JSON_SCHEMA.into(),
        version: JSON_VERSION.into(),
        suites,
        repeat: args.repeat.into(),
        measure: args.report_leaks,
        warmup: args.warmup as u64,
        stop_on_error: args.stop_on_error,
    }
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
    let policy = LeakPolicy::load(args.report_leaks, args.allow.as_deref(), args.baseline.as_deref(), &args.targets)?;
    let run_key = run_key(args, loaded.iter().map(|l| l.suite.display_name()).collect());
    let mut reports = Reports::open(args, &policy, &run_key)?;
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
    let mut leaks = LeakRecords::default();
    let result = {
        let mut sinks: Vec<&mut dyn EventSink> = vec![&mut human];
        // Only a policy looks at stacks; a run without one pays nothing per event for them.
        if args.report_leaks && !policy.is_empty() {
            sinks.push(&mut leaks);
        }
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
        crate::run::run(&mut suites, &run_options(args), &mut Fanout(sinks))
    };
    drop(human);
    let events_to_stdout = reports.events_to_stdout;
    // Reports are written whatever happened: an aborted run's report says why it stopped.
    reports.write()?;
    let summary = result?;
    let failing_leaks: Vec<GuestText> = match policy.is_empty() {
        // Without a policy every leak fails --fail-on-leak, and there is nothing to print.
        true => summary.leaks.iter().map(|verdict| verdict.layer.clone()).collect(),
        false => policy.apply_after_run(&run_key, &leaks.leaks(), events_to_stdout),
    };
    Ok(ExitCode::from(if !summary.ok() {
        EXIT_TESTS_FAILED
    } else if (args.fail_on_leak && !failing_leaks.is_empty())
        || (args.fail_on_undecided && !summary.undecided.is_empty())
    {
        EXIT_LEAKED
    } else {
        EXIT_OK
    }))
}

fn run_options(args: &RunArgs) -> RunOptions {
    RunOptions {
        repeat: args.repeat,
        max_iterations: args.max_iterations,
        measure: args.report_leaks,
        warmup: args.warmup,
        stop_on_error: args.stop_on_error,
        jobs: args.jobs as usize,
        every_test_delta: false,
        engine: args.sandbox.engine.name(),
        seed: args.seed,
        stacks: !args.no_stacks,
    }
}

/// The event stream, and the file it goes to (`None`: stdout).
type EventStream = (Option<ReportFile>, EventsWriter<Box<dyn Write>>);

/// The report files a run writes, opened before it starts, with their reporters.
struct Reports {
    json: Option<(ReportFile, JsonReporter)>,
    junit: Option<(ReportFile, JunitReporter)>,
    html: Option<(ReportFile, HtmlReporter)>,
    events: Option<EventStream>,
    events_to_stdout: bool,
}

impl Reports {
    fn open(args: &RunArgs, policy: &LeakPolicy, run_key: &RunKey) -> Result<Self, CliError> {
        let timings = !args.no_timings;
        let json = args.json.as_deref().map(|p| ReportFile::create(p, "JSON")).transpose()?;
        let events_to_stdout = args.events.as_deref() == Some(Path::new("-"));
        let events = match &args.events {
            Some(_) if events_to_stdout => {
                Some((None, EventsWriter::new(Box::new(std::io::stdout()) as Box<dyn Write>, timings)))
            }
            Some(path) => {
                let file = ReportFile::create(path, "events")?;
                let out: Box<dyn Write> = Box::new(file.file.try_clone().map_err(|source| file.error(source))?);
                Some((Some(file), EventsWriter::new(out, timings)))
            }
            None => None,
        };
        let junit = args.junit.as_deref().map(|p| ReportFile::create(p, "JUnit")).transpose()?;
        let html = args.html.as_deref().map(|p| ReportFile::create(p, "HTML")).transpose()?;
        Ok(Reports {
            json: json.map(|f| (f, JsonReporter::new(timings))),
            junit: junit.map(|f| (f, policy.excusing(JunitReporter::new(args.fail_on_leak, timings), run_key))),
            html: html.map(|f| (f, HtmlReporter::new())),
            events,
            events_to_stdout,
        })
    }

    fn sinks(&mut self) -> Vec<&mut dyn EventSink> {
        let mut sinks: Vec<&mut dyn EventSink> = Vec::new();
        if let Some((_, json)) = self.json.as_mut() {
            sinks.push(json);
        }
        if let Some((_, junit)) = self.junit.as_mut() {
            sinks.push(junit);
        }
        if let Some((_, events)) = self.events.as_mut() {
            sinks.push(events);
        }
        if let Some((_, html)) = self.html.as_mut() {
            sinks.push(html);
        }
        sinks
    }

    fn write(self) -> Result<(), CliError> {
        if let Some((file, events)) = self.events {
            let written = events.finish();
            match file {
                Some(file) => written.map_err(|source| file.error(source))?,
                None => written.map_err(|source| CliError::Report { path: "-".into(), what: "events", source })?,
            }
        }
        if let Some((file, json)) = self.json {
            json.write_json(&file.file).map_err(|source| file.error(source))?;
        }
        if let Some((file, junit)) = self.junit {
            file.write(junit.to_xml())?;
        }
        if let Some((file, html)) = self.html {
            file.write(Ok(html.to_html()))?;
        }
        Ok(())
    }
}
