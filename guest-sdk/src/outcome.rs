//! What a test body or hook returns, and the assertion macros that build it.

use std::fmt;

/// Why a test or hook did not pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestError {
    /// An assertion did not hold (reported as a Failure).
    Failure(String),
    /// Something else went wrong (reported as an Error).
    Error(String),
    /// The test chose not to run (reported as skipped).
    Skip(String),
}

/// The result type of test bodies and layer hooks.
pub type TestResult = Result<(), TestError>;

/// Lets `?` turn any error into an Error outcome, as anyhow does.
impl<E: std::error::Error> From<E> for TestError {
    fn from(error: E) -> Self {
        TestError::Error(error.to_string())
    }
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Failure(m) | TestError::Error(m) | TestError::Skip(m) => f.write_str(m),
        }
    }
}

/// Anything a test body or hook may return: `()` or a [`TestResult`].
pub trait IntoTestResult {
    /// Converts into the canonical result.
    fn into_test_result(self) -> TestResult;
}

impl IntoTestResult for () {
    fn into_test_result(self) -> TestResult {
        Ok(())
    }
}

impl IntoTestResult for TestResult {
    fn into_test_result(self) -> TestResult {
        self
    }
}

/// What a failed check (or `skip!`) returns from the function it is in: the check macros work in
/// any function or closure whose return type implements this.
///
/// For a [`TestResult`] (any `Result<T, E>` with `E: From<TestError>`) it is the `Err`. For `()` the
/// SDK records the outcome and the function returns early; the test then ends with the first
/// outcome recorded that way, even if its body goes on and returns `Ok(())`. Nothing traps.
pub trait CheckReturn {
    /// The value to return after a failed check.
    fn check_failed(error: TestError) -> Self;
}

impl CheckReturn for () {
    fn check_failed(error: TestError) {
        PENDING.with_borrow_mut(|pending| {
            pending.get_or_insert(error);
        });
    }
}

impl<T, E: From<TestError>> CheckReturn for Result<T, E> {
    fn check_failed(error: TestError) -> Self {
        Err(error.into())
    }
}

thread_local! {
    /// The first check that failed in a `()` context during the current call.
    static PENDING: std::cell::RefCell<Option<TestError>> = const { std::cell::RefCell::new(None) };
}

/// Forgets any recorded outcome; called before each test and hook.
pub(crate) fn clear_pending() {
    PENDING.with_borrow_mut(|pending| *pending = None);
}

/// The outcome of a call: a check recorded in a `()` context came first, so it wins.
pub(crate) fn settle(result: TestResult) -> TestResult {
    match PENDING.with_borrow_mut(Option::take) {
        Some(error) => Err(error),
        None => result,
    }
}

/// Fails the test (without trapping) unless the condition holds.
///
/// `check!(cond)` or `check!(cond, "format {}", args)`. Works in functions and closures returning
/// `()` or a [`TestResult`] (see [`CheckReturn`]).
#[macro_export]
macro_rules! check {
    ($cond:expr $(,)?) => {
        if !$cond {
            return $crate::CheckReturn::check_failed($crate::TestError::Failure(::std::format!(
                "check failed: {} at {}:{}",
                ::core::stringify!($cond),
                ::core::file!(),
                ::core::line!()
            )));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return $crate::CheckReturn::check_failed($crate::TestError::Failure(::std::format!(
                "{} at {}:{}",
                ::std::format!($($fmt)+),
                ::core::file!(),
                ::core::line!()
            )));
        }
    };
}

/// Fails the test (without trapping) unless the two values are equal.
#[macro_export]
macro_rules! check_eq {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => {
                if !(*left == *right) {
                    return $crate::CheckReturn::check_failed($crate::TestError::Failure(::std::format!(
                        "check failed: {} == {}\n  left: {:?}\n right: {:?}\nat {}:{}",
                        ::core::stringify!($left),
                        ::core::stringify!($right),
                        left,
                        right,
                        ::core::file!(),
                        ::core::line!()
                    )));
                }
            }
        }
    };
}

/// Fails the test (without trapping) if the two values are equal.
#[macro_export]
macro_rules! check_ne {
    ($left:expr, $right:expr $(,)?) => {
        match (&$left, &$right) {
            (left, right) => {
                if *left == *right {
                    return $crate::CheckReturn::check_failed($crate::TestError::Failure(::std::format!(
                        "check failed: {} != {}\n  both: {:?}\nat {}:{}",
                        ::core::stringify!($left),
                        ::core::stringify!($right),
                        left,
                        ::core::file!(),
                        ::core::line!()
                    )));
                }
            }
        }
    };
}

/// Ends the test as skipped, with a reason.
#[macro_export]
macro_rules! skip {
    ($($fmt:tt)+) => {
        return $crate::CheckReturn::check_failed($crate::TestError::Skip(::std::format!($($fmt)+)))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit_check(value: u32, reached: &std::cell::Cell<bool>) {
        crate::check!(value < 5, "saw {value}");
        reached.set(true);
    }

    fn result_check(value: u32) -> TestResult {
        crate::check_eq!(value, 1);
        Ok(())
    }

    #[test]
    fn a_failed_check_in_a_unit_function_returns_early_and_is_kept() {
        clear_pending();
        let reached = std::cell::Cell::new(false);
        unit_check(1, &reached);
        assert!(reached.get());
        assert_eq!(settle(Ok(())), Ok(()));
        reached.set(false);
        unit_check(9, &reached);
        unit_check(8, &reached);
        assert!(!reached.get(), "a failed check returns from its function");
        // The first recorded failure wins, even over what the test returned after it.
        let settled = settle(Err(TestError::Error("later".into()))).unwrap_err();
        assert!(matches!(&settled, TestError::Failure(m) if m.starts_with("saw 9 at ")), "{settled:?}");
        assert_eq!(settle(Ok(())), Ok(()), "settling takes the recorded failure");
    }

    #[test]
    fn a_failed_check_in_a_result_function_is_its_error() {
        clear_pending();
        assert_eq!(result_check(1), Ok(()));
        let failure = result_check(2).unwrap_err();
        assert!(matches!(&failure, TestError::Failure(m) if m.starts_with("check failed: value == 1")), "{failure:?}");
        assert_eq!(settle(Ok(())), Ok(()), "nothing was recorded on the side");
        let closure = || crate::check_ne!(1, 1);
        closure();
        assert!(matches!(settle(Ok(())), Err(TestError::Failure(m)) if m.contains("check failed: 1 != 1")));
        fn skips() {
            crate::skip!("later")
        }
        skips();
        assert_eq!(settle(Ok(())), Err(TestError::Skip("later".into())));
    }
}
