//! `corestore serve --listen ADDR`: replicate the store's cores with every peer that
//! connects, until interrupted.
//!
//! Cores are not loaded up front: the facade serves every core a peer opens that the store
//! has on disk, so a store with thousands of cores costs nothing until a peer asks.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use corestore::Corestore;
use serde::Serialize;
use tokio::net::TcpListener;
use tracing::{Instrument as _, info, info_span, warn};

use crate::cli::ServeArgs;
use crate::output::Ctx;
use crate::store;

/// Printed once the socket is bound.
#[derive(Debug, Serialize)]
struct Listening {
    listening: SocketAddr,
    cores: usize,
}

impl fmt::Display for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "listening on {}", self.listening)
    }
}

/// Serves until ctrl-c (or SIGTERM), then closes the store.
pub(crate) async fn run(ctx: &Ctx, args: ServeArgs) -> Result<()> {
    let store = store::open(&ctx.store).await?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let cores = store
        .stored_cores()
        .context("cannot list the cores of the store")?
        .len();
    ctx.emit(&Listening {
        listening: addr,
        cores,
    })?;
    info!(%addr, cores, "serving");
    tokio::select! {
        () = accept_loop(store.clone(), listener) => {}
        r = interrupted() => {
            r?;
            info!("interrupted, closing the store");
        }
    }
    store.close().await.context("cannot close the store")
}

/// Accepts peers forever, replicating `store` with each (as the responder).
pub(crate) async fn accept_loop(store: Corestore, listener: TcpListener) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // For example out of file descriptors: wait a little instead of spinning.
                warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        info!(%peer, "peer connected");
        let handle = match store.replicate_tcp(socket, false) {
            Ok(h) => h,
            Err(e) => {
                warn!(%peer, error = %e, "cannot replicate with the peer");
                continue;
            }
        };
        tokio::spawn(
            async move {
                match handle.join().await {
                    Ok(()) => info!(%peer, "peer disconnected"),
                    Err(e) => warn!(%peer, error = %e, "peer disconnected with an error"),
                }
            }
            .instrument(info_span!("peer", %peer)),
        );
    }
}

/// Resolves on ctrl-c, or on SIGTERM on Unix.
async fn interrupted() -> Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot listen for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot listen for ctrl-c"),
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c()
            .await
            .context("cannot listen for ctrl-c")
    }
}
