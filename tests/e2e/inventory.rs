//! A suite as users write one, on real crates (lru, slab, bytes, petgraph): the run does
//! not depend on who reads it, its files are the same on every run, and its stacks name
//! only what leaks, blamed right, with full names and paths that say whose file.

use std::path::{Path, PathBuf};

use crate::harness::{leakhost, normalise_times, suite, temp_file, Run};

fn wasm() -> PathBuf {
    suite("inventory_leaks")
}

fn run(extra: &[&str]) -> Run {
    let wasm = wasm();
    let mut args = vec!["run", wasm.to_str().unwrap(), "-N4", "-r", "--fail-on-leak"];
    args.extend_from_slice(extra);
    leakhost(args)
}

/// A scratch directory of its own for `name`.
fn scratch(name: &str) -> PathBuf {
    temp_file(name, b"").parent().unwrap().to_path_buf()
}

#[test]
fn no_report_flag_changes_the_human_output_or_the_exit_status() {
    let bare = run(&[]);
    assert_eq!(bare.status, 3, "{}{}", bare.stdout, bare.stderr);
    let dir = scratch("readers");
    let file = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let with: [Vec<String>; 5] = [
        vec!["--json".into(), file("r.json")],
        vec!["--events".into(), file("r.jsonl")],
        vec!["--html".into(), file("r.html")],
        vec!["--junit".into(), file("r.xml")],
        vec!["--json".into(), file("a.json"), "--events".into(), file("a.jsonl"), "--html".into(), file("a.html")],
    ];
    for flags in &with {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let read = run(&flags);
        assert_eq!(read.status, bare.status, "{flags:?}");
        assert_eq!(normalise_times(&read.stdout), normalise_times(&bare.stdout), "{flags:?} changed the run");
    }
    // Nor does the verbosity change what is measured: the same JSON at -v, -vv and -q.
    let report = |extra: &[&str], name: &str| {
        let path = dir.join(name);
        let mut flags = vec!["--json", path.to_str().unwrap(), "--no-timings"];
        flags.extend_from_slice(extra);
        assert_eq!(run(&flags).status, 3);
        std::fs::read(path).unwrap()
    };
    let plain = report(&[], "plain.json");
    for (extra, name) in [(&["-v"][..], "v.json"), (&["-vv"][..], "vv.json"), (&["-q"][..], "q.json")] {
        assert!(report(extra, name) == plain, "{extra:?} changed the report");
    }
}

#[test]
fn four_runs_write_byte_identical_files_of_every_kind() {
    let dir = scratch("four");
    let files = |i: usize| ["json", "jsonl", "html", "xml"].map(|ext| dir.join(format!("run{i}.{ext}")));
    for i in 0..4 {
        let [json, events, html, junit] = files(i).map(|p| p.to_str().unwrap().to_string());
        let r = run(&["--json", &json, "--events", &events, "--html", &html, "--junit", &junit, "--no-timings"]);
        assert_eq!(r.status, 3, "{}", r.stderr);
    }
    for i in 1..4 {
        for (first, other) in files(0).iter().zip(files(i)) {
            assert!(std::fs::read(first).unwrap() == std::fs::read(&other).unwrap(), "{} differs", other.display());
        }
    }
}

/// The stack groups printed for one layer: each its heading and its frames.
fn groups(stdout: &str, layer: &str) -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let start =
        stdout.find(&format!("  Where {layer} leaks")).unwrap_or_else(|| panic!("no stacks for {layer}:\n{stdout}"));
    let (mut notes, mut groups) = (Vec::new(), Vec::<(String, Vec<String>)>::new());
    for line in stdout[start..].lines().skip(1) {
        if let Some(frame) = line.strip_prefix("      ") {
            groups.last_mut().expect("a heading first").1.push(frame.to_string());
        } else if let Some(note) = line.strip_prefix("    (") {
            notes.push(note.to_string());
        } else if let Some(heading) = line.strip_prefix("    ") {
            groups.push((heading.to_string(), Vec::new()));
        } else {
            break;
        }
    }
    (notes, groups)
}

#[test]
fn stacks_show_only_what_the_verdict_blames_named_in_full() {
    let r = run(&[]);
    let (notes, catalog) = groups(&r.stdout, "inventory.Catalog");
    // The LRU of labels was still churning: its live entries are counted, not listed.
    assert!(notes.iter().any(|n| n.contains("still live from tests without a verdict")), "{notes:?}");
    for (heading, _) in &catalog {
        assert!(!heading.contains("test_labels"), "a clean test's data is listed: {heading}");
        assert!(["test_lookup", "test_tag_sale", "test_tag_new"].iter().any(|t| heading.contains(t)), "{heading}");
    }
    let lookup = catalog.iter().find(|(h, _)| h.contains("by test_lookup")).expect("the audit log's stack");
    assert!(lookup.1[0].starts_with("inventory::catalog::Catalog::lookup  inventory/src/catalog.rs:"), "{lookup:?}");
    assert!(lookup.1.last().unwrap().starts_with("inventory_leaks::test_lookup  inventory-leaks/src/lib.rs:"));
    // A crates.io crate's frame says which crate and version.
    let bytes =
        catalog.iter().flat_map(|(_, f)| f).find(|f| f.contains("Bytes as core::convert::From")).expect("bytes");
    let file = bytes.rsplit("  ").next().unwrap();
    assert!(file.starts_with("bytes-1.") && file.contains("/src/bytes.rs:"), "{bytes}");
    // The hook leak is the hook's.
    let (_, sessions) = groups(&r.stdout, "inventory.Sessions");
    assert!(sessions.iter().all(|(h, _)| h.contains("allocated by testSetUp of inventory.Sessions")), "{sessions:?}");
    assert!(sessions[0].1[0].starts_with("inventory::sessions::SessionTable::open  inventory/src/sessions.rs:"));
    let (_, routes) = groups(&r.stdout, "inventory.Routes");
    assert!(routes[0].1[0].starts_with("inventory::routes::Router::plan  inventory/src/routes.rs:"), "{routes:?}");
    for layer in ["inventory.Catalog", "inventory.Sessions", "inventory.Routes"] {
        let (_, groups) = groups(&r.stdout, layer);
        let mut texts: Vec<&Vec<String>> = groups.iter().map(|(_, f)| f).collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), groups.len(), "{layer}: two groups with the same frames");
        for frame in groups.iter().flat_map(|(_, f)| f) {
            let function = frame.split("  ").next().unwrap();
            assert!(function.contains("::"), "{layer}: a frame without its path: {frame}");
            // The SDK's own frames are trimmed; the suite's impl of its trait is the suite's code.
            assert!(!function.trim_start_matches('<').starts_with("leakhost_guest::"), "{layer}: {frame}");
            for hidden in ["__leakhost", "__rust_alloc", "alloc::alloc::", "LocalKey"] {
                assert!(!frame.contains(hidden), "{layer}: {hidden} is shown: {frame}");
            }
        }
    }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_report_says_what_the_terminal_says_about_the_stacks() {
    let dir = scratch("reports");
    let (report, junit, html) = (dir.join("r.json"), dir.join("r.xml"), dir.join("r.html"));
    let r = run(&[
        "--json",
        report.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let (_, sessions) = groups(&r.stdout, "inventory.Sessions");
    let doc = json(&report);
    let layers = doc["suites"][0]["layers"].as_array().unwrap();
    for layer in layers.iter().filter(|l| l["verdict"]["shape"] == "leaks") {
        let named: Vec<&serde_json::Value> =
            layer["verdict"]["tests"].as_array().unwrap().iter().map(|t| &t["test"]).collect();
        for group in layer["stacks"]["groups"].as_array().unwrap() {
            for test in group["tests"].as_array().unwrap() {
                assert!(named.contains(&test), "{}: {test} is not a cause the verdict names", layer["name"]);
            }
            for frame in group["frames"].as_array().unwrap() {
                assert!(frame["path"].as_str().is_some_and(|p| p.starts_with('/')), "a full path: {frame}");
            }
        }
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains(&format!("<p>{}</p>", sessions[0].0)), "the HTML heading differs from {:?}", sessions[0].0);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let case = doc.descendants().find(|n| n.attribute("name") == Some("test_lookup")).unwrap();
    let failure = case.children().find(|n| n.has_tag_name("failure")).expect("a leak failure");
    let message = failure.attribute("message").unwrap();
    assert!(message.starts_with("inventory.Catalog leaks: caused by test_lookup ("), "its own share: {message}");
    let out = case.children().find(|n| n.has_tag_name("system-out")).unwrap().text().unwrap();
    assert!(out.contains("inventory::catalog::Catalog::lookup  inventory/src/catalog.rs:"), "{out}");
}

#[test]
fn a_frame_allowance_for_the_real_leaks_passes_with_and_without_reports() {
    let dir = scratch("allowed");
    let copy = dir.join("inventory_leaks.wasm");
    std::fs::copy(wasm(), &copy).unwrap();
    let toml = "[[allow]]\nframe = '^inventory::catalog::Catalog::(lookup|tag)$|^inventory_leaks::test_tag_new$'\n\
                reason = 'the audit log and tags are flushed nightly'\n\n\
                [[allow]]\nlayer = '^inventory\\.(Sessions|Routes)$'\nreason = 'known, tracked in #12'\n";
    std::fs::write(dir.join("leakhost.toml"), toml).unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["run", copy.to_str().unwrap(), "-N4", "-r", "--fail-on-leak"];
        args.extend_from_slice(extra);
        leakhost(args)
    };
    let bare = run(&[]);
    assert_eq!(bare.status, 0, "{}", bare.stdout);
    assert!(bare.stdout.contains("  inventory.Catalog: allowed by "), "{}", bare.stdout);
    let report = dir.join("allowed.json");
    let with_json = run(&["--json", report.to_str().unwrap()]);
    assert_eq!(with_json.status, 0, "{}", with_json.stdout);
    let doc = json(&report);
    let catalog =
        doc["suites"][0]["layers"].as_array().unwrap().iter().find(|l| l["name"] == "inventory.Catalog").unwrap();
    assert_eq!(catalog["policy"]["excused"], true);
    assert_eq!(catalog["policy"]["allowance"]["status"], "allowed");
}

#[test]
fn reports_render_again_and_the_partitions_of_a_run_merge_into_one() {
    let dir = scratch("partitions");
    let part = |k: u32, extra: &[&str]| {
        let path = dir.join(format!("part{k}{}.json", extra.len()));
        let partition = format!("{k}/2");
        let mut flags = vec!["--partition", partition.as_str(), "--json", path.to_str().unwrap(), "--no-timings"];
        flags.extend_from_slice(extra);
        run(&flags);
        path
    };
    let (one, two) = (part(1, &[]), part(2, &[]));
    // A report read and written again is the same report, byte for byte.
    let again = dir.join("again.json");
    let r = leakhost(["report", one.to_str().unwrap(), "--json", again.to_str().unwrap()]);
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert!(std::fs::read(&one).unwrap() == std::fs::read(&again).unwrap(), "a report changed on its way through");

    let (merged, junit, html) = (dir.join("merged.json"), dir.join("merged.xml"), dir.join("merged.html"));
    let args = ["report", two.to_str().unwrap(), one.to_str().unwrap(), "--json", merged.to_str().unwrap()];
    let r =
        leakhost(args.iter().copied().chain(["--junit", junit.to_str().unwrap(), "--html", html.to_str().unwrap()]));
    assert_eq!(r.status, 0, "{}", r.stderr);
    let doc = json(&merged);
    assert!(doc["selection"]["partition"].is_null());
    let parts: Vec<(String, u64)> = doc["suites"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["name"].as_str().unwrap().to_string(), l["partition"]["index"].as_u64().unwrap()))
        .collect();
    assert!(
        parts.contains(&("inventory.Catalog".into(), 1)) && parts.contains(&("inventory.Catalog".into(), 2)),
        "{parts:?}"
    );
    let tests = |p: &Path| json(p)["totals"]["tests"].as_u64().unwrap();
    assert_eq!(tests(&merged), tests(&one) + tests(&two));
    assert!(std::fs::read_to_string(&html).unwrap().contains("(partition 2/2)"));
    assert!(roxmltree::Document::parse(&std::fs::read_to_string(&junit).unwrap()).is_ok());

    // Partitions of another run do not merge with these.
    let other = part(2, &["-N5"]);
    let r = leakhost(["report", one.to_str().unwrap(), other.to_str().unwrap(), "--json", merged.to_str().unwrap()]);
    assert_eq!(r.status, 2);
    assert!(r.stderr.starts_with("leakhost: error: cannot merge the reports: report 2 is not of the same run as report 1: its run options differ"), "{}", r.stderr);
    let r = leakhost(["report", one.to_str().unwrap(), "--json", merged.to_str().unwrap(), one.to_str().unwrap()]);
    assert_eq!(r.status, 2, "{}", r.stderr);
    let r = leakhost(["report", one.to_str().unwrap()]);
    assert_eq!(r.status, 2);
    assert!(r.stderr.contains("writes nothing without --html FILE, --junit FILE or --json FILE"), "{}", r.stderr);
}
