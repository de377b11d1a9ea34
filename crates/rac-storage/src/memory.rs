//! [`MemoryStorage`]: a sparse, page-based in-memory [`Storage`], the counterpart of
//! random-access-memory.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Op, Result};
use crate::storage::{Storage, check_extent, check_read, len64};

/// Size of one memory page in bytes (64 KiB). Only pages that hold written data are allocated.
pub const PAGE_SIZE: usize = 64 * 1024;

/// [`PAGE_SIZE`] as a `u64`.
const PAGE: u64 = 64 * 1024;

/// A sparse in-memory storage made of [`PAGE_SIZE`] pages.
///
/// A write at a 1 TB offset allocates one page; unwritten ranges inside the length read as
/// zeros. Fully zeroed pages (by [`del`](Storage::del) or a shrinking
/// [`truncate`](Storage::truncate)) are freed.
///
/// A `MemoryStorage` is a *handle* onto shared data: [`reopen`](Self::reopen) gives a new handle
/// onto the same bytes (this is how [`MemoryProvider`](crate::MemoryProvider) makes reopening a
/// name work), and [`close`](Storage::close) only closes the handle it is called on.
/// [`snapshot`](Self::snapshot) makes an independent deep copy.
///
/// Reads take a shared lock and mutations an exclusive lock on the data; memory storage is meant
/// for tests and ephemeral stores, not for contended hot paths.
pub struct MemoryStorage {
    data: Arc<RwLock<Pages>>,
    closed: AtomicBool,
}

impl MemoryStorage {
    /// An empty storage that does not [`exist`](Self::exists) until first written.
    pub fn new() -> Self {
        Self::with_pages(Pages::default())
    }

    /// A storage holding a copy of `bytes` (it [`exists`](Self::exists), even if `bytes` is
    /// empty).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut pages = Pages {
            created: true,
            ..Pages::default()
        };
        pages.write(0, bytes);
        Self::with_pages(pages)
    }

    fn with_pages(pages: Pages) -> Self {
        Self {
            data: Arc::new(RwLock::new(pages)),
            closed: AtomicBool::new(false),
        }
    }

    /// A new, open handle onto the same data (even if this handle is closed).
    pub fn reopen(&self) -> Self {
        Self {
            data: Arc::clone(&self.data),
            closed: AtomicBool::new(false),
        }
    }

    /// An independent deep copy of the current data, as a new open storage.
    pub fn snapshot(&self) -> Self {
        Self::with_pages(self.pages().clone())
    }

    /// Whether the data exists: it was created by a non-empty write, a truncate to a non-zero
    /// length (or any truncate once created) or [`from_bytes`](Self::from_bytes), and not
    /// unlinked since. Mirrors whether [`FileStorage`](crate::FileStorage) would have created its
    /// file.
    pub fn exists(&self) -> bool {
        self.pages().created
    }

    /// Bytes of page memory currently allocated (a multiple of [`PAGE_SIZE`]).
    pub fn allocated_bytes(&self) -> u64 {
        len64(self.pages().pages.len()).saturating_mul(PAGE)
    }

    fn check_open(&self, op: Op) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed { op });
        }
        Ok(())
    }

    fn pages(&self) -> RwLockReadGuard<'_, Pages> {
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn pages_mut(&self) -> RwLockWriteGuard<'_, Pages> {
        self.data.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pages = self.pages();
        f.debug_struct("MemoryStorage")
            .field("len", &pages.len)
            .field("pages", &pages.pages.len())
            .field("created", &pages.created)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish()
    }
}

impl Storage for MemoryStorage {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.check_open(Op::Read)?;
        let pages = self.pages();
        check_read(offset, len64(buf.len()), pages.len)?;
        pages.read(offset, buf);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_open(Op::Write)?;
        if data.is_empty() {
            return Ok(());
        }
        check_extent(Op::Write, offset, len64(data.len()))?;
        self.pages_mut().write(offset, data);
        Ok(())
    }

    fn del(&self, offset: u64, len: u64) -> Result<()> {
        self.check_open(Op::Del)?;
        let mut pages = self.pages_mut();
        if len == 0 || offset >= pages.len {
            return Ok(());
        }
        let end = offset.saturating_add(len);
        if end >= pages.len {
            pages.set_len(offset);
        } else {
            pages.zero(offset, end);
        }
        Ok(())
    }

    fn truncate(&self, len: u64) -> Result<()> {
        self.check_open(Op::Truncate)?;
        check_extent(Op::Truncate, 0, len)?;
        let mut pages = self.pages_mut();
        if len == 0 && !pages.created {
            return Ok(());
        }
        pages.set_len(len);
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        self.check_open(Op::Len)?;
        Ok(self.pages().len)
    }

    fn sync(&self) -> Result<()> {
        self.check_open(Op::Sync)
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    fn unlink(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        *self.pages_mut() = Pages::default();
        Ok(())
    }
}

/// The shared data behind [`MemoryStorage`] handles.
///
/// Invariant: every byte at or beyond `len` inside an allocated page is zero, so growing never
/// exposes stale data.
#[derive(Clone, Default)]
struct Pages {
    pages: BTreeMap<u64, Box<[u8]>>,
    len: u64,
    created: bool,
}

/// Splits an absolute offset into (page index, offset inside the page).
fn locate(pos: u64) -> (u64, usize) {
    // `pos % PAGE` is below 64 Ki, so the conversion cannot fail.
    (pos / PAGE, usize::try_from(pos % PAGE).unwrap_or(0))
}

impl Pages {
    /// Copies `buf.len()` bytes at `offset` (already bounds-checked) into `buf`.
    fn read(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = offset;
        let mut done = 0;
        while done < buf.len() {
            let (index, start) = locate(pos);
            let n = (PAGE_SIZE - start).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            match self.pages.get(&index) {
                Some(page) => out.copy_from_slice(&page[start..start + n]),
                None => out.fill(0),
            }
            done += n;
            pos += len64(n);
        }
    }

    /// Writes `data` at `offset` (extent already checked), growing as needed.
    fn write(&mut self, offset: u64, data: &[u8]) {
        let mut pos = offset;
        let mut done = 0;
        while done < data.len() {
            let (index, start) = locate(pos);
            let n = (PAGE_SIZE - start).min(data.len() - done);
            let page = self
                .pages
                .entry(index)
                .or_insert_with(|| vec![0; PAGE_SIZE].into_boxed_slice());
            page[start..start + n].copy_from_slice(&data[done..done + n]);
            done += n;
            pos += len64(n);
        }
        self.len = self.len.max(pos);
        self.created = true;
    }

    /// Zeroes `[start, end)`, freeing pages that become entirely zero by being fully covered.
    fn zero(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let first = start / PAGE;
        let last = (end - 1) / PAGE;
        let indices: Vec<u64> = self.pages.range(first..=last).map(|(&i, _)| i).collect();
        for index in indices {
            let page_start = index * PAGE;
            let from = start.max(page_start) - page_start;
            let to = end.min(page_start + PAGE) - page_start;
            if from == 0 && to == PAGE {
                self.pages.remove(&index);
            } else if let Some(page) = self.pages.get_mut(&index) {
                // Both bounds are at most PAGE_SIZE, so the conversions cannot fail.
                let from = usize::try_from(from).unwrap_or(PAGE_SIZE);
                let to = usize::try_from(to).unwrap_or(PAGE_SIZE);
                page[from..to].fill(0);
            }
        }
    }

    /// Sets the length, keeping the zero-beyond-`len` invariant.
    fn set_len(&mut self, len: u64) {
        if len < self.len {
            // Zero up to the end of the page holding the old end, so nothing stale survives.
            let old_end = self.len.div_ceil(PAGE).saturating_mul(PAGE);
            self.zero(len, old_end);
        }
        self.len = len;
        self.created = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terabyte_offset_costs_one_page() {
        let m = MemoryStorage::new();
        let tb = 1u64 << 40;
        m.write(tb, b"hello").unwrap();
        assert_eq!(m.allocated_bytes(), PAGE);
        assert_eq!(m.len().unwrap(), tb + 5);
        let mut buf = [1u8; 8];
        m.read(tb - 3, &mut buf).unwrap();
        assert_eq!(&buf, b"\0\0\0hello");
        m.read(12345, &mut buf).unwrap();
        assert_eq!(buf, [0; 8]);
        m.truncate(3).unwrap();
        assert_eq!(m.allocated_bytes(), 0);
    }

    #[test]
    fn shrink_then_grow_shows_zeros() {
        let m = MemoryStorage::from_bytes(&[7; 100]);
        m.truncate(10).unwrap();
        m.truncate(100).unwrap();
        let v = m.read_to_vec(0, 100).unwrap();
        assert_eq!(&v[..10], &[7; 10]);
        assert_eq!(&v[10..], &[0; 90][..]);
    }

    #[test]
    fn del_frees_covered_pages_only() {
        let m = MemoryStorage::from_bytes(&vec![9; 3 * PAGE_SIZE + 1]);
        m.del(10, 2 * PAGE + 5).unwrap();
        assert_eq!(m.allocated_bytes(), 3 * PAGE, "partial pages stay");
        m.del(PAGE, 2 * PAGE).unwrap();
        assert_eq!(m.allocated_bytes(), 2 * PAGE);
        let v = m.read_to_vec(0, 3 * PAGE + 1).unwrap();
        assert_eq!(&v[..10], &[9; 10]);
        assert!(v[10..3 * PAGE_SIZE].iter().all(|&b| b == 0));
        assert_eq!(v[3 * PAGE_SIZE], 9);
    }

    #[test]
    fn handles_share_data_but_not_closed_state() {
        let a = MemoryStorage::new();
        assert!(!a.exists());
        a.write(0, b"x").unwrap();
        a.close().unwrap();
        assert!(matches!(a.len(), Err(Error::Closed { op: Op::Len })));
        let b = a.reopen();
        assert_eq!(b.read_to_vec(0, 1).unwrap(), b"x");
        let c = b.snapshot();
        b.unlink().unwrap();
        assert!(!a.exists());
        assert_eq!(c.read_to_vec(0, 1).unwrap(), b"x");
        assert_eq!(a.reopen().len().unwrap(), 0);
    }
}
