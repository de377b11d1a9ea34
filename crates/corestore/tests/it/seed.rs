//! The store-level features of the corestore 6 seed beyond `get`: listing stored cores,
//! store events, suspend/resume, the linger of idle cores, namespaces bootstrapped from a
//! core and the "no core" cache.

use std::time::{Duration, Instant};

use corestore::{
    CoreEvent, Corestore, Error, GetOptions, KeyPair, ReplicationHandle, StoreEvent, StoreOptions,
    StoreStorage,
};

use crate::{bounded, memory_store};

#[tokio::test]
async fn list_cores_reports_keys_names_and_lengths_without_loading() {
    let dir = tempfile::tempdir().unwrap();
    let store = Corestore::new(StoreStorage::dir(dir.path()), StoreOptions::new())
        .await
        .unwrap();
    let a = store.get(GetOptions::name("a")).await.unwrap();
    a.append_batch(&[&b"one"[..], b"three"]).await.unwrap();
    let a_key = a.key();
    a.close().await;
    let ns = store.namespace("ns");
    let b = ns.get(GetOptions::name("b")).await.unwrap();
    b.append(b"kept open").await.unwrap();
    let foreign = KeyPair::generate().unwrap();
    let reader = store
        .get(GetOptions::key(corestore::Key::from(foreign.public_key())))
        .await
        .unwrap();
    let reader_key = reader.key();
    drop(reader);

    let listed = bounded(store.list_cores()).await.unwrap();
    assert_eq!(listed.len(), 3);
    let sorted: Vec<_> = listed.iter().map(|c| c.discovery_key.to_bytes()).collect();
    let mut expected = sorted.clone();
    expected.sort_unstable();
    assert_eq!(sorted, expected, "sorted by discovery key");
    let find = |key| listed.iter().find(|c| c.key == key).expect("listed");
    let la = find(a_key);
    assert_eq!(la.name.as_deref(), Some("a"));
    assert_eq!(la.namespace, Some(*store.namespace_key()));
    assert_eq!((la.length, la.contiguous_length, la.byte_length), (2, 2, 8));
    assert!(la.writable);
    let lb = find(b.key());
    assert_eq!(lb.name.as_deref(), Some("b"));
    assert_eq!(lb.namespace, Some(*ns.namespace_key()));
    assert_eq!((lb.length, lb.byte_length), (1, 9));
    let lr = find(reader_key);
    assert_eq!((lr.name.as_ref(), lr.length, lr.writable), (None, 0, false));

    // Listing neither closed the loaded core nor left the others loaded: `a` reopens with
    // its blocks, and `b` still works.
    b.append(b"more").await.unwrap();
    let a = store.get(GetOptions::name("a")).await.unwrap();
    assert_eq!(a.get(1).await.unwrap(), b"three");
    store.close().await.unwrap();
}

/// The next store event, bounded.
async fn next(rx: &mut tokio::sync::broadcast::Receiver<StoreEvent>) -> StoreEvent {
    bounded(rx.recv()).await.expect("store event")
}

#[tokio::test]
async fn core_open_and_close_reach_the_opener_the_root_and_its_sessions() {
    let store = memory_store().await;
    let child = store.namespace("child");
    let grandchild = child.namespace("grandchild");
    let (mut root_rx, mut child_rx, mut grand_rx) =
        (store.events(), child.events(), grandchild.events());

    let core = grandchild.get(GetOptions::name("log")).await.unwrap();
    let open = StoreEvent::CoreOpen {
        key: core.key(),
        discovery_key: core.discovery_key(),
    };
    assert_eq!(next(&mut root_rx).await, open);
    assert_eq!(next(&mut child_rx).await, open);
    assert_eq!(next(&mut grand_rx).await, open);

    // A core loaded by the root is not announced to a grandchild session.
    let other = store.get(GetOptions::name("other")).await.unwrap();
    assert!(
        matches!(next(&mut root_rx).await, StoreEvent::CoreOpen { key, .. } if key == other.key())
    );
    assert!(matches!(
        next(&mut child_rx).await,
        StoreEvent::CoreOpen { .. }
    ));
    // A second session of a loaded core opens nothing.
    let again = grandchild.get(core.key()).await.unwrap();
    drop(core);
    drop(again);
    let close = StoreEvent::CoreClose {
        key: open_key(&open),
        discovery_key: open_dk(&open),
    };
    assert_eq!(next(&mut grand_rx).await, close, "no event in between");
    assert_eq!(next(&mut root_rx).await, close);
    store.close().await.unwrap();
    assert!(
        matches!(next(&mut root_rx).await, StoreEvent::CoreClose { key, .. } if key == other.key())
    );
}

fn open_key(e: &StoreEvent) -> corestore::Key {
    match e {
        StoreEvent::CoreOpen { key, .. } | StoreEvent::CoreClose { key, .. } => *key,
        _ => unreachable!("only open and close events exist"),
    }
}

fn open_dk(e: &StoreEvent) -> corestore::DiscoveryKey {
    match e {
        StoreEvent::CoreOpen { discovery_key, .. }
        | StoreEvent::CoreClose { discovery_key, .. } => *discovery_key,
        _ => unreachable!("only open and close events exist"),
    }
}

#[tokio::test]
async fn suspend_lets_another_store_take_the_lock_and_resume_takes_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let a = Corestore::new(StoreStorage::dir(dir.path()), StoreOptions::new())
        .await
        .unwrap();
    let core = a.get(GetOptions::name("log")).await.unwrap();
    core.append(b"before").await.unwrap();
    assert!(matches!(
        Corestore::new(StoreStorage::dir(dir.path()), StoreOptions::new()).await,
        Err(Error::Locked(_))
    ));
    a.namespace("any session").suspend().await.unwrap();
    assert!(a.is_suspended());
    a.suspend().await.unwrap();
    // The loaded core keeps working while suspended.
    core.append(b"while suspended").await.unwrap();

    let b = Corestore::new(StoreStorage::dir(dir.path()), StoreOptions::new())
        .await
        .unwrap();
    assert_eq!(b.primary_key(), a.primary_key());
    assert!(matches!(a.resume().await, Err(Error::Locked(_))));
    assert!(a.is_suspended());
    b.close().await.unwrap();

    a.resume().await.unwrap();
    a.resume().await.unwrap();
    assert!(!a.is_suspended());
    assert!(matches!(
        Corestore::new(StoreStorage::dir(dir.path()), StoreOptions::new()).await,
        Err(Error::Locked(_))
    ));
    assert_eq!(core.length(), 2);
    a.close().await.unwrap();
    assert!(matches!(a.resume().await, Err(Error::Closed)));
}

#[tokio::test]
async fn namespace_of_a_core_is_the_namespace_it_was_created_in() {
    let store = memory_store().await;
    let app = store.namespace("app");
    let bootstrap = app.get(GetOptions::name("bootstrap")).await.unwrap();
    let from_core = store.namespace_of(&bootstrap);
    assert_eq!(from_core.namespace_key(), app.namespace_key());
    assert_eq!(from_core.key_of("db"), app.key_of("db"));
    let by_key = store.get(bootstrap.key()).await.unwrap();
    assert_eq!(
        store.namespace_of(&by_key).namespace_key(),
        app.namespace_key()
    );
    // A core not created by name keeps the session's namespace.
    let plain = store
        .get(GetOptions::key_pair(KeyPair::generate().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        app.namespace_of(&plain).namespace_key(),
        app.namespace_key()
    );
}

/// Two stores over an in-memory pipe.
fn connect(a: &Corestore, b: &Corestore) -> (ReplicationHandle, ReplicationHandle) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    (
        a.replicate(x, true).unwrap(),
        b.replicate(y, false).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_core_lingers_on_its_streams_then_closes_with_its_channels() {
    let linger = Duration::from_millis(300);
    let a = Corestore::new(StoreStorage::memory(), StoreOptions::new().linger(linger))
        .await
        .unwrap();
    let b = memory_store().await;
    let writer = a.get(GetOptions::name("log")).await.unwrap();
    writer.append(b"block").await.unwrap();
    let reader = b.get(writer.key()).await.unwrap();
    let mut reader_events = reader.events();
    let (_ha, _hb) = connect(&a, &b);
    assert_eq!(bounded(reader.get(0)).await.unwrap(), b"block");

    let mut events = a.events();
    let released = Instant::now();
    drop(writer);
    let closed = next(&mut events).await;
    assert!(matches!(closed, StoreEvent::CoreClose { key, .. } if key == reader.key()));
    assert!(
        released.elapsed() >= linger,
        "closed before the linger was over"
    );
    // Its channel closed with it.
    loop {
        let e = bounded(reader_events.recv()).await.unwrap();
        if matches!(e, CoreEvent::PeerRemove { .. }) {
            break;
        }
    }
    assert_eq!(reader.info().unwrap().peers, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_back_within_the_linger_keeps_the_core() {
    let a = Corestore::new(
        StoreStorage::memory(),
        StoreOptions::new().linger(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let b = memory_store().await;
    let writer = a.get(GetOptions::name("log")).await.unwrap();
    writer.append(b"block").await.unwrap();
    let key = writer.key();
    let reader = b.get(key).await.unwrap();
    let (_ha, _hb) = connect(&a, &b);
    assert_eq!(bounded(reader.get(0)).await.unwrap(), b"block");
    let mut events = a.events();
    drop(writer);
    let writer = a.get(GetOptions::name("log")).await.unwrap();
    assert!(
        matches!(
            events.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty)
        ),
        "the lingering core was neither closed nor reopened"
    );
    writer.append(b"more").await.unwrap();
    assert_eq!(bounded(reader.get(1)).await.unwrap(), b"more");
}

#[tokio::test]
async fn a_core_on_no_stream_closes_with_its_last_session() {
    let a = Corestore::new(
        StoreStorage::memory(),
        StoreOptions::new().linger(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let mut events = a.events();
    let core = a.get(GetOptions::name("log")).await.unwrap();
    assert!(matches!(
        next(&mut events).await,
        StoreEvent::CoreOpen { .. }
    ));
    drop(core);
    assert!(matches!(
        next(&mut events).await,
        StoreEvent::CoreClose { .. }
    ));
}
