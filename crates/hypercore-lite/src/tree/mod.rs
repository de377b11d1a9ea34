//! The Merkle tree of a core: flat-tree math ([`flat`]), proofs (`proof`), the in-memory
//! tree state with its unflushed node overlay, and the tree file (`store`).
//!
//! A tree of `length` blocks is described by its *full roots* (see [`flat::full_roots`]):
//! their hashes, indices and sizes give the tree hash that signatures cover, and their sizes
//! sum to the byte length. Every other node lives in the tree file or, until the next flush,
//! in the overlay.

pub mod flat;
pub(crate) mod proof;
pub(crate) mod store;

use std::collections::HashMap;

use corestore_keys::hash::{parent as parent_hash, tree as tree_hash};
use corestore_keys::{Hash, Node, TreeHead};

use crate::error::{Error, Result, VerifyError};
use crate::header::TreeHeader;
use crate::oplog::format::TREE_NODE_SIZE;
use corestore_keys::index_hash::IndexHash;
use flat::{Cursor, NodeIndex};
use store::TreeStore;

/// Most nodes the overlay makes room for at once after a flush ([`MerkleTree::add_nodes`]):
/// what a busy receiver adds between two flushes (about two per block, a flush every 128
/// blocks or 64 KiB of oplog) with room to spare, and no more than a few tens of KiB.
const OVERLAY_HINT_MAX: usize = 1024;

/// Where nodes come from: the tree (overlay + file), or a batch on top of it.
pub(crate) trait NodeSource {
    /// The node at `index`, or `None` if it is not stored.
    fn node(&self, index: NodeIndex) -> Result<Option<Node>>;

    /// The node at `index`, which must be stored.
    fn require(&self, index: NodeIndex) -> Result<Node> {
        self.node(index)?.ok_or_else(|| Error::Corrupt {
            file: "tree",
            offset: index.get().saturating_mul(TREE_NODE_SIZE),
            reason: "a node the tree needs is missing",
        })
    }
}

/// A signed tree head with its roots: everything about a tree that fits in memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TreeState {
    /// Fork id.
    pub(crate) fork: u64,
    /// Number of blocks.
    pub(crate) length: u64,
    /// Total bytes of all blocks.
    pub(crate) byte_length: u64,
    /// Full roots at `length`, ascending.
    pub(crate) roots: Vec<Node>,
    /// Signature of this head (absent for length 0 or before a reader's first upgrade).
    pub(crate) signature: Option<Vec<u8>>,
}

impl TreeState {
    /// The tree hash over the roots.
    pub(crate) fn hash(&self) -> Hash {
        tree_hash(&self.roots)
    }

    /// The signed head.
    pub(crate) fn head(&self) -> TreeHead {
        TreeHead {
            hash: self.hash(),
            length: self.length,
            fork: self.fork,
        }
    }
}

/// A pending change of the tree: new nodes and possibly a new head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The tree after the change.
    pub(crate) state: TreeState,
    /// Blocks shared with the tree the batch started from.
    pub(crate) ancestors: u64,
    /// New nodes, in the order hypercore records them.
    pub(crate) nodes: Vec<Node>,
    /// Whether the head changes.
    pub(crate) upgraded: bool,
    /// Length of the tree the batch started from.
    pub(crate) base_length: u64,
    /// Fork of the tree the batch started from.
    pub(crate) base_fork: u64,
}

impl Batch {
    /// A batch on top of `state` that changes nothing yet.
    pub(crate) fn new(state: &TreeState) -> Self {
        Self {
            state: state.clone(),
            ancestors: state.length,
            nodes: Vec::new(),
            upgraded: false,
            base_length: state.length,
            base_fork: state.fork,
        }
    }

    /// [`Batch::new`] without the head's signature (one allocation less): for a batch that
    /// sets its own if it upgrades, and whose signature is not read otherwise.
    pub(crate) fn unsigned(state: &TreeState) -> Self {
        Self {
            state: TreeState {
                fork: state.fork,
                length: state.length,
                byte_length: state.byte_length,
                roots: state.roots.clone(),
                signature: None,
            },
            ancestors: state.length,
            nodes: Vec::new(),
            upgraded: false,
            base_length: state.length,
            base_fork: state.fork,
        }
    }

    /// Appends one block.
    #[cfg(test)]
    pub(crate) fn append(&mut self, data: &[u8]) -> Result<(), VerifyError> {
        self.append_leaf(data.len() as u64, corestore_keys::hash::leaf(data))
    }

    /// Appends one block of `size` bytes whose leaf hash is `hash`.
    pub(crate) fn append_leaf(&mut self, size: u64, hash: Hash) -> Result<(), VerifyError> {
        let head = NodeIndex::leaf(self.state.length);
        let leaf = Node {
            index: head.get(),
            size,
            hash,
        };
        self.append_root(leaf, &mut Cursor::new(head))
    }

    /// Pushes `node` (at the cursor's position) as the new last root and merges sibling roots
    /// into parents. The cursor ends on the last root.
    pub(crate) fn append_root(
        &mut self,
        node: Node,
        cursor: &mut Cursor,
    ) -> Result<(), VerifyError> {
        self.upgraded = true;
        self.state.length = self
            .state
            .length
            .checked_add(cursor.count_leaves())
            .ok_or(VerifyError::Malformed("length overflows"))?;
        self.state.byte_length = self
            .state
            .byte_length
            .checked_add(node.size)
            .ok_or(VerifyError::Malformed("byte length overflows"))?;
        self.state.roots.push(node);
        self.nodes.push(node);
        while let [.., left, right] = self.state.roots[..] {
            if cursor.peek_sibling().get() != left.index {
                break;
            }
            let parent = parent_node(cursor.parent(), &left, &right)?;
            self.nodes.push(parent);
            self.state.roots.truncate(self.state.roots.len() - 2);
            self.state.roots.push(parent);
        }
        Ok(())
    }
}

/// The parent of two sibling nodes at `index`.
pub(crate) fn parent_node(index: NodeIndex, a: &Node, b: &Node) -> Result<Node, VerifyError> {
    Ok(Node {
        index: index.get(),
        size: a
            .size
            .checked_add(b.size)
            .ok_or(VerifyError::Malformed("node sizes overflow"))?,
        hash: parent_hash(a, b),
    })
}

/// Whether a node is the all-zero "blank" record (a deletion in oplog entries).
pub(crate) fn is_blank(node: &Node) -> bool {
    node.size == 0 && node.hash.as_bytes().iter().all(|&b| b == 0)
}

/// The tree of a core: current head, unflushed nodes and the tree file.
#[derive(Debug)]
pub(crate) struct MerkleTree {
    /// Current head and roots.
    pub(crate) state: TreeState,
    /// Nodes not yet flushed; `None` is a blank (deleted) node. A hash map: a receiver
    /// inserts a dozen nodes per block and looks nodes up on every proof, and the flush sorts
    /// what it writes.
    overlay: HashMap<u64, Option<Node>, IndexHash>,
    /// How many nodes the last flush wrote (at most [`OVERLAY_HINT_MAX`]): the overlay is
    /// dropped by every flush, and the first insert after it makes room for as many at once
    /// rather than growing the table step by step through every size again.
    overlay_hint: usize,
    /// After an unflushed truncation to `t` blocks, stored nodes at or beyond `2t` are stale.
    truncated_to: Option<u64>,
    store: TreeStore,
}

impl NodeSource for MerkleTree {
    fn node(&self, index: NodeIndex) -> Result<Option<Node>> {
        if let Some(n) = self.overlay.get(&index.get()) {
            return Ok(*n);
        }
        if self
            .truncated_to
            .is_some_and(|t| index.get() >= t.saturating_mul(2))
        {
            return Ok(None);
        }
        self.store.read(index)
    }
}

impl MerkleTree {
    /// Opens the tree at the head recorded in `header` (the state of the last flush). Roots
    /// missing from the file leave the tree "unrooted": replay may still truncate below
    /// them (a crash in the middle of a truncation flush); [`MerkleTree::check_rooted`]
    /// reports it otherwise.
    pub(crate) fn open(store: TreeStore, header: &TreeHeader) -> Result<(Self, bool)> {
        let mut tree = Self {
            state: TreeState {
                fork: header.fork,
                length: header.length,
                byte_length: 0,
                roots: Vec::new(),
                signature: header.signature.clone(),
            },
            overlay: HashMap::default(),
            overlay_hint: 0,
            truncated_to: None,
            store,
        };
        let mut rooted = true;
        for index in flat::full_roots(header.length) {
            match tree.node(index)? {
                Some(root) => {
                    tree.state.byte_length = tree.state.byte_length.saturating_add(root.size);
                    tree.state.roots.push(root);
                }
                None => rooted = false,
            }
        }
        if rooted {
            if let Some(expected) = &header.root_hash
                && expected.as_slice() != tree.state.hash().as_bytes()
            {
                return Err(Error::corrupt(
                    "tree",
                    tree.state
                        .roots
                        .first()
                        .map_or(0, |r| r.index * TREE_NODE_SIZE),
                    "the roots do not hash to the tree hash in the header",
                ));
            }
        } else {
            tree.state.roots.clear();
        }
        // The roots are held in the state; an opened core that is never read keeps no window.
        tree.store.release_windows();
        Ok((tree, rooted))
    }

    /// Fails with [`Error::Corrupt`] unless every root of the current length is known.
    pub(crate) fn check_rooted(&self) -> Result<()> {
        for (i, index) in flat::full_roots(self.state.length).enumerate() {
            if self.state.roots.get(i).map(|r| r.index) != Some(index.get()) {
                return Err(Error::corrupt(
                    "tree",
                    index.get().saturating_mul(TREE_NODE_SIZE),
                    "a root of the tree is missing",
                ));
            }
        }
        Ok(())
    }

    /// A batch on top of the current head.
    pub(crate) fn batch(&self) -> Batch {
        Batch::new(&self.state)
    }

    /// A batch that moves the head to `length` (shorter, or longer using nodes already in
    /// the tree) with `fork`: roots are looked up, `ancestors = length`.
    pub(crate) fn truncate_batch(&self, length: u64, fork: u64) -> Result<Batch> {
        let mut batch = self.batch();
        let mut roots = Vec::new();
        let mut byte_length = 0u64;
        for (i, index) in flat::full_roots(length).enumerate() {
            let root = match self.state.roots.get(i) {
                Some(r) if r.index == index.get() => *r,
                _ => self.require(index)?,
            };
            byte_length = byte_length.checked_add(root.size).ok_or_else(|| {
                Error::corrupt("tree", index.get() * TREE_NODE_SIZE, "sizes overflow")
            })?;
            roots.push(root);
        }
        batch.state.roots = roots;
        batch.state.length = length;
        batch.state.byte_length = byte_length;
        batch.state.fork = fork;
        batch.state.signature = None;
        batch.ancestors = length;
        batch.upgraded = true;
        Ok(batch)
    }

    /// Commits a batch: truncation bookkeeping, new head, new nodes.
    pub(crate) fn commit(&mut self, batch: Batch) {
        if batch.upgraded {
            if batch.ancestors < self.state.length {
                self.truncate_nodes(batch.ancestors);
            }
            self.state = batch.state;
        }
        self.add_nodes(&batch.nodes);
    }

    /// Adds nodes to the overlay (blank records become deletions).
    pub(crate) fn add_nodes(&mut self, nodes: &[Node]) {
        if self.overlay.capacity() == 0 {
            self.overlay.reserve(self.overlay_hint.max(nodes.len()));
        }
        for n in nodes {
            let value = if is_blank(n) { None } else { Some(*n) };
            self.overlay.insert(n.index, value);
        }
    }

    /// Forgets every node past block `ancestors`: overlay nodes at or beyond `2a` go, parents
    /// straddling the cut are blanked, and stored nodes beyond it are hidden until the flush
    /// cuts the file.
    pub(crate) fn truncate_nodes(&mut self, ancestors: u64) {
        let head = NodeIndex::leaf(ancestors);
        if ancestors > 0 {
            let mut c = Cursor::new(NodeIndex::leaf(ancestors - 1));
            loop {
                if c.contains(head) && c.index() < head {
                    self.overlay.insert(c.index().get(), None);
                }
                if c.index().offset() == 0 {
                    break;
                }
                c.parent();
            }
        }
        self.overlay.retain(|&i, _| i < head.get());
        // Roots reaching past the cut are no longer roots of anything we keep.
        self.state
            .roots
            .retain(|r| NodeIndex(r.index).right_span() < head);
        self.truncated_to = Some(self.truncated_to.map_or(ancestors, |t| t.min(ancestors)));
    }

    /// Whether there is anything to flush.
    pub(crate) fn is_dirty(&self) -> bool {
        !self.overlay.is_empty() || self.truncated_to.is_some()
    }

    /// Writes the truncation and the overlay to the tree file.
    pub(crate) fn flush(&mut self) -> Result<()> {
        if let Some(t) = self.truncated_to {
            self.store.truncate(if t == 0 { 0 } else { 2 * t - 1 })?;
        }
        // The indices are sorted alone (8 bytes each, not 56), then the nodes looked up.
        let indices = sorted_indices(&self.overlay);
        let mut nodes: Vec<(NodeIndex, Option<Node>)> = Vec::with_capacity(indices.len());
        nodes.extend(
            indices
                .iter()
                .filter_map(|&i| Some((NodeIndex(i), *self.overlay.get(&i)?))),
        );
        self.store.write(&nodes)?;
        self.truncated_to = None;
        // Dropped rather than cleared: an idle core keeps no table (the hint is one word).
        self.overlay_hint = nodes.len().min(OVERLAY_HINT_MAX);
        self.overlay = HashMap::default();
        Ok(())
    }

    /// Syncs the tree file.
    pub(crate) fn sync(&self) -> Result<()> {
        self.store.sync()
    }

    /// Releases the tree file.
    pub(crate) fn close(&self) -> Result<()> {
        self.store.close()
    }

    /// How many consecutive nodes, walking up from `index`, are missing and inside the tree
    /// (JavaScript `missingNodes`): the `nodes` field of a request.
    pub(crate) fn missing_nodes(&self, index: NodeIndex) -> Result<u64> {
        self.missing_nodes_unless(index, |_| false)
    }

    /// [`MerkleTree::missing_nodes`] that also stops at the first node `known` says we will
    /// learn another way (from a proof still on its way): that node is not counted.
    pub(crate) fn missing_nodes_unless(
        &self,
        index: NodeIndex,
        mut known: impl FnMut(NodeIndex) -> bool,
    ) -> Result<u64> {
        let head = NodeIndex::leaf(self.state.length);
        if index.right_span() >= head {
            return Ok(0);
        }
        let mut c = Cursor::new(index);
        let mut count = 0;
        while !c.contains(head) && !known(c.index()) && self.node(c.index())?.is_none() {
            count += 1;
            c.parent();
        }
        Ok(count)
    }
}

/// The keys of `overlay`, ascending. Keys that are dense in their range (a download or an
/// append adds neighbouring nodes) are sorted by setting their bits in a bitmap of the range
/// and reading the bits back in order; sparse ones by a comparison sort.
fn sorted_indices<V>(overlay: &HashMap<u64, V, IndexHash>) -> Vec<u64> {
    let count = overlay.len();
    let (min, max) = overlay
        .keys()
        .fold((u64::MAX, 0), |(lo, hi), &k| (lo.min(k), hi.max(k)));
    let span = max.saturating_sub(min).saturating_add(1);
    let mut out = Vec::with_capacity(count);
    match usize::try_from(span.div_ceil(64)) {
        // At most 8 bits per key: the bitmap costs no more than the keys themselves.
        Ok(words) if count > 0 && span <= 8 * count as u64 => {
            let mut bits = vec![0u64; words];
            for &k in overlay.keys() {
                let at = k - min;
                if let Some(word) = usize::try_from(at / 64).ok().and_then(|w| bits.get_mut(w)) {
                    *word |= 1 << (at % 64);
                }
            }
            for (w, &word) in (0u64..).zip(&bits) {
                let mut left = word;
                while left != 0 {
                    out.push(min + w * 64 + u64::from(left.trailing_zeros()));
                    left &= left - 1;
                }
            }
        }
        _ => {
            out.extend(overlay.keys().copied());
            out.sort_unstable();
        }
    }
    out
}

/// Whether the proof answering a request for `block` with `nodes` nodes brings the tree node
/// `node`: it hashes from the leaf up `nodes` levels, so it holds every node of that path and
/// the sibling of each of them but the top one.
pub(crate) fn brings(block: u64, nodes: u64, node: NodeIndex) -> bool {
    let depth = node.depth();
    if u64::from(depth) > nodes || depth >= 63 {
        return false;
    }
    let on_path = NodeIndex::from_depth_offset(depth, block >> depth);
    on_path == node || (u64::from(depth) < nodes && on_path.sibling() == node)
}

/// A node source that sees a batch's new nodes on top of a tree.
pub(crate) struct Overlaid<'a, S: NodeSource> {
    pub(crate) batch: &'a Batch,
    pub(crate) base: &'a S,
}

impl<S: NodeSource> NodeSource for Overlaid<'_, S> {
    fn node(&self, index: NodeIndex) -> Result<Option<Node>> {
        if index >= NodeIndex::leaf(self.batch.state.length) {
            return Ok(None);
        }
        if let Some(n) = self.batch.nodes.iter().find(|n| n.index == index.get()) {
            return Ok(Some(*n));
        }
        self.base.node(index)
    }
}

/// Byte offset of the first block under `index` in a tree with `state` (JavaScript
/// `getByteOffset`): walk the roots, then descend summing left-child sizes.
pub(crate) fn byte_offset(
    src: &impl NodeSource,
    state: &TreeState,
    index: NodeIndex,
) -> Result<u64> {
    if index == NodeIndex::leaf(state.length) {
        return Ok(state.byte_length);
    }
    let index = index.left_span();
    let mut offset = 0u64;
    for root in &state.roots {
        let root_index = NodeIndex(root.index);
        if index > root_index.right_span() {
            offset = offset.saturating_add(root.size);
            continue;
        }
        let mut c = Cursor::new(root_index);
        while c.index() != index {
            if c.is_leaf() {
                break;
            }
            if index < c.index() {
                c.left_child();
            } else {
                let left = c.left_child();
                offset = offset.saturating_add(src.require(left)?.size);
                c.sibling();
            }
        }
        return Ok(offset);
    }
    Err(Error::OutOfBounds {
        index: index.get() / 2,
        length: state.length,
    })
}

/// `(byte offset, byte size)` of block `block`.
#[cfg(test)]
pub(crate) fn block_range(
    src: &impl NodeSource,
    state: &TreeState,
    block: u64,
) -> Result<(u64, u64)> {
    if block >= state.length {
        return Err(Error::OutOfBounds {
            index: block,
            length: state.length,
        });
    }
    let leaf = NodeIndex::leaf(block);
    let size = src.require(leaf)?.size;
    Ok((byte_offset(src, state, leaf)?, size))
}

#[cfg(test)]
mod tests;
