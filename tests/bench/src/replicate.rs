//! Replication of one core over loopback TCP: a writer (Rust facade or JS corestore 6 via
//! `peer.mjs`) serves `--total` bytes of `--block-size` blocks, a reader downloads them. Both
//! sides keep their cores in memory. The time runs from the reader's connect to the last block
//! stored (including the handshake and the upgrade); at `--cap` seconds the run stops and the
//! contiguous blocks received so far count.
//!
//! Fresh memory: on the development VM the host takes back guest memory that has been free for
//! a couple of seconds (virtio-balloon free page reporting, under nested virtualisation), and
//! the first touch of such memory costs ~1.3 ms per MiB, as much as the crypto bound of the
//! bytes it will hold; whether a run met warm or reclaimed memory swung the 64 KiB result by
//! half. With `--prewarm 1` (the default) the reader's process touches and frees as much memory
//! as the download will store before the clock starts (a Rust reader here, a JS reader in
//! `peer.mjs`), so the figure measures replication in a process whose memory is warm, as in a
//! long-running peer; `--prewarm 0` measures whatever the machine gives.
//!
//! `--writer rust` serves from the same process as the reader (both peers on one Tokio runtime
//! with one worker per core); `--writer rust-process` from a child `corestore-bench
//! replicate-serve` with its own runtime, as two programs would (the JS writer always runs in
//! its own `node` process).

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
    /// A `corestore-bench replicate-serve` child (killed when dropped).
    RustProcess {
        _child: ServeChild,
    },
    Js {
        _peer: JsPeer,
    },
}

/// A running `corestore-bench replicate-serve`; killed when dropped.
struct ServeChild(std::process::Child);

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
            let (store, core, port) = rust_writer(blocks, block_size).await?;
            let key = core.key().to_hex();
            Ok((Writer::Rust { store, _core: core }, key, port))
        }
        "rust-process" => {
            let exe = std::env::current_exe().context("locating corestore-bench")?;
            let mut child = std::process::Command::new(exe)
                .arg("replicate-serve")
                .args(["--block-size", &block_size.to_string()])
                .args(["--total", &(blocks * block_size).to_string()])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::inherit())
                .spawn()
                .context("starting corestore-bench replicate-serve")?;
            let stdout = child.stdout.take().context("no stdout")?;
            let child = ServeChild(child);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let read =
                    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
                let _ = tx.send(read.map(|_| line));
            });
            let line = rx
                .recv_timeout(SETUP_BOUND)
                .context("replicate-serve did not start in time")??;
            let ready: Value = serde_json::from_str(&line)
                .with_context(|| format!("replicate-serve printed `{line}`"))?;
            let key = ready["key"].as_str().context("no key")?.to_owned();
            let port = u16::try_from(ready["port"].as_u64().context("no port")?)?;
            Ok((Writer::RustProcess { _child: child }, key, port))
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
        other => bail!("--writer must be rust, rust-process or js, not `{other}`"),
    }
}

/// The Rust writer: a memory store whose named core holds `blocks` labelled blocks, replicating
/// with every peer that connects to the returned loopback port.
async fn rust_writer(blocks: u64, block_size: u64) -> Result<(Corestore, Hypercore, u16)> {
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
    Ok((store, core, port))
}

/// `replicate-serve --block-size N --total BYTES`: the Rust writer of `replicate`, in a
/// process of its own. Appends the blocks to a named core of a memory store, listens on a
/// free loopback port, prints `{"key": HEX, "port": N}` and replicates with every peer that
/// connects until its stdin closes (the parent's end).
pub(crate) async fn serve(args: &Args) -> Result<Value> {
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("total", None)? / block_size;
    let (store, core, port) = rust_writer(blocks, block_size).await?;
    println!("{}", json!({"key": core.key().to_hex(), "port": port}));
    // Until the parent closes our stdin (or exits).
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
    })
    .await?;
    drop(core);
    let _ = tokio::time::timeout(Duration::from_secs(5), store.close()).await;
    Ok(json!({"scenario": "replicate-serve", "blocks": blocks}))
}

/// CPU time used so far by every thread of this process (the run time the kernel counts in
/// `/proc/self/task/*/schedstat`, in nanoseconds), or `None` where that is not available.
/// Threads that exited are not counted; the runtime's workers live for the whole run.
fn process_cpu() -> Option<Duration> {
    let mut total = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let path = task.ok()?.path().join("schedstat");
        let Ok(stat) = std::fs::read_to_string(path) else {
            continue; // the thread exited meanwhile
        };
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// Memory a reader prewarms: what the download will store, plus a quarter for the Merkle tree
/// (80 bytes per block; 8 % at 1 KiB) and the buffers.
fn prewarm_bytes(blocks: u64, block_size: u64) -> u64 {
    let data = blocks * block_size;
    data + data / 4
}

/// Touches and frees `bytes` of fresh memory, so that the pages a download is about to fill
/// are ones this guest has just used (see the module docs). The memory is one anonymous
/// mapping backed by transparent huge pages where Linux allows, as the memory store's large
/// chunks are: freed, it leaves whole huge pages for them.
fn prewarm(bytes: u64) -> Result<()> {
    let mut warm = memmap2::MmapMut::map_anon(usize::try_from(bytes)?)?;
    #[cfg(target_os = "linux")]
    let _ignored = warm.advise(memmap2::Advice::HugePage);
    warm.fill(1);
    drop(std::hint::black_box(warm));
    Ok(())
}

/// What a reader downloads, and how.
#[derive(Debug, Clone)]
struct Download {
    /// The core key (hex).
    key: String,
    /// The writer's loopback port.
    port: u16,
    /// Blocks to download (from 0).
    blocks: u64,
    /// When the run stops.
    cap: Duration,
    /// Bytes of memory to prewarm first, if any.
    warm: Option<u64>,
}

/// This process's CPU time since `before` (a [`process_cpu`] reading), if both are known.
fn cpu_since(before: Option<Duration>) -> Option<Duration> {
    process_cpu()
        .zip(before)
        .map(|(after, before)| after.saturating_sub(before))
}

/// Downloads with a Rust reader; returns (blocks stored, elapsed, this process's CPU time
/// meanwhile: both peers' when the writer is in process too, a steadier figure than the
/// elapsed time on a busy machine).
async fn rust_reader(d: &Download) -> Result<(u64, Duration, Option<Duration>)> {
    let store = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;
    if let Some(bytes) = d.warm {
        prewarm(bytes)?;
    }
    let cpu_before = process_cpu();
    let started = Instant::now();
    let core = store.get(GetOptions::key_str(&d.key)).await?;
    let socket = TcpStream::connect(("127.0.0.1", d.port)).await?;
    let stream: ReplicationHandle = store.replicate_tcp(socket, true)?;
    let download = core.download(0..d.blocks);
    let outcome = download.done_within(Some(d.cap)).await;
    let elapsed = started.elapsed();
    let cpu = cpu_since(cpu_before);
    let got = match outcome {
        Ok(()) => d.blocks,
        Err(CoreError::Timeout(_)) => {
            let mut n = 0u64;
            for i in 0..d.blocks {
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
    Ok((got, elapsed.min(d.cap), cpu))
}

/// Downloads with a JavaScript reader (`peer.mjs`); returns (blocks stored, elapsed, this
/// process's CPU time meanwhile: the in-process Rust writer's, if that is the writer).
fn js_reader(script: &str, d: &Download) -> Result<(u64, Duration, Option<Duration>)> {
    let mut peer = JsPeer::spawn(script)?;
    if let Some(bytes) = d.warm {
        peer.call_ok("prewarm", json!({"bytes": bytes}), SETUP_BOUND)?;
    }
    let cpu_before = process_cpu();
    let started = Instant::now();
    peer.call_ok("connect", json!({"port": d.port, "initiator": true}), d.cap)?;
    let left = d.cap.saturating_sub(started.elapsed());
    let reply = peer.call(
        "download",
        json!({"key": d.key, "length": d.blocks, "verify": false, "timeout_ms": left.as_millis()}),
        left + Duration::from_secs(30),
    )?;
    let elapsed = started.elapsed();
    let cpu = cpu_since(cpu_before);
    if reply["ok"] == true {
        return Ok((d.blocks, elapsed, cpu));
    }
    if reply["code"] != "TIMEOUT" {
        bail!("JS download failed: {reply}");
    }
    let got = peer.count_present(&d.key, d.blocks, Duration::from_secs(120))?;
    Ok((got, d.cap, cpu))
}

/// `replicate`: one writer → reader run.
pub(crate) async fn run(args: &Args) -> Result<Value> {
    let writer_kind = args.str("writer")?;
    let reader_kind = args.str("reader")?;
    let block_size = args.num("block-size", None)?;
    let blocks = args.num("total", None)? / block_size;
    let cap = Duration::from_secs(args.num("cap", Some(60))?);
    let script = args.str("peer")?.to_owned();
    let warm = match args.num("prewarm", Some(1))? {
        0 => None,
        1 => Some(prewarm_bytes(blocks, block_size)),
        other => bail!("--prewarm must be 0 or 1, not {other}"),
    };
    let (writer, key, port) = start_writer(writer_kind, &script, blocks, block_size).await?;
    let download = Download {
        key,
        port,
        blocks,
        cap,
        warm,
    };
    let (got, elapsed, cpu) = match reader_kind {
        "rust" => rust_reader(&download).await?,
        "js" => {
            let script = script.clone();
            tokio::task::spawn_blocking(move || js_reader(&script, &download)).await??
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
            "prewarmed": warm.is_some(),
            "process_cpu_seconds": cpu.map(|c| c.as_secs_f64()),
        }),
    ))
}
