//! `corestore demo`: the whole job in one command, for the README's first line. Two stores in
//! a temporary folder; cores written in the first, served over loopback TCP, fetched into the
//! second, verified block by block; a short report. The folder is removed afterwards.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use corestore::{Corestore, GetOptions, Key, StoreOptions};
use serde::Serialize;
use tokio::net::TcpListener;

use crate::cli::RangeArgs;
use crate::command::{fetch, serve};
use crate::output::{Ctx, human_bytes};
use crate::store;

/// Bound on the demo's replication.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The cores the demo writes: name and blocks.
fn contents() -> Vec<(&'static str, Vec<Vec<u8>>)> {
    let notes = (1..=100)
        .map(|i| format!("note {i}: an append-only log, replicated\n").into_bytes())
        .collect();
    let log = (0..250)
        .map(|i| format!("{{\"event\":{i},\"kind\":\"tick\"}}").into_bytes())
        .collect();
    // 1 MiB of deterministic noise in 64 KiB blocks (xorshift).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let blob = (0..16)
        .map(|_| {
            (0..64 * 1024 / 8)
                .flat_map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x.to_le_bytes()
                })
                .collect()
        })
        .collect();
    vec![("notes", notes), ("log", log), ("blob", blob)]
}

/// The demo's report.
#[derive(Debug, Serialize)]
struct DemoReport {
    folder: String,
    address: String,
    cores: Vec<DemoCore>,
    replicate_ms: u128,
    verified_blocks: u64,
    verified_bytes: u64,
}

/// One core of the demo.
#[derive(Debug, Serialize)]
struct DemoCore {
    name: &'static str,
    #[serde(serialize_with = "crate::output::display")]
    key: Key,
    blocks: u64,
    bytes: u64,
}

impl fmt::Display for DemoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "corestore demo: two stores, A and B, in {}", self.folder)?;
        writeln!(f, "wrote {} cores in A:", self.cores.len())?;
        for c in &self.cores {
            writeln!(
                f,
                "  {:<6} {}  {:>5} blocks  {:>9}",
                c.name,
                c.key,
                c.blocks,
                human_bytes(c.bytes)
            )?;
        }
        writeln!(
            f,
            "A served them on {}; B fetched them by key in {} ms",
            self.address, self.replicate_ms
        )?;
        writeln!(
            f,
            "verified: all {} blocks ({}) in B match A, signatures and merkle proofs checked",
            self.verified_blocks,
            human_bytes(self.verified_bytes)
        )?;
        writeln!(f, "(the temporary folder has been removed)")
    }
}

/// Runs the demo.
pub(crate) async fn run(ctx: &Ctx) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("corestore-demo-")
        .tempdir()
        .context("cannot create a temporary folder")?;
    let a = store::open_with(&dir.path().join("a"), StoreOptions::new()).await?;
    let b = store::open_with(&dir.path().join("b"), StoreOptions::new()).await?;
    let report = demo(dir.path(), &a, &b).await;
    b.close().await.context("cannot close store B")?;
    a.close().await.context("cannot close store A")?;
    ctx.emit(&report?)
}

async fn demo(folder: &Path, a: &Corestore, b: &Corestore) -> Result<DemoReport> {
    let mut cores = Vec::new();
    let mut written = Vec::new();
    for (name, blocks) in contents() {
        let core = a
            .get(GetOptions::name(name))
            .await
            .with_context(|| format!("cannot create core {name:?} in A"))?;
        core.append_batch(&blocks)
            .await
            .with_context(|| format!("cannot append to core {name:?} in A"))?;
        cores.push(DemoCore {
            name,
            key: core.key(),
            blocks: core.length(),
            bytes: core.byte_length(),
        });
        written.push((core.key(), blocks));
        // The served store finds cores on disk when B asks: no need to keep them open.
        core.close().await;
    }

    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on 127.0.0.1")?;
    let address = listener.local_addr().context("cannot read the address")?;
    let server = tokio::spawn(serve::accept_loop(a.clone(), listener, serve::identity(a)));
    let keys: Vec<Key> = cores.iter().map(|c| c.key).collect();
    let started = Instant::now();
    let fetched = fetch::fetch(
        b,
        &address.to_string(),
        &keys,
        RangeArgs {
            start: None,
            end: None,
        },
        TIMEOUT,
        false,
    )
    .await;
    let replicate_ms = started.elapsed().as_millis();
    server.abort();
    fetched.context("B could not fetch the cores from A")?;

    let (mut verified_blocks, mut verified_bytes) = (0, 0);
    for (key, blocks) in &written {
        let copy = b
            .get(GetOptions::key(*key).create_if_missing(false))
            .await
            .with_context(|| format!("core {key} is missing in B"))?;
        if copy.length() != blocks.len() as u64 {
            bail!(
                "core {key} has {} blocks in B, {} in A",
                copy.length(),
                blocks.len()
            );
        }
        for (i, block) in (0u64..).zip(blocks) {
            let got = copy
                .get_with(i, false, None)
                .await
                .with_context(|| format!("block {i} of core {key} is missing in B"))?;
            if &got != block {
                bail!("block {i} of core {key} differs between A and B");
            }
            verified_blocks += 1;
            verified_bytes += got.len() as u64;
        }
    }
    Ok(DemoReport {
        folder: folder.display().to_string(),
        address: address.to_string(),
        cores,
        replicate_ms,
        verified_blocks,
        verified_bytes,
    })
}
