//! The implementation behind the exports that [`suite!`](crate::suite) generates.
//!
//! Not part of the public API: suite authors never call these directly. Every
//! record the host reads lives in a static, so its address is stable for the
//! instance's life and reading it after a trap is safe.

use std::cell::OnceCell;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::abi::{self, outcome, UNIT_LAYER};
use crate::outcome::{settle, TestError, TestResult};
use crate::suite::{Body, Layer, Suite};
use crate::track::{MAX_TRACKED_TYPES, MAX_USER_COUNTERS, TYPES, USER_COUNTERS};

#[repr(C)]
#[derive(Clone, Copy)]
struct StrRecord {
    ptr: u32,
    len: u32,
}

#[repr(C)]
struct ManifestRecord {
    layers_ptr: u32,
    layers_len: u32,
    tests_ptr: u32,
    tests_len: u32,
}

#[repr(C)]
struct LayerRecord {
    name: StrRecord,
    bases_ptr: u32,
    bases_len: u32,
    flags: u32,
}

#[repr(C)]
struct TestRecord {
    name: StrRecord,
    layer: u32,
}

#[repr(C)]
struct StatusRecord {
    kind: u32,
    message: StrRecord,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct TypeCounterRecord {
    name: StrRecord,
    instances: i64,
    bytes: i64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct UserCounterRecord {
    name: StrRecord,
    value: i64,
}

#[repr(C)]
struct CountersRecord {
    live_blocks: u64,
    live_bytes: u64,
    total_allocs: u64,
    types_ptr: u32,
    types_len: u32,
    user_ptr: u32,
    user_len: u32,
}

// The layouts above are the ABI; these fail the build if one drifts from abi.rs.
const _: () = {
    assert!(size_of::<ManifestRecord>() == abi::MANIFEST_SIZE as usize);
    assert!(size_of::<LayerRecord>() == abi::LAYER_SIZE as usize);
    assert!(size_of::<TestRecord>() == abi::TEST_SIZE as usize);
    assert!(size_of::<StatusRecord>() == abi::STATUS_SIZE as usize);
    assert!(size_of::<CountersRecord>() == abi::COUNTERS_SIZE as usize);
    assert!(size_of::<TypeCounterRecord>() == abi::TYPE_COUNTER_SIZE as usize);
    assert!(size_of::<UserCounterRecord>() == abi::USER_COUNTER_SIZE as usize);
};

/// Messages longer than this are cut; the buffer is static so a panic never needs to allocate.
const MESSAGE_CAPACITY: usize = 4096;

static MESSAGE: Mutex<[u8; MESSAGE_CAPACITY]> = Mutex::new([0; MESSAGE_CAPACITY]);
static STATUS: Mutex<StatusRecord> =
    Mutex::new(StatusRecord { kind: abi::STATUS_NONE, message: StrRecord { ptr: 0, len: 0 } });
static COUNTERS: Mutex<CountersRecord> = Mutex::new(CountersRecord {
    live_blocks: 0,
    live_bytes: 0,
    total_allocs: 0,
    types_ptr: 0,
    types_len: 0,
    user_ptr: 0,
    user_len: 0,
});
const EMPTY_STR: StrRecord = StrRecord { ptr: 0, len: 0 };
static TYPE_ROWS: Mutex<[TypeCounterRecord; MAX_TRACKED_TYPES]> =
    Mutex::new([TypeCounterRecord { name: EMPTY_STR, instances: 0, bytes: 0 }; MAX_TRACKED_TYPES]);
static USER_ROWS: Mutex<[UserCounterRecord; MAX_USER_COUNTERS]> =
    Mutex::new([UserCounterRecord { name: EMPTY_STR, value: 0 }; MAX_USER_COUNTERS]);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while a lock is held aborts the instance, so poisoning never matters.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Guest addresses are 32-bit; on a 64-bit test build they are only placeholders.
fn addr<T: ?Sized>(p: *const T) -> u32 {
    p as *const u8 as usize as u32
}

fn str_record(s: &str) -> StrRecord {
    StrRecord { ptr: addr(s.as_ptr()), len: s.len() as u32 }
}

struct Registry {
    layers: Vec<Layer>,
    tests: Vec<(String, Option<u32>, Body)>,
    manifest: ManifestRecord,
    _layer_records: Vec<LayerRecord>,
    _test_records: Vec<TestRecord>,
    _bases: Vec<Vec<u32>>,
}

impl Registry {
    fn build(declare: fn(&mut Suite)) -> Registry {
        let mut suite = Suite::default();
        declare(&mut suite);
        crate::registered::add_to(&mut suite);
        let bases: Vec<Vec<u32>> = suite.layers.iter().map(|l| l.bases.iter().map(|b| b.0).collect()).collect();
        let layer_records: Vec<LayerRecord> = suite
            .layers
            .iter()
            .zip(&bases)
            .map(|(layer, bases)| {
                let mut flags = 0;
                for (present, bit) in [
                    (layer.set_up.is_some(), abi::layer_flags::HAS_SET_UP),
                    (layer.tear_down.is_some(), abi::layer_flags::HAS_TEAR_DOWN),
                    (layer.test_set_up.is_some(), abi::layer_flags::HAS_TEST_SET_UP),
                    (layer.test_tear_down.is_some(), abi::layer_flags::HAS_TEST_TEAR_DOWN),
                    (layer.no_tear_down, abi::layer_flags::NO_TEAR_DOWN),
                ] {
                    if present {
                        flags |= bit;
                    }
                }
                LayerRecord {
                    name: str_record(&layer.name),
                    bases_ptr: addr(bases.as_ptr()),
                    bases_len: bases.len() as u32,
                    flags,
                }
            })
            .collect();
        let tests: Vec<(String, Option<u32>, Body)> =
            suite.tests.into_iter().map(|t| (t.name, t.layer.map(|l| l.0), t.body)).collect();
        let test_records: Vec<TestRecord> = tests
            .iter()
            .map(|(name, layer, _)| TestRecord { name: str_record(name), layer: layer.unwrap_or(UNIT_LAYER) })
            .collect();
        let manifest = ManifestRecord {
            layers_ptr: addr(layer_records.as_ptr()),
            layers_len: layer_records.len() as u32,
            tests_ptr: addr(test_records.as_ptr()),
            tests_len: test_records.len() as u32,
        };
        Registry {
            layers: suite.layers,
            tests,
            manifest,
            _layer_records: layer_records,
            _test_records: test_records,
            _bases: bases,
        }
    }
}

thread_local! {
    // wasm32-wasip1 has one thread, so this is the one registry of the instance.
    static REGISTRY: OnceCell<Registry> = const { OnceCell::new() };
}

fn with_registry<R>(declare: fn(&mut Suite), f: impl FnOnce(&Registry) -> R) -> R {
    REGISTRY.with(|cell| {
        let registry = cell.get_or_init(|| {
            std::panic::set_hook(Box::new(record_panic));
            Registry::build(declare)
        });
        f(registry)
    })
}

/// Writes into the static message buffer, cutting what does not fit.
struct MessageWriter<'a> {
    buf: &'a mut [u8; MESSAGE_CAPACITY],
    len: usize,
}

impl std::fmt::Write for MessageWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let room = MESSAGE_CAPACITY - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

fn set_status(kind: u32, message: std::fmt::Arguments<'_>) {
    let mut buf = lock(&MESSAGE);
    let mut writer = MessageWriter { buf: &mut buf, len: 0 };
    let _ = writer.write_fmt(message);
    let len = writer.len as u32;
    let ptr = addr(buf.as_ptr());
    *lock(&STATUS) = StatusRecord { kind, message: StrRecord { ptr, len } };
}

fn clear_status() {
    lock(&STATUS).kind = abi::STATUS_NONE;
}

fn record_panic(info: &std::panic::PanicHookInfo<'_>) {
    // assert!, assert_eq! and assert_ne! all panic with "assertion ..."; those are Failures.
    let is_assertion = info.payload_as_str().is_some_and(|m| m.starts_with("assertion"));
    let kind = if is_assertion { outcome::FAILURE } else { outcome::ERROR };
    set_status(kind, format_args!("{info}"));
}

fn report(result: TestResult) -> i32 {
    let (kind, message) = match &result {
        Ok(()) => return outcome::PASS as i32,
        Err(TestError::Failure(m)) => (outcome::FAILURE, m),
        Err(TestError::Error(m)) => (outcome::ERROR, m),
        Err(TestError::Skip(m)) => (outcome::SKIP, m),
    };
    set_status(kind, format_args!("{message}"));
    kind as i32
}

/// `_initialize`: builds the registry and installs the panic hook before any test runs.
pub fn initialize(declare: fn(&mut Suite)) {
    with_registry(declare, |_| ());
}

/// `leakhost_abi_version`.
pub fn abi_version() -> i32 {
    abi::ABI_VERSION as i32
}

/// `leakhost_trace_flag` (ABI v2).
pub fn trace_flag() -> i32 {
    crate::alloc::trace_flag_addr() as i32
}

/// `leakhost_manifest`.
pub fn manifest(declare: fn(&mut Suite)) -> i32 {
    with_registry(declare, |r| addr(&r.manifest) as i32)
}

/// `leakhost_status`.
pub fn status() -> i32 {
    addr(&*lock(&STATUS)) as i32
}

/// A suite given by attributes only: `suite!()` declares nothing itself.
pub fn declare_nothing(_: &mut Suite) {}

/// Forgets what the previous call recorded.
fn start_call() {
    clear_status();
    crate::outcome::clear_pending();
}

/// `leakhost_run_test`.
pub fn run_test(declare: fn(&mut Suite), index: i32) -> i32 {
    start_call();
    with_registry(declare, |r| match r.tests.get(index as u32 as usize) {
        Some((_, _, body)) => report(settle(body())),
        None => report(Err(TestError::Error(format!("no test with index {index}")))),
    })
}

/// `leakhost_layer_hook`.
pub fn layer_hook(declare: fn(&mut Suite), layer: i32, hook: i32) -> i32 {
    start_call();
    with_registry(declare, |r| {
        let Some(layer) = r.layers.get(layer as u32 as usize) else {
            return report(Err(TestError::Error(format!("no layer with index {layer}"))));
        };
        let body = match hook as u32 {
            abi::hook::SET_UP => &layer.set_up,
            abi::hook::TEAR_DOWN => &layer.tear_down,
            abi::hook::TEST_SET_UP => &layer.test_set_up,
            abi::hook::TEST_TEAR_DOWN => &layer.test_tear_down,
            other => return report(Err(TestError::Error(format!("no hook with code {other}")))),
        };
        match body {
            Some(body) => report(settle(body())),
            None => outcome::PASS as i32,
        }
    })
}

/// `leakhost_counters`: fills the static snapshot records; never allocates.
pub fn counters() -> i32 {
    let alloc = crate::alloc::counts();
    let mut type_rows = lock(&TYPE_ROWS);
    let types_len = {
        let table = lock(&TYPES);
        for (record, row) in type_rows.iter_mut().zip(&table.rows[..table.len]) {
            *record = TypeCounterRecord { name: str_record(row.name), instances: row.instances, bytes: row.bytes };
        }
        table.len
    };
    let mut user_rows = lock(&USER_ROWS);
    let user_len = {
        let table = lock(&USER_COUNTERS);
        for (record, counter) in user_rows.iter_mut().zip(table.rows[..table.len].iter().flatten()) {
            *record = UserCounterRecord { name: str_record(counter.name()), value: counter.get() };
        }
        table.len
    };
    let mut counters = lock(&COUNTERS);
    *counters = CountersRecord {
        live_blocks: alloc.live_blocks,
        live_bytes: alloc.live_bytes,
        total_allocs: alloc.total_allocs,
        types_ptr: addr(type_rows.as_ptr()),
        types_len: types_len as u32,
        user_ptr: addr(user_rows.as_ptr()),
        user_len: user_len as u32,
    };
    addr(&*counters) as i32
}
