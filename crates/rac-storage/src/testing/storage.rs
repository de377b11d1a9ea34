//! [`FaultyStorage`]: a [`Storage`] wrapper that injects [`Faults`] and tracks durable versus
//! unsynced state for [crash images](FaultyStorage::crash_image).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Faults, WriteDecision};
use crate::error::{Error, Op, Result};
use crate::memory::MemoryStorage;
use crate::storage::{Storage, len64};

/// Which unsynced mutations a crash image keeps, by their index in the list of mutations made
/// since the last sync (0 = oldest). For a [`FaultyProvider`](super::FaultyProvider) the list
/// spans all its storages, in the global order the mutations happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Keep {
    /// None: only the state as of each storage's last successful sync.
    Durable,
    /// All of them: as if the crash happened right now with everything reaching the disk.
    All,
    /// The `n` oldest (the disk wrote in order, then lost power).
    Prefix(usize),
    /// Exactly these indices (the disk reordered writes).
    Subset(BTreeSet<usize>),
}

impl Keep {
    /// Whether the mutation with this index is kept.
    pub fn keeps(&self, index: usize) -> bool {
        match self {
            Self::Durable => false,
            Self::All => true,
            Self::Prefix(n) => index < *n,
            Self::Subset(set) => set.contains(&index),
        }
    }
}

/// A storage that injects the faults armed in its [`Faults`] and records, for crash images,
/// what the last successful [`sync`](Storage::sync) made durable.
///
/// The wrapped storage's content when wrapped is taken as durable. Every successful write (or
/// torn prefix), del and truncate is applied to the inner storage and appended to the unsynced
/// list; a successful sync folds that list into the durable state. [`unlink`](Storage::unlink)
/// is treated as immediately durable. Reads and `len` pass through unchanged.
///
/// ```
/// use std::sync::Arc;
/// use rac_storage::testing::{FaultyStorage, Faults, Keep};
/// use rac_storage::{MemoryStorage, Storage};
///
/// let faults = Faults::new();
/// let s = FaultyStorage::in_memory(faults.clone());
/// faults.tear_write_after(0, 2);
/// assert!(s.write(0, b"abcd").unwrap_err().is_injected());
/// assert_eq!(s.read_to_vec(0, 2)?, b"ab"); // the torn prefix landed
/// assert_eq!(s.pending(), 1);
/// assert_eq!(s.crash_image(&Keep::Durable)?.len()?, 0);
/// # Ok::<(), rac_storage::Error>(())
/// ```
#[derive(Debug)]
pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    faults: Faults,
    tracker: Arc<Tracker>,
}

impl FaultyStorage {
    /// Wraps `inner`, copying its current content as the durable state.
    ///
    /// # Errors
    ///
    /// Errors from reading `inner`.
    pub fn new(inner: Arc<dyn Storage>, faults: Faults) -> Result<Self> {
        let tracker = Arc::new(Tracker::snapshot(&*inner)?);
        Ok(Self::with_tracker(inner, faults, tracker))
    }

    /// Wraps a fresh, empty [`MemoryStorage`].
    pub fn in_memory(faults: Faults) -> Self {
        let tracker = Arc::new(Tracker::new(MemoryStorage::new()));
        Self::with_tracker(Arc::new(MemoryStorage::new()), faults, tracker)
    }

    pub(super) fn with_tracker(
        inner: Arc<dyn Storage>,
        faults: Faults,
        tracker: Arc<Tracker>,
    ) -> Self {
        Self {
            inner,
            faults,
            tracker,
        }
    }

    /// The faults this storage consults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The wrapped storage.
    pub fn inner(&self) -> &Arc<dyn Storage> {
        &self.inner
    }

    /// Number of mutations since the last successful sync.
    pub fn pending(&self) -> usize {
        self.tracker.state().pending.len()
    }

    /// A copy of the durable state: what survives a crash for sure.
    pub fn durable(&self) -> MemoryStorage {
        self.tracker.state().durable.snapshot()
    }

    /// What the storage could hold after a crash now: the durable state plus the unsynced
    /// mutations `keep` selects, applied in their original order.
    ///
    /// # Errors
    ///
    /// Only if replaying a mutation fails, which would mean the inner storage accepted
    /// something [`MemoryStorage`] refuses.
    pub fn crash_image(&self, keep: &Keep) -> Result<MemoryStorage> {
        self.tracker.image(|index, _| keep.keeps(index))
    }
}

impl Storage for FaultyStorage {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read(offset, buf)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        let mut state = self.tracker.state();
        let data = match self.faults.on_write() {
            WriteDecision::Proceed => data,
            WriteDecision::Fail => return Err(Error::Injected { op: Op::Write }),
            WriteDecision::Tear(keep) => {
                let prefix = &data[..keep.min(data.len())];
                self.inner.write(offset, prefix)?;
                state.record(&self.faults, Mutation::Write(offset, prefix.to_vec()));
                return Err(Error::Injected { op: Op::Write });
            }
        };
        self.inner.write(offset, data)?;
        state.record(&self.faults, Mutation::Write(offset, data.to_vec()));
        Ok(())
    }

    fn del(&self, offset: u64, len: u64) -> Result<()> {
        let mut state = self.tracker.state();
        self.faults.on_mutation(Op::Del)?;
        self.inner.del(offset, len)?;
        state.record(&self.faults, Mutation::Del(offset, len));
        Ok(())
    }

    fn truncate(&self, len: u64) -> Result<()> {
        let mut state = self.tracker.state();
        self.faults.on_mutation(Op::Truncate)?;
        self.inner.truncate(len)?;
        state.record(&self.faults, Mutation::Truncate(len));
        Ok(())
    }

    fn len(&self) -> Result<u64> {
        self.inner.len()
    }

    fn sync(&self) -> Result<()> {
        let mut state = self.tracker.state();
        self.faults.on_sync()?;
        self.inner.sync()?;
        let TrackState { durable, pending } = &mut *state;
        for p in pending.drain(..) {
            p.mutation.apply(durable)?;
        }
        Ok(())
    }

    fn close(&self) -> Result<()> {
        self.inner.close()
    }

    fn unlink(&self) -> Result<()> {
        let mut state = self.tracker.state();
        self.inner.unlink()?;
        *state = TrackState {
            durable: MemoryStorage::new(),
            pending: Vec::new(),
        };
        Ok(())
    }
}

/// Durable state and unsynced mutations of one storage name, shared by its handles.
#[derive(Debug)]
pub(super) struct Tracker {
    state: Mutex<TrackState>,
}

#[derive(Debug)]
struct TrackState {
    durable: MemoryStorage,
    pending: Vec<Pending>,
}

#[derive(Debug)]
struct Pending {
    seq: u64,
    mutation: Mutation,
}

#[derive(Debug)]
enum Mutation {
    Write(u64, Vec<u8>),
    Del(u64, u64),
    Truncate(u64),
}

impl Mutation {
    fn apply(&self, to: &MemoryStorage) -> Result<()> {
        match self {
            Self::Write(offset, data) => to.write(*offset, data),
            Self::Del(offset, len) => to.del(*offset, *len),
            Self::Truncate(len) => to.truncate(*len),
        }
    }
}

impl TrackState {
    fn record(&mut self, faults: &Faults, mutation: Mutation) {
        if matches!(&mutation, Mutation::Write(_, data) if data.is_empty()) {
            return;
        }
        let seq = faults.next_seq();
        self.pending.push(Pending { seq, mutation });
    }
}

impl Tracker {
    fn new(durable: MemoryStorage) -> Self {
        Self {
            state: Mutex::new(TrackState {
                durable,
                pending: Vec::new(),
            }),
        }
    }

    /// A tracker whose durable state is a (sparse) copy of `inner`'s content.
    pub(super) fn snapshot(inner: &dyn Storage) -> Result<Self> {
        const CHUNK: u64 = 64 * 1024;
        let durable = MemoryStorage::new();
        let len = inner.len()?;
        let mut offset = 0;
        while offset < len {
            let chunk = inner.read_to_vec(offset, CHUNK.min(len - offset))?;
            if chunk.iter().any(|&b| b != 0) {
                durable.write(offset, &chunk)?;
            }
            offset += len64(chunk.len());
        }
        if len > 0 {
            durable.truncate(len)?;
        }
        Ok(Self::new(durable))
    }

    /// Global sequence numbers of the unsynced mutations.
    pub(super) fn pending_seqs(&self) -> Vec<u64> {
        self.state().pending.iter().map(|p| p.seq).collect()
    }

    /// The durable state plus the pending mutations `keep(index, seq)` selects.
    pub(super) fn image(&self, keep: impl Fn(usize, u64) -> bool) -> Result<MemoryStorage> {
        let state = self.state();
        let image = state.durable.snapshot();
        for (index, p) in state.pending.iter().enumerate() {
            if keep(index, p.seq) {
                p.mutation.apply(&image)?;
            }
        }
        Ok(image)
    }

    fn state(&self) -> MutexGuard<'_, TrackState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_folds_pending_into_durable() {
        let s = FaultyStorage::in_memory(Faults::new());
        s.write(0, b"abc").unwrap();
        s.truncate(10).unwrap();
        assert_eq!(s.pending(), 2);
        s.sync().unwrap();
        assert_eq!(s.pending(), 0);
        assert_eq!(s.durable().len().unwrap(), 10);
        s.del(1, 100).unwrap();
        assert_eq!(s.crash_image(&Keep::Durable).unwrap().len().unwrap(), 10);
        assert_eq!(s.crash_image(&Keep::All).unwrap().len().unwrap(), 1);
    }

    #[test]
    fn wrapping_existing_content_is_durable() {
        let inner = Arc::new(MemoryStorage::from_bytes(b"xyz"));
        inner.write(200_000, b"q").unwrap();
        let s = FaultyStorage::new(inner, Faults::new()).unwrap();
        let image = s.crash_image(&Keep::Durable).unwrap();
        assert_eq!(image.read_to_vec(0, 3).unwrap(), b"xyz");
        assert_eq!(image.len().unwrap(), 200_001);
        assert_eq!(image.read_to_vec(200_000, 1).unwrap(), b"q");
    }
}
