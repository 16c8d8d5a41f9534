//! The report files of a run: opened before it starts (so that a path that cannot be
//! written is found before any test runs, and a long run's results are never lost to it),
//! fed during it, and written whatever happened (an aborted run's report says why it stopped).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::CliError;
use crate::report::{to_html, to_junit, write_json, EventsWriter, Recorder, RunReport};
use crate::run::EventSink;

/// A report file, opened early.
pub(super) struct ReportFile {
    path: PathBuf,
    what: &'static str,
    file: std::fs::File,
}

impl ReportFile {
    pub(super) fn create(path: &Path, what: &'static str) -> Result<Self, CliError> {
        let file = std::fs::File::create(path).map_err(|source| CliError::Report {
            path: path.to_path_buf(),
            what,
            source,
        })?;
        Ok(ReportFile { path: path.to_path_buf(), what, file })
    }

    fn error(&self, source: std::io::Error) -> CliError {
        CliError::Report { path: self.path.clone(), what: self.what, source }
    }

    fn write(mut self, text: std::io::Result<String>) -> Result<(), CliError> {
        let written = text.and_then(|text| {
            self.file.write_all(text.as_bytes())?;
            self.file.flush()
        });
        written.map_err(|source| CliError::Report { path: self.path, what: self.what, source })
    }
}

/// Where the record of a run goes: a JSON, JUnit and HTML file, each optional.
#[derive(Default)]
pub(super) struct RecordFiles {
    json: Option<ReportFile>,
    junit: Option<ReportFile>,
    html: Option<ReportFile>,
}

impl RecordFiles {
    /// Opens the files given.
    pub(super) fn open(json: Option<&Path>, junit: Option<&Path>, html: Option<&Path>) -> Result<Self, CliError> {
        Ok(RecordFiles {
            json: json.map(|p| ReportFile::create(p, "JSON")).transpose()?,
            junit: junit.map(|p| ReportFile::create(p, "JUnit")).transpose()?,
            html: html.map(|p| ReportFile::create(p, "HTML")).transpose()?,
        })
    }

    /// Whether any file wants the record.
    pub(super) fn any(&self) -> bool {
        self.json.is_some() || self.junit.is_some() || self.html.is_some()
    }

    /// Renders `report` into every file.
    pub(super) fn write(self, report: &RunReport, timings: bool) -> Result<(), CliError> {
        if let Some(file) = self.json {
            write_json(report, &file.file).map_err(|source| file.error(source))?;
        }
        if let Some(file) = self.junit {
            file.write(to_junit(report, timings))?;
        }
        if let Some(file) = self.html {
            file.write(Ok(to_html(report)))?;
        }
        Ok(())
    }
}

/// The event stream, and the file it goes to (`None`: stdout).
pub(super) struct EventStream {
    file: Option<ReportFile>,
    writer: EventsWriter<Box<dyn Write>>,
}

/// The report files a run writes, with what feeds them.
pub(super) struct Reports {
    record: Option<(RecordFiles, Recorder)>,
    events: Option<EventStream>,
    timings: bool,
    /// The event stream has stdout, so the human output goes to stderr.
    pub(super) events_to_stdout: bool,
}

impl Reports {
    /// Opens `--json`, `--junit`, `--html` and `--events`.
    pub(super) fn open(
        json: Option<&Path>,
        junit: Option<&Path>,
        html: Option<&Path>,
        events: Option<&Path>,
        timings: bool,
    ) -> Result<Self, CliError> {
        let files = RecordFiles::open(json, junit, html)?;
        let events_to_stdout = events == Some(Path::new("-"));
        let events = match events {
            Some(_) if events_to_stdout => {
                Some(EventStream { file: None, writer: EventsWriter::new(Box::new(std::io::stdout()), timings) })
            }
            Some(path) => {
                let file = ReportFile::create(path, "events")?;
                let out: Box<dyn Write> = Box::new(file.file.try_clone().map_err(|source| file.error(source))?);
                Some(EventStream { file: Some(file), writer: EventsWriter::new(out, timings) })
            }
            None => None,
        };
        let record = files.any().then(|| (files, Recorder::new(timings)));
        Ok(Reports { record, events, timings, events_to_stdout })
    }

    /// The sinks that feed the files.
    pub(super) fn sinks(&mut self) -> Vec<&mut dyn EventSink> {
        let mut sinks: Vec<&mut dyn EventSink> = Vec::new();
        if let Some((_, recorder)) = self.record.as_mut() {
            sinks.push(recorder);
        }
        if let Some(events) = self.events.as_mut() {
            sinks.push(&mut events.writer);
        }
        sinks
    }

    /// Finishes the event stream and renders the record into its files.
    pub(super) fn write(self) -> Result<(), CliError> {
        if let Some(EventStream { file, writer }) = self.events {
            let written = writer.finish();
            match file {
                Some(file) => written.map_err(|source| file.error(source))?,
                None => written.map_err(|source| CliError::Report { path: "-".into(), what: "events", source })?,
            }
        }
        if let Some((files, recorder)) = self.record {
            files.write(recorder.report(), self.timings)?;
        }
        Ok(())
    }
}
