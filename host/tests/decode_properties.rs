//! Property tests of the ABI v1 decoders (`leakhost::abi`): whatever a guest puts in its
//! linear memory, `decode_manifest`, `decode_status` and `decode_counters` return `Ok` or
//! `Err`, never panic, never reserve memory for a count the guest merely claims (a count
//! past its limit or an array that does not fit in memory is rejected first), and whatever
//! they accept satisfies the invariants the rest of the host relies on. Record layouts:
//! docs/abi.md §4.
//!
//! Runs with the normal `cargo test --release --workspace`; the fuzz targets in fuzz/ drive
//! the same decoders with coverage guidance (docs/fuzzing.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::HashSet;
use std::time::{Duration, Instant};

use leakhost::abi::{
    decode_counters, decode_manifest, decode_status, AbiError, LayerDecl, LayerFlags, Manifest, TestDecl,
    MAX_COUNTER_ROWS, MAX_LAYERS, MAX_MESSAGE_LEN, MAX_NAME_LEN, MAX_TESTS, UNIT_LAYER_NAME,
};
use leakhost_guest::abi::{layer_flags, COUNTERS_SIZE, STATUS_NONE, UNIT_LAYER};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;

// ---------------------------------------------------------------------------------------
// Allocation accounting: a pass-through allocator that, while armed on the current thread,
// records the largest single request and the total requested. Each #[test] runs on its own
// thread, so concurrent tests do not disturb each other's numbers.

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static TOTAL: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
            let _ = TOTAL.try_with(|t| t.set(t.get().saturating_add(size)));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// What one call cost: its result, the largest single allocation, the total allocated, the time.
struct Cost<T> {
    result: T,
    largest: usize,
    total: usize,
    elapsed: Duration,
}

fn measure<T>(f: impl FnOnce() -> T) -> Cost<T> {
    LARGEST.with(|l| l.set(0));
    TOTAL.with(|t| t.set(0));
    ARMED.with(|a| a.set(true));
    let start = Instant::now();
    let result = f();
    let elapsed = start.elapsed();
    ARMED.with(|a| a.set(false));
    Cost { result, largest: LARGEST.with(Cell::get), total: TOTAL.with(Cell::get), elapsed }
}

// ---------------------------------------------------------------------------------------
// Invariants of a decoded manifest, checked independently of the decoder's own validation.

fn assert_manifest_invariants(m: &Manifest) {
    let n = m.layers.len();
    let mut layer_names = HashSet::new();
    for layer in &m.layers {
        // A String is valid UTF-8 by construction; the decoder must also reject empty,
        // over-long and reserved names.
        assert!(!layer.name.is_empty(), "empty layer name accepted: {m:?}");
        assert!(layer.name.raw().len() <= MAX_NAME_LEN as usize, "over-long layer name accepted");
        assert_ne!(layer.name.raw(), UNIT_LAYER_NAME, "reserved layer name accepted");
        assert!(layer_names.insert(layer.name.raw()), "duplicate layer name {:?} accepted", layer.name);
        let mut bases = HashSet::new();
        for &base in &layer.bases {
            assert!(base < n, "layer {:?} has base index {base} of {n} layers", layer.name);
            assert!(bases.insert(base), "layer {:?} lists base {base} twice", layer.name);
        }
    }
    assert!(!has_cycle(&m.layers), "cyclic bases accepted: {m:?}");
    let mut test_names = HashSet::new();
    for test in &m.tests {
        assert!(!test.name.is_empty(), "empty test name accepted");
        assert!(test.name.raw().len() <= MAX_NAME_LEN as usize, "over-long test name accepted");
        if let Some(layer) = test.layer {
            assert!(layer < n, "test {:?} has layer index {layer} of {n} layers", test.name);
        }
        assert!(
            test_names.insert((test.layer, test.name.raw())),
            "duplicate test {:?} in layer {:?} accepted",
            test.name,
            test.layer
        );
    }
}

/// A plain recursive depth-first search for a cycle in the base graph.
fn has_cycle(layers: &[LayerDecl]) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Grey,
        Black,
    }
    fn visit(layers: &[LayerDecl], colors: &mut [Color], at: usize) -> bool {
        colors[at] = Color::Grey;
        for &base in &layers[at].bases {
            let color = colors[base];
            if color == Color::Grey || (color == Color::White && visit(layers, colors, base)) {
                return true;
            }
        }
        colors[at] = Color::Black;
        false
    }
    let mut colors = vec![Color::White; layers.len()];
    (0..layers.len()).any(|i| colors[i] == Color::White && visit(layers, &mut colors, i))
}

fn assert_status_invariants(memory: &[u8], addr: u32) {
    if let Ok(status) = decode_status(memory, addr) {
        assert_ne!(status.kind, Some(STATUS_NONE));
        if status.kind.is_none() {
            assert!(status.message.is_empty());
        }
        // Cut to MAX_MESSAGE_LEN bytes, each of which may become one U+FFFD (3 bytes).
        assert!(status.message.len() <= 3 * MAX_MESSAGE_LEN as usize);
    }
}

fn assert_counters_sorted(memory: &[u8], addr: u32) -> Option<leakhost::abi::Counters> {
    let counters = decode_counters(memory, addr).ok()?;
    assert!(
        counters.types.windows(2).all(|w| w[0].name <= w[1].name),
        "type rows not sorted by name: {:?}",
        counters.types
    );
    assert!(counters.user.windows(2).all(|w| w[0].0 <= w[1].0), "user rows not sorted by name: {:?}", counters.user);
    assert!(counters.types.len() <= MAX_COUNTER_ROWS as usize);
    assert!(counters.user.len() <= MAX_COUNTER_ROWS as usize);
    Some(counters)
}

/// Runs all three decoders at `addr` and checks whatever they accept.
fn decode_all(memory: &[u8], addr: u32) {
    if let Ok(manifest) = decode_manifest(memory, addr) {
        assert_manifest_invariants(&manifest);
    }
    assert_status_invariants(memory, addr);
    assert_counters_sorted(memory, addr);
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        // Keep failures in the test output only; nothing is written next to this file.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// 1. Arbitrary memory, arbitrary address.

/// Memory as random bytes, or as a "word soup" of u32s that are mostly small counts and
/// in-range addresses, so the decoders get past the first record more often than noise does.
fn arbitrary_memory() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        4 => 0u32..8,
        4 => 0u32..8192,
        1 => any::<u32>(),
        1 => Just(u32::MAX),
        1 => Just(MAX_LAYERS),
        1 => Just(MAX_TESTS),
    ];
    prop_oneof![
        1 => vec(any::<u8>(), 0..64 * 1024),
        3 => vec(word, 0..2048).prop_map(|words| words.iter().flat_map(|w| w.to_le_bytes()).collect()),
    ]
}

fn arbitrary_address() -> impl Strategy<Value = u32> {
    prop_oneof![
        2 => 0u32..8192,
        1 => any::<u32>(),
        1 => (u32::MAX - 64)..=u32::MAX,
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_memory_never_panics(memory in arbitrary_memory(), addr in arbitrary_address()) {
        decode_all(&memory, addr);
        // The same bytes read at an address that is always inside them.
        if !memory.is_empty() {
            decode_all(&memory, addr % memory.len() as u32);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 2. Structured manifests: a well-laid-out memory built from generated layers and tests,
//    with bad names, bad indexes, cycles, unknown flag bits and lying lengths mixed in.

/// How a name is generated.
#[derive(Debug, Clone)]
enum NameGen {
    /// A name unique to its position (always valid).
    Unique,
    /// From a small pool, so names repeat.
    Pool(&'static str),
    /// Raw bytes: empty, invalid UTF-8, or anything.
    Bytes(Vec<u8>),
    /// `n` bytes of `a`, around MAX_NAME_LEN.
    Long(usize),
}

impl NameGen {
    fn bytes(&self, unique: &str) -> Vec<u8> {
        match self {
            NameGen::Unique => unique.as_bytes().to_vec(),
            NameGen::Pool(name) => name.as_bytes().to_vec(),
            NameGen::Bytes(bytes) => bytes.clone(),
            NameGen::Long(n) => vec![b'a'; *n],
        }
    }
}

fn name_gen() -> impl Strategy<Value = NameGen> {
    let invalid_utf8: &[&[u8]] = &[
        b"\xff",
        b"a\xc3",            // truncated two-byte sequence
        b"\xed\xa0\x80",     // surrogate
        b"\xc0\xaf",         // overlong
        b"layer\x80.x",      // stray continuation byte
        b"\xf4\x90\x80\x80", // above U+10FFFF
    ];
    let invalid: Vec<NameGen> = invalid_utf8.iter().map(|b| NameGen::Bytes(b.to_vec())).collect();
    prop_oneof![
        80 => Just(NameGen::Unique),
        4 => prop::sample::select(vec!["a", "b", "x.y", "é", "日本", "UnitTests", "a\0b"]).prop_map(NameGen::Pool),
        1 => Just(NameGen::Bytes(Vec::new())),
        1 => prop::sample::select(invalid),
        1 => vec(any::<u8>(), 1..12).prop_map(NameGen::Bytes),
        1 => prop::sample::select(vec![MAX_NAME_LEN as usize, MAX_NAME_LEN as usize + 1]).prop_map(NameGen::Long),
    ]
}

/// A lie about one u32 field (a length or a pointer).
#[derive(Debug, Clone, Copy)]
enum Lie {
    Truth,
    Add(i32),
    Set(u32),
}

impl Lie {
    fn apply(self, value: u32) -> u32 {
        match self {
            Lie::Truth => value,
            Lie::Add(d) => value.wrapping_add_signed(d),
            Lie::Set(v) => v,
        }
    }
    fn is_truth(self) -> bool {
        matches!(self, Lie::Truth)
    }
}

fn lie() -> impl Strategy<Value = Lie> {
    prop_oneof![
        30 => Just(Lie::Truth),
        2 => (-3i32..=3).prop_map(Lie::Add),
        1 => any::<u32>().prop_map(Lie::Set),
        1 => prop::sample::select(vec![0, 1, u32::MAX, u32::MAX - 3, 1 << 16, 1 << 20, (1 << 20) + 1])
            .prop_map(Lie::Set),
    ]
}

/// How a base index is generated, relative to the layer's own index `i` and count `n`.
#[derive(Debug, Clone, Copy)]
enum BaseGen {
    /// An earlier layer (keeps the graph acyclic); left out for layer 0.
    Earlier(u32),
    /// Any index up to a little past the end (may be a cycle, a self-base or out of range).
    Near(u32),
    /// Anything.
    Raw(u32),
}

impl BaseGen {
    /// The index, or `None` for an `Earlier` base of layer 0 (there is none).
    fn index(self, i: u32, n: u32) -> Option<u32> {
        if matches!(self, BaseGen::Earlier(_)) && i == 0 {
            return None;
        }
        Some(match self {
            BaseGen::Earlier(k) => i - 1 - k % i,
            BaseGen::Near(k) => k % (n + 2),
            BaseGen::Raw(k) => k,
        })
    }
}

fn base_gen() -> impl Strategy<Value = BaseGen> {
    prop_oneof![
        20 => any::<u32>().prop_map(BaseGen::Earlier),
        2 => any::<u32>().prop_map(BaseGen::Near),
        1 => any::<u32>().prop_map(BaseGen::Raw),
    ]
}

#[derive(Debug, Clone)]
struct LayerGen {
    name: NameGen,
    bases: Vec<BaseGen>,
    flags: u32,
    name_len: Lie,
    bases_ptr: Lie,
    bases_len: Lie,
}

fn layer_gen() -> impl Strategy<Value = LayerGen> {
    let flags = prop_oneof![
        40 => 0..=layer_flags::ALL,
        1 => (0..=layer_flags::ALL, 5u32..32).prop_map(|(f, bit)| f | 1 << bit),
        1 => any::<u32>(),
    ];
    (name_gen(), vec(base_gen(), 0..4), flags, lie(), lie(), lie()).prop_map(
        |(name, bases, flags, name_len, bases_ptr, bases_len)| LayerGen {
            name,
            bases,
            flags,
            name_len,
            bases_ptr,
            bases_len,
        },
    )
}

/// How a test's layer is generated.
#[derive(Debug, Clone, Copy)]
enum TestLayerGen {
    /// The default unit-test layer.
    Unit,
    /// A declared layer (the unit layer if there is none).
    Index(u32),
    /// Anything, usually out of range.
    Raw(u32),
}

#[derive(Debug, Clone)]
struct TestGen {
    name: NameGen,
    layer: TestLayerGen,
    name_ptr: Lie,
    name_len: Lie,
}

fn test_gen() -> impl Strategy<Value = TestGen> {
    let layer = prop_oneof![
        6 => Just(TestLayerGen::Unit),
        12 => any::<u32>().prop_map(TestLayerGen::Index),
        1 => any::<u32>().prop_map(TestLayerGen::Raw),
    ];
    // Test names repeat more often than layer names: pick from a small pool now and then.
    let name = prop_oneof![
        6 => name_gen(),
        1 => prop::sample::select(vec!["t1", "t2", "t3"]).prop_map(NameGen::Pool),
    ];
    (name, layer, lie(), lie()).prop_map(|(name, layer, name_ptr, name_len)| TestGen {
        name,
        layer,
        name_ptr,
        name_len,
    })
}

#[derive(Debug, Clone)]
struct ManifestGen {
    layers: Vec<LayerGen>,
    tests: Vec<TestGen>,
    layers_ptr: Lie,
    layers_len: Lie,
    tests_ptr: Lie,
    tests_len: Lie,
    /// Bytes cut off the end of memory (0 most of the time).
    cut: usize,
}

fn manifest_gen() -> impl Strategy<Value = ManifestGen> {
    let cut = prop_oneof![8 => Just(0usize), 1 => 1usize..64];
    let liar = prop::bool::ANY;
    (vec(layer_gen(), 0..7), vec(test_gen(), 0..9), lie(), lie(), lie(), lie(), cut, liar).prop_map(
        |(layers, tests, layers_ptr, layers_len, tests_ptr, tests_len, cut, liar)| {
            let gen = ManifestGen { layers, tests, layers_ptr, layers_len, tests_ptr, tests_len, cut };
            // Half the cases tell the truth about every length and pointer, so the
            // exact-result check below runs often.
            if liar {
                gen
            } else {
                gen.honest()
            }
        },
    )
}

impl ManifestGen {
    fn honest(mut self) -> Self {
        for l in [&mut self.layers_ptr, &mut self.layers_len, &mut self.tests_ptr, &mut self.tests_len] {
            *l = Lie::Truth;
        }
        for layer in &mut self.layers {
            (layer.name_len, layer.bases_ptr, layer.bases_len) = (Lie::Truth, Lie::Truth, Lie::Truth);
        }
        for test in &mut self.tests {
            (test.name_ptr, test.name_len) = (Lie::Truth, Lie::Truth);
        }
        self.cut = 0;
        self
    }
    fn layer_name(&self, i: usize) -> Vec<u8> {
        self.layers[i].name.bytes(&format!("pkg.Layer{i}"))
    }
    fn test_name(&self, i: usize) -> Vec<u8> {
        self.tests[i].name.bytes(&format!("test_{i}"))
    }
    fn base_indexes(&self, i: usize) -> Vec<u32> {
        let n = self.layers.len() as u32;
        self.layers[i].bases.iter().filter_map(|b| b.index(i as u32, n)).collect()
    }
    fn test_layer(&self, i: usize) -> u32 {
        let n = self.layers.len() as u32;
        match self.tests[i].layer {
            TestLayerGen::Unit => UNIT_LAYER,
            TestLayerGen::Index(_) if n == 0 => UNIT_LAYER,
            TestLayerGen::Index(k) => k % n,
            TestLayerGen::Raw(k) => k,
        }
    }

    /// Whether any field lies or memory is cut: then only the invariants are checked.
    fn lies(&self) -> bool {
        self.cut != 0
            || ![self.layers_ptr, self.layers_len, self.tests_ptr, self.tests_len].iter().all(|l| l.is_truth())
            || self.layers.iter().any(|l| !(l.name_len.is_truth() && l.bases_ptr.is_truth() && l.bases_len.is_truth()))
            || self.tests.iter().any(|t| !(t.name_ptr.is_truth() && t.name_len.is_truth()))
    }

    /// Lays the manifest out in memory: the record at address 8, then names, base arrays
    /// and the record arrays. Returns the memory and the manifest's address.
    fn build(&self) -> (Vec<u8>, u32) {
        let mut mem = Mem::new();
        let addr = mem.u32s(&[0; 4]);
        assert_eq!(addr, 8);
        let mut layer_records = Vec::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let [name_ptr, name_len] = mem.string(&self.layer_name(i));
            let bases = self.base_indexes(i);
            let bases_ptr = mem.u32s(&bases);
            layer_records.push([
                name_ptr,
                layer.name_len.apply(name_len),
                layer.bases_ptr.apply(bases_ptr),
                layer.bases_len.apply(bases.len() as u32),
                layer.flags,
            ]);
        }
        let mut test_records = Vec::new();
        for (i, test) in self.tests.iter().enumerate() {
            let [name_ptr, name_len] = mem.string(&self.test_name(i));
            test_records.push([test.name_ptr.apply(name_ptr), test.name_len.apply(name_len), self.test_layer(i)]);
        }
        let layers_ptr = mem.records(&layer_records);
        let tests_ptr = mem.records(&test_records);
        mem.poke(addr, self.layers_ptr.apply(layers_ptr));
        mem.poke(addr + 4, self.layers_len.apply(layer_records.len() as u32));
        mem.poke(addr + 8, self.tests_ptr.apply(tests_ptr));
        mem.poke(addr + 12, self.tests_len.apply(test_records.len() as u32));
        let mut bytes = mem.bytes;
        bytes.truncate(bytes.len().saturating_sub(self.cut));
        (bytes, addr)
    }

    /// What an honest layout of these layers and tests must decode to, worked out
    /// independently of the decoder: `Some` if ABI v1 accepts it, `None` if it must be rejected.
    fn expected(&self) -> Option<Manifest> {
        let n = self.layers.len();
        let name_ok = |bytes: &[u8]| {
            !bytes.is_empty() && bytes.len() <= MAX_NAME_LEN as usize && std::str::from_utf8(bytes).is_ok()
        };
        let mut layers = Vec::new();
        for (i, gen) in self.layers.iter().enumerate() {
            let name = self.layer_name(i);
            if !name_ok(&name) || name == UNIT_LAYER_NAME.as_bytes() || gen.flags & !layer_flags::ALL != 0 {
                return None;
            }
            let bases = self.base_indexes(i);
            if bases.iter().any(|&b| b as usize >= n) {
                return None;
            }
            let bits = gen.flags;
            layers.push(LayerDecl {
                name: String::from_utf8(name).unwrap().into(),
                bases: bases.iter().map(|&b| b as usize).collect(),
                flags: LayerFlags {
                    set_up: bits & layer_flags::HAS_SET_UP != 0,
                    tear_down: bits & layer_flags::HAS_TEAR_DOWN != 0,
                    test_set_up: bits & layer_flags::HAS_TEST_SET_UP != 0,
                    test_tear_down: bits & layer_flags::HAS_TEST_TEAR_DOWN != 0,
                    no_tear_down: bits & layer_flags::NO_TEAR_DOWN != 0,
                },
            });
        }
        let mut tests = Vec::new();
        for i in 0..self.tests.len() {
            let name = self.test_name(i);
            let layer = match self.test_layer(i) {
                UNIT_LAYER => None,
                l if (l as usize) < n => Some(l as usize),
                _ => return None,
            };
            if !name_ok(&name) {
                return None;
            }
            tests.push(TestDecl { name: String::from_utf8(name).unwrap().into(), layer });
        }
        let names: HashSet<_> = layers.iter().map(|l| &l.name).collect();
        let tests_unique = tests.iter().map(|t| (t.layer, &t.name)).collect::<HashSet<_>>().len() == tests.len();
        let bases_unique = layers.iter().all(|l| l.bases.iter().collect::<HashSet<_>>().len() == l.bases.len());
        if names.len() != layers.len() || !tests_unique || !bases_unique || has_cycle(&layers) {
            return None;
        }
        Some(Manifest { layers, tests })
    }
}

/// A guest memory under construction (as in the decoders' unit tests): values are appended
/// and their addresses returned. Address 0 is never handed out.
struct Mem {
    bytes: Vec<u8>,
}

impl Mem {
    fn new() -> Self {
        Mem { bytes: vec![0; 8] }
    }
    fn end(&self) -> u32 {
        self.bytes.len() as u32
    }
    fn align(&mut self, to: usize) {
        while !self.bytes.len().is_multiple_of(to) {
            self.bytes.push(0);
        }
    }
    fn string(&mut self, bytes: &[u8]) -> [u32; 2] {
        let at = self.end();
        self.bytes.extend_from_slice(bytes);
        [at, bytes.len() as u32]
    }
    fn u32s(&mut self, values: &[u32]) -> u32 {
        self.align(4);
        let at = self.end();
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        at
    }
    fn u64s(&mut self, values: &[u64]) -> u32 {
        self.align(8);
        let at = self.end();
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        at
    }
    fn records<const N: usize>(&mut self, records: &[[u32; N]]) -> u32 {
        self.align(4);
        let at = self.end();
        for r in records {
            self.u32s(r);
        }
        at
    }
    fn poke(&mut self, addr: u32, value: u32) {
        self.bytes[addr as usize..addr as usize + 4].copy_from_slice(&value.to_le_bytes());
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn structured_manifests_decode_to_valid_manifests_or_errors(gen in manifest_gen()) {
        let (memory, addr) = gen.build();
        let result = decode_manifest(&memory, addr);
        if let Ok(manifest) = &result {
            assert_manifest_invariants(manifest);
        }
        if !gen.lies() {
            // An honest layout decodes exactly to what the model says, or is rejected
            // exactly when the model rejects it.
            match (gen.expected(), result) {
                (Some(expected), Ok(manifest)) => prop_assert_eq!(manifest, expected),
                (None, Err(_)) => {}
                (Some(expected), Err(e)) => prop_assert!(false, "valid manifest {:?} rejected: {}", expected, e),
                (None, Ok(manifest)) => prop_assert!(false, "invalid manifest accepted as {:?}", manifest),
            }
        }
        // The other decoders reading the same bytes as their own records.
        assert_status_invariants(&memory, addr);
        assert_counters_sorted(&memory, addr);
    }
}

// ---------------------------------------------------------------------------------------
// 3. Counters snapshots with random rows, row counts and pointers.

#[derive(Debug, Clone)]
struct CountersGen {
    totals: [u64; 3],
    types: Vec<(NameGen, i64, i64, Lie)>,
    user: Vec<(NameGen, i64, Lie)>,
    types_ptr: Lie,
    types_len: Lie,
    user_ptr: Lie,
    user_len: Lie,
    cut: usize,
}

fn counter_name() -> impl Strategy<Value = NameGen> {
    prop_oneof![
        3 => name_gen(),
        // Repeated names, to exercise sorting of equal keys.
        1 => prop::sample::select(vec!["Vec<u8>", "alloc::String", "a", "b"]).prop_map(NameGen::Pool),
    ]
}

fn counters_gen() -> impl Strategy<Value = CountersGen> {
    let types = vec((counter_name(), any::<i64>(), any::<i64>(), lie()), 0..10);
    let user = vec((counter_name(), any::<i64>(), lie()), 0..10);
    let cut = prop_oneof![8 => Just(0usize), 1 => 1usize..48];
    let liar = prop::bool::ANY;
    (any::<[u64; 3]>(), types, user, lie(), lie(), lie(), lie(), cut, liar).prop_map(
        |(totals, types, user, types_ptr, types_len, user_ptr, user_len, cut, liar)| {
            let gen = CountersGen { totals, types, user, types_ptr, types_len, user_ptr, user_len, cut };
            if liar {
                gen
            } else {
                gen.honest()
            }
        },
    )
}

impl CountersGen {
    fn honest(mut self) -> Self {
        for l in [&mut self.types_ptr, &mut self.types_len, &mut self.user_ptr, &mut self.user_len] {
            *l = Lie::Truth;
        }
        self.types.iter_mut().for_each(|t| t.3 = Lie::Truth);
        self.user.iter_mut().for_each(|u| u.2 = Lie::Truth);
        self.cut = 0;
        self
    }
    fn type_name(&self, i: usize) -> Vec<u8> {
        self.types[i].0.bytes(&format!("Type{}", 9 - i))
    }
    fn user_name(&self, i: usize) -> Vec<u8> {
        self.user[i].0.bytes(&format!("counter {}", 9 - i))
    }
    fn lies(&self) -> bool {
        self.cut != 0
            || ![self.types_ptr, self.types_len, self.user_ptr, self.user_len].iter().all(|l| l.is_truth())
            || self.types.iter().any(|t| !t.3.is_truth())
            || self.user.iter().any(|u| !u.2.is_truth())
    }

    /// The record at address 8, then the names, then the row arrays; returns memory,
    /// address, and the row counts as written into the record.
    fn build(&self) -> (Vec<u8>, u32, u32, u32) {
        let mut mem = Mem::new();
        let addr = mem.u64s(&[0; 5]);
        assert_eq!(addr, 8);
        assert_eq!(mem.end(), 8 + COUNTERS_SIZE);
        let type_names: Vec<_> = (0..self.types.len()).map(|i| mem.string(&self.type_name(i))).collect();
        let user_names: Vec<_> = (0..self.user.len()).map(|i| mem.string(&self.user_name(i))).collect();
        mem.align(8);
        let types_ptr = mem.end();
        for (&[ptr, len], &(_, instances, bytes, lie)) in type_names.iter().zip(&self.types) {
            mem.u32s(&[ptr, lie.apply(len)]);
            mem.u64s(&[instances as u64, bytes as u64]);
        }
        let user_ptr = mem.end();
        for (&[ptr, len], &(_, value, lie)) in user_names.iter().zip(&self.user) {
            mem.u32s(&[ptr, lie.apply(len)]);
            mem.u64s(&[value as u64]);
        }
        let types_len = self.types_len.apply(self.types.len() as u32);
        let user_len = self.user_len.apply(self.user.len() as u32);
        for (i, total) in self.totals.iter().enumerate() {
            mem.bytes[8 + 8 * i..16 + 8 * i].copy_from_slice(&total.to_le_bytes());
        }
        mem.poke(addr + 24, self.types_ptr.apply(types_ptr));
        mem.poke(addr + 28, types_len);
        mem.poke(addr + 32, self.user_ptr.apply(user_ptr));
        mem.poke(addr + 36, user_len);
        let mut bytes = mem.bytes;
        bytes.truncate(bytes.len().saturating_sub(self.cut));
        (bytes, addr, types_len, user_len)
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn counters_never_panic_and_come_back_sorted(gen in counters_gen()) {
        let (memory, addr, types_len, user_len) = gen.build();
        let decoded = assert_counters_sorted(&memory, addr);
        if let Some(counters) = &decoded {
            prop_assert_eq!(counters.types.len(), types_len as usize);
            prop_assert_eq!(counters.user.len(), user_len as usize);
            prop_assert_eq!(
                [counters.live_blocks, counters.live_bytes, counters.total_allocs],
                gen.totals
            );
            if !gen.lies() {
                // Same rows as written, only reordered.
                let mut types: Vec<_> = (0..gen.types.len())
                    .map(|i| (String::from_utf8(gen.type_name(i)).unwrap(), gen.types[i].1, gen.types[i].2))
                    .collect();
                let mut got: Vec<_> = counters.types.iter().map(|t| (t.name.to_string(), t.instances, t.bytes)).collect();
                types.sort();
                got.sort();
                prop_assert_eq!(got, types);
                let mut user: Vec<_> = (0..gen.user.len())
                    .map(|i| (String::from_utf8(gen.user_name(i)).unwrap(), gen.user[i].1))
                    .collect();
                user.sort();
                let got: Vec<(String, i64)> = counters.user.iter().map(|(n, v)| (n.to_string(), *v)).collect();
                prop_assert_eq!(&got, &user);
            }
        }
        if !gen.lies() {
            // An honest snapshot decodes exactly when every name is valid UTF-8 within the
            // limit (counter names may be empty: docs/abi.md §7.6 requires non-empty names
            // only of layers and tests).
            let fine = |b: Vec<u8>| b.len() <= MAX_NAME_LEN as usize && std::str::from_utf8(&b).is_ok();
            let all_fine = (0..gen.types.len()).all(|i| fine(gen.type_name(i)))
                && (0..gen.user.len()).all(|i| fine(gen.user_name(i)));
            prop_assert_eq!(decoded.is_some(), all_fine, "{:?}", decode_counters(&memory, addr).err());
        }
        assert_status_invariants(&memory, addr);
        if let Ok(manifest) = decode_manifest(&memory, addr) {
            assert_manifest_invariants(&manifest);
        }
    }
}

// ---------------------------------------------------------------------------------------
// 4. Bounded memory: counts that claim far more than memory holds fail fast and cheaply.

/// A small memory holding one manifest record at address 8 with these fields.
fn manifest_claiming(layers_ptr: u32, layers_len: u32, tests_ptr: u32, tests_len: u32) -> Vec<u8> {
    let mut mem = Mem::new();
    mem.u32s(&[layers_ptr, layers_len, tests_ptr, tests_len]);
    mem.bytes.resize(mem.bytes.len() + 64, 0);
    mem.bytes
}

/// A small memory holding one counters record at address 8 with these row fields.
fn counters_claiming(types_ptr: u32, types_len: u32, user_ptr: u32, user_len: u32) -> Vec<u8> {
    let mut mem = Mem::new();
    mem.u64s(&[1, 2, 3]);
    mem.u32s(&[types_ptr, types_len, user_ptr, user_len]);
    mem.bytes.resize(mem.bytes.len() + 64, 0);
    mem.bytes
}

/// The most a decoder may allocate at once while rejecting a claim: the text of its error.
/// Nothing is reserved for an array before its count is checked against the limit and its
/// bounds against memory.
const REJECTION_BUDGET: usize = 4096;

/// Runs `decode` and asserts it fails with an error `check` accepts, at once and without
/// allocating more than [`REJECTION_BUDGET`] at a time.
fn assert_rejected_cheaply<T: std::fmt::Debug>(
    what: &str,
    decode: impl FnOnce() -> Result<T, AbiError>,
    check: impl FnOnce(&AbiError) -> bool,
) {
    let cost = measure(decode);
    match &cost.result {
        Err(e) => assert!(check(e), "{what}: unexpected error {e:?}"),
        Ok(v) => panic!("{what}: accepted as {v:?}"),
    }
    assert!(cost.elapsed < Duration::from_secs(1), "{what}: took {:?}", cost.elapsed);
    assert!(cost.largest <= REJECTION_BUDGET, "{what}: allocated {} bytes at once", cost.largest);
    assert!(cost.total <= 4 * REJECTION_BUDGET, "{what}: allocated {} bytes in all", cost.total);
}

fn is_too_many(e: &AbiError, what: &str, count: u32, limit: u32) -> bool {
    matches!(e, AbiError::TooMany { what: w, count: c, limit: l } if w == what && *c == count && *l == limit)
}

fn is_out_of_bounds(e: &AbiError, what: &str) -> bool {
    matches!(e, AbiError::OutOfBounds { what: w, .. } if w == what)
}

#[test]
fn huge_layer_count_is_rejected_without_allocating() {
    for layers_len in [u32::MAX, MAX_LAYERS + 1] {
        let memory = manifest_claiming(24, layers_len, 24, 0);
        assert_rejected_cheaply(
            &format!("layers_len = {layers_len}"),
            || decode_manifest(&memory, 8),
            |e| is_too_many(e, "layer", layers_len, MAX_LAYERS),
        );
    }
}

#[test]
fn huge_test_count_is_rejected_without_allocating() {
    for tests_len in [u32::MAX, MAX_TESTS + 1] {
        let memory = manifest_claiming(24, 0, 24, tests_len);
        assert_rejected_cheaply(
            &format!("tests_len = {tests_len}"),
            || decode_manifest(&memory, 8),
            |e| is_too_many(e, "test", tests_len, MAX_TESTS),
        );
    }
}

#[test]
fn counts_at_the_limit_but_beyond_memory_are_rejected_without_allocating() {
    // Allowed by the limits, impossible in an 88-byte memory: must fail on bounds, before
    // anything is reserved for the records.
    let memory = manifest_claiming(24, MAX_LAYERS, 24, 0);
    assert_rejected_cheaply(
        "layers_len = MAX_LAYERS",
        || decode_manifest(&memory, 8),
        |e| is_out_of_bounds(e, "layer array"),
    );
    let memory = manifest_claiming(24, 0, 24, MAX_TESTS);
    assert_rejected_cheaply(
        "tests_len = MAX_TESTS",
        || decode_manifest(&memory, 8),
        |e| is_out_of_bounds(e, "test array"),
    );
    let memory = counters_claiming(48, MAX_COUNTER_ROWS, 48, 0);
    assert_rejected_cheaply(
        "types_len = MAX_COUNTER_ROWS",
        || decode_counters(&memory, 8),
        |e| is_out_of_bounds(e, "type counter array"),
    );
    let memory = counters_claiming(48, 0, 48, MAX_COUNTER_ROWS);
    assert_rejected_cheaply(
        "user_len = MAX_COUNTER_ROWS",
        || decode_counters(&memory, 8),
        |e| is_out_of_bounds(e, "user counter array"),
    );
}

#[test]
fn arrays_wrapping_the_address_space_are_out_of_bounds() {
    let memory = manifest_claiming(u32::MAX - 8, 2, 24, 0);
    assert_rejected_cheaply("layer array", || decode_manifest(&memory, 8), |e| is_out_of_bounds(e, "layer array"));
    let memory = manifest_claiming(24, 0, u32::MAX - 4, 1);
    assert_rejected_cheaply("test array", || decode_manifest(&memory, 8), |e| is_out_of_bounds(e, "test array"));
    let memory = counters_claiming(u32::MAX - 16, 1, 48, 0);
    assert_rejected_cheaply("types", || decode_counters(&memory, 8), |e| is_out_of_bounds(e, "type counter array"));
    let memory = counters_claiming(48, 0, u32::MAX, 1);
    assert_rejected_cheaply("user", || decode_counters(&memory, 8), |e| is_out_of_bounds(e, "user counter array"));
    // Records that start inside memory but end past it, or past 4 GiB.
    for addr in [memory.len() as u32 - 39, u32::MAX - 39, u32::MAX - 7, u32::MAX] {
        assert_rejected_cheaply(
            "counters record",
            || decode_counters(&memory, addr),
            |e| is_out_of_bounds(e, "counters record"),
        );
    }
}

#[test]
fn huge_counter_row_counts_are_rejected_without_allocating() {
    for (types_len, user_len, what, count) in [
        (u32::MAX, 0, "type counter", u32::MAX),
        (0, u32::MAX, "user counter", u32::MAX),
        (MAX_COUNTER_ROWS + 1, 0, "type counter", MAX_COUNTER_ROWS + 1),
        (0, MAX_COUNTER_ROWS + 1, "user counter", MAX_COUNTER_ROWS + 1),
    ] {
        let memory = counters_claiming(48, types_len, 48, user_len);
        assert_rejected_cheaply(
            what,
            || decode_counters(&memory, 8),
            |e| is_too_many(e, what, count, MAX_COUNTER_ROWS),
        );
    }
}

/// A status record at address 8 with kind FAILURE and a message at 20 claiming `len` bytes,
/// followed by `present` bytes of message.
fn status_claiming(len: u32, present: usize) -> Vec<u8> {
    let mut memory = vec![0u8; 8];
    for field in [1u32, 20, len] {
        memory.extend_from_slice(&field.to_le_bytes());
    }
    memory.resize(20 + present, b'x');
    memory
}

#[test]
fn status_message_past_memory_is_rejected_without_copying() {
    for len in [u32::MAX, MAX_MESSAGE_LEN + 1, 101] {
        let memory = status_claiming(len, 100);
        assert_rejected_cheaply(
            &format!("message of {len} bytes"),
            || decode_status(&memory, 8),
            |e| is_out_of_bounds(e, "status message"),
        );
    }
}

#[test]
fn long_status_message_is_cut_to_the_limit() {
    let memory = status_claiming(MAX_MESSAGE_LEN + 100, MAX_MESSAGE_LEN as usize + 100);
    let cost = measure(|| decode_status(&memory, 8));
    let status = cost.result.expect("an in-bounds message longer than the limit is cut, not rejected");
    assert_eq!(status.message.len(), MAX_MESSAGE_LEN as usize);
    assert!(cost.largest <= 3 * MAX_MESSAGE_LEN as usize, "allocated {} bytes at once", cost.largest);
}

proptest! {
    #![proptest_config(config())]

    /// Any count past its limit is rejected on the count, whatever the pointers.
    #[test]
    fn counts_past_the_limits_are_rejected_cheaply(
        layers_len in (MAX_LAYERS + 1)..=u32::MAX,
        tests_len in (MAX_TESTS + 1)..=u32::MAX,
        rows in (MAX_COUNTER_ROWS + 1)..=u32::MAX,
        ptr in any::<u32>(),
        padding in 0usize..256,
    ) {
        let mut memory = manifest_claiming(ptr, layers_len, ptr, 0);
        memory.resize(memory.len() + padding, 0xAB);
        assert_rejected_cheaply("layers", || decode_manifest(&memory, 8), |e| is_too_many(e, "layer", layers_len, MAX_LAYERS));
        let memory = manifest_claiming(ptr, 0, ptr, tests_len);
        assert_rejected_cheaply("tests", || decode_manifest(&memory, 8), |e| is_too_many(e, "test", tests_len, MAX_TESTS));
        let memory = counters_claiming(ptr, rows, ptr, 0);
        assert_rejected_cheaply("types", || decode_counters(&memory, 8), |e| is_too_many(e, "type counter", rows, MAX_COUNTER_ROWS));
        let memory = counters_claiming(ptr, 0, ptr, rows);
        assert_rejected_cheaply("user", || decode_counters(&memory, 8), |e| is_too_many(e, "user counter", rows, MAX_COUNTER_ROWS));
    }

    /// Any count within its limit but too large for memory is rejected on bounds, before
    /// anything is reserved for it (88- and 112-byte memories hold fewer than 8 records;
    /// the other, empty, array points inside memory).
    #[test]
    fn counts_within_the_limits_but_past_memory_are_rejected_cheaply(
        layers_len in 8..=MAX_LAYERS,
        tests_len in 8..=MAX_TESTS,
        rows in 8..=MAX_COUNTER_ROWS,
        ptr in prop_oneof![Just(24u32), any::<u32>()],
    ) {
        let memory = manifest_claiming(ptr, layers_len, 24, 0);
        assert_rejected_cheaply("layers", || decode_manifest(&memory, 8), |e| is_out_of_bounds(e, "layer array"));
        let memory = manifest_claiming(24, 0, ptr, tests_len);
        assert_rejected_cheaply("tests", || decode_manifest(&memory, 8), |e| is_out_of_bounds(e, "test array"));
        let memory = counters_claiming(ptr, rows, 48, 0);
        assert_rejected_cheaply("types", || decode_counters(&memory, 8), |e| is_out_of_bounds(e, "type counter array"));
        let memory = counters_claiming(48, 0, ptr, rows);
        assert_rejected_cheaply("user", || decode_counters(&memory, 8), |e| is_out_of_bounds(e, "user counter array"));
    }
}
