//! Trimmed block requests (`Core::missing_nodes_after`): a pipelined download that asks each
//! block only for the nodes no earlier request still on its way brings stores every block,
//! whatever the window, the order answers arrive in and which answers never come; a proof
//! that leaned on a missing answer fails as not anchored (never as a bad proof) and is
//! stored once asked for again in full.

use std::collections::{BTreeSet, HashSet, VecDeque};

use hypercore_lite::{BlockRequest, Core, Error, Request, VerifyError};
use proptest::prelude::*;

use crate::common::{block, reader, upgrade, writer};
use crate::model::config;

/// The proof `writer` answers `asked` with, verified by `reader` (pure: it always verifies).
fn answer(writer: &Core, reader: &Core, asked: BlockRequest) -> hypercore_lite::VerifiedBatch {
    let proof = writer
        .proof(&Request {
            fork: writer.fork(),
            block: Some(asked),
            ..Request::default()
        })
        .unwrap()
        .unwrap();
    reader.verify_owned(proof).unwrap()
}

/// Downloads `order` with at most `window` requests in flight; each round answers the
/// `round` oldest requests (in arrival order, or newest first with `reverse`), and request
/// number `k` gets no answer if `lost[k]`. Returns the tree nodes asked for, and how many
/// proofs were not anchored.
fn download(
    length: u64,
    order: &[u64],
    window: usize,
    round: usize,
    reverse: bool,
    lost: &[bool],
) -> (u64, u64) {
    let (writer, _) = writer(length);
    let mut reader = reader(&writer);
    upgrade(&writer, &mut reader);
    let mut wanted: VecDeque<u64> = order.iter().copied().collect();
    let mut full = BTreeSet::new();
    let mut coming: Vec<BlockRequest> = Vec::new();
    let (mut sent, mut asked_nodes, mut retries) = (0usize, 0u64, 0u64);
    for _ in 0..10_000 {
        while coming.len() < window
            && let Some(index) = wanted.pop_front()
        {
            let nodes = if full.remove(&index) {
                reader.missing_nodes(index).unwrap()
            } else {
                let after = reader.missing_nodes_after(index, &coming).unwrap();
                // The same count from the set of nodes the requests on their way bring.
                let brought: HashSet<u64> = coming.iter().flat_map(BlockRequest::brought).collect();
                let unless = reader
                    .missing_nodes_unless(index, |n| brought.contains(&n))
                    .unwrap();
                assert_eq!(unless, after, "block {index}");
                after
            };
            assert!(nodes <= reader.missing_nodes(index).unwrap());
            asked_nodes += nodes;
            coming.push(BlockRequest { index, nodes });
        }
        if coming.is_empty() {
            break;
        }
        let take = round.clamp(1, coming.len());
        let mut answered: Vec<BlockRequest> = coming.drain(..take).collect();
        if reverse {
            answered.reverse();
        }
        let mut batches = Vec::new();
        let mut indices = Vec::new();
        for asked in answered {
            sent += 1;
            if lost.get(sent - 1).copied().unwrap_or(false) {
                // `noData`: asked again later, trimmed as any other request.
                wanted.push_back(asked.index);
                continue;
            }
            batches.push(answer(&writer, &reader, asked));
            indices.push(asked.index);
        }
        for (result, index) in reader.apply_batch(batches).into_iter().zip(indices) {
            match result {
                Ok(applied) => assert_eq!(applied.block, Some(index)),
                Err(Error::Verification(VerifyError::NotAnchored { .. })) => {
                    retries += 1;
                    full.insert(index);
                    wanted.push_back(index);
                }
                Err(e) => panic!("block {index}: {e}"),
            }
        }
    }
    for &i in order {
        assert_eq!(reader.get(i).unwrap(), block(i), "block {i}");
    }
    assert!(
        coming.is_empty() && wanted.is_empty(),
        "the download did not finish"
    );
    (asked_nodes, retries)
}

/// A sequential download in order, every answer arriving: each block needs about one node
/// (`length` blocks of a 256-block tree need 2·length·(1 − 1/256) nodes in all when each asks
/// for every node it misses, and ~length trimmed).
#[test]
fn in_order_download_asks_for_about_one_node_per_block() {
    let order: Vec<u64> = (0..256).collect();
    let (trimmed, retries) = download(256, &order, 48, 16, false, &[]);
    assert_eq!(retries, 0);
    let full = {
        let (writer, _) = writer(256);
        let mut r = reader(&writer);
        upgrade(&writer, &mut r);
        order
            .iter()
            .map(|&i| r.missing_nodes(i).unwrap())
            .sum::<u64>()
    };
    assert!(trimmed <= 256 + 8, "trimmed {trimmed}");
    assert!(full >= 8 * 256, "full {full}");
}

/// The answer a trimmed request leaned on never comes: the dependent proof is not anchored,
/// and the block is stored once asked for in full.
#[test]
fn a_lost_answer_only_delays_the_blocks_that_leaned_on_it() {
    let (writer, _) = writer(8);
    let mut reader = reader(&writer);
    upgrade(&writer, &mut reader);
    let first = BlockRequest {
        index: 0,
        nodes: reader.missing_nodes(0).unwrap(),
    };
    let nodes = reader.missing_nodes_after(1, &[first]).unwrap();
    assert_eq!((first.nodes, nodes), (3, 0));
    // Block 0's answer is lost; block 1's proof is just its value.
    let second = answer(&writer, &reader, BlockRequest { index: 1, nodes });
    let results = reader.apply_batch(vec![second]);
    assert!(matches!(
        results[..],
        [Err(Error::Verification(VerifyError::NotAnchored {
            index: 2
        }))]
    ));
    assert!(!reader.has(1));
    let again = BlockRequest {
        index: 1,
        nodes: reader.missing_nodes(1).unwrap(),
    };
    for r in reader.apply_batch(vec![answer(&writer, &reader, again)]) {
        r.unwrap();
    }
    assert_eq!(reader.get(1).unwrap(), block(1));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn trimmed_downloads_store_every_block(
        length in 1u64..300,
        seed in any::<u64>(),
        window in 1usize..64,
        round in 1usize..80,
        reverse in any::<bool>(),
        lost in prop::collection::vec(prop::bool::weighted(0.1), 0..200),
    ) {
        // Some order of a subset of the blocks: a rotation with a stride.
        let stride = (seed % 7) * 2 + 1;
        let order: Vec<u64> = (0..length)
            .map(|i| (seed.wrapping_add(i * stride)) % length)
            .collect::<BTreeSet<u64>>()
            .into_iter()
            .collect();
        let mut order = order;
        let turn = (seed as usize) % order.len();
        order.rotate_left(turn);
        let (_, retries) = download(length, &order, window, round, reverse, &lost);
        // Answers in the order asked, none lost: every proof finds what it leaned on.
        if !reverse && !lost.contains(&true) {
            prop_assert_eq!(retries, 0);
        }
    }
}
