//! The ABI v1 decoders on arbitrary guest memory: the first 4 bytes are the record's
//! address (little-endian), the rest is linear memory. All three decoders must return
//! `Ok` or `Err` without panicking, and whatever they accept must be usable by the host.
#![no_main]

use std::collections::HashSet;

use leakhost::abi::{decode_counters, decode_manifest, decode_status, MAX_MESSAGE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((addr, memory)) = data.split_first_chunk::<4>() else {
        return;
    };
    let addr = u32::from_le_bytes(*addr);
    decode_all(memory, addr);
    // The same memory read at an address inside it, so most inputs get past the first record.
    if !memory.is_empty() {
        decode_all(memory, addr % memory.len() as u32);
    }
});

fn decode_all(memory: &[u8], addr: u32) {
    if let Ok(manifest) = decode_manifest(memory, addr) {
        let n = manifest.layers.len();
        let mut names = HashSet::new();
        for layer in &manifest.layers {
            assert!(!layer.name.is_empty() && names.insert(&layer.name));
            assert!(layer.bases.iter().all(|&b| b < n));
        }
        let mut tests = HashSet::new();
        for test in &manifest.tests {
            assert!(!test.name.is_empty() && test.layer.is_none_or(|l| l < n));
            assert!(tests.insert((test.layer, &test.name)));
        }
    }
    if let Ok(status) = decode_status(memory, addr) {
        assert!(status.message.len() <= 3 * MAX_MESSAGE_LEN as usize);
    }
    if let Ok(counters) = decode_counters(memory, addr) {
        assert!(counters.types.windows(2).all(|w| w[0].name <= w[1].name));
        assert!(counters.user.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
