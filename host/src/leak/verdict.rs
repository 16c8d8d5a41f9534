//! The leak verdict: a layer's whole series of deltas in, one verdict out.
//!
//! The runner only records; a [`Rule`] decides. Today's rule is regrtest's
//! ([`GrewEveryIteration`]); another rule replaces that one piece.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Delta, Metric};
use crate::text::GuestText;

/// A quantity that grew in every counted iteration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Growth {
    /// What grew.
    pub metric: Metric,
    /// Its change in each counted iteration.
    pub deltas: Vec<i64>,
}

impl Growth {
    /// The smallest per-iteration growth, as a conservative rate.
    pub fn per_iteration(&self) -> i64 {
        self.deltas.iter().copied().min().unwrap_or(0)
    }
}

/// The regrtest rule over a series of deltas: a quantity leaks when it grew by at
/// least 1 in every counted delta. `None` entries (broken iterations) are not counted.
pub fn growth(series: &[Option<&Delta>]) -> Vec<Growth> {
    // The common case, a series with a flat delta, needs no bookkeeping at all.
    if series.iter().flatten().any(|d| !d.grows_anything()) {
        return Vec::new();
    }
    let counted: Vec<&Delta> = series.iter().flatten().copied().collect();
    if counted.is_empty() {
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
        .filter(|(_, deltas)| deltas.iter().all(|&d| d >= 1))
        .map(|(metric, deltas)| Growth { metric, deltas })
        .collect()
}

/// Whether a series can still end in a leak verdict: it has no measured delta yet, or
/// something grew in every measured one so far.
pub fn still_growing(series: &[Option<Delta>]) -> bool {
    let measured: Vec<Option<&Delta>> = match series.iter().flatten().any(|d| !d.grows_anything()) {
        true => return false,
        false => series.iter().map(Option::as_ref).collect(),
    };
    measured.iter().all(Option::is_none) || !growth(&measured).is_empty()
}

/// A test whose own deltas grew in every counted iteration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeakingTest {
    /// The test.
    pub test: GuestText,
    /// What grew.
    pub growth: Vec<Growth>,
}

/// The verdict on one layer: it leaks if anything grew in every counted iteration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// The layer.
    pub layer: GuestText,
    /// How many iterations were counted.
    pub counted: usize,
    /// What grew in the layer as a whole.
    pub growth: Vec<Growth>,
    /// The tests whose own deltas explain it.
    pub tests: Vec<LeakingTest>,
}

impl Verdict {
    /// Whether the layer leaks.
    pub fn leaks(&self) -> bool {
        !self.growth.is_empty() || !self.tests.is_empty()
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

/// One iteration of a layer, as the verdict sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Point {
    /// The layer's change over the iteration; `None` when it could not be measured.
    delta: Option<Delta>,
    /// A fresh instance started during it.
    broken: bool,
}

/// Everything a verdict looks at for one layer: each iteration's change and whether it
/// was broken, and each test's own change per iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    warmup: usize,
    iterations: Vec<Point>,
    /// By the test's position in the layer: its name, and its delta in each iteration
    /// (`None` when it was not measured or its instance was lost).
    tests: Vec<(GuestText, Vec<Option<Delta>>)>,
}

impl Series {
    /// An empty series for a layer whose tests are `tests`, in run order; the first
    /// `warmup` iterations are not counted.
    pub fn new(warmup: usize, tests: impl IntoIterator<Item = GuestText>) -> Self {
        Series { warmup, iterations: Vec::new(), tests: tests.into_iter().map(|t| (t, Vec::new())).collect() }
    }

    /// Records the change of the test at `position` in the current iteration.
    pub fn record_test(&mut self, position: usize, delta: Option<Delta>) {
        self.tests[position].1.push(delta);
    }

    /// Closes an iteration with the layer's change over it.
    pub fn record_iteration(&mut self, delta: Option<Delta>, broken: bool) {
        self.iterations.push(Point { delta, broken });
    }

    /// How many iterations are recorded.
    pub fn len(&self) -> usize {
        self.iterations.len()
    }

    /// Whether no iteration is recorded yet.
    pub fn is_empty(&self) -> bool {
        self.iterations.is_empty()
    }

    /// Which recorded iterations count (see [`counted_iterations`]).
    fn counted(&self) -> Vec<bool> {
        let broken: Vec<bool> = self.iterations.iter().map(|p| p.broken).collect();
        counted_iterations(self.iterations.len(), self.warmup, &broken)
    }
}

/// A way to decide, from a layer's whole series, whether it leaks and which tests cause it.
pub trait Rule {
    /// The verdict on `layer` after its last iteration.
    fn judge(&self, layer: &GuestText, series: &Series) -> Verdict;

    /// Whether the next change of the test at `position` can still matter to the verdict;
    /// when it cannot, the runner need not measure it.
    fn needs_test(&self, series: &Series, position: usize) -> bool;
}

/// regrtest's rule: a quantity leaks when it grew by at least 1 in every counted iteration.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrewEveryIteration;

impl Rule for GrewEveryIteration {
    fn judge(&self, layer: &GuestText, series: &Series) -> Verdict {
        let counted = series.counted();
        fn pick<'d>(deltas: impl Iterator<Item = &'d Option<Delta>>, counted: &[bool]) -> Vec<Option<&'d Delta>> {
            deltas.zip(counted).filter(|(_, &c)| c).map(|(d, _)| d.as_ref()).collect()
        }
        let tests = series
            .tests
            .iter()
            .filter_map(|(test, deltas)| {
                let growth = growth(&pick(deltas.iter(), &counted));
                (!growth.is_empty()).then(|| LeakingTest { test: test.clone(), growth })
            })
            .collect();
        Verdict {
            layer: layer.clone(),
            counted: counted.iter().filter(|&&c| c).count(),
            growth: growth(&pick(series.iterations.iter().map(|p| &p.delta), &counted)),
            tests,
        }
    }

    fn needs_test(&self, series: &Series, position: usize) -> bool {
        // A warm-up iteration never counts; after it, a test that stopped growing once
        // can no longer be named by this rule.
        let deltas = &series.tests[position].1;
        deltas.len() >= series.warmup && still_growing(&deltas[series.warmup..])
    }
}
