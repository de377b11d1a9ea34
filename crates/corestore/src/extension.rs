//! Extensions (spec §9.10): named application messages that travel on a core's replication
//! channels, as hypercore's `registerExtension`.
//!
//! A session registers a name with [`Hypercore::register_extension`](crate::Hypercore::register_extension)
//! and gets an [`Extension`]: it sends to one peer or to every peer that has the core's channel
//! open, and receives what peers send under that name. Registrations live on the loaded core
//! (shared by all its sessions); when several are live for one name, the latest one receives,
//! as in hypercore 10 where the last `registerExtension` of a name replaces the handler its
//! peers call. Messages for names nobody registered are dropped. Outgoing messages reach the
//! replication drivers through the store's hub; each driver sends them on the core's channel
//! if it has one open (and to the right remote, for [`Extension::send`]).
//!
//! Like hypercore's `registerExtension` without an `encoding`, an extension made with
//! [`Hypercore::register_extension`](crate::Hypercore::register_extension) sends each message
//! as a compact-encoding `buffer` (a varint length, then the bytes), so it talks to JavaScript
//! handlers out of the box; a JavaScript receiver gets an empty message as `null`.
//! [`Hypercore::register_raw_extension`](crate::Hypercore::register_raw_extension) sends the
//! bytes as they are (JavaScript `encoding: c.raw`).

use std::collections::HashMap;
use std::sync::Arc;

use corestore_keys::DiscoveryKey;
use corestore_keys::compact::Encoder;
use corestore_proto::codec::Reader;
use corestore_proto::wire::limits::{MAX_BLOCK_LEN, MAX_EXTENSION_NAME};
use tokio::sync::mpsc;
use tracing::trace;

use crate::core::{LoadedCore, Signal};
use crate::error::{Error, Result};

/// Messages queued per registration; more arriving before [`Extension::recv`] takes them are
/// dropped (hypercore calls handlers synchronously, so it has no queue to bound).
pub(crate) const QUEUE: usize = 256;

/// Longest message [`Extension::broadcast`] and [`Extension::send`] accept: what fits one
/// frame together with the name (the protocol's bound on a block).
pub const MAX_EXTENSION_MESSAGE: usize = MAX_BLOCK_LEN;

/// A received message: the sender's static public key and the payload.
type Received = ([u8; 32], Vec<u8>);

/// How an extension's messages travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// compact-encoding `buffer`, hypercore's default: a varint length, then the bytes.
    Buffer,
    /// The bytes as they are.
    Raw,
}

impl Encoding {
    fn encode(self, message: &[u8]) -> Vec<u8> {
        match self {
            Self::Raw => message.to_vec(),
            Self::Buffer => {
                let mut e = Encoder::with_capacity(message.len() + 9);
                e.buffer(message);
                e.into_vec()
            }
        }
    }

    /// The payload of a received message; `None` if it does not decode. As hypercore, bytes
    /// after a `buffer` are ignored.
    fn decode(self, message: Vec<u8>) -> Option<Vec<u8>> {
        match self {
            Self::Raw => Some(message),
            Self::Buffer => Reader::new(&message)
                .buffer(message.len())
                .ok()
                .map(<[u8]>::to_vec),
        }
    }
}

/// One registration: its id, encoding and queue.
struct Registration {
    id: u64,
    encoding: Encoding,
    tx: mpsc::Sender<Received>,
}

/// The registrations of one core, by name (oldest first: the last one receives).
#[derive(Default)]
pub(crate) struct Extensions {
    next: u64,
    by_name: HashMap<Arc<str>, Vec<Registration>>,
}

impl Extensions {
    fn register(&mut self, name: &Arc<str>, encoding: Encoding) -> (u64, mpsc::Receiver<Received>) {
        self.next += 1;
        let (tx, rx) = mpsc::channel(QUEUE);
        self.by_name
            .entry(Arc::clone(name))
            .or_default()
            .push(Registration {
                id: self.next,
                encoding,
                tx,
            });
        (self.next, rx)
    }

    fn unregister(&mut self, name: &str, id: u64) {
        if let Some(list) = self.by_name.get_mut(name) {
            list.retain(|r| r.id != id);
            if list.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    fn contains(&self, name: &str, id: u64) -> bool {
        self.by_name
            .get(name)
            .is_some_and(|list| list.iter().any(|r| r.id == id))
    }

    /// Hands a message from `remote` to the latest registration of `name`.
    fn deliver(&self, name: &str, remote: [u8; 32], message: Vec<u8>) {
        let Some(r) = self.by_name.get(name).and_then(|list| list.last()) else {
            trace!(name, "extension message for an unregistered name dropped");
            return;
        };
        let Some(message) = r.encoding.decode(message) else {
            trace!(name, "extension message that does not decode dropped");
            return;
        };
        if r.tx.try_send((remote, message)).is_err() {
            trace!(name, "extension queue full: message dropped");
        }
    }
}

/// An extension message on its way to the drivers.
pub(crate) struct Outgoing {
    /// The core whose channels carry it.
    pub(crate) discovery_key: DiscoveryKey,
    pub(crate) name: Arc<str>,
    /// One remote (by static public key), or every peer.
    pub(crate) to: Option<[u8; 32]>,
    pub(crate) message: Vec<u8>,
}

impl LoadedCore {
    /// Registers `name`; returns the registration id and its queue.
    pub(crate) fn register_extension(
        &self,
        name: &Arc<str>,
        encoding: Encoding,
    ) -> Result<(u64, mpsc::Receiver<Received>)> {
        // Under the core's lock: a core that closes drops the registrations made before.
        self.with(|_| {
            Ok(self
                .extensions()
                .get_or_insert_with(Box::default)
                .register(name, encoding))
        })
    }

    /// Removes a registration (idempotent).
    pub(crate) fn unregister_extension(&self, name: &str, id: u64) {
        let mut extensions = self.extensions();
        if let Some(e) = extensions.as_mut() {
            e.unregister(name, id);
            if e.by_name.is_empty() {
                *extensions = None;
            }
        }
    }

    /// Hands a message a peer sent to the latest registration of `name` (dropped if there is
    /// none or its queue is full).
    pub(crate) fn deliver_extension(&self, name: &str, remote: [u8; 32], message: Vec<u8>) {
        match self.extensions().as_ref() {
            Some(e) => e.deliver(name, remote, message),
            None => trace!(name, "extension message for an unregistered name dropped"),
        }
    }
}

/// A registered extension of a core: sends and receives the messages of one name on the
/// core's replication channels. Created by
/// [`Hypercore::register_extension`](crate::Hypercore::register_extension).
///
/// The registration ends when the handle is dropped or the session it was registered through
/// closes; [`Extension::recv`] then returns `None`.
pub struct Extension {
    core: Arc<LoadedCore>,
    name: Arc<str>,
    id: u64,
    encoding: Encoding,
    rx: mpsc::Receiver<Received>,
}

impl std::fmt::Debug for Extension {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extension")
            .field("name", &self.name)
            .field("core", &self.core.key)
            .finish_non_exhaustive()
    }
}

impl Extension {
    /// Registers `name` on `core`.
    pub(crate) fn register(core: &Arc<LoadedCore>, name: &str, encoding: Encoding) -> Result<Self> {
        if name.is_empty() {
            // On the wire an empty name means "the name of the previous message".
            return Err(Error::InvalidArgument(
                "an extension name must not be empty",
            ));
        }
        if name.len() > MAX_EXTENSION_NAME {
            return Err(Error::InvalidArgument(
                "an extension name must be at most 1024 bytes",
            ));
        }
        let name: Arc<str> = Arc::from(name);
        let (id, rx) = core.register_extension(&name, encoding)?;
        Ok(Self {
            core: Arc::clone(core),
            name,
            id,
            encoding,
            rx,
        })
    }

    /// The registration, for the session that closes it.
    pub(crate) fn registration(&self) -> (Arc<str>, u64) {
        (Arc::clone(&self.name), self.id)
    }

    /// The extension's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn check(&self, message: &[u8]) -> Result<()> {
        if message.len() > MAX_EXTENSION_MESSAGE {
            return Err(Error::InvalidArgument(
                "an extension message must fit one frame (15 MiB)",
            ));
        }
        self.core.with(|_| Ok(()))?;
        let registered = self
            .core
            .extensions()
            .as_ref()
            .is_some_and(|e| e.contains(&self.name, self.id));
        if registered {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    fn queue(&self, to: Option<[u8; 32]>, message: &[u8]) {
        self.core.hub().send(&Signal::Extension(Arc::new(Outgoing {
            discovery_key: self.core.discovery_key,
            name: Arc::clone(&self.name),
            to,
            message: self.encoding.encode(message),
        })));
    }

    /// Sends `message` to every peer that has the core's channel open (hypercore's
    /// `ext.broadcast`). Peers that did not register the name drop it.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] if the registration ended or the core closed,
    /// [`Error::Conflict`] after a conflict, [`Error::InvalidArgument`] for a message above
    /// [`MAX_EXTENSION_MESSAGE`] bytes.
    pub fn broadcast(&self, message: &[u8]) -> Result<()> {
        self.check(message)?;
        self.queue(None, message);
        Ok(())
    }

    /// Sends `message` to the peer with static public key `remote_public_key` (hypercore's
    /// `ext.send(message, peer)`). Returns `false`, sending nothing, when no channel of the
    /// core is open to that peer.
    ///
    /// # Errors
    ///
    /// As [`Extension::broadcast`].
    pub fn send(&self, remote_public_key: &[u8; 32], message: &[u8]) -> Result<bool> {
        self.check(message)?;
        let known = self
            .core
            .peer_info()
            .remotes
            .values()
            .any(|k| k == remote_public_key);
        if known {
            self.queue(Some(*remote_public_key), message);
        }
        Ok(known)
    }

    /// The next message a peer sent under this name: the sender's static public key and the
    /// payload. `None` once the registration ended (dropped, its session or core closed).
    ///
    /// Messages wait in a queue of 256; when it is full, new ones are dropped.
    pub async fn recv(&mut self) -> Option<([u8; 32], Vec<u8>)> {
        self.rx.recv().await
    }

    /// [`Extension::recv`] without waiting: `None` if no message is queued.
    pub fn try_recv(&mut self) -> Option<([u8; 32], Vec<u8>)> {
        self.rx.try_recv().ok()
    }
}

impl Drop for Extension {
    fn drop(&mut self) {
        self.core.unregister_extension(&self.name, self.id);
    }
}
