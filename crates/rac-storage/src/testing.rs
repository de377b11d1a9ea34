//! Fault injection and crash images for crash tests (feature `testing`).
//!
//! - [`Faults`] is a shared switchboard: fail the *n*th write or sync from now, tear a write
//!   (write a prefix, then fail), optionally keep failing once tripped ("the disk died"). One
//!   `Faults` is shared by every storage of a [`FaultyProvider`], so countdowns span files.
//! - [`FaultyStorage`] wraps any [`Storage`](crate::Storage), consults the `Faults` before each
//!   write and sync, and records what is durable: the state as of the last successful sync, plus
//!   the list of unsynced mutations since.
//! - [`FaultyStorage::crash_image`] and [`FaultyProvider::crash_image`] build what a disk could
//!   hold after a power cut: the durable state plus a chosen subset ([`Keep`]) of the unsynced
//!   mutations, as fresh memory storages to reopen the layer above on (redb's `CrashBackend`).
//!
//! ```
//! use rac_storage::testing::{FaultyProvider, Faults, Keep};
//! use rac_storage::{MemoryProvider, OpenOptions, Provider, Storage};
//!
//! let faults = Faults::new();
//! let store = FaultyProvider::new(MemoryProvider::new(), faults.clone());
//! let oplog = store.open("oplog", &OpenOptions::new())?;
//! oplog.write(0, b"header")?;
//! oplog.sync()?;
//! oplog.write(6, b"entry-1")?;
//! faults.fail_write_after(0); // the next write fails
//! assert!(oplog.write(13, b"entry-2").unwrap_err().is_injected());
//!
//! // After a crash, the disk may or may not hold the unsynced entry-1.
//! let lost = store.crash_image(&Keep::Durable)?;
//! assert_eq!(lost.open("oplog", &OpenOptions::new())?.len()?, 6);
//! let kept = store.crash_image(&Keep::All)?;
//! assert_eq!(kept.open("oplog", &OpenOptions::new())?.read_to_vec(0, 13)?, b"headerentry-1");
//! # Ok::<(), rac_storage::Error>(())
//! ```

mod provider;
mod storage;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use provider::FaultyProvider;
pub use storage::{FaultyStorage, Keep};

use crate::error::{Error, Op, Result};
use crate::provider::{OpenOptions, Provider};

/// Every file of `provider` whose name starts with `prefix`, with its bytes, in the order
/// [`Provider::list`] gives: what tests compare to check that two ways of writing a store
/// leave the same bytes.
///
/// # Errors
///
/// [`Error::Unsupported`] for a provider that cannot list, or any read error.
pub fn snapshot_files(provider: &dyn Provider, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
    provider
        .list(prefix)?
        .into_iter()
        .map(|name| {
            let file = provider.open(&name, &OpenOptions::new())?;
            let bytes = file.read_to_vec(0, file.len()?)?;
            Ok((name, bytes))
        })
        .collect()
}

/// A shared set of armed faults and counters. Cloning shares it.
///
/// Countdowns are "after *n*": `fail_write_after(0)` fails the very next write,
/// `fail_write_after(2)` lets two writes through and fails the third. Only
/// [`Storage::write`](crate::Storage::write) calls count as writes; deletes and truncates are
/// never failed by a countdown, only by [`set_sticky`](Self::set_sticky).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    state: Arc<Mutex<FaultState>>,
}

#[derive(Debug, Default)]
struct FaultState {
    write: Option<(u64, WriteFault)>,
    sync: Option<u64>,
    sticky: bool,
    tripped: bool,
    injected: u64,
    writes: u64,
    syncs: u64,
    seq: u64,
}

#[derive(Debug, Clone, Copy)]
enum WriteFault {
    Fail,
    Tear(usize),
}

/// What [`FaultyStorage::write`](crate::Storage::write) should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteDecision {
    Proceed,
    Fail,
    /// Write only this many leading bytes, then fail.
    Tear(usize),
}

impl Faults {
    /// No faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets `n` writes succeed, then fails the next one without writing anything.
    pub fn fail_write_after(&self, n: u64) {
        self.state().write = Some((n, WriteFault::Fail));
    }

    /// Lets `n` writes succeed, then makes the next one a torn write: only its first `keep`
    /// bytes are written (all of them if it is shorter), then it fails.
    pub fn tear_write_after(&self, n: u64, keep: usize) {
        self.state().write = Some((n, WriteFault::Tear(keep)));
    }

    /// Lets `n` syncs succeed, then fails the next one (nothing becomes durable).
    pub fn fail_sync_after(&self, n: u64) {
        self.state().sync = Some(n);
    }

    /// When `sticky`, once any fault has been injected every later write, del, truncate and
    /// sync fails too, as if the device had gone away. Reads still work.
    pub fn set_sticky(&self, sticky: bool) {
        self.state().sticky = sticky;
    }

    /// Clears armed countdowns and the tripped state; counters are kept.
    pub fn disarm(&self) {
        let mut state = self.state();
        state.write = None;
        state.sync = None;
        state.tripped = false;
    }

    /// Whether a fault has been injected since creation or the last [`disarm`](Self::disarm).
    pub fn tripped(&self) -> bool {
        self.state().tripped
    }

    /// Number of faults injected so far.
    pub fn injected(&self) -> u64 {
        self.state().injected
    }

    /// Number of write calls seen so far (including failed ones).
    pub fn writes(&self) -> u64 {
        self.state().writes
    }

    /// Number of sync calls seen so far (including failed ones).
    pub fn syncs(&self) -> u64 {
        self.state().syncs
    }

    fn on_write(&self) -> WriteDecision {
        let mut state = self.state();
        state.writes += 1;
        if state.sticky && state.tripped {
            state.injected += 1;
            return WriteDecision::Fail;
        }
        match state.write {
            Some((0, fault)) => {
                state.write = None;
                state.tripped = true;
                state.injected += 1;
                match fault {
                    WriteFault::Fail => WriteDecision::Fail,
                    WriteFault::Tear(keep) => WriteDecision::Tear(keep),
                }
            }
            Some((n, fault)) => {
                state.write = Some((n - 1, fault));
                WriteDecision::Proceed
            }
            None => WriteDecision::Proceed,
        }
    }

    fn on_sync(&self) -> Result<()> {
        let mut state = self.state();
        state.syncs += 1;
        let fail = match state.sync {
            Some(0) => {
                state.sync = None;
                true
            }
            Some(n) => {
                state.sync = Some(n - 1);
                false
            }
            None => false,
        };
        if fail || (state.sticky && state.tripped) {
            state.tripped = true;
            state.injected += 1;
            return Err(Error::Injected { op: Op::Sync });
        }
        Ok(())
    }

    /// For del and truncate: fails only in sticky mode after a trip.
    fn on_mutation(&self, op: Op) -> Result<()> {
        let mut state = self.state();
        if state.sticky && state.tripped {
            state.injected += 1;
            return Err(Error::Injected { op });
        }
        Ok(())
    }

    /// A global sequence number ordering mutations across all storages sharing these faults.
    fn next_seq(&self) -> u64 {
        let mut state = self.state();
        state.seq += 1;
        state.seq
    }

    fn state(&self) -> MutexGuard<'_, FaultState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns() {
        let f = Faults::new();
        f.fail_write_after(1);
        assert_eq!(f.on_write(), WriteDecision::Proceed);
        assert_eq!(f.on_write(), WriteDecision::Fail);
        assert_eq!(f.on_write(), WriteDecision::Proceed, "one-shot");
        f.tear_write_after(0, 3);
        assert_eq!(f.on_write(), WriteDecision::Tear(3));
        f.fail_sync_after(0);
        assert!(f.on_sync().unwrap_err().is_injected());
        assert!(f.on_sync().is_ok());
        assert_eq!((f.writes(), f.syncs(), f.injected()), (4, 2, 3));
        f.set_sticky(true);
        assert!(f.tripped());
        assert_eq!(f.on_write(), WriteDecision::Fail);
        assert!(f.on_sync().is_err());
        assert!(f.on_mutation(Op::Del).is_err());
        f.disarm();
        assert_eq!(f.on_write(), WriteDecision::Proceed);
        assert!(f.next_seq() < f.next_seq());
    }
}
