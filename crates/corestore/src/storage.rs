//! [`StoreStorage`]: the three ways a store is given storage, as in JavaScript corestore
//! (`new Corestore(storage)`): a directory path, a backend (a [`Provider`]), or a function from
//! a relative path (`cores/aa/bb/<dk>/oplog`) to a backend.

use std::fmt;
#[cfg(all(unix, feature = "fs"))]
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rac_storage::{FnProvider, MemoryProvider, Provider, Storage};

/// Where a [`Corestore`](crate::Corestore) keeps its files.
///
/// ```
/// use corestore::StoreStorage;
/// use rac_storage::MemoryStorage;
///
/// let in_memory = StoreStorage::memory();
/// let custom = StoreStorage::function(|_name: &str| Ok(MemoryStorage::new()));
/// # #[cfg(all(unix, feature = "fs"))]
/// let on_disk = StoreStorage::from("/tmp/my-store");
/// ```
#[derive(Clone)]
pub struct StoreStorage {
    pub(crate) provider: Arc<dyn Provider>,
}

impl StoreStorage {
    /// Files under the directory `root` (created on first write), with a bounded pool of open
    /// descriptors; `primary-key` is locked exclusively while the store is open.
    #[cfg(all(unix, feature = "fs"))]
    pub fn dir(root: impl Into<PathBuf>) -> Self {
        Self::provider(rac_storage::DirectoryProvider::new(root))
    }

    /// Everything in memory (lost when the last handle goes).
    pub fn memory() -> Self {
        Self::provider(MemoryProvider::new())
    }

    /// Any [`Provider`] (a backend that opens storages by name).
    pub fn provider(provider: impl Provider + 'static) -> Self {
        Self {
            provider: Arc::new(provider),
        }
    }

    /// A function from a relative path (`primary-key`, `cores/aa/bb/<dk>/oplog`, ...) to a
    /// backend. Such stores cannot be listed, so remote peers can open only cores that are
    /// loaded or that exist under a name the function answers non-empty for.
    pub fn function<F, S>(open: F) -> Self
    where
        F: Fn(&str) -> rac_storage::Result<S> + Send + Sync + 'static,
        S: Storage + 'static,
    {
        Self::provider(FnProvider::new(open))
    }

    /// The provider.
    pub fn as_provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }
}

impl fmt::Debug for StoreStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreStorage")
            .field("provider", &self.provider)
            .finish()
    }
}

impl From<Arc<dyn Provider>> for StoreStorage {
    fn from(provider: Arc<dyn Provider>) -> Self {
        Self { provider }
    }
}

impl From<MemoryProvider> for StoreStorage {
    fn from(provider: MemoryProvider) -> Self {
        Self::provider(provider)
    }
}

#[cfg(all(unix, feature = "fs"))]
impl From<rac_storage::DirectoryProvider> for StoreStorage {
    fn from(provider: rac_storage::DirectoryProvider) -> Self {
        Self::provider(provider)
    }
}

#[cfg(all(unix, feature = "fs"))]
impl From<PathBuf> for StoreStorage {
    fn from(path: PathBuf) -> Self {
        Self::dir(path)
    }
}

#[cfg(all(unix, feature = "fs"))]
impl From<&Path> for StoreStorage {
    fn from(path: &Path) -> Self {
        Self::dir(path)
    }
}

#[cfg(all(unix, feature = "fs"))]
impl From<&str> for StoreStorage {
    fn from(path: &str) -> Self {
        Self::dir(path)
    }
}

#[cfg(all(unix, feature = "fs"))]
impl From<String> for StoreStorage {
    fn from(path: String) -> Self {
        Self::dir(path)
    }
}

/// The storage prefix of a core: `cores/<dk[0:2]>/<dk[2:4]>/<dk>/` (corestore 6).
pub(crate) fn core_prefix(dk: &corestore_keys::DiscoveryKey) -> String {
    let id = dk.to_string();
    let (a, b) = (
        id.get(0..2).unwrap_or_default(),
        id.get(2..4).unwrap_or_default(),
    );
    format!("cores/{a}/{b}/{id}/")
}
