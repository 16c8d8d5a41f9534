//! A leakhost suite: `leakhost run . -N4 -r` runs every test four times and reports what each
//! iteration leaked.

use leakhost_guest::{check, check_eq, LayerState, TestError, TestResult};

/// A test in the default (unit-test) layer. Checks fail the test without trapping.
#[leakhost_guest::test]
fn adds() {
    check_eq!(1 + 1, 2);
}

/// A layer's shared state: set up once before the layer's tests, dropped after them.
struct Words {
    list: Vec<String>,
}

impl LayerState for Words {
    const NAME: &'static str = "{{name}}.Words";
    type Bases = ();

    fn set_up() -> Result<Self, TestError> {
        Ok(Words { list: vec!["alpha".into(), "beta".into()] })
    }

    fn test_tear_down(&mut self) -> TestResult {
        // Undo what a test added, so every test starts alike and nothing grows between iterations.
        self.list.truncate(2);
        Ok(())
    }
}

/// A test in the Words layer; it borrows the layer's state.
#[leakhost_guest::test(layer = Words)]
fn words_are_shared(words: &mut Words) {
    words.list.push("gamma".into());
    check_eq!(words.list.len(), 3);
    check!(words.list.iter().all(|w| !w.is_empty()));
}

leakhost_guest::suite!();
