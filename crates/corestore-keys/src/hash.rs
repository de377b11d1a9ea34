//! BLAKE2b hashing of the Hypercore Merkle tree (spec §4.1), and CRC32 (spec §2.4).
//!
//! ```text
//! leaf(data)      = H32( 0x00 || u64le(len(data)) || data )
//! parent(a, b)    = H32( 0x01 || u64le(a.size + b.size) || left.hash || right.hash )
//! tree(roots)     = H32( 0x02 || for each root: hash || u64le(index) || u64le(size) )
//! ```
//!
//! `H32` is unkeyed BLAKE2b with a 32-byte output (libsodium `crypto_generichash`). Node
//! indices use the flat-tree numbering (leaf `i` is node `2i`); the index arithmetic itself
//! lives in `hypercore-lite`.

use crate::compact::{Decode, Decoder, Encode, Encoder};
use crate::error::DecodeError;

bytes32!(
    /// A 32-byte BLAKE2b hash: a Merkle node hash, a tree hash or a manifest hash.
    Hash,
    "hash"
);

/// A Merkle tree node: flat-tree `index`, `size` (total byte length of the blocks below it)
/// and `hash`.
///
/// Its [`Encode`]/[`Decode`] impls are hypercore's `node`/`compactNode` wire encoding:
/// `uint index || uint size || fixed32 hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, std::hash::Hash)]
pub struct Node {
    /// Flat-tree index (leaf `i` has index `2i`).
    pub index: u64,
    /// Byte length of all blocks under this node.
    pub size: u64,
    /// The node's hash.
    pub hash: Hash,
}

impl Node {
    /// The leaf node for block `block` holding `data` (index `2 * block`).
    #[must_use]
    pub fn leaf(block: u64, data: &[u8]) -> Self {
        Self {
            index: 2 * block,
            size: data.len() as u64,
            hash: leaf(data),
        }
    }

    /// The parent of two sibling nodes: index is their midpoint (which is the flat-tree
    /// parent exactly when `a` and `b` are siblings), size their sum, hash [`parent`].
    #[must_use]
    pub fn parent(a: &Self, b: &Self) -> Self {
        Self {
            index: a.index.midpoint(b.index),
            size: a.size.wrapping_add(b.size),
            hash: parent(a, b),
        }
    }
}

impl Encode for Node {
    fn encoded_len(&self) -> usize {
        crate::compact::uint_len(self.index) + crate::compact::uint_len(self.size) + 32
    }

    fn encode(&self, enc: &mut Encoder) {
        enc.uint_uint_fixed32(self.index, self.size, &self.hash.0);
    }
}

impl Decode for Node {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            index: dec.uint()?,
            size: dec.uint()?,
            hash: Hash(dec.fixed()?),
        })
    }
}

/// Unkeyed BLAKE2b-256 of the concatenation of `parts`.
pub(crate) fn h32(parts: &[&[u8]]) -> [u8; 32] {
    let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
    for p in parts {
        state.update(p);
    }
    to32(state.finalize())
}

/// Keyed BLAKE2b-256 (BLAKE2b's key parameter, not HMAC) of the concatenation of `parts`.
pub(crate) fn h32_keyed(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut state = blake2b_simd::Params::new()
        .hash_length(32)
        .key(key)
        .to_state();
    for p in parts {
        state.update(p);
    }
    to32(state.finalize())
}

fn to32(h: blake2b_simd::Hash) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(h.as_bytes());
    out
}

/// BLAKE2b-256 of `data` (hypercore-crypto `hash(data)`).
#[must_use]
pub fn hash(data: &[u8]) -> Hash {
    Hash(h32(&[data]))
}

/// Hash of a leaf holding `data` (hypercore-crypto `data()`).
#[must_use]
pub fn leaf(data: &[u8]) -> Hash {
    Hash(h32(&[&[0], &(data.len() as u64).to_le_bytes(), data]))
}

/// How many blocks [`leaves`] hashes side by side on this machine (4 with AVX2, 2 with SSE4.1,
/// else 1): give it at least this many at once.
#[must_use]
pub fn leaf_lanes() -> usize {
    blake2b_simd::many::degree()
}

/// Blocks up to this length are hashed by [`leaves`] from one contiguous copy of their whole
/// inputs (type byte, size, data): BLAKE2b's first and last compression of each then run in the
/// vector lanes too (`blake2b_simd::many::hash_many`), which for short blocks outweighs the copy
/// (about 1.2× for 1 KiB blocks, 1.6× for 64-byte ones); longer blocks are hashed where they are.
const SHORT_LEAF: usize = 4096;

/// Short blocks hashed by one `hash_many` call of [`leaves`] (a multiple of every lane count).
const SHORT_GROUP: usize = 16;

/// [`leaf`] of each of `blocks`, hashed side by side: with AVX2, `blake2b_simd` runs four
/// BLAKE2b instances in the lanes of one vector, about twice the throughput of hashing the
/// blocks one after the other (a receiver verifying a round of proofs hashes every block).
#[must_use]
pub fn leaves(blocks: &[&[u8]]) -> Vec<Hash> {
    let params = {
        let mut p = blake2b_simd::Params::new();
        p.hash_length(32);
        p
    };
    let mut out = vec![Hash([0; 32]); blocks.len()];
    let (short, long): (Vec<usize>, Vec<usize>) =
        (0..blocks.len()).partition(|&i| blocks[i].len() <= SHORT_LEAF);

    // The inputs of a group of short blocks are copied into one buffer, reused from group to
    // group: a few dozen KiB that stay in the cache and on the allocator's heap, where one
    // buffer for a whole round of blocks would be a fresh, page-faulting mapping every call.
    let mut inputs = Vec::new();
    for group in short.chunks(SHORT_GROUP) {
        inputs.clear();
        let mut ends = [0usize; SHORT_GROUP];
        for (end, &i) in ends.iter_mut().zip(group) {
            inputs.push(0);
            inputs.extend_from_slice(&(blocks[i].len() as u64).to_le_bytes());
            inputs.extend_from_slice(blocks[i]);
            *end = inputs.len();
        }
        let mut start = 0;
        let mut jobs: Vec<blake2b_simd::many::HashManyJob<'_>> = ends
            .iter()
            .take(group.len())
            .map(|&end| {
                let job = blake2b_simd::many::HashManyJob::new(&params, &inputs[start..end]);
                start = end;
                job
            })
            .collect();
        blake2b_simd::many::hash_many(jobs.iter_mut());
        for (&i, job) in group.iter().zip(&jobs) {
            out[i] = Hash(to32(job.to_hash()));
        }
    }

    if !long.is_empty() {
        let mut states: Vec<blake2b_simd::State> = long
            .iter()
            .map(|&i| {
                let mut state = params.to_state();
                state.update(&[0]);
                state.update(&(blocks[i].len() as u64).to_le_bytes());
                state
            })
            .collect();
        blake2b_simd::many::update_many(states.iter_mut().zip(long.iter().map(|&i| blocks[i])));
        for (&i, state) in long.iter().zip(&mut states) {
            out[i] = Hash(to32(state.finalize()));
        }
    }
    out
}

/// Hash of the parent of `a` and `b` (hypercore-crypto `parent()`); the node with the lower
/// index is hashed first, whatever the argument order.
#[must_use]
pub fn parent(a: &Node, b: &Node) -> Hash {
    let (left, right) = if a.index > b.index { (b, a) } else { (a, b) };
    let size = left.size.wrapping_add(right.size);
    // 73 bytes: one BLAKE2b block, hashed in one call without the incremental state's buffer
    // (a receiver computes one parent per proof node).
    let mut input = [0u8; 1 + 8 + 32 + 32];
    input[0] = 1;
    input[1..9].copy_from_slice(&size.to_le_bytes());
    input[9..41].copy_from_slice(&left.hash.0);
    input[41..].copy_from_slice(&right.hash.0);
    Hash(to32(
        blake2b_simd::Params::new().hash_length(32).hash(&input),
    ))
}

/// Tree hash over the full roots of a tree, given in ascending index order
/// (hypercore-crypto `tree()`). This is the "root hash" that signatures cover.
#[must_use]
pub fn tree(roots: &[Node]) -> Hash {
    let mut state = blake2b_simd::Params::new().hash_length(32).to_state();
    state.update(&[2]);
    for r in roots {
        state.update(&r.hash.0);
        state.update(&r.index.to_le_bytes());
        state.update(&r.size.to_le_bytes());
    }
    Hash(to32(state.finalize()))
}

/// Standard CRC-32 (IEEE; the `crc-universal` checksum the hypercore oplog uses).
#[must_use]
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        Hash::from_hex(s).unwrap()
    }

    proptest::proptest! {
        /// Side-by-side hashing gives what one-at-a-time hashing gives, for any mix of
        /// lengths (empty, shorter than a BLAKE2b block, spanning several, either side of
        /// `SHORT_LEAF`), in groups of any size around `SHORT_GROUP`.
        #[test]
        fn leaves_match_leaf(blocks in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::collection::vec(proptest::num::u8::ANY, 0..600),
                proptest::collection::vec(proptest::num::u8::ANY, SHORT_LEAF - 2..SHORT_LEAF + 300),
            ], 0..40)) {
            let slices: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
            let each: Vec<Hash> = slices.iter().map(|b| leaf(b)).collect();
            proptest::prop_assert_eq!(leaves(&slices), each);
        }
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn unkeyed_hypercore_hash() {
        assert_eq!(
            hash(b"hypercore"),
            h("f7939b245918bbd3b167df469af1da5ba003e21218138ec62b7f4b6f0283de13")
        );
    }

    /// Spec §11: blocks "a", "bb", "ccc", then "dddd", "eeeee".
    #[test]
    fn merkle_vectors() {
        let l0 = Node::leaf(0, b"a");
        let l1 = Node::leaf(1, b"bb");
        let l2 = Node::leaf(2, b"ccc");
        assert_eq!(
            l0.hash,
            h("423177bd3da55c6ac57419beff9c763bab05e12a6d8908b38b7fc14360228d4a")
        );
        assert_eq!(
            l1.hash,
            h("9685e75e2926e11e30723f580180b1dad77167836adeec9e77e3710b34558e1c")
        );
        assert_eq!(
            l2.hash,
            h("368b18a729fedd9e4c4867b2d90df10d9650318a15c97959bca7bb69ddd27fff")
        );
        let p1 = Node::parent(&l0, &l1);
        assert_eq!((p1.index, p1.size), (1, 3));
        assert_eq!(
            p1.hash,
            h("a9ba77952227bd3e3b8c83475e170e0eaf80010896d20aa735ff4b44d6bb01b9")
        );
        assert_eq!(parent(&l1, &l0), p1.hash, "argument order does not matter");
        assert_eq!(
            tree(&[p1, l2]),
            h("45f511522f3ccc90b4b76f89a9ee1ac039febd894778b3e9b06aefe521c52265")
        );

        let l3 = Node::leaf(3, b"dddd");
        let l4 = Node::leaf(4, b"eeeee");
        let p5 = Node::parent(&l2, &l3);
        let n3 = Node::parent(&p1, &p5);
        assert_eq!((n3.index, n3.size), (3, 10));
        assert_eq!(
            n3.hash,
            h("5d702ad47f1bac784f5cb0a4aa0aff864e0dab9c076479d8d1bbf371a478579d")
        );
        assert_eq!((l4.index, l4.size), (8, 5));
        assert_eq!(
            l4.hash,
            h("b0c81ee4845995c4a5e513f35de3c7789b51ec81bcd6c9205bc797046f9d1b1e")
        );
        assert_eq!(
            tree(&[n3, l4]),
            h("8bd269686739ceaf0dd9b8cb911bcc004aaabc3f7986c5f18c0f2a9d1a293fc9")
        );
    }

    #[test]
    fn node_compact_encoding() {
        let n = Node::leaf(200, b"x");
        let bytes = n.to_bytes();
        assert_eq!(bytes.len(), n.encoded_len());
        assert_eq!(&bytes[..4], &[0xfd, 0x90, 0x01, 0x01]);
        assert_eq!(Node::from_bytes(&bytes), Ok(n));
        assert!(Node::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn hash_formatting() {
        let x = Hash([0xab; 32]);
        assert_eq!(x.to_string(), "ab".repeat(32));
        assert_eq!(format!("{x:?}"), format!("Hash({})", "ab".repeat(32)));
        assert_eq!(Hash::from_hex(&"AB".repeat(32)), Ok(x));
        assert!(Hash::from_slice(&[0; 31]).is_err());
    }
}
