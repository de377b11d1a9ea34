//! `engine`: the per-block work of replicating one core, engine alone (no wire, no tasks).
//!
//! A writer core in memory holds `--total` bytes of `--block-size` blocks; a reader core (in
//! memory, opened by key) first takes the signed upgrade to the full length, then downloads
//! every block in order in rounds of `--group` requests, doing what the facade driver does
//! for each round: the reader counts the nodes it lacks for each block
//! ([`Core::missing_nodes`]), the writer builds each proof ([`Core::proof`]), the reader
//! verifies each ([`Core::verify_owned`]) and stores the round with one [`Core::apply_batch`].
//!
//! With `--trim 1` each request asks only for the nodes that neither the reader's tree nor the
//! earlier requests of its round bring ([`Core::missing_nodes_after`]: the count the driver
//! gets from [`Core::missing_nodes_unless`] with its set of nodes in flight); the default
//! `--trim 0` asks for every node the reader lacks.
//!
//! With `--many 1` the round's proofs are verified together ([`Core::verify_many`], blocks
//! hashed side by side, as the driver verifies the proofs of one read); the default `--many 0`
//! verifies each as it is built ([`Core::verify_owned`]).
//!
//! Reported: total seconds and the per-block microseconds of serving (proof building, block
//! read included) and receiving (missing-node count, verify, apply). Deterministic work, so
//! `valgrind --tool=callgrind` on a smaller `--total` gives repeatable instruction counts.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hypercore_lite::{
    BlockRequest, Core, CoreOptions, CoreStorage, Proof, Request, UpgradeRequest, VerifiedBatch,
};
use serde_json::{Value, json};

use crate::{Args, report};

/// Per-phase time of one run.
#[derive(Debug, Default)]
struct Phases {
    missing: Duration,
    proof: Duration,
    verify: Duration,
    apply: Duration,
}

/// Times `f`, adding its duration to `into`.
fn timed<T>(into: &mut Duration, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    *into += started.elapsed();
    out
}

/// Microseconds per block of `d`.
fn per_block(d: Duration, blocks: u64) -> f64 {
    d.as_secs_f64() * 1e6 / blocks.max(1) as f64
}

/// The writer: `blocks` blocks of `block_size` bytes (block `i` repeats `block-{i}`, as the
/// `replicate` scenario), appended 100 at a time.
fn writer(blocks: u64, block_size: u64) -> Result<Core> {
    let mut core = Core::open_storage(CoreStorage::memory(), CoreOptions::new())?;
    let size = usize::try_from(block_size)?;
    let mut next = 0u64;
    while next < blocks {
        let n = (blocks - next).min(100);
        core.append_batch(&crate::replicate::labelled_blocks(next..next + n, size))?;
        next += n;
    }
    Ok(core)
}

/// `engine --block-size N --total BYTES [--group 32] [--trim 0] [--many 0]`.
pub(crate) fn run(args: &Args) -> Result<Value> {
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("total", None)? / block_size;
    let group = args.num("group", Some(32))?.max(1);
    let trim = args.num("trim", Some(0))? != 0;
    let many = args.num("many", Some(0))? != 0;
    let source = writer(blocks, block_size)?;
    let mut reader =
        Core::open_storage(CoreStorage::memory(), CoreOptions::new().key(*source.key()))?;
    let upgrade = Request {
        fork: source.fork(),
        upgrade: Some(UpgradeRequest {
            start: 0,
            length: blocks,
        }),
        ..Request::default()
    };
    let proof = source.proof(&upgrade)?.context("no upgrade proof")?;
    reader.apply(reader.verify(&proof)?)?;

    let mut t = Phases::default();
    let started = Instant::now();
    let mut next = 0u64;
    while next < blocks {
        let end = (next + group).min(blocks);
        let mut batches: Vec<VerifiedBatch> = Vec::with_capacity(usize::try_from(end - next)?);
        let mut proofs: Vec<Proof> = Vec::new();
        let mut coming: Vec<BlockRequest> = Vec::new();
        for index in next..end {
            let nodes = timed(&mut t.missing, || {
                if trim {
                    reader.missing_nodes_after(index, &coming)
                } else {
                    reader.missing_nodes(index)
                }
            })?;
            if trim {
                coming.push(BlockRequest { index, nodes });
            }
            let request = Request {
                fork: source.fork(),
                block: Some(BlockRequest { index, nodes }),
                ..Request::default()
            };
            let proof = timed(&mut t.proof, || source.proof(&request))?
                .with_context(|| format!("no proof of block {index}"))?;
            if many {
                proofs.push(proof);
            } else {
                batches.push(timed(&mut t.verify, || reader.verify_owned(proof))?);
            }
        }
        if many {
            for verified in timed(&mut t.verify, || reader.verify_many(proofs)) {
                batches.push(verified?);
            }
        }
        for result in timed(&mut t.apply, || reader.apply_batch(batches)) {
            result?;
        }
        next = end;
    }
    let elapsed = started.elapsed();
    if reader.contiguous_length() != blocks {
        bail!(
            "the reader holds {} contiguous blocks of {blocks}",
            reader.contiguous_length()
        );
    }
    if let Some(last) = blocks.checked_sub(1)
        && reader.get(last)? != source.get(last)?
    {
        bail!("the last block differs");
    }
    Ok(report(
        "engine",
        blocks,
        blocks * block_size,
        elapsed,
        json!({
            "block_size": block_size,
            "group": group,
            "trim": trim,
            "many": many,
            "serve_us_per_block": per_block(t.proof, blocks),
            "receive_us_per_block": per_block(t.missing + t.verify + t.apply, blocks),
            "missing_us_per_block": per_block(t.missing, blocks),
            "verify_us_per_block": per_block(t.verify, blocks),
            "apply_us_per_block": per_block(t.apply, blocks),
        }),
    ))
}
