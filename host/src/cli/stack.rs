//! Where a command runs: on a thread whose stack holds the whole `--max-stack`.
//!
//! Wasm runs on the native stack of the thread that calls it, so the command needs
//! [`worker_stack_size`](crate::run::worker_stack_size) of stack, as `-j` gives its workers. The
//! main thread has it when its stack limit does: a run then starts no thread of its own, which
//! saves about 4% of the headline command (issue 26). Otherwise the command gets a thread of that
//! size.

use std::panic::AssertUnwindSafe;

use super::CliError;

/// Runs `command` where `stack` bytes of native stack are available: on this thread if it is the
/// main thread and its stack limit holds them, else on a new thread. A panic becomes
/// [`CliError::Internal`] either way (its message is already on stderr, from the default hook).
pub(super) fn run_with_stack<R: Send>(
    stack: usize,
    max_stack: String,
    command: impl FnOnce() -> Result<R, CliError> + Send,
) -> Result<R, CliError> {
    let panicked = |_| Err(CliError::Internal("the command panicked".into()));
    if main_stack_holds(stack) {
        return std::panic::catch_unwind(AssertUnwindSafe(command)).unwrap_or_else(panicked);
    }
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new().name("leakhost".into()).stack_size(stack).spawn_scoped(scope, command);
        match thread {
            Ok(thread) => thread.join().unwrap_or_else(panicked),
            Err(source) => Err(CliError::Thread { max_stack, source }),
        }
    })
}

/// Whether this is the main thread and its stack may grow to `bytes`.
#[cfg(target_os = "linux")]
fn main_stack_holds(bytes: usize) -> bool {
    if std::thread::current().name() != Some("main") {
        return false;
    }
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } == 0;
    known && limit_holds(limit.rlim_cur, bytes)
}

#[cfg(not(target_os = "linux"))]
fn main_stack_holds(_bytes: usize) -> bool {
    false
}

/// Whether a main thread under the soft stack limit `limit` can grow its stack to `bytes`.
///
/// Linux grows a main thread's stack up to the limit, and places the other mappings below so that
/// it can. The limit is taken as it was at exec and an unlimited one is not trusted: qemu-user, which
/// runs the aarch64 proof, gives the main thread a fixed stack at start, of the limit's size or
/// 8 MiB when it is unlimited, and never grows it. Raising the limit would therefore not help there.
#[cfg(target_os = "linux")]
fn limit_holds(limit: libc::rlim_t, bytes: usize) -> bool {
    limit != libc::RLIM_INFINITY && libc::rlim_t::try_from(bytes).is_ok_and(|bytes| limit >= bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_thread_is_not_the_main_thread() {
        assert!(!main_stack_holds(1 << 20));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn only_a_finite_limit_that_holds_the_stack_does() {
        assert!(limit_holds(8 << 20, 8 << 20));
        assert!(!limit_holds(8 << 20, (8 << 20) + 1));
        assert!(!limit_holds(libc::RLIM_INFINITY, 1 << 20));
    }

    #[test]
    fn the_command_runs_and_a_panic_is_an_internal_error() {
        assert_eq!(run_with_stack(1 << 20, "1M".into(), || Ok(7)).unwrap(), 7);
        let error = run_with_stack(1 << 20, "1M".into(), || -> Result<(), CliError> { panic!("boom") }).unwrap_err();
        assert!(matches!(error, CliError::Internal(_)), "{error:?}");
    }

    #[test]
    fn a_stack_no_thread_can_have_is_an_environment_error() {
        let error = run_with_stack(usize::MAX / 2, "huge".into(), || Ok(())).unwrap_err();
        assert!(matches!(error, CliError::Thread { .. }), "{error:?}");
    }
}
