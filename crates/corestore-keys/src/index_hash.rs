//! [`IndexHash`]: a fast, per-process keyed hasher for tables keyed by `u64` indices (tree
//! nodes, blocks, request ids), in place of the standard library's SipHash, which costs some
//! 140 instructions per lookup.
//!
//! One wide multiplication whose two halves are folded together, so that every bit of the
//! hash depends on every bit of the index. Nodes of one tree level share their low index bits
//! (a depth-`d` node ends in `d` one bits), and a table picks buckets by the low bits of the
//! hash: a plain product, whose low bits depend only on the low bits of the index, would put
//! all of one level's nodes in a few buckets.
//!
//! Peers influence which indices we store (by the blocks they request, announce and send), so
//! the hasher starts from a key drawn once per process: the buckets an index lands in cannot be
//! computed ahead of time from this source alone. It is a cheap mixer, not a keyed PRF: use it
//! for tables whose size is bounded by other means, which caps what a collision costs.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// Golden-ratio multiplier (2⁶⁴/φ), odd: the multiplication is a bijection.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// The [`BuildHasher`] of [`IndexHasher`]s: `HashMap<u64, V, IndexHash>`.
#[derive(Debug, Default, Clone, Copy)]
pub struct IndexHash;

impl BuildHasher for IndexHash {
    type Hasher = IndexHasher;

    fn build_hasher(&self) -> IndexHasher {
        IndexHasher(key())
    }
}

/// The per-process key, from the standard library's randomly keyed hasher.
fn key() -> u64 {
    static KEY: OnceLock<u64> = OnceLock::new();
    *KEY.get_or_init(|| std::hash::RandomState::new().hash_one(0x6879_7065_7263_6f72_u64))
}

/// The hasher of [`IndexHash`] (made for `u64` keys; other keys are folded in byte by byte).
#[derive(Debug)]
pub struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        let wide = u128::from(self.0) * u128::from(MULTIPLIER);
        (wide as u64) ^ ((wide >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_add(MULTIPLIER);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(32) ^ n).wrapping_add(MULTIPLIER);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::IndexHash;

    /// The nodes of one tree level (indices ending in the same one bits) spread over the
    /// buckets a table picks with the hash's low bits.
    #[test]
    fn one_level_of_nodes_spreads_over_the_low_bits() {
        for depth in [0u32, 3, 7] {
            let buckets: HashSet<u64> = (0..1024u64)
                .map(|offset| ((offset * 2 + 1) << depth) - 1)
                .map(|index| IndexHash.hash_one(index) & 1023)
                .collect();
            assert!(
                buckets.len() > 500,
                "depth {depth}: {} buckets",
                buckets.len()
            );
        }
    }

    /// Same key, same hash (within a process); different keys differ.
    #[test]
    fn hashes_are_stable_and_distinct() {
        assert_eq!(IndexHash.hash_one(42u64), IndexHash.hash_one(42u64));
        assert_ne!(IndexHash.hash_one(42u64), IndexHash.hash_one(43u64));
    }
}
