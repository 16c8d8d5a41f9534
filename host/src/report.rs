//! Reporters: renderers of run events, nothing more.
//!
//! The human output, the progress bar and the event stream render events as they come;
//! the JSON, JUnit and HTML reports render the run's record ([`model`]), built once from
//! the events by one [`Recorder`].

mod events;
mod html;
mod human;
mod json;
mod junit;
pub mod model;
mod policy;
mod progress;
mod stacks;
mod text;

pub use events::{EventsWriter, EVENTS_SCHEMA, EVENTS_VERSION};
pub use html::{escape as html_escape, to_html};
pub use human::HumanReporter;
pub use json::{read_json, to_json, write_json, ReadError};
pub use junit::to_junit;
pub use model::{Recorder, RunReport, REPORT_SCHEMA, REPORT_VERSION};
pub use progress::ProgressReporter;
pub use text::{delta_text, verdict_text};

/// Formats seconds as zope does: "0.123 seconds" or "2 minutes 3.456 seconds".
pub fn format_seconds(elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if secs >= 60.0 {
        let minutes = (secs / 60.0).floor();
        format!("{} minutes {:.3} seconds", minutes as u64, secs - minutes * 60.0)
    } else {
        format!("{secs:.3} seconds")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_format_like_zope() {
        assert_eq!(format_seconds(Duration::from_millis(4)), "0.004 seconds");
        assert_eq!(format_seconds(Duration::from_millis(123_456)), "2 minutes 3.456 seconds");
    }
}
