//! Unit tests for manifests, with the spec §11 vectors.

use super::*;

fn pk() -> PublicKey {
    PublicKey::from_hex("37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b").unwrap()
}

fn roundtrip(m: &Manifest) -> Vec<u8> {
    let bytes = m.to_bytes();
    assert_eq!(bytes.len(), m.encoded_len(), "{m:?}");
    let back = Manifest::decode_bytes(&bytes).unwrap();
    assert_eq!(&back, m);
    bytes
}

#[test]
fn default_v1_manifest_vector() {
    let m = Manifest::default_signer(pk());
    let bytes = roundtrip(&m);
    assert_eq!(
        hex::encode(&bytes),
        format!(
            "010000010100{}{}",
            hex::encode(HYPERCORE_DEFAULT_NAMESPACE),
            pk()
        )
    );
    assert_eq!(
        m.hash().to_string(),
        "8c7d10e2614b9f937e1583a9a2ed0201a5c3f3e4c21830a7ea722dad1ca303e5"
    );
    assert_eq!(core_key(&m, false).unwrap(), Key::from(m.hash()));
    assert_eq!(core_key(&m, true).unwrap(), Key::from(pk()));
}

#[test]
fn single_signer_v0_manifest_vector() {
    let m = Manifest::single_signer_v0(pk());
    let bytes = roundtrip(&m);
    assert_eq!(
        hex::encode(&bytes),
        format!(
            "00000100{}{}",
            hex::encode(HYPERCORE_DEFAULT_NAMESPACE),
            pk()
        )
    );
    assert_eq!(
        m.hash().to_string(),
        "f3edb8be848503d753d3ff314aa96055d101ae5a3d4dd1c8f92f4c2c0c989a9c"
    );
}

#[test]
fn compat_detection() {
    let m = Manifest::default_signer(pk());
    assert!(is_compat(&Key::from(pk()), &m));
    assert!(!is_compat(&Key::from(m.hash()), &m));
    let two = Manifest::new(ManifestVersion::V1, vec![Signer::new(pk()); 2]);
    assert!(!is_compat(&Key::from(pk()), &two));
    let none = Manifest::new(ManifestVersion::V1, vec![]);
    assert!(matches!(
        core_key(&none, true),
        Err(Error::InvalidManifest(_))
    ));
    assert_eq!(none.quorum, 0);
}

#[test]
fn every_form_round_trips() {
    let other = PublicKey([9; 32]);
    let prologue = Some(Prologue {
        hash: Hash([3; 32]),
        length: 70000,
    });
    let multi = vec![
        Signer::new(pk()),
        Signer {
            namespace: [1; 32],
            public_key: other,
        },
    ];
    let cases = [
        Manifest {
            prologue,
            ..Manifest::new(ManifestVersion::V1, multi.clone())
        },
        Manifest {
            allow_patch: true,
            quorum: 1,
            ..Manifest::new(ManifestVersion::V1, multi.clone())
        },
        Manifest::new(ManifestVersion::V0, multi.clone()),
        Manifest {
            allow_patch: true,
            ..Manifest::new(ManifestVersion::V0, vec![Signer::new(pk())])
        },
        Manifest {
            quorum: 0,
            ..Manifest::new(ManifestVersion::V0, vec![Signer::new(pk())])
        },
        Manifest {
            prologue: Some(Prologue {
                hash: Hash([3; 32]),
                length: 0,
            }),
            ..Manifest::new(ManifestVersion::V0, vec![])
        },
        Manifest {
            prologue,
            ..Manifest::new(ManifestVersion::V1, vec![])
        },
    ];
    for m in &cases {
        roundtrip(m);
    }
    assert_eq!(Manifest::new(ManifestVersion::V0, multi).quorum, 2);
}

#[test]
fn v0_drops_what_it_cannot_represent_like_js() {
    // A v0 static core keeps only the prologue hash.
    let m = Manifest {
        prologue: Some(Prologue {
            hash: Hash([3; 32]),
            length: 5,
        }),
        ..Manifest::new(ManifestVersion::V0, vec![])
    };
    let bytes = m.to_bytes();
    assert_eq!(bytes.len(), m.encoded_len());
    assert_eq!(hex::encode(&bytes[..3]), "000000");
    let back = Manifest::decode_bytes(&bytes).unwrap();
    assert_eq!(back.prologue.map(|p| p.length), Some(0));
    // A v0 manifest with signers drops its prologue.
    let m = Manifest {
        prologue: Some(Prologue {
            hash: Hash([3; 32]),
            length: 5,
        }),
        ..Manifest::single_signer_v0(pk())
    };
    assert_eq!(m.to_bytes(), Manifest::single_signer_v0(pk()).to_bytes());
}

#[test]
fn decoding_rejects_unknown_values() {
    let cases: &[(&str, DecodeError)] = &[
        (
            "02",
            DecodeError::UnknownValue {
                what: "manifest version",
                value: 2,
            },
        ),
        (
            "0001",
            DecodeError::UnknownValue {
                what: "manifest hash type",
                value: 1,
            },
        ),
        (
            "000003",
            DecodeError::UnknownValue {
                what: "manifest type",
                value: 3,
            },
        ),
        (
            "01000100",
            DecodeError::UnknownValue {
                what: "manifest hash type",
                value: 1,
            },
        ),
        (
            "00000101",
            DecodeError::UnknownValue {
                what: "signature type",
                value: 1,
            },
        ),
    ];
    for (hex_in, err) in cases {
        assert_eq!(
            Manifest::decode_bytes(&hex::decode(hex_in).unwrap()).as_ref(),
            Err(err),
            "{hex_in}"
        );
    }
    let good = Manifest::default_signer(pk()).to_bytes();
    for cut in 0..good.len() {
        assert!(matches!(
            Manifest::decode_bytes(&good[..cut]),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }
    // Trailing bytes are ignored, as in JavaScript.
    let mut longer = good;
    longer.push(0xaa);
    assert_eq!(
        Manifest::decode_bytes(&longer).unwrap(),
        Manifest::default_signer(pk())
    );
}
