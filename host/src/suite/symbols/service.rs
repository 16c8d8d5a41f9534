//! One DWARF context per suite file for a whole run: building it (the units' ranges, the
//! guard's headers) cost 25 M instructions for a suite with std's DWARF, once per leaking
//! layer, with the file read and verified again each time. The first layer that names
//! stacks reads the file and starts a thread with a large stack that keeps the context;
//! every later request goes to that thread. Each request starts from nothing but the
//! context (its own text budget, names, learnt SDK paths), so what a report shows does
//! not depend on which layers named their stacks before it, or in which order `-j`
//! workers asked.

use std::sync::{mpsc, Mutex};

use super::{Symbolized, Symbolizer, READER_STACK};
use crate::leak::stacks::RawFrame;

/// One naming job: the stacks, the frame text budget, where to answer.
struct Request {
    stacks: Vec<Vec<RawFrame>>,
    frame_text: usize,
    reply: mpsc::Sender<Symbolized>,
}

/// Where the service is.
enum State {
    /// No stacks were named yet: the file was not read.
    Unread,
    /// The file could not be read again (a clause saying why): names only.
    Unreadable(String),
    /// The reader thread holds the file and its context.
    Reading(mpsc::Sender<Request>),
    /// The reader thread failed to start or died (a panic in the DWARF reader): names only.
    Failed,
}

/// Names the stacks of one suite file for every report of a run (see the module docs).
pub struct Service {
    state: Mutex<State>,
}

impl Default for Service {
    fn default() -> Self {
        Service { state: Mutex::new(State::Unread) }
    }
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Names `stacks` within `frame_text` bytes of distinct text; `load` gives the file's
    /// bytes the first time (or why they cannot be had, which is returned with names only,
    /// then and on every later request).
    pub fn symbolize(
        &self,
        load: impl FnOnce() -> Result<Vec<u8>, String>,
        stacks: &[Vec<RawFrame>],
        frame_text: usize,
    ) -> (Symbolized, Option<String>) {
        let names_only = |note: Option<&str>| {
            let mut named = super::names_only(stacks, frame_text);
            named.notes.extend(note.map(str::to_string));
            named
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, State::Unread) {
            *state = match load() {
                Ok(bytes) => start(bytes).map_or(State::Failed, State::Reading),
                Err(why) => State::Unreadable(why),
            };
        }
        let requests = match &*state {
            State::Reading(requests) => requests,
            State::Unreadable(why) => return (names_only(None), Some(why.clone())),
            State::Unread | State::Failed => return (names_only(Some(FAILED)), None),
        };
        let (reply, answer) = mpsc::channel();
        let request = Request { stacks: stacks.to_vec(), frame_text, reply };
        match requests.send(request).ok().and_then(|()| answer.recv().ok()) {
            Some(named) => (named, None),
            None => {
                *state = State::Failed;
                (names_only(Some(FAILED)), None)
            }
        }
    }
}

/// The note of a DWARF reader that failed.
const FAILED: &str = "names only: reading the suite's DWARF failed";

/// Starts the reader thread over the file `wasm`; `None` if no thread can be started.
fn start(wasm: Vec<u8>) -> Option<mpsc::Sender<Request>> {
    let (requests, received) = mpsc::channel::<Request>();
    let reader = move || {
        let wasm = wasm;
        let build = std::panic::AssertUnwindSafe(|| Symbolizer::new(&wasm, 0));
        // A panic while reading untrusted DWARF ends the thread: every request after it,
        // this one included, gets names only.
        let Ok(mut symbolizer) = std::panic::catch_unwind(build) else { return };
        for request in received {
            let name = std::panic::AssertUnwindSafe(|| {
                symbolizer.begin(request.frame_text);
                symbolizer.name(&request.stacks)
            });
            match std::panic::catch_unwind(name) {
                Ok(named) => {
                    let _ = request.reply.send(named);
                }
                Err(_) => return,
            }
        }
    };
    std::thread::Builder::new().name("leakhost-dwarf".into()).stack_size(READER_STACK).spawn(reader).ok()?;
    Some(requests)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    /// A module with a code section and no DWARF: the reader thread starts, names only.
    const MODULE: &[u8] = b"\0asm\x01\0\0\0\x0a\x01\x00";

    fn stack(name: &str) -> Vec<Vec<RawFrame>> {
        vec![vec![RawFrame { func_index: 1, name: Some(name.into()), module_offset: Some(12) }]]
    }

    fn names(named: &Symbolized) -> Vec<String> {
        named.stacks.iter().flatten().map(|f| f.text()).collect()
    }

    #[test]
    fn each_request_has_a_budget_and_names_of_its_own() {
        let service = Service::default();
        let loads = Cell::new(0);
        let load = || {
            loads.set(loads.get() + 1);
            Ok(MODULE.to_vec())
        };
        // A budget that holds one of the names: a request that inherited the first one's
        // spent budget would not name its frame.
        let (first, _) = service.symbolize(load, &stack("alpha_function"), 20);
        let (second, _) = service.symbolize(load, &stack("beta_function"), 20);
        assert_eq!((names(&first), names(&second)), (vec!["alpha_function".into()], vec!["beta_function".into()]));
        assert!(second.notes.is_empty(), "{:?}", second.notes);
        assert_eq!(loads.get(), 1, "the file is read once");
    }

    #[test]
    fn a_file_that_cannot_be_read_again_costs_every_request_its_lines() {
        let service = Service::default();
        let why = || Err("the suite file changed".to_string());
        for _ in 0..2 {
            let (named, unreadable) = service.symbolize(why, &stack("f"), 1 << 20);
            assert_eq!(unreadable.as_deref(), Some("the suite file changed"));
            assert_eq!(names(&named), vec!["f".to_string()]);
        }
    }
}
