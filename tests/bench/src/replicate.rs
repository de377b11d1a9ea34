//! Replication of one core over loopback TCP: a writer (Rust facade or JS corestore 6 via
//! `peer.mjs`) serves `--total` bytes of `--block-size` blocks, a reader downloads them. Both
//! sides keep their cores in memory. The time runs from the reader's connect to the last block
//! stored (including the handshake and the upgrade); at `--cap` seconds the run stops and the
//! contiguous blocks received so far count.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use corestore::{
    Corestore, Error as CoreError, GetOptions, Hypercore, ReplicationHandle, StoreOptions,
    StoreStorage,
};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::peer::JsPeer;
use crate::{Args, report};

/// Generous bound for setup commands (creating 100 MB in JS takes a while).
const SETUP_BOUND: Duration = Duration::from_secs(600);

/// The serving side, kept alive for the whole measurement.
enum Writer {
    /// The store, and the session the writer appended with: kept open while it serves, as
    /// the JS writer (`peer.mjs`) keeps its core open.
    Rust {
        store: Corestore,
        _core: Hypercore,
    },
    Js {
        _peer: JsPeer,
    },
}

/// Blocks `range` of the replicated core: block `i` is `block-{i}` repeated to `size` bytes
/// (what the JS writer of `peer.mjs` appends too).
pub(crate) fn labelled_blocks(range: std::ops::Range<u64>, size: usize) -> Vec<Vec<u8>> {
    range
        .map(|i| {
            let text = format!("block-{i}");
            let mut block = text.repeat(size / text.len() + 1).into_bytes();
            block.truncate(size);
            block
        })
        .collect()
}

/// Starts the writer; returns it with the core key (hex) and the TCP port it listens on.
async fn start_writer(
    kind: &str,
    script: &str,
    blocks: u64,
    block_size: u64,
) -> Result<(Writer, String, u16)> {
    match kind {
        "rust" => {
            let store = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;
            let core = store.get(GetOptions::name("bench")).await?;
            let size = usize::try_from(block_size)?;
            let mut next = 0u64;
            while next < blocks {
                let n = (blocks - next).min(100);
                core.append_batch(&labelled_blocks(next..next + n, size))
                    .await?;
                next += n;
            }
            let key = core.key().to_hex();
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let port = listener.local_addr()?.port();
            let serving = store.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    if let Err(e) = serving.replicate_tcp(socket, false) {
                        eprintln!("writer: cannot replicate: {e}");
                    }
                }
            });
            Ok((Writer::Rust { store, _core: core }, key, port))
        }
        "js" => {
            let mut peer = JsPeer::spawn(script)?;
            let created = peer.call_ok(
                "create",
                json!({"name": "bench", "blocks": blocks, "block_size": block_size, "content": "index", "hash": false}),
                SETUP_BOUND,
            )?;
            let key = created["key"].as_str().context("no key")?.to_owned();
            let listening = peer.call_ok("listen", json!({"port": 0}), SETUP_BOUND)?;
            let port = u16::try_from(listening["port"].as_u64().context("no port")?)?;
            Ok((Writer::Js { _peer: peer }, key, port))
        }
        other => bail!("--writer must be rust or js, not `{other}`"),
    }
}

/// Downloads with a Rust reader; returns (blocks stored, elapsed).
async fn rust_reader(key: &str, port: u16, blocks: u64, cap: Duration) -> Result<(u64, Duration)> {
    let store = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;
    let started = Instant::now();
    let core = store.get(GetOptions::key_str(key)).await?;
    let socket = TcpStream::connect(("127.0.0.1", port)).await?;
    let stream: ReplicationHandle = store.replicate_tcp(socket, true)?;
    let download = core.download(0..blocks);
    let outcome = download.done_within(Some(cap)).await;
    let elapsed = started.elapsed();
    let got = match outcome {
        Ok(()) => blocks,
        Err(CoreError::Timeout(_)) => {
            let mut n = 0u64;
            for i in 0..blocks {
                n += u64::from(core.has(i));
            }
            n
        }
        Err(e) => return Err(e.into()),
    };
    drop(download);
    stream.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.join()).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), store.close()).await;
    Ok((got, elapsed.min(cap)))
}

/// Downloads with a JavaScript reader (`peer.mjs`); returns (blocks stored, elapsed).
fn js_reader(
    script: &str,
    key: &str,
    port: u16,
    blocks: u64,
    cap: Duration,
) -> Result<(u64, Duration)> {
    let mut peer = JsPeer::spawn(script)?;
    let started = Instant::now();
    peer.call_ok("connect", json!({"port": port, "initiator": true}), cap)?;
    let left = cap.saturating_sub(started.elapsed());
    let reply = peer.call(
        "download",
        json!({"key": key, "length": blocks, "verify": false, "timeout_ms": left.as_millis()}),
        left + Duration::from_secs(30),
    )?;
    let elapsed = started.elapsed();
    if reply["ok"] == true {
        return Ok((blocks, elapsed));
    }
    if reply["code"] != "TIMEOUT" {
        bail!("JS download failed: {reply}");
    }
    let got = peer.count_present(key, blocks, Duration::from_secs(120))?;
    Ok((got, cap))
}

/// `replicate`: one writer → reader run.
pub(crate) async fn run(args: &Args) -> Result<Value> {
    let writer_kind = args.str("writer")?;
    let reader_kind = args.str("reader")?;
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("total", None)? / block_size;
    let cap = Duration::from_secs(args.num("cap", Some(60))?);
    let script = args.str("peer")?.to_owned();
    let (writer, key, port) = start_writer(writer_kind, &script, blocks, block_size).await?;
    let (got, elapsed) = match reader_kind {
        "rust" => rust_reader(&key, port, blocks, cap).await?,
        "js" => {
            let (script, key) = (script.clone(), key.clone());
            tokio::task::spawn_blocking(move || js_reader(&script, &key, port, blocks, cap))
                .await??
        }
        other => bail!("--reader must be rust or js, not `{other}`"),
    };
    if let Writer::Rust { store, .. } = &writer {
        let _ = tokio::time::timeout(Duration::from_secs(5), store.close()).await;
    }
    drop(writer);
    Ok(report(
        "replicate",
        got,
        got * block_size,
        elapsed,
        json!({
            "writer": writer_kind,
            "reader": reader_kind,
            "block_size": block_size,
            "complete": got == blocks,
        }),
    ))
}
