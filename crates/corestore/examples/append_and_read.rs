//! Creates a store in a temporary directory, appends to a named core, reads it back, and
//! reopens the store to show that the core (and its writability) persist.
//!
//! Run: `cargo run -p corestore --example append_and_read`

#![allow(clippy::print_stdout)]

use corestore::{Corestore, GetOptions, StoreOptions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Corestore::new(dir.path(), StoreOptions::new()).await?;
    let log = store.get(GetOptions::name("log")).await?;
    log.append_batch(&[&b"hello"[..], b"corestore"]).await?;
    log.append(b"from rust").await?;
    println!("core {} has {} blocks:", log.key(), log.length());
    for i in 0..log.length() {
        println!("  {i}: {}", String::from_utf8_lossy(&log.get(i).await?));
    }
    let key = log.key();
    store.close().await?;

    let store = Corestore::new(dir.path(), StoreOptions::new()).await?;
    let again = store.get(key).await?;
    println!(
        "reopened by key: length {}, writable {}",
        again.length(),
        again.is_writable()
    );
    store.close().await?;
    Ok(())
}
