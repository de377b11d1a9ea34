//! Hash maps and sets keyed by the integer ids this crate hands out itself (core ids, channel
//! ids, our request ids), with [`IndexHash`]: a multiply-fold hasher keyed once per process, a
//! few instructions per lookup where the standard library's SipHash costs some 140 (the
//! per-message lookups of a replication stream are a visible part of its cost).
//!
//! SipHash resists keys chosen to collide, which maps keyed by remote input need: the remote's
//! request ids stay on it.

use std::collections::{HashMap, HashSet};

pub use corestore_keys::index_hash::IndexHash;

/// A hash map keyed by ids this side chose.
pub type IdMap<K, V> = HashMap<K, V, IndexHash>;

/// A hash set of ids this side chose.
pub type IdSet<K> = HashSet<K, IndexHash>;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher as _;

    use super::*;

    /// Sequential ids (what we hand out) spread over the low bits a table picks buckets by
    /// and over the high bits of its control tags.
    #[test]
    fn sequential_ids_spread_over_buckets_and_tags() {
        let mut low = HashSet::new();
        let mut high = HashSet::new();
        for id in 0u64..1024 {
            let h = IndexHash.hash_one(id);
            low.insert(h & 1023);
            high.insert(h >> 57);
        }
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
        let set: IdSet<u32> = (0..100).collect();
        assert!(set.contains(&99) && !set.contains(&100));
    }
}
