//! How the leak policy's results read: which leaks are allowed and by which entry, which
//! exceed their allowance, which allowances are stale (or could not be checked without
//! allocation stacks), and how each leak compares with the baseline. The runner decides
//! all of it (events `leak_policy`, `policy_finished`); these only phrase it.

use crate::leak::allow::Status;
use crate::leak::baseline::{BaselineStatus, Change};
use crate::leak::policy::{LayerPolicy, PolicySummary};
use crate::text::GuestText;

/// What the allowances say about one layer, after `LAYER: `.
fn allowance_text(status: &Status) -> String {
    match status {
        Status::Allowed { places, reasons } => format!("allowed by {}: {}", places.join(", "), reasons.join("; ")),
        Status::OverBound { what, metric, grew, bound, place, reason } => format!(
            "not allowed: {} grows by {metric} +{grew} per iteration, more than the {bound} allowed by {place} ({reason})",
            what.line()
        ),
        Status::StacksUnmatched { unmatched, of, first } => format!(
            "not allowed: {unmatched} of its {of} leaking stacks match no frame allowance, the first allocated at {}",
            first.line()
        ),
        Status::NeedsStacks { why } => format!("not allowed: frame allowances need allocation stacks: {}", why.line()),
        Status::NotAllowed => "not allowed: no allowance matches".to_string(),
    }
}

fn rate(rate: Option<i64>) -> String {
    rate.map_or("none".to_string(), |r| format!("+{r}"))
}

fn changes(changes: &[Change]) -> String {
    let parts: Vec<String> =
        changes.iter().map(|c| format!("{} {} -> {}", c.metric, rate(c.was), rate(c.now))).collect();
    parts.join(", ")
}

/// How one layer compares with the baseline, as a line under `Baseline (...)`.
fn baseline_text(layer: &GuestText, status: &BaselineStatus) -> Option<String> {
    let layer = layer.line();
    Some(match status {
        BaselineStatus::New => format!("new leak: {layer}"),
        BaselineStatus::Faster { changes: c } => format!("leaks faster: {layer}: {}", changes(c)),
        BaselineStatus::Improved { changes: c } => format!("improved: {layer}: {}", changes(c)),
        BaselineStatus::Unchanged => format!("unchanged: {layer}"),
        // Said once for the whole run.
        BaselineStatus::NotCompared { .. } => return None,
    })
}

/// One line for what the policy made of a layer (the HTML report's).
pub fn layer_policy_text(policy: &LayerPolicy) -> String {
    let mut parts = Vec::new();
    if let Some(status) = &policy.allowance {
        parts.push(allowance_text(status));
    }
    match &policy.baseline {
        Some(BaselineStatus::NotCompared { reason }) => parts.push(format!("baseline not compared: {reason}")),
        Some(status) => parts.extend(baseline_text(&"the leak".into(), status)),
        None => {}
    }
    let verdict = if policy.excused { "excused" } else { "fails --fail-on-leak" };
    format!("{}: {verdict}", parts.join("; "))
}

/// The whole-run lines: stale and unchecked allowances, fixed layers, a baseline not compared.
pub fn summary_lines(summary: &PolicySummary) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(allow) = &summary.allowances {
        for entry in &allow.stale {
            lines.push(format!(
                "stale: {} matched no leak in this run; remove it once the leak is fixed ({})",
                entry.place, entry.reason
            ));
        }
        for entry in &allow.unchecked {
            lines.push(format!(
                "unchecked: {} has a frame pattern, and the leaks it could excuse have no allocation stacks ({})",
                entry.place, entry.reason
            ));
        }
    }
    if let Some(baseline) = &summary.baseline {
        if let Some(reason) = &baseline.not_compared {
            lines.push(format!("baseline not compared: {reason}; every leak counts"));
        }
        lines.extend(baseline.fixed.iter().map(|l| format!("improved: {} no longer leaks", l.line())));
    }
    lines
}

/// The human output's policy sections, after the run's total: `Allowances (FILES):` with a
/// line per leaking layer and per stale or unchecked entry, and `Baseline (FILE):` with a
/// line per leaking layer and per fixed one, or why it was not compared.
pub fn policy_lines(layers: &[(GuestText, LayerPolicy)], summary: &PolicySummary) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(allow) = &summary.allowances {
        lines.push(format!("Allowances ({}):", allow.sources.join(", ")));
        let judged: Vec<String> = layers
            .iter()
            .filter_map(|(layer, p)| p.allowance.as_ref().map(|s| format!("  {}: {}", layer.line(), allowance_text(s))))
            .collect();
        if judged.is_empty() {
            lines.push("  no leaks".into());
        }
        lines.extend(judged);
        let only_allowances = PolicySummary { allowances: summary.allowances.clone(), baseline: None };
        lines.extend(summary_lines(&only_allowances).into_iter().map(|l| format!("  {l}")));
    }
    if let Some(baseline) = &summary.baseline {
        lines.push(format!("Baseline ({}):", baseline.source));
        if let Some(reason) = &baseline.not_compared {
            lines.push(format!("  not compared: {reason}; every leak counts"));
            return lines;
        }
        let before = lines.len();
        // New and faster leaks first: they are what fails.
        let mut compared: Vec<(u8, String)> = layers
            .iter()
            .filter_map(|(layer, p)| {
                let status = p.baseline.as_ref()?;
                let rank = match status {
                    BaselineStatus::New => 0,
                    BaselineStatus::Faster { .. } => 1,
                    BaselineStatus::Improved { .. } => 2,
                    _ => 4,
                };
                baseline_text(layer, status).map(|text| (rank, format!("  {text}")))
            })
            .collect();
        compared.extend(baseline.fixed.iter().map(|l| (3, format!("  improved: {} no longer leaks", l.line()))));
        compared.sort_by_key(|(rank, _)| *rank);
        lines.extend(compared.into_iter().map(|(_, line)| line));
        if lines.len() == before {
            lines.push("  no leaks, then or now".into());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::policy::{AllowSummary, BaselineSummary, EntryRef};

    fn judged(status: Status) -> LayerPolicy {
        LayerPolicy { allowance: Some(status), baseline: None, excused: false }
    }

    #[test]
    fn allowance_lines_say_which_entry_allows_and_why_others_do_not() {
        let layers = vec![
            (
                GuestText::from("A"),
                judged(Status::Allowed { places: vec!["a.toml:3".into()], reasons: vec!["known".into()] }),
            ),
            (
                GuestText::from("UnitTests"),
                judged(Status::StacksUnmatched { unmatched: 7, of: 8, first: "m::f  src/lib.rs:49".into() }),
            ),
            (GuestText::from("Fixture"), judged(Status::NeedsStacks { why: "none were recorded".into() })),
        ];
        let summary = PolicySummary {
            allowances: Some(AllowSummary {
                sources: vec!["a.toml".into()],
                stale: vec![],
                unchecked: vec![EntryRef { place: "a.toml:9".into(), reason: "flushed elsewhere".into() }],
            }),
            baseline: None,
        };
        assert_eq!(
            policy_lines(&layers, &summary),
            [
                "Allowances (a.toml):",
                "  A: allowed by a.toml:3: known",
                "  UnitTests: not allowed: 7 of its 8 leaking stacks match no frame allowance, the first allocated at \
                 m::f  src/lib.rs:49",
                "  Fixture: not allowed: frame allowances need allocation stacks: none were recorded",
                "  unchecked: a.toml:9 has a frame pattern, and the leaks it could excuse have no allocation stacks \
                 (flushed elsewhere)",
            ]
        );
    }

    #[test]
    fn baseline_lines_list_what_fails_first_and_escape_names() {
        let with = |status| LayerPolicy { allowance: None, baseline: Some(status), excused: false };
        let improved = Change { metric: "blocks".into(), was: Some(2), now: Some(1) };
        let layers = vec![
            (GuestText::from("B"), with(BaselineStatus::Improved { changes: vec![improved] })),
            (GuestText::from("bad\u{1b}[2J"), with(BaselineStatus::New)),
        ];
        let summary = PolicySummary {
            allowances: None,
            baseline: Some(BaselineSummary { source: "base.json".into(), not_compared: None, fixed: vec!["C".into()] }),
        };
        assert_eq!(
            policy_lines(&layers, &summary),
            [
                "Baseline (base.json):",
                "  new leak: bad\\e[2J",
                "  improved: B: blocks +2 -> +1",
                "  improved: C no longer leaks"
            ]
        );
        let not = PolicySummary {
            allowances: None,
            baseline: Some(BaselineSummary {
                source: "b.json".into(),
                not_compared: Some("it is of a.wasm".into()),
                fixed: vec![],
            }),
        };
        assert_eq!(policy_lines(&[], &not)[1], "  not compared: it is of a.wasm; every leak counts");
    }
}
