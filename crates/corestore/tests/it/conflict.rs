//! Conflict detection (spec §9.9): two stores with the same primary key write different
//! blocks under the same name (two writers of one key pair that diverged), and a third store
//! that replicated one of them meets the other.

use corestore::{
    CoreEvent, Corestore, Error, GetOptions, PrimaryKey, ReplicationHandle, StoreEvent,
    StoreOptions, StoreStorage,
};
use tokio::sync::broadcast;

use crate::bounded;
use crate::replicate::writer_with;

fn connect(a: &Corestore, b: &Corestore) -> (ReplicationHandle, ReplicationHandle) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    (
        a.replicate(x, true).unwrap(),
        b.replicate(y, false).unwrap(),
    )
}

async fn store_with(primary_key: [u8; 32]) -> Corestore {
    let options = StoreOptions::new().primary_key(PrimaryKey::from_bytes(primary_key));
    Corestore::new(StoreStorage::memory(), options)
        .await
        .unwrap()
}

/// Waits for the store's `Conflict` event; returns its length and fork.
async fn store_conflict(events: &mut broadcast::Receiver<StoreEvent>) -> (u64, u64) {
    loop {
        if let StoreEvent::Conflict { length, fork, .. } = bounded(events.recv()).await.unwrap() {
            return (length, fork);
        }
    }
}

/// Waits for the core's `Conflict` event, then expects `Close`.
async fn core_conflict(events: &mut broadcast::Receiver<CoreEvent>) -> (u64, u64) {
    let found = loop {
        if let CoreEvent::Conflict { length, fork } = bounded(events.recv()).await.unwrap() {
            break (length, fork);
        }
    };
    assert_eq!(bounded(events.recv()).await.unwrap(), CoreEvent::Close);
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diverging_writers_are_detected_by_a_third_store() {
    crate::init_tracing();
    let primary = [42; 32];
    let (honest, forked) = (store_with(primary).await, store_with(primary).await);
    let reader_store = crate::memory_store().await;
    let a = writer_with(&honest, "log", 3).await;
    let b = forked.get(GetOptions::name("log")).await.unwrap();
    let other: Vec<Vec<u8>> = (0..5).map(|i| format!("other-{i}").into_bytes()).collect();
    b.append_batch(&other).await.unwrap();
    assert_eq!(a.key(), b.key(), "one key pair, two histories");
    assert_eq!(a.fork(), b.fork());

    // The reader gets the honest history first.
    let reader = reader_store.get(a.key()).await.unwrap();
    let keep = reader.session().unwrap();
    let (_h1, _h2) = connect(&honest, &reader_store);
    bounded(reader.download(0..3).done()).await.unwrap();
    assert_eq!(reader.get(2).await.unwrap(), b"log-2");

    let mut reader_events = reader.events();
    let mut store_events = reader_store.events();
    let mut forked_events = b.events();
    let mut forked_store_events = forked.events();
    let mut honest_events = a.events();
    // Then meets the forked writer, which claims a longer core: its upgrade proof does not
    // verify against our tree, the probe shows a validly signed different tree at length 3.
    let (_f1, _f2) = connect(&forked, &reader_store);
    assert_eq!(core_conflict(&mut reader_events).await, (3, 0));
    assert_eq!(store_conflict(&mut store_events).await, (3, 0));

    // Every session of the core is closed with the error, the waiting ones too.
    assert!(reader.is_closed() && keep.is_closed());
    assert!(matches!(
        reader.get(0).await,
        Err(Error::Conflict { length: 3, fork: 0 })
    ));
    assert!(matches!(
        keep.update().await,
        Err(Error::Conflict { length: 3, fork: 0 })
    ));
    assert!(matches!(
        reader.info(),
        Err(Error::Conflict { length: 3, fork: 0 })
    ));
    assert_eq!(reader.length(), 0);

    // The reader sent its own proof to the forked writer, which sees the conflict too.
    assert_eq!(core_conflict(&mut forked_events).await, (3, 0));
    assert_eq!(store_conflict(&mut forked_store_events).await, (3, 0));
    assert!(matches!(
        b.append(b"more").await,
        Err(Error::Conflict { .. })
    ));

    // The honest writer got a proof of its own tree (before the reader closed the channel):
    // no conflict there.
    loop {
        match bounded(honest_events.recv()).await.unwrap() {
            CoreEvent::PeerRemove { .. } => break,
            e => assert!(!matches!(e, CoreEvent::Conflict { .. }), "{e:?}"),
        }
    }
    assert!(!a.is_closed());
    assert_eq!(a.append(b"log-3").await.unwrap(), 4);

    // The stored core opens again (a new load).
    let again = reader_store.get(a.key()).await.unwrap();
    assert_eq!(again.get(1).await.unwrap(), b"log-1");
    let again_b = forked.get(GetOptions::name("log")).await.unwrap();
    assert_eq!(again_b.length(), 5);
}
