//! The replication driver: the task that runs one [`Connection`] over one byte stream (see the
//! [module docs](super)).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use corestore_keys::DiscoveryKey;
use corestore_proto::replicate::{CoreId, CoreState, Event, Peer, RequestSpec};
use corestore_proto::wire::{self, RequestBlock};
use corestore_proto::{Connection, ConnectionEvent, Timestamp};
use hypercore_lite::CoreOptions;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tracing::{debug, trace};

use super::convert;
use crate::core::{CoreEvent, LoadedCore, Signal};
use crate::error::{Error, Result};
use crate::store::Root;

mod serve;

/// Output bytes queued for the writer above which remote requests wait.
const HIGH_WATER: usize = 1 << 20;
/// Deferred requests answered between two checks of the writer's backlog.
const DEFERRED_BATCH: usize = 16;
/// Blocks per availability segment (hypercore asks `want` per segment).
const SEGMENT: u64 = 2_097_152;

/// A core attached to this stream.
struct Attached {
    core: Arc<LoadedCore>,
    /// Whether both sides opened the channel.
    opened: bool,
    /// Whether the remote sent `sync` yet.
    synced: bool,
    /// Our inflight upgrade request.
    upgrade: Option<u64>,
    /// Our inflight block requests: request id → block.
    blocks: HashMap<u64, u64>,
    /// Blocks requested and not yet answered.
    requested: HashSet<u64>,
    /// Blocks the remote answered `noData` for (cleared when it announces more).
    refused: HashSet<u64>,
    /// Segments we sent `want` for.
    wanted: HashSet<u64>,
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
    attached: HashMap<CoreId, Attached>,
    by_dk: HashMap<DiscoveryKey, CoreId>,
    out: Vec<u8>,
    /// Bytes handed to the writer task and not yet written.
    pending: Arc<AtomicUsize>,
    /// Signalled by the writer when `pending` drops below [`HIGH_WATER`].
    drained: Arc<Notify>,
    /// The writer task's inbox, while the stream runs.
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    /// Remote requests waiting for the writer to catch up.
    deferred: VecDeque<(CoreId, wire::Request)>,
}

impl Driver {
    pub(super) fn new(root: Arc<Root>, conn: Connection, span: tracing::Span) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Self {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            root,
            conn,
            origin: Instant::now(),
            span,
            remote: [0; 32],
            ready: false,
            attached: HashMap::new(),
            by_dk: HashMap::new(),
            out: Vec::new(),
            pending: Arc::new(AtomicUsize::new(0)),
            drained: Arc::new(Notify::new()),
            deferred: VecDeque::new(),
            tx: None,
        }
    }

    /// Whether the writer is behind by more than [`HIGH_WATER`] bytes.
    fn congested(&self) -> bool {
        self.pending.load(Ordering::Acquire) >= HIGH_WATER
    }

    /// Answers a batch of deferred requests.
    fn answer_deferred(&mut self) {
        for _ in 0..DEFERRED_BATCH {
            let Some((id, request)) = self.deferred.pop_front() else {
                return;
            };
            self.answer(id, &request);
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
        let (mut rd, wr) = tokio::io::split(stream);
        let (tx, rx) = mpsc::unbounded_channel::<Vec<u8>>();
        self.tx = Some(tx);
        let writer = tokio::spawn(write_loop(
            wr,
            rx,
            Arc::clone(&self.pending),
            Arc::clone(&self.drained),
        ));
        let drained = Arc::clone(&self.drained);
        let mut signals = self.root.registry.hub.register();
        let mut buf = vec![0u8; 64 * 1024];
        let result = loop {
            if let Err(e) = self.flush() {
                break Err(e);
            }
            let deadline = self
                .conn
                .poll_timeout()
                .map(|t| self.origin + t.since_origin());
            tokio::select! {
                read = rd.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => break Ok(()),
                        Ok(n) => n,
                        Err(e) => break Err(e.into()),
                    };
                    let now = self.now();
                    let handled = self.conn.handle_bytes(now, buf.get(..n).unwrap_or_default());
                    if let Err(e) = self.process().await {
                        break Err(e);
                    }
                    if let Err(e) = handled {
                        break Err(e.into());
                    }
                }
                signal = signals.recv() => {
                    match signal {
                        None | Some(Signal::Shutdown) => break Ok(()),
                        Some(s) => self.on_signal(s),
                    }
                    if let Err(e) = self.process().await {
                        break Err(e);
                    }
                }
                () = sleep_until(deadline) => {
                    let now = self.now();
                    self.conn.handle_timeout(now);
                    if let Err(e) = self.process().await {
                        break Err(e);
                    }
                }
                // Answer deferred requests while the writer keeps up (JavaScript also queues
                // requests while protomux is not drained).
                () = std::future::ready(()), if !self.deferred.is_empty() && !self.congested() => {
                    self.answer_deferred();
                }
                () = drained.notified(), if !self.deferred.is_empty() => {}
                () = stop.notified() => break Ok(()),
            }
        };
        let _ = self.flush();
        self.tx = None;
        for (_, a) in std::mem::take(&mut self.attached) {
            self.forget(a);
        }
        let written = writer.await;
        debug!(ok = result.is_ok(), "replication stream ended");
        // After a clean end (local close, or the remote ended the transport), failing to
        // write the last bytes to a transport the remote already dropped is not an error;
        // otherwise the writer's own error explains a failed flush best.
        let result = match (result, written) {
            (Ok(()), _) => Ok(()),
            (Err(_), Ok(Err(e))) => Err(e),
            (Err(e), _) => Err(e),
        };
        match result {
            Err(Error::Io(e)) if remote_gone(&e) => Ok(()),
            other => other,
        }
    }

    /// Moves everything the connection wants to send to the writer task.
    fn flush(&mut self) -> Result<()> {
        let Some(tx) = &self.tx else {
            return Ok(());
        };
        let now = self.now();
        while self.conn.poll_transmit(now, &mut self.out).is_some() {}
        if !self.out.is_empty() {
            self.pending.fetch_add(self.out.len(), Ordering::AcqRel);
            tx.send(std::mem::take(&mut self.out))
                .map_err(|_| Error::Io(std::io::ErrorKind::BrokenPipe.into()))?;
        }
        Ok(())
    }

    fn peer(&mut self) -> Option<&mut Peer> {
        self.conn.peer()
    }

    /// Handles every pending connection event.
    async fn process(&mut self) -> Result<()> {
        while let Some(event) = self.conn.poll_event() {
            match event {
                ConnectionEvent::HandshakeComplete {
                    remote_public_key, ..
                } => self.on_handshake(remote_public_key),
                ConnectionEvent::Replication(e) => self.on_event(e).await,
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
                blocks: HashMap::new(),
                requested: HashSet::new(),
                refused: HashSet::new(),
                wanted: HashSet::new(),
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

    fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Loaded(core) => {
                if self.ready && !self.root.options.passive && self.root.registry.retain(&core) {
                    self.attach(core);
                }
            }
            Signal::Changed { core, new } => {
                let Some(&id) = self.by_dk.get(&core.discovery_key) else {
                    return;
                };
                if let Some(state) = core_state(&core)
                    && let Some(p) = self.peer()
                {
                    let _ = p.update_core(id, state);
                    if let Some((start, length)) = new.filter(|n| n.1 > 0) {
                        let _ = p.send_range(
                            id,
                            wire::Range {
                                drop: false,
                                start,
                                length,
                            },
                        );
                    }
                }
                self.fill(id);
            }
            Signal::Closed(core) => {
                if let Some(&id) = self.by_dk.get(&core.discovery_key) {
                    if let Some(p) = self.peer() {
                        let _ = p.close_core(id);
                    }
                    self.detach(id);
                }
            }
            Signal::Shutdown => {}
        }
    }

    async fn on_event(&mut self, event: Event) {
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
                    a.core.update_peers(|p| p.peers += 1);
                    a.core.emit(CoreEvent::PeerAdd {
                        remote_public_key: self.remote,
                    });
                }
                self.fill(id);
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
                self.fill(id);
            }
            Event::Request { core: id, request } => {
                // Hand the answers so far to the writer, so that the backlog is current.
                let _ = self.flush();
                if self.congested() || !self.deferred.is_empty() {
                    trace!(request = request.id, "request deferred: writer is behind");
                    self.deferred.push_back((id, request));
                } else {
                    self.answer(id, &request);
                }
            }
            Event::Data { core: id, data } | Event::Unsolicited { core: id, data } => {
                self.on_data(id, *data);
            }
            Event::NoData {
                core: id, request, ..
            } => {
                if let Some(a) = self.attached.get_mut(&id)
                    && let Some(index) = a.blocks.remove(&request)
                {
                    a.requested.remove(&index);
                    a.refused.insert(index);
                }
                self.settle(id, request);
            }
            Event::RequestTimedOut { core: id, request } => {
                if let Some(a) = self.attached.get_mut(&id)
                    && let Some(index) = a.blocks.remove(&request)
                {
                    a.requested.remove(&index);
                }
                self.settle(id, request);
            }
            Event::Want { core: id, want } => self.answer_want(id, &want),
            Event::Range { core: id, .. } | Event::Bitfield { core: id, .. } => {
                if let Some(a) = self.attached.get_mut(&id) {
                    a.refused.clear();
                }
                self.fill(id);
            }
            _ => {}
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

    /// Forgets a finished request and asks for more.
    fn settle(&mut self, id: CoreId, request: u64) {
        if let Some(a) = self.attached.get_mut(&id)
            && a.upgrade == Some(request)
        {
            a.upgrade = None;
        }
        self.fill(id);
    }

    /// Sends the upgrade and block requests this core needs from this peer now.
    fn fill(&mut self, id: CoreId) {
        let now = self.now();
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        let Some(peer) = self.conn.peer() else {
            return;
        };
        let Some(remote) = peer.remote_state(id) else {
            return;
        };
        let Ok((fork, has_manifest)) = a.core.with(|c| Ok((c.fork(), c.manifest().is_some())))
        else {
            return;
        };
        // Readers of manifest (non-compat, corestore 7) cores learn the manifest with their
        // first upgrade.
        let manifest = remote.has_manifest && !has_manifest;
        if !a.opened || !remote.synced {
            return;
        }
        if remote.fork > fork {
            // The remote truncated: ask for its whole new head (a fork proof) and reorg.
            if a.upgrade.is_none() && remote.length > 0 {
                let spec = RequestSpec {
                    upgrade: Some(wire::RequestUpgrade {
                        start: 0,
                        length: remote.length,
                    }),
                    manifest,
                    ..RequestSpec::default()
                };
                if let Ok(r) = peer.request(now, id, spec) {
                    a.upgrade = Some(r);
                }
            }
            return;
        }
        if remote.fork != fork {
            return;
        }
        if a.upgrade.is_none()
            && let Some(upgrade) = peer.upgrade_to_request(id)
        {
            let spec = RequestSpec {
                upgrade: Some(upgrade),
                manifest,
                ..RequestSpec::default()
            };
            if let Ok(r) = peer.request(now, id, spec) {
                a.upgrade = Some(r);
            }
        }
        let max = corestore_proto::replicate::PeerConfig::default().max_inflight;
        let room = max.saturating_sub(peer.inflight(id));
        if room == 0 {
            return;
        }
        let missing = a
            .core
            .missing(room, |i| a.requested.contains(&i) || a.refused.contains(&i));
        for index in missing {
            if !peer.remote_has(id, index) {
                let segment = index / SEGMENT;
                if index < remote.length && a.wanted.insert(segment) {
                    let _ = peer.send_want(id, segment * SEGMENT, SEGMENT);
                }
                continue;
            }
            let nodes = a.core.with(|c| Ok(c.missing_nodes(index)?)).unwrap_or(0);
            let spec = RequestSpec {
                block: Some(RequestBlock { index, nodes }),
                ..RequestSpec::default()
            };
            match peer.request(now, id, spec) {
                Ok(r) => {
                    a.blocks.insert(r, index);
                    a.requested.insert(index);
                }
                Err(_) => break,
            }
        }
    }

    /// Verifies and stores a proof from the remote.
    fn on_data(&mut self, id: CoreId, data: wire::Data) {
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        if a.upgrade == Some(data.request) {
            a.upgrade = None;
        }
        if let Some(index) = a.blocks.remove(&data.request) {
            a.requested.remove(&index);
        }
        let bytes = data.block.as_ref().map(|b| b.value.len() as u64);
        let proof = convert::proof_from_data(data);
        let result = a.core.with(|c| {
            let verified = c.verify(&proof)?;
            Ok(c.apply(verified)?)
        });
        let core = Arc::clone(&a.core);
        match result {
            Ok(applied) => {
                trace!(block = ?applied.block, length = applied.length, "applied");
                if let Some(ancestors) = applied.ancestors {
                    core.emit(CoreEvent::Truncate {
                        length: ancestors,
                        fork: applied.fork,
                    });
                }
                if applied.upgraded {
                    core.emit(CoreEvent::Append {
                        length: applied.length,
                    });
                }
                if let (Some(index), Some(bytes)) = (applied.block, bytes) {
                    core.emit(CoreEvent::Download { index, bytes });
                }
                core.changed(applied.block.map(|b| (b, 1)));
            }
            Err(e) => debug!(error = %e, "proof rejected"),
        }
        self.fill(id);
    }
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

/// Sleeps until `deadline`, or forever.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Writes what the driver produces, in order, then shuts the write side down.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: Arc<AtomicUsize>,
    drained: Arc<Notify>,
) -> Result<()> {
    while let Some(bytes) = rx.recv().await {
        wr.write_all(&bytes).await?;
        wr.flush().await?;
        let before = pending.fetch_sub(bytes.len(), Ordering::AcqRel);
        if before.saturating_sub(bytes.len()) < HIGH_WATER {
            drained.notify_one();
        }
    }
    let _ = wr.shutdown().await;
    Ok(())
}
