//! A fast hasher for the integer ids this crate hands out itself (core ids, channel ids, our
//! request ids), as the keys of its hash maps.
//!
//! The standard library's SipHash resists keys chosen to collide, which maps keyed by remote
//! input need (the remote's request ids stay on SipHash). Keys we choose ourselves cannot be
//! chosen by the remote, so they get a multiply-rotate hash of a few instructions instead
//! (the per-message lookups of a replication stream are a visible part of its cost).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// A [`Hasher`] for integer keys that the remote does not choose: one multiply per word.
#[derive(Debug, Clone, Copy, Default)]
pub struct IdHasher(u64);

/// An odd constant with well-mixed bits (2^64 / φ), as Fibonacci hashing uses.
const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // The multiply carries low bits up only: fold the high half back down, so the
        // bucket index (low bits) and the control tag (high bits) both see every input bit.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word.get_mut(..chunk.len())
                .unwrap_or_default()
                .copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

/// Builds [`IdHasher`]s.
pub type IdBuildHasher = BuildHasherDefault<IdHasher>;

/// A hash map keyed by ids this side chose.
pub type IdMap<K, V> = HashMap<K, V, IdBuildHasher>;

/// A hash set of ids this side chose.
pub type IdSet<K> = HashSet<K, IdBuildHasher>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher as _;

    use super::*;

    #[test]
    fn sequential_ids_spread_over_buckets_and_tags() {
        let build = IdBuildHasher::default();
        let mut low = HashSet::new();
        let mut high = HashSet::new();
        for id in 0u64..1024 {
            let h = build.hash_one(id);
            low.insert(h & 1023);
            high.insert(h >> 57);
        }
        // A bijection on the low bits would give 1024; near it is what matters.
        assert!(low.len() > 600, "low bits: {}", low.len());
        assert_eq!(high.len(), 128, "every 7-bit tag is used");
    }

    #[test]
    fn maps_work_as_maps() {
        let mut m: IdMap<u64, u64> = IdMap::default();
        for i in 0..10_000 {
            m.insert(i * 3, i);
        }
        for i in 0..10_000 {
            assert_eq!(m.get(&(i * 3)), Some(&i));
            assert_eq!(m.get(&(i * 3 + 1)), None);
        }
        let mut h = IdHasher::default();
        h.write(&[1, 2, 3]);
        let mut g = IdHasher::default();
        g.write_u64(0x03_02_01);
        assert_eq!(h.finish(), g.finish());
    }
}
