//! `corestore_keys::compact`: every `Decoder` reader over arbitrary bytes, and decode → encode →
//! decode round trips of every `Decode`/`Encode` type the crate exports.
//!
//! Input: `k || control[k] || data`. Each control byte picks the next reader to call on one
//! `Decoder` over `data` (stopping at the first error); independently, `data` is decoded as
//! each round-trip type.
//!
//! Invariants: no panic; the position only moves forward and `position + remaining == len`;
//! values respect the documented limits (2^53 − 1, `MAX_ARRAY_LEN`, remaining bytes); the wire
//! codec of corestore-proto agrees with this one on `uint`; whatever decodes re-encodes to
//! exactly `encoded_len` bytes that decode to the same value, consuming them all.

#![no_main]

use std::fmt::Debug;

use corestore_keys::compact::{Decode, Decoder, Encode, MAX_ARRAY_LEN, MAX_SAFE_INTEGER};
use corestore_keys::verify::{MultiSignature, MultiSignatureV0, SignerProof, SignerProofV0};
use corestore_keys::{DecodeError, Manifest, Node, Signer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&k, rest)) = input.split_first() else {
        return;
    };
    let k = usize::from(k).min(rest.len());
    let (control, data) = rest.split_at(k);

    readers(control, data);

    round_trip::<Manifest>(data);
    round_trip::<Node>(data);
    round_trip::<Signer>(data);
    round_trip::<SignerProof>(data);
    round_trip::<MultiSignature>(data);
    round_trip::<SignerProofV0>(data);
    round_trip::<MultiSignatureV0>(data);
    if let Ok(m) = Manifest::decode_bytes(data) {
        let _ = m.hash();
        let _ = corestore_keys::manifest::core_key(&m, true);
        let _ = corestore_keys::manifest::core_key(&m, false);
    }

    // The wire codec of corestore-proto reads the same varints.
    let ours = corestore_keys::compact::Decoder::new(data).uint().ok();
    let theirs = corestore_proto::codec::Reader::new(data).uint().ok();
    assert_eq!(
        ours, theirs,
        "corestore-keys and corestore-proto disagree on a uint"
    );
});

/// Runs the readers named by `control` over one decoder, checking the cursor after each.
fn readers(control: &[u8], data: &[u8]) {
    let mut dec = Decoder::new(data);
    for &op in control {
        let before = dec.position();
        let ok = step(&mut dec, op, data.len());
        let after = dec.position();
        assert!(
            after >= before,
            "position moved backwards ({before} -> {after})"
        );
        assert_eq!(after + dec.remaining(), data.len());
        assert_eq!(dec.is_empty(), dec.remaining() == 0);
        assert_eq!(dec.finish().is_ok(), dec.remaining() == 0);
        if !ok {
            break;
        }
    }
}

/// One reader call; returns whether it succeeded.
fn step(dec: &mut Decoder<'_>, op: u8, len: usize) -> bool {
    let remaining = dec.remaining();
    match op % 19 {
        0 => dec.u8().is_ok(),
        1 => dec.u16().is_ok(),
        2 => checked(dec.u24())
            .inspect(|&v| assert!(v < 1 << 24))
            .is_some(),
        3 => dec.u32().is_ok(),
        4 => checked(dec.u64())
            .inspect(|&v| assert!(v <= MAX_SAFE_INTEGER))
            .is_some(),
        5 => checked(dec.uint())
            .inspect(|&v| assert!(v <= MAX_SAFE_INTEGER))
            .is_some(),
        6 => dec.fixed::<32>().is_ok(),
        7 => dec.fixed_ref::<64>().is_ok(),
        8 => checked(dec.buffer())
            .inspect(|b| assert!(b.len() < remaining))
            .is_some(),
        9 => checked(dec.optional_buffer())
            .inspect(|b| assert!(b.is_none_or(|b| !b.is_empty() && b.len() < remaining)))
            .is_some(),
        10 => dec.string().is_ok(),
        11 => dec.bool().is_ok(),
        12 => checked(dec.array_len())
            .inspect(|&n| {
                assert!(n as u64 <= MAX_ARRAY_LEN);
                assert!(n <= dec.remaining());
            })
            .is_some(),
        13 => checked(dec.uint32_array_bytes())
            .inspect(|b| assert_eq!(b.len() % 4, 0))
            .is_some(),
        14 => checked(dec.uint32_array())
            .inspect(|w| assert!(w.len() * 4 < remaining))
            .is_some(),
        15 => dec.array(Decoder::uint).is_ok(),
        16 => dec.decode_array::<Node>().is_ok(),
        17 => dec.decode::<Manifest>().is_ok(),
        _ => {
            let raw = dec.raw();
            assert_eq!(raw.len(), remaining);
            assert!(raw.len() <= len);
            true
        }
    }
}

/// `Some(value)` for a success; errors must be typed (any `DecodeError` is).
fn checked<T>(r: Result<T, DecodeError>) -> Option<T> {
    r.ok()
}

/// Decodes `data` as `T`; whatever decodes must survive encode → decode unchanged.
fn round_trip<T: Decode + Encode + PartialEq + Debug>(data: &[u8]) {
    let mut dec = Decoder::new(data);
    let Ok(first) = T::decode(&mut dec) else {
        return;
    };
    let bytes = first.to_bytes();
    assert_eq!(
        bytes.len(),
        first.encoded_len(),
        "encoded_len disagrees with encode: {first:?}"
    );
    let mut again = Decoder::new(&bytes);
    let second = T::decode(&mut again)
        .unwrap_or_else(|e| panic!("re-encoding of {first:?} does not decode: {e}"));
    assert_eq!(first, second, "decode(encode(x)) != x");
    assert_eq!(
        again.finish(),
        Ok(()),
        "decoding the re-encoding left bytes over: {first:?}"
    );
    assert_eq!(second.to_bytes(), bytes, "encoding is not deterministic");
}
