/* The C port of sample-tests/failures (see its lib.rs for what each test and layer checks): the same
 * layers, tests, outcomes and messages, written only against leakhost.h. tests/e2e/c_sdk.rs runs both and
 * compares their normalised output. */
#include <leakhost.h>

static int no_tear_down_set_up;
static int trap_layer_set_up;
/* Set just before the layer test panics; a fresh instance starts with it clear. */
static int trap_layer_panicked;

/* ---- unit tests ---- */

static lh_result test_passes(void) {
    LH_CHECK_EQ_INT(1 + 1, 2);
    return LH_PASS;
}

static lh_result test_check_fails(void) {
    LH_CHECK_EQ_INT(1 + 1, 3);
    return LH_PASS;
}

static lh_result test_assert_fails(void) {
    LH_ASSERT_EQ_INT(1 + 1, 3);
    return LH_PASS;
}

static lh_result test_panics(void) { LH_PANIC("something broke"); }

static lh_result test_returns_error(void) { LH_ERROR_OUT("backend returned an error"); }

static lh_result test_skipped(void) { LH_SKIP_TEST("not on wasm"); }

static lh_result test_after_trap_passes(void) {
    LH_CHECK_EQ_INT(2 * 2, 4);
    return LH_PASS;
}

static void unit_tests(void) {
    lh_test("test_passes", test_passes);
    lh_test("test_check_fails", test_check_fails);
    lh_test("test_assert_fails", test_assert_fails);
    lh_test("test_panics", test_panics);
    lh_test("test_returns_error", test_returns_error);
    lh_test("test_skipped", test_skipped);
    lh_test("test_after_trap_passes", test_after_trap_passes);
}

/* ---- failures.BrokenSetUp ---- */

static lh_result broken_set_up_hook(void) { LH_ERROR_OUT("database unavailable"); }

static lh_result broken_tear_down_hook(void) {
    LH_ERROR_OUT("failures.BrokenSetUp was torn down although its setUp failed");
}

static lh_result never_runs(void) { LH_ERROR_OUT("a test of failures.BrokenSetUp ran although its setUp failed"); }

static void broken_set_up(void) {
    lh_layer_spec spec = {.set_up = broken_set_up_hook, .tear_down = broken_tear_down_hook};
    lh_layer_id broken = lh_layer("failures.BrokenSetUp", &spec);
    lh_test_in(broken, "test_never_runs_1", never_runs);
    lh_test_in(broken, "test_never_runs_2", never_runs);
}

/* ---- failures.NoTearDown and failures.NoTearDownAfter ---- */

static lh_result no_tear_down_hook(void) {
    no_tear_down_set_up = 1;
    return LH_PASS;
}

static lh_result flag_set(void) {
    LH_CHECK_MSG(no_tear_down_set_up, "failures.NoTearDown's setUp did not run in this instance");
    return LH_PASS;
}

static lh_result flag_unset(void) {
    LH_CHECK_MSG(!no_tear_down_set_up,
                 "still in the instance where failures.NoTearDown was set up, which cannot be torn down");
    return LH_PASS;
}

static void no_tear_down(void) {
    lh_layer_spec spec = {.set_up = no_tear_down_hook, .no_tear_down = 1};
    lh_layer_id layer = lh_layer("failures.NoTearDown", &spec);
    lh_test_in(layer, "test_flag_set_1", flag_set);
    lh_test_in(layer, "test_flag_set_2", flag_set);
    lh_layer_id after = lh_layer("failures.NoTearDownAfter", NULL);
    lh_test_in(after, "test_flag_unset_1", flag_unset);
    lh_test_in(after, "test_flag_unset_2", flag_unset);
}

/* ---- failures.TrapInLayer ---- */

static lh_result trap_layer_set_up_hook(void) {
    trap_layer_set_up = 1;
    return LH_PASS;
}

static lh_result trap_layer_tear_down_hook(void) {
    LH_CHECK_MSG(trap_layer_set_up, "failures.TrapInLayer torn down without being set up");
    trap_layer_set_up = 0;
    return LH_PASS;
}

static lh_result panics_in_layer(void) {
    trap_layer_panicked = 1;
    LH_PANIC("layer test broke");
}

static lh_result layer_set_up_again(void) {
    LH_CHECK_MSG(!trap_layer_panicked, "not a fresh instance after test_panics_in_layer trapped");
    LH_CHECK_MSG(trap_layer_set_up, "failures.TrapInLayer was not set up again in the fresh instance");
    return LH_PASS;
}

static void trap_in_layer(void) {
    lh_layer_spec spec = {.set_up = trap_layer_set_up_hook, .tear_down = trap_layer_tear_down_hook};
    lh_layer_id layer = lh_layer("failures.TrapInLayer", &spec);
    lh_test_in(layer, "test_panics_in_layer", panics_in_layer);
    lh_test_in(layer, "test_layer_set_up_again", layer_set_up_again);
}

void lh_declare(void) {
    unit_tests();
    /* Declared out of run order, so the host's ordering decides. */
    trap_in_layer();
    no_tear_down();
    broken_set_up();
}
