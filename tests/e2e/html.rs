//! The HTML report (`--html`), loaded in a real browser: Debian's chromium, headless
//! (tests/setup.sh installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{leakhost, suite, temp_file};

/// What chromium made of a page: the DOM after loading it, and its log.
struct Loaded {
    dom: String,
    log: String,
}

fn chromium(page: &Path, extra: &[&str]) -> Loaded {
    let profile = page.with_extension("profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| panic!("chromium does not run ({e}): run `bash tests/setup.sh`, which installs it"));
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        log: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `suite` with `flags` and `--html`, and returns the report's path and text.
fn report(name: &str, file: &str, flags: &[&str]) -> (PathBuf, String) {
    let wasm = suite(name);
    let path = temp_file(file, b"");
    let mut args = vec!["run", wasm.to_str().unwrap(), "--html", path.to_str().unwrap()];
    args.extend_from_slice(flags);
    let run = leakhost(args);
    assert!(run.stderr.is_empty() || !run.stderr.contains("error"), "{}", run.stderr);
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

fn no_console_errors(loaded: &Loaded) {
    for bad in ["CONSOLE", "Uncaught"] {
        assert!(!loaded.log.contains(bad), "the page logged {bad}:\n{}", loaded.log);
    }
}

#[test]
fn the_leak_suites_report_renders_with_its_plots_and_verdicts() {
    let (page, text) = report("leak", "leak.html", &["-N4", "-r"]);
    // Self-contained: nothing to fetch, no script at all.
    for external in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!text.contains(external), "the report contains {external}");
    }
    let loaded = chromium(&page, &["--dump-dom"]);
    no_console_errors(&loaded);
    let dom = &loaded.dom;
    // Two layers (UnitTests, leak.Mixed), each with a blocks and a bytes plot of set-up plus 9 iterations
    // (4 planned, 5 added to decide the verdict).
    assert_eq!(dom.matches("<svg class=\"plot\" data-metric=\"blocks\"").count(), 2, "{dom}");
    assert_eq!(dom.matches("<svg class=\"plot\" data-metric=\"bytes\"").count(), 2);
    assert_eq!(dom.matches("<circle class=\"point\"").count(), 4 * 10);
    assert_eq!(dom.matches("<rect class=\"warmup\"").count(), 4, "one warm-up iteration per plot");
    assert_eq!(dom.matches("<polyline class=\"series leaks\"").count(), 4);
    assert!(dom.contains(
        "<p class=\"verdict leaks\">leak.Mixed leaks: grew in 8 of 8 counted iterations: blocks +1 per iteration \
         (net +8), bytes +46 per iteration (net +368), counter \"cache entries\" +1 per iteration (net +8); \
         caused by test_13 (leak.Mixed); its traced replay found 8 blocks (368 bytes) of them still live</p>"
    ));
    assert!(
        dom.contains(
            "<tr class=\"leaks\"><td>test_13 (leak.Mixed)</td><td class=\"num\">– +1 +1 +1 +1 +1 +1 +1 +1</td>"
        ),
        "{dom}"
    );
    assert!(dom.contains("<tr class=\"grows\"><td>leak::Leakable</td><td class=\"num\">9</td>"));
    assert!(dom.contains("Total: 22 tests, 0 failures, 0 errors and 0 skipped; 2 layers run; 2 layers leaking."));
    assert!(dom.contains("<section id=\"stacks\">"));

    let shot = page.with_extension("png");
    let window = "--window-size=1200,1400";
    chromium(&page, &[window, "--hide-scrollbars", &format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000, "{} bytes", png.len());
}

#[test]
fn failures_and_hostile_names_arrive_escaped() {
    let (page, text) = report("hostile", "hostile.html", &["-N2", "-r"]);
    for raw in ['\u{1b}', '\u{7}', '\u{0}', '\u{9b}', '\r'] {
        assert!(!text.contains(raw), "{raw:?} reached the page");
    }
    let loaded = chromium(&page, &["--dump-dom"]);
    no_console_errors(&loaded);
    let dom = &loaded.dom;
    assert!(dom.contains("<h2>Layer hostile.\\e[31mRed\\nLayer</h2>"), "{dom}");
    assert!(dom.contains("Failures and errors (4)"), "{dom}");
    assert!(dom.contains("<h3>Failure in test_fails_with_escapes (UnitTests, iteration 1)</h3>"));
    assert!(dom.contains("message \\e[2J cleared \\e]52;c;aGk=\\u{7}\\r\nRan 99 tests"), "{dom}");
    // A measured test's row in the per-test table (UnitTests traps in every iteration, so
    // nothing of it is measured; the other layer is).
    assert!(dom.contains("<td>test_in_\\e]8;;http://x\\u{7}link</td>"), "{dom}");
}

#[test]
fn a_run_without_leak_measurement_still_renders() {
    let (page, _) = report("failures", "failures.html", &["-N2"]);
    let loaded = chromium(&page, &["--dump-dom"]);
    no_console_errors(&loaded);
    assert!(loaded.dom.contains("not measured"));
    assert!(loaded.dom.contains("<p class=\"result bad\" id=\"totals\">Total: "), "{}", loaded.dom);
}

#[test]
fn iterations_that_span_a_fresh_instance_are_marked() {
    let (page, text) = report("layertraps", "layertraps.html", &["-N3", "-r"]);
    // Every iteration of the layers that trap spans a fresh instance: shaded and labelled as such.
    assert!(text.contains("<rect class=\"broken\""), "{text}");
    assert!(text.contains("<title>iteration 3 (broken)</title></rect><text class=\"shade-label\""));
    assert!(text.contains(">no iteration counted (each spanned a fresh instance or warm-up)</p>"));
    no_console_errors(&chromium(&page, &["--dump-dom"]));
}

#[test]
fn allocation_stacks_are_in_the_report() {
    let (page, _) = report("leakstacks", "stacks.html", &["-N4", "-r"]);
    let loaded = chromium(&page, &["--dump-dom"]);
    no_console_errors(&loaded);
    let stacks = &loaded.dom[loaded.dom.find("<section id=\"stacks\">").expect("a stacks section")..];
    assert!(stacks.matches("<div class=\"stack\">").count() >= 8, "{stacks}");
    assert!(stacks.contains("<code>leakstacks::test_memo_map  leakstacks/src/lib.rs:"), "{stacks}");
    // Every report says what the terminal says about a group.
    assert!(stacks.contains("<p>1 block, 64 bytes per iteration, allocated by test_forgotten_vec at:</p>"), "{stacks}");
    assert!(stacks.contains("<p>14 bytes per iteration added to live blocks by test_visit_a at:</p>"), "{stacks}");
    assert!(!stacks.contains("No allocation stacks were recorded"), "{stacks}");
}
