//! [`FilePool`]: a bounded, least-recently-used set of open file descriptors shared by many
//! [`FileStorage`](crate::FileStorage) handles.
//!
//! A store with 10,000 cores has 40,000 files; the process cannot keep them all open. The pool
//! keeps at most [`max_open`](FilePool::max_open) descriptors and closes the least recently used
//! one when a new one is needed; a storage whose descriptor was closed reopens it transparently
//! on its next operation. Files holding an exclusive lock are *pinned*: closing them would drop
//! the lock, so they are never evicted.
//!
//! The pool's mutex is held only to look up, insert or evict an `Arc<File>`; positional I/O
//! happens outside it, so reads and writes on different files (or the same file) run in
//! parallel.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// The default descriptor budget, as JavaScript random-access-file's `poolSize`.
pub const DEFAULT_MAX_OPEN: usize = 512;

/// A bounded LRU pool of open files: at most [`max_open`](Self::max_open) unpinned
/// descriptors, the least recently used closed first and reopened on demand by its
/// [`FileStorage`](crate::FileStorage); locked files are pinned and never evicted.
///
/// Share one pool between providers with `Arc<FilePool>` to give them a common budget.
#[derive(Debug)]
pub struct FilePool {
    max_open: usize,
    state: Mutex<PoolState>,
    /// Number of [`PooledFile`]s alive (in the pool or held by an in-flight operation).
    open: Arc<AtomicUsize>,
    next_id: AtomicU64,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Monotonic use counter; the LRU order.
    tick: u64,
    slots: HashMap<u64, Slot>,
    /// `tick -> handle id` for unpinned slots; the first entry is the least recently used.
    lru: BTreeMap<u64, u64>,
}

#[derive(Debug)]
struct Slot {
    file: Arc<PooledFile>,
    /// Last-use tick, or `None` for a pinned (locked) file that is never evicted.
    tick: Option<u64>,
}

impl FilePool {
    /// A pool that keeps at most `max_open` unpinned descriptors open (at least 1).
    pub fn new(max_open: usize) -> Self {
        Self {
            max_open: max_open.max(1),
            state: Mutex::default(),
            open: Arc::default(),
            next_id: AtomicU64::new(0),
        }
    }

    /// The descriptor budget.
    pub fn max_open(&self) -> usize {
        self.max_open
    }

    /// Descriptors currently open through this pool.
    ///
    /// This is at most `max(max_open, pinned files)`, plus one per operation that is in flight
    /// on a descriptor that was evicted meanwhile (it closes when that operation ends).
    pub fn open_files(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// A fresh id for a storage handle.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The open file of handle `id`, marking it most recently used.
    pub(crate) fn get(&self, id: u64) -> Option<Arc<PooledFile>> {
        let mut guard = self.lock();
        let state = &mut *guard;
        let slot = state.slots.get_mut(&id)?;
        if let Some(old) = slot.tick {
            state.lru.remove(&old);
            state.tick += 1;
            state.lru.insert(state.tick, id);
            slot.tick = Some(state.tick);
        }
        Some(Arc::clone(&slot.file))
    }

    /// Adds `file` as handle `id`'s descriptor (or returns the one another thread added first),
    /// evicting least recently used descriptors beyond the budget.
    pub(crate) fn insert(&self, id: u64, file: File, pinned: bool) -> Arc<PooledFile> {
        let fresh = Arc::new(PooledFile::new(file, &self.open));
        let mut evicted = Vec::new();
        let mut guard = self.lock();
        let state = &mut *guard;
        let file = if let Some(slot) = state.slots.get(&id) {
            Arc::clone(&slot.file)
        } else {
            let tick = if pinned {
                None
            } else {
                state.tick += 1;
                state.lru.insert(state.tick, id);
                Some(state.tick)
            };
            let file = Arc::clone(&fresh);
            state.slots.insert(id, Slot { file: fresh, tick });
            while state.slots.len() > self.max_open {
                let Some((_, victim)) = state.lru.pop_first() else {
                    break; // Only pinned files remain.
                };
                evicted.extend(state.slots.remove(&victim));
            }
            file
        };
        drop(guard);
        // `evicted` (and an unused `fresh`) close here, outside the lock.
        file
    }

    /// Forgets handle `id`'s descriptor; it closes once no operation holds it.
    pub(crate) fn remove(&self, id: u64) {
        let mut guard = self.lock();
        let slot = guard.slots.remove(&id);
        if let Some(tick) = slot.as_ref().and_then(|s| s.tick) {
            guard.lru.remove(&tick);
        }
        drop(guard);
        drop(slot);
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        // The state is updated without intermediate invariant breaks, so a panic elsewhere
        // cannot leave it inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for FilePool {
    /// A pool of [`DEFAULT_MAX_OPEN`] descriptors.
    fn default() -> Self {
        Self::new(DEFAULT_MAX_OPEN)
    }
}

/// An open file counted by its pool.
#[derive(Debug)]
pub(crate) struct PooledFile {
    file: File,
    open: Arc<AtomicUsize>,
}

impl PooledFile {
    fn new(file: File, open: &Arc<AtomicUsize>) -> Self {
        open.fetch_add(1, Ordering::AcqRel);
        Self {
            file,
            open: Arc::clone(open),
        }
    }
}

impl Deref for PooledFile {
    type Target = File;

    fn deref(&self) -> &File {
        &self.file
    }
}

impl Drop for PooledFile {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> File {
        tempfile::tempfile().unwrap()
    }

    #[test]
    fn evicts_least_recently_used_but_not_pinned() {
        let pool = FilePool::new(2);
        pool.insert(0, temp_file(), true);
        pool.insert(1, temp_file(), false);
        pool.insert(2, temp_file(), false);
        assert_eq!(pool.open_files(), 2);
        assert!(pool.get(0).is_some(), "pinned survives");
        assert!(pool.get(1).is_none(), "LRU evicted");
        assert!(pool.get(2).is_some());
        pool.insert(3, temp_file(), false);
        assert!(pool.get(2).is_none());
        assert!(pool.get(0).is_some());
        pool.remove(0);
        pool.remove(3);
        assert_eq!(pool.open_files(), 0);
    }

    #[test]
    fn in_flight_file_outlives_eviction() {
        let pool = FilePool::new(1);
        let held = pool.insert(0, temp_file(), false);
        pool.insert(1, temp_file(), false);
        assert!(pool.get(0).is_none());
        assert_eq!(pool.open_files(), 2);
        drop(held);
        assert_eq!(pool.open_files(), 1);
    }

    #[test]
    fn second_insert_returns_first() {
        let pool = FilePool::new(4);
        let a = pool.insert(7, temp_file(), false);
        let b = pool.insert(7, temp_file(), false);
        assert!(Arc::ptr_eq(&a, &b));
        drop((a, b));
        assert_eq!(pool.open_files(), 1);
    }
}
