//! The store-level features of the corestore 6 seed beyond `get`: listing stored cores,
//! store events, suspend/resume, the linger of idle cores, namespaces bootstrapped from a
//! core and the "no core" cache.

use corestore::{Corestore, GetOptions, KeyPair, StoreOptions, StoreStorage};

use crate::bounded;

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
