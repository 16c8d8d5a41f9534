//! Allocation stacks of leaked blocks: interning the program points a replay captured,
//! grouping what leaked by the text of its trimmed stack, and the one order reports print
//! groups in. Pure: the replay (`run::trace`) feeds it, the symbolizer (`suite::symbols`)
//! names the frames, each distinct stack once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::text::GuestText;

/// One program point of a captured stack, as wasmtime reports it (names only).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawFrame {
    /// The function's index in the module.
    pub func_index: u32,
    /// Its name from the module's name section, if any (possibly mangled).
    pub name: Option<std::sync::Arc<str>>,
    /// The offset of the call in the module file, if known.
    pub module_offset: Option<u32>,
}

/// A stack's number in a [`StackTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StackId(pub u32);

/// Every distinct stack a replay captured, each stored once.
#[derive(Debug, Default)]
pub struct StackTable {
    ids: HashMap<Vec<RawFrame>, StackId>,
    stacks: Vec<Vec<RawFrame>>,
}

impl StackTable {
    /// The id of `frames` (innermost first), adding it if it is new.
    pub fn intern(&mut self, frames: Vec<RawFrame>) -> StackId {
        if let Some(&id) = self.ids.get(&frames) {
            return id;
        }
        let id = StackId(self.stacks.len() as u32);
        self.stacks.push(frames.clone());
        self.ids.insert(frames, id);
        id
    }

    /// How many distinct stacks it holds.
    pub fn len(&self) -> usize {
        self.stacks.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.stacks.is_empty()
    }

    /// The frames of `id`.
    pub fn get(&self, id: StackId) -> &[RawFrame] {
        &self.stacks[id.0 as usize]
    }

    /// Every stack, by id.
    pub fn stacks(&self) -> &[Vec<RawFrame>] {
        &self.stacks
    }
}

/// Whose code a frame is, which decides what trimming keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The suite's own code and its dependencies (crates.io, C sources).
    #[default]
    User,
    /// The standard library and the runtime (the allocator, libc) below the suite's code.
    Std,
    /// The leakhost SDK: its allocator and the dispatch around a test.
    Sdk,
}

impl Origin {
    /// The origin a qualified function name shows (names from the name section).
    pub fn of_name(function: &str) -> Origin {
        let path = path_of(function);
        // The SDK's crate, the glue its macros put in the suite's crate (`__leakhost_body`),
        // and the exports and C functions of the ABI (`leakhost_run_test`, `leakhost_counters`).
        let sdk_glue = function.contains("::__leakhost_") || function.starts_with("__leakhost_");
        if path.starts_with(SDK) || sdk_glue || (!function.contains("::") && function.starts_with("leakhost_")) {
            Origin::Sdk
        } else if STD.iter().any(|p| path.starts_with(p)) || STD_SYMBOLS.contains(&function) {
            Origin::Std
        } else {
            Origin::User
        }
    }
}

/// One frame of a reported stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Frame {
    /// The demangled function name, with its path (`<function N>` when the module has no name).
    pub function: GuestText,
    /// The source file as reports show it: in its package (`inventory/src/sessions.rs`), its
    /// crate (`lru-0.12.5/src/lib.rs`) or the standard library (`std/src/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<GuestText>,
    /// The source file's full path, as the DWARF says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<GuestText>,
    /// The line in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The offsets of the calls in the module file this frame stands for: one per
    /// distinct captured stack merged into its group, sorted.
    pub module_offsets: Vec<u32>,
    /// Whose code it is.
    #[serde(skip)]
    pub origin: Origin,
}

impl Frame {
    /// `function  file:line`, or the function alone: what identifies a frame to a reader.
    pub fn text(&self) -> String {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{}  {}:{line}", self.function.raw(), file.raw()),
            (Some(file), None) => format!("{}  {}", self.function.raw(), file.raw()),
            _ => self.function.raw().to_string(),
        }
    }
}

/// The leaked blocks and bytes that share one stack, as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackGroup {
    /// Blocks allocated over all counted iterations and still live.
    pub blocks: u64,
    /// Bytes added over all counted iterations and still live: new blocks' sizes and what
    /// reallocations added to live blocks.
    pub bytes: u64,
    /// The counted iterations.
    pub iterations: usize,
    /// The causes (tests, or `testSetUp of LAYER`-style hooks) that allocated them, sorted.
    pub tests: Vec<GuestText>,
    /// The stack, innermost first, allocator, runtime and SDK frames trimmed.
    pub frames: Vec<Frame>,
    /// Whether any frame is the suite's own code; without one, the frames shown are all
    /// there is (a names-only build whose code was inlined away).
    pub user_frames: bool,
}

impl StackGroup {
    /// Blocks and bytes per counted iteration, when they divide evenly.
    pub fn per_iteration(&self) -> Option<(u64, u64)> {
        let n = self.iterations as u64;
        (n > 0 && self.blocks.is_multiple_of(n) && self.bytes.is_multiple_of(n))
            .then(|| (self.blocks / n, self.bytes / n))
    }

    /// The rendered frames: what makes two groups one.
    fn text(&self) -> Vec<String> {
        self.frames.iter().map(Frame::text).collect()
    }
}

/// The allocation stacks of one leaking layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakStacks {
    /// The leaked blocks grouped by stack, most bytes first.
    pub groups: Vec<StackGroup>,
    /// What limits them: no tracing, no line tables, a replay that differed from the run,
    /// a spent budget, live data of causes the verdict does not name.
    pub notes: Vec<GuestText>,
    /// Some leaked blocks may be missing from `groups` (a block without a captured stack,
    /// replays that disagree with each other or with the run; `notes` say which), so the
    /// groups cannot excuse the whole leak. Not serialised: the notes already say it.
    #[serde(skip)]
    pub partial: bool,
}

impl LeakStacks {
    /// No stacks, and why.
    pub fn unavailable(why: String) -> Self {
        LeakStacks { groups: Vec::new(), notes: vec![GuestText::from(why)], partial: false }
    }
}

/// What one allocator call added to what is live at the layer's end: a new block, or the
/// bytes a reallocation grew (or shrank) a live block by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    /// Where the call was made.
    pub stack: StackId,
    /// 1 for a new block, 0 for a reallocation.
    pub blocks: u64,
    /// Bytes it added.
    pub bytes: i64,
    /// The cause that made it.
    pub cause: GuestText,
}

#[derive(Default)]
struct Sum {
    blocks: u64,
    bytes: i64,
    tests: BTreeSet<GuestText>,
    offsets: Vec<BTreeSet<u32>>,
}

/// Groups `contributions` by the text of their trimmed stacks; `frames` names a stack (it is
/// called once per distinct stack, in id order). Groups that add nothing live are dropped.
pub fn group(
    contributions: &[Contribution],
    iterations: usize,
    mut frames: impl FnMut(StackId) -> Vec<Frame>,
) -> Vec<StackGroup> {
    let stacks: BTreeSet<StackId> = contributions.iter().map(|c| c.stack).collect();
    let named: BTreeMap<StackId, (Vec<Frame>, bool)> = stacks.into_iter().map(|id| (id, trim(frames(id)))).collect();
    let mut by_text: BTreeMap<Vec<String>, (Vec<Frame>, bool, Sum)> = BTreeMap::new();
    for c in contributions {
        let (frames, user) = &named[&c.stack];
        let key: Vec<String> = frames.iter().map(Frame::text).collect();
        let (_, _, sum) = by_text.entry(key).or_insert_with(|| (frames.clone(), *user, Sum::default()));
        sum.blocks += c.blocks;
        sum.bytes += c.bytes;
        sum.tests.insert(c.cause.clone());
        sum.offsets.resize_with(frames.len(), BTreeSet::new);
        for (set, frame) in sum.offsets.iter_mut().zip(frames) {
            set.extend(frame.module_offsets.iter().copied());
        }
    }
    let mut groups: Vec<StackGroup> = by_text
        .into_values()
        .filter(|(_, _, sum)| sum.blocks > 0 || sum.bytes > 0)
        .map(|(mut frames, user_frames, sum)| {
            for (frame, offsets) in frames.iter_mut().zip(sum.offsets) {
                frame.module_offsets = offsets.into_iter().collect();
            }
            StackGroup {
                blocks: sum.blocks,
                bytes: u64::try_from(sum.bytes).unwrap_or(0),
                iterations,
                tests: sum.tests.into_iter().collect(),
                frames,
                user_frames,
            }
        })
        .collect();
    order(&mut groups);
    groups
}

/// Most bytes first, then most blocks, then by the stack's text, then by its frames'
/// offsets: a key no two distinct groups share, so every run prints the same order.
pub fn order(groups: &mut [StackGroup]) {
    let offsets = |g: &StackGroup| g.frames.iter().map(|f| f.module_offsets.clone()).collect::<Vec<_>>();
    groups.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then_with(|| b.blocks.cmp(&a.blocks))
            .then_with(|| a.text().cmp(&b.text()))
            .then_with(|| offsets(a).cmp(&offsets(b)))
    });
}

/// Crate paths of the standard library's frames (the allocator's included).
const STD: &[&str] = &["__rustc::", "alloc::", "core::", "std::", "hashbrown::", "dlmalloc::", "rustc_demangle::"];

/// The allocator's entry points by exact name (Rust's shims, and C's for C suites).
const STD_SYMBOLS: &[&str] = &[
    "__rust_alloc",
    "__rust_alloc_zeroed",
    "__rust_realloc",
    "__rust_dealloc",
    "__rdl_alloc",
    "__rdl_alloc_zeroed",
    "__rdl_realloc",
    "__rdl_dealloc",
    "malloc",
    "calloc",
    "realloc",
    "free",
    "aligned_alloc",
    "posix_memalign",
    "__wrap_malloc",
    "__wrap_calloc",
    "__wrap_realloc",
    "__wrap_free",
    "__wrap_aligned_alloc",
    "__wrap_posix_memalign",
    "dlmalloc",
    "dlrealloc",
    "dlcalloc",
    "internal_memalign",
];

/// The SDK's crate path.
const SDK: &str = "leakhost_guest::";

/// The name a prefix test looks at: `<alloc::vec::Vec<T> as Clone>::clone` is
/// `alloc::vec::Vec<T> as Clone>::clone`, so a trait impl counts as its type's crate.
fn path_of(function: &str) -> &str {
    function.trim_start_matches('<')
}

/// Keeps the suite's own frames, innermost first, up to the SDK's dispatch around the
/// test: the allocator below and the standard library between them are not where a leak
/// is fixed. Returns the frames and whether any is the suite's; a stack without one is
/// kept whole but for the allocator and SDK frames, so a block is never shown without a stack.
pub fn trim(frames: Vec<Frame>) -> (Vec<Frame>, bool) {
    let Some(first) = frames.iter().position(|f| f.origin == Origin::User) else {
        let rest: Vec<Frame> = frames.iter().filter(|f| f.origin != Origin::Sdk).cloned().collect();
        return (if rest.is_empty() { frames } else { rest }, false);
    };
    let end = frames[first..].iter().position(|f| f.origin == Origin::Sdk).map_or(frames.len(), |i| first + i);
    (frames[first..end].iter().filter(|f| f.origin == Origin::User).cloned().collect(), true)
}

/// A demangled function name: Rust legacy (`_ZN…`) and v0 (`_R…`) symbols lose their
/// hash, C names stay as they are.
pub fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(d) => format!("{d:#}"),
        Err(_) => name.to_string(),
    }
}

#[cfg(test)]
mod tests;
