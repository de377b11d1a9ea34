//! Conflict detection (spec §9.9) between the Rust facade and JavaScript corestore 6
//! (hypercore 10): a JS store and Rust stores share one primary key, so the core named `log`
//! has one key pair everywhere, and they write different blocks under it. A reader that holds
//! one history and meets the other finds the conflict with a probe (request id 0), then sends
//! its own proof, and the writer that receives it finds the conflict too. Run once with a Rust
//! reader probing a JS writer and once with a JS reader probing a Rust writer.

use anyhow::{Context, Result, ensure};
use corestore::{
    CoreEvent, Corestore, GetOptions, Hypercore, PrimaryKey, ReplicationHandle, StoreEvent,
    StoreOptions, StoreStorage,
};
use corestore_interop::peer::{CorestoreVersion, JsPeer, PeerStorage};
use serde_json::json;
use tokio::sync::broadcast;

use crate::replicate::{BOUND, JS_TIMEOUT_MS, bounded, connect, js_create, str_field};

const PRIMARY: [u8; 32] = [0x5a; 32];

async fn writer_store(blocks: u64, prefix: &str) -> Result<(Corestore, Hypercore)> {
    let options = StoreOptions::new().primary_key(PrimaryKey::from_bytes(PRIMARY));
    let store = Corestore::new(StoreStorage::memory(), options).await?;
    let core = store.get(GetOptions::name("log")).await?;
    let data: Vec<Vec<u8>> = (0..blocks)
        .map(|i| format!("{prefix}-{i}").into_bytes())
        .collect();
    core.append_batch(&data).await?;
    Ok((store, core))
}

fn duplex(a: &Corestore, b: &Corestore) -> Result<(ReplicationHandle, ReplicationHandle)> {
    let (x, y) = tokio::io::duplex(64 * 1024);
    Ok((a.replicate(x, true)?, b.replicate(y, false)?))
}

/// Waits for the store's `Conflict` event; returns its length and fork.
async fn rust_conflict(events: &mut broadcast::Receiver<StoreEvent>) -> Result<(u64, u64)> {
    bounded("Rust conflict event", async {
        loop {
            if let StoreEvent::Conflict { length, fork, .. } = events.recv().await? {
                return Ok((length, fork));
            }
        }
    })
    .await?
}

/// Waits for the JS peer's `conflict` event on `key`; returns its length and fork.
async fn js_conflict(js: &JsPeer, key: &str) -> Result<(u64, u64)> {
    let event = js.wait_event("conflict", BOUND).await?;
    ensure!(str_field(&event, "key")? == key, "JS conflict: {event}");
    let field = |f: &str| event[f].as_u64().with_context(|| format!("{f} in {event}"));
    Ok((field("length")?, field("fork")?))
}

/// Waits for a `PeerRemove` of a core, failing on a `Conflict` before it.
async fn no_conflict_until_peer_remove(events: &mut broadcast::Receiver<CoreEvent>) -> Result<()> {
    bounded("PeerRemove", async {
        loop {
            match events.recv().await? {
                CoreEvent::PeerRemove { .. } => return Ok(()),
                e @ CoreEvent::Conflict { .. } => anyhow::bail!("unexpected {e:?}"),
                _ => {}
            }
        }
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_reader_probes_a_forked_js_writer() -> Result<()> {
    let js =
        JsPeer::spawn_with_primary_key(CorestoreVersion::V6, PeerStorage::Memory, PRIMARY, BOUND)
            .await?;
    let created = js_create(&js, "log", 5, None).await?;
    let key = str_field(&created, "key")?.to_owned();
    let (honest, writer) = writer_store(3, "rust").await?;
    ensure!(
        writer.key().to_hex() == key,
        "one primary key, one name: one core key"
    );

    let reader_store = crate::replicate::rust_store(None).await?;
    let reader = reader_store
        .get(GetOptions::key_str(&key).timeout(BOUND))
        .await?;
    let _honest_stream = duplex(&honest, &reader_store)?;
    reader.download(0..3).done_within(Some(BOUND)).await?;
    let mut events = reader_store.events();
    let mut writer_events = writer.events();

    // The JS writer claims 5 blocks: its upgrade does not verify against our 3, the probe
    // answer (built by hypercore 10) is validly signed and differs at 3.
    let _js_stream = connect(&js, &reader_store, true, true).await?;
    ensure!(rust_conflict(&mut events).await? == (3, 0));
    ensure!(reader.is_closed(), "the reader's session stayed open");
    // Our proof of the other history reached the JS writer, which closes its core too.
    ensure!(js_conflict(&js, &key).await? == (3, 0));
    // The honest Rust writer got a proof of its own tree before the reader closed the
    // channel: no conflict there.
    no_conflict_until_peer_remove(&mut writer_events).await?;
    ensure!(!writer.is_closed());
    js.exit(BOUND).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_reader_probes_a_forked_rust_writer() -> Result<()> {
    let (honest, first) = writer_store(3, "honest").await?;
    let (forked, second) = writer_store(5, "forked").await?;
    let key = first.key().to_hex();
    ensure!(second.key().to_hex() == key);
    let js = JsPeer::spawn(CorestoreVersion::V6, PeerStorage::Memory, BOUND).await?;
    let _honest_stream = connect(&js, &honest, false, true).await?;
    js.call_ok(
        "download",
        json!({"key": key, "start": 0, "end": 3, "timeout_ms": JS_TIMEOUT_MS}),
        BOUND,
    )
    .await?;
    let mut events = forked.events();
    let mut first_events = first.events();

    // The JS reader (3 honest blocks) meets the forked writer (5 blocks): hypercore 10 probes
    // it, our answer proves the conflict, and its own proof makes us see it too.
    let _forked_stream = connect(&js, &forked, true, false).await?;
    ensure!(js_conflict(&js, &key).await? == (3, 0));
    ensure!(rust_conflict(&mut events).await? == (3, 0));
    ensure!(
        second.is_closed(),
        "the forked writer's session stayed open"
    );
    // hypercore sent its proof to the honest writer too, then closed the channel.
    no_conflict_until_peer_remove(&mut first_events).await?;
    ensure!(!first.is_closed(), "the honest writer saw a conflict");
    js.exit(BOUND).await
}
