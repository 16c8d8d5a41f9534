//! The floor of leakhost's per-test cost: calling an empty wasm export through
//! wasmtime's `TypedFunc`, in a loop, from the host.
//!
//! Usage: leakhost-bench-floor [CALLS] (default 10,000,000). Prints one line per
//! variant: `name ns_per_call`.
//!
//! Variants:
//! - `plain`: `Config::default()`, `() -> ()` export, nothing else per call.
//! - `leakhost_like`: the engine settings leakhost uses by default (Cranelift
//!   opt-level Speed, epoch interruption on) with `store.set_epoch_deadline` before
//!   every call, calling an `(i32) -> i32` export as `leakhost_run_test` is called.

use std::time::Instant;

use wasmtime::{Config, Engine, Instance, Module, Store, TypedFunc};

/// `(module (func (export "f")) (func (export "g") (param i32) (result i32) local.get 0))`,
/// hand-encoded so no WAT parser is needed.
const MODULE: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    // type section: 2 types: () -> (), (i32) -> i32
    0x01, 0x09, 0x02, 0x60, 0x00, 0x00, 0x60, 0x01, 0x7f, 0x01, 0x7f,
    // function section: 2 functions, of types 0 and 1
    0x03, 0x03, 0x02, 0x00, 0x01,
    // export section: "f" -> func 0, "g" -> func 1
    0x07, 0x09, 0x02, 0x01, b'f', 0x00, 0x00, 0x01, b'g', 0x00, 0x01,
    // code section: f: no locals, end; g: no locals, local.get 0, end
    0x0a, 0x09, 0x02, 0x02, 0x00, 0x0b, 0x04, 0x00, 0x20, 0x00, 0x0b,
];

fn main() {
    let calls: u64 = std::env::args().nth(1).map(|a| a.replace('_', "").parse().expect("CALLS: a number")).unwrap_or(10_000_000);

    // plain
    let engine = Engine::new(&Config::new()).unwrap();
    let module = Module::new(&engine, MODULE).unwrap();
    let mut store = Store::new(&engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let f: TypedFunc<(), ()> = instance.get_typed_func(&mut store, "f").unwrap();
    for _ in 0..calls / 10 {
        f.call(&mut store, ()).unwrap();
    }
    let started = Instant::now();
    for _ in 0..calls {
        f.call(&mut store, ()).unwrap();
    }
    let plain = started.elapsed().as_nanos() as f64 / calls as f64;
    println!("plain {plain:.2}");

    // leakhost_like
    let mut config = Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::Speed).epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let module = Module::new(&engine, MODULE).unwrap();
    let mut store = Store::new(&engine, ());
    store.set_epoch_deadline(6000);
    let instance = Instance::new(&mut store, &module, &[]).unwrap();
    let g: TypedFunc<i32, i32> = instance.get_typed_func(&mut store, "g").unwrap();
    let mut sum = 0i64;
    for i in 0..calls / 10 {
        store.set_epoch_deadline(6000);
        sum += g.call(&mut store, i as i32).unwrap() as i64;
    }
    let started = Instant::now();
    for i in 0..calls {
        store.set_epoch_deadline(6000);
        sum += g.call(&mut store, i as i32).unwrap() as i64;
    }
    let like = started.elapsed().as_nanos() as f64 / calls as f64;
    std::hint::black_box(sum);
    println!("leakhost_like {like:.2}");
}
