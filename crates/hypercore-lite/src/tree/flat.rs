//! Flat-tree index arithmetic (spec §3): the in-order numbering of Hypercore's Merkle tree.
//!
//! ```text
//! depth 2:              3
//! depth 1:      1               5
//! depth 0:  0       2       4       6     ← leaves: block i is node 2i
//! ```
//!
//! A node at `depth` d and `offset` o (its position among the nodes of that depth) has index
//! `(2o + 1) · 2^d − 1`. Leaves are even, parents odd, and the depth of a node is the number of
//! trailing one bits of its index.
//!
//! Everything here is a `const fn` over plain integers and does no I/O. The arithmetic is exact
//! for indices below 2^62 (block counts below 2^61); Hypercore itself never goes beyond 2^53
//! (the JavaScript safe-integer limit, enforced by the compact-encoding decoder). Larger inputs
//! give meaningless results but never panic.

use std::fmt;

/// The flat-tree index of a Merkle tree node. Block `i` is the leaf `NodeIndex(2 * i)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct NodeIndex(pub u64);

impl fmt::Debug for NodeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeIndex({})", self.0)
    }
}

impl fmt::Display for NodeIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<NodeIndex> for u64 {
    fn from(i: NodeIndex) -> Self {
        i.0
    }
}

impl NodeIndex {
    /// The leaf of block `block` (index `2 * block`).
    #[must_use]
    pub const fn leaf(block: u64) -> Self {
        Self(block.wrapping_mul(2))
    }

    /// The node at `depth` (leaves are depth 0) and `offset` within that depth.
    #[must_use]
    pub const fn from_depth_offset(depth: u32, offset: u64) -> Self {
        Self(
            offset
                .wrapping_mul(2)
                .wrapping_add(1)
                .wrapping_shl(depth)
                .wrapping_sub(1),
        )
    }

    /// The raw index.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Whether this node is a leaf (an even index).
    #[must_use]
    pub const fn is_leaf(self) -> bool {
        self.0 & 1 == 0
    }

    /// The block stored at this leaf, or `None` for a parent node.
    #[must_use]
    pub const fn block(self) -> Option<u64> {
        if self.is_leaf() {
            Some(self.0 / 2)
        } else {
            None
        }
    }

    /// Depth of the node: 0 for leaves, the number of trailing one bits otherwise.
    #[must_use]
    pub const fn depth(self) -> u32 {
        self.0.trailing_ones()
    }

    /// Position of the node among the nodes of its depth.
    #[must_use]
    pub const fn offset(self) -> u64 {
        self.0.wrapping_shr(self.depth() + 1)
    }

    /// Whether the node is the left child of its parent.
    #[must_use]
    pub const fn is_left(self) -> bool {
        self.offset() & 1 == 0
    }

    /// The parent node.
    #[must_use]
    pub const fn parent(self) -> Self {
        Self::from_depth_offset(self.depth() + 1, self.offset() >> 1)
    }

    /// The other child of this node's parent.
    #[must_use]
    pub const fn sibling(self) -> Self {
        Self::from_depth_offset(self.depth(), self.offset() ^ 1)
    }

    /// The left child, or `None` for a leaf.
    #[must_use]
    pub const fn left_child(self) -> Option<Self> {
        match self.children() {
            Some((left, _)) => Some(left),
            None => None,
        }
    }

    /// The right child, or `None` for a leaf.
    #[must_use]
    pub const fn right_child(self) -> Option<Self> {
        match self.children() {
            Some((_, right)) => Some(right),
            None => None,
        }
    }

    /// Both children `(left, right)`, or `None` for a leaf.
    #[must_use]
    pub const fn children(self) -> Option<(Self, Self)> {
        if self.is_leaf() {
            return None;
        }
        let depth = self.depth();
        let offset = self.offset().wrapping_mul(2);
        Some((
            Self::from_depth_offset(depth - 1, offset),
            Self::from_depth_offset(depth - 1, offset.wrapping_add(1)),
        ))
    }

    /// The leftmost leaf under this node (the node itself for a leaf).
    #[must_use]
    pub const fn left_span(self) -> Self {
        Self(self.offset().wrapping_shl(self.depth() + 1))
    }

    /// The rightmost leaf under this node (the node itself for a leaf).
    #[must_use]
    pub const fn right_span(self) -> Self {
        Self(
            self.offset()
                .wrapping_add(1)
                .wrapping_shl(self.depth() + 1)
                .wrapping_sub(2),
        )
    }

    /// `(left_span, right_span)`: the first and last leaf under this node.
    #[must_use]
    pub const fn spans(self) -> (Self, Self) {
        (self.left_span(), self.right_span())
    }

    /// Number of nodes in the subtree rooted here (itself included).
    #[must_use]
    pub const fn count(self) -> u64 {
        2u64.wrapping_shl(self.depth()).wrapping_sub(1)
    }

    /// Number of leaves (blocks) under this node.
    #[must_use]
    pub const fn count_leaves(self) -> u64 {
        1u64.wrapping_shl(self.depth())
    }

    /// Whether `other` lies inside the span of this node, i.e. between its leftmost and
    /// rightmost leaf (inclusive). This covers every descendant, and also the node itself.
    #[must_use]
    pub const fn contains(self, other: Self) -> bool {
        self.left_span().0 <= other.0 && other.0 <= self.right_span().0
    }

    /// The first block under this node.
    #[must_use]
    pub const fn first_block(self) -> u64 {
        self.left_span().0 / 2
    }

    /// One past the last block under this node.
    #[must_use]
    pub const fn end_block(self) -> u64 {
        self.right_span().0 / 2 + 1
    }
}

/// The full roots of a tree of `length` blocks, in ascending index order (JavaScript
/// `fullRoots(2 * length)`).
///
/// `length` is decomposed into descending powers of two; each power `2^k` starting at block
/// `b` is the root `NodeIndex(2b + 2^k − 1)`. Length 5 gives roots `[3, 8]`, length 11 gives
/// `[7, 17, 20]`.
#[must_use]
pub const fn full_roots(length: u64) -> FullRoots {
    FullRoots {
        remaining: length,
        next_leaf: 0,
    }
}

/// The full roots of a tree of `length` blocks, collected (see [`full_roots`]).
#[must_use]
pub fn full_roots_vec(length: u64) -> Vec<NodeIndex> {
    full_roots(length).collect()
}

/// Iterator over the full roots of a tree (see [`full_roots`]).
#[derive(Debug, Clone)]
pub struct FullRoots {
    remaining: u64,
    next_leaf: u64,
}

impl Iterator for FullRoots {
    type Item = NodeIndex;

    fn next(&mut self) -> Option<NodeIndex> {
        if self.remaining == 0 {
            return None;
        }
        // The largest power of two not above `remaining`.
        let factor = 1u64 << (63 - self.remaining.leading_zeros());
        let root = NodeIndex(self.next_leaf + factor - 1);
        self.next_leaf += 2 * factor;
        self.remaining -= factor;
        Some(root)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.remaining.count_ones() as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for FullRoots {}

/// A mutable position in the tree (flat-tree's `iterator`): the node `index` with its
/// `offset` and `factor = 2^(depth + 1)` kept alongside so moves are cheap.
///
/// Proof construction and verification walk the tree with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cursor {
    index: u64,
    offset: u64,
    factor: u64,
}

impl Cursor {
    /// A cursor at `index`.
    pub(crate) const fn new(index: NodeIndex) -> Self {
        let mut c = Self {
            index: 0,
            offset: 0,
            factor: 2,
        };
        c.seek(index);
        c
    }

    /// Moves to `index`.
    pub(crate) const fn seek(&mut self, index: NodeIndex) {
        self.index = index.0;
        self.offset = index.offset();
        self.factor = 2u64.wrapping_shl(index.depth());
    }

    /// The current node.
    pub(crate) const fn index(&self) -> NodeIndex {
        NodeIndex(self.index)
    }

    /// Whether the current node is at depth 0.
    pub(crate) const fn is_leaf(&self) -> bool {
        self.factor == 2
    }

    /// Number of leaves under the current node.
    pub(crate) const fn count_leaves(&self) -> u64 {
        self.factor / 2
    }

    /// Whether the current node is a left child.
    pub(crate) const fn is_left(&self) -> bool {
        self.offset & 1 == 0
    }

    /// Whether `index` lies within the span of the current node (see
    /// [`NodeIndex::contains`]).
    pub(crate) const fn contains(&self, index: NodeIndex) -> bool {
        let half = self.factor / 2;
        if index.0 > self.index {
            index.0 < self.index.wrapping_add(half)
        } else if index.0 < self.index {
            index.0.saturating_add(half) > self.index
        } else {
            true
        }
    }

    /// The sibling index of the current node, without moving.
    pub(crate) const fn peek_sibling(&self) -> NodeIndex {
        if self.is_left() {
            NodeIndex(self.index.wrapping_add(self.factor))
        } else {
            NodeIndex(self.index.wrapping_sub(self.factor))
        }
    }

    /// Moves to the sibling and returns it.
    pub(crate) const fn sibling(&mut self) -> NodeIndex {
        if self.is_left() {
            self.offset = self.offset.wrapping_add(1);
            self.index = self.index.wrapping_add(self.factor);
        } else {
            self.offset -= 1;
            self.index -= self.factor;
        }
        NodeIndex(self.index)
    }

    /// Moves to the parent and returns it.
    pub(crate) const fn parent(&mut self) -> NodeIndex {
        if self.offset & 1 == 1 {
            self.index -= self.factor / 2;
            self.offset = (self.offset - 1) / 2;
        } else {
            self.index = self.index.wrapping_add(self.factor / 2);
            self.offset /= 2;
        }
        self.factor = self.factor.wrapping_mul(2);
        NodeIndex(self.index)
    }

    /// Moves to the left child (stays put on a leaf) and returns it.
    pub(crate) const fn left_child(&mut self) -> NodeIndex {
        if self.factor > 2 {
            self.factor /= 2;
            self.index -= self.factor / 2;
            self.offset = self.offset.wrapping_mul(2);
        }
        NodeIndex(self.index)
    }

    /// Moves to the first leaf after the subtree of the current node.
    pub(crate) const fn next_tree(&mut self) -> NodeIndex {
        self.index = self.index.wrapping_add(self.factor / 2).wrapping_add(1);
        self.offset = self.index / 2;
        self.factor = 2;
        NodeIndex(self.index)
    }

    /// From a leaf, grows the current node to the largest full subtree starting at that leaf
    /// whose span ends before leaf `to` (exclusive, a flat index). Returns `false` (and does
    /// not move) if the cursor is on a parent or not before `to`.
    pub(crate) const fn full_root(&mut self, to: NodeIndex) -> bool {
        if to.0 <= self.index || self.index & 1 == 1 {
            return false;
        }
        while to.0 > self.index + self.factor + self.factor / 2 {
            self.index += self.factor / 2;
            self.factor *= 2;
            self.offset /= 2;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(length: u64) -> Vec<u64> {
        full_roots(length).map(NodeIndex::get).collect()
    }

    #[test]
    fn basic_relations() {
        assert_eq!(NodeIndex(0).parent(), NodeIndex(1));
        assert_eq!(NodeIndex(2).parent(), NodeIndex(1));
        assert_eq!(NodeIndex(1).parent(), NodeIndex(3));
        assert_eq!(NodeIndex(5).parent(), NodeIndex(3));
        assert_eq!(NodeIndex(3).parent(), NodeIndex(7));
        assert_eq!(NodeIndex(0).sibling(), NodeIndex(2));
        assert_eq!(NodeIndex(2).sibling(), NodeIndex(0));
        assert_eq!(NodeIndex(1).sibling(), NodeIndex(5));
        assert_eq!(NodeIndex(11).sibling(), NodeIndex(3));
        assert_eq!(NodeIndex(7).depth(), 3);
        assert_eq!(NodeIndex(11).depth(), 2);
        assert_eq!(NodeIndex(11).offset(), 1);
        assert_eq!(NodeIndex::from_depth_offset(2, 1), NodeIndex(11));
        assert_eq!(NodeIndex(3).children(), Some((NodeIndex(1), NodeIndex(5))));
        assert_eq!(NodeIndex(9).left_child(), Some(NodeIndex(8)));
        assert_eq!(NodeIndex(9).right_child(), Some(NodeIndex(10)));
        assert_eq!(NodeIndex(4).children(), None);
        assert_eq!(NodeIndex(3).spans(), (NodeIndex(0), NodeIndex(6)));
        assert_eq!(NodeIndex(11).spans(), (NodeIndex(8), NodeIndex(14)));
        assert_eq!(NodeIndex(6).spans(), (NodeIndex(6), NodeIndex(6)));
        assert_eq!(NodeIndex(7).count(), 15);
        assert_eq!(NodeIndex(7).count_leaves(), 8);
        assert_eq!(NodeIndex(4).count_leaves(), 1);
        assert!(NodeIndex(7).contains(NodeIndex(14)));
        assert!(NodeIndex(7).contains(NodeIndex(7)));
        assert!(!NodeIndex(7).contains(NodeIndex(16)));
        assert_eq!(NodeIndex(11).first_block(), 4);
        assert_eq!(NodeIndex(11).end_block(), 8);
        assert_eq!(NodeIndex::leaf(5).block(), Some(5));
        assert_eq!(NodeIndex(5).block(), None);
    }

    #[test]
    fn full_roots_match_spec() {
        assert_eq!(roots(0), Vec::<u64>::new());
        assert_eq!(roots(1), vec![0]);
        assert_eq!(roots(3), vec![1, 4]);
        assert_eq!(roots(5), vec![3, 8]);
        assert_eq!(roots(8), vec![7]);
        assert_eq!(roots(11), vec![7, 17, 20]);
        assert_eq!(full_roots(11).len(), 3);
    }

    /// Reference implementations straight from the definitions, to cross-check the bit tricks.
    fn ref_depth(i: u64) -> u32 {
        let mut d = 0;
        let mut x = i + 1;
        while x & 1 == 0 {
            d += 1;
            x >>= 1;
        }
        d
    }

    #[test]
    fn relations_agree_with_definitions() {
        for i in 0..4096u64 {
            let n = NodeIndex(i);
            let d = ref_depth(i);
            assert_eq!(n.depth(), d);
            let o = ((i + 1) / (1 << d) - 1) / 2;
            assert_eq!(n.offset(), o);
            assert_eq!(NodeIndex::from_depth_offset(d, o), n);
            assert_eq!(
                n.parent().children().map(|(l, r)| l == n || r == n),
                Some(true)
            );
            assert_eq!(n.sibling().sibling(), n);
            assert_eq!(n.sibling().parent(), n.parent());
            assert!(n.parent().contains(n));
            if let Some((l, r)) = n.children() {
                assert_eq!(l.parent(), n);
                assert_eq!(r.parent(), n);
                assert_eq!(n.left_span(), l.left_span());
                assert_eq!(n.right_span(), r.right_span());
            }
            let mut c = Cursor::new(n);
            assert_eq!(c.index(), n);
            assert_eq!(c.count_leaves(), n.count_leaves());
            assert_eq!(c.is_left(), n.is_left());
            assert_eq!(c.peek_sibling(), n.sibling());
            for j in i.saturating_sub(40)..i + 40 {
                assert_eq!(
                    c.contains(NodeIndex(j)),
                    n.contains(NodeIndex(j)),
                    "{i} {j}"
                );
            }
            assert_eq!(c.parent(), n.parent());
            let mut c = Cursor::new(n);
            assert_eq!(c.sibling(), n.sibling());
            let mut c = Cursor::new(n);
            assert_eq!(c.left_child(), n.left_child().unwrap_or(n));
        }
    }

    #[test]
    fn roots_cover_every_block_once() {
        for len in 0..600u64 {
            let mut next = 0;
            let mut prev_depth = u32::MAX;
            for r in full_roots(len) {
                assert_eq!(r.first_block(), next);
                assert!(r.depth() < prev_depth || prev_depth == u32::MAX);
                prev_depth = r.depth();
                next = r.end_block();
            }
            assert_eq!(next, len);
        }
    }

    #[test]
    fn cursor_full_root_walks_the_roots() {
        for len in 1..300u64 {
            let mut c = Cursor::new(NodeIndex(0));
            let mut got = Vec::new();
            while c.full_root(NodeIndex::leaf(len)) {
                got.push(c.index());
                c.next_tree();
            }
            assert_eq!(got, full_roots_vec(len), "length {len}");
        }
    }
}
