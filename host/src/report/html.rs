//! The HTML report (`--html FILE`): one self-contained page a person reads at a glance.
//!
//! It renders events only: the run summary, per layer a plot of live blocks and bytes
//! over the iterations with its verdict, the per-test growth table, the type table and
//! the failures. The page loads nothing (no scripts, fonts or images; its CSP forbids
//! them), so it opens the same from a CI artefact store as from disk. Every guest string
//! goes through [`escape`].

mod plot;

use std::collections::BTreeMap;
use std::fmt::Write;

use super::text::verdict_text;
use crate::leak::stacks::LeakStacks;
use crate::leak::{Snapshot, Verdict};
use crate::run::{Event, EventSink, HookOutcome, Outcome, RunStart, Summary};
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

/// One iteration's end, as the plot and the type table need it.
struct IterationPoint {
    iteration: u32,
    planned: u32,
    snapshot: Option<Snapshot>,
    /// Live blocks and bytes at the iteration's start, when its delta says so.
    start: Option<(u64, u64)>,
    broken: bool,
}

/// A test's own change in each iteration.
struct TestRow {
    name: GuestText,
    deltas: Vec<Option<(i64, i64)>>,
}

struct LayerData {
    suite: String,
    name: GuestText,
    iterations: Vec<IterationPoint>,
    tests: Vec<TestRow>,
    verdict: Option<Verdict>,
}

struct Failure {
    layer: GuestText,
    what: String,
    iteration: Option<u32>,
    kind: &'static str,
    message: GuestText,
}

/// Collects events and renders the page at the end.
#[derive(Default)]
pub struct HtmlReporter {
    start: Option<RunStart>,
    suites: Vec<String>,
    layers: Vec<LayerData>,
    failures: Vec<Failure>,
    summary: Option<Summary>,
    aborted: Option<GuestText>,
    /// Allocation stacks of the leaking layers, by layer name, in the order they came.
    stacks: Vec<(GuestText, LeakStacks)>,
}

impl HtmlReporter {
    /// A reporter with nothing collected yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn layer_name(&self) -> GuestText {
        self.layers.last().map(|l| l.name.clone()).unwrap_or_default()
    }

    /// The whole page.
    pub fn to_html(&self) -> String {
        let mut out = String::new();
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
        out.push_str(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        );
        let _ = write!(out, "<title>leakhost report: {}</title>", escape(&self.suites.join(", ")));
        let _ = writeln!(out, "<style>{STYLE}</style></head><body>");
        self.summary_section(&mut out);
        for (index, layer) in self.layers.iter().enumerate() {
            layer_section(&mut out, index, layer, self.start.as_ref().map_or(1, |s| s.warmup));
        }
        self.failures_section(&mut out);
        stacks_section(&mut out, &self.stacks);
        out.push_str("</body></html>\n");
        out
    }

    fn summary_section(&self, out: &mut String) {
        let _ =
            write!(out, "<header><h1>leakhost report</h1><p class=\"suites\">{}</p>", escape(&self.suites.join(", ")));
        if let Some(start) = &self.start {
            let _ = write!(
                out,
                "<p class=\"options\">-N {} · warm-up {} · {} · engine {} · seed {} · -j {}</p>",
                start.repeat,
                start.warmup,
                if start.measure { "leaks measured (-r)" } else { "leaks not measured" },
                escape(start.engine),
                start.seed,
                start.jobs
            );
        }
        out.push_str("</header>\n<section id=\"summary\"><h2>Summary</h2>");
        match (&self.summary, &self.aborted) {
            (_, Some(reason)) => {
                let _ = write!(out, "<p class=\"result bad\">Run aborted: {}</p>", name(reason));
            }
            (Some(s), None) => {
                let ok = s.ok() && s.leaks.is_empty();
                let _ = write!(
                    out,
                    "<p class=\"result {}\" id=\"totals\">Total: {} tests, {} failures, {} errors and {} skipped; {} \
                     layers run; {} leaking.</p>",
                    if ok { "good" } else { "bad" },
                    s.tests,
                    s.failures,
                    s.errors,
                    s.skipped,
                    s.layers_run,
                    match s.leaks.len() {
                        1 => "1 layer".to_string(),
                        n => format!("{n} layers"),
                    }
                );
            }
            (None, None) => out.push_str("<p class=\"result bad\">The run did not finish.</p>"),
        }
        out.push_str("<table class=\"layers\"><tr><th>layer</th><th>suite</th><th>verdict</th></tr>");
        for (index, layer) in self.layers.iter().enumerate() {
            let (class, text) = verdict_cell(layer.verdict.as_ref());
            let _ = write!(
                out,
                "<tr><td><a href=\"#layer-{index}\">{}</a></td><td>{}</td><td class=\"{class}\">{}</td></tr>",
                name(&layer.name),
                escape(&layer.suite),
                escape(&text)
            );
        }
        out.push_str("</table></section>\n");
    }

    fn failures_section(&self, out: &mut String) {
        let _ = write!(out, "<section id=\"failures\"><h2>Failures and errors ({})</h2>", self.failures.len());
        if self.failures.is_empty() {
            out.push_str("<p class=\"none\">None.</p>");
        }
        for f in &self.failures {
            let iteration = f.iteration.map(|i| format!(", iteration {i}")).unwrap_or_default();
            let _ = write!(
                out,
                "<div class=\"failure\"><h3>{} in {} ({}{iteration})</h3><pre>{}</pre></div>",
                f.kind,
                escape(&f.what),
                name(&f.layer),
                lines(&f.message)
            );
        }
        out.push_str("</section>\n");
    }
}

/// The verdict in a few words, and its CSS class.
fn verdict_cell(verdict: Option<&Verdict>) -> (&'static str, String) {
    match verdict {
        None => ("none", "not measured".to_string()),
        Some(v) if v.leaks() => ("leaks", verdict_text(v)),
        Some(v) if v.undecided() => ("leaks", verdict_text(v)),
        Some(v) if v.shape == crate::leak::Shape::Settled => ("good", verdict_text(v)),
        Some(v) if v.counted == 0 => ("none", "no iteration counted (each spanned a fresh instance or warm-up)".into()),
        Some(v) => ("good", format!("no leak in {} counted iterations", v.counted)),
    }
}

fn layer_section(out: &mut String, index: usize, layer: &LayerData, warmup: usize) {
    let (class, text) = verdict_cell(layer.verdict.as_ref());
    let _ = write!(
        out,
        "<section class=\"layer\" id=\"layer-{index}\"><h2>Layer {}</h2><p class=\"verdict {class}\">{}</p>",
        name(&layer.name),
        escape(&text)
    );
    let leaks = layer.verdict.as_ref().is_some_and(Verdict::leaks);
    let short = match layer.verdict.as_ref() {
        Some(v) if v.leaks() => "leaks",
        Some(v) if v.undecided() => "undecided",
        Some(v) if v.shape == crate::leak::Shape::Settled => "settled",
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
    tests_table(out, layer);
    types_table(out, layer);
    out.push_str("</section>\n");
}

/// The layer's live blocks (`pick` 0) or bytes (1) at the end of set-up and of each iteration.
fn plot_points(layer: &LayerData, warmup: usize, pick: usize) -> Vec<Point> {
    let value = |s: &Snapshot| if pick == 0 { s.live_blocks } else { s.live_bytes };
    let mut points = Vec::new();
    if let Some(first) = layer.iterations.first() {
        if let Some((blocks, bytes)) = first.start {
            points.push(Point { iteration: 0, value: if pick == 0 { blocks } else { bytes }, kind: Kind::SetUp });
        }
    }
    for it in &layer.iterations {
        let Some(snapshot) = &it.snapshot else { continue };
        let kind = if it.broken {
            Kind::Broken
        } else if (it.iteration as usize) <= warmup {
            Kind::Warmup
        } else if it.iteration > it.planned {
            Kind::Added
        } else {
            Kind::Planned
        };
        points.push(Point { iteration: it.iteration, value: value(snapshot), kind });
    }
    points
}

fn tests_table(out: &mut String, layer: &LayerData) {
    let measured = layer.tests.iter().any(|t| t.deltas.iter().any(Option::is_some));
    if !measured {
        return;
    }
    let leaking: Vec<&GuestText> = layer.verdict.iter().flat_map(|v| v.tests.iter().map(|t| &t.test)).collect();
    out.push_str("<h3>Per-test growth</h3><table class=\"tests\"><tr><th>test</th><th>blocks per iteration</th>");
    out.push_str("<th>bytes per iteration</th><th>verdict</th></tr>");
    for test in &layer.tests {
        let column = |pick: fn(&(i64, i64)) -> i64| {
            test.deltas
                .iter()
                .map(|d| d.as_ref().map_or("–".to_string(), |d| format!("{:+}", pick(d))))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let leaks = leaking.contains(&&test.name);
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            if leaks { "leaks" } else { "" },
            name(&test.name),
            column(|d| d.0),
            column(|d| d.1),
            if leaks { "leaks" } else { "" }
        );
    }
    out.push_str("</table>");
}

/// Each tracked type's instances and bytes at the end, and their change since the first iteration's end.
fn types_table(out: &mut String, layer: &LayerData) {
    let snapshots: Vec<&Snapshot> = layer.iterations.iter().filter_map(|i| i.snapshot.as_ref()).collect();
    let (Some(first), Some(last)) = (snapshots.first(), snapshots.last()) else { return };
    if last.types.is_empty() && first.types.is_empty() {
        return;
    }
    let mut rows: BTreeMap<&str, [i64; 4]> = BTreeMap::new();
    for t in &first.types {
        let row = rows.entry(&t.name).or_default();
        row[2] -= t.instances;
        row[3] -= t.bytes;
    }
    for t in &last.types {
        let row = rows.entry(&t.name).or_default();
        row[0] = t.instances;
        row[1] = t.bytes;
        row[2] += t.instances;
        row[3] += t.bytes;
    }
    out.push_str("<h3>Types</h3><table class=\"types\"><tr><th>type</th><th>instances</th><th>bytes</th>");
    out.push_str("<th>instances since iteration 1</th><th>bytes since iteration 1</th></tr>");
    for (type_name, [instances, bytes, d_instances, d_bytes]) in rows {
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{}</td><td class=\"num\">{instances}</td><td class=\"num\">{bytes}</td>\
             <td class=\"num\">{d_instances:+}</td><td class=\"num\">{d_bytes:+}</td></tr>",
            if d_instances > 0 { "grows" } else { "" },
            name(&GuestText::from(type_name))
        );
    }
    out.push_str("</table>");
}

impl EventSink for HtmlReporter {
    fn wants_every_test_delta(&self) -> bool {
        true
    }

    fn emit(&mut self, event: &Event) {
        match event {
            Event::LeakStacks { layer, stacks, .. } => {
                self.stacks.push((layer.name.clone(), LeakStacks::clone(stacks)))
            }
            Event::RunStarted(start) => self.start = Some(start.clone()),
            Event::SuiteStarted { name, .. } => self.suites.push(name.clone()),
            Event::LayerStarted { layer, .. } => self.layers.push(LayerData {
                suite: self.suites.last().cloned().unwrap_or_default(),
                name: layer.name.clone(),
                iterations: Vec::new(),
                tests: Vec::new(),
                verdict: None,
            }),
            Event::SetUp { layer, outcome: HookOutcome::Failed(message), .. } => self.failures.push(Failure {
                layer: layer.name.clone(),
                what: format!("{}.setUp", layer.name.line()),
                iteration: None,
                kind: "Error",
                message: message.clone(),
            }),
            Event::TearDown { layer, outcome: HookOutcome::Failed(message), .. } => self.failures.push(Failure {
                layer: layer.name.clone(),
                what: format!("{}.tearDown", layer.name.line()),
                iteration: None,
                kind: "Error",
                message: message.clone(),
            }),
            Event::TestFinished { test, iteration, outcome, delta, .. } => {
                let kind = match outcome {
                    Outcome::Failure(_) => Some("Failure"),
                    Outcome::Error(_) => Some("Error"),
                    Outcome::Pass | Outcome::Skip(_) => None,
                };
                if let (Some(kind), Some(message)) = (kind, outcome.message()) {
                    let layer = self.layer_name();
                    let what = test.name.line().to_string();
                    let message = message.clone();
                    self.failures.push(Failure { layer, what, iteration: Some(*iteration), kind, message });
                }
                let Some(layer) = self.layers.last_mut() else { return };
                let row = match layer.tests.iter().position(|t| t.name == test.name) {
                    Some(at) => &mut layer.tests[at],
                    None => {
                        layer.tests.push(TestRow { name: test.name.clone(), deltas: Vec::new() });
                        layer.tests.last_mut().expect("just pushed")
                    }
                };
                row.deltas.resize(iteration.saturating_sub(1) as usize, None);
                row.deltas.push(delta.as_ref().map(|d| (d.blocks, d.bytes)));
            }
            Event::IterationFinished { iteration, planned, snapshot, delta, broken, .. } => {
                let Some(layer) = self.layers.last_mut() else { return };
                let start = match (snapshot, delta) {
                    (Some(s), Some(d)) => Some((
                        s.live_blocks.saturating_add_signed(d.blocks.saturating_neg()),
                        s.live_bytes.saturating_add_signed(d.bytes.saturating_neg()),
                    )),
                    _ => None,
                };
                layer.iterations.push(IterationPoint {
                    iteration: *iteration,
                    planned: *planned,
                    snapshot: snapshot.as_deref().cloned(),
                    start,
                    broken: *broken,
                });
            }
            Event::Verdict { verdict, .. } => {
                if let Some(layer) = self.layers.last_mut() {
                    layer.verdict = Some(verdict.clone());
                }
            }
            Event::RunFinished { summary } => self.summary = Some(Summary::clone(summary)),
            Event::RunAborted { reason } => self.aborted = Some(reason.clone()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;

/// Where the leaked blocks were allocated: per leaking layer, each stack with its blocks,
/// bytes, tests and frames (innermost first), and the notes that limit them.
fn stacks_section(out: &mut String, stacks: &[(GuestText, LeakStacks)]) {
    out.push_str("<section id=\"stacks\"><h2>Allocation stacks</h2>");
    if stacks.is_empty() {
        out.push_str("<p class=\"none\">No allocation stacks were recorded in this run.</p>");
    }
    for (layer, found) in stacks {
        let _ = write!(out, "<h3>{}</h3>", name(layer));
        for note in &found.notes {
            let _ = write!(out, "<p class=\"note\">{}</p>", name(note));
        }
        for group in &found.groups {
            let tests: Vec<String> = group.tests.iter().map(name).collect();
            let _ = write!(
                out,
                "<div class=\"stack\"><p>{} blocks, {} bytes in {} counted iterations, allocated by {}:</p><ol>",
                group.blocks,
                group.bytes,
                group.iterations,
                tests.join(", ")
            );
            for frame in &group.frames {
                let _ = write!(out, "<li><code>{}</code></li>", escape(&frame.text()));
            }
            out.push_str("</ol></div>");
        }
    }
    out.push_str("</section>\n");
}
