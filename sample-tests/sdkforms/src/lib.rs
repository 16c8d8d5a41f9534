//! The SDK's newer forms, checked end to end by tests/e2e/sdk.rs (names, order and messages here are
//! that test's contract): tests registered with `#[leakhost_guest::test]`, check macros in `()`
//! functions and closures, and layers that own typed state.
//!
//! Run order (one iteration): the unit-test layer, then `sdkforms.Database`, then `sdkforms.Cache`
//! (built on Database). Within a layer, builder tests come first, then attribute tests by module path
//! and line.
//!
//! | test | layer | outcome |
//! |---|---|---|
//! | `closure_check` | unit | pass (`check_eq!` in a `()` closure) |
//! | `closure_check_fails` | unit | Failure `check failed: 2 * 2 == 5` |
//! | `state_outside_its_layer` | unit | Error `the state of layer sdkforms.Cache is not set up` |
//! | `adds` | unit | pass |
//! | `unit_fn_check_fails` | unit | Failure `check failed: 1 + 1 == 3` |
//! | `helper_failure_reaches_the_test` | unit | Failure `the helper saw 7` (a `()` helper's check) |
//! | `skips_in_unit_fn` | unit | skipped, `not today` |
//! | `custom name (sdkforms)` | unit | pass |
//! | `nested::in_a_module` | unit | pass |
//! | `builder_reads_state` | Database | pass (builder test using `with_state`) |
//! | `starts_with_three_rows` | Database | pass |
//! | `inserts_and_hook_restores` | Database | pass; the per-test hook truncates again |
//! | `hooks_see_the_state` | Database | pass |
//! | `derived_sees_base` | Cache | pass (borrows `&mut Cache` and `&Database`) |
//!
//! 14 tests, 3 failures, 1 error, 1 skipped. The layers' tear-downs check their state and fail if a hook did not
//! restore it, so a broken state table shows as a layer error.

use leakhost_guest::{check, check_eq, skip, with_state, LayerState, Suite, TestError, TestResult};

/// A layer's state: set up once, borrowed by every test of the layer and of layers built on it.
struct Database {
    rows: Vec<u32>,
    tests_seen: u32,
}

impl LayerState for Database {
    const NAME: &'static str = "sdkforms.Database";
    type Bases = ();

    fn set_up() -> Result<Self, TestError> {
        Ok(Database { rows: vec![1, 2, 3], tests_seen: 0 })
    }

    fn tear_down(self) -> TestResult {
        // Under -j a layer's tear-down may run in an instance that ran other tests, so only what the
        // per-test hook restores is checked here.
        check_eq!(self.rows, [1, 2, 3]);
        Ok(())
    }

    fn test_set_up(&mut self) -> TestResult {
        self.tests_seen += 1;
        Ok(())
    }

    fn test_tear_down(&mut self) -> TestResult {
        self.rows.truncate(3);
        Ok(())
    }
}

/// A layer built on Database.
struct Cache {
    hits: u32,
}

impl LayerState for Cache {
    const NAME: &'static str = "sdkforms.Cache";
    type Bases = (Database,);

    fn set_up() -> Result<Self, TestError> {
        // The base is set up first, so its state is there to read.
        with_state::<Database>(|db| {
            check_eq!(db.rows.len(), 3);
            Ok(())
        })?;
        Ok(Cache { hits: 0 })
    }

    fn tear_down(self) -> TestResult {
        check!(self.hits >= 1, "the Cache test did not run");
        Ok(())
    }
}

#[leakhost_guest::test]
fn adds() {
    check_eq!(1 + 1, 2);
}

#[leakhost_guest::test]
fn unit_fn_check_fails() {
    check_eq!(1 + 1, 3);
    unreachable!("a failed check returns from a () function");
}

fn helper(value: u32) {
    check!(value < 5, "the helper saw {value}");
}

#[leakhost_guest::test]
fn helper_failure_reaches_the_test() -> TestResult {
    helper(7);
    Ok(())
}

#[leakhost_guest::test]
fn skips_in_unit_fn() {
    skip!("not today");
}

#[leakhost_guest::test(name = "custom name (sdkforms)")]
fn renamed() {
    check!(true);
}

mod nested {
    #[leakhost_guest::test]
    fn in_a_module() {
        leakhost_guest::check_ne!(1, 2);
    }
}

#[leakhost_guest::test(layer = Database)]
fn starts_with_three_rows(db: &Database) {
    check_eq!(db.rows, [1, 2, 3]);
}

#[leakhost_guest::test]
fn inserts_and_hook_restores(db: &mut Database) -> TestResult {
    db.rows.push(4);
    check_eq!(db.rows.len(), 4);
    Ok(())
}

#[leakhost_guest::test(layer = Database)]
fn hooks_see_the_state(db: &Database) {
    check!(db.tests_seen >= 1, "testSetUp did not see the state");
}

#[leakhost_guest::test(layer = Cache)]
fn derived_sees_base(cache: &mut Cache, db: &Database) {
    cache.hits += 1;
    check_eq!(db.rows.len(), 3);
}

fn declare(s: &mut Suite) {
    s.test("closure_check", || check_eq!(2 * 2, 4));
    s.test("closure_check_fails", || check_eq!(2 * 2, 5));
    s.test("state_outside_its_layer", || with_state::<Cache>(|_| Ok(())));
    let db = s.state_layer::<Database>();
    s.test_in(db, "builder_reads_state", || {
        with_state::<Database>(|db| {
            check_eq!(db.rows.len(), 3);
            Ok(())
        })
    });
}

leakhost_guest::suite!(declare);
