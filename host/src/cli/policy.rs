//! Loading the leak policy of `leakhost run`: allowances and a baseline, read before the
//! run (so a malformed file stops it before any test runs) and handed to the runner in its
//! options, which judges each leaking layer as the run goes.

use std::path::{Path, PathBuf};

use super::CliError;
use crate::input::{self, Links};
use crate::leak::allow::Allowances;
use crate::leak::baseline::Baseline;
use crate::leak::policy::{AllowPolicy, BaselinePolicy, LeakPolicy};
use crate::report::{read_json, ReadError};

/// The allowance file a suite may keep beside itself.
pub const ALLOW_FILE: &str = "leakhost.toml";

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

/// `--allow FILE`, else every target's `leakhost.toml`; and `--baseline FILE`. Without
/// `measure` (`-r`) there are no verdicts to judge, so nothing is read.
pub(super) fn load(
    measure: bool,
    allow: Option<&Path>,
    baseline: Option<&Path>,
    targets: &[PathBuf],
) -> Result<LeakPolicy, CliError> {
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
        let mut allowances = Allowances::default();
        for file in &files {
            // A file beside a suite is the suite author's; one given with --allow is the user's.
            let links = if allow.is_some() { Links::Follow } else { Links::Refuse };
            let parsed = Allowances::parse(file, &read(file, "allowances", input::DEFAULT_MAX_INPUT, links)?)
                .map_err(|e| CliError::Usage(format!("{e} (allowances: docs/policy.md)")))?;
            allowances.extend(parsed);
        }
        let sources = files.iter().map(|f| f.display().to_string()).collect();
        policy.allow = Some(AllowPolicy { sources, allowances });
    }
    if let Some(path) = baseline {
        let baseline = read_baseline(path, &read(path, "baseline", input::MAX_BASELINE, Links::Follow)?)?;
        policy.baseline = Some(BaselinePolicy { source: path.display().to_string(), baseline });
    }
    Ok(policy)
}

/// A `--json` report as a baseline. A report of another schema or version is no error:
/// it is not compared, and the run says so; a file that is no report at all is.
fn read_baseline(path: &Path, text: &str) -> Result<Baseline, CliError> {
    let report = match read_json(text) {
        Ok(report) => report,
        Err(e @ (ReadError::Schema(_) | ReadError::Version(_))) => return Ok(Baseline::incomparable(e.to_string())),
        Err(e) => {
            return Err(CliError::Usage(format!(
                "{}: not a baseline: {e}; give a report written by --json",
                path.display()
            )))
        }
    };
    let Some(options) = &report.options else {
        return Ok(Baseline::incomparable("its run never started".into()));
    };
    let key = options.key(report.suites.iter().map(|s| s.name.clone()).collect());
    let leaks = report
        .suites
        .iter()
        .flat_map(|s| s.layers.iter().filter_map(move |l| l.verdict.as_ref().map(|v| (s.name.clone(), v))));
    Ok(Baseline::new(key, leaks))
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

    #[test]
    fn a_report_of_another_version_is_a_baseline_that_does_not_compare() {
        let old = r#"{"schema":"leakhost-report","version":2,"suites":[]}"#;
        let baseline = read_baseline(Path::new("old.json"), old).unwrap();
        let key = crate::run::RunOptions::default().key(vec![]);
        assert!(baseline.incomparable_with(&key).unwrap().contains("schema version 2"));
        let error = read_baseline(Path::new("x.json"), "{nope").unwrap_err().to_string();
        assert!(error.starts_with("x.json: not a baseline: not JSON"), "{error}");
    }
}
