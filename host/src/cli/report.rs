//! `leakhost report`: renders JSON reports again (HTML, JUnit, JSON), merging the reports
//! of a run's partitions into one: how a run spread over a CI matrix gets one report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::reports::RecordFiles;
use super::{CliError, EXIT_OK};
use crate::report::model::merge;
use crate::report::{read_json, RunReport};

/// The largest report read: a million tests at -N3 write about 1.1 GB.
const MAX_REPORT_SIZE: u64 = 4 << 30;

/// Render JSON reports again as HTML, JUnit or JSON, merging the reports of a run's partitions.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON reports written by `leakhost run --json`: one run, or every partition of one run
    /// (`--partition 1/N` … `N/N` of the same suites and options).
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,

    /// Write the (merged) report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Write JUnit XML to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write the HTML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn read(path: &Path) -> Result<RunReport, CliError> {
    let bad = |why: String| CliError::Usage(format!("{}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(format!("cannot read the report: {e}")))?;
    if !meta.is_file() {
        return Err(bad("not a regular file; give a report written by --json".into()));
    }
    if meta.len() > MAX_REPORT_SIZE {
        return Err(bad(format!("larger than the {} a report may be", crate::sandbox::human_bytes(MAX_REPORT_SIZE))));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read the report: {e}")))?;
    read_json(&text).map_err(|e| bad(format!("{e}; give a report written by this leakhost's --json")))
}

/// `leakhost report`.
pub fn report(args: &ReportArgs) -> Result<ExitCode, CliError> {
    if args.json.is_none() && args.junit.is_none() && args.html.is_none() {
        return Err(CliError::Usage(
            "leakhost report writes nothing without --html FILE, --junit FILE or --json FILE".into(),
        ));
    }
    let reports = args.reports.iter().map(|p| read(p)).collect::<Result<Vec<_>, _>>()?;
    let merged = merge(reports).map_err(|e| CliError::Usage(format!("cannot merge the reports: {e}")))?;
    let files = RecordFiles::open(args.json.as_deref(), args.junit.as_deref(), args.html.as_deref())?;
    // The reports carry their timings, or none (--no-timings); so does what is made of them.
    let timings = merged.elapsed_s.is_some();
    files.write(&merged, timings)?;
    Ok(ExitCode::from(EXIT_OK))
}
