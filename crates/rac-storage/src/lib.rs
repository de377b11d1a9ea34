//! Synchronous random-access storage for corestore-rs: the Rust counterpart of the JavaScript
//! packages random-access-storage, random-access-file and random-access-memory.
//!
//! This crate is the bottom layer of the workspace. It stores and retrieves bytes at offsets
//! and nothing else: it knows nothing about Hypercore (no oplog, tree or bitfield formats, no
//! hashing), and it has no async API and no runtime dependency (see [Why
//! synchronous](#why-synchronous)).
//!
//! # Key types
//!
//! - [`Storage`]: the trait for one random-access byte array (read, write, del, truncate, len,
//!   sync, close, unlink), with its contracts written down.
//! - [`MemoryStorage`] (sparse 64 KiB pages; 2 MiB huge-page chunks for large storages growing
//!   at their end) and [`FileStorage`] (positional I/O through a
//!   bounded [`FilePool`] of descriptors, optional exclusive lock).
//! - [`Provider`]: opens storages by name (`cores/aa/bb/<dk>/oplog`) — [`DirectoryProvider`],
//!   [`MemoryProvider`] or [`FnProvider`] over a user function.
//! - [`Error`]: one `#[non_exhaustive]` error enum for everything.
//! - `testing::FaultyStorage` / `testing::FaultyProvider` (feature `testing`): fault injection
//!   and crash images for the crash tests of the layers above.
//!
//! # Example
//!
//! ```
//! use rac_storage::{Error, MemoryProvider, OpenOptions, Provider, Storage};
//!
//! let store = MemoryProvider::new();
//! let data = store.open("cores/aa/bb/cc/data", &OpenOptions::new())?;
//! data.write(0, b"hello")?;
//! data.write(10, b"world")?; // the gap reads as zeros
//! data.sync()?; // the only durability point
//! assert_eq!(data.len()?, 15);
//! assert_eq!(data.read_to_vec(5, 5)?, [0; 5]);
//!
//! // Reads past the end are errors, never short reads.
//! let err = data.read_to_vec(10, 1 << 40).unwrap_err();
//! assert!(matches!(err, Error::OutOfBounds { offset: 10, size: 15, .. }));
//!
//! // Reopening a name sees the same data.
//! data.close()?;
//! let again = store.open("cores/aa/bb/cc/data", &OpenOptions::new())?;
//! assert_eq!(again.read_to_vec(0, 5)?, b"hello");
//! # Ok::<(), Error>(())
//! ```
//!
//! # Why synchronous
//!
//! [`Storage`] is a blocking trait on purpose, and the async facade (`corestore`) calls the
//! layers above it through `spawn_blocking` or a dedicated storage thread:
//!
//! - **There is no real async file I/O to wrap.** `tokio::fs` itself runs every call on the
//!   blocking pool. The backends here are `pread`/`pwrite`/`memcpy` that usually complete from
//!   the page cache in microseconds; an async signature would only add a thread hop per call.
//! - **Batching beats per-call hops.** hypercore-lite performs a whole operation (several reads,
//!   writes and one sync for an append) synchronously, so the facade pays one hop per
//!   operation, not per read.
//! - **One trait, not two.** Keeping sync and async twins of the same trait in step is costly
//!   (bao-tree maintains two copies of its `Outboard` traits). A plain, dyn-compatible trait is
//!   also what proptest models, fuzzers and crash tests drive directly, with no runtime.
//! - **Layering.** Only the `corestore` facade depends on tokio; this crate and hypercore-lite
//!   stay runtime-agnostic.
//!
//! # Platform support
//!
//! [`FileStorage`], [`FilePool`] and [`DirectoryProvider`] use `std::os::unix::fs::FileExt`
//! and exist on Unix only; the rest of the crate is portable.
//!
//! # Crate features
//!
//! - `testing` (off by default): the `testing` module with `Faults`,
//!   `FaultyStorage`, `FaultyProvider` and `Keep`, for fault-injection and crash tests in
//!   dependent crates and fuzzers. Always compiled for this crate's own tests.

#![forbid(unsafe_code)]

#[cfg(unix)]
mod directory;
mod error;
#[cfg(unix)]
mod file;
mod memory;
mod name;
#[cfg(unix)]
mod pool;
mod provider;
mod storage;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

#[cfg(unix)]
pub use directory::DirectoryProvider;
pub use error::{Error, Op, Result};
#[cfg(unix)]
pub use file::FileStorage;
pub use memory::{MemoryStorage, PAGE_SIZE};
pub use name::{MAX_NAME_LEN, validate_name};
#[cfg(unix)]
pub use pool::{DEFAULT_MAX_OPEN, FilePool};
pub use provider::{FnProvider, MemoryProvider, OpenOptions, Provider};
pub use storage::{MAX_SIZE, Storage};
