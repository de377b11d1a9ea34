//! The `bitfield` file (spec §5.7): one bit per block, "stored locally", LSB first, written in
//! 4096-byte pages (32,768 blocks each) on flush.
//!
//! Only pages with a set bit (or pages that were written and then cleared) are held in memory;
//! a page that is absent reads as all zeros.
//!
//! Next to the stored bits lives the in-memory set of blocks this open has checked against
//! their leaves ([`CheckedBlocks`]); clearing a stored bit clears its checked bit, so a block
//! dropped by a truncation, reorg or clear is checked again once it is stored anew.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rac_storage::Storage;

use crate::checked::CheckedBlocks;
use crate::error::Result;
use crate::oplog::format::{BITFIELD_PAGE_SIZE, BITS_PER_PAGE};

type Page = Box<[u8; BITFIELD_PAGE_SIZE]>;

/// The in-memory bitfield plus its file.
#[derive(Debug)]
pub(crate) struct Bitfield {
    storage: Arc<dyn Storage>,
    pages: BTreeMap<u64, Page>,
    dirty: BTreeSet<u64>,
    /// Stored blocks this open has checked (never written to the file).
    checked: CheckedBlocks,
}

impl Bitfield {
    /// Loads the pages that can hold blocks below `max_length` (bits beyond it are
    /// meaningless: no block there is part of the core). All-zero pages are not kept.
    pub(crate) fn open(storage: Arc<dyn Storage>, max_length: u64) -> Result<Self> {
        let file_len = storage.len()?;
        // JavaScript reads whole 32-bit words and ignores any trailing bytes.
        let usable = file_len - file_len % 4;
        let wanted_pages = max_length.div_ceil(BITS_PER_PAGE);
        let file_pages = usable.div_ceil(BITFIELD_PAGE_SIZE as u64);
        let mut pages = BTreeMap::new();
        for page in 0..wanted_pages.min(file_pages) {
            let offset = page * BITFIELD_PAGE_SIZE as u64;
            let n = (usable - offset).min(BITFIELD_PAGE_SIZE as u64) as usize;
            let mut buf: Page = Box::new([0; BITFIELD_PAGE_SIZE]);
            storage.read(offset, &mut buf[..n])?;
            if buf.iter().any(|&b| b != 0) {
                pages.insert(page, buf);
            }
        }
        Ok(Self {
            storage,
            pages,
            dirty: BTreeSet::new(),
            checked: CheckedBlocks::default(),
        })
    }

    /// Whether block `index` is stored locally.
    pub(crate) fn get(&self, index: u64) -> bool {
        let (page, byte, bit) = locate(index);
        self.pages
            .get(&page)
            .is_some_and(|p| p[byte] & (1 << bit) != 0)
    }

    /// Sets (`value`) or clears the bits of blocks `[start, start + length)`.
    ///
    /// Setting allocates pages; callers bound `start + length` by the tree length. Clearing
    /// only touches pages that exist.
    pub(crate) fn set_range(&mut self, start: u64, length: u64, value: bool) {
        let end = start.saturating_add(length);
        if start >= end {
            return;
        }
        if !value {
            self.checked.remove_range(start, length);
        }
        let first_page = start / BITS_PER_PAGE;
        let last_page = (end - 1) / BITS_PER_PAGE;
        if value {
            // Setting bits creates the pages it needs (one, for a stored block).
            for page in first_page..=last_page {
                self.fill_page(page, start, end, true);
            }
        } else {
            // Clearing touches only the pages that exist.
            let pages: Vec<u64> = self
                .pages
                .range(first_page..=last_page)
                .map(|(&p, _)| p)
                .collect();
            for page in pages {
                self.fill_page(page, start, end, false);
            }
        }
    }

    /// Sets or clears the bits of `[start, end)` that fall in `page`, creating the page.
    fn fill_page(&mut self, page: u64, start: u64, end: u64, value: bool) {
        let page_start = page * BITS_PER_PAGE;
        let from = start.max(page_start) - page_start;
        let to = end.min(page_start + BITS_PER_PAGE) - page_start;
        let bits = self
            .pages
            .entry(page)
            .or_insert_with(|| Box::new([0; BITFIELD_PAGE_SIZE]));
        fill(bits, from, to, value);
        self.dirty.insert(page);
    }

    /// Whether block `index` was checked against its leaf by this open (implies stored).
    pub(crate) fn is_checked(&self, index: u64) -> bool {
        self.checked.contains(index)
    }

    /// Records that the stored blocks `[start, start + length)` match their leaves: this open
    /// wrote them, verified them on arrival or read and hashed them.
    pub(crate) fn mark_checked(&self, start: u64, length: u64) {
        self.checked.insert_range(start, length);
    }

    /// The first block at or after `from` that is not stored.
    pub(crate) fn first_unset(&self, from: u64) -> u64 {
        let mut i = from;
        loop {
            let (page, byte, _) = locate(i);
            let Some(bits) = self.pages.get(&page) else {
                return i;
            };
            if bits[byte] == 0xff && i.is_multiple_of(8) {
                i += 8;
                continue;
            }
            if !self.get(i) {
                return i;
            }
            i += 1;
        }
    }

    /// The first stored block in `[from, end)`, if any.
    pub(crate) fn first_set(&self, from: u64, end: u64) -> Option<u64> {
        let mut i = from;
        while i < end {
            let (page, byte, _) = locate(i);
            match self.pages.get(&page) {
                None => match self.pages.range(page..).next() {
                    Some((&next, _)) => i = next * BITS_PER_PAGE,
                    None => return None,
                },
                Some(bits) if bits[byte] == 0 && i.is_multiple_of(8) => i += 8,
                Some(_) if self.get(i) => return Some(i),
                Some(_) => i += 1,
            }
        }
        None
    }

    /// One past the last stored block before `end` (0 if none).
    pub(crate) fn last_set_before(&self, end: u64) -> u64 {
        let mut i = end;
        while i > 0 {
            let (page, byte, _) = locate(i - 1);
            match self.pages.get(&page) {
                None => match self.pages.range(..page).next_back() {
                    Some((&prev, _)) => i = (prev + 1) * BITS_PER_PAGE,
                    None => return 0,
                },
                Some(bits) if bits[byte] == 0 && i.is_multiple_of(8) => i -= 8,
                Some(_) if self.get(i - 1) => return i,
                Some(_) => i -= 1,
            }
        }
        0
    }

    /// Whether any page changed since the last flush.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Writes every dirty page in full (hypercore writes whole 4096-byte pages).
    pub(crate) fn flush(&mut self) -> Result<()> {
        for &page in &self.dirty {
            let zero = [0u8; BITFIELD_PAGE_SIZE];
            let bits = self.pages.get(&page).map_or(&zero, |b| &**b);
            self.storage.write(page * BITFIELD_PAGE_SIZE as u64, bits)?;
        }
        self.dirty.clear();
        Ok(())
    }

    /// Syncs the file.
    pub(crate) fn sync(&self) -> Result<()> {
        Ok(self.storage.sync()?)
    }

    /// Releases the file handle.
    pub(crate) fn close(&self) -> Result<()> {
        Ok(self.storage.close()?)
    }
}

/// `(page, byte within page, bit within byte)` of block `index`.
const fn locate(index: u64) -> (u64, usize, u32) {
    let page = index / BITS_PER_PAGE;
    let in_page = index % BITS_PER_PAGE;
    (page, (in_page / 8) as usize, (in_page % 8) as u32)
}

/// Sets or clears bits `[from, to)` of one page.
fn fill(bits: &mut [u8; BITFIELD_PAGE_SIZE], from: u64, to: u64, value: bool) {
    let mut i = from;
    while i < to {
        let byte = (i / 8) as usize;
        if i.is_multiple_of(8) && i + 8 <= to {
            bits[byte] = if value { 0xff } else { 0 };
            i += 8;
            continue;
        }
        let mask = 1u8 << (i % 8);
        if value {
            bits[byte] |= mask;
        } else {
            bits[byte] &= !mask;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rac_storage::MemoryStorage;

    fn empty() -> Bitfield {
        Bitfield::open(Arc::new(MemoryStorage::new()), 0).unwrap()
    }

    #[test]
    fn five_blocks_make_0x1f() {
        let storage = Arc::new(MemoryStorage::new());
        let mut b = Bitfield::open(storage.clone(), 0).unwrap();
        b.set_range(0, 5, true);
        b.flush().unwrap();
        let mut buf = vec![0; 4096];
        assert_eq!(storage.len().unwrap(), 4096);
        storage.read(0, &mut buf).unwrap();
        assert_eq!(buf[0], 0x1f);
        assert!(buf[1..].iter().all(|&x| x == 0));

        let again = Bitfield::open(storage, 5).unwrap();
        assert!((0..5).all(|i| again.get(i)));
        assert!(!again.get(5));
    }

    #[test]
    fn ranges_across_pages() {
        let mut b = empty();
        b.set_range(32760, 20, true);
        assert!(!b.get(32759));
        assert!((32760..32780).all(|i| b.get(i)));
        assert!(!b.get(32780));
        assert_eq!(b.first_unset(32760), 32780);
        assert_eq!(b.first_set(0, 100_000), Some(32760));
        assert_eq!(b.first_set(32780, 100_000), None);
        assert_eq!(b.last_set_before(100_000), 32780);
        assert_eq!(b.last_set_before(32760), 0);
        b.set_range(32770, 5, false);
        assert_eq!(b.first_unset(32760), 32770);
        assert_eq!(b.first_set(32770, 100_000), Some(32775));
        assert_eq!(b.last_set_before(32775), 32770);
        // Clearing where no page exists allocates nothing.
        b.set_range(10_000_000, 1 << 40, false);
        assert_eq!(b.pages.len(), 2);
    }

    /// Unstoring a block unchecks it; storing it again does not check it.
    #[test]
    fn clearing_stored_bits_clears_checked_bits() {
        let mut b = empty();
        b.set_range(0, 10, true);
        b.mark_checked(0, 10);
        b.set_range(3, 4, false);
        assert!((0..10).all(|i| b.is_checked(i) != (3..7).contains(&i)));
        b.set_range(0, 10, true);
        assert!(!b.is_checked(3) && b.is_checked(2));
    }

    #[test]
    fn contiguous_scan_matches_bit_by_bit() {
        let mut b = empty();
        b.set_range(0, 100, true);
        b.set_range(37, 1, false);
        assert_eq!(b.first_unset(0), 37);
        assert_eq!(b.first_unset(38), 100);
        b.set_range(37, 1, true);
        assert_eq!(b.first_unset(0), 100);
    }

    #[test]
    fn loading_ignores_pages_beyond_the_length() {
        let storage = Arc::new(MemoryStorage::new());
        let mut b = Bitfield::open(storage.clone(), 0).unwrap();
        b.set_range(40_000, 3, true);
        b.flush().unwrap();
        assert_eq!(storage.len().unwrap(), 8192);
        let short = Bitfield::open(storage.clone(), 10).unwrap();
        assert!(!short.get(40_000));
        let long = Bitfield::open(storage, 40_003).unwrap();
        assert!(long.get(40_002));
    }
}
