//! Spec examples, round trips for every message, and no panics on arbitrary bytes.

use proptest::prelude::*;

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn roundtrip_hex(m: &Message, hex: &str) {
    assert_eq!(m.encode(), h(hex), "{m:?}");
    assert_eq!(&Message::decode(m.message_type(), &h(hex)).unwrap(), m);
}

#[test]
fn spec_encoding_examples() {
    let mut hs = Vec::new();
    Handshake {
        seeks: true,
        capability: [0xaa; 32],
    }
    .encode(&mut hs);
    assert_eq!(hs, [&[1u8][..], &[0xaa; 32]].concat());
    assert_eq!(Handshake::decode(&hs).unwrap().capability, [0xaa; 32]);

    let sync = Sync {
        fork: 1,
        length: 300,
        remote_length: 70000,
        can_upgrade: true,
        uploading: true,
        has_manifest: true,
        ..Sync::default()
    };
    roundtrip_hex(&Message::Sync(sync), "0b 01 fd2c01 fe70110100");
    let req = Request {
        id: 5,
        fork: 0,
        block: Some(RequestBlock {
            index: 10,
            nodes: 2,
        }),
        hash: None,
        seek: Some(RequestSeek {
            bytes: 1000,
            padding: 8,
        }),
        upgrade: Some(RequestUpgrade {
            start: 3,
            length: 8,
        }),
        manifest: true,
        priority: 2,
    };
    roundtrip_hex(&Message::Request(req), "3d 05 00 0a 02 fde803 08 03 08 02");
    roundtrip_hex(
        &Message::Want(Want {
            start: 0,
            length: 2_097_152,
            any: false,
        }),
        "00 fe00002000",
    );
    roundtrip_hex(
        &Message::Range(Range {
            drop: true,
            start: 7,
            length: 1,
        }),
        "03 07",
    );
    roundtrip_hex(
        &Message::Range(Range {
            drop: false,
            start: 0,
            length: 1000,
        }),
        "00 00 fde803",
    );
    roundtrip_hex(
        &Message::Bitfield(Bitfield {
            start: 0,
            bitfield: vec![0x1f, 0x8000_0000],
        }),
        "00 02 1f000000 00000080",
    );
    roundtrip_hex(
        &Message::Extension(Extension {
            name: "ext".into(),
            message: b"hi".to_vec(),
        }),
        "03 657874 6869",
    );
    // hypercore 11 trailers.
    roundtrip_hex(
        &Message::NoData(NoData {
            request: 4,
            reason: None,
        }),
        "04",
    );
    roundtrip_hex(
        &Message::NoData(NoData {
            request: 4,
            reason: Some(0),
        }),
        "04 00",
    );
    roundtrip_hex(
        &Message::NoData(NoData {
            request: 4,
            reason: Some(2),
        }),
        "04 01 02",
    );
    roundtrip_hex(
        &Message::Unwant(Want {
            start: 1,
            length: 2,
            any: true,
        }),
        "01 02 01",
    );
}

#[test]
fn trailing_bytes_and_unknown_flags_are_ignored() {
    let m = Message::decode(0, &h("7f 00 03 00 aabbcc")).unwrap();
    let Message::Sync(s) = m else { panic!() };
    assert!(s.can_upgrade && s.allow_push && s.length == 3);
    assert_eq!(Message::decode(2, &h("05 99")).unwrap(), Message::Cancel(5));
    assert_eq!(Message::decode(10, &[]), Err(DecodeError::UnknownType(10)));
}

#[test]
fn default_manifest_vector() {
    let pk = h("37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b");
    let ns = h("4144eea531e483d54e0c14f4ca68e0644f355343ff6fcb0f005200e12cd747cb");
    let m = Manifest {
        version: 1,
        quorum: 1,
        signers: vec![Signer {
            namespace: ns.clone().try_into().unwrap(),
            public_key: pk.clone().try_into().unwrap(),
        }],
        ..Manifest::default()
    };
    let mut o = Vec::new();
    m.encode(&mut o);
    assert_eq!(o, [h("010000010100"), ns.clone(), pk.clone()].concat());
    assert_eq!(Manifest::decode(&mut Reader::new(&o)).unwrap(), m);
    let v0 = Manifest { version: 0, ..m };
    let mut o = Vec::new();
    v0.encode(&mut o);
    assert_eq!(o, [h("00000100"), ns, pk].concat());
    assert_eq!(Manifest::decode(&mut Reader::new(&o)).unwrap(), v0);
}

#[test]
fn counts_bounded_before_allocation() {
    // A bitfield announcing 2^20 words in a 5-byte message.
    let e = Message::decode(7, &h("00 fe00001000")).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooLarge {
            limit: limits::MAX_BITFIELD_WORDS,
            got: 0x10_0000
        }
    );
    // A data block claiming a 1 GiB value.
    let e = Message::decode(3, &h("01 01 00 00 fe00000040")).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }));
    // Proof node count larger than the input can hold.
    assert_eq!(
        Message::decode(3, &h("02 01 00 00 05")),
        Err(DecodeError::UnexpectedEnd)
    );
}

fn safe() -> impl Strategy<Value = u64> {
    0..=crate::codec::MAX_SAFE_INTEGER
}

fn node() -> impl Strategy<Value = Node> {
    (safe(), safe(), any::<[u8; 32]>()).prop_map(|(index, size, hash)| Node { index, size, hash })
}

fn nodes() -> impl Strategy<Value = Vec<Node>> {
    prop::collection::vec(node(), 0..4)
}

fn manifest() -> impl Strategy<Value = Manifest> {
    let signer =
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(namespace, public_key)| Signer {
            namespace,
            public_key,
        });
    (
        1u64..=3,
        any::<bool>(),
        safe(),
        prop::collection::vec(signer, 0..3),
        prop::option::of(
            (any::<[u8; 32]>(), safe()).prop_map(|(hash, length)| Prologue { hash, length }),
        ),
        prop::option::of(prop::collection::vec(any::<[u8; 32]>(), 0..3)),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..8)),
    )
        .prop_map(
            |(version, allow_patch, quorum, signers, prologue, linked, user_data)| Manifest {
                version,
                allow_patch,
                quorum,
                signers,
                prologue,
                linked,
                user_data,
            },
        )
}

fn data() -> impl Strategy<Value = Data> {
    (
        safe(),
        safe(),
        prop::option::of(
            (safe(), prop::collection::vec(any::<u8>(), 0..40), nodes()).prop_map(
                |(index, value, nodes)| DataBlock {
                    index,
                    value: value.into(),
                    nodes,
                },
            ),
        ),
        prop::option::of((safe(), nodes()).prop_map(|(index, nodes)| DataHash { index, nodes })),
        prop::option::of((safe(), nodes()).prop_map(|(bytes, nodes)| DataSeek { bytes, nodes })),
        prop::option::of(
            (
                safe(),
                safe(),
                nodes(),
                nodes(),
                prop::collection::vec(any::<u8>(), 0..70),
            )
                .prop_map(|(start, length, nodes, additional_nodes, signature)| {
                    DataUpgrade {
                        start,
                        length,
                        nodes,
                        additional_nodes,
                        signature,
                    }
                }),
        ),
        prop::option::of(manifest()),
    )
        .prop_map(
            |(request, fork, block, hash, seek, upgrade, manifest)| Data {
                request,
                fork,
                block,
                hash,
                seek,
                upgrade,
                manifest,
            },
        )
}

fn pair() -> impl Strategy<Value = (u64, u64)> {
    (safe(), safe())
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (any::<[bool; 5]>(), (safe(), safe(), safe())).prop_map(
            |(f, (fork, length, remote_length))| {
                Message::Sync(Sync {
                    fork,
                    length,
                    remote_length,
                    can_upgrade: f[0],
                    uploading: f[1],
                    downloading: f[2],
                    has_manifest: f[3],
                    allow_push: f[4],
                })
            }
        ),
        (
            pair(),
            prop::option::of(pair()),
            prop::option::of(pair()),
            prop::option::of(pair()),
            prop::option::of(pair()),
            any::<bool>(),
            safe()
        )
            .prop_map(
                |((id, fork), b, hs, s, u, manifest, priority)| Message::Request(Request {
                    id,
                    fork,
                    block: b.map(|(index, nodes)| RequestBlock { index, nodes }),
                    hash: hs.map(|(index, nodes)| RequestBlock { index, nodes }),
                    seek: s.map(|(bytes, padding)| RequestSeek { bytes, padding }),
                    upgrade: u.map(|(start, length)| RequestUpgrade { start, length }),
                    manifest,
                    priority,
                })
            ),
        safe().prop_map(Message::Cancel),
        data().prop_map(|d| Message::Data(Box::new(d))),
        (safe(), prop::option::of(safe()))
            .prop_map(|(request, reason)| Message::NoData(NoData { request, reason })),
        (pair(), any::<bool>()).prop_map(|((start, length), any)| Message::Want(Want {
            start,
            length,
            any
        })),
        (pair(), any::<bool>()).prop_map(|((start, length), any)| Message::Unwant(Want {
            start,
            length,
            any
        })),
        (safe(), prop::collection::vec(any::<u32>(), 0..8))
            .prop_map(|(start, bitfield)| Message::Bitfield(Bitfield { start, bitfield })),
        (any::<bool>(), pair()).prop_map(|(drop, (start, length))| Message::Range(Range {
            drop,
            start,
            length
        })),
        (".{0,8}", prop::collection::vec(any::<u8>(), 0..16))
            .prop_map(|(name, message)| Message::Extension(Extension { name, message })),
    ]
}

proptest! {
    #[test]
    fn every_message_round_trips(m in message()) {
        let bytes = m.encode();
        // The block value is found without decoding the rest.
        if let Message::Data(d) = &m {
            prop_assert_eq!(
                data_block_value(&bytes),
                d.block.as_ref().map(|b| &b.value[..])
            );
        }
        let back = Message::decode(m.message_type(), &bytes).unwrap();
        // NoData with a zero reason behind a set flag re-encodes as "no reason".
        prop_assert_eq!(&back.encode(), &bytes);
        if !matches!(m, Message::NoData(_)) {
            prop_assert_eq!(&back, &m);
        }
        // Encoding after other bytes appends the same bytes; a data message without a
        // manifest fits the room reserved for it.
        let mut out = b"xy".to_vec();
        m.encode_into(&mut out);
        prop_assert_eq!(&out[2..], &bytes[..]);
        if let Message::Data(d) = &m
            && d.manifest.is_none()
        {
            prop_assert_eq!(m.encoded_len(), Some(bytes.len()));
        } else {
            prop_assert_eq!(m.encoded_len(), None);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(t in 0u64..12, bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(m) = Message::decode(t, &bytes) {
            let _ = m.encode();
        }
        let _ = Handshake::decode(&bytes);
        let _ = Manifest::decode(&mut Reader::new(&bytes));
    }
}

#[test]
fn capability_vector_and_namespaces() {
    let hh: [u8; 64] = h(
        "abcdec75be273c747e7e1d08ef99b33cf13006a8b585ab25ffce3e0be1ca6eb7\
                          be8424d1f3e6d6c9f7e20059d12a36aae23e9e9984c05bef8dbfdf6a4622258e",
    )
    .try_into()
    .unwrap();
    let key: [u8; 32] = h("37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b")
        .try_into()
        .unwrap();
    assert_eq!(
        hex::encode(capability(&hh, true, &key)),
        "14c58da14825e9b10f6a5bfc4e447331c29a2215557f458dac9b428b2bcf2a3d"
    );
    assert_eq!(
        hex::encode(capability(&hh, false, &key)),
        "f2e4d9d18931507291f3c0d88e066eb3c3702fde11eec13bd280d12966c7f270"
    );
    let base = blake2b_simd::Params::new()
        .hash_length(32)
        .hash(b"hypercore");
    for (i, ns) in [(1u8, REPLICATE_INITIATOR), (2, REPLICATE_RESPONDER)] {
        let input = [base.as_bytes(), &[i]].concat();
        assert_eq!(
            blake2b_simd::Params::new()
                .hash_length(32)
                .hash(&input)
                .as_bytes(),
            ns
        );
    }
}

fn keys_manifest() -> impl Strategy<Value = corestore_keys::Manifest> {
    use corestore_keys::{Hash, ManifestVersion, PublicKey};
    let signer =
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(namespace, pk)| corestore_keys::Signer {
            namespace,
            public_key: PublicKey(pk),
        });
    (
        prop_oneof![Just(ManifestVersion::V0), Just(ManifestVersion::V1)],
        any::<bool>(),
        prop_oneof![Just(1), safe()],
        prop::collection::vec(signer, 0..3),
        prop::option::of((any::<[u8; 32]>(), safe()).prop_map(|(hash, length)| {
            corestore_keys::Prologue {
                hash: Hash(hash),
                length,
            }
        })),
    )
        .prop_map(|(version, allow_patch, quorum, signers, prologue)| {
            corestore_keys::Manifest {
                version,
                allow_patch,
                quorum,
                signers,
                prologue,
            }
        })
}

proptest! {
    /// For every manifest both crates represent (versions 0 and 1 without hypercore 11
    /// fields), the wire codec and `corestore-keys` write and accept the same bytes.
    #[test]
    fn manifest_codec_agrees_with_corestore_keys(m in keys_manifest()) {
        use corestore_keys::compact::Encode as _;
        let bytes = m.to_bytes();
        let mut ours = Vec::new();
        Manifest::from(&m).encode(&mut ours);
        prop_assert_eq!(&ours, &bytes);
        let back = Manifest::decode(&mut Reader::new(&bytes)).unwrap();
        prop_assert_eq!(
            corestore_keys::Manifest::try_from(&back).unwrap(),
            corestore_keys::Manifest::decode_bytes(&bytes).unwrap()
        );
    }
}

#[test]
fn hypercore_11_manifests_do_not_convert() {
    let v1 = Manifest {
        version: 1,
        quorum: 1,
        ..Manifest::default()
    };
    assert!(corestore_keys::Manifest::try_from(&v1).is_ok());
    for m in [
        Manifest {
            version: 2,
            ..v1.clone()
        },
        Manifest {
            linked: Some(vec![[1; 32]]),
            ..v1.clone()
        },
        Manifest {
            user_data: Some(b"x".to_vec()),
            ..v1.clone()
        },
    ] {
        assert!(matches!(
            corestore_keys::Manifest::try_from(&m),
            Err(corestore_keys::Error::Unsupported(_))
        ));
    }
    // A version-1 manifest may carry `linked` (hypercore 11 reads it from version 1 on).
    let linked = Manifest {
        linked: Some(vec![[2; 32]]),
        ..v1
    };
    let mut bytes = Vec::new();
    linked.encode(&mut bytes);
    assert_eq!(Manifest::decode(&mut Reader::new(&bytes)), Ok(linked));
}

/// Whether `part` lies within `owner`'s memory.
fn within(owner: &Bytes, part: &Bytes) -> bool {
    let (o, p) = (owner.as_ptr() as usize, part.as_ptr() as usize);
    p >= o && p + part.len() <= o + owner.len()
}

#[test]
fn decode_shared_slices_the_block_value_out_of_its_owner() {
    let m = Message::Data(Box::new(Data {
        request: 1,
        block: Some(DataBlock {
            index: 3,
            value: Bytes::from_static(b"hello block"),
            nodes: vec![],
        }),
        ..Data::default()
    }));
    let owner = Bytes::from(m.encode());
    let Message::Data(d) = Message::decode_shared(3, &owner, &owner).unwrap() else {
        panic!("not data");
    };
    let value = d.block.unwrap().value;
    assert_eq!(value, &b"hello block"[..]);
    assert!(within(&owner, &value), "the value is a slice of the frame");
    // Bytes that are not the owner's are copied (and decode the same).
    let elsewhere = owner.to_vec();
    let Message::Data(d) = Message::decode_shared(3, &elsewhere, &owner).unwrap() else {
        panic!("not data");
    };
    let value = d.block.unwrap().value;
    assert_eq!(value, &b"hello block"[..]);
    assert!(!within(&owner, &value));
    assert_eq!(
        Message::decode(3, &owner).unwrap(),
        Message::decode_shared(3, &owner, &owner).unwrap()
    );
}
