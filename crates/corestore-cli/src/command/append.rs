//! `corestore append (--name NAME [--namespace NS]... | KEY) [--block-size N] [FILE]`: append
//! a file or stdin to a core, one block per line or in blocks of N bytes.
//!
//! Input is read on its own thread and appended in batches (at most [`BATCH_BLOCKS`] blocks or
//! [`BATCH_BYTES`] bytes, one signature each), so a large file never sits in memory whole. A
//! failure part way leaves the batches before it appended.

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow};
use corestore::Key;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::cli::CoreRef;
use crate::output::{Ctx, human_bytes};
use crate::store;

/// Most blocks per appended batch.
const BATCH_BLOCKS: usize = 1024;
/// Most bytes per appended batch (a batch always holds at least one block).
const BATCH_BYTES: usize = 4 << 20;

/// The outcome of an append.
#[derive(Debug, Serialize)]
struct AppendReport {
    #[serde(serialize_with = "crate::output::display")]
    key: Key,
    appended: u64,
    appended_bytes: u64,
    length: u64,
    byte_length: u64,
}

impl fmt::Display for AppendReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "appended {} blocks ({}) to {}: length {}",
            self.appended,
            human_bytes(self.appended_bytes),
            self.key,
            self.length
        )
    }
}

/// Appends `file` (or stdin) to `core` (created if it is a new name).
pub(crate) async fn run(
    ctx: &Ctx,
    core: &CoreRef,
    file: Option<&Path>,
    block_size: Option<u64>,
) -> Result<()> {
    let input: Box<dyn BufRead + Send> = match file {
        Some(path) => Box::new(BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        )),
        None => Box::new(BufReader::new(io::stdin())),
    };
    let source = file.map_or_else(|| PathBuf::from("stdin"), Path::to_path_buf);
    let store = store::open(&ctx.store).await?;
    let result = append(&store, core, input, &source, block_size).await;
    store.close().await.context("cannot close the store")?;
    ctx.emit(&result?)
}

async fn append(
    store: &corestore::Corestore,
    core: &CoreRef,
    input: Box<dyn BufRead + Send>,
    source: &Path,
    block_size: Option<u64>,
) -> Result<AppendReport> {
    let log = store::core(store, core, true).await?;
    if !log.is_writable() {
        return Err(anyhow!(
            "core {} is not writable in this store (it was not created here by name)",
            log.key()
        ));
    }
    let (tx, mut rx) = mpsc::channel(2);
    // A plain thread: a read blocked on stdin must not hold up the runtime's shutdown.
    std::thread::spawn(move || read_batches(input, block_size, &tx));
    let (mut appended, mut appended_bytes) = (0u64, 0u64);
    while let Some(batch) = rx.recv().await {
        let batch: Vec<Vec<u8>> =
            batch.with_context(|| format!("cannot read {}", source.display()))?;
        log.append_batch(&batch)
            .await
            .with_context(|| format!("cannot append to core {}", log.key()))?;
        appended += batch.len() as u64;
        appended_bytes += batch.iter().map(|b| b.len() as u64).sum::<u64>();
    }
    let info = log.info().context("cannot read the core's info")?;
    Ok(AppendReport {
        key: info.key,
        appended,
        appended_bytes,
        length: info.length,
        byte_length: info.byte_length,
    })
}

/// Splits `input` into blocks (lines including their `\n`, or `block_size` bytes) and sends
/// them in batches; stops at the end of the input, at the first error, or when the receiver
/// is gone.
fn read_batches(
    mut input: Box<dyn BufRead + Send>,
    block_size: Option<u64>,
    tx: &mpsc::Sender<io::Result<Vec<Vec<u8>>>>,
) {
    let mut batch = Vec::new();
    let mut bytes = 0;
    loop {
        let mut block = Vec::new();
        let read = match block_size {
            Some(n) => input.by_ref().take(n).read_to_end(&mut block),
            None => input.read_until(b'\n', &mut block),
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                bytes += n;
                batch.push(block);
            }
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        if batch.len() >= BATCH_BLOCKS || bytes >= BATCH_BYTES {
            if tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                return;
            }
            bytes = 0;
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Ok(batch));
    }
}
