//! leakhost's `poll_oneoff`: WASI preview1's one blocking call, made to respect the
//! sandbox's clock and time limit.
//!
//! wasmtime-wasi sleeps on the host thread, where the epoch deadline cannot interrupt
//! it and the deterministic clock does not see it. Here a sleep on the fake clock
//! passes at once (the clock jumps ahead by exactly the time asked for), and a real
//! sleep longer than `--timeout` is refused with a named limit error. The only file
//! descriptors a suite has are stdin (always at end of file) and the captured
//! stdout/stderr (always writable), so fd subscriptions are ready immediately.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, Linker};

use super::{FakeTime, GuestState, LimitExceeded};

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_FAULT: i32 = 21;
const ERRNO_INVAL: i32 = 28;
const ERRNO_NOTSUP: i32 = 58;

const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const CLOCK_REALTIME: u32 = 0;
const SUBCLOCKFLAGS_ABSTIME: u16 = 1;

struct Subscription {
    userdata: u64,
    kind: u8,
    clock_id: u32,
    timeout: u64,
    absolute: bool,
}

fn parse(raw: &[u8]) -> Subscription {
    let u64_at = |at: usize| u64::from_le_bytes(raw[at..at + 8].try_into().expect("8 bytes"));
    Subscription {
        userdata: u64_at(0),
        kind: raw[8],
        clock_id: u32::from_le_bytes(raw[16..20].try_into().expect("4 bytes")),
        timeout: u64_at(24),
        absolute: u16::from_le_bytes(raw[40..42].try_into().expect("2 bytes")) & SUBCLOCKFLAGS_ABSTIME != 0,
    }
}

fn event(userdata: u64, kind: u8) -> [u8; EVENT_SIZE] {
    let mut out = [0u8; EVENT_SIZE];
    out[0..8].copy_from_slice(&userdata.to_le_bytes());
    out[10] = kind;
    out
}

/// How long a clock subscription waits, from now; `None` if it cannot be honoured.
fn wait_of(sub: &Subscription, fake: Option<&FakeTime>) -> Option<u64> {
    if !sub.absolute {
        return Some(sub.timeout);
    }
    let now = match (fake, sub.clock_id) {
        (Some(fake), CLOCK_REALTIME) => u64::try_from(FakeTime::wall(fake.read()).as_nanos()).unwrap_or(u64::MAX),
        (Some(fake), _) => fake.read(),
        (None, CLOCK_REALTIME) => SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_nanos() as u64,
        // The host's monotonic origin is private to wasmtime-wasi; relative sleeps are
        // what every libc and Rust's std use.
        (None, _) => return None,
    };
    Some(sub.timeout.saturating_sub(now))
}

fn poll_oneoff(
    mut caller: Caller<'_, GuestState>,
    subscriptions: i32,
    events: i32,
    count: i32,
    events_written: i32,
) -> wasmtime::Result<i32> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return Ok(ERRNO_FAULT);
    };
    let (subscriptions, events, count, events_written) =
        (subscriptions as u32 as usize, events as u32 as usize, count as u32 as usize, events_written as u32 as usize);
    if count == 0 {
        return Ok(ERRNO_INVAL);
    }
    let subs: Vec<Subscription> = {
        let data = memory.data(&caller);
        let Some(raw) =
            subscriptions.checked_add(count * SUBSCRIPTION_SIZE).and_then(|end| data.get(subscriptions..end))
        else {
            return Ok(ERRNO_FAULT);
        };
        raw.chunks_exact(SUBSCRIPTION_SIZE).map(parse).collect()
    };
    if subs.iter().any(|s| ![EVENTTYPE_CLOCK, EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE].contains(&s.kind)) {
        return Ok(ERRNO_INVAL);
    }
    let fake = caller.data().fake_time.clone();
    let ready: Vec<[u8; EVENT_SIZE]> =
        subs.iter().filter(|s| s.kind != EVENTTYPE_CLOCK).map(|s| event(s.userdata, s.kind)).collect();
    let fired = if !ready.is_empty() {
        ready
    } else {
        let mut waits = Vec::with_capacity(subs.len());
        for sub in &subs {
            match wait_of(sub, fake.as_ref()) {
                Some(wait) => waits.push(wait),
                None => return Ok(ERRNO_NOTSUP),
            }
        }
        let shortest = waits.iter().copied().min().unwrap_or(0);
        match &fake {
            Some(fake) => {
                fake.advance(shortest);
            }
            None => {
                let requested = Duration::from_nanos(shortest);
                // What the call has used already counts: a loop of sleeps just under the
                // limit must not run past it.
                let used = caller.data().call_started.elapsed();
                if let Some(limit) = caller.data().timeout.filter(|limit| used.saturating_add(requested) > *limit) {
                    return Err(wasmtime::Error::new(LimitExceeded::Sleep { requested, limit, used }));
                }
                std::thread::park_timeout(requested);
            }
        }
        subs.iter()
            .zip(&waits)
            .filter(|(_, &wait)| wait == shortest)
            .map(|(sub, _)| event(sub.userdata, EVENTTYPE_CLOCK))
            .collect()
    };
    let data = memory.data_mut(&mut caller);
    let out_len = fired.len() * EVENT_SIZE;
    let Some(out) = events.checked_add(out_len).and_then(|end| data.get_mut(events..end)) else {
        return Ok(ERRNO_FAULT);
    };
    for (slot, event) in out.chunks_exact_mut(EVENT_SIZE).zip(&fired) {
        slot.copy_from_slice(event);
    }
    let Some(written) = events_written.checked_add(4).and_then(|end| data.get_mut(events_written..end)) else {
        return Ok(ERRNO_FAULT);
    };
    written.copy_from_slice(&(fired.len() as u32).to_le_bytes());
    Ok(ERRNO_SUCCESS)
}

/// Replaces wasmtime-wasi's `poll_oneoff` (the linker must allow shadowing).
pub(super) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.func_wrap("wasi_snapshot_preview1", "poll_oneoff", poll_oneoff)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(kind: u8, clock_id: u32, timeout: u64, absolute: bool) -> Subscription {
        Subscription { userdata: 7, kind, clock_id, timeout, absolute }
    }

    #[test]
    fn relative_waits_are_the_timeout() {
        assert_eq!(wait_of(&sub(EVENTTYPE_CLOCK, 1, 5_000, false), None), Some(5_000));
    }

    #[test]
    fn absolute_waits_count_from_the_fake_clock() {
        let fake = FakeTime::default();
        fake.advance(1_000_000);
        let wait = wait_of(&sub(EVENTTYPE_CLOCK, 1, 3_000_000, true), Some(&fake)).unwrap();
        assert!((1_990_000..=2_000_000).contains(&wait), "{wait}");
        let past = wait_of(&sub(EVENTTYPE_CLOCK, 1, 10, true), Some(&fake)).unwrap();
        assert_eq!(past, 0);
    }

    #[test]
    fn absolute_monotonic_waits_need_the_fake_clock() {
        assert_eq!(wait_of(&sub(EVENTTYPE_CLOCK, 1, 10, true), None), None);
    }

    #[test]
    fn events_carry_userdata_and_type() {
        let e = event(0x0102_0304_0506_0708, EVENTTYPE_FD_WRITE);
        assert_eq!(&e[0..8], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(e[10], EVENTTYPE_FD_WRITE);
        assert_eq!(e[8..10], [0, 0]);
    }

    #[test]
    fn subscriptions_parse_from_the_wasi_layout() {
        let mut raw = [0u8; SUBSCRIPTION_SIZE];
        raw[0..8].copy_from_slice(&9u64.to_le_bytes());
        raw[8] = EVENTTYPE_CLOCK;
        raw[16..20].copy_from_slice(&1u32.to_le_bytes());
        raw[24..32].copy_from_slice(&1_000u64.to_le_bytes());
        raw[40..42].copy_from_slice(&SUBCLOCKFLAGS_ABSTIME.to_le_bytes());
        let s = parse(&raw);
        assert_eq!((s.userdata, s.kind, s.clock_id, s.timeout, s.absolute), (9, EVENTTYPE_CLOCK, 1, 1_000, true));
    }
}
