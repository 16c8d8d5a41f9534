//! Allocation stacks for the layers that leak, by replay.
//!
//! A run measures without tracing. When a layer's verdict leaks, the layer is run again
//! alone, in fresh instances of a forked session, with the guest's allocation tracing on
//! (ABI v2), for exactly the iterations the run ran and measured as the run measured
//! them: a first replay follows every allocator call and finds what the calls of counted
//! iterations added to the blocks still live at the end of the last iteration; a second
//! replay captures the stack (names only) of exactly those calls. A run is deterministic,
//! so both replays make the same calls; where they, or the replay and the run, differ, the
//! report says so instead of guessing. The stacks shown are those of the causes the
//! verdict names, each blamed on the test or hook that was running.

mod tracer;

use std::collections::HashSet;
use std::sync::Arc;

use super::layers::{Causes, Replayed, Scope, StackReplay};
use super::parallel::{record_layer, BufferPool};
use super::{RunError, RunOptions, Session};
use crate::abi::hook;
use crate::leak::stacks::{self, Contribution, LeakStacks};
use crate::leak::{Delta, Witness};
use crate::sandbox::CallPhase;
use crate::suite::symbols;
use crate::text::GuestText;
use tracer::{Observer, Piece, Traced, Tracer};

impl Causes<'_> {
    /// The cause a call of the host was made for, if it is one the verdict can name.
    fn of(&self, phase: Option<CallPhase>) -> Option<&GuestText> {
        match phase? {
            CallPhase::Test(test) => self.tests.get(test as usize),
            CallPhase::Hook { code: hook::TEST_SET_UP, .. } => self.test_set_up,
            CallPhase::Hook { code: hook::TEST_TEAR_DOWN, .. } => self.test_tear_down,
            // A layer's setUp or tearDown, run again after a trap: no test's doing.
            CallPhase::Hook { .. } => None,
        }
    }

    fn named(&self, cause: &GuestText) -> bool {
        self.named.is_empty() || self.named.contains(cause)
    }
}

/// The traced replay, as the run hands it to its layer loops: where the leaked blocks of the
/// layer at `position` were allocated, from traced replays of it under `options` (the run's
/// iterations: [`RunOptions::replay`]). A replay that fails gives a note instead of stacks,
/// never a failed run.
pub(super) struct TracedReplay;

impl StackReplay for TracedReplay {
    fn stacks(
        &self,
        session: &Session<'_>,
        cx: Scope<'_>,
        position: usize,
        options: &RunOptions,
        first: &[Option<Delta>],
        causes: &Causes<'_>,
    ) -> Replayed {
        let unavailable = |why: String| Replayed { stacks: LeakStacks::unavailable(why), witness: None };
        if let Some(why) = session.untraceable() {
            return unavailable(why);
        }
        // The run itself went well: a replay that cannot run costs the stacks, not the run.
        replayed_stacks(session, cx, position, options, first, causes)
            .unwrap_or_else(|e| unavailable(format!("no allocation stacks: the replay failed: {e}")))
    }
}

fn replayed_stacks(
    session: &Session<'_>,
    cx: Scope<'_>,
    position: usize,
    options: &RunOptions,
    first: &[Option<Delta>],
    causes: &Causes<'_>,
) -> Result<Replayed, RunError> {
    let survey = replay(session, cx, position, options, None)?;
    let mut notes = Vec::new();
    if let Some(note) = check_counters(&survey) {
        // A tracer's report the counters contradict cannot be trusted with any block.
        let stacks = LeakStacks { groups: Vec::new(), notes: vec![note.into()], partial: true };
        return Ok(Replayed { stacks, witness: None });
    }
    let (wanted, unnamed) = blamed(&survey.survivors, causes);
    let wanted_seqs: HashSet<u64> = wanted.iter().map(|(p, _)| p.seq).collect();
    let capture = replay(session, cx, position, options, Some(wanted_seqs))?;
    notes.extend(compare_counts(first, &survey.deltas, options.warmup));
    let pieces = |t: &Traced| t.survivors.iter().map(|p| (p.seq, p.bytes)).collect::<Vec<_>>();
    if pieces(&survey) != pieces(&capture) || survey.lost || capture.lost {
        notes.push(
            "the two replays of this layer allocated differently (or lost their instance); only blocks whose stack was captured are shown"
                .to_string(),
        );
    }
    // Both replays run the same code and usually stop for the same reason: say it once.
    for why in [&survey.stopped, &capture.stopped].into_iter().flatten() {
        let note = format!("the replay stopped recording: {why}; the verdict stands");
        if !notes.contains(&note) {
            notes.push(note);
        }
    }
    let (contributions, missing) = contributions(&wanted, &capture);
    if missing != (0, 0) {
        notes.push(format!("{} blocks ({} bytes) have no captured stack", missing.0, missing.1));
    }
    // Every note so far says the groups may miss leaked blocks; those below do not. A
    // replay without such a note repeated the run, and may witness for or against its verdict.
    let partial = !notes.is_empty();
    let witness = (!partial).then(|| {
        let (blocks, bytes) = wanted.iter().fold((0, 0), |(b, n), (p, _)| (b + p.blocks, n + p.bytes));
        Witness { blocks, bytes, others: unnamed != (0, 0) }
    });
    if unnamed != (0, 0) {
        notes.push(format!(
            "{} blocks, {} bytes allocated in counted iterations are still live from tests without a verdict (not shown)",
            unnamed.0, unnamed.1
        ));
    }
    let counted = (options.repeat.max(1) as usize).saturating_sub(options.warmup);
    let named = name_stacks(session, &capture, options.replay_budget.frame_text);
    let groups = stacks::group(&contributions, counted, |id| named.stacks[id.0 as usize].clone());
    notes.extend(named.notes);
    let stacks = LeakStacks { groups, notes: notes.into_iter().map(GuestText::from).collect(), partial };
    Ok(Replayed { stacks, witness })
}

/// The captured stacks of the wanted pieces, and the blocks and bytes of those whose
/// stack was not captured.
fn contributions(wanted: &[(Piece, &GuestText)], capture: &Traced) -> (Vec<Contribution>, (u64, i64)) {
    let mut missing = (0u64, 0i64);
    let mut contributions = Vec::with_capacity(wanted.len());
    for (piece, cause) in wanted {
        match capture.captured.get(&piece.seq) {
            Some(&stack) => contributions.push(Contribution {
                stack,
                blocks: piece.blocks,
                bytes: piece.bytes,
                cause: (*cause).clone(),
            }),
            None => missing = (missing.0 + piece.blocks, missing.1 + piece.bytes),
        }
    }
    (contributions, missing)
}

/// Names the captured stacks, reading the suite file's debug sections only now, and
/// only when the compiled module left them out; a note first says why lines are missing.
fn name_stacks(session: &Session<'_>, capture: &Traced, frame_text: usize) -> symbols::Symbolized {
    let source = session.source();
    let code_start = source.code_start().unwrap_or(0);
    // Offsets where the instrumentation moved code are translated back to the ones the DWARF knows.
    let raw: Vec<_> =
        capture.table.stacks().iter().map(|stack| session.code_map().translate(stack, code_start)).collect();
    // The file is read again, and its DWARF parsed, once per run (`symbols::Service`).
    let (mut named, unreadable) = match source.dropped_bytes() {
        0 => (symbols::names_only(&raw, frame_text), None),
        _ => session.symbols().symbolize(|| source.debug_file(), &raw, frame_text),
    };
    let why_no_lines = match unreadable {
        Some(why) => Some(format!("names only: {why}, so its line tables are not read")),
        None if !named.has_lines => Some(
            "names only: the suite has no DWARF line tables (build it with debug = \"limited\" for file:line and full names)"
                .into(),
        ),
        None => None,
    };
    named.notes.splice(0..0, why_no_lines);
    named
}

/// The pieces of causes the verdict names, with their cause; and the blocks and bytes of
/// the others, which are only counted.
fn blamed<'c>(survivors: &[Piece], causes: &'c Causes<'_>) -> (Vec<(Piece, &'c GuestText)>, (u64, i64)) {
    let mut wanted = Vec::new();
    let mut unnamed = (0u64, 0i64);
    for piece in survivors {
        match causes.of(piece.phase).filter(|cause| causes.named(cause)) {
            Some(cause) => wanted.push((*piece, cause)),
            None => unnamed = (unnamed.0 + piece.blocks, unnamed.1 + piece.bytes),
        }
    }
    (wanted, unnamed)
}

/// A tracer that claims more live blocks or bytes than the guest's own counters hold is
/// lying (or broken): say so rather than show its blocks.
fn check_counters(survey: &Traced) -> Option<String> {
    let (blocks, bytes) = survey.live;
    let (counted_blocks, counted_bytes) = survey.counters?;
    (blocks > counted_blocks || bytes > counted_bytes).then(|| {
        format!(
            "no allocation stacks: the suite's allocation trace claims {blocks} blocks ({bytes} bytes) live, more than \
             its counters' {counted_blocks} blocks ({counted_bytes} bytes); the trace cannot be trusted"
        )
    })
}

/// Says how the replay's counted deltas differ from the first run's, if they do.
fn compare_counts(first: &[Option<Delta>], replay: &[Option<Delta>], warmup: usize) -> Option<String> {
    let pairs = first.iter().zip(replay).enumerate().skip(warmup);
    for (i, (a, b)) in pairs {
        if let (Some(a), Some(b)) = (a, b) {
            if (a.blocks, a.bytes) != (b.blocks, b.bytes) {
                return Some(format!(
                    "the replay differs from the run in iteration {}: blocks {:+}, bytes {:+} then, blocks {:+}, bytes {:+} now; the stacks are the replay's",
                    i + 1,
                    a.blocks,
                    a.bytes,
                    b.blocks,
                    b.bytes
                ));
            }
        }
    }
    (first.len() != replay.len()).then(|| "the replay ran a different number of iterations than the run".to_string())
}

fn replay(
    session: &Session<'_>,
    cx: Scope<'_>,
    position: usize,
    options: &RunOptions,
    capture: Option<HashSet<u64>>,
) -> Result<Traced, RunError> {
    let tracer = Arc::new(Tracer::new(options.warmup, options.repeat, options.replay_budget, capture));
    let mut worker = session.fork();
    worker.set_tracer(tracer.clone());
    let mut observer = Observer(tracer.clone());
    record_layer(&mut worker, cx, position, options, &mut observer, &BufferPool::default())?;
    drop(worker);
    Ok(tracer.finish())
}

#[cfg(test)]
mod tests {
    use super::compare_counts;
    use crate::leak::Delta;

    fn delta(blocks: i64, bytes: i64) -> Option<Delta> {
        Some(Delta { blocks, bytes, pages: 0, types: Vec::new(), counters: Vec::new() })
    }

    #[test]
    fn a_replay_that_matches_the_run_needs_no_note() {
        let run = [delta(5, 500), delta(1, 32), delta(1, 32)];
        assert_eq!(compare_counts(&run, &run, 1), None);
        // The warm-up iteration may differ (a fresh heap warms up differently).
        assert_eq!(compare_counts(&run, &[delta(9, 900), delta(1, 32), delta(1, 32)], 1), None);
    }

    #[test]
    fn a_replay_that_differs_says_where() {
        let run = [delta(5, 500), delta(1, 32), delta(1, 32)];
        let replay = [delta(5, 500), delta(1, 32), delta(2, 64)];
        let note = compare_counts(&run, &replay, 1).expect("a note");
        assert!(note.contains("iteration 3: blocks +1, bytes +32 then, blocks +2, bytes +64 now"), "{note}");
        assert!(compare_counts(&run, &run[..2], 1).expect("a note").contains("number of iterations"));
    }
}
