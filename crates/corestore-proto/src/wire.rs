//! Hypercore replication messages of the `hypercore/alpha` channel (spec §9.2, §10.1).
//!
//! [`Message`] keeps the protocol's type numbering (the protomux message type on the channel).
//! Decoders ignore trailing bytes and unknown flag bits (newer peers append fields), accept the
//! hypercore 11 additions (`sync.allow_push`, `noData` reasons, `want.any`, manifest v2/v3
//! fields), and bound every length and count before allocating ([`limits`]). Encoders write the
//! minimal form, so a message decoded from a JavaScript peer re-encodes to the same bytes.
//!
//! The compact-encoding primitives come from `corestore-keys`: messages are written with
//! [`corestore_keys::compact::Encoder`] and read through the bounded [`Reader`] over its
//! [`Decoder`](corestore_keys::compact::Decoder). This module only lays out the fields.

mod manifest;

pub use manifest::{Manifest, Prologue, Signer};

use bytes::Bytes;
use corestore_keys::Key;
use corestore_keys::compact::Encoder;

use crate::codec::{MAX_ARRAY_LEN, Reader, append, uint_len};
use crate::error::DecodeError;

/// Bounds applied while decoding, before any allocation.
pub mod limits {
    /// Most tree nodes in one proof array (a proof walks at most ~64 levels per part).
    pub const MAX_PROOF_NODES: u64 = 4096;
    /// Largest block value: 15 MiB, 1 MiB below
    /// [`MAX_MESSAGE_LEN`](crate::stream::MAX_MESSAGE_LEN), so a `data` message carrying such a
    /// block, its proof nodes, signature and the message headers still fits one frame. A larger
    /// reply is refused locally by [`Peer::send_data`](crate::replicate::Peer::send_data)
    /// ([`ApiMisuse::MessageTooLarge`](crate::ApiMisuse::MessageTooLarge)).
    pub const MAX_BLOCK_LEN: usize = 15 * 1024 * 1024;
    /// Largest signature field (raw 64 bytes, or a multisig container).
    pub const MAX_SIGNATURE_LEN: usize = 64 * 1024;
    /// Most 32-bit words in one `bitfield` message (hypercore sends at most 65536).
    pub const MAX_BITFIELD_WORDS: u64 = 65_536;
    /// Longest extension name.
    pub const MAX_EXTENSION_NAME: usize = 1024;
    /// Most signers in a manifest.
    pub const MAX_SIGNERS: u64 = 1024;
    /// Most linked cores in a v2+ manifest.
    pub const MAX_LINKED: u64 = 1024;
    /// Largest manifest `userData`.
    pub const MAX_USER_DATA: usize = 64 * 1024;
}

/// The message type of `data`.
pub const DATA: u64 = 3;

/// How many message types `hypercore/alpha` defines (0 `sync` to 9 `extension`); a type at or
/// above it is ignored by receivers, as protomux does.
pub const MESSAGE_TYPES: u64 = 10;

/// The `hypercore/alpha` protocol name.
pub const PROTOCOL: &str = "hypercore/alpha";

pub use corestore_keys::caps::{REPLICATE_INITIATOR, REPLICATE_RESPONDER};

/// The replication capability (spec §9.1):
/// `H32k(key = handshake_hash, REPLICATE_INITIATOR|RESPONDER || core_key)`, with the role of the
/// side that *sends* it. Computed by `corestore-keys`.
#[must_use]
pub fn capability(handshake_hash: &[u8; 64], initiator: bool, core_key: &[u8; 32]) -> [u8; 32] {
    corestore_keys::caps::capability(handshake_hash, initiator, &Key::from_bytes(*core_key))
}

/// The channel-open handshake payload: `uint flags (bit0 seeks) || fixed32 capability`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// Whether the sender understands `seek` requests (hypercore ≥ 10.29).
    pub seeks: bool,
    /// The replication capability (spec §9.1).
    pub capability: [u8; 32],
}

impl Handshake {
    /// Appends the encoding.
    pub fn encode(&self, out: &mut Vec<u8>) {
        append(out, |e| {
            e.uint(u64::from(self.seeks)).fixed(&self.capability);
        });
    }

    /// Decodes a handshake payload.
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let flags = r.uint()?;
        Ok(Self {
            seeks: flags & 1 != 0,
            capability: r.fixed()?,
        })
    }
}

/// `sync` (type 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sync {
    /// The sender's fork id.
    pub fork: u64,
    /// The sender's length.
    pub length: u64,
    /// What the sender believes our length is.
    pub remote_length: u64,
    /// The sender can produce an upgrade proof from `remote_length`.
    pub can_upgrade: bool,
    /// The sender serves data.
    pub uploading: bool,
    /// The sender wants data.
    pub downloading: bool,
    /// The sender has a manifest stored.
    pub has_manifest: bool,
    /// hypercore 11: the sender accepts unsolicited data.
    pub allow_push: bool,
}

/// `request.block` / `request.hash`: `{index, nodes}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestBlock {
    /// Block index (for `hash`, a flat-tree node index).
    pub index: u64,
    /// Number of missing tree nodes to include.
    pub nodes: u64,
}

/// `request.seek`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestSeek {
    /// Byte offset to locate.
    pub bytes: u64,
    /// Padding per block (hypercore ≥ 10.29).
    pub padding: u64,
}

/// `request.upgrade` and the bounds of an upgrade proof.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestUpgrade {
    /// Our current length.
    pub start: u64,
    /// How many blocks to extend by.
    pub length: u64,
}

/// `request` (type 1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Request id (0 is reserved for conflict probes and pushes).
    pub id: u64,
    /// The fork the request is for.
    pub fork: u64,
    /// A block with its proof.
    pub block: Option<RequestBlock>,
    /// A tree node with its proof.
    pub hash: Option<RequestBlock>,
    /// A byte seek.
    pub seek: Option<RequestSeek>,
    /// An upgrade proof.
    pub upgrade: Option<RequestUpgrade>,
    /// Whether the manifest is wanted.
    pub manifest: bool,
    /// Priority (0 normal, ignored by hypercore 10 responders).
    pub priority: u64,
}

/// One merkle tree node: `uint index || uint size || fixed32 hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Flat-tree index.
    pub index: u64,
    /// Byte size of the subtree.
    pub size: u64,
    /// BLAKE2b-256 hash.
    pub hash: [u8; 32],
}

/// `data.block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    /// Block index.
    pub index: u64,
    /// Block value (shared with the decrypted frame it arrived in when decoded by
    /// [`Message::decode_shared`]).
    pub value: Bytes,
    /// Proof nodes.
    pub nodes: Vec<Node>,
}

/// `data.hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataHash {
    /// Flat-tree index.
    pub index: u64,
    /// Proof nodes.
    pub nodes: Vec<Node>,
}

/// `data.seek`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSeek {
    /// The requested byte offset.
    pub bytes: u64,
    /// Proof nodes.
    pub nodes: Vec<Node>,
}

/// `data.upgrade`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUpgrade {
    /// Start of the upgrade.
    pub start: u64,
    /// Length of the upgrade.
    pub length: u64,
    /// Upgrade proof nodes.
    pub nodes: Vec<Node>,
    /// Nodes extending the proof to the sender's full length.
    pub additional_nodes: Vec<Node>,
    /// The sender's tree signature.
    pub signature: Vec<u8>,
}

/// `data` (type 3): a proof plain as on the wire (nodes, hashes, signature bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Data {
    /// The request id answered.
    pub request: u64,
    /// The fork of the proof.
    pub fork: u64,
    /// Block and its proof.
    pub block: Option<DataBlock>,
    /// Node and its proof.
    pub hash: Option<DataHash>,
    /// Seek proof.
    pub seek: Option<DataSeek>,
    /// Upgrade proof.
    pub upgrade: Option<DataUpgrade>,
    /// The manifest.
    pub manifest: Option<Manifest>,
}

impl Data {
    /// The exact length of this `data` message's payload when its block value is `value_len`
    /// bytes instead of `block.value` (`None` with a manifest: its length is not known without
    /// encoding it).
    #[must_use]
    pub fn encoded_len_with_value(&self, value_len: usize) -> Option<usize> {
        self.manifest
            .is_none()
            .then(|| data_len_with(self, value_len))
    }

    /// Writes the payload as [`Message::encode_with`] does, the block value (its length prefix
    /// included) written by `value` instead of taken from `block.value` (`value` is not called
    /// without a block).
    pub fn encode_with_value(&self, o: &mut Encoder, value: impl FnOnce(&mut Encoder)) {
        encode_data_with(self, o, value);
    }
}

/// `noData` (type 4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoData {
    /// The request id answered.
    pub request: u64,
    /// hypercore 11 trailer: `None` for the v10 form, `Some(0)` for "no reason", else the
    /// reason (1 not available, 2 invalid request).
    pub reason: Option<u64>,
}

/// `want` / `unwant` (types 5, 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// First block.
    pub start: u64,
    /// Number of blocks.
    pub length: u64,
    /// hypercore 11 `any` flag.
    pub any: bool,
}

/// `bitfield` (type 7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitfield {
    /// First block (a multiple of 32).
    pub start: u64,
    /// LE words; bit i of word w is block `start + 32w + i`.
    pub bitfield: Vec<u32>,
}

/// `range` (type 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The blocks were cleared rather than added.
    pub drop: bool,
    /// First block.
    pub start: u64,
    /// Number of blocks.
    pub length: u64,
}

/// `extension` (type 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Extension name (`""` repeats the last name the sender used).
    pub name: String,
    /// The message (rest of the frame).
    pub message: Vec<u8>,
}

/// One message of the `hypercore/alpha` channel, in protocol order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// 0
    Sync(Sync),
    /// 1
    Request(Request),
    /// 2: the id of a request the canceller sent.
    Cancel(u64),
    /// 3 (boxed: by far the largest message)
    Data(Box<Data>),
    /// 4
    NoData(NoData),
    /// 5
    Want(Want),
    /// 6
    Unwant(Want),
    /// 7
    Bitfield(Bitfield),
    /// 8
    Range(Range),
    /// 9
    Extension(Extension),
}

impl Message {
    /// The protomux message type.
    #[must_use]
    pub fn message_type(&self) -> u64 {
        match self {
            Self::Sync(_) => 0,
            Self::Request(_) => 1,
            Self::Cancel(_) => 2,
            Self::Data(_) => 3,
            Self::NoData(_) => 4,
            Self::Want(_) => 5,
            Self::Unwant(_) => 6,
            Self::Bitfield(_) => 7,
            Self::Range(_) => 8,
            Self::Extension(_) => 9,
        }
    }

    /// Encodes the payload (without the type).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded payload (without the type) to `out`, so a caller can reuse one
    /// buffer for many messages.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        if let Self::Data(d) = self {
            // Room for the whole message up front: growing past a block value would copy it.
            out.reserve(data_len(d));
        }
        append(out, |o| self.encode_with(o));
    }

    /// The exact length [`Message::encode`] gives, when it is known without encoding (every
    /// `data` message without a manifest).
    #[must_use]
    pub fn encoded_len(&self) -> Option<usize> {
        match self {
            Self::Data(d) if d.manifest.is_none() => Some(data_len(d)),
            _ => None,
        }
    }

    /// Writes the payload to `o` (what [`Message::encode`] returns).
    pub fn encode_with(&self, o: &mut Encoder) {
        match self {
            Self::Sync(m) => {
                let flags = u64::from(m.can_upgrade)
                    | u64::from(m.uploading) << 1
                    | u64::from(m.downloading) << 2
                    | u64::from(m.has_manifest) << 3
                    | u64::from(m.allow_push) << 4;
                o.uint(flags)
                    .uint(m.fork)
                    .uint(m.length)
                    .uint(m.remote_length);
            }
            Self::Request(m) => {
                let flags = u64::from(m.block.is_some())
                    | u64::from(m.hash.is_some()) << 1
                    | u64::from(m.seek.is_some()) << 2
                    | u64::from(m.upgrade.is_some()) << 3
                    | u64::from(m.manifest) << 4
                    | u64::from(m.priority != 0) << 5;
                o.uint(flags).uint(m.id).uint(m.fork);
                for b in [m.block, m.hash].into_iter().flatten() {
                    o.uint(b.index).uint(b.nodes);
                }
                if let Some(s) = m.seek {
                    o.uint(s.bytes).uint(s.padding);
                }
                if let Some(u) = m.upgrade {
                    o.uint(u.start).uint(u.length);
                }
                if m.priority != 0 {
                    o.uint(m.priority);
                }
            }
            Self::Cancel(id) => {
                o.uint(*id);
            }
            Self::Data(m) => encode_data(m, o),
            Self::NoData(m) => {
                o.uint(m.request);
                match m.reason {
                    None => {}
                    Some(0) => {
                        o.uint(0);
                    }
                    Some(r) => {
                        o.uint(1).uint(r);
                    }
                }
            }
            Self::Want(m) | Self::Unwant(m) => {
                o.uint(m.start).uint(m.length);
                if m.any {
                    o.uint(1);
                }
            }
            Self::Bitfield(m) => {
                o.uint(m.start).uint32_array(&m.bitfield);
            }
            Self::Range(m) => {
                o.uint(u64::from(m.drop) | u64::from(m.length == 1) << 1)
                    .uint(m.start);
                if m.length != 1 {
                    o.uint(m.length);
                }
            }
            Self::Extension(m) => {
                o.string(&m.name).raw(&m.message);
            }
        }
    }

    /// Decodes the payload of a message of type `message_type`; a block value is copied
    /// out of `buf`.
    pub fn decode(message_type: u64, buf: &[u8]) -> Result<Self, DecodeError> {
        Self::decode_inner(message_type, buf, None)
    }

    /// [`Message::decode`] of a payload that lies in `owner` (a decrypted frame): a block value
    /// is a slice of `owner` instead of a copy. A `buf` that is not within `owner` is decoded
    /// as [`Message::decode`] does.
    pub fn decode_shared(
        message_type: u64,
        buf: &[u8],
        owner: &Bytes,
    ) -> Result<Self, DecodeError> {
        Self::decode_inner(message_type, buf, Some(owner))
    }

    fn decode_inner(
        message_type: u64,
        buf: &[u8],
        owner: Option<&Bytes>,
    ) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let r = &mut r;
        Ok(match message_type {
            0 => {
                let flags = r.uint()?;
                Self::Sync(Sync {
                    fork: r.uint()?,
                    length: r.uint()?,
                    remote_length: r.uint()?,
                    can_upgrade: flags & 1 != 0,
                    uploading: flags & 2 != 0,
                    downloading: flags & 4 != 0,
                    has_manifest: flags & 8 != 0,
                    allow_push: flags & 16 != 0,
                })
            }
            1 => {
                let flags = r.uint()?;
                let id = r.uint()?;
                let fork = r.uint()?;
                let mut pair = |on: bool| -> Result<Option<(u64, u64)>, DecodeError> {
                    Ok(if on {
                        Some((r.uint()?, r.uint()?))
                    } else {
                        None
                    })
                };
                let block =
                    pair(flags & 1 != 0)?.map(|(index, nodes)| RequestBlock { index, nodes });
                let hash =
                    pair(flags & 2 != 0)?.map(|(index, nodes)| RequestBlock { index, nodes });
                let seek =
                    pair(flags & 4 != 0)?.map(|(bytes, padding)| RequestSeek { bytes, padding });
                let upgrade =
                    pair(flags & 8 != 0)?.map(|(start, length)| RequestUpgrade { start, length });
                let priority = if flags & 32 != 0 { r.uint()? } else { 0 };
                Self::Request(Request {
                    id,
                    fork,
                    block,
                    hash,
                    seek,
                    upgrade,
                    manifest: flags & 16 != 0,
                    priority,
                })
            }
            2 => Self::Cancel(r.uint()?),
            DATA => Self::Data(Box::new(decode_data(r, owner)?)),
            4 => {
                let request = r.uint()?;
                let reason = if r.is_empty() {
                    None
                } else {
                    let flags = r.uint()?;
                    Some(if flags & 1 != 0 { r.uint()? } else { 0 })
                };
                Self::NoData(NoData { request, reason })
            }
            5 | 6 => {
                let start = r.uint()?;
                let length = r.uint()?;
                let any = !r.is_empty() && r.uint()? & 1 != 0;
                let w = Want { start, length, any };
                if message_type == 5 {
                    Self::Want(w)
                } else {
                    Self::Unwant(w)
                }
            }
            7 => Self::Bitfield(Bitfield {
                start: r.uint()?,
                bitfield: r.uint32_array(limits::MAX_BITFIELD_WORDS)?,
            }),
            8 => {
                let flags = r.uint()?;
                let start = r.uint()?;
                let length = if flags & 2 != 0 { 1 } else { r.uint()? };
                Self::Range(Range {
                    drop: flags & 1 != 0,
                    start,
                    length,
                })
            }
            9 => {
                let name = r.string(limits::MAX_EXTENSION_NAME)?.to_owned();
                Self::Extension(Extension {
                    name,
                    message: r.rest().to_vec(),
                })
            }
            t => return Err(DecodeError::UnknownType(t)),
        })
    }
}

fn write_nodes(o: &mut Encoder, nodes: &[Node]) {
    o.array(nodes, |o, n| {
        o.uint(n.index).uint(n.size).fixed(&n.hash);
    });
}

fn nodes(r: &mut Reader<'_>) -> Result<Vec<Node>, DecodeError> {
    let n = r.count(limits::MAX_PROOF_NODES.min(MAX_ARRAY_LEN), 34)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Node {
            index: r.uint()?,
            size: r.uint()?,
            hash: r.fixed()?,
        });
    }
    Ok(out)
}

/// The encoded length of `m` without its manifest.
fn data_len(m: &Data) -> usize {
    data_len_with(m, m.block.as_ref().map_or(0, |b| b.value.len()))
}

/// [`data_len`] with a block value of `value_len` bytes.
fn data_len_with(m: &Data, value_len: usize) -> usize {
    let nodes = |n: &[Node]| {
        uint_len(n.len() as u64)
            + n.iter()
                .map(|x| uint_len(x.index) + uint_len(x.size) + 32)
                .sum::<usize>()
    };
    let buffer = |b: &[u8]| uint_len(b.len() as u64) + b.len();
    // The flags take one byte (five bits).
    let mut len = 1 + uint_len(m.request) + uint_len(m.fork);
    if let Some(b) = &m.block {
        len += uint_len(b.index) + uint_len(value_len as u64) + value_len + nodes(&b.nodes);
    }
    if let Some(h) = &m.hash {
        len += uint_len(h.index) + nodes(&h.nodes);
    }
    if let Some(s) = &m.seek {
        len += uint_len(s.bytes) + nodes(&s.nodes);
    }
    if let Some(u) = &m.upgrade {
        len += uint_len(u.start)
            + uint_len(u.length)
            + nodes(&u.nodes)
            + nodes(&u.additional_nodes)
            + buffer(&u.signature);
    }
    len
}

fn encode_data(m: &Data, o: &mut Encoder) {
    encode_data_with(m, o, |o| {
        if let Some(b) = &m.block {
            o.buffer(&b.value);
        }
    });
}

/// [`encode_data`] with the block value (length prefix included) written by `value`.
fn encode_data_with(m: &Data, o: &mut Encoder, value: impl FnOnce(&mut Encoder)) {
    let flags = u64::from(m.block.is_some())
        | u64::from(m.hash.is_some()) << 1
        | u64::from(m.seek.is_some()) << 2
        | u64::from(m.upgrade.is_some()) << 3
        | u64::from(m.manifest.is_some()) << 4;
    o.uint(flags).uint(m.request).uint(m.fork);
    if let Some(b) = &m.block {
        o.uint(b.index);
        value(o);
        write_nodes(o, &b.nodes);
    }
    if let Some(h) = &m.hash {
        o.uint(h.index);
        write_nodes(o, &h.nodes);
    }
    if let Some(s) = &m.seek {
        o.uint(s.bytes);
        write_nodes(o, &s.nodes);
    }
    if let Some(u) = &m.upgrade {
        o.uint(u.start).uint(u.length);
        write_nodes(o, &u.nodes);
        write_nodes(o, &u.additional_nodes);
        o.buffer(&u.signature);
    }
    if let Some(man) = &m.manifest {
        man.encode_to(o);
    }
}

/// `part` as a slice of `owner` when it lies within it (no copy), else a copy.
fn shared(owner: Option<&Bytes>, part: &[u8]) -> Bytes {
    if let Some(owner) = owner {
        let (start, end) = (
            owner.as_ptr() as usize,
            owner.as_ptr() as usize + owner.len(),
        );
        let at = part.as_ptr() as usize;
        if at >= start && at + part.len() <= end {
            return owner.slice(at - start..at - start + part.len());
        }
    }
    Bytes::copy_from_slice(part)
}

/// The block value of a `data` message's payload (message type [`DATA`]), found without
/// decoding the rest: the bytes [`Message::decode`] would give as `block.value` when the whole
/// payload decodes; `None` if it has no block or does not decode that far.
#[must_use]
pub fn data_block_value(payload: &[u8]) -> Option<&[u8]> {
    let mut r = Reader::new(payload);
    let flags = r.uint().ok()?;
    if flags & 1 == 0 {
        return None;
    }
    let _request = r.uint().ok()?;
    let _fork = r.uint().ok()?;
    let _index = r.uint().ok()?;
    r.buffer(limits::MAX_BLOCK_LEN).ok()
}

fn decode_data(r: &mut Reader<'_>, owner: Option<&Bytes>) -> Result<Data, DecodeError> {
    let flags = r.uint()?;
    let request = r.uint()?;
    let fork = r.uint()?;
    let block = if flags & 1 != 0 {
        let index = r.uint()?;
        let value = r.buffer(limits::MAX_BLOCK_LEN)?;
        let value = shared(owner, value);
        Some(DataBlock {
            index,
            value,
            nodes: nodes(r)?,
        })
    } else {
        None
    };
    let hash = if flags & 2 != 0 {
        Some(DataHash {
            index: r.uint()?,
            nodes: nodes(r)?,
        })
    } else {
        None
    };
    let seek = if flags & 4 != 0 {
        Some(DataSeek {
            bytes: r.uint()?,
            nodes: nodes(r)?,
        })
    } else {
        None
    };
    let upgrade = if flags & 8 != 0 {
        Some(DataUpgrade {
            start: r.uint()?,
            length: r.uint()?,
            nodes: nodes(r)?,
            additional_nodes: nodes(r)?,
            signature: r.buffer(limits::MAX_SIGNATURE_LEN)?.to_vec(),
        })
    } else {
        None
    };
    let manifest = if flags & 16 != 0 {
        Some(Manifest::decode(r)?)
    } else {
        None
    };
    Ok(Data {
        request,
        fork,
        block,
        hash,
        seek,
        upgrade,
        manifest,
    })
}

#[cfg(test)]
mod tests;
