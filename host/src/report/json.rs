//! The JSON report: the run's record ([`RunReport`]) as one versioned document, and the
//! reader that takes such a document back (docs/json-report.md).
//!
//! Timings live only in `elapsed_s` fields, which `--no-timings` leaves out, so two
//! runs of the same module under the same options give byte-identical files.

use std::io::Write;

use serde::Deserialize;
use thiserror::Error;

use super::model::{RunReport, REPORT_SCHEMA, REPORT_VERSION};

/// Writes `report` to `out` as pretty-printed JSON with a final newline, as it is
/// serialized: the text of a large run is larger than the record it renders (1.1 GB for a
/// million tests at -N3).
pub fn write_json(report: &RunReport, out: impl Write) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// `report` as JSON text.
pub fn to_json(report: &RunReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a record serializes");
    text.push('\n');
    text
}

/// Why a document is not a report this leakhost reads.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReadError {
    /// Not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not a leakhost report.
    #[error("it is not a leakhost JSON report (schema {0:?}, expected {REPORT_SCHEMA:?})")]
    Schema(String),
    /// A report of another schema version.
    #[error("it has schema version {0}, this leakhost reads version {REPORT_VERSION}")]
    Version(u64),
    /// A report of this version that does not have its shape.
    #[error("not a valid version {REPORT_VERSION} report: {0}")]
    Invalid(String),
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    version: Option<u64>,
}

/// Reads a JSON report, checking its schema and version before its shape, so that a report
/// of another version says so rather than which field it lacks.
pub fn read_json(text: &str) -> Result<RunReport, ReadError> {
    let header: Header = serde_json::from_str(text).map_err(|e| ReadError::NotJson(e.to_string()))?;
    let schema = header.schema.unwrap_or_default();
    if schema != REPORT_SCHEMA {
        return Err(ReadError::Schema(schema));
    }
    match header.version {
        Some(v) if v == u64::from(REPORT_VERSION) => {}
        other => return Err(ReadError::Version(other.unwrap_or(0))),
    }
    serde_json::from_str(text).map_err(|e| ReadError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_reads_back_as_written_and_other_documents_say_what_they_are() {
        let report = RunReport::new();
        assert_eq!(read_json(&to_json(&report)), Ok(report));
        assert!(matches!(read_json("{nope"), Err(ReadError::NotJson(_))));
        assert_eq!(
            read_json(r#"{"schema":"leakhost-events","version":1}"#),
            Err(ReadError::Schema("leakhost-events".into()))
        );
        let old = r#"{"schema":"leakhost-report","version":2,"suites":[]}"#;
        assert_eq!(read_json(old), Err(ReadError::Version(2)));
        assert!(matches!(read_json(r#"{"schema":"leakhost-report","version":3}"#), Err(ReadError::Invalid(_))));
    }
}
