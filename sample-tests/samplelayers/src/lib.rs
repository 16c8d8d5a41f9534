//! A port of zope.testrunner's `samplelayers` sample suite (testrunner-ex).
//!
//! Two globals, `layer` and `layerx`, start at "0". Every layer's setUp checks that they hold its bases'
//! values and sets its own; tearDown checks its own and restores the bases'. Every test asserts the values
//! of its layer, so a host that sets layers up in the wrong order, shares an instance where it should not,
//! or skips a tear-down makes tests fail (with `check_eq!`, so they fail without trapping).
//!
//! | layer | bases | layer / layerx while its tests run | tests |
//! |---|---|---|---|
//! | UnitTests | — | "0" / "0" | 156 (12 modules) |
//! | samplelayers.Layer1 | — | "1" / "0" | 9 (TestA, TestB, TestNotMuch) |
//! | samplelayers.Layerx | — | — | 0 |
//! | samplelayers.Layer11, Layer12 | Layer1 | "11", "12" / "0" | 26 each (2 modules) |
//! | samplelayers.Layer111, Layer112 | Layerx, Layer11 | "111", "112" / "2" | 26 each |
//! | samplelayers.Layer121, Layer122 | Layer12 | "121", "122" / "0" | 26 each |
//!
//! 321 tests in all. Test names follow Python's unittest and doctest: `test_x1 (sampletests.test1.TestA)`,
//! `test_y0 (sampletests.test1)` for a docstring doctest and `sampletests.txt (sampletests.test1)` for the
//! file doctest; layered modules are `sampletestsl.test_111a` and `sampletestsl.test_111b`, and Layer1's
//! module is `sampletestsl`.
//!
//! Beyond zope: every layer but Layerx also has testSetUp/testTearDown hooks, and each test checks which
//! of them ran before it, most basic first (Layerx has none, so the expected sequence does not depend on
//! how the host orders the two bases of Layer111).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use leakhost_guest::{check_eq, Layer, LayerId, Suite, TestError, TestResult};

thread_local! {
    /// zope's `samplelayers.layer`.
    static LAYER: Cell<&'static str> = const { Cell::new("0") };
    /// zope's `samplelayers.layerx`.
    static LAYERX: Cell<&'static str> = const { Cell::new("0") };
    /// Layers whose testSetUp ran for the current test, most basic first. A fixed array, not a Vec, so
    /// the hooks never allocate and leak reports on this suite stay at zero.
    static HOOKS: RefCell<HookStack> = const { RefCell::new(HookStack { names: [""; HOOK_DEPTH], len: 0 }) };
}

const HOOK_DEPTH: usize = 4;

struct HookStack {
    names: [&'static str; HOOK_DEPTH],
    len: usize,
}

/// One layer of the sample: its bases and what its setUp does to the globals.
struct Spec {
    name: &'static str,
    bases: &'static [&'static str],
    layer: Values,
    layerx: Values,
    test_hooks: bool,
}

/// What setUp expects a global to hold and what it sets it to; `None` if the layer leaves it alone.
type Values = Option<(&'static str, &'static str)>;

const fn spec(name: &'static str, bases: &'static [&'static str], layer: Values, layerx: Values) -> Spec {
    // Only Layerx changes nothing but layerx, and only it goes without per-test hooks.
    Spec { name, bases, layer, layerx, test_hooks: layer.is_some() }
}

/// In registration order: bases first (the SDK requires it), otherwise deliberately not the run order.
#[rustfmt::skip]
static SPECS: [Spec; 8] = [
    spec("samplelayers.Layerx", &[], None, Some(("0", "1"))),
    spec("samplelayers.Layer1", &[], Some(("0", "1")), None),
    spec("samplelayers.Layer12", &["samplelayers.Layer1"], Some(("1", "12")), None),
    spec("samplelayers.Layer122", &["samplelayers.Layer12"], Some(("12", "122")), None),
    spec("samplelayers.Layer121", &["samplelayers.Layer12"], Some(("12", "121")), None),
    spec("samplelayers.Layer11", &["samplelayers.Layer1"], Some(("1", "11")), None),
    spec("samplelayers.Layer112", &["samplelayers.Layerx", "samplelayers.Layer11"],
         Some(("11", "112")), Some(("1", "2"))),
    spec("samplelayers.Layer111", &["samplelayers.Layerx", "samplelayers.Layer11"],
         Some(("11", "111")), Some(("1", "2"))),
];

fn index_of(name: &str) -> usize {
    SPECS.iter().position(|spec| spec.name == name).expect("a layer of SPECS")
}

fn bad(what: &str, value: &str, layer: &str) -> TestError {
    TestError::Error(format!("Bad {what}, {value}, for {layer}."))
}

type Global = std::thread::LocalKey<Cell<&'static str>>;

fn expect_global(global: &'static Global, what: &str, want: &str, layer: &str) -> TestResult {
    let value = global.get();
    if value == want {
        Ok(())
    } else {
        Err(bad(what, value, layer))
    }
}

fn set_up(spec: &'static Spec) -> TestResult {
    // Check everything before changing anything, so a refused setUp leaves the globals as it found them.
    if let Some((base, _)) = spec.layer {
        expect_global(&LAYER, "layer", base, spec.name)?;
    }
    if let Some((base, _)) = spec.layerx {
        expect_global(&LAYERX, "layerx", base, spec.name)?;
    }
    if let Some((_, own)) = spec.layer {
        LAYER.set(own);
    }
    if let Some((_, own)) = spec.layerx {
        LAYERX.set(own);
    }
    Ok(())
}

fn tear_down(spec: &'static Spec) -> TestResult {
    if let Some((_, own)) = spec.layer {
        expect_global(&LAYER, "layer", own, spec.name)?;
    }
    if let Some((_, own)) = spec.layerx {
        expect_global(&LAYERX, "layerx", own, spec.name)?;
    }
    if let Some((base, _)) = spec.layer {
        LAYER.set(base);
    }
    if let Some((base, _)) = spec.layerx {
        LAYERX.set(base);
    }
    Ok(())
}

/// What the globals must hold while a test of this layer *or of a layer built on it* runs, since the
/// per-test hooks of every base run too. Layer values are chosen so that a layer's descendants extend its
/// value ("1" → "12" → "121"); a layerx value is only set by leaf layers, so it can be checked exactly.
fn check_test_globals(spec: &'static Spec) -> TestResult {
    if let Some((_, own)) = spec.layer {
        let value = LAYER.get();
        if !value.starts_with(own) {
            return Err(bad("layer", value, spec.name));
        }
    }
    if let Some((_, own)) = spec.layerx {
        expect_global(&LAYERX, "layerx", own, spec.name)?;
    }
    Ok(())
}

fn test_set_up(spec: &'static Spec) -> TestResult {
    HOOKS.with_borrow_mut(|h| {
        // A root layer's testSetUp comes first for every test: starting afresh there keeps one broken
        // test from failing all the tests after it.
        if spec.bases.is_empty() {
            h.len = 0;
        }
    });
    check_test_globals(spec)?;
    HOOKS.with_borrow_mut(|h| {
        let slot = h.names.get_mut(h.len).ok_or_else(|| TestError::Error("testSetUp nested too deep".into()))?;
        *slot = spec.name;
        h.len += 1;
        Ok(())
    })
}

fn test_tear_down(spec: &'static Spec) -> TestResult {
    let top = HOOKS.with_borrow_mut(|h| {
        h.len = h.len.checked_sub(1)?;
        Some(h.names[h.len])
    });
    if top != Some(spec.name) {
        return Err(TestError::Error(format!(
            "testTearDown of {} does not match the last testSetUp ({top:?})",
            spec.name
        )));
    }
    check_test_globals(spec)
}

/// The testSetUp sequence a test of `spec` must see: every hooked ancestor, most basic first.
fn hook_chain(spec: &'static Spec, chain: &mut Vec<&'static str>) {
    for base in spec.bases {
        hook_chain(&SPECS[index_of(base)], chain);
    }
    if spec.test_hooks && !chain.contains(&spec.name) {
        chain.push(spec.name);
    }
}

/// The state every test of one layer expects to find.
#[derive(Clone)]
struct Expect {
    layer: &'static str,
    layerx: &'static str,
    hooks: Rc<[&'static str]>,
}

impl Expect {
    fn unit() -> Expect {
        Expect { layer: "0", layerx: "0", hooks: Rc::new([]) }
    }

    fn of(spec: &'static Spec) -> Expect {
        let mut chain = Vec::new();
        hook_chain(spec, &mut chain);
        Expect {
            layer: spec.layer.map_or("0", |(_, own)| own),
            // Layers that leave layerx alone inherit zope's class attribute `layerx = '0'`.
            layerx: spec.layerx.map_or("0", |(_, own)| own),
            hooks: chain.into(),
        }
    }

    fn check(&self) -> TestResult {
        check_eq!(LAYER.get(), self.layer);
        check_eq!(LAYERX.get(), self.layerx);
        let (names, len) = HOOKS.with_borrow(|h| (h.names, h.len));
        check_eq!(&names[..len], &*self.hooks);
        Ok(())
    }
}

/// Indexes of one sample module's globals `x`, `y`, `z`.
const X: usize = 0;
const Y: usize = 1;
const Z: usize = 2;

/// One sample module's globals, all starting at 0.
#[derive(Default)]
struct Module([Cell<u32>; 3]);

impl Module {
    /// A copy of the globals, as doctest gives each docstring.
    fn globs(&self) -> [u32; 3] {
        [X, Y, Z].map(|var| self.0[var].get())
    }
}

/// A TestCase class: the global its setUp sets to 1 (tearDown puts it back to 0), and its test methods
/// with the value each asserts, in unittest's (alphabetical) order.
struct Class {
    name: &'static str,
    fixture: Option<usize>,
    tests: [(&'static str, Option<(usize, u32)>); 3],
}

#[rustfmt::skip]
const CLASSES: [Class; 3] = [
    Class { name: "TestA", fixture: Some(X),
            tests: [("test_x1", Some((X, 1))), ("test_y0", Some((Y, 0))), ("test_z0", Some((Z, 0)))] },
    Class { name: "TestB", fixture: Some(Y),
            tests: [("test_x0", Some((X, 0))), ("test_y1", Some((Y, 1))), ("test_z0", Some((Z, 0)))] },
    Class { name: "TestNotMuch", fixture: None,
            tests: [("test_1", None), ("test_2", None), ("test_3", None)] },
];

/// The module's docstring doctests (`>>> x` prints 0, ...): the global each shows and its value.
const DOCTESTS: [(&str, usize, u32); 3] = [("test_x0", X, 0), ("test_y0", Y, 0), ("test_z1", Z, 1)];

fn add(s: &mut Suite, layer: Option<LayerId>, name: String, body: impl Fn() -> TestResult + 'static) {
    match layer {
        Some(id) => s.test_in(id, name, body),
        None => s.test(name, body),
    }
}

/// TestA, TestB and TestNotMuch of one module: 9 tests.
fn add_classes(s: &mut Suite, layer: Option<LayerId>, module: &str, m: &Rc<Module>, expect: &Expect) {
    for class in &CLASSES {
        for &(test, assertion) in &class.tests {
            let m = Rc::clone(m);
            let expect = expect.clone();
            let fixture = class.fixture;
            add(s, layer, format!("{test} ({module}.{})", class.name), move || {
                if let Some(var) = fixture {
                    m.0[var].set(1);
                }
                let result = (|| {
                    if let Some((var, want)) = assertion {
                        check_eq!(m.0[var].get(), want);
                    }
                    expect.check()
                })();
                // TestCase.tearDown runs whether or not the test passed.
                if let Some(var) = fixture {
                    m.0[var].set(0);
                }
                result
            });
        }
    }
}

/// The three docstring doctests and the file doctest of one module: 4 tests.
fn add_doctests(s: &mut Suite, layer: Option<LayerId>, module: &str, file: &str, m: &Rc<Module>, expect: &Expect) {
    for (test, var, want) in DOCTESTS {
        let m = Rc::clone(m);
        let expect = expect.clone();
        add(s, layer, format!("{test} ({module})"), move || {
            // The doctests' set-up puts z = 1 into their copy of the globals, never into the module.
            let mut globs = m.globs();
            globs[Z] = 1;
            check_eq!(globs[var], want);
            expect.check()
        });
    }
    let m = Rc::clone(m);
    let expect = expect.clone();
    add(s, layer, format!("{file} ({module})"), move || {
        // A DocFileSuite's globals are its own, with only the set-up's z = 1: `>>> x = 1` there must not
        // reach the module's x.
        let mut globs = [0, 0, 1];
        globs[X] = 1;
        check_eq!(globs, [1, 0, 1]);
        check_eq!(m.0[X].get(), 0);
        expect.check()
    });
}

fn add_unit_module(s: &mut Suite, n: u32) {
    let module = format!("sampletests.test{n}");
    let m = Rc::new(Module::default());
    let expect = Expect::unit();
    add_classes(s, None, &module, &m, &expect);
    add_doctests(s, None, &module, "sampletests.txt", &m, &expect);
}

fn add_layered_module(s: &mut Suite, ids: &[LayerId], suffix: &str, copy: char) {
    let index = index_of(&format!("samplelayers.Layer{suffix}"));
    let expect = Expect::of(&SPECS[index]);
    let module = format!("sampletestsl.test_{suffix}{copy}");
    let m = Rc::new(Module::default());
    add_classes(s, Some(ids[index]), &module, &m, &expect);
    add_doctests(s, Some(ids[index]), &module, "sampletestsl.txt", &m, &expect);
}

fn declare(s: &mut Suite) {
    let mut ids: Vec<LayerId> = Vec::with_capacity(SPECS.len());
    for spec in &SPECS {
        let bases: Vec<LayerId> = spec.bases.iter().map(|base| ids[index_of(base)]).collect();
        let mut layer =
            Layer::new(spec.name).bases(&bases).set_up(move || set_up(spec)).tear_down(move || tear_down(spec));
        if spec.test_hooks {
            layer = layer.test_set_up(move || test_set_up(spec)).test_tear_down(move || test_tear_down(spec));
        }
        ids.push(s.layer(layer));
    }

    // Interleaved and out of order on purpose: only the host's zope ordering can put these in the order
    // UnitTests, Layer1, Layer11, Layer111, Layer112, Layer12, Layer121, Layer122.
    for suffix in ["122", "121"] {
        add_layered_module(s, &ids, suffix, 'a');
    }
    for n in 1..=6 {
        add_unit_module(s, n);
    }
    add_layered_module(s, &ids, "111", 'a');
    let layer1 = index_of("samplelayers.Layer1");
    let m = Rc::new(Module::default());
    add_classes(s, Some(ids[layer1]), "sampletestsl", &m, &Expect::of(&SPECS[layer1]));
    for n in 7..=12 {
        add_unit_module(s, n);
    }
    for suffix in ["12", "11", "112"] {
        add_layered_module(s, &ids, suffix, 'a');
    }
    for suffix in ["111", "112", "11", "121", "122", "12"] {
        add_layered_module(s, &ids, suffix, 'b');
    }
}

leakhost_guest::suite!(declare);
