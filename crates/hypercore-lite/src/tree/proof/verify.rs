//! Proof verification (spec §9.7, hypercore `verifyTree` / `verifyUpgrade`): pure, hashes
//! in and result out.

use corestore_keys::{Hash, Node, Prologue};

use super::{DataUpgrade, Proof};
use crate::error::VerifyError;
use crate::tree::flat::{self, Cursor, NodeIndex};
use crate::tree::{Batch, TreeState, parent_node};

/// What a proof establishes, before the signature check and before touching storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// New nodes and, with an upgrade, the new head.
    pub(crate) batch: Batch,
    /// A node the proof ends at that must equal the node we store at that index.
    pub(crate) anchor: Option<Node>,
}

/// A queue of proof nodes that must come in a given index order; `extra` may stand in for
/// any one of them.
struct Queue<'a> {
    nodes: &'a [Node],
    next: usize,
    extra: Option<Node>,
}

impl<'a> Queue<'a> {
    fn new(nodes: &'a [Node], extra: Option<Node>) -> Self {
        Self {
            nodes,
            next: 0,
            extra,
        }
    }

    /// How many nodes are left, `extra` included.
    fn len(&self) -> usize {
        self.nodes.len().saturating_sub(self.next) + usize::from(self.extra.is_some())
    }

    fn is_empty(&self) -> bool {
        self.next >= self.nodes.len() && self.extra.is_none()
    }

    fn shift(&mut self, index: NodeIndex) -> Result<Node, VerifyError> {
        if let Some(extra) = self.extra.filter(|e| e.index == index.get()) {
            self.extra = None;
            return Ok(extra);
        }
        let node = self
            .nodes
            .get(self.next)
            .ok_or_else(|| VerifyError::UnexpectedNode {
                expected: index.get(),
                got: None,
            })?;
        if node.index != index.get() {
            return Err(VerifyError::UnexpectedNode {
                expected: index.get(),
                got: Some(node.index),
            });
        }
        self.next += 1;
        Ok(*node)
    }
}

/// Folds a node list into its root: start at `first`, then each next node is the sibling of
/// the current position.
fn fold(start: Node, queue: &mut Queue<'_>, out: &mut Vec<Node>) -> Result<Node, VerifyError> {
    let mut c = Cursor::new(NodeIndex(start.index));
    let mut root = start;
    // A sibling and a parent per queued node; a path is at most 60 levels long.
    out.reserve(1 + 2 * queue.len().min(60));
    out.push(root);
    while !queue.is_empty() {
        if c.index().depth() >= 60 {
            return Err(VerifyError::Malformed("proof path is too long"));
        }
        let sibling = queue.shift(c.sibling())?;
        root = parent_node(c.parent(), &root, &sibling)?;
        out.push(sibling);
        out.push(root);
    }
    Ok(root)
}

/// Verifies the block/hash/seek part: returns the (unverified) root it hashes to. `leaf`:
/// the block's leaf hash when the caller computed it already.
fn verify_subtree(
    proof: &Proof,
    leaf: Option<Hash>,
    nodes: &mut Vec<Node>,
) -> Result<Option<Node>, VerifyError> {
    let mut root = None;
    if let Some(seek) = proof.seek.as_ref().filter(|s| !s.nodes.is_empty()) {
        let first = seek.nodes[0];
        let mut queue = Queue::new(&seek.nodes[1..], None);
        root = Some(fold(first, &mut queue, nodes)?);
    }
    let (index, value, list) = match (&proof.block, &proof.hash) {
        (Some(b), _) => (NodeIndex::leaf(b.index), Some(&b.value), &b.nodes),
        (None, Some(h)) => (NodeIndex(h.index), None, &h.nodes),
        (None, None) => return Ok(root),
    };
    if index.get() > 1 << 62 {
        return Err(VerifyError::Malformed("index out of range"));
    }
    let mut queue = Queue::new(list, root);
    let start = match value {
        Some(v) => match leaf {
            Some(hash) => Node {
                index: index.get(),
                size: v.len() as u64,
                hash,
            },
            None => Node::leaf(index.get() / 2, v),
        },
        None => queue.shift(index)?,
    };
    fold(start, &mut queue, nodes).map(Some)
}

/// Applies the upgrade part to `batch` (starting at our head). Returns whether
/// `block_root` was consumed by it.
fn verify_upgrade(
    upgrade: &DataUpgrade,
    block_root: Option<Node>,
    batch: &mut Batch,
    prologue: Option<&Prologue>,
) -> Result<bool, VerifyError> {
    if let Some(p) = prologue
        && upgrade.start < p.length
        && (upgrade.start != 0 || upgrade.length < p.length)
    {
        return Err(VerifyError::InvalidUpgrade(
            "upgrade does not satisfy the prologue",
        ));
    }
    let end = upgrade
        .start
        .checked_add(upgrade.length)
        .filter(|&e| e < 1 << 60)
        .ok_or(VerifyError::InvalidUpgrade("upgrade length overflows"))?;
    let to = NodeIndex::leaf(end);
    let mut queue = Queue::new(&upgrade.nodes, block_root);
    let mut grow = !batch.state.roots.is_empty();
    let mut i = 0;
    let ours = batch.state.roots.clone();
    let mut c = Cursor::new(NodeIndex(0));
    while c.full_root(to) {
        if ours.get(i).is_some_and(|r| r.index == c.index().get()) {
            i += 1;
            c.next_tree();
            continue;
        }
        if grow {
            grow = false;
            let root = c.index();
            if i < ours.len() {
                let last = batch.state.roots.last().map_or(0, |r| r.index);
                if !root.contains(NodeIndex(last)) {
                    return Err(VerifyError::InvalidUpgrade(
                        "upgrade does not extend our tree",
                    ));
                }
                c.seek(NodeIndex(last));
                while c.index() != root {
                    if c.index().depth() >= 60 {
                        return Err(VerifyError::Malformed("proof path is too long"));
                    }
                    let sibling = c.sibling();
                    let node = queue.shift(sibling)?;
                    batch.append_root(node, &mut c)?;
                }
                c.next_tree();
                continue;
            }
        }
        let node = queue.shift(c.index())?;
        batch.append_root(node, &mut c)?;
        c.next_tree();
    }

    if let Some(p) = prologue
        && batch.state.length == p.length
        && batch.state.hash() != p.hash
    {
        return Err(VerifyError::InvalidUpgrade(
            "tree hash differs from the prologue",
        ));
    }

    let extra = &upgrade.additional_nodes;
    let last = batch
        .state
        .roots
        .last()
        .ok_or(VerifyError::InvalidUpgrade("empty upgrade"))?;
    c.seek(NodeIndex(last.index));
    let mut k = 0;
    while k < extra.len() {
        if extra[k].index != c.sibling().get() {
            break;
        }
        batch.append_root(extra[k], &mut c)?;
        k += 1;
    }
    while k < extra.len() {
        let node = extra[k];
        k += 1;
        while node.index != c.index().get() {
            if c.is_leaf() || node.index > c.index().get() {
                return Err(VerifyError::UnexpectedNode {
                    expected: c.index().get(),
                    got: Some(node.index),
                });
            }
            c.left_child();
        }
        batch.append_root(node, &mut c)?;
        c.sibling();
    }

    // The resulting roots must be exactly the full roots of the new length.
    let expected = flat::full_roots(batch.state.length);
    if expected.len() != batch.state.roots.len()
        || expected
            .zip(&batch.state.roots)
            .any(|(e, r)| e.get() != r.index)
    {
        return Err(VerifyError::InvalidUpgrade(
            "upgrade does not produce a valid tree",
        ));
    }
    batch.state.signature = Some(upgrade.signature.clone());
    Ok(queue.extra.is_none())
}

/// Verifies `proof` against the tree head `state` (which must be on the proof's fork; for a
/// fork proof pass an empty state on the new fork). Pure: hashes in, result out.
///
/// The result's `anchor`, if any, is the node the proof hashes up to without reaching an
/// upgrade; the caller compares it with the node it stores at that index.
pub(crate) fn verify(
    proof: &Proof,
    state: &TreeState,
    prologue: Option<&Prologue>,
) -> Result<Verified, VerifyError> {
    verify_hashed(proof, None, state, prologue)
}

/// [`verify`] of a proof whose block's leaf hash the caller computed already
/// ([`corestore_keys::hash::leaves`] hashes many blocks side by side). `leaf` must be the
/// leaf hash of the proof's block; `None` hashes it here.
pub(crate) fn verify_hashed(
    proof: &Proof,
    leaf: Option<Hash>,
    state: &TreeState,
    prologue: Option<&Prologue>,
) -> Result<Verified, VerifyError> {
    if proof.block.is_some() && proof.hash.is_some() {
        return Err(VerifyError::Malformed("both a block and a hash"));
    }
    // The head's signature is not copied: only an upgrade uses the batch's, and it sets its own.
    let mut batch = Batch::unsigned(state);
    batch.state.fork = proof.fork;
    let mut anchor = verify_subtree(proof, leaf, &mut batch.nodes)?;
    if let Some(upgrade) = &proof.upgrade {
        if upgrade.start != state.length {
            return Err(if upgrade.start < state.length {
                VerifyError::Stale
            } else {
                VerifyError::InvalidUpgrade("upgrade does not start at our length")
            });
        }
        if upgrade.length == 0 {
            return Err(VerifyError::InvalidUpgrade("empty upgrade"));
        }
        if verify_upgrade(upgrade, anchor, &mut batch, prologue)? {
            anchor = None;
        }
    }
    if let Some(a) = anchor {
        // An anchor must be a node of our (current) tree.
        if NodeIndex(a.index).right_span() >= NodeIndex::leaf(state.length) {
            return Err(VerifyError::NotAnchored { index: a.index });
        }
        if let Some(root) = state.roots.iter().find(|r| r.index == a.index)
            && root.hash != a.hash
        {
            return Err(VerifyError::ChecksumMismatch { index: a.index });
        }
    }
    if proof
        .block
        .as_ref()
        .is_some_and(|b| b.index >= batch.state.length)
    {
        return Err(VerifyError::Malformed("block is beyond the tree"));
    }
    Ok(Verified { batch, anchor })
}
