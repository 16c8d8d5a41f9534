//! Which tests and per-test hooks a verdict names: each judged on the levels of its own
//! series, and named only where what it took was not given back in the same test.

use super::series::{at_iterations, summed_at, Change};
use super::{growth, Growth, LeakingTest, Series, Shape};
use crate::leak::{sum, Delta, Metric};

/// The growths among `growth` that have `shape`.
fn of_shape(growth: Vec<Growth>, shape: Shape) -> Vec<Growth> {
    growth.into_iter().filter(|g| g.shape == shape).collect()
}

/// `changes` by cause, each cause's in recorded order.
fn by_cause(changes: &[Change], count: usize) -> Vec<Vec<&Change>> {
    let mut by_cause: Vec<Vec<&Change>> = vec![Vec::new(); count];
    for change in changes {
        if let Some(list) = by_cause.get_mut(change.0 as usize) {
            list.push(change);
        }
    }
    by_cause
}

/// The growths of `deltas` (every one counted) that have `shape`.
fn judged(deltas: &[&Delta], shape: Shape) -> Vec<Growth> {
    let deltas: Vec<Option<&Delta>> = deltas.iter().copied().map(Some).collect();
    of_shape(growth(&deltas), shape)
}

/// The causes of a layer whose series has `shape`, each judged on the `counted`
/// iterations in which it was measured; in pages only when the layer's `pages` have
/// the shape (while the layer's heap grows, the allocator takes memory during whichever
/// test needs it first).
///
/// A test answers for its body, in the quantities where its whole change (its per-test
/// hooks' share included) has the shape too; a hook, summed over the iteration's tests,
/// in the quantities where its share in the tests that grew as a whole has it too. So a
/// tear-down that gives back what the body took, or a body that frees what the set-up
/// made, names nothing.
pub(super) fn blame(series: &Series, counted: &[bool], shape: Shape, pages: bool) -> Vec<LeakingTest> {
    let count = series.causes.len();
    let (changes, shares) = (by_cause(&series.changes, count), by_cause(&series.shares, count));
    let tests = series.tests.min(count);
    let mut whole_grows = vec![false; tests];
    let mut named = Vec::new();
    for cause in 0..count {
        // A cause that never changed cannot grow: only those with changes are judged.
        if changes[cause].is_empty() && shares[cause].is_empty() {
            continue;
        }
        let iterations = series.measuring(cause, counted);
        let own = at_iterations(&changes[cause], &iterations);
        let mut growth = judged(&own, shape);
        let whole = match cause < tests {
            true if shares[cause].is_empty() => {
                whole_grows[cause] = !growth.is_empty();
                growth.clone()
            }
            true => {
                let share = at_iterations(&shares[cause], &iterations);
                let whole: Vec<Delta> = own.iter().zip(&share).map(|(body, share)| sum(body, share)).collect();
                let whole = judged(&whole.iter().collect::<Vec<_>>(), shape);
                whole_grows[cause] = !whole.is_empty();
                whole
            }
            false => {
                let share: Vec<&Change> =
                    series.shares.iter().filter(|c| whole_grows.get(c.0 as usize) == Some(&true)).collect();
                let share = summed_at(&share, &iterations);
                judged(&share.iter().collect::<Vec<_>>(), shape)
            }
        };
        growth.retain(|g| whole.iter().any(|w| w.metric == g.metric) && (pages || g.metric != Metric::Pages));
        if !growth.is_empty() {
            named.push(LeakingTest { test: series.causes[cause].clone(), growth });
        }
    }
    named
}
