//! `corestore info (KEY | --name ...)` and `corestore list`: what a core, or every core of the
//! store, looks like.

use std::fmt;

use anyhow::{Context as _, Result};
use corestore::{Corestore, DiscoveryKey, GetOptions, Hypercore, Key, USER_DATA_NAME};
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

/// `list`.
pub(crate) async fn list(ctx: &Ctx) -> Result<()> {
    let store = store::open(&ctx.store).await?;
    let report = list_cores(&store).await;
    store.close().await.context("cannot close the store")?;
    ctx.emit(&ListReport { cores: report? })
}

async fn list_cores(store: &Corestore) -> Result<Vec<CoreReport>> {
    let stored = store
        .stored_cores()
        .context("cannot list the cores of the store")?;
    let mut cores = Vec::with_capacity(stored.len());
    for dk in stored {
        let core = store
            .get(GetOptions::discovery_key(dk))
            .await
            .with_context(|| format!("cannot open the core with discovery key {dk}"))?;
        cores.push(CoreReport::of(&core)?);
        core.close().await;
    }
    Ok(cores)
}
