//! [`Corestore`]: the store and its sessions (corestore 6 `Corestore`): the primary key and its
//! lock, name-to-key derivation, namespaces, `get`, and closing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use corestore_keys::corestore::named_key_pair;
use corestore_keys::{DiscoveryKey, Key, KeyPair, Manifest, Namespace, PrimaryKey};
use hypercore_lite::{Core, CoreOptions};
use rac_storage::{OpenOptions, Provider, Storage};
use tracing::{debug, info_span};

use crate::core::{LoadedCore, Registry, default_linger, lock};
use crate::error::{Error, Result};
use crate::events::{EventTx, StoreEvent};
use crate::hypercore::{Hypercore, SessionConfig, SessionInner, SessionList};
use crate::options::{GetOptions, SessionOptions, StoreOptions, Target};
use crate::storage::{StoreStorage, core_prefix};
use crate::worker::Worker;

/// Entries of the "no core" cache (corestore 6: 65,536).
const NO_CORE_ENTRIES: usize = 65_536;

/// A bounded set of discovery keys found missing; the oldest entries leave first.
#[derive(Default)]
struct NoCoreCache {
    keys: std::collections::HashMap<DiscoveryKey, u64>,
    order: std::collections::VecDeque<(DiscoveryKey, u64)>,
    next: u64,
}

impl NoCoreCache {
    fn contains(&self, dk: &DiscoveryKey) -> bool {
        self.keys.contains_key(dk)
    }

    fn insert(&mut self, dk: DiscoveryKey) {
        self.next += 1;
        self.keys.insert(dk, self.next);
        self.order.push_back((dk, self.next));
        // Entries of removed or re-inserted keys linger in `order`; drop them when it doubles.
        if self.order.len() > 2 * NO_CORE_ENTRIES {
            let keys = &self.keys;
            self.order.retain(|(k, seq)| keys.get(k) == Some(seq));
        }
        while self.keys.len() > NO_CORE_ENTRIES {
            let Some((k, seq)) = self.order.pop_front() else {
                break;
            };
            if self.keys.get(&k) == Some(&seq) {
                self.keys.remove(&k);
            }
        }
    }

    fn remove(&mut self, dk: &DiscoveryKey) {
        self.keys.remove(dk);
    }
}

/// User-data key holding the name a core was created with (corestore 6).
pub const USER_DATA_NAME: &str = "corestore/name";
/// User-data key holding the namespace a core was created in (corestore 6).
pub const USER_DATA_NAMESPACE: &str = "corestore/namespace";
/// Name of the primary key file in the storage root.
pub const PRIMARY_KEY_FILE: &str = "primary-key";

/// State shared by a root store and all its sessions.
pub(crate) struct Root {
    pub(crate) provider: Arc<dyn Provider>,
    lock_file: Mutex<Option<Arc<dyn Storage>>>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) options: StoreOptions,
    pub(crate) closed: AtomicBool,
    /// The thread that opens cores.
    worker: Worker,
    /// Discovery keys remote peers asked for that are not stored (corestore 6 "no core"
    /// cache, spec §6.8): asking again does not touch the storage.
    no_core: Mutex<NoCoreCache>,
}

impl Root {
    /// Runs blocking storage work on the store's I/O thread.
    pub(crate) async fn run_blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        self.worker.run(f).await
    }

    /// Loads the core `dk` for a replication channel (or counts one more user of the loaded
    /// one). `options` opens it; `fixup` runs on a freshly opened core before anyone else
    /// sees it. A core loaded this way is not active: it is not attached to other streams.
    pub(crate) async fn load(
        &self,
        dk: DiscoveryKey,
        options: CoreOptions,
        fixup: impl FnOnce(Core, &dyn Provider, &str) -> Result<Core> + Send + 'static,
    ) -> Result<Arc<LoadedCore>> {
        self.load_as(dk, options, fixup, None).await
    }

    /// Loads the core `dk` for a session opened through the store session whose event
    /// channel is `opener` (`None`: a replication channel).
    pub(crate) async fn load_as(
        &self,
        dk: DiscoveryKey,
        options: CoreOptions,
        fixup: impl FnOnce(Core, &dyn Provider, &str) -> Result<Core> + Send + 'static,
        opener: Option<&Arc<EventTx>>,
    ) -> Result<Arc<LoadedCore>> {
        let _loading = self.registry.loading.lock().await;
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let session = opener.is_some();
        let acquired = if session {
            self.registry.acquire_session(&dk)
        } else {
            self.registry.acquire(&dk)
        };
        if let Some(core) = acquired {
            return Ok(core);
        }
        if !session && lock(&self.no_core).contains(&dk) {
            return Err(Error::NotFound(dk));
        }
        let provider = Arc::clone(&self.provider);
        let prefix = core_prefix(&dk);
        if options.lazy && options.create {
            // A missing core is created in memory after one probe, here: no handoff to the
            // I/O thread. A stored one is opened there.
            let created = {
                let _span = info_span!("create", dk = %prefix).entered();
                Core::create_if_missing(&*provider, &prefix, &options).map_err(Error::Core)?
            };
            if let Some(core) = created {
                let core = fixup(core, &*provider, &prefix)?;
                lock(&self.no_core).remove(&dk);
                return Ok(self.registry.insert(core, session, opener));
            }
        }
        let core = self
            .worker
            .run(move || {
                let _span = info_span!("open", dk = %prefix).entered();
                let core = Core::open(&*provider, &prefix, options).map_err(|e| match e {
                    hypercore_lite::Error::NotFound => Error::NotFound(dk),
                    e => Error::Core(e),
                })?;
                fixup(core, &*provider, &prefix)
            })
            .await?;
        let core = match core {
            Err(e @ Error::NotFound(_)) if !session => {
                lock(&self.no_core).insert(dk);
                return Err(e);
            }
            other => other?,
        };
        lock(&self.no_core).remove(&dk);
        Ok(self.registry.insert(core, session, opener))
    }
}

/// A store session: the root returned by [`Corestore::new`], or a session made by
/// [`Corestore::session`] / [`Corestore::namespace`]. Cloning gives another handle onto the
/// same session.
#[derive(Clone)]
pub struct Corestore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    root: Arc<Root>,
    primary_key: PrimaryKey,
    namespace: Namespace,
    writable: bool,
    is_root: bool,
    parent: Option<Corestore>,
    sessions: SessionList,
    closed: AtomicBool,
    /// This session's `core-open` / `core-close` channel.
    events: Arc<EventTx>,
}

impl std::fmt::Debug for Corestore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Corestore")
            .field("namespace", &self.inner.namespace)
            .field("root", &self.inner.is_root)
            .field("closed", &self.inner.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Corestore {
    /// Opens (or creates) a store. `storage` is a directory path, a [`StoreStorage`] or a
    /// [`Provider`] converted with `into()`.
    ///
    /// The primary key is read from the file `primary-key` (32 raw bytes), or written there
    /// (random, or `options.primary_key`) when the file is missing or short. The file is held
    /// with an exclusive lock until [`Corestore::close`], so a second store on the same
    /// directory fails with [`Error::Locked`].
    ///
    /// # Errors
    ///
    /// [`Error::Locked`], [`Error::Storage`], [`Error::Keys`] (no randomness).
    pub async fn new(storage: impl Into<StoreStorage>, options: StoreOptions) -> Result<Self> {
        let provider = storage.into().provider;
        let file = lock_primary_key(&*provider)?;
        let len = file.len()?;
        let primary_key = if options.overwrite || len < 32 {
            let key = match &options.primary_key {
                Some(k) => k.clone(),
                None => PrimaryKey::generate()?,
            };
            file.write(0, &key.to_file_bytes())?;
            file.sync()?;
            key
        } else {
            let stored = PrimaryKey::from_file_bytes(&file.read_to_vec(0, 32)?)?;
            options.primary_key.clone().unwrap_or(stored)
        };
        debug!("store opened");
        let root = Arc::new(Root {
            provider,
            lock_file: Mutex::new(Some(file)),
            registry: Arc::new(Registry::new(options.linger.unwrap_or_else(default_linger))),
            closed: AtomicBool::new(false),
            options: options.clone(),
            worker: Worker::default(),
            no_core: Mutex::default(),
        });
        let events = Arc::clone(&root.registry.hub.events.root);
        Ok(Self {
            inner: Arc::new(StoreInner {
                root,
                primary_key,
                namespace: options.namespace,
                writable: options.writable,
                is_root: true,
                parent: None,
                sessions: SessionList::default(),
                closed: AtomicBool::new(false),
                events,
            }),
        })
    }

    /// A receiver of this session's store events: [`StoreEvent::CoreOpen`] and
    /// [`StoreEvent::CoreClose`] (corestore 6 `core-open` / `core-close`, spec §6.10). As in
    /// corestore 6, a session hears about the cores loaded by its own `get`s; the root and
    /// the sessions made directly from it hear about every core, including cores loaded for
    /// remote peers. Subscribe before the `get` whose event you wait for.
    pub fn events(&self) -> tokio::sync::broadcast::Receiver<StoreEvent> {
        self.inner.events.subscribe()
    }

    /// Releases the `primary-key` lock (corestore 6 `suspend`, spec §6.2), for example while
    /// a mobile app is in the background, so that another process can take the store over.
    /// Like corestore 6.18.4 this releases only the lock: loaded cores keep their files and
    /// replication streams keep running (corestore 6 suspends nothing else). Idempotent; the
    /// same on every session of the store.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`], [`Error::Storage`] from closing the lock file.
    pub async fn suspend(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let file = lock(&self.inner.root.lock_file).take();
        if let Some(file) = file {
            file.close()?;
            debug!("store suspended: primary-key unlocked");
        }
        Ok(())
    }

    /// Takes the `primary-key` lock again after [`Corestore::suspend`] (corestore 6
    /// `resume`). Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::Locked`] if another store took the lock meanwhile (the store stays
    /// suspended; try again later), [`Error::Closed`], [`Error::Storage`].
    pub async fn resume(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let mut held = lock(&self.inner.root.lock_file);
        if held.is_none() {
            *held = Some(lock_primary_key(&*self.inner.root.provider)?);
            debug!("store resumed: primary-key locked");
        }
        Ok(())
    }

    /// Whether the store is suspended (its `primary-key` lock released).
    pub fn is_suspended(&self) -> bool {
        !self.is_closed() && lock(&self.inner.root.lock_file).is_none()
    }

    /// The primary key this session derives named cores from.
    pub fn primary_key(&self) -> &PrimaryKey {
        &self.inner.primary_key
    }

    /// This session's namespace.
    pub fn namespace_key(&self) -> &Namespace {
        &self.inner.namespace
    }

    /// Whether this is the root store (not a session).
    pub fn is_root(&self) -> bool {
        self.inner.is_root
    }

    /// Whether this session (or the whole store) was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire) || self.inner.root.closed.load(Ordering::Acquire)
    }

    /// The key pair of the core `name` in this session's namespace (corestore
    /// `createKeyPair`).
    pub fn key_pair(&self, name: &str) -> KeyPair {
        named_key_pair(&self.inner.primary_key, &self.inner.namespace, name)
    }

    /// The key the core called `name` gets in this session (compat: the public key).
    pub fn key_of(&self, name: &str) -> Key {
        self.core_key(&self.key_pair(name), None)
    }

    fn core_key(&self, key_pair: &KeyPair, compat: Option<bool>) -> Key {
        if compat.unwrap_or(self.inner.root.options.compat) {
            Key::from(key_pair.public_key())
        } else {
            Key::from(Manifest::single_signer_v0(key_pair.public_key()).hash())
        }
    }

    /// A session in the child namespace `name` (chainable:
    /// `store.namespace("a").namespace("b")`).
    pub fn namespace(&self, name: impl AsRef<[u8]>) -> Self {
        let ns = self.inner.namespace.child(name);
        self.session(SessionOptions::new().namespace(ns))
    }

    /// A session whose namespace is the one `core` was created in (its `corestore/namespace`
    /// user data): corestore 6 `namespace(core)`, the "bootstrap" of spec §6.4. A core
    /// without that user data (not created by name) leaves the namespace as it is.
    pub fn namespace_of(&self, core: &Hypercore) -> Self {
        let ns = core
            .user_data(USER_DATA_NAMESPACE)
            .and_then(|ns| Namespace::try_from(ns.as_slice()).ok());
        let mut options = SessionOptions::new();
        if let Some(ns) = ns {
            options = options.namespace(ns);
        }
        self.session(options)
    }

    /// A new session sharing the store's cores, streams and locks (corestore 6 `session`).
    pub fn session(&self, options: SessionOptions) -> Self {
        let events = Arc::new(EventTx::default());
        if self.inner.is_root {
            self.inner.root.registry.hub.events.add_child(&events);
        }
        Self {
            inner: Arc::new(StoreInner {
                root: Arc::clone(&self.inner.root),
                primary_key: options
                    .primary_key
                    .unwrap_or_else(|| self.inner.primary_key.clone()),
                namespace: options.namespace.unwrap_or(self.inner.namespace),
                writable: options.writable.unwrap_or(self.inner.writable),
                is_root: false,
                parent: (!options.detach).then(|| self.clone()),
                sessions: SessionList::default(),
                closed: AtomicBool::new(false),
                events,
            }),
        }
    }

    /// Opens a core session: by name (writable), by key, or by key pair. A second `get` of a
    /// loaded core is a new session on the same core; the core closes with its last session.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyName`], [`Error::InvalidKey`], [`Error::NotFound`] (with
    /// `create_if_missing(false)`), [`Error::Timeout`] waiting for an exclusive lock,
    /// [`Error::Closed`], [`Error::Core`] for storage problems.
    pub async fn get(&self, options: impl Into<GetOptions>) -> Result<Hypercore> {
        let options = options.into();
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let (key, key_pair, name) = match &options.target {
            Target::Name(name) if name.is_empty() => return Err(Error::EmptyName),
            Target::Name(name) => {
                let kp = self.key_pair(name);
                (
                    Some(self.core_key(&kp, options.compat)),
                    Some(kp),
                    Some(name.clone()),
                )
            }
            Target::Key(Ok(key)) => (Some(*key), None, None),
            Target::Key(Err(e)) => return Err(Error::InvalidKey(e.clone())),
            Target::KeyPair(kp) => (
                Some(self.core_key(kp, options.compat)),
                Some(kp.clone()),
                None,
            ),
            Target::DiscoveryKey(_) => (None, None, None),
        };
        let dk = match (&options.target, key) {
            (Target::DiscoveryKey(dk), _) => *dk,
            (_, Some(key)) => key.discovery_key(),
            (_, None) => return Err(Error::InvalidArgument("no key")),
        };
        let mut core_options = CoreOptions::new()
            .create(options.create_if_missing && key.is_some())
            .lazy(self.inner.root.options.lazy);
        if let Some(name) = &name {
            // What corestore 6 records right after creating a named core (kept in memory
            // until a lazily created core writes its files).
            core_options = core_options
                .user_data(USER_DATA_NAME, name.as_bytes())
                .user_data(USER_DATA_NAMESPACE, self.inner.namespace.as_ref());
        }
        if let Some(key) = key {
            core_options = core_options.key(key);
        }
        if let Some(kp) = &key_pair {
            core_options = core_options.key_pair(kp.clone());
            if !options.compat.unwrap_or(self.inner.root.options.compat) {
                core_options = core_options
                    .manifest(Manifest::single_signer_v0(kp.public_key()))
                    .compat(false);
            }
        }
        let fixup = {
            let primary_key = self.inner.primary_key.clone();
            let namespace = self.inner.namespace;
            move |core: Core, provider: &dyn Provider, prefix: &str| {
                fixup(
                    core,
                    name.as_deref(),
                    &namespace,
                    &primary_key,
                    provider,
                    prefix,
                )
            }
        };
        let loaded = self
            .inner
            .root
            .load_as(dk, core_options, fixup, Some(&self.inner.events))
            .await?;
        let writable = self.inner.writable
            && options.writable != Some(false)
            && loaded.with(|c| Ok(c.is_writable())).unwrap_or(false);
        let config = SessionConfig {
            writable,
            wait: options.wait,
            timeout: options.timeout,
            cache: options.cache.unwrap_or(self.inner.root.options.cache),
        };
        let session = SessionInner::new(
            loaded,
            Arc::clone(&self.inner.root.registry),
            config,
            Arc::downgrade(&self.inner.sessions),
        );
        let handle = Hypercore::from_inner(session);
        if options.exclusive && writable {
            let sem = self.inner.root.registry.exclusive_lock(&dk);
            let permit = match options.timeout {
                Some(t) => tokio::time::timeout(t, sem.acquire_owned())
                    .await
                    .map_err(|_| Error::Timeout(t))?,
                None => sem.acquire_owned().await,
            }
            .map_err(|_| Error::Closed)?;
            handle.inner().hold_exclusive(permit);
        }
        if !options.sparse {
            handle.inner().download_everything();
        }
        lock(&self.inner.sessions).push(handle.inner());
        if self.is_closed() {
            // The store closed while this `get` was waiting.
            handle.inner().close();
            return Err(Error::Closed);
        }
        Ok(handle)
    }

    /// Closes this session: every core session obtained through it, then (if it was created
    /// with `detach(false)`) its parent. Closing the root closes every session and core of the
    /// store, ends its replication streams and releases the `primary-key` lock.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] from closing the lock file.
    pub async fn close(&self) -> Result<()> {
        let mut next = Some(self.clone());
        while let Some(store) = next.take() {
            next = store.close_one()?;
        }
        Ok(())
    }

    fn close_one(&self) -> Result<Option<Self>> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let sessions = lock(&self.inner.sessions).take_all();
        for s in sessions {
            s.close();
        }
        if self.inner.is_root {
            let root = &self.inner.root;
            root.closed.store(true, Ordering::Release);
            root.registry.close_all();
            if let Some(file) = lock(&root.lock_file).take() {
                file.close()?;
            }
            debug!("store closed");
        }
        Ok(self.inner.parent.clone())
    }

    /// Marks the store as looking for peers (corestore `findingPeers()`): while the returned
    /// guard lives, [`Hypercore::update`] waits for a peer instead of returning at once.
    pub fn finding_peers(&self) -> FindingPeers {
        let registry = Arc::clone(&self.inner.root.registry);
        registry.finding.fetch_add(1, Ordering::AcqRel);
        FindingPeers {
            registry,
            done: AtomicBool::new(false),
        }
    }

    /// The discovery keys of every core stored in this store's storage (those with an
    /// `oplog`), sorted. Open one with [`GetOptions::discovery_key`]. A lazily created core
    /// that has not written its files yet is not stored (see [`Corestore::list_cores`]).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`]; function storages cannot be listed
    /// ([`rac_storage::Error::Unsupported`]).
    pub fn stored_cores(&self) -> Result<Vec<DiscoveryKey>> {
        let names = self.inner.root.provider.list("cores")?;
        let mut out: Vec<DiscoveryKey> = names
            .iter()
            .filter_map(|n| n.strip_suffix("/oplog"))
            .filter_map(|dir| dir.rsplit('/').next())
            .filter_map(|id| id.parse::<Key>().ok())
            .map(|k| DiscoveryKey::from_bytes(k.to_bytes()))
            .collect();
        out.sort_unstable_by_key(|dk| dk.to_bytes());
        out.dedup();
        Ok(out)
    }

    pub(crate) fn root(&self) -> &Arc<Root> {
        &self.inner.root
    }
}

/// A guard from [`Corestore::finding_peers`]; dropping it (or [`FindingPeers::done`]) ends
/// the search.
pub struct FindingPeers {
    registry: Arc<Registry>,
    done: AtomicBool,
}

impl std::fmt::Debug for FindingPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindingPeers")
            .field("done", &self.done.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl FindingPeers {
    /// Ends the search (idempotent): waiting updates without peers return.
    pub fn done(&self) {
        if !self.done.swap(true, Ordering::AcqRel) {
            self.registry.finding.fetch_sub(1, Ordering::AcqRel);
            self.registry.wake_all();
        }
    }
}

impl Drop for FindingPeers {
    fn drop(&mut self) {
        self.done();
    }
}

/// Opens `primary-key` with its exclusive lock.
fn lock_primary_key(provider: &dyn Provider) -> Result<Arc<dyn Storage>> {
    provider
        .open(PRIMARY_KEY_FILE, &OpenOptions::new().lock(true))
        .map_err(|e| match e {
            e @ rac_storage::Error::Locked { .. } => Error::Locked(e),
            e => Error::Storage(e),
        })
}

/// After a fresh open: record the name and namespace of a named core (so JavaScript can
/// re-derive its key pair), or re-derive the key pair of a core created by name that was
/// opened by key from a store whose header lacks the secret key (corestore 6.0–6.14).
fn fixup(
    mut core: Core,
    name: Option<&str>,
    namespace: &Namespace,
    primary_key: &PrimaryKey,
    provider: &dyn Provider,
    prefix: &str,
) -> Result<Core> {
    if let Some(name) = name {
        if core.user_data(USER_DATA_NAME).is_none() {
            core.set_user_data(USER_DATA_NAME, name.as_bytes())?;
            core.set_user_data(USER_DATA_NAMESPACE, namespace.as_ref())?;
        }
        return Ok(core);
    }
    if core.is_writable() {
        return Ok(core);
    }
    let (Some(stored_name), Some(stored_ns)) = (
        core.user_data(USER_DATA_NAME),
        core.user_data(USER_DATA_NAMESPACE),
    ) else {
        return Ok(core);
    };
    let (Ok(stored_name), Ok(stored_ns)) = (
        std::str::from_utf8(stored_name),
        Namespace::try_from(stored_ns),
    ) else {
        return Ok(core);
    };
    let kp = named_key_pair(primary_key, &stored_ns, stored_name);
    let pk = Key::from(kp.public_key());
    let matches = *core.key() == pk
        || *core.key() == Key::from(Manifest::single_signer_v0(kp.public_key()).hash());
    if !matches {
        return Ok(core);
    }
    // hypercore-lite has no `set_key_pair`: reopen the core with the derived key pair.
    let key = *core.key();
    let manifest = core.manifest().cloned();
    core.close()?;
    let mut options = CoreOptions::new().key(key).key_pair(kp).create(false);
    if let Some(m) = manifest {
        options = options.manifest(m);
    }
    Ok(Core::open(provider, prefix, options)?)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use rac_storage::MemoryStorage;

    use super::*;

    #[tokio::test]
    async fn a_core_found_missing_for_a_remote_is_not_looked_up_again() {
        let oplog_opens = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&oplog_opens);
        let files: Mutex<std::collections::HashMap<String, MemoryStorage>> = Mutex::default();
        let storage = StoreStorage::function(move |name: &str| {
            if name.ends_with("/oplog") {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            Ok(lock(&files).entry(name.to_owned()).or_default().reopen())
        });
        let store = Corestore::new(storage, StoreOptions::new()).await.unwrap();
        let key = store.key_of("later");
        let dk = key.discovery_key();
        let remote_open = || {
            store
                .root()
                .load(dk, CoreOptions::new().create(false), |c, _, _| Ok(c))
        };
        assert!(matches!(remote_open().await, Err(Error::NotFound(_))));
        assert_eq!(oplog_opens.load(Ordering::SeqCst), 1);
        assert!(matches!(remote_open().await, Err(Error::NotFound(_))));
        assert_eq!(
            oplog_opens.load(Ordering::SeqCst),
            1,
            "answered from the cache"
        );

        // Creating the core forgets the entry: the next remote open finds it.
        let core = store.get(GetOptions::name("later")).await.unwrap();
        core.close().await;
        let found = remote_open().await.unwrap();
        assert_eq!(found.key, key);
        store.root().registry.release(&found);
    }

    #[test]
    fn the_no_core_cache_is_bounded_and_forgets_the_oldest() {
        let mut cache = NoCoreCache::default();
        let dk = |i: u32| {
            let mut b = [0u8; 32];
            b[..4].copy_from_slice(&i.to_le_bytes());
            DiscoveryKey::from_bytes(b)
        };
        let n = u32::try_from(NO_CORE_ENTRIES).unwrap();
        for i in 0..n + 10 {
            cache.insert(dk(i));
            if i % 3 == 0 {
                cache.remove(&dk(i));
                cache.insert(dk(i));
            }
        }
        assert_eq!(cache.keys.len(), NO_CORE_ENTRIES);
        assert!(!cache.contains(&dk(0)));
        assert!(cache.contains(&dk(n + 9)));
        assert!(cache.order.len() <= 2 * NO_CORE_ENTRIES + 1);
    }
}
