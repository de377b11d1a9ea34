//! Local operations: append, get, seek, clear, truncate, user data, snapshots, reopen.

use hypercore_lite::{Core, CoreOptions, CoreStorage, Durability, Error, Manifest, ReadCheck};
use rac_storage::{MemoryProvider, Storage};

use crate::common::{
    INTERESTING_LENGTHS, block, read_all, reopen, small_lengths, test_key_pair, writer,
};

#[test]
fn appends_read_back_at_interesting_lengths() {
    for &length in INTERESTING_LENGTHS {
        let (core, storage) = writer(length);
        assert_eq!(core.length(), length);
        let bytes: u64 = (0..length).map(|i| block(i).len() as u64).sum();
        assert_eq!(core.byte_length(), bytes);
        assert_eq!(core.contiguous_length(), length);
        let probe: Vec<u64> = if length > 100 {
            vec![0, length / 2, length - 1]
        } else {
            (0..length).collect()
        };
        for &i in &probe {
            assert_eq!(core.get(i).unwrap(), block(i), "length {length} block {i}");
        }
        assert!(matches!(core.get(length), Err(Error::OutOfBounds { .. })));
        let hash = core.tree_hash();
        drop(core);
        let again = reopen(&storage);
        assert_eq!(again.length(), length);
        assert_eq!(again.tree_hash(), hash);
        for &i in &probe {
            assert_eq!(again.get(i).unwrap(), block(i));
        }
    }
}

/// Large batches (hashed while written, on two threads) build the same tree as block-by-block
/// appends and read back right after a reopen, for big blocks, small ones and a mix.
#[test]
fn large_batches_match_single_appends() {
    let mixed: Vec<Vec<u8>> = (0..40u64)
        .map(|i| {
            vec![
                i as u8;
                if i % 3 == 0 {
                    40_000
                } else {
                    (i * 97 % 5000) as usize
                }
            ]
        })
        .collect();
    let big: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 64 << 10]).collect();
    let small: Vec<Vec<u8>> = (0..600u64).map(|i| vec![i as u8; 1024]).collect();
    for batch in [mixed, big, small] {
        let storage = CoreStorage::memory();
        let options = CoreOptions::new()
            .key_pair(test_key_pair())
            .read_check(ReadCheck::Always);
        let mut core = Core::open_storage(storage.clone(), options.clone()).unwrap();
        core.append(b"first").unwrap();
        core.append_batch(&batch).unwrap();
        let mut one_by_one = Core::open_storage(
            CoreStorage::memory(),
            CoreOptions::new().key_pair(test_key_pair()),
        )
        .unwrap();
        one_by_one.append(b"first").unwrap();
        for b in &batch {
            one_by_one.append(b).unwrap();
        }
        assert_eq!(core.tree_hash(), one_by_one.tree_hash());
        assert_eq!(core.byte_length(), one_by_one.byte_length());
        core.flush().unwrap();
        drop(core);
        let again = Core::open_storage(storage, options).unwrap();
        for (i, b) in batch.iter().enumerate() {
            assert_eq!(&again.get(i as u64 + 1).unwrap(), b, "block {i}");
        }
    }
}

#[test]
fn close_flushes_so_reopen_has_no_entries() {
    let provider = MemoryProvider::new();
    let mut core = Core::open(&provider, "c/", CoreOptions::new()).unwrap();
    core.append_batch(&[b"a", b"b"]).unwrap();
    core.append(b"more").unwrap();
    core.close().unwrap();
    assert_eq!(provider.get("c/oplog").unwrap().len().unwrap(), 8192);
    let core = Core::open(&provider, "c/", CoreOptions::new()).unwrap();
    assert_eq!(core.length(), 3);
    assert_eq!(core.get(2).unwrap(), b"more");
}

#[test]
fn seek_finds_blocks_and_offsets() {
    let storage = CoreStorage::memory();
    let mut core = Core::open_storage(storage, CoreOptions::new()).unwrap();
    core.append_batch(&[&b"a"[..], b"bb", b"ccc", b"", b"dddd"])
        .unwrap();
    assert_eq!(core.seek(0).unwrap(), (0, 0));
    assert_eq!(core.seek(1).unwrap(), (1, 0));
    assert_eq!(core.seek(2).unwrap(), (1, 1));
    assert_eq!(core.seek(3).unwrap(), (2, 0));
    assert_eq!(core.seek(5).unwrap(), (2, 2));
    assert_eq!(core.seek(6).unwrap(), (4, 0)); // block 3 is empty; the boundary goes to block 4
    assert_eq!(core.seek(7).unwrap(), (4, 1));
    assert_eq!(core.seek(10).unwrap(), (5, 0));
    assert!(matches!(core.seek(11), Err(Error::InvalidArgument(_))));
    for length in small_lengths() {
        let (core, _) = writer(length);
        let mut offset = 0;
        for i in 0..length {
            let size = block(i).len() as u64;
            // Inside a block the answer is unique (boundaries may name an empty block).
            for k in 1..size {
                assert_eq!(
                    core.seek(offset + k).unwrap(),
                    (i, k),
                    "length {length} block {i}"
                );
            }
            offset += size;
        }
    }
}

#[test]
fn truncate_bumps_fork_and_survives_reopen() {
    for length in small_lengths().filter(|&l| l > 0) {
        for to in [0, length / 2, length - 1, length] {
            let (mut core, storage) = writer(length);
            core.truncate(to).unwrap();
            assert_eq!(core.length(), to);
            assert_eq!(core.fork(), 1);
            assert_eq!(core.contiguous_length(), to);
            let bytes: u64 = (0..to).map(|i| block(i).len() as u64).sum();
            assert_eq!(core.byte_length(), bytes);
            if to > 0 {
                assert!(core.signature().is_some());
            }
            core.append(b"after").unwrap();
            let hash = core.tree_hash();
            drop(core);
            let core = reopen(&storage);
            assert_eq!(
                (core.length(), core.fork(), core.tree_hash()),
                (to + 1, 1, hash)
            );
            assert_eq!(core.get(to).unwrap(), b"after");
            for i in 0..to {
                assert_eq!(core.get(i).unwrap(), block(i));
            }
        }
    }
}

#[test]
fn cached_tree_nodes_do_not_survive_truncation() {
    // Read every block (its tree nodes come from the flushed tree file), then truncate and
    // append different blocks on the same open core: no stale node may leak into a read.
    for length in small_lengths().filter(|&l| l > 1) {
        let (mut core, _) = writer(length);
        core.flush().unwrap();
        for i in 0..length {
            assert_eq!(core.get(i).unwrap(), block(i));
        }
        let to = length / 2;
        core.truncate(to).unwrap();
        let other = |i: u64| vec![0xa5; (i % 5 + 1) as usize * 3];
        let fresh: Vec<Vec<u8>> = (to..length + 3).map(other).collect();
        core.append_batch(&fresh).unwrap();
        for round in 0..2 {
            let mut offset = 0;
            for i in 0..core.length() {
                let expected = if i < to { block(i) } else { other(i) };
                assert_eq!(core.get(i).unwrap(), expected, "length {length} block {i}");
                // Inside a block the answer is unique (boundaries may name an empty block).
                for k in 1..expected.len() as u64 {
                    assert_eq!(core.seek(offset + k).unwrap(), (i, k), "length {length}");
                }
                offset += expected.len() as u64;
            }
            assert_eq!(offset, core.byte_length());
            if round == 0 {
                core.flush().unwrap();
            }
        }
    }
}

#[test]
fn truncate_rejects_growth_and_readers() {
    let (mut core, _) = writer(3);
    assert!(matches!(core.truncate(4), Err(Error::InvalidArgument(_))));
    let mut reader = crate::common::reader(&core);
    assert!(matches!(reader.truncate(0), Err(Error::NotWritable)));
    assert!(matches!(reader.append(b"x"), Err(Error::NotWritable)));
}

#[test]
fn clear_drops_local_blocks_but_keeps_the_tree() {
    let (mut core, storage) = writer(20);
    let hash = core.tree_hash();
    core.clear(3, 7).unwrap();
    assert_eq!(core.length(), 20);
    assert_eq!(core.tree_hash(), hash);
    assert_eq!(core.contiguous_length(), 3);
    for i in 3..7 {
        assert!(!core.has(i));
        assert!(matches!(core.get(i), Err(Error::BlockNotAvailable { index }) if index == i));
    }
    assert_eq!(core.get(7).unwrap(), block(7));
    assert_eq!(core.get(2).unwrap(), block(2));
    // The cleared bytes are zeroed in the data file.
    let data = read_all(&storage.data);
    let start: usize = (0..3).map(|i| block(i).len()).sum();
    let end: usize = (0..7).map(|i| block(i).len()).sum();
    assert!(data[start..end].iter().all(|&b| b == 0));
    drop(core);
    let core = reopen(&storage);
    assert!(!core.has(4));
    assert_eq!(core.get(8).unwrap(), block(8));
    // Clearing the tail and proving the blocks still works for the rest.
    let mut core = core;
    core.clear(10, 100).unwrap();
    assert_eq!(core.get(9).unwrap(), block(9));
    assert!(!core.has(19));
}

#[test]
fn user_data_set_delete_and_persist() {
    let storage = CoreStorage::memory();
    let mut core = Core::open_storage(storage.clone(), CoreOptions::new()).unwrap();
    core.set_user_data("corestore/name", b"test").unwrap();
    core.set_user_data("other", b"1").unwrap();
    core.set_user_data("other", b"2").unwrap();
    core.delete_user_data("missing").unwrap();
    assert_eq!(core.user_data("other"), Some(&b"2"[..]));
    drop(core);
    let mut core = reopen(&storage);
    assert_eq!(core.user_data("corestore/name"), Some(&b"test"[..]));
    assert_eq!(core.user_data("other"), Some(&b"2"[..]));
    core.delete_user_data("other").unwrap();
    core.set_user_data("corestore/name", b"").unwrap(); // empty deletes, as in hypercore
    drop(core);
    let core = reopen(&storage);
    assert_eq!(core.user_data_entries().count(), 0);
}

#[test]
fn big_user_data_moves_the_header_out_of_the_oplog() {
    let storage = CoreStorage::memory();
    let mut core = Core::open_storage(storage.clone(), CoreOptions::new()).unwrap();
    core.append(b"x").unwrap();
    core.set_user_data("big", &[7; 5000]).unwrap();
    core.flush().unwrap();
    assert!(storage.header.len().unwrap() > 5000);
    // It keeps growing and moving as needed.
    core.set_user_data("bigger", &[8; 9000]).unwrap();
    core.flush().unwrap();
    core.append(b"y").unwrap();
    drop(core);
    let core = reopen(&storage);
    assert_eq!(core.user_data("big"), Some(&[7; 5000][..]));
    assert_eq!(core.user_data("bigger"), Some(&[8; 9000][..]));
    assert_eq!(core.length(), 2);
    assert_eq!(core.get(1).unwrap(), b"y");
}

#[test]
fn snapshots_stay_put_and_report_truncation() {
    let (mut core, _) = writer(10);
    let snap = core.snapshot();
    core.append(b"later").unwrap();
    assert_eq!(snap.length(), 10);
    assert_eq!(snap.get(&core, 9).unwrap(), block(9));
    assert!(matches!(
        snap.get(&core, 10),
        Err(Error::OutOfBounds { .. })
    ));
    core.truncate(6).unwrap();
    assert_eq!(snap.get(&core, 5).unwrap(), block(5));
    assert!(matches!(
        snap.get(&core, 6),
        Err(Error::Truncated {
            index: 6,
            ancestors: 6
        })
    ));
    core.append_batch(&[b"n6", b"n7", b"n8"]).unwrap();
    // The block at 7 exists again, but it is not the snapshot's block 7.
    assert!(matches!(snap.get(&core, 7), Err(Error::Truncated { .. })));
    assert!(!snap.has(&core, 7));
    let snap2 = core.snapshot();
    assert_eq!(snap2.get(&core, 7).unwrap(), b"n7");
    let other = Core::open_storage(CoreStorage::memory(), CoreOptions::new()).unwrap();
    assert!(matches!(
        snap.get(&other, 0),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn options_are_checked_against_the_stored_core() {
    let (core, storage) = writer(2);
    let key = *core.key();
    drop(core);
    let mut other = *key.as_bytes();
    other[0] ^= 1;
    assert!(matches!(
        Core::open_storage(storage.clone(), CoreOptions::new().key(other.into())),
        Err(Error::KeyMismatch)
    ));
    assert!(Core::open_storage(storage, CoreOptions::new().key(key)).is_ok());
    assert!(matches!(
        Core::open_storage(CoreStorage::memory(), CoreOptions::new().create(false)),
        Err(Error::NotFound)
    ));
    let kp = test_key_pair();
    assert!(matches!(
        Core::open_storage(
            CoreStorage::memory(),
            CoreOptions::new().key(other.into()).key_pair(kp)
        ),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn manifest_cores_sign_with_the_multisig_container() {
    let kp = test_key_pair();
    let manifest = Manifest::default_signer(kp.public_key());
    let storage = CoreStorage::memory();
    let mut core = Core::open_storage(
        storage.clone(),
        CoreOptions::new().manifest(manifest.clone()).key_pair(kp),
    )
    .unwrap();
    assert!(!core.is_compat());
    assert_eq!(core.key().as_bytes(), manifest.hash().as_bytes());
    assert_eq!(
        core.key().to_string(),
        "8c7d10e2614b9f937e1583a9a2ed0201a5c3f3e4c21830a7ea722dad1ca303e5"
    );
    core.append(b"hello").unwrap();
    let sig = core.signature().unwrap();
    assert_eq!(sig.len(), 68);
    assert_eq!(&sig[..2], &[0x01, 0x00]);
    drop(core);
    let core = reopen(&storage);
    assert!(!core.is_compat());
    assert_eq!(core.get(0).unwrap(), b"hello");
}

#[test]
fn synced_durability_and_provider_names() {
    let provider = MemoryProvider::new();
    let mut core = Core::open(
        &provider,
        "cores/aa/bb/xyz/",
        CoreOptions::new().durability(Durability::Synced),
    )
    .unwrap();
    core.append(b"durable").unwrap();
    core.sync().unwrap();
    assert!(provider.get("cores/aa/bb/xyz/oplog").is_some());
    assert!(provider.get("cores/aa/bb/xyz/data").is_some());
    drop(core);
    let core = Core::open(&provider, "cores/aa/bb/xyz/", CoreOptions::new()).unwrap();
    assert_eq!(core.get(0).unwrap(), b"durable");
}

#[test]
fn public_types_can_cross_threads() {
    fn check<T: Send + Sync>() {}
    check::<Core>();
    check::<hypercore_lite::Proof>();
    check::<hypercore_lite::VerifiedBatch>();
    check::<hypercore_lite::Snapshot>();
    check::<Error>();
}

#[test]
fn empty_batches_and_empty_blocks() {
    let (mut core, _) = writer(0);
    let out = core.append_batch::<&[u8]>(&[]).unwrap();
    assert_eq!(out.length, 0);
    core.append(b"").unwrap();
    core.append(b"").unwrap();
    assert_eq!(core.length(), 2);
    assert_eq!(core.byte_length(), 0);
    assert_eq!(core.get(1).unwrap(), b"");
}

/// A store written by hypercore 10.0–10.20 (version-0 oplog header) opens as a compat core,
/// and is rewritten as version 1 on the first flush, as hypercore 10.21+ does.
#[test]
fn version_0_headers_open_and_upgrade() {
    use corestore_keys::compact::Encoder;
    use corestore_keys::hash::crc32;

    let kp = test_key_pair();
    let mut enc = Encoder::new();
    enc.uint(0)
        .string("blake2b")
        .string("raw")
        .string("ed25519")
        .array(&[("corestore/name", &b"test"[..])], |e, (k, v)| {
            e.string(k).buffer(v);
        })
        .uint(0)
        .uint(0)
        .buffer(&[])
        .buffer(&[])
        .buffer(kp.public_key().as_bytes())
        .buffer(kp.secret_key().as_bytes())
        .uint(0)
        .uint(0);
    let payload = enc.into_vec();
    let word = u32::try_from(payload.len() << 2).unwrap();
    let mut covered = word.to_le_bytes().to_vec();
    covered.extend_from_slice(&payload);
    let mut oplog = crc32(&covered).to_le_bytes().to_vec();
    oplog.extend_from_slice(&covered);
    oplog.resize(8192, 0);

    let storage = CoreStorage::memory();
    storage.oplog.write(0, &oplog).unwrap();
    let mut core = Core::open_storage(storage.clone(), CoreOptions::new()).unwrap();
    assert_eq!(core.key().as_bytes(), kp.public_key().as_bytes());
    assert!(core.is_compat());
    assert!(core.is_writable());
    assert_eq!(
        core.manifest(),
        Some(&Manifest::single_signer_v0(kp.public_key()))
    );
    assert_eq!(core.user_data("corestore/name"), Some(&b"test"[..]));
    core.append(b"v0").unwrap(); // first mutation: flushes a version-1 header
    let bytes = read_all(&storage.oplog);
    assert_eq!(bytes[4096 + 8], 0x01, "slot 1 now holds a version-1 header");
    drop(core);

    let core = reopen(&storage);
    assert_eq!(core.get(0).unwrap(), b"v0");
    assert_eq!(
        core.manifest(),
        Some(&Manifest::single_signer_v0(kp.public_key()))
    );
    let mut r = crate::common::reader(&core);
    crate::common::upgrade(&core, &mut r);
    assert_eq!(r.length(), 1);
}
