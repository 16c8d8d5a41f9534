//! Baselines (`--baseline REPORT.json`): this run's leaks against an earlier `--json` report.
//!
//! As memray's "fail only on an increase": a leak fails only when it is new or grows
//! faster than in the baseline; what improved is listed too. A baseline of another
//! suite, schema version or option set is not compared at all, and says why. The
//! baseline is read as plain JSON, field by field, so a report with fields this version
//! does not know still compares.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{Growth, Metric, Verdict};
use crate::text::GuestText;

/// What a run must share with a baseline for the two to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunKey {
    /// The report schema's name (`schema`).
    pub schema: String,
    /// Its version (`version`).
    pub version: u64,
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

/// Per layer: each leaking quantity's growth per counted iteration.
type Rates = BTreeMap<String, BTreeMap<String, i64>>;

/// An earlier report, as far as a comparison needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    key: RunKey,
    leaks: Rates,
}

impl Baseline {
    /// Reads a JSON report's text; `Err` says why it is not a report at all.
    pub fn parse(text: &str) -> Result<Self, String> {
        let report: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let str_of = |v: &Value| v.as_str().map(str::to_string);
        let options = &report["options"];
        let key = RunKey {
            schema: str_of(&report["schema"]).unwrap_or_default(),
            version: report["version"].as_u64().unwrap_or(0),
            suites: report["suites"].as_array().into_iter().flatten().filter_map(|s| str_of(&s["name"])).collect(),
            repeat: options["repeat"].as_u64().unwrap_or(0),
            measure: options["measure"].as_bool().unwrap_or(false),
            warmup: options["warmup"].as_u64().unwrap_or(0),
            stop_on_error: options["stop_on_error"].as_bool().unwrap_or(false),
        };
        let mut leaks = Rates::new();
        for verdict in report["leaks"].as_array().into_iter().flatten() {
            let Some(layer) = verdict["layer"].as_str() else { continue };
            let mut rates = growth_rates(&verdict["growth"]);
            if rates.is_empty() {
                for test in verdict["tests"].as_array().into_iter().flatten() {
                    for (metric, rate) in growth_rates(&test["growth"]) {
                        *rates.entry(metric).or_default() += rate;
                    }
                }
            }
            leaks.insert(layer.to_string(), rates);
        }
        Ok(Baseline { key, leaks })
    }

    /// Compares the leaking verdicts of a run described by `key` with this baseline.
    pub fn compare(&self, key: &RunKey, verdicts: &[Verdict]) -> Comparison {
        if let Some(reason) = incomparable(&self.key, key) {
            return Comparison::Incomparable(reason);
        }
        let now: Rates = verdicts.iter().filter(|v| v.leaks()).map(|v| (v.layer.raw().to_string(), rates(v))).collect();
        let mut diff = Diff::default();
        for (layer, rates) in &now {
            let Some(was) = self.leaks.get(layer) else {
                diff.new.push(layer.as_str().into());
                continue;
            };
            let changes = |faster: bool| -> Vec<Change> {
                let metrics = rates.keys().chain(was.keys().filter(|m| !rates.contains_key(*m)));
                metrics
                    .map(|m| Change { metric: m.clone(), was: was.get(m).copied(), now: rates.get(m).copied() })
                    .filter(|c| {
                        if faster {
                            c.now.unwrap_or(0) > c.was.unwrap_or(0)
                        } else {
                            c.now.unwrap_or(0) < c.was.unwrap_or(0)
                        }
                    })
                    .collect()
            };
            let (faster, slower) = (changes(true), changes(false));
            if !faster.is_empty() {
                diff.faster.push((layer.as_str().into(), faster));
            } else if !slower.is_empty() {
                diff.slower.push((layer.as_str().into(), slower));
            } else {
                diff.unchanged.push(layer.as_str().into());
            }
        }
        diff.fixed = self.leaks.keys().filter(|l| !now.contains_key(*l)).map(|l| l.as_str().into()).collect();
        Comparison::Compared(diff)
    }
}

/// Why a baseline cannot be compared with this run, if it cannot.
fn incomparable(baseline: &RunKey, run: &RunKey) -> Option<String> {
    if baseline.schema != run.schema {
        return Some(format!(
            "it is not a leakhost JSON report (schema {:?}, expected {:?})",
            baseline.schema, run.schema
        ));
    }
    if baseline.version != run.version {
        return Some(format!(
            "it has schema version {}, this leakhost writes version {}",
            baseline.version, run.version
        ));
    }
    if baseline.suites != run.suites {
        return Some(format!("it is of {}, this run of {}", baseline.suites.join(", "), run.suites.join(", ")));
    }
    let options = |k: &RunKey| {
        let mut text = format!("-N {} --warmup {}", k.repeat, k.warmup);
        text.push_str(if k.measure { " -r" } else { " (no -r)" });
        if k.stop_on_error {
            text.push_str(" -x");
        }
        text
    };
    (options(baseline) != options(run))
        .then(|| format!("it was run with {}, this run with {}", options(baseline), options(run)))
}

/// The growth per counted iteration of each metric in a report's `growth` array.
fn growth_rates(growth: &Value) -> BTreeMap<String, i64> {
    let mut rates = BTreeMap::new();
    for g in growth.as_array().into_iter().flatten() {
        let name = || GuestText::from(g["metric"]["name"].as_str().unwrap_or_default());
        let metric = match g["metric"]["kind"].as_str() {
            Some("blocks") => Metric::Blocks,
            Some("bytes") => Metric::Bytes,
            Some("pages") => Metric::Pages,
            Some("type") => Metric::Type(name()),
            Some("counter") => Metric::Counter(name()),
            _ => continue,
        };
        let deltas: Vec<i64> = g["deltas"].as_array().into_iter().flatten().filter_map(Value::as_i64).collect();
        rates.insert(metric.to_string(), Growth::from_deltas(metric, deltas).per_iteration());
    }
    rates
}

/// A verdict's rates, as [`Baseline::parse`] reads them from a report.
fn rates(verdict: &Verdict) -> BTreeMap<String, i64> {
    let of = |growth: &[Growth]| growth.iter().map(|g| (g.metric.to_string(), g.per_iteration())).collect();
    let mut rates: BTreeMap<String, i64> = of(&verdict.growth);
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The quantity, as the human output names it.
    pub metric: String,
    /// In the baseline.
    pub was: Option<i64>,
    /// In this run.
    pub now: Option<i64>,
}

/// What changed since the baseline, by layer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Layers that leak now and did not then.
    pub new: Vec<GuestText>,
    /// Layers that leak faster in some quantity, with those quantities.
    pub faster: Vec<(GuestText, Vec<Change>)>,
    /// Layers that leak no faster in any quantity and slower in some.
    pub slower: Vec<(GuestText, Vec<Change>)>,
    /// Layers that leak exactly as fast as then.
    pub unchanged: Vec<GuestText>,
    /// Layers that leaked then and do not now.
    pub fixed: Vec<GuestText>,
}

impl Diff {
    /// The layers that fail `--fail-on-leak`: new leaks and faster ones.
    pub fn failing(&self) -> impl Iterator<Item = &GuestText> {
        self.new.iter().chain(self.faster.iter().map(|(layer, _)| layer))
    }
}

/// The outcome of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// The baseline is of another suite, schema version or option set: why.
    Incomparable(String),
    /// The two runs compared.
    Compared(Diff),
}

#[cfg(test)]
mod tests;
