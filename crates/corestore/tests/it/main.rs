//! Integration tests of the `corestore` facade: stores, sessions and keys (`store`),
//! replication between stores over in-memory pipes (`replicate`), extensions (`extension`)
//! and conflict detection (`conflict`). Every wait is bounded.

mod conflict;
mod extension;
mod identity;
mod lazy;
mod remote;
mod replicate;
mod seed;
mod store;

use std::future::Future;
use std::time::Duration;

use corestore::{Corestore, StoreOptions, StoreStorage};

/// The bound on every wait in these tests.
const BOUND: Duration = Duration::from_secs(20);

/// Awaits `f`, failing the test if it takes longer than [`BOUND`].
async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f).await.expect("timed out")
}

/// A fresh in-memory store.
async fn memory_store() -> Corestore {
    init_tracing();
    Corestore::new(StoreStorage::memory(), StoreOptions::new())
        .await
        .expect("memory store")
}

/// Installs a test subscriber once (`RUST_LOG` to see driver logs).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
