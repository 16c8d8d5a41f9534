use super::*;
use crate::abi::{LayerDecl, TestDecl};

/// The reference sample suite's layer graph, declared in a scrambled order.
fn samplelayers() -> Manifest {
    let names = [
        "Layer122", "Layer1", "Layer12", "Layer111", "Layerx", "Layer11", "Layer112", "Layer121",
    ];
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
        .map(|n| LayerDecl {
            name: format!("samplelayers.{n}"),
            bases: bases(n),
            flags: LayerFlags::default(),
        })
        .collect();
    let mut tests = vec![TestDecl {
        name: "unit".into(),
        layer: None,
    }];
    for n in names.iter().filter(|&&n| n != "Layerx") {
        tests.push(TestDecl {
            name: format!("t{n}"),
            layer: Some(idx(n)),
        });
    }
    Manifest { layers, tests }
}

fn names(graph: &LayerGraph, layers: &[usize]) -> Vec<String> {
    layers
        .iter()
        .map(|&l| graph.name(l).trim_start_matches("samplelayers.").to_string())
        .collect()
}

fn find(graph: &LayerGraph, short: &str) -> usize {
    graph
        .layers
        .iter()
        .position(|l| l.name.ends_with(&format!(".{short}")) || l.name == short)
        .unwrap()
}

#[test]
fn run_order_matches_the_reference() {
    let plan = Plan::new(&samplelayers());
    let order: Vec<usize> = plan.layers.iter().map(|l| l.layer).collect();
    assert_eq!(
        names(&plan.graph, &order),
        [
            "UnitTests",
            "Layer1",
            "Layer11",
            "Layer111",
            "Layer112",
            "Layer12",
            "Layer121",
            "Layer122"
        ]
    );
}

#[test]
fn set_up_visits_bases_depth_first_in_declared_order_once() {
    let g = Plan::new(&samplelayers()).graph;
    let l111 = find(&g, "Layer111");
    assert_eq!(
        names(&g, &g.set_up_order(l111, &[])),
        ["Layerx", "Layer1", "Layer11", "Layer111"]
    );
    let already = [find(&g, "Layer1"), find(&g, "Layer11")];
    assert_eq!(names(&g, &g.set_up_order(l111, &already)), ["Layerx", "Layer111"]);
}

#[test]
fn tear_down_is_most_specific_first() {
    let g = Plan::new(&samplelayers()).graph;
    let set_up: Vec<usize> = ["Layer1", "Layer11", "Layerx", "Layer112"]
        .iter()
        .map(|n| find(&g, n))
        .collect();
    let order = g.tear_down_order(&set_up, Some(find(&g, "Layer12")));
    assert_eq!(names(&g, &order), ["Layer112", "Layerx", "Layer11"]);
    let all = g.tear_down_order(&[find(&g, "Layer1"), find(&g, "Layer12"), find(&g, "Layer122")], None);
    assert_eq!(names(&g, &all), ["Layer122", "Layer12", "Layer1"]);
}

#[test]
fn test_hooks_run_from_most_basic_to_most_specific() {
    let g = Plan::new(&samplelayers()).graph;
    assert_eq!(
        names(&g, &g.test_hook_order(find(&g, "Layer111"))),
        ["Layer1", "Layer11", "Layerx", "Layer111"]
    );
    assert_eq!(names(&g, &g.test_hook_order(g.unit())), ["UnitTests"]);
}

#[test]
fn tests_keep_declaration_order_within_a_layer() {
    let mut manifest = samplelayers();
    manifest.tests.push(TestDecl {
        name: "unit2".into(),
        layer: None,
    });
    let plan = Plan::new(&manifest);
    assert_eq!(plan.layers[0].tests, vec![0, manifest.tests.len() as u32 - 1]);
    assert_eq!(plan.test_count(), manifest.tests.len());
}
