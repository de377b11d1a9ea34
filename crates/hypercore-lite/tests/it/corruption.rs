//! Damaged files: every truncation and a bit flip in every byte of the oplog, tree, bitfield,
//! data and header files. Opening gives a typed error or a recovered core; reads give the
//! right bytes or a typed error; nothing panics.

use std::sync::Arc;

use hypercore_lite::{Core, CoreOptions, CoreStorage, Error, Key, ReadCheck};
use rac_storage::{MemoryStorage, Storage};

use crate::common::{block, read_all, test_key_pair};

const FILES: [&str; 5] = ["oplog", "tree", "bitfield", "data", "header"];

/// A core with a flushed part and unflushed oplog entries, as raw file contents.
fn damaged_fixture(big_header: bool) -> (Key, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let storage = CoreStorage::memory();
    let mut core = Core::open_storage(
        storage.clone(),
        CoreOptions::new().key_pair(test_key_pair()),
    )
    .unwrap();
    let blocks: Vec<Vec<u8>> = (0..13).map(block).collect();
    core.append_batch(&blocks[..9]).unwrap(); // first mutation: flushed
    if big_header {
        core.set_user_data("big", &[5; 5000]).unwrap();
        core.flush().unwrap();
    }
    core.append(&blocks[9]).unwrap();
    core.append_batch(&blocks[10..]).unwrap();
    core.set_user_data("k", b"v").unwrap();
    let key = *core.key();
    drop(core);
    let files = [
        &storage.oplog,
        &storage.tree,
        &storage.bitfield,
        &storage.data,
        &storage.header,
    ]
    .iter()
    .map(|s| read_all(s))
    .collect();
    (key, files, blocks)
}

fn storage(files: &[Vec<u8>]) -> CoreStorage {
    let m = |b: &Vec<u8>| -> Arc<dyn Storage> { Arc::new(MemoryStorage::from_bytes(b)) };
    CoreStorage {
        oplog: m(&files[0]),
        tree: m(&files[1]),
        bitfield: m(&files[2]),
        data: m(&files[3]),
        header: m(&files[4]),
    }
}

/// Opens damaged files and checks every block; returns whether the core opened.
fn check(key: Key, files: &[Vec<u8>], blocks: &[Vec<u8>], what: &str) -> bool {
    let options = CoreOptions::new().key(key).create(false);
    let core = match Core::open_storage(storage(files), options) {
        Ok(core) => core,
        // The big header has no checksum in the format: a flipped key shows as a mismatch.
        Err(
            Error::Corrupt { .. } | Error::NotFound | Error::Incompatible(_) | Error::KeyMismatch,
        ) => {
            return false;
        }
        Err(e) => panic!("{what}: unexpected error {e:?}"),
    };
    assert!(core.length() <= blocks.len() as u64, "{what}");
    for i in 0..core.length() {
        match core.get(i) {
            Ok(v) => assert_eq!(v, blocks[i as usize], "{what}: block {i} is wrong"),
            Err(Error::Corrupt { .. } | Error::BlockNotAvailable { .. }) => {}
            Err(e) => panic!("{what}: block {i}: unexpected error {e:?}"),
        }
    }
    true
}

/// Offsets worth damaging: every byte of the structures (slot headers, entries, the start
/// and end of each file), and a sample of the long runs in between (slot padding, bitfield
/// zeros, big user-data values), to keep the sweep fast.
fn interesting(file: usize, len: usize) -> Vec<usize> {
    (0..len)
        .filter(|&i| {
            let structure = if file == 0 {
                i % 4096 < 260 || i >= 8192
            } else {
                i < 300 || i + 100 > len
            };
            structure || i % 97 == 0
        })
        .collect()
}

/// Damages each of `which` files of the fixture in turn.
fn sweep(big_header: bool, which: &[usize]) {
    let (key, files, blocks) = damaged_fixture(big_header);
    assert!(check(key, &files, &blocks, "intact"));
    for &f in which {
        let name = FILES[f];
        let original = &files[f];
        let offsets = interesting(f, original.len());
        for &i in &offsets {
            let mut damaged = files.clone();
            damaged[f][i] ^= 1 << (i % 8);
            check(key, &damaged, &blocks, &format!("{name}: bit flip at {i}"));
        }
        // Cuts at neighbouring offsets behave alike: every 5th suffices.
        for &len in offsets.iter().filter(|&&l| l % 5 == 0) {
            let mut damaged = files.clone();
            damaged[f].truncate(len);
            check(key, &damaged, &blocks, &format!("{name}: cut to {len}"));
        }
        // Garbage appended to the end.
        let mut damaged = files.clone();
        damaged[f].extend_from_slice(&[0xa5; 100]);
        check(key, &damaged, &blocks, &format!("{name}: garbage tail"));
    }
}

#[test]
fn every_damage_is_typed_or_recovered() {
    sweep(false, &[0, 1, 2, 3]);
}

#[test]
fn big_header_damage_is_typed_or_recovered() {
    sweep(true, &[0, 4]);
}

#[test]
fn torn_oplog_tail_is_recovered_not_fatal() {
    let (key, files, blocks) = damaged_fixture(false);
    let mut damaged = files;
    let len = damaged[0].len();
    damaged[0].truncate(len - 5);
    assert!(check(key, &damaged, &blocks, "torn tail"));
    let core = Core::open_storage(storage(&damaged), CoreOptions::new()).unwrap();
    // The last entry (user data) is gone; every block is still there.
    assert_eq!(core.length(), 13);
    assert_eq!(core.user_data("k"), None);
}

#[test]
fn a_root_flip_is_reported_as_corrupt_tree() {
    let (key, files, blocks) = damaged_fixture(false);
    let mut damaged = files;
    // Length 9 at the last flush: roots [7, 16]; flip a bit in node 7's hash.
    damaged[1][7 * 40 + 20] ^= 0x40;
    let result = Core::open_storage(storage(&damaged), CoreOptions::new().key(key));
    assert!(
        matches!(result, Err(Error::Corrupt { file: "tree", .. })),
        "{result:?}"
    );
    let _ = blocks;
}

#[test]
fn a_data_flip_is_never_returned() {
    let (_, files, blocks) = damaged_fixture(false);
    let mut damaged = files;
    damaged[3][0] ^= 0xff;
    let core = Core::open_storage(storage(&damaged), CoreOptions::new()).unwrap();
    let first = blocks.iter().position(|b| !b.is_empty()).unwrap() as u64;
    assert!(matches!(
        core.get(first),
        Err(Error::Corrupt { file: "data", .. })
    ));
}

#[test]
fn hypercore_9_trees_are_incompatible() {
    let (key, files, _) = damaged_fixture(false);
    let mut damaged = files;
    damaged[1][..15].copy_from_slice(&[
        0x05, 0x02, 0x57, 0x02, 0x00, 0x00, 0x28, 0x07, 0x42, 0x4c, 0x41, 0x4b, 0x45, 0x32, 0x62,
    ]);
    assert!(matches!(
        Core::open_storage(storage(&damaged), CoreOptions::new().key(key)),
        Err(Error::Incompatible(_))
    ));
}

#[test]
fn a_huge_length_on_disk_does_not_allocate() {
    // A data file read whose tree size claims far more bytes than the file holds.
    let (_, files, _) = damaged_fixture(false);
    let mut damaged = files;
    // Leaf of block 1 (node 2): set its size to 2^40.
    damaged[1][2 * 40..2 * 40 + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let core = Core::open_storage(storage(&damaged), CoreOptions::new()).unwrap();
    assert!(matches!(core.get(1), Err(Error::Corrupt { .. })));
}

/// Flips one bit of the data file in place, under a live core.
fn flip_data_byte(storage: &CoreStorage, offset: u64) {
    let mut byte = [0u8; 1];
    storage.data.read(offset, &mut byte).unwrap();
    byte[0] ^= 0x10;
    storage.data.write(offset, &byte).unwrap();
}

/// With the default `ReadCheck::Once`, a block this open has never checked is hashed on its
/// first read: damage is caught, every time it is read, and the undamaged blocks read fine.
#[test]
fn a_flipped_data_byte_is_caught_on_first_read_and_every_read_after() {
    let (key, files, blocks) = damaged_fixture(false);
    let mut damaged = files;
    // Damage the middle byte of the longest of the flushed blocks.
    let bad = (0..9).max_by_key(|&i| blocks[i].len()).unwrap();
    let offset: usize = blocks[..bad].iter().map(Vec::len).sum();
    damaged[3][offset + blocks[bad].len() / 2] ^= 0x01;
    let core = Core::open_storage(storage(&damaged), CoreOptions::new().key(key)).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            core.get(bad as u64),
            Err(Error::Corrupt { file: "data", .. })
        ));
    }
    for i in (0..13).filter(|&i| i != bad as u64) {
        assert_eq!(core.get(i).unwrap(), blocks[i as usize], "block {i}");
    }
}

/// The trust model of the two read checks, on blocks damaged behind the back of a live core:
/// `Always` catches it on every read; `Once` catches it on the first read of a block this open
/// has not checked yet, and trusts bytes it has checked (read, appended or applied) until the
/// next open, which checks again.
#[test]
fn read_checks_follow_the_documented_trust_model() {
    for check in [ReadCheck::Once, ReadCheck::Always] {
        let storage = CoreStorage::memory();
        let options = CoreOptions::new()
            .key_pair(test_key_pair())
            .read_check(check);
        let mut core = Core::open_storage(storage.clone(), options.clone()).unwrap();
        let blocks: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 100]).collect();
        core.append_batch(&blocks).unwrap();
        core.flush().unwrap();
        drop(core);

        let core = Core::open_storage(storage.clone(), options.clone()).unwrap();
        // Block 1 read (and checked) before the damage, block 2 damaged before its first read.
        assert_eq!(core.get(1).unwrap(), blocks[1]);
        flip_data_byte(&storage, 150);
        flip_data_byte(&storage, 250);
        let second_read = core.get(1);
        match check {
            ReadCheck::Always => assert!(matches!(second_read, Err(Error::Corrupt { .. }))),
            _ => assert!(second_read.is_ok()),
        }
        assert!(
            matches!(core.get(2), Err(Error::Corrupt { .. })),
            "{check:?}"
        );
        assert_eq!(core.get(3).unwrap(), blocks[3]);
        drop(core);

        // A new open has checked nothing yet.
        let core = Core::open_storage(storage.clone(), options).unwrap();
        assert!(
            matches!(core.get(1), Err(Error::Corrupt { .. })),
            "{check:?}"
        );
    }
}

/// Blocks this open appended count as checked under `Once` (it hashed the bytes it wrote),
/// but not under `Always`.
#[test]
fn appended_blocks_are_trusted_only_under_read_check_once() {
    for check in [ReadCheck::Once, ReadCheck::Always] {
        let storage = CoreStorage::memory();
        let mut core = Core::open_storage(
            storage.clone(),
            CoreOptions::new()
                .key_pair(test_key_pair())
                .read_check(check),
        )
        .unwrap();
        core.append_batch(&[vec![1u8; 64], vec![2u8; 64]]).unwrap();
        flip_data_byte(&storage, 70);
        let read = core.get(1);
        match check {
            ReadCheck::Always => assert!(matches!(read, Err(Error::Corrupt { .. }))),
            _ => assert!(read.is_ok()),
        }
    }
}

/// `proof_deferred` is `proof` with the block value read by the caller, onto the end of its
/// buffer and checked as `get` checks it: a damaged block fails and leaves the buffer alone.
#[test]
fn deferred_block_values_are_read_checked_where_the_caller_wants_them() {
    use hypercore_lite::{BlockRequest, Request};
    let storage = CoreStorage::memory();
    let options = CoreOptions::new().key_pair(test_key_pair());
    let mut core = Core::open_storage(storage.clone(), options.clone()).unwrap();
    let blocks: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 100]).collect();
    core.append_batch(&blocks).unwrap();
    core.flush().unwrap();
    drop(core);
    let core = Core::open_storage(storage.clone(), options).unwrap();
    let request = |index| Request {
        fork: core.fork(),
        block: Some(BlockRequest { index, nodes: 0 }),
        ..Request::default()
    };
    let (proof, value) = core.proof_deferred(&request(1)).unwrap().unwrap();
    let value = value.unwrap();
    assert_eq!((value.index(), value.len()), (1, 100));
    assert!(proof.block.as_ref().unwrap().value.is_empty());
    let mut out = b"head".to_vec();
    value.read_append(&mut out).unwrap();
    assert_eq!(&out[4..], &blocks[1][..]);
    let mut whole = proof;
    whole.block.as_mut().unwrap().value = out[4..].to_vec().into();
    assert_eq!(Some(whole), core.proof(&request(1)).unwrap());
    // Block 2 damaged before its first read.
    flip_data_byte(&storage, 250);
    let (_, value) = core.proof_deferred(&request(2)).unwrap().unwrap();
    let mut out = b"head".to_vec();
    assert!(matches!(
        value.unwrap().read_append(&mut out),
        Err(Error::Corrupt { file: "data", .. })
    ));
    assert_eq!(out, b"head");
    // No block asked for: no value.
    let upgrade_only = Request {
        fork: core.fork(),
        upgrade: Some(hypercore_lite::UpgradeRequest {
            start: 0,
            length: 4,
        }),
        ..Request::default()
    };
    assert!(
        core.proof_deferred(&upgrade_only)
            .unwrap()
            .unwrap()
            .1
            .is_none()
    );
}
