//! The counters decoder on arbitrary guest memory, many snapshots into one interner:
//! the first 4 bytes are the record's address (little-endian), the rest is memory. It
//! must never panic, and what it accepts must respect the snapshot and per-run bounds.
#![no_main]

use leakhost::abi::{decode_counters_with, NameInterner, MAX_DISTINCT_NAMES, MAX_SNAPSHOT_NAME_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((addr, memory)) = data.split_first_chunk::<4>() else {
        return;
    };
    let addr = u32::from_le_bytes(*addr);
    let mut names = NameInterner::default();
    let addrs = [addr, if memory.is_empty() { 0 } else { addr % memory.len() as u32 }];
    for addr in addrs {
        // Twice: a repeated snapshot must decode the same and add no names.
        let first = decode_counters_with(memory, addr, &mut names);
        let known = names.len();
        let second = decode_counters_with(memory, addr, &mut names);
        assert_eq!(first, second);
        assert_eq!(names.len(), known);
        if let Ok(counters) = first {
            assert!(counters.types.windows(2).all(|w| w[0].name <= w[1].name));
            assert!(counters.user.windows(2).all(|w| w[0].0 <= w[1].0));
            let bytes: usize =
                counters.types.iter().map(|t| t.name.len()).sum::<usize>() + counters.user.iter().map(|u| u.0.len()).sum::<usize>();
            assert!(bytes as u64 <= MAX_SNAPSHOT_NAME_BYTES);
        }
    }
    assert!(names.len() <= MAX_DISTINCT_NAMES);
});
