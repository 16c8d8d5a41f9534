//! Declaring layers and tests.

use std::any::TypeId;

use crate::outcome::{IntoTestResult, TestResult};

pub(crate) type Body = Box<dyn Fn() -> TestResult>;

/// Refers to a layer declared with [`Suite::layer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerId(pub(crate) u32);

/// A layer: shared set-up for the tests that name it, in zope.testrunner's sense.
///
/// Built with [`Layer::new`] and the chained methods, then registered with [`Suite::layer`].
pub struct Layer {
    pub(crate) name: String,
    pub(crate) bases: Vec<LayerId>,
    pub(crate) set_up: Option<Body>,
    pub(crate) tear_down: Option<Body>,
    pub(crate) test_set_up: Option<Body>,
    pub(crate) test_tear_down: Option<Body>,
    pub(crate) no_tear_down: bool,
}

fn boxed<R: IntoTestResult>(f: impl Fn() -> R + 'static) -> Option<Body> {
    Some(Box::new(move || f().into_test_result()))
}

impl Layer {
    /// A layer with a (dotted) name, no bases and no hooks.
    pub fn new(name: impl Into<String>) -> Self {
        Layer {
            name: name.into(),
            bases: Vec::new(),
            set_up: None,
            tear_down: None,
            test_set_up: None,
            test_tear_down: None,
            no_tear_down: false,
        }
    }

    /// The base layers, in declared order; they are set up before this one.
    pub fn bases(mut self, bases: &[LayerId]) -> Self {
        self.bases = bases.to_vec();
        self
    }

    /// Runs once before the first test that needs this layer.
    pub fn set_up<R: IntoTestResult>(mut self, f: impl Fn() -> R + 'static) -> Self {
        self.set_up = boxed(f);
        self
    }

    /// Runs once when the layer is no longer needed.
    pub fn tear_down<R: IntoTestResult>(mut self, f: impl Fn() -> R + 'static) -> Self {
        self.tear_down = boxed(f);
        self
    }

    /// Runs before every test of this layer and of layers built on it.
    pub fn test_set_up<R: IntoTestResult>(mut self, f: impl Fn() -> R + 'static) -> Self {
        self.test_set_up = boxed(f);
        self
    }

    /// Runs after every test of this layer and of layers built on it.
    pub fn test_tear_down<R: IntoTestResult>(mut self, f: impl Fn() -> R + 'static) -> Self {
        self.test_tear_down = boxed(f);
        self
    }

    /// Declares that this layer cannot be torn down; the host then continues in a
    /// fresh instance instead of calling tear-down.
    pub fn no_tear_down(mut self) -> Self {
        self.no_tear_down = true;
        self
    }
}

pub(crate) struct TestCase {
    pub(crate) name: String,
    pub(crate) layer: Option<LayerId>,
    pub(crate) body: Body,
}

/// The suite being declared: layers and tests, in declaration order.
#[derive(Default)]
pub struct Suite {
    pub(crate) layers: Vec<Layer>,
    pub(crate) tests: Vec<TestCase>,
    /// Layers registered for a [`LayerState`] type; `None` while its bases are being registered.
    pub(crate) state_layers: Vec<(TypeId, Option<LayerId>)>,
}

impl Suite {
    /// Registers a layer; its bases must have been registered before it.
    pub fn layer(&mut self, layer: Layer) -> LayerId {
        self.layers.push(layer);
        LayerId(self.layers.len() as u32 - 1)
    }

    /// Registers a test in the default unit-test layer.
    pub fn test<R: IntoTestResult>(&mut self, name: impl Into<String>, body: impl Fn() -> R + 'static) {
        self.push_test(name.into(), None, body);
    }

    /// Registers a test in `layer`.
    pub fn test_in<R: IntoTestResult>(
        &mut self,
        layer: LayerId,
        name: impl Into<String>,
        body: impl Fn() -> R + 'static,
    ) {
        self.push_test(name.into(), Some(layer), body);
    }

    pub(crate) fn push_test<R: IntoTestResult>(
        &mut self,
        name: String,
        layer: Option<LayerId>,
        body: impl Fn() -> R + 'static,
    ) {
        let body: Body = Box::new(move || body().into_test_result());
        self.tests.push(TestCase { name, layer, body });
    }
}
