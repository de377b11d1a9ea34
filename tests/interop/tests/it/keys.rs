//! Key derivation: corestore-keys against the real corestore 6 and 7 packages, live.
//!
//! The committed vectors in `crates/corestore-keys/tests/vectors` are checked hermetically; this
//! test asks the JavaScript packages about *new* inputs every time its case generator changes, so a
//! divergence cannot hide behind a stale vector file.

use std::time::Duration;

use corestore_interop::run_node_json;
use corestore_keys::corestore::named_key_pair;
use corestore_keys::hash::hash;
use corestore_keys::manifest::core_key;
use corestore_keys::{Key, Manifest, Namespace, PrimaryKey};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Input {
    cases: Vec<Case>,
}

#[derive(Serialize, Clone)]
struct Case {
    primary_key: String,
    namespaces: Vec<String>,
    name: String,
}

#[derive(Deserialize, Debug)]
struct Derived {
    key: String,
    discovery_key: String,
    id: String,
}

#[derive(Deserialize, Debug)]
struct Output {
    cs6: Derived,
    cs6_compat_false: Derived,
    cs7: Derived,
}

/// Pieces that names and namespaces are assembled from: ASCII, punctuation and path-like
/// separators, Latin with combining marks, CJK, right-to-left scripts, emoji with joiners.
const PIECES: &[&str] = &[
    "log",
    "db",
    "a",
    "Z",
    "0",
    " ",
    "/",
    "..",
    "-",
    "_",
    "e\u{301}",
    "é",
    "ß",
    "日本",
    "語",
    "中文",
    "שלום",
    "مرحبا",
    "👩‍👩‍👧",
    "🦀",
    "\u{200d}",
    "ñ",
    "Ω",
    "\t",
    "name:with:colons",
];

/// A deterministic byte stream (BLAKE2b in counter mode over a label).
struct Stream {
    label: u64,
    counter: u64,
    buf: Vec<u8>,
}

impl Stream {
    fn new(label: u64) -> Self {
        Self {
            label,
            counter: 0,
            buf: Vec::new(),
        }
    }

    fn byte(&mut self) -> u8 {
        if self.buf.is_empty() {
            let mut input = self.label.to_le_bytes().to_vec();
            input.extend_from_slice(&self.counter.to_le_bytes());
            self.counter += 1;
            self.buf = hash(&input).as_bytes().to_vec();
        }
        self.buf.pop().unwrap_or_default()
    }

    fn below(&mut self, n: usize) -> usize {
        let wide = u16::from_le_bytes([self.byte(), self.byte()]);
        usize::from(wide) % n
    }

    fn text(&mut self, max_pieces: usize) -> String {
        let count = 1 + self.below(max_pieces);
        (0..count)
            .map(|_| PIECES[self.below(PIECES.len())])
            .collect()
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for p in 0..8u64 {
        let mut s = Stream::new(p);
        let primary: Vec<u8> = (0..32).map(|_| s.byte()).collect();
        for c in 0..8 {
            let depth = s.below(4);
            let namespaces = (0..depth).map(|_| s.text(4)).collect();
            // Every eighth name is long (hundreds of pieces, well over 1,000 bytes).
            let name = if c == 7 {
                s.text(400) + &"x".repeat(1000)
            } else {
                s.text(6)
            };
            out.push(Case {
                primary_key: hex::encode(&primary),
                namespaces,
                name,
            });
        }
    }
    out
}

#[test]
fn named_keys_match_corestore_6_and_7() {
    let cases = cases();
    let input = Input {
        cases: cases.clone(),
    };
    let outputs: Vec<Output> = run_node_json("derive-keys.mjs", &input, Duration::from_secs(120))
        .expect("node derive-keys.mjs");
    assert_eq!(outputs.len(), cases.len());

    for (case, js) in cases.iter().zip(&outputs) {
        let bytes: [u8; 32] = hex::decode(&case.primary_key).unwrap().try_into().unwrap();
        let primary = PrimaryKey::from_bytes(bytes);
        let namespace = case
            .namespaces
            .iter()
            .fold(Namespace::DEFAULT, |ns, n| ns.child(n.as_bytes()));
        let pair = named_key_pair(&primary, &namespace, &case.name);

        let compat = Key::from(pair.public_key());
        let v0 = core_key(&Manifest::single_signer_v0(pair.public_key()), false).unwrap();
        let v1 = core_key(&Manifest::default_signer(pair.public_key()), false).unwrap();

        for (what, ours, theirs) in [
            ("cs6", compat, &js.cs6),
            ("cs6 compat:false", v0, &js.cs6_compat_false),
            ("cs7", v1, &js.cs7),
        ] {
            let context = format!(
                "{what}, namespaces {:?}, name {:?}",
                case.namespaces, case.name
            );
            assert_eq!(ours.to_hex(), theirs.key, "key: {context}");
            assert_eq!(
                ours.discovery_key().to_hex(),
                theirs.discovery_key,
                "discovery key: {context}"
            );
            assert_eq!(ours.id(), theirs.id, "id: {context}");
            // Parsing JS's printed forms gives the same key back.
            assert_eq!(
                corestore_keys::id::parse_key(&theirs.id).unwrap(),
                ours,
                "z32 parse: {context}"
            );
            assert_eq!(
                corestore_keys::id::parse_key(&theirs.key).unwrap(),
                ours,
                "hex parse: {context}"
            );
        }
    }
}
