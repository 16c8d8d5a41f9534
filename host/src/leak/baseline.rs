//! Baselines (`--baseline REPORT.json`): this run's leaks against an earlier `--json` report.
//!
//! As memray's "fail only on an increase": a leak fails only when it is new or grows
//! faster than in the baseline; what improved is said too. A baseline of other suites or
//! another option set is not compared at all, and says why. Pure: the CLI reads the report
//! (as the typed report model) and hands over its key and leaking verdicts; the runner
//! compares each leaking layer as its verdict is known.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Growth, Verdict};
use crate::text::GuestText;

/// What a run must share with a baseline for the two to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    /// The suites' file names, in order.
    pub suites: Vec<String>,
    /// `-N`.
    pub repeat: u64,
    /// `-r`.
    pub measure: bool,
    /// `--warmup`.
    pub warmup: u64,
    /// `-x`.
    pub stop_on_error: bool,
}

impl RunKey {
    fn options(&self) -> String {
        let mut text = format!("-N {} --warmup {}", self.repeat, self.warmup);
        text.push_str(if self.measure { " -r" } else { " (no -r)" });
        if self.stop_on_error {
            text.push_str(" -x");
        }
        text
    }
}

/// Each leaking quantity's growth per counted iteration, by the quantity's name.
type Rates = BTreeMap<String, i64>;

/// An earlier report, as far as a comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Its key, or why it has none this run could compare with.
    key: Result<RunKey, String>,
    /// Per (suite, layer) that leaked then: its rates.
    leaks: BTreeMap<(String, String), Rates>,
}

/// How one leaking layer compares with the baseline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum BaselineStatus {
    /// It did not leak then.
    New,
    /// It leaks faster in some quantity.
    Faster {
        /// The quantities that grow faster.
        changes: Vec<Change>,
    },
    /// It leaks exactly as fast as then.
    Unchanged,
    /// It leaks no faster in any quantity and slower in some.
    Improved {
        /// The quantities that grow slower.
        changes: Vec<Change>,
    },
    /// The baseline cannot be compared with this run.
    NotCompared {
        /// Why, one clause.
        reason: String,
    },
}

impl BaselineStatus {
    /// Whether the leak is no worse than the baseline's, so the baseline excuses it.
    pub fn no_worse(&self) -> bool {
        matches!(self, BaselineStatus::Unchanged | BaselineStatus::Improved { .. })
    }
}

impl Baseline {
    /// A baseline from a report's key and its leaking verdicts, each with its suite's name.
    pub fn new<'v>(key: RunKey, leaks: impl IntoIterator<Item = (String, &'v Verdict)>) -> Self {
        let leaks = leaks
            .into_iter()
            .filter(|(_, v)| v.leaks())
            .map(|(suite, v)| ((suite, v.layer.raw().to_string()), rates(v)))
            .collect();
        Baseline { key: Ok(key), leaks }
    }

    /// A report that cannot be compared with any run (another schema version, say): why.
    pub fn incomparable(reason: String) -> Self {
        Baseline { key: Err(reason), leaks: BTreeMap::new() }
    }

    /// Why this baseline cannot be compared with a run described by `run`, if it cannot.
    pub fn incomparable_with(&self, run: &RunKey) -> Option<String> {
        let baseline = match &self.key {
            Err(reason) => return Some(reason.clone()),
            Ok(key) => key,
        };
        if baseline.suites != run.suites {
            return Some(format!("it is of {}, this run of {}", baseline.suites.join(", "), run.suites.join(", ")));
        }
        (baseline.options() != run.options())
            .then(|| format!("it was run with {}, this run with {}", baseline.options(), run.options()))
    }

    /// How the leaking `verdict` of `suite` compares with the baseline (which compares).
    pub fn compare(&self, suite: &str, verdict: &Verdict) -> BaselineStatus {
        let Some(was) = self.leaks.get(&(suite.to_string(), verdict.layer.raw().to_string())) else {
            return BaselineStatus::New;
        };
        let now = rates(verdict);
        let changes = |faster: bool| -> Vec<Change> {
            let metrics = now.keys().chain(was.keys().filter(|m| !now.contains_key(*m)));
            metrics
                .map(|m| Change { metric: m.clone(), was: was.get(m).copied(), now: now.get(m).copied() })
                .filter(|c| match faster {
                    true => c.now.unwrap_or(0) > c.was.unwrap_or(0),
                    false => c.now.unwrap_or(0) < c.was.unwrap_or(0),
                })
                .collect()
        };
        let (faster, slower) = (changes(true), changes(false));
        if !faster.is_empty() {
            BaselineStatus::Faster { changes: faster }
        } else if !slower.is_empty() {
            BaselineStatus::Improved { changes: slower }
        } else {
            BaselineStatus::Unchanged
        }
    }

    /// The layers that leaked in the baseline and are not in `leaking` (suite, layer):
    /// fixed since, in (suite, layer) order.
    pub fn fixed(&self, leaking: &BTreeSet<(String, String)>) -> Vec<GuestText> {
        self.leaks
            .keys()
            .filter(|key| !leaking.contains(*key))
            .map(|(_, layer)| GuestText::from(layer.as_str()))
            .collect()
    }
}

/// A verdict's rates: its layer's quantities, or the sum of its causes' when the layer's own
/// series did not decide (a leak that only its tests explain). Recomputed from the series,
/// so a report read back is judged as the run judges, whatever else it claims.
fn rates(verdict: &Verdict) -> Rates {
    let rate = |g: &Growth| Growth::from_deltas(g.metric.clone(), g.deltas.clone()).per_iteration();
    let of = |growth: &[Growth]| growth.iter().map(|g| (g.metric.to_string(), rate(g))).collect();
    let mut rates: Rates = of(&verdict.growth);
    if rates.is_empty() {
        for test in &verdict.tests {
            for (metric, rate) in of(&test.growth) {
                *rates.entry(metric).or_default() += rate;
            }
        }
    }
    rates
}

/// One quantity's growth per counted iteration, then and now (`None`: it did not leak).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The quantity, as the human output names it.
    pub metric: String,
    /// In the baseline.
    pub was: Option<i64>,
    /// In this run.
    pub now: Option<i64>,
}

#[cfg(test)]
mod tests;
