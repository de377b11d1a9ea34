//! [`Corestore::list_cores`]: every stored core with its key, name and lengths, read without
//! loading the cores into the store.

use corestore_keys::corestore::named_key_pair;
use corestore_keys::{DiscoveryKey, Key, Manifest, Namespace, PrimaryKey};
use hypercore_lite::{Core, CoreOptions};
use rac_storage::Provider;
use tracing::debug;

use crate::error::{Error, Result};
use crate::storage::core_prefix;
use crate::store::{Corestore, USER_DATA_NAME, USER_DATA_NAMESPACE};

/// A stored core, as [`Corestore::list_cores`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredCore {
    /// The core key.
    pub key: Key,
    /// The discovery key (the name of the core's directory).
    pub discovery_key: DiscoveryKey,
    /// The name it was created with (`corestore/name` user data), if any.
    pub name: Option<String>,
    /// The namespace it was created in (`corestore/namespace` user data), if any.
    pub namespace: Option<Namespace>,
    /// Number of blocks.
    pub length: u64,
    /// Leading blocks stored locally.
    pub contiguous_length: u64,
    /// Total bytes of the blocks.
    pub byte_length: u64,
    /// Fork id.
    pub fork: u64,
    /// Whether this store can write it: the header holds the secret key, or its stored name
    /// and namespace derive its key pair from this session's primary key.
    pub writable: bool,
}

impl StoredCore {
    fn of(core: &Core, primary_key: &PrimaryKey) -> Self {
        let name = core
            .user_data(USER_DATA_NAME)
            .and_then(|n| std::str::from_utf8(n).ok())
            .map(str::to_owned);
        let namespace = core
            .user_data(USER_DATA_NAMESPACE)
            .and_then(|n| Namespace::try_from(n).ok());
        let derivable = match (&name, &namespace) {
            (Some(name), Some(ns)) => {
                let pk = named_key_pair(primary_key, ns, name).public_key();
                *core.key() == Key::from(pk)
                    || *core.key() == Key::from(Manifest::single_signer_v0(pk).hash())
            }
            _ => false,
        };
        Self {
            key: *core.key(),
            discovery_key: core.discovery_key(),
            name,
            namespace,
            length: core.length(),
            contiguous_length: core.contiguous_length(),
            byte_length: core.byte_length(),
            fork: core.fork(),
            writable: core.is_writable() || derivable,
        }
    }
}

impl Corestore {
    /// Every core stored in this store's storage, sorted by discovery key, with its key, name
    /// and lengths.
    ///
    /// Cores that are loaded are read from memory. The others are read from their files on
    /// the store's I/O thread and released at once: they are not loaded into the store, so
    /// no session, event or replication stream sees them, and they are not flushed or synced
    /// (entries written since a core's last flush are replayed in memory only). Loads wait
    /// while the listing runs, so no core is open twice. Listing costs one pass over the
    /// cores' files, not a `get` and a `close` (with its syncs) per core.
    ///
    /// Only cores with files are listed: a core that a `get` created lazily (see
    /// [`StoreOptions::lazy`](crate::StoreOptions::lazy)) appears once it wrote them, at its
    /// first durable operation or its close. Until then it exists only in this process, and
    /// neither a crash nor another process (JavaScript corestore included) would see it.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] (function storages cannot be listed), [`Error::Core`] for a core
    /// whose files are damaged, [`Error::Closed`].
    pub async fn list_cores(&self) -> Result<Vec<StoredCore>> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let stored = self.stored_cores()?;
        let root = self.root();
        let _loading = root.registry.loading.lock().await;
        let mut out = Vec::with_capacity(stored.len());
        let mut unloaded = Vec::new();
        for dk in stored {
            let loaded = root
                .registry
                .peek(&dk)
                .and_then(|c| c.with(|c| Ok(StoredCore::of(c, self.primary_key()))).ok());
            match loaded {
                Some(core) => out.push(core),
                None => unloaded.push(dk),
            }
        }
        let provider = std::sync::Arc::clone(&root.provider);
        let primary_key = self.primary_key().clone();
        let read = root
            .run_blocking(move || read_cores(&*provider, &unloaded, &primary_key))
            .await??;
        out.extend(read);
        out.sort_unstable_by_key(|c| c.discovery_key.to_bytes());
        Ok(out)
    }
}

/// Reads the cores `dks` from storage without keeping them open.
fn read_cores(
    provider: &dyn Provider,
    dks: &[DiscoveryKey],
    primary_key: &PrimaryKey,
) -> Result<Vec<StoredCore>> {
    let mut out = Vec::with_capacity(dks.len());
    for dk in dks {
        let core = match Core::open(provider, &core_prefix(dk), CoreOptions::new().create(false)) {
            Ok(core) => core,
            // Removed since the directory was listed.
            Err(hypercore_lite::Error::NotFound) => continue,
            Err(e) => {
                debug!(%dk, error = %e, "cannot read a stored core");
                return Err(e.into());
            }
        };
        out.push(StoredCore::of(&core, primary_key));
        // Dropped, not closed: closing syncs every file, and nothing changed.
        drop(core);
    }
    Ok(out)
}
