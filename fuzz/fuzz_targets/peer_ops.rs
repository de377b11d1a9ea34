//! `corestore_proto::replicate::Peer`: an `Arbitrary` sequence of local commands and inbound
//! messages against one peer (the responder of a plain-mode session), with an honest remote
//! peer so that core channels really open and capabilities check out.
//!
//! Inbound messages come from three places: the honest remote's own commands, structured
//! `hypercore/alpha` messages injected on a channel, and raw protomux bytes.
//!
//! Invariants, checked after every step: no panic; a failure is reported once and is sticky
//! (`handle_message` keeps failing); events only name cores that `open_core` returned; `Data`,
//! `NoData` and `RequestTimedOut` answer a request of ours that is still outstanding, and
//! `inflight` equals the number of outstanding requests per core (never above `max_inflight`);
//! while requests are outstanding a timeout is armed no later than the earliest deadline, and
//! after `handle_timeout(now)` no outstanding request has a deadline at or before `now`.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use corestore_keys::compact::Encoder;
use corestore_proto::Timestamp;
use corestore_proto::mux::PendingOpen;
use corestore_proto::replicate::{
    CoreId, CoreState, Event, Peer, PeerConfig, RequestSpec, Session,
};
use corestore_proto::wire::{
    self, Bitfield, Data, DataBlock, DataHash, DataSeek, DataUpgrade, Extension, Message, NoData,
    Range, Request, RequestBlock, RequestSeek, RequestUpgrade, Sync, Want,
};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// The core keys both sides know.
const KEYS: [[u8; 32]; 3] = [[7; 32], [8; 32], [9; 32]];

/// Mostly small numbers, so that ids, lengths and indices meet; sometimes anything.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum Num {
    Small(u8),
    Medium(u16),
    Any(u64),
}

impl Num {
    fn get(self) -> u64 {
        match self {
            Self::Small(n) => u64::from(n),
            Self::Medium(n) => u64::from(n),
            Self::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct State {
    fork: u8,
    length: Num,
    contiguous_length: Num,
    downloading: bool,
    has_manifest: bool,
}

impl From<State> for CoreState {
    fn from(s: State) -> Self {
        Self {
            fork: u64::from(s.fork),
            length: s.length.get(),
            contiguous_length: s.contiguous_length.get(),
            downloading: s.downloading,
            has_manifest: s.has_manifest,
        }
    }
}

#[derive(Arbitrary, Debug, Clone)]
struct Spec {
    block: Option<(Num, Num)>,
    hash: Option<(Num, Num)>,
    seek: Option<(Num, Num)>,
    upgrade: Option<(Num, Num)>,
    manifest: bool,
    priority: u8,
}

impl From<&Spec> for RequestSpec {
    fn from(s: &Spec) -> Self {
        let pair = |p: Option<(Num, Num)>| p.map(|(a, b)| (a.get(), b.get()));
        Self {
            block: pair(s.block).map(|(index, nodes)| RequestBlock { index, nodes }),
            hash: pair(s.hash).map(|(index, nodes)| RequestBlock { index, nodes }),
            seek: pair(s.seek).map(|(bytes, padding)| RequestSeek { bytes, padding }),
            upgrade: pair(s.upgrade).map(|(start, length)| RequestUpgrade { start, length }),
            manifest: s.manifest,
            priority: u64::from(s.priority % 3),
        }
    }
}

/// A `data` message: which parts are present and their small fields.
#[derive(Arbitrary, Debug, Clone)]
struct DataMsg {
    request: Num,
    fork: u8,
    block: Option<(Num, Vec<u8>)>,
    hash: Option<Num>,
    seek: Option<Num>,
    upgrade: Option<(Num, Num, u8)>,
    nodes: u8,
}

impl DataMsg {
    fn build(&self) -> Data {
        let nodes = || -> Vec<wire::Node> {
            (0..u64::from(self.nodes % 4))
                .map(|i| wire::Node {
                    index: i,
                    size: i,
                    hash: [i as u8; 32],
                })
                .collect()
        };
        Data {
            request: self.request.get(),
            fork: u64::from(self.fork),
            block: self.block.as_ref().map(|(index, value)| DataBlock {
                index: index.get(),
                value: value.clone().into(),
                nodes: nodes(),
            }),
            hash: self.hash.map(|index| DataHash {
                index: index.get(),
                nodes: nodes(),
            }),
            seek: self.seek.map(|bytes| DataSeek {
                bytes: bytes.get(),
                nodes: nodes(),
            }),
            upgrade: self.upgrade.map(|(start, length, sig)| DataUpgrade {
                start: start.get(),
                length: length.get(),
                nodes: nodes(),
                additional_nodes: Vec::new(),
                signature: vec![sig; 64],
            }),
            manifest: None,
        }
    }
}

/// A structured `hypercore/alpha` message.
#[derive(Arbitrary, Debug, Clone)]
enum WireMsg {
    Sync {
        fork: u8,
        length: Num,
        remote_length: Num,
        flags: u8,
    },
    Request {
        id: Num,
        fork: u8,
        spec: Spec,
    },
    Cancel(Num),
    Data(DataMsg),
    NoData {
        request: Num,
        reason: Option<Num>,
    },
    Want {
        start: Num,
        length: Num,
        any: bool,
    },
    Unwant {
        start: Num,
        length: Num,
    },
    Bitfield {
        start: Num,
        words: Vec<u32>,
    },
    Range {
        drop: bool,
        start: Num,
        length: Num,
    },
    Extension {
        name: String,
        message: Vec<u8>,
    },
}

impl WireMsg {
    fn build(&self) -> Message {
        match self {
            Self::Sync {
                fork,
                length,
                remote_length,
                flags,
            } => Message::Sync(Sync {
                fork: u64::from(*fork),
                length: length.get(),
                remote_length: remote_length.get(),
                can_upgrade: flags & 1 != 0,
                uploading: flags & 2 != 0,
                downloading: flags & 4 != 0,
                has_manifest: flags & 8 != 0,
                allow_push: flags & 16 != 0,
            }),
            Self::Request { id, fork, spec } => {
                let s = RequestSpec::from(spec);
                Message::Request(Request {
                    id: id.get(),
                    fork: u64::from(*fork),
                    block: s.block,
                    hash: s.hash,
                    seek: s.seek,
                    upgrade: s.upgrade,
                    manifest: s.manifest,
                    priority: s.priority,
                })
            }
            Self::Cancel(id) => Message::Cancel(id.get()),
            Self::Data(d) => Message::Data(Box::new(d.build())),
            Self::NoData { request, reason } => Message::NoData(NoData {
                request: request.get(),
                reason: reason.map(Num::get),
            }),
            Self::Want { start, length, any } => Message::Want(Want {
                start: start.get(),
                length: length.get(),
                any: *any,
            }),
            Self::Unwant { start, length } => Message::Unwant(Want {
                start: start.get(),
                length: length.get(),
                any: false,
            }),
            Self::Bitfield { start, words } => Message::Bitfield(Bitfield {
                start: start.get(),
                bitfield: words.clone(),
            }),
            Self::Range {
                drop,
                start,
                length,
            } => Message::Range(Range {
                drop: *drop,
                start: start.get(),
                length: length.get(),
            }),
            Self::Extension { name, message } => Message::Extension(Extension {
                name: name.clone(),
                message: message.clone(),
            }),
        }
    }
}

/// What the honest remote does; its messages are delivered to the peer under test.
#[derive(Arbitrary, Debug, Clone)]
enum RemoteOp {
    OpenCore {
        key: u8,
        state: State,
    },
    CloseCore {
        core: u8,
    },
    UpdateCore {
        core: u8,
        state: State,
    },
    Request {
        core: u8,
        spec: Spec,
    },
    /// Answer the remote's oldest unanswered request (with data or noData).
    Answer {
        data: Option<DataMsg>,
    },
    Range {
        core: u8,
        drop: bool,
        start: Num,
        length: Num,
    },
    Want {
        core: u8,
        start: Num,
        length: Num,
    },
    Bitfield {
        core: u8,
        start: Num,
        words: Vec<u32>,
    },
    Extension {
        core: u8,
        name: String,
        message: Vec<u8>,
    },
    Probe {
        core: u8,
        length: Num,
    },
}

/// One step.
#[derive(Arbitrary, Debug, Clone)]
enum Op {
    OpenCore {
        key: u8,
        state: State,
    },
    /// Answer a pending remote open: accept with the key whose discovery key it names, or reject.
    AnswerOpen {
        pending: u8,
        accept: bool,
    },
    CloseCore {
        core: u8,
    },
    UpdateCore {
        core: u8,
        state: State,
    },
    SendSync {
        core: u8,
    },
    Probe {
        core: u8,
        length: Num,
    },
    Request {
        core: u8,
        spec: Spec,
    },
    Cancel {
        core: u8,
        request: u8,
    },
    SendData {
        core: u8,
        data: DataMsg,
    },
    /// `send_data_with`: the block value read into the message (0), a failed read (1), or a
    /// read of the wrong length (2).
    SendDataWith {
        core: u8,
        data: DataMsg,
        read: u8,
    },
    SendNoData {
        core: u8,
        request: Num,
    },
    SendRange {
        core: u8,
        drop: bool,
        start: Num,
        length: Num,
    },
    SendWant {
        core: u8,
        start: Num,
        length: Num,
    },
    SendBitfield {
        core: u8,
        start: Num,
        words: Vec<u32>,
    },
    SendExtension {
        core: u8,
        name: String,
        message: Vec<u8>,
    },
    Cork,
    Uncork,
    /// Time passes (in 100 ms steps), then both sides handle their timeouts.
    Advance(u16),
    /// Our messages reach the remote.
    Flush,
    Remote(RemoteOp),
    /// A structured message on remote channel `channel` (as the remote numbers them).
    Inject {
        channel: u8,
        message: WireMsg,
    },
    InjectRaw(Vec<u8>),
}

/// The peer under test and everything the harness knows about it.
struct Harness {
    peer: Peer,
    remote: Peer,
    now: Timestamp,
    timeout: Duration,
    max_inflight: usize,
    /// Cores `open_core` returned that are not closed yet.
    cores: Vec<CoreId>,
    /// Every core `open_core` ever returned.
    issued: BTreeSet<CoreId>,
    /// Our outstanding requests and their deadlines.
    outstanding: BTreeMap<(CoreId, u64), Timestamp>,
    /// The id the next request of each core gets (ids count up from 1 per core).
    next_id: BTreeMap<CoreId, u64>,
    pending: Vec<(PendingOpen, Option<Vec<u8>>)>,
    failed: bool,
    remote_cores: Vec<CoreId>,
    remote_requests: Vec<(CoreId, u64)>,
}

fn pick<T: Copy>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(i) % items.len()])
}

fn key_for(dk: Option<&[u8]>) -> Option<[u8; 32]> {
    KEYS.into_iter().find(|k| {
        Some(
            corestore_keys::Key::from_bytes(*k)
                .discovery_key()
                .as_bytes()
                .as_slice(),
        ) == dk
    })
}

impl Harness {
    fn new() -> Self {
        let session = |initiator| Session {
            initiator,
            handshake_hash: [1; 64],
            remote_public_key: [0; 32],
        };
        let config = PeerConfig::default();
        let (timeout, max_inflight) = (config.request_timeout, config.max_inflight);
        Self {
            peer: Peer::new(session(false), config.clone()),
            remote: Peer::new(session(true), config),
            now: Timestamp::ZERO,
            timeout,
            max_inflight,
            cores: Vec::new(),
            issued: BTreeSet::new(),
            outstanding: BTreeMap::new(),
            next_id: BTreeMap::new(),
            pending: Vec::new(),
            failed: false,
            remote_cores: Vec::new(),
            remote_requests: Vec::new(),
        }
    }

    fn core(&self, i: u8) -> Option<CoreId> {
        pick(&self.cores, i)
    }

    fn remote_core(&self, i: u8) -> Option<CoreId> {
        pick(&self.remote_cores, i)
    }

    /// Feeds one message to the peer under test.
    fn deliver(&mut self, msg: &[u8]) {
        let r = self.peer.handle_message(self.now, msg);
        if self.failed {
            assert!(r.is_err(), "a failed peer accepted a message");
        }
        self.drain();
    }

    /// Delivers everything the remote sent.
    fn remote_to_peer(&mut self) {
        while let Some(m) = self.remote.poll_message() {
            self.deliver(&m);
        }
    }

    /// Delivers everything we sent to the remote, and lets it answer opens.
    fn peer_to_remote(&mut self) {
        while let Some(m) = self.peer.poll_message() {
            let _ = self.remote.handle_message(self.now, &m);
        }
        self.drain_remote();
    }

    fn drain_remote(&mut self) {
        while let Some(e) = self.remote.poll_event() {
            match e {
                Event::Request { core, request, .. } => {
                    self.remote_requests.push((core, request.id))
                }
                Event::CoreClosed { core, .. } => self.remote_cores.retain(|c| *c != core),
                _ => {}
            }
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.peer.poll_event() {
            let core = match &e {
                Event::CoreOpened { core, .. }
                | Event::CoreClosed { core, .. }
                | Event::Synced { core, .. }
                | Event::Request { core, .. }
                | Event::Cancelled { core, .. }
                | Event::Data { core, .. }
                | Event::Unsolicited { core, .. }
                | Event::NoData { core, .. }
                | Event::RequestTimedOut { core, .. }
                | Event::Want { core, .. }
                | Event::Range { core, .. }
                | Event::Bitfield { core, .. }
                | Event::Extension { core, .. } => Some(*core),
                _ => None,
            };
            if let Some(core) = core {
                assert!(
                    self.issued.contains(&core),
                    "event for a core never opened: {e:?}"
                );
            }
            match e {
                Event::RemoteOpen { pending, id, .. } => self.pending.push((pending, id)),
                Event::CoreClosed { core, .. } => {
                    self.cores.retain(|c| *c != core);
                    self.outstanding.retain(|(c, _), _| *c != core);
                }
                Event::Data { core, data, .. } => {
                    assert!(
                        self.outstanding.remove(&(core, data.request)).is_some(),
                        "Data for a request that is not outstanding: {}",
                        data.request
                    );
                }
                Event::NoData { core, request, .. } => {
                    assert!(
                        self.outstanding.remove(&(core, request)).is_some(),
                        "NoData for {request}"
                    );
                }
                Event::RequestTimedOut { core, request, .. } => {
                    assert!(
                        self.outstanding.remove(&(core, request)).is_some(),
                        "timeout for {request}"
                    );
                }
                Event::Failed(_) => {
                    assert!(!self.failed, "Failed reported twice");
                    self.failed = true;
                }
                _ => {}
            }
        }
    }

    fn check(&self) {
        for &core in &self.cores {
            let n = self.outstanding.keys().filter(|(c, _)| *c == core).count();
            assert_eq!(
                self.peer.inflight(core),
                n,
                "inflight disagrees with the requests outstanding"
            );
            assert!(n <= self.max_inflight);
        }
        if let Some(earliest) = self.outstanding.values().min() {
            let armed = self.peer.poll_timeout();
            assert!(
                armed.is_some_and(|t| t <= *earliest),
                "no timeout armed for deadline {earliest:?}: {armed:?}"
            );
        }
    }

    fn step(&mut self, op: &Op) {
        match op {
            Op::OpenCore { key, state } => {
                let key = KEYS[usize::from(*key) % KEYS.len()];
                if let Ok(core) = self.peer.open_core(&key, (*state).into()) {
                    assert!(self.issued.insert(core), "open_core returned a used CoreId");
                    self.cores.push(core);
                }
            }
            Op::AnswerOpen { pending, accept } => {
                if let Some(i) =
                    (!self.pending.is_empty()).then(|| usize::from(*pending) % self.pending.len())
                {
                    let (p, id) = self.pending.swap_remove(i);
                    match key_for(id.as_deref()) {
                        Some(key) if *accept => {
                            if let Ok(core) = self.peer.open_core(&key, CoreState::default()) {
                                assert!(self.issued.insert(core));
                                self.cores.push(core);
                            }
                        }
                        _ => self.peer.reject(p),
                    }
                }
            }
            Op::CloseCore { core } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.close_core(c);
                    self.cores.retain(|x| *x != c);
                    self.outstanding.retain(|(x, _), _| *x != c);
                }
            }
            Op::UpdateCore { core, state } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.update_core(c, (*state).into());
                }
            }
            Op::SendSync { core } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.send_sync(c);
                }
            }
            Op::Probe { core, length } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.probe(c, length.get());
                }
            }
            Op::Request { core, spec } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.upgrade_to_request(c);
                    let before = self.peer.inflight(c);
                    let deadline = self.now + self.timeout;
                    match self.peer.request(self.now, c, spec.into()) {
                        Ok(id) => {
                            assert!(
                                self.outstanding.insert((c, id), deadline).is_none(),
                                "request id reused"
                            );
                            self.next_id.insert(c, id + 1);
                        }
                        // A refused request leaves no state (regression:
                        // fuzz/regressions/peer_ops-request-after-failure.bin).
                        Err(e) => assert_eq!(
                            self.peer.inflight(c),
                            before,
                            "request failed ({e}) but stays in flight"
                        ),
                    }
                }
            }
            Op::Cancel { core, request } => {
                if let Some(c) = self.core(*core) {
                    let id = u64::from(*request);
                    let known = self.outstanding.remove(&(c, id)).is_some();
                    let cancelled = self.peer.cancel(c, id).is_ok();
                    // A failed peer forgets the request but cannot send the cancel.
                    if !self.failed {
                        assert_eq!(cancelled, known, "cancel of request {id}");
                    }
                }
            }
            Op::SendData { core, data } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.send_data(c, data.build());
                }
            }
            Op::SendDataWith { core, data, read } => {
                if let Some(c) = self.core(*core) {
                    let mut d = data.build();
                    let value = d
                        .block
                        .as_mut()
                        .map(|b| std::mem::take(&mut b.value))
                        .unwrap_or_default();
                    let _ = self
                        .peer
                        .send_data_with(c, d, value.len(), |out| match read % 3 {
                            0 => {
                                out.extend_from_slice(&value);
                                Ok(())
                            }
                            1 => Err(()),
                            _ => {
                                out.extend_from_slice(&value);
                                out.push(0);
                                Ok(())
                            }
                        });
                }
            }
            Op::SendNoData { core, request } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.send_no_data(c, request.get());
                }
            }
            Op::SendRange {
                core,
                drop,
                start,
                length,
            } => {
                if let Some(c) = self.core(*core) {
                    let range = Range {
                        drop: *drop,
                        start: start.get(),
                        length: length.get(),
                    };
                    let _ = self.peer.send_range(c, range);
                }
            }
            Op::SendWant {
                core,
                start,
                length,
            } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.send_want(c, start.get(), length.get());
                }
            }
            Op::SendBitfield { core, start, words } => {
                if let Some(c) = self.core(*core) {
                    let bitfield = Bitfield {
                        start: start.get(),
                        bitfield: words.clone(),
                    };
                    let _ = self.peer.send_bitfield(c, bitfield);
                }
            }
            Op::SendExtension {
                core,
                name,
                message,
            } => {
                if let Some(c) = self.core(*core) {
                    let _ = self.peer.send_extension(c, name, message);
                }
            }
            Op::Cork => self.peer.cork(),
            Op::Uncork => self.peer.uncork(),
            Op::Advance(steps) => {
                self.now = self.now + Duration::from_millis(u64::from(*steps) * 100);
                self.peer.handle_timeout(self.now);
                self.remote.handle_timeout(self.now);
                self.drain();
                let now = self.now;
                assert!(
                    self.outstanding.values().all(|d| *d > now),
                    "a request past its deadline survived handle_timeout"
                );
            }
            Op::Flush => self.peer_to_remote(),
            Op::Remote(r) => {
                self.remote_step(r);
                self.remote_to_peer();
            }
            Op::Inject { channel, message } => {
                let m = message.build();
                let mut frame = Encoder::new();
                frame
                    .uint(u64::from(*channel))
                    .uint(m.message_type())
                    .raw(&m.encode());
                self.deliver(frame.as_bytes());
            }
            Op::InjectRaw(bytes) => self.deliver(bytes),
        }
        self.drain();
        self.drain_remote();
        self.check();
    }

    fn remote_step(&mut self, op: &RemoteOp) {
        match op {
            RemoteOp::OpenCore { key, state } => {
                // Also accepts a pending open of ours for the same key.
                let key = KEYS[usize::from(*key) % KEYS.len()];
                if let Ok(core) = self.remote.open_core(&key, (*state).into()) {
                    self.remote_cores.push(core);
                }
            }
            RemoteOp::CloseCore { core } => {
                if let Some(c) = self.remote_core(*core) {
                    let _ = self.remote.close_core(c);
                    self.remote_cores.retain(|x| *x != c);
                }
            }
            RemoteOp::UpdateCore { core, state } => {
                if let Some(c) = self.remote_core(*core) {
                    let _ = self.remote.update_core(c, (*state).into());
                }
            }
            RemoteOp::Request { core, spec } => {
                if let Some(c) = self.remote_core(*core) {
                    let _ = self.remote.request(self.now, c, spec.into());
                }
            }
            RemoteOp::Answer { data } => {
                if !self.remote_requests.is_empty() {
                    let (c, id) = self.remote_requests.remove(0);
                    match data {
                        Some(d) => {
                            let mut d = d.build();
                            d.request = id;
                            let _ = self.remote.send_data(c, d);
                        }
                        None => {
                            let _ = self.remote.send_no_data(c, id);
                        }
                    }
                }
            }
            RemoteOp::Range {
                core,
                drop,
                start,
                length,
            } => {
                if let Some(c) = self.remote_core(*core) {
                    let range = Range {
                        drop: *drop,
                        start: start.get(),
                        length: length.get(),
                    };
                    let _ = self.remote.send_range(c, range);
                }
            }
            RemoteOp::Want {
                core,
                start,
                length,
            } => {
                if let Some(c) = self.remote_core(*core) {
                    let _ = self.remote.send_want(c, start.get(), length.get());
                }
            }
            RemoteOp::Bitfield { core, start, words } => {
                if let Some(c) = self.remote_core(*core) {
                    let bitfield = Bitfield {
                        start: start.get(),
                        bitfield: words.clone(),
                    };
                    let _ = self.remote.send_bitfield(c, bitfield);
                }
            }
            RemoteOp::Extension {
                core,
                name,
                message,
            } => {
                if let Some(c) = self.remote_core(*core) {
                    let _ = self.remote.send_extension(c, name, message);
                }
            }
            RemoteOp::Probe { core, length } => {
                if let Some(c) = self.remote_core(*core) {
                    let _ = self.remote.probe(c, length.get());
                }
            }
        }
        self.drain_remote();
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let mut h = Harness::new();
    for op in ops.iter().take(256) {
        h.step(op);
    }
});
