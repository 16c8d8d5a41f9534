//! Layer-graph planning on arbitrary graphs: the first byte picks the number of layers,
//! then each layer takes a byte of base count and bytes of base offsets (bases point to
//! later layers, so the graph is acyclic, as a validated manifest's is), then bytes pick
//! test layers. Planning must not panic, must stay linear (a diamond chain of 64 layers
//! would explode zope's gather), and its orders must be consistent.
#![no_main]

use std::collections::HashSet;

use leakhost::abi::{LayerDecl, LayerFlags, Manifest, TestDecl};
use leakhost::plan::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.iter().copied();
    let n = 1 + bytes.next().unwrap_or(0) as usize % 64;
    let mut layers = Vec::with_capacity(n);
    for i in 0..n {
        let count = bytes.next().unwrap_or(0) as usize % 4;
        let mut bases = Vec::new();
        for _ in 0..count {
            let later = n - i - 1;
            if later > 0 {
                let base = i + 1 + bytes.next().unwrap_or(0) as usize % later;
                if !bases.contains(&base) {
                    bases.push(base);
                }
            }
        }
        // Few distinct letters, so sort keys share long prefixes.
        let name = format!("{}{i}", (b'a' + (bytes.next().unwrap_or(0) % 3)) as char);
        layers.push(LayerDecl { name: name.into(), bases, flags: LayerFlags::default() });
    }
    let tests: Vec<TestDecl> = bytes
        .enumerate()
        .map(|(i, b)| TestDecl { name: format!("t{i}").into(), layer: (b as usize % (n + 1)).checked_sub(1) })
        .collect();
    let manifest = Manifest { layers, tests };
    let plan = Plan::new(&manifest);
    let graph = &plan.graph;

    // Every layer with tests runs exactly once, the unit-test layer first.
    let order: Vec<usize> = plan.layers.iter().map(|l| l.layer).collect();
    let with_tests: HashSet<usize> = manifest.tests.iter().map(|t| graph.layer_of(t.layer)).collect();
    assert_eq!(order.len(), with_tests.len());
    assert_eq!(order.iter().copied().collect::<HashSet<_>>(), with_tests);
    if with_tests.contains(&graph.unit()) {
        assert_eq!(order[0], graph.unit());
    }
    assert_eq!(plan.test_count(), manifest.tests.len());

    for layer in 0..graph.layers.len() {
        let needed = graph.needed(layer);
        // Set-up: exactly the needed layers, each after all of its bases.
        let set_up = graph.set_up_order(layer, &[]);
        assert_eq!(set_up.iter().copied().collect::<HashSet<_>>(), needed);
        assert_eq!(set_up.len(), needed.len());
        let position = |l: usize| set_up.iter().position(|&x| x == l).unwrap();
        for &l in &set_up {
            assert!(graph.layers[l].bases.iter().all(|&b| position(b) < position(l)));
        }
        // Hooks: the same layers, each once.
        let hooks = graph.test_hook_order(layer);
        assert_eq!(hooks.len(), needed.len());
        assert_eq!(hooks.into_iter().collect::<HashSet<_>>(), needed);
        // Tear-down: what was set up and is not needed any more, each once.
        let torn = graph.tear_down_order(&set_up, Some(graph.unit()));
        assert_eq!(torn.len(), set_up.iter().filter(|&&l| l != graph.unit()).count());
    }
});
