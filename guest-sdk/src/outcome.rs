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

/// Fails the test (without trapping) unless the condition holds.
///
/// `check!(cond)` or `check!(cond, "format {}", args)`.
#[macro_export]
macro_rules! check {
    ($cond:expr $(,)?) => {
        if !$cond {
            return ::core::result::Result::Err($crate::TestError::Failure(::std::format!(
                "check failed: {} at {}:{}",
                ::core::stringify!($cond),
                ::core::file!(),
                ::core::line!()
            )));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return ::core::result::Result::Err($crate::TestError::Failure(::std::format!(
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
                    return ::core::result::Result::Err($crate::TestError::Failure(::std::format!(
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
                    return ::core::result::Result::Err($crate::TestError::Failure(::std::format!(
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
        return ::core::result::Result::Err($crate::TestError::Skip(::std::format!($($fmt)+)))
    };
}
