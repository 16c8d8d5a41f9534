//! What a call into a guest instance gives back, and the per-call limits it runs
//! under: shared by the ABI's instances (`instance`) and libtest binaries' (`bare`).

mod trap_text;

use std::fmt;

use leakhost_guest::abi::export;
use serde::{Deserialize, Serialize};
use wasmtime::Store;

use crate::abi::{self, AbiError};
use crate::sandbox::{self, human_bytes, GuestState, LimitExceeded, Policy, SandboxError};
use crate::text::GuestText;

/// How a call into the guest ended. Messages are guest text: the guest's own, or a
/// trap description that names guest functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "message", rename_all = "snake_case")]
pub enum Outcome {
    /// Passed or succeeded.
    Pass,
    /// An assertion did not hold.
    Failure(GuestText),
    /// Anything else went wrong.
    Error(GuestText),
    /// The test skipped itself.
    Skip(GuestText),
}

impl Outcome {
    /// The message, `None` for a pass.
    pub fn message(&self) -> Option<&GuestText> {
        match self {
            Outcome::Pass => None,
            Outcome::Failure(m) | Outcome::Error(m) | Outcome::Skip(m) => Some(m),
        }
    }

    /// Whether it counts against the run (a failure or an error).
    pub fn failed(&self) -> bool {
        matches!(self, Outcome::Failure(_) | Outcome::Error(_))
    }
}

/// The result of one call, and whether the instance survived it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResult {
    /// The outcome.
    pub outcome: Outcome,
    /// The instance trapped and must be replaced.
    pub trapped: bool,
}

/// Failures of the instance itself, as opposed to a test's.
#[derive(Debug)]
pub enum InstanceError {
    /// Instantiation or `_initialize` failed.
    Start(String),
    /// The sandbox could not be set up for the instance.
    Sandbox(SandboxError),
    /// A record the guest exposed is malformed.
    Abi(AbiError),
    /// `leakhost_abi_version` returned a version this host does not speak.
    Version(u32),
    /// A fresh instance declared a different manifest than the first one.
    ManifestChanged,
    /// A fresh instance could not be given the snapshot's state.
    Restore(String),
    /// An ABI v2 suite does not export `leakhost_trace_flag` as `() -> i32`.
    TraceFlag,
    /// A WASI command without the ABI whose tests could not be listed.
    NotLibtest(String),
    /// A libtest binary none of whose tests can be called.
    NoRunnableTests(String),
}

impl fmt::Display for InstanceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceError::Start(why) => write!(f, "cannot start an instance: {}", one_line(why)),
            InstanceError::Sandbox(e) => write!(f, "{e}"),
            InstanceError::Abi(e) => write!(f, "invalid ABI data: {e}"),
            InstanceError::Version(v) => {
                write!(f, "ABI version {v} is not supported (this leakhost speaks versions 1 and {})", abi::ABI_VERSION)
            }
            InstanceError::ManifestChanged => write!(
                f,
                "a fresh instance declared a different manifest than the first one; a suite must declare the same layers and tests in every instance (no randomness or clock in its declare function)"
            ),
            InstanceError::TraceFlag => write!(
                f,
                "the suite speaks ABI v2 but does not export {} as a function () -> i32 (docs/abi.md §11)",
                export::TRACE_FLAG
            ),
            InstanceError::Restore(why) => write!(
                f,
                "cannot start a fresh instance from the snapshot: {why} (set LEAKHOST_NO_SNAPSHOT=1 to run start-up in every instance)"
            ),
            InstanceError::NoRunnableTests(why) => write!(f, "{why}"),
            InstanceError::NotLibtest(why) => write!(
                f,
                "not a leakhost suite: a WASI command without any leakhost_* export, and not a libtest test binary ({why}); build a suite as a cdylib with leakhost-guest, or give `cargo test --no-run` binaries"
            ),
        }
    }
}

/// The per-call limits, armed before every call and named when one is hit.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    deadline_ticks: Option<u64>,
    timeout: Option<std::time::Duration>,
    fuel: Option<u64>,
    max_stack: usize,
}

impl Limits {
    pub(super) fn new(policy: &Policy) -> Self {
        Limits {
            deadline_ticks: policy.deadline_ticks(),
            timeout: policy.timeout,
            fuel: policy.fuel,
            max_stack: policy.max_stack,
        }
    }

    pub(super) fn arm(&self, store: &mut Store<GuestState>) {
        sandbox::start_call(store);
        if let Some(ticks) = self.deadline_ticks {
            store.set_epoch_deadline(ticks);
        }
        if let Some(fuel) = self.fuel {
            // Fuel is enabled on the engine whenever a budget is set, so this cannot fail.
            let _ = store.set_fuel(fuel);
        }
    }

    /// Renders a wasmtime error from a call: the limit or trap, then wasmtime's context.
    pub(super) fn describe(&self, error: &wasmtime::Error) -> String {
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return format!("the guest called proc_exit({}); a suite must not exit", exit.0);
        }
        if let Some(limit) = error.downcast_ref::<LimitExceeded>() {
            return limit.to_string();
        }
        let detail = trim_backtrace(&trap_text::render(error, MAX_BACKTRACE_FRAMES), MAX_BACKTRACE_FRAMES);
        trap_text::capped(match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => match self.timeout {
                Some(t) => format!("exceeded the time limit of {} s (--timeout)\n{detail}", t.as_secs_f64()),
                None => detail,
            },
            Some(wasmtime::Trap::OutOfFuel) => {
                format!("ran out of fuel: used the budget of {} (--fuel)\n{detail}", self.fuel.unwrap_or(0))
            }
            Some(wasmtime::Trap::StackOverflow) => {
                format!("overflowed the wasm stack of {} (--max-stack)\n{detail}", human_bytes(self.max_stack as u64))
            }
            // Name the trap first; the backtrace follows for whoever needs it.
            _ => format!("{}\n{detail}", one_line(&detail)),
        })
    }
}

/// The gist of a multi-line trap description: its first line, or the trap itself
/// when the first line only announces a backtrace.
fn one_line(detail: &str) -> String {
    let first = detail.lines().next().unwrap_or("");
    // anyhow numbers the causes ("0: ...", "1: ..."); the last is the root.
    let cause = detail.split_once("Caused by:").and_then(|(_, cause)| {
        cause.lines().map(str::trim).rfind(|l| !l.is_empty()).map(|l| match l.split_once(": ") {
            Some((n, rest)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => rest,
            _ => l,
        })
    });
    match cause {
        Some(cause) => {
            let prefix = first.trim_end_matches("error while executing at wasm backtrace:").trim_end();
            if prefix.is_empty() {
                cause.to_string()
            } else {
                format!("{prefix} {cause}")
            }
        }
        None => first.to_string(),
    }
}

/// Frames of a wasm backtrace kept in a message; deep recursion would print thousands.
const MAX_BACKTRACE_FRAMES: usize = 10;

/// Keeps the first `max` frames of wasmtime's backtrace and says how many were cut.
fn trim_backtrace(detail: &str, max: usize) -> String {
    let is_frame = |line: &str| {
        let t = line.trim_start();
        t.split_once(':').is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            || line.starts_with("           at ")
    };
    let mut kept = Vec::new();
    let (mut frames, mut cut) = (0usize, 0usize);
    let mut causes = false;
    for line in detail.lines() {
        // After "Caused by:" come numbered causes, not frames: they are always kept.
        causes |= line.starts_with("Caused by:");
        if !causes && is_frame(line) {
            let starts_frame = !line.starts_with("           at ");
            if starts_frame {
                frames += 1;
            }
            if frames > max {
                cut += usize::from(starts_frame);
                continue;
            }
        } else if cut > 0 {
            kept.push(format!("    ... {cut} more frames not shown"));
            cut = 0;
        }
        kept.push(line.to_string());
    }
    if cut > 0 {
        kept.push(format!("    ... {cut} more frames not shown"));
    }
    kept.join("\n")
}

#[cfg(test)]
mod tests {
    use super::trim_backtrace;

    #[test]
    fn start_errors_collapse_to_one_line() {
        let detail = "leakhost_manifest: error while executing at wasm backtrace:\n    0: f\n\nCaused by:\n    wasm trap: wasm `unreachable` instruction executed";
        assert_eq!(super::one_line(detail), "leakhost_manifest: wasm trap: wasm `unreachable` instruction executed");
        assert_eq!(super::one_line("plain reason"), "plain reason");
    }

    #[test]
    fn long_backtraces_are_cut_with_a_count() {
        let frames: String = (0..25).map(|i| format!("   {i}:    0xabe - m.wasm!f\n")).collect();
        let detail = format!(
            "error while executing at wasm backtrace:\n{frames}\nCaused by:\n    wasm trap: call stack exhausted"
        );
        let trimmed = trim_backtrace(&detail, 10);
        assert_eq!(trimmed.matches("m.wasm!f").count(), 10);
        assert!(trimmed.contains("... 15 more frames not shown"));
        assert!(trimmed.ends_with("wasm trap: call stack exhausted"));
        assert_eq!(trim_backtrace("plain", 10), "plain");
    }

    #[test]
    fn numbered_causes_are_kept_and_the_root_one_names_the_trap() {
        let frames: String = (0..25).map(|i| format!("   {i}:    0xabe - m.wasm!f\n")).collect();
        let detail = format!(
            "error while executing at wasm backtrace:\n{frames}\nCaused by:\n    0: memory fault at wasm address 0xfffffff8\n    1: wasm trap: out of bounds memory access"
        );
        let trimmed = trim_backtrace(&detail, 10);
        assert!(
            trimmed
                .ends_with("0: memory fault at wasm address 0xfffffff8\n    1: wasm trap: out of bounds memory access"),
            "{trimmed}"
        );
        assert_eq!(super::one_line(&trimmed), "wasm trap: out of bounds memory access");
    }
}
