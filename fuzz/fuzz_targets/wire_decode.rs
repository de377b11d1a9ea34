//! `corestore_proto::wire`: every `hypercore/alpha` message decoder, the channel handshake and
//! the manifest codec.
//!
//! Input: `u8 message_type || payload` (types above 9 exercise the unknown-type path).
//!
//! Invariants: no panic; a decoded message reports the type it was decoded as; encoding is an
//! identity on what decodes: `decode(encode(m)) == m`, and `encode` of that is the same bytes
//! (the encoder writes the minimal form, so the bytes may differ from the input, the value not);
//! `data_block_value` finds the very bytes a decoded `data` message holds as its block value.

#![no_main]

use corestore_proto::codec::Reader;
use corestore_proto::wire::{Handshake, Manifest, Message, data_block_value};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&ty, payload)) = input.split_first() else {
        return;
    };
    let ty = u64::from(ty);

    let value = data_block_value(payload);
    if let Ok(m) = Message::decode(ty, payload) {
        assert_eq!(m.message_type(), ty);
        if let Message::Data(d) = &m {
            assert_eq!(value, d.block.as_ref().map(|b| &b.value[..]));
        }
        let bytes = m.encode();
        let again = Message::decode(ty, &bytes)
            .unwrap_or_else(|e| panic!("re-encoding of {m:?} does not decode: {e}"));
        assert_eq!(again, m, "decode(encode(m)) != m");
        assert_eq!(again.encode(), bytes, "encoding is not deterministic");
    }

    if let Ok(h) = Handshake::decode(payload) {
        let mut bytes = Vec::new();
        h.encode(&mut bytes);
        assert_eq!(Handshake::decode(&bytes).as_ref(), Ok(&h));
    }

    let mut r = Reader::new(payload);
    if let Ok(m) = Manifest::decode(&mut r) {
        let mut bytes = Vec::new();
        m.encode(&mut bytes);
        let mut again = Reader::new(&bytes);
        let decoded = Manifest::decode(&mut again)
            .unwrap_or_else(|e| panic!("re-encoding of {m:?} does not decode: {e}"));
        assert_eq!(decoded, m, "decode(encode(manifest)) != manifest");
        assert!(
            again.is_empty(),
            "bytes left after decoding a re-encoded manifest"
        );
    }
});
