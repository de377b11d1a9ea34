//! Stores, sessions, namespaces and keys: the seed's examples and the spec §11 vector.

use std::time::Duration;

use corestore::{
    CoreEvent, Corestore, Error, GetOptions, Namespace, PrimaryKey, SessionOptions, StoreOptions,
    StoreStorage,
};
use rac_storage::{MemoryProvider, Provider, Storage};

use crate::{bounded, memory_store};

const TEST_KEY: &str = "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b";
const TEST_DK: &str = "911ce76d4bb2b62e4073e9abe50109b614850dbdba5e013241fc8b2eb2ed8e28";

async fn store_11(provider: &MemoryProvider) -> Corestore {
    let options = StoreOptions::new().primary_key(PrimaryKey::from_bytes([0x11; 32]));
    Corestore::new(StoreStorage::provider(provider.clone()), options)
        .await
        .unwrap()
}

#[tokio::test]
async fn spec_vector_through_the_facade() {
    let provider = MemoryProvider::new();
    let store = store_11(&provider).await;
    let core = store.get(GetOptions::name("test")).await.unwrap();
    assert_eq!(core.key().to_string(), TEST_KEY);
    assert_eq!(core.discovery_key().to_string(), TEST_DK);
    assert_eq!(
        core.id(),
        "g6mg9ai55yeu6r95kunznemo16isjtowb65g1uwq6uc9q7fm1ppo"
    );
    assert!(core.is_writable());
    core.append(b"a").await.unwrap();
    assert!(
        provider
            .exists(&format!("cores/91/1c/{TEST_DK}/oplog"))
            .unwrap()
    );
    assert_eq!(
        core.user_data("corestore/name").as_deref(),
        Some(&b"test"[..])
    );
    assert_eq!(
        core.user_data("corestore/namespace").as_deref(),
        Some(&[0u8; 32][..])
    );
    assert_eq!(provider.get("primary-key").unwrap().len().unwrap_or(0), 32);

    let foo = store.namespace("foo");
    assert_eq!(
        foo.namespace_key().to_string(),
        "28ea4588ea0002b8730720c48627f60e07f57419942fc0601752adf5e7d46ea7"
    );
    let in_foo = foo.get(GetOptions::name("test")).await.unwrap();
    assert_eq!(
        in_foo.key().to_string(),
        "2bd5236ca0e7c32caea60024469bab3d3fb6ecac1567da5bf8da3bc00f6f4524"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn namespaces_give_different_cores_and_chain() {
    let store = memory_store().await;
    let a = store
        .namespace("a")
        .get(GetOptions::name("log"))
        .await
        .unwrap();
    let b = store
        .namespace("b")
        .get(GetOptions::name("log"))
        .await
        .unwrap();
    let root = store.get(GetOptions::name("log")).await.unwrap();
    assert_ne!(a.key(), b.key());
    assert_ne!(a.key(), root.key());
    let chained = store.namespace("a").namespace("b");
    assert_eq!(
        *chained.namespace_key(),
        Namespace::DEFAULT.child("a").child("b")
    );
    let ab = chained.get(GetOptions::name("log")).await.unwrap();
    assert_ne!(ab.key(), a.key());
}

#[tokio::test]
async fn a_key_session_opens_the_named_core() {
    let store = memory_store().await;
    let named = store.get(GetOptions::name("log")).await.unwrap();
    named.append(b"one").await.unwrap();
    let by_key = store.get(named.key()).await.unwrap();
    assert_eq!(by_key.length(), 1);
    assert!(by_key.is_writable(), "the named core is writable by key");
    by_key.append(b"two").await.unwrap();
    assert_eq!(named.get(1).await.unwrap(), b"two");
    let by_hex = store
        .get(GetOptions::key_str(&named.key().to_string()))
        .await
        .unwrap();
    let by_z32 = store.get(GetOptions::key_str(&named.id())).await.unwrap();
    let by_bytes = store
        .get(GetOptions::key_bytes(named.key().as_ref()))
        .await
        .unwrap();
    for c in [&by_hex, &by_z32, &by_bytes] {
        assert_eq!(c.length(), 2);
    }
    let read_only = store
        .get(GetOptions::key(named.key()).writable(false))
        .await
        .unwrap();
    assert!(matches!(
        read_only.append(b"x").await,
        Err(Error::NotWritable)
    ));
}

#[tokio::test]
async fn sessions_override_primary_key_and_namespace() {
    let store = memory_store().await;
    let other = PrimaryKey::from_bytes([0x11; 32]);
    let session = store.session(SessionOptions::new().primary_key(other));
    let core = session.get(GetOptions::name("test")).await.unwrap();
    assert_eq!(core.key().to_string(), TEST_KEY);
    let ns = Namespace::DEFAULT.child("foo");
    let both = store.session(
        SessionOptions::new()
            .primary_key(PrimaryKey::from_bytes([0x11; 32]))
            .namespace(ns),
    );
    let in_foo = both.get(GetOptions::name("test")).await.unwrap();
    assert_eq!(
        in_foo.key().to_string(),
        "2bd5236ca0e7c32caea60024469bab3d3fb6ecac1567da5bf8da3bc00f6f4524"
    );
    // The root is unaffected.
    assert_ne!(store.key_of("test").to_string(), TEST_KEY);
}

#[tokio::test]
async fn closing_a_session_closes_its_cores_and_detach_false_closes_the_parent() {
    let store = memory_store().await;
    let parent = store.session(SessionOptions::new());
    let attached = parent.session(SessionOptions::new().detach(false));
    let detached = parent.session(SessionOptions::new());
    let core = attached.get(GetOptions::name("x")).await.unwrap();
    let kept = detached.get(GetOptions::name("y")).await.unwrap();

    detached.close().await.unwrap();
    assert!(detached.is_closed());
    assert!(kept.is_closed(), "a session's cores close with it");
    assert!(
        !parent.is_closed(),
        "a detached session leaves its parent open"
    );

    attached.close().await.unwrap();
    assert!(core.is_closed());
    assert!(parent.is_closed(), "detach(false) closes the parent");
    assert!(!store.is_closed());
    assert!(matches!(
        parent.get(GetOptions::name("z")).await,
        Err(Error::Closed)
    ));
    store.get(GetOptions::name("z")).await.unwrap();
}

#[tokio::test]
async fn a_core_closes_with_its_last_session() {
    let store = memory_store().await;
    let a = store.get(GetOptions::name("log")).await.unwrap();
    let b = store.get(GetOptions::name("log")).await.unwrap();
    let mut events = a.events();
    a.append(b"x").await.unwrap();
    assert_eq!(
        bounded(events.recv()).await.unwrap(),
        CoreEvent::Append { length: 1 }
    );
    drop(a);
    assert!(!b.is_closed());
    assert_eq!(b.get(0).await.unwrap(), b"x");
    b.close().await;
    assert_eq!(bounded(events.recv()).await.unwrap(), CoreEvent::Close);
    // Loading it again reads what was stored.
    let c = store.get(GetOptions::name("log")).await.unwrap();
    assert_eq!(c.length(), 1);
}

#[tokio::test]
async fn closing_the_root_closes_everything() {
    let store = memory_store().await;
    let ns = store.namespace("n");
    let core = ns.get(GetOptions::name("log")).await.unwrap();
    store.close().await.unwrap();
    assert!(core.is_closed());
    assert!(ns.is_closed());
    assert!(matches!(core.append(b"x").await, Err(Error::Closed)));
    assert!(matches!(
        ns.get(GetOptions::name("log")).await,
        Err(Error::Closed)
    ));
}

#[tokio::test]
async fn exclusive_sessions_wait_for_each_other() {
    let store = memory_store().await;
    let first = store
        .get(GetOptions::name("log").exclusive(true))
        .await
        .unwrap();
    let short = Duration::from_millis(50);
    let second = store
        .get(GetOptions::name("log").exclusive(true).timeout(short))
        .await;
    assert!(matches!(second, Err(Error::Timeout(_))));
    // A non-exclusive session does not wait.
    let plain = store.get(GetOptions::name("log")).await.unwrap();
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move { store.get(GetOptions::name("log").exclusive(true)).await })
    };
    drop(first);
    let third = bounded(waiter).await.unwrap().unwrap();
    third.append(b"mine").await.unwrap();
    assert_eq!(plain.length(), 1);
}

#[tokio::test]
async fn clear_errors_for_bad_input() {
    let store = memory_store().await;
    assert!(matches!(
        store.get(GetOptions::name("")).await,
        Err(Error::EmptyName)
    ));
    assert!(matches!(
        store.get(GetOptions::key_str("zz")).await,
        Err(Error::InvalidKey(_))
    ));
    assert!(matches!(
        store.get(GetOptions::key_bytes(&[1; 31])).await,
        Err(Error::InvalidKey(_))
    ));
    let missing = GetOptions::key([7; 32]).create_if_missing(false);
    assert!(matches!(store.get(missing).await, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn reads_of_missing_blocks_wait_or_fail() {
    let store = memory_store().await;
    let reader = store
        .get(GetOptions::key([9; 32]).wait(false))
        .await
        .unwrap();
    assert!(!reader.is_writable());
    assert!(matches!(
        reader.get(0).await,
        Err(Error::NotAvailable { index: 0 })
    ));
    let short = Duration::from_millis(50);
    let waiting = store
        .get(GetOptions::key([9; 32]).timeout(short))
        .await
        .unwrap();
    assert!(matches!(waiting.get(0).await, Err(Error::Timeout(_))));
    assert!(
        !bounded(waiting.update()).await.unwrap(),
        "no peers: nothing to update"
    );
}

#[tokio::test]
async fn truncate_clear_seek_snapshot_and_info() {
    let store = memory_store().await;
    let core = store
        .get(GetOptions::name("log").cache(true))
        .await
        .unwrap();
    core.append_batch(&[&b"aa"[..], b"bbb", b"c"])
        .await
        .unwrap();
    assert_eq!(core.seek(3).unwrap(), (1, 1));
    let snap = core.snapshot().unwrap();
    core.append(b"dd").await.unwrap();
    assert_eq!(snap.length(), 3);
    assert_eq!(core.length(), 4);
    assert!(!snap.is_writable());
    assert_eq!(snap.get(2).await.unwrap(), b"c");
    core.truncate(1).await.unwrap();
    let info = core.info().unwrap();
    assert_eq!((info.length, info.fork, info.byte_length), (1, 1, 2));
    assert!(snap.get(2).await.is_err(), "truncated away");
    core.append(b"e").await.unwrap();
    core.clear(0, 1).await.unwrap();
    assert!(!core.has(0));
    assert!(core.has(1));
    assert_eq!(core.get(1).await.unwrap(), b"e");
}

#[cfg(unix)]
#[tokio::test]
async fn primary_key_file_persists_and_locks() {
    let dir = tempfile::tempdir().unwrap();
    let store = Corestore::new(dir.path(), StoreOptions::new())
        .await
        .unwrap();
    let key = store.primary_key().clone();
    let file = std::fs::read(dir.path().join("primary-key")).unwrap();
    assert_eq!(file, key.as_bytes());

    let second = Corestore::new(dir.path(), StoreOptions::new()).await;
    assert!(matches!(second, Err(Error::Locked(_))), "{second:?}");

    let core = store.get(GetOptions::name("log")).await.unwrap();
    core.append(b"persisted").await.unwrap();
    let core_key = core.key();
    store.close().await.unwrap();

    let again = Corestore::new(dir.path(), StoreOptions::new())
        .await
        .unwrap();
    assert_eq!(again.primary_key(), &key);
    let by_key = again.get(core_key).await.unwrap();
    assert!(
        by_key.is_writable(),
        "a core created by name is writable again by key"
    );
    assert_eq!(by_key.get(0).await.unwrap(), b"persisted");
    by_key.append(b"more").await.unwrap();
    let dk = core_key.discovery_key().to_string();
    assert!(
        dir.path()
            .join(format!("cores/{}/{}/{dk}/oplog", &dk[..2], &dk[2..4]))
            .exists()
    );
    again.close().await.unwrap();
}

#[tokio::test]
async fn stored_cores_are_listed_and_open_by_discovery_key() {
    let store = memory_store().await;
    let a = store.get(GetOptions::name("a")).await.unwrap();
    a.append(b"x").await.unwrap();
    let b = store
        .namespace("ns")
        .get(GetOptions::name("b"))
        .await
        .unwrap();
    b.append(b"y").await.unwrap();
    let mut expected = vec![a.discovery_key(), b.discovery_key()];
    expected.sort_unstable_by_key(|dk| dk.to_bytes());
    assert_eq!(store.stored_cores().unwrap(), expected);
    drop(b);
    let again = store
        .get(GetOptions::discovery_key(expected[1]))
        .await
        .unwrap();
    assert_eq!(again.discovery_key(), expected[1]);
    assert_eq!(again.length(), 1);
    let unknown = store.get(GetOptions::discovery_key([3; 32].into())).await;
    assert!(matches!(unknown, Err(Error::NotFound(_))));
}

#[tokio::test]
async fn a_function_storage_backs_a_store() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use rac_storage::MemoryStorage;

    let files: Arc<Mutex<HashMap<String, MemoryStorage>>> = Arc::default();
    let opened = Arc::clone(&files);
    let storage = StoreStorage::function(move |name: &str| {
        let mut files = opened.lock().unwrap();
        Ok(files.entry(name.to_owned()).or_default().reopen())
    });
    let store = Corestore::new(storage, StoreOptions::new()).await.unwrap();
    let core = store.get(GetOptions::name("fn")).await.unwrap();
    core.append(b"via a function").await.unwrap();
    let key = core.key();
    drop(core);
    let again = store.get(key).await.unwrap();
    assert_eq!(again.get(0).await.unwrap(), b"via a function");
    let names: Vec<String> = files.lock().unwrap().keys().cloned().collect();
    let dk = key.discovery_key().to_string();
    assert!(names.contains(&"primary-key".to_owned()));
    assert!(names.contains(&format!("cores/{}/{}/{dk}/oplog", &dk[..2], &dk[2..4])));
}

#[tokio::test]
async fn derived_sessions_close_with_their_store_session() {
    let store = memory_store().await;
    let session = store.session(SessionOptions::new());
    let core = session.get(GetOptions::name("log")).await.unwrap();
    core.append(b"x").await.unwrap();
    let copy = core.session().unwrap();
    let snap = core.snapshot().unwrap();
    drop(core);
    session.close().await.unwrap();
    assert!(copy.is_closed() && snap.is_closed());
    assert_eq!(
        store.get(GetOptions::name("log")).await.unwrap().length(),
        1
    );
}
