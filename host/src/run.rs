//! Executing plans: layers in zope order, their iterations, fresh instances after
//! traps, and the stream of [`Event`]s that reporters render.
//!
//! [`run`] emits the whole lifecycle. Inside a suite, [`layers`] is the one layer state
//! machine (serial and `-j` alike), [`layer_run`] runs one layer's iterations and
//! [`parallel`] spreads layers over worker threads.

mod bare;
mod call;
pub mod conformance;
mod event;
pub(crate) mod image;
mod instance;
mod layer_run;
mod layers;
mod options;
mod parallel;
mod session;
mod trace;

use std::time::Instant;

use thiserror::Error;

use crate::leak::policy::PolicyJudge;
use crate::plan::{Plan, SelectionRecord};
use crate::sandbox::SandboxError;
use crate::text::GuestText;
pub use call::{CallResult, InstanceError, Outcome};
pub use event::{
    Counts, Event, EventSink, FreshReason, HookOutcome, LayerId, LayerRef, Phases, RunStart, SuiteId, Summary, TestId,
    TestRef,
};
pub use options::{Execution, ReplayBudget, RunOptions, DEFAULT_MAX_ITERATIONS, DEFAULT_REPLAY_BUDGET, DEFAULT_WARMUP};
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
/// layers and a suite-finished event, the policy's results, then run finished, or run
/// aborted when a suite broke the ABI or could not be restarted. `-x` stops at the first
/// suite that failed. `selection` is only recorded: the plans already applied it.
pub fn run(
    suites: &mut [SuiteRun<'_, '_>],
    options: &RunOptions,
    selection: &SelectionRecord,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunFailure> {
    sink.send(Event::RunStarted(Box::new(RunStart {
        suites: suites.len(),
        layers: suites.iter().map(|s| s.plan.layers.len()).sum(),
        tests: suites.iter().map(|s| s.plan.test_count()).sum(),
        options: options.clone(),
        execution: options.execution,
        selection: selection.clone(),
        policy: options.policy.sources(),
    })));
    let key = options.key(suites.iter().map(|s| s.name.clone()).collect());
    let mut judge = options.policy.judge(&key);
    let mut total = Summary::default();
    for (index, suite) in suites.iter_mut().enumerate() {
        let id = SuiteId(index as u32);
        sink.send(Event::SuiteStarted {
            suite: id,
            name: suite.name.clone(),
            layers: suite.plan.layers.len(),
            tests: suite.plan.test_count(),
        });
        let scope = layers::Scope { suite: id, name: &suite.name, plan: suite.plan, replay: &trace::TracedReplay };
        match run_suite(suite.session, scope, options, judge.as_mut(), sink) {
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
    if let Some(judge) = judge {
        sink.send(Event::PolicyFinished { summary: Box::new(judge.finish()) });
    }
    sink.send(Event::RunFinished { summary: Box::new(total.clone()) });
    Ok(total)
}

/// Runs one suite's plan, serially or on `options.execution.jobs` threads.
fn run_suite(
    session: &mut Session<'_>,
    cx: layers::Scope<'_>,
    options: &RunOptions,
    judge: Option<&mut PolicyJudge<'_>>,
    sink: &mut dyn EventSink,
) -> Result<Summary, RunError> {
    let started = Instant::now();
    let mut summary = if options.execution.jobs > 1 && cx.plan.layers.len() > 1 {
        parallel::run(session, cx, options, judge, sink)?
    } else {
        let mut driver = layer_run::SessionDriver { session, cx, options };
        layers::drive(cx, options, &mut driver, judge, sink)?
    };
    summary.elapsed = started.elapsed();
    Ok(summary)
}
