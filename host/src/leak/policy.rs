//! The leak policy: allowances and a baseline, loaded before a run and applied by the
//! runner to each leaking layer once its verdict and stacks are known. Pure: the CLI
//! loads the files, the runner feeds the judge, reporters render its results.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::allow::{AllowJudge, Allowances, Entry, Leak, Status};
use super::baseline::{Baseline, BaselineStatus, RunKey};
use super::stacks::LeakStacks;
use super::Verdict;
use crate::text::GuestText;

/// Allowances with the files they came from.
#[derive(Debug, Clone, Default)]
pub struct AllowPolicy {
    /// The files, in the order read.
    pub sources: Vec<String>,
    /// Their entries.
    pub allowances: Allowances,
}

/// A baseline with the report it came from.
#[derive(Debug, Clone)]
pub struct BaselinePolicy {
    /// The report file.
    pub source: String,
    /// What it says.
    pub baseline: Baseline,
}

/// What decides whether a run's leaks fail it, beyond `--fail-on-leak` itself.
#[derive(Debug, Clone, Default)]
pub struct LeakPolicy {
    /// `leakhost.toml` beside the suites, or `--allow FILE`.
    pub allow: Option<AllowPolicy>,
    /// `--baseline REPORT.json`.
    pub baseline: Option<BaselinePolicy>,
}

/// Where a policy came from, as `run_started` records it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySources {
    /// The allowance files read.
    pub allow: Vec<String>,
    /// The baseline report.
    pub baseline: Option<String>,
}

impl LeakPolicy {
    /// Whether there is nothing beyond plain `--fail-on-leak`.
    pub fn is_empty(&self) -> bool {
        self.allow.is_none() && self.baseline.is_none()
    }

    /// Its files.
    pub fn sources(&self) -> PolicySources {
        PolicySources {
            allow: self.allow.iter().flat_map(|a| a.sources.clone()).collect(),
            baseline: self.baseline.as_ref().map(|b| b.source.clone()),
        }
    }

    /// A judge for one run of `key`, or `None` without a policy.
    pub fn judge(&self, key: &RunKey) -> Option<PolicyJudge<'_>> {
        if self.is_empty() {
            return None;
        }
        let not_compared = self.baseline.as_ref().and_then(|b| b.baseline.incomparable_with(key));
        Some(PolicyJudge {
            policy: self,
            allow: self.allow.as_ref().map(|a| a.allowances.judge_each()),
            not_compared,
            leaking: BTreeSet::new(),
        })
    }
}

/// What the policy makes of one leaking layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerPolicy {
    /// What the allowances say, when there are any.
    pub allowance: Option<Status>,
    /// How it compares with the baseline, when there is one.
    pub baseline: Option<BaselineStatus>,
    /// Allowed, or no worse than a baseline that compares: the leak does not fail `--fail-on-leak`.
    pub excused: bool,
}

/// An allowance entry as reports name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryRef {
    /// `FILE:LINE`.
    pub place: String,
    /// Its reason.
    pub reason: String,
}

impl From<Entry> for EntryRef {
    fn from(entry: Entry) -> Self {
        EntryRef { place: entry.place, reason: entry.reason }
    }
}

/// What the allowances made of a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowSummary {
    /// The files.
    pub sources: Vec<String>,
    /// Entries that matched no leak: remove them once the leak is fixed.
    pub stale: Vec<EntryRef>,
    /// Frame entries that could excuse a leak that had no allocation stacks.
    pub unchecked: Vec<EntryRef>,
}

/// What the baseline made of a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineSummary {
    /// The report.
    pub source: String,
    /// Why it was not compared, when it was not.
    pub not_compared: Option<String>,
    /// Layers that leaked then and do not now.
    pub fixed: Vec<GuestText>,
}

/// The policy's results for the whole run, after its last layer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySummary {
    /// With allowances.
    pub allowances: Option<AllowSummary>,
    /// With a baseline.
    pub baseline: Option<BaselineSummary>,
}

/// Judges a run's leaking layers one at a time, in run order.
pub struct PolicyJudge<'p> {
    policy: &'p LeakPolicy,
    allow: Option<AllowJudge<'p>>,
    /// Why the baseline does not compare with this run, if it does not.
    not_compared: Option<String>,
    /// (suite, layer) of every leak judged, for the baseline's fixed layers.
    leaking: BTreeSet<(String, String)>,
}

impl PolicyJudge<'_> {
    /// What the policy makes of the leaking `verdict` of `suite`, with its stacks (if any).
    pub fn judge(&mut self, suite: &str, verdict: &Verdict, stacks: Option<&LeakStacks>) -> LayerPolicy {
        self.leaking.insert((suite.to_string(), verdict.layer.raw().to_string()));
        let allowance = self.allow.as_mut().map(|judge| judge.judge(&Leak { verdict, stacks }));
        let baseline = self.policy.baseline.as_ref().map(|b| match &self.not_compared {
            Some(reason) => BaselineStatus::NotCompared { reason: reason.clone() },
            None => b.baseline.compare(suite, verdict),
        });
        let allowed = matches!(allowance, Some(Status::Allowed { .. }));
        let excused = allowed || baseline.as_ref().is_some_and(BaselineStatus::no_worse);
        LayerPolicy { allowance, baseline, excused }
    }

    /// The run's summary: stale and unchecked allowances, the baseline's fixed layers.
    pub fn finish(self) -> PolicySummary {
        let allowances = self.policy.allow.as_ref().zip(self.allow).map(|(policy, judge)| {
            let (stale, unchecked) = judge.finish();
            AllowSummary {
                sources: policy.sources.clone(),
                stale: stale.into_iter().map(EntryRef::from).collect(),
                unchecked: unchecked.into_iter().map(EntryRef::from).collect(),
            }
        });
        let baseline = self.policy.baseline.as_ref().map(|b| BaselineSummary {
            source: b.source.clone(),
            fixed: match self.not_compared {
                Some(_) => Vec::new(),
                None => b.baseline.fixed(&self.leaking),
            },
            not_compared: self.not_compared,
        });
        PolicySummary { allowances, baseline }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::{Growth, Metric, Shape};
    use std::path::Path;

    fn leak(layer: &str) -> Verdict {
        let growth = vec![Growth::from_deltas(Metric::Blocks, vec![1, 1, 1])];
        Verdict {
            shape: Shape::Leaks,
            layer: layer.into(),
            counted: 3,
            growth,
            tests: Vec::new(),
            evidence: Default::default(),
        }
    }

    fn key() -> RunKey {
        RunKey { suites: vec!["s.wasm".into()], repeat: 4, measure: true, warmup: 1, stop_on_error: false }
    }

    #[test]
    fn an_allowed_or_no_worse_leak_is_excused_and_the_summary_names_what_was_unused() {
        let toml = "[[allow]]\nlayer = '^A$'\nreason = 'known'\n\n[[allow]]\nlayer = '^Z$'\nreason = 'gone'\n";
        let allowances = Allowances::parse(Path::new("a.toml"), toml).unwrap();
        let baseline = Baseline::new(key(), [("s.wasm".to_string(), &leak("B")), ("s.wasm".to_string(), &leak("C"))]);
        let policy = LeakPolicy {
            allow: Some(AllowPolicy { sources: vec!["a.toml".into()], allowances }),
            baseline: Some(BaselinePolicy { source: "base.json".into(), baseline }),
        };
        let mut judge = policy.judge(&key()).expect("a policy");
        let a = judge.judge("s.wasm", &leak("A"), None);
        assert!(a.excused && matches!(a.allowance, Some(Status::Allowed { .. })));
        assert_eq!(a.baseline, Some(BaselineStatus::New));
        let b = judge.judge("s.wasm", &leak("B"), None);
        assert!(b.excused, "no worse than the baseline: {b:?}");
        assert_eq!(b.allowance, Some(Status::NotAllowed));
        let summary = judge.finish();
        let allow = summary.allowances.expect("allowances");
        assert_eq!(allow.stale, vec![EntryRef { place: "a.toml:5".into(), reason: "gone".into() }]);
        assert_eq!(summary.baseline.expect("a baseline").fixed, vec![GuestText::from("C")]);
    }

    #[test]
    fn a_baseline_that_does_not_compare_excuses_nothing() {
        let baseline = Baseline::new(key(), [("s.wasm".to_string(), &leak("A"))]);
        let policy = LeakPolicy { allow: None, baseline: Some(BaselinePolicy { source: "b.json".into(), baseline }) };
        let mut other = key();
        other.repeat = 8;
        let mut judge = policy.judge(&other).expect("a policy");
        let a = judge.judge("s.wasm", &leak("A"), None);
        assert!(!a.excused);
        assert!(matches!(a.baseline, Some(BaselineStatus::NotCompared { .. })));
        let summary = judge.finish().baseline.expect("a baseline");
        assert!(summary.not_compared.is_some() && summary.fixed.is_empty());
        assert!(LeakPolicy::default().judge(&key()).is_none());
    }
}
