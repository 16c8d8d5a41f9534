use super::*;
use crate::abi::{LayerDecl, TestDecl};

/// The reference sample suite's layer graph, declared in a scrambled order.
fn samplelayers() -> Manifest {
    let names = ["Layer122", "Layer1", "Layer12", "Layer111", "Layerx", "Layer11", "Layer112", "Layer121"];
    let idx = |n: &str| names.iter().position(|&m| m == n).unwrap();
    let bases = |n: &str| -> Vec<usize> {
        match n {
            "Layer11" | "Layer12" => vec![idx("Layer1")],
            "Layer111" | "Layer112" => vec![idx("Layerx"), idx("Layer11")],
            "Layer121" | "Layer122" => vec![idx("Layer12")],
            _ => vec![],
        }
    };
    let layers = names
        .iter()
        .map(|n| LayerDecl { name: format!("samplelayers.{n}").into(), bases: bases(n), flags: LayerFlags::default() })
        .collect();
    let mut tests = vec![TestDecl { name: "unit".into(), layer: None }];
    for n in names.iter().filter(|&&n| n != "Layerx") {
        tests.push(TestDecl { name: format!("t{n}").into(), layer: Some(idx(n)) });
    }
    Manifest { layers, tests }
}

fn names(graph: &LayerGraph, layers: &[usize]) -> Vec<String> {
    layers.iter().map(|&l| graph.name(l).raw().trim_start_matches("samplelayers.").to_string()).collect()
}

fn find(graph: &LayerGraph, short: &str) -> usize {
    graph.layers.iter().position(|l| l.name.raw().ends_with(&format!(".{short}")) || l.name.raw() == short).unwrap()
}

#[test]
fn run_order_matches_the_reference() {
    let plan = Plan::new(&samplelayers());
    let order: Vec<usize> = plan.layers.iter().map(|l| l.layer).collect();
    assert_eq!(
        names(&plan.graph, &order),
        ["UnitTests", "Layer1", "Layer11", "Layer111", "Layer112", "Layer12", "Layer121", "Layer122"]
    );
}

#[test]
fn set_up_visits_bases_depth_first_in_declared_order_once() {
    let g = Plan::new(&samplelayers()).graph;
    let l111 = find(&g, "Layer111");
    assert_eq!(names(&g, &g.set_up_order(l111, &[])), ["Layerx", "Layer1", "Layer11", "Layer111"]);
    let already = [find(&g, "Layer1"), find(&g, "Layer11")];
    assert_eq!(names(&g, &g.set_up_order(l111, &already)), ["Layerx", "Layer111"]);
}

#[test]
fn tear_down_is_most_specific_first() {
    let g = Plan::new(&samplelayers()).graph;
    let set_up: Vec<usize> = ["Layer1", "Layer11", "Layerx", "Layer112"].iter().map(|n| find(&g, n)).collect();
    let order = g.tear_down_order(&set_up, Some(find(&g, "Layer12")));
    assert_eq!(names(&g, &order), ["Layer112", "Layerx", "Layer11"]);
    let all = g.tear_down_order(&[find(&g, "Layer1"), find(&g, "Layer12"), find(&g, "Layer122")], None);
    assert_eq!(names(&g, &all), ["Layer122", "Layer12", "Layer1"]);
}

#[test]
fn test_hooks_run_from_most_basic_to_most_specific() {
    let g = Plan::new(&samplelayers()).graph;
    assert_eq!(names(&g, &g.test_hook_order(find(&g, "Layer111"))), ["Layer1", "Layer11", "Layerx", "Layer111"]);
    assert_eq!(names(&g, &g.test_hook_order(g.unit())), ["UnitTests"]);
}

#[test]
fn tests_keep_declaration_order_within_a_layer() {
    let mut manifest = samplelayers();
    manifest.tests.push(TestDecl { name: "unit2".into(), layer: None });
    let plan = Plan::new(&manifest);
    assert_eq!(plan.layers[0].tests, vec![0, manifest.tests.len() as u32 - 1]);
    assert_eq!(plan.test_count(), manifest.tests.len());
}

fn selected(plan: &Plan) -> Vec<(String, Vec<String>)> {
    plan.layers
        .iter()
        .map(|l| {
            let tests = l.tests.iter().map(|&t| plan.test_names[t as usize].raw().to_string()).collect();
            (plan.graph.name(l.layer).raw().to_string(), tests)
        })
        .collect()
}

fn select(manifest: &Manifest, f: impl FnOnce(&mut Selection)) -> Plan {
    let mut selection = Selection::default();
    f(&mut selection);
    Plan::select(manifest, &selection)
}

fn pats(specs: &[&str]) -> Vec<Pattern> {
    specs.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn test_patterns_search_and_any_pattern_selects() {
    let m = samplelayers();
    let plan = select(&m, |s| s.tests = pats(&["Layer11"]));
    // A search, not a full match: tLayer11, tLayer111 and tLayer112 all contain it.
    let names: Vec<String> = selected(&plan).into_iter().flat_map(|(_, t)| t).collect();
    assert_eq!(names, ["tLayer11", "tLayer111", "tLayer112"]);
    let plan = select(&m, |s| s.tests = pats(&["^unit$", "Layer122"]));
    assert_eq!(plan.test_count(), 2);
}

#[test]
fn a_leading_bang_negates() {
    let m = samplelayers();
    let plan = select(&m, |s| s.tests = pats(&["!Layer1"]));
    let names: Vec<String> = selected(&plan).into_iter().flat_map(|(_, t)| t).collect();
    assert_eq!(names, ["unit"]);
    // zope ORs patterns, negated ones included.
    let plan = select(&m, |s| s.tests = pats(&["!Layer1", "Layer122$"]));
    assert_eq!(plan.test_count(), 2);
}

#[test]
fn layer_patterns_unit_and_non_unit() {
    let m = samplelayers();
    let layers = |p: &Plan| selected(p).into_iter().map(|(l, _)| l).collect::<Vec<_>>();
    let plan = select(&m, |s| s.layers = pats(&["Layer12"]));
    assert_eq!(layers(&plan), ["samplelayers.Layer12", "samplelayers.Layer121", "samplelayers.Layer122"]);
    // The unit-test layer runs with --layer only when a pattern selects its name.
    let plan = select(&m, |s| s.layers = pats(&["!Layer"]));
    assert_eq!(layers(&plan), ["UnitTests"]);
    assert_eq!(layers(&select(&m, |s| s.unit_only = true)), ["UnitTests"]);
    let non_unit = layers(&select(&m, |s| s.non_unit_only = true));
    assert_eq!(non_unit.len(), 7);
    assert!(!non_unit.contains(&"UnitTests".to_string()));
}

#[test]
fn partitions_cover_every_test_exactly_once() {
    let mut m = samplelayers();
    for i in 0..40 {
        m.tests.push(TestDecl { name: format!("extra{i}").into(), layer: Some(1) });
    }
    let whole = Plan::new(&m);
    let mut seen: Vec<u32> = Vec::new();
    for index in 1..=3 {
        let part = select(&m, |s| s.partition = Some(Partition { index, count: 3 }));
        let n = part.test_count();
        assert!((whole.test_count() / 3..=whole.test_count() / 3 + 1).contains(&n), "part {index} has {n}");
        seen.extend(part.layers.iter().flat_map(|l| l.tests.iter().copied()));
    }
    seen.sort();
    let mut all: Vec<u32> = whole.layers.iter().flat_map(|l| l.tests.iter().copied()).collect();
    all.sort();
    assert_eq!(seen, all);
}

#[test]
fn partition_specs_parse() {
    assert_eq!("2/5".parse::<Partition>(), Ok(Partition { index: 2, count: 5 }));
    assert_eq!("count:2/5".parse::<Partition>(), Ok(Partition { index: 2, count: 5 }));
    assert!("hash:2/5".parse::<Partition>().unwrap_err().contains("round-robin"));
    for bad in ["0/3", "4/3", "1/0", "x/2", "3"] {
        assert!(bad.parse::<Partition>().is_err(), "{bad}");
    }
}

#[test]
fn shuffle_is_seeded_and_keeps_layers_whole() {
    let mut m = samplelayers();
    for i in 0..30 {
        m.tests.push(TestDecl { name: format!("u{i}").into(), layer: None });
    }
    let a = select(&m, |s| s.shuffle = Some(7));
    let b = select(&m, |s| s.shuffle = Some(7));
    let c = select(&m, |s| s.shuffle = Some(8));
    assert_eq!(a, b);
    assert_ne!(a.layers[0].tests, c.layers[0].tests);
    let plain = Plan::new(&m);
    assert_ne!(a.layers[0].tests, plain.layers[0].tests);
    let mut sorted = a.layers[0].tests.clone();
    sorted.sort();
    assert_eq!(sorted, plain.layers[0].tests);
    let order = |p: &Plan| p.layers.iter().map(|l| l.layer).collect::<Vec<_>>();
    assert_eq!(order(&a), order(&plain));
}

#[test]
fn bad_patterns_are_reported() {
    let err = "(".parse::<Pattern>().unwrap_err();
    assert!(err.contains("not a valid pattern"), "{err}");
}
