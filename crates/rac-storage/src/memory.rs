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
/// zeros. Pages left without data by [`del`](Storage::del) or a shrinking
/// [`truncate`](Storage::truncate) are freed. A page stores its bytes up to the last one
/// written: a new page is not zero-filled, and sequential writes cost one copy of the data.
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

    /// Copies each part straight into the pages, under one lock.
    fn write_vectored(&self, offset: u64, parts: &[&[u8]]) -> Result<()> {
        self.check_open(Op::Write)?;
        let total = parts
            .iter()
            .fold(0u64, |n, p| n.saturating_add(len64(p.len())));
        if total == 0 {
            return Ok(());
        }
        check_extent(Op::Write, offset, total)?;
        let mut pages = self.pages_mut();
        let mut at = offset;
        for part in parts.iter().filter(|p| !p.is_empty()) {
            pages.write(at, part);
            at += len64(part.len());
        }
        Ok(())
    }

    /// Copies from the pages into a vector of the exact size, with no zero-fill first.
    fn read_to_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        self.check_open(Op::Len)?;
        let pages = self.pages();
        let size = pages.len;
        check_read(offset, len, size)?;
        let n = usize::try_from(len).map_err(|_| Error::OutOfBounds { offset, len, size })?;
        let mut out = Vec::new();
        pages.read_into(offset, n, &mut out);
        Ok(out)
    }

    /// Copies from the pages onto the end of `out`, with no zero-fill first.
    fn read_append(&self, offset: u64, len: u64, out: &mut Vec<u8>) -> Result<()> {
        self.check_open(Op::Len)?;
        let pages = self.pages();
        let size = pages.len;
        check_read(offset, len, size)?;
        let n = usize::try_from(len).map_err(|_| Error::OutOfBounds { offset, len, size })?;
        pages.read_into(offset, n, out);
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
/// A page holds the bytes from its start up to the last one written (its vector's length,
/// at most [`PAGE_SIZE`]; the capacity is the whole page from the start, so it never
/// reallocates); the rest of the page reads as zeros without being stored. A new page is
/// thus never zero-filled, and writing sequentially only copies the data.
///
/// Invariant: no page holds bytes at or beyond `len` (a shrink cuts them off), so growing
/// never exposes stale data.
#[derive(Clone, Default)]
struct Pages {
    pages: BTreeMap<u64, Vec<u8>>,
    len: u64,
    created: bool,
}

/// Splits an absolute offset into (page index, offset inside the page).
fn locate(pos: u64) -> (u64, usize) {
    // `pos % PAGE` is below 64 Ki, so the conversion cannot fail.
    (pos / PAGE, usize::try_from(pos % PAGE).unwrap_or(0))
}

/// Copies `out.len()` bytes of `page` from `start` into `out`: what the page holds, then
/// zeros.
fn copy_out(page: &[u8], start: usize, out: &mut [u8]) {
    let held = page.get(start..).unwrap_or_default();
    let n = held.len().min(out.len());
    let (stored, zeros) = out.split_at_mut(n);
    stored.copy_from_slice(&held[..n]);
    zeros.fill(0);
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
                Some(page) => copy_out(page, start, out),
                None => out.fill(0),
            }
            done += n;
            pos += len64(n);
        }
    }

    /// Appends `len` bytes at `offset` (already bounds-checked) to `out`.
    fn read_into(&self, offset: u64, len: usize, out: &mut Vec<u8>) {
        out.reserve(len);
        let mut pos = offset;
        let mut left = len;
        while left > 0 {
            let (index, start) = locate(pos);
            let n = (PAGE_SIZE - start).min(left);
            let held = match self.pages.get(&index) {
                Some(page) => page.get(start..).unwrap_or_default(),
                None => &[],
            };
            let stored = held.len().min(n);
            out.extend_from_slice(&held[..stored]);
            out.resize(out.len() + (n - stored), 0);
            left -= n;
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
                .or_insert_with(|| Vec::with_capacity(PAGE_SIZE));
            if page.capacity() < PAGE_SIZE {
                // A page copied by `snapshot` holds only its bytes: give it the whole page
                // once, rather than letting it grow past one.
                page.reserve_exact(PAGE_SIZE - page.len());
            }
            let chunk = &data[done..done + n];
            if page.len() <= start {
                // Past what the page holds: the gap reads as zeros, so it is stored as zeros.
                page.resize(start, 0);
                page.extend_from_slice(chunk);
            } else {
                let overlap = (page.len() - start).min(n);
                let (over, beyond) = chunk.split_at(overlap);
                page[start..start + overlap].copy_from_slice(over);
                page.extend_from_slice(beyond);
            }
            done += n;
            pos += len64(n);
        }
        self.len = self.len.max(pos);
        self.created = true;
    }

    /// Zeroes `[start, end)`, freeing pages left without data (fully covered, or cut from
    /// their start).
    fn zero(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let first = start / PAGE;
        let last = (end - 1) / PAGE;
        let mut emptied = Vec::new();
        for (&index, page) in self.pages.range_mut(first..=last) {
            let page_start = index * PAGE;
            // Both bounds are at most PAGE_SIZE, so the conversions cannot fail.
            let from = usize::try_from(start.max(page_start) - page_start).unwrap_or(PAGE_SIZE);
            let to = usize::try_from(end.min(page_start + PAGE) - page_start).unwrap_or(PAGE_SIZE);
            if to >= page.len() {
                // Nothing held beyond the range: cutting is zeroing.
                page.truncate(from);
            } else if from < to {
                page[from..to].fill(0);
            }
            if page.is_empty() {
                emptied.push(index);
            }
        }
        for index in emptied {
            self.pages.remove(&index);
        }
    }

    /// Sets the length, keeping the nothing-beyond-`len` invariant.
    fn set_len(&mut self, len: u64) {
        if len < self.len {
            // Cut up to the end of the page holding the old end, so nothing stale survives.
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
    fn pages_hold_bytes_up_to_the_last_written() {
        let m = MemoryStorage::new();
        m.write(100, b"abc").unwrap();
        // Overwrites across the end of what the page holds, then past a gap.
        m.write(102, b"XYZ").unwrap();
        m.write(PAGE - 2, b"1234").unwrap();
        assert_eq!(m.allocated_bytes(), 2 * PAGE);
        let v = m.read_to_vec(98, 10).unwrap();
        assert_eq!(v, b"\0\0abXYZ\0\0\0");
        let mut buf = [7u8; 5];
        m.read(PAGE - 3, &mut buf).unwrap();
        assert_eq!(&buf, b"\x001234");
        m.write_vectored(PAGE + 5, &[b"ab", b"", b"cd"]).unwrap();
        assert_eq!(m.read_to_vec(PAGE, 9).unwrap(), b"34\0\0\0abcd");
        // Cutting a page from its start frees it; zeroing inside keeps the tail.
        m.del(PAGE, 3).unwrap();
        assert_eq!(m.read_to_vec(PAGE, 9).unwrap(), b"\0\0\0\0\0abcd");
        m.truncate(PAGE).unwrap();
        assert_eq!(m.allocated_bytes(), PAGE);
        m.truncate(PAGE + 9).unwrap();
        assert_eq!(m.read_to_vec(PAGE, 9).unwrap(), [0; 9]);
        // A snapshot's pages hold only their bytes, and grow to a whole page on a write.
        let copy = m.snapshot();
        copy.write(PAGE - 1, &[5; 3]).unwrap();
        assert_eq!(copy.read_to_vec(PAGE - 2, 4).unwrap(), [b'1', 5, 5, 5]);
        assert_eq!(m.read_to_vec(PAGE - 2, 4).unwrap(), [b'1', b'2', 0, 0]);
        assert_eq!(copy.allocated_bytes(), 2 * PAGE);
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
