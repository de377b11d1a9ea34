//! [`MemoryStorage`]: a sparse, page-based in-memory [`Storage`], the counterpart of
//! random-access-memory.

use std::collections::BTreeMap;
use std::fmt;

use memmap2::MmapMut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Op, Result};
use crate::storage::{Storage, check_extent, check_read, len64};

/// Size of one memory page in bytes (64 KiB). Only pages that hold written data are allocated.
pub const PAGE_SIZE: usize = 64 * 1024;

/// [`PAGE_SIZE`] as a `u64`.
const PAGE: u64 = 64 * 1024;

/// Pages in one chunk: a chunk is 2 MiB, the size of an x86-64 or AArch64 huge page.
const CHUNK_PAGES: u64 = 32;

/// Bytes in one chunk.
const CHUNK_SIZE: usize = PAGE_SIZE * 32;

/// A storage that grows at its end to this length (16 MiB) or beyond takes its new memory in
/// chunks. A chunk is resident whole once touched, so the last one of a storage holds up to
/// 2 MiB that no data fills: at most an eighth more memory, for storages this large only.
const CHUNK_FROM: u64 = 8 * PAGE * CHUNK_PAGES;

/// A sparse in-memory storage made of [`PAGE_SIZE`] pages.
///
/// A write at a 1 TB offset allocates one page; unwritten ranges inside the length read as
/// zeros. Pages left without data by [`del`](Storage::del) or a shrinking
/// [`truncate`](Storage::truncate) are freed. A page stores its bytes up to the last one
/// written: a new page is not zero-filled, and sequential writes cost one copy of the data.
///
/// Large storages that grow at their end (to 16 MiB and beyond, past a gap of at most one page)
/// take new memory in 2 MiB chunks of 32 pages, each its own anonymous memory mapping, which Linux
/// is asked to back with a transparent huge page (`madvise(MADV_HUGEPAGE)`): touching fresh
/// memory then costs one page fault per 2 MiB instead of one per 4 KiB, which is most of the
/// cost of filling a large memory store. Sparse writes keep using single pages, so a sparse
/// storage never pays 2 MiB for a small write. A chunk is freed with its last page.
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

    /// Bytes of page memory currently allocated (a multiple of [`PAGE_SIZE`]; a 2 MiB chunk
    /// counts whole).
    pub fn allocated_bytes(&self) -> u64 {
        let pages = self.pages();
        len64(pages.pages.len())
            .saturating_mul(PAGE)
            .saturating_add(len64(pages.chunks.len()).saturating_mul(len64(CHUNK_SIZE)))
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
            .field("chunks", &pages.chunks.len())
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
/// A page lives either in `pages` (its own vector) or in a [`Chunk`] of `chunks` (keyed by
/// page index / [`CHUNK_PAGES`]), never both: while a chunk exists, every page of its range
/// is a slot of it.
///
/// Invariant: no page holds bytes at or beyond `len` (a shrink cuts them off), so growing
/// never exposes stale data.
#[derive(Default)]
struct Pages {
    pages: BTreeMap<u64, Vec<u8>>,
    chunks: BTreeMap<u64, Chunk>,
    len: u64,
    created: bool,
}

/// 32 pages in one 2 MiB anonymous mapping. Slot `i` is bytes `i * PAGE_SIZE ..` of the
/// mapping and holds `held[i]` bytes, with the same meaning as a page vector's length.
struct Chunk {
    map: MmapMut,
    held: [u32; CHUNK_PAGES as usize],
}

impl Chunk {
    /// A new mapping, with Linux asked for a transparent huge page. `None` if the system
    /// refuses the mapping (the caller uses a page vector instead). Refused advice only
    /// costs speed, so it is ignored.
    fn new() -> Option<Self> {
        let map = MmapMut::map_anon(CHUNK_SIZE).ok()?;
        #[cfg(target_os = "linux")]
        let _ignored = map.advise(memmap2::Advice::HugePage);
        Some(Self {
            map,
            held: [0; CHUNK_PAGES as usize],
        })
    }

    /// The bytes slot `slot` holds.
    fn held(&self, slot: usize) -> &[u8] {
        let start = slot * PAGE_SIZE;
        &self.map[start..start + self.held[slot] as usize]
    }

    /// Slot `slot`, to write or cut.
    fn slot(&mut self, slot: usize) -> Slot<'_> {
        let base = slot * PAGE_SIZE;
        Slot {
            bytes: &mut self.map[base..base + PAGE_SIZE],
            held: &mut self.held[slot],
        }
    }

    fn is_empty(&self) -> bool {
        self.held.iter().all(|&n| n == 0)
    }
}

/// One page of a [`Chunk`]: its bytes, and how many of them it holds.
struct Slot<'a> {
    bytes: &'a mut [u8],
    held: &'a mut u32,
}

/// What a page holds, whether a page vector or a chunk slot: the bytes from the page's start
/// up to the last one written (the rest of the page reads as zeros).
trait Held {
    /// The bytes held.
    fn held_mut(&mut self) -> &mut [u8];
    /// Holds only the first `len` bytes (`len` at most what is held).
    fn cut(&mut self, len: usize);
    /// Holds `zeros` zero bytes more, then `bytes` (within the page).
    fn push(&mut self, zeros: usize, bytes: &[u8]);
}

impl Held for Vec<u8> {
    fn held_mut(&mut self) -> &mut [u8] {
        self
    }

    fn cut(&mut self, len: usize) {
        self.truncate(len);
    }

    fn push(&mut self, zeros: usize, bytes: &[u8]) {
        if self.capacity() < PAGE_SIZE {
            // A new page, or one copied by `snapshot` (holding only its bytes): give it the
            // whole page once, rather than letting it grow past one.
            self.reserve_exact(PAGE_SIZE - self.len());
        }
        self.resize(self.len() + zeros, 0);
        self.extend_from_slice(bytes);
    }
}

impl Held for Slot<'_> {
    fn held_mut(&mut self) -> &mut [u8] {
        &mut self.bytes[..*self.held as usize]
    }

    fn cut(&mut self, len: usize) {
        *self.held = slot_len(len);
    }

    fn push(&mut self, zeros: usize, bytes: &[u8]) {
        let start = *self.held as usize;
        let end = start + zeros + bytes.len();
        self.bytes[start..start + zeros].fill(0);
        self.bytes[start + zeros..end].copy_from_slice(bytes);
        *self.held = slot_len(end);
    }
}

/// Writes `data` at `start` in `page` (within the page), storing any gap after what it held
/// as zeros.
fn write_held(page: &mut impl Held, start: usize, data: &[u8]) {
    let held = page.held_mut().len();
    if held <= start {
        page.push(start - held, data);
    } else {
        let overlap = (held - start).min(data.len());
        let (over, beyond) = data.split_at(overlap);
        page.held_mut()[start..start + overlap].copy_from_slice(over);
        page.push(0, beyond);
    }
}

/// Zeroes `[from, to)` of `page`; when nothing is held beyond the range, cutting is zeroing.
fn zero_held(page: &mut impl Held, from: usize, to: usize) {
    let held = page.held_mut().len();
    if to >= held {
        page.cut(held.min(from));
    } else if from < to {
        page.held_mut()[from..to].fill(0);
    }
}

/// A slot length (at most [`PAGE_SIZE`]) as stored in [`Chunk::held`].
fn slot_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A deep copy; the pages of chunks become page vectors holding only their bytes, like the
/// copied page vectors.
impl Clone for Pages {
    fn clone(&self) -> Self {
        let mut pages = self.pages.clone();
        for (&key, chunk) in &self.chunks {
            for index in key * CHUNK_PAGES..(key + 1) * CHUNK_PAGES {
                let held = chunk.held(slot_of(index));
                if !held.is_empty() {
                    pages.insert(index, held.to_vec());
                }
            }
        }
        Self {
            pages,
            chunks: BTreeMap::new(),
            len: self.len,
            created: self.created,
        }
    }
}

/// Splits an absolute offset into (page index, offset inside the page).
fn locate(pos: u64) -> (u64, usize) {
    // `pos % PAGE` is below 64 Ki, so the conversion cannot fail.
    (pos / PAGE, usize::try_from(pos % PAGE).unwrap_or(0))
}

/// The slot of page `index` in its chunk.
fn slot_of(index: u64) -> usize {
    // Below CHUNK_PAGES, so the conversion cannot fail.
    usize::try_from(index % CHUNK_PAGES).unwrap_or(0)
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
    /// The bytes page `index` holds (none if it is not allocated).
    fn held(&self, index: u64) -> &[u8] {
        if let Some(chunk) = self.chunks.get(&(index / CHUNK_PAGES)) {
            return chunk.held(slot_of(index));
        }
        self.pages.get(&index).map_or(&[], Vec::as_slice)
    }

    /// Copies `buf.len()` bytes at `offset` (already bounds-checked) into `buf`.
    fn read(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = offset;
        let mut done = 0;
        while done < buf.len() {
            let (index, start) = locate(pos);
            let n = (PAGE_SIZE - start).min(buf.len() - done);
            copy_out(self.held(index), start, &mut buf[done..done + n]);
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
            let held = self.held(index).get(start..).unwrap_or_default();
            let stored = held.len().min(n);
            out.extend_from_slice(&held[..stored]);
            out.resize(out.len() + (n - stored), 0);
            left -= n;
            pos += len64(n);
        }
    }

    /// Writes `data` at `offset` (extent already checked), growing as needed.
    fn write(&mut self, offset: u64, data: &[u8]) {
        // Growing a large storage at its end, past a gap of at most a page: new pages come in
        // chunks. A write inside the length (filling a hole of a sparse storage) or past a
        // larger gap takes single pages, so sparse data never pays 2 MiB for a few bytes.
        let end = offset + len64(data.len());
        let dense = end >= CHUNK_FROM && end > self.len && offset <= self.len.saturating_add(PAGE);
        let mut pos = offset;
        let mut done = 0;
        while done < data.len() {
            let (index, start) = locate(pos);
            let n = (PAGE_SIZE - start).min(data.len() - done);
            let chunk = &data[done..done + n];
            if let Some(c) = self.chunk_for(index, dense) {
                write_held(&mut c.slot(slot_of(index)), start, chunk);
            } else {
                write_held(self.pages.entry(index).or_default(), start, chunk);
            }
            done += n;
            pos += len64(n);
        }
        self.len = self.len.max(pos);
        self.created = true;
    }

    /// The chunk page `index` lives in: an existing one, or (when `dense`, and no page of its
    /// range is a page vector) a new one.
    fn chunk_for(&mut self, index: u64, dense: bool) -> Option<&mut Chunk> {
        let key = index / CHUNK_PAGES;
        if !self.chunks.contains_key(&key) {
            let first = key * CHUNK_PAGES;
            if !dense
                || self
                    .pages
                    .range(first..first + CHUNK_PAGES)
                    .next()
                    .is_some()
            {
                return None;
            }
            self.chunks.insert(key, Chunk::new()?);
        }
        self.chunks.get_mut(&key)
    }

    /// Zeroes `[start, end)`, freeing pages left without data (fully covered, or cut from
    /// their start) and chunks left without pages.
    fn zero(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let first = start / PAGE;
        let last = (end - 1) / PAGE;
        // The part of `[start, end)` inside page `index`, as offsets in the page (both at most
        // PAGE_SIZE, so the conversions cannot fail).
        let span = |index: u64| {
            let page_start = index * PAGE;
            let from = usize::try_from(start.max(page_start) - page_start).unwrap_or(PAGE_SIZE);
            let to = usize::try_from(end.min(page_start + PAGE) - page_start).unwrap_or(PAGE_SIZE);
            (from, to)
        };
        let mut emptied = Vec::new();
        for (&index, page) in self.pages.range_mut(first..=last) {
            let (from, to) = span(index);
            zero_held(page, from, to);
            if page.is_empty() {
                emptied.push(index);
            }
        }
        for index in emptied.drain(..) {
            self.pages.remove(&index);
        }
        for (&key, chunk) in self
            .chunks
            .range_mut(first / CHUNK_PAGES..=last / CHUNK_PAGES)
        {
            let pages = key * CHUNK_PAGES..(key + 1) * CHUNK_PAGES;
            for index in pages.filter(|i| (first..=last).contains(i)) {
                let (from, to) = span(index);
                zero_held(&mut chunk.slot(slot_of(index)), from, to);
            }
            if chunk.is_empty() {
                emptied.push(key);
            }
        }
        for key in emptied {
            self.chunks.remove(&key);
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
    fn growth_at_the_end_of_a_large_storage_takes_chunks() {
        const CHUNK: u64 = CHUNK_SIZE as u64;
        let m = MemoryStorage::new();
        // Sequential growth: pages up to 16 MiB, then whole chunks.
        let block: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let mut at = 0;
        while at < CHUNK_FROM + CHUNK + 5 {
            m.write(at, &block).unwrap();
            at += len64(block.len());
        }
        let chunks = m.pages().chunks.len();
        assert_eq!(
            chunks, 2,
            "16 MiB of pages, then the chunks of [16 MiB, 20 MiB)"
        );
        // Filling a hole takes a page.
        m.truncate(at + 3 * PAGE).unwrap();
        m.write(at + PAGE, b"hole").unwrap();
        assert_eq!(m.pages().chunks.len(), chunks);
        let expected = |offset: u64, len: usize| -> Vec<u8> {
            (0..len64(len))
                .map(|i| block[usize::try_from((offset + i) % 100_000).unwrap()])
                .collect()
        };
        // Reads across the page/chunk and chunk/chunk boundaries.
        for offset in [
            CHUNK_FROM - 10,
            CHUNK_FROM + CHUNK - 3,
            CHUNK_FROM + PAGE - 1,
        ] {
            assert_eq!(m.read_to_vec(offset, 20).unwrap(), expected(offset, 20));
            let mut buf = [0; 20];
            m.read(offset, &mut buf).unwrap();
            assert_eq!(buf.to_vec(), expected(offset, 20));
        }
        // A write past a gap of more than a page takes a page too.
        let at = m.len().unwrap();
        m.write(at + PAGE + 1, b"far").unwrap();
        assert_eq!(m.pages().chunks.len(), chunks);
        // A snapshot is a deep copy made of pages.
        let copy = m.snapshot();
        assert_eq!(copy.pages().chunks.len(), 0);
        m.write(CHUNK_FROM, b"changed").unwrap();
        assert_eq!(
            copy.read_to_vec(CHUNK_FROM, 7).unwrap(),
            expected(CHUNK_FROM, 7)
        );
        assert_eq!(copy.len().unwrap(), m.len().unwrap());
        // Zeroing inside a chunk keeps it; cutting its pages frees it.
        m.del(CHUNK_FROM + 10, PAGE).unwrap();
        let kept = expected(CHUNK_FROM + 9, 1)[0];
        assert_eq!(m.read_to_vec(CHUNK_FROM + 9, 2).unwrap(), [kept, 0]);
        m.truncate(CHUNK_FROM + 1).unwrap();
        assert_eq!(m.pages().chunks.len(), 1);
        assert_eq!(m.read_to_vec(CHUNK_FROM, 1).unwrap(), b"c");
        m.truncate(CHUNK_FROM + 100).unwrap();
        assert_eq!(m.read_to_vec(CHUNK_FROM, 100).unwrap()[1..], [0; 99]);
        m.truncate(CHUNK_FROM).unwrap();
        assert_eq!(m.pages().chunks.len(), 0);
        assert_eq!(m.allocated_bytes(), CHUNK_FROM);
    }

    #[test]
    fn sparse_writes_never_take_chunks() {
        let m = MemoryStorage::new();
        for i in 0..200u64 {
            m.write(i * 10 * PAGE, &[1; 1024]).unwrap();
        }
        assert_eq!(m.pages().chunks.len(), 0);
        assert_eq!(m.allocated_bytes(), 200 * PAGE);
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
