//! [`Snapshot`]: a read view of a core fixed at the length it had when taken.
//!
//! Later appends do not move a snapshot. A truncation or reorg that removes blocks the
//! snapshot covers makes reads of those blocks fail with [`Error::Truncated`]; blocks both
//! share stay readable.

use corestore_keys::{Hash, Key};

use crate::core::Core;
use crate::error::{Error, Result};

/// A read view of a [`Core`] at a fixed length, taken with [`Core::snapshot`].
///
/// Later appends do not move it. A truncation or reorg that removes blocks it covers makes
/// reads of those blocks fail with [`Error::Truncated`]. A snapshot belongs to the `Core`
/// value that made it (truncations are tracked in memory, since open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    key: Key,
    length: u64,
    byte_length: u64,
    fork: u64,
    tree_hash: Hash,
    signature: Option<Vec<u8>>,
    /// Number of truncations the core had seen when the snapshot was taken.
    epoch: usize,
}

impl Core {
    /// A snapshot of the current head.
    #[must_use]
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            key: *self.key(),
            length: self.length(),
            byte_length: self.byte_length(),
            fork: self.fork(),
            tree_hash: self.tree_hash(),
            signature: self.signature().map(<[u8]>::to_vec),
            epoch: self.truncations.len(),
        }
    }
}

impl Snapshot {
    /// Number of blocks in the snapshot.
    #[must_use]
    pub const fn length(&self) -> u64 {
        self.length
    }

    /// Byte length at the time of the snapshot.
    #[must_use]
    pub const fn byte_length(&self) -> u64 {
        self.byte_length
    }

    /// Fork at the time of the snapshot.
    #[must_use]
    pub const fn fork(&self) -> u64 {
        self.fork
    }

    /// Tree hash at the time of the snapshot.
    #[must_use]
    pub const fn tree_hash(&self) -> Hash {
        self.tree_hash
    }

    /// Signature of the snapshot's head.
    #[must_use]
    pub fn signature(&self) -> Option<&[u8]> {
        self.signature.as_deref()
    }

    /// How many leading blocks of the snapshot `core` still holds in its tree.
    #[must_use]
    pub fn ancestors(&self, core: &Core) -> u64 {
        core.truncations
            .get(self.epoch..)
            .unwrap_or_default()
            .iter()
            .fold(self.length, |kept, &a| kept.min(a))
    }

    /// Whether block `index` of the snapshot is readable from `core`.
    #[must_use]
    pub fn has(&self, core: &Core, index: u64) -> bool {
        core.key() == &self.key && index < self.ancestors(core) && core.has(index)
    }

    /// Reads block `index` of the snapshot from `core`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] at or beyond the snapshot's length, [`Error::Truncated`] if a
    /// truncation or reorg removed the block since, [`Error::InvalidArgument`] for another
    /// core, and everything [`Core::get`] returns.
    pub fn get(&self, core: &Core, index: u64) -> Result<Vec<u8>> {
        if core.key() != &self.key {
            return Err(Error::InvalidArgument("snapshot of another core"));
        }
        if index >= self.length {
            return Err(Error::OutOfBounds {
                index,
                length: self.length,
            });
        }
        let ancestors = self.ancestors(core);
        if index >= ancestors {
            return Err(Error::Truncated { index, ancestors });
        }
        core.get(index)
    }
}
