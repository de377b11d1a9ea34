//! [`SecretStream`]: the sans-IO `@hyperswarm/secret-stream` (spec §7): u24 frames, the Noise
//! XX handshake (or pre-established keys, §7.5), the stream-id/header exchange, encrypted
//! messages and keep-alives.
//!
//! Bytes from the transport go in through [`SecretStream::handle_bytes`]; bytes for the
//! transport come out of [`SecretStream::poll_transmit`]; decrypted messages come out of
//! [`SecretStream::poll_event`] as [`StreamEvent::Message`].

use std::collections::VecDeque;
use std::ops::Range;

use bytes::Bytes;
use std::time::Duration;

use corestore_keys::hash::Hash;

use crate::buffer::{FramePool, MessageBuf};
use crate::error::{ApiMisuse, ProtocolError};
use crate::frame::{FrameDecoder, MAX_FRAME_LEN, encode_frame};
use crate::mux::Incoming;
use crate::noise::{HandshakeResult, KeyPair, NoiseXx, validate_public_key};
use crate::secretstream::{ABYTES, Decryptor, Encryptor, HEADER_LEN, ID_HEADER_LEN, stream_id};
use crate::timer::{Timer, TimerTable, Timestamp};
use crate::wire;

/// The largest plaintext message (one protomux frame) that fits one encrypted frame.
pub const MAX_MESSAGE_LEN: usize = MAX_FRAME_LEN - ABYTES;

/// The longest Noise handshake message accepted (the Noise protocol's 65,535-byte message
/// limit); a longer handshake frame fails the stream.
pub const MAX_HANDSHAKE_MESSAGE_LEN: usize = 65_535;

/// Frames are gathered into one buffer by [`SecretStream::poll_transmit`] while it stays within
/// this many bytes; a frame that would make it larger goes out in a buffer of its own (moved,
/// not copied).
pub const GATHER_LEN: usize = 64 * 1024;

/// The keep-alive interval hypercore sets on its streams.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Limits and timers of a [`SecretStream`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StreamConfig {
    /// The largest frame body accepted from the peer (bounds memory per peer).
    pub max_frame: usize,
    /// Send an empty message when nothing was written for this long (`None`: never).
    pub keep_alive: Option<Duration>,
    /// Fail the stream when the handshake and header exchange take longer (`None`: never).
    pub handshake_timeout: Option<Duration>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            max_frame: MAX_FRAME_LEN,
            keep_alive: Some(DEFAULT_KEEP_ALIVE),
            handshake_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// Caller-supplied randomness for one stream: the crate has no RNG of its own.
#[derive(Clone)]
pub struct Randomness {
    /// Seed of the ephemeral Noise key pair (fresh random bytes for every stream).
    pub ephemeral_seed: [u8; 32],
    /// The secretstream header announced to the peer (fresh random bytes for every stream).
    pub header: [u8; HEADER_LEN],
}

impl std::fmt::Debug for Randomness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Randomness").finish_non_exhaustive()
    }
}

/// Keys from a handshake done elsewhere (spec §7.5: hyperdht's Noise IK).
#[derive(Clone)]
pub struct EstablishedKeys {
    /// Key for sending.
    pub tx: [u8; 32],
    /// Key for receiving.
    pub rx: [u8; 32],
    /// The 64-byte handshake hash (binds stream ids and capabilities).
    pub handshake_hash: [u8; 64],
    /// The peer's static Ed25519 key.
    pub remote_public_key: [u8; 32],
}

impl std::fmt::Debug for EstablishedKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstablishedKeys").finish_non_exhaustive()
    }
}

/// Something the stream reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum StreamEvent {
    /// Both headers were exchanged: messages flow in both directions.
    HandshakeComplete {
        /// The peer's static Ed25519 key.
        remote_public_key: [u8; 32],
        /// The handshake hash, input of replication capabilities.
        handshake_hash: [u8; 64],
    },
    /// One decrypted, non-empty message (one protomux frame).
    Message(Plaintext),
    /// The stream failed; nothing more will be read or written.
    Closed(ProtocolError),
}

/// A decrypted message, left where it was decrypted: the frame body it arrived in (tag byte and
/// MAC included) and the plaintext's place in it. Dereferences to the plaintext; hand the
/// buffer back with [`SecretStream::recycle`] once the message is handled.
#[derive(Clone)]
pub struct Plaintext {
    buf: Vec<u8>,
    range: Range<usize>,
    /// Where the buffer goes back once nothing holds it (messages of a split-off [`Receiver`]).
    pool: Option<FramePool>,
    /// The leaf hashes of the block values of the `data` messages in it, when the receiver
    /// computed them ([`Receiver::set_hash_blocks`]), in the order of their offsets.
    leaves: Vec<BlockLeaf>,
}

/// The leaf hash of one block value in a [`Plaintext`], computed by the [`Receiver`] that
/// decrypted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockLeaf {
    /// Where the value starts in the plaintext.
    pub offset: usize,
    /// The value's length.
    pub len: usize,
    /// `corestore_keys::hash::leaf` of the value.
    pub hash: Hash,
}

impl Plaintext {
    /// The plaintext bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        self.buf.get(self.range.clone()).unwrap_or_default()
    }

    /// The whole frame buffer the message was decrypted in, for reuse.
    #[must_use]
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The plaintext as shared bytes (no copy): values decoded from it can point into it
    /// ([`Message::decode_shared`](crate::wire::Message::decode_shared)). A message of a
    /// split-off [`Receiver`] returns its buffer to the receiver's [`FramePool`] once the last
    /// of these bytes is dropped; otherwise, once nothing decoded from it is held,
    /// `Bytes::try_into_mut` gives the buffer back for reuse.
    #[must_use]
    pub fn into_shared(self) -> Bytes {
        match self.pool {
            Some(pool) => pool.share(self.buf, self.range),
            None => Bytes::from(self.buf).slice(self.range),
        }
    }
}

impl Plaintext {
    /// The message, with its buffer going back to `pool` once handled.
    fn pooled(mut self, pool: &FramePool) -> Self {
        self.pool = Some(pool.clone());
        self
    }

    /// The leaf hashes of the block values of the `data` messages in this message, when the
    /// [`Receiver`] that decrypted it computed them (see [`Receiver::set_hash_blocks`]); in
    /// the order of their offsets.
    #[must_use]
    pub fn block_leaves(&self) -> &[BlockLeaf] {
        &self.leaves
    }

    /// Takes the leaf hashes out (see [`Plaintext::block_leaves`]).
    pub(crate) fn take_block_leaves(&mut self) -> Vec<BlockLeaf> {
        std::mem::take(&mut self.leaves)
    }
}

impl From<Vec<u8>> for Plaintext {
    /// A message that is the whole buffer.
    fn from(buf: Vec<u8>) -> Self {
        let range = 0..buf.len();
        Self {
            buf,
            range,
            pool: None,
            leaves: Vec::new(),
        }
    }
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl Eq for Plaintext {}

impl PartialEq for Plaintext {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Plaintext").field(&self.as_slice()).finish()
    }
}

/// Bytes appended by [`SecretStream::poll_transmit`] (or [`Connection::poll_transmit`](crate::Connection::poll_transmit)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Transmit {
    /// How many bytes were appended.
    pub len: usize,
}

enum Phase {
    Noise(Box<NoiseXx>),
    /// Handshake done; waiting for the remote's stream-id/header frame.
    AwaitHeader(Box<HandshakeResult>),
    Open(Box<HandshakeResult>),
    Failed(ProtocolError),
}

/// The sans-IO secret stream of one connection.
pub struct SecretStream {
    initiator: bool,
    config: StreamConfig,
    phase: Phase,
    decoder: FrameDecoder,
    header: [u8; HEADER_LEN],
    encryptor: Option<Encryptor>,
    decryptor: Option<Decryptor>,
    /// Messages sent before our header went out.
    queued: VecDeque<MessageBuf>,
    /// Whole frames for the transport, each in its own buffer.
    out: VecDeque<Vec<u8>>,
    events: VecDeque<StreamEvent>,
    timers: TimerTable,
    started: Option<Timestamp>,
}

impl std::fmt::Debug for SecretStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStream")
            .field("initiator", &self.initiator)
            .field("open", &self.is_open())
            .finish_non_exhaustive()
    }
}

impl SecretStream {
    /// A stream that runs the Noise XX handshake with `keypair` as its static key.
    #[must_use]
    pub fn new(
        initiator: bool,
        keypair: KeyPair,
        random: &Randomness,
        config: StreamConfig,
    ) -> Self {
        let noise = NoiseXx::new(initiator, keypair, &random.ephemeral_seed);
        let mut s = Self::with_phase(
            initiator,
            Phase::Noise(Box::new(noise)),
            random.header,
            config,
        );
        s.advance_noise(None);
        s
    }

    /// A stream over a connection whose keys were established elsewhere (§7.5): it starts at
    /// the header exchange.
    pub fn with_keys(
        initiator: bool,
        keys: &EstablishedKeys,
        header: [u8; HEADER_LEN],
        config: StreamConfig,
    ) -> Result<Self, ApiMisuse> {
        validate_public_key(&keys.remote_public_key)?;
        let hs = HandshakeResult {
            tx: keys.tx,
            rx: keys.rx,
            handshake_hash: keys.handshake_hash,
            remote_public_key: keys.remote_public_key,
        };
        let placeholder = Phase::Failed(ProtocolError::Handshake("not started"));
        let mut s = Self::with_phase(initiator, placeholder, header, config);
        s.finish_handshake(hs);
        Ok(s)
    }

    fn with_phase(
        initiator: bool,
        phase: Phase,
        header: [u8; HEADER_LEN],
        config: StreamConfig,
    ) -> Self {
        Self {
            initiator,
            decoder: FrameDecoder::new(config.max_frame),
            config,
            phase,
            header,
            encryptor: None,
            decryptor: None,
            queued: VecDeque::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            timers: TimerTable::default(),
            started: None,
        }
    }

    /// Whether this side is the Noise initiator.
    #[must_use]
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// Whether messages flow in both directions.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// The handshake hash once the handshake is done.
    #[must_use]
    pub fn handshake_hash(&self) -> Option<[u8; 64]> {
        match &self.phase {
            Phase::AwaitHeader(h) | Phase::Open(h) => Some(h.handshake_hash),
            _ => None,
        }
    }

    /// Feeds bytes received from the transport. Once the receiving half is split off
    /// ([`SecretStream::split_receiver`]), bytes go to the [`Receiver`]; bytes fed here then
    /// fail the stream with [`ProtocolError::ReceiverSplit`].
    pub fn handle_bytes(&mut self, now: Timestamp, mut input: &[u8]) -> Result<(), ProtocolError> {
        self.start(now);
        if let Phase::Failed(e) = &self.phase {
            return Err(e.clone());
        }
        if self.is_open() && self.decryptor.is_none() && !input.is_empty() {
            return Err(self.fail(ProtocolError::ReceiverSplit));
        }
        loop {
            let frame = match self.decoder.decode(&mut input) {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(e)),
            };
            if let Err(e) = self.handle_frame(frame) {
                return Err(self.fail(e));
            }
        }
    }

    fn handle_frame(&mut self, frame: Vec<u8>) -> Result<(), ProtocolError> {
        match &mut self.phase {
            Phase::Noise(noise) => {
                if frame.len() > MAX_HANDSHAKE_MESSAGE_LEN {
                    return Err(ProtocolError::Handshake("message too long"));
                }
                let done = noise.read_message(&frame)?;
                self.advance_noise(done);
            }
            Phase::AwaitHeader(hs) => {
                if frame.len() != ID_HEADER_LEN
                    || frame[..32] != stream_id(&hs.handshake_hash, !self.initiator)
                {
                    return Err(ProtocolError::InvalidHeader);
                }
                let mut header = [0u8; HEADER_LEN];
                header.copy_from_slice(&frame[32..]);
                self.decryptor = Some(Decryptor::new(&hs.rx, header));
                let (remote_public_key, handshake_hash) = (hs.remote_public_key, hs.handshake_hash);
                let Phase::AwaitHeader(hs) =
                    std::mem::replace(&mut self.phase, Phase::Failed(ProtocolError::InvalidHeader))
                else {
                    return Err(ProtocolError::InvalidHeader);
                };
                self.phase = Phase::Open(hs);
                self.timers.stop(Timer::HandshakeDeadline);
                tracing::debug!(initiator = self.initiator, "secret stream open");
                self.events.push_back(StreamEvent::HandshakeComplete {
                    remote_public_key,
                    handshake_hash,
                });
            }
            Phase::Open(_) => {
                let Some(d) = &mut self.decryptor else {
                    return Err(ProtocolError::ReceiverSplit);
                };
                if let Some(m) = open_message(d, &mut self.decoder, frame)? {
                    self.events.push_back(StreamEvent::Message(m));
                }
            }
            Phase::Failed(e) => return Err(e.clone()),
        }
        Ok(())
    }

    /// Writes our Noise message if it is our turn, then finishes when the handshake is done.
    fn advance_noise(&mut self, mut done: Option<HandshakeResult>) {
        if let Phase::Noise(noise) = &mut self.phase
            && noise.is_my_turn()
        {
            let mut msg = Vec::new();
            match noise.write_message(&mut msg) {
                Ok(d) => {
                    let mut frame = Vec::with_capacity(3 + msg.len());
                    let _ = encode_frame(&msg, &mut frame);
                    self.out.push_back(frame);
                    done = done.or(d);
                }
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        if let Some(hs) = done {
            self.finish_handshake(hs);
        }
    }

    fn finish_handshake(&mut self, hs: HandshakeResult) {
        let (enc, header) = Encryptor::new(&hs.tx, self.header);
        let mut body = stream_id(&hs.handshake_hash, self.initiator).to_vec();
        body.extend_from_slice(&header);
        let mut frame = Vec::with_capacity(3 + body.len());
        let _ = encode_frame(&body, &mut frame);
        self.out.push_back(frame);
        self.encryptor = Some(enc);
        while let Some(m) = self.queued.pop_front() {
            self.encrypt_into_out(m);
        }
        self.phase = Phase::AwaitHeader(Box::new(hs));
    }

    fn encrypt_into_out(&mut self, msg: MessageBuf) {
        if let Some(enc) = &mut self.encryptor
            && let Some(frame) = seal_frame(enc, msg)
        {
            self.out.push_back(frame);
        }
    }

    pub(crate) fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        tracing::debug!(error = %e, "secret stream failed");
        if !matches!(self.phase, Phase::Failed(_)) {
            self.events.push_back(StreamEvent::Closed(e.clone()));
        }
        self.phase = Phase::Failed(e.clone());
        self.out.clear();
        self.queued.clear();
        self.timers = TimerTable::default();
        e
    }

    fn start(&mut self, now: Timestamp) {
        if self.started.is_none() {
            self.started = Some(now);
            if let Some(t) = self.config.handshake_timeout
                && !self.is_open()
            {
                self.timers.set(Timer::HandshakeDeadline, now + t);
            }
        }
    }

    /// Queues one message (one protomux frame), copied once into a [`MessageBuf`]; see
    /// [`SecretStream::send_buf`].
    pub fn send(&mut self, msg: &[u8]) -> Result<(), ApiMisuse> {
        check_len(msg.len())?;
        self.send_buf(MessageBuf::from_slice(msg))
    }

    /// Queues one message, encrypted where it lies in `msg` (no copy): the frame that
    /// [`SecretStream::poll_transmit`] hands out is `msg`'s buffer. Messages sent before the
    /// handshake completes are held and encrypted once our header is out.
    pub fn send_buf(&mut self, msg: MessageBuf) -> Result<(), ApiMisuse> {
        check_len(msg.len())?;
        match self.phase {
            Phase::Failed(_) => Err(ApiMisuse::Closed),
            _ if self.encryptor.is_none() => {
                self.queued.push_back(msg);
                Ok(())
            }
            _ => {
                self.encrypt_into_out(msg);
                Ok(())
            }
        }
    }

    /// Appends the next bytes to write to the transport to `out`; call until it returns
    /// `None`.
    ///
    /// Each call hands out at least one whole frame. When `out` is empty the first frame's
    /// buffer *becomes* `out` (no copy: a message from [`SecretStream::send_buf`] is written
    /// from the buffer it was encoded in); the frames after it are gathered into the same
    /// buffer while it stays within [`GATHER_LEN`] bytes, so small frames leave in few writes
    /// and a larger one is never copied.
    pub fn poll_transmit(&mut self, now: Timestamp, out: &mut Vec<u8>) -> Option<Transmit> {
        self.start(now);
        let first = self.out.pop_front()?;
        let before = out.len();
        if out.is_empty() {
            *out = first;
        } else {
            out.extend_from_slice(&first);
        }
        while let Some(next) = self.out.front() {
            if out.len() + next.len() > GATHER_LEN {
                break;
            }
            out.extend_from_slice(next);
            self.out.pop_front();
        }
        if let Some(k) = self.config.keep_alive
            && self.encryptor.is_some()
        {
            self.timers.set(Timer::KeepAlive, now + k);
        }
        Some(Transmit {
            len: out.len() - before,
        })
    }

    /// Whether frames wait for [`SecretStream::poll_transmit`].
    #[must_use]
    pub fn has_transmit(&self) -> bool {
        !self.out.is_empty()
    }

    /// The next time [`SecretStream::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next_timeout()
    }

    /// Handles expired timers: sends a keep-alive or fails a stalled handshake.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for t in self.timers.expire(now) {
            match t {
                Timer::KeepAlive => {
                    if self.encryptor.is_some() && self.out.is_empty() {
                        self.encrypt_into_out(MessageBuf::from_slice(&[]));
                    }
                }
                Timer::HandshakeDeadline => {
                    if !self.is_open() {
                        self.fail(ProtocolError::Handshake("timed out"));
                    }
                }
                Timer::RequestTimeout => {}
            }
        }
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<StreamEvent> {
        self.events.pop_front()
    }

    /// Splits off the receiving half of an open stream: from now on the transport's bytes go
    /// to the returned [`Receiver`], which frames and decrypts them on its own (on another
    /// thread, say) and hands the messages back to be fed to the layer above (for a
    /// [`Connection`](crate::Connection), [`Connection::handle_plaintext`](crate::Connection::handle_plaintext)).
    /// A frame received partly so far goes with it. The sending half, timers and events stay
    /// here.
    ///
    /// Fails with [`ApiMisuse::NoReceiver`] before the stream is open (the handshake and header
    /// frames are read here) or once split, and with [`ApiMisuse::Closed`] after a failure.
    pub fn split_receiver(&mut self) -> Result<Receiver, ApiMisuse> {
        match self.phase {
            Phase::Failed(_) => return Err(ApiMisuse::Closed),
            Phase::Open(_) => {}
            _ => return Err(ApiMisuse::NoReceiver),
        }
        let decryptor = self.decryptor.take().ok_or(ApiMisuse::NoReceiver)?;
        let fresh = FrameDecoder::new(self.config.max_frame);
        Ok(Receiver {
            decoder: std::mem::replace(&mut self.decoder, fresh),
            decryptor,
            failed: None,
            pool: FramePool::new(),
            hash_blocks: true,
        })
    }

    /// Hands back the buffer of a [`StreamEvent::Message`] once it is handled: while the peer
    /// is in the middle of a frame, the next frame is received into it instead of a fresh
    /// allocation (see [`FrameDecoder::recycle`]).
    pub fn recycle(&mut self, message: Plaintext) {
        self.decoder.recycle(message.into_buffer());
    }

    /// Frees a recycled buffer unless a frame is being received (call when the events of a
    /// [`SecretStream::handle_bytes`] are handled).
    pub fn release_spare(&mut self) {
        self.decoder.release_spare();
    }
}

/// The receiving half of an open [`SecretStream`], split off with
/// [`SecretStream::split_receiver`]: reassembles frames from the transport's bytes and
/// decrypts them in place, with no other state of the stream, so that this work can run apart
/// from the rest of the connection.
#[derive(Debug)]
pub struct Receiver {
    decoder: FrameDecoder,
    decryptor: Decryptor,
    /// The failure returned by every call after the first.
    failed: Option<ProtocolError>,
    /// Buffers for the next frames; the messages' buffers come back to it.
    pool: FramePool,
    /// Whether block values are hashed as they arrive ([`Receiver::set_hash_blocks`]).
    hash_blocks: bool,
}

impl Receiver {
    /// Frames and decrypts `input`, appending each message to `out` in order (empty
    /// keep-alive messages are dropped). On an oversized frame or a message that fails
    /// authentication it returns the error after the messages before it; every later call
    /// returns the same error and reads nothing.
    pub fn handle_bytes(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<Plaintext>,
    ) -> Result<(), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let first = out.len();
        let result = loop {
            if !self.decoder.has_spare()
                && let Some(spare) = self.pool.take()
            {
                self.decoder.keep_spare(spare);
            }
            let opened = match self.decoder.decode(&mut input) {
                Ok(Some(frame)) => open_message(&mut self.decryptor, &mut self.decoder, frame)
                    .map(|m| m.map(|m| m.pooled(&self.pool))),
                Ok(None) => break Ok(()),
                Err(e) => Err(e),
            };
            match opened {
                Ok(Some(m)) => out.push(m),
                // A keep-alive: the peer was quiet for a while, so no buffer is kept for it.
                Ok(None) => self.release_spares(),
                Err(e) => {
                    tracing::debug!(error = %e, "secret stream receiver failed");
                    self.failed = Some(e.clone());
                    break Err(e);
                }
            }
        };
        if self.hash_blocks {
            hash_block_values(out.get_mut(first..).unwrap_or_default());
        }
        result
    }

    /// Whether the block values of `data` messages are hashed here, as they arrive (on by
    /// default): their leaf hashes travel with the message ([`Plaintext::block_leaves`]) and
    /// reach [`Event::Data`](crate::replicate::Event::Data) through
    /// [`Connection::handle_plaintext`](crate::Connection::handle_plaintext), so the thread
    /// that verifies the proofs does not hash the blocks again.
    pub fn set_hash_blocks(&mut self, on: bool) {
        self.hash_blocks = on;
    }

    /// The pool the buffers of this receiver's messages go back to (see [`FramePool`]).
    #[must_use]
    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    /// Drops the buffers kept for the next frames (one stays while a frame is received into
    /// it). Done on its own when the peer sends a keep-alive: it was quiet for a while.
    pub fn release_spares(&mut self) {
        self.pool.clear();
        self.decoder.release_spare();
    }
}

/// Hashes the block values of the `data` messages in `messages` (on the channels of any
/// protocol: a value that turns out not to be a hypercore block costs a hash, nothing more, as
/// a hash is used only for the bytes it was computed from), all in one go so that the vector
/// lanes are full even when each message holds one or two large blocks.
fn hash_block_values(messages: &mut [Plaintext]) {
    let mut spans = Vec::new();
    let mut values = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let plain = m.as_slice();
        let base = plain.as_ptr() as usize;
        let mut items = Incoming::new(plain);
        while let Ok(Some((channel, message_type, mut r))) = items.next_item() {
            if channel != 0
                && message_type == wire::DATA
                && let Some(value) = wire::data_block_value(r.rest())
            {
                spans.push((i, value.as_ptr() as usize - base, value.len()));
                values.push(value);
            }
        }
    }
    if values.is_empty() {
        return;
    }
    let hashes = corestore_keys::hash::leaves(&values);
    for ((i, offset, len), hash) in spans.into_iter().zip(hashes) {
        if let Some(m) = messages.get_mut(i) {
            m.leaves.push(BlockLeaf { offset, len, hash });
        }
    }
}

/// Decrypts one frame body of an open stream: the message, or `None` for a keep-alive (whose
/// buffer goes back to `decoder`).
fn open_message(
    decryptor: &mut Decryptor,
    decoder: &mut FrameDecoder,
    mut frame: Vec<u8>,
) -> Result<Option<Plaintext>, ProtocolError> {
    let range = decryptor.decrypt(&mut frame)?;
    if range.is_empty() {
        decoder.recycle(frame);
        return Ok(None);
    }
    tracing::trace!(len = range.len(), "message");
    Ok(Some(Plaintext {
        buf: frame,
        range,
        pool: None,
        leaves: Vec::new(),
    }))
}

/// Refuses a message longer than [`MAX_MESSAGE_LEN`].
fn check_len(len: usize) -> Result<(), ApiMisuse> {
    if len > MAX_MESSAGE_LEN {
        return Err(ApiMisuse::MessageTooLarge {
            limit: MAX_MESSAGE_LEN,
            got: len,
        });
    }
    Ok(())
}

/// Turns `msg` (at most [`MAX_MESSAGE_LEN`] bytes) into the frame
/// `u24le(len) || tag || ciphertext || mac` in its own buffer: the length and the tag go into
/// its headroom, the message is encrypted where it is and the MAC is appended.
fn seal_frame(enc: &mut Encryptor, msg: MessageBuf) -> Option<Vec<u8>> {
    let len = u32::try_from(msg.len() + ABYTES)
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME_LEN)?;
    let mut buf = msg.into_inner();
    let (header, sealed) = buf.split_at_mut_checked(3)?;
    header.copy_from_slice(&len.to_le_bytes()[..3]);
    let mac = enc.seal(sealed);
    buf.extend_from_slice(&mac);
    Some(buf)
}

#[cfg(test)]
mod tests;
