//! Executing plans: layers in zope order, their iterations, fresh instances after
//! traps, and the stream of [`Event`]s that reporters render.
//!
//! [`run`] emits the whole lifecycle. Inside a suite, [`layers`] is the one layer state
//! machine (serial and `-j` alike), [`layer_run`] runs one layer's iterations and
//! [`parallel`] spreads layers over worker threads.

mod bare;
pub mod conformance;
mod event;
pub(crate) mod image;
mod instance;
mod layer_run;
mod layers;
mod parallel;
mod session;
mod trace;

use std::time::Instant;

use thiserror::Error;

use crate::plan::Plan;
use crate::sandbox::SandboxError;
use crate::text::GuestText;
pub use event::{
    Counts, Event, EventSink, FreshReason, HookOutcome, LayerId, LayerRef, Phases, RunStart, SuiteId, Summary, TestId,
    TestRef,
};
pub use instance::{CallResult, InstanceError, Outcome};
pub use parallel::worker_stack_size;
pub use session::Session;

/// Why a run could not start or continue (as opposed to tests failing).
#[derive(Debug, Error)]
pub enum RunError {
    /// The sandbox could not be built.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The module could not be linked against the sandbox.
    #[error("cannot link the module: {0}")]
    Link(String),
    /// An instance could not be started or exposed bad data.
    #[error("{0}")]
    Instance(InstanceError),
    /// Taking a counters snapshot trapped or returned a malformed record.
    #[error("cannot read the counters snapshot: {0}")]
    Counters(String),
    /// A `-j` worker thread could not be started.
    #[error("cannot start a worker thread: {0}")]
    Thread(String),
}

/// The default `--max-iterations`: a leak on every 8th call needs three growths 8 apart
/// (iteration 24, with the warm-up), a table doubling from iteration 4 grows at 8 and
/// 16, and a cache settles after [`crate::leak::HORIZON`] flat iterations; 32 leaves room.
pub const DEFAULT_MAX_ITERATIONS: u32 = 32;

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many times each layer's tests repeat (`-N`).
    pub repeat: u32,
    /// With `measure`, a layer whose verdict is undecided after `repeat` iterations gets
    /// more, up to this many in all (`--max-iterations`); `repeat` or less adds none.
    pub max_iterations: u32,
    /// Take counters snapshots after set-up, after every test and after every
    /// iteration, and give each layer a leak verdict.
    pub measure: bool,
    /// How many leading iterations are warm-up and not counted by the verdict.
    pub warmup: usize,
    /// Stop after the first failing or erroring test (`-x`): the rest of its layer,
    /// its remaining iterations and all later layers are skipped; set-up layers are
    /// still torn down.
    pub stop_on_error: bool,
    /// Layers run in parallel on this many threads (`-j`); 1 runs serially.
    pub jobs: usize,
    /// With `measure`: snapshot around every test in every iteration, because a sink
    /// shows per-test changes ([`EventSink::wants_every_test_delta`]). Otherwise only
    /// what the verdict's rule needs is measured.
    pub every_test_delta: bool,
    /// The engine's name (`--engine`), for `run_started`; the session runs on whatever engine it was given.
    pub engine: &'static str,
    /// The guest's random seed (`--seed`), for `run_started`.
    pub seed: u64,
    /// With `measure`: replay every leaking layer with allocation tracing and report
    /// where its leaked blocks were allocated (off with `--no-stacks`).
    pub stacks: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            repeat: 1,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            measure: false,
            warmup: 1,
            stop_on_error: false,
            jobs: 1,
            every_test_delta: false,
            engine: "cranelift",
            seed: 0,
            stacks: true,
        }
    }
}

/// One suite of a run: its started session and its plan.
pub struct SuiteRun<'a, 'e> {
    /// The module's file name, as events name the suite.
    pub name: String,
    /// Where it came from, for error messages.
    pub path: String,
    /// Its session.
    pub session: &'a mut Session<'e>,
    /// What to run.
    pub plan: &'a Plan,
}

/// A run that could not go on, and the suite it stopped in.
#[derive(Debug, Error)]
#[error("{suite}: {error}")]
pub struct RunFailure {
    /// The suite's path.
    pub suite: String,
    /// What went wrong.
    pub error: RunError,
}

/// Runs every suite in order, emitting the whole lifecycle: run started, per suite its
/// layers and a suite-finished event, then run finished, or run aborted when a suite
/// broke the ABI or could not be restarted. `-x` stops at the first suite that failed.
pub fn run(
    suites: &mut [SuiteRun<'_, '_>],
    options: &RunOptions,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunFailure> {
    let mut options = options.clone();
    options.every_test_delta |= options.measure && sink.wants_every_test_delta();
    sink.send(Event::RunStarted(RunStart {
        suites: suites.len(),
        layers: suites.iter().map(|s| s.plan.layers.len()).sum(),
        tests: suites.iter().map(|s| s.plan.test_count()).sum(),
        repeat: options.repeat,
        max_iterations: options.max_iterations,
        measure: options.measure,
        warmup: options.warmup,
        stop_on_error: options.stop_on_error,
        jobs: options.jobs,
        engine: options.engine,
        seed: options.seed,
    }));
    let mut total = Summary::default();
    for (index, suite) in suites.iter_mut().enumerate() {
        let id = SuiteId(index as u32);
        sink.send(Event::SuiteStarted {
            suite: id,
            name: suite.name.clone(),
            layers: suite.plan.layers.len(),
            tests: suite.plan.test_count(),
        });
        let scope = layers::Scope { suite: id, plan: suite.plan };
        match run_suite(suite.session, scope, &options, sink) {
            Ok(summary) => {
                sink.send(Event::SuiteFinished { suite: id, summary: Box::new(summary.clone()) });
                let stopped = options.stop_on_error && !summary.ok();
                total.absorb(summary);
                if stopped {
                    break;
                }
            }
            Err(error) => {
                let failure = RunFailure { suite: suite.path.clone(), error };
                sink.send(Event::RunAborted { reason: GuestText::from(failure.to_string()) });
                return Err(failure);
            }
        }
    }
    sink.send(Event::RunFinished { summary: Box::new(total.clone()) });
    Ok(total)
}

/// Runs one suite's plan, serially or on `options.jobs` threads, then reports the
/// allocation stacks of its leaking layers.
fn run_suite(
    session: &mut Session<'_>,
    cx: layers::Scope<'_>,
    options: &RunOptions,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    let mut summary = run_layers(session, cx, options, sink)?;
    if options.measure && options.stacks {
        trace::emit_stacks(session, cx, options, std::mem::take(&mut summary.leaking), sink);
    }
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Runs every planned layer, serially or with `-j` workers.
fn run_layers(
    session: &mut Session<'_>,
    cx: layers::Scope<'_>,
    options: &RunOptions,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunError> {
    if options.jobs > 1 && cx.plan.layers.len() > 1 {
        parallel::run(session, cx, options, sink)
    } else {
        layers::drive(cx, options, &mut layer_run::SessionDriver { session, cx, options }, sink)
    }
}
