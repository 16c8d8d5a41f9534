//! The layer graph and zope.testrunner's orderings over it, in time linear in layers
//! plus edges (plus the sort keys' own length).
//!
//! zope collects bases into lists with duplicates and reverses them; on a diamond-rich
//! graph that list grows exponentially. Every ordering here is the same sequence
//! computed with a visited set: in a DAG, the first occurrence of each layer in a
//! duplicated post-order is exactly its place in a post-order that skips layers seen
//! before. All walks are iterative, so a chain of [`crate::abi::MAX_LAYERS`] layers
//! cannot overflow the host's stack.

use std::collections::{BTreeMap, HashSet};

use crate::abi::{LayerFlags, Manifest, UNIT_LAYER_NAME};
use crate::text::GuestText;

/// A layer in the host's graph; the unit-test layer is one too, with no guest index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerNode {
    /// The layer's name.
    pub name: GuestText,
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

/// A set of visited layers.
trait Seen {
    /// Marks `layer`; whether it was new.
    fn insert(&mut self, layer: usize) -> bool;
}

impl Seen for HashSet<usize> {
    fn insert(&mut self, layer: usize) -> bool {
        HashSet::insert(self, layer)
    }
}

/// A visited set that empties in O(1), for walks repeated over one graph.
struct Stamps {
    stamp: Vec<u32>,
    current: u32,
}

impl Stamps {
    fn new(n: usize) -> Self {
        Stamps { stamp: vec![0; n], current: 1 }
    }

    fn clear(&mut self) {
        self.current += 1;
    }
}

impl Seen for Stamps {
    fn insert(&mut self, layer: usize) -> bool {
        std::mem::replace(&mut self.stamp[layer], self.current) != self.current
    }
}

/// Post-order from each root in turn (bases in reverse declared order), each layer once
/// across all roots: zope's "gather with duplicates, reverse, keep first occurrences".
fn reverse_gather(graph: &LayerGraph, roots: impl Iterator<Item = usize>, seen: &mut impl Seen, out: &mut Vec<usize>) {
    // Each frame: (layer, bases of it still to visit, counted from the end).
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for root in roots {
        if !seen.insert(root) {
            continue;
        }
        stack.push((root, graph.layers[root].bases.len()));
        while let Some((layer, left)) = stack.last_mut() {
            let layer = *layer;
            if *left == 0 {
                out.push(layer);
                stack.pop();
                continue;
            }
            *left -= 1;
            let base = graph.layers[layer].bases[*left];
            if seen.insert(base) {
                stack.push((base, graph.layers[base].bases.len()));
            }
        }
    }
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
            name: UNIT_LAYER_NAME.into(),
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
    pub fn name(&self, layer: usize) -> &GuestText {
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
        if !done.insert(layer) {
            return order;
        }
        // Each frame: (layer, index of its next base); a layer is marked when entered,
        // which in a DAG is the same as zope marking it when it is set up.
        let mut stack = vec![(layer, 0usize)];
        while let Some((layer, next)) = stack.last_mut() {
            let layer = *layer;
            match self.layers[layer].bases.get(*next) {
                Some(&base) => {
                    *next += 1;
                    if done.insert(base) {
                        stack.push((base, 0));
                    }
                }
                None => {
                    order.push(layer);
                    stack.pop();
                }
            }
        }
        order
    }

    /// `subset` ordered from least to most specific (zope's `order_by_bases`).
    pub fn order_by_bases(&self, subset: &[usize]) -> Vec<usize> {
        let mut named: Vec<usize> = subset.to_vec();
        named.sort_by(|&a, &b| self.name(b).cmp(self.name(a)));
        self.gathered_in(named.iter().rev().copied(), subset)
    }

    /// The reversed gather from `roots_reversed`, keeping only `wanted`.
    fn gathered_in(&self, roots_reversed: impl Iterator<Item = usize>, wanted: &[usize]) -> Vec<usize> {
        // Hash sets, not per-layer arrays: this runs around every test, and its cost must
        // follow the layers it visits, not the size of the graph.
        let mut all = Vec::new();
        reverse_gather(self, roots_reversed, &mut HashSet::new(), &mut all);
        let wanted: HashSet<usize> = wanted.iter().copied().collect();
        all.into_iter().filter(|l| wanted.contains(l)).collect()
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

    /// The order in which layers with tests run: the unit-test layer first, then zope's order.
    pub fn run_order(&self, with_tests: &[usize]) -> Vec<usize> {
        let unit = self.unit();
        let mut order: Vec<usize> = with_tests.iter().copied().filter(|&l| l == unit).take(1).collect();
        let mut others: Vec<usize> = with_tests.iter().copied().filter(|&l| l != unit).collect();
        let ranks = SortKeys::new(self).ranks;
        others.sort_by(|&a, &b| ranks[b].cmp(&ranks[a]));
        others.dedup();
        order.extend(self.gathered_in(others.iter().rev().copied(), &others));
        order
    }

    /// Layers in an order where every base comes before the layers built on it.
    fn bases_first(&self) -> Vec<usize> {
        let mut seen = Stamps::new(self.layers.len());
        let mut order = Vec::with_capacity(self.layers.len());
        reverse_gather(self, 0..self.layers.len(), &mut seen, &mut order);
        order
    }
}

/// zope's sort key of every layer — its names collected depth-first, post-order, bases
/// in reverse declared order, each once — ranked without building the keys.
///
/// The key of a layer starts with the whole key of its last declared base (the first
/// one the walk visits), so the keys form a trie in which a layer's node extends its
/// last base's node by the layers the rest of its walk adds. Comparing keys is then
/// comparing trie nodes in pre-order with children sorted by name.
struct SortKeys {
    /// Rank of each layer's key among all keys; equal ranks mean equal keys.
    ranks: Vec<usize>,
}

impl SortKeys {
    fn new(graph: &LayerGraph) -> Self {
        let n = graph.layers.len();
        let chains = LastBaseTree::new(graph);
        // Trie nodes: children by name; node 0 is the empty key.
        let mut trie: Vec<BTreeMap<&str, usize>> = vec![BTreeMap::new()];
        let mut node_of = vec![0usize; n];
        // For each layer, the layers whose suffix introduced it (see `LastBaseTree`).
        let mut introduced_by: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut stamps = Stamps::new(n);
        let mut suffix = Vec::new();
        for layer in graph.bases_first() {
            let bases = &graph.layers[layer].bases;
            let mut node = bases.last().map_or(0, |&last| node_of[last]);
            suffix.clear();
            if let [.., last] = bases[..] {
                if bases.len() > 1 {
                    // What the walk adds after the last base: what the last base's key
                    // does not already hold.
                    stamps.clear();
                    let mut seen = OutsideKey {
                        stamps: &mut stamps,
                        chains: &chains,
                        introduced_by: &introduced_by,
                        key_of: last,
                    };
                    reverse_gather(graph, bases.iter().rev().skip(1).copied(), &mut seen, &mut suffix);
                }
            }
            suffix.push(layer);
            for &l in &suffix {
                introduced_by[l].push(layer);
                let next = trie.len();
                node = *trie[node].entry(graph.name(l).raw()).or_insert(next);
                if node == next {
                    trie.push(BTreeMap::new());
                }
            }
            node_of[layer] = node;
        }
        let mut rank_of_node = vec![0usize; trie.len()];
        let mut stack = vec![0usize];
        let mut rank = 0;
        while let Some(node) = stack.pop() {
            rank_of_node[node] = rank;
            rank += 1;
            // Reversed, so the smallest name is popped (ranked) first.
            stack.extend(trie[node].values().rev());
        }
        SortKeys { ranks: node_of.iter().map(|&node| rank_of_node[node]).collect() }
    }
}

/// The tree in which a layer's parent is its last declared base. A layer's key is the
/// concatenation of the suffixes of the layers on its path to the root, so a layer `v`
/// is in the key of `x` exactly when some layer whose suffix introduced `v` is `x` or
/// an ancestor of `x` here: an interval test on this tree's DFS numbering.
struct LastBaseTree {
    enter: Vec<usize>,
    leave: Vec<usize>,
}

impl LastBaseTree {
    fn new(graph: &LayerGraph) -> Self {
        let n = graph.layers.len();
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut roots = Vec::new();
        for (layer, node) in graph.layers.iter().enumerate() {
            match node.bases.last() {
                Some(&parent) => children[parent].push(layer),
                None => roots.push(layer),
            }
        }
        let (mut enter, mut leave) = (vec![0; n], vec![0; n]);
        let mut clock = 0;
        // Each frame: (layer, index of its next child).
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for root in roots {
            enter[root] = clock;
            clock += 1;
            stack.push((root, 0));
            while let Some((layer, next)) = stack.last_mut() {
                let layer = *layer;
                match children[layer].get(*next) {
                    Some(&child) => {
                        *next += 1;
                        enter[child] = clock;
                        clock += 1;
                        stack.push((child, 0));
                    }
                    None => {
                        leave[layer] = clock;
                        stack.pop();
                    }
                }
            }
        }
        LastBaseTree { enter, leave }
    }

    /// Whether `ancestor` is `layer` or above it.
    fn is_at_or_above(&self, ancestor: usize, layer: usize) -> bool {
        self.enter[ancestor] <= self.enter[layer] && self.enter[layer] < self.leave[ancestor]
    }
}

/// Visited-or-already-in-the-key: the walk that extends a key skips what the key of
/// `key_of` holds.
struct OutsideKey<'a> {
    stamps: &'a mut Stamps,
    chains: &'a LastBaseTree,
    introduced_by: &'a [Vec<usize>],
    key_of: usize,
}

impl Seen for OutsideKey<'_> {
    fn insert(&mut self, layer: usize) -> bool {
        let in_key = self.introduced_by[layer].iter().any(|&by| self.chains.is_at_or_above(by, self.key_of));
        !in_key && self.stamps.insert(layer)
    }
}

#[cfg(test)]
mod tests;
