//! zope.testrunner's human-readable output.

use std::io::Write;

use super::format_seconds;
use crate::leak::{Delta, Growth, Metric, Verdict};
use crate::run::{Event, EventSink, FreshReason, HookOutcome, Outcome};

/// Renders events as zope.testrunner prints them.
pub struct HumanReporter<W: Write> {
    out: W,
    verbosity: u8,
    /// Print every test's captured output, not only that of failures and errors.
    show_output: bool,
    /// A line of -v dots is open and must be ended before other output.
    dots_open: bool,
    errors: Vec<String>,
    failures: Vec<String>,
}

impl<W: Write> HumanReporter<W> {
    /// A reporter writing to `out` at zope verbosity `verbosity` (the count of -v).
    pub fn new(out: W, verbosity: u8) -> Self {
        HumanReporter {
            out,
            verbosity,
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

    fn line(&mut self, text: std::fmt::Arguments<'_>) {
        self.end_dots();
        let _ = self.out.write_fmt(text);
        let _ = writeln!(self.out);
    }

    fn block(&mut self, title: &str, name: &str, message: &str, output: &str, dropped: u64) {
        self.end_dots();
        let _ = write!(self.out, "\n\n{title} in test {name}\n{}\n", message.trim_end());
        if !output.is_empty() || dropped > 0 {
            let _ = write!(self.out, "\nCaptured output:\n{}", output);
            if !output.ends_with('\n') && !output.is_empty() {
                let _ = writeln!(self.out);
            }
            if dropped > 0 {
                let _ = writeln!(self.out, "[{dropped} more bytes of output dropped]");
            }
        }
        let _ = writeln!(self.out);
    }
}

impl<W: Write> HumanReporter<W> {
    /// zope's "Leak details" table: per-type changes, then changed user counters.
    fn leak_details(&mut self, delta: &Delta) {
        if !delta.types.is_empty() {
            self.line(format_args!(
                "      Leak details, changes in instances and bytes by type:"
            ));
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
    let mut text = format!(
        "{} grows in each of {} counted iterations",
        verdict.layer, verdict.counted
    );
    if !verdict.growth.is_empty() {
        text.push_str(": ");
        text.push_str(&growths_text(&verdict.growth));
    }
    match verdict.tests.as_slice() {
        [] => {}
        [one] if one.growth == verdict.growth => text.push_str(&format!("; caused by {}", one.test)),
        tests => {
            let tests: Vec<String> = tests
                .iter()
                .map(|t| format!("{} ({})", t.test, growths_text(&t.growth)))
                .collect();
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
            Event::LayerStarted { layer } => self.line(format_args!("Running {layer} tests:")),
            Event::SetUp {
                layer,
                outcome,
                elapsed,
                replay,
            } => match outcome {
                HookOutcome::Ok if replay && self.verbosity == 0 => {}
                HookOutcome::Ok if replay => {
                    self.line(format_args!("  Set up {layer} again in {}.", format_seconds(elapsed)))
                }
                HookOutcome::Ok => self.line(format_args!("  Set up {layer} in {}.", format_seconds(elapsed))),
                HookOutcome::Failed(message) => {
                    self.line(format_args!("  Set up {layer} failed: {}", message.trim_end()));
                    self.errors.push(format!("Layer: {layer}.setUp"));
                }
                HookOutcome::NotSupported => {}
            },
            Event::TearDown {
                layer,
                outcome,
                elapsed,
            } => match outcome {
                HookOutcome::Ok => self.line(format_args!("  Tear down {layer} in {}.", format_seconds(elapsed))),
                HookOutcome::NotSupported => self.line(format_args!("  Tear down {layer} ... not supported")),
                HookOutcome::Failed(message) => {
                    self.line(format_args!("  Tear down {layer} failed: {}", message.trim_end()));
                    self.errors.push(format!("Layer: {layer}.tearDown"));
                }
            },
            Event::FreshInstance { reason } => match reason {
                FreshReason::NoTearDown(_) => self.line(format_args!("  Running in a fresh instance.")),
                FreshReason::Trap(what) if self.verbosity > 0 => {
                    self.line(format_args!("  Continuing in a fresh instance after {what} trapped."))
                }
                FreshReason::Trap(_) => {}
            },
            Event::IterationStarted { iteration, of, .. } => {
                if of > 1 {
                    self.line(format_args!("Iteration {iteration}"));
                }
                if self.verbosity > 0 {
                    self.line(format_args!("  Running:"));
                }
            }
            Event::TestStarted { test, .. } => {
                if self.verbosity >= 2 {
                    self.end_dots();
                    let _ = write!(self.out, " {test}");
                }
            }
            Event::TestFinished {
                test,
                outcome,
                output,
                elapsed,
                delta,
                ..
            } => {
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
                    }
                    _ => {
                        let _ = writeln!(self.out, " ({:.3} s)", elapsed.as_secs_f64());
                    }
                }
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
                            let _ = write!(self.out, "{}", output.text);
                            if !output.text.ends_with('\n') && !output.text.is_empty() {
                                let _ = writeln!(self.out);
                            }
                            if output.dropped > 0 {
                                let _ = writeln!(self.out, "[{} more bytes of output dropped]", output.dropped);
                            }
                        }
                    }
                }
            }
            Event::IterationFinished {
                counts,
                elapsed,
                iteration,
                snapshot,
                delta,
                ..
            } => {
                self.line(format_args!(
                    "  Ran {} tests with {} failures, {} errors and {} skipped in {}.",
                    counts.tests,
                    counts.failures,
                    counts.errors,
                    counts.skipped,
                    format_seconds(elapsed)
                ));
                // As zope's -r: the first iteration only warms up, so its change is not shown.
                if let (Some(snapshot), true) = (snapshot, iteration >= 2) {
                    match delta {
                        Some(delta) => {
                            self.line(format_args!(
                                "  live blocks={:<8} change={:<6} live bytes={:<10} change={:<8} pages={:<6} change={}",
                                snapshot.live_blocks,
                                delta.blocks,
                                snapshot.live_bytes,
                                delta.bytes,
                                snapshot.pages(),
                                delta.pages
                            ));
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
            Event::Verdict { verdict } => {
                if verdict.leaks() {
                    let text = verdict_text(verdict);
                    self.line(format_args!("  Leak: {text}"));
                }
            }
            Event::TearingDownLeftOvers => self.line(format_args!("Tearing down left over layers:")),
            Event::Finished { summary } => {
                if self.verbosity > 0 {
                    for (title, names) in [
                        ("Tests with errors:", self.errors.clone()),
                        ("Tests with failures:", self.failures.clone()),
                    ] {
                        if !names.is_empty() {
                            self.line(format_args!("{title}"));
                            for name in names {
                                self.line(format_args!("   {name}"));
                            }
                        }
                    }
                }
                if !summary.leaks.is_empty() {
                    self.line(format_args!("Leaks:"));
                    for verdict in &summary.leaks {
                        let text = verdict_text(verdict);
                        self.line(format_args!("  {text}"));
                    }
                }
                if summary.layers_run != 1 {
                    self.line(format_args!(
                        "Total: {} tests, {} failures, {} errors and {} skipped in {}.",
                        summary.tests,
                        summary.failures,
                        summary.errors,
                        summary.skipped,
                        format_seconds(summary.elapsed)
                    ));
                }
                let _ = self.out.flush();
            }
        }
    }
}
