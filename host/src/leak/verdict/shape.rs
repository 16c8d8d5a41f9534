//! One quantity's series judged on its levels (docs/verdicts.md): a growth is a new
//! maximum of the level, so a quantity that falls back and never exceeds its earlier
//! maximum is not growing, whatever its deltas were.

use super::Shape;

/// How long a pattern must be watched before it is decided, in counted iterations: a
/// quantity leaks only once its growth spans this many iterations, and settles only
/// after staying flat this long. A fill shorter than this is never called a leak.
pub const HORIZON: usize = 8;

/// The fewest growths a leak is made of: one growth is a spike, two may be a fill.
pub const MIN_GROWTHS: usize = 3;

/// The level after each counted iteration, counted from 0 at the start of the first.
pub fn levels_of(deltas: &[i64]) -> Vec<i64> {
    deltas
        .iter()
        .scan(0i64, |level, &d| {
            *level = level.saturating_add(d);
            Some(*level)
        })
        .collect()
}

/// How far each counted iteration raised the highest level seen so far (from the start
/// of the first counted iteration); 0 where it did not.
pub fn rises(levels: &[i64]) -> Vec<i64> {
    let mut highest = 0i64;
    levels
        .iter()
        .map(|&level| {
            let rise = level.saturating_sub(highest).max(0);
            highest = highest.max(level);
            rise
        })
        .collect()
}

/// The counted iterations (by index) in which the level reached a new maximum.
pub fn growths(rises: &[i64]) -> Vec<usize> {
    rises.iter().enumerate().filter(|(_, &r)| r >= 1).map(|(i, _)| i).collect()
}

/// Judges one quantity from the iterations of its new maxima among `len` counted ones:
/// its shape and its period (the longest pause plus one; 0 when it never grew).
pub fn judge_growths(grown: &[usize], len: usize) -> (Shape, usize) {
    let (Some(&first), Some(&last)) = (grown.first(), grown.last()) else {
        return (Shape::Flat, 0);
    };
    let pauses: Vec<usize> = grown.windows(2).map(|w| w[1] - w[0] - 1).collect();
    let longest_pause = pauses.iter().copied().max().unwrap_or(0);
    let last_pause = pauses.last().copied().unwrap_or(0);
    let span = last - first + 1;
    let trailing = len - 1 - last;
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

/// Judges one quantity's counted deltas on their levels: its shape and period.
pub fn shape_of(deltas: &[i64]) -> (Shape, usize) {
    judge_growths(&growths(&rises(&levels_of(deltas))), deltas.len())
}

/// Whether growths at these iterations look like a buffer's or a table's capacity
/// doubling: at least three, and the spacing never shrinks and grows by half or more
/// at its last step (a capacity that doubles under a demand growing by a constant step
/// grows at spacings 1, 2, 4, 8, or 4, 7, 14 for a hash table's load factor).
pub fn doubling(grown: &[usize]) -> bool {
    let gaps: Vec<usize> = grown.windows(2).map(|w| w[1] - w[0]).collect();
    match gaps.as_slice() {
        [.., before, last] => gaps.windows(2).all(|w| w[1] >= w[0]) && 2 * last >= 3 * before,
        _ => false,
    }
}
