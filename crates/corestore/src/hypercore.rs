//! [`Hypercore`]: a session on a loaded core (append, read with waiting, download, update,
//! truncate, clear, snapshots, events).

use std::collections::HashMap;
use std::future::Future;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use corestore_keys::{DiscoveryKey, Key};
use hypercore_lite::Snapshot;
use tokio::sync::{OwnedSemaphorePermit, broadcast};

use crate::core::{CoreEvent, LoadedCore, Registry, lock};
use crate::error::{Error, Result};
use crate::extension::{Encoding, Extension};

/// Most blocks a caching session keeps.
const CACHE_BLOCKS: usize = 65_536;

/// Per-session settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionConfig {
    pub(crate) writable: bool,
    pub(crate) wait: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) cache: bool,
}

/// The core sessions opened through one store session (closed with it).
pub(crate) type SessionList = Arc<Mutex<Sessions>>;

/// Weak handles of the core sessions of one store session. Dead handles are pruned when the
/// list has doubled since the last pruning, so a `get` costs O(1) amortised however many
/// sessions are open.
#[derive(Default)]
pub(crate) struct Sessions {
    list: Vec<Weak<SessionInner>>,
    prune_at: usize,
}

impl Sessions {
    /// Adds a session.
    pub(crate) fn push(&mut self, session: &Arc<SessionInner>) {
        if self.list.len() >= self.prune_at {
            self.list.retain(|s| s.strong_count() > 0);
            self.prune_at = (self.list.len() * 2).max(16);
        }
        self.list.push(Arc::downgrade(session));
    }

    /// Removes and returns every session still alive.
    pub(crate) fn take_all(&mut self) -> Vec<Arc<SessionInner>> {
        self.prune_at = 0;
        self.list.drain(..).filter_map(|s| s.upgrade()).collect()
    }
}

/// The state behind a [`Hypercore`] handle.
pub(crate) struct SessionInner {
    core: Arc<LoadedCore>,
    registry: Arc<Registry>,
    config: SessionConfig,
    snapshot: Option<Box<Snapshot>>,
    /// Created by the first cached read.
    cache: Mutex<Option<Box<BlockCache>>>,
    closed: AtomicBool,
    /// The exclusive lock and the `sparse: false` download, when the session has them.
    held: Mutex<Option<Box<Held>>>,
    /// The list of the store session this session belongs to.
    owner: Weak<Mutex<Sessions>>,
}

/// What a session holds until it closes.
#[derive(Default)]
struct Held {
    permit: Option<OwnedSemaphorePermit>,
    wants: Vec<u64>,
    /// Extension registrations (name, id), ended with the session.
    extensions: Vec<(Arc<str>, u64)>,
}

/// Blocks read by a caching session, keyed by (fork, index).
type BlockCache = HashMap<(u64, u64), Vec<u8>>;

impl SessionInner {
    /// A session on `core`, which must already count this session as a user.
    pub(crate) fn new(
        core: Arc<LoadedCore>,
        registry: Arc<Registry>,
        config: SessionConfig,
        owner: Weak<Mutex<Sessions>>,
    ) -> Arc<Self> {
        Arc::new(Self {
            core,
            registry,
            config,
            snapshot: None,
            cache: Mutex::new(None),
            closed: AtomicBool::new(false),
            held: Mutex::new(None),
            owner,
        })
    }

    /// Holds the exclusive write lock until the session closes.
    pub(crate) fn hold_exclusive(&self, permit: OwnedSemaphorePermit) {
        lock(&self.held).get_or_insert_with(Box::default).permit = Some(permit);
    }

    /// Keeps every block wanted while the session is open (`sparse: false`).
    pub(crate) fn download_everything(&self) {
        let id = self.core.want(0, None);
        lock(&self.held)
            .get_or_insert_with(Box::default)
            .wants
            .push(id);
    }

    /// Closes the session (idempotent).
    pub(crate) fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let held = lock(&self.held).take();
        if let Some(held) = held {
            for id in held.wants {
                self.core.unwant(id);
            }
            for (name, id) in held.extensions {
                self.core.unregister_extension(&name, id);
            }
        }
        self.registry.release_session(&self.core);
    }
}

impl Drop for SessionInner {
    fn drop(&mut self) {
        self.close();
    }
}

/// What [`Hypercore::info`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Info {
    /// The core key.
    pub key: Key,
    /// The discovery key.
    pub discovery_key: DiscoveryKey,
    /// Number of blocks.
    pub length: u64,
    /// Leading blocks stored locally.
    pub contiguous_length: u64,
    /// Total bytes.
    pub byte_length: u64,
    /// Fork id.
    pub fork: u64,
    /// Whether this session can append.
    pub writable: bool,
    /// Open replication channels for this core.
    pub peers: usize,
}

/// A session on a Hypercore: what [`Corestore::get`](crate::Corestore::get) returns.
///
/// Dropping the handle closes the session; the core closes with its last session.
pub struct Hypercore {
    inner: Arc<SessionInner>,
}

impl std::fmt::Debug for Hypercore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hypercore")
            .field("key", &self.inner.core.key)
            .field("writable", &self.inner.config.writable)
            .field(
                "snapshot",
                &self.inner.snapshot.as_deref().map(Snapshot::length),
            )
            .finish_non_exhaustive()
    }
}

impl Hypercore {
    pub(crate) fn from_inner(inner: Arc<SessionInner>) -> Self {
        Self { inner }
    }

    pub(crate) fn inner(&self) -> &Arc<SessionInner> {
        &self.inner
    }

    fn core(&self) -> &Arc<LoadedCore> {
        &self.inner.core
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The core key.
    pub fn key(&self) -> Key {
        self.core().key
    }

    /// The discovery key.
    pub fn discovery_key(&self) -> DiscoveryKey {
        self.core().discovery_key
    }

    /// The z-base-32 id of the key (JavaScript `core.id`).
    pub fn id(&self) -> String {
        self.core().key.id()
    }

    /// Whether this session can append, truncate and clear.
    pub fn is_writable(&self) -> bool {
        self.inner.config.writable
    }

    /// Whether this session is closed (or its core was closed by the store).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire) || !self.core().is_open()
    }

    /// Number of blocks (of the snapshot, for snapshot sessions); 0 once closed.
    pub fn length(&self) -> u64 {
        match &self.inner.snapshot {
            Some(s) => s.length(),
            None => self.core().with(|c| Ok(c.length())).unwrap_or(0),
        }
    }

    /// Total bytes of the blocks (of the snapshot, for snapshot sessions).
    pub fn byte_length(&self) -> u64 {
        match &self.inner.snapshot {
            Some(s) => s.byte_length(),
            None => self.core().with(|c| Ok(c.byte_length())).unwrap_or(0),
        }
    }

    /// Leading blocks stored locally.
    pub fn contiguous_length(&self) -> u64 {
        self.core().with(|c| Ok(c.contiguous_length())).unwrap_or(0)
    }

    /// The fork id.
    pub fn fork(&self) -> u64 {
        match &self.inner.snapshot {
            Some(s) => s.fork(),
            None => self.core().with(|c| Ok(c.fork())).unwrap_or(0),
        }
    }

    /// Key, lengths, fork, writability and peers.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`].
    pub fn info(&self) -> Result<Info> {
        self.check_open()?;
        let peers = self.core().peer_info().peers;
        self.core().with(|c| {
            Ok(Info {
                key: *c.key(),
                discovery_key: c.discovery_key(),
                length: self
                    .inner
                    .snapshot
                    .as_deref()
                    .map_or_else(|| c.length(), Snapshot::length),
                contiguous_length: c.contiguous_length(),
                byte_length: self
                    .inner
                    .snapshot
                    .as_deref()
                    .map_or_else(|| c.byte_length(), Snapshot::byte_length),
                fork: c.fork(),
                writable: self.inner.config.writable,
                peers,
            })
        })
    }

    /// A user-data value of the core (`corestore/name`, ...).
    pub fn user_data(&self, key: &str) -> Option<Vec<u8>> {
        self.core()
            .with(|c| Ok(c.user_data(key).map(<[u8]>::to_vec)))
            .ok()
            .flatten()
    }

    /// Sets a user-data value (an empty value deletes it).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Core`].
    pub fn set_user_data(&self, key: &str, value: &[u8]) -> Result<()> {
        self.check_open()?;
        self.core().with(|c| Ok(c.set_user_data(key, value)?))
    }

    fn check_mutable(&self) -> Result<()> {
        self.check_open()?;
        if !self.inner.config.writable || self.inner.snapshot.is_some() {
            return Err(Error::NotWritable);
        }
        Ok(())
    }

    /// Appends one block; returns the new length.
    ///
    /// # Errors
    ///
    /// [`Error::NotWritable`], [`Error::Closed`], [`Error::Core`].
    pub async fn append(&self, block: impl AsRef<[u8]>) -> Result<u64> {
        self.append_batch(&[block.as_ref()]).await
    }

    /// Appends blocks atomically (one signature); returns the new length.
    ///
    /// # Errors
    ///
    /// As [`Hypercore::append`].
    pub async fn append_batch<B: AsRef<[u8]>>(&self, blocks: &[B]) -> Result<u64> {
        self.check_mutable()?;
        let (old, new) = self.core().with(|c| {
            let old = c.length();
            let out = c.append_batch(blocks)?;
            Ok((old, out.length))
        })?;
        self.core().emit(CoreEvent::Append { length: new });
        self.core().changed(Some((old, new - old)));
        Ok(new)
    }

    /// Makes everything this core has written durable (an fsync of its files) and, for a core
    /// created lazily by this store (see [`StoreOptions::lazy`](crate::StoreOptions#structfield.lazy)),
    /// writes its files first, so that it exists on disk even if nothing was appended yet.
    ///
    /// Closing the last session does the same; call this when the core must be on disk now
    /// (for example before handing the store directory to another program).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Core`] (a storage error, which also poisons the core).
    pub async fn sync(&self) -> Result<()> {
        self.check_open()?;
        self.core().with(|c| Ok(c.sync()?))
    }

    /// Whether block `index` is stored locally.
    pub fn has(&self, index: u64) -> bool {
        self.core()
            .with(|c| {
                Ok(match &self.inner.snapshot {
                    Some(s) => s.has(c, index),
                    None => c.has(index),
                })
            })
            .unwrap_or(false)
    }

    /// Reads block `index`, waiting for it to arrive from peers when it is missing (bounded by
    /// the session's timeout), unless the session was opened with `wait(false)`.
    ///
    /// # Errors
    ///
    /// [`Error::NotAvailable`] (no wait), [`Error::Timeout`], [`Error::Closed`],
    /// [`Error::Core`] (for example a snapshot block truncated away).
    pub async fn get(&self, index: u64) -> Result<Vec<u8>> {
        self.get_with(index, self.inner.config.wait, self.inner.config.timeout)
            .await
    }

    /// [`Hypercore::get`] with an explicit `wait` and `timeout` for this read.
    ///
    /// # Errors
    ///
    /// As [`Hypercore::get`].
    pub async fn get_with(
        &self,
        index: u64,
        wait: bool,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>> {
        self.check_open()?;
        // Keyed by the core's fork (not a snapshot's): a truncation invalidates the entries.
        let fork = self.core().with(|c| Ok(c.fork()))?;
        if let Some(v) = lock(&self.inner.cache)
            .as_ref()
            .and_then(|c| c.get(&(fork, index)))
        {
            return Ok(v.clone());
        }
        // Unregistered on every exit, including when the caller drops this future.
        let mut want: Option<WantGuard> = None;
        let result = bounded(timeout, async {
            loop {
                let mut changes = self.core().watch();
                if let Some(value) = self.try_read(index)? {
                    return Ok(value);
                }
                if !wait {
                    return Err(Error::NotAvailable { index });
                }
                if want.is_none() {
                    want = Some(WantGuard {
                        id: self.core().want(index, Some(index + 1)),
                        core: Arc::clone(self.core()),
                    });
                }
                if changes.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        })
        .await;
        drop(want);
        let value = result?;
        if self.inner.config.cache {
            let mut cache = lock(&self.inner.cache);
            let cache = cache.get_or_insert_with(Box::default);
            if cache.len() >= CACHE_BLOCKS {
                cache.clear();
            }
            cache.insert((fork, index), value.clone());
        }
        Ok(value)
    }

    /// The block if stored, `None` if it must be fetched.
    fn try_read(&self, index: u64) -> Result<Option<Vec<u8>>> {
        self.check_open()?;
        self.core().with(|c| {
            let read = match &self.inner.snapshot {
                Some(s) => s.get(c, index),
                None => c.get(index),
            };
            match read {
                Ok(v) => Ok(Some(v)),
                Err(
                    hypercore_lite::Error::BlockNotAvailable { .. }
                    | hypercore_lite::Error::OutOfBounds { .. },
                ) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    /// Waits until the peers told us their length and we caught up with the longest one.
    /// Returns whether the length grew. Returns `false` at once when no peer has the core
    /// open, unless a [`FindingPeers`](crate::FindingPeers) guard of the store is alive: then
    /// it waits for a peer (bounded by the session's timeout).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`], [`Error::Closed`].
    pub async fn update(&self) -> Result<bool> {
        self.check_open()?;
        let start = self.length();
        bounded(self.inner.config.timeout, async {
            loop {
                let mut changes = self.core().watch();
                self.check_open()?;
                let info = self.core().peer_info();
                let length = self.core().with(|c| Ok(c.length()))?;
                let finding = self.inner.registry.finding.load(Ordering::Acquire) > 0;
                let caught_up = info.synced >= info.peers && length >= info.remote_length();
                if (info.peers == 0 && !finding) || (info.peers > 0 && caught_up) {
                    return Ok(length > start);
                }
                if changes.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        })
        .await
    }

    /// Starts downloading `range` (`..` = every block up to the longest length peers
    /// announce); the download runs while the returned handle lives.
    pub fn download(&self, range: impl RangeBounds<u64>) -> Download {
        let start = match range.start_bound() {
            Bound::Included(&s) => s,
            Bound::Excluded(&s) => s.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&e) => Some(e.saturating_add(1)),
            Bound::Excluded(&e) => Some(e),
            Bound::Unbounded => None,
        };
        let id = self.core().want(start, end);
        Download {
            core: Arc::clone(self.core()),
            id,
            start,
            end,
            timeout: self.inner.config.timeout,
        }
    }

    /// Finds the block holding byte offset `bytes`: `(index, offset in block)`.
    ///
    /// # Errors
    ///
    /// [`Error::Core`] beyond the byte length or when a needed tree node is not stored.
    pub fn seek(&self, bytes: u64) -> Result<(u64, u64)> {
        self.check_open()?;
        self.core().with(|c| Ok(c.seek(bytes)?))
    }

    /// Truncates the core to `length` blocks (bumping the fork).
    ///
    /// # Errors
    ///
    /// [`Error::NotWritable`], [`Error::Core`].
    pub async fn truncate(&self, length: u64) -> Result<()> {
        self.check_mutable()?;
        let fork = self.core().with(|c| {
            c.truncate(length)?;
            Ok(c.fork())
        })?;
        lock(&self.inner.cache).take();
        self.core().emit(CoreEvent::Truncate { length, fork });
        self.core().changed(None);
        Ok(())
    }

    /// Drops the local copies of blocks `[start, end)` (the tree and length are kept).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Core`].
    pub async fn clear(&self, start: u64, end: u64) -> Result<()> {
        self.check_open()?;
        self.core().with(|c| Ok(c.clear(start, end)?))?;
        if let Some(cache) = lock(&self.inner.cache).as_mut() {
            cache.retain(|(_, i), _| *i < start || *i >= end);
        }
        self.core().changed(None);
        Ok(())
    }

    /// A new session on the same core with the same settings.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`].
    pub fn session(&self) -> Result<Self> {
        self.new_session(self.inner.snapshot.clone())
    }

    /// A read-only session fixed at the current length: later appends do not move it, reads
    /// of blocks a truncation removed fail.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`].
    pub fn snapshot(&self) -> Result<Self> {
        let snap = self.core().with(|c| Ok(c.snapshot()))?;
        self.new_session(Some(Box::new(snap)))
    }

    fn new_session(&self, snapshot: Option<Box<Snapshot>>) -> Result<Self> {
        self.check_open()?;
        if !self.inner.registry.retain_session(self.core()) {
            return Err(Error::Closed);
        }
        let mut config = self.inner.config;
        if snapshot.is_some() {
            config.writable = false;
        }
        let inner = Arc::new(SessionInner {
            core: Arc::clone(self.core()),
            registry: Arc::clone(&self.inner.registry),
            config,
            snapshot,
            cache: Mutex::new(None),
            closed: AtomicBool::new(false),
            held: Mutex::new(None),
            owner: self.inner.owner.clone(),
        });
        // Closed with the store session the original was opened through.
        if let Some(list) = self.inner.owner.upgrade() {
            lock(&list).push(&inner);
        }
        Ok(Self { inner })
    }

    /// A receiver of the core's events (appends, truncations, peers, downloads, uploads,
    /// conflicts).
    pub fn events(&self) -> broadcast::Receiver<CoreEvent> {
        self.core().subscribe()
    }

    /// Registers the extension `name` on this core (hypercore's `registerExtension`, spec
    /// §9.10): the returned [`Extension`] sends messages under that name to the peers that
    /// have the core's channel open and receives theirs. The latest live registration of a
    /// name receives; the registration ends when the [`Extension`] is dropped or this session
    /// closes.
    ///
    /// Messages travel as hypercore's default extension encoding (compact-encoding
    /// `buffer`), so JavaScript handlers registered without an `encoding` understand them;
    /// see [`Hypercore::register_raw_extension`] for raw bytes.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::InvalidArgument`] for an empty name or one longer than
    /// 1024 bytes.
    pub fn register_extension(&self, name: &str) -> Result<Extension> {
        self.register_extension_as(name, Encoding::Buffer)
    }

    /// [`Hypercore::register_extension`] whose messages travel as raw bytes (JavaScript
    /// `registerExtension(name, { encoding: c.raw })`).
    ///
    /// # Errors
    ///
    /// As [`Hypercore::register_extension`].
    pub fn register_raw_extension(&self, name: &str) -> Result<Extension> {
        self.register_extension_as(name, Encoding::Raw)
    }

    fn register_extension_as(&self, name: &str, encoding: Encoding) -> Result<Extension> {
        self.check_open()?;
        let ext = Extension::register(self.core(), name, encoding)?;
        lock(&self.inner.held)
            .get_or_insert_with(Box::default)
            .extensions
            .push(ext.registration());
        // A session that closed meanwhile did not see this registration: end it here.
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(ext)
    }

    /// The static public keys of the peers that have this core's channel open (the keys
    /// [`Extension::send`] addresses).
    pub fn peer_keys(&self) -> Vec<[u8; 32]> {
        let mut keys: Vec<[u8; 32]> = self.core().peer_info().remotes.into_values().collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// Closes the session (also done on drop); the core closes with its last session.
    pub async fn close(&self) {
        self.inner.close();
    }
}

/// A running download started by [`Hypercore::download`]; dropping it stops wanting the
/// blocks.
#[derive(Debug)]
pub struct Download {
    core: Arc<LoadedCore>,
    id: u64,
    start: u64,
    end: Option<u64>,
    timeout: Option<Duration>,
}

impl Download {
    /// Waits until every block of the range is stored (bounded by the session's timeout).
    /// An open range ends at the longest length the peers announced (waiting for at least one
    /// peer's `sync`).
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`], [`Error::Closed`].
    pub async fn done(&self) -> Result<()> {
        self.done_within(self.timeout).await
    }

    /// [`Download::done`] with an explicit bound.
    ///
    /// # Errors
    ///
    /// As [`Download::done`].
    pub async fn done_within(&self, timeout: Option<Duration>) -> Result<()> {
        bounded(timeout, async {
            loop {
                let mut changes = self.core.watch();
                if self.complete()? {
                    return Ok(());
                }
                if changes.changed().await.is_err() {
                    return Err(Error::Closed);
                }
            }
        })
        .await
    }

    fn complete(&self) -> Result<bool> {
        let info = self.core.peer_info();
        self.core.with(|c| {
            let end = match self.end {
                Some(e) => e,
                None if info.synced == 0 => return Ok(false),
                None => c.length().max(info.remote_length()),
            };
            if end > c.length() {
                return Ok(false);
            }
            let from = self.start.max(c.contiguous_length());
            Ok((from..end).all(|i| c.has(i)))
        })
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        self.core.unwant(self.id);
    }
}

/// Unregisters a wanted block range when dropped.
struct WantGuard {
    core: Arc<LoadedCore>,
    id: u64,
}

impl Drop for WantGuard {
    fn drop(&mut self) {
        self.core.unwant(self.id);
    }
}

/// Runs `f`, failing with [`Error::Timeout`] after `timeout`.
async fn bounded<T>(timeout: Option<Duration>, f: impl Future<Output = Result<T>>) -> Result<T> {
    match timeout {
        Some(t) => tokio::time::timeout(t, f)
            .await
            .map_err(|_| Error::Timeout(t))?,
        None => f.await,
    }
}
