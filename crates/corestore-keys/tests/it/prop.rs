//! Property tests. Case count: `PROPTEST_CASES` if set, else 64.

use corestore_keys::compact::{self, Decode, Decoder, Encode, Encoder, MAX_SAFE_INTEGER};
use corestore_keys::id::{parse_key, z32_decode, z32_encode};
use corestore_keys::verify::{MultiSignature, MultiSignatureV0};
use corestore_keys::{
    Hash, Key, KeyPair, Manifest, ManifestVersion, Node, Prologue, PublicKey, Seed, Signer,
};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 64;
    }
    c
}

/// One compact-encoding field of each primitive kind.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Uint(u64),
    U8(u8),
    U16(u16),
    U24(u32),
    U32(u32),
    U64(u64),
    Fixed32([u8; 32]),
    Fixed64(Vec<u8>),
    Buffer(Vec<u8>),
    Str(String),
    Bool(bool),
    Array(Vec<u64>),
    Uint32Array(Vec<u32>),
}

fn safe_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=0xfcu64,
        0xfd..=0xffffu64,
        0x1_0000..=0xffff_ffffu64,
        0x1_0000_0000..=MAX_SAFE_INTEGER,
    ]
}

fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        safe_u64().prop_map(Field::Uint),
        any::<u8>().prop_map(Field::U8),
        any::<u16>().prop_map(Field::U16),
        (0..=0xff_ffffu32).prop_map(Field::U24),
        any::<u32>().prop_map(Field::U32),
        safe_u64().prop_map(Field::U64),
        any::<[u8; 32]>().prop_map(Field::Fixed32),
        proptest::collection::vec(any::<u8>(), 64).prop_map(Field::Fixed64),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(Field::Buffer),
        ".{0,40}".prop_map(Field::Str),
        any::<bool>().prop_map(Field::Bool),
        proptest::collection::vec(safe_u64(), 0..20).prop_map(Field::Array),
        proptest::collection::vec(any::<u32>(), 0..20).prop_map(Field::Uint32Array),
    ]
}

fn encode_field(enc: &mut Encoder, f: &Field) {
    match f {
        Field::Uint(n) => enc.uint(*n),
        Field::U8(n) => enc.u8(*n),
        Field::U16(n) => enc.u16(*n),
        Field::U24(n) => enc.u24(*n),
        Field::U32(n) => enc.u32(*n),
        Field::U64(n) => enc.u64(*n),
        Field::Fixed32(b) => enc.fixed(b),
        Field::Fixed64(b) => enc.raw(b),
        Field::Buffer(b) => enc.buffer(b),
        Field::Str(s) => enc.string(s),
        Field::Bool(b) => enc.bool(*b),
        Field::Array(a) => enc.array(a, |e, n| {
            e.uint(*n);
        }),
        Field::Uint32Array(a) => enc.uint32_array(a),
    };
}

fn field_len(f: &Field) -> usize {
    match f {
        Field::Uint(n) => compact::uint_len(*n),
        Field::U8(_) | Field::Bool(_) => 1,
        Field::U16(_) => 2,
        Field::U24(_) => 3,
        Field::U32(_) => 4,
        Field::U64(_) => 8,
        Field::Fixed32(_) => 32,
        Field::Fixed64(_) => 64,
        Field::Buffer(b) => compact::buffer_len(b.len()),
        Field::Str(s) => compact::buffer_len(s.len()),
        Field::Array(a) => {
            compact::uint_len(a.len() as u64)
                + a.iter().map(|n| compact::uint_len(*n)).sum::<usize>()
        }
        Field::Uint32Array(a) => compact::uint32_array_len(a.len()),
    }
}

fn decode_like(dec: &mut Decoder<'_>, f: &Field) -> Field {
    let r = match f {
        Field::Uint(_) => dec.uint().map(Field::Uint),
        Field::U8(_) => dec.u8().map(Field::U8),
        Field::U16(_) => dec.u16().map(Field::U16),
        Field::U24(_) => dec.u24().map(Field::U24),
        Field::U32(_) => dec.u32().map(Field::U32),
        Field::U64(_) => dec.u64().map(Field::U64),
        Field::Fixed32(_) => dec.fixed::<32>().map(Field::Fixed32),
        Field::Fixed64(_) => dec.fixed::<64>().map(|b| Field::Fixed64(b.to_vec())),
        Field::Buffer(_) => dec.buffer().map(|b| Field::Buffer(b.to_vec())),
        Field::Str(_) => dec.string().map(|s| Field::Str(s.to_owned())),
        Field::Bool(_) => dec.bool().map(Field::Bool),
        Field::Array(_) => dec.array(Decoder::uint).map(Field::Array),
        Field::Uint32Array(_) => dec.uint32_array().map(Field::Uint32Array),
    };
    r.expect("decoding what was just encoded")
}

fn manifest_v1() -> impl Strategy<Value = Manifest> {
    (
        any::<bool>(),
        safe_u64(),
        proptest::collection::vec((any::<[u8; 32]>(), any::<[u8; 32]>()), 0..5),
        proptest::option::of((any::<[u8; 32]>(), safe_u64())),
    )
        .prop_map(|(allow_patch, quorum, signers, prologue)| Manifest {
            version: ManifestVersion::V1,
            allow_patch,
            quorum,
            signers: signers
                .into_iter()
                .map(|(namespace, pk)| Signer {
                    namespace,
                    public_key: PublicKey(pk),
                })
                .collect(),
            prologue: prologue.map(|(h, length)| Prologue {
                hash: Hash(h),
                length,
            }),
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_primitive_round_trips(fields in proptest::collection::vec(field(), 0..12), raw in proptest::collection::vec(any::<u8>(), 0..40)) {
        let mut enc = Encoder::new();
        for f in &fields {
            encode_field(&mut enc, f);
        }
        prop_assert_eq!(enc.len(), fields.iter().map(field_len).sum::<usize>());
        enc.raw(&raw);
        let bytes = enc.into_vec();
        let mut dec = Decoder::new(&bytes);
        for f in &fields {
            prop_assert_eq!(&decode_like(&mut dec, f), f);
        }
        prop_assert_eq!(dec.raw(), &raw[..]);
        prop_assert!(dec.finish().is_ok());
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Each primitive from the start, and a mixed walk until the first error.
        let _ = Decoder::new(&bytes).uint();
        let _ = Decoder::new(&bytes).u64();
        let _ = Decoder::new(&bytes).u24();
        let _ = Decoder::new(&bytes).buffer();
        let _ = Decoder::new(&bytes).string();
        let _ = Decoder::new(&bytes).array(Decoder::uint);
        let _ = Decoder::new(&bytes).uint32_array();
        let _ = Decoder::new(&bytes).fixed::<64>();
        let mut dec = Decoder::new(&bytes);
        while dec.buffer().is_ok() && dec.uint().is_ok() && dec.bool().is_ok() && !dec.is_empty() {}
        let _ = Manifest::from_bytes(&bytes);
        let _ = MultiSignature::from_bytes(&bytes);
        let _ = MultiSignatureV0::from_bytes(&bytes);
        let _ = Node::from_bytes(&bytes);
    }

    #[test]
    fn decoded_manifests_re_encode_identically(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        // Whatever decodes must encode back to the bytes it was read from, unless the v0
        // form is lossy (a decoded v0 manifest never is: it came from one of the three forms).
        let mut dec = Decoder::new(&bytes);
        if let Ok(m) = dec.decode::<Manifest>() {
            let used = dec.position();
            prop_assert_eq!(m.encoded_len(), m.to_bytes().len());
            // Non-minimal varints in the input re-encode shorter; compare semantically.
            prop_assert_eq!(Manifest::from_bytes(&m.to_bytes()), Ok(m));
            prop_assert!(used <= bytes.len());
        }
    }

    #[test]
    fn v1_manifests_round_trip(m in manifest_v1()) {
        let bytes = m.to_bytes();
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert_eq!(Manifest::from_bytes(&bytes), Ok(m));
    }

    #[test]
    fn signatures_verify_and_flipped_bits_fail(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..100), bit in 0usize..512) {
        let kp = KeyPair::from_seed(&Seed(seed));
        let sig = kp.sign(&msg);
        let pk = kp.public_key();
        prop_assert!(pk.verify(&msg, sig.as_bytes()).is_ok());

        let mut bad = *sig.as_bytes();
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(pk.verify(&msg, &bad).is_err());

        if !msg.is_empty() {
            let mut bad_msg = msg;
            let i = bit % bad_msg.len();
            bad_msg[i] ^= 1 << (bit % 8);
            prop_assert!(pk.verify(&bad_msg, sig.as_bytes()).is_err());
        }
    }

    #[test]
    fn key_formats_round_trip(bytes in any::<[u8; 32]>()) {
        let key = Key(bytes);
        prop_assert_eq!(parse_key(&key.id()), Ok(key));
        prop_assert_eq!(parse_key(&key.to_hex()), Ok(key));
        prop_assert_eq!(parse_key(&key.to_hex().to_uppercase()), Ok(key));
        prop_assert_eq!(parse_key(&format!("pear://{}/x", key.id())), Ok(key));
        prop_assert_eq!(Key::from_hex(&key.to_string()), Ok(key));
    }

    #[test]
    fn z32_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        prop_assert_eq!(z32_decode(&z32_encode(&bytes)), Ok(bytes));
    }

    #[test]
    fn parse_key_never_panics(s in "\\PC{0,70}") {
        let _ = parse_key(&s);
        let _ = z32_decode(&s);
        let _ = Key::from_hex(&s);
    }
}
