//! Protomux (spec §8): many channels over one message stream.
//!
//! Every message is `uint channel || uint type || payload`; channel 0 carries the control
//! messages batch (0), open (1), reject (2) and close (3). Each side sends its own `open` for a
//! `(protocol, id)`; a channel is open once both opens were seen. An open from the remote with
//! no local channel waiting is reported as [`MuxEvent::RemoteOpen`]: the layer above accepts it
//! with [`Mux::open`] (same protocol and id) or refuses it with [`Mux::reject`]. Messages the
//! remote sends on such a pending channel are buffered and delivered after the accept.
//!
//! Memory is bounded: the handshake payloads of pending remote opens and the messages buffered
//! for them count against [`MuxConfig::max_pending_bytes`]. protomux pauses the transport above
//! 32 KiB; a sans-IO mux cannot, so exceeding the bound is [`ProtocolError::PendingOverflow`],
//! which fails the whole stream (as every other [`ProtocolError`]). An open on channel id 0 is
//! answered with `reject 0` and otherwise ignored, as protomux does.
//!
//! Outgoing messages never exceed [`MuxConfig::max_message_len`]: a larger message is refused
//! with [`ApiMisuse::MessageTooLarge`], and a corked batch is split so no frame exceeds it.
//!
//! [`Mux`] is sans-IO: feed it decrypted messages with [`Mux::handle_message`], take messages to
//! encrypt from [`Mux::poll_message`] and events from [`Mux::poll_event`].
//!
//! Outgoing messages are [`MessageBuf`]s, encoded with room for their encryption around them,
//! so the secret stream seals each where it is. Buffers handed back with [`Mux::recycle`] once
//! written carry the next large messages and batches (a bounded few are kept).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;

use corestore_keys::compact::Encoder;

use crate::buffer::{MessageBuf, Spares};
use crate::codec::{Reader, uint_len};
use crate::error::{ApiMisuse, DecodeError, ProtocolError};
use crate::stream::MAX_MESSAGE_LEN;

/// A batch is flushed early once it reaches this size (as protomux does).
pub const MAX_BATCH: usize = 8 * 1024 * 1024;

/// Accounting overhead per buffered message of a pending channel (and per pending handshake).
const PENDING_OVERHEAD: usize = 16;

/// Upper bound of what one batch item adds beyond its bytes: a channel switch (`00` + uint id,
/// at most 10 bytes) and the item's length prefix (at most 9 bytes).
const BATCH_ITEM_OVERHEAD: usize = 19;

/// Bytes reserved for a new batch (it grows beyond as needed).
const BATCH_RESERVE: usize = 16 * 1024;

/// The most a new batch reserves up front after a large one ([`BATCH_RESERVE`] at least).
const BATCH_RESERVE_MAX: usize = 1024 * 1024;

/// Upper bound of the batch frame header: `00 00` + uint first channel id.
const BATCH_HEADER: usize = 11;

/// Limits of a [`Mux`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MuxConfig {
    /// The most remote channel ids the peer may have at once.
    pub max_remote_channels: usize,
    /// The most bytes buffered for remote channels not yet accepted or rejected.
    pub max_pending_bytes: usize,
    /// The longest protocol name accepted.
    pub max_protocol_len: usize,
    /// The longest channel id accepted.
    pub max_id_len: usize,
    /// The longest message (one protomux frame) we send; defaults to
    /// [`MAX_MESSAGE_LEN`], what one encrypted frame carries.
    pub max_message_len: usize,
}

impl Default for MuxConfig {
    fn default() -> Self {
        Self {
            max_remote_channels: 65_536,
            max_pending_bytes: 4 * 1024 * 1024,
            max_protocol_len: 256,
            max_id_len: 256,
            max_message_len: MAX_MESSAGE_LEN,
        }
    }
}

/// Our id of a channel (what we send in its messages). Stable until the channel is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(u64);

impl ChannelId {
    /// The numeric id on the wire.
    #[must_use]
    pub fn get(self) -> u64 {
        self.0
    }
}

/// A remote open waiting for [`Mux::open`] or [`Mux::reject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PendingOpen(u64);

/// Something the mux reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum MuxEvent {
    /// The remote opened `(protocol, id)` and no local channel is waiting for it: accept with
    /// [`Mux::open`] or refuse with [`Mux::reject`].
    RemoteOpen {
        /// The pending open.
        pending: PendingOpen,
        /// The protocol name.
        protocol: String,
        /// The channel id (`None` when the remote sent none).
        id: Option<Vec<u8>>,
    },
    /// Both opens were seen.
    Opened {
        /// The channel.
        channel: ChannelId,
        /// The remote's handshake payload (the rest of its open message).
        handshake: Vec<u8>,
    },
    /// A message on an open channel.
    Message {
        /// The channel.
        channel: ChannelId,
        /// The per-channel message type.
        message_type: u64,
        /// The encoded message.
        payload: Vec<u8>,
    },
    /// The channel closed (by the remote, or because the remote rejected our open).
    Closed {
        /// The channel.
        channel: ChannelId,
    },
}

/// A message on a bound channel, borrowed from the message [`Mux::next_incoming`] takes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncomingMessage<'a> {
    /// The channel.
    pub channel: ChannelId,
    /// The per-channel message type.
    pub message_type: u64,
    /// The encoded message.
    pub payload: &'a [u8],
}

/// One decrypted message from the remote, taken apart item by item by [`Mux::next_incoming`].
#[derive(Debug, Clone)]
pub struct Incoming<'a> {
    state: IncomingState<'a>,
}

impl<'a> Incoming<'a> {
    /// Starts on `msg` (an empty message has no items).
    #[must_use]
    pub fn new(msg: &'a [u8]) -> Self {
        Self {
            state: IncomingState::Start(msg),
        }
    }

    /// The next item, whatever its channel: `(remote channel id, message type, payload)`.
    /// A batch is taken apart (a batch inside a batch is skipped, an overlong item clamped to
    /// the end, as protomux does); after an error or the last item, nothing more.
    pub(crate) fn next_item(&mut self) -> Result<Option<(u64, u64, Reader<'a>)>, DecodeError> {
        loop {
            match std::mem::replace(&mut self.state, IncomingState::Done) {
                IncomingState::Done => return Ok(None),
                IncomingState::Start(msg) => {
                    if msg.is_empty() {
                        return Ok(None);
                    }
                    let mut r = Reader::new(msg);
                    let rid = r.uint()?;
                    let ty = r.uint()?;
                    if rid == 0 && ty == 0 {
                        let first = r.uint()?;
                        self.state = IncomingState::Batch { rid: first, r };
                        continue;
                    }
                    return Ok(Some((rid, ty, r)));
                }
                IncomingState::Batch { mut rid, mut r } => {
                    if r.is_empty() {
                        return Ok(None);
                    }
                    let len = r.uint()?;
                    if len == 0 {
                        rid = r.uint()?;
                        self.state = IncomingState::Batch { rid, r };
                        continue;
                    }
                    let len = usize::try_from(len).map_err(|_| DecodeError::UnexpectedEnd)?;
                    // protomux clamps an overlong item to the end of the batch.
                    let item = r.bytes(len.min(r.remaining().len()))?;
                    self.state = IncomingState::Batch { rid, r };
                    let mut ir = Reader::new(item);
                    let ty = ir.uint()?;
                    // A batch inside a batch is ignored, as protomux does.
                    if rid == 0 && ty == 0 {
                        continue;
                    }
                    return Ok(Some((rid, ty, ir)));
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum IncomingState<'a> {
    Start(&'a [u8]),
    /// Inside a batch: the channel of the next item and the unread items.
    Batch {
        rid: u64,
        r: Reader<'a>,
    },
    Done,
}

#[derive(Debug)]
struct Local {
    key: Key,
    remote: Option<u64>,
}

#[derive(Debug)]
enum Remote {
    /// An open not yet paired with a local channel; messages buffered.
    Pending {
        key: Key,
        handshake: Vec<u8>,
        buffered: Vec<(u64, Vec<u8>)>,
    },
    Bound(u64),
}

type Key = (String, Option<Vec<u8>>);

/// The protomux state of one stream.
#[derive(Debug, Default)]
pub struct Mux {
    config: MuxConfig,
    local: Vec<Option<Local>>,
    free: Vec<u64>,
    /// Local ids whose open was sent but not yet answered, per key.
    outgoing: HashMap<Key, u64>,
    /// Every live local channel by key (channels are unique per key).
    local_keys: HashMap<Key, u64>,
    /// Remote ids of pending remote opens by key, oldest first: protomux pairs opens of the
    /// same `(protocol, id)` first come, first served.
    pending_keys: HashMap<Key, VecDeque<u64>>,
    /// Local ids closed before the remote answered: freed on reject or late open.
    closed_unacked: Vec<(u64, Key)>,
    remote: Vec<Option<Remote>>,
    pending_bytes: usize,
    corked: u32,
    /// The corked batch, encoded as it grows: the header `00 00 || uint first channel`, then
    /// `uint len || item` per item, with `00 || uint channel` where the channel changes.
    batch: Vec<u8>,
    /// Items in `batch`.
    batch_items: usize,
    /// The channel of the first and of the last item in `batch`.
    batch_first: u64,
    batch_prev: u64,
    /// `batch`'s size as counted against the limits (bytes plus the per-item bound).
    batch_len: usize,
    /// The size of the last batch sent (at most [`BATCH_RESERVE_MAX`]): the next one reserves
    /// as much up front, so a run of similar batches does not grow (and copy) each one.
    last_batch: usize,
    out: VecDeque<MessageBuf>,
    /// Written buffers handed back by [`Mux::recycle`], for the next batches.
    spares: Spares,
    events: VecDeque<MuxEvent>,
}

impl Mux {
    /// A mux with the given limits.
    #[must_use]
    pub fn new(config: MuxConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Opens (or accepts) the channel `(protocol, id)` with our handshake payload.
    ///
    /// If the remote already opened it, the channel is bound at once and
    /// [`MuxEvent::Opened`] follows, then any messages the remote sent meanwhile.
    pub fn open(
        &mut self,
        protocol: &str,
        id: Option<&[u8]>,
        handshake: &[u8],
    ) -> Result<ChannelId, ApiMisuse> {
        let key: Key = (protocol.to_owned(), id.map(<[u8]>::to_vec));
        if self.local_keys.contains_key(&key) {
            return Err(ApiMisuse::DuplicateChannel);
        }
        let lid = match self.free.last() {
            Some(&i) => i,
            None => self.local.len() as u64 + 1,
        };
        let mut msg = Encoder::new();
        msg.uint(1)
            .uint(lid)
            .string(protocol)
            .optional_buffer(id)
            .raw(handshake);
        let msg = msg.into_vec();
        self.check_len(0, msg.len())?;
        if self.free.pop().is_none() {
            self.local.push(None);
        }
        self.write(0, None, &msg);

        let pending_rid = self.take_oldest_pending(&key);
        self.local_keys.insert(key.clone(), lid);
        set(
            &mut self.local,
            slot(lid),
            Some(Local {
                key: key.clone(),
                remote: None,
            }),
        );
        if !pending_rid.is_some_and(|rid| self.bind(lid, rid)) {
            self.outgoing.insert(key, lid);
        }
        tracing::debug!(channel = lid, protocol, "channel open sent");
        Ok(ChannelId(lid))
    }

    /// Refuses a remote open reported by [`MuxEvent::RemoteOpen`].
    pub fn reject(&mut self, pending: PendingOpen) {
        let rid = pending.0;
        if self.drop_pending(rid) {
            self.control(2, rid);
        }
    }

    /// Whether a remote open still waits for [`Mux::open`] or [`Mux::reject`].
    #[must_use]
    pub fn is_pending(&self, pending: PendingOpen) -> bool {
        matches!(
            self.remote.get(slot(pending.0)),
            Some(Some(Remote::Pending { .. }))
        )
    }

    /// Closes a channel and tells the remote.
    pub fn close(&mut self, channel: ChannelId) -> Result<(), ApiMisuse> {
        let lid = channel.0;
        let local = self.local.get_mut(slot(lid)).and_then(Option::take);
        let Some(local) = local else {
            return Err(ApiMisuse::UnknownChannel);
        };
        self.control(3, lid);
        self.local_keys.remove(&local.key);
        match local.remote {
            Some(rid) => {
                set(&mut self.remote, slot(rid), None);
                self.free.push(lid);
            }
            None => {
                self.outgoing.remove(&local.key);
                self.closed_unacked.push((lid, local.key));
            }
        }
        Ok(())
    }

    /// Sends one message on an open (or opening) channel.
    pub fn send(
        &mut self,
        channel: ChannelId,
        message_type: u64,
        payload: &[u8],
    ) -> Result<(), ApiMisuse> {
        if !matches!(self.local.get(slot(channel.0)), Some(Some(_))) {
            return Err(ApiMisuse::UnknownChannel);
        }
        self.check_len(channel.0, uint_len(message_type) + payload.len())?;
        self.write(channel.0, Some(message_type), payload);
        Ok(())
    }

    /// Sends one message whose payload `encode` writes straight into the corked batch (no
    /// buffer in between); `len` is the payload's exact length. Should `encode` write another
    /// length, the item is taken back and sent from a buffer instead, so the batch stays
    /// well-formed either way.
    pub fn send_with(
        &mut self,
        channel: ChannelId,
        message_type: u64,
        len: usize,
        encode: impl FnOnce(&mut Encoder),
    ) -> Result<(), ApiMisuse> {
        let sent = self.try_send_with(channel, message_type, len, |o| {
            encode(o);
            Ok::<(), Infallible>(())
        })?;
        match sent {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }

    /// [`Mux::send_with`] whose `encode` can fail (say, reading the bytes it writes): then
    /// nothing is sent, what it wrote is taken back, and its error is returned as `Ok(Err(_))`.
    pub fn try_send_with<E>(
        &mut self,
        channel: ChannelId,
        message_type: u64,
        len: usize,
        encode: impl FnOnce(&mut Encoder) -> Result<(), E>,
    ) -> Result<Result<(), E>, ApiMisuse> {
        if !matches!(self.local.get(slot(channel.0)), Some(Some(_))) {
            return Err(ApiMisuse::UnknownChannel);
        }
        let lid = channel.0;
        self.check_len(lid, uint_len(message_type) + len)?;
        if self.corked == 0 {
            let buf = self
                .spares
                .take(uint_len(lid) + uint_len(message_type) + len);
            let mut msg = Encoder::from_vec(buf);
            msg.uint(lid).uint(message_type);
            if let Err(e) = encode(&mut msg) {
                self.spares.put(msg.into_vec());
                return Ok(Err(e));
            }
            self.out
                .push_back(MessageBuf::from_headroom_vec(msg.into_vec()));
            return Ok(Ok(()));
        }
        let item_len = uint_len(message_type) + len;
        self.make_room(item_len);
        let before = self.batch.len();
        let (items, prev) = (self.batch_items, self.batch_prev);
        let mut enc = self.begin_item(lid, item_len);
        enc.uint(message_type);
        let start = enc.len();
        let encoded = encode(&mut enc);
        let wrote = enc.len() - start;
        self.batch = enc.into_vec();
        if encoded.is_ok() && wrote == len {
            self.end_item(lid, item_len);
            return Ok(Ok(()));
        }
        // Failed, or not the announced length: take the item back (and send what was encoded).
        let payload = match encoded {
            Ok(()) => self.batch.get(start..).unwrap_or_default().to_vec(),
            Err(_) => Vec::new(),
        };
        self.batch.truncate(before);
        (self.batch_items, self.batch_prev) = (items, prev);
        if let Err(e) = encoded {
            return Ok(Err(e));
        }
        self.check_len(lid, uint_len(message_type) + payload.len())?;
        self.write(lid, Some(message_type), &payload);
        Ok(Ok(()))
    }

    fn check_len(&self, lid: u64, item_len: usize) -> Result<(), ApiMisuse> {
        let got = item_len + uint_len(lid);
        if got > self.config.max_message_len {
            return Err(ApiMisuse::MessageTooLarge {
                limit: self.config.max_message_len,
                got,
            });
        }
        Ok(())
    }

    /// Starts collecting outgoing messages into one batch (nestable).
    pub fn cork(&mut self) {
        self.corked += 1;
    }

    /// Ends a [`Mux::cork`]; the outermost one sends the batch.
    pub fn uncork(&mut self) {
        self.corked = self.corked.saturating_sub(1);
        if self.corked == 0 {
            self.flush_batch();
        }
    }

    /// Whether `channel` is open in both directions.
    #[must_use]
    pub fn is_open(&self, channel: ChannelId) -> bool {
        matches!(
            self.local.get(slot(channel.0)),
            Some(Some(Local {
                remote: Some(_),
                ..
            }))
        )
    }

    /// Whether a [`Mux::cork`] is in effect.
    #[must_use]
    pub fn is_corked(&self) -> bool {
        self.corked > 0
    }

    /// The next message to hand to the secret stream.
    pub fn poll_message(&mut self) -> Option<MessageBuf> {
        self.out.pop_front()
    }

    /// Hands back the buffer of a message once it is written (for example a frame from
    /// [`SecretStream::poll_transmit`](crate::stream::SecretStream::poll_transmit)): the next
    /// large message or batch is encoded into it instead of fresh memory. A bounded few are
    /// kept; the rest are dropped.
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.spares.put(buf);
    }

    /// Drops the buffers kept by [`Mux::recycle`] (the stream went quiet).
    pub fn release_spares(&mut self) {
        self.spares.clear();
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MuxEvent> {
        self.events.pop_front()
    }

    /// Handles one decrypted message from the remote. Empty messages are ignored.
    ///
    /// Messages on bound channels are copied into [`MuxEvent::Message`]; a caller that can
    /// use them while `msg` is borrowed avoids the copy with [`Mux::next_incoming`].
    pub fn handle_message(&mut self, msg: &[u8]) -> Result<(), ProtocolError> {
        let mut incoming = Incoming::new(msg);
        while let Some(m) = self.next_incoming(&mut incoming)? {
            self.events.push_back(MuxEvent::Message {
                channel: m.channel,
                message_type: m.message_type,
                payload: m.payload.to_vec(),
            });
        }
        Ok(())
    }

    /// Takes the next item of a message apart (a batch holds several). Control items and
    /// messages for pending channels are handled as [`Mux::handle_message`] does, their events
    /// queued for [`Mux::poll_event`]; a message on a bound channel is returned borrowed from
    /// the message, after the events of the items before it. `Ok(None)`: the message is done.
    ///
    /// Callers that want the events in order drain [`Mux::poll_event`] before using each
    /// returned message. After an error the rest of the message is not handled.
    pub fn next_incoming<'a>(
        &mut self,
        incoming: &mut Incoming<'a>,
    ) -> Result<Option<IncomingMessage<'a>>, ProtocolError> {
        while let Some((rid, ty, r)) = incoming.next_item()? {
            if let Some(m) = self.dispatch(rid, ty, r)? {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// Handles one item (not a batch): control messages and messages for pending channels
    /// here; a message on a bound channel is returned.
    fn dispatch<'a>(
        &mut self,
        rid: u64,
        ty: u64,
        mut r: Reader<'a>,
    ) -> Result<Option<IncomingMessage<'a>>, ProtocolError> {
        if rid == 0 {
            match ty {
                1 => self.on_open(&mut r)?,
                2 => self.on_reject(r.uint()?),
                3 => self.on_close(r.uint()?),
                _ => {}
            }
            return Ok(None);
        }
        let payload = r.rest();
        match self.remote.get_mut(slot(rid)) {
            Some(Some(Remote::Bound(lid))) => {
                return Ok(Some(IncomingMessage {
                    channel: ChannelId(*lid),
                    message_type: ty,
                    payload,
                }));
            }
            Some(Some(Remote::Pending { buffered, .. })) => {
                let cost = payload.len() + PENDING_OVERHEAD;
                if self.pending_bytes + cost > self.config.max_pending_bytes {
                    // The stream fails; release what the channel holds meanwhile.
                    self.drop_pending(rid);
                    return Err(ProtocolError::PendingOverflow(rid));
                }
                self.pending_bytes += cost;
                buffered.push((ty, payload.to_vec()));
            }
            _ => {} // closed or unknown channel: dropped
        }
        Ok(None)
    }

    fn on_open(&mut self, r: &mut Reader<'_>) -> Result<(), ProtocolError> {
        let rid = r.uint()?;
        let protocol = r.string(self.config.max_protocol_len)?.to_owned();
        let id = r.buffer(self.config.max_id_len)?;
        let id = (!id.is_empty()).then(|| id.to_vec());
        let handshake = r.rest().to_vec();
        if rid == 0 {
            self.control(2, 0);
            return Ok(());
        }
        let i = slot(rid);
        if i == self.remote.len() && self.remote.len() < self.config.max_remote_channels {
            self.remote.push(None);
        }
        if !matches!(self.remote.get(i), Some(None)) {
            return Err(ProtocolError::InvalidOpen(rid));
        }
        let key: Key = (protocol, id);
        // protomux pairs opens FIFO per (protocol, id): a late open answers the oldest open we
        // sent, so one for a channel we closed before it was answered is consumed (freeing its
        // id) before a newer open of the same key can bind.
        if let Some(pos) = self.closed_unacked.iter().position(|(_, k)| *k == key) {
            let (lid, _) = self.closed_unacked.remove(pos);
            self.free.push(lid);
            return Ok(());
        }
        if let Some(lid) = self.outgoing.remove(&key) {
            set(&mut self.remote, i, Some(Remote::Bound(lid)));
            if let Some(Some(l)) = self.local.get_mut(slot(lid)) {
                l.remote = Some(rid);
            }
            self.events.push_back(MuxEvent::Opened {
                channel: ChannelId(lid),
                handshake,
            });
            return Ok(());
        }
        // Channels are unique per (protocol, id): a second one is refused.
        if self.local_keys.contains_key(&key) {
            self.control(2, rid);
            return Ok(());
        }
        let cost = handshake.len() + PENDING_OVERHEAD;
        if self.pending_bytes + cost > self.config.max_pending_bytes {
            return Err(ProtocolError::PendingOverflow(rid));
        }
        self.pending_bytes += cost;
        let (protocol, id) = key.clone();
        self.pending_keys
            .entry(key.clone())
            .or_default()
            .push_back(rid);
        set(
            &mut self.remote,
            i,
            Some(Remote::Pending {
                key,
                handshake,
                buffered: Vec::new(),
            }),
        );
        self.events.push_back(MuxEvent::RemoteOpen {
            pending: PendingOpen(rid),
            protocol,
            id,
        });
        Ok(())
    }

    fn on_reject(&mut self, lid: u64) {
        if let Some(pos) = self.closed_unacked.iter().position(|(l, _)| *l == lid) {
            self.closed_unacked.swap_remove(pos);
            self.free.push(lid);
            return;
        }
        if let Some(Some(l)) = self.local.get(slot(lid))
            && l.remote.is_none()
        {
            let key = l.key.clone();
            self.outgoing.remove(&key);
            self.local_keys.remove(&key);
            set(&mut self.local, slot(lid), None);
            self.free.push(lid);
            self.events.push_back(MuxEvent::Closed {
                channel: ChannelId(lid),
            });
        }
    }

    fn on_close(&mut self, rid: u64) {
        match self.remote.get_mut(slot(rid)).map(Option::take) {
            Some(Some(Remote::Bound(lid))) => {
                if let Some(Some(l)) = self.local.get_mut(slot(lid)).map(Option::take) {
                    self.local_keys.remove(&l.key);
                }
                self.free.push(lid);
                // protomux does not answer a remote close with a close.
                self.events.push_back(MuxEvent::Closed {
                    channel: ChannelId(lid),
                });
            }
            Some(Some(Remote::Pending {
                buffered,
                key,
                handshake,
            })) => {
                self.pending_bytes -= pending_cost(&handshake, &buffered);
                self.forget_pending(&key, rid);
            }
            _ => {}
        }
    }

    /// Binds local `lid` to the pending remote open `rid`; false if `rid` is not pending.
    fn bind(&mut self, lid: u64, rid: u64) -> bool {
        let Some(Some(Remote::Pending {
            handshake,
            buffered,
            ..
        })) = self.remote.get_mut(slot(rid)).map(Option::take)
        else {
            return false;
        };
        self.pending_bytes -= pending_cost(&handshake, &buffered);
        set(&mut self.remote, slot(rid), Some(Remote::Bound(lid)));
        if let Some(Some(l)) = self.local.get_mut(slot(lid)) {
            l.remote = Some(rid);
        }
        let channel = ChannelId(lid);
        self.events
            .push_back(MuxEvent::Opened { channel, handshake });
        for (message_type, payload) in buffered {
            self.events.push_back(MuxEvent::Message {
                channel,
                message_type,
                payload,
            });
        }
        true
    }

    /// Forgets the pending remote open `rid` without answering it; `false` if `rid` is not a
    /// pending remote open.
    fn drop_pending(&mut self, rid: u64) -> bool {
        if let Some(r @ Some(Remote::Pending { .. })) = self.remote.get_mut(slot(rid))
            && let Some(Remote::Pending {
                buffered,
                key,
                handshake,
            }) = r.take()
        {
            self.pending_bytes -= pending_cost(&handshake, &buffered);
            self.forget_pending(&key, rid);
            return true;
        }
        false
    }

    /// Unregisters the oldest pending remote open of `key` and returns its remote id.
    fn take_oldest_pending(&mut self, key: &Key) -> Option<u64> {
        let queue = self.pending_keys.get_mut(key)?;
        let rid = queue.pop_front();
        if queue.is_empty() {
            self.pending_keys.remove(key);
        }
        rid
    }

    /// Unregisters the pending remote open `rid` of `key`, leaving other opens of the key.
    fn forget_pending(&mut self, key: &Key, rid: u64) {
        if let Some(queue) = self.pending_keys.get_mut(key) {
            queue.retain(|&r| r != rid);
            if queue.is_empty() {
                self.pending_keys.remove(key);
            }
        }
    }

    /// Queues the control message `type || uint id` (reject 2, close 3) on channel 0.
    fn control(&mut self, message_type: u8, id: u64) {
        let mut msg = Encoder::with_capacity(10);
        msg.u8(message_type).uint(id);
        self.write(0, None, msg.as_bytes());
    }

    /// Queues the item `[uint prefix] || payload` (a message's type and payload, or a whole
    /// control message) on local channel `lid` (0 for control messages).
    fn write(&mut self, lid: u64, prefix: Option<u64>, payload: &[u8]) {
        let item_len = prefix.map_or(0, uint_len) + payload.len();
        if self.corked == 0 {
            let mut msg = Encoder::from_vec(self.spares.take(uint_len(lid) + item_len));
            msg.uint(lid);
            if let Some(p) = prefix {
                msg.uint(p);
            }
            msg.raw(payload);
            self.out
                .push_back(MessageBuf::from_headroom_vec(msg.into_vec()));
            return;
        }
        self.make_room(item_len);
        let mut enc = self.begin_item(lid, item_len);
        if let Some(p) = prefix {
            enc.uint(p);
        }
        enc.raw(payload);
        self.batch = enc.into_vec();
        self.end_item(lid, item_len);
    }

    /// Flushes the corked batch early at `MAX_BATCH` (as protomux does), and before an item of
    /// `item_len` bytes would make it outgrow one message.
    fn make_room(&mut self, item_len: usize) {
        let cost = item_len + BATCH_ITEM_OVERHEAD;
        if self.batch_items > 0
            && (self.batch_len >= MAX_BATCH
                || BATCH_HEADER + self.batch_len + cost > self.config.max_message_len)
        {
            self.flush_batch();
        }
    }

    /// The batch with the framing of the next item written (batch header or channel switch,
    /// then the item's length); the item's bytes follow, then [`Mux::end_item`].
    ///
    /// The batch is a [`MessageBuf`] in the making (headroom first), and keeps room for its
    /// MAC behind every item.
    fn begin_item(&mut self, lid: u64, item_len: usize) -> Encoder {
        let cost = item_len + BATCH_ITEM_OVERHEAD;
        let mut enc;
        if self.batch_items == 0 {
            // A buffer left by an item taken back goes back to the spares.
            self.spares.put(std::mem::take(&mut self.batch));
            // Channel 0, type 0 (batch), then the first channel id.
            self.batch_first = lid;
            let reserve = BATCH_RESERVE.max(self.last_batch).max(BATCH_HEADER + cost);
            enc = Encoder::from_vec(self.spares.take(reserve));
            enc.uint(0).uint(0).uint(lid);
        } else {
            let mut batch = std::mem::take(&mut self.batch);
            batch.reserve(cost + MessageBuf::TAILROOM);
            enc = Encoder::from_vec(batch);
            if lid != self.batch_prev {
                enc.uint(0).uint(lid);
            }
        }
        enc.uint(item_len as u64);
        enc
    }

    /// Counts an item written after [`Mux::begin_item`].
    fn end_item(&mut self, lid: u64, item_len: usize) {
        self.batch_prev = lid;
        self.batch_items += 1;
        self.batch_len += item_len + BATCH_ITEM_OVERHEAD;
    }

    /// Sends the corked batch as one message.
    fn flush_batch(&mut self) {
        let items = std::mem::take(&mut self.batch_items);
        self.batch_len = 0;
        let batch = std::mem::take(&mut self.batch);
        if items == 0 {
            return;
        }
        let len = batch.len().saturating_sub(MessageBuf::HEADROOM);
        // An eighth more, for a next batch a little larger than this one.
        self.last_batch = (len + len / 8).min(BATCH_RESERVE_MAX);
        let first = self.batch_first;
        if items == 1 {
            let mut r = Reader::new(batch.get(MessageBuf::HEADROOM..).unwrap_or_default());
            let item = (|| {
                for _ in 0..4 {
                    r.uint()?;
                }
                Ok::<_, DecodeError>(r.rest())
            })()
            .unwrap_or_default();
            if BATCH_HEADER + item.len() + BATCH_ITEM_OVERHEAD > self.config.max_message_len {
                // A single item too large to wrap in a batch frame goes out on its own (it
                // fits: `check_len`); receivers accept batches and single frames
                // interchangeably.
                let mut msg = Encoder::from_vec(self.spares.take(item.len() + 10));
                msg.uint(first).raw(item);
                self.out
                    .push_back(MessageBuf::from_headroom_vec(msg.into_vec()));
                self.spares.put(batch);
                return;
            }
        }
        self.out.push_back(MessageBuf::from_headroom_vec(batch));
    }
}

fn set<T>(table: &mut [Option<T>], i: usize, v: Option<T>) {
    if let Some(s) = table.get_mut(i) {
        *s = v;
    }
}

/// What a pending remote open counts against [`MuxConfig::max_pending_bytes`].
fn pending_cost(handshake: &[u8], buffered: &[(u64, Vec<u8>)]) -> usize {
    handshake.len()
        + PENDING_OVERHEAD
        + buffered
            .iter()
            .map(|(_, b)| b.len() + PENDING_OVERHEAD)
            .sum::<usize>()
}

fn slot(id: u64) -> usize {
    usize::try_from(id).unwrap_or(usize::MAX).wrapping_sub(1)
}

#[cfg(test)]
mod tests;
