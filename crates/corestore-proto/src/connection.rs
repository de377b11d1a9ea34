//! [`Connection`]: a [`SecretStream`] with a replication [`Peer`] on top: the whole protocol
//! stack of one transport connection, bytes in and bytes out.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::error::{ApiMisuse, ProtocolError};
use crate::noise::KeyPair;
use crate::replicate::{Event, Peer, PeerConfig, Session};
use crate::stream::{
    BlockLeaf, EstablishedKeys, MAX_MESSAGE_LEN, Plaintext, Randomness, Receiver, SecretStream,
    StreamConfig, StreamEvent, Transmit,
};
use crate::timer::Timestamp;

/// Something a [`Connection`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum ConnectionEvent {
    /// The secret stream is open; [`Connection::peer`] is available from now on.
    HandshakeComplete {
        /// The remote's static Ed25519 key.
        remote_public_key: [u8; 32],
        /// The handshake hash.
        handshake_hash: [u8; 64],
    },
    /// A replication event.
    Replication(Event),
    /// The connection failed: close the transport.
    Closed(ProtocolError),
}

/// The protocol stack of one connection.
#[derive(Debug)]
pub struct Connection {
    pub(crate) stream: SecretStream,
    peer: Option<Peer>,
    peer_config: PeerConfig,
    events: VecDeque<ConnectionEvent>,
    /// The failure reported as [`ConnectionEvent::Closed`] (once); nothing is sent after it.
    failed: Option<ProtocolError>,
}

impl Connection {
    /// A connection that runs the Noise handshake.
    #[must_use]
    pub fn new(
        initiator: bool,
        keypair: KeyPair,
        random: &Randomness,
        stream_config: StreamConfig,
        peer_config: PeerConfig,
    ) -> Self {
        let stream = SecretStream::new(initiator, keypair, random, stream_config);
        Self {
            stream,
            peer: None,
            peer_config: clamp(peer_config),
            events: VecDeque::new(),
            failed: None,
        }
    }

    /// A connection whose keys were established elsewhere (spec §7.5).
    pub fn with_keys(
        initiator: bool,
        keys: &EstablishedKeys,
        header: [u8; 24],
        stream_config: StreamConfig,
        peer_config: PeerConfig,
    ) -> Result<Self, ApiMisuse> {
        let stream = SecretStream::with_keys(initiator, keys, header, stream_config)?;
        Ok(Self {
            stream,
            peer: None,
            peer_config: clamp(peer_config),
            events: VecDeque::new(),
            failed: None,
        })
    }

    /// The replication peer, once the handshake completed.
    pub fn peer(&mut self) -> Option<&mut Peer> {
        self.peer.as_mut()
    }

    /// Feeds bytes from the transport. After a failure every call returns the same error and
    /// nothing more is read.
    pub fn handle_bytes(&mut self, now: Timestamp, input: &[u8]) -> Result<(), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.stream.handle_bytes(now, input);
        self.process(now)?;
        r
    }

    /// Records the failure and reports it once as [`ConnectionEvent::Closed`].
    fn close(&mut self, e: ProtocolError) {
        if self.failed.is_none() {
            self.failed = Some(e.clone());
            self.events.push_back(ConnectionEvent::Closed(e));
        }
    }

    fn process(&mut self, now: Timestamp) -> Result<(), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        while let Some(e) = self.stream.poll_event() {
            match e {
                StreamEvent::HandshakeComplete {
                    remote_public_key,
                    handshake_hash,
                } => {
                    let session = Session {
                        initiator: self.stream.is_initiator(),
                        handshake_hash,
                        remote_public_key,
                    };
                    self.peer = Some(Peer::new(session, self.peer_config.clone()));
                    self.events.push_back(ConnectionEvent::HandshakeComplete {
                        remote_public_key,
                        handshake_hash,
                    });
                }
                StreamEvent::Message(m) => {
                    if let Some(buf) = self.deliver(now, m)? {
                        self.stream.recycle(buf.into());
                    }
                }
                StreamEvent::Closed(e) => {
                    self.close(e.clone());
                    return Err(e);
                }
            }
        }
        self.stream.release_spare();
        Ok(())
    }

    /// Hands one decrypted message to the peer; returns its buffer when nothing decoded from
    /// it holds on to it (for reuse).
    fn deliver(
        &mut self,
        now: Timestamp,
        mut m: Plaintext,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        let Some(p) = &mut self.peer else {
            return Ok(None);
        };
        let leaves = m.take_block_leaves();
        // Block values of `data` messages are slices of the frame, not copies.
        let m = m.into_shared();
        let before = self.events.len();
        let r = p.handle_shared(now, &m);
        self.drain_peer();
        if !leaves.is_empty() {
            self.attach_leaves(before, &m, &leaves);
        }
        if let Err(e) = r {
            self.close(e.clone());
            return Err(e);
        }
        Ok(m.try_into_mut().ok().map(|mut buf| {
            buf.clear();
            Vec::from(buf)
        }))
    }

    /// Gives the `data` events from `events[before..]` whose block value is a slice of `m`
    /// the leaf hash the receiver computed for exactly those bytes, if any.
    fn attach_leaves(&mut self, before: usize, m: &Bytes, leaves: &[BlockLeaf]) {
        let base = m.as_ptr() as usize;
        for e in self.events.iter_mut().skip(before) {
            let ConnectionEvent::Replication(
                Event::Data { data, leaf, .. } | Event::Unsolicited { data, leaf, .. },
            ) = e
            else {
                continue;
            };
            let Some(block) = &data.block else {
                continue;
            };
            // A value decoded from `m` lies inside it; one copied out of it (buffered for a
            // channel not yet open) does not, and gets no hash.
            let Some(offset) = (block.value.as_ptr() as usize).checked_sub(base) else {
                continue;
            };
            if offset
                .checked_add(block.value.len())
                .is_none_or(|end| end > m.len())
            {
                continue;
            }
            if let Ok(i) = leaves.binary_search_by_key(&offset, |l| l.offset)
                && leaves[i].len == block.value.len()
            {
                *leaf = Some(leaves[i].hash);
            }
        }
    }

    /// Splits off the receiving half of the open secret stream
    /// ([`SecretStream::split_receiver`]), so that framing and decryption can run apart from
    /// the rest of the connection (on another thread): the transport's bytes go to the
    /// [`Receiver`], and the messages it returns come back through
    /// [`Connection::handle_plaintext`], in order. Call it once
    /// [`ConnectionEvent::HandshakeComplete`] was reported.
    pub fn split_receiver(&mut self) -> Result<Receiver, ApiMisuse> {
        if self.failed.is_some() {
            return Err(ApiMisuse::Closed);
        }
        self.stream.split_receiver()
    }

    /// Feeds one message from the split-off [`Receiver`]. A message of the receiver returns
    /// its buffer to the receiver's [`FramePool`](crate::buffer::FramePool) by itself once
    /// nothing decoded from it (block values are slices of it) is held; for any other
    /// [`Plaintext`] the buffer is returned here when it can be reused at once. After a
    /// failure every call returns the same error.
    pub fn handle_plaintext(
        &mut self,
        now: Timestamp,
        message: Plaintext,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.deliver(now, message)
    }

    /// Fails the connection with an error of the split-off [`Receiver`] (reported as
    /// [`ConnectionEvent::Closed`]; nothing is sent from now on).
    pub fn handle_receive_error(&mut self, e: ProtocolError) {
        let e = self.stream.fail(e);
        self.close(e);
    }

    fn drain_peer(&mut self) {
        if let Some(p) = &mut self.peer {
            while let Some(e) = p.poll_event() {
                // A failure is reported once, as `Closed`.
                if !matches!(e, Event::Failed(_)) {
                    self.events.push_back(ConnectionEvent::Replication(e));
                }
            }
        }
    }

    /// Appends the next bytes to write to the transport to `out`; call until it returns `None`.
    /// After a failure nothing is produced (no keep-alives, no queued messages): the driver
    /// closes the transport.
    ///
    /// As [`SecretStream::poll_transmit`]: when `out` is empty, the buffer a message was
    /// encoded and encrypted in becomes `out` (a driver that passes an empty `Vec` each time
    /// writes every large message from the buffer the mux built it in, and should hand the
    /// buffer back with [`Connection::recycle`] once written); small frames are gathered.
    pub fn poll_transmit(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<Transmit> {
        if self.failed.is_some() {
            return None;
        }
        // The peer's messages are encrypted in their own buffers, behind what the stream holds
        // (handshake, header, keep-alive).
        if let Some(p) = &mut self.peer {
            while let Some(m) = p.poll_message() {
                // The mux refuses messages above `MAX_MESSAGE_LEN` when they are issued
                // (`ApiMisuse::MessageTooLarge` from the command), so the stream accepts all of
                // them while it is open.
                if let Err(e) = self.stream.send_buf(m) {
                    tracing::debug!(error = %e, "message not sent");
                }
            }
        }
        self.stream.poll_transmit(now, out)
    }

    /// Hands back a buffer from [`Connection::poll_transmit`] once it is written: the peer
    /// encodes its next large messages into it instead of fresh memory (a bounded few are
    /// kept, the rest dropped).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        if let Some(p) = &mut self.peer {
            p.recycle(buf);
        }
    }

    /// The next time [`Connection::handle_timeout`] must be called (`None` after a failure).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.failed.is_some() {
            return None;
        }
        let p = self.peer.as_ref().and_then(Peer::poll_timeout);
        match (self.stream.poll_timeout(), p) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles expired timers.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.failed.is_some() {
            return;
        }
        let quiet = !self.stream.has_transmit();
        self.stream.handle_timeout(now);
        if let Some(p) = &mut self.peer {
            // A keep-alive is due: nothing was sent for a while, so the buffers kept for
            // the next large messages go.
            if quiet && self.stream.has_transmit() {
                p.release_spares();
            }
            p.handle_timeout(now);
        }
        let _ = self.process(now);
        self.drain_peer();
    }

    /// The next event. Call after every `handle_*` and after commands on [`Connection::peer`].
    ///
    /// A [`Event::RemoteOpen`] answered meanwhile (for example by an `open_core` issued on
    /// [`ConnectionEvent::HandshakeComplete`]) is skipped.
    pub fn poll_event(&mut self) -> Option<ConnectionEvent> {
        self.drain_peer();
        loop {
            let e = self.events.pop_front()?;
            if let ConnectionEvent::Replication(Event::RemoteOpen { pending, .. }) = &e
                && self.peer.as_ref().is_some_and(|p| !p.is_pending(*pending))
            {
                continue;
            }
            return Some(e);
        }
    }
}

/// Mux messages must fit one encrypted frame.
fn clamp(mut config: PeerConfig) -> PeerConfig {
    config.mux.max_message_len = config.mux.max_message_len.min(MAX_MESSAGE_LEN);
    config
}
