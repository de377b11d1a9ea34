//! [`DirectoryProvider`]: a store in a directory, one [`FileStorage`] per name, sharing one
//! [`FilePool`] descriptor budget. Unix only.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Op, Result};
use crate::file::FileStorage;
use crate::name::{validate_name, validate_prefix};
use crate::pool::{DEFAULT_MAX_OPEN, FilePool};
use crate::provider::{OpenOptions, Provider};
use crate::storage::Storage;

/// A store in a directory: the name `cores/aa/bb/<dk>/oplog` is the file
/// `<root>/cores/aa/bb/<dk>/oplog`.
///
/// Nothing is created until a storage is first written (or locked); the root itself is created
/// lazily too. All storages share one [`FilePool`], so at most
/// [`DEFAULT_MAX_OPEN`] (or the configured number of) unlocked descriptors are open at once.
///
/// ```
/// use rac_storage::{DirectoryProvider, OpenOptions, Provider, Storage};
///
/// let dir = tempfile::tempdir()?;
/// let store = DirectoryProvider::with_max_open(dir.path(), 64);
/// let oplog = store.open("cores/aa/bb/cc/oplog", &OpenOptions::new())?;
/// oplog.write(0, b"entry")?;
/// oplog.sync()?;
/// assert_eq!(store.list("cores")?, ["cores/aa/bb/cc/oplog"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct DirectoryProvider {
    /// Shared with every [`FileStorage`] opened here.
    root: Arc<Path>,
    pool: Arc<FilePool>,
}

impl DirectoryProvider {
    /// A store rooted at `root` with the default descriptor budget ([`DEFAULT_MAX_OPEN`]).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_max_open(root, DEFAULT_MAX_OPEN)
    }

    /// A store rooted at `root` that keeps at most `max_open` unlocked files open.
    pub fn with_max_open(root: impl Into<PathBuf>, max_open: usize) -> Self {
        Self::with_pool(root, Arc::new(FilePool::new(max_open)))
    }

    /// A store rooted at `root` drawing descriptors from a (possibly shared) `pool`.
    pub fn with_pool(root: impl Into<PathBuf>, pool: Arc<FilePool>) -> Self {
        Self {
            root: Arc::from(root.into()),
            pool,
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The descriptor pool (for [`FilePool::open_files`]).
    pub fn pool(&self) -> &Arc<FilePool> {
        &self.pool
    }

    /// Opens `name` as a concrete [`FileStorage`].
    ///
    /// # Errors
    ///
    /// As [`Provider::open`].
    pub fn open_file(&self, name: &str, options: &OpenOptions) -> Result<FileStorage> {
        validate_name(name)?;
        FileStorage::open_with_root(
            &self.pool,
            self.root.join(name),
            Some(Arc::clone(&self.root)),
            options,
        )
    }
}

impl Provider for DirectoryProvider {
    fn open(&self, name: &str, options: &OpenOptions) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.open_file(name, options)?))
    }

    fn exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        let path = self.root.join(name);
        match fs::metadata(&path) {
            Ok(meta) => Ok(!meta.is_dir()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(Op::Exists, Some(&path), e)),
        }
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>> {
        validate_prefix(prefix)?;
        let mut names = Vec::new();
        let start = if prefix.is_empty() {
            self.root.to_path_buf()
        } else {
            self.root.join(prefix)
        };
        walk(&start, prefix, &mut names)?;
        names.sort_unstable();
        Ok(names)
    }
}

/// Appends the names of all non-directory entries under `dir` (named `name`) to `out`.
/// Symbolic links are listed but not followed; entries whose names are not valid UTF-8 or not
/// valid storage names are skipped.
fn walk(dir: &Path, name: &str, out: &mut Vec<String>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        // A missing prefix (or a prefix that is a file) has no names under it.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(Error::io(Op::List, Some(dir), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(Op::List, Some(dir), e))?;
        let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let child = if name.is_empty() {
            file_name
        } else {
            format!("{name}/{file_name}")
        };
        if validate_name(&child).is_err() {
            continue;
        }
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io(Op::List, Some(&entry.path()), e))?;
        if file_type.is_dir() {
            walk(&entry.path(), &child, out)?;
        } else {
            out.push(child);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exists_and_list_follow_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let p = DirectoryProvider::new(dir.path().join("store"));
        assert!(p.list("").unwrap().is_empty(), "missing root lists nothing");
        let s = p.open("cores/aa/bb/k1/oplog", &OpenOptions::new()).unwrap();
        assert!(!p.exists("cores/aa/bb/k1/oplog").unwrap());
        assert!(!dir.path().join("store").exists(), "open creates nothing");
        s.write(0, b"x").unwrap();
        p.open("cores/aa/bb/k1/tree", &OpenOptions::new())
            .unwrap()
            .truncate(40)
            .unwrap();
        p.open("primary-key", &OpenOptions::new().lock(true))
            .unwrap();
        assert!(p.exists("cores/aa/bb/k1/oplog").unwrap());
        assert!(
            !p.exists("cores/aa").unwrap(),
            "directories are not storages"
        );
        assert_eq!(
            p.list("cores").unwrap(),
            ["cores/aa/bb/k1/oplog", "cores/aa/bb/k1/tree"]
        );
        assert_eq!(p.list("").unwrap().len(), 3);
        assert!(p.list("primary-key").unwrap().is_empty());
        assert!(p.list("cores/zz").unwrap().is_empty());
        assert!(matches!(p.list("/etc"), Err(Error::InvalidName { .. })));
        assert!(matches!(
            p.open("cores/../../x", &OpenOptions::new()),
            Err(Error::InvalidName { .. })
        ));
    }
}
