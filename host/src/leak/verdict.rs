//! The leak verdict: a layer's whole series of deltas in, one verdict out.
//!
//! The runner only records; a [`Rule`] decides. The rule here ([`WholeSeries`]) looks
//! at each quantity's growth over every counted iteration, because a deterministic run
//! has no noise to survive: see docs/verdicts.md for the definition and its examples.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Delta, Metric};
use crate::text::GuestText;

/// How long a pattern must be watched before it is decided, in counted iterations: a
/// quantity leaks only once its growth spans this many iterations, and settles only
/// after staying flat this long. A fill shorter than this is never called a leak.
pub const HORIZON: usize = 8;

/// The fewest growths a leak is made of: one growth is a spike, two may be a fill.
pub const MIN_GROWTHS: usize = 3;

/// What a quantity's series says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// It never grew.
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
    /// What the series says.
    pub shape: Shape,
    /// In how many counted iterations it grew.
    pub grew: usize,
    /// Its net change from the start of the first counted iteration to the end of the last.
    pub net: i64,
    /// It grows about every `period` iterations (1: every iteration).
    pub period: usize,
}

impl Growth {
    /// A quantity's counted deltas, judged.
    pub fn from_deltas(metric: Metric, deltas: Vec<i64>) -> Growth {
        let (shape, period) = shape_of(&deltas);
        let grew = deltas.iter().filter(|&&d| d >= 1).count();
        let net = deltas.iter().sum();
        Growth { metric, deltas, shape, grew, net, period }
    }

    /// How much it grew each time it grew (the average over the growing iterations): per
    /// iteration when `period` is 1, else per `period` iterations.
    pub fn per_iteration(&self) -> i64 {
        let total: i64 = self.deltas.iter().filter(|&&d| d >= 1).sum();
        total / self.grew.max(1) as i64
    }
}

/// Judges one quantity's counted deltas.
pub fn shape_of(deltas: &[i64]) -> (Shape, usize) {
    let grown: Vec<usize> = deltas.iter().enumerate().filter(|(_, &d)| d >= 1).map(|(i, _)| i).collect();
    let (Some(&first), Some(&last)) = (grown.first(), grown.last()) else {
        return (Shape::Flat, 0);
    };
    let pauses: Vec<usize> = grown.windows(2).map(|w| w[1] - w[0] - 1).collect();
    let longest_pause = pauses.iter().copied().max().unwrap_or(0);
    let last_pause = pauses.last().copied().unwrap_or(0);
    let span = last - first + 1;
    let trailing = deltas.len() - 1 - last;
    let period = longest_pause + 1;
    let shape = if trailing >= span.max(2 * last_pause + 2).max(HORIZON) {
        Shape::Settled
    } else if grown.len() >= MIN_GROWTHS && span >= HORIZON && trailing <= longest_pause {
        Shape::Leaks
    } else {
        Shape::Undecided
    };
    (shape, period)
}

/// Every quantity that grew at least once in the counted deltas, judged. `None` entries
/// (broken iterations) are not counted; a quantity missing from a delta did not change.
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
    by_metric
        .into_iter()
        .map(|(metric, deltas)| Growth::from_deltas(metric, deltas))
        .filter(|g| g.shape != Shape::Flat)
        .collect()
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
    /// What the layer's series says, all quantities together.
    pub shape: Shape,
    /// How many iterations were counted.
    pub counted: usize,
    /// Every quantity of the layer that grew at all, judged.
    pub growth: Vec<Growth>,
    /// The tests and hooks whose own series leak (or, for an undecided layer, may).
    pub tests: Vec<LeakingTest>,
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
}

/// Which iterations count: those after the first `warmup`.
///
/// An iteration's delta is measured against the end of the previous one (the first
/// against the end of set-up). `broken[i]` says iteration `i + 1` spanned a fresh
/// instance; the iteration after a broken one warms the fresh instance up, so it is
/// not counted either.
pub fn counted_iterations(iterations: usize, warmup: usize, broken: &[bool]) -> Vec<bool> {
    (0..iterations).map(|i| i >= warmup && !broken[i] && (i == 0 || !broken[i - 1])).collect()
}

/// What a measured iteration without a change changed.
static ZERO: Delta = Delta { blocks: 0, bytes: 0, pages: 0, types: Vec::new(), counters: Vec::new() };

/// One iteration of a layer, as the verdict sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    /// The layer's change over the iteration; `None` when it could not be measured.
    delta: Option<Delta>,
    /// A fresh instance started during it.
    broken: bool,
}

/// Everything a verdict looks at for one layer: each iteration's change and whether it
/// was broken, and each cause's (test's or per-test hook's) own change per iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    warmup: usize,
    iterations: Vec<Point>,
    /// The causes' names, by position.
    causes: Vec<GuestText>,
    /// For each iteration, a bit per cause it measured. An iteration that did not measure
    /// a cause (unmeasured, or lost with its instance) says nothing about it.
    measured: Vec<Vec<u64>>,
    /// The causes' non-zero changes as (cause, iteration, change), in recorded order.
    /// Most iterations of a clean layer measure nothing and most changes are zero: a run
    /// without `-r` stores nothing per test, one that measures every test (`--json`) a
    /// bit, and no cause costs an allocation of its own.
    changes: Vec<(u32, u32, Delta)>,
}

impl Series {
    /// An empty series for a layer whose causes (tests in run order, then hooks) are
    /// `causes`; the first `warmup` iterations are not counted.
    pub fn new(warmup: usize, causes: impl IntoIterator<Item = GuestText>) -> Self {
        Series {
            warmup,
            iterations: Vec::new(),
            causes: causes.into_iter().collect(),
            measured: Vec::new(),
            changes: Vec::new(),
        }
    }

    /// Records the change of the cause at `position` in the current iteration.
    pub fn record_cause(&mut self, position: usize, delta: Option<Delta>) {
        let Some(delta) = delta else { return };
        let iteration = self.iterations.len();
        if self.measured.len() <= iteration {
            self.measured.resize_with(iteration + 1, Vec::new);
        }
        let bits = &mut self.measured[iteration];
        if bits.is_empty() {
            bits.resize(self.causes.len().div_ceil(64), 0);
        }
        bits[position / 64] |= 1 << (position % 64);
        if !delta.is_zero() {
            self.changes.push((position as u32, iteration as u32, delta));
        }
    }

    /// Closes an iteration with the layer's change over it.
    pub fn record_iteration(&mut self, delta: Option<Delta>, broken: bool) {
        self.iterations.push(Point { delta, broken });
    }

    /// The layer's change over each recorded iteration (`None`: not measured, or broken).
    pub fn deltas(&self) -> Vec<Option<Delta>> {
        self.iterations.iter().map(|p| p.delta.clone()).collect()
    }

    /// Whether iteration `iteration` measured the cause at `cause`.
    fn measured(&self, iteration: usize, cause: usize) -> bool {
        self.measured.get(iteration).and_then(|bits| bits.get(cause / 64)).is_some_and(|w| w & (1 << (cause % 64)) != 0)
    }

    /// The change of the cause at `cause` in each `counted` iteration that measured it,
    /// given its non-zero `changes` (iteration, change) in iteration order.
    fn cause_deltas<'d>(&self, cause: usize, changes: &[(u32, &'d Delta)], counted: &[bool]) -> Vec<Option<&'d Delta>> {
        let mut changes = changes.iter().peekable();
        (0..self.iterations.len())
            .filter(|&i| self.measured(i, cause))
            .filter_map(|i| {
                let change = changes.next_if(|(at, _)| *at as usize == i).map(|&(_, delta)| delta);
                counted[i].then_some(Some(change.unwrap_or(&ZERO)))
            })
            .collect()
    }

    /// How many iterations are recorded.
    pub fn len(&self) -> usize {
        self.iterations.len()
    }

    /// Whether no iteration is recorded yet.
    pub fn is_empty(&self) -> bool {
        self.iterations.is_empty()
    }

    /// Whether the upcoming iteration counts (it is past the warm-up and follows no broken one).
    fn next_counts(&self) -> bool {
        self.iterations.len() >= self.warmup && !self.iterations.last().is_some_and(|p| p.broken)
    }

    fn counted(&self) -> Vec<bool> {
        let broken: Vec<bool> = self.iterations.iter().map(|p| p.broken).collect();
        counted_iterations(self.iterations.len(), self.warmup, &broken)
    }

    /// Whether the layer grew in some counted iteration so far.
    pub fn grew_yet(&self) -> bool {
        let counted = self.counted();
        self.iterations.iter().zip(&counted).any(|(p, &c)| c && p.delta.as_ref().is_some_and(Delta::grows_anything))
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

/// The rule of docs/verdicts.md: each quantity judged on its whole counted series.
#[derive(Debug, Clone, Copy, Default)]
pub struct WholeSeries;

impl Rule for WholeSeries {
    fn judge(&self, layer: &GuestText, series: &Series) -> Verdict {
        let counted = series.counted();
        // A cause is judged on the counted iterations in which it was measured.
        let layer_deltas: Vec<Option<&Delta>> =
            series.iterations.iter().zip(&counted).filter(|(_, &c)| c).map(|(p, _)| p.delta.as_ref()).collect();
        let layer_growth = growth(&layer_deltas);
        let shape = overall(&layer_growth);
        let tests = match shape {
            Shape::Leaks | Shape::Undecided => {
                // A cause that never changed cannot grow: only those with changes are judged.
                let mut by_cause: Vec<Vec<(u32, &Delta)>> = vec![Vec::new(); series.causes.len()];
                for (cause, iteration, delta) in &series.changes {
                    by_cause[*cause as usize].push((*iteration, delta));
                }
                by_cause
                    .iter()
                    .enumerate()
                    .filter(|(_, changes)| !changes.is_empty())
                    .filter_map(|(cause, changes)| {
                        let deltas = series.cause_deltas(cause, changes, &counted);
                        let growth: Vec<Growth> = growth(&deltas).into_iter().filter(|g| g.shape == shape).collect();
                        (!growth.is_empty()).then(|| LeakingTest { test: series.causes[cause].clone(), growth })
                    })
                    .collect()
            }
            Shape::Flat | Shape::Settled => Vec::new(),
        };
        Verdict { layer: layer.clone(), shape, counted: layer_deltas.len(), growth: layer_growth, tests }
    }

    fn needs_causes(&self, series: &Series) -> bool {
        // The first counted iteration measures every cause; after it, only once the layer
        // has grown in a counted iteration: until then every cause was flat too, and a
        // clean layer pays for no per-test snapshot. A growth that came unmeasured is
        // made up for by more iterations, until a cause is named.
        series.next_counts() && (!series.counted().contains(&true) || series.grew_yet())
    }
}
