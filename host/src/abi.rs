//! Decoding and validating what a guest puts in its linear memory (ABI v1).
//!
//! This is the only module that knows the guest's record layouts. Nothing here
//! trusts the guest: every address and length is bounds-checked (with overflow),
//! every name is checked for UTF-8, and the manifest is validated as a whole.
//! See docs/abi.md.

mod fingerprint;
mod names;

use std::collections::HashSet;

use leakhost_guest::abi as v1;
use thiserror::Error;

use crate::text::GuestText;

/// The hasher of the manifest's name checks: names are hashed once each, with a seed
/// per process (a suite cannot pick names that collide on every machine).
type FastHash = foldhash::fast::RandomState;

pub use fingerprint::manifest_fingerprint;
pub use names::{InternError, Name, NameInterner, MAX_DISTINCT_NAMES, MAX_DISTINCT_NAME_BYTES};
pub use v1::{hook, outcome, ABI_VERSION};

/// The ABI versions this host runs: v2 is v1 plus allocation tracing (docs/abi.md §11).
pub const SUPPORTED_VERSIONS: [u32; 2] = [1, 2];

/// The first version with the allocation-tracing import and the trace flag.
pub const TRACING_VERSION: u32 = 2;

/// The most layers a manifest may declare.
pub const MAX_LAYERS: u32 = 1 << 16;
/// The most tests a manifest may declare.
pub const MAX_TESTS: u32 = 1 << 20;
/// The longest name (layer, test, type or counter) in bytes.
pub const MAX_NAME_LEN: u32 = 4096;
/// The most bases one layer may list.
pub const MAX_BASES: u32 = 256;
/// The most rows of type counters or user counters in one snapshot.
pub const MAX_COUNTER_ROWS: u32 = 1 << 14;
/// The most bytes of row names (type and user counters together) in one snapshot.
pub const MAX_SNAPSHOT_NAME_BYTES: u64 = 1 << 20;
/// The longest status message the host keeps, in bytes; longer ones are cut.
pub const MAX_MESSAGE_LEN: u32 = 1 << 16;

/// What is wrong with what the guest exposed.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AbiError {
    /// A record or string lies (partly) outside linear memory.
    #[error("{what} at {addr:#x}..+{len} lies outside linear memory ({memory} bytes)")]
    OutOfBounds {
        /// What was being read.
        what: String,
        /// Its guest address.
        addr: u32,
        /// Its length in bytes.
        len: u64,
        /// The memory size.
        memory: usize,
    },
    /// A count exceeds what the host accepts.
    #[error("{what} count {count} exceeds the limit of {limit}")]
    TooMany {
        /// What was counted.
        what: String,
        /// The count the guest gave.
        count: u32,
        /// The limit.
        limit: u32,
    },
    /// A snapshot's row names together are longer than [`MAX_SNAPSHOT_NAME_BYTES`].
    #[error("the counter names of one snapshot take more than {limit} bytes")]
    SnapshotTooLarge {
        /// The limit.
        limit: u64,
    },
    /// The run has seen more distinct counter names than it keeps.
    #[error("{what}: a new counter name past the limit of {limit} (per run)")]
    TooManyNames {
        /// Which name.
        what: String,
        /// The limit, in names or bytes.
        limit: String,
    },
    /// A name is not valid UTF-8.
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 {
        /// Which name.
        what: String,
    },
    /// A name is longer than [`MAX_NAME_LEN`].
    #[error("{what} is {len} bytes long, more than the limit of {limit}")]
    NameTooLong {
        /// Which name.
        what: String,
        /// Its length.
        len: u32,
        /// The limit.
        limit: u32,
    },
    /// A name is empty.
    #[error("{what} is empty")]
    EmptyName {
        /// Which name.
        what: String,
    },
    /// A layer's flags contain bits v1 does not define.
    #[error("layer {layer:?} has unknown flag bits {bits:#x}")]
    UnknownFlags {
        /// The layer.
        layer: String,
        /// The unknown bits.
        bits: u32,
    },
    /// A base index does not name a layer.
    #[error("layer {layer:?} names base index {index}, but the manifest has {count} layer(s)")]
    UnknownBase {
        /// The layer.
        layer: String,
        /// The bad index.
        index: u32,
        /// How many layers exist.
        count: usize,
    },
    /// A layer lists the same base twice.
    #[error("layer {layer:?} lists base {base:?} twice")]
    DuplicateBase {
        /// The layer.
        layer: String,
        /// The repeated base.
        base: String,
    },
    /// Bases form a cycle.
    #[error("layer bases form a cycle: {}", cycle.join(" -> "))]
    CyclicBases {
        /// The layers on the cycle, first repeated at the end.
        cycle: Vec<String>,
    },
    /// Two layers share a name.
    #[error("two layers are named {0:?}")]
    DuplicateLayer(String),
    /// Two tests of one layer share a name.
    #[error("two tests in layer {layer:?} are named {test:?}")]
    DuplicateTest {
        /// The layer.
        layer: String,
        /// The test name.
        test: String,
    },
    /// A test names a layer index that does not exist.
    #[error("test {test:?} names layer index {index}, but the manifest has {count} layer(s)")]
    UnknownTestLayer {
        /// The test.
        test: String,
        /// The bad index.
        index: u32,
        /// How many layers exist.
        count: usize,
    },
    /// A layer uses the name reserved for the default unit-test layer.
    #[error("layer name {0:?} is reserved for tests without a layer")]
    ReservedLayerName(String),
}

/// The name of the default layer of tests that declare none, as in zope.testrunner.
pub const UNIT_LAYER_NAME: &str = "UnitTests";

/// Which hooks a layer has, and whether it can be torn down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerFlags {
    /// setUp exists.
    pub set_up: bool,
    /// tearDown exists.
    pub tear_down: bool,
    /// testSetUp exists.
    pub test_set_up: bool,
    /// testTearDown exists.
    pub test_tear_down: bool,
    /// The layer cannot be torn down.
    pub no_tear_down: bool,
}

impl LayerFlags {
    fn from_bits(bits: u32) -> Self {
        use v1::layer_flags::*;
        LayerFlags {
            set_up: bits & HAS_SET_UP != 0,
            tear_down: bits & HAS_TEAR_DOWN != 0,
            test_set_up: bits & HAS_TEST_SET_UP != 0,
            test_tear_down: bits & HAS_TEST_TEAR_DOWN != 0,
            no_tear_down: bits & NO_TEAR_DOWN != 0,
        }
    }
}

/// A layer as the guest declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerDecl {
    /// Its dotted name (shared with the plan and every event that names the layer).
    pub name: GuestText,
    /// Indexes of its bases, in declared order.
    pub bases: Vec<usize>,
    /// Its hooks.
    pub flags: LayerFlags,
}

/// A test as the guest declared it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDecl {
    /// Its name, unique within its layer (shared with the plan and every event that names the test).
    pub name: GuestText,
    /// Its layer's index, or `None` for the default unit-test layer.
    pub layer: Option<usize>,
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Layers in declaration order; indexes are the guest's layer indexes.
    pub layers: Vec<LayerDecl>,
    /// Tests in declaration order; indexes are the guest's test indexes.
    pub tests: Vec<TestDecl>,
}

/// A status record: the outcome the last call recorded, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The outcome code, or `None` if the last call recorded nothing.
    pub kind: Option<u32>,
    /// The message (cut to [`MAX_MESSAGE_LEN`], invalid UTF-8 replaced).
    pub message: String,
}

/// One row of a counters snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeCount {
    /// The type's name.
    pub name: Name,
    /// Live instances.
    pub instances: i64,
    /// Bytes of those instances.
    pub bytes: i64,
}

/// A counters snapshot as the guest reported it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counters {
    /// Blocks allocated and not freed.
    pub live_blocks: u64,
    /// Bytes in those blocks.
    pub live_bytes: u64,
    /// Allocations ever made.
    pub total_allocs: u64,
    /// Per-type rows, sorted by name.
    pub types: Vec<TypeCount>,
    /// User counters `(name, value)`, sorted by name.
    pub user: Vec<(Name, i64)>,
}

/// A bounds-checked little-endian reader over a copy or view of guest memory.
struct Reader<'m> {
    memory: &'m [u8],
}

impl<'m> Reader<'m> {
    fn bytes(&self, what: &str, addr: u32, len: u64) -> Result<&'m [u8], AbiError> {
        self.slice(addr, len).ok_or_else(|| self.out_of_bounds(what.to_string(), addr, len))
    }

    /// The range, if it lies in memory (overflow checked).
    fn slice(&self, addr: u32, len: u64) -> Option<&'m [u8]> {
        let start = addr as u64;
        let end = start.checked_add(len).filter(|&end| end <= self.memory.len() as u64)?;
        Some(&self.memory[start as usize..end as usize])
    }

    fn out_of_bounds(&self, what: String, addr: u32, len: u64) -> AbiError {
        AbiError::OutOfBounds { what, addr, len, memory: self.memory.len() }
    }

    /// Reads `N` u32 fields of a record.
    fn u32s<const N: usize>(&self, what: &str, addr: u32) -> Result<[u32; N], AbiError> {
        let raw = self.bytes(what, addr, 4 * N as u64)?;
        Ok(std::array::from_fn(|i| u32::from_le_bytes(raw[4 * i..4 * i + 4].try_into().unwrap())))
    }

    fn u64_at(&self, what: &str, addr: u32) -> Result<u64, AbiError> {
        let raw = self.bytes(what, addr, 8)?;
        Ok(u64::from_le_bytes(raw.try_into().unwrap()))
    }

    /// Reads a UTF-8 name; layer and test names must not be empty, counter names may be.
    fn name(&self, what: impl Fn() -> String, ptr: u32, len: u32, allow_empty: bool) -> Result<String, AbiError> {
        self.name_str(&what, ptr, len, allow_empty).map(str::to_owned)
    }

    /// [`Self::name`], borrowed from memory.
    fn name_str(&self, what: &impl Fn() -> String, ptr: u32, len: u32, allow_empty: bool) -> Result<&'m str, AbiError> {
        if len > MAX_NAME_LEN {
            return Err(AbiError::NameTooLong { what: what(), len, limit: MAX_NAME_LEN });
        }
        if len == 0 && !allow_empty {
            return Err(AbiError::EmptyName { what: what() });
        }
        // The label is formatted only on the error path: decoding a large manifest reads
        // one name per test, and nearly all of them are fine.
        let raw = self.slice(ptr, len as u64).ok_or_else(|| self.out_of_bounds(what(), ptr, len as u64))?;
        std::str::from_utf8(raw).map_err(|_| AbiError::InvalidUtf8 { what: what() })
    }

    /// Checks a whole array of `count` records of `size` bytes at `base` (even an
    /// empty one) before any element is read or any memory is reserved for it.
    fn array(&self, what: &str, base: u32, count: u32, size: u32) -> Result<Array, AbiError> {
        self.bytes(what, base, count as u64 * size as u64)?;
        Ok(Array { base, size })
    }
}

/// An array whose bounds were checked; element addresses cannot overflow.
struct Array {
    base: u32,
    size: u32,
}

impl Array {
    fn at(&self, i: u32) -> u32 {
        self.base + i * self.size
    }
}

fn limit(what: &str, count: u32, max: u32) -> Result<(), AbiError> {
    if count > max {
        return Err(AbiError::TooMany { what: what.to_string(), count, limit: max });
    }
    Ok(())
}

/// Decodes and validates the manifest at `addr`.
pub fn decode_manifest(memory: &[u8], addr: u32) -> Result<Manifest, AbiError> {
    let r = Reader { memory };
    let [layers_ptr, layers_len, tests_ptr, tests_len] = r.u32s::<4>("manifest", addr)?;
    limit("layer", layers_len, MAX_LAYERS)?;
    limit("test", tests_len, MAX_TESTS)?;

    let layer_array = r.array("layer array", layers_ptr, layers_len, v1::LAYER_SIZE)?;
    let test_array = r.array("test array", tests_ptr, tests_len, v1::TEST_SIZE)?;
    let mut layers = Vec::with_capacity(layers_len as usize);
    for i in 0..layers_len {
        let [name_ptr, name_len, bases_ptr, bases_len, bits] = r.u32s::<5>("layer record", layer_array.at(i))?;
        let name = r.name(|| format!("name of layer {i}"), name_ptr, name_len, false)?;
        if name == UNIT_LAYER_NAME {
            return Err(AbiError::ReservedLayerName(name));
        }
        if bits & !v1::layer_flags::ALL != 0 {
            return Err(AbiError::UnknownFlags { layer: name, bits: bits & !v1::layer_flags::ALL });
        }
        limit(&format!("base of layer {name:?}"), bases_len, MAX_BASES)?;
        let raw = r.bytes(&format!("bases of layer {name:?}"), bases_ptr, 4 * bases_len as u64)?;
        let mut bases = Vec::with_capacity(bases_len as usize);
        for chunk in raw.chunks_exact(4) {
            let index = u32::from_le_bytes(chunk.try_into().unwrap());
            if index >= layers_len {
                return Err(AbiError::UnknownBase { layer: name, index, count: layers_len as usize });
            }
            bases.push(index as usize);
        }
        layers.push(LayerDecl { name: name.into(), bases, flags: LayerFlags::from_bits(bits) });
    }

    let mut tests = Vec::with_capacity(tests_len as usize);
    for i in 0..tests_len {
        let [name_ptr, name_len, layer] = r.u32s::<3>("test record", test_array.at(i))?;
        // Borrowed, and copied once into the text the run keeps: a manifest has a name per test.
        let name = r.name_str(&|| format!("name of test {i}"), name_ptr, name_len, false)?;
        let layer = match layer {
            v1::UNIT_LAYER => None,
            index if index < layers_len => Some(index as usize),
            index => return Err(AbiError::UnknownTestLayer { test: name.to_string(), index, count: layers.len() }),
        };
        tests.push(TestDecl { name: GuestText::new(name), layer });
    }

    let manifest = Manifest { layers, tests };
    validate(&manifest)?;
    Ok(manifest)
}

/// Checks what a well-formed manifest can still get wrong: names and base graph.
fn validate(manifest: &Manifest) -> Result<(), AbiError> {
    let mut names = HashSet::with_capacity_and_hasher(manifest.layers.len(), FastHash::default());
    for layer in &manifest.layers {
        if !names.insert(layer.name.raw()) {
            return Err(AbiError::DuplicateLayer(layer.name.raw().to_string()));
        }
        let mut seen = HashSet::new();
        for &base in &layer.bases {
            if !seen.insert(base) {
                let base = manifest.layers[base].name.clone();
                return Err(AbiError::DuplicateBase {
                    layer: layer.name.raw().to_string(),
                    base: base.raw().to_string(),
                });
            }
        }
    }
    if let Some(cycle) = find_cycle(&manifest.layers) {
        return Err(AbiError::CyclicBases { cycle });
    }
    // One set of (layer, name) pairs: a suite of a million tests is checked in one pass.
    let mut tests = HashSet::with_capacity_and_hasher(manifest.tests.len(), FastHash::default());
    for test in &manifest.tests {
        if !tests.insert((test.layer, test.name.raw())) {
            let layer = test.layer.map_or(UNIT_LAYER_NAME, |l| manifest.layers[l].name.raw()).to_string();
            return Err(AbiError::DuplicateTest { layer, test: test.name.raw().to_string() });
        }
    }
    Ok(())
}

/// Finds a cycle in the base graph by iterative depth-first search.
fn find_cycle(layers: &[LayerDecl]) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks = vec![Mark::New; layers.len()];
    for root in 0..layers.len() {
        if marks[root] != Mark::New {
            continue;
        }
        // Each frame: (layer, index of the next base to visit).
        let mut stack = vec![(root, 0usize)];
        marks[root] = Mark::Active;
        while let Some(&mut (layer, ref mut next)) = stack.last_mut() {
            if let Some(&base) = layers[layer].bases.get(*next) {
                *next += 1;
                match marks[base] {
                    Mark::New => {
                        marks[base] = Mark::Active;
                        stack.push((base, 0));
                    }
                    Mark::Active => {
                        let from = stack.iter().position(|&(l, _)| l == base).unwrap();
                        let mut cycle: Vec<String> =
                            stack[from..].iter().map(|&(l, _)| layers[l].name.raw().to_string()).collect();
                        cycle.push(layers[base].name.raw().to_string());
                        return Some(cycle);
                    }
                    Mark::Done => {}
                }
            } else {
                marks[layer] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// Decodes the status record at `addr`.
pub fn decode_status(memory: &[u8], addr: u32) -> Result<Status, AbiError> {
    let r = Reader { memory };
    let [kind, ptr, len] = r.u32s::<3>("status record", addr)?;
    let kind = (kind != v1::STATUS_NONE).then_some(kind);
    let message = match kind {
        None => String::new(),
        Some(_) => {
            // The whole message must be in bounds; the host keeps only its start.
            let raw = r.bytes("status message", ptr, len as u64)?;
            String::from_utf8_lossy(&raw[..raw.len().min(MAX_MESSAGE_LEN as usize)]).into_owned()
        }
    };
    Ok(Status { kind, message })
}

/// Decodes the counters snapshot at `addr`; rows come back sorted by name, their names
/// interned in the run's [`NameInterner::global`].
pub fn decode_counters(memory: &[u8], addr: u32) -> Result<Counters, AbiError> {
    let mut names = NameInterner::global().lock().unwrap_or_else(|e| e.into_inner());
    decode_counters_with(memory, addr, &mut names)
}

/// [`decode_counters`] with names interned in `names`.
pub fn decode_counters_with(memory: &[u8], addr: u32, names: &mut NameInterner) -> Result<Counters, AbiError> {
    let r = Reader { memory };
    // One bounds check for the whole record, so the field offsets below cannot wrap.
    r.bytes("counters record", addr, v1::COUNTERS_SIZE as u64)?;
    let live_blocks = r.u64_at("counters record", addr)?;
    let live_bytes = r.u64_at("counters record", addr + 8)?;
    let total_allocs = r.u64_at("counters record", addr + 16)?;
    let [types_ptr, types_len, user_ptr, user_len] = r.u32s::<4>("counters record", addr + 24)?;
    limit("type counter", types_len, MAX_COUNTER_ROWS)?;
    limit("user counter", user_len, MAX_COUNTER_ROWS)?;
    let type_array = r.array("type counter array", types_ptr, types_len, v1::TYPE_COUNTER_SIZE)?;
    let user_array = r.array("user counter array", user_ptr, user_len, v1::USER_COUNTER_SIZE)?;
    let mut budget = NameBudget { left: MAX_SNAPSHOT_NAME_BYTES, names };

    let mut types = Vec::with_capacity(types_len as usize);
    for i in 0..types_len {
        let at = type_array.at(i);
        let [name_ptr, name_len] = r.u32s::<2>("type counter", at)?;
        let name = budget.take(&r, || format!("name of type counter {i}"), name_ptr, name_len)?;
        let instances = r.u64_at("type counter", at + 8)? as i64;
        let bytes = r.u64_at("type counter", at + 16)? as i64;
        types.push(TypeCount { name, instances, bytes });
    }
    let mut user = Vec::with_capacity(user_len as usize);
    for i in 0..user_len {
        let at = user_array.at(i);
        let [name_ptr, name_len] = r.u32s::<2>("user counter", at)?;
        let name = budget.take(&r, || format!("name of user counter {i}"), name_ptr, name_len)?;
        user.push((name, r.u64_at("user counter", at + 8)? as i64));
    }
    types.sort_by(|a, b| a.name.cmp(&b.name));
    user.sort();
    Ok(Counters { live_blocks, live_bytes, total_allocs, types, user })
}

/// What the names of one snapshot may still cost, and where they are interned.
struct NameBudget<'n> {
    left: u64,
    names: &'n mut NameInterner,
}

impl NameBudget<'_> {
    /// Reads, checks and interns one row name, charging it to the snapshot's budget.
    fn take(&mut self, r: &Reader<'_>, what: impl Fn() -> String, ptr: u32, len: u32) -> Result<Name, AbiError> {
        self.left =
            self.left.checked_sub(len as u64).ok_or(AbiError::SnapshotTooLarge { limit: MAX_SNAPSHOT_NAME_BYTES })?;
        let name = r.name_str(&what, ptr, len, true)?;
        self.names.intern(name).map_err(|e| AbiError::TooManyNames {
            what: what(),
            limit: match e {
                InternError::TooManyNames => format!("{MAX_DISTINCT_NAMES} distinct names"),
                InternError::TooManyBytes => format!("{MAX_DISTINCT_NAME_BYTES} bytes of distinct names"),
            },
        })
    }
}

#[cfg(test)]
mod tests;
