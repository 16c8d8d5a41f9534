//! The HTML report (`--html FILE`): one self-contained page a person reads at a glance,
//! rendered from the run's record.
//!
//! The run summary, per layer a plot of live blocks and bytes over the iterations with
//! its verdict and what the leak policy made of it, the per-test growth table (hooks
//! included), the type table, the failures and the allocation stacks. The page loads
//! nothing (no scripts, fonts or images; its CSP forbids them), so it opens the same from
//! a CI artefact store as from disk. Every guest string goes through [`escape`].

mod plot;
mod tables;

use std::fmt::Write;

use super::model::{Kind as Outcome, LayerReport, RunReport, Step, SuiteReport};
use super::policy::{layer_policy_text, summary_lines};
use super::text::verdict_text;
use crate::leak::{Shape, Snapshot, Verdict};
use crate::text::GuestText;
use plot::{Kind, Point};

const STYLE: &str = include_str!("html/style.css");

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A guest name on one line, its control characters shown as escapes, ready for HTML.
fn name(text: &GuestText) -> String {
    escape(&text.line().to_string())
}

/// Guest text over several lines (messages, output), ready for a `<pre>`.
fn lines(text: &GuestText) -> String {
    escape(&text.lines().to_string())
}

/// The whole page for `report`.
pub fn to_html(report: &RunReport) -> String {
    let suites: Vec<&str> = report.suites.iter().map(|s| s.name.as_str()).collect();
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
    );
    let _ = write!(out, "<title>leakhost report: {}</title>", escape(&suites.join(", ")));
    let _ = writeln!(out, "<style>{STYLE}</style></head><body>");
    summary_section(&mut out, report);
    let warmup = report.options.as_ref().map_or(1, |o| o.warmup);
    for (index, (_, layer)) in report.layers().enumerate() {
        layer_section(&mut out, index, layer, warmup);
    }
    failures_section(&mut out, report);
    stacks_section(&mut out, report);
    out.push_str("</body></html>\n");
    out
}

fn summary_section(out: &mut String, report: &RunReport) {
    let suites: Vec<&str> = report.suites.iter().map(|s| s.name.as_str()).collect();
    let _ = write!(out, "<header><h1>leakhost report</h1><p class=\"suites\">{}</p>", escape(&suites.join(", ")));
    if let Some(options) = &report.options {
        let execution = report
            .execution
            .map(|e| format!(" · engine {} · -j {}", e.engine.name(), e.jobs.max(1)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<p class=\"options\">-N {} · warm-up {} · {} · seed {}{execution}</p>",
            options.repeat,
            options.warmup,
            if options.measure { "leaks measured (-r)" } else { "leaks not measured" },
            options.seed,
        );
    }
    out.push_str("</header>\n<section id=\"summary\"><h2>Summary</h2>");
    match (&report.totals, &report.aborted) {
        (_, Some(reason)) => {
            let _ = write!(out, "<p class=\"result bad\">Run aborted: {}</p>", name(reason));
        }
        (Some(t), None) => {
            let leaking = report.leaks().count();
            let ok = t.failures == 0 && t.errors == 0 && leaking == 0;
            let _ = write!(
                out,
                "<p class=\"result {}\" id=\"totals\">Total: {} tests, {} failures, {} errors and {} skipped; {} \
                 layers run; {} leaking.</p>",
                if ok { "good" } else { "bad" },
                t.tests,
                t.failures,
                t.errors,
                t.skipped,
                t.layers_run,
                match leaking {
                    1 => "1 layer".to_string(),
                    n => format!("{n} layers"),
                }
            );
        }
        (None, None) => out.push_str("<p class=\"result bad\">The run did not finish.</p>"),
    }
    layers_table(out, report);
    if let Some(policy) = &report.policy {
        out.push_str("<div class=\"policy\"><h3>Leak policy</h3><ul>");
        for line in summary_lines(policy) {
            let _ = write!(out, "<li>{}</li>", escape(&line));
        }
        out.push_str("</ul></div>");
    }
    out.push_str("</section>\n");
}

fn layers_table(out: &mut String, report: &RunReport) {
    out.push_str("<table class=\"layers\"><tr><th>layer</th><th>suite</th><th>verdict</th></tr>");
    for (index, (suite, layer)) in report.layers().enumerate() {
        let (class, text) = verdict_cell(layer.verdict.as_ref());
        let _ = write!(
            out,
            "<tr><td><a href=\"#layer-{index}\">{}</a></td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            layer_title(layer),
            escape(&suite_title(suite)),
            escape(&text)
        );
    }
    out.push_str("</table>");
}

fn suite_title(suite: &SuiteReport) -> String {
    suite.name.clone()
}

/// A layer's name, with its partition in a report merged from partitions.
fn layer_title(layer: &LayerReport) -> String {
    match layer.partition {
        Some(p) => format!("{} (partition {}/{})", name(&layer.name), p.index, p.count),
        None => name(&layer.name),
    }
}

/// The verdict in a few words, and its CSS class.
fn verdict_cell(verdict: Option<&Verdict>) -> (&'static str, String) {
    match verdict {
        None => ("none", "not measured".to_string()),
        Some(v) if v.leaks() => ("leaks", verdict_text(v)),
        Some(v) if v.undecided() => ("leaks", verdict_text(v)),
        Some(v) if v.shape == Shape::Settled => ("good", verdict_text(v)),
        Some(v) if v.counted == 0 => ("none", "no iteration counted (each spanned a fresh instance or warm-up)".into()),
        Some(v) => ("good", format!("no leak in {} counted iterations", v.counted)),
    }
}

fn layer_section(out: &mut String, index: usize, layer: &LayerReport, warmup: usize) {
    let (class, text) = verdict_cell(layer.verdict.as_ref());
    let _ = write!(
        out,
        "<section class=\"layer\" id=\"layer-{index}\"><h2>Layer {}</h2><p class=\"verdict {class}\">{}</p>",
        layer_title(layer),
        escape(&text)
    );
    if let Some(policy) = &layer.policy {
        let class = if policy.excused { "good" } else { "leaks" };
        let _ = write!(out, "<p class=\"policy {class}\">{}</p>", escape(&layer_policy_text(policy)));
    }
    let leaks = layer.verdict.as_ref().is_some_and(Verdict::leaks);
    let short = match layer.verdict.as_ref() {
        Some(v) if v.leaks() => "leaks",
        Some(v) if v.undecided() => "undecided",
        Some(v) if v.shape == Shape::Settled => "settled",
        Some(v) if v.counted == 0 => "not counted",
        Some(_) => "no leak",
        None => "",
    };
    out.push_str("<div class=\"plots\">");
    for (metric, title, pick) in [("blocks", "live blocks", 0usize), ("bytes", "live bytes", 1usize)] {
        let points = plot_points(layer, warmup, pick);
        out.push_str(&plot::svg(metric, title, &points, short, leaks));
    }
    out.push_str("</div>");
    tables::tests_table(out, layer);
    tables::types_table(out, layer);
    out.push_str("</section>\n");
}

/// The layer's live blocks (`pick` 0) or bytes (1) at the end of set-up and of each iteration.
fn plot_points(layer: &LayerReport, warmup: usize, pick: usize) -> Vec<Point> {
    let value = |s: &Snapshot| if pick == 0 { s.live_blocks } else { s.live_bytes };
    let mut points = Vec::new();
    if let Some(first) = layer.iterations.first() {
        if let (Some(s), Some(d)) = (&first.snapshot, &first.delta) {
            let start = (
                s.live_blocks.saturating_add_signed(d.blocks.saturating_neg()),
                s.live_bytes.saturating_add_signed(d.bytes.saturating_neg()),
            );
            points.push(Point { iteration: 0, value: if pick == 0 { start.0 } else { start.1 }, kind: Kind::SetUp });
        }
    }
    for it in &layer.iterations {
        let Some(snapshot) = &it.snapshot else { continue };
        let kind = if it.broken {
            Kind::Broken
        } else if (it.iteration as usize) <= warmup {
            Kind::Warmup
        } else if it.added {
            Kind::Added
        } else {
            Kind::Planned
        };
        points.push(Point { iteration: it.iteration, value: value(snapshot), kind });
    }
    points
}

/// Failures and errors of tests and layer hooks, in run order.
fn failures_section(out: &mut String, report: &RunReport) {
    let mut failures: Vec<String> = Vec::new();
    let failure = |kind: &str, what: &str, layer: &GuestText, iteration: Option<u32>, message: &GuestText| {
        let iteration = iteration.map(|i| format!(", iteration {i}")).unwrap_or_default();
        format!(
            "<div class=\"failure\"><h3>{kind} in {} ({}{iteration})</h3><pre>{}</pre></div>",
            escape(what),
            name(layer),
            lines(message)
        )
    };
    for suite in &report.suites {
        for layer in &suite.layers {
            for step in &layer.steps {
                if let Some((what, message)) = failed_step(step) {
                    failures.push(failure("Error", &what, &layer.name, None, message));
                }
            }
            for it in &layer.iterations {
                for test in &it.tests {
                    let kind = match test.outcome {
                        Outcome::Failure => "Failure",
                        Outcome::Error => "Error",
                        Outcome::Pass | Outcome::Skip => continue,
                    };
                    let message = test.message.clone().unwrap_or_default();
                    let what = test.name.line().to_string();
                    failures.push(failure(kind, &what, &layer.name, Some(it.iteration), &message));
                }
            }
        }
        let last = suite.layers.last().map(|l| l.name.clone()).unwrap_or_default();
        for (what, message) in suite.left_over.iter().filter_map(failed_step) {
            failures.push(failure("Error", &what, &last, None, message));
        }
    }
    let _ = write!(out, "<section id=\"failures\"><h2>Failures and errors ({})</h2>", failures.len());
    if failures.is_empty() {
        out.push_str("<p class=\"none\">None.</p>");
    }
    failures.iter().for_each(|f| out.push_str(f));
    out.push_str("</section>\n");
}

/// `LAYER.setUp` / `LAYER.tearDown` and the message, for a hook that failed.
fn failed_step(step: &Step) -> Option<(String, &GuestText)> {
    let (layer, hook, outcome) = match step {
        Step::SetUp { layer, outcome, .. } => (layer, "setUp", outcome),
        Step::TearDown { layer, outcome, .. } => (layer, "tearDown", outcome),
        Step::FreshInstance { .. } => return None,
    };
    let message = outcome.message.as_ref().filter(|_| outcome.outcome == "failed")?;
    Some((format!("{}.{hook}", layer.line()), message))
}

/// Where the leaked blocks were allocated: per leaking layer, each stack with its blocks,
/// bytes, tests and frames (innermost first), and the notes that limit them.
fn stacks_section(out: &mut String, report: &RunReport) {
    out.push_str("<section id=\"stacks\"><h2>Allocation stacks</h2>");
    let with_stacks: Vec<(&LayerReport, &crate::leak::stacks::LeakStacks)> =
        report.layers().filter_map(|(_, l)| l.stacks.as_ref().map(|s| (l, s))).collect();
    if with_stacks.is_empty() {
        out.push_str("<p class=\"none\">No allocation stacks were recorded in this run.</p>");
    }
    for (layer, found) in with_stacks {
        let _ = write!(out, "<h3>{}</h3>", layer_title(layer));
        for note in &found.notes {
            let _ = write!(out, "<p class=\"note\">{}</p>", name(note));
        }
        for group in &found.groups {
            let _ = write!(out, "<div class=\"stack\"><p>{}</p><ol>", escape(&super::stacks::group_heading(group)));
            for frame in &group.frames {
                let _ = write!(out, "<li><code>{}</code></li>", escape(&frame.text()));
            }
            out.push_str("</ol></div>");
        }
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests;
