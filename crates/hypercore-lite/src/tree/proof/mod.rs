//! Merkle proofs: the `request` and `data` messages of the replication protocol as plain
//! structs (spec §9.2), their construction (§9.6) and their verification (§9.7).
//!
//! Construction reads nodes through a `NodeSource`; verification is pure: it takes the
//! proof and the verifier's in-memory [`TreeState`] and returns the nodes and head the proof
//! establishes, or a [`VerifyError`]. Neither touches storage directly, and nothing here
//! imports the storage crate.
//!
//! Examples on an 11-block tree (roots 7, 17, 20), from the spec:
//!
//! | request | proof |
//! |---|---|
//! | block 3, nodes 2 | block nodes `[4, 1]` |
//! | block 3, upgrade {0, 11} | block `[4, 1, 11]`, upgrade `[17, 20]` |
//! | upgrade {0, 6} | upgrade `[3, 9]`, additional `[13, 17, 20]` |
//! | hash {2, nodes 2} | `[2, 0, 5]` |

mod build;
mod verify;

use bytes::Bytes;
use corestore_keys::{Manifest, Node};

#[cfg(doc)]
use crate::error::VerifyError;
#[cfg(doc)]
use crate::tree::TreeState;
use crate::tree::flat::NodeIndex;
pub(crate) use build::build;
pub(crate) use verify::{Verified, verify, verify_hashed};

/// A request for a proof (the `request` message without its id and priority).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The fork the requester believes the responder is on.
    pub fork: u64,
    /// A block with its proof.
    pub block: Option<BlockRequest>,
    /// A tree node (by flat index) with its proof; used for seeks and fork resolution.
    pub hash: Option<HashRequest>,
    /// The block containing a byte offset.
    pub seek: Option<SeekRequest>,
    /// A signed upgrade of the requester's length.
    pub upgrade: Option<UpgradeRequest>,
    /// Whether the requester wants the manifest.
    pub manifest: bool,
}

/// `request.block`: block `index`; the requester lacks the `nodes` lowest nodes on the path
/// from the leaf up (see [`Core::missing_nodes`](crate::Core::missing_nodes)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRequest {
    /// Block index.
    pub index: u64,
    /// Number of missing nodes walking up from the leaf (0 when the block lies beyond the
    /// requester's length: the upgrade carries the proof).
    pub nodes: u64,
}

impl BlockRequest {
    /// The flat indices of the tree nodes the answer to this request brings: the nodes of
    /// the block's path from its leaf up `nodes` levels, and the sibling of each of them but
    /// the top one ([`Core::missing_nodes_unless`](crate::Core::missing_nodes_unless) can
    /// then skip them for other requests while this one is on its way).
    pub fn brought(&self) -> impl Iterator<Item = u64> + use<> {
        let (index, nodes) = (self.index, self.nodes);
        (0..=nodes.min(62)).flat_map(move |depth| {
            // `depth` ≤ 62, so the conversion and the shift are exact.
            let depth = u32::try_from(depth).unwrap_or(62);
            let on_path = NodeIndex::from_depth_offset(depth, index >> depth);
            let sibling = (u64::from(depth) < nodes).then(|| on_path.sibling().get());
            std::iter::once(on_path.get()).chain(sibling)
        })
    }
}

/// `request.hash`: the node with flat index `index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashRequest {
    /// Flat-tree index of the node.
    pub index: u64,
    /// Number of missing nodes walking up from it.
    pub nodes: u64,
}

/// `request.seek`: the block containing byte `bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekRequest {
    /// Byte offset.
    pub bytes: u64,
    /// Per-block padding not counted in `bytes` (8 for encrypted cores, else 0).
    pub padding: u64,
}

/// `request.upgrade`: grow the requester from `start` by `length` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The requester's length.
    pub start: u64,
    /// Blocks wanted beyond it.
    pub length: u64,
}

/// A proof (the `data` message without its request id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Proof {
    /// The responder's fork.
    pub fork: u64,
    /// The block, its value and the sibling nodes proving it.
    pub block: Option<DataBlock>,
    /// The requested node and the nodes proving it.
    pub hash: Option<DataHash>,
    /// Nodes proving the subtree that contains the sought byte.
    pub seek: Option<DataSeek>,
    /// Nodes and signature for a new length.
    pub upgrade: Option<DataUpgrade>,
    /// The core's manifest (sent only for non-compat cores, when requested).
    pub manifest: Option<Manifest>,
}

/// `data.block`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataBlock {
    /// Block index.
    pub index: u64,
    /// Block content (shared: a proof decoded from a peer's message can point into the
    /// message's buffer instead of holding a copy).
    pub value: Bytes,
    /// Sibling nodes from the leaf up.
    pub nodes: Vec<Node>,
}

/// `data.hash`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataHash {
    /// Flat index of the node.
    pub index: u64,
    /// The node itself, then siblings from it up.
    pub nodes: Vec<Node>,
}

/// `data.seek`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataSeek {
    /// The requested byte offset.
    pub bytes: u64,
    /// The subtree root containing it, then siblings up.
    pub nodes: Vec<Node>,
}

/// `data.upgrade`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataUpgrade {
    /// The requester's length.
    pub start: u64,
    /// Blocks added.
    pub length: u64,
    /// Nodes connecting the requester's tree to the roots at `start + length`.
    pub nodes: Vec<Node>,
    /// Nodes extending that to the responder's full length.
    pub additional_nodes: Vec<Node>,
    /// Signature of the responder's head (raw or a multisig container).
    pub signature: Vec<u8>,
}

#[cfg(test)]
mod tests;
