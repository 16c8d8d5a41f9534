//! Layers that own typed state: set-up returns a value, tests borrow it, tear-down drops it.
//!
//! The values live in a per-instance table keyed by type, so a test of a layer built on `T` can
//! borrow `T` too: its set-up ran first and its tear-down runs later.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::rc::Rc;

use crate::outcome::{TestError, TestResult};
use crate::suite::{Layer, LayerId, Suite};

/// A layer whose set-up produces a value that its tests (and the tests of layers built on it)
/// borrow as `&Self` or `&mut Self`.
///
/// ```
/// use leakhost_guest::{LayerState, TestError};
///
/// struct Database {
///     rows: Vec<u32>,
/// }
///
/// impl LayerState for Database {
///     const NAME: &'static str = "app.Database";
///     type Bases = ();
///     fn set_up() -> Result<Self, TestError> {
///         Ok(Database { rows: vec![1, 2, 3] })
///     }
///     // Per-test hooks see the state; this one undoes what a test may have added.
///     fn test_tear_down(&mut self) -> leakhost_guest::TestResult {
///         self.rows.truncate(3);
///         Ok(())
///     }
/// }
/// ```
///
/// Tests name it with `#[leakhost_guest::test(layer = Database)]` (or just take `db: &Database`),
/// or, with the builder, [`Suite::state_layer`].
pub trait LayerState: Sized + 'static {
    /// The layer's (dotted) name, as reports show it.
    const NAME: &'static str;
    /// The base layers, as a tuple of state types: `()`, `(A,)`, `(A, B)`, up to four.
    type Bases: Bases;
    /// Whether the layer cannot be torn down; the host then continues in a fresh instance instead
    /// of calling [`tear_down`](Self::tear_down) (see [`Layer::no_tear_down`]).
    const NO_TEAR_DOWN: bool = false;
    /// Layer set-up: builds the state.
    fn set_up() -> Result<Self, TestError>;
    /// Layer tear-down: receives the state; dropping it is the default.
    fn tear_down(self) -> TestResult {
        Ok(())
    }
    /// Before every test of this layer and of layers built on it.
    fn test_set_up(&mut self) -> TestResult {
        Ok(())
    }
    /// After every test of this layer and of layers built on it.
    fn test_tear_down(&mut self) -> TestResult {
        Ok(())
    }
}

/// A tuple of [`LayerState`] types used as a layer's bases.
pub trait Bases {
    /// Registers every base (and its own bases) and returns their ids, in order.
    fn register(suite: &mut Suite) -> Vec<LayerId>;
}

impl Bases for () {
    fn register(_: &mut Suite) -> Vec<LayerId> {
        Vec::new()
    }
}

macro_rules! tuple_bases {
    ($($t:ident),+) => {
        impl<$($t: LayerState),+> Bases for ($($t,)+) {
            fn register(suite: &mut Suite) -> Vec<LayerId> {
                vec![$(suite.state_layer::<$t>()),+]
            }
        }
    };
}
tuple_bases!(A);
tuple_bases!(A, B);
tuple_bases!(A, B, C);
tuple_bases!(A, B, C, D);

type Slot = Rc<RefCell<Box<dyn Any>>>;

thread_local! {
    // One thread per instance on wasm32-wasip1; a handful of layers, so a list beats a map.
    static STATES: RefCell<Vec<(TypeId, Slot)>> = const { RefCell::new(Vec::new()) };
}

fn slot<T: 'static>() -> Option<Slot> {
    STATES.with_borrow(|states| states.iter().find(|(id, _)| *id == TypeId::of::<T>()).map(|(_, s)| Rc::clone(s)))
}

/// Runs `f` with the state of layer `T` borrowed mutably; an Error if that layer is not set up.
pub fn with_state<T: LayerState>(f: impl FnOnce(&mut T) -> TestResult) -> TestResult {
    let slot = slot::<T>().ok_or_else(|| {
        TestError::Error(format!(
            "the state of layer {} is not set up: the test must be in that layer or one built on it",
            T::NAME
        ))
    })?;
    let mut value = slot.try_borrow_mut().map_err(|_| {
        TestError::Error(format!("the state of layer {} is borrowed twice (one parameter per layer)", T::NAME))
    })?;
    match value.downcast_mut::<T>() {
        Some(state) => f(state),
        None => Err(TestError::Error(format!("the state of layer {} has the wrong type", T::NAME))),
    }
}

fn install<T: LayerState>() -> TestResult {
    let state = T::set_up()?;
    let slot: Slot = Rc::new(RefCell::new(Box::new(state)));
    STATES.with_borrow_mut(|states| {
        states.retain(|(id, _)| *id != TypeId::of::<T>());
        states.push((TypeId::of::<T>(), slot));
    });
    Ok(())
}

fn remove<T: LayerState>() -> TestResult {
    let slot = STATES.with_borrow_mut(|states| {
        let at = states.iter().position(|(id, _)| *id == TypeId::of::<T>())?;
        Some(states.remove(at).1)
    });
    let not_set_up = || TestError::Error(format!("layer {} torn down without being set up", T::NAME));
    let slot = slot.ok_or_else(not_set_up)?;
    let value = Rc::try_unwrap(slot).map_err(|_| not_set_up())?.into_inner();
    match value.downcast::<T>() {
        Ok(state) => state.tear_down(),
        Err(_) => Err(not_set_up()),
    }
}

/// The builder layer behind a state type: its hooks install, lend and drop the value.
pub(crate) fn layer_of<T: LayerState>(bases: &[LayerId]) -> Layer {
    let layer = Layer::new(T::NAME);
    let layer = if T::NO_TEAR_DOWN { layer.no_tear_down() } else { layer };
    layer
        .bases(bases)
        .set_up(install::<T>)
        .tear_down(remove::<T>)
        .test_set_up(|| with_state::<T>(T::test_set_up))
        .test_tear_down(|| with_state::<T>(T::test_tear_down))
}

// Declared here, beside what it builds on, so that the builder itself knows nothing of state.
impl Suite {
    /// The layer of state type `T`, registered (with its bases) on first use; tests in it borrow
    /// the state with [`with_state`](crate::with_state) or as parameters of an attribute test.
    ///
    /// # Panics
    ///
    /// If `T` is among its own bases: the suite's initialisation then fails with that message.
    pub fn state_layer<T: LayerState>(&mut self) -> LayerId {
        let key = TypeId::of::<T>();
        match self.state_layers.iter().find(|(id, _)| *id == key) {
            Some((_, Some(layer))) => return *layer,
            Some((_, None)) => panic!("layer {} is among its own bases", T::NAME),
            None => {}
        }
        self.state_layers.push((key, None));
        let bases = <T::Bases as Bases>::register(self);
        let id = self.layer(layer_of::<T>(&bases));
        if let Some(entry) = self.state_layers.iter_mut().find(|(id, _)| *id == key) {
            entry.1 = Some(id);
        }
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Base(Vec<u32>);
    struct Derived(u32);

    impl LayerState for Base {
        const NAME: &'static str = "t.Base";
        type Bases = ();
        fn set_up() -> Result<Self, TestError> {
            Ok(Base(vec![1]))
        }
        fn tear_down(self) -> TestResult {
            crate::check_eq!(self.0, [1]);
            Ok(())
        }
        fn test_tear_down(&mut self) -> TestResult {
            self.0.truncate(1);
            Ok(())
        }
    }

    impl LayerState for Derived {
        const NAME: &'static str = "t.Derived";
        type Bases = (Base,);
        fn set_up() -> Result<Self, TestError> {
            with_state::<Base>(|base| {
                crate::check_eq!(base.0.len(), 1);
                Ok(())
            })?;
            Ok(Derived(7))
        }
    }

    fn hook(suite: &Suite, layer: LayerId, pick: fn(&Layer) -> &Option<crate::suite::Body>) -> TestResult {
        pick(&suite.layers[layer.0 as usize]).as_ref().expect("a state layer has every hook")()
    }

    #[test]
    fn bases_register_once_and_first() {
        let mut suite = Suite::default();
        let derived = suite.state_layer::<Derived>();
        let base = suite.state_layer::<Base>();
        assert_eq!((base, derived), (LayerId(0), LayerId(1)));
        assert_eq!(suite.layers[1].bases, [base]);
        assert_eq!(suite.layers[1].name, "t.Derived");
        assert!(suite.layers.iter().all(|l| !l.no_tear_down));
        struct Stuck;
        impl LayerState for Stuck {
            const NAME: &'static str = "t.Stuck";
            type Bases = (Derived,);
            const NO_TEAR_DOWN: bool = true;
            fn set_up() -> Result<Self, TestError> {
                Ok(Stuck)
            }
        }
        let stuck = suite.state_layer::<Stuck>();
        assert_eq!(stuck, LayerId(2));
        assert!(suite.layers[2].no_tear_down);
        assert_eq!(suite.layers[2].bases, [derived]);
    }

    #[test]
    fn state_lives_from_set_up_to_tear_down_and_hooks_see_it() {
        let mut suite = Suite::default();
        let derived = suite.state_layer::<Derived>();
        let base = suite.state_layer::<Base>();
        let outside = with_state::<Base>(|_| Ok(())).unwrap_err();
        assert!(outside.to_string().contains("the state of layer t.Base is not set up"), "{outside}");
        assert_eq!(hook(&suite, base, |l| &l.set_up), Ok(()));
        assert_eq!(hook(&suite, derived, |l| &l.set_up), Ok(()));
        // A test of Derived borrows both states; the base's per-test hook restores what it changed.
        let test = with_state::<Derived>(|d| {
            with_state::<Base>(|b| {
                b.0.push(d.0);
                Ok(())
            })
        });
        assert_eq!(test, Ok(()));
        let rows = || {
            let mut len = 0;
            with_state::<Base>(|b| {
                len = b.0.len();
                Ok(())
            })
            .map(|()| len)
        };
        assert_eq!(rows(), Ok(2));
        assert_eq!(hook(&suite, base, |l| &l.test_tear_down), Ok(()));
        assert_eq!(rows(), Ok(1));
        let twice = with_state::<Base>(|_| with_state::<Base>(|_| Ok(()))).unwrap_err();
        assert!(twice.to_string().contains("borrowed twice"), "{twice}");
        assert_eq!(hook(&suite, derived, |l| &l.tear_down), Ok(()));
        assert_eq!(hook(&suite, base, |l| &l.tear_down), Ok(()));
        assert!(with_state::<Derived>(|_| Ok(())).is_err(), "tear-down drops the state");
        let again = hook(&suite, base, |l| &l.tear_down).unwrap_err();
        assert!(again.to_string().contains("torn down without being set up"), "{again}");
    }
}
