//! Tests registered by `#[leakhost_guest::test]`, collected without a declare list.
//!
//! Each attribute emits a constructor that wasm-ld runs from `__wasm_call_ctors` (called by
//! `suite!`'s `_initialize`), so every registration is in by the time the registry is built.
//! Constructors run in link order, which is not a promise; the order tests get is set here.

use std::sync::Mutex;

use crate::outcome::TestResult;
use crate::suite::{LayerId, Suite};

/// One test as the attribute describes it. Not for direct use.
#[doc(hidden)]
pub struct Registration {
    /// The function's name, or the `name = "..."` given to the attribute.
    pub name: &'static str,
    /// Whether `name` was given explicitly (it is then reported as it is).
    pub explicit_name: bool,
    /// `module_path!()` where the function is.
    pub module: &'static str,
    /// `line!()` of the attribute.
    pub line: u32,
    /// Registers the test's layer and returns it; `None` for the unit-test layer.
    pub layer: Option<fn(&mut Suite) -> LayerId>,
    /// Runs the test.
    pub body: fn() -> TestResult,
}

static REGISTERED: Mutex<Vec<&'static Registration>> = Mutex::new(Vec::new());

/// Called by the constructor an attribute emits. Not for direct use.
#[doc(hidden)]
pub fn register(test: &'static Registration) {
    REGISTERED.lock().unwrap_or_else(|e| e.into_inner()).push(test);
}

/// The reported name: the module path inside the crate, then the function, as libtest names tests.
fn reported_name(test: &Registration) -> String {
    if test.explicit_name {
        return test.name.to_string();
    }
    match test.module.split_once("::") {
        Some((_crate, path)) => format!("{path}::{}", test.name),
        None => test.name.to_string(),
    }
}

/// Adds the registered tests after the declared ones: by module path, then source line, so the
/// order is the same in every build whatever the linker did.
pub(crate) fn add_to(suite: &mut Suite) {
    let mut tests = REGISTERED.lock().unwrap_or_else(|e| e.into_inner()).clone();
    tests.sort_by(|a, b| (a.module, a.line, a.name).cmp(&(b.module, b.line, b.name)));
    for test in tests {
        let layer = test.layer.map(|register_layer| register_layer(suite));
        suite.push_test(reported_name(test), layer, test.body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass() -> TestResult {
        Ok(())
    }

    #[test]
    fn names_follow_libtest_and_explicit_names_stay() {
        let mut t =
            Registration { name: "adds", explicit_name: false, module: "demo", line: 1, layer: None, body: pass };
        assert_eq!(reported_name(&t), "adds");
        t.module = "demo::math::tests";
        assert_eq!(reported_name(&t), "math::tests::adds");
        t.explicit_name = true;
        t.name = "test_adds (demo.Math)";
        assert_eq!(reported_name(&t), "test_adds (demo.Math)");
    }

    #[test]
    fn registered_tests_come_after_declared_ones_by_module_then_line() {
        static LATE: Registration =
            Registration { name: "late", explicit_name: false, module: "s", line: 30, layer: None, body: pass };
        static EARLY: Registration =
            Registration { name: "early", explicit_name: false, module: "s", line: 10, layer: None, body: pass };
        static NESTED: Registration =
            Registration { name: "deep", explicit_name: false, module: "s::a", line: 1, layer: None, body: pass };
        for test in [&NESTED, &LATE, &EARLY] {
            register(test);
        }
        let mut suite = Suite::default();
        suite.test("declared", || ());
        add_to(&mut suite);
        let names: Vec<&str> = suite.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["declared", "early", "late", "a::deep"]);
    }
}
