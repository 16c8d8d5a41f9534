//! The deterministic world a guest sees unless `--real-world` is given: a clock that
//! starts at the same instant and moves the same way in every run, and random streams
//! from a seed. Their positions are what a snapshot carries into a fresh instance.

use std::sync::Arc;
use std::time::Duration;

use wasmtime_wasi::{HostMonotonicClock, HostWallClock};

/// 4 KiB of bytes from splitmix64: the guest's whole "random" stream, repeated.
pub(super) fn seeded_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..512)
        .flat_map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)).to_le_bytes()
        })
        .collect()
}

/// A deterministic random stream: `bytes` repeated forever, read from a position the
/// host can see and set (a fresh instance started from a snapshot continues where the
/// snapshot's instance was). The bytes and the way words are made from them are those
/// of `wasmtime_wasi::Deterministic`, so the guest sees the same values.
#[derive(Clone)]
pub struct SeededStream {
    bytes: Arc<[u8]>,
    position: Arc<std::sync::atomic::AtomicU64>,
}

impl SeededStream {
    pub(super) fn new(bytes: Vec<u8>) -> Self {
        SeededStream { bytes: bytes.into(), position: Arc::default() }
    }

    pub(super) fn position(&self) -> u64 {
        self.position.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn seek(&self, position: u64) {
        self.position.store(position, std::sync::atomic::Ordering::Relaxed);
    }

    fn next_byte(&self) -> u8 {
        let at = self.position.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // seeded_bytes is never empty.
        self.bytes[(at % self.bytes.len() as u64) as usize]
    }
}

impl rand_core::TryRng for SeededStream {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let [b0, b1, b2, b3] = [(); 4].map(|()| self.next_byte());
        Ok(u32::from_be_bytes([b0, b1, b2, b3]))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let high = self.try_next_u32()?;
        Ok((u64::from(high) << 32) | u64::from(self.try_next_u32()?))
    }

    fn try_fill_bytes(&mut self, buf: &mut [u8]) -> Result<(), Self::Error> {
        buf.iter_mut().for_each(|b| *b = self.next_byte());
        Ok(())
    }
}

/// The deterministic clock of one instance: nanoseconds since a fixed start, moved
/// forward one microsecond by every reading and by exactly the requested time by every
/// sleep, so time passes for the guest but never differs between runs.
#[derive(Clone, Default)]
pub struct FakeTime(Arc<std::sync::atomic::AtomicU64>);

/// 2024-01-01T00:00:00Z, the deterministic wall clock's start.
const FIXED_EPOCH_SECS: u64 = 1_704_067_200;

impl FakeTime {
    /// Reads the clock (and moves it on by 1 µs).
    pub fn read(&self) -> u64 {
        self.advance(1_000)
    }

    pub(super) fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(super) fn set(&self, nanos: u64) {
        self.0.store(nanos, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lets `nanos` pass at once: a guest's sleep. The clock stops at its end (in the
    /// year 2608) rather than wrapping back to its start. Returns the new reading.
    pub fn advance(&self, nanos: u64) -> u64 {
        use std::sync::atomic::Ordering::Relaxed;
        let moved = self.0.fetch_update(Relaxed, Relaxed, |now| Some(now.saturating_add(nanos)));
        moved.unwrap_or_else(|now| now).saturating_add(nanos)
    }

    /// The wall-clock reading that corresponds to monotonic reading `nanos`.
    pub(super) fn wall(nanos: u64) -> Duration {
        Duration::from_secs(FIXED_EPOCH_SECS) + Duration::from_nanos(nanos)
    }
}

impl HostWallClock for FakeTime {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }
    fn now(&self) -> Duration {
        FakeTime::wall(self.read())
    }
}

impl HostMonotonicClock for FakeTime {
    fn resolution(&self) -> u64 {
        1_000
    }
    fn now(&self) -> u64 {
        self.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_bytes_depend_on_the_seed_only() {
        assert_eq!(seeded_bytes(7), seeded_bytes(7));
        assert_ne!(seeded_bytes(7), seeded_bytes(8));
        assert_eq!(seeded_bytes(7).len(), 4096);
    }

    #[test]
    fn seeded_streams_match_wasmtime_wasi_deterministic_and_can_seek() {
        use rand_core::Rng;
        let mut ours = SeededStream::new(seeded_bytes(3));
        let mut theirs = wasmtime_wasi::Deterministic::new(seeded_bytes(3));
        let (mut a, mut b) = ([0u8; 5000], [0u8; 5000]);
        assert_eq!(ours.next_u32(), theirs.next_u32());
        assert_eq!(ours.next_u64(), theirs.next_u64());
        ours.fill_bytes(&mut a);
        theirs.fill_bytes(&mut b);
        assert_eq!(a, b);
        let at = ours.position();
        let next = ours.next_u64();
        ours.seek(at);
        assert_eq!(ours.next_u64(), next);
    }

    #[test]
    fn fake_time_moves_forward_from_the_same_start() {
        let (a, b) = (FakeTime::default(), FakeTime::default());
        let first = HostWallClock::now(&a);
        assert_eq!(first, HostWallClock::now(&b));
        assert!(HostWallClock::now(&a) > first);
        let before = HostMonotonicClock::now(&a);
        a.advance(5_000_000_000);
        assert!(HostMonotonicClock::now(&a) >= before + 5_000_000_000);
    }

    #[test]
    fn a_sleep_of_u64_max_saturates_the_fake_clock() {
        let time = FakeTime::default();
        time.read();
        assert_eq!(time.advance(u64::MAX), u64::MAX);
        assert_eq!(HostMonotonicClock::now(&time), u64::MAX, "the clock stays at its end");
        assert!(HostWallClock::now(&time) > Duration::from_secs(FIXED_EPOCH_SECS));
    }
}
