//! The `tree` file (spec §5.6): node `i` at byte `40 * i` as `u64le size || hash(32)`; 40 zero
//! bytes (or a gap, or the end of the file) mean "no node".

use std::sync::Arc;

use corestore_keys::{Hash, Node};
use rac_storage::Storage;

use crate::error::{Error, Result};
use crate::oplog::format::{OLD_TREE_MAGIC, TREE_NODE_SIZE};
use crate::tree::flat::NodeIndex;

/// The tree file.
#[derive(Debug)]
pub(crate) struct TreeStore {
    storage: Arc<dyn Storage>,
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
        Ok(Self { storage })
    }

    /// Reads node `index`, or `None` if it is absent.
    pub(crate) fn read(&self, index: NodeIndex) -> Result<Option<Node>> {
        let Some(offset) = index.get().checked_mul(TREE_NODE_SIZE) else {
            return Ok(None);
        };
        let len = self.storage.len()?;
        if offset.saturating_add(TREE_NODE_SIZE) > len {
            return Ok(None);
        }
        let mut buf = [0u8; TREE_NODE_SIZE as usize];
        self.storage.read(offset, &mut buf)?;
        Ok(decode_node(index, &buf))
    }

    /// Writes `nodes` (`None` writes a blank record). Runs of consecutive indices are written
    /// with one call.
    pub(crate) fn write(&self, nodes: &[(NodeIndex, Option<Node>)]) -> Result<()> {
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
        Ok(())
    }

    /// Cuts the file to hold nodes below `nodes` only.
    pub(crate) fn truncate(&self, nodes: u64) -> Result<()> {
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
