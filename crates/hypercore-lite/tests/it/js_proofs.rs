//! Proofs built by this crate against the 1049 proofs the real hypercore 10.38.2 built
//! (`tests/fixtures/hc10.38/proofs.json`, from `tests/js/proof-gen.mjs`).
//!
//! Each JS core is rebuilt here from the same inputs (the key pair corestore 6 derives for
//! `proof-<L>` under primary key `11 × 32`, the same blocks, the same batches and truncation),
//! so the key, tree hash and Ed25519 signature must come out byte-equal. Then every request is
//! asked of [`Core::proof`] and every field of the answer (fork, block index/value/nodes, hash
//! nodes, seek nodes, upgrade start/length/nodes/additional nodes/signature) must equal JS's;
//! requests JS rejects must be rejected here too. The proofs are also verified and applied by a
//! reader wherever the reader state the request assumes can be rebuilt.
//!
//! The byte comparison of the encoded `data` messages lives in the interop tests (the wire
//! encoding is in `corestore-proto`, which this crate does not see).

use std::collections::HashMap;
use std::sync::Arc;

use corestore_keys::corestore::named_key_pair;
use corestore_keys::{Hash, Namespace, Node, PrimaryKey};
use hypercore_lite::tree::flat::NodeIndex;
use hypercore_lite::{
    BlockRequest, Core, CoreOptions, CoreStorage, Error, HashRequest, Proof, Request, SeekRequest,
    UpgradeRequest,
};

use rac_storage::{MemoryStorage, Storage};

use crate::common::read_all;
use crate::json::{Json, hex};

fn proofs_json() -> Json {
    Json::read(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hc10.38/proofs.json"),
    )
}

/// The blocks of core `label`, as batches (proof-gen.mjs: one batch of `block-i`; the fork core
/// appends 12, truncates to 7, appends `fork-7..fork-10`).
fn build(label: &str, length: Option<u64>) -> Core {
    let kp = named_key_pair(
        &PrimaryKey::from_bytes([0x11; 32]),
        &Namespace::DEFAULT,
        label,
    );
    let mut core =
        Core::open_storage(CoreStorage::memory(), CoreOptions::new().key_pair(kp)).unwrap();
    let blocks = |r: std::ops::Range<u64>, p: &str| -> Vec<Vec<u8>> {
        r.map(|i| format!("{p}-{i}").into_bytes()).collect()
    };
    if label == "proof-fork" {
        core.append_batch(&blocks(0..12, "block")).unwrap();
        core.truncate(7).unwrap();
        core.append_batch(&blocks(7..11, "fork")).unwrap();
    } else {
        let l: u64 = label["proof-".len()..].parse().unwrap();
        core.append_batch(&blocks(0..length.unwrap_or(l), "block"))
            .unwrap();
    }
    core
}

fn node(j: &Json) -> Node {
    Node {
        index: j.get("index").u64(),
        size: j.get("size").u64(),
        hash: Hash(j.get("hash").hex32()),
    }
}

fn nodes(j: &Json) -> Vec<Node> {
    j.arr().iter().map(node).collect()
}

fn request(fork: u64, r: &Json) -> Request {
    Request {
        fork,
        block: r.get("block").opt().map(|b| BlockRequest {
            index: b.get("index").u64(),
            nodes: b.get("nodes").u64(),
        }),
        hash: r.get("hash").opt().map(|b| HashRequest {
            index: b.get("index").u64(),
            nodes: b.get("nodes").u64(),
        }),
        seek: r.get("seek").opt().map(|s| SeekRequest {
            bytes: s.get("bytes").u64(),
            padding: s.get("padding").u64(),
        }),
        upgrade: r.get("upgrade").opt().map(|u| UpgradeRequest {
            start: u.get("start").u64(),
            length: u.get("length").u64(),
        }),
        manifest: false,
    }
}

/// Compares every field of our proof with JS's.
fn assert_same_proof(ours: &Proof, js: &Json, what: &str) {
    assert_eq!(ours.fork, js.get("fork").u64(), "{what}: fork");
    match js.get("block").opt() {
        Some(b) => {
            let o = ours
                .block
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no block"));
            assert_eq!(o.index, b.get("index").u64(), "{what}: block index");
            assert_eq!(o.value, b.get("value").hex(), "{what}: block value");
            assert_eq!(o.nodes, nodes(b.get("nodes")), "{what}: block nodes");
        }
        None => assert_eq!(ours.block, None, "{what}: block"),
    }
    match js.get("hash").opt() {
        Some(h) => {
            let o = ours
                .hash
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no hash"));
            assert_eq!(o.index, h.get("index").u64(), "{what}: hash index");
            assert_eq!(o.nodes, nodes(h.get("nodes")), "{what}: hash nodes");
        }
        None => assert_eq!(ours.hash, None, "{what}: hash"),
    }
    match js.get("seek").opt() {
        Some(s) => {
            let o = ours
                .seek
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no seek"));
            assert_eq!(o.bytes, s.get("bytes").u64(), "{what}: seek bytes");
            assert_eq!(o.nodes, nodes(s.get("nodes")), "{what}: seek nodes");
        }
        None => assert_eq!(ours.seek, None, "{what}: seek"),
    }
    match js.get("upgrade").opt() {
        Some(u) => {
            let o = ours
                .upgrade
                .as_ref()
                .unwrap_or_else(|| panic!("{what}: no upgrade"));
            assert_eq!(o.start, u.get("start").u64(), "{what}: upgrade start");
            assert_eq!(o.length, u.get("length").u64(), "{what}: upgrade length");
            assert_eq!(o.nodes, nodes(u.get("nodes")), "{what}: upgrade nodes");
            assert_eq!(
                o.additional_nodes,
                nodes(u.get("additionalNodes")),
                "{what}: upgrade additional nodes"
            );
            assert_eq!(
                hex(&o.signature),
                u.get("signature").str(),
                "{what}: upgrade signature"
            );
        }
        None => assert_eq!(ours.upgrade, None, "{what}: upgrade"),
    }
    assert_eq!(ours.manifest, None, "{what}: manifest (compat core)");
}

/// Readers holding only a signed head, as raw files keyed by core label and length (so
/// each is built and verified once, then reopened per case).
type ReaderCache = HashMap<(String, u64), Option<Vec<Vec<u8>>>>;

fn files(s: &CoreStorage) -> Vec<Vec<u8>> {
    [&s.oplog, &s.tree, &s.bitfield, &s.data, &s.header]
        .iter()
        .map(|f| read_all(f))
        .collect()
}

fn storage(files: &[Vec<u8>]) -> CoreStorage {
    let m = |b: &Vec<u8>| -> Arc<dyn Storage> { Arc::new(MemoryStorage::from_bytes(b)) };
    CoreStorage {
        oplog: m(&files[0]),
        tree: m(&files[1]),
        bitfield: m(&files[2]),
        data: m(&files[3]),
        header: m(&files[4]),
    }
}

/// A reader of `label` holding the signed head at `length` and nothing else, or `None` where
/// that state cannot be rebuilt from a prefix writer (a length below the fork core's head).
fn reader_at(cache: &mut ReaderCache, label: &str, writer: &Core, length: u64) -> Option<Core> {
    let options = CoreOptions::new().key(*writer.key());
    let stored = cache
        .entry((label.to_owned(), length))
        .or_insert_with(|| {
            let s = CoreStorage::memory();
            let mut reader = Core::open_storage(s.clone(), options.clone()).unwrap();
            if length > 0 {
                let source = if length == writer.length() {
                    None
                } else if label == "proof-fork" {
                    return None;
                } else {
                    Some(build(label, Some(length)))
                };
                crate::common::upgrade(source.as_ref().unwrap_or(writer), &mut reader);
                assert_eq!(reader.length(), length);
            }
            drop(reader);
            Some(files(&s))
        })
        .as_ref()?;
    Some(Core::open_storage(storage(stored), options).unwrap())
}

/// Verifies and applies `proof` on a reader in the state `request` assumes, when it can be
/// rebuilt. Returns whether it was checked.
fn verify_on_reader(
    cache: &mut ReaderCache,
    label: &str,
    writer: &Core,
    request: &Request,
    proof: &Proof,
) -> bool {
    let start = request.upgrade.map_or_else(|| writer.length(), |u| u.start);
    let Some(mut reader) = reader_at(cache, label, writer, start) else {
        return false;
    };
    // The request's `nodes` must be what this reader lacks, else it is another reader's.
    if let Some(b) = request.block
        && (b.index < start && b.nodes != reader.missing_nodes(b.index).unwrap())
    {
        return false;
    }
    if let Some(h) = request.hash
        && h.nodes != reader.missing_nodes_of(NodeIndex(h.index)).unwrap()
    {
        return false;
    }
    let verified = reader
        .verify(proof)
        .unwrap_or_else(|e| panic!("{label} {request:?}: our proof does not verify: {e}"));
    reader.apply(verified).unwrap();
    assert_eq!(reader.length(), writer.length());
    assert_eq!(reader.tree_hash(), writer.tree_hash());
    if let Some(b) = &proof.block {
        assert_eq!(reader.get(b.index).unwrap(), b.value);
    }
    true
}

#[test]
fn proofs_match_javascript_field_by_field() {
    let doc = proofs_json();
    assert_eq!(doc.get("hypercore").str(), "10.38.2");
    let mut writers = Vec::new();
    for c in doc.get("cores").arr() {
        let label = c.get("label").str();
        let core = build(label, None);
        assert_eq!(core.key().to_hex(), c.get("key").str(), "{label}: key");
        assert_eq!(core.length(), c.get("length").u64(), "{label}: length");
        assert_eq!(core.fork(), c.get("fork").u64(), "{label}: fork");
        assert_eq!(core.byte_length(), c.get("byteLength").u64());
        assert_eq!(hex(core.tree_hash().as_bytes()), c.get("treeHash").str());
        assert_eq!(
            core.signature().map(hex).as_deref(),
            Some(c.get("signature").str()),
            "{label}: signature"
        );
        writers.push((label.to_owned(), core));
    }
    let (mut same, mut rejected, mut verified) = (0, 0, 0);
    let mut cache = ReaderCache::new();
    let cases = doc.get("cases").arr();
    for (n, case) in cases.iter().enumerate() {
        let label = case.get("core").str();
        let writer = &writers.iter().find(|(l, _)| l == label).unwrap().1;
        let req = request(writer.fork(), case.get("request"));
        let what = format!("case {n} ({label} {req:?})");
        let ours = writer.proof(&req);
        if let Some(err) = case.get("error").opt() {
            // JS throws (and tears the stream down); we refuse the request. "Could not
            // satisfy length" (a node beyond the tree) is a request no honest peer sends.
            assert!(
                matches!(ours, Err(Error::InvalidRequest(_))),
                "{what}: JS failed with {err:?}, we gave {ours:?}"
            );
            rejected += 1;
            continue;
        }
        let ours = match ours {
            Ok(Some(p)) => p,
            other => panic!("{what}: JS answered, we gave {other:?}"),
        };
        assert_same_proof(&ours, case.get("proof"), &what);
        same += 1;
        if verify_on_reader(&mut cache, label, writer, &req, &ours) {
            verified += 1;
        }
    }
    assert_eq!(cases.len(), 1049);
    assert_eq!((same, rejected), (1031, 18));
    // 777 of them are also verified and applied end to end (the rest assume a reader that
    // holds tree nodes a bare upgrade does not give, or a length below the fork core's
    // truncation).
    assert_eq!(verified, 777, "proofs verified on a reader");
}
