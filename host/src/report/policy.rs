//! The lines that say what the leak policy made of a run's leaks: which are allowed and
//! why, which exceed their allowance, which allowances are stale (or could not be checked
//! without allocation stacks), and how the run compares with its baseline. The CLI
//! computes the outcome after the run and prints these after the human output.

use crate::leak::allow::{Judgement, Status};
use crate::leak::baseline::{Change, Comparison};

/// The allowance section: one line per leaking layer and per stale entry.
pub fn allowance_lines(source: &str, judgement: &Judgement) -> Vec<String> {
    let mut lines = vec![format!("Allowances ({source}):")];
    for judged in &judgement.leaks {
        let layer = judged.layer.line();
        lines.push(match &judged.status {
            Status::Allowed { reasons } => format!("  {layer}: allowed: {}", reasons.join("; ")),
            Status::OverBound { what, metric, grew, bound, place, reason } => format!(
                "  {layer}: not allowed: {} grows by {metric} +{grew} per iteration, more than the {bound} allowed \
                 by {place} ({reason})",
                what.line()
            ),
            Status::StacksUnmatched { unmatched, of, first } => format!(
                "  {layer}: not allowed: {unmatched} of its {of} leaking stacks match no frame allowance, the first \
                 allocated at {}",
                first.line()
            ),
            Status::NeedsStacks { why } => {
                format!("  {layer}: not allowed: frame allowances need allocation stacks: {}", why.line())
            }
            Status::NotAllowed => format!("  {layer}: not allowed: no allowance matches"),
        });
    }
    if judgement.leaks.is_empty() {
        lines.push("  no leaks".into());
    }
    for entry in &judgement.stale {
        lines.push(format!(
            "  stale: {} matched no leak in this run; remove it once the leak is fixed ({})",
            entry.place, entry.reason
        ));
    }
    for entry in &judgement.unchecked {
        lines.push(format!(
            "  unchecked: {} has a frame pattern, and the leaks it could excuse have no allocation stacks ({})",
            entry.place, entry.reason
        ));
    }
    lines
}

fn rate(rate: Option<i64>) -> String {
    rate.map_or("none".to_string(), |r| format!("+{r}"))
}

fn changes(changes: &[Change]) -> String {
    let parts: Vec<String> =
        changes.iter().map(|c| format!("{} {} -> {}", c.metric, rate(c.was), rate(c.now))).collect();
    parts.join(", ")
}

/// The baseline section: the new, faster, slower, unchanged and fixed leaks, or why
/// the baseline was not compared.
pub fn baseline_lines(source: &str, comparison: &Comparison) -> Vec<String> {
    let mut lines = vec![format!("Baseline ({source}):")];
    let diff = match comparison {
        Comparison::Incomparable(reason) => {
            lines.push(format!("  not compared: {reason}; every leak counts"));
            return lines;
        }
        Comparison::Compared(diff) => diff,
    };
    lines.extend(diff.new.iter().map(|l| format!("  new leak: {}", l.line())));
    lines.extend(diff.faster.iter().map(|(l, c)| format!("  leaks faster: {}: {}", l.line(), changes(c))));
    lines.extend(diff.slower.iter().map(|(l, c)| format!("  improved: {}: {}", l.line(), changes(c))));
    lines.extend(diff.fixed.iter().map(|l| format!("  improved: {} no longer leaks", l.line())));
    lines.extend(diff.unchanged.iter().map(|l| format!("  unchanged: {}", l.line())));
    if lines.len() == 1 {
        lines.push("  no leaks, then or now".into());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::baseline::Diff;
    use crate::text::GuestText;

    #[test]
    fn allowance_lines_say_which_stacks_no_frame_matches_and_when_stacks_are_missing() {
        let dir = std::env::temp_dir();
        let toml = "[[allow]]\nframe = 'audit'\nreason = 'flushed elsewhere'\n";
        let entries = crate::leak::allow::Allowances::parse(&dir.join("a.toml"), toml).unwrap();
        let judged = |layer: &str, status| crate::leak::allow::Judged { layer: GuestText::from(layer), status };
        let first = GuestText::from("leakstacks::describe  src/lib.rs:49");
        let judgement = Judgement {
            leaks: vec![
                judged("UnitTests", Status::StacksUnmatched { unmatched: 7, of: 8, first }),
                judged("Fixture", Status::NeedsStacks { why: "none were recorded".into() }),
            ],
            stale: Vec::new(),
            unchecked: entries.judge(&[]).stale,
        };
        let place = dir.join("a.toml").display().to_string();
        assert_eq!(
            allowance_lines("a.toml", &judgement)[1..],
            [
                "  UnitTests: not allowed: 7 of its 8 leaking stacks match no frame allowance, the first allocated at \
                 leakstacks::describe  src/lib.rs:49"
                    .to_string(),
                "  Fixture: not allowed: frame allowances need allocation stacks: none were recorded".into(),
                format!(
                    "  unchecked: {place}:1 has a frame pattern, and the leaks it could excuse have no allocation \
                     stacks (flushed elsewhere)"
                ),
            ]
        );
    }

    #[test]
    fn baseline_lines_list_what_fails_and_what_improved_with_names_escaped() {
        let diff = Diff {
            new: vec![GuestText::from("bad\u{1b}[2J")],
            slower: vec![("B".into(), vec![Change { metric: "blocks".into(), was: Some(2), now: Some(1) }])],
            fixed: vec!["C".into()],
            ..Diff::default()
        };
        let lines = baseline_lines("base.json", &Comparison::Compared(diff));
        assert_eq!(
            lines,
            [
                "Baseline (base.json):",
                "  new leak: bad\\e[2J",
                "  improved: B: blocks +2 -> +1",
                "  improved: C no longer leaks"
            ]
        );
        let not = baseline_lines("b.json", &Comparison::Incomparable("it is of a.wasm".into()));
        assert_eq!(not[1], "  not compared: it is of a.wasm; every leak counts");
    }
}
