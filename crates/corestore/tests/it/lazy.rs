//! Lazy creation through the facade: a core created by `get` writes its files at its first
//! durable operation or its close, with the bytes an eager creation writes.

use corestore::{Corestore, Error, GetOptions, PrimaryKey, StoreOptions, StoreStorage};
use rac_storage::testing::{Faults, FaultyProvider};
use rac_storage::{MemoryProvider, Provider};

use crate::{bounded, init_tracing};

async fn store_on(provider: impl Provider + 'static, lazy: bool) -> Corestore {
    init_tracing();
    let options = StoreOptions::new()
        .primary_key(PrimaryKey::from_bytes([0x22; 32]))
        .lazy(lazy);
    Corestore::new(StoreStorage::provider(provider), options)
        .await
        .unwrap()
}

/// The files of the cores in `provider`, with their bytes.
fn core_files(provider: &MemoryProvider) -> Vec<(String, Vec<u8>)> {
    rac_storage::testing::snapshot_files(provider, "cores").unwrap()
}

#[tokio::test]
async fn a_new_named_core_leaves_no_files_until_a_write_or_its_close() {
    let provider = MemoryProvider::new();
    let store = store_on(provider.clone(), true).await;
    let core = store.get(GetOptions::name("quiet")).await.unwrap();
    assert!(core.is_writable());
    assert_eq!(core.info().unwrap().length, 0);
    assert_eq!(
        core.user_data("corestore/name").as_deref(),
        Some(&b"quiet"[..])
    );
    assert!(core_files(&provider).is_empty());
    assert!(store.stored_cores().unwrap().is_empty());
    assert!(
        store.list_cores().await.unwrap().is_empty(),
        "a core not yet written is not listed"
    );

    let written = store.get(GetOptions::name("written")).await.unwrap();
    written.append(b"block").await.unwrap();
    let listed = store.list_cores().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, written.key());

    core.close().await;
    assert_eq!(store.stored_cores().unwrap().len(), 2, "closing wrote it");
    store.close().await.unwrap();
}

#[tokio::test]
async fn closed_lazy_cores_hold_the_bytes_of_eager_ones() {
    let (eager_disk, lazy_disk) = (MemoryProvider::new(), MemoryProvider::new());
    let eager = store_on(eager_disk.clone(), false).await;
    let lazy = store_on(lazy_disk.clone(), true).await;
    let reader_key = lazy.key_of("somebody else");
    // Sessions stay open: dropping one would close (and so write) its core.
    let mut sessions = Vec::new();
    for store in [&eager, &lazy] {
        sessions.push(store.get(GetOptions::name("a")).await.unwrap());
        let ns = store.namespace("ns");
        sessions.push(ns.get(GetOptions::name("b")).await.unwrap());
        sessions.push(store.get(GetOptions::key(reader_key)).await.unwrap());
        let appended = store.get(GetOptions::name("c")).await.unwrap();
        appended.append(b"one").await.unwrap();
        sessions.push(appended);
    }
    assert_eq!(eager.stored_cores().unwrap().len(), 4);
    assert_eq!(lazy.stored_cores().unwrap().len(), 1);
    eager.close().await.unwrap();
    lazy.close().await.unwrap();
    let files = core_files(&eager_disk);
    assert_eq!(
        files.len(),
        4 + 3,
        "four oplogs; the tree, bitfield and data of `c`"
    );
    assert!(core_files(&lazy_disk) == files, "same files, same bytes");
}

#[tokio::test]
async fn a_core_created_by_name_is_writable_by_key_after_close() {
    let provider = MemoryProvider::new();
    let store = store_on(provider.clone(), true).await;
    let core = store.get(GetOptions::name("later")).await.unwrap();
    let key = core.key();
    core.close().await;
    store.close().await.unwrap();

    let store = store_on(provider, true).await;
    let again = store
        .get(GetOptions::key(key).create_if_missing(false))
        .await
        .unwrap();
    assert!(again.is_writable());
    assert_eq!(again.append(b"x").await.unwrap(), 1);
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_from_a_peer_materializes_a_reader() {
    let (a_disk, b_disk) = (MemoryProvider::new(), MemoryProvider::new());
    let a = store_on(a_disk, true).await;
    let b = store_on(b_disk.clone(), true).await;
    let writer = a.get(GetOptions::name("source")).await.unwrap();
    writer.append(b"hello").await.unwrap();
    let reader = b.get(GetOptions::key(writer.key())).await.unwrap();
    assert!(core_files(&b_disk).is_empty());
    let (x, y) = tokio::io::duplex(64 * 1024);
    let _ha = a.replicate(x, true).unwrap();
    let _hb = b.replicate(y, false).unwrap();
    assert_eq!(bounded(reader.get(0)).await.unwrap(), b"hello");
    assert!(
        core_files(&b_disk)
            .iter()
            .any(|(name, _)| name.ends_with("/data")),
        "the block was written"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test]
async fn a_storage_error_while_materializing_reaches_the_operation() {
    let faults = Faults::new();
    let store = store_on(
        FaultyProvider::new(MemoryProvider::new(), faults.clone()),
        true,
    )
    .await;
    let core = store.get(GetOptions::name("doomed")).await.unwrap();
    faults.fail_write_after(0);
    let err = core.append(b"x").await.unwrap_err();
    assert!(
        matches!(&err, Error::Core(hypercore_lite::Error::Storage(e)) if e.is_injected()),
        "{err:?}"
    );
    store.close().await.unwrap();
}

#[tokio::test]
async fn sync_writes_a_lazy_core_without_closing_it() {
    let provider = MemoryProvider::new();
    let store = store_on(provider.clone(), true).await;
    let core = store.get(GetOptions::name("synced")).await.unwrap();
    assert!(core_files(&provider).is_empty());
    bounded(core.sync()).await.unwrap();
    assert_eq!(
        store.stored_cores().unwrap().len(),
        1,
        "sync wrote the core"
    );
    assert!(!core.is_closed());
    core.append(b"after").await.unwrap();
    core.close().await;
    assert!(matches!(core.sync().await, Err(Error::Closed)));
    store.close().await.unwrap();
}
