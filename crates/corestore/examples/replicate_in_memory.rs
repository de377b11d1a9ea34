//! Two in-memory stores replicating over `tokio::io::duplex`: one writes a core, the other
//! downloads it by key.
//!
//! Run: `cargo run -p corestore --example replicate_in_memory`

#![allow(clippy::print_stdout)]

use std::time::Duration;

use corestore::{Corestore, GetOptions, StoreOptions, StoreStorage};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let writer_store = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;
    let reader_store = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;

    let writer = writer_store.get(GetOptions::name("chat")).await?;
    let lines: Vec<String> = (0..1000).map(|i| format!("message {i}")).collect();
    writer.append_batch(&lines).await?;

    let reader = reader_store
        .get(GetOptions::key(writer.key()).timeout(Duration::from_secs(30)))
        .await?;

    let (a, b) = tokio::io::duplex(64 * 1024);
    let left = writer_store.replicate(a, true)?;
    let right = reader_store.replicate(b, false)?;

    reader.download(..).done().await?;
    println!(
        "downloaded {} blocks ({} bytes); last: {}",
        reader.length(),
        reader.byte_length(),
        String::from_utf8_lossy(&reader.get(reader.length() - 1).await?)
    );

    // A live append reaches the reader.
    writer.append(b"one more").await?;
    println!(
        "live: {}",
        String::from_utf8_lossy(&reader.get(1000).await?)
    );

    left.close();
    left.join().await?;
    right.join().await?;
    writer_store.close().await?;
    reader_store.close().await?;
    Ok(())
}
