//! Checks every case of `tests/vectors/js-keys.json` (written by the JavaScript reference
//! packages; see `tests/vectors/README.md`).

use std::sync::OnceLock;

use corestore_keys::caps::{capability, namespace};
use corestore_keys::compact::{Decoder, Encode, Encoder};
use corestore_keys::corestore::{derive_seed, named_key_pair};
use corestore_keys::hash::{crc32, leaf, parent, tree};
use corestore_keys::id::{parse_key, z32_encode};
use corestore_keys::manifest::core_key;
use corestore_keys::{
    Hash, Key, KeyPair, Manifest, ManifestVersion, Namespace, Node, PrimaryKey, Prologue,
    PublicKey, Seed, Signer, TreeHead, Verifier,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    generator: String,
    corestore: Vec<CorestoreCase>,
    namespace: Vec<NamespaceCase>,
    keys: Vec<KeyCase>,
    invalid_ids: Vec<String>,
    merkle: Merkle,
    hypercore: Vec<HypercoreCase>,
    manifests: Vec<ManifestCase>,
    signatures: Vec<SignatureCase>,
    capabilities: Vec<CapabilityCase>,
    compact: Compact,
    crc32: Vec<CrcCase>,
}

#[derive(Deserialize)]
struct CoreIds {
    key: String,
    discovery_key: String,
    id: String,
}

#[derive(Deserialize)]
struct CorestoreCase {
    primary_key: String,
    namespaces: Vec<String>,
    name: String,
    namespace: String,
    public_key: String,
    cs6: CoreIds,
    cs6_compat_false: CoreIds,
    cs7: CoreIds,
}

#[derive(Deserialize)]
struct NamespaceCase {
    name: String,
    count: usize,
    namespaces: Vec<String>,
}

#[derive(Deserialize)]
struct KeyCase {
    key: String,
    discovery_key: String,
    id: String,
    accepted: Vec<String>,
}

#[derive(Deserialize)]
struct JsNode {
    index: u64,
    size: u64,
    hash: String,
}

#[derive(Deserialize)]
struct Merkle {
    leaves: Vec<LeafCase>,
    parents: Vec<ParentCase>,
    trees: Vec<TreeCase>,
}

#[derive(Deserialize)]
struct LeafCase {
    data: String,
    hash: String,
}

#[derive(Deserialize)]
struct ParentCase {
    left: JsNode,
    right: JsNode,
    hash: String,
}

#[derive(Deserialize)]
struct TreeCase {
    roots: Vec<JsNode>,
    hash: String,
}

#[derive(Deserialize)]
struct HypercoreCase {
    mode: String,
    seed: String,
    public_key: String,
    key: String,
    manifest: String,
    blocks: Vec<String>,
    length: u64,
    fork: u64,
    roots: Vec<JsNode>,
    tree_hash: String,
    signable: String,
    signature: String,
}

#[derive(Deserialize)]
struct JsSigner {
    namespace: String,
    public_key: String,
}

#[derive(Deserialize)]
struct JsPrologue {
    hash: String,
    length: u64,
}

#[derive(Deserialize)]
struct JsManifest {
    version: u64,
    allow_patch: bool,
    quorum: u64,
    signers: Vec<JsSigner>,
    prologue: Option<JsPrologue>,
}

#[derive(Deserialize)]
struct ManifestCase {
    manifest: JsManifest,
    encoded: String,
    hash: String,
}

#[derive(Deserialize)]
struct SignatureCase {
    seed: String,
    public_key: String,
    secret_key: String,
    message: String,
    signature: String,
}

#[derive(Deserialize)]
struct CapabilityCase {
    handshake_hash: String,
    key: String,
    initiator: String,
    responder: String,
}

#[derive(Deserialize)]
struct Compact {
    uints: Vec<ValueCase<u64>>,
    strings: Vec<ValueCase<String>>,
    uint32_arrays: Vec<ValueCase<Vec<u32>>>,
}

#[derive(Deserialize)]
struct ValueCase<T> {
    value: T,
    encoded: String,
}

#[derive(Deserialize)]
struct CrcCase {
    data: String,
    crc32: u32,
}

fn vectors() -> &'static Vectors {
    static V: OnceLock<Vectors> = OnceLock::new();
    V.get_or_init(|| {
        let text = include_str!("../vectors/js-keys.json");
        serde_json::from_str(text).expect("js-keys.json parses")
    })
}

fn bytes(s: &str) -> Vec<u8> {
    hex::decode(s).expect("hex in vectors")
}

fn b32(s: &str) -> [u8; 32] {
    bytes(s).try_into().expect("32 bytes in vectors")
}

fn node(n: &JsNode) -> Node {
    Node {
        index: n.index,
        size: n.size,
        hash: Hash(b32(&n.hash)),
    }
}

fn check_ids(key: &Key, ids: &CoreIds, what: &str) {
    assert_eq!(key.to_hex(), ids.key, "{what} key");
    assert_eq!(key.discovery_key().to_hex(), ids.discovery_key, "{what} dk");
    assert_eq!(key.id(), ids.id, "{what} id");
}

#[test]
fn generator_is_recorded() {
    assert_eq!(vectors().generator, "tests/js/gen-key-vectors.mjs");
}

#[test]
fn corestore_named_keys() {
    let cases = &vectors().corestore;
    assert!(cases.len() >= 60, "{} corestore cases", cases.len());
    for c in cases {
        let primary = PrimaryKey::from_bytes(b32(&c.primary_key));
        let ns = c
            .namespaces
            .iter()
            .fold(Namespace::DEFAULT, |ns, name| ns.child(name));
        assert_eq!(ns.to_hex(), c.namespace, "namespace {:?}", c.namespaces);

        let kp = named_key_pair(&primary, &ns, &c.name);
        let pk = kp.public_key();
        assert_eq!(pk.to_hex(), c.public_key, "name {:?}", c.name);
        assert_eq!(
            KeyPair::from_seed(&derive_seed(&primary, &ns, &c.name)).public_key(),
            pk
        );

        check_ids(&Key::from(pk), &c.cs6, "cs6");
        let v0 = Manifest::single_signer_v0(pk);
        check_ids(
            &core_key(&v0, false).unwrap(),
            &c.cs6_compat_false,
            "cs6 compat:false",
        );
        let v1 = Manifest::default_signer(pk);
        check_ids(&core_key(&v1, false).unwrap(), &c.cs7, "cs7");
    }
}

#[test]
fn namespaces() {
    for c in &vectors().namespace {
        let got: Vec<String> = namespace(c.name.as_bytes(), c.count)
            .iter()
            .map(hex::encode)
            .collect();
        assert_eq!(got, c.namespaces, "namespace({:?}, {})", c.name, c.count);
    }
}

#[test]
fn keys_discovery_keys_and_ids() {
    for c in &vectors().keys {
        let key = Key::from_hex(&c.key).unwrap();
        assert_eq!(key.discovery_key().to_hex(), c.discovery_key);
        assert_eq!(key.id(), c.id);
        assert_eq!(z32_encode(key.as_bytes()), c.id);
        for input in &c.accepted {
            assert_eq!(parse_key(input), Ok(key), "{input}");
        }
    }
}

#[test]
fn ids_rejected_by_js_are_rejected() {
    for input in &vectors().invalid_ids {
        assert!(parse_key(input).is_err(), "{input:?}");
    }
}

#[test]
fn merkle_hashes() {
    let m = &vectors().merkle;
    for c in &m.leaves {
        assert_eq!(leaf(&bytes(&c.data)).to_hex(), c.hash);
    }
    for c in &m.parents {
        let (l, r) = (node(&c.left), node(&c.right));
        assert_eq!(parent(&l, &r).to_hex(), c.hash);
        assert_eq!(parent(&r, &l).to_hex(), c.hash);
    }
    for c in &m.trees {
        let roots: Vec<Node> = c.roots.iter().map(node).collect();
        assert_eq!(tree(&roots).to_hex(), c.hash);
    }
}

/// The full roots of a tree over `blocks`, computed by hashing (flat-tree numbering).
fn full_roots(blocks: &[Vec<u8>]) -> Vec<Node> {
    let mut roots = Vec::new();
    let mut offset = 0usize;
    while offset < blocks.len() {
        let mut width = 1usize;
        while width * 2 <= blocks.len() - offset {
            width *= 2;
        }
        let mut level: Vec<Node> = (offset..offset + width)
            .map(|i| Node::leaf(i as u64, &blocks[i]))
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .map(|pair| Node::parent(&pair[0], &pair[1]))
                .collect();
        }
        roots.extend(level);
        offset += width;
    }
    roots
}

#[test]
fn hypercore_trees_and_signatures() {
    let cases = &vectors().hypercore;
    assert!(!cases.is_empty());
    for c in cases {
        let blocks: Vec<Vec<u8>> = c.blocks.iter().map(|b| bytes(b)).collect();
        assert_eq!(blocks.len() as u64, c.length);
        let roots = full_roots(&blocks);
        let expected: Vec<Node> = c.roots.iter().map(node).collect();
        assert_eq!(roots, expected, "{} length {}", c.mode, c.length);
        let head = TreeHead {
            hash: tree(&roots),
            length: c.length,
            fork: c.fork,
        };
        assert_eq!(head.hash.to_hex(), c.tree_hash);

        let manifest_bytes = bytes(&c.manifest);
        let manifest = Manifest::decode_bytes(&manifest_bytes).unwrap();
        assert_eq!(manifest.to_bytes(), manifest_bytes);
        let key = Key::from_hex(&c.key).unwrap();
        let verifier = Verifier::new(key, manifest).unwrap();
        assert_eq!(verifier.is_compat(), c.mode == "compat");

        let signable = match c.mode.as_str() {
            "compat" => head.signable_compat().to_vec(),
            "v0" => head
                .signable(&verifier.manifest().signers[0].namespace)
                .to_vec(),
            _ => head.signable(key.as_bytes()).to_vec(),
        };
        assert_eq!(hex::encode(&signable), c.signable);

        let signature = bytes(&c.signature);
        verifier.verify(&head, &signature).unwrap();
        let kp = KeyPair::from_seed(&Seed(b32(&c.seed)));
        assert_eq!(kp.public_key().to_hex(), c.public_key);
        assert_eq!(verifier.sign(&head, &kp).unwrap(), signature);

        let mut flipped = signature.clone();
        let at = flipped.len() / 2;
        flipped[at] ^= 0x10;
        assert!(verifier.verify(&head, &flipped).is_err());
        let other = TreeHead {
            fork: head.fork + 1,
            ..head
        };
        assert!(verifier.verify(&other, &signature).is_err());
    }
}

fn manifest_of(m: &JsManifest) -> Manifest {
    Manifest {
        version: match m.version {
            0 => ManifestVersion::V0,
            _ => ManifestVersion::V1,
        },
        allow_patch: m.allow_patch,
        quorum: m.quorum,
        signers: m
            .signers
            .iter()
            .map(|s| Signer {
                namespace: b32(&s.namespace),
                public_key: PublicKey(b32(&s.public_key)),
            })
            .collect(),
        prologue: m.prologue.as_ref().map(|p| Prologue {
            hash: Hash(b32(&p.hash)),
            length: p.length,
        }),
    }
}

#[test]
fn manifests() {
    for c in &vectors().manifests {
        let m = manifest_of(&c.manifest);
        let encoded = m.to_bytes();
        assert_eq!(hex::encode(&encoded), c.encoded, "{m:?}");
        assert_eq!(encoded.len(), m.encoded_len());
        assert_eq!(m.hash().to_hex(), c.hash, "{m:?}");
        // Decoding returns what JavaScript would decode (v0 drops unrepresentable fields).
        let decoded = Manifest::decode_bytes(&encoded).unwrap();
        assert_eq!(decoded.to_bytes(), encoded);
    }
}

#[test]
fn signatures() {
    for c in &vectors().signatures {
        let kp = KeyPair::from_seed(&Seed(b32(&c.seed)));
        assert_eq!(kp.public_key().to_hex(), c.public_key);
        assert_eq!(hex::encode(kp.secret_key().as_bytes()), c.secret_key);
        let msg = bytes(&c.message);
        assert_eq!(hex::encode(kp.sign(&msg).as_bytes()), c.signature);
        assert!(corestore_keys::sign::verify(
            &msg,
            &bytes(&c.signature),
            kp.public_key().as_bytes()
        ));
        let from_sk = KeyPair::from_secret_key(&bytes(&c.secret_key)).unwrap();
        assert_eq!(from_sk.public_key(), kp.public_key());
    }
}

#[test]
fn capabilities() {
    for c in &vectors().capabilities {
        let hh: [u8; 64] = bytes(&c.handshake_hash).try_into().unwrap();
        let key = Key::from_hex(&c.key).unwrap();
        assert_eq!(hex::encode(capability(&hh, true, &key)), c.initiator);
        assert_eq!(hex::encode(capability(&hh, false, &key)), c.responder);
    }
}

#[test]
fn compact_encodings() {
    let v = &vectors().compact;
    for c in &v.uints {
        let mut enc = Encoder::new();
        enc.uint(c.value);
        assert_eq!(hex::encode(enc.as_bytes()), c.encoded, "{}", c.value);
        assert_eq!(Decoder::new(enc.as_bytes()).uint(), Ok(c.value));
    }
    for c in &v.strings {
        let mut enc = Encoder::new();
        enc.string(&c.value);
        assert_eq!(hex::encode(enc.as_bytes()), c.encoded);
        assert_eq!(Decoder::new(enc.as_bytes()).string(), Ok(c.value.as_str()));
    }
    for c in &v.uint32_arrays {
        let mut enc = Encoder::new();
        enc.uint32_array(&c.value);
        assert_eq!(hex::encode(enc.as_bytes()), c.encoded);
        assert_eq!(
            Decoder::new(enc.as_bytes()).uint32_array().as_ref(),
            Ok(&c.value)
        );
    }
}

#[test]
fn crc32_values() {
    for c in &vectors().crc32 {
        assert_eq!(crc32(&bytes(&c.data)), c.crc32);
    }
}
