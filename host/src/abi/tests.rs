//! Unit tests of the ABI v1 decoders, on guest memories built byte by byte.

use super::*;
use v1::layer_flags::{HAS_SET_UP, HAS_TEAR_DOWN, HAS_TEST_SET_UP, HAS_TEST_TEAR_DOWN, NO_TEAR_DOWN};
use v1::UNIT_LAYER;

/// A guest linear memory under construction: values are appended, aligned, and
/// their addresses returned. Address 0 is never handed out.
struct Mem {
    bytes: Vec<u8>,
}

impl Mem {
    fn new() -> Self {
        Mem { bytes: vec![0; 8] }
    }

    /// Current end, the next free address.
    fn end(&self) -> u32 {
        self.bytes.len() as u32
    }

    fn align(&mut self, to: usize) {
        self.bytes.resize(self.bytes.len().next_multiple_of(to), 0);
    }

    /// Appends raw bytes (unaligned) and returns their address.
    fn raw(&mut self, bytes: &[u8]) -> u32 {
        let at = self.end();
        self.bytes.extend_from_slice(bytes);
        at
    }

    /// Appends a string and returns its `(ptr, len)`.
    fn string(&mut self, bytes: impl AsRef<[u8]>) -> [u32; 2] {
        let bytes = bytes.as_ref();
        [self.raw(bytes), bytes.len() as u32]
    }

    /// Appends 4-aligned u32 values (a record or a u32 array) and returns their address.
    fn u32s(&mut self, values: &[u32]) -> u32 {
        self.align(4);
        let at = self.end();
        for v in values {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        at
    }

    /// Appends an 8-aligned u64 and returns its address.
    fn u64(&mut self, value: u64) -> u32 {
        self.align(8);
        self.raw(&value.to_le_bytes())
    }

    /// Appends 4-aligned records of u32 fields back to back and returns the array's address.
    fn records<const N: usize>(&mut self, records: &[[u32; N]]) -> u32 {
        self.align(4);
        let at = self.end();
        for r in records {
            self.u32s(r);
        }
        at
    }

    /// Writes a layer's name and bases; returns its record fields.
    fn layer(&mut self, name: &str, bases: &[u32], flags: u32) -> [u32; 5] {
        let [name_ptr, name_len] = self.string(name);
        let bases_ptr = self.u32s(bases);
        [name_ptr, name_len, bases_ptr, bases.len() as u32, flags]
    }

    /// Writes a test's name; returns its record fields.
    fn test(&mut self, name: impl AsRef<[u8]>, layer: u32) -> [u32; 3] {
        let [name_ptr, name_len] = self.string(name);
        [name_ptr, name_len, layer]
    }

    /// Writes the layer and test arrays and the manifest record; returns its address.
    fn manifest(&mut self, layers: &[[u32; 5]], tests: &[[u32; 3]]) -> u32 {
        let layers_ptr = self.records(layers);
        let tests_ptr = self.records(tests);
        self.u32s(&[layers_ptr, layers.len() as u32, tests_ptr, tests.len() as u32])
    }

    /// Overwrites the u32 at `addr`.
    fn poke(&mut self, addr: u32, value: u32) {
        self.bytes[addr as usize..addr as usize + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// Reads the u32 at `addr`.
    fn peek(&self, addr: u32) -> u32 {
        u32::from_le_bytes(self.bytes[addr as usize..addr as usize + 4].try_into().unwrap())
    }

    fn decode_manifest(&self, addr: u32) -> Result<Manifest, AbiError> {
        decode_manifest(&self.bytes, addr)
    }

    /// The OutOfBounds error expected for reading `len` bytes of `what` at `addr`.
    fn oob(&self, what: &str, addr: u32, len: u64) -> AbiError {
        AbiError::OutOfBounds { what: what.into(), addr, len, memory: self.bytes.len() }
    }
}

/// Layers as `(name, bases, flags)`, tests as `(name, layer)`.
type Layers<'a> = &'a [(&'a str, &'a [u32], u32)];
type Tests<'a> = &'a [(&'a str, u32)];

/// Builds a well-formed memory with these layers and tests and decodes it.
fn decode(layers: Layers, tests: Tests) -> Result<Manifest, AbiError> {
    let mut mem = Mem::new();
    let layers: Vec<_> = layers.iter().map(|&(n, b, f)| mem.layer(n, b, f)).collect();
    let tests: Vec<_> = tests.iter().map(|&(n, l)| mem.test(n, l)).collect();
    let addr = mem.manifest(&layers, &tests);
    mem.decode_manifest(addr)
}

/// A memory with one unit test whose record is `test` (after editing); returns the decoded result.
fn decode_one_test(edit: impl FnOnce(&mut Mem, &mut [u32; 3])) -> (Mem, Result<Manifest, AbiError>) {
    let mut mem = Mem::new();
    let mut test = mem.test("t", UNIT_LAYER);
    edit(&mut mem, &mut test);
    let addr = mem.manifest(&[], &[test]);
    let result = mem.decode_manifest(addr);
    (mem, result)
}

fn layer_decl(name: &str, bases: &[usize], flags: LayerFlags) -> LayerDecl {
    let (name, bases) = (name.into(), bases.to_vec());
    LayerDecl { name, bases, flags }
}

fn test_decl(name: &str, layer: Option<usize>) -> TestDecl {
    let name = name.into();
    TestDecl { name, layer }
}

/// Flags from the names of the fields that are set, e.g. `"set_up tear_down"`.
fn flags(set: &str) -> LayerFlags {
    let mut flags = LayerFlags::default();
    for word in set.split_whitespace() {
        let field = match word {
            "set_up" => &mut flags.set_up,
            "tear_down" => &mut flags.tear_down,
            "test_set_up" => &mut flags.test_set_up,
            "test_tear_down" => &mut flags.test_tear_down,
            "no_tear_down" => &mut flags.no_tear_down,
            other => panic!("no flag {other}"),
        };
        *field = true;
    }
    flags
}

// Expected errors, spelled out field by field.

fn too_many(what: &str, count: u32, limit: u32) -> AbiError {
    let what = what.into();
    AbiError::TooMany { what, count, limit }
}

fn bad_utf8(what: &str) -> AbiError {
    let what = what.into();
    AbiError::InvalidUtf8 { what }
}

fn empty_name(what: &str) -> AbiError {
    let what = what.into();
    AbiError::EmptyName { what }
}

fn unknown_flags(layer: &str, bits: u32) -> AbiError {
    let layer = layer.into();
    AbiError::UnknownFlags { layer, bits }
}

fn unknown_base(layer: &str, index: u32, count: usize) -> AbiError {
    let layer = layer.into();
    AbiError::UnknownBase { layer, index, count }
}

fn duplicate_base(layer: &str, base: &str) -> AbiError {
    let (layer, base) = (layer.into(), base.into());
    AbiError::DuplicateBase { layer, base }
}

fn cycle(names: &[&str]) -> AbiError {
    let cycle = names.iter().map(|n| n.to_string()).collect();
    AbiError::CyclicBases { cycle }
}

fn duplicate_test(layer: &str, test: &str) -> AbiError {
    let (layer, test) = (layer.into(), test.into());
    AbiError::DuplicateTest { layer, test }
}

fn unknown_test_layer(test: &str, index: u32, count: usize) -> AbiError {
    let test = test.into();
    AbiError::UnknownTestLayer { test, index, count }
}

/// Asserts that each `layers, tests => error;` case decodes to exactly that error.
macro_rules! rejects {
    ($($layers:expr, $tests:expr => $error:expr;)*) => {$({
        let (layers, tests): (Layers, Tests) = (&$layers, &$tests);
        assert_eq!(decode(layers, tests), Err($error), "layers {layers:?}, tests {tests:?}");
    })*};
}

// ---- decode_manifest: valid input ----

#[test]
fn valid_manifest_decodes() {
    let manifest = decode(
        &[
            ("pkg.Base", &[], HAS_SET_UP | HAS_TEAR_DOWN),
            // A base may come later in the array.
            ("pkg.Derived", &[0, 2], HAS_TEST_SET_UP | HAS_TEST_TEAR_DOWN),
            ("pkg.Other", &[], NO_TEAR_DOWN),
            ("pkg.OnlyABase", &[], 0),
        ],
        &[("unit_a", UNIT_LAYER), ("in_base", 0), ("in_derived", 1), ("unit_b", UNIT_LAYER), ("in_other", 2)],
    );
    let expected = Manifest {
        layers: vec![
            layer_decl("pkg.Base", &[], flags("set_up tear_down")),
            layer_decl("pkg.Derived", &[0, 2], flags("test_set_up test_tear_down")),
            layer_decl("pkg.Other", &[], flags("no_tear_down")),
            layer_decl("pkg.OnlyABase", &[], flags("")),
        ],
        tests: vec![
            test_decl("unit_a", None),
            test_decl("in_base", Some(0)),
            test_decl("in_derived", Some(1)),
            test_decl("unit_b", None),
            test_decl("in_other", Some(2)),
        ],
    };
    assert_eq!(manifest, Ok(expected));
}

#[test]
fn every_defined_flag_is_accepted() {
    let bits = HAS_SET_UP | HAS_TEAR_DOWN | HAS_TEST_SET_UP | HAS_TEST_TEAR_DOWN | NO_TEAR_DOWN;
    let manifest = decode(&[("L", &[], bits)], &[]).unwrap();
    let all = flags("set_up tear_down test_set_up test_tear_down no_tear_down");
    assert_eq!(manifest.layers[0].flags, all);
}

#[test]
fn empty_manifest_and_empty_arrays_at_the_end_of_memory() {
    assert_eq!(decode(&[], &[]), Ok(Manifest::default()));
    // An empty range is in bounds at any ptr <= memory size (docs/abi.md §2).
    let mut mem = Mem::new();
    let layer = mem.layer("L", &[], 0);
    let layers_ptr = mem.records(&[layer]);
    let addr = mem.u32s(&[layers_ptr, 1, 0, 0]);
    let end = mem.end();
    mem.poke(layers_ptr + 8, end); // bases_ptr, with bases_len 0
    mem.poke(addr + 8, end); // tests_ptr, with tests_len 0
    let decoded = mem.decode_manifest(addr).unwrap();
    assert_eq!(decoded.layers, vec![layer_decl("L", &[], flags(""))]);
    assert!(decoded.tests.is_empty());
}

#[test]
fn names_may_be_any_utf8_up_to_the_limit() {
    let long = "x".repeat(MAX_NAME_LEN as usize);
    let manifest = decode(&[("ünïcødé.Layer", &[], 0)], &[(&long, 0), ("with\0nul", 0)]).unwrap();
    assert_eq!(manifest.layers[0].name.raw(), "ünïcødé.Layer");
    assert_eq!(manifest.tests[0].name.raw(), long);
    assert_eq!(manifest.tests[1].name.raw(), "with\0nul");
}

#[test]
fn diamond_bases_are_not_a_cycle() {
    let manifest = decode(&[("D", &[1, 2], 0), ("B", &[3], 0), ("C", &[3], 0), ("A", &[], 0)], &[]).unwrap();
    assert_eq!(manifest.layers[0].bases, vec![1, 2]);
}

#[test]
fn same_test_name_in_different_layers_is_fine() {
    let manifest = decode(&[("A", &[], 0), ("B", &[], 0)], &[("t", UNIT_LAYER), ("t", 0), ("t", 1)]).unwrap();
    let layers: Vec<_> = manifest.tests.iter().map(|t| t.layer).collect();
    assert_eq!(layers, vec![None, Some(0), Some(1)]);
}

// ---- decode_manifest: bounds ----

#[test]
fn manifest_record_out_of_bounds() {
    let mem = Mem::new();
    let len = mem.end();
    for addr in [len - 4, len, u32::MAX - 3, u32::MAX] {
        assert_eq!(mem.decode_manifest(addr), Err(mem.oob("manifest", addr, 16)));
    }
    let empty = Mem { bytes: vec![] };
    assert_eq!(empty.decode_manifest(0), Err(empty.oob("manifest", 0, 16)));
}

#[test]
fn arrays_beyond_memory() {
    let mut mem = Mem::new();
    let layer = mem.layer("L", &[], 0);
    let layers_ptr = mem.records(&[layer]);
    let test = mem.test("t", UNIT_LAYER);
    let tests_ptr = mem.records(&[test]);
    // layers_len or tests_len lying, and an array pointer whose range overflows u32.
    let cases = [
        ([layers_ptr, 100, 0, 0], "layer array", layers_ptr, 100 * v1::LAYER_SIZE),
        ([0, 0, tests_ptr, 100], "test array", tests_ptr, 100 * v1::TEST_SIZE),
        ([0xFFFF_FFF0, 1, 0, 0], "layer array", 0xFFFF_FFF0, v1::LAYER_SIZE),
    ];
    for (record, what, ptr, len) in cases {
        let addr = mem.u32s(&record);
        assert_eq!(mem.decode_manifest(addr), Err(mem.oob(what, ptr, len as u64)));
    }
}

#[test]
fn name_ranges_out_of_bounds() {
    // Memory is far smaller than 0x1000; the first string is written at 8.
    let cases = [
        ([0x1000, 1], 0x1000, 1),                 // pointer beyond memory
        ([8, 200], 8, 200),                       // length beyond memory
        ([0xFFFF_FFF0, 0x20], 0xFFFF_FFF0, 0x20), // ptr + len overflows u32
        ([u32::MAX, MAX_NAME_LEN], u32::MAX, MAX_NAME_LEN),
    ];
    for ([ptr, len], addr, size) in cases {
        let (mem, result) = decode_one_test(|_, t| *t = [ptr, len, UNIT_LAYER]);
        assert_eq!(result, Err(mem.oob("name of test 0", addr, size as u64)));
    }
}

#[test]
fn layer_bases_out_of_bounds() {
    let mut mem = Mem::new();
    let mut layer = mem.layer("L", &[], 0);
    layer[2] = 0xFFFF_FFFC;
    layer[3] = 2;
    let addr = mem.manifest(&[layer], &[]);
    let expected = mem.oob("bases of layer \"L\"", 0xFFFF_FFFC, 8);
    assert_eq!(mem.decode_manifest(addr), Err(expected));
}

// ---- decode_manifest: names ----

#[test]
fn invalid_utf8_name() {
    let (_, result) = decode_one_test(|mem, t| *t = mem.test([b'a', 0xff, 0xfe], UNIT_LAYER));
    assert_eq!(result, Err(bad_utf8("name of test 0")));
    // A code point cut in the middle is invalid too.
    let (_, result) = decode_one_test(|mem, t| *t = mem.test(&"é".as_bytes()[..1], UNIT_LAYER));
    assert_eq!(result, Err(bad_utf8("name of test 0")));
}

#[test]
fn empty_names() {
    let (_, result) = decode_one_test(|_, t| t[1] = 0);
    assert_eq!(result, Err(empty_name("name of test 0")));
    rejects! {
        [("A", &[], 0), ("", &[], 0)], [] => empty_name("name of layer 1");
    }
}

#[test]
fn name_longer_than_the_limit() {
    let long = "x".repeat(MAX_NAME_LEN as usize + 1);
    let expected = AbiError::NameTooLong { what: "name of test 0".into(), len: MAX_NAME_LEN + 1, limit: MAX_NAME_LEN };
    assert_eq!(decode(&[], &[(&long, UNIT_LAYER)]), Err(expected));
}

#[test]
fn layer_and_test_names_must_be_unique() {
    rejects! {
        [(UNIT_LAYER_NAME, &[], 0)], [] => AbiError::ReservedLayerName("UnitTests".into());
        [("A", &[], 0), ("B", &[], 0), ("A", &[], 0)], [] => AbiError::DuplicateLayer("A".into());
        [("A", &[], 0)], [("t", 0), ("u", UNIT_LAYER), ("t", 0)] => duplicate_test("A", "t");
        [], [("t", UNIT_LAYER), ("t", UNIT_LAYER)] => duplicate_test("UnitTests", "t");
    }
}

// ---- decode_manifest: flags, bases, layers of tests ----

#[test]
fn unknown_flag_bits() {
    rejects! {
        [("L", &[], HAS_SET_UP | 0x20 | 0x8000_0000)], [] => unknown_flags("L", 0x8000_0020);
        [("L", &[], 0xFFFF_FFFF)], [] => unknown_flags("L", !0x1F);
    }
}

#[test]
fn bad_bases() {
    rejects! {
        [("A", &[], 0), ("B", &[0, 2], 0)], [] => unknown_base("B", 2, 2);
        [("A", &[u32::MAX], 0)], [] => unknown_base("A", u32::MAX, 1);
        [("A", &[], 0), ("B", &[0, 0], 0)], [] => duplicate_base("B", "A");
    }
}

#[test]
fn cyclic_bases() {
    rejects! {
        [("A", &[0], 0)], [] => cycle(&["A", "A"]);
        [("Root", &[], 0), ("A", &[2, 0], 0), ("B", &[3], 0), ("C", &[1], 0)], [] => cycle(&["A", "B", "C", "A"]);
        // Entered from a layer outside the cycle, the cycle alone is reported.
        [("Top", &[1], 0), ("A", &[2], 0), ("B", &[3], 0), ("C", &[1], 0)], [] => cycle(&["A", "B", "C", "A"]);
    }
}

#[test]
fn test_layer_index_out_of_range() {
    rejects! {
        [("A", &[], 0)], [("t", 1)] => unknown_test_layer("t", 1, 1);
        [], [("t", u32::MAX - 1)] => unknown_test_layer("t", u32::MAX - 1, 0);
    }
}

// ---- decode_manifest: limits, without allocating what the guest claims ----

#[test]
fn too_many_layers_or_tests() {
    let mut mem = Mem::new();
    let addr = mem.u32s(&[0, MAX_LAYERS + 1, 0, 0]);
    assert_eq!(mem.decode_manifest(addr), Err(too_many("layer", MAX_LAYERS + 1, MAX_LAYERS)));
    let addr = mem.u32s(&[0, 0, 0, MAX_TESTS + 1]);
    assert_eq!(mem.decode_manifest(addr), Err(too_many("test", MAX_TESTS + 1, MAX_TESTS)));
    let addr = mem.u32s(&[0, u32::MAX, 0, u32::MAX]);
    assert_eq!(mem.decode_manifest(addr), Err(too_many("layer", u32::MAX, MAX_LAYERS)));
    // At the limit the count is accepted and the (small) memory is what fails.
    let addr = mem.u32s(&[4, MAX_LAYERS, 0, 0]);
    let expected = mem.oob("layer array", 4, MAX_LAYERS as u64 * v1::LAYER_SIZE as u64);
    assert_eq!(mem.decode_manifest(addr), Err(expected));
}

#[test]
fn too_many_bases() {
    let mut mem = Mem::new();
    let mut layer = mem.layer("L", &[], 0);
    layer[3] = MAX_BASES + 1;
    let addr = mem.manifest(&[layer], &[]);
    let expected = too_many("base of layer \"L\"", MAX_BASES + 1, MAX_BASES);
    assert_eq!(mem.decode_manifest(addr), Err(expected));
}

// ---- decode_status ----

/// A memory with a status record; returns it and the record's address.
fn status_mem(kind: u32, message: &[u8]) -> (Mem, u32) {
    let mut mem = Mem::new();
    let [ptr, len] = mem.string(message);
    let addr = mem.u32s(&[kind, ptr, len]);
    (mem, addr)
}

fn status(kind: Option<u32>, message: &str) -> Result<Status, AbiError> {
    let message = message.into();
    Ok(Status { kind, message })
}

#[test]
fn status_none_ignores_the_message() {
    let mut mem = Mem::new();
    // The message fields are garbage: they are not read when kind is STATUS_NONE.
    let addr = mem.u32s(&[v1::STATUS_NONE, 0xFFFF_FFF0, 0xFFFF_FFFF]);
    assert_eq!(decode_status(&mem.bytes, addr), status(None, ""));
}

#[test]
fn status_with_a_message() {
    let cases: [(u32, &[u8], &str); 3] = [
        (outcome::FAILURE, b"assertion failed: 1 == 2", "assertion failed: 1 == 2"),
        (outcome::SKIP, b"", ""),
        // Invalid UTF-8 is replaced, not rejected.
        (outcome::ERROR, b"bad \xff\xfe end", "bad \u{FFFD}\u{FFFD} end"),
    ];
    for (kind, raw, message) in cases {
        let (mem, addr) = status_mem(kind, raw);
        assert_eq!(decode_status(&mem.bytes, addr), status(Some(kind), message));
    }
}

#[test]
fn status_message_is_cut_to_the_limit() {
    let long = vec![b'm'; MAX_MESSAGE_LEN as usize + 100];
    let (mem, addr) = status_mem(outcome::ERROR, &long);
    let message = decode_status(&mem.bytes, addr).unwrap().message;
    assert_eq!(message.len(), MAX_MESSAGE_LEN as usize);
    assert!(message.bytes().all(|b| b == b'm'));
}

#[test]
fn status_out_of_bounds() {
    let mut mem = Mem::new();
    for (ptr, len) in [(0x10_0000, 5), (0xFFFF_FFF0, 0x20)] {
        let addr = mem.u32s(&[outcome::FAILURE, ptr, len]);
        assert_eq!(decode_status(&mem.bytes, addr), Err(mem.oob("status message", ptr, len as u64)));
    }
    let end = mem.end();
    for addr in [end - 8, end, u32::MAX] {
        assert_eq!(decode_status(&mem.bytes, addr), Err(mem.oob("status record", addr, 12)));
    }
}

// ---- decode_counters ----

/// A memory with a counters record and its rows (type rows as `(name, instances, bytes)`,
/// user rows as `(name, value)`); returns it and the record's address.
fn counters_mem(totals: [u64; 3], types: &[(&str, i64, i64)], user: &[(&str, i64)]) -> (Mem, u32) {
    let mut mem = Mem::new();
    let type_names: Vec<_> = types.iter().map(|t| mem.string(t.0)).collect();
    let user_names: Vec<_> = user.iter().map(|u| mem.string(u.0)).collect();
    mem.align(8);
    let types_ptr = mem.end();
    for (&[ptr, len], &(_, instances, bytes)) in type_names.iter().zip(types) {
        mem.u32s(&[ptr, len]);
        mem.u64(instances as u64);
        mem.u64(bytes as u64);
    }
    let user_ptr = mem.end();
    for (&[ptr, len], &(_, value)) in user_names.iter().zip(user) {
        mem.u32s(&[ptr, len]);
        mem.u64(value as u64);
    }
    let addr = mem.u64(totals[0]);
    mem.u64(totals[1]);
    mem.u64(totals[2]);
    mem.u32s(&[types_ptr, types.len() as u32, user_ptr, user.len() as u32]);
    (mem, addr)
}

fn type_count(name: &str, instances: i64, bytes: i64) -> TypeCount {
    let name = name.into();
    TypeCount { name, instances, bytes }
}

#[test]
fn counters_decode_and_sort() {
    let types = [("zeta::Z", 2, 48), ("alpha::A", -1, -16), ("mid::M", i64::MIN, i64::MAX)];
    let (mem, addr) = counters_mem([3, u64::MAX, 1 << 40], &types, &[("open files", 7), ("connections", -3)]);
    let expected = Counters {
        live_blocks: 3,
        live_bytes: u64::MAX,
        total_allocs: 1 << 40,
        types: vec![
            type_count("alpha::A", -1, -16),
            type_count("mid::M", i64::MIN, i64::MAX),
            type_count("zeta::Z", 2, 48),
        ],
        user: vec![("connections".into(), -3), ("open files".into(), 7)],
    };
    assert_eq!(decode_counters(&mem.bytes, addr), Ok(expected));
    let (mem, addr) = counters_mem([0, 0, 0], &[], &[]);
    assert_eq!(decode_counters(&mem.bytes, addr), Ok(Counters::default()));
}

#[test]
fn counters_record_out_of_bounds() {
    let (mem, _) = counters_mem([0, 0, 0], &[], &[]);
    let len = mem.end();
    // The totals fit, the row fields do not: the whole 40-byte record is checked at once.
    assert_eq!(decode_counters(&mem.bytes, len - 24), Err(mem.oob("counters record", len - 24, 40)));
    for addr in [len, u32::MAX - 3] {
        assert_eq!(decode_counters(&mem.bytes, addr), Err(mem.oob("counters record", addr, 40)));
    }
}

#[test]
fn counter_rows_out_of_bounds() {
    // The type row array runs past the end of memory.
    let (mut mem, addr) = counters_mem([0, 0, 0], &[("T", 1, 8)], &[]);
    mem.poke(addr + 28, 50);
    let expected = mem.oob("type counter array", mem.peek(addr + 24), 50 * v1::TYPE_COUNTER_SIZE as u64);
    assert_eq!(decode_counters(&mem.bytes, addr), Err(expected));
    // The user row array starts beyond memory.
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[("u", 1)]);
    mem.poke(addr + 32, 0xFFFF_FFF8);
    let expected = mem.oob("user counter array", 0xFFFF_FFF8, v1::USER_COUNTER_SIZE as u64);
    assert_eq!(decode_counters(&mem.bytes, addr), Err(expected));
    // A row's name lies outside memory.
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[("u", 1)]);
    let row = mem.peek(addr + 32);
    mem.poke(row, 0xFFFF_FFF0);
    mem.poke(row + 4, 0x20);
    let expected = mem.oob("name of user counter 0", 0xFFFF_FFF0, 0x20);
    assert_eq!(decode_counters(&mem.bytes, addr), Err(expected));
}

#[test]
fn counter_name_invalid_utf8() {
    let mut mem = Mem::new();
    let [ptr, len] = mem.string(b"\xc3(");
    let rows = mem.u32s(&[ptr, len, 0, 0]);
    let addr = mem.u32s(&[0; 6]);
    mem.u32s(&[0, 0, rows, 1]);
    assert_eq!(decode_counters(&mem.bytes, addr), Err(bad_utf8("name of user counter 0")));
}

#[test]
fn too_many_counter_rows() {
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[]);
    mem.poke(addr + 28, MAX_COUNTER_ROWS + 1);
    let expected = too_many("type counter", MAX_COUNTER_ROWS + 1, MAX_COUNTER_ROWS);
    assert_eq!(decode_counters(&mem.bytes, addr), Err(expected));
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[]);
    mem.poke(addr + 36, u32::MAX);
    let expected = too_many("user counter", u32::MAX, MAX_COUNTER_ROWS);
    assert_eq!(decode_counters(&mem.bytes, addr), Err(expected));
}

/// docs/abi.md §6 says counter names SHOULD be non-empty, and §7.6 requires non-empty names
/// only of layers and tests, so a snapshot with an empty counter name is valid ABI v1.
#[test]
fn empty_counter_name_is_valid_abi() {
    let (mem, addr) = counters_mem([0, 0, 0], &[("", 1, 8)], &[("", 2)]);
    let counters = decode_counters(&mem.bytes, addr).expect("docs/abi.md allows an empty counter name");
    assert_eq!(counters.types, vec![type_count("", 1, 8)]);
    assert_eq!(counters.user, vec![("".into(), 2)]);
}

mod snapshot_bounds;
