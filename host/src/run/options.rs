//! The run options: the one definition of what decides a run's measurements, iterations,
//! verdicts, stacks and exit status. The CLI builds them, the runner obeys them, the
//! `run_started` event and the JSON report carry them, and a baseline is compared by them.
//! Nothing a reader of the run attaches (a report file, verbosity, colour) is in here.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::leak::baseline::RunKey;
use crate::leak::policy::LeakPolicy;
use crate::sandbox::EngineKind;

/// The default `--max-iterations`: a leak on every 8th call needs three growths 8 apart
/// (iteration 24, with the warm-up), a table doubling from iteration 4 grows at 8 and
/// 16, and a cache settles after [`crate::leak::HORIZON`] flat iterations; 32 leaves room.
pub const DEFAULT_MAX_ITERATIONS: u32 = 32;

/// The default `--warmup`: the first iteration fills caches and pools, so it is not counted.
pub const DEFAULT_WARMUP: usize = 1;

/// What a traced replay of one leaking layer may spend; past any of it the replay stops
/// recording, its stacks say so, and the verdict stands (docs/sandbox.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayBudget {
    /// Live blocks the tracer follows at once (`--max-traced-blocks`).
    pub traced_blocks: usize,
    /// Stacks captured (`--max-stack-captures`).
    pub captures: usize,
    /// Distinct stacks kept (`--max-distinct-stacks`).
    pub stacks: usize,
    /// Bytes of distinct frame text (names and paths) kept (`--max-frame-text`).
    pub frame_text: usize,
}

/// The default [`ReplayBudget`]: about 150 MB for the blocks and 100 MB for the stacks at
/// their limits, far beyond what a real leak needs.
pub const DEFAULT_REPLAY_BUDGET: ReplayBudget =
    ReplayBudget { traced_blocks: 1_000_000, captures: 100_000, stacks: 10_000, frame_text: 16 << 20 };

impl Default for ReplayBudget {
    fn default() -> Self {
        DEFAULT_REPLAY_BUDGET
    }
}

/// How a run is carried out, as opposed to what it measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// Layers run in parallel on this many threads (`-j`); 1 (or 0) runs serially.
    pub jobs: usize,
    /// How the suite's code runs (`--engine`); the session runs on whatever engine it was given.
    pub engine: EngineKind,
}

/// How to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOptions {
    /// How many times each layer's tests repeat (`-N`).
    pub repeat: u32,
    /// With `measure`, a layer whose verdict is undecided after `repeat` iterations gets
    /// more, up to this many in all (`--max-iterations`); `repeat` or less adds none.
    pub max_iterations: u32,
    /// Take counters snapshots and give each layer a leak verdict (`-r`).
    pub measure: bool,
    /// How many leading iterations are warm-up and not counted by the verdict.
    pub warmup: usize,
    /// Stop after the first failing or erroring test (`-x`): the rest of its layer,
    /// its remaining iterations and all later layers are skipped; set-up layers are
    /// still torn down.
    pub stop_on_error: bool,
    /// How the run is carried out: no result depends on it, so a report leaves it out and
    /// two runs that differ only in it give the same report (`run_started` names it).
    #[serde(skip)]
    pub execution: Execution,
    /// The guest's random seed (`--seed`).
    pub seed: u64,
    /// With `measure`: replay every leaking layer with allocation tracing and report
    /// where its leaked blocks were allocated (off with `--no-stacks`).
    pub stacks: bool,
    /// What each replay may spend.
    pub replay_budget: ReplayBudget,
    /// A leak the policy does not excuse fails the run (`--fail-on-leak`).
    pub fail_on_leak: bool,
    /// A layer still undecided at `max_iterations` fails the run (`--fail-on-undecided`).
    pub fail_on_undecided: bool,
    /// Allowances and a baseline, loaded before the run and judged by the runner as each
    /// leaking layer's verdict and stacks are known. Their sources are in `run_started`.
    #[serde(skip)]
    pub policy: Arc<LeakPolicy>,
}

/// Options are equal when they are written down the same: neither the policy (its sources
/// are in `run_started`) nor the execution is part of them.
impl PartialEq for RunOptions {
    fn eq(&self, other: &Self) -> bool {
        serde_json::to_value(self).ok() == serde_json::to_value(other).ok()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            repeat: 1,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            measure: false,
            warmup: DEFAULT_WARMUP,
            stop_on_error: false,
            execution: Execution::default(),
            seed: 0,
            stacks: true,
            replay_budget: ReplayBudget::default(),
            fail_on_leak: false,
            fail_on_undecided: false,
            policy: Arc::default(),
        }
    }
}

impl RunOptions {
    /// What a baseline must share with a run of `suites` under these options to compare.
    pub fn key(&self, suites: Vec<String>) -> RunKey {
        RunKey {
            suites,
            repeat: self.repeat.into(),
            measure: self.measure,
            warmup: self.warmup as u64,
            stop_on_error: self.stop_on_error,
        }
    }

    /// Whether two runs' options are those of one run (how each was carried out aside):
    /// what merging reports of its partitions requires.
    pub fn same_run_as(&self, other: &RunOptions) -> bool {
        self == other
    }

    /// The options of a traced replay of one layer that ran `iterations` iterations: the
    /// same iterations, measured as the run measured them, and no replay of its own.
    pub(super) fn replay(&self, iterations: u32) -> RunOptions {
        RunOptions {
            repeat: iterations,
            max_iterations: iterations,
            measure: true,
            execution: Execution { jobs: 1, ..self.execution },
            stop_on_error: false,
            stacks: false,
            policy: Arc::default(),
            ..self.clone()
        }
    }
}
