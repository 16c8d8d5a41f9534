//! JUnit XML, as CI systems read it, rendered from the run's record: a testsuite per layer,
//! a testcase per test.
//!
//! A test repeated with `-N` is one testcase whose outcome is its worst iteration's
//! (error over failure over skip over pass), with that iteration's message and output.
//! With `--fail-on-leak`, each test a leaking verdict blames (and the policy does not
//! excuse) is a failure of type `leak` whose message is that test's own share.

use std::collections::HashMap;
use std::io;

use quick_xml::events::{BytesDecl, BytesText, Event as XmlEvent};
use quick_xml::Writer;

use super::model::{Kind, LayerReport, RunReport, Step, SuiteReport};
use super::text::{cause_text, verdict_text};
use crate::text::GuestText;

struct Case {
    name: String,
    kind: Kind,
    /// `failure`/`error` type attribute.
    type_: &'static str,
    message: String,
    output: String,
    time: f64,
}

/// One testsuite: a layer's run.
struct Cases {
    cases: Vec<Case>,
    index: HashMap<String, usize>,
}

impl Cases {
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
                time: 0.0,
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

    fn count(&self, kind: Kind) -> usize {
        self.cases.iter().filter(|c| c.kind == kind).count()
    }
}

fn failed_hook(step: &Step) -> Option<(String, &'static str, &GuestText, &GuestText)> {
    let (layer, hook, outcome, output) = match step {
        Step::SetUp { layer, outcome, output, .. } => (layer, "setUp", outcome, output),
        Step::TearDown { layer, outcome, output, .. } => (layer, "tearDown", outcome, output),
        Step::FreshInstance { .. } => return None,
    };
    let message = outcome.message.as_ref().filter(|_| outcome.outcome == "failed")?;
    Some((format!("{}.{hook}", layer.raw()), hook, message, &output.output))
}

/// The testcases of one layer's run; `left_over` are the suite's final tear-downs, which
/// go with its last layer.
fn layer_cases(report: &RunReport, layer: &LayerReport, left_over: &[Step]) -> Cases {
    let mut cases = Cases { cases: Vec::new(), index: HashMap::new() };
    for (name, hook, message, output) in layer.steps.iter().filter_map(failed_hook) {
        cases.record(&name, Kind::Error, hook, message.raw(), output.raw());
    }
    for iteration in &layer.iterations {
        for test in &iteration.tests {
            let type_ = match test.outcome {
                Kind::Pass | Kind::Skip => "",
                Kind::Failure => "assertion",
                Kind::Error => "error",
            };
            let mut output = test.output.output.raw().to_string();
            if test.output.output_dropped > 0 {
                output.push_str(&format!("\n[{} more bytes of output dropped]\n", test.output.output_dropped));
            }
            let message = test.message.as_ref().map_or("", GuestText::raw);
            cases.record(test.name.raw(), test.outcome, type_, message, &output);
            cases.case(test.name.raw()).time += test.elapsed_s.unwrap_or(0.0);
        }
    }
    for (name, hook, message, output) in left_over.iter().filter_map(failed_hook) {
        cases.record(&name, Kind::Error, hook, message.raw(), output.raw());
    }
    let fail_on_leak = report.options.as_ref().is_some_and(|o| o.fail_on_leak);
    if let Some(verdict) = layer.verdict.as_ref().filter(|_| fail_on_leak && layer.leak_fails()) {
        // A leak failure replaces a case's output, so the stacks are added after it.
        if verdict.tests.is_empty() {
            cases.record("(leak check)", Kind::Failure, "leak", &verdict_text(verdict), "");
        }
        for cause in &verdict.tests {
            cases.record(cause.test.raw(), Kind::Failure, "leak", &cause_text(verdict, cause), "");
        }
    }
    if let Some(stacks) = &layer.stacks {
        for case in &mut cases.cases {
            case.output.push_str(&super::stacks::test_text(&case.name, stacks));
        }
    }
    cases
}

/// `<properties>`: iterations run, those added to decide a verdict, the verdict, the policy.
fn properties(layer: &LayerReport) -> Vec<(&'static str, String)> {
    let mut properties = vec![
        ("iterations", layer.iterations.len().to_string()),
        ("added_iterations", layer.iterations.iter().filter(|i| i.added).count().to_string()),
    ];
    if let Some(verdict) = &layer.verdict {
        let shape = serde_json::to_value(verdict.shape).ok().and_then(|v| v.as_str().map(str::to_string));
        properties.push(("verdict", shape.unwrap_or_default()));
    }
    if let Some(policy) = &layer.policy {
        properties.push(("leak_policy", if policy.excused { "excused" } else { "not excused" }.into()));
    }
    if let Some(p) = layer.partition {
        properties.push(("partition", format!("{}/{}", p.index, p.count)));
    }
    properties
}

/// The run's record as a JUnit document; `timings` writes `time` attributes.
pub fn to_junit(report: &RunReport, timings: bool) -> io::Result<String> {
    let mut suites: Vec<(&SuiteReport, &LayerReport, Cases)> = Vec::new();
    for suite in &report.suites {
        for (i, layer) in suite.layers.iter().enumerate() {
            let left_over = if i + 1 == suite.layers.len() { &suite.left_over[..] } else { &[] };
            suites.push((suite, layer, layer_cases(report, layer, left_over)));
        }
    }
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 2);
    writer.write_event(XmlEvent::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let count = |k: Kind| suites.iter().map(|(_, _, c)| c.count(k)).sum::<usize>().to_string();
    let total: usize = suites.iter().map(|(_, _, c)| c.cases.len()).sum();
    let mut root = writer.create_element("testsuites").with_attributes([
        ("name", "leakhost"),
        ("tests", total.to_string().as_str()),
        ("failures", count(Kind::Failure).as_str()),
        ("errors", count(Kind::Error).as_str()),
        ("skipped", count(Kind::Skip).as_str()),
    ]);
    if timings {
        let time: f64 = suites.iter().flat_map(|(_, _, c)| &c.cases).map(|c| c.time).sum();
        root = root.with_attribute(("time", format!("{time:.6}").as_str()));
    }
    root.write_inner_content(|w| {
        for (suite, layer, cases) in &suites {
            write_suite(w, suite, layer, cases, timings)?;
        }
        Ok(())
    })?;
    String::from_utf8(writer.into_inner()).map_err(io::Error::other)
}

fn write_suite(
    w: &mut Writer<Vec<u8>>,
    suite: &SuiteReport,
    layer: &LayerReport,
    cases: &Cases,
    timings: bool,
) -> io::Result<()> {
    let count = |k: Kind| cases.count(k).to_string();
    let (name, package) = (xml_safe(layer.name.raw()), xml_safe(&suite.name));
    let mut element = w.create_element("testsuite").with_attributes([
        ("name", name.as_str()),
        ("package", package.as_str()),
        ("tests", cases.cases.len().to_string().as_str()),
        ("failures", count(Kind::Failure).as_str()),
        ("errors", count(Kind::Error).as_str()),
        ("skipped", count(Kind::Skip).as_str()),
    ]);
    if timings {
        let time: f64 = cases.cases.iter().map(|c| c.time).sum();
        element = element.with_attribute(("time", format!("{time:.6}").as_str()));
    }
    let classname = xml_safe(&format!("{}.{}", suite.name.trim_end_matches(".wasm"), layer.name.raw()));
    element.write_inner_content(|w| {
        let properties = properties(layer);
        w.create_element("properties").write_inner_content(|w| {
            for (name, value) in &properties {
                w.create_element("property").with_attributes([("name", *name), ("value", value)]).write_empty()?;
            }
            Ok(())
        })?;
        for case in &cases.cases {
            write_case(w, &classname, case, timings)?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, classname: &str, case: &Case, timings: bool) -> io::Result<()> {
    let name = xml_safe(&case.name);
    let mut element = w.create_element("testcase").with_attributes([("name", name.as_str()), ("classname", classname)]);
    if timings {
        element = element.with_attribute(("time", format!("{:.6}", case.time).as_str()));
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
