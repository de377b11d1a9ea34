//! The [`Storage`] trait: one random-access byte array (one file of a core), and the contracts
//! every backend follows.

use std::fmt::Debug;
use std::sync::Arc;

use crate::error::{Error, Op, Result};

/// The largest size, in bytes, a storage may reach: `i64::MAX`, the largest file offset the
/// operating system accepts. Writes, truncates and deletes beyond it fail with
/// [`Error::TooLarge`] on every backend, so that all backends agree.
pub const MAX_SIZE: u64 = i64::MAX.unsigned_abs();

/// A synchronous random-access byte array: the Rust counterpart of a JavaScript
/// `random-access-storage` instance.
///
/// # Contracts (every backend, checked by the conformance suite)
///
/// - **Reads are exact.** [`read`](Self::read) fills the whole buffer or fails with
///   [`Error::OutOfBounds`] when `offset + buf.len()` exceeds [`len`](Self::len). There are no
///   short reads. Unwritten ranges inside the length (holes) read as zeros.
/// - **Growth zero-fills.** A [`write`](Self::write) past the end, or a
///   [`truncate`](Self::truncate) to a larger length, fills the gap with zeros. Bytes cut off by
///   a shrinking truncate are gone: growing again shows zeros, never stale data.
/// - **Empty operations are no-ops.** A zero-length write does not change the length (and
///   does not create a file); `del` with `len == 0` does nothing.
/// - **Sizes are bounded** by [`MAX_SIZE`]; ranges that overflow are refused with
///   [`Error::TooLarge`] (mutations) or [`Error::OutOfBounds`] (reads).
/// - **[`sync`](Self::sync) is the only durability point.** Writes, deletes and truncates land
///   in memory or in the OS page cache; after a crash, only the state as of the last successful
///   `sync` is guaranteed (plus an arbitrary subset of later mutations, see
///   `testing::FaultyStorage::crash_image`). Backends never sync on their own.
/// - **Close ends the handle.** After [`close`](Self::close) (or [`unlink`](Self::unlink))
///   every operation except `close` and `unlink` fails with [`Error::Closed`]. Close does not
///   sync. Closing twice is fine.
/// - **Concurrency.** All methods take `&self` and may be called from several threads.
///   Each call is atomic with respect to the length check it does, but concurrent *overlapping*
///   mutations land in an unspecified order, as with `pwrite(2)`. Callers that need ordering
///   (hypercore-lite does) serialise their own mutations.
///
/// The trait is dyn-compatible: providers hand out `Arc<dyn Storage>`.
pub trait Storage: Send + Sync + Debug {
    /// Reads exactly `buf.len()` bytes starting at `offset`.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] if `offset + buf.len() > self.len()` (also for an empty `buf`
    /// when `offset > len`), [`Error::Closed`], or [`Error::Io`].
    fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes all of `data` at `offset`, growing the storage (zero-filling any gap) if needed.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if `offset + data.len()` exceeds [`MAX_SIZE`], [`Error::Closed`],
    /// [`Error::Io`] (possibly after part of the data was written).
    fn write(&self, offset: u64, data: &[u8]) -> Result<()>;

    /// Writes `parts` back to back from `offset`, as one [`write`](Self::write) of their
    /// concatenation would: same result, same errors, same single mutation for crash images.
    /// Backends that can take the parts as they are (memory) skip the gathering copy the
    /// default makes.
    ///
    /// # Errors
    ///
    /// As [`write`](Self::write) (for the whole range).
    fn write_vectored(&self, offset: u64, parts: &[&[u8]]) -> Result<()> {
        match parts {
            [] => self.write(offset, &[]),
            [one] => self.write(offset, one),
            _ => self.write(offset, &parts.concat()),
        }
    }

    /// Deletes `len` bytes at `offset`, as random-access-file does.
    ///
    /// - If `offset >= self.len()`, nothing happens (a delete never grows the storage).
    /// - Else, if `offset + len` reaches or passes the end, the storage is truncated to
    ///   `offset`.
    /// - Else the range is overwritten with zeros (the length does not change).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] or [`Error::Io`]. `len` may be anything, including `u64::MAX`.
    fn del(&self, offset: u64, len: u64) -> Result<()>;

    /// Sets the length to `len`: shrinks, or grows with zeros.
    ///
    /// # Errors
    ///
    /// [`Error::TooLarge`] if `len > MAX_SIZE`, [`Error::Closed`] or [`Error::Io`].
    fn truncate(&self, len: u64) -> Result<()>;

    /// The current length in bytes. A file that does not exist yet has length 0.
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] or [`Error::Io`].
    fn len(&self) -> Result<u64>;

    /// Whether [`len`](Self::len) is 0.
    ///
    /// # Errors
    ///
    /// As [`len`](Self::len).
    fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Makes every earlier successful mutation durable (`fdatasync` for files, plus the
    /// directory entries of files and directories this handle created).
    ///
    /// # Errors
    ///
    /// [`Error::Closed`] or [`Error::Io`]. After a failed sync the durable state is unknown;
    /// callers should treat the storage as poisoned (hypercore-lite does).
    fn sync(&self) -> Result<()>;

    /// Releases the handle's resources (file descriptor, lock). Does not sync. Idempotent.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the backend reports one while closing; the handle is closed anyway.
    fn close(&self) -> Result<()>;

    /// Closes the handle and removes the underlying data (the file, or the memory pages). Other
    /// handles to the same name see the storage as deleted. Works on a closed handle too.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file exists but cannot be removed.
    fn unlink(&self) -> Result<()>;

    /// Reads `len` bytes at `offset` into a new vector.
    ///
    /// `len` may come from untrusted data: the range is checked against the current length
    /// **before** allocating, so an absurd length fails with [`Error::OutOfBounds`] instead of
    /// aborting on allocation.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    fn read_to_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let size = self.len()?;
        check_read(offset, len, size)?;
        let n = usize::try_from(len).map_err(|_| Error::OutOfBounds { offset, len, size })?;
        let mut buf = vec![0; n];
        self.read(offset, &mut buf)?;
        Ok(buf)
    }

    /// Reads `len` bytes at `offset` onto the end of `out` (say, straight into a message being
    /// encoded). On an error `out` is left as it was.
    ///
    /// The range is checked as [`read_to_vec`](Self::read_to_vec) checks it, before `out`
    /// grows.
    ///
    /// # Errors
    ///
    /// As [`read`](Self::read).
    fn read_append(&self, offset: u64, len: u64, out: &mut Vec<u8>) -> Result<()> {
        let size = self.len()?;
        check_read(offset, len, size)?;
        let n = usize::try_from(len).map_err(|_| Error::OutOfBounds { offset, len, size })?;
        append_read(out, n, |dst| self.read(offset, dst))
    }
}

/// Grows `out` by `n` bytes and fills them with `read`; on an error `out` is cut back to where
/// it was (the shared tail of the [`Storage::read_append`] implementations).
pub(crate) fn append_read(
    out: &mut Vec<u8>,
    n: usize,
    read: impl FnOnce(&mut [u8]) -> Result<()>,
) -> Result<()> {
    let start = out.len();
    out.resize(start + n, 0);
    let result = out.get_mut(start..).map_or(Ok(()), read);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Checks that `[offset, offset + len)` lies inside a storage of `size` bytes.
pub(crate) fn check_read(offset: u64, len: u64, size: u64) -> Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::OutOfBounds { offset, len, size }),
    }
}

/// Checks that `[offset, offset + len)` ends at or below [`MAX_SIZE`]; returns the end.
pub(crate) fn check_extent(op: Op, offset: u64, len: u64) -> Result<u64> {
    match offset.checked_add(len) {
        Some(end) if end <= MAX_SIZE => Ok(end),
        _ => Err(Error::TooLarge {
            op,
            offset,
            len,
            max: MAX_SIZE,
        }),
    }
}

/// `usize` to `u64`, lossless on every platform Rust supports (pointer width <= 64).
pub(crate) fn len64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

macro_rules! forward_storage {
    ($($ty:ty),*) => {$(
        impl<S: Storage + ?Sized> Storage for $ty {
            fn read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
                (**self).read(offset, buf)
            }
            fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
                (**self).write(offset, data)
            }
            fn write_vectored(&self, offset: u64, parts: &[&[u8]]) -> Result<()> {
                (**self).write_vectored(offset, parts)
            }
            fn del(&self, offset: u64, len: u64) -> Result<()> {
                (**self).del(offset, len)
            }
            fn truncate(&self, len: u64) -> Result<()> {
                (**self).truncate(len)
            }
            fn len(&self) -> Result<u64> {
                (**self).len()
            }
            fn is_empty(&self) -> Result<bool> {
                (**self).is_empty()
            }
            fn sync(&self) -> Result<()> {
                (**self).sync()
            }
            fn close(&self) -> Result<()> {
                (**self).close()
            }
            fn unlink(&self) -> Result<()> {
                (**self).unlink()
            }
            fn read_to_vec(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
                (**self).read_to_vec(offset, len)
            }
            fn read_append(&self, offset: u64, len: u64, out: &mut Vec<u8>) -> Result<()> {
                (**self).read_append(offset, len, out)
            }
        }
    )*};
}

forward_storage!(Arc<S>, Box<S>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_checks() {
        assert!(check_read(0, 0, 0).is_ok());
        assert!(check_read(3, 2, 5).is_ok());
        assert!(check_read(4, 2, 5).is_err());
        assert!(check_read(u64::MAX, 2, 5).is_err());
        assert!(check_read(6, 0, 5).is_err());
        assert_eq!(check_extent(Op::Write, 1, 2).ok(), Some(3));
        assert!(check_extent(Op::Write, MAX_SIZE, 1).is_err());
        assert!(check_extent(Op::Write, u64::MAX, 1).is_err());
        assert_eq!(MAX_SIZE, 0x7fff_ffff_ffff_ffff);
    }
}
