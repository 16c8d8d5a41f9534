//! Names, messages and output from a hostile suite: escaped visibly on the terminal,
//! sanitised in JUnit, exact in JSON.

use crate::harness::{leakhost, suite, temp_file};

/// What a terminal could act on: C0 controls but newline, DEL, and C1 controls.
fn controls(text: &str) -> Vec<char> {
    text.chars().filter(|&c| c != '\n' && c.is_control()).collect()
}

#[test]
fn run_and_list_print_no_control_characters() {
    let wasm = suite("hostile");
    let wasm = wasm.to_str().unwrap();
    for args in [&["run", wasm][..], &["run", wasm, "-vv"], &["run", wasm, "-v"], &["list", wasm], &["inspect", wasm]] {
        let r = leakhost(args);
        assert_eq!(controls(&r.stdout), [], "{args:?}:\n{}", r.stdout);
        assert_eq!(controls(&r.stderr), [], "{args:?}:\n{}", r.stderr);
        // A name with a newline must not forge a summary line of its own.
        assert!(!r.stdout.lines().any(|l| l.starts_with("Ran 99 tests with")), "{args:?}:\n{}", r.stdout);
    }
    let vv = leakhost(["run", wasm, "-vv"]).stdout;
    for shown in [
        " test_esc_\\e[2K_erases",
        " test_forges\\nRan 99 tests with 0 failures",
        " test_cr\\r\\e[2Koverwritten",
        " test_bel_nul\\u{7}\\u{0}",
        " test_c1_\\u{9b}31m_red",
        " test_osc52_\\e]52;c;aGk=\\u{7}",
        "message \\e[2J cleared \\e]52;c;aGk=\\u{7}\\r",
        "output \\e[31mred\\e[0m \\e]52;c;aGk=\\u{7} bell\\u{7} cr\\rnul\\u{0}",
        "panic \\e]0;title\\u{7} \\u{9b}2J",
        "Running hostile.\\e[31mRed\\nLayer tests:",
        "set-up writes \\e[2J",
    ] {
        assert!(vv.contains(shown), "{shown:?} not in:\n{vv}");
    }
    let listed = leakhost(["list", wasm]).stdout;
    assert!(listed.contains("  test_forges\\nRan 99 tests"), "{listed}");
}

#[test]
fn junit_attributes_and_text_are_well_formed() {
    let wasm = suite("hostile");
    let xml = temp_file("hostile.xml", b"");
    let r = leakhost(["run", wasm.to_str().unwrap(), "--junit", xml.to_str().unwrap()]);
    assert_eq!(r.status, 1, "{}", r.stderr);
    let text = std::fs::read_to_string(&xml).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("not well-formed: {e}\n{text}"));
    let cases: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 9);
    let allowed = |c: &char| *c == '\t' || *c == '\r';
    for node in doc.descendants() {
        for attribute in node.attributes() {
            let bad: Vec<char> = controls(attribute.value()).into_iter().filter(|c| !allowed(c)).collect();
            assert_eq!(bad, [], "{:?}", attribute.value());
        }
        if let Some(text) = node.text() {
            let bad: Vec<char> = controls(text).into_iter().filter(|c| !allowed(c)).collect();
            assert_eq!(bad, [], "{text:?}");
        }
    }
    assert!(cases.iter().any(|c| c.attribute("name") == Some("test_bel_nul\u{fffd}\u{fffd}")), "{text}");
}

#[test]
fn json_keeps_the_exact_names() {
    let wasm = suite("hostile");
    let json = temp_file("hostile.json", b"");
    leakhost(["run", wasm.to_str().unwrap(), "--json", json.to_str().unwrap()]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let names: Vec<&str> = report["suites"][0]["layers"][0]["iterations"][0]["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"test_bel_nul\u{7}\u{0}"), "{names:?}");
    assert_eq!(report["suites"][0]["layers"][1]["name"], "hostile.\u{1b}[31mRed\nLayer");
}
