//! Error types: [`Error`] for every fallible operation, [`VerifyError`] for proofs that do not
//! verify.
//!
//! The variants separate three causes:
//!
//! * **bad data on disk**: [`Error::Corrupt`] (names the file, the byte offset and why) and
//!   [`Error::Incompatible`] (a format this crate does not read);
//! * **a bad peer**: [`Error::Verification`] (a proof that does not verify; storage is left
//!   unchanged) and [`Error::InvalidRequest`] (a request no honest peer sends);
//! * **local misuse or state**: [`Error::OutOfBounds`], [`Error::BlockNotAvailable`],
//!   [`Error::NodeNotAvailable`],
//!   [`Error::Truncated`], [`Error::NotWritable`], [`Error::InvalidArgument`],
//!   [`Error::NotFound`], [`Error::KeyMismatch`];
//!
//! plus the environment: [`Error::Storage`] and the sticky [`Error::Poisoned`].

/// Shorthand for `Result<T, hypercore_lite::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file of the core holds bytes that cannot be what this crate or JavaScript hypercore
    /// wrote (failed decoding, a missing tree root, a block whose hash does not match).
    #[error("{file} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        /// The file: `oplog`, `tree`, `bitfield`, `data` or `header`.
        file: &'static str,
        /// Byte offset of the bad record in that file.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// The storage holds a format this crate does not read (for example a hypercore 9 tree).
    #[error("incompatible storage: {0}")]
    Incompatible(&'static str),
    /// An earlier write or sync failed, so the on-disk state is unknown. Every later operation
    /// fails with this error; reopen the core to recover (open replays the oplog).
    #[error("the core is poisoned by an earlier storage failure; reopen it")]
    Poisoned,
    /// A proof did not verify. Storage was not modified.
    #[error("proof rejected: {0}")]
    Verification(#[from] VerifyError),
    /// A proof request that cannot be answered because it is malformed (nodes reaching past
    /// the root, an upgrade beyond our length, a seek combined with an upgraded block, ...).
    /// JavaScript peers destroy the replication stream on such a request.
    #[error("invalid proof request: {0}")]
    InvalidRequest(&'static str),
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] rac_storage::Error),
    /// A block index at or beyond the core's length.
    #[error("block {index} is out of bounds (length {length})")]
    OutOfBounds {
        /// The requested block.
        index: u64,
        /// The length it was checked against.
        length: u64,
    },
    /// The block is part of the core but not stored locally (never downloaded, or cleared).
    #[error("block {index} is not available locally")]
    BlockNotAvailable {
        /// The requested block.
        index: u64,
    },
    /// A tree node the operation needs is not stored locally: a sparse core cannot build
    /// this proof (answer the request with `noData`) or compute this offset.
    #[error("tree node {index} is not available locally")]
    NodeNotAvailable {
        /// Flat-tree index of the node.
        index: u64,
    },
    /// A snapshot read of a block that a later truncation or reorg removed.
    #[error("block {index} was truncated away (only {ancestors} blocks of the snapshot remain)")]
    Truncated {
        /// The requested block.
        index: u64,
        /// How many leading blocks of the snapshot are still part of the core.
        ancestors: u64,
    },
    /// A mutation that needs the secret key on a core opened without one.
    #[error("the core is not writable (no secret key)")]
    NotWritable,
    /// An argument that makes no sense for this core (documented where returned).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// Open without `create`, and no core is stored there.
    #[error("no hypercore is stored here")]
    NotFound,
    /// The storage holds a different core than the key or manifest given to open.
    #[error("the storage holds another hypercore (key mismatch)")]
    KeyMismatch,
    /// Key handling failed (for example a manifest that names no signer for our key pair).
    #[error(transparent)]
    Keys(#[from] corestore_keys::Error),
}

impl Error {
    /// Shorthand for [`Error::Corrupt`].
    pub(crate) const fn corrupt(file: &'static str, offset: u64, reason: &'static str) -> Self {
        Self::Corrupt {
            file,
            offset,
            reason,
        }
    }
}

/// Why a proof was rejected (spec §9.7). Every variant means the peer sent something an
/// honest peer on the same fork would not, or that our state moved since the proof was
/// requested ([`VerifyError::Stale`], [`VerifyError::ForkMismatch`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The proof is for another fork than ours and is not a usable fork (reorg) proof.
    #[error("proof is for fork {got}, we are on fork {ours}")]
    ForkMismatch {
        /// Our fork id.
        ours: u64,
        /// The proof's fork id.
        got: u64,
    },
    /// A node list had the wrong node at some position.
    #[error("expected node {expected}, got {got:?}")]
    UnexpectedNode {
        /// The index the verifier needed next.
        expected: u64,
        /// The index found, or `None` if the list ended.
        got: Option<u64>,
    },
    /// The proof's subtree does not hash to the node we trust at that index.
    #[error("checksum mismatch at node {index}")]
    ChecksumMismatch {
        /// The node whose hash differs.
        index: u64,
    },
    /// The proof reaches a node we neither trust nor receive with an upgrade.
    #[error("the proof is not anchored in the trusted tree (node {index})")]
    NotAnchored {
        /// The unverified root the proof ended at.
        index: u64,
    },
    /// The upgrade signature does not verify for the resulting tree.
    #[error("invalid upgrade signature")]
    BadSignature,
    /// The proof carries (or needs) a manifest that does not belong to this core.
    #[error("the proof's manifest does not match the core key")]
    InvalidManifest,
    /// The upgrade does not start at our length, does not grow the tree, or has the wrong shape.
    #[error("invalid upgrade: {0}")]
    InvalidUpgrade(&'static str),
    /// A structurally invalid proof (sizes overflow, a block value without its proof, ...).
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
    /// The core changed (length or fork) between [`verify`](crate::Core::verify) and
    /// [`apply`](crate::Core::apply); verify the proof again.
    #[error("the core changed since the proof was verified")]
    Stale,
}
