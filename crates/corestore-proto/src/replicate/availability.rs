//! What blocks a remote has, from its `range` and `bitfield` messages (spec §9.8), as a bounded
//! set of disjoint half-open intervals.
//!
//! A peer could describe millions of disjoint runs (alternating bits in a 65536-word bitfield),
//! so the set keeps at most [`MAX_INTERVALS`]; information beyond that is dropped, which only
//! makes us believe the remote has *fewer* blocks (we may send `want` again, never a request
//! the remote cannot answer).

use std::collections::BTreeMap;

/// The most intervals remembered per remote core.
pub(crate) const MAX_INTERVALS: usize = 65_536;

/// Disjoint, non-adjacent intervals `[start, end)` keyed by start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Availability {
    runs: BTreeMap<u64, u64>,
}

impl Availability {
    /// Whether block `index` is known to be available.
    pub(crate) fn contains(&self, index: u64) -> bool {
        self.runs
            .range(..=index)
            .next_back()
            .is_some_and(|(_, &end)| index < end)
    }

    /// Whether all of `[start, end)` is known to be available (an empty range is).
    pub(crate) fn contains_range(&self, start: u64, end: u64) -> bool {
        start >= end
            || self
                .runs
                .range(..=start)
                .next_back()
                .is_some_and(|(_, &e)| end <= e)
    }

    /// Marks `[start, start + len)` available.
    pub(crate) fn insert(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        if start >= end {
            return;
        }
        let (mut lo, mut hi) = (start, end);
        // Merge with every run that overlaps or touches [start, end).
        let touching: Vec<(u64, u64)> = self
            .runs
            .range(..=end)
            .rev()
            .take_while(|&(_, &e)| e >= start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in touching {
            self.runs.remove(&s);
            lo = lo.min(s);
            hi = hi.max(e);
        }
        if self.runs.len() < MAX_INTERVALS {
            self.runs.insert(lo, hi);
        }
    }

    /// Marks `[start, start + len)` unavailable.
    pub(crate) fn remove(&mut self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        if start >= end {
            return;
        }
        let overlapping: Vec<(u64, u64)> = self
            .runs
            .range(..end)
            .rev()
            .take_while(|&(_, &e)| e > start)
            .map(|(&s, &e)| (s, e))
            .collect();
        for (s, e) in overlapping {
            self.runs.remove(&s);
            if s < start {
                self.runs.insert(s, start);
            }
            if e > end && self.runs.len() < MAX_INTERVALS {
                self.runs.insert(end, e);
            }
        }
    }

    /// Applies a `bitfield` message: the words overwrite `[start, start + 32 * words)`.
    pub(crate) fn apply_bitfield(&mut self, start: u64, words: &[u32]) {
        let span = 32 * words.len() as u64;
        self.remove(start, span);
        let mut run: Option<u64> = None;
        for (w, &word) in words.iter().enumerate() {
            for bit in 0..32u64 {
                let index = start + 32 * w as u64 + bit;
                match (word >> bit & 1 == 1, run) {
                    (true, None) => run = Some(index),
                    (false, Some(s)) => {
                        self.insert(s, index - s);
                        run = None;
                    }
                    _ => {}
                }
            }
        }
        if let Some(s) = run {
            self.insert(s, start + span - s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_merge_remove() {
        let mut a = Availability::default();
        a.insert(10, 5);
        a.insert(20, 5);
        a.insert(15, 5); // bridges both
        assert_eq!(a.runs.len(), 1);
        assert!(a.contains(10) && a.contains(24) && !a.contains(25) && !a.contains(9));
        a.remove(12, 2);
        assert!(a.contains(11) && !a.contains(12) && !a.contains(13) && a.contains(14));
        a.remove(0, 100);
        assert!(a.runs.is_empty());
        a.insert(u64::MAX - 1, 10);
        assert!(a.contains(u64::MAX - 1));
    }

    #[test]
    fn contains_whole_ranges() {
        let mut a = Availability::default();
        a.insert(10, 10);
        assert!(a.contains_range(10, 20));
        assert!(a.contains_range(12, 15));
        assert!(a.contains_range(30, 30));
        assert!(!a.contains_range(9, 12));
        assert!(!a.contains_range(15, 21));
        a.insert(25, 5);
        assert!(!a.contains_range(15, 27));
    }

    #[test]
    fn bitfield_words_overwrite() {
        let mut a = Availability::default();
        a.insert(0, 64);
        a.apply_bitfield(0, &[0b1011, 0x8000_0000]);
        let have: Vec<u64> = (0..64).filter(|&i| a.contains(i)).collect();
        assert_eq!(have, vec![0, 1, 3, 63]);
    }

    #[test]
    fn bounded() {
        let mut a = Availability::default();
        a.apply_bitfield(0, &vec![0x5555_5555; 65_536]);
        assert!(a.runs.len() <= MAX_INTERVALS);
    }
}
