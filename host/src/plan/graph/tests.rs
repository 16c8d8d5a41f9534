//! The linear orderings against zope's own algorithm (duplicates kept, then reversed),
//! on random graphs, and on the graphs that made that algorithm explode.

use std::collections::HashSet;

use super::*;
use crate::abi::{LayerDecl, TestDecl};

/// zope.testrunner's algorithms as leakhost first wrote them: exponential on diamonds.
mod zope {
    use super::*;

    fn gather(g: &LayerGraph, layer: usize, out: &mut Vec<usize>) {
        out.push(layer);
        for &base in &g.layers[layer].bases {
            gather(g, base, out);
        }
    }

    fn first_of_reversed(g: &LayerGraph, roots: &[usize], wanted: &[usize]) -> Vec<usize> {
        let mut gathered = Vec::new();
        for &layer in roots {
            gather(g, layer, &mut gathered);
        }
        let wanted: HashSet<usize> = wanted.iter().copied().collect();
        let mut seen = HashSet::new();
        gathered.into_iter().rev().filter(|l| wanted.contains(l) && seen.insert(*l)).collect()
    }

    pub fn order_by_bases(g: &LayerGraph, subset: &[usize]) -> Vec<usize> {
        let mut named = subset.to_vec();
        named.sort_by(|&a, &b| g.name(b).cmp(g.name(a)));
        first_of_reversed(g, &named, subset)
    }

    pub fn sort_key(g: &LayerGraph, layer: usize) -> Vec<&str> {
        fn walk<'g>(g: &'g LayerGraph, l: usize, seen: &mut HashSet<usize>, key: &mut Vec<&'g str>) {
            for &base in g.layers[l].bases.iter().rev() {
                walk(g, base, seen, key);
            }
            if seen.insert(l) {
                key.push(g.name(l).raw());
            }
        }
        let mut key = Vec::new();
        walk(g, layer, &mut HashSet::new(), &mut key);
        key
    }

    pub fn run_order(g: &LayerGraph, with_tests: &[usize]) -> Vec<usize> {
        let unit = g.unit();
        let mut order: Vec<usize> = with_tests.iter().copied().filter(|&l| l == unit).take(1).collect();
        let mut others: Vec<usize> = with_tests.iter().copied().filter(|&l| l != unit).collect();
        others.sort_by(|&a, &b| sort_key(g, b).cmp(&sort_key(g, a)));
        others.dedup();
        order.extend(first_of_reversed(g, &others, &others));
        order
    }

    pub fn set_up_order(g: &LayerGraph, layer: usize, already: &[usize]) -> Vec<usize> {
        fn visit(g: &LayerGraph, layer: usize, done: &mut HashSet<usize>, order: &mut Vec<usize>) {
            if done.contains(&layer) {
                return;
            }
            for &base in &g.layers[layer].bases {
                visit(g, base, done, order);
            }
            if done.insert(layer) {
                order.push(layer);
            }
        }
        let mut order = Vec::new();
        visit(g, layer, &mut already.iter().copied().collect(), &mut order);
        order
    }
}

/// A deterministic pseudo-random stream (splitmix64).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) % n as u64) as usize
    }
}

/// A random DAG: layer i's bases are distinct layers declared after it (so no cycle),
/// with names drawn from a small alphabet so that keys share long prefixes.
fn random_graph(rng: &mut Rng, n: usize) -> LayerGraph {
    let mut names: Vec<String> = Vec::new();
    while names.len() < n {
        let len = 1 + rng.below(3);
        let name: String = (0..len).map(|_| (b'a' + rng.below(3) as u8) as char).collect();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let layers = (0..n)
        .map(|i| {
            let mut bases = Vec::new();
            for _ in 0..rng.below(4) {
                if i + 1 < n {
                    let base = i + 1 + rng.below(n - i - 1);
                    if !bases.contains(&base) {
                        bases.push(base);
                    }
                }
            }
            LayerDecl { name: names[i].as_str().into(), bases, flags: LayerFlags::default() }
        })
        .collect();
    LayerGraph::new(&Manifest { layers, tests: Vec::new() })
}

#[test]
fn orderings_equal_zopes_on_random_graphs() {
    let mut rng = Rng(42);
    for case in 0..400 {
        let n = 1 + rng.below(12);
        let g = random_graph(&mut rng, n);
        let all: Vec<usize> = (0..g.layers.len()).collect();
        let subset: Vec<usize> = all.iter().copied().filter(|_| rng.below(2) == 0).collect();
        assert_eq!(g.order_by_bases(&subset), zope::order_by_bases(&g, &subset), "case {case}: {g:?}");
        assert_eq!(g.run_order(&subset), zope::run_order(&g, &subset), "case {case}: {g:?}");
        assert_eq!(g.run_order(&all), zope::run_order(&g, &all), "case {case}: {g:?}");
        let layer = rng.below(g.layers.len());
        let already: Vec<usize> = subset.iter().copied().filter(|_| rng.below(2) == 0).collect();
        assert_eq!(g.set_up_order(layer, &already), zope::set_up_order(&g, layer, &already), "case {case}");
        assert_eq!(
            g.test_hook_order(layer),
            zope::order_by_bases(&g, &g.needed(layer).into_iter().collect::<Vec<_>>()),
            "case {case}"
        );
    }
}

#[test]
fn sort_key_ranks_follow_zopes_key_order() {
    let mut rng = Rng(7);
    for case in 0..200 {
        let n = 1 + rng.below(10);
        let g = random_graph(&mut rng, n);
        let ranks = SortKeys::new(&g).ranks;
        for a in 0..g.layers.len() {
            for b in 0..g.layers.len() {
                let want = zope::sort_key(&g, a).cmp(&zope::sort_key(&g, b));
                assert_eq!(ranks[a].cmp(&ranks[b]), want, "case {case}, layers {a} and {b}: {g:?}");
            }
        }
    }
}

/// A manifest of `n` layers where layer i has `bases(i)` and one test.
fn graph_manifest(n: usize, bases: impl Fn(usize) -> Vec<usize>) -> Manifest {
    let layers =
        (0..n).map(|i| LayerDecl { name: format!("L{i:05}").into(), bases: bases(i), flags: LayerFlags::default() });
    let tests = (0..n).map(|i| TestDecl { name: format!("t{i}").into(), layer: Some(i) });
    Manifest { layers: layers.collect(), tests: tests.collect() }
}

#[test]
fn sixty_layers_with_two_bases_each_plan_without_exploding() {
    // zope's gather visits fib(60) ≈ 1.5e12 entries here; the visited set visits 60.
    let m = graph_manifest(60, |i| {
        if i >= 2 {
            vec![i - 1, i - 2]
        } else if i == 1 {
            vec![0]
        } else {
            vec![]
        }
    });
    let plan = crate::plan::Plan::new(&m);
    let order: Vec<usize> = plan.layers.iter().map(|l| l.layer).collect();
    assert_eq!(order, (0..60).collect::<Vec<_>>(), "bases run before the layers built on them");
    let g = &plan.graph;
    assert_eq!(g.test_hook_order(59), (0..60).collect::<Vec<_>>());
    assert_eq!(g.set_up_order(59, &[]), (0..60).collect::<Vec<_>>());
    assert_eq!(g.tear_down_order(&(0..60).collect::<Vec<_>>(), None), (0..60).rev().collect::<Vec<_>>());
}

#[test]
fn a_chain_of_the_most_layers_allowed_plans_with_iterative_walks() {
    // Recursive walks would need 65,536 nested frames; zope's keys and gathers are quadratic.
    let n = crate::abi::MAX_LAYERS as usize;
    let m = graph_manifest(n, |i| if i > 0 { vec![i - 1] } else { vec![] });
    let plan = crate::plan::Plan::new(&m);
    assert_eq!(plan.layers.len(), n);
    assert!(plan.layers.iter().enumerate().all(|(i, l)| l.layer == i));
    let g = &plan.graph;
    let last = n - 1;
    assert_eq!(g.set_up_order(last, &[]).len(), n);
    assert_eq!(g.set_up_order(last, &[last - 1]), vec![last]);
    assert_eq!(g.test_hook_order(last).first(), Some(&0));
    assert_eq!(g.tear_down_order(&[0, 1, last], Some(1)), vec![last]);
}

#[test]
fn the_most_layers_allowed_with_two_bases_each_plan_in_linear_work() {
    // Every key extends its last base's key by two layers here; building the keys from
    // the last base's walk alone would touch ~n²/2 = 2·10⁹ layers.
    let n = crate::abi::MAX_LAYERS as usize;
    let m = graph_manifest(n, |i| {
        if i >= 2 {
            vec![i - 1, i - 2]
        } else if i == 1 {
            vec![0]
        } else {
            vec![]
        }
    });
    let g = LayerGraph::new(&m);
    let with_tests: Vec<usize> = (0..n).collect();
    let order = g.run_order(&with_tests);
    assert_eq!(order, with_tests, "bases run before the layers built on them");
}
