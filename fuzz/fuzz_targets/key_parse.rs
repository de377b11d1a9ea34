//! `corestore_keys::id`: key parsing from arbitrary strings (hex, z-base-32, `pear://` links),
//! and `Manifest` decoding of the same bytes.
//!
//! Invariants: no panic; a parsed key prints back (hex, z-base-32 id, `pear://` link) to strings
//! that parse to the same key; z-base-32 decode → encode → decode is the identity on bytes;
//! `key_from_bytes` accepts exactly 32 bytes; a decoded manifest hashes and re-encodes.

#![no_main]

use corestore_keys::compact::Encode;
use corestore_keys::id::{self, parse_key};
use corestore_keys::{Hash, Key, Manifest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    if let Ok(m) = Manifest::decode_bytes(input) {
        let again = Manifest::decode_bytes(&m.to_bytes()).expect("a re-encoded manifest decodes");
        assert_eq!(again, m);
        assert_eq!(again.hash(), m.hash());
    }

    match id::key_from_bytes(input) {
        Ok(key) => assert_eq!(key.as_bytes().as_slice(), input),
        Err(_) => assert_ne!(input.len(), 32),
    }

    // Valid UTF-8 as is, and everything else the way a lossy caller would see it.
    match std::str::from_utf8(input) {
        Ok(s) => strings(s),
        Err(_) => strings(&String::from_utf8_lossy(input)),
    }
});

fn strings(s: &str) {
    if let Ok(key) = parse_key(s) {
        let hex = key.to_string();
        assert_eq!(
            parse_key(&hex),
            Ok(key),
            "hex form {hex} does not parse back"
        );
        let z32 = key.id();
        assert_eq!(
            parse_key(&z32),
            Ok(key),
            "z-base-32 form {z32} does not parse back"
        );
        assert_eq!(parse_key(&format!("pear://{z32}/x")), Ok(key));
        assert_eq!(Key::from_hex(&hex).ok(), Some(key));
    }
    if let Ok(bytes) = id::z32_decode(s) {
        let encoded = id::z32_encode(&bytes);
        assert_eq!(
            id::z32_decode(&encoded).as_ref(),
            Ok(&bytes),
            "z32 round trip"
        );
    }
    let _ = Hash::from_hex(s);
}
