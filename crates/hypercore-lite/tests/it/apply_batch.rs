//! `Core::apply_batch`: the same outcome as applying proofs one by one, and under storage faults
//! and crashes every acknowledged block survives and no block comes back wrong.

use hypercore_lite::{
    BlockRequest, Core, CoreOptions, Error, Request, UpgradeRequest, VerifiedBatch,
};
use proptest::prelude::*;
use rac_storage::MemoryProvider;
use rac_storage::testing::{Faults, FaultyProvider, Keep};

use crate::common::{block, writer};
use crate::model::config;

/// An empty in-memory reader of `writer`'s core.
fn empty_reader(writer: &Core) -> Core {
    Core::open_storage(
        hypercore_lite::CoreStorage::memory(),
        CoreOptions::new().key(*writer.key()),
    )
    .unwrap()
}

/// The upgrade from the reader's length to the writer's, with block 0 on the first.
fn upgrade(writer: &Core, reader: &Core) -> VerifiedBatch {
    let request = Request {
        fork: writer.fork(),
        block: (reader.length() == 0).then_some(BlockRequest { index: 0, nodes: 0 }),
        upgrade: Some(UpgradeRequest {
            start: reader.length(),
            length: writer.length() - reader.length(),
        }),
        ..Request::default()
    };
    reader
        .verify(&writer.proof(&request).unwrap().unwrap())
        .unwrap()
}

/// Block proofs for `indices`, requested (and verified) against the reader's current tree.
fn blocks(writer: &Core, reader: &Core, indices: &[u64]) -> Vec<VerifiedBatch> {
    indices
        .iter()
        .map(|&index| {
            let request = Request {
                fork: writer.fork(),
                block: Some(BlockRequest {
                    index,
                    nodes: reader.missing_nodes(index).unwrap(),
                }),
                ..Request::default()
            };
            reader
                .verify(&writer.proof(&request).unwrap().unwrap())
                .unwrap()
        })
        .collect()
}

#[test]
fn a_batch_stores_what_single_applies_store() {
    const N: u64 = 40;
    let (writer, _) = writer(N);
    let (mut one, mut many) = (empty_reader(&writer), empty_reader(&writer));
    let up = upgrade(&writer, &one);
    one.apply(up).unwrap();
    let indices: Vec<u64> = (1..N).rev().collect();
    for v in blocks(&writer, &one, &indices) {
        one.apply(v).unwrap();
    }

    // The upgrade and every block proof in one call: the upgrade goes alone, the rest as
    // one group, verified before any of them was stored.
    let mut batch = vec![upgrade(&writer, &many)];
    many.apply_batch(std::mem::take(&mut batch))
        .into_iter()
        .for_each(|r| assert!(r.unwrap().upgraded));
    let mut proofs = blocks(&writer, &many, &indices);
    // A duplicate of a block in the same group is stored once more, harmlessly.
    proofs.extend(blocks(&writer, &many, &[5]));
    let results = many.apply_batch(proofs);
    assert_eq!(results.len(), indices.len() + 1);
    for (r, &i) in results.iter().zip(indices.iter().chain([5].iter())) {
        let applied = r.as_ref().unwrap();
        assert_eq!(
            (applied.block, applied.length, applied.upgraded),
            (Some(i), N, false)
        );
    }
    assert_eq!(many.contiguous_length(), N);
    for i in 0..N {
        assert_eq!(many.get(i).unwrap(), block(i));
        assert_eq!(many.get(i).unwrap(), one.get(i).unwrap());
    }
    assert_eq!(many.apply_batch(Vec::new()).len(), 0);
}

/// Groups in download order, where each block is placed where the one before it ended: runs
/// broken by gaps, a repeated block and blocks of every size (empty ones too) still land at
/// their own offsets, and the writer serves them in order from the same shortcut.
#[test]
fn in_order_groups_place_every_block_at_its_offset() {
    const N: u64 = 70;
    let (writer, _) = writer(N);
    let mut reader = empty_reader(&writer);
    let up = upgrade(&writer, &reader);
    reader.apply(up).unwrap();
    let rounds: [&[u64]; 4] = [
        &[1, 2, 3, 4, 9, 10, 11],
        &[12, 12, 13, 30, 31, 5, 6, 7, 8],
        &(14..30).collect::<Vec<u64>>(),
        &(32..N).collect::<Vec<u64>>(),
    ];
    // The contiguous length after each round (the bitfield takes runs of blocks at once).
    let contiguous = [5, 14, 32, N];
    for (indices, contiguous) in rounds.into_iter().zip(contiguous) {
        for r in reader.apply_batch(blocks(&writer, &reader, indices)) {
            r.unwrap();
        }
        assert_eq!(reader.contiguous_length(), contiguous, "after {indices:?}");
        assert!(indices.iter().all(|&i| reader.has(i)));
    }
    let fresh = empty_reader(&writer);
    for i in 0..N {
        assert_eq!(reader.get(i).unwrap(), block(i), "block {i}");
        // What a second reader would be served, in order.
        let proof = writer
            .proof(&Request {
                fork: writer.fork(),
                block: Some(BlockRequest {
                    index: i,
                    nodes: fresh.missing_nodes(i).unwrap(),
                }),
                ..Request::default()
            })
            .unwrap()
            .unwrap();
        assert_eq!(
            proof.block.map(|b| b.value.to_vec()),
            Some(block(i)),
            "served {i}"
        );
    }
}

#[test]
fn a_stale_proof_in_a_batch_fails_alone() {
    let (mut writer, _) = writer(8);
    let mut reader = empty_reader(&writer);
    let up = upgrade(&writer, &reader);
    reader.apply(up).unwrap();
    // Verified against length 8, then the reader moves to length 9.
    let stale = blocks(&writer, &reader, &[3]);
    writer.append(b"ninth").unwrap();
    let up = upgrade(&writer, &reader);
    reader.apply(up).unwrap();
    let mut proofs = blocks(&writer, &reader, &[1]);
    proofs.extend(stale);
    proofs.extend(blocks(&writer, &reader, &[2]));
    let results = reader.apply_batch(proofs);
    assert_eq!(results[0].as_ref().unwrap().block, Some(1));
    assert!(matches!(results[1], Err(Error::Verification(_))));
    assert_eq!(results[2].as_ref().unwrap().block, Some(2));
    assert!(reader.has(1) && reader.has(2) && !reader.has(3));
}

/// Downloads `writer` in groups of `group` with a fault armed before group `at`, then crashes
/// (keeping what `keep` says) and checks the reopened core.
fn faulty_download(synced: bool, group: usize, fault: (usize, u8, Option<usize>), keep: &Keep) {
    const N: u64 = 24;
    let (writer, _) = writer(N);
    let faults = Faults::new();
    let provider = FaultyProvider::new(MemoryProvider::new(), faults.clone());
    let durability = crate::common::durability(synced);
    let mut reader = Core::open(
        &provider,
        "c/",
        CoreOptions::new().key(*writer.key()).durability(durability),
    )
    .unwrap();
    let mut acked = vec![false; N as usize];
    let up = upgrade(&writer, &reader);
    reader.apply(up).unwrap();
    acked[0] = true;
    let indices: Vec<u64> = (1..N).collect();
    for (g, chunk) in indices.chunks(group).enumerate() {
        if g == fault.0 {
            match fault.2 {
                Some(tear) => faults.tear_write_after(u64::from(fault.1), tear),
                None => faults.fail_write_after(u64::from(fault.1)),
            }
        }
        let proofs = blocks(&writer, &reader, chunk);
        let results = reader.apply_batch(proofs);
        assert_eq!(results.len(), chunk.len());
        let mut failed = false;
        for (r, &i) in results.iter().zip(chunk) {
            match r {
                Ok(a) => {
                    assert!(!failed, "a proof after a failed write was acknowledged");
                    assert_eq!(a.block, Some(i));
                    acked[i as usize] = true;
                }
                Err(_) => failed = true,
            }
        }
        if failed {
            // Poisoned: later calls fail without touching storage.
            assert!(matches!(reader.get(0), Err(Error::Poisoned)));
            break;
        }
    }
    faults.disarm();
    // Buffered cores promise acknowledged blocks across a process crash only.
    let keep = if synced { keep.clone() } else { Keep::All };
    let image = provider.crash_image(&keep).unwrap();
    drop(reader);
    let reopened = Core::open(&image, "c/", CoreOptions::new()).expect("a crashed core reopens");
    assert_eq!(reopened.length(), N);
    for i in 0..N {
        if acked[i as usize] {
            assert!(reopened.has(i), "acknowledged block {i} lost");
        }
        if reopened.has(i) {
            assert_eq!(reopened.get(i).unwrap(), block(i), "block {i}");
        }
    }
}

#[test]
fn faults_in_a_batch_lose_no_acknowledged_block() {
    // Every write of the third group failing or torn in turn, both durabilities.
    for synced in [false, true] {
        for n in 0..8 {
            faulty_download(synced, 5, (2, n, None), &Keep::All);
            faulty_download(synced, 5, (2, n, Some(7)), &Keep::All);
            faulty_download(synced, 5, (2, n, Some(20)), &Keep::Durable);
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn crashes_during_batched_downloads_keep_acknowledged_blocks(
        synced in any::<bool>(),
        group in 1usize..9,
        at in 0usize..6,
        n in 0u8..10,
        tear in prop::option::of(0usize..64),
        keep in prop_oneof![Just(0u8), Just(1u8), any::<u8>().prop_map(|k| k | 2)],
        seed in any::<u64>(),
    ) {
        let keep = match keep {
            0 => Keep::Durable,
            1 => Keep::All,
            k if k % 2 == 0 => Keep::Prefix(usize::from(k)),
            _ => Keep::Subset((0..64).filter(|b| seed >> b & 1 == 1).collect()),
        };
        faulty_download(synced, group, (at, n, tear), &keep);
    }
}
