//! Proof construction (spec §9.6, hypercore `generateProof`): which nodes a requester needs,
//! read through a `NodeSource`.

use bytes::Bytes;
use corestore_keys::{Node, Prologue};

use super::{DataBlock, DataHash, DataSeek, DataUpgrade, Proof, Request};
use crate::error::{Error, Result};
use crate::tree::flat::{self, Cursor, NodeIndex};
use crate::tree::{NodeSource, TreeState, byte_offset};

/// The indexed node of a request, normalised.
#[derive(Debug, Clone, Copy)]
struct Indexed {
    index: NodeIndex,
    nodes: u64,
    has_value: bool,
    last_block: u64,
}

/// Partially built proof.
#[derive(Default)]
struct Parts {
    node: Option<Vec<Node>>,
    seek: Option<Vec<Node>>,
    upgrade: Option<Vec<Node>>,
    additional: Option<Vec<Node>>,
}

/// Builds the proof answering `req` from a tree with head `state` (JavaScript
/// `generateProof`). The block value is left empty for the caller to fill in.
pub(crate) fn build(
    src: &impl NodeSource,
    state: &TreeState,
    req: &Request,
    prologue: Option<&Prologue>,
) -> Result<Proof> {
    let mut upgrade = req.upgrade;
    if let (Some(p), Some(u)) = (prologue, upgrade.as_mut())
        && u.start < p.length
    {
        u.start = 0;
        u.length = p.length;
    }
    let head = NodeIndex::leaf(state.length);
    let mut out = Proof {
        fork: state.fork,
        ..Proof::default()
    };
    if state.length == 0 {
        return Ok(out);
    }
    let (from, to) = match upgrade {
        Some(u) => {
            let end = u
                .start
                .checked_add(u.length)
                .ok_or(Error::InvalidRequest("upgrade overflows"))?;
            (NodeIndex::leaf(u.start), NodeIndex::leaf(end))
        }
        None => (NodeIndex(0), head),
    };
    if from >= to || to > head || to.get() / 2 > state.length {
        return Err(Error::InvalidRequest("invalid upgrade"));
    }
    let node = match (req.block, req.hash) {
        (Some(b), _) => {
            if b.index >= state.length {
                return Err(Error::InvalidRequest("block is beyond our length"));
            }
            Some(Indexed {
                index: NodeIndex::leaf(b.index),
                nodes: b.nodes,
                has_value: true,
                last_block: b.index,
            })
        }
        (None, Some(h)) => Some(Indexed {
            index: NodeIndex(h.index),
            nodes: h.nodes,
            has_value: false,
            last_block: NodeIndex(h.index).right_span().get() / 2,
        }),
        (None, None) => None,
    };
    if let (Some(_), Some(_), Some(n)) = (req.seek, upgrade, node)
        && n.index >= from
    {
        return Err(Error::InvalidRequest(
            "cannot combine a seek with a block or hash inside the upgrade",
        ));
    }
    if let Some(n) = node
        && n.index.right_span() >= head
    {
        return Err(Error::InvalidRequest("node is beyond our length"));
    }

    let mut parts = Parts::default();
    let mut sub_tree = head;
    match (node, upgrade) {
        (Some(n), u) if u.is_none_or(|u| n.last_block < u.start) => {
            sub_tree = nodes_to_root(n.index, n.nodes, to)?;
            let seek_root = match req.seek {
                Some(s) => seek_untrusted(src, state, sub_tree, s.bytes, s.padding)?,
                None => head,
            };
            block_and_seek(
                src,
                Some(n),
                req.seek.is_some(),
                seek_root,
                sub_tree,
                &mut parts,
            )?;
        }
        (n, Some(_)) if n.is_some() || req.seek.is_some() => {
            sub_tree = match (req.seek, n) {
                (Some(s), _) => seek_from_head(src, to, s.bytes, s.padding)?,
                (None, Some(n)) => n.index,
                (None, None) => head,
            };
        }
        _ => {}
    }
    if upgrade.is_some() {
        upgrade_parts(
            src,
            node,
            req.seek.is_some(),
            from,
            to,
            sub_tree,
            &mut parts,
        )?;
        if head > to {
            parts.additional = Some(connect(src, to, head)?);
        }
    }

    if let Some(b) = req.block {
        let nodes = parts
            .node
            .take()
            .ok_or(Error::InvalidRequest("invalid block request"))?;
        out.block = Some(DataBlock {
            index: b.index,
            value: Bytes::new(),
            nodes,
        });
    } else if let Some(h) = req.hash {
        let nodes = parts
            .node
            .take()
            .ok_or(Error::InvalidRequest("invalid hash request"))?;
        out.hash = Some(DataHash {
            index: h.index,
            nodes,
        });
    }
    if let (Some(s), Some(nodes)) = (req.seek, parts.seek) {
        out.seek = Some(DataSeek {
            bytes: s.bytes,
            nodes,
        });
    }
    if let Some(u) = upgrade {
        out.upgrade = Some(DataUpgrade {
            start: u.start,
            length: u.length,
            nodes: parts.upgrade.unwrap_or_default(),
            additional_nodes: parts.additional.unwrap_or_default(),
            signature: state.signature.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The ancestor `nodes` levels above `index`, which must not reach the node containing `to`.
fn nodes_to_root(index: NodeIndex, nodes: u64, to: NodeIndex) -> Result<NodeIndex> {
    if nodes >= 63 {
        return Err(Error::InvalidRequest("nodes is out of bounds"));
    }
    let mut c = Cursor::new(index);
    for _ in 0..nodes {
        c.parent();
        if c.contains(to) {
            return Err(Error::InvalidRequest("nodes is out of bounds"));
        }
    }
    Ok(c.index())
}

/// The proof of the indexed node up to `root` (siblings on the way), or only the seek proof
/// when there is no indexed node. A sibling whose subtree holds `seek_root` is replaced by
/// the seek proof.
fn block_and_seek(
    src: &impl NodeSource,
    node: Option<Indexed>,
    seek: bool,
    seek_root: NodeIndex,
    root: NodeIndex,
    parts: &mut Parts,
) -> Result<()> {
    let Some(node) = node else {
        return seek_proof(src, seek_root, root, parts);
    };
    if !NodeIndex(root.get()).contains(node.index) {
        return Err(Error::InvalidRequest("node is not under the proof root"));
    }
    let mut c = Cursor::new(node.index);
    // One node per level up to the root, and the node itself for a hash request.
    let mut nodes =
        Vec::with_capacity((root.depth().saturating_sub(node.index.depth()) + 1) as usize);
    if !node.has_value {
        nodes.push(need(src, c.index())?);
    }
    while c.index() != root {
        c.sibling();
        if seek && c.contains(seek_root) && c.index() != seek_root {
            seek_proof(src, seek_root, c.index(), parts)?;
        } else {
            nodes.push(need(src, c.index())?);
        }
        c.parent();
    }
    parts.node = Some(nodes);
    Ok(())
}

/// `seek_root`, then the siblings from it up to (excluding) `root`.
fn seek_proof(
    src: &impl NodeSource,
    seek_root: NodeIndex,
    root: NodeIndex,
    parts: &mut Parts,
) -> Result<()> {
    if !root.contains(seek_root) {
        return Err(Error::InvalidRequest("seek is not under the proof root"));
    }
    let mut c = Cursor::new(seek_root);
    let mut nodes = vec![need(src, c.index())?];
    while c.index() != root {
        c.sibling();
        nodes.push(need(src, c.index())?);
        c.parent();
    }
    parts.seek = Some(nodes);
    Ok(())
}

/// The upgrade nodes from `from` to `to`; the indexed node's or seek's proof is emitted
/// where its subtree joins.
fn upgrade_parts(
    src: &impl NodeSource,
    node: Option<Indexed>,
    seek: bool,
    from: NodeIndex,
    to: NodeIndex,
    sub_tree: NodeIndex,
    parts: &mut Parts,
) -> Result<()> {
    let mut upgrade: Option<Vec<Node>> = (from.get() == 0).then(Vec::new);
    let mut c = Cursor::new(NodeIndex(0));
    while c.full_root(to) {
        // Roots the requester already has entirely.
        if c.index().get() + c.count_leaves() < from.get() {
            c.next_tree();
            continue;
        }
        if upgrade.is_none() && from.get() >= 2 && c.contains(NodeIndex(from.get() - 2)) {
            let mut nodes = Vec::new();
            let root = c.index();
            let target = NodeIndex(from.get() - 2);
            c.seek(target);
            while c.index() != root {
                c.sibling();
                if c.index() > target {
                    if parts.node.is_none() && parts.seek.is_none() && c.contains(sub_tree) {
                        block_and_seek(src, node, seek, sub_tree, c.index(), parts)?;
                    } else {
                        nodes.push(need(src, c.index())?);
                    }
                }
                c.parent();
            }
            upgrade = Some(nodes);
            c.next_tree();
            continue;
        }
        let nodes = upgrade.get_or_insert_with(Vec::new);
        if parts.node.is_none() && parts.seek.is_none() && c.contains(sub_tree) {
            block_and_seek(src, node, seek, sub_tree, c.index(), parts)?;
        } else {
            nodes.push(need(src, c.index())?);
        }
        c.next_tree();
    }
    parts.upgrade = Some(upgrade.unwrap_or_default());
    Ok(())
}

/// The nodes that grow a tree ending at `from` to the roots of `to` (JavaScript
/// `additionalUpgradeProof`).
fn connect(src: &impl NodeSource, from: NodeIndex, to: NodeIndex) -> Result<Vec<Node>> {
    let mut parts = Parts::default();
    upgrade_parts(src, None, false, from, to, NodeIndex(u64::MAX), &mut parts)?;
    Ok(parts.upgrade.unwrap_or_default())
}

/// Size of `node` without per-block padding.
fn unpadded(node: &Node, padding: u64, leaves: u64) -> u64 {
    node.size.saturating_sub(padding.saturating_mul(leaves))
}

/// The node under `root` whose span starts at byte `bytes` within it (trusting that it lies
/// inside `root`).
fn seek_trusted(
    src: &impl NodeSource,
    root: NodeIndex,
    mut bytes: u64,
    padding: u64,
) -> Result<NodeIndex> {
    if bytes == 0 {
        return Ok(root);
    }
    let mut c = Cursor::new(root);
    while !c.is_leaf() {
        let left = c.left_child();
        match src.node(left)? {
            Some(l) => {
                let size = unpadded(&l, padding, c.count_leaves());
                if size == bytes {
                    return Ok(c.index());
                }
                if size > bytes {
                    continue;
                }
                bytes -= size;
                c.sibling();
            }
            None => {
                c.parent();
                return Ok(c.index());
            }
        }
    }
    Ok(c.index())
}

/// Like [`seek_trusted`], but checks that `bytes` (an absolute offset) lies inside `root`.
fn seek_untrusted(
    src: &impl NodeSource,
    state: &TreeState,
    root: NodeIndex,
    bytes: u64,
    padding: u64,
) -> Result<NodeIndex> {
    let offset = byte_offset(src, state, root)?
        .saturating_sub(padding.saturating_mul(root.left_span().get() / 2));
    if offset > bytes {
        return Err(Error::InvalidRequest("invalid seek"));
    }
    if offset == bytes {
        return Ok(root);
    }
    let rel = bytes - offset;
    let node = need(src, root)?;
    if unpadded(&node, padding, root.count_leaves()) <= rel {
        return Err(Error::InvalidRequest("invalid seek"));
    }
    seek_trusted(src, root, rel, padding)
}

/// The node holding byte `bytes` among the roots of a tree ending at `head`.
fn seek_from_head(
    src: &impl NodeSource,
    head: NodeIndex,
    mut bytes: u64,
    padding: u64,
) -> Result<NodeIndex> {
    for root in flat::full_roots(head.get() / 2) {
        let node = need(src, root)?;
        let size = unpadded(&node, padding, root.count_leaves());
        if bytes == size {
            return Ok(root);
        }
        if bytes > size {
            bytes -= size;
            continue;
        }
        return seek_trusted(src, root, bytes, padding);
    }
    Ok(head)
}

/// A node the proof needs; a sparse core may not have it.
fn need(src: &impl NodeSource, index: NodeIndex) -> Result<Node> {
    src.node(index)?
        .ok_or_else(|| Error::NodeNotAvailable { index: index.get() })
}
