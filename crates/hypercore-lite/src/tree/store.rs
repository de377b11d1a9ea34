//! The `tree` file (spec §5.6): node `i` at byte `40 * i` as `u64le size || hash(32)`; 40 zero
//! bytes (or a gap, or the end of the file) mean "no node".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use corestore_keys::index_hash::IndexHash;
use corestore_keys::{Hash, Node};
use rac_storage::Storage;

use crate::error::{Error, Result};
use crate::oplog::format::{OLD_TREE_MAGIC, TREE_NODE_SIZE};
use crate::tree::flat::NodeIndex;

/// Most nodes the cache of one tree holds.
///
/// Memory bound: at most `CACHE_CAPACITY` entries of about 72 bytes in hash maps (with their
/// load-factor slack, under 512 KiB) per tree whose nodes are read heavily; the maps grow with
/// use, so an idle or lightly read core costs a few entries (the roots read at open). Reads of
/// the bottom levels add at most [`WINDOWS`] windows of [`WINDOW_NODES`] records (2,560 bytes
/// each), dropped at the end of the open.
pub(crate) const CACHE_CAPACITY: usize = 4096;

/// Records per window: the 63 nodes under one depth-5 node (32 blocks), plus the next one.
const WINDOW_NODES: u64 = 64;

/// Nodes at or below this depth are read a window at a time (a depth-5 subtree fits in the
/// aligned window that holds it).
const WINDOW_MAX_DEPTH: u32 = 5;

/// Windows held at once.
const WINDOWS: usize = 2;

/// A run of the tree file: records `[first, first + len / 40)` as read, the bottom levels of 32
/// consecutive blocks. Reading block `b` needs its leaf and the left siblings on its way up
/// (for the byte offset); the lower five of those are all in `b`'s window, so one read serves
/// them, and the next 31 blocks in order too.
#[derive(Debug)]
struct Window {
    first: u64,
    records: Vec<u8>,
}

impl Window {
    /// The node at `index`, if the window holds its record.
    fn node(&self, index: NodeIndex) -> Option<Option<Node>> {
        let at = usize::try_from(index.get().checked_sub(self.first)?).ok()?;
        let start = at.checked_mul(TREE_NODE_SIZE as usize)?;
        let record = self.records.get(start..start + TREE_NODE_SIZE as usize)?;
        let record: &[u8; TREE_NODE_SIZE as usize] = record.try_into().ok()?;
        Some(decode_node(index, record))
    }

    /// Whether the window holds any record in `[from, to)`.
    fn overlaps(&self, from: u64, to: u64) -> bool {
        let end = self.first + (self.records.len() as u64) / TREE_NODE_SIZE;
        self.first < to && from < end
    }
}

/// A bounded cache of the tree file's contents, approximating least-recently-used with two
/// generations: nodes enter `hot`; when `hot` holds half the capacity it becomes `cold` (the
/// previous `cold` is dropped), and a hit in `cold` moves the node back to `hot`. It mirrors the
/// file: a `None` value is a node known to be absent. Every write and truncate through
/// [`TreeStore`] evicts what it changes before touching the file, so a failed or partial write
/// cannot leave a stale entry.
///
/// Nodes of the bottom levels ([`WINDOW_MAX_DEPTH`]) are not cached one by one: they are read
/// with their neighbours into one of [`WINDOWS`] windows ([`Window`]), which writes and
/// truncates drop the same way.
#[derive(Debug, Default)]
struct NodeCache {
    hot: HashMap<u64, Option<Node>, IndexHash>,
    cold: HashMap<u64, Option<Node>, IndexHash>,
    /// At most [`WINDOWS`], most recently used first (no allocation until the first).
    windows: Vec<Window>,
    /// The length of the tree file as this store last wrote, truncated or measured it.
    file_len: u64,
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

    /// Forgets the cached node `index` (not the windows: see [`NodeCache::drop_windows`]).
    fn forget(&mut self, index: u64) {
        if !self.hot.is_empty() {
            self.hot.remove(&index);
        }
        if !self.cold.is_empty() {
            self.cold.remove(&index);
        }
    }

    /// Evicts every node at or beyond `index`.
    fn evict_from(&mut self, index: u64) {
        self.hot.retain(|&i, _| i < index);
        self.cold.retain(|&i, _| i < index);
        self.drop_windows(index, u64::MAX);
    }

    /// Drops the windows holding any record in `[from, to)`.
    fn drop_windows(&mut self, from: u64, to: u64) {
        self.windows.retain(|w| !w.overlaps(from, to));
    }

    /// The node at `index` from a window, moving that window to the front.
    fn window_node(&mut self, index: NodeIndex) -> Option<Option<Node>> {
        let (at, node) = self
            .windows
            .iter()
            .enumerate()
            .find_map(|(at, w)| Some((at, w.node(index)?)))?;
        self.windows[..=at].rotate_right(1);
        Some(node)
    }

    /// Adds a window in front, dropping the least recently used one.
    fn push_window(&mut self, window: Window) {
        self.windows.truncate(WINDOWS - 1);
        self.windows.insert(0, window);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
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
            cache: Mutex::new(NodeCache {
                file_len: len,
                ..NodeCache::default()
            }),
        })
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, NodeCache> {
        // Every update leaves the cache consistent, so a panic elsewhere cannot corrupt it.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads node `index`, or `None` if it is absent (blank, or past the end of the file).
    pub(crate) fn read(&self, index: NodeIndex) -> Result<Option<Node>> {
        let windowed = index.depth() <= WINDOW_MAX_DEPTH;
        let file_len = {
            let mut cache = self.cache();
            // Windows first for the bottom levels: they hold most of those (both sources
            // always agree with the file).
            if windowed && let Some(node) = cache.window_node(index) {
                return Ok(node);
            }
            if let Some(node) = cache.get(index.get()) {
                return Ok(node);
            }
            cache.file_len
        };
        if windowed && let Some(node) = self.read_window(index, file_len)? {
            return Ok(node);
        }
        self.read_one(index)
    }

    /// Reads the window holding `index` (as much of it as the file holds, going by `file_len`)
    /// and returns the node, or `None` if the node is not in what could be read: the caller then
    /// reads the single record.
    fn read_window(&self, index: NodeIndex, file_len: u64) -> Result<Option<Option<Node>>> {
        let first = index.get() - index.get() % WINDOW_NODES;
        let file_nodes = file_len / TREE_NODE_SIZE;
        let count = file_nodes.saturating_sub(first).min(WINDOW_NODES);
        if index.get() >= first + count {
            return Ok(None);
        }
        // At most 2,560 bytes: the count is bounded by the window.
        let records = match self
            .storage
            .read_to_vec(first * TREE_NODE_SIZE, count * TREE_NODE_SIZE)
        {
            Ok(records) => records,
            // The file is shorter than this store knew (it is not the only writer): fall back.
            Err(e) if e.is_out_of_bounds() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let window = Window { first, records };
        let node = window.node(index);
        self.cache().push_window(window);
        Ok(node)
    }

    /// Reads the single record of node `index` and caches it.
    fn read_one(&self, index: NodeIndex) -> Result<Option<Node>> {
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

    /// Writes `nodes` (`None` writes a blank record), sorted by index. Runs of consecutive
    /// indices are written with one call.
    ///
    /// The cache learns the nodes above the bottom levels ([`WINDOW_MAX_DEPTH`]); those below
    /// are read back a window at a time, so holding each of them one by one (a receiver writes
    /// two per block) would only churn the cache.
    pub(crate) fn write(&self, nodes: &[(NodeIndex, Option<Node>)]) -> Result<()> {
        {
            let mut cache = self.cache();
            for (index, _) in nodes {
                cache.forget(index.get());
            }
        }
        let mut buf = Vec::with_capacity(nodes.len().saturating_mul(TREE_NODE_SIZE as usize));
        let mut i = 0;
        while i < nodes.len() {
            let start = nodes[i].0.get();
            buf.clear();
            let mut j = i;
            while j < nodes.len() && nodes[j].0.get() == start + (j - i) as u64 {
                buf.extend_from_slice(&encode_node(nodes[j].1.as_ref()));
                j += 1;
            }
            let end_node = start + (j - i) as u64;
            // Windows holding any record of the run go before the file changes.
            self.cache().drop_windows(start, end_node);
            let end = start * TREE_NODE_SIZE + buf.len() as u64;
            self.storage.write(start * TREE_NODE_SIZE, &buf)?;
            let mut cache = self.cache();
            cache.file_len = cache.file_len.max(end);
            drop(cache);
            i = j;
        }
        // Everything is on file now: the cache may hold it.
        let mut cache = self.cache();
        for &(index, node) in nodes {
            if index.depth() > WINDOW_MAX_DEPTH {
                cache.insert(index.get(), node);
            }
        }
        Ok(())
    }

    /// Drops the windows (what a core that is opened but not read needs not keep).
    pub(crate) fn release_windows(&self) {
        self.cache().windows = Vec::new();
    }

    /// Cuts the file to hold nodes below `nodes` only.
    pub(crate) fn truncate(&self, nodes: u64) -> Result<()> {
        // Growing the file (`nodes` past the end) only adds blank records, which the cache
        // may already hold as absent; evicting from `nodes` on is right either way.
        let len = nodes.saturating_mul(TREE_NODE_SIZE);
        self.cache().evict_from(nodes);
        self.storage.truncate(len)?;
        self.cache().file_len = len;
        Ok(())
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

    /// Node `i` whose size and hash bytes are the marker `v`.
    fn marked(i: u64, v: u8) -> Node {
        Node {
            index: i,
            size: u64::from(v),
            hash: Hash([v; 32]),
        }
    }

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
        let n = marked;
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

    /// Windows of bottom-level nodes never serve a record a write or truncate changed, and
    /// cope with windows cut short by the end of the file.
    #[test]
    fn windows_follow_writes_truncation_and_growth() {
        let storage = Arc::new(MemoryStorage::new());
        let store = TreeStore::open(storage.clone()).unwrap();
        let n = marked;
        let all: Vec<_> = (0..100).map(|i| (NodeIndex(i), Some(n(i, 1)))).collect();
        store.write(&all).unwrap();
        let fresh = || TreeStore::open(storage.clone()).unwrap();
        let agree = |store: &TreeStore, upto: u64| {
            let fresh = fresh();
            for i in 0..upto {
                assert_eq!(
                    store.read(NodeIndex(i)).unwrap(),
                    fresh.read(NodeIndex(i)).unwrap(),
                    "node {i}"
                );
            }
        };
        // A fresh store reads through windows only.
        let reader = fresh();
        assert_eq!(reader.read(NodeIndex(70)).unwrap(), Some(n(70, 1)));
        assert_eq!(reader.cache().len(), 0);
        assert_eq!(reader.cache().windows.len(), 1);
        agree(&reader, 120);
        // Writes into a window that was read.
        reader
            .write(&[(NodeIndex(70), Some(n(70, 9))), (NodeIndex(3), None)])
            .unwrap();
        assert_eq!(reader.read(NodeIndex(70)).unwrap(), Some(n(70, 9)));
        assert_eq!(reader.read(NodeIndex(3)).unwrap(), None);
        agree(&reader, 120);
        // A window cut short by the end of the file, then the file grows past it.
        assert_eq!(reader.read(NodeIndex(98)).unwrap(), Some(n(98, 1)));
        reader.write(&[(NodeIndex(110), Some(n(110, 4)))]).unwrap();
        assert_eq!(reader.read(NodeIndex(110)).unwrap(), Some(n(110, 4)));
        assert_eq!(reader.read(NodeIndex(105)).unwrap(), None);
        agree(&reader, 130);
        // Truncating into a window, then growing with blank records.
        reader.truncate(66).unwrap();
        assert_eq!(reader.read(NodeIndex(66)).unwrap(), None);
        assert_eq!(reader.read(NodeIndex(65)).unwrap(), Some(n(65, 1)));
        reader.truncate(200).unwrap();
        assert_eq!(reader.read(NodeIndex(110)).unwrap(), None);
        agree(&reader, 210);
        for i in 0..210 {
            reader.read(NodeIndex(i)).unwrap();
        }
        assert!(reader.cache().windows.len() <= WINDOWS);
        // The file shrank behind the store's back: the window read falls back to one record.
        let before = fresh();
        storage.truncate(20 * TREE_NODE_SIZE).unwrap();
        assert_eq!(before.read(NodeIndex(30)).unwrap(), None);
        assert_eq!(before.read(NodeIndex(19)).unwrap(), Some(n(19, 1)));
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
