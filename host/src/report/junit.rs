//! JUnit XML, as CI systems read it: a testsuite per layer, a testcase per test.
//!
//! A test repeated with `-N` is one testcase whose outcome is its worst iteration's
//! (error over failure over skip over pass), with that iteration's message and output.

use std::collections::HashMap;
use std::io;
use std::path::Path;
use std::time::Duration;

use quick_xml::events::{BytesDecl, BytesText, Event as XmlEvent};
use quick_xml::Writer;

use super::text::verdict_text;
use crate::leak::stacks::LeakStacks;
use crate::leak::Verdict;
use crate::run::{Event, EventSink, HookOutcome, Outcome};
use crate::text::GuestText;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Pass,
    Skip,
    Failure,
    Error,
}

struct Case {
    name: String,
    kind: Kind,
    /// `failure`/`error` type attribute.
    type_: &'static str,
    message: String,
    output: String,
    time: Duration,
}

struct Suite {
    name: String,
    package: String,
    cases: Vec<Case>,
    index: HashMap<String, usize>,
    time: Duration,
    /// `<properties>`: iterations run, those added to decide a verdict, and the verdict.
    properties: Vec<(&'static str, String)>,
}

impl Suite {
    fn case(&mut self, name: &str) -> &mut Case {
        let next = self.cases.len();
        let i = *self.index.entry(name.to_string()).or_insert(next);
        if i == next {
            self.cases.push(Case {
                name: name.to_string(),
                kind: Kind::Pass,
                type_: "",
                message: String::new(),
                output: String::new(),
                time: Duration::ZERO,
            });
        }
        &mut self.cases[i]
    }

    /// Keeps the worst outcome so far, with its message and output; a passing test
    /// keeps the output of its first iteration that printed anything.
    fn record(&mut self, name: &str, kind: Kind, type_: &'static str, message: &str, output: &str) {
        let case = self.case(name);
        if kind > case.kind {
            case.kind = kind;
            case.type_ = type_;
            case.message = message.to_string();
            case.output = output.to_string();
        } else if case.output.is_empty() {
            case.output = output.to_string();
        }
    }
}

/// Whether the leak policy excuses a leaking verdict, given the allocation stacks
/// recorded for it (if any).
type Excuse = Box<dyn Fn(&Verdict, Option<&LeakStacks>) -> bool>;

/// Collects events into JUnit XML.
pub struct JunitReporter {
    fail_on_leak: bool,
    /// Whether the leak policy excuses a leaking verdict, which then is no failure.
    excused: Option<Excuse>,
    /// Leaking verdicts waiting for their stacks, which come after all of a suite's
    /// verdicts, before the policy judges them: each with its testsuite's index.
    pending: Vec<(usize, Verdict)>,
    timings: bool,
    package: String,
    suites: Vec<Suite>,
}

impl JunitReporter {
    /// With `fail_on_leak`, leaking tests (and leaking layers) are failures of type "leak".
    pub fn new(fail_on_leak: bool, timings: bool) -> Self {
        JunitReporter {
            fail_on_leak,
            excused: None,
            pending: Vec::new(),
            timings,
            package: String::new(),
            suites: Vec::new(),
        }
    }

    /// Leaks `excused` accepts (allowed, or no worse than the baseline) are not failures.
    pub fn excusing(mut self, excused: impl Fn(&Verdict, Option<&LeakStacks>) -> bool + 'static) -> Self {
        self.excused = Some(Box::new(excused));
        self
    }

    fn current(&mut self) -> &mut Suite {
        if self.suites.is_empty() {
            self.suites.push(Suite {
                name: "(no layer)".into(),
                package: self.package.clone(),
                cases: Vec::new(),
                index: HashMap::new(),
                time: Duration::ZERO,
                properties: Vec::new(),
            });
        }
        self.suites.last_mut().expect("a suite exists")
    }

    /// Records `verdict` in testsuite `index`: its shape, and, when it fails the run, a
    /// leak failure for each test it blames.
    fn record_verdict(&mut self, index: usize, verdict: &Verdict, stacks: Option<&LeakStacks>) {
        let fails = verdict.leaks() && self.fail_on_leak && !self.excused.as_ref().is_some_and(|e| e(verdict, stacks));
        let suite = &mut self.suites[index];
        if !fails {
            let shape = serde_json::to_value(verdict.shape).ok().and_then(|v| v.as_str().map(str::to_string));
            suite.properties.push(("verdict", shape.unwrap_or_default()));
            return;
        }
        suite.properties.push(("verdict", "leaks".into()));
        let text = verdict_text(verdict);
        if verdict.tests.is_empty() {
            suite.record("(leak check)", Kind::Failure, "leak", &text, "");
        }
        for test in &verdict.tests {
            suite.record(test.test.raw(), Kind::Failure, "leak", &text, "");
        }
    }

    /// Judges the pending verdicts whose stacks will not come.
    fn settle(&mut self) {
        for (index, verdict) in std::mem::take(&mut self.pending) {
            self.record_verdict(index, &verdict, None);
        }
    }

    /// The XML document.
    pub fn to_xml(&self) -> io::Result<String> {
        let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
        writer.write_event(XmlEvent::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        let count = |k: Kind| self.suites.iter().flat_map(|s| &s.cases).filter(|c| c.kind == k).count().to_string();
        let total: usize = self.suites.iter().map(|s| s.cases.len()).sum();
        let time: Duration = self.suites.iter().map(|s| s.time).sum();
        let mut root = writer.create_element("testsuites").with_attributes([
            ("name", "leakhost"),
            ("tests", total.to_string().as_str()),
            ("failures", count(Kind::Failure).as_str()),
            ("errors", count(Kind::Error).as_str()),
            ("skipped", count(Kind::Skip).as_str()),
        ]);
        if self.timings {
            root = root.with_attribute(("time", format!("{:.6}", time.as_secs_f64()).as_str()));
        }
        root.write_inner_content(|w| {
            for suite in &self.suites {
                self.write_suite(w, suite)?;
            }
            Ok(())
        })?;
        String::from_utf8(writer.into_inner()).map_err(io::Error::other)
    }

    fn write_suite(&self, w: &mut Writer<Vec<u8>>, suite: &Suite) -> io::Result<()> {
        let count = |k: Kind| suite.cases.iter().filter(|c| c.kind == k).count().to_string();
        let (name, package) = (xml_safe(&suite.name), xml_safe(&suite.package));
        let mut element = w.create_element("testsuite").with_attributes([
            ("name", name.as_str()),
            ("package", package.as_str()),
            ("tests", suite.cases.len().to_string().as_str()),
            ("failures", count(Kind::Failure).as_str()),
            ("errors", count(Kind::Error).as_str()),
            ("skipped", count(Kind::Skip).as_str()),
        ]);
        if self.timings {
            element = element.with_attribute(("time", format!("{:.6}", suite.time.as_secs_f64()).as_str()));
        }
        element.write_inner_content(|w| {
            if !suite.properties.is_empty() {
                w.create_element("properties").write_inner_content(|w| {
                    for (name, value) in &suite.properties {
                        w.create_element("property")
                            .with_attributes([("name", *name), ("value", value)])
                            .write_empty()?;
                    }
                    Ok(())
                })?;
            }
            for case in &suite.cases {
                self.write_case(w, suite, case)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn write_case(&self, w: &mut Writer<Vec<u8>>, suite: &Suite, case: &Case) -> io::Result<()> {
        let classname = xml_safe(&format!("{}.{}", suite.package.trim_end_matches(".wasm"), suite.name));
        let name = xml_safe(&case.name);
        let mut element =
            w.create_element("testcase").with_attributes([("name", name.as_str()), ("classname", classname.as_str())]);
        if self.timings {
            element = element.with_attribute(("time", format!("{:.6}", case.time.as_secs_f64()).as_str()));
        }
        if case.kind == Kind::Pass && case.output.is_empty() {
            element.write_empty()?;
            return Ok(());
        }
        element.write_inner_content(|w| {
            let message = xml_safe(&case.message);
            let first_line = summary_line(&message).to_string();
            let type_ = xml_safe(case.type_);
            match case.kind {
                Kind::Pass => {}
                Kind::Skip => {
                    w.create_element("skipped").with_attribute(("message", first_line.as_str())).write_empty()?;
                }
                Kind::Failure | Kind::Error => {
                    let tag = if case.kind == Kind::Failure { "failure" } else { "error" };
                    w.create_element(tag)
                        .with_attributes([("message", first_line.as_str()), ("type", type_.as_str())])
                        .write_text_content(BytesText::new(&message))?;
                }
            }
            if !case.output.is_empty() {
                w.create_element("system-out").write_text_content(BytesText::new(&xml_safe(&case.output)))?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Writes the document to `path`.
    pub fn write_to(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.to_xml()?)
    }
}

/// The line a CI system should show: a panic's message, not the "panicked at FILE:LINE:" before it.
fn summary_line(message: &str) -> &str {
    let mut lines = message.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    if first.starts_with("panicked at ") && first.ends_with(':') {
        lines.next().unwrap_or(first)
    } else {
        first
    }
}

/// Every attribute and text goes through here: XML 1.0 cannot carry most control
/// characters, even escaped, and names, messages and output come from the guest.
fn xml_safe(text: &str) -> String {
    GuestText::from(text).xml().into_owned()
}

impl EventSink for JunitReporter {
    fn emit(&mut self, event: &Event) {
        match event {
            Event::SuiteStarted { name, .. } => self.package = name.clone(),
            Event::LayerStarted { layer, .. } => self.suites.push(Suite {
                name: layer.name.raw().to_string(),
                package: self.package.clone(),
                cases: Vec::new(),
                index: HashMap::new(),
                time: Duration::ZERO,
                properties: Vec::new(),
            }),
            Event::SetUp { layer, outcome: HookOutcome::Failed(message), output, .. } => {
                let name = format!("{}.setUp", layer.name.raw());
                self.current().record(&name, Kind::Error, "setUp", message.raw(), output.text.raw())
            }
            Event::TearDown { layer, outcome: HookOutcome::Failed(message), output, .. } => {
                let name = format!("{}.tearDown", layer.name.raw());
                self.current().record(&name, Kind::Error, "tearDown", message.raw(), output.text.raw())
            }
            Event::TestFinished { test, outcome, output, elapsed, .. } => {
                let suite = self.current();
                suite.time += *elapsed;
                suite.case(test.name.raw()).time += *elapsed;
                let (kind, type_) = match outcome {
                    Outcome::Pass => (Kind::Pass, ""),
                    Outcome::Skip(_) => (Kind::Skip, ""),
                    Outcome::Failure(_) => (Kind::Failure, "assertion"),
                    Outcome::Error(_) => (Kind::Error, "error"),
                };
                let mut text = output.text.raw().to_string();
                if output.dropped > 0 {
                    text.push_str(&format!("\n[{} more bytes of output dropped]\n", output.dropped));
                }
                let message = outcome.message().map_or("", GuestText::raw);
                suite.record(test.name.raw(), kind, type_, message, &text);
            }
            Event::IterationFinished { iteration, planned, .. } => {
                let suite = self.current();
                suite.properties.retain(|(name, _)| !matches!(*name, "iterations" | "added_iterations"));
                suite.properties.push(("iterations", iteration.to_string()));
                suite.properties.push(("added_iterations", iteration.saturating_sub(*planned).to_string()));
            }
            Event::Verdict { verdict, .. } => {
                self.current();
                let index = self.suites.len() - 1;
                // A policy may judge a leak by its stacks (frame allowances).
                if verdict.leaks() && self.fail_on_leak && self.excused.is_some() {
                    self.pending.push((index, verdict.clone()));
                } else {
                    self.record_verdict(index, verdict, None);
                }
            }
            Event::LeakStacks { layer, stacks, .. } => {
                // Judged before the stacks join the output: a leak failure replaces a case's output.
                if let Some(at) = self.pending.iter().rposition(|(_, v)| v.layer == layer.name) {
                    let (index, verdict) = self.pending.remove(at);
                    self.record_verdict(index, &verdict, Some(stacks));
                }
                let Some(suite) = self.suites.iter_mut().rev().find(|s| s.name == layer.name.raw()) else { return };
                for case in &mut suite.cases {
                    let text = super::stacks::test_text(&case.name, stacks);
                    if !text.is_empty() {
                        case.output.push_str(&text);
                    }
                }
            }
            Event::SuiteFinished { .. } | Event::RunFinished { .. } | Event::RunAborted { .. } => self.settle(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::xml_safe;

    #[test]
    fn summaries_skip_the_panic_location() {
        assert_eq!(super::summary_line("panicked at a.rs:1:2:\nsomething broke\nmore"), "something broke");
        assert_eq!(super::summary_line("check failed: x\nat a.rs:3"), "check failed: x");
    }

    #[test]
    fn control_characters_are_replaced() {
        assert_eq!(xml_safe("a\u{1}b\tc\n"), "a\u{FFFD}b\tc\n");
    }
}
