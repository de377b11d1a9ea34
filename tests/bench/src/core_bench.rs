//! The `hypercore-lite` scenarios (a core in a directory, as JS hypercore 10 with
//! random-access-file) and the hashing/encryption bounds.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hypercore_lite::{Core, CoreOptions};
use rac_storage::DirectoryProvider;
use serde_json::{Value, json};

use crate::{Args, Mulberry32, report};

/// Opens (or creates) the core stored directly in `dir` (`dir/oplog`, `dir/tree`, …: the
/// layout of `new Hypercore(dir)` in JavaScript).
fn open_core(dir: &str, create: bool) -> Result<Core> {
    let provider = DirectoryProvider::new(dir);
    Core::open(&provider, "", CoreOptions::new().create(create))
        .with_context(|| format!("opening the core in {dir}"))
}

/// One batch of `count` blocks of `size` bytes (block `i` filled with `i % 251`).
fn batch(count: u64, size: u64) -> Result<Vec<Vec<u8>>> {
    let size = usize::try_from(size)?;
    Ok((0..count)
        .map(|i| vec![u8::try_from(i % 251).unwrap_or(0); size])
        .collect())
}

/// Appends `total / block_size` blocks in batches; returns the elapsed append time.
fn append_blocks(
    core: &mut Core,
    blocks: u64,
    block_size: u64,
    per_batch: u64,
) -> Result<Duration> {
    let one = batch(per_batch, block_size)?;
    let started = Instant::now();
    let mut left = blocks;
    while left > 0 {
        let n = usize::try_from(left.min(per_batch))?;
        core.append_batch(&one[..n])?;
        left -= left.min(per_batch);
    }
    Ok(started.elapsed())
}

/// `append`: `--total` bytes of `--block-size` blocks in batches of `--batch` (default 100).
pub(crate) fn append(args: &Args) -> Result<Value> {
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("total", None)? / block_size;
    let per_batch = args.num("batch", Some(100))?;
    let mut core = open_core(args.str("dir")?, true)?;
    let elapsed = append_blocks(&mut core, blocks, block_size, per_batch)?;
    core.close()?;
    Ok(report(
        "append",
        blocks,
        blocks * block_size,
        elapsed,
        json!({ "block_size": block_size }),
    ))
}

/// `fill`: the setup of `open` (batches of 1,000), reported but not a comparison.
pub(crate) fn fill(args: &Args) -> Result<Value> {
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("blocks", None)?;
    let mut core = open_core(args.str("dir")?, true)?;
    let elapsed = append_blocks(&mut core, blocks, block_size, 1000)?;
    core.close()?;
    Ok(report(
        "fill",
        blocks,
        blocks * block_size,
        elapsed,
        json!({}),
    ))
}

/// `seq-get`: every block in order (the open is not measured).
pub(crate) fn seq_get(args: &Args) -> Result<Value> {
    let core = open_core(args.str("dir")?, false)?;
    let length = core.length();
    let mut bytes = 0u64;
    let started = Instant::now();
    for i in 0..length {
        bytes += u64::try_from(core.get(i)?.len())?;
    }
    let elapsed = started.elapsed();
    Ok(report("seq-get", length, bytes, elapsed, json!({})))
}

/// `rand-get`: `--count` blocks chosen by mulberry32(`--seed`) modulo the length.
pub(crate) fn rand_get(args: &Args) -> Result<Value> {
    let core = open_core(args.str("dir")?, false)?;
    let length = core.length();
    if length == 0 {
        bail!("rand-get needs a non-empty core");
    }
    let count = args.num("count", None)?;
    let mut rng = Mulberry32::new(u32::try_from(args.num("seed", Some(42))?)?);
    let mut bytes = 0u64;
    let started = Instant::now();
    for _ in 0..count {
        let i = u64::from(rng.next_u32()) % length;
        bytes += u64::try_from(core.get(i)?.len())?;
    }
    let elapsed = started.elapsed();
    Ok(report("rand-get", count, bytes, elapsed, json!({})))
}

/// `open`: open an existing core and read its last block.
pub(crate) fn open(args: &Args) -> Result<Value> {
    let dir = args.str("dir")?;
    let started = Instant::now();
    let core = open_core(dir, false)?;
    let length = core.length();
    let last = core.get(length.checked_sub(1).context("empty core")?)?;
    let elapsed = started.elapsed();
    Ok(report(
        "open",
        1,
        u64::try_from(last.len())?,
        elapsed,
        json!({ "length": length }),
    ))
}

/// The leaf hashes of hypercore (BLAKE2b-256 of type 0, the u64 length and the block) of
/// `blocks`, computed side by side (four instances in one AVX2 vector) by the code under test,
/// [`corestore_keys::hash::leaves`]: the fastest BLAKE2b there is on this machine (it picks, by
/// block length, between hashing the blocks in place and hashing whole copies of the inputs so
/// that the last compression is side by side too), which is what a bound must use.
fn leaf_hashes(blocks: &[&[u8]]) -> Vec<corestore_keys::hash::Hash> {
    corestore_keys::hash::leaves(blocks)
}

/// `blake2b`: hash `--total` bytes as `--block-size` leaves, as many side by side as the
/// machine hashes at once: the bound of appending.
pub(crate) fn blake2b(args: &Args) -> Result<Value> {
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("total", None)? / block_size;
    let lanes = blake2b_simd::many::degree();
    let size = usize::try_from(block_size)?;
    let group: Vec<Vec<u8>> = (0..lanes).map(|i| vec![7u8 ^ i as u8; size]).collect();
    let mut acc = 0u8;
    let started = Instant::now();
    let mut done = 0u64;
    while done < blocks {
        let n = usize::try_from((blocks - done).min(lanes as u64))?;
        let refs: Vec<&[u8]> = group.iter().take(n).map(Vec::as_slice).collect();
        for h in leaf_hashes(&refs) {
            acc ^= h.0[0];
        }
        done += n as u64;
    }
    let elapsed = started.elapsed();
    Ok(report(
        "blake2b",
        blocks,
        blocks * block_size,
        elapsed,
        json!({ "sink": acc, "lanes": lanes }),
    ))
}

/// `crypto`: XChaCha20-Poly1305 (in place, detached tag) of every block plus the BLAKE2b leaf
/// hashes of the blocks, hashed side by side in groups as [`leaf_hashes`] allows: the CPU
/// bound of replicating (the sender encrypts, the receiver decrypts and hashes).
pub(crate) fn crypto(args: &Args) -> Result<Value> {
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("total", None)? / block_size;
    let cipher = XChaCha20Poly1305::new(&[9u8; 32].into());
    let lanes = blake2b_simd::many::degree();
    let size = usize::try_from(block_size)?;
    let mut group: Vec<Vec<u8>> = (0..lanes).map(|_| vec![7u8; size]).collect();
    let mut acc = 0u8;
    let started = Instant::now();
    let mut i = 0u64;
    while i < blocks {
        let n = usize::try_from((blocks - i).min(lanes as u64))?;
        for block in group.iter_mut().take(n) {
            let mut nonce = [0u8; 24];
            nonce[..8].copy_from_slice(&i.to_le_bytes());
            let tag = cipher
                .encrypt_in_place_detached(XNonce::from_slice(&nonce), &[], block)
                .map_err(|_| anyhow::anyhow!("encryption failed"))?;
            acc ^= tag[0];
            i += 1;
        }
        let refs: Vec<&[u8]> = group.iter().take(n).map(Vec::as_slice).collect();
        for h in leaf_hashes(&refs) {
            acc ^= h.0[0];
        }
    }
    let elapsed = started.elapsed();
    Ok(report(
        "crypto",
        blocks,
        blocks * block_size,
        elapsed,
        json!({ "sink": acc }),
    ))
}
