//! [`Peer`]: hypercore replication with one remote over one protomux stream (spec §9.3–§9.10).
//!
//! The peer owns a [`Mux`] and one state machine per core channel (`hypercore/alpha`, id =
//! discovery key). It checks capabilities, runs the `sync` rules, tracks the requests it sent
//! (many in flight, each with a deadline) and the requests the remote sent, and reports
//! everything else as [`Event`]s. It never touches storage: the layer above answers
//! [`Event::Request`] with [`Peer::send_data`] or [`Peer::send_no_data`], verifies the proofs
//! in [`Event::Data`], and decides what to [`Peer::request`].
//!
//! # Answering events
//!
//! | event | the layer above |
//! |---|---|
//! | [`Event::RemoteOpen`] (`hypercore/alpha`, id = discovery key) | [`Peer::open_core`] with the core's key if it has the core, else [`Peer::reject`] |
//! | [`Event::CoreOpened`] / [`Event::Synced`] | decide what to fetch: [`Peer::upgrade_to_request`], [`Peer::request`], [`Peer::send_want`]; after `Synced`, answer [`Peer::take_upgrade_check`] |
//! | [`Event::Request`] | read the block and build the proof, then [`Peer::send_data`] or [`Peer::send_no_data`] |
//! | [`Event::Cancelled`] | drop the pending answer (a late [`Peer::send_data`] is a no-op) |
//! | [`Event::Data`] / [`Event::Unsolicited`] | verify, store, then [`Peer::update_core`] with the new length |
//! | [`Event::Want`] | [`Peer::send_range`] or [`Peer::send_bitfield`] |
//! | [`Event::RequestTimedOut`] / [`Event::NoData`] | ask another peer |
//! | [`Event::Failed`] | destroy the stream |
//!
//! Local appends and truncations go through [`Peer::update_core`], which re-sends `sync` and
//! recomputes `canUpgrade` as hypercore does (for a sparse core, with the layer above's answer
//! to [`Peer::take_upgrade_check`], asked after `update_core` too).
//!
//! The peer works on messages (decrypted protomux frames). Put it behind a
//! [`SecretStream`](crate::stream::SecretStream) (see [`Connection`](crate::Connection)), or
//! use it directly when the transport already provides message boundaries and encryption
//! ("plain" mode), given the [`Session`].

mod availability;
mod channel;
mod deadlines;

use bytes::Bytes;
use std::collections::{BTreeSet, VecDeque};

use deadlines::Deadlines;
use std::time::Duration;

use channel::{CoreChannel, Inflight};
pub use channel::{CoreState, RemoteState};

use corestore_keys::compact::Encoder;
use corestore_keys::hash::Hash;

use crate::buffer::MessageBuf;
use crate::error::{ApiMisuse, ProtocolError};
use crate::idhash::IdMap;
use crate::mux::{ChannelId, Incoming, Mux, MuxConfig, MuxEvent, PendingOpen};
use crate::timer::{Timer, TimerTable, Timestamp};
use crate::wire::{
    self, Data, Extension, Handshake, Message, NoData, Range, Request, RequestBlock, RequestSeek,
    RequestUpgrade, Want,
};

/// Limits and timers of a [`Peer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PeerConfig {
    /// Most requests we keep in flight per core channel (default 256; hypercore: 16, ×3 on
    /// TCP, up to 512 on UDX with latency). A window smaller than what the remote can answer
    /// while we handle one read of answers starves the download: with 48, a 1 KiB-block
    /// download over loopback spent a third of its time waiting for answers, with 256 almost
    /// none (the replicate benchmark, 1.5× faster).
    pub max_inflight: usize,
    /// Most unanswered requests the remote may have with us per core channel.
    pub max_remote_requests: usize,
    /// How long a request may stay unanswered before [`Event::RequestTimedOut`].
    pub request_timeout: Duration,
    /// Protomux limits.
    pub mux: MuxConfig,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            max_inflight: 256,
            max_remote_requests: 1024,
            request_timeout: Duration::from_secs(30),
            mux: MuxConfig::default(),
        }
    }
}

/// The secret-stream session a peer runs in: the role and the handshake hash bind
/// capabilities to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Whether we are the secret-stream initiator.
    pub initiator: bool,
    /// The handshake hash.
    pub handshake_hash: [u8; 64],
    /// The remote's static public key.
    pub remote_public_key: [u8; 32],
}

/// A core replicated on this stream. Never reused within one [`Peer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CoreId(u64);

/// What to ask for in a [`Peer::request`]; the id and fork are filled in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSpec {
    /// A block and `nodes` missing proof nodes.
    pub block: Option<RequestBlock>,
    /// A tree node and its proof.
    pub hash: Option<RequestBlock>,
    /// A byte offset.
    pub seek: Option<RequestSeek>,
    /// An upgrade (see [`Peer::upgrade_to_request`]).
    pub upgrade: Option<RequestUpgrade>,
    /// Ask for the manifest.
    pub manifest: bool,
    /// 0 normal, 1 high, 2 very high.
    pub priority: u64,
}

/// Something the peer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Event {
    /// The remote opened a channel no local core waits for. For `hypercore/alpha` the id is
    /// the discovery key: accept with [`Peer::open_core`] (which needs the core key) or refuse
    /// with [`Peer::reject`]. Other protocols can only be rejected here.
    RemoteOpen {
        /// The pending open.
        pending: PendingOpen,
        /// Its protocol.
        protocol: String,
        /// Its channel id.
        id: Option<Vec<u8>>,
    },
    /// Both sides opened the core's channel and the remote's capability is valid.
    CoreOpened {
        /// The core.
        core: CoreId,
    },
    /// The channel closed (remote close, reject, or idle).
    CoreClosed {
        /// The core.
        core: CoreId,
    },
    /// The remote sent `sync`; its state is in the payload.
    Synced {
        /// The core.
        core: CoreId,
        /// What the remote announced.
        remote: RemoteState,
    },
    /// The remote wants a proof: answer with [`Peer::send_data`] or [`Peer::send_no_data`].
    Request {
        /// The core.
        core: CoreId,
        /// The request as sent.
        request: Request,
    },
    /// The remote cancelled one of its requests: do not answer it.
    Cancelled {
        /// The core.
        core: CoreId,
        /// The remote's request id.
        request: u64,
    },
    /// A reply to one of our requests (still to be verified).
    Data {
        /// The core.
        core: CoreId,
        /// The reply.
        data: Box<Data>,
        /// The leaf hash of the reply's block value (`corestore_keys::hash::leaf`), when a
        /// split-off [`Receiver`](crate::stream::Receiver) computed it from those very bytes
        /// as they arrived (on its own thread); `None`: not computed.
        leaf: Option<Hash>,
    },
    /// `data` not matching any of our requests but acceptable unsolicited: a fork proof
    /// (`fork` above ours) or a conflict proof / hypercore 11 push (`request == 0`).
    Unsolicited {
        /// The core.
        core: CoreId,
        /// The proof.
        data: Box<Data>,
        /// As for [`Event::Data`].
        leaf: Option<Hash>,
    },
    /// The remote has nothing for our request.
    ///
    /// Match it with `..`: more fields may follow.
    #[non_exhaustive]
    NoData {
        /// The core.
        core: CoreId,
        /// Our request id.
        request: u64,
        /// The hypercore 11 reason ([`NoData::reason`]): `None` from v10 peers, `Some(0)` for
        /// none given, `Some(1)` not available, `Some(2)` invalid request.
        reason: Option<u64>,
    },
    /// Our request got no reply in time; it is no longer tracked (a cancel was sent).
    RequestTimedOut {
        /// The core.
        core: CoreId,
        /// Our request id.
        request: u64,
    },
    /// The remote asks which blocks of a range we have.
    Want {
        /// The core.
        core: CoreId,
        /// The range.
        want: Want,
    },
    /// Availability from the remote (`range`).
    Range {
        /// The core.
        core: CoreId,
        /// The range.
        range: Range,
    },
    /// Availability from the remote (`bitfield`, start a multiple of 32).
    Bitfield {
        /// The core.
        core: CoreId,
        /// The words.
        bitfield: wire::Bitfield,
    },
    /// An extension message (the name already resolved).
    Extension {
        /// The core.
        core: CoreId,
        /// Extension name.
        name: String,
        /// Payload.
        message: Vec<u8>,
    },
    /// The remote misbehaved: destroy the stream.
    Failed(ProtocolError),
}

/// Replication with one remote over one stream.
#[derive(Debug)]
pub struct Peer {
    config: PeerConfig,
    session: Option<Session>,
    mux: Mux,
    cores: IdMap<CoreId, CoreChannel>,
    by_channel: IdMap<ChannelId, CoreId>,
    next_core: u64,
    /// Deadlines of our in-flight requests (see [`Deadlines`]).
    deadlines: Deadlines,
    timers: TimerTable,
    events: VecDeque<Event>,
    failed: Option<ProtocolError>,
    /// Cores whose follow-up `sync` goes out on the next [`Peer::poll_message`].
    deferred_syncs: BTreeSet<CoreId>,
    /// Encoding buffer of outgoing messages, kept while corked (a block is encoded here, then
    /// copied into the batch); freed by [`Peer::uncork`].
    scratch: Vec<u8>,
}

impl Peer {
    /// A peer whose session is known (plain mode, or after the handshake completed).
    #[must_use]
    pub fn new(session: Session, config: PeerConfig) -> Self {
        Self {
            mux: Mux::new(config.mux.clone()),
            config,
            session: Some(session),
            cores: IdMap::default(),
            by_channel: IdMap::default(),
            next_core: 1,
            deadlines: Deadlines::default(),
            timers: TimerTable::default(),
            events: VecDeque::new(),
            failed: None,
            deferred_syncs: BTreeSet::new(),
            scratch: Vec::new(),
        }
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Opens (or accepts) the channel of a core: sends our open (channel id = the discovery key
    /// of `key`) with our capability. If the remote already opened it, the channel opens now.
    pub fn open_core(&mut self, key: &[u8; 32], local: CoreState) -> Result<CoreId, ApiMisuse> {
        let dk = corestore_keys::Key::from_bytes(*key)
            .discovery_key()
            .to_bytes();
        self.open_core_with(key, &dk, local)
    }

    /// [`Peer::open_core`] with an explicit channel id (tests use a mismatching one).
    pub(crate) fn open_core_with(
        &mut self,
        key: &[u8; 32],
        discovery_key: &[u8; 32],
        local: CoreState,
    ) -> Result<CoreId, ApiMisuse> {
        if self.failed.is_some() {
            return Err(ApiMisuse::Closed);
        }
        let session = self.session.as_ref().ok_or(ApiMisuse::NotReady)?;
        let mut hs = Vec::with_capacity(33);
        let capability = wire::capability(&session.handshake_hash, session.initiator, key);
        Handshake {
            seeks: true,
            capability,
        }
        .encode(&mut hs);
        let channel = self.mux.open(wire::PROTOCOL, Some(discovery_key), &hs)?;
        let core = CoreId(self.next_core);
        self.next_core += 1;
        self.cores
            .insert(core, CoreChannel::new(*key, *discovery_key, channel, local));
        self.by_channel.insert(channel, core);
        if let Err(e) = self.process_mux_events() {
            self.fail(e);
        }
        Ok(core)
    }

    /// Refuses a remote open reported as [`Event::RemoteOpen`].
    pub fn reject(&mut self, pending: PendingOpen) {
        self.mux.reject(pending);
    }

    /// Closes a core's channel.
    pub fn close_core(&mut self, core: CoreId) -> Result<(), ApiMisuse> {
        let c = self.cores.remove(&core).ok_or(ApiMisuse::UnknownChannel)?;
        self.by_channel.remove(&c.channel);
        self.deadlines.done(c.inflight.len());
        self.update_timer();
        self.mux.close(c.channel)
    }

    /// Tells the peer our local state changed (append, truncate, download state); a `sync` is
    /// sent when the remote must learn about it.
    pub fn update_core(&mut self, core: CoreId, state: CoreState) -> Result<(), ApiMisuse> {
        let c = self.cores.get_mut(&core).ok_or(ApiMisuse::UnknownChannel)?;
        if c.on_local_update(state) {
            self.send_sync(core)?;
        }
        Ok(())
    }

    /// The remote length to look up for `core`, if any: the remote is behind us on our fork
    /// but beyond our contiguous blocks, so whether we can prove its upgrade depends on
    /// tree nodes only the layer above can look up (every full root of that length stored:
    /// `hypercore_lite::Core::upgradeable`). Until it calls [`Peer::set_upgradeable`] we
    /// advertise that we cannot (hypercore checks the same before it says it can). `Some`
    /// once per change of the remote's length or of our state; call it after
    /// [`Event::Synced`] and after [`Peer::update_core`].
    pub fn take_upgrade_check(&mut self, core: CoreId) -> Option<u64> {
        self.cores.get_mut(&core)?.upgrade_check()
    }

    /// Records that we can prove an upgrade from `remote_length` (the answer to
    /// [`Peer::take_upgrade_check`]), announcing it with a `sync` when that changes what we
    /// advertise.
    ///
    /// # Errors
    ///
    /// [`ApiMisuse::UnknownChannel`] for a core without a channel here.
    pub fn set_upgradeable(&mut self, core: CoreId, remote_length: u64) -> Result<(), ApiMisuse> {
        let c = self.cores.get_mut(&core).ok_or(ApiMisuse::UnknownChannel)?;
        if c.set_upgradeable(remote_length) {
            self.send_sync(core)?;
        }
        Ok(())
    }

    /// Sends a `sync` now.
    pub fn send_sync(&mut self, core: CoreId) -> Result<(), ApiMisuse> {
        let c = self.cores.get_mut(&core).ok_or(ApiMisuse::UnknownChannel)?;
        let m = Message::Sync(c.sync_message());
        let ch = c.channel;
        self.send(ch, &m)
    }

    /// The key and discovery key of a core.
    #[must_use]
    pub fn core_keys(&self, core: CoreId) -> Option<([u8; 32], [u8; 32])> {
        self.cores.get(&core).map(|c| (c.key, c.discovery_key))
    }

    /// The remote's announced state for a core.
    #[must_use]
    pub fn remote_state(&self, core: CoreId) -> Option<RemoteState> {
        self.cores.get(&core).map(|c| c.remote)
    }

    /// The upgrade a request should carry now, per hypercore's rules (remote can upgrade, is
    /// longer, acknowledged our length, and no upgrade is in flight).
    #[must_use]
    pub fn upgrade_to_request(&self, core: CoreId) -> Option<RequestUpgrade> {
        self.cores
            .get(&core)
            .and_then(CoreChannel::upgrade_to_request)
    }

    /// Whether the remote announced block `index` of a core (its contiguous prefix, `range`
    /// and `bitfield` messages) within its length. Request blocks only from peers that have
    /// them; otherwise [`Peer::send_want`] the enclosing segment first.
    #[must_use]
    pub fn remote_has(&self, core: CoreId, index: u64) -> bool {
        self.cores.get(&core).is_some_and(|c| c.remote_has(index))
    }

    /// Whether the remote announced every block of `[start, start + length)` (its contiguous
    /// prefix, `range` and `bitfield` messages), regardless of its length: hypercore announces
    /// new blocks only to peers that lack some of them.
    #[must_use]
    pub fn remote_has_range(&self, core: CoreId, start: u64, length: u64) -> bool {
        self.cores
            .get(&core)
            .is_some_and(|c| c.remote_has_range(start, length))
    }

    /// Whether remote request `request` of a core waits for an answer (not answered, not
    /// cancelled).
    #[must_use]
    pub fn is_remote_request(&self, core: CoreId, request: u64) -> bool {
        self.cores
            .get(&core)
            .is_some_and(|c| c.remote_requests.contains(&request))
    }

    /// Sends a conflict probe (spec §9.9): `request {id: 0, fork: remote fork, upgrade: {0,
    /// length}}`. The reply arrives as [`Event::Unsolicited`] with `request == 0`.
    pub fn probe(&mut self, core: CoreId, length: u64) -> Result<(), ApiMisuse> {
        let c = self.cores.get(&core).ok_or(ApiMisuse::UnknownChannel)?;
        let request = Request {
            fork: c.remote.fork,
            upgrade: Some(RequestUpgrade { start: 0, length }),
            ..Request::default()
        };
        let ch = c.channel;
        self.send(ch, &Message::Request(request))
    }

    /// Sends a request; returns its id. The fork is the remote's fork.
    pub fn request(
        &mut self,
        now: Timestamp,
        core: CoreId,
        spec: RequestSpec,
    ) -> Result<u64, ApiMisuse> {
        let timeout = self.config.request_timeout;
        let max = self.config.max_inflight;
        let c = self.cores.get(&core).ok_or(ApiMisuse::UnknownChannel)?;
        if spec.block.is_none()
            && spec.hash.is_none()
            && spec.seek.is_none()
            && spec.upgrade.is_none()
            && !spec.manifest
        {
            return Err(ApiMisuse::EmptyRequest);
        }
        if c.inflight.len() >= max {
            return Err(ApiMisuse::TooManyRequests(max));
        }
        let id = c.next_request_id;
        let request = Request {
            id,
            fork: c.remote.fork,
            block: spec.block,
            hash: spec.hash,
            seek: spec.seek,
            upgrade: spec.upgrade,
            manifest: spec.manifest,
            priority: spec.priority,
        };
        let msg = Message::Request(request.clone());
        let ch = c.channel;
        // Send first: a request that could not be sent (failed peer, too large) leaves no
        // state behind, neither an inflight entry nor a deadline, and uses up no id.
        self.send(ch, &msg)?;
        let deadline = now + timeout;
        if let Some(c) = self.cores.get_mut(&core) {
            c.next_request_id += 1;
            c.inflight.insert(id, Inflight { request, deadline });
        }
        let cores = &self.cores;
        self.deadlines
            .insert((deadline, core, id), |e| is_live(cores, e));
        // The earliest live deadline is the earlier of the armed one and this one: no scan.
        if self
            .timers
            .get(Timer::RequestTimeout)
            .is_none_or(|armed| deadline < armed)
        {
            self.timers.set(Timer::RequestTimeout, deadline);
        }
        tracing::trace!(core = core.0, id, "request");
        Ok(id)
    }

    /// Cancels one of our requests.
    pub fn cancel(&mut self, core: CoreId, request: u64) -> Result<(), ApiMisuse> {
        let c = self.cores.get_mut(&core).ok_or(ApiMisuse::UnknownChannel)?;
        let ended = c
            .inflight
            .remove(&request)
            .ok_or(ApiMisuse::UnknownRequest(request))?;
        let ch = c.channel;
        self.answered((ended.deadline, core, request));
        self.send(ch, &Message::Cancel(request))
    }

    /// The number of our requests in flight for a core.
    #[must_use]
    pub fn inflight(&self, core: CoreId) -> usize {
        self.cores.get(&core).map_or(0, |c| c.inflight.len())
    }

    /// Answers a remote request with a proof. `data.request` names the request. Returns
    /// `Ok(false)` (sending nothing) if the remote cancelled it meanwhile.
    pub fn send_data(&mut self, core: CoreId, data: Data) -> Result<bool, ApiMisuse> {
        let c = self.cores.get(&core).ok_or(ApiMisuse::UnknownChannel)?;
        let request = data.request;
        if request != 0 && !c.remote_requests.contains(&request) {
            return Ok(false);
        }
        let ch = c.channel;
        // The request is answered only once the reply went out: after an error it can still
        // be answered (e.g. with `noData` when the proof is too large).
        self.send(ch, &Message::Data(Box::new(data)))?;
        if let Some(c) = self.cores.get_mut(&core) {
            c.remote_requests.remove(&request);
        }
        Ok(true)
    }

    /// [`Peer::send_data`] whose block value `read_value` appends to the message as it is
    /// encoded (straight into the corked batch, say from storage), instead of coming from
    /// `data.block.value` (which is ignored): `value_len` is the value's length, and
    /// `read_value` must append exactly that many bytes to the vector it is given.
    ///
    /// Returns `Ok(Ok(true))` once sent, `Ok(Ok(false))` (`read_value` not called) if the
    /// remote cancelled the request, and `Ok(Err(e))` if `read_value` failed with `e`: nothing
    /// was sent and the request can still be answered (with `noData`, say). Without a block
    /// this is [`Peer::send_data`].
    ///
    /// # Errors
    ///
    /// As [`Peer::send_data`]; [`ApiMisuse::ValueLength`] if `read_value` appended another
    /// length (nothing is sent).
    pub fn send_data_with<E>(
        &mut self,
        core: CoreId,
        mut data: Data,
        value_len: usize,
        read_value: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Result<bool, E>, ApiMisuse> {
        let c = self.cores.get(&core).ok_or(ApiMisuse::UnknownChannel)?;
        let request = data.request;
        if request != 0 && !c.remote_requests.contains(&request) {
            return Ok(Ok(false));
        }
        let ch = c.channel;
        if self.failed.is_some() {
            return Err(ApiMisuse::Closed);
        }
        if data.block.is_none() {
            return self.send_data(core, data).map(Ok);
        }
        let Some(len) = data.encoded_len_with_value(value_len) else {
            // With a manifest the length is known only once encoded: read the value first.
            let mut value = Vec::with_capacity(value_len);
            if let Err(e) = read_value(&mut value) {
                return Ok(Err(e));
            }
            if value.len() != value_len {
                return Err(ApiMisuse::ValueLength {
                    expected: value_len,
                    got: value.len(),
                });
            }
            if let Some(b) = data.block.as_mut() {
                b.value = value.into();
            }
            return self.send_data(core, data).map(Ok);
        };
        // The value is read where it goes: into the message (the corked batch), after its
        // length prefix.
        let mut failed = None;
        let sent = self.mux.try_send_with(ch, DATA_TYPE, len, |o| {
            data.encode_with_value(o, |o| {
                o.uint(value_len as u64);
                let mut buf = std::mem::take(o).into_vec();
                let start = buf.len();
                match read_value(&mut buf) {
                    Ok(()) if buf.len() - start == value_len => {}
                    Ok(()) => failed = Some(ValueFailure::Length(buf.len() - start)),
                    Err(e) => failed = Some(ValueFailure::Read(e)),
                }
                *o = Encoder::from_vec(buf);
            });
            failed.take().map_or(Ok(()), Err)
        })?;
        match sent {
            Ok(()) => {
                if let Some(c) = self.cores.get_mut(&core) {
                    c.remote_requests.remove(&request);
                }
                Ok(Ok(true))
            }
            Err(ValueFailure::Read(e)) => Ok(Err(e)),
            Err(ValueFailure::Length(got)) => Err(ApiMisuse::ValueLength {
                expected: value_len,
                got,
            }),
        }
    }

    /// Answers a remote request with `noData`. Returns `Ok(false)` if it was cancelled.
    pub fn send_no_data(&mut self, core: CoreId, request: u64) -> Result<bool, ApiMisuse> {
        let c = self.cores.get(&core).ok_or(ApiMisuse::UnknownChannel)?;
        if !c.remote_requests.contains(&request) {
            return Ok(false);
        }
        let ch = c.channel;
        self.send(
            ch,
            &Message::NoData(NoData {
                request,
                reason: None,
            }),
        )?;
        if let Some(c) = self.cores.get_mut(&core) {
            c.remote_requests.remove(&request);
        }
        Ok(true)
    }

    /// Sends `range` (availability).
    pub fn send_range(&mut self, core: CoreId, range: Range) -> Result<(), ApiMisuse> {
        let ch = self.channel(core)?;
        self.send(ch, &Message::Range(range))
    }

    /// Sends `want` for a block range.
    pub fn send_want(&mut self, core: CoreId, start: u64, length: u64) -> Result<(), ApiMisuse> {
        let ch = self.channel(core)?;
        self.send(
            ch,
            &Message::Want(Want {
                start,
                length,
                any: false,
            }),
        )
    }

    /// Sends `bitfield` words.
    pub fn send_bitfield(
        &mut self,
        core: CoreId,
        bitfield: wire::Bitfield,
    ) -> Result<(), ApiMisuse> {
        let ch = self.channel(core)?;
        self.send(ch, &Message::Bitfield(bitfield))
    }

    /// Sends an extension message (the name is elided when it repeats the last one sent).
    pub fn send_extension(
        &mut self,
        core: CoreId,
        name: &str,
        message: &[u8],
    ) -> Result<(), ApiMisuse> {
        let c = self.cores.get(&core).ok_or(ApiMisuse::UnknownChannel)?;
        let elide = c.last_extension_sent.as_deref() == Some(name);
        let wire_name = if elide {
            String::new()
        } else {
            name.to_owned()
        };
        let ch = c.channel;
        self.send(
            ch,
            &Message::Extension(Extension {
                name: wire_name,
                message: message.to_vec(),
            }),
        )?;
        // Only a name that went out may be elided next time.
        if !elide && let Some(c) = self.cores.get_mut(&core) {
            c.last_extension_sent = Some(name.to_owned());
        }
        Ok(())
    }

    /// Collects outgoing messages into one batch until [`Peer::uncork`].
    pub fn cork(&mut self) {
        self.mux.cork();
    }

    /// Ends a [`Peer::cork`].
    pub fn uncork(&mut self) {
        self.scratch = Vec::new();
        self.mux.uncork();
    }

    /// Handles one decrypted message. On error the peer is failed and the stream must be
    /// destroyed ([`ProtocolError::close_reason`]).
    pub fn handle_message(&mut self, now: Timestamp, msg: &[u8]) -> Result<(), ProtocolError> {
        let _ = now;
        self.handle(msg, None)
    }

    /// [`Peer::handle_message`] of a message held as shared bytes: the block values of its
    /// `data` messages are slices of `msg` instead of copies (the caller's buffer is freed
    /// once they are dropped).
    pub fn handle_shared(&mut self, now: Timestamp, msg: &Bytes) -> Result<(), ProtocolError> {
        let _ = now;
        self.handle(msg, Some(msg))
    }

    /// Both `handle_*`: a failed peer handles nothing; an error fails it.
    fn handle(&mut self, msg: &[u8], owner: Option<&Bytes>) -> Result<(), ProtocolError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.dispatch(msg, owner);
        r.map_err(|e| self.fail(e))
    }

    /// Handles the items of one message in order, each message borrowed from `msg` (no copy
    /// of its payload); `owner`: `msg` as shared bytes, if it is.
    fn dispatch(&mut self, msg: &[u8], owner: Option<&Bytes>) -> Result<(), ProtocolError> {
        let mut incoming = Incoming::new(msg);
        loop {
            let item = self.mux.next_incoming(&mut incoming)?;
            // What the items before this one produced (opens, closes, buffered messages).
            self.process_mux_events()?;
            let Some(m) = item else {
                return Ok(());
            };
            if let Some(&core) = self.by_channel.get(&m.channel) {
                self.on_message(core, m.message_type, m.payload, owner)?;
            }
        }
    }

    /// The next message for the secret stream (or the plain transport).
    ///
    /// Follow-up `sync`s due after a remote `sync` are queued here, behind whatever the layer
    /// above sent while handling the events.
    pub fn poll_message(&mut self) -> Option<MessageBuf> {
        for core in std::mem::take(&mut self.deferred_syncs) {
            if self.cores.get(&core).is_some_and(|c| c.needs_sync) {
                let _ = self.send_sync(core);
            }
        }
        self.mux.poll_message()
    }

    /// Hands back the buffer of a written message, for the next ones (see [`Mux::recycle`]).
    pub fn recycle(&mut self, buf: Vec<u8>) {
        self.mux.recycle(buf);
    }

    /// Drops the buffers kept for the next messages (see [`Mux::release_spares`]).
    pub fn release_spares(&mut self) {
        self.mux.release_spares();
    }

    /// Whether a remote open still waits for [`Peer::open_core`] or [`Peer::reject`].
    #[must_use]
    pub fn is_pending(&self, pending: PendingOpen) -> bool {
        self.mux.is_pending(pending)
    }

    /// The next event. A [`Event::RemoteOpen`] that an [`Peer::open_core`] already answered
    /// is skipped.
    pub fn poll_event(&mut self) -> Option<Event> {
        loop {
            let e = self.events.pop_front()?;
            match &e {
                Event::RemoteOpen { pending, .. } if !self.mux.is_pending(*pending) => {}
                _ => return Some(e),
            }
        }
    }

    /// The next time [`Peer::handle_timeout`] must be called.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.timers.next_timeout()
    }

    /// Expires requests whose deadline passed: each gets a `cancel` and
    /// [`Event::RequestTimedOut`].
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.timers.expire(now).next().is_none() {
            return;
        }
        loop {
            let cores = &self.cores;
            let Some((deadline, core, id)) = self.deadlines.first(|e| is_live(cores, e)) else {
                break;
            };
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(c) = self.cores.get_mut(&core)
                && c.inflight.remove(&id).is_some()
            {
                let ch = c.channel;
                let _ = self.send(ch, &Message::Cancel(id));
                self.events
                    .push_back(Event::RequestTimedOut { core, request: id });
            }
        }
        self.update_timer();
    }

    /// After request `ended` left flight (answered or cancelled): its deadline entry goes,
    /// without a look-up when it is the earliest (answers mostly come in order). The request
    /// timer stays armed at the deadline it had, which may now be early:
    /// [`Peer::handle_timeout`] then finds nothing due and re-arms it at the earliest live
    /// deadline. That spares a scan of the deadline queue per answer. Once nothing is in
    /// flight, the timer is brought up to date (stopped), so an idle peer asks for no wake-up.
    fn answered(&mut self, ended: deadlines::Entry) {
        let cores = &self.cores;
        self.deadlines.end(&ended, |e| is_live(cores, e));
        if self.deadlines.is_idle() {
            self.update_timer();
        }
    }

    /// Arms the request timer at the earliest live deadline, or stops it.
    fn update_timer(&mut self) {
        let cores = &self.cores;
        match self.deadlines.first(|e| is_live(cores, e)) {
            Some((d, _, _)) => self.timers.set(Timer::RequestTimeout, d),
            None => self.timers.stop(Timer::RequestTimeout),
        }
    }

    fn channel(&self, core: CoreId) -> Result<ChannelId, ApiMisuse> {
        self.cores
            .get(&core)
            .map(|c| c.channel)
            .ok_or(ApiMisuse::UnknownChannel)
    }

    fn send(&mut self, ch: ChannelId, m: &Message) -> Result<(), ApiMisuse> {
        if self.failed.is_some() {
            return Err(ApiMisuse::Closed);
        }
        if let Some(len) = m.encoded_len() {
            // A data message goes straight into the batch: its block is copied once.
            return self
                .mux
                .send_with(ch, m.message_type(), len, |o| m.encode_with(o));
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        m.encode_into(&mut buf);
        let sent = self.mux.send(ch, m.message_type(), &buf);
        if self.mux.is_corked() {
            self.scratch = buf;
        }
        sent
    }

    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        tracing::debug!(error = %e, "replication stream failed");
        if self.failed.is_none() {
            self.failed = Some(e.clone());
            self.events.push_back(Event::Failed(e.clone()));
        }
        e
    }

    fn process_mux_events(&mut self) -> Result<(), ProtocolError> {
        while let Some(ev) = self.mux.poll_event() {
            match ev {
                MuxEvent::RemoteOpen {
                    pending,
                    protocol,
                    id,
                } => {
                    self.events.push_back(Event::RemoteOpen {
                        pending,
                        protocol,
                        id,
                    });
                }
                MuxEvent::Opened { channel, handshake } => self.on_opened(channel, &handshake)?,
                MuxEvent::Closed { channel } => {
                    if let Some(core) = self.by_channel.remove(&channel) {
                        if let Some(c) = self.cores.remove(&core) {
                            self.deadlines.done(c.inflight.len());
                        }
                        self.update_timer();
                        self.events.push_back(Event::CoreClosed { core });
                    }
                }
                MuxEvent::Message {
                    channel,
                    message_type,
                    payload,
                } => {
                    if let Some(&core) = self.by_channel.get(&channel) {
                        self.on_message(core, message_type, &payload, None)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn on_opened(&mut self, channel: ChannelId, handshake: &[u8]) -> Result<(), ProtocolError> {
        let Some(&core) = self.by_channel.get(&channel) else {
            return Ok(());
        };
        let Some(session) = &self.session else {
            return Err(ProtocolError::InvalidCapability);
        };
        let hs = Handshake::decode(handshake)?;
        let Some(c) = self.cores.get_mut(&core) else {
            return Ok(());
        };
        let expected = wire::capability(&session.handshake_hash, !session.initiator, &c.key);
        if hs.capability != expected {
            return Err(ProtocolError::InvalidCapability);
        }
        c.opened = true;
        c.remote.seeks = hs.seeks;
        let sync = Message::Sync(c.sync_message());
        let contig = c.local.contiguous_length.min(c.local.length);
        tracing::debug!(core = core.0, "core channel open");
        self.mux.cork();
        let _ = self.send(channel, &sync);
        if contig > 0 {
            let _ = self.send(
                channel,
                &Message::Range(Range {
                    drop: false,
                    start: 0,
                    length: contig,
                }),
            );
        }
        self.mux.uncork();
        self.events.push_back(Event::CoreOpened { core });
        Ok(())
    }

    fn on_message(
        &mut self,
        core: CoreId,
        message_type: u64,
        payload: &[u8],
        owner: Option<&Bytes>,
    ) -> Result<(), ProtocolError> {
        // Types beyond the known ones are ignored, as protomux does (forward compatibility).
        // A known message that does not decode, including an unknown hash, signer or manifest
        // type inside it, destroys the stream as in hypercore 10.
        if message_type >= wire::MESSAGE_TYPES {
            return Ok(());
        }
        let msg = match owner {
            Some(owner) => Message::decode_shared(message_type, payload, owner)?,
            None => Message::decode(message_type, payload)?,
        };
        let max_remote = self.config.max_remote_requests;
        let Some(c) = self.cores.get_mut(&core) else {
            return Ok(());
        };
        if !c.opened {
            return Ok(());
        }
        match msg {
            Message::Sync(m) => {
                let (idle, send) = c.on_sync(&m);
                if c.needs_sync {
                    self.deferred_syncs.insert(core);
                }
                let remote = c.remote;
                self.events.push_back(Event::Synced { core, remote });
                if idle {
                    let _ = self.close_core(core);
                    self.events.push_back(Event::CoreClosed { core });
                } else if send {
                    let _ = self.send_sync(core);
                }
            }
            Message::Request(request) => {
                if !c.remote_requests.insert(request.id) {
                    // An id overwrite cancels the previous request with that id.
                    self.events.push_back(Event::Cancelled {
                        core,
                        request: request.id,
                    });
                } else if c.remote_requests.len() > max_remote {
                    return Err(ProtocolError::TooManyRequests(c.remote_requests.len()));
                }
                self.events.push_back(Event::Request { core, request });
            }
            Message::Cancel(id) => {
                if c.remote_requests.remove(&id) {
                    self.events
                        .push_back(Event::Cancelled { core, request: id });
                }
            }
            Message::Data(data) => {
                let matched = c
                    .inflight
                    .get(&data.request)
                    .is_some_and(|i| matches(&i.request, &data));
                if matched {
                    if let Some(ended) = c.inflight.remove(&data.request) {
                        self.answered((ended.deadline, core, data.request));
                    }
                    self.events.push_back(Event::Data {
                        core,
                        data,
                        leaf: None,
                    });
                } else if data.fork > c.local.fork || data.request == 0 {
                    self.events.push_back(Event::Unsolicited {
                        core,
                        data,
                        leaf: None,
                    });
                } else {
                    tracing::trace!(
                        core = core.0,
                        request = data.request,
                        "unmatched data dropped"
                    );
                }
            }
            Message::NoData(m) => {
                if let Some(ended) = c.inflight.remove(&m.request) {
                    self.answered((ended.deadline, core, m.request));
                    self.events.push_back(Event::NoData {
                        core,
                        request: m.request,
                        reason: m.reason,
                    });
                }
            }
            Message::Want(want) => self.events.push_back(Event::Want { core, want }),
            Message::Unwant(_) => {}
            Message::Bitfield(bitfield) => {
                if bitfield.start % 32 == 0 {
                    c.available
                        .apply_bitfield(bitfield.start, &bitfield.bitfield);
                    if c.remote.contiguous_length > bitfield.start {
                        c.remote.contiguous_length = bitfield.start;
                    }
                    self.events.push_back(Event::Bitfield { core, bitfield });
                }
            }
            Message::Range(range) => {
                if range.drop {
                    c.available.remove(range.start, range.length);
                } else {
                    c.available.insert(range.start, range.length);
                }
                if range.start == 0 && !range.drop {
                    c.remote.contiguous_length = c.remote.contiguous_length.max(range.length);
                } else if range.drop && range.start < c.remote.contiguous_length {
                    c.remote.contiguous_length = range.start;
                }
                self.events.push_back(Event::Range { core, range });
            }
            Message::Extension(Extension { name, message }) => {
                let name = if name.is_empty() {
                    match &c.last_extension_received {
                        Some(n) => n.clone(),
                        None => return Ok(()),
                    }
                } else {
                    c.last_extension_received = Some(name.clone());
                    name
                };
                self.events.push_back(Event::Extension {
                    core,
                    name,
                    message,
                });
            }
        }
        Ok(())
    }
}

/// The message type of `data` (as [`Message::message_type`] gives it).
const DATA_TYPE: u64 = 3;

/// Why [`Peer::send_data_with`] sent nothing.
enum ValueFailure<E> {
    /// The value could not be read.
    Read(E),
    /// The value read had this length, not the announced one.
    Length(usize),
}

/// Whether `data` answers `req` (spec §9.7 step 1).
fn matches(req: &Request, data: &Data) -> bool {
    data.fork == req.fork
        && data
            .block
            .as_ref()
            .is_none_or(|b| req.block.is_some_and(|r| r.index == b.index))
        && data
            .hash
            .as_ref()
            .is_none_or(|h| req.hash.is_some_and(|r| r.index == h.index))
        && data
            .seek
            .as_ref()
            .is_none_or(|s| req.seek.is_some_and(|r| r.bytes == s.bytes))
        && (data.upgrade.is_none() || req.upgrade.is_some())
}

/// Whether a request deadline is still that of a request in flight.
fn is_live(cores: &IdMap<CoreId, CoreChannel>, e: &deadlines::Entry) -> bool {
    cores
        .get(&e.1)
        .and_then(|c| c.inflight.get(&e.2))
        .is_some_and(|i| i.deadline == e.0)
}

#[cfg(test)]
mod tests;
