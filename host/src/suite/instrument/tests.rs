use wasmtime::{Engine, Func, Instance, Module, Ref, Store, Val};

use super::report_kind::{ALLOC, FREE, REALLOC, UNSIZED};
use super::*;

/// A bump allocator with the C family's names, a driver, and `_start` (a WASI command).
const C_ALLOCATOR: &str = r#"(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func $malloc (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (i32.and (i32.add (local.get $n) (i32.const 15)) (i32.const -16))))
    (local.get $p))
  (func $free (param $p i32) (drop (local.get $p)) (nop) (nop) (nop) (nop) (nop) (nop))
  (func $realloc (param $p i32) (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $p))
      (then (call $malloc (local.get $n)))
      (else (call $malloc (local.get $n)))))
  (func $calloc (param $k i32) (param $n i32) (result i32)
    (nop) (nop) (nop) (call $malloc (i32.mul (local.get $k) (local.get $n))))
  (func $drive (export "drive") (local $p i32)
    (local.set $p (call $malloc (i32.const 10)))
    (local.set $p (call $realloc (local.get $p) (i32.const 20)))
    (drop (call $realloc (i32.const 0) (i32.const 5)))
    (call $free (local.get $p))
    (call $free (i32.const 0))
    (drop (call $calloc (i32.const 2) (i32.const 3))))
  (func (export "_start")))"#;

type Reports = Vec<[i32; 5]>;

/// Instantiates an instrumented module with a report function that records every
/// call, its switch on.
fn instantiate(bytes: &[u8]) -> (Store<Reports>, Instance) {
    let engine = Engine::default();
    let module = Module::new(&engine, bytes).expect("the instrumented module compiles");
    let mut store = Store::new(&engine, Vec::new());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let report =
        Func::wrap(&mut store, |mut c: wasmtime::Caller<'_, Reports>, k: i32, p: i32, s: i32, o: i32, os: i32| {
            c.data_mut().push([k, p, s, o, os]);
        });
    let table = instance.get_table(&mut store, HOOKS_TABLE).expect("a hooks table");
    table.set(&mut store, 0, Ref::Func(Some(report))).unwrap();
    let switch = instance
        .get_global(&mut store, COUNT_SWITCH)
        .or_else(|| instance.get_global(&mut store, TRACE_SWITCH))
        .expect("a switch");
    switch.set(&mut store, Val::I32(1)).unwrap();
    (store, instance)
}

fn drive(bytes: &[u8]) -> Reports {
    let (mut store, instance) = instantiate(bytes);
    instance.get_typed_func::<(), ()>(&mut store, "drive").unwrap().call(&mut store, ()).unwrap();
    std::mem::take(store.data_mut())
}

fn code_of(bytes: &[u8]) -> (u32, Vec<std::ops::Range<usize>>) {
    let info = info::ModuleInfo::read(bytes).unwrap();
    let start = info.code.as_ref().unwrap().0.start as u32;
    (start, info.bodies.clone())
}

#[test]
fn every_c_allocation_is_reported_once_and_the_other_bodies_stay_in_place() {
    let wasm = wat::parse_str(C_ALLOCATOR).unwrap();
    let out = instrument(&wasm);
    wasmparser::Validator::new().validate_all(&out.bytes).unwrap();
    let alloc = &out.instrumentation.alloc;
    assert_eq!(alloc.wrapped, ["malloc", "calloc", "realloc", "free"]);
    assert_eq!(alloc.mode, Some(Mode::Count));
    let reports = drive(&out.bytes);
    let (p1, p2, p3, p4) = (1024, 1040, 1072, 1088);
    assert_eq!(
        reports,
        [
            [(ALLOC | UNSIZED) as i32, p1, 10, 0, 0],
            [(REALLOC | UNSIZED) as i32, p2, 20, p1, 0],
            // realloc(NULL, 5) calls malloc: reported once, as the realloc.
            [(REALLOC | UNSIZED) as i32, p3, 5, 0, 0],
            [(FREE | UNSIZED) as i32, p2, 0, 0, 0],
            [(FREE | UNSIZED) as i32, 0, 0, 0, 0],
            [(ALLOC | UNSIZED) as i32, p4, 6, 0, 0],
        ]
    );
    // `drive` (the fifth function) did not move relative to the code section, and the map says so.
    let ((old_start, old_bodies), (new_start, new_bodies)) = (code_of(&wasm), code_of(&out.bytes));
    let (old, new) = (&old_bodies[4], &new_bodies[4]);
    assert_eq!(&wasm[old.clone()], &out.bytes[new.clone()]);
    assert_eq!(old.start as u32 - old_start, new.start as u32 - new_start);
    let map = &out.instrumentation.code_map;
    assert_eq!(map.dwarf_address(new.start as u32 + 3), Some(old.start as u32 - old_start + 3));
    // The trampoline that replaced malloc's body is leakhost's code: no source line.
    assert_eq!(map.dwarf_address(new_bodies[0].start as u32 + 2), None);
}

#[test]
fn a_module_runs_the_same_with_its_switch_off() {
    let wasm = wat::parse_str(C_ALLOCATOR).unwrap();
    let out = instrument(&wasm);
    let engine = Engine::default();
    let module = Module::new(&engine, &out.bytes).unwrap();
    let mut store = Store::new(&engine, ());
    // No report function in the table: with the switch off, none is called.
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    instance.get_typed_func::<(), ()>(&mut store, "drive").unwrap().call(&mut store, ()).unwrap();
}

#[test]
fn rust_shims_are_found_by_their_v0_names_and_report_their_sizes() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func $_RNvCs1a2b3c_7___rustc12___rust_alloc (param i32 i32) (result i32) (i32.const 64))
          (func $_RNvCs1a2b3c_7___rustc14___rust_dealloc (param i32 i32 i32))
          (func $_RNvCs1a2b3c_7___rustc14___rust_realloc (param i32 i32 i32 i32) (result i32) (i32.const 128))
          (func (export "drive")
            (drop (call $_RNvCs1a2b3c_7___rustc12___rust_alloc (i32.const 24) (i32.const 8)))
            (drop (call $_RNvCs1a2b3c_7___rustc14___rust_realloc (i32.const 64) (i32.const 24) (i32.const 8) (i32.const 40)))
            (call $_RNvCs1a2b3c_7___rustc14___rust_dealloc (i32.const 128) (i32.const 40) (i32.const 8)))
          (func (export "_start")))"#,
    )
    .unwrap();
    let out = instrument(&wasm);
    assert_eq!(
        out.instrumentation.alloc.wrapped,
        ["__rustc::__rust_alloc", "__rustc::__rust_dealloc", "__rustc::__rust_realloc"]
    );
    let reports = drive(&out.bytes);
    assert_eq!(
        reports,
        [[ALLOC as i32, 64, 24, 0, 0], [REALLOC as i32, 128, 40, 64, 24], [FREE as i32, 128, 40, 0, 0]]
    );
}

#[test]
fn a_body_too_small_for_its_trampoline_moves_the_code_after_it_and_the_map_follows() {
    // malloc's body (4 bytes) cannot hold a trampoline (10): it grows, and `after` moves.
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func $malloc (param i32) (result i32) (local.get 0))
          (func $after (export "drive") (drop (call $malloc (i32.const 8))))
          (func (export "_start")))"#,
    )
    .unwrap();
    let out = instrument(&wasm);
    wasmparser::Validator::new().validate_all(&out.bytes).unwrap();
    assert_eq!(drive(&out.bytes), [[(ALLOC | UNSIZED) as i32, 8, 8, 0, 0]]);
    let ((old_start, old_bodies), (new_start, new_bodies)) = (code_of(&wasm), code_of(&out.bytes));
    let (old, new) = (&old_bodies[1], &new_bodies[1]);
    assert_ne!(old.start as u32 - old_start, new.start as u32 - new_start, "the body moved");
    assert_eq!(&wasm[old.clone()], &out.bytes[new.clone()]);
    let map = &out.instrumentation.code_map;
    assert_eq!(map.dwarf_address(new.start as u32 + 2), Some(old.start as u32 - old_start + 2));
}

#[test]
fn the_c_sdk_wrappers_are_wrapped_and_named_as_libc_for_stacks() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func $malloc (param i32) (result i32) (i32.const 4096) (nop) (nop) (nop) (nop) (nop) (nop))
          (func $__wrap_malloc (param i32) (result i32) (call $malloc (i32.add (local.get 0) (i32.const 16))))
          (func (export "drive") (drop (call $__wrap_malloc (i32.const 8))))
          (func (export "leakhost_abi_version") (result i32) (i32.const 1)))"#,
    )
    .unwrap();
    let out = instrument(&wasm);
    assert_eq!(out.instrumentation.alloc.wrapped, ["__wrap_malloc"]);
    assert_eq!(out.instrumentation.alloc.mode, Some(Mode::Trace), "a v1 suite counts by itself");
    assert_eq!(drive(&out.bytes), [[(ALLOC | UNSIZED) as i32, 4096, 8, 0, 0]]);
    let info = info::ModuleInfo::read(&out.bytes).unwrap();
    assert_eq!(info.func_names[&1], "malloc", "the trampoline reads as the allocator");
}

#[test]
fn suites_that_trace_themselves_and_modules_without_an_allocator_are_not_wrapped() {
    let v2 = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (func $malloc (param i32) (result i32) (i32.const 16) (nop) (nop) (nop) (nop) (nop) (nop) (nop) (nop))
          (func (export "leakhost_abi_version") (result i32) (i32.const 2))
          (func (export "leakhost_trace_flag") (result i32) (i32.const 0)))"#,
    )
    .unwrap();
    let out = instrument(&v2);
    assert_eq!(out.instrumentation.alloc, AllocInfo::default());
    assert!(Module::new(&Engine::default(), &out.bytes).unwrap().get_export(HOOKS_TABLE).is_none());
    let none = wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#).unwrap();
    assert!(instrument(&none).instrumentation.alloc.wrapped.is_empty());
    assert_eq!(instrument(b"not wasm").bytes, b"not wasm");
}

#[test]
fn a_libtest_binary_exports_its_tests_wrappers_and_constructors() {
    let wasm = wat::parse_str(
        r#"(module (memory (export "memory") 1)
          (global $__stack_pointer (mut i32) (i32.const 65536))
          (func $__wasm_call_ctors)
          (func $_ZN4test18assert_test_result17h0123456789abcdefE (param i32))
          (func $_ZN4demo5tests3one17h0123456789abcdefE)
          (func $_ZN4demo5tests3one28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE (param i32 i32)
            (call $_ZN4demo5tests3one17h0123456789abcdefE)
            (call $_ZN4test18assert_test_result17h0123456789abcdefE (local.get 0)))
          (func $_ZN4demo5tests3two17h0123456789abcdefE (param i32))
          (func $_ZN4demo5tests3two28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE (param i32 i32)
            (call $_ZN4demo5tests3two17h0123456789abcdefE (local.get 0))
            (call $_ZN4test18assert_test_result17h0123456789abcdefE (local.get 0)))
          ;; v0 mangling: demo::tests::three and its closure
          (func $_RNvNtCs1a2b3c_4demo5tests5three)
          (func $_RNCNvNtCs1a2b3c_4demo5tests5three0B7_ (param i32 i32)
            (call $_RNvNtCs1a2b3c_4demo5tests5three)
            (call $_ZN4test18assert_test_result17h0123456789abcdefE (local.get 0)))
          ;; a closure of std's is never a test
          (func $_ZN3std2rt10lang_start28_$u7b$$u7b$closure$u7d$$u7d$17h0123456789abcdefE (param i32 i32))
          (func $_ZN3std2rt10lang_start17h0123456789abcdefE)
          ;; String's drop, in the crate's legacy mangling and in std's v0
          (func $_ZN4core3ptr42drop_in_place$LT$alloc..string..String$GT$17h0123456789abcdefE (param i32))
          (func $_RINvNtCs9f8d_4core3ptr13drop_in_placeNtNtCsd388_5alloc6string6StringEB4_ (param i32))
          (func (export "_start")))"#,
    )
    .unwrap();
    let out = instrument(&wasm);
    let command = out.instrumentation.command.clone().expect("a command");
    assert_eq!(command.tests, ["demo::tests::one", "demo::tests::three"], "only `() -> ()` tests are called directly");
    assert_eq!(command.wrappers, ["demo::tests::one", "demo::tests::three", "demo::tests::two"]);
    assert!(command.ctors && command.stack_pointer && command.drop_string);
    let module = Module::new(&Engine::default(), &out.bytes).unwrap();
    for name in [":leakhost:test:demo::tests::one", ":leakhost:wrapper:demo::tests::two", CTORS, STACK_POINTER] {
        assert!(module.get_export(name).is_some(), "{name}");
    }
    assert!(module.exports().all(|e| !is_leakhost_export(e.name()) || e.name().starts_with(EXPORT_PREFIX)));
}

proptest::proptest! {
    /// Instrumenting never panics, whatever the bytes: a module cut short or with bytes changed
    /// anywhere is rewritten or returned as it was (compiling it then says what is wrong).
    #[test]
    fn damaged_modules_never_panic(cut in 0usize..2000, flips in proptest::collection::vec((0usize..2000, 0u8..=255), 0..8)) {
        let mut wasm = wat::parse_str(C_ALLOCATOR).unwrap();
        for (at, byte) in flips {
            let len = wasm.len();
            wasm[at % len] = byte;
        }
        wasm.truncate(cut.max(8).min(wasm.len()));
        let _ = instrument(&wasm);
    }
}
