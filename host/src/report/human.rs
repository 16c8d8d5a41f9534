//! zope.testrunner's human-readable output.

use std::io::Write;
use std::time::Duration;

use owo_colors::{OwoColorize, Stream};

use super::format_seconds;
use super::text::{delta_text, verdict_text};
use crate::leak::policy::{LayerPolicy, PolicySummary};
use crate::leak::{Delta, Shape, Snapshot, Verdict};
use crate::run::{Counts, Event, EventSink, FreshReason, HookOutcome, LayerRef, Outcome, Summary};
use crate::sandbox::CapturedOutput;
use crate::text::GuestText;

/// Rows of the `-r -v` type table shown before the rest are cut with a notice: a suite
/// may track thousands of types, and a table that long helps nobody on a terminal.
pub const MAX_TYPE_ROWS: usize = 100;

/// Renders events as zope.testrunner prints them.
pub struct HumanReporter<W: Write> {
    out: W,
    verbosity: u8,
    quiet: bool,
    several_suites: bool,
    /// Print every test's captured output, not only that of failures and errors.
    show_output: bool,
    /// A line of -v dots, or a -vv test name, is open and must be ended before other output.
    dots_open: bool,
    /// The layer whose tests run now; a broken set-up is listed under its name, as zope does.
    layer: Option<GuestText>,
    errors: Vec<String>,
    failures: Vec<String>,
    /// What the leak policy made of each leaking layer, printed after the total.
    policies: Vec<(GuestText, LayerPolicy)>,
    policy: Option<PolicySummary>,
}

fn red(text: &str) -> String {
    text.if_supports_color(Stream::Stdout, |t| t.red()).to_string()
}

fn green(text: &str) -> String {
    text.if_supports_color(Stream::Stdout, |t| t.green()).to_string()
}

fn yellow(text: &str) -> String {
    text.if_supports_color(Stream::Stdout, |t| t.yellow()).to_string()
}

/// An iteration's `-r` figures, as zope prints them.
struct Figures<'a> {
    snapshot: &'a Snapshot,
    delta: &'a Delta,
}

impl std::fmt::Display for Figures<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (snapshot, delta) = (self.snapshot, self.delta);
        write!(
            f,
            "  live blocks={:<8} change={:<6} live bytes={:<10} change={:<8} pages={:<6} change={}",
            snapshot.live_blocks,
            delta.blocks,
            snapshot.live_bytes,
            delta.bytes,
            snapshot.pages(),
            delta.pages
        )
    }
}

/// Red if anything failed, green otherwise.
fn by_result(text: String, counts_ok: bool) -> String {
    if counts_ok {
        green(&text)
    } else {
        red(&text)
    }
}

impl<W: Write> HumanReporter<W> {
    /// A reporter writing to `out` at zope verbosity `verbosity` (the count of -v).
    pub fn new(out: W, verbosity: u8) -> Self {
        HumanReporter {
            out,
            verbosity,
            quiet: false,
            several_suites: false,
            show_output: verbosity >= 2,
            dots_open: false,
            layer: None,
            errors: Vec::new(),
            failures: Vec::new(),
            policies: Vec::new(),
            policy: None,
        }
    }

    /// Also prints the output of tests that pass or skip (always on at -vv).
    pub fn show_output(mut self, show: bool) -> Self {
        self.show_output |= show;
        self
    }

    /// Prints only failures, errors, leaks and the total.
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Names each suite before its layers.
    pub fn several_suites(mut self, several: bool) -> Self {
        self.several_suites = several;
        self
    }

    /// Gives the writer back.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn end_dots(&mut self) {
        if self.dots_open {
            let _ = writeln!(self.out);
            self.dots_open = false;
        }
    }

    /// A line that -q leaves out.
    fn info(&mut self, text: std::fmt::Arguments<'_>) {
        if !self.quiet {
            self.line(text);
        }
    }

    fn line(&mut self, text: std::fmt::Arguments<'_>) {
        self.end_dots();
        let _ = self.out.write_fmt(text);
        let _ = writeln!(self.out);
    }

    fn block(&mut self, title: &str, name: &GuestText, message: &GuestText, output: &CapturedOutput) {
        self.end_dots();
        let heading = red(&format!("{title} in test {}", name.line()));
        let message = message.lines().to_string();
        let _ = write!(self.out, "\n\n{heading}\n{}\n", message.trim_end());
        if !output.is_empty() {
            let _ = write!(self.out, "\nCaptured output:\n");
            self.write_output(output);
        }
        let _ = writeln!(self.out);
    }

    fn write_output(&mut self, output: &CapturedOutput) {
        let _ = write!(self.out, "{}", output.text.lines());
        if !output.text.is_empty() && !output.text.raw().ends_with('\n') {
            let _ = writeln!(self.out);
        }
        if output.dropped > 0 {
            let _ = writeln!(self.out, "[{} more bytes of output dropped]", output.dropped);
        }
    }

    /// A layer hook's output goes with its line, shown as a test's would be.
    fn hook_output(&mut self, output: &CapturedOutput, failed: bool) {
        if !output.is_empty() && (failed || self.show_output) {
            self.end_dots();
            self.write_output(output);
        }
    }

    fn ran(&mut self, counts: &Counts, elapsed: std::time::Duration) {
        let text = format!(
            "  Ran {} tests with {} failures, {} errors and {} skipped in {}.",
            counts.tests,
            counts.failures,
            counts.errors,
            counts.skipped,
            format_seconds(elapsed)
        );
        self.info(format_args!("{}", by_result(text, counts.failures + counts.errors == 0)));
    }

    fn test_progress(&mut self, elapsed: std::time::Duration, outcome: &Outcome) {
        if let (Outcome::Skip(reason), true) = (outcome, self.verbosity >= 2) {
            let _ = write!(self.out, " (skipped: {})", reason.line());
        }
        match self.verbosity {
            0 => {}
            1 => {
                if !self.dots_open {
                    let _ = write!(self.out, "    ");
                    self.dots_open = true;
                }
                let _ = write!(self.out, ".");
            }
            2 => {
                let _ = writeln!(self.out);
                self.dots_open = false;
            }
            _ => {
                let _ = writeln!(self.out, " ({:.3} s)", elapsed.as_secs_f64());
                self.dots_open = false;
            }
        }
    }

    /// zope's "Leak details" table: per-type changes, then changed user counters, each
    /// cut after [`MAX_TYPE_ROWS`] rows with a notice (the totals still count every row).
    fn leak_details(&mut self, delta: &Delta) {
        if !delta.types.is_empty() {
            self.line(format_args!("      Leak details, changes in instances and bytes by type:"));
            self.line(format_args!("      {:<55} {:>6} {:>8}", "type", "insts", "bytes"));
            for t in delta.types.iter().take(MAX_TYPE_ROWS) {
                let name = t.name.line().to_string();
                self.line(format_args!("      {name:<55} {:>6} {:>8}", t.instances, t.bytes));
            }
            self.cut_notice(delta.types.len(), "types");
            let insts: i64 = delta.types.iter().map(|t| t.instances).sum();
            let bytes: i64 = delta.types.iter().map(|t| t.bytes).sum();
            self.line(format_args!("      {:<55} {:>6} {:>8}", "total", insts, bytes));
        }
        if !delta.counters.is_empty() {
            self.line(format_args!("      Counters changed:"));
            for (name, change) in delta.counters.iter().take(MAX_TYPE_ROWS) {
                let name = name.line().to_string();
                self.line(format_args!("      {name:<55} {change:>+6}"));
            }
            self.cut_notice(delta.counters.len(), "counters");
        }
    }

    fn cut_notice(&mut self, rows: usize, what: &str) {
        if rows > MAX_TYPE_ROWS {
            let more = rows - MAX_TYPE_ROWS;
            self.line(format_args!("      ... {more} more {what} not shown (the JSON report has them all)"));
        }
    }

    fn leak_line(&mut self, iteration: u32, snapshot: Option<&Snapshot>, delta: Option<&Delta>) {
        // As zope's -r: the first iteration only warms up, so its change is not shown.
        let Some(snapshot) = snapshot.filter(|_| iteration >= 2 && !self.quiet) else {
            return;
        };
        match delta {
            Some(delta) => {
                // One string, then one write: formatting the padded figures straight into the
                // line-buffered output cost more.
                let text = Figures { snapshot, delta }.to_string();
                let grew = delta.blocks > 0 || delta.bytes > 0 || delta.pages > 0;
                self.line(format_args!("{}", if grew { yellow(&text) } else { text }));
                if self.verbosity > 0 {
                    self.leak_details(delta);
                }
            }
            None => self.line(format_args!(
                "  live blocks={:<8} change=?      (not measured: a fresh instance started in this iteration)",
                snapshot.live_blocks
            )),
        }
    }
}

impl<W: Write> HumanReporter<W> {
    fn set_up(&mut self, layer: &LayerRef, outcome: &HookOutcome, elapsed: Duration, replay: bool) {
        let name = layer.name.line();
        match outcome {
            HookOutcome::Ok if replay && self.verbosity == 0 => {}
            HookOutcome::Ok if replay => {
                self.info(format_args!("  Set up {name} again in {}.", format_seconds(elapsed)))
            }
            HookOutcome::Ok => self.info(format_args!("  Set up {name} in {}.", format_seconds(elapsed))),
            HookOutcome::Failed(message) => {
                let text = red(&format!("  Set up {name} failed: {}", message.lines().to_string().trim_end()));
                self.line(format_args!("{text}"));
                let running = self.layer.clone().unwrap_or_else(|| layer.name.clone());
                self.errors.push(format!("Layer: {}.setUp", running.line()));
            }
            HookOutcome::NotSupported => {}
        }
    }

    fn tear_down(&mut self, layer: &LayerRef, outcome: &HookOutcome, elapsed: Duration) {
        let name = layer.name.line();
        match outcome {
            HookOutcome::Ok => self.info(format_args!("  Tear down {name} in {}.", format_seconds(elapsed))),
            HookOutcome::NotSupported => self.info(format_args!("  Tear down {name} ... not supported")),
            HookOutcome::Failed(message) => {
                let text = red(&format!("  Tear down {name} failed: {}", message.lines().to_string().trim_end()));
                self.line(format_args!("{text}"));
                self.errors.push(format!("Layer: {name}.tearDown"));
            }
        }
    }

    fn test_finished(&mut self, test: &GuestText, outcome: &Outcome, output: &CapturedOutput, delta: Option<&Delta>) {
        if let (Some(delta), true) = (delta, self.verbosity >= 2) {
            if !delta.is_zero() {
                let text = delta_text(delta);
                self.line(format_args!("      changed: {text}"));
            }
        }
        match outcome {
            Outcome::Failure(message) => {
                self.failures.push(test.line().to_string());
                self.block("Failure", test, message, output);
            }
            Outcome::Error(message) => {
                self.errors.push(test.line().to_string());
                self.block("Error", test, message, output);
            }
            Outcome::Pass | Outcome::Skip(_) => {
                if self.show_output && !output.is_empty() {
                    self.end_dots();
                    self.write_output(output);
                }
            }
        }
    }

    fn finished(&mut self, summary: &Summary) {
        if self.verbosity > 0 {
            for (title, names) in
                [("Tests with errors:", self.errors.clone()), ("Tests with failures:", self.failures.clone())]
            {
                if !names.is_empty() {
                    self.line(format_args!("{title}"));
                    for name in names {
                        self.line(format_args!("   {name}"));
                    }
                }
            }
        }
        for (title, verdicts) in [("Leaks:", &summary.leaks), ("Undecided (--max-iterations):", &summary.undecided)] {
            if !verdicts.is_empty() {
                self.line(format_args!("{}", yellow(title)));
                for verdict in verdicts {
                    let text = yellow(&format!("  {}", verdict_text(verdict)));
                    self.line(format_args!("{text}"));
                }
            }
        }
        // zope prints no total when exactly one layer ran; -q keeps it as the one summary line.
        if summary.layers_run != 1 || self.quiet {
            let text = format!(
                "Total: {} tests, {} failures, {} errors and {} skipped in {}.",
                summary.tests,
                summary.failures,
                summary.errors,
                summary.skipped,
                format_seconds(summary.elapsed)
            );
            self.line(format_args!("{}", by_result(text, summary.ok())));
        }
        if let Some(policy) = &self.policy {
            for line in super::policy::policy_lines(&self.policies, policy) {
                self.line(format_args!("{line}"));
            }
        }
        let _ = self.out.flush();
    }
}

impl<W: Write> EventSink for HumanReporter<W> {
    fn emit(&mut self, event: &Event) {
        match event {
            Event::RunStarted(_) | Event::SuiteFinished { .. } => {}
            Event::SuiteStarted { name, .. } => {
                if self.several_suites {
                    self.info(format_args!("Suite {}:", GuestText::from(name.as_str()).line()));
                }
            }
            Event::LayerStarted { layer, .. } => {
                self.layer = Some(layer.name.clone());
                self.info(format_args!("Running {} tests:", layer.name.line()));
            }
            Event::SetUp { layer, outcome, elapsed, replay, output, .. } => {
                self.set_up(layer, outcome, *elapsed, *replay);
                self.hook_output(output, outcome != &HookOutcome::Ok);
            }
            Event::TearDown { layer, outcome, elapsed, output, .. } => {
                self.tear_down(layer, outcome, *elapsed);
                self.hook_output(output, matches!(outcome, HookOutcome::Failed(_)));
            }
            Event::FreshInstance { reason, .. } => match reason {
                FreshReason::NoTearDown(_) => self.info(format_args!("  Running in a fresh instance.")),
                FreshReason::Trap(what) if self.verbosity > 0 => {
                    self.info(format_args!("  Continuing in a fresh instance after {} trapped.", what.line()))
                }
                FreshReason::Trap(_) => {}
            },
            Event::IterationStarted { iteration, planned, .. } => self.iteration_started(*iteration, *planned),
            Event::TestStarted { test, .. } => {
                if self.verbosity >= 2 {
                    self.end_dots();
                    let _ = write!(self.out, " {}", test.name.line());
                    self.dots_open = true;
                }
            }
            Event::TestFinished { test, outcome, output, elapsed, delta, .. } => {
                self.test_progress(*elapsed, outcome);
                self.test_finished(&test.name, outcome, output, delta.as_deref());
            }
            Event::IterationFinished { counts, elapsed, iteration, snapshot, delta, .. } => {
                self.ran(counts, *elapsed);
                self.leak_line(*iteration, snapshot.as_deref(), delta.as_deref());
            }
            Event::Verdict { verdict, .. } => self.verdict(verdict),
            Event::LeakStacks { layer, stacks, .. } => {
                // -q keeps to the verdicts; the stacks are in the other reports.
                let lines = if self.quiet { Vec::new() } else { super::stacks::stack_lines(layer, stacks) };
                for line in lines {
                    self.line(format_args!("{line}"));
                }
            }
            Event::LeakPolicy { layer, policy, .. } => {
                self.policies.push((layer.name.clone(), policy.as_ref().clone()))
            }
            Event::PolicyFinished { summary } => self.policy = Some(summary.as_ref().clone()),
            Event::Stopped { after, .. } => {
                self.line(format_args!("Stopping after {} failed (-x); the remaining tests do not run.", after.line()))
            }
            Event::TearingDownLeftOvers { .. } => self.info(format_args!("Tearing down left over layers:")),
            Event::RunAborted { .. } => {
                // The reason goes to stderr as the run's one error line; only tidy up here.
                self.end_dots();
                let _ = self.out.flush();
            }
            Event::RunFinished { summary } => self.finished(summary),
        }
    }
}

impl<W: Write> HumanReporter<W> {
    fn iteration_started(&mut self, iteration: u32, planned: u32) {
        if iteration > planned {
            self.info(format_args!("Iteration {iteration} (added to decide a leak)"));
        } else if planned > 1 {
            self.info(format_args!("Iteration {iteration}"));
        }
        if self.verbosity > 0 {
            self.info(format_args!("  Running:"));
        }
    }

    fn verdict(&mut self, verdict: &Verdict) {
        // -q lists leaks once, in the final "Leaks:" section.
        let label = match verdict.shape {
            Shape::Leaks => "Leak",
            Shape::Undecided => "Undecided",
            Shape::Settled => "Settled",
            Shape::Flat => return,
        };
        if !self.quiet {
            let text = format!("  {label}: {}", verdict_text(verdict));
            let text = if verdict.shape == Shape::Settled { text } else { yellow(&text) };
            self.line(format_args!("{text}"));
        }
    }
}
