//! Extensions between the Rust facade and JavaScript corestore 6 (hypercore 10) and 7
//! (hypercore 11) over TCP: `Hypercore::register_extension` against
//! `core.registerExtension(name, { onmessage })` (driven through `tests/js/peer.mjs`), in both
//! directions, broadcast and to one peer, with repeated names (elided on the wire) and names
//! the receiver never registered (dropped).

use anyhow::{Context, Result, bail, ensure};
use corestore::{CoreEvent, GetOptions};
use corestore_interop::peer::{CorestoreVersion, JsPeer};
use serde_json::{Value, json};

use crate::replicate::{
    BOUND, JS_TIMEOUT_MS, bounded, connect, finish, js_create, js_peer, rust_store, str_field,
};

/// The next `extension` event of the JS peer: `(extension name, sender key hex, message)`;
/// the message is `None` when JavaScript decoded it as `null` (an empty `buffer`).
async fn js_extension(js: &JsPeer) -> Result<(String, String, Option<Vec<u8>>)> {
    let event = js.wait_event("extension", BOUND).await?;
    let message = match &event["message"] {
        Value::Null => None,
        m => Some(hex::decode(
            m.as_str().with_context(|| format!("message in {event}"))?,
        )?),
    };
    Ok((
        str_field(&event, "extension")?.to_owned(),
        str_field(&event, "from")?.to_owned(),
        message,
    ))
}

/// `send-extension` on the JS peer (`to`: one peer, else a broadcast).
async fn js_send(
    js: &JsPeer,
    key: &str,
    extension: &str,
    message: &[u8],
    to: Option<&str>,
) -> Result<Value> {
    let mut args = json!({"key": key, "extension": extension, "message": hex::encode(message),
                          "timeout_ms": JS_TIMEOUT_MS});
    if let Some(to) = to {
        args["to"] = json!(to);
    }
    js.call_ok("send-extension", args, BOUND).await
}

async fn js_register(js: &JsPeer, key: &str, extension: &str, encoding: &str) -> Result<Value> {
    js.call_ok(
        "register-extension",
        json!({"key": key, "extension": extension, "encoding": encoding,
               "timeout_ms": JS_TIMEOUT_MS}),
        BOUND,
    )
    .await
}

async fn extensions_with(version: CorestoreVersion, rust_initiator: bool) -> Result<()> {
    let js = js_peer(version).await?;
    let created = js_create(&js, "ext", 1, None).await?;
    let key = str_field(&created, "key")?.to_owned();
    let store = rust_store(None).await?;
    let core = store.get(GetOptions::key_str(&key).timeout(BOUND)).await?;
    let mut events = core.events();
    let handle = connect(&js, &store, rust_initiator, !rust_initiator).await?;

    // Both sides see the channel: Rust learns the JS key from `PeerAdd`, JS has one peer.
    let js_key = bounded("Rust PeerAdd", async {
        loop {
            match events.recv().await {
                Ok(CoreEvent::PeerAdd { remote_public_key }) => break Ok(remote_public_key),
                Ok(_) => {}
                Err(e) => break Err(e),
            }
        }
    })
    .await??;
    js.call_ok(
        "wait-peers",
        json!({"key": key, "count": 1, "timeout_ms": JS_TIMEOUT_MS}),
        BOUND,
    )
    .await?;
    let mut chat = core.register_extension("chat")?;
    let registered = js_register(&js, &key, "chat", "buffer").await?;
    let rust_key = registered["peers"][0]
        .as_str()
        .with_context(|| format!("no peer in {registered}"))?
        .to_owned();
    ensure!(
        core.peer_keys() == vec![js_key],
        "Rust peers: {:?}",
        core.peer_keys()
    );

    // JS → Rust: a broadcast, the same name again (sent as "" on the wire), then to one peer.
    for (message, to) in [
        (&b"hello"[..], None),
        (b"hello again", None),
        (b"just you", Some(rust_key.as_str())),
    ] {
        js_send(&js, &key, "chat", message, to).await?;
        let got = bounded("Rust extension message", chat.recv()).await?;
        ensure!(
            got == Some((js_key, message.to_vec())),
            "Rust received {got:?}"
        );
    }

    // Rust → JS, the same way (the compact-encoding of hypercore 10 decodes an empty buffer
    // as `null`, the one of hypercore 11 as an empty buffer).
    chat.broadcast(b"hi js")?;
    chat.broadcast(b"")?;
    ensure!(chat.send(&js_key, b"to you")?, "no channel to the JS peer");
    for message in [&b"hi js"[..], b"", b"to you"] {
        let (name, from, got) = js_extension(&js).await?;
        ensure!(
            name == "chat" && from == rust_key && got.as_deref().unwrap_or_default() == message,
            "JS received {name} from {from}: {got:?}"
        );
    }

    // Raw extensions (`encoding: c.raw`) carry the bytes as they are.
    let mut raw = core.register_raw_extension("raw")?;
    js_register(&js, &key, "raw", "raw").await?;
    raw.broadcast(b"\x00raw bytes")?;
    let (name, _, got) = js_extension(&js).await?;
    ensure!(
        name == "raw" && got.as_deref() == Some(&b"\x00raw bytes"[..]),
        "JS received {name}: {got:?}"
    );
    js_send(&js, &key, "raw", b"\xffback", None).await?;
    let got = bounded("Rust raw extension message", raw.recv()).await?;
    ensure!(
        got == Some((js_key, b"\xffback".to_vec())),
        "Rust received {got:?}"
    );

    // A name the receiver did not register is dropped on both sides; the message after it
    // (which names its extension again) arrives.
    let other = core.register_extension("rust-only")?;
    other.broadcast(b"lost")?;
    chat.broadcast(b"after")?;
    let (name, _, got) = js_extension(&js).await?;
    ensure!(
        name == "chat" && got.as_deref() == Some(&b"after"[..]),
        "JS received {name}: {got:?}"
    );
    js_register(&js, &key, "js-only", "buffer").await?;
    js_send(&js, &key, "js-only", b"lost", None).await?;
    js_send(&js, &key, "chat", b"after", None).await?;
    let got = bounded("Rust extension message", chat.recv()).await?;
    ensure!(
        got == Some((js_key, b"after".to_vec())),
        "Rust received {got:?}"
    );
    let mut js_only = core.register_extension("js-only")?;
    if let Some(m) = js_only.try_recv() {
        bail!("a message for an unregistered name was kept: {m:?}");
    }
    finish(handle, store, js).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_extensions_both_ways_rust_initiator() -> Result<()> {
    extensions_with(CorestoreVersion::V6, true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs6_extensions_both_ways_rust_responder() -> Result<()> {
    extensions_with(CorestoreVersion::V6, false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cs7_extensions_both_ways() -> Result<()> {
    extensions_with(CorestoreVersion::V7, true).await
}
