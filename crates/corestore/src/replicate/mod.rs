//! Replication: one driver task per stream over the sans-IO [`Connection`] (spec §6.8,
//! §9.3–§9.10).
//!
//! The driver is the task that owns the transport: it writes the buffers
//! [`Connection::poll_transmit`] hands out (a batch of blocks is written from the buffer it was
//! encoded and encrypted in; written buffers go back through [`Connection::recycle`]), reads
//! whatever is readable (up to 256 KiB) into [`Connection::handle_bytes`] until the secret
//! stream is open, sleeps until [`Connection::poll_timeout`], and answers the events of one
//! wake-up as one *round* with the peer corked, so a round's answers leave as a few batch
//! frames and one write. Once the stream is open, on a multi-threaded runtime, a second task
//! reads the transport, frames and decrypts with the [`Receiver`](corestore_proto::stream::Receiver)
//! split off the connection ([`Connection::split_receiver`]) and hands each read's messages to
//! the driver over a bounded channel ([`Connection::handle_plaintext`]), so decryption runs on
//! another core while the driver verifies and stores. Events:
//!
//! * `RemoteOpen` (`hypercore/alpha`, id = discovery key): the core is served if it is loaded
//!   or stored (opened with `create: false`), else the channel is rejected;
//! * `Request`: the proof is built by `hypercore-lite` in a short synchronous call under the
//!   core's mutex (storage calls are page-cache I/O; a `spawn_blocking` hop per block would
//!   cost more than the work) and sent with `send_data_with`, which reads the block from storage
//!   straight into the corked batch (`Core::proof_deferred`), or `noData`;
//! * `Data`: verified on arrival; proofs of a single block are stored together at the end of
//!   the round (one `Core::apply_batch` per core), any other proof first stores those and then
//!   itself, so proofs are applied in arrival order; at the end of the round every waiting session
//!   wakes and every stream announces the new blocks (one `range` per contiguous run, and only
//!   to remotes that lack them);
//! * `Synced` / `Range` / `NoData` / timeouts: at the end of the round, request what sessions
//!   want: an eager upgrade whenever the remote is longer, and up to the per-channel inflight
//!   limit of block requests (pipelined, 256 per core and peer by default). The room that a
//!   read's answers free is filled before they are verified, and those requests are written
//!   at once, so the remote prepares its next answers while we verify and store these;
//! * a proof that fails to verify (bad checksum, signature or manifest) pauses the peer and
//!   probes it for a conflict (§9.9); a `data` with `request == 0` and an upgrade from 0 is
//!   checked for one. A conflict reaches every driver through the hub: each sends our proof
//!   to its peer and closes the core's channel, then the core closes with its sessions;
//! * `Extension`: handed to the latest registration of the name on the core (§9.10); outgoing
//!   extension messages arrive as hub signals.
//!
//! Back-pressure is explicit and bounded: remote requests are answered only while less than
//! 1 MiB of output waits for the transport (the rest queue, up to the protocol's cap on remote
//! requests per channel), and above 8 MiB of queued output the driver stops reading (a
//! receiver task then waits once four reads of messages are not taken).
//!
//! Cores loaded later reach every live driver through the store's hub and are attached unless
//! the store is `passive`.

pub mod convert;
mod driver;

use std::sync::Arc;

use corestore_keys::KeyPair;
use corestore_proto::Connection;
use corestore_proto::noise;
use corestore_proto::replicate::PeerConfig;
pub use corestore_proto::stream::EstablishedKeys;
use corestore_proto::stream::{Randomness, StreamConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::error::{Error, Result};
use crate::store::Corestore;

/// A running replication stream, returned by [`Corestore::replicate`].
///
/// Dropping the handle does not stop the stream; [`ReplicationHandle::close`] does, and so
/// does closing the root store or the transport.
#[derive(Debug)]
pub struct ReplicationHandle {
    task: JoinHandle<Result<()>>,
    stop: Arc<Notify>,
}

impl ReplicationHandle {
    /// Asks the driver to end the stream (it shuts the transport down).
    pub fn close(&self) {
        self.stop.notify_one();
    }

    /// Whether the driver task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the stream to end: `Ok` when it was closed locally or the remote ended the
    /// transport cleanly, the protocol or transport error otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::Protocol`], [`Error::Io`], [`Error::Task`] if the driver panicked.
    pub async fn join(self) -> Result<()> {
        self.task.await?
    }
}

/// How [`Corestore::replicate_with`] runs a stream (corestore 6's `replicate(isInitiator,
/// opts)`).
#[derive(Debug, Clone)]
pub struct ReplicateOptions {
    initiator: bool,
    key_pair: Option<KeyPair>,
    established: Option<EstablishedKeys>,
    trim_proofs: bool,
}

impl ReplicateOptions {
    /// A Noise XX stream with a fresh random identity; exactly one side is the `initiator`.
    #[must_use]
    pub fn new(initiator: bool) -> Self {
        Self {
            initiator,
            key_pair: None,
            established: None,
            trim_proofs: true,
        }
    }

    /// The stream's Noise static key pair: the identity the remote sees (as `keyPair` in
    /// corestore 6's replicate options, an Ed25519 key pair such as a hyperswarm identity).
    #[must_use]
    pub fn key_pair(mut self, key_pair: KeyPair) -> Self {
        self.key_pair = Some(key_pair);
        self
    }

    /// Keys of a handshake made elsewhere, for streams from a swarm library (hyperdht's Noise
    /// IK, spec §7.5): the stream skips the Noise handshake and starts with the secret-stream
    /// header exchange, encrypted with these keys. The identity is the one of that handshake,
    /// so [`ReplicateOptions::key_pair`] is ignored.
    #[must_use]
    pub fn established(mut self, keys: EstablishedKeys) -> Self {
        self.established = Some(keys);
        self
    }

    /// Whether block requests ask only for the tree nodes that neither our tree nor the
    /// proofs of our earlier requests still on their way (to the same peer) will provide (on
    /// by default). Off, every request asks for all the nodes we miss, as hypercore does: its
    /// proofs are larger, but none depends on another.
    #[must_use]
    pub fn trim_proofs(mut self, trim: bool) -> Self {
        self.trim_proofs = trim;
        self
    }
}

fn random<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0; N];
    getrandom::fill(&mut b).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))?;
    Ok(b)
}

impl Corestore {
    /// Replicates every loaded core (and every core the remote asks for that this store has)
    /// over `stream`, a reliable byte stream (TCP, a pipe, a stream from a swarm). Exactly one
    /// side must be the `initiator`. The stream runs in its own task until it ends, the handle
    /// is closed or the root store is closed.
    ///
    /// For TCP, disable Nagle's algorithm (`TcpStream::set_nodelay(true)`) or use
    /// [`Corestore::replicate_tcp`]: the protocol sends many small messages.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the store is closed, [`Error::Io`] if the OS has no randomness for
    /// the session keys.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn replicate<S>(&self, stream: S, initiator: bool) -> Result<ReplicationHandle>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.replicate_with(stream, ReplicateOptions::new(initiator))
    }

    /// [`Corestore::replicate`] with options: a fixed Noise identity, or keys from a handshake
    /// made elsewhere (see [`ReplicateOptions`]).
    ///
    /// # Errors
    ///
    /// As [`Corestore::replicate`]; [`Error::ProtocolMisuse`] if the remote public key of
    /// [`ReplicateOptions::established`] is not a valid Ed25519 point.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn replicate_with<S>(
        &self,
        stream: S,
        options: ReplicateOptions,
    ) -> Result<ReplicationHandle>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let ReplicateOptions {
            initiator,
            key_pair,
            established,
            trim_proofs,
        } = options;
        let config = PeerConfig::default();
        let max_inflight = config.max_inflight;
        let conn = match established {
            Some(keys) => {
                Connection::with_keys(initiator, &keys, random()?, StreamConfig::default(), config)?
            }
            None => {
                let randomness = Randomness {
                    ephemeral_seed: random()?,
                    header: random()?,
                };
                let seed = match key_pair {
                    Some(kp) => {
                        let mut seed = [0; 32];
                        seed.copy_from_slice(
                            kp.secret_key().as_bytes().get(..32).unwrap_or_default(),
                        );
                        seed
                    }
                    None => random::<32>()?,
                };
                let keypair = noise::KeyPair::from_seed(&seed);
                Connection::new(
                    initiator,
                    keypair,
                    &randomness,
                    StreamConfig::default(),
                    config,
                )
            }
        };
        let root = Arc::clone(self.root());
        let stop = Arc::new(Notify::new());
        let span = tracing::debug_span!("replicate", initiator, peer = tracing::field::Empty);
        let driver = driver::Driver::new(root, conn, max_inflight, trim_proofs, span.clone());
        let task = tokio::spawn(driver.run(stream, Arc::clone(&stop)).instrument(span));
        Ok(ReplicationHandle { task, stop })
    }

    /// [`Corestore::replicate`] over a TCP stream, with `TCP_NODELAY` set.
    ///
    /// # Errors
    ///
    /// As [`Corestore::replicate`], and [`Error::Io`] from setting the socket option.
    pub fn replicate_tcp(
        &self,
        stream: tokio::net::TcpStream,
        initiator: bool,
    ) -> Result<ReplicationHandle> {
        stream.set_nodelay(true)?;
        self.replicate(stream, initiator)
    }
}
