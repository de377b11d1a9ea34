//! Options: [`StoreOptions`] for [`Corestore::new`](crate::Corestore::new),
//! [`GetOptions`] for [`Corestore::get`](crate::Corestore::get) and [`SessionOptions`] for
//! [`Corestore::session`](crate::Corestore::session).

use std::time::Duration;

use corestore_keys::{DiscoveryKey, Key, KeyPair, Namespace, ParseKeyError, PrimaryKey};

/// Options of a root store (corestore 6 constructor options).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// The primary key. Default: the one in the `primary-key` file, or a fresh random key that
    /// is written there. A supplied key is used for this process without checking or
    /// rewriting an existing file (corestore 6.18 behaviour).
    pub primary_key: Option<PrimaryKey>,
    /// Write `primary_key` (or a fresh key) to the file even if one exists.
    pub overwrite: bool,
    /// The root namespace (default: 32 zero bytes).
    pub namespace: Namespace,
    /// Do not attach cores to replication streams proactively; only answer channels the remote
    /// opens (default `false`).
    pub passive: bool,
    /// `false` makes every `get` read-only (default `true`).
    pub writable: bool,
    /// New named cores use the public key as core key (`true`, corestore 6 default) or the hash
    /// of a version-0 signer manifest (`false`).
    pub compat: bool,
    /// Cache block reads in every session (default `false`).
    pub cache: bool,
    /// How long a core whose last session closed stays loaded and attached to replication
    /// streams before it closes with its channels (hypercore `notDownloadingLinger`). Default
    /// `None`: 20 s plus up to 20 s at random, as hypercore 10. A core attached to no stream
    /// closes with its last session at once.
    pub linger: Option<Duration>,
    /// Create new cores lazily (default `true`): a core that a `get` creates (by name, or by
    /// key with `create_if_missing`) lives in memory until its first durable operation (an
    /// append, data from a peer, a truncate, a clear, a user-data change) or its close, and
    /// only then writes its files, the same bytes an eager creation writes. A process that
    /// ends before that leaves no trace of it (nothing acknowledged is lost: nothing was).
    /// `false` writes the files in `get`, as corestore 6 does.
    pub lazy: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            primary_key: None,
            overwrite: false,
            namespace: Namespace::DEFAULT,
            passive: false,
            writable: true,
            compat: true,
            cache: false,
            linger: None,
            lazy: true,
        }
    }
}

impl StoreOptions {
    /// Default options.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`StoreOptions::primary_key`].
    #[must_use]
    pub fn primary_key(mut self, key: PrimaryKey) -> Self {
        self.primary_key = Some(key);
        self
    }

    /// Sets [`StoreOptions::overwrite`].
    #[must_use]
    pub const fn overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }

    /// Sets [`StoreOptions::namespace`].
    #[must_use]
    pub const fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = namespace;
        self
    }

    /// Sets [`StoreOptions::passive`].
    #[must_use]
    pub const fn passive(mut self, passive: bool) -> Self {
        self.passive = passive;
        self
    }

    /// Sets [`StoreOptions::writable`].
    #[must_use]
    pub const fn writable(mut self, writable: bool) -> Self {
        self.writable = writable;
        self
    }

    /// Sets [`StoreOptions::compat`].
    #[must_use]
    pub const fn compat(mut self, compat: bool) -> Self {
        self.compat = compat;
        self
    }

    /// Sets [`StoreOptions::cache`].
    #[must_use]
    pub const fn cache(mut self, cache: bool) -> Self {
        self.cache = cache;
        self
    }

    /// Sets [`StoreOptions::linger`].
    #[must_use]
    pub const fn linger(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// Sets [`StoreOptions::lazy`].
    #[must_use]
    pub const fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }
}

/// Which core a [`GetOptions`] names.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A name in the session's namespace (writable, key pair derived).
    Name(String),
    /// A key (or the error parsing it, reported by `get`).
    Key(Result<Key, ParseKeyError>),
    /// A key pair given directly.
    KeyPair(KeyPair),
    /// Only the discovery key of a stored core (its key is read from storage).
    DiscoveryKey(DiscoveryKey),
}

/// What to [`get`](crate::Corestore::get) and how to open it.
///
/// ```
/// use std::time::Duration;
/// use corestore::GetOptions;
///
/// let by_name = GetOptions::name("log").exclusive(true);
/// let by_key = GetOptions::key_str("37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b")
///     .timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct GetOptions {
    pub(crate) target: Target,
    pub(crate) writable: Option<bool>,
    pub(crate) create_if_missing: bool,
    pub(crate) sparse: bool,
    pub(crate) wait: bool,
    pub(crate) timeout: Option<Duration>,
    pub(crate) compat: Option<bool>,
    pub(crate) cache: Option<bool>,
    pub(crate) exclusive: bool,
}

impl GetOptions {
    fn with(target: Target) -> Self {
        Self {
            target,
            writable: None,
            create_if_missing: true,
            sparse: true,
            wait: true,
            timeout: None,
            compat: None,
            cache: None,
            exclusive: false,
        }
    }

    /// The core called `name` in the session's namespace: its key pair is derived from the
    /// primary key, so it is writable.
    pub fn name(name: impl Into<String>) -> Self {
        Self::with(Target::Name(name.into()))
    }

    /// The core with this key (read-only unless the stored header has the secret key or the
    /// core was created by name in this store).
    pub fn key(key: impl Into<Key>) -> Self {
        Self::with(Target::Key(Ok(key.into())))
    }

    /// A key as 64 hex characters, 52 z-base-32 characters or a `pear://` link; a malformed
    /// key makes `get` fail with [`Error::InvalidKey`](crate::Error::InvalidKey).
    pub fn key_str(key: &str) -> Self {
        Self::with(Target::Key(corestore_keys::id::parse_key(key)))
    }

    /// A key as raw bytes (must be 32 bytes).
    pub fn key_bytes(key: &[u8]) -> Self {
        Self::with(Target::Key(corestore_keys::id::key_from_bytes(key)))
    }

    /// A core signed by this key pair (compat: its key is the public key).
    pub fn key_pair(key_pair: KeyPair) -> Self {
        Self::with(Target::KeyPair(key_pair))
    }

    /// A stored core known only by its discovery key (for example from
    /// [`Corestore::stored_cores`](crate::Corestore::stored_cores)); never created.
    pub fn discovery_key(discovery_key: DiscoveryKey) -> Self {
        let mut options = Self::with(Target::DiscoveryKey(discovery_key));
        options.create_if_missing = false;
        options
    }

    /// `false` opens a read-only session even when the secret key is known.
    pub const fn writable(mut self, writable: bool) -> Self {
        self.writable = Some(writable);
        self
    }

    /// `false` fails with [`Error::NotFound`](crate::Error::NotFound) when the core is not
    /// stored (default `true`).
    pub const fn create_if_missing(mut self, create: bool) -> Self {
        self.create_if_missing = create;
        self
    }

    /// `false` downloads every block while the session is open (default `true`: only what is
    /// read or explicitly downloaded).
    pub const fn sparse(mut self, sparse: bool) -> Self {
        self.sparse = sparse;
        self
    }

    /// Whether reads of missing blocks wait for peers (default `true`).
    pub const fn wait(mut self, wait: bool) -> Self {
        self.wait = wait;
        self
    }

    /// Bound on every wait of the session (block reads, downloads, updates); default none.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Compat key (public key) or manifest key for a core created by name or key pair;
    /// default: the store's choice (compat).
    pub const fn compat(mut self, compat: bool) -> Self {
        self.compat = Some(compat);
        self
    }

    /// Cache block reads in this session (default: the store's choice).
    pub const fn cache(mut self, cache: bool) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Wait until no other exclusive writable session of this core (in this process) is
    /// open, and hold that lock until this session closes.
    pub const fn exclusive(mut self, exclusive: bool) -> Self {
        self.exclusive = exclusive;
        self
    }
}

impl From<Key> for GetOptions {
    fn from(key: Key) -> Self {
        Self::key(key)
    }
}

impl From<&Key> for GetOptions {
    fn from(key: &Key) -> Self {
        Self::key(*key)
    }
}

impl From<[u8; 32]> for GetOptions {
    fn from(key: [u8; 32]) -> Self {
        Self::key(key)
    }
}

/// Options of [`Corestore::session`](crate::Corestore::session).
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionOptions {
    pub(crate) primary_key: Option<PrimaryKey>,
    pub(crate) namespace: Option<Namespace>,
    pub(crate) detach: bool,
    pub(crate) writable: Option<bool>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            primary_key: None,
            namespace: None,
            detach: true,
            writable: None,
        }
    }
}

impl SessionOptions {
    /// Inherit everything; detached.
    pub fn new() -> Self {
        Self::default()
    }

    /// Derive this session's named cores from another primary key.
    pub fn primary_key(mut self, key: PrimaryKey) -> Self {
        self.primary_key = Some(key);
        self
    }

    /// Use this namespace instead of the parent's.
    pub const fn namespace(mut self, namespace: Namespace) -> Self {
        self.namespace = Some(namespace);
        self
    }

    /// `false` attaches the session to its parent: closing it also closes the parent
    /// (corestore 6 `detach: false`). Default `true`.
    pub const fn detach(mut self, detach: bool) -> Self {
        self.detach = detach;
        self
    }

    /// `false` makes every `get` of the session read-only.
    pub const fn writable(mut self, writable: bool) -> Self {
        self.writable = Some(writable);
        self
    }
}
