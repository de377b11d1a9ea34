//! The crate's error type, [`Error`]: local misuse (empty names, malformed keys, closed
//! stores), the environment (storage, a locked store) and the lower layers' errors.

use std::time::Duration;

/// Shorthand for `Result<T, corestore::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process or store holds the exclusive lock on this store's `primary-key` file.
    #[error("the store is locked by another corestore (primary-key is locked): {0}")]
    Locked(#[source] rac_storage::Error),
    /// `get` by name with an empty name (corestore 6 rejects it too).
    #[error("a core name must not be empty")]
    EmptyName,
    /// A key given as text or bytes is not a 32-byte key in hex, z-base-32 or `pear://` form.
    #[error("malformed core key: {0}")]
    InvalidKey(#[from] corestore_keys::ParseKeyError),
    /// `get` without `create_if_missing` (or a remote open) for a core that is not stored.
    #[error("no core with discovery key {0} is stored")]
    NotFound(corestore_keys::DiscoveryKey),
    /// A mutation on a read-only session (no secret key, or opened with `writable: false`).
    #[error("the session is not writable")]
    NotWritable,
    /// The block is not stored and the read was made with `wait: false`.
    #[error("block {index} is not available locally")]
    NotAvailable {
        /// The block.
        index: u64,
    },
    /// A wait (block read, download, update, exclusive lock) ran past its timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The session, the core or the store was closed.
    #[error("the session or store is closed")]
    Closed,
    /// The core was closed because two validly signed versions of it disagree at `length`
    /// (its writer forked it without bumping the fork id; spec §9.9). See
    /// [`CoreEvent::Conflict`](crate::CoreEvent::Conflict).
    #[error(
        "two conflicting signatures exist for length {length} (fork {fork}): the core was closed"
    )]
    Conflict {
        /// The length at which the trees differ.
        length: u64,
        /// The fork both trees claim.
        fork: u64,
    },
    /// An option combination that makes no sense (documented where returned).
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
    /// A storage backend failed.
    #[error(transparent)]
    Storage(#[from] rac_storage::Error),
    /// Key handling failed.
    #[error(transparent)]
    Keys(#[from] corestore_keys::Error),
    /// The log engine failed (corruption, verification, I/O inside a core).
    #[error(transparent)]
    Core(#[from] hypercore_lite::Error),
    /// The replication protocol failed (the peer misbehaved or the stream broke).
    #[error(transparent)]
    Protocol(#[from] corestore_proto::ProtocolError),
    /// A local protocol command was refused.
    #[error(transparent)]
    ProtocolMisuse(#[from] corestore_proto::ApiMisuse),
    /// The transport failed.
    #[error("transport error: {0}")]
    Io(#[from] std::io::Error),
    /// A blocking task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The store's I/O thread failed to run a job (the job panicked).
    #[error("store I/O thread: {0}")]
    Worker(&'static str),
}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            other => Self::other(other),
        }
    }
}
