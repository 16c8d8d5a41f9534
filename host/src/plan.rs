//! Which layers run, in which order, and which set-ups and tear-downs a switch needs.
//!
//! Pure functions over the layer graph, following zope.testrunner 8.3 (see
//! ../shared/reference/zope-testrunner.md): the unit-test layer first, then the
//! sort-key order, bases set up depth-first once each, unneeded layers torn down
//! most specific first.

use std::collections::HashSet;

use crate::abi::{LayerFlags, Manifest, UNIT_LAYER_NAME};

/// A layer in the host's graph; the unit-test layer is one too, with no guest index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNode {
    /// The layer's name.
    pub name: String,
    /// Host indexes of its bases, in declared order.
    pub bases: Vec<usize>,
    /// Its hooks.
    pub flags: LayerFlags,
    /// The index the guest knows it by; `None` for the unit-test layer.
    pub guest_index: Option<u32>,
}

/// All layers of a suite: the guest's, in declaration order, then the unit-test layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerGraph {
    /// The layers; a layer's host index is its position here.
    pub layers: Vec<LayerNode>,
}

impl LayerGraph {
    /// Builds the graph from a validated manifest.
    pub fn new(manifest: &Manifest) -> Self {
        let mut layers: Vec<LayerNode> = manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerNode {
                name: l.name.clone(),
                bases: l.bases.clone(),
                flags: l.flags,
                guest_index: Some(i as u32),
            })
            .collect();
        layers.push(LayerNode {
            name: UNIT_LAYER_NAME.to_string(),
            bases: Vec::new(),
            flags: LayerFlags::default(),
            guest_index: None,
        });
        LayerGraph { layers }
    }

    /// The host index of the unit-test layer.
    pub fn unit(&self) -> usize {
        self.layers.len() - 1
    }

    /// The host index of the layer a test declared.
    pub fn layer_of(&self, guest_layer: Option<usize>) -> usize {
        guest_layer.unwrap_or(self.unit())
    }

    /// The layer's name.
    pub fn name(&self, layer: usize) -> &str {
        &self.layers[layer].name
    }

    /// `layer` and all its bases, recursively.
    pub fn needed(&self, layer: usize) -> HashSet<usize> {
        let mut needed = HashSet::new();
        let mut stack = vec![layer];
        while let Some(l) = stack.pop() {
            if needed.insert(l) {
                stack.extend(&self.layers[l].bases);
            }
        }
        needed
    }

    /// The layers to set up before `layer`, in order: bases first, depth-first in
    /// declared order, skipping any already set up.
    pub fn set_up_order(&self, layer: usize, already: &[usize]) -> Vec<usize> {
        let mut order = Vec::new();
        let mut done: HashSet<usize> = already.iter().copied().collect();
        self.visit_set_up(layer, &mut done, &mut order);
        order
    }

    fn visit_set_up(&self, layer: usize, done: &mut HashSet<usize>, order: &mut Vec<usize>) {
        if done.contains(&layer) {
            return;
        }
        for &base in &self.layers[layer].bases {
            self.visit_set_up(base, done, order);
        }
        if done.insert(layer) {
            order.push(layer);
        }
    }

    /// Appends `layer` and its bases, pre-order, in declared order, duplicates kept.
    fn gather(&self, layer: usize, out: &mut Vec<usize>) {
        out.push(layer);
        for &base in &self.layers[layer].bases {
            self.gather(base, out);
        }
    }

    /// `subset` ordered from least to most specific (zope's `order_by_bases`).
    pub fn order_by_bases(&self, subset: &[usize]) -> Vec<usize> {
        let mut named: Vec<usize> = subset.to_vec();
        named.sort_by(|&a, &b| self.name(b).cmp(self.name(a)));
        let mut gathered = Vec::new();
        for &layer in &named {
            self.gather(layer, &mut gathered);
        }
        let wanted: HashSet<usize> = subset.iter().copied().collect();
        let mut seen = HashSet::new();
        gathered
            .into_iter()
            .rev()
            .filter(|l| wanted.contains(l) && seen.insert(*l))
            .collect()
    }

    /// The layers set up in `set_up` but not needed by `layer`, in tear-down order.
    pub fn tear_down_order(&self, set_up: &[usize], layer: Option<usize>) -> Vec<usize> {
        let needed = layer.map(|l| self.needed(l)).unwrap_or_default();
        let unneeded: Vec<usize> = set_up.iter().copied().filter(|l| !needed.contains(l)).collect();
        let mut order = self.order_by_bases(&unneeded);
        order.reverse();
        order
    }

    /// The layers whose testSetUp runs around a test of `layer`, most basic first.
    pub fn test_hook_order(&self, layer: usize) -> Vec<usize> {
        let needed: Vec<usize> = self.needed(layer).into_iter().collect();
        self.order_by_bases(&needed)
    }

    /// zope's sort key: the layer's names collected depth-first, post-order,
    /// visiting bases in reverse declared order, each once.
    fn sort_key(&self, layer: usize) -> Vec<&str> {
        fn walk<'g>(g: &'g LayerGraph, l: usize, seen: &mut HashSet<usize>, key: &mut Vec<&'g str>) {
            for &base in g.layers[l].bases.iter().rev() {
                walk(g, base, seen, key);
            }
            if seen.insert(l) {
                key.push(g.name(l));
            }
        }
        let mut key = Vec::new();
        walk(self, layer, &mut HashSet::new(), &mut key);
        key
    }

    /// The order in which layers with tests run: the unit-test layer first, then zope's order.
    pub fn run_order(&self, with_tests: &[usize]) -> Vec<usize> {
        let unit = self.unit();
        let mut order: Vec<usize> = with_tests.iter().copied().filter(|&l| l == unit).take(1).collect();
        let mut others: Vec<usize> = with_tests.iter().copied().filter(|&l| l != unit).collect();
        others.sort_by(|&a, &b| self.sort_key(b).cmp(&self.sort_key(a)));
        others.dedup();
        let mut listed = Vec::new();
        for &layer in &others {
            self.gather(layer, &mut listed);
        }
        let wanted: HashSet<usize> = others.iter().copied().collect();
        let mut seen = HashSet::new();
        order.extend(
            listed
                .into_iter()
                .rev()
                .filter(|l| wanted.contains(l) && seen.insert(*l)),
        );
        order
    }
}

/// One layer's share of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    /// Host index of the layer.
    pub layer: usize,
    /// Guest indexes of its tests, in declaration order.
    pub tests: Vec<u32>,
}

/// What a run will do: the graph, and the layers with their tests in run order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The suite's layers.
    pub graph: LayerGraph,
    /// Test names by guest index.
    pub test_names: Vec<String>,
    /// The layers that have selected tests, in run order.
    pub layers: Vec<PlannedLayer>,
}

impl Plan {
    /// Plans every test of the manifest.
    pub fn new(manifest: &Manifest) -> Self {
        let graph = LayerGraph::new(manifest);
        let mut by_layer: Vec<Vec<u32>> = vec![Vec::new(); graph.layers.len()];
        for (index, test) in manifest.tests.iter().enumerate() {
            by_layer[graph.layer_of(test.layer)].push(index as u32);
        }
        let with_tests: Vec<usize> = (0..graph.layers.len()).filter(|&l| !by_layer[l].is_empty()).collect();
        let layers = graph
            .run_order(&with_tests)
            .into_iter()
            .map(|layer| PlannedLayer {
                layer,
                tests: std::mem::take(&mut by_layer[layer]),
            })
            .collect();
        let test_names = manifest.tests.iter().map(|t| t.name.clone()).collect();
        Plan {
            graph,
            test_names,
            layers,
        }
    }

    /// How many test runs one iteration of every layer makes.
    pub fn test_count(&self) -> usize {
        self.layers.iter().map(|l| l.tests.len()).sum()
    }
}

#[cfg(test)]
mod tests;
