//! Proofs built by one core and verified by another: every request shape, tampering, forks.

use hypercore_lite::tree::flat::NodeIndex;
use hypercore_lite::{
    BlockRequest, Core, CoreOptions, CoreStorage, Error, HashRequest, Manifest, Proof, Request,
    SeekRequest, UpgradeRequest, VerifyError,
};

use crate::common::{block, read_all, reader, small_lengths, test_key_pair, upgrade, writer};

/// Everything stored, to check that rejected proofs leave storage unchanged.
fn files(s: &CoreStorage) -> Vec<Vec<u8>> {
    [&s.oplog, &s.tree, &s.bitfield, &s.data, &s.header]
        .iter()
        .map(|f| read_all(f))
        .collect()
}

fn request_block(writer: &Core, reader: &Core, index: u64) -> Request {
    let upgrade = (index >= reader.length()).then(|| UpgradeRequest {
        start: reader.length(),
        length: writer.length() - reader.length(),
    });
    let nodes = if upgrade.is_some() {
        0
    } else {
        reader.missing_nodes(index).unwrap()
    };
    Request {
        fork: writer.fork(),
        block: Some(BlockRequest { index, nodes }),
        upgrade,
        ..Request::default()
    }
}

fn fetch(writer: &Core, reader: &mut Core, index: u64) {
    let req = request_block(writer, reader, index);
    let proof = writer
        .proof(&req)
        .unwrap()
        .expect("the writer has every block");
    let verified = reader.verify(&proof).unwrap();
    let applied = reader.apply(verified).unwrap();
    assert_eq!(applied.block, Some(index));
}

#[test]
fn every_block_from_every_reader_length() {
    for length in small_lengths().filter(|&l| l > 0) {
        let (w, _) = writer(length);
        for start in [0, 1, length / 2, length - 1, length] {
            if start > length {
                continue;
            }
            // A reader at `start` (via a bare upgrade from a writer truncated copy is not needed:
            // an upgrade to `start` of a longer tree is the same tree prefix).
            let mut r = reader(&w);
            if start > 0 {
                let proof = w
                    .proof(&Request {
                        upgrade: Some(UpgradeRequest {
                            start: 0,
                            length: start,
                        }),
                        ..Request::default()
                    })
                    .unwrap()
                    .unwrap();
                let v = r.verify(&proof).unwrap();
                // The signature covers the writer's full length: the reader lands there.
                assert_eq!(v.length(), length);
                r.apply(v).unwrap();
            }
            // Blocks in reverse, so that some requests need nodes and some do not.
            for index in (0..length).rev() {
                fetch(&w, &mut r, index);
                assert_eq!(
                    r.get(index).unwrap(),
                    block(index),
                    "length {length} start {start}"
                );
            }
            assert_eq!(r.length(), length);
            assert_eq!(r.tree_hash(), w.tree_hash());
            assert_eq!(r.contiguous_length(), length);
            // Already-known blocks can be fetched again with nodes = 0.
            fetch(&w, &mut r, 0);
        }
    }
}

#[test]
fn readers_persist_what_they_verified() {
    let (w, _) = writer(17);
    let storage = CoreStorage::memory();
    let mut r = Core::open_storage(storage.clone(), CoreOptions::new().key(*w.key())).unwrap();
    for i in [16, 3, 9] {
        fetch(&w, &mut r, i);
    }
    drop(r);
    let r = Core::open_storage(storage, CoreOptions::new()).unwrap();
    assert_eq!(r.length(), 17);
    assert!(!r.is_writable());
    assert_eq!(r.manifest(), w.manifest());
    for i in [16, 3, 9] {
        assert_eq!(r.get(i).unwrap(), block(i));
    }
    assert!(matches!(
        r.get(4),
        Err(Error::BlockNotAvailable { index: 4 })
    ));
    // A reader can serve the blocks it has to a third core.
    let mut third = reader(&w);
    let proof = r.proof(&request_block(&r, &third, 9)).unwrap().unwrap();
    third.apply(third.verify(&proof).unwrap()).unwrap();
    assert_eq!(third.get(9).unwrap(), block(9));
    // But not the ones it lacks.
    assert_eq!(r.proof(&request_block(&r, &third, 4)).unwrap(), None);
}

#[test]
fn hash_and_seek_requests() {
    let (w, _) = writer(16);
    let mut r = reader(&w);
    upgrade(&w, &mut r);
    // The node covering blocks 4..8 (index 11) and its parent 7 are missing; root 15 is known.
    let nodes = r.missing_nodes(8).unwrap();
    assert_eq!(r.missing_nodes_of(NodeIndex(11)).unwrap(), 2);
    let proof = w
        .proof(&Request {
            hash: Some(HashRequest {
                index: 11,
                nodes: 2,
            }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    assert_eq!(proof.hash.as_ref().unwrap().nodes[0].index, 11);
    r.apply(r.verify(&proof).unwrap()).unwrap();
    assert!(r.missing_nodes(8).unwrap() < nodes);

    // Seek: the block holding byte `target`, with its proof.
    let target = (0..9).map(|i| block(i).len() as u64).sum::<u64>() + 1;
    let proof = w
        .proof(&Request {
            block: Some(BlockRequest {
                index: 9,
                nodes: r.missing_nodes(9).unwrap(),
            }),
            seek: Some(SeekRequest {
                bytes: target,
                padding: 0,
            }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    r.apply(r.verify(&proof).unwrap()).unwrap();
    assert_eq!(r.get(9).unwrap(), block(9));
    assert_eq!(r.seek(target).unwrap(), (9, 1));
}

#[test]
fn tampered_proofs_are_rejected_and_change_nothing() {
    let (w, _) = writer(9);
    let storage = CoreStorage::memory();
    let mut r = Core::open_storage(storage.clone(), CoreOptions::new().key(*w.key())).unwrap();
    fetch(&w, &mut r, 2);
    let before = files(&storage);
    let (length, fork, hash) = (r.length(), r.fork(), r.tree_hash());

    let fresh = |r: &Core, index| w.proof(&request_block(&w, r, index)).unwrap().unwrap();
    let mut rejected: Vec<(&str, Proof)> = Vec::new();

    let mut p = fresh(&r, 5);
    let b = p.block.as_mut().unwrap();
    b.value = [&b.value[..], &[0]].concat().into();
    rejected.push(("value", p));

    let mut p = fresh(&r, 5);
    if let Some(n) = p.block.as_mut().unwrap().nodes.first_mut() {
        n.hash.0[0] ^= 1;
    }
    rejected.push(("node hash", p));

    let mut p = fresh(&r, 5);
    if let Some(n) = p.block.as_mut().unwrap().nodes.first_mut() {
        n.size += 1;
    }
    rejected.push(("node size", p));

    let (w2, _) = writer(12);
    let mut r2 = reader(&w2);
    upgrade(&w2, &mut r2);
    let mut p = w2
        .proof(&Request {
            upgrade: Some(UpgradeRequest {
                start: 9,
                length: 3,
            }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    p.upgrade.as_mut().unwrap().signature[10] ^= 1;
    rejected.push(("signature", p));

    let mut p = fresh(&r, 5);
    p.fork = 3;
    rejected.push(("fork without upgrade", p));

    for (what, p) in rejected {
        let result = r.verify(&p).and_then(|v| r.apply(v));
        assert!(
            matches!(result, Err(Error::Verification(_))),
            "{what}: {result:?}"
        );
        assert_eq!(
            (r.length(), r.fork(), r.tree_hash()),
            (length, fork, hash),
            "{what}"
        );
        assert_eq!(files(&storage), before, "{what}");
    }

    // A valid upgrade signed by a different key pair (another writer with other blocks).
    let mut other = Core::open_storage(CoreStorage::memory(), CoreOptions::new()).unwrap();
    for i in 0..9 {
        other.append(&block(i + 100)).unwrap();
    }
    other.append(b"x").unwrap();
    let r3 = reader(&w);
    let p = other
        .proof(&Request {
            upgrade: Some(UpgradeRequest {
                start: 0,
                length: 10,
            }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    assert!(matches!(
        r3.verify(&p),
        Err(Error::Verification(VerifyError::BadSignature))
    ));
    assert_eq!(r3.length(), 0);
    // A proof from an unrelated core can never anchor in ours.
    let mut p = other
        .proof(&Request {
            block: Some(BlockRequest { index: 2, nodes: 3 }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    p.fork = 0;
    let result = r.verify(&p).and_then(|v| r.apply(v));
    assert!(matches!(result, Err(Error::Verification(_))), "{result:?}");
    assert_eq!(files(&storage), before);
}

#[test]
fn stale_batches_are_refused() {
    let (w, _) = writer(8);
    let mut r = reader(&w);
    let p1 = w.proof(&request_block(&w, &r, 1)).unwrap().unwrap();
    let v1 = r.verify(&p1).unwrap();
    let p2 = w.proof(&request_block(&w, &r, 2)).unwrap().unwrap();
    r.apply(r.verify(&p2).unwrap()).unwrap();
    assert!(matches!(
        r.apply(v1),
        Err(Error::Verification(VerifyError::Stale))
    ));
    // Re-verifying the first proof now fails as stale (the upgrade started at 0).
    assert!(matches!(
        r.verify(&p1),
        Err(Error::Verification(VerifyError::Stale))
    ));
}

#[test]
fn reorg_onto_a_higher_fork() {
    let (mut w, _) = writer(12);
    let storage = CoreStorage::memory();
    let mut r = Core::open_storage(storage.clone(), CoreOptions::new().key(*w.key())).unwrap();
    for i in 0..12 {
        fetch(&w, &mut r, i);
    }
    w.truncate(9).unwrap();
    w.append_batch(&[&b"new9"[..], b"new10"]).unwrap();
    assert_eq!(w.fork(), 1);

    // The reader asks for a fork proof: an upgrade from 0 on the writer's fork.
    let p = w
        .proof(&Request {
            fork: w.fork(),
            upgrade: Some(UpgradeRequest {
                start: 0,
                length: w.length(),
            }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    let v = r.verify(&p).unwrap();
    assert!(v.is_reorg());
    let applied = r.apply(v).unwrap();
    assert_eq!((r.length(), r.fork()), (11, 1));
    assert_eq!(r.tree_hash(), w.tree_hash());
    // Roots of 11 are [7, 17, 20]: block 0..8 sit under root 7, which both forks share.
    assert_eq!(applied.ancestors, Some(8));
    for i in 0..8 {
        assert_eq!(r.get(i).unwrap(), block(i));
    }
    assert!(!r.has(8));
    fetch(&w, &mut r, 9);
    assert_eq!(r.get(9).unwrap(), b"new9");
    fetch(&w, &mut r, 8);
    drop(r);
    let r = Core::open_storage(storage, CoreOptions::new()).unwrap();
    assert_eq!((r.length(), r.fork()), (11, 1));
    assert_eq!(r.get(9).unwrap(), b"new9");
    assert_eq!(r.get(8).unwrap(), block(8));

    // Proofs for an older fork are refused.
    let (old, _) = writer(12);
    let stale = old
        .proof(&Request {
            block: Some(BlockRequest { index: 1, nodes: 0 }),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    assert!(matches!(
        r.verify(&stale),
        Err(Error::Verification(VerifyError::ForkMismatch {
            ours: 1,
            got: 0
        }))
    ));
}

#[test]
fn non_compat_readers_learn_the_manifest() {
    let kp = test_key_pair();
    let manifest = Manifest::single_signer_v0(kp.public_key());
    let mut w = Core::open_storage(
        CoreStorage::memory(),
        CoreOptions::new().manifest(manifest.clone()).key_pair(kp),
    )
    .unwrap();
    assert!(!w.is_compat());
    w.append_batch(&[b"a", b"b", b"c"]).unwrap();
    assert_eq!(
        w.signature().unwrap().len(),
        64,
        "v0 single signer: raw signature"
    );

    let mut r = reader(&w);
    let mut req = request_block(&w, &r, 1);
    // Without the manifest the reader (compat by default) cannot check the upgrade.
    let p = w.proof(&req).unwrap().unwrap();
    assert!(p.manifest.is_none());
    assert!(matches!(r.verify(&p), Err(Error::Verification(_))));
    req.manifest = true;
    let p = w.proof(&req).unwrap().unwrap();
    assert_eq!(p.manifest.as_ref(), Some(&manifest));
    r.apply(r.verify(&p).unwrap()).unwrap();
    assert_eq!(r.manifest(), Some(&manifest));
    assert!(!r.is_compat());
    assert_eq!(r.get(1).unwrap(), b"b");

    // A manifest that does not hash to the key is refused.
    let r2 = reader(&w);
    let mut p = w.proof(&req).unwrap().unwrap();
    p.manifest = Some(Manifest::default_signer(test_key_pair().public_key()));
    assert!(matches!(
        r2.verify(&p),
        Err(Error::Verification(VerifyError::InvalidManifest))
    ));
}

#[test]
fn requests_on_another_fork_or_malformed() {
    let (w, _) = writer(5);
    assert_eq!(
        w.proof(&Request {
            fork: 7,
            block: Some(BlockRequest { index: 1, nodes: 0 }),
            ..Request::default()
        })
        .unwrap(),
        None
    );
    assert!(matches!(
        w.proof(&Request {
            upgrade: Some(UpgradeRequest {
                start: 2,
                length: 9
            }),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
    assert!(matches!(
        w.proof(&Request {
            block: Some(BlockRequest { index: 1, nodes: 9 }),
            ..Request::default()
        }),
        Err(Error::InvalidRequest(_))
    ));
}

/// Readers crossing a bitfield page (32,768 blocks) and the tree shapes around it.
#[test]
fn bitfield_page_boundaries() {
    let (mut w, _) = writer(32766);
    let storage = CoreStorage::memory();
    let mut r = Core::open_storage(storage.clone(), CoreOptions::new().key(*w.key())).unwrap();
    for extra in 0..4u64 {
        let index = 32766 + extra;
        w.append(&block(index)).unwrap();
        fetch(&w, &mut r, index);
        assert_eq!(r.length(), index + 1);
        assert_eq!(r.get(index).unwrap(), block(index));
    }
    fetch(&w, &mut r, 0);
    fetch(&w, &mut r, 32767);
    drop(r);
    let r = Core::open_storage(storage, CoreOptions::new()).unwrap();
    for index in [0, 32766, 32767, 32768, 32769] {
        assert_eq!(r.get(index).unwrap(), block(index));
    }
    assert!(!r.has(1));
    assert_eq!(r.contiguous_length(), 1);
}

#[test]
fn conflict_probes() {
    let (w, _) = writer(10);
    let mut r = reader(&w);
    upgrade(&w, &mut r);
    let probe = |core: &Core, length| {
        core.proof(&Request {
            fork: core.fork(),
            upgrade: Some(UpgradeRequest { start: 0, length }),
            ..Request::default()
        })
        .unwrap()
        .unwrap()
    };
    // Same tree: no conflict, at any probed length.
    assert!(!r.is_conflict(&probe(&w, 10)).unwrap());
    assert!(!r.is_conflict(&probe(&w, 4)).unwrap());
    // The same key pair signing a different history on the same fork is a conflict.
    let storage = CoreStorage::memory();
    let mut evil =
        Core::open_storage(storage, CoreOptions::new().key_pair(test_key_pair())).unwrap();
    for i in 0..10 {
        evil.append(&block(i + 1)).unwrap();
    }
    assert!(r.is_conflict(&probe(&evil, 10)).unwrap());
    // A probe that does not verify is an error.
    let mut bad = probe(&w, 10);
    bad.upgrade.as_mut().unwrap().signature[0] ^= 1;
    assert!(matches!(r.is_conflict(&bad), Err(Error::Verification(_))));
}

#[test]
fn sparse_readers_answer_what_they_can() {
    let (w, _) = writer(10);
    let mut r = reader(&w);
    upgrade(&w, &mut r); // only the roots of 10: [7, 17]
    let third = reader(&w);
    // An upgrade from 4 needs node 11, which the reader never saw: no proof, no error.
    let req = Request {
        upgrade: Some(UpgradeRequest {
            start: 4,
            length: 6,
        }),
        ..Request::default()
    };
    assert_eq!(r.proof(&req).unwrap(), None);
    // From 0 it can: the roots are all it needs.
    let req = Request {
        upgrade: Some(UpgradeRequest {
            start: 0,
            length: 10,
        }),
        ..Request::default()
    };
    let p = r.proof(&req).unwrap().unwrap();
    let mut third = third;
    third.apply(third.verify(&p).unwrap()).unwrap();
    assert_eq!(third.tree_hash(), w.tree_hash());
    assert!(matches!(r.seek(3), Err(Error::BlockNotAvailable { .. })));
    // What `upgradeable` says matches: the reader holds the full roots of 0, 8 (node 7) and
    // 10, not those of 4 (node 3) or 9 (node 16); the writer holds every one; none beyond.
    for (length, expected) in [(0, true), (4, false), (8, true), (9, false), (10, true)] {
        assert_eq!(r.upgradeable(length).unwrap(), expected, "reader, {length}");
        assert!(w.upgradeable(length).unwrap(), "writer, {length}");
    }
    assert!(!w.upgradeable(11).unwrap());
}

/// `verify_many` hashes the blocks of many proofs side by side and otherwise verifies each as
/// `verify_owned` does: the same result in the same slot for good block proofs, an upgrade
/// proof, a hash-only proof and tampered blocks (one of each length class around BLAKE2b's
/// 128-byte block).
#[test]
fn verify_many_gives_what_verify_owned_gives() {
    let (writer, _) = writer(40);
    let mut reader = reader(&writer);
    upgrade(&writer, &mut reader);
    let mut proofs: Vec<Proof> = Vec::new();
    for index in [0, 1, 5, 17, 30, 39] {
        let request = request_block(&writer, &reader, index);
        proofs.push(writer.proof(&request).unwrap().unwrap());
    }
    let hash_only = Request {
        fork: writer.fork(),
        hash: Some(HashRequest {
            index: NodeIndex::leaf(7).get(),
            nodes: reader.missing_nodes(7).unwrap(),
        }),
        ..Request::default()
    };
    proofs.push(writer.proof(&hash_only).unwrap().unwrap());
    let mut tampered = proofs[1].clone();
    if let Some(b) = tampered.block.as_mut() {
        b.value = [&b.value[..], &[0]].concat().into();
    }
    proofs.insert(2, tampered);
    let mut flipped = proofs[4].clone();
    if let Some(b) = flipped.block.as_mut() {
        let mut flipped = b.value.to_vec();
        flipped[0] ^= 1;
        b.value = flipped.into();
    }
    proofs.push(flipped);
    let one_by_one: Vec<_> = proofs
        .iter()
        .map(|p| reader.verify_owned(p.clone()).map_err(|e| e.to_string()))
        .collect();
    let many: Vec<_> = reader
        .verify_many(proofs.clone())
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    assert_eq!(many, one_by_one);
    assert_eq!(many.iter().filter(|r| r.is_err()).count(), 2, "{many:?}");
    assert!(many[2].is_err() && many.last().is_some_and(Result::is_err));
    // With every other block's leaf hash known up front (as the wire layer computes them),
    // the results are the same.
    let hashed: Vec<_> = proofs
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            let known = p
                .block
                .as_ref()
                .filter(|_| i % 2 == 0)
                .map(|b| corestore_keys::hash::leaf(&b.value));
            (p, known)
        })
        .collect();
    let many_hashed: Vec<_> = reader
        .verify_many_hashed(hashed)
        .into_iter()
        .map(|r| r.map_err(|e| e.to_string()))
        .collect();
    assert_eq!(many_hashed, one_by_one);
}
