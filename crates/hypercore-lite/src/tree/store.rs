//! The `tree` file (spec §5.6): node `i` at byte `40 * i` as `u64le size || hash(32)`; 40 zero
//! bytes (or a gap, or the end of the file) mean "no node".

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use corestore_keys::{Hash, Node};
use rac_storage::Storage;

use crate::error::{Error, Result};
use crate::oplog::format::{OLD_TREE_MAGIC, TREE_NODE_SIZE};
use crate::tree::flat::NodeIndex;

/// Most nodes the cache of one tree holds.
///
/// Memory bound: at most `CACHE_CAPACITY` entries of about 72 bytes in hash maps (with their
/// load-factor slack, under 512 KiB) per tree whose nodes are read heavily; the maps grow with
/// use, so an idle or lightly read core costs a few entries (the roots read at open).
pub(crate) const CACHE_CAPACITY: usize = 4096;

/// A bounded cache of the tree file's contents, approximating least-recently-used with two
/// generations: nodes enter `hot`; when `hot` holds half the capacity it becomes `cold` (the
/// previous `cold` is dropped), and a hit in `cold` moves the node back to `hot`. It mirrors the
/// file: a `None` value is a node known to be absent. Every write and truncate through
/// [`TreeStore`] evicts what it changes before touching the file, so a failed or partial write
/// cannot leave a stale entry.
#[derive(Debug, Default)]
struct NodeCache {
    hot: HashMap<u64, Option<Node>, IndexHash>,
    cold: HashMap<u64, Option<Node>, IndexHash>,
}

impl NodeCache {
    /// The cached state of node `index`: `Some(None)` if known to be absent.
    fn get(&mut self, index: u64) -> Option<Option<Node>> {
        if let Some(node) = self.hot.get(&index) {
            return Some(*node);
        }
        let node = self.cold.remove(&index)?;
        self.insert(index, node);
        Some(node)
    }

    fn insert(&mut self, index: u64, node: Option<Node>) {
        if self.hot.len() >= CACHE_CAPACITY / 2 && !self.hot.contains_key(&index) {
            self.cold = std::mem::take(&mut self.hot);
        }
        self.cold.remove(&index);
        self.hot.insert(index, node);
    }

    fn evict(&mut self, index: u64) {
        self.hot.remove(&index);
        self.cold.remove(&index);
    }

    /// Evicts every node at or beyond `index`.
    fn evict_from(&mut self, index: u64) {
        self.hot.retain(|&i, _| i < index);
        self.cold.retain(|&i, _| i < index);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }
}

/// Hashing of node indices for the cache: one multiplication (Fibonacci hashing), so nodes of
/// one level, whose indices share their low bits, still spread over the table.
#[derive(Debug, Default, Clone, Copy)]
struct IndexHash;

impl BuildHasher for IndexHash {
    type Hasher = IndexHasher;

    fn build_hasher(&self) -> IndexHasher {
        IndexHasher(0)
    }
}

#[derive(Debug)]
struct IndexHasher(u64);

impl Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The tree file, with a bounded cache of recently used nodes (see [`CACHE_CAPACITY`]).
#[derive(Debug)]
pub(crate) struct TreeStore {
    storage: Arc<dyn Storage>,
    cache: Mutex<NodeCache>,
}

impl TreeStore {
    /// Wraps the file, rejecting a hypercore ≤ 9 (SLEEP) tree as JavaScript does.
    pub(crate) fn open(storage: Arc<dyn Storage>) -> Result<Self> {
        let len = storage.len()?;
        if len >= OLD_TREE_MAGIC.len() as u64 {
            let mut start = [0; OLD_TREE_MAGIC.len()];
            storage.read(0, &mut start)?;
            if start == OLD_TREE_MAGIC {
                return Err(Error::Incompatible(
                    "storage contains an incompatible (hypercore 9) merkle tree",
                ));
            }
        }
        Ok(Self {
            storage,
            cache: Mutex::default(),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, NodeCache> {
        // Every update leaves the cache consistent, so a panic elsewhere cannot corrupt it.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads node `index`, or `None` if it is absent (blank, or past the end of the file).
    pub(crate) fn read(&self, index: NodeIndex) -> Result<Option<Node>> {
        if let Some(node) = self.cache().get(index.get()) {
            return Ok(node);
        }
        let Some(offset) = index.get().checked_mul(TREE_NODE_SIZE) else {
            return Ok(None);
        };
        let mut buf = [0u8; TREE_NODE_SIZE as usize];
        // No length check first: a record cut by the end of the file reads as out of bounds.
        let node = match self.storage.read(offset, &mut buf) {
            Ok(()) => decode_node(index, &buf),
            Err(e) if e.is_out_of_bounds() => None,
            Err(e) => return Err(e.into()),
        };
        self.cache().insert(index.get(), node);
        Ok(node)
    }

    /// Writes `nodes` (`None` writes a blank record). Runs of consecutive indices are written
    /// with one call.
    pub(crate) fn write(&self, nodes: &[(NodeIndex, Option<Node>)]) -> Result<()> {
        {
            let mut cache = self.cache();
            for (index, _) in nodes {
                cache.evict(index.get());
            }
        }
        let mut i = 0;
        while i < nodes.len() {
            let start = nodes[i].0.get();
            let mut buf = Vec::new();
            let mut j = i;
            while j < nodes.len() && nodes[j].0.get() == start + (j - i) as u64 {
                buf.extend_from_slice(&encode_node(nodes[j].1.as_ref()));
                j += 1;
            }
            self.storage.write(start * TREE_NODE_SIZE, &buf)?;
            i = j;
        }
        // Everything is on file now: the cache may hold it.
        let mut cache = self.cache();
        for &(index, node) in nodes {
            cache.insert(index.get(), node);
        }
        Ok(())
    }

    /// Cuts the file to hold nodes below `nodes` only.
    pub(crate) fn truncate(&self, nodes: u64) -> Result<()> {
        // Growing the file (`nodes` past the end) only adds blank records, which the cache
        // may already hold as absent; evicting from `nodes` on is right either way.
        self.cache().evict_from(nodes);
        Ok(self
            .storage
            .truncate(nodes.saturating_mul(TREE_NODE_SIZE))?)
    }

    /// Syncs the file.
    pub(crate) fn sync(&self) -> Result<()> {
        Ok(self.storage.sync()?)
    }

    /// Releases the file handle.
    pub(crate) fn close(&self) -> Result<()> {
        Ok(self.storage.close()?)
    }
}

/// The 40-byte record of a node (`None`: blank).
pub(crate) fn encode_node(node: Option<&Node>) -> [u8; TREE_NODE_SIZE as usize] {
    let mut out = [0u8; TREE_NODE_SIZE as usize];
    if let Some(n) = node {
        out[..8].copy_from_slice(&n.size.to_le_bytes());
        out[8..].copy_from_slice(n.hash.as_bytes());
    }
    out
}

/// Decodes a 40-byte record; all zeros is "no node".
pub(crate) fn decode_node(index: NodeIndex, buf: &[u8; TREE_NODE_SIZE as usize]) -> Option<Node> {
    if buf.iter().all(|&b| b == 0) {
        return None;
    }
    let mut size = [0u8; 8];
    size.copy_from_slice(&buf[..8]);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&buf[8..]);
    Some(Node {
        index: index.get(),
        size: u64::from_le_bytes(size),
        hash: Hash(hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rac_storage::MemoryStorage;

    #[test]
    fn nodes_round_trip_and_gaps_are_absent() {
        let storage = Arc::new(MemoryStorage::new());
        let store = TreeStore::open(storage.clone()).unwrap();
        let n = |i: u64| Node {
            index: i,
            size: i + 1,
            hash: Hash([i as u8 + 1; 32]),
        };
        store
            .write(&[
                (NodeIndex(0), Some(n(0))),
                (NodeIndex(1), Some(n(1))),
                (NodeIndex(2), Some(n(2))),
                (NodeIndex(8), Some(n(8))),
                (NodeIndex(9), None),
            ])
            .unwrap();
        assert_eq!(storage.len().unwrap(), 400);
        assert_eq!(store.read(NodeIndex(1)).unwrap(), Some(n(1)));
        assert_eq!(store.read(NodeIndex(5)).unwrap(), None);
        assert_eq!(store.read(NodeIndex(9)).unwrap(), None);
        assert_eq!(store.read(NodeIndex(10)).unwrap(), None);
        assert_eq!(store.read(NodeIndex(u64::MAX)).unwrap(), None);
        store.truncate(2).unwrap();
        assert_eq!(store.read(NodeIndex(2)).unwrap(), None);
        assert_eq!(store.read(NodeIndex(0)).unwrap(), Some(n(0)));
    }

    #[test]
    fn cached_nodes_follow_writes_and_truncation() {
        let storage = Arc::new(MemoryStorage::new());
        let store = TreeStore::open(storage.clone()).unwrap();
        let n = |i: u64, v: u8| Node {
            index: i,
            size: u64::from(v),
            hash: Hash([v; 32]),
        };
        // Absent (past the end) is cached too, and a write replaces it.
        assert_eq!(store.read(NodeIndex(3)).unwrap(), None);
        store
            .write(&[(NodeIndex(2), Some(n(2, 1))), (NodeIndex(3), Some(n(3, 1)))])
            .unwrap();
        assert_eq!(store.read(NodeIndex(3)).unwrap(), Some(n(3, 1)));
        // Cached nodes beyond a truncation are gone; below it they stay.
        assert_eq!(store.read(NodeIndex(2)).unwrap(), Some(n(2, 1)));
        store.truncate(3).unwrap();
        assert_eq!(store.read(NodeIndex(3)).unwrap(), None);
        assert_eq!(store.read(NodeIndex(2)).unwrap(), Some(n(2, 1)));
        // A reorg rewrites nodes in place.
        store.truncate(2).unwrap();
        store
            .write(&[(NodeIndex(2), Some(n(2, 7))), (NodeIndex(3), None)])
            .unwrap();
        assert_eq!(store.read(NodeIndex(2)).unwrap(), Some(n(2, 7)));
        assert_eq!(store.read(NodeIndex(3)).unwrap(), None);
        // Many more nodes than the cache holds still read right, and the cache stays bounded.
        let many: Vec<_> = (0..3 * CACHE_CAPACITY as u64)
            .map(|i| (NodeIndex(i), Some(n(i, (i % 251) as u8 + 1))))
            .collect();
        store.write(&many).unwrap();
        for (i, node) in many.iter().rev() {
            assert_eq!(store.read(*i).unwrap(), *node);
        }
        assert!(store.cache().len() <= CACHE_CAPACITY);
        store.truncate(5).unwrap();
        for (i, node) in &many {
            let expected = if i.get() < 5 { *node } else { None };
            assert_eq!(store.read(*i).unwrap(), expected);
        }
        // The cache agrees with a fresh view of the file.
        let fresh = TreeStore::open(storage).unwrap();
        for (i, _) in &many {
            assert_eq!(store.read(*i).unwrap(), fresh.read(*i).unwrap());
        }
    }

    #[test]
    fn old_sleep_trees_are_rejected() {
        let mut bytes = OLD_TREE_MAGIC.to_vec();
        bytes.extend_from_slice(&[0; 25]);
        let storage = Arc::new(MemoryStorage::from_bytes(&bytes));
        assert!(matches!(
            TreeStore::open(storage),
            Err(Error::Incompatible(_))
        ));
    }
}
