//! Shared helpers: lengths worth testing, core constructors, raw file access.

use std::sync::Arc;

use corestore_keys::corestore::named_key_pair;
use corestore_keys::{KeyPair, Namespace, PrimaryKey};
use hypercore_lite::{Core, CoreOptions, CoreStorage, Durability, Proof, Request, UpgradeRequest};
use rac_storage::Storage;

/// Lengths that exercise the tree shapes: empty, single, powers of two and their
/// neighbours, one bitfield page (32768 blocks) and its neighbours. The big ones are used
/// sparingly.
pub(crate) const INTERESTING_LENGTHS: &[u64] = &[
    0,     // empty core
    1,     // one leaf, one root
    2,     // first parent
    3,     // two roots
    4,     // a full tree of depth 2
    7,     // three roots
    8,     // a full tree of depth 3
    9,     // a full tree plus a leaf
    15,    // four roots
    16,    // 2^4
    17,    // 2^4 + 1
    31,    // 2^5 - 1
    32,    // 2^5
    33,    // 2^5 + 1
    32767, // one bitfield page - 1
    32768, // one bitfield page
    32769, // one bitfield page + 1
];

/// Routes the crate's tracing output to the test harness (`RUST_LOG=hypercore_lite=debug`).
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .try_init();
}

/// The small interesting lengths (below 100).
pub(crate) fn small_lengths() -> impl Iterator<Item = u64> {
    INTERESTING_LENGTHS.iter().copied().filter(|&l| l < 100)
}

/// The key pair corestore derives for the core named `test` under primary key 11×32.
pub(crate) fn test_key_pair() -> KeyPair {
    named_key_pair(
        &PrimaryKey::from_bytes([0x11; 32]),
        &Namespace::DEFAULT,
        "test",
    )
}

/// Block `i` of the generated test cores: varying sizes, including empty blocks.
pub(crate) fn block(i: u64) -> Vec<u8> {
    let len = (i * 7 % 13) as usize;
    (0..len)
        .map(|j| (i as u8).wrapping_mul(31).wrapping_add(j as u8))
        .collect()
}

/// A writable in-memory core holding `length` generated blocks, and its storages.
pub(crate) fn writer(length: u64) -> (Core, CoreStorage) {
    init_tracing();
    let storage = CoreStorage::memory();
    let mut core = Core::open_storage(
        storage.clone(),
        CoreOptions::new().key_pair(test_key_pair()),
    )
    .unwrap();
    let blocks: Vec<Vec<u8>> = (0..length).map(block).collect();
    for chunk in blocks.chunks(1000) {
        core.append_batch(chunk).unwrap();
    }
    (core, storage)
}

/// A reader of `writer`'s core, knowing only the key.
pub(crate) fn reader(writer: &Core) -> Core {
    Core::open_storage(CoreStorage::memory(), CoreOptions::new().key(*writer.key())).unwrap()
}

/// Reopens a core on the same storages.
pub(crate) fn reopen(storage: &CoreStorage) -> Core {
    Core::open_storage(storage.clone(), CoreOptions::new()).unwrap()
}

/// The whole content of a storage.
pub(crate) fn read_all(s: &Arc<dyn Storage>) -> Vec<u8> {
    let len = s.len().unwrap();
    s.read_to_vec(0, len).unwrap()
}

/// Brings `reader` to `writer`'s length with a bare upgrade proof.
pub(crate) fn upgrade(writer: &Core, reader: &mut Core) {
    if writer.length() == reader.length() {
        return;
    }
    let proof: Proof = writer
        .proof(&Request {
            fork: writer.fork(),
            upgrade: Some(UpgradeRequest {
                start: reader.length(),
                length: writer.length() - reader.length(),
            }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    let verified = reader.verify(&proof).unwrap();
    reader.apply(verified).unwrap();
}

/// A fresh directory under the system temp dir, removed on drop (this crate has no
/// `tempfile` dependency).
pub(crate) struct TempDir(std::path::PathBuf);

impl TempDir {
    pub(crate) fn new(label: &str) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "hypercore-lite-it-{}-{n}-{label}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies the directory tree `src` into `dst` (created).
pub(crate) fn copy_dir(src: &std::path::Path, dst: &std::path::Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let to = dst.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The durability of a fault test run: synced (power-loss safe) or buffered.
pub(crate) const fn durability(synced: bool) -> Durability {
    if synced {
        Durability::Synced
    } else {
        Durability::Buffered
    }
}
