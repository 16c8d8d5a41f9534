//! Allowances: known leaks a suite accepts, each with its reason (`leakhost.toml`, `--allow FILE`).
//!
//! As LeakSanitizer's suppression files, but every entry must say why, may bound how
//! much it excuses, and is reported as stale once it excuses nothing, so an allowance
//! never outlives the leak it was written for. Everything here is pure: the CLI reads
//! the file and hands over the run's verdicts with the allocation stacks recorded for them.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use super::stacks::LeakStacks;
use super::{Growth, Metric, Verdict};
use crate::plan::Pattern;
use crate::text::GuestText;

/// An allowance file could not be used.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{}:{line}: {message}", path.display())]
pub struct AllowError {
    /// The file.
    pub path: PathBuf,
    /// The line, from 1.
    pub line: usize,
    /// What is wrong, with the fix where there is one.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    allow: Vec<toml::Spanned<RawEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    layer: Option<String>,
    test: Option<String>,
    frame: Option<String>,
    max_blocks: Option<u64>,
    max_bytes: Option<u64>,
    reason: Option<String>,
}

/// One `[[allow]]` entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Where it is written: `FILE:LINE`.
    pub place: String,
    layer: Option<Pattern>,
    test: Option<Pattern>,
    /// The frame pattern as written (reports quote it), and compiled.
    frame: Option<(String, Pattern)>,
    /// At most this many blocks per counted iteration.
    pub max_blocks: Option<u64>,
    /// At most this many bytes per counted iteration.
    pub max_bytes: Option<u64>,
    /// Why the leak is accepted.
    pub reason: String,
}

/// The entries of one or more allowance files, in file order.
#[derive(Debug, Clone, Default)]
pub struct Allowances {
    entries: Vec<Entry>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Where each line of a text starts, to number the lines of many entries without counting
/// from the start for each (20,000 entries took 12 s).
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect()
}

/// Most memory the compiled patterns of one allowance file may take together: the
/// file is small (`input::DEFAULT_MAX_INPUT`), but a short pattern can compile large
/// (`\w{5}` to about 200 KiB), and 20,000 of them took 1.6 GB.
pub const MAX_PATTERN_MEMORY: usize = 64 << 20;

impl Allowances {
    /// Parses the text of the allowance file `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self, AllowError> {
        let error = |line, message: String| AllowError { path: path.to_path_buf(), line, message };
        let file: File = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            error(line, crate::input::clip_quotes(e.message().trim()).into_owned())
        })?;
        let mut entries = Vec::with_capacity(file.allow.len());
        let (starts, memory) = (line_starts(text), std::cell::Cell::new(0usize));
        for spanned in file.allow {
            let line = starts.partition_point(|&start| start <= spanned.span().start);
            let raw = spanned.into_inner();
            let pattern = |field: &str, spec: Option<String>| {
                let compiled =
                    spec.map(|spec| spec.parse::<Pattern>().map_err(|e| error(line, format!("{field}: {e}"))));
                let compiled = compiled.transpose()?;
                memory.set(memory.get() + compiled.as_ref().map_or(0, Pattern::memory_usage));
                if memory.get() > MAX_PATTERN_MEMORY {
                    let why =
                        format!("the patterns up to this one take more than {} MiB compiled", MAX_PATTERN_MEMORY >> 20);
                    return Err(error(line, format!("{why}; write fewer or simpler ones")));
                }
                Ok(compiled)
            };
            let layer = pattern("layer", raw.layer)?;
            let test = pattern("test", raw.test)?;
            // "Some frame does not match" holds for nearly every stack, so a negated frame
            // pattern would excuse almost anything.
            if raw.frame.as_deref().is_some_and(|f| f.starts_with('!')) {
                return Err(error(line, "frame: a frame pattern cannot be negated with `!`".into()));
            }
            let spec = raw.frame.clone();
            let frame = pattern("frame", raw.frame)?.zip(spec).map(|(compiled, spec)| (spec, compiled));
            if layer.is_none() && test.is_none() && frame.is_none() {
                return Err(error(line, "an allowance names a `layer`, a `test` or a `frame` pattern".into()));
            }
            let reason = raw
                .reason
                .filter(|r| !r.trim().is_empty())
                .ok_or_else(|| error(line, "an allowance needs a `reason`: say why this leak is accepted".into()))?;
            entries.push(Entry {
                place: format!("{}:{line}", path.display()),
                layer,
                test,
                frame,
                max_blocks: raw.max_blocks,
                max_bytes: raw.max_bytes,
                reason,
            });
        }
        Ok(Allowances { entries })
    }

    /// Adds another file's entries after these.
    pub fn extend(&mut self, other: Allowances) {
        self.entries.extend(other.entries);
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Judges every leaking layer in `leaks` and finds the stale entries.
    pub fn judge(&self, leaks: &[Leak<'_>]) -> Judgement {
        let mut judge = self.judge_each();
        let leaks = leaks
            .iter()
            .filter(|l| l.verdict.leaks())
            .map(|leak| Judged { layer: leak.verdict.layer.clone(), status: judge.judge(leak) })
            .collect();
        let (stale, unchecked) = judge.finish();
        Judgement { leaks, stale, unchecked }
    }

    /// A judge of leaking layers one at a time, as a run finds them; its [`AllowJudge::finish`]
    /// says which entries excused nothing.
    pub fn judge_each(&self) -> AllowJudge<'_> {
        AllowJudge { allowances: self, uses: vec![Use::Unused; self.entries.len()] }
    }

    /// Names first (a layer entry, or test entries for every blamed test), then frames;
    /// when neither excuses the leak, the most telling reason why not.
    fn judge_one(&self, leak: &Leak<'_>, uses: &mut [Use]) -> Status {
        let by_names = self.judge_names(leak.verdict, uses);
        if matches!(by_names, Status::Allowed { .. }) {
            return by_names;
        }
        match (by_names, frames::judge(&self.entries, leak, uses)) {
            (_, allowed @ Status::Allowed { .. }) => allowed,
            (over @ Status::OverBound { .. }, _) => over,
            (_, by_frames) => by_frames,
        }
    }

    /// What the layer and test entries make of `verdict`.
    fn judge_names(&self, verdict: &Verdict, uses: &mut [Use]) -> Status {
        let layer_matches = |e: &Entry| e.layer.as_ref().is_none_or(|p| p.selects(verdict.layer.raw()));
        // An entry without a test (or frame) pattern excuses the layer's whole growth.
        for (i, entry) in self.entries.iter().enumerate() {
            if entry.test.is_none() && entry.frame.is_none() && layer_matches(entry) {
                uses[i] = Use::Used;
                return match over_bound(entry, &verdict.layer, |m| rate(&verdict.growth, m)) {
                    Some(over) => over,
                    None => Status::Allowed { places: vec![entry.place.clone()], reasons: vec![entry.reason.clone()] },
                };
            }
        }
        // Otherwise every test the verdict blames must be excused by a test entry.
        if verdict.tests.is_empty() {
            return Status::NotAllowed;
        }
        let (mut places, mut reasons): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
        for test in &verdict.tests {
            let found = self.entries.iter().enumerate().find(|(_, e)| {
                e.frame.is_none() && layer_matches(e) && e.test.as_ref().is_some_and(|p| p.selects(test.test.raw()))
            });
            let Some((i, entry)) = found else { return Status::NotAllowed };
            uses[i] = Use::Used;
            if let Some(over) = over_bound(entry, &test.test, |m| rate(&test.growth, m)) {
                return over;
            }
            if !places.contains(&entry.place) {
                places.push(entry.place.clone());
            }
            if !reasons.contains(&entry.reason) {
                reasons.push(entry.reason.clone());
            }
        }
        Status::Allowed { places, reasons }
    }
}

/// Judges leaking layers one at a time, remembering which entries were used.
pub struct AllowJudge<'a> {
    allowances: &'a Allowances,
    uses: Vec<Use>,
}

impl AllowJudge<'_> {
    /// What the allowances say about one leaking layer.
    pub fn judge(&mut self, leak: &Leak<'_>) -> Status {
        self.allowances.judge_one(leak, &mut self.uses)
    }

    /// The entries that matched no leak (stale), and the frame entries that could not be
    /// checked for want of stacks (unchecked), in file order.
    pub fn finish(self) -> (Vec<Entry>, Vec<Entry>) {
        let with = |wanted: Use| -> Vec<Entry> {
            let entries = &self.allowances.entries;
            entries.iter().zip(&self.uses).filter(|(_, u)| **u == wanted).map(|(e, _)| e.clone()).collect()
        };
        (with(Use::Unused), with(Use::Unchecked))
    }
}

/// What became of an entry in a run; a later, stronger use wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Use {
    /// It matched nothing: stale.
    Unused,
    /// A frame entry that could apply to a leak without stacks: not stale, not checked.
    Unchecked,
    /// It matched a leak.
    Used,
}

impl Use {
    fn raise(&mut self, to: Use) {
        *self = (*self).max(to);
    }
}

/// A leaking layer as allowances judge it.
#[derive(Debug, Clone, Copy)]
pub struct Leak<'a> {
    /// Its verdict.
    pub verdict: &'a Verdict,
    /// The allocation stacks recorded for it: none with `--no-stacks`.
    pub stacks: Option<&'a LeakStacks>,
}

/// A quantity's growth per counted iteration, as the verdict line prints it; 0 if it did not grow.
fn rate(growth: &[Growth], metric: &Metric) -> i64 {
    growth.iter().find(|g| &g.metric == metric).map_or(0, Growth::per_iteration)
}

/// The first bound of `entry` that `what` exceeds, growing by `rate` per counted iteration.
fn over_bound(entry: &Entry, what: &GuestText, rate: impl Fn(&Metric) -> i64) -> Option<Status> {
    [(Metric::Blocks, entry.max_blocks), (Metric::Bytes, entry.max_bytes)].into_iter().find_map(|(metric, bound)| {
        let bound = bound?;
        let grew = rate(&metric);
        (grew > 0 && grew as u64 > bound).then(|| Status::OverBound {
            what: what.clone(),
            metric: metric.to_string(),
            grew,
            bound,
            place: entry.place.clone(),
            reason: entry.reason.clone(),
        })
    })
}

/// What the allowances say about one leaking layer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Excused, with the entries that excuse it.
    Allowed {
        /// The entries, `FILE:LINE`, in file order.
        places: Vec<String>,
        /// Their reasons, in the same order (repeated reasons once).
        reasons: Vec<String>,
    },
    /// An entry matches but the growth exceeds its bound.
    OverBound {
        /// The layer or test that grows too fast.
        what: GuestText,
        /// Which quantity (`blocks` or `bytes`).
        metric: String,
        /// How much it grew per counted iteration (at least).
        grew: i64,
        /// The entry's bound.
        bound: u64,
        /// The entry, `FILE:LINE`.
        place: String,
        /// The entry's reason.
        reason: String,
    },
    /// Frame entries excuse some of its allocation stacks, not all.
    StacksUnmatched {
        /// How many of its stacks no frame entry matches.
        unmatched: usize,
        /// How many stacks it has.
        of: usize,
        /// The innermost frame of the first (most bytes) unmatched stack.
        first: GuestText,
    },
    /// Only frame entries could excuse it, and it has no (complete) allocation stacks.
    NeedsStacks {
        /// Why there are none, one clause.
        why: GuestText,
    },
    /// No entry excuses it.
    NotAllowed,
}

/// One leaking layer and what the allowances say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The layer.
    pub layer: GuestText,
    /// The outcome.
    pub status: Status,
}

/// The allowances applied to a run.
#[derive(Debug, Clone)]
pub struct Judgement {
    /// Every leaking layer, in verdict order.
    pub leaks: Vec<Judged>,
    /// Entries that matched no leak of the run.
    pub stale: Vec<Entry>,
    /// Frame entries that matched nothing because the leaks they could excuse have no
    /// allocation stacks: neither used nor known to be stale.
    pub unchecked: Vec<Entry>,
}

impl Judgement {
    /// The layers whose leak still fails `--fail-on-leak`.
    pub fn failing(&self) -> impl Iterator<Item = &GuestText> {
        self.leaks.iter().filter(|j| !matches!(j.status, Status::Allowed { .. })).map(|j| &j.layer)
    }
}

mod frames;
#[cfg(test)]
mod tests;
