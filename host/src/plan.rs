//! Which layers run, in which order, and which set-ups and tear-downs a switch needs.
//!
//! Pure functions over the layer graph, following zope.testrunner 8.3 (the rules are
//! written down in docs/layers.md): the unit-test layer first, then the sort-key order,
//! bases set up depth-first once each, unneeded layers torn down most specific first.

mod graph;
mod unmatched;

pub use graph::{LayerGraph, LayerNode};
pub use unmatched::NothingSelected;

#[cfg(test)]
use crate::abi::LayerFlags;
use regex_automata::meta;

use crate::abi::Manifest;
use crate::text::GuestText;

/// Most bytes of compiled program one pattern may take (the NFA size limit): a pattern
/// comes from the command line or an allowance file, and regex's default of 10 MB per
/// pattern let one 10 MB pattern take 1 GB.
pub const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Most bytes of lazy-DFA cache one pattern may use while it searches.
pub const PATTERN_DFA_SIZE_LIMIT: usize = 256 * 1024;

/// A zope-style name filter: a regular-expression search, negated by a leading `!`.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: meta::Regex,
    negated: bool,
    /// As written, `!` included: reports record the selection a run was made with.
    spec: String,
}

impl std::str::FromStr for Pattern {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let (negated, source) = match spec.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        // regex's own settings for a `Regex` over `str`, with explicit limits.
        let config = meta::Config::new()
            .match_kind(regex_automata::MatchKind::LeftmostFirst)
            .utf8_empty(true)
            .nfa_size_limit(Some(PATTERN_SIZE_LIMIT))
            .onepass_size_limit(Some(PATTERN_SIZE_LIMIT))
            .hybrid_cache_capacity(PATTERN_DFA_SIZE_LIMIT);
        let syntax = regex_automata::util::syntax::Config::new().utf8(true);
        let regex = meta::Builder::new().configure(config).syntax(syntax).build(source).map_err(|e| {
            let reason = match (e.size_limit(), e.syntax_error()) {
                (Some(limit), _) => {
                    format!("it compiles to more than {} KiB; write a shorter or simpler one", limit >> 10)
                }
                // regex-syntax explains itself over several lines, quoting the pattern, ending with the reason.
                (None, Some(syntax)) => {
                    let text = syntax.to_string();
                    let reason = text.lines().rfind(|l| !l.trim().is_empty()).unwrap_or_default().trim();
                    crate::input::clip_quotes(reason.strip_prefix("error: ").unwrap_or(reason)).into_owned()
                }
                (None, None) => crate::input::clip_quotes(&e.to_string()).into_owned(),
            };
            format!("{} is not a valid pattern: {reason}", crate::input::quote(spec))
        })?;
        Ok(Pattern { regex, negated, spec: spec.to_string() })
    }
}

impl Pattern {
    /// The pattern as it was given, `!` included.
    pub fn spec(&self) -> &str {
        &self.spec
    }

    /// Whether `name` is selected by this pattern alone.
    pub fn selects(&self, name: &str) -> bool {
        self.regex.is_match(name) != self.negated
    }

    /// The heap memory the compiled pattern holds, its search caches aside.
    pub fn memory_usage(&self) -> usize {
        self.regex.memory_usage()
    }
}

/// As zope: no patterns select everything; otherwise a name is selected when any pattern selects it.
fn any_selects(patterns: &[Pattern], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.selects(name))
}

/// One of N deterministic parts of a run (`--partition K/N`, 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Partition {
    /// Which part, from 1.
    pub index: u32,
    /// Of how many.
    pub count: u32,
}

impl std::str::FromStr for Partition {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        // nextest's `count:K/N` is the same round-robin split; its `hash:` split is not.
        if spec.starts_with("hash:") {
            return Err(format!("{spec:?}: leakhost splits round-robin in run order (nextest's count:); give K/N"));
        }
        let parsed = spec
            .strip_prefix("count:")
            .unwrap_or(spec)
            .split_once('/')
            .and_then(|(k, n)| Some((k.parse::<u32>().ok()?, n.parse::<u32>().ok()?)));
        match parsed {
            Some((index, count)) if count >= 1 && (1..=count).contains(&index) => Ok(Partition { index, count }),
            _ => Err(format!("{spec:?}: expected K/N with 1 <= K <= N")),
        }
    }
}

/// Which tests run, and in which order within a layer.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `-t`: test-name patterns.
    pub tests: Vec<Pattern>,
    /// `--layer`: layer-name patterns.
    pub layers: Vec<Pattern>,
    /// `-u`: only the unit-test layer.
    pub unit_only: bool,
    /// `-f`: only the other layers.
    pub non_unit_only: bool,
    /// `--partition`: this machine's share.
    pub partition: Option<Partition>,
    /// `--shuffle`: shuffle the tests within each layer with this seed.
    pub shuffle: Option<u64>,
}

/// A selection as written down in a run's record: the patterns as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SelectionRecord {
    /// `-t` patterns.
    pub tests: Vec<String>,
    /// `--layer` patterns.
    pub layers: Vec<String>,
    /// `-u`.
    pub unit_only: bool,
    /// `-f`.
    pub non_unit_only: bool,
    /// `--partition`.
    pub partition: Option<Partition>,
    /// The shuffle seed.
    pub shuffle: Option<u64>,
}

impl Selection {
    /// The selection as a run's record states it.
    pub fn record(&self) -> SelectionRecord {
        let specs = |patterns: &[Pattern]| patterns.iter().map(|p| p.spec().to_string()).collect();
        SelectionRecord {
            tests: specs(&self.tests),
            layers: specs(&self.layers),
            unit_only: self.unit_only,
            non_unit_only: self.non_unit_only,
            partition: self.partition,
            shuffle: self.shuffle,
        }
    }
}

/// A 64-bit mixing function (splitmix64). Written out rather than taken from a crate
/// so that a shuffle seed reproduces the same order in every leakhost version.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fisher-Yates with splitmix64; the same seed gives the same order everywhere.
fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed;
    for i in (1..items.len()).rev() {
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// One layer's share of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLayer {
    /// Host index of the layer.
    pub layer: usize,
    /// Guest indexes of its tests, in run order.
    pub tests: Vec<u32>,
}

/// What a run will do: the graph, and the layers with their tests in run order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The suite's layers.
    pub graph: LayerGraph,
    /// Test names by guest index.
    pub test_names: Vec<GuestText>,
    /// The layers that have selected tests, in run order.
    pub layers: Vec<PlannedLayer>,
}

impl Plan {
    /// Plans every test of the manifest.
    pub fn new(manifest: &Manifest) -> Self {
        Plan::select(manifest, &Selection::default())
    }

    /// Plans the selected tests of the manifest.
    pub fn select(manifest: &Manifest, selection: &Selection) -> Self {
        let graph = LayerGraph::new(manifest);
        let unit = graph.unit();
        let layer_selected = |layer: usize| {
            let is_unit = layer == unit;
            let wanted_kind = if is_unit { !selection.non_unit_only } else { !selection.unit_only };
            wanted_kind && any_selects(&selection.layers, graph.name(layer).raw())
        };
        let mut by_layer: Vec<Vec<u32>> = vec![Vec::new(); graph.layers.len()];
        for (index, test) in manifest.tests.iter().enumerate() {
            let layer = graph.layer_of(test.layer);
            if layer_selected(layer) && any_selects(&selection.tests, test.name.raw()) {
                by_layer[layer].push(index as u32);
            }
        }
        if let Some(seed) = selection.shuffle {
            for (layer, tests) in by_layer.iter_mut().enumerate() {
                // Each layer gets its own stream, so selecting other layers does not change its order.
                shuffle(tests, seed ^ (layer as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            }
        }
        let with_tests: Vec<usize> = (0..graph.layers.len()).filter(|&l| !by_layer[l].is_empty()).collect();
        let mut layers: Vec<PlannedLayer> = graph
            .run_order(&with_tests)
            .into_iter()
            .map(|layer| PlannedLayer { layer, tests: std::mem::take(&mut by_layer[layer]) })
            .collect();
        if let Some(Partition { index, count }) = selection.partition {
            // Round-robin over the tests in run order: every part gets a share of every
            // large layer, and the parts together run each test exactly once.
            let mut position = 0u64;
            for planned in &mut layers {
                planned.tests.retain(|_| {
                    let keep = position % count as u64 == (index - 1) as u64;
                    position += 1;
                    keep
                });
            }
            layers.retain(|planned| !planned.tests.is_empty());
        }
        let test_names = manifest.tests.iter().map(|t| t.name.clone()).collect();
        Plan { graph, test_names, layers }
    }

    /// How many test runs one iteration of every layer makes.
    pub fn test_count(&self) -> usize {
        self.layers.iter().map(|l| l.tests.len()).sum()
    }
}

#[cfg(test)]
mod tests;
