//! A `std::hash::Hasher` backed by blake3, so that anything implementing `Hash`
//! (wasmtime's engine compatibility hash, in particular) turns into the same bytes in
//! every build of leakhost. `DefaultHasher` promises no such thing across Rust versions.

use std::hash::Hasher;

/// Feeds everything written to it into blake3.
#[derive(Default, Clone)]
pub struct StableHasher(blake3::Hasher);

impl StableHasher {
    /// A hasher with nothing written yet.
    pub fn new() -> Self {
        StableHasher(blake3::Hasher::new())
    }

    /// The full 256-bit digest of what was written.
    pub fn digest(&self) -> blake3::Hash {
        self.0.finalize()
    }
}

impl Hasher for StableHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.digest();
        u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("a blake3 digest has 32 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use std::hash::Hash;

    use super::*;

    fn digest_of(value: impl Hash) -> blake3::Hash {
        let mut hasher = StableHasher::new();
        value.hash(&mut hasher);
        hasher.digest()
    }

    #[test]
    fn equal_input_gives_equal_digests_and_different_input_differs() {
        assert_eq!(digest_of(("cranelift", 3u32, true)), digest_of(("cranelift", 3u32, true)));
        assert_ne!(digest_of(("cranelift", 3u32, true)), digest_of(("cranelift", 3u32, false)));
        // The digest is blake3 of exactly the bytes `Hash` wrote: no per-process seed.
        let mut direct = blake3::Hasher::new();
        direct.update(&7u64.to_ne_bytes());
        assert_eq!(digest_of(7u64), direct.finalize());
    }

    #[test]
    fn finish_is_the_digest_prefix() {
        let mut hasher = StableHasher::new();
        hasher.write(b"abc");
        let prefix = u64::from_le_bytes(blake3::hash(b"abc").as_bytes()[..8].try_into().unwrap());
        assert_eq!(hasher.finish(), prefix);
    }
}
