//! Proof bytes: the `request` and `data` messages of Rust-built proofs, encoded with
//! `corestore_proto::wire`, against the bytes the real hypercore 10.38.2 encoded for the same
//! requests (`proofs.json` from `tests/js/proof-gen.mjs`).
//!
//! Field-by-field equality is checked hermetically in hypercore-lite (`tests/it/js_proofs.rs`);
//! this test adds the wire encoding (hypercore-lite does not see `corestore-proto`). It runs
//! against the committed fixture and against a fresh run of `proof-gen.mjs`, so the fixture
//! cannot go stale unnoticed.

use std::time::Duration;

use corestore_interop::run_node;
use corestore_keys::corestore::named_key_pair;
use corestore_keys::{Namespace, PrimaryKey};
use corestore_proto::wire;
use hypercore_lite::{
    BlockRequest, Core, CoreOptions, CoreStorage, HashRequest, Request, SeekRequest, UpgradeRequest,
};
use serde_json::Value;

fn fixture_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../crates/hypercore-lite/tests/fixtures/hc10.38/proofs.json")
}

/// Core `label` as proof-gen.mjs builds it.
fn build(label: &str) -> Core {
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
        core.append_batch(&blocks(0..l, "block")).unwrap();
    }
    core
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap()
}

fn pair(v: &Value, a: &str, b: &str) -> Option<(u64, u64)> {
    (!v.is_null()).then(|| (u(&v[a]), u(&v[b])))
}

/// Checks every case of a `proofs.json` document; returns (matching data messages, errors).
fn check(doc: &Value) -> (usize, usize) {
    let cores: Vec<(String, Core)> = doc["cores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let label = c["label"].as_str().unwrap();
            let core = build(label);
            assert_eq!(core.key().to_hex(), c["key"].as_str().unwrap(), "{label}");
            (label.to_owned(), core)
        })
        .collect();
    let (mut same, mut errors) = (0, 0);
    for (n, case) in doc["cases"].as_array().unwrap().iter().enumerate() {
        let label = case["core"].as_str().unwrap();
        let core = &cores.iter().find(|(l, _)| l == label).unwrap().1;
        let r = &case["request"];
        let block = pair(&r["block"], "index", "nodes");
        let hash = pair(&r["hash"], "index", "nodes");
        let seek = pair(&r["seek"], "bytes", "padding");
        let upgrade = pair(&r["upgrade"], "start", "length");
        let request = Request {
            fork: core.fork(),
            block: block.map(|(index, nodes)| BlockRequest { index, nodes }),
            hash: hash.map(|(index, nodes)| HashRequest { index, nodes }),
            seek: seek.map(|(bytes, padding)| SeekRequest { bytes, padding }),
            upgrade: upgrade.map(|(start, length)| UpgradeRequest { start, length }),
            manifest: false,
        };
        let what = format!("case {n} ({label} {request:?})");
        let ours = core.proof(&request);
        if !case["error"].is_null() {
            assert!(
                matches!(ours, Err(hypercore_lite::Error::InvalidRequest(_))),
                "{what}: JS threw, we gave {ours:?}"
            );
            errors += 1;
            continue;
        }
        let id = u(&case["id"]);
        // The request message as JS encoded it.
        let wire_request = wire::Message::Request(wire::Request {
            id,
            fork: request.fork,
            block: block.map(|(index, nodes)| wire::RequestBlock { index, nodes }),
            hash: hash.map(|(index, nodes)| wire::RequestBlock { index, nodes }),
            seek: seek.map(|(bytes, padding)| wire::RequestSeek { bytes, padding }),
            upgrade: upgrade.map(|(start, length)| wire::RequestUpgrade { start, length }),
            manifest: false,
            priority: 0,
        });
        assert_eq!(
            hex::encode(wire_request.encode()),
            case["wire"]["request"].as_str().unwrap(),
            "{what}: request bytes"
        );
        let proof = ours
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .unwrap_or_else(|| panic!("{what}: no proof"));
        let bytes =
            wire::Message::Data(Box::new(corestore::convert::data_from_proof(id, proof))).encode();
        let js = case["wire"]["data"].as_str().unwrap();
        assert_eq!(hex::encode(&bytes), js, "{what}: data bytes");
        // And JS's bytes decode to the same message.
        let decoded = wire::Message::decode(3, &hex::decode(js).unwrap()).unwrap();
        assert_eq!(decoded.encode(), bytes, "{what}: decode/encode");
        same += 1;
    }
    (same, errors)
}

#[test]
fn rust_proofs_encode_to_the_bytes_js_sends() {
    let doc: Value = serde_json::from_slice(&std::fs::read(fixture_path()).unwrap()).unwrap();
    assert_eq!(check(&doc), (1031, 18));
}

#[test]
fn rust_proofs_match_a_fresh_proof_gen_run() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("proofs.json");
    run_node(
        "proof-gen.mjs",
        &[out.to_str().unwrap()],
        b"",
        Duration::from_secs(120),
    )
    .unwrap();
    let fresh = std::fs::read(&out).unwrap();
    let doc: Value = serde_json::from_slice(&fresh).unwrap();
    assert_eq!(check(&doc), (1031, 18));
    // The committed fixture is what the pinned JS produces today.
    let committed: Value = serde_json::from_slice(&std::fs::read(fixture_path()).unwrap()).unwrap();
    assert_eq!(doc, committed, "proofs.json is stale: regenerate it");
}
