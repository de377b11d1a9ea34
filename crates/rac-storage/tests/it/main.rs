//! The single integration-test binary of rac-storage: shared fixtures here, one module per
//! concern.
//!
//! - `conformance`: the same scenarios against every backend and provider.
//! - `model`: proptest sequences against memory, file and a `Vec<u8>` model.
//! - `pool`: the file-descriptor budget and locking.
//! - `faults`: fault injection and crash images.

mod conformance;
mod faults;
mod model;
mod pool;

use std::sync::Arc;

use rac_storage::testing::{Faults, FaultyProvider};
use rac_storage::{DirectoryProvider, MemoryProvider, PAGE_SIZE, Provider};
use tempfile::TempDir;

/// One memory page, as a `u64`.
const PAGE: u64 = PAGE_SIZE as u64;

/// Lengths and offsets that hit edge cases, each for a reason.
const INTERESTING_LENGTHS: &[u64] = &[
    0,            // empty
    1,            // smallest
    2,            // smallest > 1
    3,            // odd
    4,            // small power of two
    7,            // 2^3 - 1
    8,            // 2^3
    9,            // 2^3 + 1
    40,           // one Merkle tree node
    4095,         // OS page - 1
    4096,         // OS page
    4097,         // OS page + 1
    PAGE - 1,     // memory page - 1
    PAGE,         // exactly one memory page
    PAGE + 1,     // spills into a second memory page
    2 * PAGE + 3, // three memory pages
];

/// A fresh, empty store of one kind; owns the temporary directory, if any.
struct Fixture {
    name: &'static str,
    provider: Arc<dyn Provider>,
    _dir: Option<TempDir>,
}

fn tempdir() -> TempDir {
    tempfile::tempdir().unwrap()
}

fn memory() -> Fixture {
    Fixture {
        name: "memory",
        provider: Arc::new(MemoryProvider::new()),
        _dir: None,
    }
}

fn directory(name: &'static str, max_open: usize) -> Fixture {
    let dir = tempdir();
    Fixture {
        name,
        provider: Arc::new(DirectoryProvider::with_max_open(
            dir.path().join("store"),
            max_open,
        )),
        _dir: Some(dir),
    }
}

fn faulty_memory() -> Fixture {
    Fixture {
        name: "faulty(memory)",
        provider: Arc::new(FaultyProvider::new(MemoryProvider::new(), Faults::new())),
        _dir: None,
    }
}

fn faulty_directory() -> Fixture {
    let dir = tempdir();
    let inner = DirectoryProvider::new(dir.path().join("store"));
    Fixture {
        name: "faulty(directory)",
        provider: Arc::new(FaultyProvider::new(inner, Faults::new())),
        _dir: Some(dir),
    }
}

/// Every kind of store: memory, directory (default pool and a one-descriptor pool that reopens
/// on nearly every call), and the fault-injecting wrapper (disarmed) over memory and directory.
fn fixtures() -> Vec<Fixture> {
    vec![
        memory(),
        directory("directory", 512),
        directory("directory(max_open=1)", 1),
        faulty_memory(),
        faulty_directory(),
    ]
}

/// A deterministic, non-zero byte pattern of `len` bytes, different for each `seed`.
fn pattern(seed: u8, len: u64) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}
