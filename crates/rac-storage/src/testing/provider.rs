//! [`FaultyProvider`]: wraps any [`Provider`] so every storage it opens is a [`FaultyStorage`]
//! sharing one [`Faults`], and builds whole-store crash images.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::storage::Tracker;
use super::{Faults, FaultyStorage, Keep};
use crate::error::Result;
use crate::name::validate_name;
use crate::provider::{MemoryProvider, OpenOptions, Provider};
use crate::storage::Storage;

/// A provider whose storages inject the faults of one shared [`Faults`] (so "fail the 7th
/// write" counts writes across all files) and whose [`crash_image`](Self::crash_image) is a
/// whole store after a simulated power cut.
///
/// Handles opened for the same name share durable-state tracking; the durable state of a name
/// is the inner storage's content when this provider first opened it.
#[derive(Debug)]
pub struct FaultyProvider<P> {
    inner: P,
    faults: Faults,
    trackers: Mutex<BTreeMap<String, Arc<Tracker>>>,
}

impl<P: Provider> FaultyProvider<P> {
    /// Wraps `inner`, injecting `faults`.
    pub fn new(inner: P, faults: Faults) -> Self {
        Self {
            inner,
            faults,
            trackers: Mutex::default(),
        }
    }

    /// The shared faults.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// Number of unsynced mutations across all storages.
    pub fn pending(&self) -> usize {
        self.trackers()
            .values()
            .map(|t| t.pending_seqs().len())
            .sum()
    }

    /// The store after a crash now: for every name opened through this provider (and existing
    /// in the image), its durable state plus the unsynced mutations `keep` selects. Indices in
    /// `keep` count unsynced mutations across all storages in the order they happened, so
    /// [`Keep::Prefix`] models a disk that persisted writes in order.
    ///
    /// # Errors
    ///
    /// As [`FaultyStorage::crash_image`].
    pub fn crash_image(&self, keep: &Keep) -> Result<MemoryProvider> {
        let trackers = self.trackers();
        let mut seqs: Vec<u64> = trackers.values().flat_map(|t| t.pending_seqs()).collect();
        seqs.sort_unstable();
        let image = MemoryProvider::new();
        for (name, tracker) in trackers.iter() {
            let storage = tracker.image(|_, seq| {
                seqs.binary_search(&seq)
                    .is_ok_and(|global| keep.keeps(global))
            })?;
            if storage.exists() {
                image.insert(name, storage)?;
            }
        }
        Ok(image)
    }

    fn trackers(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Tracker>>> {
        self.trackers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<P: Provider> Provider for FaultyProvider<P> {
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Arc<dyn Storage>> {
        validate_name(name)?;
        let inner = self.inner.open(name, options)?;
        let mut trackers = self.trackers();
        let tracker = match trackers.get(name) {
            Some(tracker) => Arc::clone(tracker),
            None => {
                let tracker = Arc::new(Tracker::snapshot(&*inner)?);
                trackers.insert(name.to_owned(), Arc::clone(&tracker));
                tracker
            }
        };
        Ok(Arc::new(FaultyStorage::with_tracker(
            inner,
            self.faults.clone(),
            tracker,
        )))
    }

    fn exists(&self, name: &str) -> Result<bool> {
        self.inner.exists(name)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_order_spans_files() {
        let p = FaultyProvider::new(MemoryProvider::new(), Faults::new());
        let a = p.open("a", &OpenOptions::new()).unwrap();
        let b = p.open("b", &OpenOptions::new()).unwrap();
        a.write(0, b"1").unwrap(); // 0
        b.write(0, b"2").unwrap(); // 1
        a.write(1, b"3").unwrap(); // 2
        assert_eq!(p.pending(), 3);
        let image = p.crash_image(&Keep::Prefix(2)).unwrap();
        let o = OpenOptions::new();
        assert_eq!(
            image.open("a", &o).unwrap().read_to_vec(0, 1).unwrap(),
            b"1"
        );
        assert_eq!(image.open("b", &o).unwrap().len().unwrap(), 1);
        assert_eq!(image.open("a", &o).unwrap().len().unwrap(), 1);
        b.sync().unwrap();
        assert_eq!(p.pending(), 2);
        let image = p.crash_image(&Keep::Subset([1].into())).unwrap();
        assert_eq!(
            image.open("a", &o).unwrap().read_to_vec(0, 2).unwrap(),
            b"\x003"
        );
        assert!(image.exists("b").unwrap());
    }
}
