//! [`Provider`]: how a store is given storage, by name. Three implementations cover the three
//! ways JavaScript Corestore accepts storage: a directory path
//! ([`DirectoryProvider`](crate::DirectoryProvider)), memory ([`MemoryProvider`]) and a user
//! function ([`FnProvider`]).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Op, Result};
use crate::memory::MemoryStorage;
use crate::name::{is_under, validate_name, validate_prefix};
use crate::storage::Storage;

/// Options for [`Provider::open`].
///
/// ```
/// use rac_storage::OpenOptions;
/// let options = OpenOptions::new().lock(true);
/// assert!(options.lock);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Take an exclusive advisory lock (for files such as `primary-key`), failing with
    /// [`Error::Locked`] if another holder has it. A locked file is created (with its parent
    /// directories) at open, and stays open until closed. Memory and function providers ignore
    /// it.
    pub lock: bool,
    /// A hint that the caller knows the storage does not exist yet (hypercore-lite passes it
    /// for the other files of a core whose `oplog` it just found missing): the handle then
    /// answers [`len`](crate::Storage::len) and reads as an empty storage without asking the
    /// backend, and its first non-empty write or non-zero truncate creates the file without
    /// probing for it first. Only [`FileStorage`](crate::FileStorage) uses it; a wrong hint
    /// (the file does exist) makes the handle see it as empty until it writes. Ignored with
    /// [`lock`](Self::lock).
    pub absent: bool,
}

impl OpenOptions {
    /// Default options: no lock.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`lock`](Self::lock).
    #[must_use]
    pub fn lock(mut self, lock: bool) -> Self {
        self.lock = lock;
        self
    }

    /// Sets [`absent`](Self::absent).
    #[must_use]
    pub fn absent(mut self, absent: bool) -> Self {
        self.absent = absent;
        self
    }
}

/// Opens storages by name: the one abstraction over a directory
/// ([`DirectoryProvider`](crate::DirectoryProvider)), memory ([`MemoryProvider`]) and a user
/// function ([`FnProvider`]).
///
/// Names are relative `/`-separated paths (`cores/aa/bb/<dk>/oplog`), validated with
/// [`validate_name`] by every method. Opening must not create anything unless `options.lock`
/// is set: a storage comes into existence on its first non-empty write or non-zero truncate.
pub trait Provider: Send + Sync + fmt::Debug {
    /// Opens (a new handle onto) the storage called `name`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::Locked`], or [`Error::Io`] from the backend.
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Arc<dyn Storage>>;

    /// Whether the storage called `name` exists (was created and not unlinked). Used to answer
    /// "does this core exist" without creating it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`] or [`Error::Io`].
    fn exists(&self, name: &str) -> Result<bool>;

    /// The names of all existing storages under the directory-like `prefix` (`""` for all),
    /// sorted. `list("cores")` returns names such as `cores/aa/bb/<dk>/oplog`, never `cores`
    /// itself.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`], [`Error::Io`], or [`Error::Unsupported`] for providers that cannot
    /// enumerate (the default).
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        Err(Error::Unsupported { op: Op::List })
    }
}

impl<P: Provider + ?Sized> Provider for Arc<P> {
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Arc<dyn Storage>> {
        (**self).open(name, options)
    }
    fn exists(&self, name: &str) -> Result<bool> {
        (**self).exists(name)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        (**self).list(prefix)
    }
}

/// An in-memory store: one [`MemoryStorage`] per name.
///
/// Opening a name again returns a new handle onto the same data, so closing and reopening (or
/// reopening a core in a test) sees what was written. Cloning the provider shares the names.
#[derive(Debug, Clone, Default)]
pub struct MemoryProvider {
    storages: Arc<Mutex<BTreeMap<String, MemoryStorage>>>,
}

impl MemoryProvider {
    /// An empty memory store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts `storage`'s data under `name`, replacing anything there (for example a crash image).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidName`].
    pub fn insert(&self, name: &str, storage: MemoryStorage) -> Result<()> {
        validate_name(name)?;
        self.storages().insert(name.to_owned(), storage);
        Ok(())
    }

    /// A new handle onto the data under `name`, if the name was ever opened or inserted.
    pub fn get(&self, name: &str) -> Option<MemoryStorage> {
        self.storages().get(name).map(MemoryStorage::reopen)
    }

    fn storages(&self) -> MutexGuard<'_, BTreeMap<String, MemoryStorage>> {
        self.storages.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Provider for MemoryProvider {
    fn open(&self, name: &str, _options: &OpenOptions) -> Result<Arc<dyn Storage>> {
        validate_name(name)?;
        let mut storages = self.storages();
        let storage = storages.entry(name.to_owned()).or_default().reopen();
        Ok(Arc::new(storage))
    }

    fn exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        Ok(self.storages().get(name).is_some_and(MemoryStorage::exists))
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        Ok(self
            .storages()
            .iter()
            .filter(|(name, storage)| is_under(name, prefix) && storage.exists())
            .map(|(name, _)| name.clone())
            .collect())
    }
}

/// A provider backed by a user function from a name to a storage, for custom backends.
///
/// The function receives only validated names. It may return any [`Storage`], including an
/// `Arc<dyn Storage>` it keeps to hand out again.
///
/// ```
/// use rac_storage::{FnProvider, MemoryStorage, OpenOptions, Provider, Storage};
///
/// let provider = FnProvider::new(|_name: &str| Ok(MemoryStorage::new()));
/// let oplog = provider.open("cores/aa/bb/cc/oplog", &OpenOptions::new())?;
/// oplog.write(0, b"hi")?;
/// # Ok::<(), rac_storage::Error>(())
/// ```
///
/// [`exists`](Provider::exists) opens the name and reports whether it is non-empty (a function
/// cannot tell "missing" from "empty"); [`list`](Provider::list) is
/// [`Error::Unsupported`].
pub struct FnProvider<F> {
    open: F,
}

impl<F, S> FnProvider<F>
where
    F: Fn(&str) -> Result<S> + Send + Sync,
    S: Storage + 'static,
{
    /// Wraps `open`.
    pub fn new(open: F) -> Self {
        Self { open }
    }
}

impl<F> fmt::Debug for FnProvider<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnProvider").finish_non_exhaustive()
    }
}

impl<F, S> Provider for FnProvider<F>
where
    F: Fn(&str) -> Result<S> + Send + Sync,
    S: Storage + 'static,
{
    fn open(&self, name: &str, _options: &OpenOptions) -> Result<Arc<dyn Storage>> {
        validate_name(name)?;
        Ok(Arc::new((self.open)(name)?))
    }

    fn exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        Ok(!(self.open)(name)?.is_empty()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_provider_reopens_and_lists() {
        let p = MemoryProvider::new();
        let s = p.open("cores/aa/x", &OpenOptions::new()).unwrap();
        assert!(!p.exists("cores/aa/x").unwrap());
        s.write(0, b"abc").unwrap();
        s.close().unwrap();
        assert!(p.exists("cores/aa/x").unwrap());
        let again = p.open("cores/aa/x", &OpenOptions::new()).unwrap();
        assert_eq!(again.read_to_vec(0, 3).unwrap(), b"abc");
        p.open("cores/bb/y", &OpenOptions::new())
            .unwrap()
            .truncate(1)
            .unwrap();
        p.open("other", &OpenOptions::new()).unwrap();
        assert_eq!(p.list("cores").unwrap(), ["cores/aa/x", "cores/bb/y"]);
        assert_eq!(p.list("cores/aa").unwrap(), ["cores/aa/x"]);
        assert!(p.list("core").unwrap().is_empty());
        again.unlink().unwrap();
        assert!(!p.exists("cores/aa/x").unwrap());
        assert!(p.open("../x", &OpenOptions::new()).is_err());
    }

    #[test]
    fn fn_provider_accepts_shared_arcs() {
        let shared: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let p = FnProvider::new(move |_: &str| Ok(Arc::clone(&shared)));
        assert!(!p.exists("a").unwrap());
        p.open("a", &OpenOptions::new())
            .unwrap()
            .write(0, b"x")
            .unwrap();
        assert!(p.exists("b").unwrap(), "same storage for every name");
        assert!(matches!(
            p.list(""),
            Err(Error::Unsupported { op: Op::List })
        ));
        assert!(matches!(p.exists("/a"), Err(Error::InvalidName { .. })));
    }
}
