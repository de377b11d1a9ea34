//! The blocks this open of a core has checked against their Merkle leaves (see
//! [`ReadCheck`](crate::ReadCheck) for the trust model).
//!
//! One bit per block in pages of [`PAGE_BITS`] bits, allocated when a block of the page is
//! first marked: a core that is never read holds no page, and a core read in full holds one bit
//! per block (128 KiB for a million blocks). The set lives in memory only; every open starts
//! empty.
//!
//! It sits behind a mutex so that [`Core::get`](crate::Core::get), which takes `&self`, can
//! mark what it verified. The invariant "checked ⊆ stored" is kept by
//! [`Bitfield`](crate::bitfield::Bitfield): clearing a stored bit clears the checked bit too.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Blocks per page.
pub(crate) const PAGE_BITS: u64 = 4096;

/// 64-bit words per page.
const WORDS: usize = (PAGE_BITS / 64) as usize;

type Page = Box<[u64; WORDS]>;

/// A set of block indices, safe to update through `&self`.
#[derive(Debug, Default)]
pub(crate) struct CheckedBlocks {
    pages: Mutex<BTreeMap<u64, Page>>,
}

impl CheckedBlocks {
    fn pages(&self) -> MutexGuard<'_, BTreeMap<u64, Page>> {
        // Every update leaves the map consistent, so a panic elsewhere cannot corrupt it.
        self.pages.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether block `index` is in the set.
    pub(crate) fn contains(&self, index: u64) -> bool {
        let (page, word, bit) = locate(index);
        self.pages()
            .get(&page)
            .is_some_and(|p| p[word] & (1 << bit) != 0)
    }

    /// Adds blocks `[start, start + len)`. Callers bound the range by the core's length.
    pub(crate) fn insert_range(&self, start: u64, len: u64) {
        let mut pages = self.pages();
        for_each_page(start, len, |page, from, to| {
            let bits = pages.entry(page).or_insert_with(|| Box::new([0; WORDS]));
            update(bits, from, to, true);
        });
    }

    /// Removes blocks `[start, start + len)`; touches only pages that exist.
    pub(crate) fn remove_range(&self, start: u64, len: u64) {
        let end = start.saturating_add(len);
        if start >= end {
            return;
        }
        let mut pages = self.pages();
        let touched: Vec<u64> = pages
            .range(start / PAGE_BITS..=(end - 1) / PAGE_BITS)
            .map(|(&p, _)| p)
            .collect();
        for page in touched {
            let page_start = page * PAGE_BITS;
            let from = start.max(page_start) - page_start;
            let to = end.min(page_start + PAGE_BITS) - page_start;
            if from == 0 && to == PAGE_BITS {
                pages.remove(&page);
            } else if let Some(bits) = pages.get_mut(&page) {
                update(bits, from, to, false);
                if bits.iter().all(|&w| w == 0) {
                    pages.remove(&page);
                }
            }
        }
    }

    /// Number of pages held (for tests of the memory bound).
    #[cfg(test)]
    fn page_count(&self) -> usize {
        self.pages().len()
    }
}

/// `(page, word within the page, bit within the word)` of block `index`.
const fn locate(index: u64) -> (u64, usize, u32) {
    let in_page = index % PAGE_BITS;
    (
        index / PAGE_BITS,
        (in_page / 64) as usize,
        (in_page % 64) as u32,
    )
}

/// Calls `f(page, from, to)` for each page the range `[start, start + len)` touches, with the
/// bit range inside that page.
fn for_each_page(start: u64, len: u64, mut f: impl FnMut(u64, u64, u64)) {
    let end = start.saturating_add(len);
    if start >= end {
        return;
    }
    for page in start / PAGE_BITS..=(end - 1) / PAGE_BITS {
        let page_start = page * PAGE_BITS;
        f(
            page,
            start.max(page_start) - page_start,
            end.min(page_start + PAGE_BITS) - page_start,
        );
    }
}

/// Sets or clears bits `[from, to)` of one page, a word at a time.
fn update(bits: &mut [u64; WORDS], from: u64, to: u64, value: bool) {
    let mut i = from;
    while i < to {
        let word = (i / 64) as usize;
        let lo = i % 64;
        let hi = (to - (i - lo)).min(64);
        let mask = if hi - lo == 64 {
            u64::MAX
        } else {
            ((1u64 << (hi - lo)) - 1) << lo
        };
        if value {
            bits[word] |= mask;
        } else {
            bits[word] &= !mask;
        }
        i += hi - lo;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The set agrees with a plain model over ranges that straddle words and pages.
    #[test]
    fn ranges_match_a_model() {
        let set = CheckedBlocks::default();
        let mut model = vec![false; 3 * PAGE_BITS as usize];
        let ops: [(bool, u64, u64); 8] = [
            (true, 0, 1),
            (true, 63, 2),
            (true, 100, 5000),
            (false, 130, 64),
            (true, 4095, 1),
            (false, 4000, 200),
            (true, 8190, 4000),
            (false, 0, 70),
        ];
        for (add, start, len) in ops {
            if add {
                set.insert_range(start, len);
            } else {
                set.remove_range(start, len);
            }
            for i in start..start + len {
                model[i as usize] = add;
            }
            for (i, &want) in model.iter().enumerate() {
                assert_eq!(
                    set.contains(i as u64),
                    want,
                    "block {i} after {add} {start}+{len}"
                );
            }
        }
    }

    /// Pages exist only while they hold a bit; huge and empty ranges are cheap.
    #[test]
    fn pages_are_allocated_on_demand_and_dropped_when_empty() {
        let set = CheckedBlocks::default();
        assert_eq!(set.page_count(), 0);
        set.insert_range(10 * PAGE_BITS + 3, 1);
        assert_eq!(set.page_count(), 1);
        set.insert_range(5, 0);
        assert_eq!(set.page_count(), 1);
        set.remove_range(0, u64::MAX);
        assert_eq!(set.page_count(), 0);
        set.insert_range(0, 2 * PAGE_BITS);
        set.remove_range(1, 1);
        assert_eq!(set.page_count(), 2);
        assert!(set.contains(0) && !set.contains(1) && set.contains(2));
        set.remove_range(0, 1);
        set.remove_range(2, PAGE_BITS);
        assert_eq!(set.page_count(), 1);
        assert!(set.contains(PAGE_BITS + 2) && !set.contains(PAGE_BITS + 1));
    }
}
