//! The crate's single error type, [`Error`], and [`Op`], the operation an error happened in.
//!
//! Every fallible function in this crate returns [`Result<T>`](Result). Errors carry enough
//! context to be logged on their own: the operation, the path for file errors, the offending
//! range for bounds errors.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Shorthand for `Result<T, rac_storage::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
///
/// Local misuse ([`Error::InvalidName`], [`Error::Closed`], [`Error::OutOfBounds`] on a read the
/// caller should have bounded) is distinguished from environment failures ([`Error::Io`],
/// [`Error::Locked`]) and from faults injected on purpose by the `testing` module
/// ([`Error::Injected`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system reported an error.
    #[error("I/O error during {op}{}", at(.path.as_deref()))]
    Io {
        /// The storage operation that failed.
        op: Op,
        /// The file or directory involved, if any.
        path: Option<PathBuf>,
        /// The underlying error (also returned by [`std::error::Error::source`]).
        source: io::Error,
    },
    /// A read of `len` bytes at `offset` reaches past the end of a storage of `size` bytes.
    ///
    /// Short reads are errors, never silently truncated (random-access-storage semantics).
    #[error("read of {len} bytes at offset {offset} is out of bounds (size {size})")]
    OutOfBounds {
        /// Start of the requested range.
        offset: u64,
        /// Length of the requested range.
        len: u64,
        /// Size of the storage when the read was attempted.
        size: u64,
    },
    /// A write, truncate or delete would make the storage larger than `max` bytes
    /// ([`MAX_SIZE`](crate::MAX_SIZE)), or its range overflows `u64`.
    #[error("{op} of {len} bytes at offset {offset} exceeds the maximum size {max}")]
    TooLarge {
        /// The operation that was refused.
        op: Op,
        /// Start of the requested range.
        offset: u64,
        /// Length of the requested range.
        len: u64,
        /// The largest size a storage may have.
        max: u64,
    },
    /// Another handle (in this or another process) holds the exclusive lock on the file.
    #[error("{} is locked by another holder", .path.display())]
    Locked {
        /// The locked file.
        path: PathBuf,
    },
    /// A storage name is not a relative path of non-empty, non-`.`/`..` segments.
    #[error("invalid storage name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name (possibly truncated for display by the caller).
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A fault injected on purpose by the `testing` module's `Faults` (feature `testing`).
    #[error("injected fault during {op}")]
    Injected {
        /// The operation that was made to fail.
        op: Op,
    },
    /// The storage handle was closed (or unlinked) before this operation.
    #[error("{op} on a closed storage")]
    Closed {
        /// The operation that was refused.
        op: Op,
    },
    /// The provider cannot do this (for example, listing names of a function provider).
    #[error("{op} is not supported by this provider")]
    Unsupported {
        /// The operation that is not supported.
        op: Op,
    },
}

impl Error {
    /// An [`Error::Io`] for `op` on `path`, for implementors of [`Storage`](crate::Storage)
    /// outside this crate.
    pub fn io(op: Op, path: Option<&Path>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.map(Path::to_path_buf),
            source,
        }
    }

    /// Whether this is [`Error::OutOfBounds`].
    pub fn is_out_of_bounds(&self) -> bool {
        matches!(self, Self::OutOfBounds { .. })
    }

    /// Whether this is [`Error::Injected`].
    pub fn is_injected(&self) -> bool {
        matches!(self, Self::Injected { .. })
    }
}

/// Formats ` at <path>` for an optional path.
fn at(path: Option<&Path>) -> String {
    path.map(|p| format!(" at {}", p.display()))
        .unwrap_or_default()
}

/// The storage operation an [`Error`] happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    /// Opening (or creating) a file or a provider entry.
    Open,
    /// [`Storage::read`](crate::Storage::read).
    Read,
    /// [`Storage::write`](crate::Storage::write).
    Write,
    /// [`Storage::del`](crate::Storage::del).
    Del,
    /// [`Storage::truncate`](crate::Storage::truncate).
    Truncate,
    /// [`Storage::len`](crate::Storage::len).
    Len,
    /// [`Storage::sync`](crate::Storage::sync).
    Sync,
    /// [`Storage::close`](crate::Storage::close).
    Close,
    /// [`Storage::unlink`](crate::Storage::unlink).
    Unlink,
    /// Taking an exclusive lock.
    Lock,
    /// [`Provider::exists`](crate::Provider::exists).
    Exists,
    /// [`Provider::list`](crate::Provider::list).
    List,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Read => "read",
            Self::Write => "write",
            Self::Del => "del",
            Self::Truncate => "truncate",
            Self::Len => "len",
            Self::Sync => "sync",
            Self::Close => "close",
            Self::Unlink => "unlink",
            Self::Lock => "lock",
            Self::Exists => "exists",
            Self::List => "list",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_context() {
        let e = Error::io(
            Op::Write,
            Some(Path::new("/x/oplog")),
            io::Error::other("disk full"),
        );
        assert_eq!(e.to_string(), "I/O error during write at /x/oplog");
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::OutOfBounds {
            offset: 10,
            len: 5,
            size: 12,
        };
        assert_eq!(
            e.to_string(),
            "read of 5 bytes at offset 10 is out of bounds (size 12)"
        );
        assert!(e.is_out_of_bounds());
        assert!(Error::Injected { op: Op::Sync }.is_injected());
        assert_eq!(
            Error::Closed { op: Op::Len }.to_string(),
            "len on a closed storage"
        );
    }
}
