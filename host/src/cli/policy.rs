//! The leak policy of `leakhost run`: allowances and a baseline, loaded before the run
//! (so a malformed file stops it before any test runs) and applied to its verdicts after,
//! with the allocation stacks recorded for them, both collected from the run's events.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CliError;
use crate::input::{self, Links};
use crate::leak::allow::{Allowances, Leak};
use crate::leak::baseline::{Baseline, Comparison, RunKey};
use crate::leak::stacks::LeakStacks;
use crate::leak::Verdict;
use crate::report::{allowance_lines, baseline_lines, JunitReporter};
use crate::run::{Event, EventSink, LayerId, SuiteId};
use crate::text::GuestText;

/// The allowance file a suite may keep beside itself.
pub const ALLOW_FILE: &str = "leakhost.toml";

/// What decides whether a run's leaks fail it.
#[derive(Default, Clone)]
pub(super) struct LeakPolicy {
    /// The allowances and the files they came from.
    allow: Option<(String, Allowances)>,
    baseline: Option<(PathBuf, Baseline)>,
}

fn read(path: &Path, what: &str, max: u64, links: Links) -> Result<String, CliError> {
    input::read_text(path, max, links)
        .map_err(|e| CliError::Usage(format!("{}: cannot read the {what}: {e}", path.display())))
}

/// Where a target's own allowance file would be: in the package directory given, or
/// beside the `.wasm`.
fn beside(target: &Path) -> PathBuf {
    if target.is_dir() {
        target.join(ALLOW_FILE)
    } else {
        target.parent().unwrap_or(Path::new(".")).join(ALLOW_FILE)
    }
}

impl LeakPolicy {
    /// `--allow FILE`, else every target's `leakhost.toml`; and `--baseline FILE`. Without
    /// `measure` (`-r`) there are no verdicts to judge, so nothing is read.
    pub(super) fn load(
        measure: bool,
        allow: Option<&Path>,
        baseline: Option<&Path>,
        targets: &[PathBuf],
    ) -> Result<Self, CliError> {
        if !measure {
            return Ok(LeakPolicy::default());
        }
        let files: Vec<PathBuf> = match allow {
            Some(file) => vec![file.to_path_buf()],
            None => {
                // Whatever is there is read, or refused: a FIFO or a link must not pass for "no file".
                let mut found: Vec<PathBuf> =
                    targets.iter().map(|t| beside(t)).filter(|f| f.symlink_metadata().is_ok()).collect();
                found.dedup();
                found
            }
        };
        let mut policy = LeakPolicy::default();
        if !files.is_empty() {
            let mut all = Allowances::default();
            for file in &files {
                // A file beside a suite is the suite author's; one given with --allow is the user's.
                let links = if allow.is_some() { Links::Follow } else { Links::Refuse };
                let parsed = Allowances::parse(file, &read(file, "allowances", input::DEFAULT_MAX_INPUT, links)?)
                    .map_err(|e| CliError::Usage(format!("{e} (allowances: docs/policy.md)")))?;
                all.extend(parsed);
            }
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            policy.allow = Some((names.join(", "), all));
        }
        if let Some(path) = baseline {
            let parsed =
                Baseline::parse(&read(path, "baseline", input::MAX_BASELINE, Links::Follow)?).map_err(|e| {
                    CliError::Usage(format!("{}: not a baseline: {e}; give a report written by --json", path.display()))
                })?;
            policy.baseline = Some((path.to_path_buf(), parsed));
        }
        Ok(policy)
    }

    /// Whether there is anything beyond plain `--fail-on-leak`.
    pub(super) fn is_empty(&self) -> bool {
        self.allow.is_none() && self.baseline.is_none()
    }

    /// What the policy makes of `leaks`: the lines that say so, and the layers whose
    /// leaks still fail `--fail-on-leak`. Without a policy every leak does; an allowed one
    /// does not; with a baseline that compares, only a new or faster one does.
    fn decide(&self, key: &RunKey, leaks: &[Leak<'_>]) -> (Vec<String>, Vec<GuestText>) {
        let verdicts: Vec<Verdict> = leaks.iter().map(|l| l.verdict.clone()).collect();
        let mut failing: Vec<GuestText> = verdicts.iter().filter(|v| v.leaks()).map(|v| v.layer.clone()).collect();
        let mut lines = Vec::new();
        if let Some((source, allow)) = &self.allow {
            let judgement = allow.judge(leaks);
            lines.extend(allowance_lines(source, &judgement));
            let unexcused: Vec<&GuestText> = judgement.failing().collect();
            failing.retain(|layer| unexcused.contains(&layer));
        }
        if let Some((path, baseline)) = &self.baseline {
            let comparison = baseline.compare(key, &verdicts);
            lines.extend(baseline_lines(&path.display().to_string(), &comparison));
            if let Comparison::Compared(diff) = &comparison {
                let worse: Vec<&GuestText> = diff.failing().collect();
                failing.retain(|layer| worse.contains(&layer));
            }
        }
        (lines, failing)
    }

    /// Prints what the policy makes of the run's `leaks` and returns the layers that still fail.
    pub(super) fn apply(&self, key: &RunKey, leaks: &[Leak<'_>], out: &mut dyn Write) -> Vec<GuestText> {
        let (lines, failing) = self.decide(key, leaks);
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        failing
    }

    /// Prints [`LeakPolicy::apply`]'s lines where the human output goes: stderr when the
    /// event stream has stdout.
    pub(super) fn apply_after_run(&self, key: &RunKey, leaks: &[Leak<'_>], to_stderr: bool) -> Vec<GuestText> {
        match to_stderr {
            true => self.apply(key, leaks, &mut std::io::stderr().lock()),
            false => self.apply(key, leaks, &mut std::io::stdout().lock()),
        }
    }

    /// `junit`, told which leaks the policy excuses: JUnit is written as the run goes.
    pub(super) fn excusing(&self, junit: JunitReporter, key: &RunKey) -> JunitReporter {
        if self.is_empty() {
            return junit;
        }
        let (policy, key) = (self.clone(), key.clone());
        junit.excusing(move |verdict, stacks| policy.excuses(&key, Leak { verdict, stacks }))
    }

    /// Whether the policy excuses one leaking verdict, for reports written as the run goes.
    /// A stale allowance is a property of the whole run, so only [`LeakPolicy::apply`] lists it.
    fn excuses(&self, key: &RunKey, leak: Leak<'_>) -> bool {
        self.decide(key, &[leak]).1.is_empty()
    }
}

/// One leaking layer of the run, as its events told it.
struct Recorded {
    suite: SuiteId,
    layer: LayerId,
    verdict: Verdict,
    stacks: Option<LeakStacks>,
}

/// The run's leaking verdicts with their allocation stacks, collected from its events
/// for the policy: stacks (frame allowances) come only as events, after a suite's verdicts.
#[derive(Default)]
pub(super) struct LeakRecords(Vec<Recorded>);

impl LeakRecords {
    /// The leaks in verdict order, as the policy judges them.
    pub(super) fn leaks(&self) -> Vec<Leak<'_>> {
        self.0.iter().map(|r| Leak { verdict: &r.verdict, stacks: r.stacks.as_ref() }).collect()
    }
}

impl EventSink for LeakRecords {
    fn emit(&mut self, event: &Event) {
        match event {
            Event::Verdict { suite, layer, verdict } if verdict.leaks() => {
                self.0.push(Recorded { suite: *suite, layer: layer.id, verdict: verdict.clone(), stacks: None })
            }
            Event::LeakStacks { suite, layer, stacks } => {
                if let Some(r) = self.0.iter_mut().rev().find(|r| r.suite == *suite && r.layer == layer.id) {
                    r.stacks = Some(LeakStacks::clone(stacks));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowance_file_is_in_the_package_directory_or_beside_the_module() {
        let dir = std::env::temp_dir().join(format!("leakhost-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(beside(&dir), dir.join(ALLOW_FILE));
        assert_eq!(beside(&dir.join("suite.wasm")), dir.join(ALLOW_FILE));
        assert_eq!(beside(Path::new("suite.wasm")), Path::new(ALLOW_FILE));
        std::fs::remove_dir(&dir).unwrap();
    }
}
