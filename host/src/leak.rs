//! Leak measurement: snapshots of the guest's counters and memory, their
//! differences, and the verdict over repeated iterations.
//!
//! Everything here is pure: the runner takes snapshots, these functions turn them
//! into deltas, a [`Series`] collects a layer's deltas and a [`Rule`] turns the whole
//! series into a verdict; reporters render the results.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::abi::{Counters, Name, TypeCount};
use crate::text::GuestText;

pub mod allow;
pub mod baseline;
pub mod policy;
pub mod stacks;
mod verdict;

pub use verdict::{
    counted_iterations, growth, levels_of, shape_of, Evidence, Growth, LeakingTest, Rule, Series, Shape, Verdict,
    WholeSeries, Witness, HORIZON, MIN_GROWTHS,
};

/// Bytes in one wasm page.
pub const PAGE_SIZE: u64 = 65536;

/// The guest's counters plus its memory size, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Blocks allocated and not freed.
    pub live_blocks: u64,
    /// Bytes in those blocks.
    pub live_bytes: u64,
    /// Allocations ever made.
    pub total_allocs: u64,
    /// Linear memory size in bytes, read by the host.
    pub memory_bytes: u64,
    /// Per-type rows, sorted by name.
    #[serde(serialize_with = "types_as_map", deserialize_with = "types_from_map")]
    pub types: Vec<TypeCount>,
    /// User counters, sorted by name.
    #[serde(serialize_with = "pairs_as_map", deserialize_with = "pairs_from_map")]
    pub user: Vec<(Name, i64)>,
}

// Names are shared (`Arc<str>`) and serialised as the strings they are.

fn types_as_map<S: serde::Serializer>(types: &[TypeCount], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(types.iter().map(|t| (&*t.name, [t.instances, t.bytes])))
}

fn pairs_as_map<S: serde::Serializer>(pairs: &[(Name, i64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (&**k, v)))
}

// A report read back keeps its rows in the order written, which is name order.

fn types_from_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<TypeCount>, D::Error> {
    let rows: BTreeMap<String, [i64; 2]> = BTreeMap::deserialize(d)?;
    Ok(rows.into_iter().map(|(name, [instances, bytes])| TypeCount { name: name.into(), instances, bytes }).collect())
}

fn pairs_from_map<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<(Name, i64)>, D::Error> {
    let rows: BTreeMap<String, i64> = BTreeMap::deserialize(d)?;
    Ok(rows.into_iter().map(|(name, value)| (Name::from(name), value)).collect())
}

impl Snapshot {
    /// Combines the guest's counters with the memory size the host read.
    pub fn new(counters: Counters, memory_bytes: u64) -> Self {
        Snapshot {
            live_blocks: counters.live_blocks,
            live_bytes: counters.live_bytes,
            total_allocs: counters.total_allocs,
            memory_bytes,
            types: counters.types,
            user: counters.user,
        }
    }

    /// Linear memory size in pages.
    pub fn pages(&self) -> u64 {
        self.memory_bytes / PAGE_SIZE
    }
}

/// The change of one type's instances and bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeDelta {
    /// The type's name.
    pub name: GuestText,
    /// Change in live instances.
    pub instances: i64,
    /// Change in their bytes.
    pub bytes: i64,
}

/// What changed between two snapshots; zero rows are left out.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Delta {
    /// Change in live blocks.
    pub blocks: i64,
    /// Change in live bytes.
    pub bytes: i64,
    /// Change in linear-memory pages.
    pub pages: i64,
    /// Types whose instances or bytes changed, by name.
    pub types: Vec<TypeDelta>,
    /// User counters that changed, by name.
    pub counters: Vec<(GuestText, i64)>,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_zero(&self) -> bool {
        self.blocks == 0 && self.bytes == 0 && self.pages == 0 && self.types.is_empty() && self.counters.is_empty()
    }

    /// Whether anything grew at all; a delta where nothing did rules out every leak
    /// verdict over a series that counts it.
    pub fn grows_anything(&self) -> bool {
        self.blocks >= 1
            || self.bytes >= 1
            || self.pages >= 1
            || self.types.iter().any(|t| t.instances >= 1)
            || self.counters.iter().any(|(_, v)| *v >= 1)
    }

    /// Every measured quantity with its name, for verdicts.
    fn metrics(&self) -> impl Iterator<Item = (Metric, i64)> + '_ {
        [(Metric::Blocks, self.blocks), (Metric::Bytes, self.bytes), (Metric::Pages, self.pages)]
            .into_iter()
            .chain(self.types.iter().map(|t| (Metric::Type(t.name.clone()), t.instances)))
            .chain(self.counters.iter().map(|(n, v)| (Metric::Counter(n.clone()), *v)))
    }
}

fn signed(a: u64, b: u64) -> i64 {
    b as i64 - a as i64
}

/// `after - before`.
pub fn diff(before: &Snapshot, after: &Snapshot) -> Delta {
    let types = changes(&before.types, &after.types, |t| (&t.name, [t.instances, t.bytes]));
    let counters = changes(&before.user, &after.user, |(name, value)| (name, [*value, 0]));
    Delta {
        blocks: signed(before.live_blocks, after.live_blocks),
        bytes: signed(before.live_bytes, after.live_bytes),
        pages: signed(before.pages(), after.pages()),
        types: types
            .into_iter()
            .map(|(name, [instances, bytes])| TypeDelta { name: GuestText::new(name.clone()), instances, bytes })
            .collect(),
        counters: counters.into_iter().map(|(name, [value, _])| (GuestText::new(name.clone()), value)).collect(),
    }
}

/// `after - before` for each name of two row lists sorted by name, in name order, for
/// the names that changed (a name may repeat in a list; its rows add up). A merge of the
/// sorted lists: most snapshots of a test have the same rows, and this runs around
/// every measured test.
fn changes<'a, T>(
    before: &'a [T],
    after: &'a [T],
    row: impl Fn(&'a T) -> (&'a Name, [i64; 2]),
) -> Vec<(&'a Name, [i64; 2])> {
    let (mut before, mut after) = (before.iter().map(&row).peekable(), after.iter().map(&row).peekable());
    let mut out = Vec::new();
    loop {
        let name = match (before.peek(), after.peek()) {
            (None, None) => break,
            (Some(&(b, _)), None) => b,
            (None, Some(&(a, _))) => a,
            (Some(&(b, _)), Some(&(a, _))) => b.min(a),
        };
        let mut change = [0i64; 2];
        while let Some((_, [x, y])) = after.next_if(|(n, _)| *n == name) {
            change = [change[0] + x, change[1] + y];
        }
        while let Some((_, [x, y])) = before.next_if(|(n, _)| *n == name) {
            change = [change[0] - x, change[1] - y];
        }
        if change != [0, 0] {
            out.push((name, change));
        }
    }
    out
}

/// `a + b`: two consecutive changes as one.
pub fn sum(a: &Delta, b: &Delta) -> Delta {
    let mut types: BTreeMap<&GuestText, (i64, i64)> = BTreeMap::new();
    for t in a.types.iter().chain(&b.types) {
        let e = types.entry(&t.name).or_default();
        e.0 += t.instances;
        e.1 += t.bytes;
    }
    let mut counters: BTreeMap<&GuestText, i64> = BTreeMap::new();
    for (n, v) in a.counters.iter().chain(&b.counters) {
        *counters.entry(n).or_default() += v;
    }
    Delta {
        blocks: a.blocks + b.blocks,
        bytes: a.bytes + b.bytes,
        pages: a.pages + b.pages,
        types: types
            .into_iter()
            .filter(|(_, (i, b))| *i != 0 || *b != 0)
            .map(|(name, (instances, bytes))| TypeDelta { name: name.clone(), instances, bytes })
            .collect(),
        counters: counters.into_iter().filter(|(_, v)| *v != 0).map(|(n, v)| (n.clone(), v)).collect(),
    }
}

/// A measured quantity that can leak.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Metric {
    /// Live heap blocks.
    Blocks,
    /// Live heap bytes.
    Bytes,
    /// Linear-memory pages (64 KiB): judged only while the heap is flat or settled, when
    /// their growth is memory taken outside the allocator (`memory.grow`).
    Pages,
    /// Live instances of a tracked type.
    Type(GuestText),
    /// A user counter.
    Counter(GuestText),
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Metric::Blocks => f.write_str("blocks"),
            Metric::Bytes => f.write_str("bytes"),
            Metric::Pages => f.write_str("pages"),
            Metric::Type(name) => write!(f, "{} instances", name.line()),
            Metric::Counter(name) => write!(f, "counter \"{}\"", name.line()),
        }
    }
}

#[cfg(test)]
mod tests;
