//! `corestore serve --listen ADDR`: replicate the store's cores with every peer that
//! connects, until interrupted.
//!
//! Cores are not loaded up front: the facade serves every core a peer opens that the store
//! has on disk, so a store with thousands of cores costs nothing until a peer asks.
//!
//! The server has a stable identity: its Noise static key pair is derived from the store's
//! primary key (as a JavaScript app derives its swarm identity with
//! `store.createKeyPair(name)`), so peers see the same public key every time the store is
//! served. It is printed with the listening address.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, Result};
use corestore::{Corestore, KeyPair, ReplicateOptions};
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
    /// The server's Noise public key (hex), the identity peers see.
    identity: String,
}

/// Namespace and name of the serve identity's key pair.
const IDENTITY_NAMESPACE: &str = "corestore-cli";
const IDENTITY_NAME: &str = "serve identity";

/// The stable Noise identity `serve` (and `demo`) replicate with.
pub(crate) fn identity(store: &Corestore) -> KeyPair {
    store.namespace(IDENTITY_NAMESPACE).key_pair(IDENTITY_NAME)
}

impl fmt::Display for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "listening on {}", self.listening)?;
        writeln!(f, "identity {}", self.identity)
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
    let identity = identity(&store);
    ctx.emit(&Listening {
        listening: addr,
        cores,
        identity: hex(&identity.public_key().to_bytes()),
    })?;
    info!(%addr, cores, "serving");
    tokio::select! {
        () = accept_loop(store.clone(), listener, identity) => {}
        r = interrupted() => {
            r?;
            info!("interrupted, closing the store");
        }
    }
    store.close().await.context("cannot close the store")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Accepts peers forever, replicating `store` with each (as the responder, with the Noise key
/// pair `identity`).
pub(crate) async fn accept_loop(store: Corestore, listener: TcpListener, identity: KeyPair) {
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
        if let Err(e) = socket.set_nodelay(true) {
            warn!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        let options = ReplicateOptions::new(false).key_pair(identity.clone());
        let handle = match store.replicate_with(socket, options) {
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
