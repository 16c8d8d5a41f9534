/* A leakhost suite in C: declare layers and tests in lh_declare(); leakhost.h is supplied by the build. */
#include <leakhost.h>

#include <stdlib.h>
#include <string.h>

static char *greeting; /* the layer's state */

static lh_result set_up(void) {
    greeting = strdup("hello");
    return greeting ? LH_PASS : lh_report(LH_ERROR, "out of memory");
}

static lh_result tear_down(void) {
    free(greeting);
    greeting = NULL;
    return LH_PASS;
}

static lh_result test_adds(void) {
    LH_CHECK_EQ_INT(1 + 1, 2);
    return LH_PASS;
}

static lh_result test_greets(void) {
    LH_CHECK_STR_EQ(greeting, "hello");
    return LH_PASS;
}

void lh_declare(void) {
    lh_test("test_adds", test_adds);
    lh_layer_spec spec = {.set_up = set_up, .tear_down = tear_down};
    lh_layer_id greetings = lh_layer("suite.Greetings", &spec);
    lh_test_in(greetings, "test_greets", test_greets);
}
