//! Unit tests for signables, signature containers and the verifier (spec §4.4, §11).

use super::*;
use crate::corestore::{Namespace, PrimaryKey, named_key_pair};
use crate::manifest::{ManifestVersion, Prologue};
use crate::sign::Seed;

fn test_key_pair() -> KeyPair {
    named_key_pair(
        &PrimaryKey::from_bytes([0x11; 32]),
        &Namespace::DEFAULT,
        "test",
    )
}

fn head3() -> TreeHead {
    TreeHead {
        hash: Hash::from_hex("45f511522f3ccc90b4b76f89a9ee1ac039febd894778b3e9b06aefe521c52265")
            .unwrap(),
        length: 3,
        fork: 0,
    }
}

const SPEC_SIGNATURE: &str = "8f70d7aa071148dcd15aa6038a83581aef813b3220a080cbb407e8eb37ef6826\
                              4ec8a075adff3fa581714893ba27358cef2447b31c4738f5378de2b31f07fa03";

#[test]
fn compat_signable_and_signature_vector() {
    let head = head3();
    let signable = head.signable_compat();
    assert_eq!(
        hex::encode(signable),
        format!(
            "{}{}{}{}",
            hex::encode(TREE),
            head.hash,
            "0300000000000000",
            "0000000000000000"
        )
    );
    let kp = test_key_pair();
    assert_eq!(hex::encode(kp.sign(&signable).0), SPEC_SIGNATURE);

    let verifier = Verifier::compat(kp.public_key());
    assert!(verifier.is_compat());
    let sig = verifier.sign(&head, &kp).unwrap();
    assert_eq!(hex::encode(&sig), SPEC_SIGNATURE);
    verifier.verify(&head, &sig).unwrap();

    // A cs6 core stores the *v1* default manifest but stays compat (key = public key).
    let key = Key::from(kp.public_key());
    let m = Manifest::default_signer(kp.public_key());
    assert_eq!(m.sign(&key, &head, &kp).unwrap(), sig);
    m.verify(&key, &head, &sig).unwrap();
}

#[test]
fn signable_layouts() {
    let head = TreeHead {
        hash: Hash([7; 32]),
        length: 0x0102,
        fork: 0x0304,
    };
    assert_eq!(head.signable_legacy()[32..40], 0x0102u64.to_le_bytes());
    assert_eq!(head.signable_legacy()[40..], 0x0304u64.to_le_bytes());
    let s = head.signable(&[9; 32]);
    assert_eq!(s[..32], TREE);
    assert_eq!(s[32..64], [9; 32]);
    assert_eq!(s[64..], head.signable_legacy());
}

#[test]
fn legacy_compat_signs_48_bytes() {
    let kp = test_key_pair();
    let v = Verifier::compat(kp.public_key()).with_legacy(true);
    let sig = v.sign(&head3(), &kp).unwrap();
    kp.public_key()
        .verify(&head3().signable_legacy(), &sig)
        .unwrap();
    v.verify(&head3(), &sig).unwrap();
    assert!(
        Verifier::compat(kp.public_key())
            .verify(&head3(), &sig)
            .is_err()
    );
}

#[test]
fn v1_single_signer_uses_a_container() {
    let kp = test_key_pair();
    let m = Manifest::default_signer(kp.public_key());
    let key = Key::from(m.hash());
    let v = Verifier::new(key, m).unwrap();
    assert!(!v.is_compat());
    let sig = v.sign(&head3(), &kp).unwrap();
    assert_eq!(sig.len(), 68);
    assert_eq!(sig[..2], [1, 0]);
    assert_eq!(sig[66..], [0, 0]);
    let raw = &sig[2..66];
    kp.public_key()
        .verify(&head3().signable(key.as_bytes()), raw)
        .unwrap();
    v.verify(&head3(), &sig).unwrap();
    // A raw signature is not a container.
    assert!(v.verify(&head3(), raw).is_err());
    // Another head does not verify.
    let other = TreeHead { fork: 1, ..head3() };
    assert!(matches!(v.verify(&other, &sig), Err(Error::BadSignature)));
}

#[test]
fn v0_single_signer_signs_with_its_namespace() {
    let kp = test_key_pair();
    let m = Manifest::single_signer_v0(kp.public_key());
    let key = Key::from(m.hash());
    let sig = m.sign(&key, &head3(), &kp).unwrap();
    assert_eq!(sig.len(), 64);
    kp.public_key()
        .verify(&head3().signable(&m.signers[0].namespace), &sig)
        .unwrap();
    m.verify(&key, &head3(), &sig).unwrap();
}

fn seeded(n: u8) -> KeyPair {
    KeyPair::from_seed(&Seed([n; 32]))
}

#[test]
fn v1_quorum_two_of_three() {
    let kps = [seeded(1), seeded(2), seeded(3)];
    let m = Manifest::new(
        ManifestVersion::V1,
        kps.iter().map(|k| Signer::new(k.public_key())).collect(),
    );
    assert_eq!(m.quorum, 2);
    let key = Key::from(m.hash());
    let v = Verifier::new(key, m).unwrap();
    let partial = |i: usize| Signature::from_slice(&v.sign(&head3(), &kps[i]).unwrap()).unwrap();
    let container = |entries: &[(u64, usize)]| {
        MultiSignature {
            proofs: entries
                .iter()
                .map(|&(signer, kp)| SignerProof {
                    signer,
                    signature: partial(kp),
                    patch: 0,
                })
                .collect(),
            patch: vec![],
        }
        .to_bytes()
    };
    v.verify(&head3(), &container(&[(0, 0), (2, 2)])).unwrap();
    v.verify(&head3(), &container(&[(2, 2), (1, 1), (9, 0)]))
        .unwrap();
    for bad in [
        container(&[(0, 0)]),         // below quorum
        container(&[(0, 0), (0, 0)]), // same signer twice
        container(&[(0, 0), (1, 2)]), // wrong signature for signer 1
        container(&[(0, 0), (5, 1)]), // signer index out of range
    ] {
        assert!(matches!(v.verify(&head3(), &bad), Err(Error::BadSignature)));
    }
    // A patch without allow_patch is ignored (as in JavaScript) ...
    let mut patched = MultiSignature::from_bytes(&container(&[(0, 0), (1, 1)])).unwrap();
    patched.proofs[0].patch = 2;
    v.verify(&head3(), &patched.to_bytes()).unwrap();
    // ... and unsupported with it.
    let mut m = v.manifest().clone();
    m.allow_patch = true;
    let v = Verifier::new(Key::from(m.hash()), m).unwrap();
    assert!(matches!(
        v.verify(&head3(), &patched.to_bytes()),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn v0_multi_signer_container() {
    let kps = [seeded(4), seeded(5)];
    let m = Manifest::new(
        ManifestVersion::V0,
        kps.iter().map(|k| Signer::new(k.public_key())).collect(),
    );
    let key = Key::from(m.hash());
    let container = MultiSignatureV0 {
        proofs: kps
            .iter()
            .enumerate()
            .map(|(i, kp)| SignerProofV0 {
                signer: i as u64,
                signature: Signature::from_slice(&m.sign(&key, &head3(), kp).unwrap()).unwrap(),
                patch: None,
            })
            .collect(),
        patch: vec![],
    };
    let bytes = container.to_bytes();
    assert_eq!(bytes.len(), container.encoded_len());
    assert_eq!(MultiSignatureV0::from_bytes(&bytes).unwrap(), container);
    m.verify(&key, &head3(), &bytes).unwrap();
    assert!(m.verify(&key, &head3(), &bytes[..bytes.len() - 1]).is_err());
}

#[test]
fn prologue_lengths_need_no_signature() {
    let kp = test_key_pair();
    let m = Manifest {
        prologue: Some(Prologue {
            hash: head3().hash,
            length: 3,
        }),
        ..Manifest::default_signer(kp.public_key())
    };
    let key = Key::from(m.hash());
    m.verify(&key, &head3(), &[]).unwrap();
    let shorter = TreeHead {
        length: 2,
        ..head3()
    };
    assert!(matches!(
        m.verify(&key, &shorter, &[]),
        Err(Error::BadSignature)
    ));
    let wrong = TreeHead {
        hash: Hash([0; 32]),
        ..head3()
    };
    assert!(m.verify(&key, &wrong, &[]).is_err());
    let longer = TreeHead {
        length: 4,
        ..head3()
    };
    let sig = m.sign(&key, &longer, &kp).unwrap();
    m.verify(&key, &longer, &sig).unwrap();
}

#[test]
fn key_and_signer_checks() {
    let kp = test_key_pair();
    let m = Manifest::default_signer(kp.public_key());
    assert!(matches!(
        Verifier::new(Key([0; 32]), m.clone()),
        Err(Error::ManifestKeyMismatch)
    ));
    let v = Verifier::new(Key::from(m.hash()), m).unwrap();
    assert!(matches!(
        v.sign(&head3(), &seeded(9)),
        Err(Error::NotASigner)
    ));
}

#[test]
fn multisig_container_round_trip_with_nodes() {
    let c = MultiSignature {
        proofs: vec![SignerProof {
            signer: 300,
            signature: Signature([1; 64]),
            patch: 7,
        }],
        patch: vec![Node {
            index: 5,
            size: 70000,
            hash: Hash([2; 32]),
        }],
    };
    let bytes = c.to_bytes();
    assert_eq!(bytes.len(), c.encoded_len());
    assert_eq!(MultiSignature::from_bytes(&bytes).unwrap(), c);
    let v0 = MultiSignatureV0 {
        proofs: vec![SignerProofV0 {
            signer: 1,
            signature: Signature([3; 64]),
            patch: Some(PatchV0 {
                start: 4,
                length: 2,
                nodes: vec![0, 300],
            }),
        }],
        patch: c.patch,
    };
    let bytes = v0.to_bytes();
    assert_eq!(bytes.len(), v0.encoded_len());
    assert_eq!(MultiSignatureV0::from_bytes(&bytes).unwrap(), v0);
}
