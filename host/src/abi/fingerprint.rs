//! A hash of a manifest's bytes, so that a fresh instance can be checked against the
//! validated manifest without decoding it again.

use leakhost_guest::abi as v1;

/// Hashes the manifest record at `addr` and everything it points to (records, names and
/// base lists), in the layout [`super::decode_manifest`] reads; `None` when some of it
/// is outside `memory` (it then cannot be the manifest that was validated).
pub fn manifest_fingerprint(memory: &[u8], addr: u32) -> Option<blake3::Hash> {
    let bytes = |ptr: u32, len: u64| memory.get(ptr as usize..(ptr as u64).checked_add(len)? as usize);
    let word = |at: &[u8], i: usize| Some(u32::from_le_bytes(at.get(4 * i..4 * i + 4)?.try_into().ok()?));
    let header = bytes(addr, 16)?;
    let (layers_ptr, layers_len) = (word(header, 0)?, word(header, 1)?);
    let (tests_ptr, tests_len) = (word(header, 2)?, word(header, 3)?);
    let layers = bytes(layers_ptr, u64::from(layers_len) * u64::from(v1::LAYER_SIZE))?;
    let tests = bytes(tests_ptr, u64::from(tests_len) * u64::from(v1::TEST_SIZE))?;
    // Small pieces are staged and hashed a batch at a time: a hasher update per name cost
    // more than the copy (10,000 small updates were a tenth of a large suite's start-up),
    // and a buffer of every name would hold them all a second time (512 MB for 131,072
    // names of 4 KB).
    let mut hasher = Staged { hasher: blake3::Hasher::new(), batch: Vec::with_capacity(BATCH) };
    hasher.update(header);
    hasher.update(layers);
    hasher.update(tests);
    for layer in layers.chunks_exact(v1::LAYER_SIZE as usize) {
        hasher.update(bytes(word(layer, 0)?, u64::from(word(layer, 1)?))?);
        hasher.update(bytes(word(layer, 2)?, 4 * u64::from(word(layer, 3)?))?);
    }
    for test in tests.chunks_exact(v1::TEST_SIZE as usize) {
        hasher.update(bytes(word(test, 0)?, u64::from(word(test, 1)?))?);
    }
    Some(hasher.finalize())
}

/// How many bytes of small pieces are hashed at once.
const BATCH: usize = 64 << 10;

/// A hasher that hashes small inputs a batch at a time (the same hash as hashing them one by one).
struct Staged {
    hasher: blake3::Hasher,
    batch: Vec<u8>,
}

impl Staged {
    fn update(&mut self, bytes: &[u8]) {
        if self.batch.len() + bytes.len() > BATCH {
            self.hasher.update(&self.batch);
            self.batch.clear();
        }
        match bytes.len() >= BATCH {
            true => {
                self.hasher.update(bytes);
            }
            false => self.batch.extend_from_slice(bytes),
        }
    }

    fn finalize(mut self) -> blake3::Hash {
        self.hasher.update(&self.batch);
        self.hasher.finalize()
    }
}
