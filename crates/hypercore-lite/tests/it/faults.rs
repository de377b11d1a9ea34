//! Fault injection and crashes: storage errors and torn writes at any point, then a power cut
//! that keeps an arbitrary subset of the unsynced writes. The reopened core must open,
//! produce proofs a reader verifies, hold every block acknowledged before the last sync (every
//! block, with `Durability::Synced`), and never return wrong data.

use std::collections::BTreeSet;

use hypercore_lite::{BlockRequest, Core, CoreOptions, Durability, Error, Request, UpgradeRequest};
use proptest::prelude::*;
use rac_storage::testing::{Faults, FaultyProvider, Keep};
use rac_storage::{MemoryProvider, Provider};

use crate::common::test_key_pair;
use crate::model::config;

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<u8>),
    Batch(Vec<Vec<u8>>),
    Sync,
    Flush,
    UserData(u8, Vec<u8>),
    Clear(u16, u16),
    Truncate(u16),
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    FailWrite(u8),
    TearWrite(u8, u16),
    FailSync(u8),
}

#[derive(Debug, Clone)]
enum Crash {
    Durable,
    All,
    Prefix(u16),
    Subset(u64),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let block = prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        5 => block.clone().prop_map(Op::Append),
        3 => prop::collection::vec(block, 1..6).prop_map(Op::Batch),
        1 => Just(Op::Sync),
        1 => Just(Op::Flush),
        1 => (0u8..3, prop::collection::vec(any::<u8>(), 0..5)).prop_map(|(k, v)| Op::UserData(k, v)),
        1 => (any::<u16>(), any::<u16>()).prop_map(|(a, b)| Op::Clear(a, b)),
        1 => any::<u16>().prop_map(Op::Truncate),
    ]
}

fn fault_strategy() -> impl Strategy<Value = Option<(usize, Fault)>> {
    prop::option::of((
        0usize..30,
        prop_oneof![
            (0u8..12).prop_map(Fault::FailWrite),
            (0u8..12, any::<u16>()).prop_map(|(n, k)| Fault::TearWrite(n, k)),
            (0u8..6).prop_map(Fault::FailSync),
        ],
    ))
}

fn crash_strategy() -> impl Strategy<Value = Crash> {
    prop_oneof![
        Just(Crash::Durable),
        Just(Crash::All),
        any::<u16>().prop_map(Crash::Prefix),
        any::<u64>().prop_map(Crash::Subset),
    ]
}

/// What the test knows about acknowledged state.
#[derive(Default)]
struct Model {
    blocks: Vec<Vec<u8>>,
    /// Stored and not (possibly) cleared since.
    present: Vec<bool>,
    /// Blocks of an append that failed: they may or may not have made it.
    maybe: Vec<Vec<u8>>,
    synced_len: usize,
    synced_present: Vec<bool>,
}

impl Model {
    fn synced(&mut self) {
        self.synced_len = self.blocks.len();
        self.synced_present.clone_from(&self.present);
    }
}

/// Runs `op`; returns whether it succeeded.
fn apply(core: &mut Core, model: &mut Model, op: &Op, synced: bool) -> bool {
    let result = match op {
        Op::Append(b) => core.append(b).map(|_| {
            model.blocks.push(b.clone());
            model.present.push(true);
        }),
        Op::Batch(bs) => core.append_batch(bs).map(|_| {
            model.blocks.extend(bs.iter().cloned());
            model.present.extend(bs.iter().map(|_| true));
        }),
        Op::Sync => core.sync().map(|()| model.synced()),
        Op::Flush => core.flush().map(|()| model.synced()),
        Op::UserData(k, v) => core.set_user_data(&format!("k{k}"), v),
        Op::Clear(a, b) => {
            let len = model.blocks.len() as u64 + 1;
            let (a, b) = (u64::from(*a) % len, u64::from(*b) % len);
            let (start, end) = (a.min(b), a.max(b));
            // Whether or not it succeeds, the blocks may be gone.
            for i in start..end {
                model.present[i as usize] = false;
            }
            core.clear(start, end)
        }
        Op::Truncate(x) => {
            let to = usize::from(*x) % (model.blocks.len() + 1);
            // Whether or not it succeeds, nothing past `to` is guaranteed any more; the blocks
            // before it are the same in both histories.
            model.synced_len = model.synced_len.min(to);
            core.truncate(to as u64).map(|()| {
                model.blocks.truncate(to);
                model.present.truncate(to);
                model.synced();
            })
        }
    };
    match result {
        Ok(()) => {
            if synced && !matches!(op, Op::Clear(..)) {
                model.synced();
            }
            true
        }
        Err(e) => {
            assert!(matches!(e, Error::Storage(_)), "unexpected error {e}");
            match op {
                Op::Append(b) => model.maybe.push(b.clone()),
                Op::Batch(bs) => model.maybe.extend(bs.iter().cloned()),
                _ => {}
            }
            false
        }
    }
}

fn keep(crash: &Crash, pending: usize) -> Keep {
    match crash {
        Crash::Durable => Keep::Durable,
        Crash::All => Keep::All,
        Crash::Prefix(n) => Keep::Prefix(usize::from(*n) % (pending + 1)),
        Crash::Subset(seed) => {
            let mut x = *seed | 1;
            let mut set = BTreeSet::new();
            for i in 0..pending {
                // xorshift: a deterministic pseudo-random subset.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if x & 1 == 1 {
                    set.insert(i);
                }
            }
            Keep::Subset(set)
        }
    }
}

fn check_recovered(image: &MemoryProvider, model: &Model) {
    let mut core = Core::open(image, "c/", CoreOptions::new()).expect("a crashed core reopens");
    let length = core.length() as usize;
    assert!(
        length >= model.synced_len,
        "lost synced blocks: {length} < {}",
        model.synced_len
    );
    assert!(length <= model.blocks.len() + model.maybe.len());
    let expected = |i: usize| -> &[u8] {
        if i < model.blocks.len() {
            &model.blocks[i]
        } else {
            &model.maybe[i - model.blocks.len()]
        }
    };
    for i in 0..length {
        if core.has(i as u64) {
            assert_eq!(core.get(i as u64).unwrap(), expected(i), "block {i}");
        }
    }
    for i in 0..model.synced_len {
        if model.synced_present[i] && model.present[i] {
            assert!(core.has(i as u64), "synced block {i} lost");
        }
    }

    // A reader verifies what the recovered core serves.
    if length > 0 {
        let mut reader = Core::open_storage(
            hypercore_lite::CoreStorage::memory(),
            CoreOptions::new().key(*core.key()),
        )
        .unwrap();
        let first = (0..length as u64).find(|&i| core.has(i));
        let req = Request {
            fork: core.fork(),
            block: first.map(|index| BlockRequest { index, nodes: 0 }),
            upgrade: Some(UpgradeRequest {
                start: 0,
                length: length as u64,
            }),
            ..Request::default()
        };
        let proof = core.proof(&req).unwrap().unwrap();
        let verified = reader
            .verify(&proof)
            .expect("the recovered core's proof verifies");
        reader.apply(verified).unwrap();
        assert_eq!(reader.tree_hash(), core.tree_hash());
    }

    // And it keeps working.
    core.append(b"after the crash").unwrap();
    core.close().unwrap();
    let core = Core::open(image, "c/", CoreOptions::new()).unwrap();
    assert_eq!(core.length() as usize, length + 1);
    assert_eq!(core.get(length as u64).unwrap(), b"after the crash");
}

fn run(synced: bool, ops: &[Op], fault: Option<(usize, Fault)>, crash: &Crash) {
    let faults = Faults::new();
    let provider = FaultyProvider::new(MemoryProvider::new(), faults.clone());
    let durability = if synced {
        Durability::Synced
    } else {
        Durability::Buffered
    };
    let mut core = Core::open(
        &provider,
        "c/",
        CoreOptions::new()
            .key_pair(test_key_pair())
            .durability(durability),
    )
    .unwrap();
    // Creating the core made its header durable.
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        if let Some((at, f)) = fault
            && at == i
        {
            match f {
                Fault::FailWrite(n) => faults.fail_write_after(u64::from(n)),
                Fault::TearWrite(n, k) => {
                    faults.tear_write_after(u64::from(n), usize::from(k) % 64)
                }
                Fault::FailSync(n) => faults.fail_sync_after(u64::from(n)),
            }
        }
        if !apply(&mut core, &mut model, op, synced) {
            // Poisoned from now on: every operation fails the same way, nothing panics.
            assert!(matches!(core.append(b"x"), Err(Error::Poisoned)));
            assert!(matches!(core.get(0), Err(Error::Poisoned)));
            assert!(matches!(core.sync(), Err(Error::Poisoned)));
            break;
        }
    }
    faults.disarm();
    let image = provider
        .crash_image(&keep(crash, provider.pending()))
        .unwrap();
    drop(core);
    check_recovered(&image, &model);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn crashes_never_lose_synced_blocks_or_corrupt(
        synced in any::<bool>(),
        ops in prop::collection::vec(op_strategy(), 1..30),
        fault in fault_strategy(),
        crash in crash_strategy(),
    ) {
        run(synced, &ops, fault, &crash);
    }
}

/// Deterministic sweep: a crash after every prefix of a fixed history, keeping every subset
/// shape we model.
#[test]
fn crash_after_every_step() {
    let ops = vec![
        Op::Append(b"a".to_vec()),
        Op::Batch(vec![b"bb".to_vec(), b"ccc".to_vec()]),
        Op::UserData(1, b"v".to_vec()),
        Op::Append(b"dddd".to_vec()),
        Op::Sync,
        Op::Append(b"eeeee".to_vec()),
        Op::Clear(1, 2),
        Op::Batch(vec![b"f".to_vec(), b"g".to_vec()]),
        Op::Flush,
        Op::Append(b"h".to_vec()),
        Op::Truncate(5),
        Op::Append(b"i".to_vec()),
        Op::Batch(vec![b"j".to_vec(), b"kk".to_vec()]),
        Op::Truncate(2),
        Op::Append(b"l".to_vec()),
    ];
    for n in 0..=ops.len() {
        for crash in [
            Crash::Durable,
            Crash::All,
            Crash::Prefix(3),
            Crash::Subset(7),
            Crash::Subset(12345),
        ] {
            for synced in [false, true] {
                run(synced, &ops[..n], None, &crash);
            }
        }
    }
    for at in 0..ops.len() {
        for fault in [
            Fault::FailWrite(0),
            Fault::TearWrite(1, 5),
            Fault::FailSync(0),
        ] {
            run(false, &ops, Some((at, fault)), &Crash::Subset(99));
        }
    }
}

/// The provider trait object works too (corestore opens cores through `dyn Provider`).
#[test]
fn open_through_dyn_provider() {
    let provider: Box<dyn Provider> = Box::new(MemoryProvider::new());
    let mut core = Core::open(&*provider, "x/", CoreOptions::new()).unwrap();
    core.append(b"1").unwrap();
    assert_eq!(core.length(), 1);
}

/// A crash inside the flush of a truncation, at every sync and write it makes: the tree file
/// may already be cut below the roots of the last flushed header while that header is still
/// the current one, so replay has to reach the truncation entry without those roots.
#[test]
fn crash_inside_a_truncation_flush() {
    let ops = vec![
        Op::Batch((0..8u8).map(|i| vec![i; 3]).collect()),
        Op::Flush,
        Op::Append(b"unflushed".to_vec()),
        Op::Truncate(2),
        Op::Append(b"after".to_vec()),
    ];
    for n in 0..8 {
        for fault in [
            Fault::FailSync(n),
            Fault::FailWrite(n),
            Fault::TearWrite(n, 9),
        ] {
            for crash in [
                Crash::Durable,
                Crash::All,
                Crash::Prefix(1),
                Crash::Subset(3),
            ] {
                run(false, &ops, Some((3, fault)), &crash);
            }
        }
    }
}
