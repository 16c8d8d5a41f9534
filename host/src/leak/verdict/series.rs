//! What a verdict looks at for one layer, as the runner records it: each iteration's
//! change, and each cause's (test's or per-test hook's) own change per iteration.

use super::super::{sum, Delta, TypeDelta};
use crate::text::GuestText;

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
pub(super) static ZERO: Delta = Delta { blocks: 0, bytes: 0, pages: 0, types: Vec::new(), counters: Vec::new() };

/// One iteration of a layer, as the verdict sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Point {
    /// The layer's change over the iteration; `None` when it could not be measured.
    pub delta: Option<Delta>,
    /// A fresh instance started during it.
    pub broken: bool,
}

/// A cause's non-zero change: (cause, iteration, change).
pub(super) type Change = (u32, u32, Delta);

/// Everything a verdict looks at for one layer: each iteration's change and whether it
/// was broken, and each cause's (test's or per-test hook's) own change per iteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    warmup: usize,
    pub(super) iterations: Vec<Point>,
    /// The causes' names, by position: the tests in run order, then the hooks.
    pub(super) causes: Vec<GuestText>,
    /// How many of the causes are tests (recorded with [`Series::record_test`]).
    pub(super) tests: usize,
    /// For each iteration, a bit per cause it measured. An iteration that did not measure
    /// a cause (unmeasured, or lost with its instance) says nothing about it.
    measured: Vec<Vec<u64>>,
    /// The causes' non-zero changes, in recorded order. Most iterations of a clean layer
    /// measure nothing and most changes are zero: a run without `-r` stores nothing per
    /// test, one that measures every test (`--json`) a bit, and no cause costs an
    /// allocation of its own.
    pub(super) changes: Vec<Change>,
    /// The non-zero shares of its per-test hooks in a test's change (the test's whole
    /// change less its body's), where they were measured apart, in recorded order.
    pub(super) shares: Vec<Change>,
}

impl Series {
    /// An empty series for a layer whose causes (tests in run order, then hooks) are
    /// `causes`; the first `warmup` iterations are not counted.
    pub fn new(warmup: usize, causes: impl IntoIterator<Item = GuestText>) -> Self {
        Series {
            warmup,
            iterations: Vec::new(),
            causes: causes.into_iter().collect(),
            tests: 0,
            measured: Vec::new(),
            changes: Vec::new(),
            shares: Vec::new(),
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

    /// Records the test at `position` in the current iteration: its body's change (its
    /// whole change when its hooks were not measured apart) and, when they were, its
    /// whole change, hooks included. A test answers for its body, but only where the
    /// whole test grew too: a tear-down that gives back what the body took leaves no cause.
    pub fn record_test(&mut self, position: usize, body: Option<Delta>, whole: Option<Delta>) {
        self.tests = self.tests.max(position + 1);
        if let (Some(body), Some(whole)) = (&body, &whole) {
            let share = minus(whole, body);
            if !share.is_zero() {
                self.shares.push((position as u32, self.iterations.len() as u32, share));
            }
        }
        self.record_cause(position, body);
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

    /// The counted iterations that measured the cause at `cause`, in order.
    pub(super) fn measuring(&self, cause: usize, counted: &[bool]) -> Vec<usize> {
        (0..self.iterations.len()).filter(|&i| counted[i] && self.measured(i, cause)).collect()
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
    pub(super) fn next_counts(&self) -> bool {
        self.iterations.len() >= self.warmup && !self.iterations.last().is_some_and(|p| p.broken)
    }

    pub(super) fn counted(&self) -> Vec<bool> {
        let broken: Vec<bool> = self.iterations.iter().map(|p| p.broken).collect();
        counted_iterations(self.iterations.len(), self.warmup, &broken)
    }

    /// Whether the layer grew in some counted iteration so far.
    pub fn grew_yet(&self) -> bool {
        let counted = self.counted();
        self.iterations.iter().zip(&counted).any(|(p, &c)| c && p.delta.as_ref().is_some_and(Delta::grows_anything))
    }
}

/// `a - b`.
pub(super) fn minus(a: &Delta, b: &Delta) -> Delta {
    let negated = Delta {
        blocks: -b.blocks,
        bytes: -b.bytes,
        pages: -b.pages,
        types: b
            .types
            .iter()
            .map(|t| TypeDelta { name: t.name.clone(), instances: -t.instances, bytes: -t.bytes })
            .collect(),
        counters: b.counters.iter().map(|(n, v)| (n.clone(), -v)).collect(),
    };
    sum(a, &negated)
}

/// One cause's change in each of `iterations` (ascending), given its non-zero changes
/// in recorded (iteration) order; an iteration without one changed nothing.
pub(super) fn at_iterations<'d>(changes: &[&'d Change], iterations: &[usize]) -> Vec<&'d Delta> {
    let mut changes = changes.iter().peekable();
    iterations
        .iter()
        .map(|&i| {
            while changes.next_if(|(_, at, _)| (*at as usize) < i).is_some() {}
            changes.next_if(|(_, at, _)| *at as usize == i).map_or(&ZERO, |(_, _, d)| d)
        })
        .collect()
}

/// The changes of several causes added up per iteration, for each of `iterations`
/// (ascending), given their non-zero changes in recorded (iteration) order.
pub(super) fn summed_at(changes: &[&Change], iterations: &[usize]) -> Vec<Delta> {
    let mut changes = changes.iter().peekable();
    iterations
        .iter()
        .map(|&i| {
            while changes.next_if(|(_, at, _)| (*at as usize) < i).is_some() {}
            let mut total = ZERO.clone();
            while let Some((_, _, d)) = changes.next_if(|(_, at, _)| *at as usize == i) {
                total = sum(&total, d);
            }
            total
        })
        .collect()
}
