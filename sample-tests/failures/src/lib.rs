//! A suite that exercises the host's handling of failures, errors, skips, traps, broken layers and layers
//! that cannot be torn down. End-to-end tests assert on what the host reports for each, so the names and
//! messages below are part of the contract; change them only together with those tests.
//!
//! Unit tests (default layer, `#[leakhost_guest::test]` functions), run in this order:
//!
//! | test | outcome | message contains | how |
//! |---|---|---|---|
//! | `test_passes` | pass | | |
//! | `test_check_fails` | Failure | `check failed: 1 + 1 == 3` | `check_eq!`, no trap |
//! | `test_assert_fails` | Failure | ``assertion `left == right` failed`` | `assert_eq!` traps |
//! | `test_panics` | Error | `something broke` | `panic!` traps |
//! | `test_returns_error` | Error | `backend returned an error` | `Err(TestError::Error(..))` |
//! | `test_skipped` | skipped | `not on wasm` | `skip!` |
//! | `test_after_trap_passes` | pass | | runs after two traps |
//!
//! Layers, in zope's run order (unrelated root layers run in ascending name order):
//!
//! - `failures.BrokenSetUp`: setUp is an Error, `database unavailable`; neither `test_never_runs_1` nor
//!   `test_never_runs_2` may run, nor may its tearDown (each is an Error mentioning `BrokenSetUp` if it does).
//! - `failures.NoTearDown`: declares tear-down unsupported; setUp sets a flag that `test_flag_set_1` and
//!   `test_flag_set_2` check (both pass). The host must leave it by starting a fresh instance.
//! - `failures.NoTearDownAfter`: sorts right after `failures.NoTearDown`, so it runs next; `test_flag_unset_1`
//!   and `test_flag_unset_2` pass only in a fresh instance, where NoTearDown's flag is not set.
//! - `failures.TrapInLayer`: `test_panics_in_layer` is an Error (`layer test broke`); then
//!   `test_layer_set_up_again` passes only if the host continued in a fresh instance and set the layer up
//!   again there. Its tearDown passes.
//!
//! Totals for one iteration: 15 tests declared, 13 run (BrokenSetUp's two do not), 2 failures, 3 errors
//! (plus the layer error `failures.BrokenSetUp`), 1 skipped.

use std::cell::Cell;

use leakhost_guest::{check, check_eq, skip, Layer, Suite, TestError, TestResult};

thread_local! {
    static NO_TEAR_DOWN_SET_UP: Cell<bool> = const { Cell::new(false) };
    static TRAP_LAYER_SET_UP: Cell<bool> = const { Cell::new(false) };
    /// Set just before the layer test panics; a fresh instance starts with it clear.
    static TRAP_LAYER_PANICKED: Cell<bool> = const { Cell::new(false) };
}

// The unit tests are attribute tests, in source order; the layers below use the builder.

#[leakhost_guest::test]
fn test_passes() {
    check_eq!(1 + 1, 2);
}

#[leakhost_guest::test]
fn test_check_fails() {
    check_eq!(1 + 1, 3);
}

#[leakhost_guest::test]
fn test_assert_fails() {
    assert_eq!(1 + 1, 3);
}

#[leakhost_guest::test]
fn test_panics() {
    panic!("something broke")
}

#[leakhost_guest::test]
fn test_returns_error() -> TestResult {
    Err(TestError::Error("backend returned an error".into()))
}

#[leakhost_guest::test]
fn test_skipped() {
    skip!("not on wasm")
}

#[leakhost_guest::test]
fn test_after_trap_passes() {
    check_eq!(2 * 2, 4);
}

fn broken_set_up(s: &mut Suite) {
    let broken = s.layer(
        Layer::new("failures.BrokenSetUp")
            .set_up(|| -> TestResult { Err(TestError::Error("database unavailable".into())) })
            .tear_down(|| -> TestResult {
                Err(TestError::Error("failures.BrokenSetUp was torn down although its setUp failed".into()))
            }),
    );
    for name in ["test_never_runs_1", "test_never_runs_2"] {
        s.test_in(broken, name, || -> TestResult {
            Err(TestError::Error("a test of failures.BrokenSetUp ran although its setUp failed".into()))
        });
    }
}

fn no_tear_down(s: &mut Suite) {
    let layer = s.layer(Layer::new("failures.NoTearDown").no_tear_down().set_up(|| NO_TEAR_DOWN_SET_UP.set(true)));
    for name in ["test_flag_set_1", "test_flag_set_2"] {
        s.test_in(layer, name, || -> TestResult {
            check!(NO_TEAR_DOWN_SET_UP.get(), "failures.NoTearDown's setUp did not run in this instance");
            Ok(())
        });
    }

    let after = s.layer(Layer::new("failures.NoTearDownAfter"));
    for name in ["test_flag_unset_1", "test_flag_unset_2"] {
        s.test_in(after, name, || -> TestResult {
            check!(
                !NO_TEAR_DOWN_SET_UP.get(),
                "still in the instance where failures.NoTearDown was set up, which cannot be torn down"
            );
            Ok(())
        });
    }
}

fn trap_in_layer(s: &mut Suite) {
    let layer = s.layer(Layer::new("failures.TrapInLayer").set_up(|| TRAP_LAYER_SET_UP.set(true)).tear_down(
        || -> TestResult {
            check!(TRAP_LAYER_SET_UP.get(), "failures.TrapInLayer torn down without being set up");
            TRAP_LAYER_SET_UP.set(false);
            Ok(())
        },
    ));
    s.test_in(layer, "test_panics_in_layer", || -> TestResult {
        TRAP_LAYER_PANICKED.set(true);
        panic!("layer test broke")
    });
    s.test_in(layer, "test_layer_set_up_again", || -> TestResult {
        check!(!TRAP_LAYER_PANICKED.get(), "not a fresh instance after test_panics_in_layer trapped");
        check!(TRAP_LAYER_SET_UP.get(), "failures.TrapInLayer was not set up again in the fresh instance");
        Ok(())
    });
}

fn declare(s: &mut Suite) {
    // Declared out of run order, so the host's ordering decides.
    trap_in_layer(s);
    no_tear_down(s);
    broken_set_up(s);
}

leakhost_guest::suite!(declare);
