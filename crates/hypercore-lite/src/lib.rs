//! The Hypercore 10 log engine: a signed, Merkle-verified, append-only log of blocks,
//! byte-compatible on disk with JavaScript hypercore 10.38 (as used by corestore 6).
//!
//! A [`Core`] lives on five storages from [`rac_storage`] (`oplog`, `tree`, `bitfield`,
//! `data`, `header`, see [`CoreStorage`]). It appends and reads blocks, truncates (bumping the
//! fork), clears local copies, keeps user data, and produces and checks the Merkle proofs
//! replication exchanges ([`Request`] → [`Core::proof`] → [`Proof`] → [`Core::verify`] →
//! [`Core::apply`]).
//!
//! **What this crate does not do:** no networking and no async. It knows nothing of sockets,
//! peers, protomux channels or request ids: the protocol crate moves [`Request`]s and
//! [`Proof`]s, the facade drives both. All calls are synchronous and deterministic (the only
//! randomness is key generation for a new core without a key pair).
//!
//! # Key types
//!
//! * [`Core`], opened with [`CoreOptions`] on a [`CoreStorage`] (or a
//!   [`Provider`](rac_storage::Provider) and a name prefix);
//! * [`Request`] / [`Proof`]: the `request` and `data` messages as plain structs;
//!   [`VerifiedBatch`]: a proof checked against the core, ready to [`Core::apply`] (or, several
//!   at once, [`Core::apply_batch`]);
//! * [`Snapshot`]: a read view fixed at a length;
//! * [`tree::flat::NodeIndex`]: flat-tree index arithmetic as `const fn`s;
//! * [`Error`] / [`VerifyError`].
//!
//! # Example
//!
//! ```
//! use hypercore_lite::{Core, CoreOptions, CoreStorage, Error};
//!
//! let mut core = Core::open_storage(CoreStorage::memory(), CoreOptions::new())?;
//! core.append(b"hello")?;
//! core.append_batch(&[&b"big"[..], b"world"])?;
//! assert_eq!(core.length(), 3);
//! assert_eq!(core.byte_length(), 13);
//! assert_eq!(core.get(1)?, b"big");
//! assert_eq!(core.seek(9)?, (2, 1)); // byte 9 is byte 1 of block 2
//!
//! // A reader that knows only the key catches up through a proof.
//! let mut reader = Core::open_storage(CoreStorage::memory(), CoreOptions::new().key(*core.key()))?;
//! let request = hypercore_lite::Request {
//!     block: Some(hypercore_lite::BlockRequest { index: 2, nodes: 0 }),
//!     upgrade: Some(hypercore_lite::UpgradeRequest { start: 0, length: 3 }),
//!     ..Default::default()
//! };
//! let proof = core.proof(&request)?.expect("we have block 2");
//! let verified = reader.verify(&proof)?;
//! reader.apply(verified)?;
//! assert_eq!(reader.length(), 3);
//! assert_eq!(reader.get(2)?, b"world");
//! assert!(matches!(reader.get(0), Err(Error::BlockNotAvailable { index: 0 })));
//! # Ok::<(), Error>(())
//! ```
//!
//! # Durability
//!
//! Every mutation writes its data first, then its oplog entry; the mutation is
//! *acknowledged* when the call returns, at which point the entry has been written to
//! storage. Flushes write in a fixed order too: bitfield pages and tree nodes, then the
//! header (big header first), then the oplog header slot, and only then drop the oplog
//! entries; truncations, reorgs and clears write their oplog entry before cutting the tree or
//! zeroing data. On open a torn oplog tail is dropped by its CRC and blocks whose oplog entry
//! survived but whose bytes did not are unmarked. Every open checks each block against its
//! Merkle leaf before it first returns it (or on every read, with [`ReadCheck::Always`]), so a
//! data file damaged at rest gives [`Error::Corrupt`], never wrong data (see [`ReadCheck`] for
//! the exact trust model). A storage error during a mutation *poisons* the core
//! ([`Error::Poisoned`]) until reopened.
//!
//! A large batch ([`Core::append_batch`]) is hashed on the calling thread while a second,
//! scoped thread writes its bytes; the call returns after both, so the order above holds.
//! [`Core::apply_batch`] stores several block proofs as one mutation: all their blocks, then
//! all their oplog entries in one write; a proof is acknowledged once its entry is written.
//!
//! * [`Durability::Buffered`] (the default, as JavaScript hypercore, which never syncs): no
//!   mutation or flush syncs; only [`Core::sync`] and [`Core::close`] do. Writes land in the
//!   page cache in the order above, which is what a crash of the process needs: killed at any
//!   instant, or after a storage failed or tore a write, the core reopens, verifies its
//!   signature and tree, and holds every block whose append (or apply) had returned. Against
//!   power loss it is safe only for the state as of the last completed [`Core::sync`] or
//!   [`Core::close`]: the disk may persist later writes in any order, so a power loss during
//!   unsynced work may leave a core that fails to open with [`Error::Corrupt`] or that
//!   recovers an older state — never wrong data, since the next open checks every block
//!   against its Merkle leaf before returning it.
//! * [`Durability::Synced`]: every mutation syncs its data, then its oplog entry, before it
//!   returns, and flushes put sync barriers between their steps (data, bitfield and tree
//!   before the header, the header slot before the entries are dropped): power-loss safe at
//!   every acknowledged mutation, at the cost of several syncs per mutation.
//!
//! # Lazy creation
//!
//! With [`CoreOptions::lazy`] (off by default here, so [`Core::open`] creates files as it always
//! did; the `corestore` facade turns it on) a new core is created in memory only: its header,
//! key pair and [`CoreOptions::user_data`] exist, nothing is written. Right before its first
//! storage write (an append, data applied from a peer, a truncation, a clear, a user-data
//! change, [`Core::flush`], [`Core::sync`], [`Core::close`] or [`Core::materialize`]) it writes
//! what an eager creation would have written, through the same code, so its files are byte for
//! byte an eager core's ([`Core::is_materialized`]). A storage error there is that operation's
//! error (and poisons the core). A process that ends before that leaves nothing on disk and
//! loses nothing acknowledged, since nothing was. Opening a missing core costs one probe, the
//! length of its `oplog`; its other files are opened with the
//! [`absent`](rac_storage::OpenOptions::absent) hint and not probed.
//!
//! The on-disk format is documented byte by byte in `docs/on-disk-format.md` and in the source of
//! the `oplog::format` module.
//!
//! # Crate features
//!
//! None. The crate has no optional and no default features.

#![forbid(unsafe_code)]

mod bitfield;
mod blocks;
mod checked;
mod core;
mod error;
mod header;
mod ingest;
mod oplog;
mod snapshot;
pub mod tree;

pub use crate::core::{
    AppendOutcome, Applied, BlockValue, Core, CoreOptions, CoreStorage, Durability, ReadCheck,
    VerifiedBatch,
};
pub use crate::error::{Error, Result, VerifyError};
pub use crate::snapshot::Snapshot;
pub use crate::tree::proof::{
    BlockRequest, DataBlock, DataHash, DataSeek, DataUpgrade, HashRequest, Proof, Request,
    SeekRequest, UpgradeRequest,
};
pub use corestore_keys::{Hash, Key, KeyPair, Manifest, Node};

#[cfg(test)]
mod tests_support {
    //! Helpers shared by unit tests.

    use rac_storage::Storage;

    /// The whole content of a storage.
    pub(crate) fn read_all(s: &dyn Storage) -> Vec<u8> {
        let len = s.len().unwrap();
        s.read_to_vec(0, len).unwrap()
    }
}
