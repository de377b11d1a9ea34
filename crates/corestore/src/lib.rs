//! Corestore for Rust: a factory of [Hypercores](Hypercore) that is indistinguishable from
//! JavaScript corestore 6 — the same keys for the same names, the same directory layout and
//! files, and the same wire protocol.
//!
//! A [`Corestore`] keeps many cores in one storage location (a directory, memory, or your own
//! backend, see [`StoreStorage`]), derives the key pairs of named cores from one primary key
//! (persisted in `primary-key` and locked while the store is open), and replicates every loaded
//! core with every peer over one encrypted stream per peer ([`Corestore::replicate`]).
//!
//! This crate is the async facade on Tokio. The log engine is `hypercore-lite` and the wire
//! protocol is the sans-IO `corestore-proto`; this crate drives both. It opens no sockets of
//! its own: give [`Corestore::replicate`] any `AsyncRead + AsyncWrite` stream.
//!
//! # Key types
//!
//! - [`Corestore`]: a store or a session of it ([`Corestore::namespace`],
//!   [`Corestore::session`]); [`Corestore::get`] opens cores.
//! - [`Hypercore`]: a session on one core: append, read (waiting for peers), download, update,
//!   truncate, clear, snapshots, [`CoreEvent`]s, [`Extension`]s.
//! - [`GetOptions`], [`StoreOptions`], [`SessionOptions`]: what to open and how.
//! - [`ReplicationHandle`]: a running replication stream; [`ReplicateOptions`] configures one.
//! - [`StoreEvent`], [`StoredCore`]: store events and listed cores.
//! - [`Error`]: one `#[non_exhaustive]` error enum.
//!
//! # Example
//!
//! ```
//! use corestore::{Corestore, GetOptions, StoreOptions, StoreStorage};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), corestore::Error> {
//! let store = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;
//! let log = store.get(GetOptions::name("log")).await?;
//! log.append(b"hello").await?;
//! log.append_batch(&[&b"big"[..], b"world"]).await?;
//! assert_eq!(log.length(), 3);
//! assert_eq!(log.get(1).await?, b"big");
//!
//! // The same name in another namespace is another core.
//! let other = store.namespace("app").get(GetOptions::name("log")).await?;
//! assert_ne!(other.key(), log.key());
//!
//! // Opening by key gives a session on the same core.
//! let again = store.get(log.key()).await?;
//! assert_eq!(again.get(2).await?, b"world");
//! store.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! Replication of two stores over an in-memory pipe is in `examples/replicate_in_memory.rs`.
//!
//! # Compatibility
//!
//! Named cores get `seed = BLAKE2b(primary key, CORESTORE_NS || namespace || name)` and, by
//! default (compat, as corestore 6), the Ed25519 public key as core key. A core lives under
//! `cores/<dk[0:2]>/<dk[2:4]>/<dk>/` (dk = hex discovery key) in the hypercore 10 file format,
//! and a named core records `corestore/name` and `corestore/namespace` in its user data, so a
//! store written by this crate opens in JavaScript corestore 6 and the other way round.
//!
//! # Design
//!
//! - **Synchronous engine, async facade.** `hypercore-lite` is synchronous. Opening a stored
//!   core (which may replay an oplog) runs on the store's own I/O thread; appends, reads and
//!   proofs are short calls (a few page-cache reads and writes) made inline under the core's
//!   mutex, which costs less than a thread hop per block.
//! - **Lazy creation** ([`StoreOptions::lazy`], on by default): a core that `get` creates
//!   (by name, or by key with `create_if_missing`) is set up in memory, inline, after one
//!   failed probe of its `oplog`; its key pair, header and `corestore/name` /
//!   `corestore/namespace` user data are written at its first durable operation (an append,
//!   data from a peer, a truncate, a clear, a user-data change, [`Hypercore::sync`]) or when it closes (after its
//!   last session and linger, or with the store), byte for byte what an eager creation
//!   writes. A storage error while writing them is the error of the operation that triggered
//!   it (logged when it is the close). If the process dies before that, the core simply does
//!   not exist on disk; nothing acknowledged is lost, and [`Corestore::list_cores`] (which
//!   reads the disk) does not list it until it is written.
//! - **One driver task per stream** (`debug_span!("replicate", initiator, peer)`), which owns
//!   the transport: it keeps reading while output is queued (so two peers never wait on each
//!   other), handles each read as one corked round and writes once. Remote requests wait while
//!   1 MiB of output is queued. Cores loaded later reach every live driver through an internal
//!   hub. [`Corestore::replicate_with`] sets a fixed Noise identity or takes the keys of an
//!   outside handshake ([`ReplicateOptions`]).
//! - **Requests are pipelined**: an eager upgrade whenever a peer is longer, then up to the
//!   per-channel limit (48) of block requests for the blocks sessions wait for or download.
//! - **Closing**: a core closes with its last session; if replication channels are attached,
//!   it lingers on them first ([`StoreOptions::linger`], 20–40 s by default as hypercore 10),
//!   then closes with its channels. A core a remote peer asked for stays while its channel
//!   does.
//! - **Extensions** ([`Hypercore::register_extension`]): named messages on a core's channels,
//!   to every peer or one, in hypercore's default encoding so JavaScript handlers read them;
//!   the latest registration of a name receives, through a bounded queue.
//! - **Conflicts**: a proof from a peer that does not verify pauses that peer and probes it
//!   (request id 0). If it proves a second, validly signed history at the same length and fork,
//!   every peer gets our proof, the core's channels close, and the core closes with all its
//!   sessions ([`CoreEvent::Conflict`], [`StoreEvent::Conflict`], then [`Error::Conflict`] on
//!   every call), as hypercore 10.
//! - **Store-level**: [`Corestore::events`] (`core-open` / `core-close`),
//!   [`Corestore::suspend`] / [`Corestore::resume`], [`Corestore::namespace_of`] (a namespace
//!   bootstrapped from a core), [`Corestore::list_cores`].
//!
//! # Crate features
//!
//! - `fs` (default): directory storage on Unix ([`StoreStorage::dir`], and `Corestore::new`
//!   with a path). Without it, stores live in memory or in a provider you supply.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod core;
mod error;
mod events;
mod extension;
mod hypercore;
mod list;
mod options;
mod replicate;
mod storage;
mod store;
mod worker;

pub use crate::core::CoreEvent;
pub use crate::error::{Error, Result};
pub use crate::events::StoreEvent;
pub use crate::extension::{Extension, MAX_EXTENSION_MESSAGE};
pub use crate::hypercore::{Download, Hypercore, Info};
pub use crate::list::StoredCore;
pub use crate::options::{GetOptions, SessionOptions, StoreOptions};
pub use crate::replicate::convert;
pub use crate::replicate::{EstablishedKeys, ReplicateOptions, ReplicationHandle};
pub use crate::storage::StoreStorage;
pub use crate::store::{
    Corestore, FindingPeers, PRIMARY_KEY_FILE, USER_DATA_NAME, USER_DATA_NAMESPACE,
};

pub use corestore_keys::{DiscoveryKey, Key, KeyPair, Namespace, PrimaryKey};
