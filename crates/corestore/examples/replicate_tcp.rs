//! Two stores replicating over TCP on the loopback interface: a server that serves its cores to
//! every peer that connects, and a client that fetches one core by key.
//!
//! Run: `cargo run -p corestore --example replicate_tcp`

#![allow(clippy::print_stdout)]

use std::time::Duration;

use corestore::{Corestore, GetOptions, StoreOptions, StoreStorage};
use tokio::net::{TcpListener, TcpStream};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;
    let core = server.get(GetOptions::name("served")).await?;
    let blocks: Vec<Vec<u8>> = (0..256).map(|i| vec![i as u8; 4096]).collect();
    core.append_batch(&blocks).await?;
    let key = core.key();

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    let serving = server.clone();
    tokio::spawn(async move {
        while let Ok((socket, peer)) = listener.accept().await {
            println!("peer {peer} connected");
            if let Err(e) = serving.replicate_tcp(socket, false) {
                println!("cannot replicate with {peer}: {e}");
            }
        }
    });

    let client = Corestore::new(StoreStorage::memory(), StoreOptions::new()).await?;
    let reader = client
        .get(GetOptions::key(key).timeout(Duration::from_secs(30)))
        .await?;
    let stream = client.replicate_tcp(TcpStream::connect(addr).await?, true)?;
    reader.download(..).done().await?;
    println!(
        "fetched {} blocks, {} bytes over TCP",
        reader.length(),
        reader.byte_length()
    );

    stream.close();
    stream.join().await?;
    client.close().await?;
    server.close().await?;
    Ok(())
}
