//! The leak verdict: a layer's whole series of deltas in, one verdict out.
//!
//! The runner only records; a [`Rule`] decides. The rule here ([`WholeSeries`]) judges
//! each quantity on its level after every counted iteration, because a deterministic run
//! has no noise to survive: see docs/verdicts.md for the definition and its examples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Delta, Metric};
use crate::text::GuestText;

mod causes;
mod series;
mod shape;

pub use series::{counted_iterations, Series};
pub use shape::{levels_of, shape_of, HORIZON, MIN_GROWTHS};

/// What a quantity's series says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// It never reached a new maximum.
    Flat,
    /// It grew, then stayed flat at least as long as it had grown and longer than twice
    /// its last pause: a cache that filled, a one-off allocation.
    Settled,
    /// Not enough iterations to tell yet.
    Undecided,
    /// It keeps growing: after every flat stretch it grew again, up to the end.
    Leaks,
}

/// What one quantity did over the counted iterations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Growth {
    /// What grew.
    pub metric: Metric,
    /// Its change in each counted iteration.
    pub deltas: Vec<i64>,
    /// Its level after each counted iteration, from 0 at the start of the first: the
    /// running sum of `deltas`. The shape, rate and net are read from these.
    pub levels: Vec<i64>,
    /// What the series says, if it ends here.
    pub shape: Shape,
    /// In how many counted iterations its level reached a new maximum.
    pub grew: usize,
    /// Its net change from the start of the first counted iteration to the end of the last.
    pub net: i64,
    /// It grows about every `period` iterations (1: every iteration).
    pub period: usize,
    /// Its growths look like a capacity doubling (bytes only, with no new block, at
    /// spacings that double): a buffer or table that may still stop at a cap, so the
    /// runner keeps iterating, up to `--max-iterations`, before calling it a leak.
    pub capacity: bool,
}

impl Growth {
    /// A quantity's counted deltas, judged on their levels.
    pub fn from_deltas(metric: Metric, deltas: Vec<i64>) -> Growth {
        let levels = levels_of(&deltas);
        let grown = shape::growths(&shape::rises(&levels));
        let (shape, period) = shape::judge_growths(&grown, deltas.len());
        let net = levels.last().copied().unwrap_or(0);
        Growth { metric, deltas, levels, shape, grew: grown.len(), net, period, capacity: false }
    }

    /// How much its level's maximum rose each time it rose (the average over those
    /// iterations, rounded down): per iteration when `period` is 1, else per `period`
    /// iterations.
    pub fn per_iteration(&self) -> i64 {
        let highest = self.levels.iter().copied().max().unwrap_or(0).max(0);
        highest / self.grew.max(1) as i64
    }
    /// The counted iterations (by index) in which its level reached a new maximum.
    fn grown(&self) -> Vec<usize> {
        shape::growths(&shape::rises(&self.levels))
    }
}

/// Every quantity that reached a new maximum in the counted deltas, judged. `None`
/// entries (broken iterations) are not counted; a quantity missing from a delta did not
/// change. Linear-memory pages are judged only while the heap (blocks and bytes) is flat
/// or settled: when the heap grows, the pages are its growth, not a growth of their own.
pub fn growth(series: &[Option<&Delta>]) -> Vec<Growth> {
    let counted: Vec<&Delta> = series.iter().flatten().copied().collect();
    if !counted.iter().any(|d| d.grows_anything()) {
        return Vec::new();
    }
    let mut by_metric: BTreeMap<Metric, Vec<i64>> = BTreeMap::new();
    for (i, delta) in counted.iter().enumerate() {
        for (metric, value) in delta.metrics() {
            let entry = by_metric.entry(metric).or_insert_with(|| vec![0; counted.len()]);
            entry[i] = value;
        }
    }
    let mut all: Vec<Growth> =
        by_metric.into_iter().map(|(metric, deltas)| Growth::from_deltas(metric, deltas)).collect();
    let blocks_grown = all.iter().find(|g| g.metric == Metric::Blocks).map(Growth::grown).unwrap_or_default();
    for bytes in all.iter_mut().filter(|g| g.metric == Metric::Bytes) {
        // A new block where the bytes first grew may be the buffer's first allocation.
        let grown = bytes.grown();
        bytes.capacity = shape::doubling(&grown) && grown[1..].iter().all(|i| !blocks_grown.contains(i));
    }
    let heap_quiet = all
        .iter()
        .filter(|g| matches!(g.metric, Metric::Blocks | Metric::Bytes))
        .all(|g| matches!(g.shape, Shape::Flat | Shape::Settled));
    all.retain(|g| g.shape != Shape::Flat && (g.metric != Metric::Pages || heap_quiet));
    all
}

/// The overall shape of several quantities: the worst of them (a leak over an
/// undecided one over a settled one).
fn overall(growth: &[Growth]) -> Shape {
    growth.iter().map(|g| g.shape).max().unwrap_or(Shape::Flat)
}

/// Something a verdict names as a cause: a test, or a layer's per-test hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakingTest {
    /// The test's name, or `testSetUp of LAYER` / `testTearDown of LAYER`.
    pub test: GuestText,
    /// What it grew, judged on its own series (only the quantities that leak or are undecided).
    pub growth: Vec<Growth>,
}

/// The verdict on one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The layer.
    pub layer: GuestText,
    /// What the layer's series says, all quantities together, if it ends here.
    pub shape: Shape,
    /// How many iterations were counted.
    pub counted: usize,
    /// Every quantity of the layer that grew at all, judged.
    pub growth: Vec<Growth>,
    /// The tests and hooks whose own series leak (or, for an undecided layer, may).
    pub tests: Vec<LeakingTest>,
    /// What decided it: the series alone, or the traced replay as well.
    #[serde(default)]
    pub evidence: Evidence,
}

/// What decided a verdict. A leaking layer's traced replay is a second witness: it shows
/// which blocks the causes the verdict names allocated in counted iterations are still
/// live at the end of the last one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Evidence {
    /// The series alone (no replay: no leak, `--no-stacks`, or a replay that could not witness).
    #[default]
    Series,
    /// The series, and the replay, which found the named causes' blocks still live.
    Replay {
        /// Those blocks.
        blocks: u64,
        /// Their bytes.
        bytes: u64,
    },
    /// The replay found none of the named causes' blocks live: the heap did not leak, whatever
    /// its series did (a batch flushed, a buffer given back), so no heap quantity leaks; they
    /// settle, or stay undecided when other causes left blocks live.
    Cleared,
}

/// What a faithful replay (one that repeated the run exactly) found live at the layer's end
/// of what the verdict's causes allocated in counted iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Witness {
    /// New blocks.
    pub blocks: u64,
    /// Bytes new blocks and reallocations added.
    pub bytes: i64,
    /// Whether causes the verdict does not name left anything live.
    pub others: bool,
}

impl Verdict {
    /// The verdict with the replay's witness: a leak whose named causes left nothing live is
    /// no heap leak (its heap quantities settle, types, counters and pages stand); one they
    /// did leave blocks of cites them.
    pub fn witnessed(mut self, witness: Witness) -> Verdict {
        if !self.leaks() {
            return self;
        }
        if witness.blocks > 0 || witness.bytes > 0 {
            self.evidence = Evidence::Replay { blocks: witness.blocks, bytes: witness.bytes.max(0) as u64 };
            return self;
        }
        let heap = |m: &Metric| matches!(m, Metric::Blocks | Metric::Bytes);
        let now = if witness.others { Shape::Undecided } else { Shape::Settled };
        for growth in self.growth.iter_mut().filter(|g| heap(&g.metric) && g.shape == Shape::Leaks) {
            growth.shape = now;
        }
        for cause in &mut self.tests {
            cause.growth.retain(|g| !heap(&g.metric));
        }
        self.tests.retain(|cause| !cause.growth.is_empty());
        self.shape = self.growth.iter().map(|g| g.shape).max().unwrap_or(Shape::Flat);
        if self.shape != Shape::Leaks {
            self.tests.clear();
        }
        self.evidence = Evidence::Cleared;
        self
    }
}

impl Verdict {
    /// Whether the layer leaks.
    pub fn leaks(&self) -> bool {
        self.shape == Shape::Leaks
    }

    /// Whether its series did not decide, even after the iterations added to decide it.
    pub fn undecided(&self) -> bool {
        self.shape == Shape::Undecided
    }

    /// The quantities with the layer's shape (those that leak, for a leaking layer).
    pub fn deciding(&self) -> impl Iterator<Item = &Growth> {
        self.growth.iter().filter(move |g| g.shape == self.shape)
    }

    /// Whether more iterations could change the verdict or complete it: it is undecided;
    /// or it leaks but no cause is named yet (its growth came unmeasured); or all that
    /// leaks is capacity growth, which a cap may still end.
    pub fn wants_more(&self) -> bool {
        self.undecided() || (self.leaks() && (self.tests.is_empty() || self.deciding().all(|g| g.capacity)))
    }
}

/// A way to decide, from a layer's whole series, whether it leaks and what causes it.
pub trait Rule {
    /// The verdict on `layer` from its series so far.
    fn judge(&self, layer: &GuestText, series: &Series) -> Verdict;

    /// Whether the causes' changes in the next iteration can matter to the verdict; when
    /// they cannot, the runner need not measure each test.
    fn needs_causes(&self, series: &Series) -> bool;
}

/// The rule of docs/verdicts.md: each quantity judged on the levels of its whole
/// counted series.
#[derive(Debug, Clone, Copy, Default)]
pub struct WholeSeries;

impl Rule for WholeSeries {
    fn judge(&self, layer: &GuestText, series: &Series) -> Verdict {
        let counted = series.counted();
        let layer_deltas: Vec<Option<&Delta>> =
            series.iterations.iter().zip(&counted).filter(|(_, &c)| c).map(|(p, _)| p.delta.as_ref()).collect();
        let layer_growth = growth(&layer_deltas);
        let shape = overall(&layer_growth);
        let tests = match shape {
            Shape::Leaks | Shape::Undecided => {
                let pages = layer_growth.iter().any(|g| g.metric == Metric::Pages && g.shape == shape);
                causes::blame(series, &counted, shape, pages)
            }
            Shape::Flat | Shape::Settled => Vec::new(),
        };
        Verdict {
            layer: layer.clone(),
            shape,
            counted: layer_deltas.len(),
            growth: layer_growth,
            tests,
            evidence: Default::default(),
        }
    }

    fn needs_causes(&self, series: &Series) -> bool {
        // The first counted iteration measures every cause; after it, only once the layer
        // has grown in a counted iteration: until then every cause was flat too, and a
        // clean layer pays for no per-test snapshot. A growth that came unmeasured is
        // made up for by more iterations, until a cause is named.
        series.next_counts() && (!series.counted().contains(&true) || series.grew_yet())
    }
}

#[cfg(test)]
mod tests;
