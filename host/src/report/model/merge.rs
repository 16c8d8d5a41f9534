//! One record from the records of a run's partitions (`--partition 1/N` … `N/N` of the same
//! suites and options, as a CI matrix runs them): `leakhost report A.json B.json …`.
//!
//! Each partition ran its share of every layer in an instance of its own, so a layer's
//! iterations, snapshots and verdict belong to its partition: the merged record keeps each
//! partition's run of a layer as a layer of its own, marked with its partition, and sums
//! what sums (the totals).

use thiserror::Error;

use super::{LayerReport, RunReport, Totals};
use crate::leak::policy::{AllowSummary, BaselineSummary, EntryRef, PolicySummary};
use crate::plan::{Partition, SelectionRecord};

/// Why reports cannot be merged into one.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum MergeError {
    /// Nothing to merge.
    #[error("no reports given")]
    Empty,
    /// A report of a run that never started.
    #[error("report {0} records no run options (the run did not start)")]
    NoOptions(usize),
    /// The reports are not of one run.
    #[error("report {index} is not of the same run as report 1: {why}")]
    Mismatch {
        /// Which report, from 1.
        index: usize,
        /// What differs.
        why: String,
    },
    /// A report is not a partition, or the partitions do not make a whole.
    #[error("{0}")]
    Partitions(String),
}

/// The selection without its partition: what every partition of one run shares.
fn unpartitioned(selection: &SelectionRecord) -> SelectionRecord {
    SelectionRecord { partition: None, ..selection.clone() }
}

/// Checks that `reports` are the partitions of one run and returns them in partition order.
fn partitions(reports: Vec<RunReport>) -> Result<Vec<(Partition, RunReport)>, MergeError> {
    let first = &reports[0];
    let options = first.options.clone().ok_or(MergeError::NoOptions(1))?;
    let names = |r: &RunReport| r.suites.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    for (i, report) in reports.iter().enumerate().skip(1) {
        let mismatch = |why: String| MergeError::Mismatch { index: i + 1, why };
        let other = report.options.as_ref().ok_or(MergeError::NoOptions(i + 1))?;
        if !options.same_run_as(other) {
            return Err(mismatch("its run options differ (-N, -r, --warmup, --max-iterations, -x, --seed, …)".into()));
        }
        if names(report) != names(first) {
            return Err(mismatch(format!(
                "it is of {}, report 1 of {}",
                names(report).join(", "),
                names(first).join(", ")
            )));
        }
        if unpartitioned(&report.selection) != unpartitioned(&first.selection) {
            return Err(mismatch("it selected other tests or layers (-t, --layer, -u, -f, --shuffle)".into()));
        }
        if report.policy_files != first.policy_files {
            return Err(mismatch("it was judged by other allowance or baseline files".into()));
        }
    }
    let mut parts: Vec<(Partition, RunReport)> = Vec::with_capacity(reports.len());
    for (i, report) in reports.into_iter().enumerate() {
        let Some(partition) = report.selection.partition else {
            return Err(MergeError::Partitions(format!("report {} is not of a partition (--partition K/N)", i + 1)));
        };
        parts.push((partition, report));
    }
    parts.sort_by_key(|(p, _)| *p);
    let count = parts[0].0.count;
    let indexes: Vec<u32> = parts.iter().map(|(p, _)| p.index).collect();
    if parts.iter().any(|(p, _)| p.count != count) || indexes != (1..=count).collect::<Vec<_>>() {
        let given: Vec<String> = parts.iter().map(|(p, _)| format!("{}/{}", p.index, p.count)).collect();
        return Err(MergeError::Partitions(format!(
            "the partitions given ({}) are not exactly 1/{count} to {count}/{count} of one run",
            given.join(", ")
        )));
    }
    Ok(parts)
}

/// Merges the records of a run's partitions; one record is returned as it is.
pub fn merge(mut reports: Vec<RunReport>) -> Result<RunReport, MergeError> {
    match reports.len() {
        0 => return Err(MergeError::Empty),
        1 => return Ok(reports.remove(0)),
        _ => {}
    }
    let parts = partitions(reports)?;
    let mut merged = RunReport { selection: unpartitioned(&parts[0].1.selection), ..parts[0].1.clone() };
    for (index, suite) in merged.suites.iter_mut().enumerate() {
        suite.layers = merged_layers(&parts, index);
        suite.left_over = parts.iter().flat_map(|(_, r)| r.suites[index].left_over.clone()).collect();
        suite.stopped_after = parts.iter().find_map(|(_, r)| r.suites[index].stopped_after.clone());
    }
    merged.totals = parts.iter().map(|(_, r)| r.totals.clone()).collect::<Option<Vec<Totals>>>().map(|all| sum(&all));
    merged.aborted = parts.iter().find_map(|(p, r)| {
        r.aborted.as_ref().map(|why| format!("partition {}/{}: {}", p.index, p.count, why.raw()).into())
    });
    merged.elapsed_s = parts.iter().map(|(_, r)| r.elapsed_s).collect::<Option<Vec<f64>>>().map(|all| {
        // The partitions ran side by side: the run took as long as its longest part.
        all.into_iter().fold(0.0, f64::max)
    });
    merged.policy = merged_policy(parts.iter().map(|(_, r)| r.policy.as_ref()).collect());
    Ok(merged)
}

/// Every partition's runs of the layers of suite `index`: a layer's runs together, in
/// partition order, layers in the order they first appear reading the partitions in order.
fn merged_layers(parts: &[(Partition, RunReport)], index: usize) -> Vec<LayerReport> {
    let mut order = Vec::new();
    for (_, report) in parts {
        for layer in &report.suites[index].layers {
            if !order.contains(&layer.id) {
                order.push(layer.id);
            }
        }
    }
    let mut layers = Vec::new();
    for id in order {
        for (partition, report) in parts {
            if let Some(layer) = report.suites[index].layers.iter().find(|l| l.id == id) {
                layers.push(LayerReport { partition: Some(*partition), ..layer.clone() });
            }
        }
    }
    layers
}

fn sum(all: &[Totals]) -> Totals {
    all.iter().fold(Totals::default(), |t, p| Totals {
        tests: t.tests + p.tests,
        failures: t.failures + p.failures,
        errors: t.errors + p.errors,
        skipped: t.skipped + p.skipped,
        layers_run: t.layers_run + p.layers_run,
    })
}

/// An allowance is stale only if every partition found it stale, and unchecked if no
/// partition used it and some could not check it; a baseline's layer is fixed only if it
/// is fixed in every partition (no partition leaked in it).
fn merged_policy(parts: Vec<Option<&PolicySummary>>) -> Option<PolicySummary> {
    let parts: Vec<&PolicySummary> = parts.into_iter().collect::<Option<Vec<_>>>()?;
    let first = parts.first()?;
    let allowances = first.allowances.as_ref().map(|a| {
        let all = |p: &PolicySummary| p.allowances.clone().unwrap_or_default();
        let summaries: Vec<AllowSummary> = parts.iter().map(|p| all(p)).collect();
        let stale: Vec<EntryRef> =
            a.stale.iter().filter(|e| summaries.iter().all(|s| s.stale.contains(e))).cloned().collect();
        // In order of first appearance, each once.
        let mut unchecked: Vec<EntryRef> = Vec::new();
        for entry in summaries.iter().flat_map(|s| &s.unchecked) {
            let unused_everywhere = summaries.iter().all(|s| s.stale.contains(entry) || s.unchecked.contains(entry));
            if unused_everywhere && !stale.contains(entry) && !unchecked.contains(entry) {
                unchecked.push(entry.clone());
            }
        }
        AllowSummary { sources: a.sources.clone(), stale, unchecked }
    });
    let baseline = first.baseline.as_ref().map(|b| BaselineSummary {
        source: b.source.clone(),
        not_compared: b.not_compared.clone(),
        fixed: b
            .fixed
            .iter()
            .filter(|layer| parts.iter().all(|p| p.baseline.as_ref().is_some_and(|x| x.fixed.contains(layer))))
            .cloned()
            .collect(),
    });
    Some(PolicySummary { allowances, baseline })
}
