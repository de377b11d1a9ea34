//! The `corestore` facade scenario: opening many named cores, and the memory each idle core
//! costs.

use std::time::{Duration, Instant};

use anyhow::Result;
use corestore::{Corestore, GetOptions, StoreOptions, StoreStorage};
use serde_json::{Value, json};

use crate::{Args, report, rss_bytes};

/// `open-cores`: `Corestore::get` of `--count` named cores (created on first open) in a store
/// in `--dir`, one after the other, every session kept open, stopping early after `--cap`
/// seconds (default 600); RSS is read before and after. The store is not closed (closing
/// flushes and syncs every core, which is not what this measures): the process just exits.
pub(crate) async fn open_cores(args: &Args) -> Result<Value> {
    let count = args.num("count", None)?;
    let cap = Duration::from_secs(args.num("cap", Some(600))?);
    let store = Corestore::new(StoreStorage::dir(args.str("dir")?), StoreOptions::new()).await?;
    // Warm up the runtime's blocking pool and the lazily initialised parts of the store.
    drop(store.get(GetOptions::name("warm-up")).await?);
    let rss_before = rss_bytes()?;
    let mut cores = Vec::with_capacity(usize::try_from(count)?);
    let started = Instant::now();
    for i in 0..count {
        cores.push(store.get(GetOptions::name(format!("core-{i}"))).await?);
        if started.elapsed() >= cap {
            break;
        }
    }
    let opened = u64::try_from(cores.len())?;
    let elapsed = started.elapsed();
    let rss_after = rss_bytes()?;
    let per_core = rss_after.saturating_sub(rss_before) as f64 / opened.max(1) as f64;
    let result = report(
        "open-cores",
        opened,
        0,
        elapsed,
        json!({ "rss_before": rss_before, "rss_after": rss_after, "rss_per_core": per_core }),
    );
    std::mem::forget(cores);
    std::mem::forget(store);
    Ok(result)
}
