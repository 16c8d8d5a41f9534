//! A progress bar for long runs on a terminal, drawn around another reporter.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::run::{Event, EventSink, Outcome};

/// Wraps a reporter and, on a terminal, keeps a progress bar on stderr below its output.
pub struct ProgressReporter<S: EventSink> {
    inner: S,
    bar: Option<ProgressBar>,
}

/// Whether a progress bar may be drawn: stderr is a terminal and this is not a CI log.
fn bar_wanted() -> bool {
    std::io::stderr().is_terminal()
        && std::env::var_os("CI").is_none()
        && std::env::var_os("TERM") != Some("dumb".into())
}

impl<S: EventSink> ProgressReporter<S> {
    /// Wraps `inner`; draws a bar over `total_tests` test runs when `enabled` and on a terminal.
    pub fn new(inner: S, total_tests: usize, enabled: bool) -> Self {
        let bar = (enabled && total_tests > 0 && bar_wanted()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(total_tests as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} tests {msg}") {
                bar.set_style(style);
            }
            bar
        });
        ProgressReporter { inner, bar }
    }
}

impl<S: EventSink> EventSink for ProgressReporter<S> {
    fn emit(&mut self, event: &Event) {
        let Some(bar) = &self.bar else {
            self.inner.emit(event);
            return;
        };
        // Events that print nothing at this verbosity need no redraw.
        let silent = match event {
            Event::TestStarted { .. } => true,
            Event::TestFinished { outcome, .. } => matches!(outcome, Outcome::Pass | Outcome::Skip(_)),
            _ => false,
        };
        if silent {
            self.inner.emit(event);
        } else {
            bar.suspend(|| self.inner.emit(event));
        }
        match event {
            Event::TestFinished { .. } => bar.inc(1),
            Event::LayerStarted { layer, .. } => bar.set_message(layer.name.line().to_string()),
            Event::RunFinished { .. } | Event::RunAborted { .. } => bar.finish_and_clear(),
            _ => {}
        }
    }
}

impl<S: EventSink> Drop for ProgressReporter<S> {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
