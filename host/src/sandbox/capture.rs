//! Output capture: what a guest writes to stdout and stderr, interleaved, kept per
//! test up to `--max-output`, and per run up to `--max-total-output`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use crate::text::GuestText;

/// The guest's stdout and stderr, interleaved as written, kept up to a limit.
#[derive(Clone)]
pub struct Capture {
    inner: Arc<Shared>,
}

struct Shared {
    /// Whether anything was written since the last take or clear: most tests print
    /// nothing, and a take that finds this false needs neither the lock nor the budget.
    written: AtomicBool,
    state: Mutex<CaptureState>,
}

struct CaptureState {
    data: Vec<u8>,
    limit: usize,
    dropped: u64,
    /// Some of `dropped` was dropped because the run's budget was spent.
    over_budget: bool,
    budget: OutputBudget,
}

/// The output every capture of one run may keep in all (`--max-total-output`), shared by
/// the captures of every session, `-j` worker, replay and suite of the run: reports keep
/// what each test wrote until the run ends, so the per-test limit alone let 10,000
/// tests hold 640 MiB. Output taken past it is dropped, counted, and replaced by a note
/// in the output itself, so that every report that shows the output says why.
#[derive(Clone)]
pub struct OutputBudget {
    inner: Arc<BudgetState>,
}

struct BudgetState {
    limit: u64,
    kept: AtomicU64,
    /// The note a test's output ends with when the budget dropped some of it; one shared
    /// text, so the tests after the limit each cost a pointer.
    note: GuestText,
}

impl OutputBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        let note = format!(
            "[leakhost: output dropped: the run has kept the {} of output that --max-total-output allows]",
            super::human_bytes(limit)
        );
        OutputBudget { inner: Arc::new(BudgetState { limit, kept: AtomicU64::new(0), note: note.into() }) }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    /// What is left, not reserved.
    fn left(&self) -> u64 {
        self.inner.limit.saturating_sub(self.inner.kept.load(Ordering::Relaxed))
    }

    /// Reserves up to `want` bytes and returns how many were granted.
    fn reserve(&self, want: usize) -> usize {
        let (limit, want) = (self.inner.limit, want as u64);
        let before = self
            .inner
            .kept
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| Some(kept.saturating_add(want).min(limit)))
            .unwrap_or_else(|kept| kept);
        (before.saturating_add(want).min(limit).saturating_sub(before.min(limit))) as usize
    }
}

impl std::fmt::Debug for OutputBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputBudget").field("limit", &self.inner.limit).finish_non_exhaustive()
    }
}

/// What one test wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// An empty capture that keeps at most `limit` bytes until taken, with no run budget.
    pub fn new(limit: usize) -> Self {
        Capture::with_budget(limit, OutputBudget::new(u64::MAX))
    }

    /// An empty capture of the policy's run: `--max-output` per take, within `--max-total-output`.
    pub fn for_policy(policy: &super::Policy) -> Self {
        Capture::with_budget(policy.output_limit, policy.total_output.clone())
    }

    /// An empty capture that keeps at most `limit` bytes until taken, charged to `budget`.
    pub fn with_budget(limit: usize, budget: OutputBudget) -> Self {
        Capture {
            inner: Arc::new(Shared {
                written: AtomicBool::new(false),
                state: Mutex::new(CaptureState { data: Vec::new(), limit, dropped: 0, over_budget: false, budget }),
            }),
        }
    }

    /// Takes everything written since the last take, charging it to the run's budget.
    pub fn take(&self) -> CapturedOutput {
        // The budget is shared by every -j worker: touching it for nothing made the
        // threads contend for its cache line on every test.
        if !self.inner.written.load(Ordering::Acquire) {
            return CapturedOutput::default();
        }
        let mut state = self.lock();
        self.inner.written.store(false, Ordering::Relaxed);
        let granted = state.budget.reserve(state.data.len());
        let cut = state.data.len() - granted;
        let dropped = std::mem::take(&mut state.dropped) + cut as u64;
        let over_budget = std::mem::take(&mut state.over_budget) || cut > 0;
        let note = &state.budget.inner.note;
        let text = match (granted, over_budget) {
            (0, false) => GuestText::default(),
            (_, false) => GuestText::from_utf8_lossy(&state.data),
            (0, true) => note.clone(),
            (_, true) => {
                let kept = String::from_utf8_lossy(&state.data[..granted]);
                GuestText::from(format!("{kept}\n{}", note.raw()))
            }
        };
        state.data.clear();
        CapturedOutput { text, dropped }
    }

    /// Forgets everything written since the last take, charging nothing: for output no
    /// report shows (an instance's start-up).
    pub fn clear(&self) {
        let mut state = self.lock();
        self.inner.written.store(false, Ordering::Relaxed);
        state.data.clear();
        state.dropped = 0;
        state.over_budget = false;
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
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn write(&self, bytes: &[u8]) {
        let mut state = self.lock();
        // Never more than the run could still keep, however large --max-output is.
        let left = usize::try_from(state.budget.left()).unwrap_or(usize::MAX);
        let test_room = state.limit.saturating_sub(state.data.len());
        let room = test_room.min(left.saturating_sub(state.data.len()));
        let keep = bytes.len().min(room);
        state.data.extend_from_slice(&bytes[..keep]);
        state.dropped += (bytes.len() - keep) as u64;
        state.over_budget |= keep < bytes.len() && room < test_room;
        if !bytes.is_empty() {
            self.inner.written.store(true, Ordering::Release);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_budget_is_shared_and_replaces_what_it_drops_with_a_note() {
        let budget = OutputBudget::new(8);
        let (a, b) = (Capture::with_budget(100, budget.clone()), Capture::with_budget(100, budget));
        a.write(b"12345");
        assert_eq!(a.take(), CapturedOutput { text: "12345".into(), dropped: 0 });
        b.write(b"6789");
        let out = b.take();
        assert!(
            out.text.raw().starts_with("678\n[leakhost: output dropped: the run has kept the 8 bytes of output"),
            "{out:?}"
        );
        assert_eq!(out.dropped, 1);
        a.write(b"more");
        let after = a.take();
        assert_eq!((after.text.raw(), after.dropped), (out.text.raw().trim_start_matches("678\n"), 4));
        assert_eq!(a.take(), CapturedOutput::default(), "a test that writes nothing gets no note");
        // Output no report shows costs nothing.
        let c = Capture::with_budget(100, OutputBudget::new(4));
        c.write(b"start-up");
        c.clear();
        c.write(b"test");
        assert_eq!(c.take().text.raw(), "test");
    }
}
