//! `corestore info (KEY | --name ...)` and `corestore list`: what a core, or every core of the
//! store, looks like.

use std::fmt;

use anyhow::{Context as _, Result};
use corestore::{DiscoveryKey, Hypercore, Key, StoredCore, USER_DATA_NAME};
use serde::Serialize;

use crate::cli::CoreRef;
use crate::output::{Ctx, human_bytes};
use crate::store;

/// One core's state.
#[derive(Debug, Serialize)]
struct CoreReport {
    #[serde(serialize_with = "crate::output::display")]
    key: Key,
    #[serde(serialize_with = "crate::output::display")]
    discovery_key: DiscoveryKey,
    /// The name it was created with (`corestore/name` user data), if any.
    name: Option<String>,
    length: u64,
    contiguous_length: u64,
    byte_length: u64,
    fork: u64,
    writable: bool,
}

impl CoreReport {
    fn of(core: &Hypercore) -> Result<Self> {
        let info = core
            .info()
            .with_context(|| format!("cannot read the info of core {}", core.key()))?;
        Ok(Self {
            key: info.key,
            discovery_key: info.discovery_key,
            name: core
                .user_data(USER_DATA_NAME)
                .map(|n| String::from_utf8_lossy(&n).into_owned()),
            length: info.length,
            contiguous_length: info.contiguous_length,
            byte_length: info.byte_length,
            fork: info.fork,
            writable: info.writable,
        })
    }
}

impl From<StoredCore> for CoreReport {
    fn from(c: StoredCore) -> Self {
        Self {
            key: c.key,
            discovery_key: c.discovery_key,
            name: c.name,
            length: c.length,
            contiguous_length: c.contiguous_length,
            byte_length: c.byte_length,
            fork: c.fork,
            writable: c.writable,
        }
    }
}

impl fmt::Display for CoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key:               {}", self.key)?;
        writeln!(f, "discovery key:     {}", self.discovery_key)?;
        if let Some(name) = &self.name {
            writeln!(f, "name:              {name}")?;
        }
        writeln!(f, "length:            {}", self.length)?;
        writeln!(f, "contiguous length: {}", self.contiguous_length)?;
        writeln!(
            f,
            "byte length:       {} ({})",
            self.byte_length,
            human_bytes(self.byte_length)
        )?;
        writeln!(f, "fork:              {}", self.fork)?;
        writeln!(f, "writable:          {}", self.writable)
    }
}

/// Every core of the store.
#[derive(Debug, Serialize)]
struct ListReport {
    cores: Vec<CoreReport>,
}

impl fmt::Display for ListReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cores {
            write!(
                f,
                "{} {:>8} {:>10}",
                c.key,
                c.length,
                human_bytes(c.byte_length)
            )?;
            match &c.name {
                Some(name) => writeln!(f, "  {name}")?,
                None => writeln!(f)?,
            }
        }
        writeln!(f, "{} cores", self.cores.len())
    }
}

/// `info`.
pub(crate) async fn info(ctx: &Ctx, core: &CoreRef) -> Result<()> {
    let store = store::open(&ctx.store).await?;
    let report = async {
        let log = store::core(&store, core, false).await?;
        CoreReport::of(&log)
    }
    .await;
    store.close().await.context("cannot close the store")?;
    ctx.emit(&report?)
}

/// `list`: reads every core's files without loading it into the store
/// ([`Corestore::list_cores`](corestore::Corestore::list_cores)).
pub(crate) async fn list(ctx: &Ctx) -> Result<()> {
    let store = store::open(&ctx.store).await?;
    let report = store
        .list_cores()
        .await
        .context("cannot list the cores of the store");
    store.close().await.context("cannot close the store")?;
    let cores = report?.into_iter().map(CoreReport::from).collect();
    ctx.emit(&ListReport { cores })
}
