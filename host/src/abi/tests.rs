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
        while self.bytes.len() % to != 0 {
            self.bytes.push(0);
        }
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
        AbiError::OutOfBounds {
            what: what.into(),
            addr,
            len,
            memory: self.bytes.len(),
        }
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
    LayerDecl {
        name: name.into(),
        bases: bases.to_vec(),
        flags,
    }
}

fn test_decl(name: &str, layer: Option<usize>) -> TestDecl {
    TestDecl {
        name: name.into(),
        layer,
    }
}

fn cycle(names: &[&str]) -> AbiError {
    AbiError::CyclicBases {
        cycle: names.iter().map(|n| n.to_string()).collect(),
    }
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
        &[
            ("unit_a", UNIT_LAYER),
            ("in_base", 0),
            ("in_derived", 1),
            ("unit_b", UNIT_LAYER),
            ("in_other", 2),
        ],
    )
    .unwrap();
    let none = LayerFlags::default();
    assert_eq!(
        manifest,
        Manifest {
            layers: vec![
                layer_decl(
                    "pkg.Base",
                    &[],
                    LayerFlags {
                        set_up: true,
                        tear_down: true,
                        ..none
                    }
                ),
                layer_decl(
                    "pkg.Derived",
                    &[0, 2],
                    LayerFlags {
                        test_set_up: true,
                        test_tear_down: true,
                        ..none
                    }
                ),
                layer_decl(
                    "pkg.Other",
                    &[],
                    LayerFlags {
                        no_tear_down: true,
                        ..none
                    }
                ),
                layer_decl("pkg.OnlyABase", &[], none),
            ],
            tests: vec![
                test_decl("unit_a", None),
                test_decl("in_base", Some(0)),
                test_decl("in_derived", Some(1)),
                test_decl("unit_b", None),
                test_decl("in_other", Some(2)),
            ],
        }
    );
}

#[test]
fn every_defined_flag_is_accepted() {
    let manifest = decode(&[("L", &[], layer_flags_all())], &[]).unwrap();
    let all = LayerFlags {
        set_up: true,
        tear_down: true,
        test_set_up: true,
        test_tear_down: true,
        no_tear_down: true,
    };
    assert_eq!(manifest.layers[0].flags, all);
}

fn layer_flags_all() -> u32 {
    HAS_SET_UP | HAS_TEAR_DOWN | HAS_TEST_SET_UP | HAS_TEST_TEAR_DOWN | NO_TEAR_DOWN
}

#[test]
fn empty_manifest_and_empty_arrays_at_the_end_of_memory() {
    assert_eq!(decode(&[], &[]).unwrap(), Manifest::default());
    // An empty range is in bounds at any ptr <= memory size (docs/abi.md §2).
    let mut mem = Mem::new();
    let layer = mem.layer("L", &[], 0);
    let layers_ptr = mem.records(&[layer]);
    let addr = mem.u32s(&[layers_ptr, 1, 0, 0]);
    let end = mem.end();
    mem.poke(layers_ptr + 8, end); // bases_ptr, with bases_len 0
    mem.poke(addr + 8, end); // tests_ptr, with tests_len 0
    let decoded = mem.decode_manifest(addr).unwrap();
    assert_eq!(decoded.layers, vec![layer_decl("L", &[], LayerFlags::default())]);
    assert!(decoded.tests.is_empty());
}

#[test]
fn names_may_be_any_utf8_up_to_the_limit() {
    let long = "x".repeat(MAX_NAME_LEN as usize);
    let manifest = decode(&[("ünïcødé.Layer", &[], 0)], &[(&long, 0), ("with\0nul", 0)]).unwrap();
    assert_eq!(manifest.layers[0].name, "ünïcødé.Layer");
    assert_eq!(manifest.tests[0].name, long);
    assert_eq!(manifest.tests[1].name, "with\0nul");
}

#[test]
fn diamond_bases_are_not_a_cycle() {
    let manifest = decode(&[("D", &[1, 2], 0), ("B", &[3], 0), ("C", &[3], 0), ("A", &[], 0)], &[]).unwrap();
    assert_eq!(manifest.layers[0].bases, vec![1, 2]);
}

#[test]
fn same_test_name_in_different_layers_is_fine() {
    let manifest = decode(
        &[("A", &[], 0), ("B", &[], 0)],
        &[("t", UNIT_LAYER), ("t", 0), ("t", 1)],
    )
    .unwrap();
    assert_eq!(manifest.tests.len(), 3);
}

// ---- decode_manifest: bounds ----

#[test]
fn manifest_record_out_of_bounds() {
    let mem = Mem::new();
    let len = mem.bytes.len() as u32;
    assert_eq!(mem.decode_manifest(len - 4), Err(mem.oob("manifest", len - 4, 16)));
    assert_eq!(mem.decode_manifest(len), Err(mem.oob("manifest", len, 16)));
    assert_eq!(
        mem.decode_manifest(u32::MAX - 3),
        Err(mem.oob("manifest", u32::MAX - 3, 16))
    );
    assert_eq!(
        decode_manifest(&[], 0),
        Err(AbiError::OutOfBounds {
            what: "manifest".into(),
            addr: 0,
            len: 16,
            memory: 0
        })
    );
}

#[test]
fn layers_len_lying_past_the_end_of_memory() {
    let mut mem = Mem::new();
    let layer = mem.layer("L", &[], 0);
    let layers_ptr = mem.records(&[layer]);
    let addr = mem.u32s(&[layers_ptr, 100, 0, 0]);
    assert_eq!(
        mem.decode_manifest(addr),
        Err(mem.oob("layer array", layers_ptr, 100 * v1::LAYER_SIZE as u64))
    );
}

#[test]
fn tests_len_lying_past_the_end_of_memory() {
    let mut mem = Mem::new();
    let test = mem.test("t", UNIT_LAYER);
    let tests_ptr = mem.records(&[test]);
    let addr = mem.u32s(&[0, 0, tests_ptr, 3]);
    assert_eq!(
        mem.decode_manifest(addr),
        Err(mem.oob("test array", tests_ptr, 3 * v1::TEST_SIZE as u64))
    );
}

#[test]
fn array_pointer_overflowing_u32() {
    let mut mem = Mem::new();
    let addr = mem.u32s(&[0xFFFF_FFF0, 1, 0, 0]);
    assert_eq!(
        mem.decode_manifest(addr),
        Err(mem.oob("layer array", 0xFFFF_FFF0, v1::LAYER_SIZE as u64))
    );
}

#[test]
fn name_pointer_out_of_bounds() {
    let (mem, result) = decode_one_test(|_, t| t[0] = 0x1000);
    assert!(mem.bytes.len() < 0x1000);
    assert_eq!(result, Err(mem.oob("name of test 0", 0x1000, 1)));
}

#[test]
fn name_length_beyond_memory() {
    let (mem, result) = decode_one_test(|_, t| t[1] = 200);
    let ptr = 8; // the first string written after the 8 reserved bytes
    assert_eq!(result, Err(mem.oob("name of test 0", ptr, 200)));
}

#[test]
fn name_range_overflowing_u32_is_out_of_bounds() {
    let (mem, result) = decode_one_test(|_, t| *t = [0xFFFF_FFF0, 0x20, UNIT_LAYER]);
    assert_eq!(result, Err(mem.oob("name of test 0", 0xFFFF_FFF0, 0x20)));
    let (mem, result) = decode_one_test(|_, t| *t = [u32::MAX, MAX_NAME_LEN, UNIT_LAYER]);
    assert_eq!(result, Err(mem.oob("name of test 0", u32::MAX, MAX_NAME_LEN as u64)));
}

#[test]
fn layer_bases_out_of_bounds() {
    let mut mem = Mem::new();
    let mut layer = mem.layer("L", &[], 0);
    layer[2] = 0xFFFF_FFFC;
    layer[3] = 2;
    let addr = mem.manifest(&[layer], &[]);
    assert_eq!(
        mem.decode_manifest(addr),
        Err(mem.oob("bases of layer \"L\"", 0xFFFF_FFFC, 8))
    );
}

// ---- decode_manifest: names ----

#[test]
fn invalid_utf8_name() {
    let (_, result) = decode_one_test(|mem, t| *t = mem.test([b'a', 0xff, 0xfe], UNIT_LAYER));
    assert_eq!(
        result,
        Err(AbiError::InvalidUtf8 {
            what: "name of test 0".into()
        })
    );
    // A code point cut in the middle is invalid too.
    let (_, result) = decode_one_test(|mem, t| *t = mem.test(&"é".as_bytes()[..1], UNIT_LAYER));
    assert_eq!(
        result,
        Err(AbiError::InvalidUtf8 {
            what: "name of test 0".into()
        })
    );
}

#[test]
fn empty_names() {
    let (_, result) = decode_one_test(|_, t| t[1] = 0);
    assert_eq!(
        result,
        Err(AbiError::EmptyName {
            what: "name of test 0".into()
        })
    );
    assert_eq!(
        decode(&[("A", &[], 0), ("", &[], 0)], &[]),
        Err(AbiError::EmptyName {
            what: "name of layer 1".into()
        })
    );
}

#[test]
fn name_longer_than_the_limit() {
    let long = "x".repeat(MAX_NAME_LEN as usize + 1);
    assert_eq!(
        decode(&[], &[(&long, UNIT_LAYER)]),
        Err(AbiError::TooMany {
            what: "name of test 0 length".into(),
            count: MAX_NAME_LEN + 1,
            limit: MAX_NAME_LEN,
        })
    );
}

#[test]
fn reserved_layer_name() {
    assert_eq!(
        decode(&[(UNIT_LAYER_NAME, &[], 0)], &[]),
        Err(AbiError::ReservedLayerName("UnitTests".into()))
    );
}

#[test]
fn duplicate_layer_names() {
    assert_eq!(
        decode(&[("A", &[], 0), ("B", &[], 0), ("A", &[], 0)], &[]),
        Err(AbiError::DuplicateLayer("A".into()))
    );
}

#[test]
fn duplicate_test_names_in_one_layer() {
    assert_eq!(
        decode(&[("A", &[], 0)], &[("t", 0), ("u", UNIT_LAYER), ("t", 0)]),
        Err(AbiError::DuplicateTest {
            layer: "A".into(),
            test: "t".into()
        })
    );
    assert_eq!(
        decode(&[], &[("t", UNIT_LAYER), ("t", UNIT_LAYER)]),
        Err(AbiError::DuplicateTest {
            layer: "UnitTests".into(),
            test: "t".into()
        })
    );
}

// ---- decode_manifest: flags, bases, layers of tests ----

#[test]
fn unknown_flag_bits() {
    assert_eq!(
        decode(&[("L", &[], HAS_SET_UP | 0x20 | 0x8000_0000)], &[]),
        Err(AbiError::UnknownFlags {
            layer: "L".into(),
            bits: 0x8000_0020
        })
    );
}

#[test]
fn base_index_out_of_range() {
    assert_eq!(
        decode(&[("A", &[], 0), ("B", &[0, 2], 0)], &[]),
        Err(AbiError::UnknownBase {
            layer: "B".into(),
            index: 2,
            count: 2
        })
    );
    assert_eq!(
        decode(&[("A", &[u32::MAX], 0)], &[]),
        Err(AbiError::UnknownBase {
            layer: "A".into(),
            index: u32::MAX,
            count: 1
        })
    );
}

#[test]
fn duplicate_base() {
    assert_eq!(
        decode(&[("A", &[], 0), ("B", &[0, 0], 0)], &[]),
        Err(AbiError::DuplicateBase {
            layer: "B".into(),
            base: "A".into()
        })
    );
}

#[test]
fn self_cycle() {
    assert_eq!(decode(&[("A", &[0], 0)], &[]), Err(cycle(&["A", "A"])));
}

#[test]
fn three_cycle() {
    let result = decode(
        &[("Root", &[], 0), ("A", &[2, 0], 0), ("B", &[3], 0), ("C", &[1], 0)],
        &[],
    );
    assert_eq!(result, Err(cycle(&["A", "B", "C", "A"])));
    // Entered from a layer outside the cycle, the cycle alone is reported.
    let result = decode(&[("Top", &[1], 0), ("A", &[2], 0), ("B", &[3], 0), ("C", &[1], 0)], &[]);
    assert_eq!(result, Err(cycle(&["A", "B", "C", "A"])));
}

#[test]
fn test_layer_index_out_of_range() {
    assert_eq!(
        decode(&[("A", &[], 0)], &[("t", 1)]),
        Err(AbiError::UnknownTestLayer {
            test: "t".into(),
            index: 1,
            count: 1
        })
    );
    assert_eq!(
        decode(&[], &[("t", u32::MAX - 1)]),
        Err(AbiError::UnknownTestLayer {
            test: "t".into(),
            index: u32::MAX - 1,
            count: 0
        })
    );
}

// ---- decode_manifest: limits, without allocating what the guest claims ----

#[test]
fn too_many_layers_or_tests() {
    let mut mem = Mem::new();
    let addr = mem.u32s(&[0, MAX_LAYERS + 1, 0, 0]);
    assert_eq!(
        mem.decode_manifest(addr),
        Err(AbiError::TooMany {
            what: "layer".into(),
            count: MAX_LAYERS + 1,
            limit: MAX_LAYERS
        })
    );
    let addr = mem.u32s(&[0, 0, 0, MAX_TESTS + 1]);
    assert_eq!(
        mem.decode_manifest(addr),
        Err(AbiError::TooMany {
            what: "test".into(),
            count: MAX_TESTS + 1,
            limit: MAX_TESTS
        })
    );
    let addr = mem.u32s(&[0, u32::MAX, 0, u32::MAX]);
    assert!(matches!(mem.decode_manifest(addr), Err(AbiError::TooMany { .. })));
    // At the limit the count is accepted and the (small) memory is what fails.
    let addr = mem.u32s(&[0, MAX_LAYERS, 0, 0]);
    assert!(matches!(mem.decode_manifest(addr), Err(AbiError::OutOfBounds { .. })));
}

#[test]
fn too_many_bases() {
    let mut mem = Mem::new();
    let mut layer = mem.layer("L", &[], 0);
    layer[3] = MAX_BASES + 1;
    let addr = mem.manifest(&[layer], &[]);
    assert_eq!(
        mem.decode_manifest(addr),
        Err(AbiError::TooMany {
            what: "base of layer \"L\"".into(),
            count: MAX_BASES + 1,
            limit: MAX_BASES,
        })
    );
}

// ---- decode_status ----

fn status_mem(kind: u32, message: &[u8]) -> (Mem, u32) {
    let mut mem = Mem::new();
    let [ptr, len] = mem.string(message);
    let addr = mem.u32s(&[kind, ptr, len]);
    (mem, addr)
}

#[test]
fn status_none_ignores_the_message() {
    let mut mem = Mem::new();
    // The message fields are garbage: they are not read when kind is STATUS_NONE.
    let addr = mem.u32s(&[v1::STATUS_NONE, 0xFFFF_FFF0, 0xFFFF_FFFF]);
    assert_eq!(
        decode_status(&mem.bytes, addr),
        Ok(Status {
            kind: None,
            message: String::new()
        })
    );
}

#[test]
fn status_with_a_message() {
    let (mem, addr) = status_mem(outcome::FAILURE, b"assertion failed: 1 == 2");
    assert_eq!(
        decode_status(&mem.bytes, addr),
        Ok(Status {
            kind: Some(outcome::FAILURE),
            message: "assertion failed: 1 == 2".into()
        })
    );
    let (mem, addr) = status_mem(outcome::SKIP, b"");
    assert_eq!(
        decode_status(&mem.bytes, addr),
        Ok(Status {
            kind: Some(outcome::SKIP),
            message: String::new()
        })
    );
}

#[test]
fn status_message_invalid_utf8_is_replaced() {
    let (mem, addr) = status_mem(outcome::ERROR, b"bad \xff\xfe end");
    assert_eq!(
        decode_status(&mem.bytes, addr).unwrap().message,
        "bad \u{FFFD}\u{FFFD} end"
    );
}

#[test]
fn status_message_is_cut_to_the_limit() {
    let long = vec![b'm'; MAX_MESSAGE_LEN as usize + 100];
    let (mem, addr) = status_mem(outcome::ERROR, &long);
    let status = decode_status(&mem.bytes, addr).unwrap();
    assert_eq!(status.message.len(), MAX_MESSAGE_LEN as usize);
    assert!(status.message.bytes().all(|b| b == b'm'));
}

#[test]
fn status_out_of_bounds() {
    let mut mem = Mem::new();
    let addr = mem.u32s(&[outcome::FAILURE, 0x10_0000, 5]);
    assert_eq!(
        decode_status(&mem.bytes, addr),
        Err(mem.oob("status message", 0x10_0000, 5))
    );
    let addr = mem.u32s(&[outcome::FAILURE, 0xFFFF_FFF0, 0x20]);
    assert_eq!(
        decode_status(&mem.bytes, addr),
        Err(mem.oob("status message", 0xFFFF_FFF0, 0x20))
    );
    let end = mem.end();
    assert_eq!(
        decode_status(&mem.bytes, end - 8),
        Err(mem.oob("status record", end - 8, 12))
    );
    assert!(decode_status(&mem.bytes, u32::MAX).is_err());
}

// ---- decode_counters ----

/// Type rows as `(name, instances, bytes)`, user rows as `(name, value)`.
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

#[test]
fn counters_decode_and_sort() {
    let (mem, addr) = counters_mem(
        [3, u64::MAX, 1 << 40],
        &[
            ("zeta::Z", 2, 48),
            ("alpha::A", -1, -16),
            ("mid::M", i64::MIN, i64::MAX),
        ],
        &[("open files", 7), ("connections", -3)],
    );
    assert_eq!(
        decode_counters(&mem.bytes, addr),
        Ok(Counters {
            live_blocks: 3,
            live_bytes: u64::MAX,
            total_allocs: 1 << 40,
            types: vec![
                TypeCount {
                    name: "alpha::A".into(),
                    instances: -1,
                    bytes: -16
                },
                TypeCount {
                    name: "mid::M".into(),
                    instances: i64::MIN,
                    bytes: i64::MAX
                },
                TypeCount {
                    name: "zeta::Z".into(),
                    instances: 2,
                    bytes: 48
                },
            ],
            user: vec![("connections".into(), -3), ("open files".into(), 7)],
        })
    );
}

#[test]
fn counters_without_rows() {
    let (mem, addr) = counters_mem([0, 0, 0], &[], &[]);
    assert_eq!(decode_counters(&mem.bytes, addr), Ok(Counters::default()));
}

#[test]
fn counters_record_out_of_bounds() {
    let (mem, _) = counters_mem([0, 0, 0], &[], &[]);
    let len = mem.end();
    assert!(matches!(
        decode_counters(&mem.bytes, len - 16),
        Err(AbiError::OutOfBounds { .. })
    ));
    assert_eq!(
        decode_counters(&mem.bytes, len),
        Err(mem.oob("counters record", len, 8))
    );
    assert_eq!(
        decode_counters(&mem.bytes, u32::MAX - 3),
        Err(mem.oob("counters record", u32::MAX - 3, 8))
    );
}

#[test]
fn counter_rows_out_of_bounds() {
    // The type row array runs past the end of memory.
    let (mut mem, addr) = counters_mem([0, 0, 0], &[("T", 1, 8)], &[]);
    mem.poke(addr + 28, 50);
    let types_ptr = mem.peek(addr + 24);
    assert_eq!(
        decode_counters(&mem.bytes, addr),
        Err(mem.oob("type counter array", types_ptr, 50 * v1::TYPE_COUNTER_SIZE as u64))
    );
    // The user row array starts beyond memory.
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[("u", 1)]);
    mem.poke(addr + 32, 0xFFFF_FFF8);
    assert_eq!(
        decode_counters(&mem.bytes, addr),
        Err(mem.oob("user counter array", 0xFFFF_FFF8, v1::USER_COUNTER_SIZE as u64))
    );
    // A row's name lies outside memory.
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[("u", 1)]);
    let user_ptr = mem.peek(addr + 32);
    mem.poke(user_ptr, 0xFFFF_FFF0);
    mem.poke(user_ptr + 4, 0x20);
    assert_eq!(
        decode_counters(&mem.bytes, addr),
        Err(mem.oob("name of user counter 0", 0xFFFF_FFF0, 0x20))
    );
}

#[test]
fn counter_name_invalid_utf8() {
    let mut mem = Mem::new();
    let [ptr, len] = mem.string(b"\xc3(");
    let rows = mem.u32s(&[ptr, len, 0, 0]);
    let addr = mem.u32s(&[0; 6]);
    mem.u32s(&[0, 0, rows, 1]);
    assert_eq!(
        decode_counters(&mem.bytes, addr),
        Err(AbiError::InvalidUtf8 {
            what: "name of user counter 0".into()
        })
    );
}

#[test]
fn too_many_counter_rows() {
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[]);
    mem.poke(addr + 28, MAX_COUNTER_ROWS + 1);
    assert_eq!(
        decode_counters(&mem.bytes, addr),
        Err(AbiError::TooMany {
            what: "type counter".into(),
            count: MAX_COUNTER_ROWS + 1,
            limit: MAX_COUNTER_ROWS,
        })
    );
    let (mut mem, addr) = counters_mem([0, 0, 0], &[], &[]);
    mem.poke(addr + 36, u32::MAX);
    assert_eq!(
        decode_counters(&mem.bytes, addr),
        Err(AbiError::TooMany {
            what: "user counter".into(),
            count: u32::MAX,
            limit: MAX_COUNTER_ROWS
        })
    );
}

/// docs/abi.md §6 says counter names SHOULD be non-empty and §7.6 requires non-empty names
/// only of layers and tests, so a snapshot with an empty counter name is valid ABI v1.
#[test]
fn empty_counter_name_is_valid_abi() {
    let (mem, addr) = counters_mem([0, 0, 0], &[("", 1, 8)], &[("", 2)]);
    let counters = decode_counters(&mem.bytes, addr).expect("an empty counter name is allowed by docs/abi.md");
    assert_eq!(counters.types[0].name, "");
    assert_eq!(counters.user, vec![(String::new(), 2)]);
}
