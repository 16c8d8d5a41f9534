//! Layer switches that cost the instance, each followed by a layer that shares the same
//! base, so the base must be set up again in the fresh instance. The end-to-end tests
//! compare `-j` with the serial run line for line on this suite.
//!
//! Groups, in run order (each `*_Base` has no tests of its own):
//!
//! - `A`: `A1_SetUpTraps` traps in its setUp; `A2_Next` shares `A_Base`.
//! - `B`: `B1_TearDownTraps` traps in its tearDown; `B2_Next` shares `B_Base`.
//! - `C`: `C1_NoTearDown` cannot be torn down; `C2_Next` shares `C_Base`.
//! - `D`: a test of `D1_TestTraps` traps; `D2_Next` shares `D_Base`.
//! - `F`: `F_BrokenBase`'s setUp fails (no trap); `F1_NeedsIt` and `F2_NeedsIt` both need it, so each
//!   lists an error `Layer: layertraps.Fn_NeedsIt.setUp`, as zope lists the layer it was running.
//! - `E_Recursion`: `test_e_recurses` recurses until the wasm stack (`--max-stack`) overflows, an Error;
//!   under `-j` it runs on a worker thread, whose native stack must hold the whole wasm stack.
//!
//! Every `*_Next` layer's test passes only when its base is set up in the instance it
//! runs in, so a replay that forgot the fresh instance would show up as a failure too.

use std::cell::Cell;
use std::hint::black_box;

use leakhost_guest::{check, Layer, LayerId, Suite, TestError, TestResult};

thread_local! {
    /// Which group's base is set up in this instance ('-' for none).
    static BASE: Cell<char> = const { Cell::new('-') };
}

fn base(s: &mut Suite, group: char) -> LayerId {
    s.layer(
        Layer::new(format!("layertraps.{group}_Base"))
            .set_up(move || BASE.with(|b| b.set(group)))
            .tear_down(|| BASE.with(|b| b.set('-'))),
    )
}

/// A test that passes only if `group`'s base is set up here.
fn needs_base(group: char) -> impl Fn() -> TestResult {
    move || -> TestResult {
        check!(BASE.with(Cell::get) == group);
        Ok(())
    }
}

fn declare(s: &mut Suite) {
    let a = base(s, 'A');
    let a1 = s.layer(
        Layer::new("layertraps.A1_SetUpTraps").bases(&[a]).set_up(|| -> TestResult { panic!("A1 setUp traps") }),
    );
    s.test_in(a1, "test_a1_never_runs", needs_base('A'));
    let a2 = s.layer(Layer::new("layertraps.A2_Next").bases(&[a]));
    s.test_in(a2, "test_a2_has_its_base", needs_base('A'));

    let b = base(s, 'B');
    let b1 = s.layer(
        Layer::new("layertraps.B1_TearDownTraps")
            .bases(&[b])
            .tear_down(|| -> TestResult { panic!("B1 tearDown traps") }),
    );
    s.test_in(b1, "test_b1_runs", needs_base('B'));
    let b2 = s.layer(Layer::new("layertraps.B2_Next").bases(&[b]));
    s.test_in(b2, "test_b2_has_its_base", needs_base('B'));

    let c = base(s, 'C');
    let c1 = s.layer(Layer::new("layertraps.C1_NoTearDown").bases(&[c]).no_tear_down());
    s.test_in(c1, "test_c1_runs", needs_base('C'));
    let c2 = s.layer(Layer::new("layertraps.C2_Next").bases(&[c]));
    s.test_in(c2, "test_c2_has_its_base", needs_base('C'));

    let d = base(s, 'D');
    let d1 = s.layer(Layer::new("layertraps.D1_TestTraps").bases(&[d]));
    s.test_in(d1, "test_d1_traps", || -> TestResult { panic!("D1 test traps") });
    s.test_in(d1, "test_d1_after_the_trap", needs_base('D'));
    let d2 = s.layer(Layer::new("layertraps.D2_Next").bases(&[d]));
    s.test_in(d2, "test_d2_has_its_base", needs_base('D'));
}

/// Never returns; black_box keeps the frames from being turned into a loop.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    black_box(recurse(depth + 1)).wrapping_add(1)
}

fn declare_recursion(s: &mut Suite) {
    let e = s.layer(Layer::new("layertraps.E_Recursion"));
    s.test_in(e, "test_e_recurses", || -> TestResult {
        black_box(recurse(black_box(0)));
        Ok(())
    });
}

fn declare_broken_base(s: &mut Suite) {
    let f = s.layer(
        Layer::new("layertraps.F_BrokenBase").set_up(|| -> TestResult { Err(TestError::Error("no database".into())) }),
    );
    for name in ["F1_NeedsIt", "F2_NeedsIt"] {
        let layer = s.layer(Layer::new(format!("layertraps.{name}")).bases(&[f]));
        s.test_in(layer, format!("test_{name}_never_runs"), || -> TestResult { Ok(()) });
    }
}

fn declare_all(s: &mut Suite) {
    declare(s);
    declare_broken_base(s);
    declare_recursion(s);
}

leakhost_guest::suite!(declare_all);
