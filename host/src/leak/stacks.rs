//! Allocation stacks of leaked blocks: interning the program points a replay
//! captured, grouping blocks by stack, trimming allocator and SDK frames, and the
//! order reports print them in. Pure: the replay (`run::trace`) feeds it, the
//! symbolizer (`suite::symbols`) names the frames.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::text::GuestText;

/// One program point of a captured stack, as wasmtime reports it (names only).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawFrame {
    /// The function's index in the module.
    pub func_index: u32,
    /// Its name from the module's name section, if any (possibly mangled).
    pub name: Option<String>,
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

    /// The frames of `id`.
    pub fn get(&self, id: StackId) -> &[RawFrame] {
        &self.stacks[id.0 as usize]
    }
}

/// Whose code a frame is, which decides what trimming keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The suite's own code.
    #[default]
    User,
    /// The standard library and its dependencies, the allocator included.
    Std,
    /// The leakhost SDK: its allocator and the dispatch around a test.
    Sdk,
}

impl Origin {
    /// The origin a qualified function name shows (names from the name section).
    pub fn of_name(function: &str) -> Origin {
        let path = path_of(function);
        if SDK.iter().any(|p| path.starts_with(p)) {
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
    /// The demangled function name (`<unknown>` when the module has no name for it).
    pub function: GuestText,
    /// The source file, when the suite carries DWARF line tables.
    pub file: Option<GuestText>,
    /// The line in it.
    pub line: Option<u32>,
    /// The offset of the call in the module file.
    pub module_offset: Option<u32>,
    /// Whose code it is.
    #[serde(skip)]
    pub origin: Origin,
}

impl Frame {
    /// `function  file:line`, or the function alone.
    pub fn text(&self) -> String {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => format!("{}  {}:{line}", self.function.raw(), file.raw()),
            (Some(file), None) => format!("{}  {}", self.function.raw(), file.raw()),
            _ => self.function.raw().to_string(),
        }
    }
}

/// The leaked blocks that share one allocation stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackGroup {
    /// Blocks over all counted iterations.
    pub blocks: u64,
    /// Their bytes, as requested.
    pub bytes: u64,
    /// The counted iterations they were allocated in.
    pub iterations: usize,
    /// The tests (or `Layer.testSetUp`-style hook owners) running when they were
    /// allocated, sorted.
    pub tests: Vec<GuestText>,
    /// The stack, innermost first, allocator and SDK frames trimmed.
    pub frames: Vec<Frame>,
}

impl StackGroup {
    /// Blocks and bytes per counted iteration, when they divide evenly.
    pub fn per_iteration(&self) -> Option<(u64, u64)> {
        let n = self.iterations as u64;
        (n > 0 && self.blocks.is_multiple_of(n) && self.bytes.is_multiple_of(n))
            .then(|| (self.blocks / n, self.bytes / n))
    }
}

/// The allocation stacks of one leaking layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakStacks {
    /// The leaked blocks grouped by stack, most bytes first.
    pub groups: Vec<StackGroup>,
    /// What limits them: no tracing in the suite's ABI, no line tables, a replay that
    /// differed from the run.
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

/// A leaked block, as the replay saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeakedBlock {
    /// Where it was allocated.
    pub stack: StackId,
    /// Its size.
    pub size: u64,
    /// The test running when it was allocated, if any.
    pub test: Option<GuestText>,
}

/// Groups `blocks` by stack; `frames` turns a stack into reported frames (it is
/// called once per distinct stack). Groups that trim to the same frames merge.
pub fn group(
    blocks: &[LeakedBlock],
    iterations: usize,
    mut frames: impl FnMut(StackId) -> Vec<Frame>,
) -> Vec<StackGroup> {
    let mut by_stack: HashMap<StackId, (u64, u64, BTreeSet<GuestText>)> = HashMap::new();
    for block in blocks {
        let entry = by_stack.entry(block.stack).or_default();
        entry.0 += 1;
        entry.1 += block.size;
        entry.2.extend(block.test.clone());
    }
    let mut ids: Vec<StackId> = by_stack.keys().copied().collect();
    ids.sort();
    let mut merged: HashMap<Vec<Frame>, (u64, u64, BTreeSet<GuestText>)> = HashMap::new();
    for id in ids {
        let (blocks, bytes, tests) = by_stack.remove(&id).expect("listed above");
        let entry = merged.entry(trim(frames(id))).or_default();
        entry.0 += blocks;
        entry.1 += bytes;
        entry.2.extend(tests);
    }
    let mut groups: Vec<StackGroup> = merged
        .into_iter()
        .map(|(frames, (blocks, bytes, tests))| StackGroup {
            blocks,
            bytes,
            iterations,
            tests: tests.into_iter().collect(),
            frames,
        })
        .collect();
    order(&mut groups);
    groups
}

/// Most bytes first, then by the stack's text, so two runs print the same thing.
pub fn order(groups: &mut [StackGroup]) {
    let key = |g: &StackGroup| g.frames.iter().map(Frame::text).collect::<Vec<_>>();
    groups
        .sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| b.blocks.cmp(&a.blocks)).then_with(|| key(a).cmp(&key(b))));
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
];

/// Crate paths and exports of the SDK.
const SDK: &[&str] = &["leakhost_guest::", "leakhost_run_test", "leakhost_layer_hook", "leakhost_counters"];

/// The name a prefix test looks at: `<alloc::vec::Vec<T> as Clone>::clone` is
/// `alloc::vec::Vec<T> as Clone>::clone`, so a trait impl counts as its type's crate.
fn path_of(function: &str) -> &str {
    function.trim_start_matches('<')
}

/// Keeps the suite's own frames, innermost first, up to the SDK's dispatch around the
/// test: the allocator below and the standard library between them are not where a
/// leak is fixed. A stack without any frame of the suite is kept whole, so a block is
/// never shown without a stack.
pub fn trim(frames: Vec<Frame>) -> Vec<Frame> {
    let Some(first) = frames.iter().position(|f| f.origin == Origin::User) else { return frames };
    let end = frames[first..].iter().position(|f| f.origin == Origin::Sdk).map_or(frames.len(), |i| first + i);
    frames[first..end].iter().filter(|f| f.origin == Origin::User).cloned().collect()
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
mod tests {
    use super::*;

    fn frame(function: &str) -> Frame {
        Frame {
            function: function.into(),
            file: None,
            line: None,
            module_offset: None,
            origin: Origin::of_name(function),
        }
    }

    #[test]
    fn allocator_and_sdk_frames_are_trimmed() {
        let frames = [
            "leakhost_guest::alloc::report",
            "__rust_alloc",
            "<alloc::vec::Vec<u8> as Clone>::clone",
            "leak::helper",
            "std::thread::local::LocalKey<T>::with",
            "leak::test_body",
            "leakhost_guest::runtime::run_test",
            "leak::declare",
            "leakhost_run_test",
        ]
        .map(frame)
        .to_vec();
        let names: Vec<String> = trim(frames).iter().map(Frame::text).collect();
        assert_eq!(names, ["leak::helper", "leak::test_body"]);
    }

    #[test]
    fn a_stack_of_allocator_frames_only_is_kept() {
        let frames = vec![frame("alloc::alloc::alloc"), frame("std::thread::spawn")];
        assert_eq!(trim(frames.clone()), frames);
    }

    #[test]
    fn rust_symbols_are_demangled_without_hash() {
        assert_eq!(demangle("_ZN4leak6helper17h0123456789abcdefE"), "leak::helper");
        assert_eq!(demangle("_RNvCs1234_4leak6helper"), "leak::helper");
        assert_eq!(demangle("malloc"), "malloc");
    }

    #[test]
    fn blocks_group_by_trimmed_stack_and_order_by_bytes() {
        let mut table = StackTable::default();
        let raw = |name: &str, offset| RawFrame { func_index: 0, name: Some(name.into()), module_offset: Some(offset) };
        let a = table.intern(vec![raw("alloc::alloc::alloc", 1), raw("leak::small", 2)]);
        let b = table.intern(vec![raw("alloc::alloc::alloc", 3), raw("leak::big", 4)]);
        let c = table.intern(vec![raw("alloc::raw_vec::grow", 5), raw("leak::big", 4)]);
        assert_eq!(table.intern(vec![raw("alloc::alloc::alloc", 1), raw("leak::small", 2)]), a);
        let block = |stack, size, test: &str| LeakedBlock { stack, size, test: Some(test.into()) };
        let blocks = [block(a, 8, "t1"), block(a, 8, "t2"), block(b, 100, "t3"), block(c, 100, "t3")];
        let groups =
            group(&blocks, 2, |id| table.get(id).iter().map(|f| frame(f.name.as_deref().unwrap_or("?"))).collect());
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].blocks, groups[0].bytes), (2, 200));
        assert_eq!(groups[0].frames, vec![frame("leak::big")]);
        assert_eq!(groups[1].tests, vec![GuestText::from("t1"), GuestText::from("t2")]);
        assert_eq!(groups[1].per_iteration(), Some((1, 8)));
    }
}
