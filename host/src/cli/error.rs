//! Why a command failed, and the exit status each failure maps to: the one place the
//! CLI decides either.

use std::path::PathBuf;

use thiserror::Error;

use super::new::NewError;
use super::options::OptionError;
use crate::plan::NothingSelected;
use crate::run::{RunError, RunFailure};
use crate::sandbox::SandboxError;
use crate::suite::SuiteError;

/// Exit status when every test passed.
pub const EXIT_OK: u8 = 0;
/// Exit status when a test failed or errored, or a layer hook failed.
pub const EXIT_TESTS_FAILED: u8 = 1;
/// Exit status for a usage error or a bad suite: a bad flag, a missing file, a module
/// that is not a suite or that breaks the ABI (before or during the run).
pub const EXIT_USAGE: u8 = 2;
/// Exit status with `--fail-on-leak` when a layer leaks and no test failed.
pub const EXIT_LEAKED: u8 = 3;
/// Exit status when the host's environment failed: a missing toolchain, a report file, a thread.
pub const EXIT_ENVIRONMENT: u8 = 4;
/// Exit status when leakhost itself failed: a bug, to be reported, not a mistake of the user's.
pub const EXIT_INTERNAL: u8 = 5;

/// A command's failure, rendered once as one `leakhost: error:` line.
#[derive(Debug, Error)]
pub enum CliError {
    /// The command line is wrong.
    #[error("{0}")]
    Usage(String),
    /// A flag's value parsed but cannot be used.
    #[error(transparent)]
    Option(#[from] OptionError),
    /// The selection matched no test (and `--no-tests` did not allow that).
    #[error(transparent)]
    NothingSelected(#[from] Box<NothingSelected>),
    /// The thread that runs the command could not start.
    #[error("--max-stack {max_stack}: cannot start a thread with that much stack: {source}")]
    Thread {
        /// The `--max-stack` given.
        max_stack: String,
        /// The operating system's answer.
        source: std::io::Error,
    },
    /// leakhost failed where no input should make it fail.
    #[error("internal error: {0}; this is a bug in leakhost, please report it with the command that caused it")]
    Internal(String),
    /// The engine or sandbox could not be set up.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// `leakhost new` could not create the suite.
    #[error(transparent)]
    New(#[from] NewError),
    /// A target could not become a suite.
    #[error(transparent)]
    Suite(#[from] SuiteError),
    /// A suite could not start.
    #[error("{path}: {error}")]
    Start {
        /// The suite's path.
        path: PathBuf,
        /// Why.
        error: RunError,
    },
    /// A suite broke the ABI or could not be restarted during the run.
    #[error(transparent)]
    Aborted(#[from] RunFailure),
    /// A report file could not be opened or written.
    #[error("{path}: cannot write the {what} report: {source}")]
    Report {
        /// The file.
        path: PathBuf,
        /// Which report.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl CliError {
    /// The exit status this failure ends the process with (documented in README.md).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Option(_) | CliError::NothingSelected(_) => EXIT_USAGE,
            CliError::Sandbox(SandboxError::Preopen { .. }) => EXIT_USAGE,
            CliError::Thread { .. } => EXIT_ENVIRONMENT,
            CliError::Internal(_) => EXIT_INTERNAL,
            CliError::Sandbox(_) => EXIT_ENVIRONMENT,
            CliError::Suite(SuiteError::TargetMissing(_)) => EXIT_ENVIRONMENT,
            CliError::Suite(_) => EXIT_USAGE,
            CliError::Start { error, .. } | CliError::Aborted(RunFailure { error, .. }) => run_error_code(error),
            CliError::Report { .. } | CliError::New(NewError::Write { .. }) => EXIT_ENVIRONMENT,
            CliError::New(_) => EXIT_USAGE,
        }
    }
}

fn run_error_code(error: &RunError) -> u8 {
    match error {
        RunError::Sandbox(SandboxError::Preopen { .. }) => EXIT_USAGE,
        RunError::Thread(_) | RunError::Sandbox(_) => EXIT_ENVIRONMENT,
        RunError::Link(_) | RunError::Instance(_) | RunError::Counters(_) => EXIT_USAGE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_status() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::Suite(SuiteError::NotFound("a.wasm".into())).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::Suite(SuiteError::TargetMissing(String::new())).exit_code(), EXIT_ENVIRONMENT);
        let report =
            CliError::Report { path: "r.xml".into(), what: "JUnit", source: std::io::Error::other("disk full") };
        assert_eq!(report.exit_code(), EXIT_ENVIRONMENT);
        assert_eq!(report.to_string(), "r.xml: cannot write the JUnit report: disk full");
        let aborted = CliError::from(RunFailure { suite: "s.wasm".into(), error: RunError::Counters("trap".into()) });
        assert_eq!(aborted.exit_code(), EXIT_USAGE);
        let internal = CliError::Internal("the command panicked".into());
        assert_eq!(internal.exit_code(), EXIT_INTERNAL);
        assert!(internal.to_string().starts_with("internal error: the command panicked; this is a bug"));
        let thread = CliError::Thread { max_stack: "200M".into(), source: std::io::Error::other("no memory") };
        assert_eq!(thread.exit_code(), EXIT_ENVIRONMENT);
    }
}
