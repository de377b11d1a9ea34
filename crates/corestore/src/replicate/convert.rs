//! Conversions between the protocol's plain wire structs (`corestore_proto::wire`) and the
//! log engine's proof structs (`hypercore_lite`): the two crates do not see each other, so the
//! facade translates. Manifests travel through their byte encoding.
//!
//! Public for programs that drive a [`corestore_proto::replicate::Peer`] themselves over
//! `hypercore_lite` cores (answering requests with [`request_from_wire`] and
//! [`data_from_proof`], verifying answers from [`proof_from_data`]), as the stream driver does.

use corestore_keys::Hash;
use corestore_keys::compact::Encode as _;
use corestore_proto::codec::Reader;
use corestore_proto::wire;
use hypercore_lite as lite;

/// A wire `request` as the log engine's [`lite::Request`].
#[must_use]
pub fn request_from_wire(r: &wire::Request) -> lite::Request {
    lite::Request {
        fork: r.fork,
        block: r.block.map(|b| lite::BlockRequest {
            index: b.index,
            nodes: b.nodes,
        }),
        hash: r.hash.map(|h| lite::HashRequest {
            index: h.index,
            nodes: h.nodes,
        }),
        seek: r.seek.map(|s| lite::SeekRequest {
            bytes: s.bytes,
            padding: s.padding,
        }),
        upgrade: r.upgrade.map(|u| lite::UpgradeRequest {
            start: u.start,
            length: u.length,
        }),
        manifest: r.manifest,
    }
}

fn node_to_wire(n: lite::Node) -> wire::Node {
    wire::Node {
        index: n.index,
        size: n.size,
        hash: n.hash.0,
    }
}

fn node_from_wire(n: wire::Node) -> lite::Node {
    lite::Node {
        index: n.index,
        size: n.size,
        hash: Hash::from(n.hash),
    }
}

// Both conversions consume the vector: the two node types have the same size, so `collect`
// reuses its allocation instead of making another per proof.

fn nodes_to_wire(nodes: Vec<lite::Node>) -> Vec<wire::Node> {
    nodes.into_iter().map(node_to_wire).collect()
}

fn nodes_from_wire(nodes: Vec<wire::Node>) -> Vec<lite::Node> {
    nodes.into_iter().map(node_from_wire).collect()
}

/// The `data` message answering request `request` with `proof`.
#[must_use]
pub fn data_from_proof(request: u64, proof: lite::Proof) -> wire::Data {
    wire::Data {
        request,
        fork: proof.fork,
        block: proof.block.map(|b| wire::DataBlock {
            index: b.index,
            nodes: nodes_to_wire(b.nodes),
            value: b.value,
        }),
        hash: proof.hash.map(|h| wire::DataHash {
            index: h.index,
            nodes: nodes_to_wire(h.nodes),
        }),
        seek: proof.seek.map(|s| wire::DataSeek {
            bytes: s.bytes,
            nodes: nodes_to_wire(s.nodes),
        }),
        upgrade: proof.upgrade.map(|u| wire::DataUpgrade {
            start: u.start,
            length: u.length,
            nodes: nodes_to_wire(u.nodes),
            additional_nodes: nodes_to_wire(u.additional_nodes),
            signature: u.signature,
        }),
        manifest: proof.manifest.and_then(|m| {
            let bytes = m.to_bytes();
            wire::Manifest::decode(&mut Reader::new(&bytes)).ok()
        }),
    }
}

/// A received `data` message as a [`lite::Proof`] to verify (moves the block bytes).
#[must_use]
pub fn proof_from_data(d: wire::Data) -> lite::Proof {
    lite::Proof {
        fork: d.fork,
        block: d.block.map(|b| lite::DataBlock {
            index: b.index,
            nodes: nodes_from_wire(b.nodes),
            value: b.value,
        }),
        hash: d.hash.map(|h| lite::DataHash {
            index: h.index,
            nodes: nodes_from_wire(h.nodes),
        }),
        seek: d.seek.map(|s| lite::DataSeek {
            bytes: s.bytes,
            nodes: nodes_from_wire(s.nodes),
        }),
        upgrade: d.upgrade.map(|u| lite::DataUpgrade {
            start: u.start,
            length: u.length,
            nodes: nodes_from_wire(u.nodes),
            additional_nodes: nodes_from_wire(u.additional_nodes),
            signature: u.signature,
        }),
        manifest: d.manifest.and_then(|m| {
            let mut bytes = Vec::new();
            m.encode(&mut bytes);
            lite::Manifest::decode_bytes(&bytes).ok()
        }),
    }
}
