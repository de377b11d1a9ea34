//! The oplog header (spec §5.4): what a core is (key, manifest, key pair), its user data and
//! the tree state at the last flush. Versions 0 and 1 are decoded; version 1 is written.
//!
//! ```text
//! v1: uint 1 | uint flags (bit0 external, bit1 manifest, bit2 keyPair)
//!     external: uint start | uint length                      (big header, §5.9)
//!     else: fixed32 key | [manifest] | [buffer pk | buffer sk] | array(string key | buffer value)
//!           | uint fork | uint length | buffer rootHash | buffer signature
//!           | array(uint from | uint to | uint ancestors) | [uint contiguousLength]
//! v0: uint 0 | string tree | string bitfield | string signer | array(userData) | tree
//!     | buffer pk | buffer sk | hints
//! ```

use std::fmt;

use corestore_keys::compact::{Decode, Decoder, Encoder};
use corestore_keys::{DecodeError, Key, Manifest, PublicKey};

/// Flag bit: the header lives in the `header` file.
const FLAG_EXTERNAL: u64 = 1;
/// Flag bit: a manifest follows the key.
const FLAG_MANIFEST: u64 = 2;
/// Flag bit: a key pair follows.
const FLAG_KEY_PAIR: u64 = 4;

/// A key pair as stored in the header (`buffer publicKey || buffer secretKey`); the secret
/// key is absent for cores that cannot sign. The bytes are kept as stored so that rewriting a
/// header reproduces them.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct StoredKeyPair {
    /// Public key bytes (32 for every key pair hypercore writes).
    pub(crate) public_key: Vec<u8>,
    /// libsodium secret key (`seed || public key`, 64 bytes), if stored.
    pub(crate) secret_key: Option<Vec<u8>>,
}

impl fmt::Debug for StoredKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKeyPair")
            .field("public_key", &self.public_key)
            .field("has_secret_key", &self.secret_key.is_some())
            .finish()
    }
}

/// The tree state recorded by a flush.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TreeHeader {
    /// Fork id.
    pub(crate) fork: u64,
    /// Number of blocks.
    pub(crate) length: u64,
    /// Tree hash of the roots at `length` (`None` is written as an empty buffer).
    pub(crate) root_hash: Option<Vec<u8>>,
    /// Signature bytes of that tree (`None` as an empty buffer).
    pub(crate) signature: Option<Vec<u8>>,
}

/// One recorded fork change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ReorgHint {
    /// Fork before.
    pub(crate) from: u64,
    /// Fork after.
    pub(crate) to: u64,
    /// Blocks the two forks share.
    pub(crate) ancestors: u64,
}

/// Hints: recent reorgs and the contiguous length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hints {
    /// At most four recent reorgs.
    pub(crate) reorgs: Vec<ReorgHint>,
    /// Number of leading blocks stored locally (0 means "recompute from the bitfield").
    pub(crate) contiguous_length: u64,
}

/// A full (inline) header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    /// The core key.
    pub(crate) key: Key,
    /// The manifest, once known.
    pub(crate) manifest: Option<Manifest>,
    /// The key pair, for cores created locally.
    pub(crate) key_pair: Option<StoredKeyPair>,
    /// User data in insertion order (corestore stores `corestore/name` and
    /// `corestore/namespace` here).
    pub(crate) user_data: Vec<(String, Vec<u8>)>,
    /// Tree state at the last flush.
    pub(crate) tree: TreeHeader,
    /// Hints.
    pub(crate) hints: Hints,
}

/// What a header slot (or the big-header file) decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotHeader {
    /// The header itself.
    Inline(Box<Header>),
    /// A pointer to the header in the `header` file.
    External {
        /// Byte offset in the `header` file.
        start: u64,
        /// Byte length there.
        length: u64,
    },
}

impl Header {
    /// Encodes as version 1 (what hypercore ≥ 10.21 writes).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut enc = Encoder::new();
        let flags = if self.manifest.is_some() {
            FLAG_MANIFEST
        } else {
            0
        } | if self.key_pair.is_some() {
            FLAG_KEY_PAIR
        } else {
            0
        };
        enc.uint(1).uint(flags).fixed(self.key.as_bytes());
        if let Some(m) = &self.manifest {
            enc.encode(m);
        }
        if let Some(kp) = &self.key_pair {
            enc.buffer(&kp.public_key)
                .buffer(kp.secret_key.as_deref().unwrap_or_default());
        }
        enc.array(&self.user_data, |enc, (k, v)| {
            enc.string(k).buffer(v);
        });
        encode_tree(&mut enc, &self.tree);
        enc.array(&self.hints.reorgs, |enc, r| {
            enc.uint(r.from).uint(r.to).uint(r.ancestors);
        });
        enc.uint(self.hints.contiguous_length);
        enc.into_vec()
    }

    /// Looks up a user-data value.
    pub(crate) fn user_data(&self, key: &str) -> Option<&[u8]> {
        self.user_data
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }

    /// Sets (non-empty `value`) or deletes (`None` or empty) a user-data key, keeping
    /// insertion order as hypercore does.
    pub(crate) fn set_user_data(&mut self, key: &str, value: Option<&[u8]>) {
        let value = value.filter(|v| !v.is_empty());
        match (self.user_data.iter().position(|(k, _)| k == key), value) {
            (Some(i), Some(v)) => self.user_data[i].1 = v.to_vec(),
            (Some(i), None) => {
                self.user_data.remove(i);
            }
            (None, Some(v)) => self.user_data.push((key.to_owned(), v.to_vec())),
            (None, None) => {}
        }
    }
}

/// Encodes the short "external" form that points at a big header.
pub(crate) fn encode_external(start: u64, length: u64) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.uint(1).uint(FLAG_EXTERNAL).uint(start).uint(length);
    enc.into_vec()
}

fn encode_tree(enc: &mut Encoder, t: &TreeHeader) {
    enc.uint(t.fork)
        .uint(t.length)
        .buffer(t.root_hash.as_deref().unwrap_or_default())
        .buffer(t.signature.as_deref().unwrap_or_default());
}

/// Decodes a header of version 0 or 1. Trailing bytes are ignored, as in JavaScript.
pub(crate) fn decode(bytes: &[u8]) -> Result<SlotHeader, DecodeError> {
    let mut dec = Decoder::new(bytes);
    match dec.uint()? {
        0 => decode_v0(&mut dec).map(|h| SlotHeader::Inline(Box::new(h))),
        1 => {
            let flags = dec.uint()?;
            if flags & FLAG_EXTERNAL != 0 {
                return Ok(SlotHeader::External {
                    start: dec.uint()?,
                    length: dec.uint()?,
                });
            }
            let key = Key::from_bytes(dec.fixed()?);
            let manifest = if flags & FLAG_MANIFEST != 0 {
                Some(Manifest::decode(&mut dec)?)
            } else {
                None
            };
            let key_pair = if flags & FLAG_KEY_PAIR != 0 {
                Some(decode_key_pair(&mut dec)?)
            } else {
                None
            };
            let user_data = decode_user_data(&mut dec)?;
            let tree = decode_tree(&mut dec)?;
            let hints = decode_hints(&mut dec)?;
            Ok(SlotHeader::Inline(Box::new(Header {
                key,
                manifest,
                key_pair,
                user_data,
                tree,
                hints,
            })))
        }
        value => Err(DecodeError::UnknownValue {
            what: "oplog header version",
            value,
        }),
    }
}

/// Version 0 (hypercore 10.0–10.20): compat single signer with the default namespace.
fn decode_v0(dec: &mut Decoder<'_>) -> Result<Header, DecodeError> {
    for _ in 0..3 {
        dec.string()?; // tree "blake2b", bitfield "raw", signer "ed25519"
    }
    let user_data = decode_user_data(dec)?;
    let tree = decode_tree(dec)?;
    let signer = decode_key_pair(dec)?;
    let hints = decode_hints(dec)?;
    let public_key: [u8; 32] =
        signer
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| DecodeError::UnknownValue {
                what: "v0 header public key length",
                value: signer.public_key.len() as u64,
            })?;
    let key_pair = signer.secret_key.is_some().then_some(signer);
    Ok(Header {
        key: Key::from_bytes(public_key),
        manifest: Some(Manifest::single_signer_v0(PublicKey(public_key))),
        key_pair,
        user_data,
        tree,
        hints,
    })
}

fn decode_key_pair(dec: &mut Decoder<'_>) -> Result<StoredKeyPair, DecodeError> {
    let public_key = dec.buffer()?.to_vec();
    let secret_key = dec.optional_buffer()?.map(<[u8]>::to_vec);
    Ok(StoredKeyPair {
        public_key,
        secret_key,
    })
}

fn decode_user_data(dec: &mut Decoder<'_>) -> Result<Vec<(String, Vec<u8>)>, DecodeError> {
    dec.array(|dec| Ok((dec.string()?.to_owned(), dec.buffer()?.to_vec())))
}

fn decode_tree(dec: &mut Decoder<'_>) -> Result<TreeHeader, DecodeError> {
    Ok(TreeHeader {
        fork: dec.uint()?,
        length: dec.uint()?,
        root_hash: dec.optional_buffer()?.map(<[u8]>::to_vec),
        signature: dec.optional_buffer()?.map(<[u8]>::to_vec),
    })
}

fn decode_hints(dec: &mut Decoder<'_>) -> Result<Hints, DecodeError> {
    let reorgs = dec.array(|dec| {
        Ok(ReorgHint {
            from: dec.uint()?,
            to: dec.uint()?,
            ancestors: dec.uint()?,
        })
    })?;
    let contiguous_length = if dec.is_empty() { 0 } else { dec.uint()? };
    Ok(Hints {
        reorgs,
        contiguous_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use corestore_keys::caps::HYPERCORE_DEFAULT_NAMESPACE;

    fn sample() -> Header {
        let pk = [0x37; 32];
        Header {
            key: Key::from_bytes(pk),
            manifest: Some(Manifest::default_signer(PublicKey(pk))),
            key_pair: Some(StoredKeyPair {
                public_key: pk.to_vec(),
                secret_key: Some(vec![9; 64]),
            }),
            user_data: vec![("corestore/name".into(), b"test".to_vec())],
            tree: TreeHeader::default(),
            hints: Hints::default(),
        }
    }

    /// Spec §5.11: slot 1 of the example core is 229 bytes, slot 0 (no user data) 209.
    #[test]
    fn v1_layout_matches_the_spec_example() {
        let h = sample();
        let bytes = h.encode();
        assert_eq!(bytes.len(), 229);
        assert_eq!(&bytes[..2], &[0x01, 0x06]);
        assert_eq!(&bytes[34..40], &[0x01, 0x00, 0x00, 0x01, 0x01, 0x00]);
        assert_eq!(&bytes[40..72], &HYPERCORE_DEFAULT_NAMESPACE);
        assert_eq!(&bytes[bytes.len() - 6..], &[0, 0, 0, 0, 0, 0]);
        assert_eq!(decode(&bytes), Ok(SlotHeader::Inline(Box::new(h.clone()))));

        let mut empty = h;
        empty.user_data.clear();
        assert_eq!(empty.encode().len(), 209);
    }

    #[test]
    fn v0_headers_decode_as_compat_cores() {
        let mut enc = Encoder::new();
        enc.uint(0)
            .string("blake2b")
            .string("raw")
            .string("ed25519")
            .array(&[("a", b"1")], |e, (k, v)| {
                e.string(k).buffer(*v);
            })
            .uint(2)
            .uint(10)
            .buffer(&[7; 32])
            .buffer(&[8; 64])
            .buffer(&[5; 32])
            .buffer(&[])
            .uint(0); // no reorgs, contiguous length absent
        let SlotHeader::Inline(h) = decode(enc.as_bytes()).unwrap() else {
            panic!("not inline")
        };
        assert_eq!(h.key, Key::from_bytes([5; 32]));
        assert_eq!(h.key_pair, None, "no secret key: read-only");
        assert_eq!(
            h.manifest,
            Some(Manifest::single_signer_v0(PublicKey([5; 32])))
        );
        assert_eq!(h.tree.fork, 2);
        assert_eq!(h.tree.length, 10);
        assert_eq!(h.user_data, vec![("a".to_owned(), b"1".to_vec())]);
        assert_eq!(h.hints.contiguous_length, 0);
    }

    #[test]
    fn external_form_and_bad_versions() {
        let bytes = encode_external(4096, 5000);
        assert_eq!(bytes, vec![0x01, 0x01, 0xfd, 0x00, 0x10, 0xfd, 0x88, 0x13]);
        assert_eq!(
            decode(&bytes),
            Ok(SlotHeader::External {
                start: 4096,
                length: 5000
            })
        );
        assert!(decode(&[2]).is_err());
        assert!(decode(&[]).is_err());
        let full = sample().encode();
        for cut in 0..full.len() - 1 {
            // Every strict prefix (except the optional contiguous length) fails to decode.
            assert!(decode(&full[..cut]).is_err(), "prefix {cut}");
        }
    }

    #[test]
    fn user_data_upsert_and_delete() {
        let mut h = sample();
        h.set_user_data("x", Some(b"1"));
        h.set_user_data("corestore/name", Some(b"other"));
        assert_eq!(h.user_data("corestore/name"), Some(&b"other"[..]));
        assert_eq!(h.user_data[1].0, "x");
        h.set_user_data("corestore/name", None);
        assert_eq!(h.user_data("corestore/name"), None);
        h.set_user_data("x", Some(b""));
        assert!(h.user_data.is_empty());
    }

    #[test]
    fn debug_hides_the_secret_key() {
        let s = format!("{:?}", sample());
        assert!(s.contains("has_secret_key: true"));
        assert!(!s.contains("9, 9, 9"));
    }
}
