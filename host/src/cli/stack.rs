//! Where a command runs: on a thread whose stack holds the whole `--max-stack`.
//!
//! Wasm runs on the native stack of the thread that calls it, so the command needs
//! [`worker_stack_size`] of stack, as `-j` gives its workers. The main thread has it when its
//! stack limit does, or can be raised to: a run then starts no thread of its own, which saves
//! about 4% of the headline command (issue 26). Otherwise the command gets a thread of that size.

use std::panic::AssertUnwindSafe;

use super::CliError;

/// The largest stack the main thread is asked to grow to. Linux places the memory mappings at
/// least 128 MiB below the initial stack whatever the limit was at exec, so the stack can grow
/// this far without running into them.
#[cfg(target_os = "linux")]
const MOST_MAIN_STACK: usize = 64 << 20;

/// Runs `command` where `stack` bytes of native stack are available: on this thread if it is the
/// main thread and its stack can grow that far, else on a new thread. A panic becomes
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

/// Whether this is the main thread and its stack may grow to `bytes`, raising the soft stack
/// limit (inherited by the processes it starts, such as cargo) if the hard limit allows.
#[cfg(target_os = "linux")]
fn main_stack_holds(bytes: usize) -> bool {
    if bytes > MOST_MAIN_STACK || std::thread::current().name() != Some("main") {
        return false;
    }
    let wanted = bytes as libc::rlim_t;
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_STACK, &mut limit) } != 0 {
        return false;
    }
    let within = |l: libc::rlim_t| l == libc::RLIM_INFINITY || l >= wanted;
    if within(limit.rlim_cur) {
        return true;
    }
    if !within(limit.rlim_max) {
        return false;
    }
    let raised = libc::rlimit { rlim_cur: wanted, rlim_max: limit.rlim_max };
    // SAFETY: setrlimit only reads the struct it is given. The kernel checks the limit as the
    // stack grows, so raising it now lets the main thread's stack grow further.
    unsafe { libc::setrlimit(libc::RLIMIT_STACK, &raised) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn main_stack_holds(_bytes: usize) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_thread_is_not_the_main_thread() {
        assert!(!main_stack_holds(1 << 20));
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
