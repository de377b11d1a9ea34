//! Live replication between the Rust facade and the real JavaScript corestore 6 (hypercore
//! 10.38) and corestore 7 (hypercore 11.39), over TCP on 127.0.0.1.
//!
//! The JavaScript side is `tests/js/peer.mjs`, driven through [`corestore_interop::peer`].
//! Block `i` of every core is `block-<i>` repeated and cut to the block size (see
//! `tests/js/PEER.md`), so both sides can check every byte they receive.
//!
//! Matrix: for each corestore version and each direction (JS writer → Rust reader, Rust writer
//! → JS reader), the Rust side runs once as Noise initiator and once as responder, and who dials
//! is varied independently of the role. Each run replicates a full core (10,000 blocks in one
//! run per version and direction, a few hundred in the other), a sparse range of a second core,
//! and a live append. Then: a corestore 7 manifest-keyed core, one stream with 120 cores
//! all-to-all, cores opened (and created) after the connection is up, the number of
//! requests a Rust reader sends for a new length (one upgrade), and a sparse Rust peer that
//! upgrades a JS peer from a length it once had.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use corestore::{
    CoreEvent, Corestore, GetOptions, Hypercore, ReplicationHandle, StoreOptions, StoreStorage,
};
use corestore_interop::peer::{CorestoreVersion, JsPeer, PeerStorage};
use corestore_keys::manifest::core_key;
use corestore_keys::{Manifest, PublicKey};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

/// Bound on every single wait (a debug build on a loaded 2-core machine).
pub(crate) const BOUND: Duration = Duration::from_secs(180);
/// The same bound for the JavaScript side (`timeout_ms`), a little shorter so that its own
/// `TIMEOUT` reply (which names the command) arrives before our bound.
pub(crate) const JS_TIMEOUT_MS: u64 = 170_000;
/// Length of the core a sparse range is downloaded from.
const SPARSE_LEN: u64 = 1000;
/// The sparse range.
const SPARSE: std::ops::Range<u64> = 100..200;
/// Blocks appended live.
const LIVE: u64 = 5;

/// Block `i`: `block-<i>`, repeated and cut to `size` bytes when a size is given.
fn block(i: u64, size: Option<usize>) -> Vec<u8> {
    let s = format!("block-{i}").into_bytes();
    match size {
        None => s,
        Some(n) => s.iter().copied().cycle().take(n).collect(),
    }
}

fn size_json(size: Option<usize>) -> Value {
    size.map_or(Value::Null, |s| json!(s))
}

pub(crate) async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> Result<T> {
    tokio::time::timeout(BOUND, f)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: not done within {BOUND:?}"))
}

pub(crate) fn str_field<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v[field]
        .as_str()
        .with_context(|| format!("no string `{field}` in {v}"))
}

fn u64_field(v: &Value, field: &str) -> Result<u64> {
    v[field]
        .as_u64()
        .with_context(|| format!("no integer `{field}` in {v}"))
}

pub(crate) async fn rust_store(dir: Option<&tempfile::TempDir>) -> Result<Corestore> {
    let storage = match dir {
        Some(d) => StoreStorage::dir(d.path()),
        None => StoreStorage::memory(),
    };
    Ok(Corestore::new(storage, StoreOptions::new()).await?)
}

pub(crate) async fn js_peer(version: CorestoreVersion) -> Result<JsPeer> {
    JsPeer::spawn(version, PeerStorage::Memory, BOUND).await
}

/// Appends blocks `from..to` of the deterministic content to a Rust core.
async fn rust_append(core: &Hypercore, from: u64, to: u64, size: Option<usize>) -> Result<()> {
    let mut next = from;
    while next < to {
        let end = to.min(next + 1000);
        let batch: Vec<Vec<u8>> = (next..end).map(|i| block(i, size)).collect();
        let length = core.append_batch(&batch).await?;
        ensure!(
            length == end,
            "append_batch returned length {length}, expected {end}"
        );
        next = end;
    }
    Ok(())
}

/// Creates a JS core by name with `blocks` deterministic blocks; returns the `create` reply.
pub(crate) async fn js_create(
    js: &JsPeer,
    name: &str,
    blocks: u64,
    size: Option<usize>,
) -> Result<Value> {
    let reply = js
        .call_ok(
            "create",
            json!({"name": name, "blocks": blocks, "block_size": size_json(size),
                   "content": "index", "hash": false, "timeout_ms": JS_TIMEOUT_MS}),
            BOUND,
        )
        .await?;
    ensure!(u64_field(&reply, "length")? == blocks, "JS create: {reply}");
    // corestore 6 makes compat cores (key = public key), corestore 7 manifest-keyed ones.
    let compat = js.version() == CorestoreVersion::V6;
    ensure!(reply["compat"] == compat, "JS create compat: {reply}");
    Ok(reply)
}

/// Connects the Rust store and the JS peer over one TCP connection. `rust_initiator` is the
/// Noise role of the Rust side; `rust_dials` says who opens the TCP connection.
pub(crate) async fn connect(
    js: &JsPeer,
    store: &Corestore,
    rust_initiator: bool,
    rust_dials: bool,
) -> Result<ReplicationHandle> {
    let js_initiator = !rust_initiator;
    if rust_dials {
        let listening = js
            .call_ok(
                "listen",
                json!({"port": 0, "initiator": js_initiator}),
                BOUND,
            )
            .await?;
        let port = u16::try_from(u64_field(&listening, "port")?)?;
        let socket = bounded("TCP connect", TcpStream::connect(("127.0.0.1", port))).await??;
        let handle = store.replicate_tcp(socket, rust_initiator)?;
        let conn = js.wait_event("connection", BOUND).await?;
        ensure!(
            conn["initiator"] == js_initiator && conn["direction"] == "in",
            "JS connection event: {conn}"
        );
        Ok(handle)
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let dialing = js.send(
            "connect",
            json!({"port": port, "initiator": js_initiator, "timeout_ms": JS_TIMEOUT_MS}),
        )?;
        let (socket, _) = bounded("TCP accept", listener.accept()).await??;
        let handle = store.replicate_tcp(socket, rust_initiator)?;
        let conn = dialing.wait_ok(BOUND).await?;
        ensure!(
            conn["initiator"] == js_initiator && conn["direction"] == "out",
            "JS connect reply: {conn}"
        );
        ensure!(
            str_field(&conn, "handshake_hash")?.len() == 128,
            "JS connect reply: {conn}"
        );
        Ok(handle)
    }
}

/// Closes the stream (checking it ended cleanly), the Rust store and the JS peer.
pub(crate) async fn finish(handle: ReplicationHandle, store: Corestore, js: JsPeer) -> Result<()> {
    ensure!(
        !handle.is_finished(),
        "the replication stream ended before the test finished"
    );
    for event in js.take_events() {
        ensure!(
            event["event"] != "error" && event["event"] != "peer-closed",
            "unexpected JS event during the test: {event}\n{}",
            js.stderr()
        );
    }
    handle.close();
    bounded("replication stream end", handle.join()).await??;
    bounded("store close", store.close()).await??;
    js.exit(BOUND).await
}

/// Checks every block of `core` in `range` against the deterministic content, reading only
/// what is stored locally.
async fn check_rust_blocks(
    core: &Hypercore,
    range: std::ops::Range<u64>,
    size: Option<usize>,
) -> Result<()> {
    for i in range {
        let got = core
            .get_with(i, false, None)
            .await
            .with_context(|| format!("reading block {i} locally"))?;
        ensure!(
            got == block(i, size),
            "block {i}: got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
    Ok(())
}

/// Waits on the core's events until its length reaches `length`.
async fn wait_rust_length(
    core: &Hypercore,
    events: &mut tokio::sync::broadcast::Receiver<CoreEvent>,
    length: u64,
) -> Result<()> {
    bounded("live append on the Rust reader", async {
        while core.length() < length {
            match events.recv().await {
                Ok(CoreEvent::Append { length: l }) if l >= length => break,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => bail!("core events ended: {e}"),
            }
        }
        Ok(())
    })
    .await?
}

/// A JS `download` of `[start, end)` (whole core when `end` is `None`), checked block by block
/// on the JS side (`expect_content: "index"`).
async fn js_download(
    js: &JsPeer,
    key: &str,
    start: u64,
    end: Option<u64>,
    size: Option<usize>,
) -> Result<Value> {
    let mut args = json!({"key": key, "start": start, "expect_content": "index",
                          "block_size": size_json(size), "timeout_ms": JS_TIMEOUT_MS});
    if let Some(end) = end {
        args["end"] = json!(end);
    }
    let reply = js.call_ok("download", args, BOUND).await?;
    ensure!(
        reply["verified"] == true && reply["mismatches"] == 0,
        "JS download content check failed: {reply}"
    );
    ensure!(str_field(&reply, "key")? == key, "JS download key: {reply}");
    if let Some(end) = end {
        ensure!(
            u64_field(&reply, "blocks")? == end - start,
            "JS download: {reply}"
        );
    }
    Ok(reply)
}

/// One run of the matrix.
#[derive(Debug, Clone, Copy)]
struct Run {
    version: CorestoreVersion,
    rust_initiator: bool,
    rust_dials: bool,
    /// Blocks of the fully downloaded core.
    blocks: u64,
    block_size: Option<usize>,
    /// Keep the Rust side's store on disk (else in memory).
    rust_on_disk: bool,
}

/// JS writer → Rust reader: full download, sparse range, live append.
async fn js_writer_rust_reader(run: Run) -> Result<()> {
    let Run {
        version,
        blocks: n,
        block_size: size,
        ..
    } = run;
    let js = js_peer(version).await?;
    let full = js_create(&js, "full", n, size).await?;
    let sparse = js_create(&js, "sparse", SPARSE_LEN, size).await?;
    let full_key = str_field(&full, "key")?.to_owned();
    let sparse_key = str_field(&sparse, "key")?.to_owned();

    let dir = tempfile::tempdir()?;
    let store = rust_store(run.rust_on_disk.then_some(&dir)).await?;
    let opts = |key: &str| GetOptions::key_str(key).timeout(BOUND);
    let rfull = store.get(opts(&full_key)).await?;
    let rsparse = store.get(opts(&sparse_key)).await?;
    ensure!(!rfull.is_writable(), "a remote core opened writable");
    ensure!(rfull.key().to_hex() == full_key, "Rust core key differs");
    ensure!(
        rfull.discovery_key().to_hex() == str_field(&full, "discovery_key")?,
        "Rust and JS discovery keys differ"
    );
    let handle = connect(&js, &store, run.rust_initiator, run.rust_dials).await?;

    // Full download (open range: ends at the length the writer announces).
    rfull.download(..).done_within(Some(BOUND)).await?;
    ensure!(
        rfull.length() == n,
        "length {} after full download",
        rfull.length()
    );
    ensure!(
        rfull.contiguous_length() == n,
        "contiguous length {}",
        rfull.contiguous_length()
    );
    check_rust_blocks(&rfull, 0..n, size).await?;
    let expected_bytes: u64 = (0..n).map(|i| block(i, size).len() as u64).sum();
    ensure!(
        rfull.byte_length() == expected_bytes,
        "byte length {}",
        rfull.byte_length()
    );

    // Sparse range: only [100, 200) is stored.
    rsparse.download(SPARSE).done_within(Some(BOUND)).await?;
    ensure!(
        rsparse.length() == SPARSE_LEN,
        "sparse core length {}",
        rsparse.length()
    );
    check_rust_blocks(&rsparse, SPARSE, size).await?;
    for i in (0..SPARSE_LEN).filter(|i| !SPARSE.contains(i)) {
        ensure!(
            !rsparse.has(i),
            "block {i} outside the sparse range is stored"
        );
    }
    ensure!(rsparse.contiguous_length() == 0, "sparse contiguous length");
    let info = rsparse.info()?;
    ensure!(info.peers == 1, "sparse core peers: {info:?}");

    // Live append on the JS writer, seen through the Rust reader's events.
    let mut events = rfull.events();
    let appended = js
        .call_ok(
            "append",
            json!({"name": "full", "count": LIVE, "block_size": size_json(size)}),
            BOUND,
        )
        .await?;
    ensure!(
        u64_field(&appended, "length")? == n + LIVE,
        "JS append: {appended}"
    );
    wait_rust_length(&rfull, &mut events, n + LIVE).await?;
    for i in n..n + LIVE {
        let got = bounded("live block", rfull.get(i)).await??;
        ensure!(got == block(i, size), "live block {i}");
    }
    ensure!(rfull.length() == n + LIVE, "length after live append");
    let js_info = js.call_ok("info", json!({"name": "full"}), BOUND).await?;
    ensure!(js_info["peers"] == 1, "JS writer peers: {js_info}");

    drop((rfull, rsparse));
    finish(handle, store, js).await
}

/// Rust writer → JS reader: full download, sparse range, live append.
async fn rust_writer_js_reader(run: Run) -> Result<()> {
    let Run {
        version,
        blocks: n,
        block_size: size,
        ..
    } = run;
    let dir = tempfile::tempdir()?;
    let store = rust_store(run.rust_on_disk.then_some(&dir)).await?;
    let full = store.get(GetOptions::name("full")).await?;
    let sparse = store.get(GetOptions::name("sparse")).await?;
    rust_append(&full, 0, n, size).await?;
    rust_append(&sparse, 0, SPARSE_LEN, size).await?;
    let full_key = full.key().to_hex();
    let sparse_key = sparse.key().to_hex();

    let js = js_peer(version).await?;
    let handle = connect(&js, &store, run.rust_initiator, run.rust_dials).await?;

    // Full download: without `end` the JS reader waits for the peer, updates, and downloads
    // up to the length it learnt.
    let got = js_download(&js, &full_key, 0, None, size).await?;
    ensure!(
        u64_field(&got, "length")? == n && u64_field(&got, "blocks")? == n,
        "JS full download: {got}"
    );
    ensure!(
        u64_field(&got, "contiguous_length")? == n,
        "JS full download: {got}"
    );
    let expected_bytes: u64 = (0..n).map(|i| block(i, size).len() as u64).sum();
    ensure!(
        u64_field(&got, "byte_length")? == expected_bytes,
        "JS full download: {got}"
    );
    ensure!(got["writable"] == false, "JS reader writable: {got}");

    // Sparse range.
    let got = js_download(&js, &sparse_key, SPARSE.start, Some(SPARSE.end), size).await?;
    ensure!(
        u64_field(&got, "length")? == SPARSE_LEN,
        "JS sparse download: {got}"
    );
    ensure!(
        u64_field(&got, "contiguous_length")? == 0,
        "JS sparse download: {got}"
    );
    let mut checks = Vec::new();
    for i in (0..SPARSE_LEN).filter(|i| !SPARSE.contains(i)) {
        checks.push((i, js.send("has", json!({"key": sparse_key, "start": i}))?));
    }
    for (i, pending) in checks {
        let has = pending.wait_ok(BOUND).await?;
        ensure!(
            has["has"] == false,
            "JS reader has block {i} outside the range: {has}"
        );
    }
    let has = js
        .call_ok(
            "has",
            json!({"key": sparse_key, "start": SPARSE.start, "end": SPARSE.end}),
            BOUND,
        )
        .await?;
    ensure!(
        has["has"] == true,
        "JS reader lacks the sparse range: {has}"
    );

    // Live append on the Rust writer, seen by the JS reader.
    let waiting = js.send(
        "wait-length",
        json!({"key": full_key, "length": n + LIVE, "timeout_ms": JS_TIMEOUT_MS}),
    )?;
    rust_append(&full, n, n + LIVE, size).await?;
    let seen = waiting.wait_ok(BOUND).await?;
    ensure!(
        u64_field(&seen, "length")? == n + LIVE,
        "JS wait-length: {seen}"
    );
    js_download(&js, &full_key, n, Some(n + LIVE), size).await?;
    let value = js
        .call_ok(
            "get",
            json!({"key": full_key, "index": n + LIVE - 1}),
            BOUND,
        )
        .await?;
    ensure!(
        str_field(&value, "value")? == hex::encode(block(n + LIVE - 1, size)),
        "JS get of the last live block: {value}"
    );
    ensure!(full.info()?.peers == 1, "Rust writer peers");

    drop((full, sparse));
    finish(handle, store, js).await
}

const V6: CorestoreVersion = CorestoreVersion::V6;
const V7: CorestoreVersion = CorestoreVersion::V7;
/// The big core: 10,000 small blocks (each exactly `block-<i>`).
const BIG: u64 = 10_000;
/// The core of the role variations.
const SMALL: u64 = 300;

fn big(version: CorestoreVersion, rust_initiator: bool, rust_dials: bool) -> Run {
    Run {
        version,
        rust_initiator,
        rust_dials,
        blocks: BIG,
        block_size: None,
        rust_on_disk: true,
    }
}

fn small(version: CorestoreVersion, rust_initiator: bool, rust_dials: bool) -> Run {
    Run {
        version,
        rust_initiator,
        rust_dials,
        blocks: SMALL,
        block_size: Some(64),
        rust_on_disk: false,
    }
}

// Per version, the four runs cover both Noise roles of the Rust side in each direction, and
// every combination of (Rust role, who dials).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_js_writer_rust_reader_10k_rust_initiator_rust_dials() -> Result<()> {
    js_writer_rust_reader(big(V6, true, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_js_writer_rust_reader_rust_responder_rust_dials() -> Result<()> {
    js_writer_rust_reader(small(V6, false, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_rust_writer_js_reader_10k_rust_responder_js_dials() -> Result<()> {
    rust_writer_js_reader(big(V6, false, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_rust_writer_js_reader_rust_initiator_js_dials() -> Result<()> {
    rust_writer_js_reader(small(V6, true, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_js_writer_rust_reader_10k_rust_responder_js_dials() -> Result<()> {
    js_writer_rust_reader(big(V7, false, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_js_writer_rust_reader_rust_initiator_js_dials() -> Result<()> {
    js_writer_rust_reader(small(V7, true, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_rust_writer_js_reader_10k_rust_initiator_rust_dials() -> Result<()> {
    rust_writer_js_reader(big(V7, true, true)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_rust_writer_js_reader_rust_responder_rust_dials() -> Result<()> {
    rust_writer_js_reader(small(V7, false, true)).await
}

/// A corestore 7 core is manifest-keyed: its key is the hash of a version-1 manifest naming the
/// signer, not the signer's public key. Rust downloads it by key alone (learning and checking
/// the manifest from the peer) and verifies every block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_manifest_keyed_core_downloaded_by_rust() -> Result<()> {
    let js = js_peer(V7).await?;
    let n = 200;
    let created = js_create(&js, "manifest", n, Some(100)).await?;
    let key = str_field(&created, "key")?.to_owned();
    let manifest = &created["manifest"];
    ensure!(manifest["version"] == 1, "cs7 manifest: {manifest}");
    let signer_hex = manifest["signers"][0]["publicKey"]
        .as_str()
        .with_context(|| format!("no signer in {manifest}"))?;
    ensure!(signer_hex != key, "a corestore 7 core with a compat key");
    let signer: [u8; 32] = hex::decode(signer_hex)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("signer key length"))?;
    let derived = core_key(
        &Manifest::default_signer(PublicKey::from_bytes(signer)),
        false,
    )?;
    ensure!(
        derived.to_hex() == key,
        "manifest v1 hash {} is not the key {key}",
        derived.to_hex()
    );

    let dir = tempfile::tempdir()?;
    let store = rust_store(Some(&dir)).await?;
    let core = store.get(GetOptions::key_str(&key).timeout(BOUND)).await?;
    let handle = connect(&js, &store, true, true).await?;
    core.download(..).done_within(Some(BOUND)).await?;
    ensure!(
        core.length() == n && core.contiguous_length() == n,
        "length {}",
        core.length()
    );
    check_rust_blocks(&core, 0..n, Some(100)).await?;
    ensure!(core.key().to_hex() == key, "key changed");
    drop(core);
    finish(handle, store, js).await
}

/// Cores per side in the all-to-all test.
const MANY: u64 = 60;

fn many_len(i: u64) -> u64 {
    5 + i % 11
}

/// One connection carries `2 * MANY` cores: the JS peer's and the Rust store's, each side
/// downloading all of the other's.
async fn many_cores_one_stream(version: CorestoreVersion) -> Result<()> {
    let js = js_peer(version).await?;
    let mut creating = Vec::new();
    for i in 0..MANY {
        creating.push(js.send(
            "create",
            json!({"name": format!("js-{i}"), "blocks": many_len(i), "content": "index",
                   "hash": false, "timeout_ms": JS_TIMEOUT_MS}),
        )?);
    }
    let mut js_keys = Vec::new();
    for (i, pending) in (0..MANY).zip(creating) {
        let reply = pending.wait_ok(BOUND).await?;
        ensure!(
            u64_field(&reply, "length")? == many_len(i),
            "JS create: {reply}"
        );
        js_keys.push(str_field(&reply, "key")?.to_owned());
    }

    let store = rust_store(None).await?;
    let mut rust_cores = Vec::new();
    for i in 0..MANY {
        let core = store.get(GetOptions::name(format!("rust-{i}"))).await?;
        rust_append(&core, 0, many_len(i), None).await?;
        rust_cores.push(core);
    }
    let mut readers = Vec::new();
    for key in &js_keys {
        readers.push(store.get(GetOptions::key_str(key).timeout(BOUND)).await?);
    }

    let handle = connect(&js, &store, true, true).await?;

    // The JS peer opens every Rust core (after the connection is up) and downloads it.
    let mut downloads = Vec::new();
    for core in &rust_cores {
        let key = core.key().to_hex();
        downloads.push((
            key.clone(),
            js.send(
                "download",
                json!({"key": key, "expect_content": "index", "timeout_ms": JS_TIMEOUT_MS}),
            )?,
        ));
    }
    // Meanwhile Rust downloads every JS core.
    let all: Vec<_> = readers.iter().map(|c| c.download(..)).collect();
    for (i, (d, core)) in all.iter().zip(&readers).enumerate() {
        d.done_within(Some(BOUND))
            .await
            .with_context(|| format!("Rust download of JS core {i}"))?;
        let n = many_len(i as u64);
        ensure!(core.length() == n, "JS core {i}: length {}", core.length());
        check_rust_blocks(core, 0..n, None).await?;
    }
    for (i, (key, pending)) in downloads.into_iter().enumerate() {
        let reply = pending.wait_ok(BOUND).await?;
        let n = many_len(i as u64);
        ensure!(
            reply["verified"] == true && u64_field(&reply, "blocks")? == n,
            "JS download of Rust core {i}: {reply}"
        );
        ensure!(str_field(&reply, "key")? == key, "JS download key: {reply}");
    }
    // One stream carried them all.
    let conns = js.call_ok("conns", json!({}), BOUND).await?;
    ensure!(
        conns["conns"].as_array().map(Vec::len) == Some(1),
        "JS connections: {conns}"
    );
    for core in rust_cores.iter().chain(&readers) {
        ensure!(
            core.info()?.peers == 1,
            "core {} peers",
            core.key().to_hex()
        );
    }
    drop((all, rust_cores, readers));
    finish(handle, store, js).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_many_cores_one_stream() -> Result<()> {
    many_cores_one_stream(V6).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_many_cores_one_stream() -> Result<()> {
    many_cores_one_stream(V7).await
}

/// Cores opened (and created) after the connection is up, on both sides.
async fn late_open(version: CorestoreVersion) -> Result<()> {
    let js = js_peer(version).await?;
    let store = rust_store(None).await?;
    // Cores that exist before the connection but that the remote opens only later.
    let js_early = js_create(&js, "early", 40, Some(32)).await?;
    let js_early_key = str_field(&js_early, "key")?.to_owned();
    let rust_early = store.get(GetOptions::name("early")).await?;
    rust_append(&rust_early, 0, 40, Some(32)).await?;

    let handle = connect(&js, &store, false, false).await?;

    // Cores created after the connection is up.
    let js_late = js_create(&js, "late", 30, Some(32)).await?;
    let js_late_key = str_field(&js_late, "key")?.to_owned();
    let rust_late = store.get(GetOptions::name("late")).await?;
    rust_append(&rust_late, 0, 30, Some(32)).await?;

    // Rust opens the JS cores now.
    let mut readers = Vec::new();
    for (key, n) in [(&js_early_key, 40), (&js_late_key, 30)] {
        let core = store.get(GetOptions::key_str(key).timeout(BOUND)).await?;
        core.download(..).done_within(Some(BOUND)).await?;
        ensure!(
            core.length() == n,
            "late-opened JS core {key}: length {}",
            core.length()
        );
        check_rust_blocks(&core, 0..n, Some(32)).await?;
        readers.push(core);
    }
    // JS opens the Rust cores now.
    for (core, n) in [(&rust_early, 40), (&rust_late, 30)] {
        let got = js_download(&js, &core.key().to_hex(), 0, None, Some(32)).await?;
        ensure!(
            u64_field(&got, "length")? == n,
            "late-opened Rust core: {got}"
        );
    }
    // And the late cores are live: appends after the late open reach the other side.
    let waiting = js.send(
        "wait-length",
        json!({"key": rust_late.key().to_hex(), "length": 31, "timeout_ms": JS_TIMEOUT_MS}),
    )?;
    rust_append(&rust_late, 30, 31, Some(32)).await?;
    waiting.wait_ok(BOUND).await?;
    js_download(&js, &rust_late.key().to_hex(), 30, Some(31), Some(32)).await?;

    let reader = &readers[1];
    let mut events = reader.events();
    js.call_ok(
        "append",
        json!({"name": "late", "count": 1, "block_size": 32}),
        BOUND,
    )
    .await?;
    wait_rust_length(reader, &mut events, 31).await?;
    let got = bounded("late live block", reader.get(30)).await??;
    ensure!(got == block(30, Some(32)), "late live block");

    drop((rust_early, rust_late, readers));
    finish(handle, store, js).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_late_open_both_sides() -> Result<()> {
    late_open(V6).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_late_open_both_sides() -> Result<()> {
    late_open(V7).await
}

/// A Rust reader asks a JS writer for an upgrade once per new length: after reading one block
/// of a core it had not seen, the writer received exactly two requests (the upgrade, then the
/// block). The block's answer comes after the writer handled every earlier request on the
/// channel, so a second upgrade request sent at the end of the round that applied the first
/// would be counted.
async fn one_upgrade_request_per_length(version: CorestoreVersion) -> Result<()> {
    let js = js_peer(version).await?;
    let created = js_create(&js, "upgrade-once", 20, None).await?;
    let key = str_field(&created, "key")?.to_owned();
    let store = rust_store(None).await?;
    let core = store.get(GetOptions::key_str(&key).timeout(BOUND)).await?;
    let handle = connect(&js, &store, true, true).await?;
    let got = bounded("block 0", core.get(0)).await??;
    ensure!(got == block(0, None), "block 0");
    ensure!(core.length() == 20, "length {}", core.length());
    let info = js
        .call_ok("info", json!({"name": "upgrade-once"}), BOUND)
        .await?;
    let received = &info["remote"][0]["requests_received"];
    ensure!(
        received == 2,
        "the JS writer received {received} requests for one upgrade and one block: {info}"
    );
    drop(core);
    finish(handle, store, js).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_one_upgrade_request_per_length() -> Result<()> {
    one_upgrade_request_per_length(V6).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_one_upgrade_request_per_length() -> Result<()> {
    one_upgrade_request_per_length(V7).await
}

/// A new memory store that opens `key` and replicates with `writer` over a pipe until the
/// core is `length` long (downloading nothing); returns the store, the core, its event
/// receiver and the two ends of the stream (kept open by the caller).
async fn rust_follower(
    writer: &Corestore,
    key: &str,
    length: u64,
) -> Result<(
    Corestore,
    Hypercore,
    tokio::sync::broadcast::Receiver<CoreEvent>,
    [ReplicationHandle; 2],
)> {
    let store = rust_store(None).await?;
    let core = store.get(GetOptions::key_str(key).timeout(BOUND)).await?;
    let mut events = core.events();
    let (x, y) = tokio::io::duplex(64 * 1024);
    let streams = [writer.replicate(x, true)?, store.replicate(y, false)?];
    wait_rust_length(&core, &mut events, length).await?;
    Ok((store, core, events, streams))
}

/// Ends the stream between a Rust store and the JS peer, and the JS peer's report of it.
async fn leave_js(js: &JsPeer, handle: ReplicationHandle) -> Result<()> {
    handle.close();
    bounded("stream to the JS peer ends", handle.join()).await??;
    js.wait_event("peer-closed", BOUND).await?;
    Ok(())
}

/// A sparse Rust peer upgrades a JS peer that is behind it: the Rust follower was 10 long
/// (roots only), then 100, and holds no block, so it first tells the JS peer it cannot
/// upgrade it from 10, then, having found the roots of 10 in its tree, that it can; the JS
/// peer, cut off from the writer, reaches 100 through it alone. A second sparse Rust peer
/// that went from 0 to 100 at once lacks the roots of 10: it never says it can upgrade the
/// JS peer, which therefore sends it no request (told otherwise, hypercore would ask it for
/// the upgrade, get `noData`, and ask again).
async fn sparse_peer_upgrades_from_a_length_it_had(version: CorestoreVersion) -> Result<()> {
    let js = js_peer(version).await?;
    let writer_store = rust_store(None).await?;
    let writer = writer_store.get(GetOptions::name("relayed")).await?;
    rust_append(&writer, 0, 10, None).await?;
    let key = writer.key().to_hex();
    // The JS peer gets the first 10 blocks from the writer, then leaves it.
    let to_writer = connect(&js, &writer_store, true, true).await?;
    js_download(&js, &key, 0, Some(10), None).await?;
    leave_js(&js, to_writer).await?;
    // The follower sees length 10, then 100, downloading nothing.
    let (follower_store, follower, mut events, _wf) =
        rust_follower(&writer_store, &key, 10).await?;
    ensure!(
        follower.length() == 10,
        "follower length {}",
        follower.length()
    );
    rust_append(&writer, 10, 100, None).await?;
    wait_rust_length(&follower, &mut events, 100).await?;
    ensure!(
        follower.info()?.contiguous_length == 0,
        "the follower stored blocks"
    );
    // The jumper learns of the core at length 100.
    let (jumper_store, jumper, _, _wj) = rust_follower(&writer_store, &key, 100).await?;
    // The JS peer meets the jumper first, then the follower, the only one that can upgrade it.
    let to_jumper = connect(&js, &jumper_store, true, true).await?;
    let handle = connect(&js, &follower_store, true, true).await?;
    let got = js
        .call_ok(
            "wait-length",
            json!({"key": key, "length": 100, "timeout_ms": JS_TIMEOUT_MS}),
            BOUND,
        )
        .await?;
    ensure!(u64_field(&got, "length")? == 100, "JS peer: {got}");
    let info = js.call_ok("info", json!({"key": key}), BOUND).await?;
    let asked: Vec<u64> = info["remote"]
        .as_array()
        .context("no remote list")?
        .iter()
        .map(|r| r["requests_sent"].as_u64().unwrap_or(u64::MAX))
        .collect();
    ensure!(
        asked.len() == 2 && asked.iter().filter(|&&n| n == 0).count() == 1,
        "the JS peer should have asked the follower only: {info}"
    );
    leave_js(&js, to_jumper).await?;
    drop((writer, follower, jumper));
    bounded("jumper store close", jumper_store.close()).await??;
    bounded("writer store close", writer_store.close()).await??;
    finish(handle, follower_store, js).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_sparse_peer_upgrades_from_a_length_it_had() -> Result<()> {
    sparse_peer_upgrades_from_a_length_it_had(V6).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_sparse_peer_upgrades_from_a_length_it_had() -> Result<()> {
    sparse_peer_upgrades_from_a_length_it_had(V7).await
}
