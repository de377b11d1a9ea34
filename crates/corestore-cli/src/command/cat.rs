//! `corestore cat (KEY | --name NAME [--namespace NS]...) [--start A] [--end B]`: write a
//! core's blocks to stdout (raw and back to back, or as hex in one JSON object).

use std::fmt;
use std::io::{self, Write as _};

use anyhow::{Context as _, Result, bail};
use corestore::{Hypercore, Key};
use serde::Serialize;

use crate::cli::{CoreRef, RangeArgs};
use crate::output::Ctx;
use crate::store;

/// The blocks, for `--json`.
#[derive(Debug, Serialize)]
struct CatReport {
    #[serde(serialize_with = "crate::output::display")]
    key: Key,
    start: u64,
    end: u64,
    /// Each block in hex.
    blocks: Vec<String>,
}

impl fmt::Display for CatReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.blocks {
            writeln!(f, "{b}")?;
        }
        Ok(())
    }
}

/// Writes blocks `[start, end)` of `core`; every block must be stored locally.
pub(crate) async fn run(ctx: &Ctx, core: &CoreRef, range: RangeArgs) -> Result<()> {
    let store = store::open(&ctx.store).await?;
    let result = cat(ctx, &store, core, range).await;
    store.close().await.context("cannot close the store")?;
    result
}

async fn cat(
    ctx: &Ctx,
    store: &corestore::Corestore,
    core: &CoreRef,
    range: RangeArgs,
) -> Result<()> {
    let log = store::core(store, core, false).await?;
    let length = log.length();
    let start = range.start.unwrap_or(0);
    let end = range.end.unwrap_or(length);
    if start > end || end > length {
        bail!("the range {start}..{end} is not within the core's {length} blocks");
    }
    if ctx.json {
        let mut blocks = Vec::new();
        for index in start..end {
            blocks.push(hex::encode(read(&log, index).await?));
        }
        return ctx.emit(&CatReport {
            key: log.key(),
            start,
            end,
            blocks,
        });
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    for index in start..end {
        let block = read(&log, index).await?;
        match out.write_all(&block) {
            // `corestore cat | head`: the reader has what it wanted.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
            r => r.context("cannot write to stdout")?,
        }
    }
    match out.flush() {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("cannot write to stdout"),
    }
}

async fn read(log: &Hypercore, index: u64) -> Result<Vec<u8>> {
    log.get_with(index, false, None).await.with_context(|| {
        format!(
            "cannot read block {index} of core {} (blocks not stored here can be fetched with `corestore fetch`)",
            log.key()
        )
    })
}
