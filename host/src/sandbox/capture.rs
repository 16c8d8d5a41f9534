//! Output capture: what a guest writes to stdout and stderr, interleaved, kept per
//! test up to `--max-output`.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::text::GuestText;

/// The guest's stdout and stderr, interleaved as written, kept up to a limit.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Mutex<CaptureState>>,
}

struct CaptureState {
    data: Vec<u8>,
    limit: usize,
    dropped: u64,
}

/// What one test wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CapturedOutput {
    /// The text (invalid UTF-8 replaced).
    pub text: GuestText,
    /// Bytes written beyond the limit and dropped.
    pub dropped: u64,
}

impl CapturedOutput {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty() && self.dropped == 0
    }
}

impl Capture {
    /// An empty capture that keeps at most `limit` bytes until taken.
    pub fn new(limit: usize) -> Self {
        Capture { inner: Arc::new(Mutex::new(CaptureState { data: Vec::new(), limit, dropped: 0 })) }
    }

    /// Takes everything written since the last take.
    pub fn take(&self) -> CapturedOutput {
        let mut state = self.lock();
        let dropped = std::mem::take(&mut state.dropped);
        if state.data.is_empty() {
            return CapturedOutput { text: GuestText::default(), dropped };
        }
        let text = GuestText::from_utf8_lossy(&state.data);
        state.data.clear();
        CapturedOutput { text, dropped }
    }

    /// A mark of what was written so far, for [`Self::since`].
    pub fn mark(&self) -> usize {
        self.lock().data.len()
    }

    /// What was kept since `mark` (taken since the last take), without taking it:
    /// what a test printed before it trapped, for its failure message.
    pub fn since(&self, mark: usize) -> String {
        let state = self.lock();
        String::from_utf8_lossy(&state.data[mark.min(state.data.len())..]).into_owned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CaptureState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self, bytes: &[u8]) {
        let mut state = self.lock();
        let room = state.limit.saturating_sub(state.data.len());
        let keep = bytes.len().min(room);
        state.data.extend_from_slice(&bytes[..keep]);
        state.dropped += (bytes.len() - keep) as u64;
    }
}

impl IsTerminal for Capture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Capture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

// Output past the limit is accepted and dropped, never refused: a guest that
// fails to print would otherwise panic and turn a noisy test into an error.
#[wasmtime_wasi::async_trait]
impl Pollable for Capture {
    async fn ready(&mut self) {}
}

impl OutputStream for Capture {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        Capture::write(self, &bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for Capture {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Capture::write(&self, buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
