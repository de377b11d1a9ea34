//! [`FileStorage`]: one file accessed with positional I/O (`pread`/`pwrite`), the counterpart
//! of random-access-file. Unix only.

use std::fmt;
use std::fs::{self, File, TryLockError};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use crate::error::{Error, Op, Result};
use crate::pool::{FilePool, PooledFile};
use crate::provider::OpenOptions;
use crate::storage::{MAX_SIZE, Storage, append_read, check_extent, check_read, len64};

/// Zeros written by [`Storage::del`] in the middle of a file, one chunk at a time.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// [`Storage::read_to_vec`] of at most this many bytes allocates before learning the file's
/// length (the read reports a short file); longer reads check the length first.
const UNCHECKED_READ_TO_VEC: u64 = 1 << 20;

/// A file used as a [`Storage`], through a shared [`FilePool`] of descriptors.
///
/// - **Lazy creation.** Opening never creates anything (unless locking): [`len`](Storage::len)
///   of a missing file is 0 and reads fail with [`Error::OutOfBounds`]. The first non-empty
///   write or non-zero truncate creates the file and any missing parent directories.
/// - **No global lock on I/O.** An operation fetches the `Arc<File>` from the pool under a short
///   lock, then does positional I/O outside it. If the pool evicted the descriptor, it is
///   reopened transparently.
/// - **Durability.** [`sync`](Storage::sync) runs `fdatasync` on the file, then `fsync` on each
///   directory whose entries this handle created (the file's parent, and the parents of created
///   directories), so a new file survives a crash once synced. Nothing else syncs.
/// - **Locking.** With [`OpenOptions::lock`], the file is created at open and an exclusive
///   advisory lock ([`File::try_lock`], `flock(2)` on Unix) is taken; its descriptor is pinned in
///   the pool until [`close`](Storage::close). Another holder, even a second handle in the same
///   process, gets [`Error::Locked`].
/// - **Unlink** removes the file and, when opened through a
///   [`DirectoryProvider`](crate::DirectoryProvider), the parent directories it leaves empty (up
///   to the provider's root), like random-access-file's `rmdir` option.
pub struct FileStorage {
    /// Boxed (no spare capacity): a store keeps several handles per core, thousands of cores.
    path: Box<Path>,
    pool: Arc<FilePool>,
    id: u64,
    locked: bool,
    closed: AtomicBool,
    /// Where [`Storage::unlink`] stops removing empty parent directories (shared by every
    /// handle of a provider).
    root: Option<Arc<Path>>,
    /// Directories whose entries this handle created and has not yet synced, as a number of
    /// levels: they are always the file's parent and the next `n - 1` ancestors above it
    /// (each created directory adds an entry to its parent), so a count describes them exactly.
    unsynced_levels: AtomicU8,
    /// Opened with [`OpenOptions::absent`] and not created since: the file is taken to be
    /// missing without a system call.
    absent: AtomicBool,
}

impl FileStorage {
    /// Opens `path` with a private one-descriptor pool.
    ///
    /// # Errors
    ///
    /// Only with `options.lock`: [`Error::Locked`] or [`Error::Io`] creating the file.
    pub fn open(path: impl Into<PathBuf>, options: &OpenOptions) -> Result<Self> {
        Self::open_in(&Arc::new(FilePool::new(1)), path, options)
    }

    /// Opens `path` with descriptors from `pool`.
    ///
    /// # Errors
    ///
    /// As [`open`](Self::open).
    pub fn open_in(
        pool: &Arc<FilePool>,
        path: impl Into<PathBuf>,
        options: &OpenOptions,
    ) -> Result<Self> {
        Self::open_with_root(pool, path.into(), None, options)
    }

    pub(crate) fn open_with_root(
        pool: &Arc<FilePool>,
        path: PathBuf,
        root: Option<Arc<Path>>,
        options: &OpenOptions,
    ) -> Result<Self> {
        let storage = Self {
            path: path.into_boxed_path(),
            pool: Arc::clone(pool),
            id: pool.next_id(),
            locked: options.lock,
            closed: AtomicBool::new(false),
            root,
            unsynced_levels: AtomicU8::new(0),
            absent: AtomicBool::new(options.absent && !options.lock),
        };
        if options.lock {
            let file = storage
                .open_file(true)?
                .ok_or_else(|| storage.vanished(Op::Lock))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Locked {
                        path: storage.path.to_path_buf(),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(storage.io(Op::Lock, e)),
            }
            storage.pool.insert(storage.id, file, true);
        }
        Ok(storage)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this handle holds the file's exclusive lock.
    pub fn is_locked(&self) -> bool {
        self.locked && !self.closed.load(Ordering::Acquire)
    }

    fn io(&self, op: Op, source: io::Error) -> Error {
        Error::io(op, Some(&self.path), source)
    }

    /// The error for a file that disappeared between creation and use.
    fn vanished(&self, op: Op) -> Error {
        self.io(op, io::Error::from(io::ErrorKind::NotFound))
    }

    fn check_open(&self, op: Op) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed { op });
        }
        Ok(())
    }

    /// The descriptor, reopening it if the pool evicted it; `None` if the file does not exist
    /// and `create` is false.
    fn file(&self, op: Op, create: bool) -> Result<Option<Arc<PooledFile>>> {
        self.check_open(op)?;
        if let Some(file) = self.pool.get(self.id) {
            return Ok(Some(file));
        }
        if !create && self.absent.load(Ordering::Acquire) {
            return Ok(None);
        }
        let Some(file) = self.open_file(create)? else {
            return Ok(None);
        };
        let file = self.pool.insert(self.id, file, false);
        if self.closed.load(Ordering::Acquire) {
            // Closed concurrently: do not leave the descriptor in the pool.
            self.pool.remove(self.id);
        }
        Ok(Some(file))
    }

    /// The descriptor, creating the file if needed.
    fn created_file(&self, op: Op) -> Result<Arc<PooledFile>> {
        self.file(op, true)?.ok_or_else(|| self.vanished(op))
    }

    fn open_file(&self, create: bool) -> Result<Option<File>> {
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true);
        // A handle opened as absent skips the probe: the file is created below.
        if !(create && self.absent.load(Ordering::Acquire)) {
            match options.open(&self.path) {
                Ok(file) => return Ok(Some(file)),
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(self.io(Op::Open, e));
                }
                Err(_) if !create => return Ok(None),
                Err(_) => {}
            }
        }
        let parent = self.parent();
        // Every directory whose entries change must be synced: the file's parent, and the parent
        // of each directory created here — a chain of ancestors, counted in levels.
        let missing = parent
            .ancestors()
            .filter(|d| !d.as_os_str().is_empty())
            .take_while(|d| !d.try_exists().unwrap_or(true))
            .count();
        let levels = u8::try_from(missing.saturating_add(1)).unwrap_or(u8::MAX);
        fs::create_dir_all(parent).map_err(|e| Error::io(Op::Open, Some(parent), e))?;
        let file = options
            .create(true)
            .open(&self.path)
            .map_err(|e| self.io(Op::Open, e))?;
        self.unsynced_levels.fetch_max(levels, Ordering::AcqRel);
        self.absent.store(false, Ordering::Release);
        Ok(Some(file))
    }

    /// The file's parent directory (`.` for a bare file name).
    fn parent(&self) -> &Path {
        match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    }

    fn size(&self, file: &File, op: Op) -> Result<u64> {
        Ok(file.metadata().map_err(|e| self.io(op, e))?.len())
    }

    fn sync_dirs(&self) -> Result<()> {
        let levels = self.unsynced_levels.swap(0, Ordering::AcqRel);
        let dirs = self
            .parent()
            .ancestors()
            .filter(|d| !d.as_os_str().is_empty())
            .take(usize::from(levels));
        for dir in dirs {
            if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
                // Syncing a directory twice is harmless: keep them all for the next sync.
                self.unsynced_levels.fetch_max(levels, Ordering::AcqRel);
                return Err(Error::io(Op::Sync, Some(dir), e));
            }
        }
        Ok(())
    }
}

impl Storage for FileStorage {
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = len64(buf.len());
        let Some(file) = self.file(Op::Read, false)? else {
            return check_read(offset, len, 0);
        };
        if buf.is_empty() || offset.checked_add(len).is_none_or(|end| end > MAX_SIZE) {
            return check_read(offset, len, self.size(&file, Op::Read)?);
        }
        match file.read_exact_at(buf, offset) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(Error::OutOfBounds {
                offset,
                len,
                size: self.size(&file, Op::Read)?,
            }),
            Err(e) => Err(self.io(Op::Read, e)),
        }
    }

    /// Small reads skip the up-front length check (a metadata call): the positional read itself
    /// reports a short file as [`Error::OutOfBounds`]. Larger reads check first, so a range
    /// past the end fails before allocating.
    fn read_to_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        // A closed handle fails as the default method does (from its `len` call).
        self.check_open(Op::Len)?;
        match usize::try_from(len) {
            Ok(n) if len <= UNCHECKED_READ_TO_VEC => {
                let mut buf = vec![0; n];
                self.read(offset, &mut buf)?;
                Ok(buf)
            }
            _ => {
                let size = self.len()?;
                check_read(offset, len, size)?;
                let n =
                    usize::try_from(len).map_err(|_| Error::OutOfBounds { offset, len, size })?;
                let mut buf = vec![0; n];
                self.read(offset, &mut buf)?;
                Ok(buf)
            }
        }
    }

    /// As [`FileStorage::read_to_vec`]: a small read skips the length check.
    fn read_append(&self, offset: u64, len: u64, out: &mut Vec<u8>) -> Result<()> {
        self.check_open(Op::Len)?;
        let n = match usize::try_from(len) {
            Ok(n) if len <= UNCHECKED_READ_TO_VEC => n,
            _ => {
                let size = self.len()?;
                check_read(offset, len, size)?;
                usize::try_from(len).map_err(|_| Error::OutOfBounds { offset, len, size })?
            }
        };
        append_read(out, n, |dst| self.read(offset, dst))
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        self.check_open(Op::Write)?;
        if data.is_empty() {
            return Ok(());
        }
        check_extent(Op::Write, offset, len64(data.len()))?;
        let file = self.created_file(Op::Write)?;
        file.write_all_at(data, offset)
            .map_err(|e| self.io(Op::Write, e))
    }

    fn del(&self, offset: u64, len: u64) -> Result<()> {
        let Some(file) = self.file(Op::Del, false)? else {
            return Ok(());
        };
        let size = self.size(&file, Op::Del)?;
        if len == 0 || offset >= size {
            return Ok(());
        }
        let end = offset.saturating_add(len);
        if end >= size {
            return file.set_len(offset).map_err(|e| self.io(Op::Del, e));
        }
        let mut pos = offset;
        while pos < end {
            let n = usize::try_from(end - pos).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
            file.write_all_at(&ZEROS[..n], pos)
                .map_err(|e| self.io(Op::Del, e))?;
            pos += len64(n);
        }
        Ok(())
    }

    fn truncate(&self, len: u64) -> Result<()> {
        check_extent(Op::Truncate, 0, len)?;
        let file = if len == 0 {
            match self.file(Op::Truncate, false)? {
                Some(file) => file,
                None => return Ok(()),
            }
        } else {
            self.created_file(Op::Truncate)?
        };
        file.set_len(len).map_err(|e| self.io(Op::Truncate, e))
    }

    fn len(&self) -> Result<u64> {
        match self.file(Op::Len, false)? {
            Some(file) => self.size(&file, Op::Len),
            None => Ok(0),
        }
    }

    fn sync(&self) -> Result<()> {
        if let Some(file) = self.file(Op::Sync, false)? {
            file.sync_data().map_err(|e| self.io(Op::Sync, e))?;
        }
        self.sync_dirs()
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.pool.remove(self.id);
        Ok(())
    }

    fn unlink(&self) -> Result<()> {
        self.close()?;
        self.unsynced_levels.store(0, Ordering::Release);
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io(Op::Unlink, e)),
        }
        if let Some(root) = &self.root {
            let mut dir = self.path.parent();
            while let Some(d) = dir.filter(|d| d.starts_with(root) && *d != &**root) {
                if fs::remove_dir(d).is_err() {
                    break; // Not empty (or already gone): stop.
                }
                dir = d.parent();
            }
        }
        Ok(())
    }
}

impl Drop for FileStorage {
    fn drop(&mut self) {
        self.pool.remove(self.id);
    }
}

impl fmt::Debug for FileStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStorage")
            .field("path", &self.path)
            .field("id", &self.id)
            .field("locked", &self.locked)
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_not_created_by_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c");
        let f = FileStorage::open(&path, &OpenOptions::new()).unwrap();
        assert_eq!(f.len().unwrap(), 0);
        assert!(f.read(0, &mut [0; 1]).unwrap_err().is_out_of_bounds());
        f.read(0, &mut []).unwrap();
        f.del(0, 10).unwrap();
        f.truncate(0).unwrap();
        f.write(0, b"").unwrap();
        f.sync().unwrap();
        assert!(!dir.path().join("a").exists());
        f.write(3, b"xy").unwrap();
        f.sync().unwrap();
        assert_eq!(f.read_to_vec(0, 5).unwrap(), b"\0\0\0xy");
        assert_eq!(f.unsynced_levels.load(Ordering::Acquire), 0);
    }

    #[test]
    fn an_absent_handle_asks_nothing_until_it_creates_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/file");
        let absent = OpenOptions::new().absent(true);
        let f = FileStorage::open(&path, &absent).unwrap();
        // Another writer creates the file behind the handle's back: the hint wins (no probe).
        let other = FileStorage::open(&path, &OpenOptions::new()).unwrap();
        other.write(0, b"zz").unwrap();
        assert_eq!(f.len().unwrap(), 0);
        assert!(f.read(0, &mut [0; 1]).unwrap_err().is_out_of_bounds());
        f.sync().unwrap();
        // The first write opens (creating if needed) the real file and drops the hint.
        f.write(2, b"y").unwrap();
        assert_eq!(f.len().unwrap(), 3);
        assert_eq!(f.read_to_vec(0, 3).unwrap(), b"zzy");

        // A missing file is created with its directories, as without the hint.
        let g = FileStorage::open(dir.path().join("c/d/file"), &absent).unwrap();
        g.truncate(4).unwrap();
        assert_eq!(g.unsynced_levels.load(Ordering::Acquire), 3);
        assert_eq!(fs::read(dir.path().join("c/d/file")).unwrap(), [0; 4]);
    }

    #[test]
    fn created_directories_are_counted_up_to_the_first_existing_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("a")).unwrap();
        let f = FileStorage::open(dir.path().join("a/b/c/file"), &OpenOptions::new()).unwrap();
        f.write(0, b"x").unwrap();
        // c (new file entry), b (new entry c), a (new entry b); `a` existed, so its parent did
        // not change.
        assert_eq!(f.unsynced_levels.load(Ordering::Acquire), 3);
        let g = FileStorage::open(dir.path().join("a/b/c/other"), &OpenOptions::new()).unwrap();
        g.write(0, b"y").unwrap();
        assert_eq!(g.unsynced_levels.load(Ordering::Acquire), 1);
        f.sync().unwrap();
        assert_eq!(f.unsynced_levels.load(Ordering::Acquire), 0);
    }

    #[test]
    fn lock_is_exclusive_until_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/primary-key");
        let lock = OpenOptions::new().lock(true);
        let a = FileStorage::open(&path, &lock).unwrap();
        assert!(a.is_locked());
        assert!(path.exists(), "locking creates the file");
        let b = FileStorage::open(&path, &lock);
        assert!(matches!(b, Err(Error::Locked { .. })), "{b:?}");
        let unlocked = FileStorage::open(&path, &OpenOptions::new()).unwrap();
        unlocked.write(0, b"k").unwrap();
        a.close().unwrap();
        assert!(!a.is_locked());
        let c = FileStorage::open(&path, &lock).unwrap();
        assert_eq!(c.read_to_vec(0, 1).unwrap(), b"k");
    }

    #[test]
    fn unlink_prunes_empty_parents_up_to_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let pool = Arc::new(FilePool::new(4));
        let open = |name: &str| {
            FileStorage::open_with_root(
                &pool,
                root.join(name),
                Some(Arc::from(root.as_path())),
                &OpenOptions::new(),
            )
            .unwrap()
        };
        let a = open("cores/aa/bb/x/oplog");
        let b = open("cores/aa/cc/y/oplog");
        a.write(0, b"1").unwrap();
        b.write(0, b"2").unwrap();
        a.unlink().unwrap();
        assert!(!root.join("cores/aa/bb").exists());
        assert!(root.join("cores/aa/cc/y/oplog").exists());
        assert!(matches!(a.len(), Err(Error::Closed { op: Op::Len })));
        b.unlink().unwrap();
        assert!(root.exists());
        assert!(!root.join("cores").exists());
    }
}
