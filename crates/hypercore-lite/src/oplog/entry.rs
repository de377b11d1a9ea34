//! Oplog entries (spec §5.5): one mutation of a core, replayed in order on open.
//!
//! ```text
//! uint flags (bit0 userData, bit1 treeNodes, bit2 treeUpgrade, bit3 bitfield)
//! [string key | buffer value]                                (empty value = delete)
//! [array(uint index | uint size | fixed32 hash)]
//! [uint fork | uint ancestors | uint length | buffer signature]
//! [uint flags (bit0 drop) | uint start | uint length]
//! ```

use corestore_keys::compact::{Decoder, Encode, Encoder};
use corestore_keys::{DecodeError, Node};

const FLAG_USER_DATA: u64 = 1;
const FLAG_TREE_NODES: u64 = 2;
const FLAG_TREE_UPGRADE: u64 = 4;
const FLAG_BITFIELD: u64 = 8;

/// A user-data change; a `None` (or empty) value deletes the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserDataEntry {
    /// The key.
    pub(crate) key: String,
    /// The new value, `None` to delete.
    pub(crate) value: Option<Vec<u8>>,
}

/// A change of the signed tree head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TreeUpgrade {
    /// Fork after the change.
    pub(crate) fork: u64,
    /// Blocks kept from the previous tree (less than its length for a truncation).
    pub(crate) ancestors: u64,
    /// Length after the change.
    pub(crate) length: u64,
    /// Signature of the new tree (empty for length 0).
    pub(crate) signature: Vec<u8>,
}

/// A range of bitfield bits set or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BitfieldUpdate {
    /// Clear (`true`) or set the bits.
    pub(crate) drop: bool,
    /// First block.
    pub(crate) start: u64,
    /// Number of blocks.
    pub(crate) length: u64,
}

/// One oplog entry. `tree_nodes: Some(vec![])` is encoded (as an empty array), matching what
/// hypercore writes for truncations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// User-data change.
    pub(crate) user_data: Option<UserDataEntry>,
    /// New or changed tree nodes (a node with size 0 and zero hash is a deletion).
    pub(crate) tree_nodes: Option<Vec<Node>>,
    /// New tree head.
    pub(crate) tree_upgrade: Option<TreeUpgrade>,
    /// Bitfield change.
    pub(crate) bitfield: Option<BitfieldUpdate>,
}

impl Entry {
    /// Encodes the entry.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut enc = Encoder::with_capacity(self.encoded_len_bound());
        self.encode_to(&mut enc);
        enc.into_vec()
    }

    /// At least the encoded length: the variable parts plus at most 11 integers of at most 9
    /// bytes.
    pub(crate) fn encoded_len_bound(&self) -> usize {
        self.user_data
            .as_ref()
            .map_or(0, |u| u.key.len() + u.value.as_ref().map_or(0, Vec::len))
            + self
                .tree_nodes
                .as_ref()
                .map_or(0, |n| n.iter().map(Encode::encoded_len).sum::<usize>())
            + self.tree_upgrade.as_ref().map_or(0, |u| u.signature.len())
            + 11 * 9
    }

    /// Appends the encoded entry to `enc`.
    pub(crate) fn encode_to(&self, enc: &mut Encoder) {
        let flags = if self.user_data.is_some() {
            FLAG_USER_DATA
        } else {
            0
        } | if self.tree_nodes.is_some() {
            FLAG_TREE_NODES
        } else {
            0
        } | if self.tree_upgrade.is_some() {
            FLAG_TREE_UPGRADE
        } else {
            0
        } | if self.bitfield.is_some() {
            FLAG_BITFIELD
        } else {
            0
        };
        enc.uint(flags);
        if let Some(u) = &self.user_data {
            enc.string(&u.key)
                .buffer(u.value.as_deref().unwrap_or_default());
        }
        if let Some(nodes) = &self.tree_nodes {
            enc.encode_array(nodes);
        }
        if let Some(u) = &self.tree_upgrade {
            enc.uint(u.fork)
                .uint(u.ancestors)
                .uint(u.length)
                .buffer(&u.signature);
        }
        if let Some(b) = &self.bitfield {
            enc.uint(u64::from(b.drop)).uint(b.start).uint(b.length);
        }
    }

    /// Decodes an entry (trailing bytes are ignored, as in JavaScript).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(bytes);
        let flags = dec.uint()?;
        let user_data = if flags & FLAG_USER_DATA != 0 {
            Some(UserDataEntry {
                key: dec.string()?.to_owned(),
                value: dec.optional_buffer()?.map(<[u8]>::to_vec),
            })
        } else {
            None
        };
        let tree_nodes = if flags & FLAG_TREE_NODES != 0 {
            Some(dec.decode_array()?)
        } else {
            None
        };
        let tree_upgrade = if flags & FLAG_TREE_UPGRADE != 0 {
            Some(TreeUpgrade {
                fork: dec.uint()?,
                ancestors: dec.uint()?,
                length: dec.uint()?,
                signature: dec.buffer()?.to_vec(),
            })
        } else {
            None
        };
        let bitfield = if flags & FLAG_BITFIELD != 0 {
            Some(BitfieldUpdate {
                drop: dec.uint()? & 1 != 0,
                start: dec.uint()?,
                length: dec.uint()?,
            })
        } else {
            None
        };
        Ok(Self {
            user_data,
            tree_nodes,
            tree_upgrade,
            bitfield,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use corestore_keys::Hash;

    #[test]
    fn spec_example_user_data_entry() {
        let e = Entry {
            user_data: Some(UserDataEntry {
                key: "corestore/namespace".into(),
                value: Some(vec![0; 32]),
            }),
            ..Entry::default()
        };
        let bytes = e.encode();
        assert_eq!(bytes.len(), 54);
        assert_eq!(&bytes[..2], &[0x01, 0x13]);
        assert_eq!(Entry::decode(&bytes), Ok(e));
    }

    #[test]
    fn append_entry_round_trip_and_size() {
        let node = |index, size| Node {
            index,
            size,
            hash: Hash([index as u8; 32]),
        };
        let e = Entry {
            user_data: None,
            tree_nodes: Some(vec![node(0, 1), node(2, 2), node(1, 3), node(4, 3)]),
            tree_upgrade: Some(TreeUpgrade {
                fork: 0,
                ancestors: 0,
                length: 3,
                signature: vec![0xaa; 64],
            }),
            bitfield: Some(BitfieldUpdate {
                drop: false,
                start: 0,
                length: 3,
            }),
        };
        let bytes = e.encode();
        // Spec §5.11: the append entry of blocks a, bb, ccc is 209 bytes.
        assert_eq!(bytes.len(), 209);
        assert_eq!(&bytes[..3], &[0x0e, 0x04, 0x00]);
        assert_eq!(Entry::decode(&bytes), Ok(e));
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "prefix {cut}");
        }
    }

    #[test]
    fn empty_value_is_a_delete_and_empty_nodes_are_kept() {
        let e = Entry {
            user_data: Some(UserDataEntry {
                key: "k".into(),
                value: None,
            }),
            tree_nodes: Some(vec![]),
            ..Entry::default()
        };
        let bytes = e.encode();
        assert_eq!(bytes, vec![0x03, 0x01, b'k', 0x00, 0x00]);
        assert_eq!(Entry::decode(&bytes), Ok(e));
    }
}
