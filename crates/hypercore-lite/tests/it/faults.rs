//! Fault injection and crashes: storage errors and torn writes at any point, then a crash.
//!
//! Two crash models, matching the two durabilities (crate docs, "Durability"):
//!
//! * power loss (`Durability::Synced`): the crash image keeps the durable state plus an
//!   arbitrary subset (or an ordered prefix) of the unsynced writes. The reopened core must hold
//!   every acknowledged block.
//! * process crash (`Durability::Buffered`, which syncs only in `Core::sync` / `Core::close`):
//!   the crash image keeps every write up to an instant (all of them, or an ordered prefix),
//!   after failed or torn writes. The reopened core must hold every block acknowledged before
//!   that instant; a power loss ([`Keep::Durable`]) must keep what the last `Core::sync` made
//!   durable.
//!
//! Either way the reopened core must open, produce proofs a reader verifies, and never return
//! wrong data.

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
    /// Power loss keeping only what was synced.
    Durable,
    /// Every write made reaches the image (a process crash now).
    All,
    /// An ordered prefix of the unsynced writes (a process crash at an earlier instant, or a
    /// disk that persisted writes in order).
    Prefix(u16),
    /// An arbitrary subset of the unsynced writes: power loss on a reordering disk. Only a
    /// `Durability::Synced` core is safe against it.
    Subset(u64),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let block = prop::collection::vec(any::<u8>(), 0..40);
    prop_oneof![
        5 => block.clone().prop_map(Op::Append),
        3 => prop::collection::vec(block, 1..6).prop_map(Op::Batch),
        // Big enough to be hashed while written on a second thread, in several data writes.
        1 => (1usize..5, any::<u8>()).prop_map(|(n, b)| Op::Batch(vec![vec![b; 180_000]; n])),
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

/// The power-loss model: durable state plus any subset of the unsynced writes.
fn power_loss_strategy() -> BoxedStrategy<Crash> {
    prop_oneof![
        Just(Crash::Durable),
        Just(Crash::All),
        any::<u16>().prop_map(Crash::Prefix),
        any::<u64>().prop_map(Crash::Subset),
    ]
    .boxed()
}

/// The process-crash model: every write up to an instant (and a power loss right after the
/// last sync).
fn process_crash_strategy() -> BoxedStrategy<Crash> {
    prop_oneof![
        1 => Just(Crash::Durable),
        2 => Just(Crash::All),
        3 => any::<u16>().prop_map(Crash::Prefix),
    ]
    .boxed()
}

/// A durability and a crash model it must survive.
fn durability_and_crash() -> impl Strategy<Value = (bool, Crash)> {
    any::<bool>().prop_flat_map(|synced| {
        let crash = if synced {
            power_loss_strategy()
        } else {
            process_crash_strategy()
        };
        (Just(synced), crash)
    })
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

/// The acknowledged state after an operation (`Durability::Buffered`), with the number of
/// unsynced writes made by then.
#[derive(Debug, Clone)]
struct Checkpoint {
    pending: usize,
    blocks: Vec<Vec<u8>>,
    /// Stored and not (possibly) cleared.
    present: Vec<bool>,
}

/// What a recovered core must hold: every block of `required_len` marked in `required`, and
/// no block that differs from `content` (or beyond it).
struct Expect {
    required_len: usize,
    required: Vec<bool>,
    content: Vec<Vec<u8>>,
}

impl Expect {
    /// Synced (power-loss) model: everything synced and not cleared since.
    fn synced(model: &Model) -> Self {
        let required = (0..model.synced_len)
            .map(|i| model.synced_present[i] && model.present[i])
            .collect();
        let mut content = model.blocks.clone();
        content.extend(model.maybe.iter().cloned());
        Self {
            required_len: model.synced_len,
            required,
            content,
        }
    }

    /// Process-crash model: the crash happened after `done` was acknowledged, during the next
    /// operation, whose outcome would have been `next`. One history is a prefix of the other
    /// (an append extends, a truncation cuts), and the core may recover either.
    fn between(done: &Checkpoint, next: Option<&Checkpoint>) -> Self {
        let next = next.unwrap_or(done);
        let required_len = done.blocks.len().min(next.blocks.len());
        let required = (0..required_len)
            .map(|i| done.present[i] && next.present[i])
            .collect();
        let (short, long) = if done.blocks.len() <= next.blocks.len() {
            (done, next)
        } else {
            (next, done)
        };
        assert_eq!(short.blocks[..], long.blocks[..short.blocks.len()]);
        Self {
            required_len,
            required,
            content: long.blocks.clone(),
        }
    }
}

/// Runs `op`; returns whether it succeeded. `synced` marks every success as durable
/// (`Durability::Synced`, where flushes and truncations are durable too).
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
        Op::Flush => core.flush(),
        Op::UserData(k, v) => core.set_user_data(&format!("k{k}"), v),
        Op::Clear(a, b) => {
            let (start, end) = clear_range(model, *a, *b);
            // Whether or not it succeeds, the blocks may be gone.
            for i in start..end {
                model.present[i as usize] = false;
            }
            core.clear(start, end)
        }
        Op::Truncate(x) => {
            let to = truncate_to(model, *x);
            // Whether or not it succeeds, nothing past `to` is guaranteed any more; the blocks
            // before it are the same in both histories.
            model.synced_len = model.synced_len.min(to);
            core.truncate(to as u64).map(|()| {
                model.blocks.truncate(to);
                model.present.truncate(to);
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

fn clear_range(model: &Model, a: u16, b: u16) -> (u64, u64) {
    let len = model.blocks.len() as u64 + 1;
    let (a, b) = (u64::from(a) % len, u64::from(b) % len);
    (a.min(b), a.max(b))
}

fn truncate_to(model: &Model, x: u16) -> usize {
    usize::from(x) % (model.blocks.len() + 1)
}

/// The state a failed `op` would have produced (run after [`apply`] updated `model`).
fn failed_outcome(model: &Model, op: &Op, pending: usize) -> Checkpoint {
    let (blocks, present) = match op {
        Op::Truncate(x) => {
            let to = truncate_to(model, *x);
            (model.blocks[..to].to_vec(), model.present[..to].to_vec())
        }
        _ => {
            let mut blocks = model.blocks.clone();
            blocks.extend(model.maybe.iter().cloned());
            let mut present = model.present.clone();
            present.resize(blocks.len(), false);
            (blocks, present)
        }
    };
    Checkpoint {
        pending,
        blocks,
        present,
    }
}

fn subset(seed: u64, pending: usize) -> BTreeSet<usize> {
    let mut x = seed | 1;
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
    set
}

fn check_recovered(image: &MemoryProvider, expect: &Expect) {
    let mut core = Core::open(image, "c/", CoreOptions::new()).expect("a crashed core reopens");
    let length = core.length() as usize;
    assert!(
        length >= expect.required_len,
        "lost acknowledged blocks: {length} < {}",
        expect.required_len
    );
    assert!(length <= expect.content.len());
    for i in 0..length {
        if core.has(i as u64) {
            assert_eq!(core.get(i as u64).unwrap(), expect.content[i], "block {i}");
        }
    }
    for i in 0..expect.required_len {
        if expect.required[i] {
            assert!(core.has(i as u64), "acknowledged block {i} lost");
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

/// Runs `ops` on a core with `Durability::Synced` if `synced`, else `Durability::Buffered`,
/// with `fault` armed before the op it names, then crashes it as `crash` says and checks the
/// image. A buffered core is only crashed as a process (`Crash::Subset` is a power loss).
/// Returns the number of unsynced writes at the crash.
fn run(synced: bool, ops: &[Op], fault: Option<(usize, Fault)>, crash: &Crash) -> usize {
    assert!(
        synced || !matches!(crash, Crash::Subset(_)),
        "a buffered core is not power-loss safe between syncs"
    );
    let faults = Faults::new();
    let provider = FaultyProvider::new(MemoryProvider::new(), faults.clone());
    let durability = crate::common::durability(synced);
    let mut core = Core::open(
        &provider,
        "c/",
        CoreOptions::new()
            .key_pair(test_key_pair())
            .durability(durability),
    )
    .unwrap();
    if !synced {
        assert_eq!(
            faults.syncs(),
            0,
            "a buffered core syncs only in sync and close"
        );
    }
    let mut model = Model::default();
    // Buffered: the acknowledged states since the last sync, and what the failed op would
    // have made.
    let checkpoint = |model: &Model, pending: usize| Checkpoint {
        pending,
        blocks: model.blocks.clone(),
        present: model.present.clone(),
    };
    let mut acked = vec![checkpoint(&model, provider.pending())];
    let mut failed = None;
    let mut sync_failed = false;
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
        let syncs = faults.syncs();
        if !apply(&mut core, &mut model, op, synced) {
            failed = Some(failed_outcome(&model, op, provider.pending()));
            sync_failed = matches!(op, Op::Sync);
            // Poisoned from now on: every operation fails the same way, nothing panics.
            assert!(matches!(core.append(b"x"), Err(Error::Poisoned)));
            assert!(matches!(core.get(0), Err(Error::Poisoned)));
            assert!(matches!(core.sync(), Err(Error::Poisoned)));
            break;
        }
        if !synced {
            if matches!(op, Op::Sync) {
                assert_eq!(provider.pending(), 0);
                acked.clear();
            } else {
                assert_eq!(faults.syncs(), syncs, "{op:?} synced a buffered core");
            }
            acked.push(checkpoint(&model, provider.pending()));
        }
    }
    faults.disarm();
    let pending = provider.pending();
    let keep = match crash {
        Crash::Durable => Keep::Durable,
        Crash::All => Keep::All,
        Crash::Prefix(n) => Keep::Prefix(usize::from(*n) % (pending + 1)),
        Crash::Subset(seed) => Keep::Subset(subset(*seed, pending)),
    };
    // A sync that failed half-way made some files durable and not others: only a process
    // crash (every write kept) is then in the buffered contract.
    let keep = if !synced && sync_failed {
        Keep::All
    } else {
        keep
    };
    let image = provider.crash_image(&keep).unwrap();
    drop(core);
    let expect = if synced {
        Expect::synced(&model)
    } else {
        // The instant of the crash, counted in unsynced writes.
        let at = match keep {
            Keep::Durable => 0,
            Keep::Prefix(n) => n,
            _ => usize::MAX,
        };
        let done = acked.iter().rposition(|c| c.pending <= at).unwrap_or(0);
        let next = acked.get(done + 1).or(failed.as_ref());
        let next = next.filter(|n| at > acked[done].pending || n.pending <= at);
        Expect::between(&acked[done], next)
    };
    check_recovered(&image, &expect);
    pending
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn crashes_never_lose_acknowledged_blocks_or_corrupt(
        (synced, crash) in durability_and_crash(),
        ops in prop::collection::vec(op_strategy(), 1..30),
        fault in fault_strategy(),
    ) {
        run(synced, &ops, fault, &crash);
    }
}

/// Deterministic sweep: a crash after every prefix of a fixed history, with every crash shape
/// each durability must survive.
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
            run(true, &ops[..n], None, &crash);
        }
        let pending = run(false, &ops[..n], None, &Crash::All);
        run(false, &ops[..n], None, &Crash::Durable);
        // A buffered core crashed as a process at every write of the history: the prefixes of
        // the writes before the sync (op 4), then of those after it.
        if n == 4 || n == ops.len() {
            for prefix in 0..pending {
                run(false, &ops[..n], None, &Crash::Prefix(prefix as u16));
            }
        }
    }
    for at in 0..ops.len() {
        for fault in [
            Fault::FailWrite(0),
            Fault::TearWrite(1, 5),
            Fault::FailSync(0),
        ] {
            run(true, &ops, Some((at, fault)), &Crash::Subset(99));
            for crash in [
                Crash::All,
                Crash::Prefix(2),
                Crash::Prefix(7),
                Crash::Durable,
            ] {
                run(false, &ops, Some((at, fault)), &crash);
            }
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
/// the current one, so replay has to reach the truncation entry without those roots. A synced
/// core is crashed by a power loss, a buffered one (which makes no sync there) as a process.
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
                run(true, &ops, Some((3, fault)), &crash);
            }
            for crash in [Crash::All, Crash::Durable, Crash::Prefix(u16::MAX)] {
                run(false, &ops, Some((3, fault)), &crash);
            }
        }
    }
    // A buffered core makes no sync there: crash it as a process at every write instead.
    let pending = run(false, &ops, None, &Crash::All);
    for prefix in 0..pending {
        run(false, &ops, None, &Crash::Prefix(prefix as u16));
    }
}

/// Runs `f` on a fresh core opened with `options` through a
/// [`FaultyProvider`], whose [`Faults`] count the sync calls across all five storages.
fn count_syncs(
    options: CoreOptions,
    f: impl FnOnce(&mut Core, &Faults),
) -> (Core, FaultyProvider<MemoryProvider>, Faults) {
    let faults = Faults::new();
    let provider = FaultyProvider::new(MemoryProvider::new(), faults.clone());
    let mut core = Core::open(&provider, "c/", options).unwrap();
    f(&mut core, &faults);
    (core, provider, faults)
}

/// Under `Durability::Buffered` (the default) appends and applied downloads never sync: writes
/// land in the page cache and only `Core::sync` / `Core::close` make them durable. Under
/// `Durability::Synced` every mutation syncs.
#[test]
fn buffered_mutations_never_sync() {
    const N: u64 = 1_000;
    // 1,000 appends.
    let (mut core, provider, faults) =
        count_syncs(CoreOptions::new().key_pair(test_key_pair()), |core, _| {
            for i in 0..N {
                core.append(&crate::common::block(i)).unwrap();
            }
        });
    assert_eq!(faults.syncs(), 0, "syncs made by {N} buffered appends");
    assert!(provider.pending() > 0);
    core.sync().unwrap();
    assert_eq!(faults.syncs(), 5, "Core::sync syncs the five storages");
    assert_eq!(provider.pending(), 0, "Core::sync leaves nothing unsynced");
    core.close().unwrap();
    // The synced image is complete.
    let image = provider.crash_image(&Keep::Durable).unwrap();
    let core = Core::open(&image, "c/", CoreOptions::new()).unwrap();
    assert_eq!(core.length(), N);
    assert_eq!(core.get(N - 1).unwrap(), crate::common::block(N - 1));

    // 1,000 downloaded blocks, applied one proof at a time (as the facade does).
    let (writer, _) = crate::common::writer(N);
    let (mut reader, provider, faults) =
        count_syncs(CoreOptions::new().key(*writer.key()), |reader, _| {
            for i in 0..N {
                let request = Request {
                    fork: writer.fork(),
                    block: Some(BlockRequest {
                        index: i,
                        nodes: reader.missing_nodes(i).unwrap(),
                    }),
                    upgrade: (i == 0).then_some(UpgradeRequest {
                        start: 0,
                        length: N,
                    }),
                    ..Request::default()
                };
                let proof = writer.proof(&request).unwrap().unwrap();
                let verified = reader.verify(&proof).unwrap();
                reader.apply(verified).unwrap();
            }
        });
    assert_eq!(reader.contiguous_length(), N);
    assert_eq!(faults.syncs(), 0, "syncs made by {N} buffered downloads");
    reader.sync().unwrap();
    assert_eq!(faults.syncs(), 5, "Core::sync syncs the five storages");
    assert_eq!(provider.pending(), 0);
    reader.append(b"x").unwrap_err(); // a reader cannot append, and that syncs nothing
    reader.close().unwrap();
    let closed = faults.syncs();
    assert!(closed > 5, "Core::close syncs");
    let image = provider.crash_image(&Keep::Durable).unwrap();
    let reader = Core::open(&image, "c/", CoreOptions::new()).unwrap();
    assert_eq!(reader.length(), N);
    assert_eq!(reader.get(N - 1).unwrap(), crate::common::block(N - 1));

    // Synced: every acknowledged mutation is durable, so syncs are made as it goes.
    let (core, provider, faults) = count_syncs(
        CoreOptions::new()
            .key_pair(test_key_pair())
            .durability(Durability::Synced),
        |core, _| {
            for i in 0..10 {
                core.append(&crate::common::block(i)).unwrap();
            }
        },
    );
    assert!(faults.syncs() >= 20, "a synced append syncs data and oplog");
    let image = provider.crash_image(&Keep::Durable).unwrap();
    assert_eq!(
        Core::open(&image, "c/", CoreOptions::new())
            .unwrap()
            .length(),
        10
    );
    drop(core);
}
