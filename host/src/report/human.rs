//! zope.testrunner's human-readable output.

use std::io::Write;

use owo_colors::{OwoColorize, Stream};

use super::format_seconds;
use crate::leak::{Delta, Growth, Metric, Verdict};
use crate::run::{Counts, Event, EventSink, FreshReason, HookOutcome, Outcome};

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
    errors: Vec<String>,
    failures: Vec<String>,
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
            errors: Vec::new(),
            failures: Vec::new(),
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

    fn block(&mut self, title: &str, name: &str, message: &str, output: &str, dropped: u64) {
        self.end_dots();
        let heading = red(&format!("{title} in test {name}"));
        let _ = write!(self.out, "\n\n{heading}\n{}\n", message.trim_end());
        if !output.is_empty() || dropped > 0 {
            let _ = write!(self.out, "\nCaptured output:\n");
            self.write_output(output, dropped);
        }
        let _ = writeln!(self.out);
    }

    fn write_output(&mut self, output: &str, dropped: u64) {
        let _ = write!(self.out, "{output}");
        if !output.is_empty() && !output.ends_with('\n') {
            let _ = writeln!(self.out);
        }
        if dropped > 0 {
            let _ = writeln!(self.out, "[{dropped} more bytes of output dropped]");
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

    fn test_progress(&mut self, elapsed: std::time::Duration) {
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

    /// zope's "Leak details" table: per-type changes, then changed user counters.
    fn leak_details(&mut self, delta: &Delta) {
        if !delta.types.is_empty() {
            self.line(format_args!("      Leak details, changes in instances and bytes by type:"));
            self.line(format_args!("      {:<55} {:>6} {:>8}", "type", "insts", "bytes"));
            let (mut insts, mut bytes) = (0, 0);
            for t in &delta.types {
                self.line(format_args!("      {:<55} {:>6} {:>8}", t.name, t.instances, t.bytes));
                insts += t.instances;
                bytes += t.bytes;
            }
            self.line(format_args!("      {:<55} {:>6} {:>8}", "total", insts, bytes));
        }
        if !delta.counters.is_empty() {
            self.line(format_args!("      Counters changed:"));
            for (name, change) in &delta.counters {
                self.line(format_args!("      {name:<55} {change:>+6}"));
            }
        }
    }

    fn leak_line(&mut self, iteration: u32, snapshot: Option<&crate::leak::Snapshot>, delta: Option<&Delta>) {
        // As zope's -r: the first iteration only warms up, so its change is not shown.
        let Some(snapshot) = snapshot.filter(|_| iteration >= 2 && !self.quiet) else {
            return;
        };
        match delta {
            Some(delta) => {
                let text = format!(
                    "  live blocks={:<8} change={:<6} live bytes={:<10} change={:<8} pages={:<6} change={}",
                    snapshot.live_blocks,
                    delta.blocks,
                    snapshot.live_bytes,
                    delta.bytes,
                    snapshot.pages(),
                    delta.pages
                );
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

fn growth_text(growth: &Growth) -> String {
    let n = growth.per_iteration();
    match &growth.metric {
        Metric::Blocks => format!("blocks +{n}"),
        Metric::Bytes => format!("bytes +{n}"),
        Metric::Type(name) => format!("{name} +{n}"),
        Metric::Counter(name) => format!("counter {name:?} +{n}"),
    }
}

fn growths_text(growth: &[Growth]) -> String {
    growth.iter().map(growth_text).collect::<Vec<_>>().join(", ")
}

/// One line: what grows in every counted iteration (at least by how much), and which tests cause it.
pub(crate) fn verdict_text(verdict: &Verdict) -> String {
    let mut text = format!("{} grows in each of {} counted iterations", verdict.layer, verdict.counted);
    if !verdict.growth.is_empty() {
        text.push_str(": ");
        text.push_str(&growths_text(&verdict.growth));
    }
    match verdict.tests.as_slice() {
        [] => {}
        [one] if one.growth == verdict.growth => text.push_str(&format!("; caused by {}", one.test)),
        tests => {
            let tests: Vec<String> =
                tests.iter().map(|t| format!("{} ({})", t.test, growths_text(&t.growth))).collect();
            text.push_str(&format!("; caused by {}", tests.join("; ")));
        }
    }
    text
}

fn delta_text(delta: &Delta) -> String {
    let mut parts = vec![format!("blocks {:+}", delta.blocks), format!("bytes {:+}", delta.bytes)];
    if delta.pages != 0 {
        parts.push(format!("pages {:+}", delta.pages));
    }
    parts.extend(delta.types.iter().map(|t| format!("{} {:+}", t.name, t.instances)));
    parts.extend(delta.counters.iter().map(|(n, v)| format!("{n:?} {v:+}")));
    parts.join(", ")
}

impl<W: Write> EventSink for HumanReporter<W> {
    fn emit(&mut self, event: &Event<'_>) {
        match *event {
            Event::SuiteStarted { suite } => {
                if self.several_suites {
                    self.info(format_args!("Suite {suite}:"));
                }
            }
            Event::LayerStarted { layer } => self.info(format_args!("Running {layer} tests:")),
            Event::SetUp { layer, outcome, elapsed, replay } => match outcome {
                HookOutcome::Ok if replay && self.verbosity == 0 => {}
                HookOutcome::Ok if replay => {
                    self.info(format_args!("  Set up {layer} again in {}.", format_seconds(elapsed)))
                }
                HookOutcome::Ok => self.info(format_args!("  Set up {layer} in {}.", format_seconds(elapsed))),
                HookOutcome::Failed(message) => {
                    let text = red(&format!("  Set up {layer} failed: {}", message.trim_end()));
                    self.line(format_args!("{text}"));
                    self.errors.push(format!("Layer: {layer}.setUp"));
                }
                HookOutcome::NotSupported => {}
            },
            Event::TearDown { layer, outcome, elapsed } => match outcome {
                HookOutcome::Ok => self.info(format_args!("  Tear down {layer} in {}.", format_seconds(elapsed))),
                HookOutcome::NotSupported => self.info(format_args!("  Tear down {layer} ... not supported")),
                HookOutcome::Failed(message) => {
                    let text = red(&format!("  Tear down {layer} failed: {}", message.trim_end()));
                    self.line(format_args!("{text}"));
                    self.errors.push(format!("Layer: {layer}.tearDown"));
                }
            },
            Event::FreshInstance { reason } => match reason {
                FreshReason::NoTearDown(_) => self.info(format_args!("  Running in a fresh instance.")),
                FreshReason::Trap(what) if self.verbosity > 0 => {
                    self.info(format_args!("  Continuing in a fresh instance after {what} trapped."))
                }
                FreshReason::Trap(_) => {}
            },
            Event::IterationStarted { iteration, of, .. } => {
                if of > 1 {
                    self.info(format_args!("Iteration {iteration}"));
                }
                if self.verbosity > 0 {
                    self.info(format_args!("  Running:"));
                }
            }
            Event::TestStarted { test, .. } => {
                if self.verbosity >= 2 {
                    self.end_dots();
                    let _ = write!(self.out, " {test}");
                    self.dots_open = true;
                }
            }
            Event::TestFinished { test, outcome, output, elapsed, delta, .. } => {
                self.test_progress(elapsed);
                if let (Some(delta), true) = (delta, self.verbosity >= 2) {
                    if !delta.is_zero() {
                        let text = delta_text(delta);
                        self.line(format_args!("      changed: {text}"));
                    }
                }
                match outcome {
                    Outcome::Failure(message) => {
                        self.failures.push(test.to_string());
                        self.block("Failure", test, message, &output.text, output.dropped);
                    }
                    Outcome::Error(message) => {
                        self.errors.push(test.to_string());
                        self.block("Error", test, message, &output.text, output.dropped);
                    }
                    Outcome::Pass | Outcome::Skip(_) => {
                        if self.show_output && (!output.text.is_empty() || output.dropped > 0) {
                            self.end_dots();
                            self.write_output(&output.text, output.dropped);
                        }
                    }
                }
            }
            Event::IterationFinished { counts, elapsed, iteration, snapshot, delta, .. } => {
                self.ran(&counts, elapsed);
                self.leak_line(iteration, snapshot, delta);
            }
            Event::Verdict { verdict } => {
                // -q lists leaks once, in the final "Leaks:" section.
                if verdict.leaks() && !self.quiet {
                    let text = yellow(&format!("  Leak: {}", verdict_text(verdict)));
                    self.line(format_args!("{text}"));
                }
            }
            Event::Stopped { after } => {
                self.line(format_args!("Stopping after {after} failed (-x); the remaining tests do not run."))
            }
            Event::TearingDownLeftOvers => self.info(format_args!("Tearing down left over layers:")),
            Event::Aborted { .. } => {
                // The reason goes to stderr as the run's one error line; only tidy up here.
                self.end_dots();
                let _ = self.out.flush();
            }
            Event::Finished { summary } => {
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
                if !summary.leaks.is_empty() {
                    self.line(format_args!("{}", yellow("Leaks:")));
                    for verdict in &summary.leaks {
                        let text = yellow(&format!("  {}", verdict_text(verdict)));
                        self.line(format_args!("{text}"));
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
                let _ = self.out.flush();
            }
        }
    }
}
