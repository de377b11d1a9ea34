//! Extensions between two stores over `tokio::io::duplex`: broadcast and send, the sender's
//! key, names nobody registered, the latest registration winning, the bounded queue, and the
//! end of a registration with its session.

use corestore::{CoreEvent, Corestore, Error, Hypercore, ReplicationHandle};

use crate::replicate::writer_with;
use crate::{bounded, memory_store};

fn connect(a: &Corestore, b: &Corestore) -> (ReplicationHandle, ReplicationHandle) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    (
        a.replicate(x, true).unwrap(),
        b.replicate(y, false).unwrap(),
    )
}

/// Waits for the first `PeerAdd` of a core; returns the remote's public key.
async fn peer_added(events: &mut tokio::sync::broadcast::Receiver<CoreEvent>) -> [u8; 32] {
    loop {
        if let CoreEvent::PeerAdd { remote_public_key } = bounded(events.recv()).await.unwrap() {
            return remote_public_key;
        }
    }
}

/// A writer on `a` and a reader on `b`, connected, each side knowing the other's key.
async fn pair() -> (
    Corestore,
    Corestore,
    Hypercore,
    Hypercore,
    [u8; 32],
    [u8; 32],
) {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 1).await;
    let reader = b.get(writer.key()).await.unwrap();
    let (mut wev, mut rev) = (writer.events(), reader.events());
    let (ha, hb) = connect(&a, &b);
    // The handles are dropped, not closed: the streams run until the stores close.
    drop((ha, hb));
    let b_key = peer_added(&mut wev).await;
    let a_key = peer_added(&mut rev).await;
    (a, b, writer, reader, a_key, b_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_and_send_both_ways() {
    let (_a, _b, writer, reader, a_key, b_key) = pair().await;
    let mut on_a = writer.register_extension("chat").unwrap();
    let mut on_b = reader.register_extension("chat").unwrap();
    assert_eq!(on_a.name(), "chat");
    assert_eq!(writer.peer_keys(), vec![b_key]);
    assert_eq!(reader.peer_keys(), vec![a_key]);

    on_a.broadcast(b"hello").unwrap();
    on_a.broadcast(b"again").unwrap();
    assert_eq!(bounded(on_b.recv()).await, Some((a_key, b"hello".to_vec())));
    assert_eq!(bounded(on_b.recv()).await, Some((a_key, b"again".to_vec())));
    assert!(on_b.send(&a_key, b"reply").unwrap());
    assert_eq!(bounded(on_a.recv()).await, Some((b_key, b"reply".to_vec())));
    // An empty message is a message.
    on_b.broadcast(b"").unwrap();
    assert_eq!(bounded(on_a.recv()).await, Some((b_key, Vec::new())));
    // Nobody to send to.
    assert!(!on_a.send(&[7; 32], b"lost").unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unregistered_names_are_dropped_and_the_latest_registration_wins() {
    let (_a, _b, writer, reader, _a_key, b_key) = pair().await;
    let mut first = writer.register_extension("chat").unwrap();
    let on_b = reader.register_extension("chat").unwrap();
    let nobody_b = reader.register_extension("nobody").unwrap();

    // `a` has no "nobody": the message is dropped on arrival (the stream keeps its order, so
    // once the marker after it arrived, it was handled).
    nobody_b.broadcast(b"lost").unwrap();
    on_b.broadcast(b"marker").unwrap();
    assert_eq!(
        bounded(first.recv()).await,
        Some((b_key, b"marker".to_vec()))
    );
    let mut nobody_a = writer.register_extension("nobody").unwrap();
    assert_eq!(nobody_a.try_recv(), None);

    // A second registration of the name (through another session) takes the messages...
    let other_session = writer.session().unwrap();
    let mut second = other_session.register_extension("chat").unwrap();
    on_b.broadcast(b"two").unwrap();
    assert_eq!(bounded(second.recv()).await, Some((b_key, b"two".to_vec())));
    // ...until it ends: its session closes, so its queue ends and the first one receives
    // again.
    other_session.close().await;
    assert_eq!(bounded(second.recv()).await, None);
    assert!(matches!(second.broadcast(b"x"), Err(Error::Closed)));
    on_b.broadcast(b"three").unwrap();
    assert_eq!(
        bounded(first.recv()).await,
        Some((b_key, b"three".to_vec()))
    );
    assert_eq!(
        first.try_recv(),
        None,
        "`two` went to the second registration only"
    );
    drop(nobody_a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_new_messages() {
    let (_a, _b, writer, reader, _a_key, b_key) = pair().await;
    let mut flood = writer.register_extension("flood").unwrap();
    let mut done = writer.register_extension("done").unwrap();
    let flood_b = reader.register_extension("flood").unwrap();
    let done_b = reader.register_extension("done").unwrap();
    for i in 0..300u32 {
        flood_b.broadcast(&i.to_le_bytes()).unwrap();
    }
    done_b.broadcast(b"done").unwrap();
    assert_eq!(bounded(done.recv()).await, Some((b_key, b"done".to_vec())));
    let mut got = Vec::new();
    while let Some((_, m)) = flood.try_recv() {
        got.push(u32::from_le_bytes(m.try_into().unwrap()));
    }
    // The first 256 were kept in order; the rest were dropped.
    assert_eq!(got, (0..256).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_end_with_their_session_and_bad_names_are_refused() {
    let store = memory_store().await;
    let core = writer_with(&store, "log", 0).await;
    assert!(matches!(
        core.register_extension(""),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        core.register_extension(&"x".repeat(1025)),
        Err(Error::InvalidArgument(_))
    ));
    let mut ext = core.register_extension(&"x".repeat(1024)).unwrap();
    assert!(matches!(
        ext.broadcast(&vec![0; corestore::MAX_EXTENSION_MESSAGE + 1]),
        Err(Error::InvalidArgument(_))
    ));
    // No peers: broadcasting is fine and reaches nobody.
    ext.broadcast(b"alone").unwrap();
    core.close().await;
    assert_eq!(bounded(ext.recv()).await, None);
    assert!(matches!(ext.broadcast(b"late"), Err(Error::Closed)));
    assert!(matches!(
        core.register_extension("late"),
        Err(Error::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_and_raw_encodings() {
    let (_a, _b, writer, reader, a_key, b_key) = pair().await;
    // The default encoding is hypercore's (a varint length, then the bytes): a raw
    // registration of the same name sees the prefix.
    let buffered = writer.register_extension("enc").unwrap();
    let mut raw = reader.register_raw_extension("enc").unwrap();
    buffered.broadcast(b"hi").unwrap();
    assert_eq!(
        bounded(raw.recv()).await,
        Some((a_key, vec![2, b'h', b'i']))
    );
    buffered.broadcast(b"").unwrap();
    assert_eq!(bounded(raw.recv()).await, Some((a_key, vec![0])));
    // The other way: bytes after the buffer are ignored (as hypercore does); a message that
    // does not decode is dropped.
    let mut buffered = buffered;
    raw.broadcast(&[3, b'a', b'b', b'c', b'!']).unwrap();
    raw.broadcast(&[5, b'a']).unwrap();
    raw.broadcast(&[1, b'z']).unwrap();
    assert_eq!(
        bounded(buffered.recv()).await,
        Some((b_key, b"abc".to_vec()))
    );
    assert_eq!(bounded(buffered.recv()).await, Some((b_key, b"z".to_vec())));
}
