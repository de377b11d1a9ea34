//! Loaded cores shared by every session of a store: [`LoadedCore`] (one per discovery key,
//! holding the `hypercore-lite` [`Core`]), the [`Registry`] that loads and closes them, and the
//! [`Hub`] through which they wake the replication drivers.
//!
//! Calls into `hypercore-lite` are short synchronous calls made under the core's mutex: an
//! append, a read or a proof is a few page-cache reads and writes (microseconds), so the
//! facade makes them inline instead of paying a `spawn_blocking` hop per block. Opening a stored
//! core (which may replay an oplog) goes through the store's I/O thread
//! ([`Worker`](crate::worker::Worker)); creating a missing one lazily (one failed probe, no
//! write) happens inline in `get`.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use corestore_keys::{DiscoveryKey, Key};
use hypercore_lite::Core;
use tokio::sync::{Semaphore, broadcast, mpsc, watch};
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::events::{EventTx, StoreEvent, StoreEvents};
use crate::extension::{Extensions, Outgoing};

/// Events buffered per core for slow subscribers (older ones are reported as lagged).
const EVENT_BUFFER: usize = 1024;

/// Locks a std mutex, ignoring poisoning (the protected state stays consistent: every
/// critical section is a few field updates).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Something that happened to a core, as seen by its sessions ([`Hypercore::events`](crate::Hypercore::events)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoreEvent {
    /// The core grew (a local append or a verified upgrade from a peer).
    Append {
        /// The new length.
        length: u64,
    },
    /// The core was truncated (locally or by a peer's fork).
    Truncate {
        /// The new length.
        length: u64,
        /// The new fork id.
        fork: u64,
    },
    /// A peer opened this core's channel.
    PeerAdd {
        /// The remote's static public key.
        remote_public_key: [u8; 32],
    },
    /// A peer's channel for this core closed.
    PeerRemove {
        /// The remote's static public key.
        remote_public_key: [u8; 32],
    },
    /// A block was downloaded and verified.
    Download {
        /// The block index.
        index: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// A block was sent to a peer.
    Upload {
        /// The block index.
        index: u64,
        /// Its size in bytes.
        bytes: u64,
    },
    /// Two validly signed trees of this core disagree at `length`: its writer forked it
    /// without bumping the fork id (spec §9.9). The core's channels were closed and the core
    /// closed right before this event; every operation of its sessions fails with
    /// [`Error::Conflict`].
    Conflict {
        /// The length at which the two trees differ.
        length: u64,
        /// The fork both trees claim.
        fork: u64,
    },
    /// The core closed (its last session closed, or the store closed).
    Close,
}

/// A message to the replication drivers.
#[derive(Clone)]
pub(crate) enum Signal {
    /// A core was loaded: attach it (unless passive).
    Loaded(Arc<LoadedCore>),
    /// The core changed or wants blocks: refresh the state sent to peers, announce `new`
    /// blocks, request what is wanted.
    Changed {
        core: Arc<LoadedCore>,
        new: Option<(u64, u64)>,
    },
    /// The core closed: close its channels.
    Closed(Arc<LoadedCore>),
    /// A conflict was found: send our proof to the peer, then close the core's channel. The
    /// core closes once every driver has dropped its copy of the signal.
    Conflict(Arc<Conflict>),
    /// An extension message to send on the core's channels.
    Extension(Arc<Outgoing>),
    /// The store closed: end the stream.
    Shutdown,
}

/// The set of live replication drivers of a store, and the store's event channels.
#[derive(Default)]
pub(crate) struct Hub {
    drivers: Mutex<Vec<mpsc::UnboundedSender<Signal>>>,
    /// `core-open` / `core-close` listeners.
    pub(crate) events: StoreEvents,
}

impl Hub {
    /// A new driver's inbox.
    pub(crate) fn register(&self) -> mpsc::UnboundedReceiver<Signal> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.drivers).push(tx);
        rx
    }

    /// Sends `signal` to every live driver.
    pub(crate) fn send(&self, signal: &Signal) {
        // Signals to drivers that ended are dropped after the lock is released: dropping the
        // last copy of a conflict closes the core, which signals the drivers again.
        let mut undelivered = Vec::new();
        lock(&self.drivers).retain(|tx| match tx.send(signal.clone()) {
            Ok(()) => true,
            Err(e) => {
                undelivered.push(e.0);
                false
            }
        });
        drop(undelivered);
    }
}

/// A conflict being answered (spec §9.9): every driver sends our proof to its peer and closes
/// the core's channel, and when the last copy of this value is dropped (every driver handled
/// its signal, or ended) the core closes with [`Slot::Conflict`].
pub(crate) struct Conflict {
    pub(crate) core: Arc<LoadedCore>,
    registry: Weak<Registry>,
    /// The length the two trees were compared at.
    pub(crate) length: u64,
    /// The fork both trees claim.
    pub(crate) fork: u64,
}

impl Conflict {
    /// Starts answering a conflict found on `core`; `None` if one is already being answered.
    pub(crate) fn start(
        registry: &Arc<Registry>,
        core: &Arc<LoadedCore>,
        length: u64,
        fork: u64,
    ) -> Option<Arc<Self>> {
        core.begin_conflict().then(|| {
            Arc::new(Self {
                core: Arc::clone(core),
                registry: Arc::downgrade(registry),
                length,
                fork,
            })
        })
    }
}

impl Drop for Conflict {
    fn drop(&mut self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.close_conflicted(&self.core, self.length, self.fork);
        }
    }
}

/// Block ranges that sessions wait for (reads and downloads).
#[derive(Debug, Default)]
pub(crate) struct Wants {
    next: u64,
    ranges: BTreeMap<u64, (u64, Option<u64>)>,
}

/// What the drivers learned about the peers of a core.
#[derive(Debug, Default, Clone)]
pub(crate) struct PeerInfo {
    /// Open channels.
    pub(crate) peers: usize,
    /// The remote public key of each stream with an open channel, by stream.
    pub(crate) remotes: HashMap<u64, [u8; 32]>,
    /// Channels whose remote sent `sync`.
    pub(crate) synced: usize,
    /// The length each stream's remote announced (on our fork or a newer one), by stream.
    pub(crate) lengths: HashMap<u64, u64>,
}

impl PeerInfo {
    /// The longest length a peer announced.
    pub(crate) fn remote_length(&self) -> u64 {
        self.lengths.values().copied().max().unwrap_or(0)
    }
}

/// One loaded core, shared by all its sessions and replication channels.
///
/// An idle core (open, nobody waiting, no peers) costs the `hypercore-lite` [`Core`] plus a
/// few words: the change watch, the event channel, the wanted ranges and the peer state are
/// allocated on first use (an eager watch channel alone would cost ~350 bytes per core).
pub(crate) struct LoadedCore {
    pub(crate) key: Key,
    pub(crate) discovery_key: DiscoveryKey,
    core: Mutex<Slot>,
    /// Sessions plus replication channels; changed only under the registry lock.
    users: AtomicUsize,
    /// Sessions (not channels); changed only under the registry lock. A core with sessions,
    /// or lingering after its last one, is *active*: attached to every replication stream.
    sessions: AtomicUsize,
    /// Whether the last session closed and the linger timer runs.
    lingering: AtomicBool,
    /// Whether a conflict was found (the core closes once the drivers answered it).
    conflicted: AtomicBool,
    /// Bumped by every session opened or closed: a linger timer fires only if nothing
    /// happened since it started.
    epoch: AtomicU64,
    /// The event channel of the store session whose `get` loaded the core.
    opener: Option<Weak<EventTx>>,
    /// Created by the first waiter; changes before that have nobody to wake. A mutex, not a
    /// `OnceLock`: a change made before a waiter subscribes must be visible to that waiter's
    /// check of the state, whichever lock (core, peers) or atomic the state lives in.
    version: Mutex<Option<watch::Sender<u64>>>,
    /// Created on the first subscription (a broadcast buffer per idle core would cost tens of
    /// KiB).
    events: Mutex<Option<broadcast::Sender<CoreEvent>>>,
    wants: Mutex<Option<Box<Wants>>>,
    peers: Mutex<Option<Box<PeerInfo>>>,
    /// Registered extensions, created by the first registration.
    extensions: Mutex<Option<Box<Extensions>>>,
    hub: Arc<Hub>,
}

/// The `hypercore-lite` core of a [`LoadedCore`], or why it is gone.
#[expect(
    clippy::large_enum_variant,
    reason = "the core lives inline in its LoadedCore, as it did in an Option: boxing it would cost an allocation and an indirection per core for variants that only exist after close"
)]
enum Slot {
    Open(Core),
    Closed,
    /// Closed after a conflict at `length` on `fork`.
    Conflict {
        length: u64,
        fork: u64,
    },
}

impl std::fmt::Debug for LoadedCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedCore")
            .field("key", &self.key)
            .field("users", &self.users.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl LoadedCore {
    fn new(core: Core, hub: Arc<Hub>, session: bool, opener: Option<Weak<EventTx>>) -> Self {
        Self {
            key: *core.key(),
            discovery_key: core.discovery_key(),
            core: Mutex::new(Slot::Open(core)),
            users: AtomicUsize::new(1),
            sessions: AtomicUsize::new(usize::from(session)),
            lingering: AtomicBool::new(false),
            conflicted: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            opener,
            version: Mutex::new(None),
            events: Mutex::new(None),
            wants: Mutex::new(None),
            peers: Mutex::new(None),
            extensions: Mutex::new(None),
            hub,
        }
    }

    /// Runs `f` on the open core.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Conflict`] after a conflict, or whatever `f` returns.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Core) -> Result<R>) -> Result<R> {
        match &mut *lock(&self.core) {
            Slot::Open(core) => f(core),
            Slot::Closed => Err(Error::Closed),
            &mut Slot::Conflict { length, fork } => Err(Error::Conflict { length, fork }),
        }
    }

    /// Whether the core is still open.
    pub(crate) fn is_open(&self) -> bool {
        matches!(*lock(&self.core), Slot::Open(_))
    }

    /// Marks the core as conflicted; `false` if it already was (the conflict is being
    /// answered).
    pub(crate) fn begin_conflict(&self) -> bool {
        !self.conflicted.swap(true, Ordering::AcqRel)
    }

    /// Whether a conflict was found (proofs from peers are no longer applied).
    pub(crate) fn is_conflicted(&self) -> bool {
        self.conflicted.load(Ordering::Acquire)
    }

    /// The store's hub (to reach the replication drivers).
    pub(crate) fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The extension registrations (created on first use).
    pub(crate) fn extensions(&self) -> MutexGuard<'_, Option<Box<Extensions>>> {
        lock(&self.extensions)
    }

    /// A receiver that sees every later change (subscribe before checking state).
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        lock(&self.version)
            .get_or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    /// Bumps the change counter, waking every receiver of [`LoadedCore::watch`].
    fn bump(&self) {
        if let Some(tx) = lock(&self.version).as_ref() {
            tx.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// A receiver of this core's events.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<CoreEvent> {
        lock(&self.events)
            .get_or_insert_with(|| broadcast::channel(EVENT_BUFFER).0)
            .subscribe()
    }

    /// Emits an event to the sessions (dropped if nobody listens).
    pub(crate) fn emit(&self, event: CoreEvent) {
        if let Some(tx) = lock(&self.events).as_ref() {
            let _ = tx.send(event);
        }
    }

    /// Wakes waiting sessions and tells the drivers; `new` names freshly stored blocks.
    pub(crate) fn changed(self: &Arc<Self>, new: Option<(u64, u64)>) {
        self.bump();
        self.hub.send(&Signal::Changed {
            core: Arc::clone(self),
            new,
        });
    }

    /// Wakes waiting sessions only (peer info changed).
    pub(crate) fn wake(&self) {
        self.bump();
    }

    /// Registers a wanted block range (`end: None` = up to the length); returns its id.
    pub(crate) fn want(self: &Arc<Self>, start: u64, end: Option<u64>) -> u64 {
        let id = {
            let mut w = lock(&self.wants);
            let w = w.get_or_insert_with(Box::default);
            w.next += 1;
            let id = w.next;
            w.ranges.insert(id, (start, end));
            id
        };
        self.hub.send(&Signal::Changed {
            core: Arc::clone(self),
            new: None,
        });
        id
    }

    /// Removes a wanted range.
    pub(crate) fn unwant(&self, id: u64) {
        if let Some(w) = lock(&self.wants).as_mut() {
            w.ranges.remove(&id);
        }
    }

    /// Up to `limit` wanted blocks below our length that are not stored and not `skip`ped.
    pub(crate) fn missing(&self, limit: usize, mut skip: impl FnMut(u64) -> bool) -> Vec<u64> {
        /// Bound on blocks inspected per call, so a huge sparse range costs little per event.
        const SCAN: u64 = 1 << 16;
        let ranges: Vec<_> = lock(&self.wants)
            .as_ref()
            .map(|w| w.ranges.values().copied().collect())
            .unwrap_or_default();
        if ranges.is_empty() {
            return Vec::new();
        }
        let guard = lock(&self.core);
        let Slot::Open(core) = &*guard else {
            return Vec::new();
        };
        let (length, contig) = (core.length(), core.contiguous_length());
        let mut out = Vec::new();
        let mut scanned = 0;
        for (start, end) in ranges {
            let start = if start < contig { contig } else { start };
            let end = end.unwrap_or(length).min(length);
            for index in start..end {
                scanned += 1;
                if out.len() >= limit || scanned > SCAN {
                    return out;
                }
                if !core.has(index) && !out.contains(&index) && !skip(index) {
                    out.push(index);
                }
            }
        }
        out
    }

    /// Peer information.
    pub(crate) fn peer_info(&self) -> PeerInfo {
        lock(&self.peers).as_deref().cloned().unwrap_or_default()
    }

    /// Updates the peer information and wakes waiters.
    pub(crate) fn update_peers(&self, f: impl FnOnce(&mut PeerInfo)) {
        f(lock(&self.peers).get_or_insert_with(Box::default));
        self.wake();
    }

    /// Closes the `hypercore-lite` core (flush and sync) and tells everyone.
    fn close_now(self: &Arc<Self>) {
        self.close_as(Slot::Closed);
    }

    /// [`LoadedCore::close_now`], leaving `reason` (closed, or a conflict) for later calls.
    fn close_as(self: &Arc<Self>, reason: Slot) {
        let conflict = match reason {
            Slot::Conflict { length, fork } => Some((length, fork)),
            _ => None,
        };
        let previous = {
            let mut slot = lock(&self.core);
            match *slot {
                // Already closed: keep the first reason.
                Slot::Closed | Slot::Conflict { .. } => return,
                Slot::Open(_) => std::mem::replace(&mut *slot, reason),
            }
        };
        if let Slot::Open(core) = previous {
            // Closing a lazily created core writes its files first: a failure here is the
            // only report of that write, so it is logged.
            let materialized = core.is_materialized();
            if let Err(e) = core.close() {
                warn!(
                    dk = %self.discovery_key,
                    error = %e,
                    materialized,
                    "closing core failed"
                );
            }
            debug!(dk = %self.discovery_key, "core closed");
            // Extensions end with the core: their receivers see the end of the stream.
            lock(&self.extensions).take();
            if let Some((length, fork)) = conflict {
                self.emit(CoreEvent::Conflict { length, fork });
            }
            self.emit(CoreEvent::Close);
            self.wake();
            self.hub.send(&Signal::Closed(Arc::clone(self)));
            let opener = self.opener.as_ref().and_then(Weak::upgrade);
            if let Some((length, fork)) = conflict {
                self.hub.events.emit(
                    opener.as_ref(),
                    &StoreEvent::Conflict {
                        key: self.key,
                        discovery_key: self.discovery_key,
                        length,
                        fork,
                    },
                );
            }
            self.hub.events.emit(
                opener.as_ref(),
                &StoreEvent::CoreClose {
                    key: self.key,
                    discovery_key: self.discovery_key,
                },
            );
        }
    }

    /// Whether the core has sessions or lingers after its last one (then it is attached to
    /// every replication stream; otherwise only to streams whose remote asked for it).
    pub(crate) fn is_active(&self) -> bool {
        self.sessions.load(Ordering::Acquire) > 0 || self.lingering.load(Ordering::Acquire)
    }
}

/// A loaded core in the registry's set, hashed and compared by its discovery key (a set of
/// pointers costs a fifth of a map from 32-byte keys to pointers).
struct ByDk(Arc<LoadedCore>);

impl Borrow<DiscoveryKey> for ByDk {
    fn borrow(&self) -> &DiscoveryKey {
        &self.0.discovery_key
    }
}

impl Hash for ByDk {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.discovery_key.hash(state);
    }
}

impl PartialEq for ByDk {
    fn eq(&self, other: &Self) -> bool {
        self.0.discovery_key == other.0.discovery_key
    }
}

impl Eq for ByDk {}

/// The linger of a store whose options do not set one: 20 s plus up to 20 s at random, as
/// hypercore 10 (`NOT_DOWNLOADING_SLACK`).
pub(crate) fn default_linger() -> Duration {
    let mut b = [0u8; 2];
    let jitter = match getrandom::fill(&mut b) {
        Ok(()) => u64::from(u16::from_le_bytes(b)) * 20_000 / u64::from(u16::MAX),
        Err(_) => 10_000,
    };
    Duration::from_millis(20_000 + jitter)
}

/// The loaded cores of a store (shared by the root and all its sessions).
#[derive(Default)]
pub(crate) struct Registry {
    /// How long a core attached to replication streams stays loaded after its last session.
    pub(crate) linger: Duration,
    cores: Mutex<HashSet<ByDk>>,
    exclusive: Mutex<HashMap<DiscoveryKey, Arc<Semaphore>>>,
    pub(crate) hub: Arc<Hub>,
    /// Serialises loads so that one core is never opened twice.
    pub(crate) loading: tokio::sync::Mutex<()>,
    /// Live [`FindingPeers`](crate::FindingPeers) guards.
    pub(crate) finding: AtomicUsize,
}

impl Registry {
    /// An empty registry whose cores linger for `linger`.
    pub(crate) fn new(linger: Duration) -> Self {
        Self {
            linger,
            ..Self::default()
        }
    }

    /// The loaded core `dk`, counted as one more user.
    pub(crate) fn acquire(&self, dk: &DiscoveryKey) -> Option<Arc<LoadedCore>> {
        let cores = lock(&self.cores);
        let c = &cores.get(dk)?.0;
        c.users.fetch_add(1, Ordering::AcqRel);
        Some(Arc::clone(c))
    }

    /// The loaded core `dk`, not counted as a user (for a look at its state).
    pub(crate) fn peek(&self, dk: &DiscoveryKey) -> Option<Arc<LoadedCore>> {
        lock(&self.cores).get(dk).map(|c| Arc::clone(&c.0))
    }

    /// Counts one more user of a core known to be loaded; `false` if it closed meanwhile.
    pub(crate) fn retain(&self, core: &Arc<LoadedCore>) -> bool {
        let cores = lock(&self.cores);
        match cores.get(&core.discovery_key) {
            Some(ByDk(c)) if Arc::ptr_eq(c, core) => {
                c.users.fetch_add(1, Ordering::AcqRel);
                true
            }
            _ => false,
        }
    }

    /// The loaded core `dk`, counted as one more session (activating it).
    pub(crate) fn acquire_session(&self, dk: &DiscoveryKey) -> Option<Arc<LoadedCore>> {
        let cores = lock(&self.cores);
        let c = &cores.get(dk)?.0;
        c.users.fetch_add(1, Ordering::AcqRel);
        self.add_session(c);
        Some(Arc::clone(c))
    }

    /// Counts one more session of a loaded core; `false` if it closed meanwhile.
    pub(crate) fn retain_session(&self, core: &Arc<LoadedCore>) -> bool {
        let cores = lock(&self.cores);
        match cores.get(&core.discovery_key) {
            Some(ByDk(c)) if Arc::ptr_eq(c, core) => {
                c.users.fetch_add(1, Ordering::AcqRel);
                self.add_session(c);
                true
            }
            _ => false,
        }
    }

    /// A session more (under the registry lock): stops a linger, and a core that was not
    /// active (opened for a remote) becomes active, so the drivers attach it everywhere.
    fn add_session(&self, core: &Arc<LoadedCore>) {
        core.epoch.fetch_add(1, Ordering::AcqRel);
        let was_active = core.is_active();
        core.sessions.fetch_add(1, Ordering::AcqRel);
        core.lingering.store(false, Ordering::Release);
        if !was_active {
            self.hub.send(&Signal::Loaded(Arc::clone(core)));
        }
    }

    /// Registers a freshly opened core with one user: a session (then the drivers attach it
    /// and `opener` hears `core-open` with the root and its sessions) or a replication
    /// channel.
    pub(crate) fn insert(
        &self,
        core: Core,
        session: bool,
        opener: Option<&Arc<EventTx>>,
    ) -> Arc<LoadedCore> {
        let loaded = Arc::new(LoadedCore::new(
            core,
            Arc::clone(&self.hub),
            session,
            opener.map(Arc::downgrade),
        ));
        lock(&self.cores).replace(ByDk(Arc::clone(&loaded)));
        if session {
            self.hub.send(&Signal::Loaded(Arc::clone(&loaded)));
        }
        self.hub.events.emit(
            opener,
            &StoreEvent::CoreOpen {
                key: loaded.key,
                discovery_key: loaded.discovery_key,
            },
        );
        loaded
    }

    /// One session fewer. The last user closes the core; when replication channels remain,
    /// the core lingers (stays active) for [`Registry::linger`] and then closes with its
    /// channels, unless a session came back meanwhile.
    pub(crate) fn release_session(self: &Arc<Self>, core: &Arc<LoadedCore>) {
        let epoch = {
            let _cores = lock(&self.cores);
            let epoch = core.epoch.fetch_add(1, Ordering::AcqRel) + 1;
            let left = core
                .sessions
                .fetch_sub(1, Ordering::AcqRel)
                .saturating_sub(1);
            if left > 0 || core.users.load(Ordering::Acquire) <= 1 {
                None
            } else {
                core.lingering.store(true, Ordering::Release);
                Some(epoch)
            }
        };
        self.release(core);
        let Some(epoch) = epoch else {
            return;
        };
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(rt) if !self.linger.is_zero() => {
                let registry = Arc::downgrade(self);
                let core = Arc::downgrade(core);
                let linger = self.linger;
                rt.spawn(async move {
                    tokio::time::sleep(linger).await;
                    if let (Some(registry), Some(core)) = (registry.upgrade(), core.upgrade()) {
                        registry.expire(&core, epoch);
                    }
                });
            }
            // No runtime to time the linger (or no linger): close now.
            _ => self.expire(core, epoch),
        }
    }

    /// Ends the linger that started at `epoch`: closes the core (its channels close with it)
    /// if no session opened since.
    fn expire(&self, core: &Arc<LoadedCore>, epoch: u64) {
        let mut cores = lock(&self.cores);
        if core.epoch.load(Ordering::Acquire) != epoch || core.sessions.load(Ordering::Acquire) > 0
        {
            return;
        }
        core.lingering.store(false, Ordering::Release);
        if cores
            .get(&core.discovery_key)
            .is_some_and(|c| Arc::ptr_eq(&c.0, core))
        {
            cores.remove(&core.discovery_key);
        }
        debug!(dk = %core.discovery_key, "linger over: closing the core and its channels");
        core.close_now();
    }

    /// One user fewer; the last one closes the core.
    ///
    /// The core is closed under the registry lock, so a concurrent `get` of the same core
    /// waits and then reopens the flushed files instead of opening them twice.
    pub(crate) fn release(&self, core: &Arc<LoadedCore>) {
        let mut cores = lock(&self.cores);
        let left = core.users.fetch_sub(1, Ordering::AcqRel).saturating_sub(1);
        if left == 0 {
            if cores
                .get(&core.discovery_key)
                .is_some_and(|c| Arc::ptr_eq(&c.0, core))
            {
                cores.remove(&core.discovery_key);
            }
            core.close_now();
        }
    }

    /// Closes a core after a conflict (its sessions then fail with [`Error::Conflict`]), even
    /// though sessions and channels still count as users: they find it closed. The registry
    /// forgets it, so a later `get` opens it again from storage.
    fn close_conflicted(&self, core: &Arc<LoadedCore>, length: u64, fork: u64) {
        let mut cores = lock(&self.cores);
        if cores
            .get(&core.discovery_key)
            .is_some_and(|c| Arc::ptr_eq(&c.0, core))
        {
            cores.remove(&core.discovery_key);
        }
        warn!(dk = %core.discovery_key, length, fork, "conflict: closing the core");
        core.close_as(Slot::Conflict { length, fork });
    }

    /// Closes every loaded core (root close).
    pub(crate) fn close_all(&self) {
        let mut cores = lock(&self.cores);
        for ByDk(c) in cores.drain() {
            c.close_now();
        }
        drop(cores);
        self.hub.send(&Signal::Shutdown);
    }

    /// Every active loaded core (with sessions, or lingering): what a new replication stream
    /// attaches. Cores loaded only for remote peers are not in it.
    pub(crate) fn loaded(&self) -> Vec<Arc<LoadedCore>> {
        lock(&self.cores)
            .iter()
            .filter(|c| c.0.is_active())
            .map(|c| Arc::clone(&c.0))
            .collect()
    }

    /// Wakes every session waiting on any loaded core.
    pub(crate) fn wake_all(&self) {
        for ByDk(c) in lock(&self.cores).iter() {
            c.wake();
        }
    }

    /// The in-process exclusive write lock of a core.
    pub(crate) fn exclusive_lock(&self, dk: &DiscoveryKey) -> Arc<Semaphore> {
        Arc::clone(
            lock(&self.exclusive)
                .entry(*dk)
                .or_insert_with(|| Arc::new(Semaphore::new(1))),
        )
    }
}
