//! Disk compatibility with the real corestore 6.18.4 / hypercore 10.38.2, both ways, live.
//!
//! * JS → Rust: `disk-write.mjs` writes every scenario into a fresh directory and hypercore-lite
//!   opens each core there: key, discovery key, length, fork, byte length, contiguous length,
//!   tree hash, signature (byte-equal and verifying), user data and every block must be what the
//!   JS session reported.
//! * Rust → JS: hypercore-lite writes a corestore 6 directory (`primary-key`, compat cores under
//!   `cores/aa/bb/<dk>/` with corestore's `corestore/name` and `corestore/namespace` user data):
//!   several batches, a truncation, reopen + append, an oplog-only state (dropped without a
//!   flush) and a flushed one, a header too big for its oplog slot, a core created lazily (its
//!   files written by its close), 64 KiB blocks. `disk-read.mjs`
//!   opens it with corestore 6 (by discovery key, as replication does), reads every block,
//!   verifies the signature and audits; then Rust reopens the files JS flushed.
//! * Corestore 7 style: a manifest-keyed core (key = hash of the default v1 signer manifest)
//!   written and reopened by Rust, its key checked against what corestore 7 derives; hypercore
//!   10.38 also reads it and its Verifier accepts the signature.
//!
//! Every node run is bounded by a timeout.

use std::path::Path;
use std::time::Duration;

use corestore_interop::run_node;
use corestore_keys::compact::Encode;
use corestore_keys::corestore::named_key_pair;
use corestore_keys::{KeyPair, Manifest, Namespace, PrimaryKey, PublicKey, Verifier};
use hypercore_lite::{Core, CoreOptions};
use rac_storage::DirectoryProvider;
use serde_json::{Value, json};

const NODE_TIMEOUT: Duration = Duration::from_secs(120);

fn primary_key() -> PrimaryKey {
    PrimaryKey::from_bytes([0x11; 32])
}

/// `cores/aa/bb/<dk>` for a core key.
fn core_dir(core: &Core) -> String {
    let dk = core.discovery_key().to_hex();
    format!("cores/{}/{}/{dk}", &dk[..2], &dk[2..4])
}

fn open(root: &Path, dir: &str, options: CoreOptions) -> Core {
    Core::open(&DirectoryProvider::new(root), &format!("{dir}/"), options)
        .unwrap_or_else(|e| panic!("opening {dir}: {e}"))
}

fn verifier(core: &Core) -> Verifier {
    match core.manifest() {
        Some(m) => Verifier::new(*core.key(), m.clone()).unwrap(),
        None => Verifier::compat(PublicKey(core.key().0)),
    }
}

fn signature_verifies(core: &Core) -> bool {
    core.signature()
        .is_some_and(|s| verifier(core).verify(&core.head(), s).is_ok())
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a u64: {v}"))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Checks an opened core against a JS description (`disk-write.mjs` `cores[]` or a
/// `disk-read.mjs` core: both have these fields).
fn check_against_js(core: &Core, js: &Value, what: &str) {
    assert_eq!(core.key().to_hex(), s(&js["key"]), "{what}: key");
    assert_eq!(
        core.discovery_key().to_hex(),
        s(&js["discoveryKey"]),
        "{what}: discovery key"
    );
    assert_eq!(core_dir(core), s(&js["dir"]), "{what}: dir");
    assert_eq!(core.length(), u(&js["length"]), "{what}: length");
    assert_eq!(core.fork(), u(&js["fork"]), "{what}: fork");
    assert_eq!(
        core.byte_length(),
        u(&js["byteLength"]),
        "{what}: byte length"
    );
    assert_eq!(
        core.contiguous_length(),
        u(&js["contiguousLength"]),
        "{what}: contiguous length"
    );
    assert_eq!(
        hex::encode(core.tree_hash().0),
        s(&js["treeHash"]),
        "{what}: tree hash"
    );
    assert_eq!(
        core.signature().map(hex::encode),
        js["signature"].as_str().map(str::to_owned),
        "{what}: signature"
    );
    if core.length() > 0 {
        assert!(
            signature_verifies(core),
            "{what}: signature does not verify"
        );
    }
    let ours: Vec<(String, String)> = core
        .user_data_entries()
        .map(|(k, v)| (k.to_owned(), hex::encode(v)))
        .collect();
    let theirs: Vec<(String, String)> = js["userData"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (s(&e["key"]).to_owned(), s(&e["value"]).to_owned()))
        .collect();
    assert_eq!(ours, theirs, "{what}: user data");
    let blocks = js["blocks"].as_array().unwrap();
    assert_eq!(blocks.len() as u64, core.length(), "{what}: blocks");
    for (i, b) in blocks.iter().enumerate() {
        let got = core
            .get(i as u64)
            .unwrap_or_else(|e| panic!("{what}: block {i}: {e}"));
        assert_eq!(hex::encode(got), s(b), "{what}: block {i}");
    }
}

#[test]
fn js_written_stores_open_in_rust() {
    let list = run_node("disk-write.mjs", &["--list"], b"", NODE_TIMEOUT).unwrap();
    let scenarios: Vec<String> = serde_json::from_slice(&list).unwrap();
    assert!(scenarios.len() >= 6, "{scenarios:?}");
    let mut cores = 0;
    for scenario in &scenarios {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("store");
        let out = run_node(
            "disk-write.mjs",
            &[scenario, store.to_str().unwrap()],
            b"",
            NODE_TIMEOUT,
        )
        .unwrap();
        let written: Value = serde_json::from_slice(&out).unwrap();
        for js in written["cores"].as_array().unwrap() {
            let what = format!("{scenario}/{}", s(&js["label"]));
            let dir = s(&js["dir"]);
            let core = open(&store, dir, CoreOptions::new().create(false));
            check_against_js(&core, js, &what);
            assert_eq!(
                core.is_writable(),
                !js["name"].is_null(),
                "{what}: writable"
            );
            if let Some(name) = js["name"].as_str() {
                let mut ns = Namespace::DEFAULT;
                for part in js["namespacePath"].as_array().unwrap() {
                    ns = ns.child(s(part));
                }
                let kp = named_key_pair(&primary_key(), &ns, name);
                assert_eq!(kp.public_key().0, core.key().0, "{what}: derived key");
            }
            cores += 1;
        }
    }
    assert!(cores >= 10, "only {cores} cores checked");
}

/// What Rust wrote for one core: its dir and blocks, for the comparison with JS.
struct Written {
    name: &'static str,
    dir: String,
    blocks: Vec<Vec<u8>>,
    fork: u64,
}

/// Deterministic block content.
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Creates core `name` as corestore 6 does: key pair derived from the primary key, the
/// `corestore/name` and `corestore/namespace` user data.
fn create_named(root: &Path, name: &str) -> (Core, String, KeyPair) {
    let kp = named_key_pair(&primary_key(), &Namespace::DEFAULT, name);
    let options = || CoreOptions::new().key_pair(kp.clone());
    // The directory comes from the key; find it with a throwaway in-memory core.
    let probe = Core::open_storage(hypercore_lite::CoreStorage::memory(), options()).unwrap();
    let dir = core_dir(&probe);
    drop(probe);
    let mut core = open(root, &dir, options());
    core.set_user_data("corestore/name", name.as_bytes())
        .unwrap();
    core.set_user_data("corestore/namespace", &[0; 32]).unwrap();
    (core, dir, kp)
}

/// Appends `sizes.len()` batches of blocks with the given sizes, recording them.
fn append(core: &mut Core, blocks: &mut Vec<Vec<u8>>, batches: &[&[usize]]) {
    for batch in batches {
        let new: Vec<Vec<u8>> = batch
            .iter()
            .enumerate()
            .map(|(j, &len)| bytes((blocks.len() + j) as u64 * 31 + len as u64, len))
            .collect();
        core.append_batch(&new).unwrap();
        blocks.extend(new);
        assert_eq!(core.length(), blocks.len() as u64);
    }
}

/// Writes the Rust store: one core per state worth checking.
fn write_rust_store(root: &Path) -> Vec<Written> {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("primary-key"), primary_key().as_bytes()).unwrap();
    let mut out = Vec::new();

    // Oplog only, as JS's own `oplog-only`: the first mutation flushes, the rest stay in
    // the oplog; dropped without a flush.
    {
        let (mut core, dir, _) = create_named(root, "rust-oplog-only");
        let mut blocks = Vec::new();
        append(&mut core, &mut blocks, &[&[1, 2, 3]]);
        drop(core);
        out.push(Written {
            name: "rust-oplog-only",
            dir,
            blocks,
            fork: 0,
        });
    }

    // Several batches over three sessions with a truncation and a reopen + append; ends
    // with entries in the oplog (`unflushed`) or closed and flushed (`flushed`).
    for (name, flush) in [("rust-unflushed", false), ("rust-flushed", true)] {
        let (mut core, dir, kp) = create_named(root, name);
        let mut blocks = Vec::new();
        append(&mut core, &mut blocks, &[&[1], &[0, 5, 9], &[]]);
        append(&mut core, &mut blocks, &[&[17; 7], &[3; 40]]);
        drop(core);
        let mut core = open(root, &dir, CoreOptions::new().key_pair(kp.clone()));
        assert_eq!(core.length(), blocks.len() as u64);
        core.truncate(30).unwrap();
        blocks.truncate(30);
        append(&mut core, &mut blocks, &[&[2, 0, 4], &[100; 3]]);
        drop(core);
        let mut core = open(root, &dir, CoreOptions::new());
        append(
            &mut core,
            &mut blocks,
            &[&[11], &[0], &[7; 5], &[13; 2], &[1]],
        );
        if flush {
            core.close().unwrap();
        } else {
            drop(core);
        }
        out.push(Written {
            name,
            dir,
            blocks,
            fork: 1,
        });
    }

    // A header that outgrows its 4096-byte oplog slot and moves to the `header` file.
    {
        let (mut core, dir, _) = create_named(root, "rust-userdata");
        let mut blocks = Vec::new();
        append(&mut core, &mut blocks, &[&[3, 3]]);
        core.set_user_data("big", &bytes(1, 6000)).unwrap();
        core.flush().unwrap();
        core.set_user_data("small", b"x").unwrap();
        append(&mut core, &mut blocks, &[&[5]]);
        core.set_user_data("big2", &bytes(2, 3000)).unwrap();
        core.flush().unwrap();
        core.delete_user_data("small").unwrap();
        core.set_user_data("big", &bytes(3, 5000)).unwrap();
        append(&mut core, &mut blocks, &[&[4]]);
        drop(core);
        assert!(root.join(&dir).join("header").is_file());
        out.push(Written {
            name: "rust-userdata",
            dir,
            blocks,
            fork: 0,
        });
    }

    // Created lazily (name and namespace as creation user data): nothing on disk until its
    // close writes the creation; then reopened and appended to.
    {
        let name = "rust-lazy";
        let kp = named_key_pair(&primary_key(), &Namespace::DEFAULT, name);
        let options = CoreOptions::new()
            .key_pair(kp.clone())
            .user_data("corestore/name", name)
            .user_data("corestore/namespace", [0; 32])
            .lazy(true);
        let probe = Core::open_storage(hypercore_lite::CoreStorage::memory(), options.clone());
        let dir = core_dir(&probe.unwrap());
        let core = open(root, &dir, options);
        assert!(!core.is_materialized());
        assert!(!root.join(&dir).exists(), "nothing written");
        core.close().unwrap();
        let mut core = open(root, &dir, CoreOptions::new().key_pair(kp));
        let mut blocks = Vec::new();
        append(&mut core, &mut blocks, &[&[6, 1]]);
        drop(core);
        out.push(Written {
            name,
            dir,
            blocks,
            fork: 0,
        });
    }

    // 64 KiB blocks (and their neighbours), flushed partway, the rest in the oplog.
    {
        let (mut core, dir, _) = create_named(root, "rust-64k");
        let mut blocks = Vec::new();
        let k = 65536;
        append(
            &mut core,
            &mut blocks,
            &[&[k, k, k], &[k - 1, k + 1], &[k; 5]],
        );
        core.flush().unwrap();
        append(&mut core, &mut blocks, &[&[k; 4], &[1, k]]);
        drop(core);
        out.push(Written {
            name: "rust-64k",
            dir,
            blocks,
            fork: 0,
        });
    }
    out
}

/// User data corestore 6 keeps (plus the extra entries of the big-header core).
fn expected_user_data(w: &Written) -> Vec<(String, String)> {
    let mut ud = vec![
        ("corestore/name".to_owned(), hex::encode(w.name)),
        ("corestore/namespace".to_owned(), hex::encode([0; 32])),
    ];
    if w.name == "rust-userdata" {
        ud.push(("big".to_owned(), hex::encode(bytes(3, 5000))));
        ud.push(("big2".to_owned(), hex::encode(bytes(2, 3000))));
    }
    ud
}

#[test]
fn rust_written_store_reads_in_js() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("store");
    let written = write_rust_store(&root);
    // Rust's own view, for the comparison.
    let ours: Vec<Core> = written
        .iter()
        .map(|w| open(&root, &w.dir, CoreOptions::new().create(false)))
        .collect();
    for (w, core) in written.iter().zip(&ours) {
        assert_eq!(core.length(), w.blocks.len() as u64, "{}", w.name);
        assert_eq!(core.fork(), w.fork, "{}", w.name);
        assert!(signature_verifies(core), "{}", w.name);
    }
    drop(ours);

    // JS opens the files in place (so its audit flush lands in them), by discovery key.
    let out = run_node(
        "disk-read.mjs",
        &["--in-place", root.to_str().unwrap()],
        b"",
        NODE_TIMEOUT,
    )
    .unwrap();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        s(&report["primaryKeyFile"]),
        hex::encode(primary_key().as_bytes())
    );
    assert_eq!(
        report["changedByOpen"],
        json!([]),
        "JS had to repair a Rust-written file on open"
    );
    let js_cores = report["cores"].as_array().unwrap();
    assert_eq!(js_cores.len(), written.len());
    for w in &written {
        let js = js_cores
            .iter()
            .find(|c| c["dir"].as_str() == Some(w.dir.as_str()))
            .unwrap_or_else(|| panic!("{}: JS did not find the core: {report}", w.name));
        assert!(
            js["error"].is_null(),
            "{}: JS failed: {}",
            w.name,
            js["error"]
        );
        let what = format!("JS reading {}", w.name);
        assert_eq!(u(&js["length"]), w.blocks.len() as u64, "{what}: length");
        assert_eq!(u(&js["fork"]), w.fork, "{what}: fork");
        let total: usize = w.blocks.iter().map(Vec::len).sum();
        assert_eq!(u(&js["byteLength"]), total as u64, "{what}: byte length");
        assert_eq!(u(&js["contiguousLength"]), w.blocks.len() as u64, "{what}");
        assert_eq!(js["signatureValid"], json!(true), "{what}: signature");
        assert_eq!(js["verifierValid"], json!(true), "{what}: verifier");
        assert_eq!(js["writable"], json!(true), "{what}: writable");
        assert_eq!(js["leafMismatch"], json!([]), "{what}: leaf mismatch");
        let blocks: Vec<String> = w.blocks.iter().map(hex::encode).collect();
        assert_eq!(js["blocks"], json!(blocks), "{what}: blocks");
        let ud: Vec<Value> = expected_user_data(w)
            .into_iter()
            .map(|(key, value)| json!({ "key": key, "value": value }))
            .collect();
        let mut got = js["userData"].as_array().unwrap().clone();
        let mut want = ud;
        let by_key = |v: &Value| v["key"].as_str().unwrap_or_default().to_owned();
        got.sort_by_key(by_key);
        want.sort_by_key(by_key);
        assert_eq!(got, want, "{what}: user data");
        let audit = &js["audit"];
        assert_eq!(
            audit["corrections"],
            json!({ "tree": 0, "blocks": 0 }),
            "{what}: audit"
        );
        assert_eq!(audit["missing"], json!([]), "{what}: audit");
        assert_eq!(u(&audit["contiguousLength"]), w.blocks.len() as u64);
    }

    // Rust reopens what JS (opened, audited and) flushed.
    for (w, js) in written.iter().map(|w| {
        let js = js_cores
            .iter()
            .find(|c| c["dir"].as_str() == Some(w.dir.as_str()))
            .unwrap();
        (w, js)
    }) {
        let core = open(&root, &w.dir, CoreOptions::new().create(false));
        check_against_js(&core, js, &format!("{} after JS", w.name));
        for (i, b) in w.blocks.iter().enumerate() {
            assert_eq!(&core.get(i as u64).unwrap(), b, "{}: block {i}", w.name);
        }
    }
}

#[derive(serde::Deserialize)]
struct Derived {
    key: String,
    discovery_key: String,
}

#[derive(serde::Deserialize)]
struct DerivedKeys {
    cs7: Derived,
}

#[test]
fn manifest_core_written_by_rust_has_the_corestore_7_key() {
    let name = "rust-manifest";
    let kp = named_key_pair(&primary_key(), &Namespace::DEFAULT, name);
    let manifest = Manifest::default_signer(kp.public_key());
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let options = CoreOptions::new()
        .key_pair(kp.clone())
        .manifest(manifest.clone())
        .compat(false);
    let probe = Core::open_storage(hypercore_lite::CoreStorage::memory(), options.clone()).unwrap();
    let dir = core_dir(&probe);
    drop(probe);

    let mut core = open(root, &dir, options.clone());
    assert!(!core.is_compat());
    assert_eq!(core.key().0, manifest.hash().0, "key = manifest hash");
    let mut blocks = Vec::new();
    append(&mut core, &mut blocks, &[&[1, 2], &[300; 3]]);
    drop(core);
    let mut core = open(root, &dir, options);
    append(&mut core, &mut blocks, &[&[65536], &[0, 9]]);
    core.truncate(6).unwrap();
    blocks.truncate(6);
    append(&mut core, &mut blocks, &[&[4]]);
    let key = *core.key();
    let head = (core.length(), core.fork(), core.tree_hash());
    drop(core);

    // Reopened by key alone: same head, the manifest from disk, a verifying signature.
    let core = open(root, &dir, CoreOptions::new().key(key).create(false));
    assert_eq!((core.length(), core.fork(), core.tree_hash()), head);
    assert_eq!(core.manifest(), Some(&manifest));
    assert!(!core.is_compat());
    let sig = core.signature().unwrap();
    Verifier::new(key, manifest.clone())
        .unwrap()
        .verify(&core.head(), sig)
        .unwrap();
    // A compat verifier (key as public key) must not accept it.
    assert!(
        Verifier::compat(kp.public_key())
            .verify(&core.head(), sig)
            .is_err()
    );
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(&core.get(i as u64).unwrap(), b, "block {i}");
    }

    // The key corestore 7 gives the core named `rust-manifest`.
    let input = json!({ "cases": [{
        "primary_key": hex::encode(primary_key().as_bytes()),
        "namespaces": [],
        "name": name,
    }] });
    let out = run_node(
        "derive-keys.mjs",
        &[],
        &serde_json::to_vec(&input).unwrap(),
        NODE_TIMEOUT,
    )
    .unwrap();
    let derived: Vec<DerivedKeys> = serde_json::from_slice(&out).unwrap();
    assert_eq!(derived[0].cs7.key, key.to_hex(), "corestore 7 key");
    assert_eq!(derived[0].cs7.discovery_key, core.discovery_key().to_hex());

    // hypercore 10.38 (corestore 6) reads manifest cores too: it reads every block, and its
    // own Verifier accepts the v1 signature container (the compat check, key as public key,
    // rightly does not).
    let signature = hex::encode(sig);
    drop(core);
    std::fs::write(root.join("primary-key"), primary_key().as_bytes()).unwrap();
    let out = run_node(
        "disk-read.mjs",
        &[root.to_str().unwrap()],
        b"",
        NODE_TIMEOUT,
    )
    .unwrap();
    let report: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(report["changedByOpen"], json!([]));
    let js = &report["cores"][0];
    assert!(js["error"].is_null(), "JS failed: {}", js["error"]);
    assert_eq!(s(&js["key"]), key.to_hex());
    assert_eq!(s(&js["dir"]), dir);
    assert_eq!((u(&js["length"]), u(&js["fork"])), (head.0, head.1));
    assert_eq!(s(&js["treeHash"]), hex::encode(head.2.0));
    assert_eq!(s(&js["signature"]), signature);
    assert_eq!(s(&js["manifest"]), hex::encode(manifest.to_bytes()));
    assert_eq!(js["verifierValid"], json!(true), "JS's verifier");
    assert_eq!(js["signatureValid"], json!(false), "not a compat signature");
    assert_eq!(js["writable"], json!(true));
    assert_eq!(js["leafMismatch"], json!([]));
    let hexes: Vec<String> = blocks.iter().map(hex::encode).collect();
    assert_eq!(js["blocks"], json!(hexes));
    assert_eq!(
        js["audit"]["corrections"],
        json!({ "tree": 0, "blocks": 0 })
    );
    assert_eq!(js["audit"]["missing"], json!([]));
}
