//! Frame entries, as LeakSanitizer's `leak:` lines: an entry excuses the leaked blocks
//! whose allocation stack passes through a frame it matches, and a layer is excused when
//! every stack recorded for it is.

use super::{over_bound, Entry, Leak, Status, Use};
use crate::leak::stacks::{Frame, LeakStacks, StackGroup};
use crate::leak::Metric;
use crate::plan::Pattern;
use crate::text::GuestText;

/// Whether `pattern` finds the frame's demangled function name or its `file:line`.
fn matches(pattern: &Pattern, frame: &Frame) -> bool {
    let place = || match (&frame.file, frame.line) {
        (Some(file), Some(line)) => Some(format!("{}:{line}", file.raw())),
        (Some(file), None) => Some(file.raw().to_string()),
        _ => None,
    };
    pattern.selects(frame.function.raw()) || place().is_some_and(|p| pattern.selects(&p))
}

/// Whether `entry` excuses the blocks of `group`: some frame matches, and, if the entry
/// names tests, every test that allocated them is one of those (blocks of a test it
/// does not name share the stack, and are not excused).
fn excuses(entry: &Entry, group: &StackGroup) -> bool {
    let Some((_, pattern)) = &entry.frame else { return false };
    let tests_match =
        entry.test.as_ref().is_none_or(|p| !group.tests.is_empty() && group.tests.iter().all(|t| p.selects(t.raw())));
    tests_match && group.frames.iter().any(|f| matches(pattern, f))
}

/// The stacks frame entries can judge, or why there are none.
fn judgeable(stacks: Option<&LeakStacks>) -> Result<&LeakStacks, GuestText> {
    let Some(stacks) = stacks else {
        return Err("none were recorded (-r records them unless --no-stacks)".into());
    };
    if !stacks.groups.is_empty() {
        return Ok(stacks);
    }
    let notes: Vec<&str> = stacks.notes.iter().map(GuestText::raw).collect();
    Err(match notes.is_empty() {
        true => "the traced replay found no leaked block".into(),
        false => notes.join("; ").into(),
    })
}

/// Blocks, bytes and counted iterations of the groups one entry excuses in one layer.
#[derive(Default)]
struct Excused {
    blocks: u64,
    bytes: u64,
    iterations: usize,
}

impl Excused {
    /// Per counted iteration, rounded up, so that a bound is exceeded exactly when the
    /// total over the iterations exceeds the bound times their number.
    fn rate(&self, metric: &Metric) -> i64 {
        let n = self.iterations.max(1) as u64;
        let total = match metric {
            Metric::Blocks => self.blocks,
            Metric::Bytes => self.bytes,
            _ => 0,
        };
        i64::try_from(total.div_ceil(n)).unwrap_or(i64::MAX)
    }
}

/// What the frame entries of `entries` make of `leak`: `NotAllowed` when none of them
/// applies to its layer or matches any of its stacks.
pub(super) fn judge(entries: &[Entry], leak: &Leak<'_>, uses: &mut [Use]) -> Status {
    let layer = &leak.verdict.layer;
    let candidates: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].frame.is_some() && entries[i].layer.as_ref().is_none_or(|p| p.selects(layer.raw())))
        .collect();
    if candidates.is_empty() {
        return Status::NotAllowed;
    }
    let stacks = match judgeable(leak.stacks) {
        Ok(stacks) => stacks,
        Err(why) => {
            candidates.iter().for_each(|&i| uses[i].raise(Use::Unchecked));
            return Status::NeedsStacks { why };
        }
    };
    // Each group goes to the first entry in file order that excuses it, as the first
    // matching entry decides for layers and tests.
    let mut excused: Vec<(usize, Excused)> = Vec::new();
    let mut unmatched: Vec<&StackGroup> = Vec::new();
    for group in &stacks.groups {
        let Some(&i) = candidates.iter().find(|&&i| excuses(&entries[i], group)) else {
            unmatched.push(group);
            continue;
        };
        uses[i].raise(Use::Used);
        let position = excused.iter().position(|(e, _)| *e == i).unwrap_or_else(|| {
            excused.push((i, Excused::default()));
            excused.len() - 1
        });
        let sum = &mut excused[position].1;
        (sum.blocks, sum.bytes, sum.iterations) =
            (sum.blocks + group.blocks, sum.bytes + group.bytes, sum.iterations.max(group.iterations));
    }
    if excused.is_empty() {
        return Status::NotAllowed;
    }
    if let Some(first) = unmatched.first() {
        let first = first.frames.first().map_or_else(|| "<no frame>".to_string(), Frame::text);
        return Status::StacksUnmatched { unmatched: unmatched.len(), of: stacks.groups.len(), first: first.into() };
    }
    if stacks.partial {
        let notes: Vec<&str> = stacks.notes.iter().map(GuestText::raw).collect();
        return Status::NeedsStacks { why: format!("not every leaked block has one: {}", notes.join("; ")).into() };
    }
    excused.sort_by_key(|(i, _)| *i);
    let (mut places, mut reasons): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    for (i, sum) in &excused {
        let entry = &entries[*i];
        let spec = entry.frame.as_ref().map_or("", |(spec, _)| spec.as_str());
        let what = GuestText::from(format!("the leak at frame {spec:?}"));
        if let Some(over) = over_bound(entry, &what, |m| sum.rate(m)) {
            return over;
        }
        places.push(entry.place.clone());
        if !reasons.contains(&entry.reason) {
            reasons.push(entry.reason.clone());
        }
    }
    Status::Allowed { places, reasons }
}
