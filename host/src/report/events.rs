//! The live event stream (`--events FILE`): every event as one JSON line, flushed as it
//! happens, so another program can follow the run (docs/events.md).

use std::io::Write;

use serde_json::Value;

use crate::run::{Event, EventSink};

/// The `schema` field of the stream's first line.
pub const EVENTS_SCHEMA: &str = "leakhost-events";
/// The `version` field of the stream's first line; bumped on any incompatible change.
pub const EVENTS_VERSION: u32 = 2;

/// Writes events as JSON Lines.
pub struct EventsWriter<W: Write> {
    out: W,
    timings: bool,
    /// The first write error; the run goes on, and the caller reports it at the end.
    error: Option<std::io::Error>,
}

impl<W: Write> EventsWriter<W> {
    /// A writer to `out`; without `timings` every `elapsed_s` field is left out, so two
    /// streams of the same run are byte-identical.
    pub fn new(out: W, timings: bool) -> Self {
        EventsWriter { out, timings, error: None }
    }

    /// The first error writing the stream met, if any.
    pub fn finish(mut self) -> std::io::Result<()> {
        match self.error.take() {
            Some(error) => Err(error),
            None => self.out.flush(),
        }
    }
}

/// Removes every `elapsed_s` field, however deep.
fn strip_timings(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("elapsed_s");
            map.values_mut().for_each(strip_timings);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_timings),
        _ => {}
    }
}

impl<W: Write> EventSink for EventsWriter<W> {
    fn emit(&mut self, event: &Event) {
        if self.error.is_some() {
            return;
        }
        let mut value = serde_json::to_value(event).expect("events serialise");
        if !self.timings {
            strip_timings(&mut value);
        }
        if let (Event::RunStarted(_), Value::Object(map)) = (event, &mut value) {
            map.insert("schema".into(), EVENTS_SCHEMA.into());
            map.insert("version".into(), EVENTS_VERSION.into());
        }
        let line = serde_json::to_string(&value).expect("a JSON value serialises");
        if let Err(error) = writeln!(self.out, "{line}").and_then(|()| self.out.flush()) {
            self.error = Some(error);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::SuiteId;

    #[test]
    fn one_line_per_event_without_timings() {
        let mut writer = EventsWriter::new(Vec::new(), false);
        writer.emit(&Event::SuiteFinished { suite: SuiteId(0), summary: Box::default() });
        writer.emit(&Event::RunFinished { summary: Box::default() });
        let text = String::from_utf8(writer.out).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.starts_with(r#"{"event":"suite_finished","suite":0,"summary":{"#), "{text}");
        assert!(!text.contains("elapsed_s"), "{text}");
    }
}
