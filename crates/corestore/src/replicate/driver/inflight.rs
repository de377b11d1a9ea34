//! Our block requests in flight to one peer for one core, and the tree nodes their answers
//! will bring.
//!
//! A trimmed block request ([`ReplicateOptions::trim_proofs`](crate::ReplicateOptions)) leaves
//! out the tree nodes that an answer still on its way brings. Asking "does a request in flight
//! bring node `n`?" of a list of requests costs a scan of the whole window per tree level (256
//! requests by default); [`Inflight`] keeps the answer ready instead, as a count per node,
//! updated when a request leaves and when it ends (answer, `noData`, timeout). Its tables are
//! bounded by the request window and keyed with [`IndexHash`] (SipHash cost more than the
//! scan it replaces).

use std::collections::{HashMap, HashSet};

use corestore_keys::index_hash::IndexHash;
use hypercore_lite::BlockRequest;

/// One of our block requests still in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    /// The block.
    pub(super) index: u64,
    /// The `nodes` it asked for.
    pub(super) nodes: u64,
    /// Our fork when we asked.
    pub(super) fork: u64,
}

impl Asked {
    fn brought(&self) -> impl Iterator<Item = u64> + use<> {
        BlockRequest {
            index: self.index,
            nodes: self.nodes,
        }
        .brought()
    }
}

/// The block requests in flight for one core on one stream.
#[derive(Debug, Default)]
pub(super) struct Inflight {
    /// Request id → what it asked for.
    asked: HashMap<u64, Asked, IndexHash>,
    /// Blocks requested and not answered yet.
    blocks: HashSet<u64, IndexHash>,
    /// Tree nodes (flat index) the answers of the requests made on fork `fork` bring, with
    /// how many of those requests bring each.
    brought: HashMap<u64, u32, IndexHash>,
    /// The newest fork a request was made on: requests of older forks bring nothing usable.
    fork: u64,
}

impl Inflight {
    /// Notes request `request`, just sent.
    pub(super) fn insert(&mut self, request: u64, asked: Asked) {
        // Request ids are never reused on a channel; should one be, the old request ends first.
        if let Some(old) = self.asked.insert(request, asked) {
            self.forget(old);
        }
        if asked.fork > self.fork {
            self.brought.clear();
            self.fork = asked.fork;
        }
        if asked.fork == self.fork {
            for node in asked.brought() {
                *self.brought.entry(node).or_default() += 1;
            }
        }
        self.blocks.insert(asked.index);
    }

    /// Ends request `request` (answered, refused or timed out); returns what it asked for.
    pub(super) fn remove(&mut self, request: u64) -> Option<Asked> {
        let asked = self.asked.remove(&request)?;
        self.forget(asked);
        Some(asked)
    }

    fn forget(&mut self, asked: Asked) {
        self.blocks.remove(&asked.index);
        if asked.fork != self.fork {
            return;
        }
        for node in asked.brought() {
            if let Some(count) = self.brought.get_mut(&node) {
                *count -= 1;
                if *count == 0 {
                    self.brought.remove(&node);
                }
            }
        }
    }

    /// How many requests are in flight.
    pub(super) fn len(&self) -> usize {
        self.asked.len()
    }

    /// Whether block `index` is requested and not answered yet.
    pub(super) fn has_block(&self, index: u64) -> bool {
        self.blocks.contains(&index)
    }

    /// Whether an answer on its way brings tree node `node` of fork `fork`.
    pub(super) fn brings(&self, fork: u64, node: u64) -> bool {
        fork == self.fork && self.brought.contains_key(&node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(index: u64, nodes: u64, fork: u64) -> Asked {
        Asked { index, nodes, fork }
    }

    /// Nodes stay brought while any request bringing them is in flight; a newer fork's
    /// requests replace what older ones brought, and ending an old one changes nothing.
    #[test]
    fn counts_follow_requests_and_forks() {
        let mut inflight = Inflight::default();
        // Blocks 0 and 1 both bring their parent (node 1) with nodes = 1.
        inflight.insert(1, asked(0, 1, 0));
        inflight.insert(2, asked(1, 1, 0));
        assert!(inflight.brings(0, 1) && inflight.has_block(0) && inflight.has_block(1));
        assert!(!inflight.brings(1, 1), "another fork");
        assert_eq!(inflight.remove(1).map(|a| a.index), Some(0));
        assert!(inflight.brings(0, 1), "block 1's request still brings it");
        assert!(!inflight.has_block(0));
        assert!(inflight.remove(1).is_none(), "ended once");
        inflight.insert(3, asked(4, 2, 1));
        assert!(!inflight.brings(0, 1), "fork 1 replaced fork 0");
        assert!(inflight.brings(1, 8) && inflight.brings(1, 11));
        assert!(inflight.remove(2).is_some());
        assert!(
            inflight.brings(1, 11),
            "the old fork's request took nothing away"
        );
        assert!(inflight.remove(3).is_some());
        assert!(inflight.brought.is_empty() && inflight.blocks.is_empty());
        // A reused id ends the old request before the new one counts.
        inflight.insert(4, asked(6, 1, 1));
        inflight.insert(4, asked(6, 0, 1));
        assert!(inflight.has_block(6) && inflight.len() == 1);
        assert!(
            !inflight.brings(1, 13),
            "the old request's parent went with it"
        );
    }
}
