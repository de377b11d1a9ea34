//! The replication driver: the task that runs one [`Connection`] over one byte stream (see the
//! [module docs](super)).
//!
//! The driver works in *rounds*: everything one wake-up brings (a read of up to 256 KiB, or
//! its messages decrypted by the receiver task of `io.rs`; all queued store signals; a timer)
//! is handled with the peer corked, so the answers and requests
//! of a round leave as a few batch frames (one encryption each) and one write. Blocks applied
//! in a round are announced once per contiguous run, and request windows are refilled once per
//! core at the end of the round. Two writes happen in the middle of a round, so the peers work
//! at the same time: the requests for the room a read's answers freed go out before those
//! answers are verified and stored, and each full batch frame of answers goes out before the
//! next request is answered.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use corestore_keys::DiscoveryKey;
use corestore_proto::idhash::IdMap;
use corestore_proto::replicate::{CoreId, CoreState, Event, Peer};
use corestore_proto::wire;
use corestore_proto::{Connection, ConnectionEvent, Timestamp};
use hypercore_lite::CoreOptions;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{debug, trace};

use crate::core::{CoreEvent, LoadedCore, Signal};
use crate::error::{Error, Result};
use crate::extension::Outgoing;
use crate::store::Root;

mod conflict;
mod fetch;
mod inflight;
mod io;
mod serve;

use inflight::Inflight;
use io::{HIGH_WATER, Io, Outbox, Step};

/// How long the last queued bytes may take to reach a transport that is closing.
const CLOSE_FLUSH: Duration = Duration::from_secs(10);

/// A core attached to this stream.
struct Attached {
    core: Arc<LoadedCore>,
    /// Whether both sides opened the channel.
    opened: bool,
    /// Whether the remote sent `sync` yet.
    synced: bool,
    /// Our inflight upgrade request.
    upgrade: Option<u64>,
    /// Our block requests in flight, and the tree nodes their answers bring.
    inflight: Inflight,
    /// Blocks the remote answered `noData` for (cleared when it announces more).
    refused: HashSet<u64>,
    /// Blocks whose trimmed proof arrived before the proof it leaned on (which may never
    /// come): asked again with every node we miss.
    full: HashSet<u64>,
    /// Segments we sent `want` for.
    wanted: HashSet<u64>,
    /// A proof from the remote failed to verify: no more requests until a conflict probe
    /// says our trees agree.
    paused: bool,
}

/// What changed in a core during one round.
struct Applied {
    core: Arc<LoadedCore>,
    /// Blocks stored this round.
    blocks: Vec<u64>,
}

impl Applied {
    /// Wakes the core's sessions and tells every stream, once per contiguous run of blocks.
    fn announce(mut self) {
        if self.blocks.is_empty() {
            self.core.changed(None);
            return;
        }
        self.blocks.sort_unstable();
        self.blocks.dedup();
        for run in runs(&self.blocks) {
            self.core.changed(Some(run));
        }
    }
}

/// The state of one replication stream.
pub(super) struct Driver {
    /// Unique per stream (keys the per-stream state kept on cores).
    id: u64,
    root: Arc<Root>,
    conn: Connection,
    origin: Instant,
    span: tracing::Span,
    remote: [u8; 32],
    ready: bool,
    attached: IdMap<CoreId, Attached>,
    by_dk: HashMap<DiscoveryKey, CoreId>,
    /// Our request window per core and peer.
    max_inflight: usize,
    /// Whether block requests leave out the tree nodes that proofs still on their way bring
    /// ([`ReplicateOptions::trim_proofs`](super::ReplicateOptions::trim_proofs)).
    trim: bool,
    /// Bytes for the transport.
    outbox: Outbox,
    /// Remote requests waiting for the transport to drain below [`HIGH_WATER`].
    deferred: VecDeque<(CoreId, wire::Request)>,
    /// Cores changed by proofs applied this round (announced at the end of the round).
    applied: IdMap<CoreId, Applied>,
    /// Cores whose request window is refilled at the end of this round.
    dirty: BTreeSet<CoreId>,
    /// Block proofs received this round, verified and stored together before it ends
    /// (`fetch.rs`).
    received: Vec<fetch::Received>,
    /// Bytes of answers in the batch being corked.
    batched: usize,
    /// A batch frame of answers is complete: write it before handling the next event.
    push_now: bool,
}

impl Driver {
    pub(super) fn new(
        root: Arc<Root>,
        conn: Connection,
        max_inflight: usize,
        trim: bool,
        span: tracing::Span,
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            root,
            conn,
            origin: Instant::now(),
            span,
            remote: [0; 32],
            ready: false,
            attached: IdMap::default(),
            by_dk: HashMap::new(),
            max_inflight,
            trim,
            outbox: Outbox::default(),
            deferred: VecDeque::new(),
            applied: IdMap::default(),
            dirty: BTreeSet::new(),
            received: Vec::new(),
            batched: 0,
            push_now: false,
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from(self.origin.elapsed())
    }

    /// Runs the stream to its end.
    pub(super) async fn run<S>(mut self, stream: S, stop: Arc<Notify>) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let mut io = Io::new(stream, self.root.registry.hub.register());
        let split = split_receive();
        let stopped = stop.notified();
        tokio::pin!(stopped);
        let result = loop {
            if let Err(e) = self.answer_deferred() {
                break Err(e);
            }
            self.flush();
            let deadline = self
                .conn
                .poll_timeout()
                .map(|t| self.origin + t.since_origin());
            io.set_deadline(deadline);
            let deferred = !self.deferred.is_empty();
            let step = std::future::poll_fn(|cx| {
                io.poll_step(cx, &mut self.outbox, deferred, stopped.as_mut())
            })
            .await;
            let handled = match step {
                Step::Read(n) => {
                    let now = self.now();
                    let fed = self.conn.handle_bytes(now, io.input(n));
                    self.refill_early(&mut io);
                    let processed = self.round(&mut io, Vec::new()).await;
                    if self.ready && split && io.reads_directly() {
                        match self.conn.split_receiver() {
                            Ok(receiver) => io.spawn_receiver(receiver),
                            Err(e) => debug!(error = %e, "receiver not split off"),
                        }
                    }
                    processed.and_then(|()| fed.map_err(Error::from))
                }
                Step::Messages(messages) => {
                    let now = self.now();
                    let fed = messages
                        .into_iter()
                        .try_for_each(|m| self.conn.handle_plaintext(now, m).map(drop));
                    self.refill_early(&mut io);
                    let processed = self.round(&mut io, Vec::new()).await;
                    processed.and_then(|()| fed.map_err(Error::from))
                }
                Step::Invalid(e) => {
                    self.conn.handle_receive_error(e.clone());
                    break Err(e.into());
                }
                Step::Signals(signals) => {
                    if signals.iter().any(|s| matches!(s, Signal::Shutdown)) {
                        break Ok(());
                    }
                    self.round(&mut io, signals).await
                }
                Step::Timeout => {
                    let now = self.now();
                    self.conn.handle_timeout(now);
                    self.round(&mut io, Vec::new()).await
                }
                Step::Drained => Ok(()),
                Step::Eof | Step::Stop => break Ok(()),
                Step::Failed(e) => break Err(e.into()),
            };
            if let Err(e) = handled {
                break Err(e);
            }
        };
        self.flush();
        for (_, a) in std::mem::take(&mut self.attached) {
            self.forget(a);
        }
        // After a clean end (local close, or the remote ended the transport), failing to
        // write the last bytes to a transport the remote already dropped is not an error.
        let finished = tokio::time::timeout(CLOSE_FLUSH, self.outbox.finish(&mut io.writer)).await;
        debug!(ok = result.is_ok(), flushed = ?finished.map(|r| r.is_ok()), "replication stream ended");
        match result {
            Err(Error::Io(e)) if remote_gone(&e) => Ok(()),
            other => other,
        }
    }

    /// Handles one wake-up: `signals` from the store, then every pending connection event,
    /// with the peer corked; then announces what was applied and refills request windows.
    async fn round<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
        &mut self,
        io: &mut Io<S>,
        signals: Vec<Signal>,
    ) -> Result<()> {
        self.cork();
        self.on_signals(signals);
        let r = self.process(io).await;
        self.push_now = false;
        self.end_round();
        self.uncork();
        r
    }

    /// Before the proofs of a read are verified and stored, asks for as many blocks as they
    /// freed room for in the request windows, and writes those requests at once, so the remote
    /// works on its next answers while we verify these (the answered blocks stay in
    /// `inflight` until their `data` is handled, so none is asked for twice, and the tree
    /// nodes their proofs bring are left out of the new requests).
    fn refill_early<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(&mut self, io: &mut Io<S>) {
        let Some(peer) = self.conn.peer() else {
            return;
        };
        // A core whose peer has fewer requests in flight than we track got answers.
        let answered: Vec<CoreId> = self
            .attached
            .iter()
            .filter(|(id, a)| {
                a.opened
                    && peer.inflight(**id) < a.inflight.len() + usize::from(a.upgrade.is_some())
            })
            .map(|(id, _)| *id)
            .collect();
        if answered.is_empty() {
            return;
        }
        self.cork();
        for id in answered {
            self.fill(id);
        }
        self.uncork();
        self.push(io);
    }

    /// Writes what the connection has to send now, as far as the transport takes it without
    /// waiting (the rest goes when the round ends).
    fn push<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(&mut self, io: &mut Io<S>) {
        self.flush();
        io.write_now(&mut self.outbox);
    }

    fn cork(&mut self) {
        self.batched = 0;
        if let Some(p) = self.peer() {
            p.cork();
        }
    }

    fn uncork(&mut self) {
        if let Some(p) = self.peer() {
            p.uncork();
        }
    }

    /// Ends the batch frame being corked once it holds `bytes` more answer bytes past a
    /// frame's worth (so a round of many answers leaves as several frames the remote can
    /// start on, and the outbox sees them for back-pressure).
    fn batched(&mut self, bytes: usize) {
        /// Answer bytes per batch frame.
        const BATCH_BYTES: usize = 128 * 1024;
        self.batched += bytes;
        if self.batched >= BATCH_BYTES {
            self.uncork();
            self.cork();
            self.push_now = true;
        }
    }

    /// Announces the blocks applied this round and refills the request windows of the cores
    /// that need it.
    fn end_round(&mut self) {
        self.apply_verified();
        for (_, applied) in std::mem::take(&mut self.applied) {
            applied.announce();
        }
        for id in std::mem::take(&mut self.dirty) {
            self.fill(id);
        }
    }

    /// Answers deferred requests while the transport keeps up.
    fn answer_deferred(&mut self) -> Result<()> {
        if self.deferred.is_empty() || self.outbox.queued() >= HIGH_WATER {
            return Ok(());
        }
        self.cork();
        while self.outbox.queued() < HIGH_WATER {
            let Some((id, request)) = self.deferred.pop_front() else {
                break;
            };
            if let Err(e) = self.answer(id, &request) {
                self.uncork();
                return Err(e);
            }
            // A batch frame is complete: it joins the outbox now, so that the loop stops at
            // the high-water mark instead of answering every deferred request into memory.
            if std::mem::take(&mut self.push_now) {
                self.flush();
            }
        }
        self.uncork();
        Ok(())
    }

    /// Moves everything the connection wants to send to the outbox (each buffer as the
    /// connection hands it out: no copy), and hands the written buffers back for reuse.
    fn flush(&mut self) {
        for buf in self.outbox.spent() {
            self.conn.recycle(buf);
        }
        let now = self.now();
        loop {
            let mut buf = Vec::new();
            if self.conn.poll_transmit(now, &mut buf).is_none() {
                break;
            }
            self.outbox.push(buf);
        }
    }

    fn peer(&mut self) -> Option<&mut Peer> {
        self.conn.peer()
    }

    /// Answers the peer's question whether we can prove the remote's upgrade (a sparse core:
    /// are the full roots of the remote's length stored?), if it has one now. Called after
    /// the remote's `sync` and after our state changed.
    pub(super) fn check_upgradeable(&mut self, id: CoreId) {
        if !self.attached.contains_key(&id) {
            return;
        }
        let Some(length) = self.peer().and_then(|p| p.take_upgrade_check(id)) else {
            return;
        };
        let upgradeable = self
            .attached
            .get(&id)
            .is_some_and(|a| a.core.with(|c| Ok(c.upgradeable(length)?)).unwrap_or(false));
        trace!(length, upgradeable, "can we prove the remote's upgrade");
        if upgradeable && let Some(p) = self.peer() {
            let _ = p.set_upgradeable(id, length);
        }
    }

    /// Handles every pending connection event.
    async fn process<S: AsyncRead + AsyncWrite + Send + Unpin + 'static>(
        &mut self,
        io: &mut Io<S>,
    ) -> Result<()> {
        while let Some(event) = self.conn.poll_event() {
            if std::mem::take(&mut self.push_now) {
                self.push(io);
            }
            match event {
                ConnectionEvent::HandshakeComplete {
                    remote_public_key, ..
                } => self.on_handshake(remote_public_key),
                ConnectionEvent::Replication(e) => self.on_event(e).await?,
                ConnectionEvent::Closed(e) => return Err(e.into()),
                _ => {}
            }
        }
        Ok(())
    }

    fn on_handshake(&mut self, remote: [u8; 32]) {
        self.remote = remote;
        self.ready = true;
        let short: String = remote.iter().take(4).map(|b| format!("{b:02x}")).collect();
        self.span.record("peer", short.as_str());
        debug!("handshake complete");
        if self.root.options.passive {
            return;
        }
        if let Some(p) = self.peer() {
            p.cork();
        }
        for core in self.root.registry.loaded() {
            if self.root.registry.retain(&core) {
                self.attach(core);
            }
        }
        if let Some(p) = self.peer() {
            p.uncork();
        }
    }

    /// Opens our side of the core's channel; `core` already counts this stream as a user.
    fn attach(&mut self, core: Arc<LoadedCore>) {
        let registry = Arc::clone(&self.root.registry);
        if self.by_dk.contains_key(&core.discovery_key) {
            registry.release(&core);
            return;
        }
        let Some(state) = core_state(&core) else {
            registry.release(&core);
            return;
        };
        let key = core.key.to_bytes();
        let Some(Ok(id)) = self.peer().map(|p| p.open_core(&key, state)) else {
            registry.release(&core);
            return;
        };
        trace!(dk = %core.discovery_key, "attached");
        self.by_dk.insert(core.discovery_key, id);
        self.attached.insert(
            id,
            Attached {
                core,
                opened: false,
                synced: false,
                upgrade: None,
                inflight: Inflight::default(),
                refused: HashSet::new(),
                full: HashSet::new(),
                wanted: HashSet::new(),
                paused: false,
            },
        );
    }

    /// Drops a core from this stream's bookkeeping.
    fn forget(&self, a: Attached) {
        if a.opened {
            a.core.update_peers(|p| {
                p.peers = p.peers.saturating_sub(1);
                if a.synced {
                    p.synced = p.synced.saturating_sub(1);
                }
                p.lengths.remove(&self.id);
                p.remotes.remove(&self.id);
            });
            a.core.emit(CoreEvent::PeerRemove {
                remote_public_key: self.remote,
            });
        }
        self.root.registry.release(&a.core);
    }

    fn detach(&mut self, id: CoreId) {
        if let Some(a) = self.attached.remove(&id) {
            self.by_dk.remove(&a.core.discovery_key);
            self.forget(a);
        }
    }

    /// Handles the store's signals of one wake-up. Changes to the same core are merged: one
    /// state update and one `range` per contiguous run of new blocks the remote lacks (as
    /// hypercore's `broadcastRange`, which skips what the remote already has).
    fn on_signals(&mut self, signals: Vec<Signal>) {
        /// A changed core and the new blocks announced for it.
        type Change = (CoreId, Arc<LoadedCore>, Vec<(u64, u64)>);
        let mut changed: Vec<Change> = Vec::new();
        for signal in signals {
            match signal {
                Signal::Loaded(core) => {
                    if self.ready && !self.root.options.passive && self.root.registry.retain(&core)
                    {
                        self.attach(core);
                    }
                }
                Signal::Changed { core, new } => {
                    let Some(&id) = self.by_dk.get(&core.discovery_key) else {
                        continue;
                    };
                    let new = new.filter(|n| n.1 > 0);
                    match changed.iter_mut().find(|c| c.0 == id) {
                        Some(c) => c.2.extend(new),
                        None => changed.push((id, core, new.into_iter().collect())),
                    }
                }
                Signal::Closed(core) => {
                    if let Some(&id) = self.by_dk.get(&core.discovery_key) {
                        if let Some(p) = self.peer() {
                            let _ = p.close_core(id);
                        }
                        self.detach(id);
                    }
                }
                Signal::Conflict(conflict) => self.answer_conflict(&conflict),
                Signal::Extension(out) => self.send_extension(&out),
                Signal::Shutdown => {}
            }
        }
        for (id, core, ranges) in changed {
            if !self.attached.contains_key(&id) {
                continue;
            }
            if let Some(state) = core_state(&core)
                && let Some(p) = self.peer()
            {
                let _ = p.update_core(id, state);
                for (start, length) in merge(ranges) {
                    if !p.remote_has_range(id, start, length) {
                        let range = wire::Range {
                            drop: false,
                            start,
                            length,
                        };
                        let _ = p.send_range(id, range);
                    }
                }
            }
            self.check_upgradeable(id);
            self.dirty.insert(id);
        }
    }

    async fn on_event(&mut self, event: Event) -> Result<()> {
        match event {
            Event::RemoteOpen {
                pending,
                protocol,
                id,
            } => {
                let dk = id
                    .as_deref()
                    .filter(|_| protocol == wire::PROTOCOL)
                    .and_then(|id| DiscoveryKey::try_from(id).ok());
                let core = match dk {
                    Some(dk) => self.open_for_remote(dk).await,
                    None => None,
                };
                match core {
                    Some(core) => self.attach(core),
                    None => {
                        if let Some(p) = self.peer() {
                            p.reject(pending);
                        }
                    }
                }
            }
            Event::CoreOpened { core: id } => {
                if let Some(a) = self.attached.get_mut(&id) {
                    a.opened = true;
                    let (stream, remote) = (self.id, self.remote);
                    a.core.update_peers(|p| {
                        p.peers += 1;
                        p.remotes.insert(stream, remote);
                    });
                    a.core.emit(CoreEvent::PeerAdd {
                        remote_public_key: self.remote,
                    });
                }
                self.dirty.insert(id);
            }
            Event::CoreClosed { core: id } => self.detach(id),
            Event::Synced { core: id, remote } => {
                if let Some(a) = self.attached.get_mut(&id) {
                    let first = !a.synced;
                    a.synced = true;
                    a.refused.clear();
                    let fork = a.core.with(|c| Ok(c.fork())).unwrap_or(0);
                    let stream = self.id;
                    a.core.update_peers(|p| {
                        if first {
                            p.synced += 1;
                        }
                        if remote.fork >= fork {
                            p.lengths.insert(stream, remote.length);
                        } else {
                            p.lengths.remove(&stream);
                        }
                    });
                }
                self.check_upgradeable(id);
                self.dirty.insert(id);
            }
            Event::Request { core: id, request } => {
                if self.outbox.queued() >= HIGH_WATER || !self.deferred.is_empty() {
                    trace!(
                        request = request.id,
                        "request deferred: transport is behind"
                    );
                    self.deferred.push_back((id, request));
                } else {
                    self.answer(id, &request)?;
                }
            }
            Event::Data {
                core: id,
                data,
                leaf,
            }
            | Event::Unsolicited {
                core: id,
                data,
                leaf,
            } => {
                self.on_data(id, *data, leaf);
            }
            Event::NoData {
                core: id, request, ..
            } => {
                if let Some(a) = self.attached.get_mut(&id)
                    && let Some(asked) = a.inflight.remove(request)
                {
                    a.refused.insert(asked.index);
                }
                self.settle(id, request);
            }
            Event::RequestTimedOut { core: id, request } => {
                if let Some(a) = self.attached.get_mut(&id) {
                    a.inflight.remove(request);
                }
                self.settle(id, request);
            }
            Event::Want { core: id, want } => self.answer_want(id, &want),
            Event::Extension {
                core: id,
                name,
                message,
            } => {
                if let Some(a) = self.attached.get(&id) {
                    a.core.deliver_extension(&name, self.remote, message);
                }
            }
            Event::Range { core: id, .. } | Event::Bitfield { core: id, .. } => {
                if let Some(a) = self.attached.get_mut(&id) {
                    a.refused.clear();
                }
                self.dirty.insert(id);
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends an extension message on the core's channel, if it is open (and, for a message
    /// to one peer, if this stream's remote is that peer).
    fn send_extension(&mut self, out: &Outgoing) {
        if out.to.is_some_and(|to| to != self.remote) {
            return;
        }
        let Some(&id) = self.by_dk.get(&out.discovery_key) else {
            return;
        };
        if !self.attached.get(&id).is_some_and(|a| a.opened) {
            return;
        }
        if let Some(p) = self.peer()
            && let Err(e) = p.send_extension(id, &out.name, &out.message)
        {
            debug!(error = %e, name = &*out.name, "extension message not sent");
        }
    }

    /// The core a remote asks for, if it is loaded or stored (counted as a user).
    async fn open_for_remote(&mut self, dk: DiscoveryKey) -> Option<Arc<LoadedCore>> {
        if let Some(core) = self.root.registry.acquire(&dk) {
            return Some(core);
        }
        let options = CoreOptions::new().create(false);
        match self.root.load(dk, options, |c, _, _| Ok(c)).await {
            Ok(core) => Some(core),
            Err(e) => {
                trace!(%dk, error = %e, "remote asked for a core we do not have");
                None
            }
        }
    }
}

/// Whether framing and decryption get a task of their own once the handshake is done: only
/// where tasks run in parallel (a multi-threaded runtime); on one thread the hop through a
/// channel would only add work.
fn split_receive() -> bool {
    tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
}

/// What the protocol needs to know about our copy of a core.
fn core_state(core: &LoadedCore) -> Option<CoreState> {
    core.with(|c| {
        Ok(CoreState {
            fork: c.fork(),
            length: c.length(),
            contiguous_length: c.contiguous_length(),
            downloading: true,
            has_manifest: !c.is_compat() && c.manifest().is_some(),
        })
    })
    .ok()
}

/// Whether an I/O error only says that the remote dropped the transport (a normal end).
fn remote_gone(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        e.kind(),
        BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
    )
}

/// `sorted` (ascending, distinct) as contiguous runs `(start, length)`.
fn runs(sorted: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &i in sorted {
        match out.last_mut() {
            Some((start, len)) if *start + *len == i => *len += 1,
            _ => out.push((i, 1)),
        }
    }
    out
}

/// Overlapping or touching ranges `(start, length)` merged, in ascending order.
fn merge(mut ranges: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    ranges.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (start, len) in ranges {
        let end = start.saturating_add(len);
        match out.last_mut() {
            Some((s, l)) if s.saturating_add(*l) >= start => {
                *l = (*l).max(end - *s);
            }
            _ => out.push((start, len)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{merge, runs};

    #[test]
    fn runs_and_merges() {
        assert_eq!(runs(&[]), vec![]);
        assert_eq!(runs(&[1, 2, 3, 5, 7, 8]), vec![(1, 3), (5, 1), (7, 2)]);
        assert_eq!(
            merge(vec![(10, 2), (0, 3), (3, 2), (11, 5), (20, 1)]),
            vec![(0, 5), (10, 6), (20, 1)]
        );
    }
}
