use super::*;
use crate::leak::{Delta, Growth, LeakingTest, Metric, Shape};
use crate::report::Recorder;
use crate::run::{Counts, Event, EventSink, LayerId, LayerRef, Outcome, SuiteId, Summary, TestId, TestRef};
use crate::sandbox::CapturedOutput;

/// The hostile suite's worst: markup, an attribute break-out, a script tag, ESC and NUL.
const HOSTILE: &str = "t<script>alert(1)</script>\"' onload=x &amp; \u{1b}[2K\u{0}";

#[test]
fn the_escaper_leaves_no_markup_and_no_quote() {
    let escaped = escape(HOSTILE);
    for bad in ['<', '>', '"', '\''] {
        assert!(!escaped.contains(bad), "{escaped}");
    }
    assert!(escaped.starts_with("t&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39; onload=x &amp;amp; "));
    assert_eq!(escape("plain name (layer.Test)"), "plain name (layer.Test)");
    // Control characters are shown the way the terminal shows them, never passed through.
    assert_eq!(name(&GuestText::from("a\u{1b}[2K\u{0}<b>")), "a\\e[2K\\u{0}&lt;b&gt;");
}

fn layer() -> LayerRef {
    LayerRef { id: LayerId(0), name: GuestText::from(HOSTILE) }
}

fn snapshot(blocks: u64) -> Snapshot {
    Snapshot { live_blocks: blocks, live_bytes: blocks * 32, ..Snapshot::default() }
}

fn iteration(iteration: u32, blocks: u64) -> Event {
    Event::IterationFinished {
        suite: SuiteId(0),
        layer: layer(),
        iteration,
        planned: 3,
        counts: Counts::default(),
        elapsed: Default::default(),
        snapshot: Some(Box::new(snapshot(blocks))),
        delta: Some(Box::new(Delta { blocks: 1, bytes: 32, ..Delta::default() })),
        broken: false,
    }
}

/// A run of one leaking layer whose test fails in each of 4 iterations (-N 3, one added).
fn leaking_run() -> String {
    let mut html = Recorder::new(false);
    let growth = vec![Growth::from_deltas(Metric::Blocks, vec![1, 1])];
    let verdict = Verdict {
        shape: Shape::Leaks,
        layer: GuestText::from(HOSTILE),
        counted: 2,
        growth: growth.clone(),
        tests: vec![LeakingTest { test: GuestText::from(HOSTILE), growth }],
        evidence: Default::default(),
    };
    let test = TestRef { id: TestId(0), name: GuestText::from(HOSTILE) };
    html.emit(&Event::SuiteStarted { suite: SuiteId(0), name: "leak.wasm".into(), layers: 1, tests: 1 });
    html.emit(&Event::LayerStarted { suite: SuiteId(0), layer: layer() });
    for i in 1..=4 {
        html.emit(&Event::IterationStarted { suite: SuiteId(0), layer: layer(), iteration: i, planned: 3 });
        html.emit(&Event::TestFinished {
            suite: SuiteId(0),
            layer: LayerId(0),
            test: test.clone(),
            iteration: i,
            outcome: Outcome::Failure(GuestText::from(HOSTILE)),
            output: CapturedOutput::default(),
            elapsed: Default::default(),
            delta: Some(Box::new(Delta { blocks: 1, bytes: 32, ..Delta::default() })),
            phases: None,
        });
        html.emit(&iteration(i, 10 + u64::from(i)));
    }
    html.emit(&Event::Verdict { suite: SuiteId(0), layer: layer(), verdict: Box::new(verdict.clone()) });
    html.emit(&Event::RunFinished {
        summary: Box::new(Summary { tests: 1, failures: 4, leaks: vec![verdict], ..Summary::default() }),
    });
    to_html(html.report())
}

#[test]
fn a_leaking_layer_gets_two_plots_its_verdict_and_its_tests() {
    let page = leaking_run();
    assert_eq!(page.matches("<svg class=\"plot\"").count(), 2, "{page}");
    // Set-up plus four iterations; the fourth is added after -N 3.
    assert_eq!(page.matches("<circle class=\"point\"").count(), 10);
    assert_eq!(page.matches("<rect class=\"added\"").count(), 2);
    assert_eq!(page.matches("<rect class=\"warmup\"").count(), 2);
    assert!(page.contains("<p class=\"verdict leaks\">"), "{page}");
    assert!(page.contains("<td class=\"num\">+1 +1 +1 +1</td><td class=\"num\">+32 +32 +32 +32</td>"), "{page}");
    assert!(page.contains("Failures and errors (4)"));
    assert!(page.contains("Total: 1 tests, 4 failures, 0 errors and 0 skipped; 0 layers run; 1 layer leaking."));
}

#[test]
fn no_guest_string_reaches_the_page_unescaped() {
    let page = leaking_run();
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains('\u{1b}') && !page.contains('\u{0}'));
    assert!(!page.contains("\" onload"));
}
