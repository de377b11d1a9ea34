//! The `corestore` facade scenarios: opening many named cores, the memory each idle core
//! costs, and opening then closing them (where lazily created cores write their files).

use std::time::{Duration, Instant};

use anyhow::Result;
use corestore::{Corestore, GetOptions, Hypercore, StoreOptions, StoreStorage};
use serde_json::{Value, json};

use crate::{Args, report, rss_bytes};

/// The store's options: the defaults, except `--lazy 0` (for comparisons by hand; `cargo xtask
/// bench` never passes it), which creates cores eagerly as before lazy creation.
fn store_options(args: &Args) -> Result<StoreOptions> {
    Ok(StoreOptions::new().lazy(args.num("lazy", Some(1))? != 0))
}

/// `open-cores`: `Corestore::get` of `--count` named cores (created on first open) in a store
/// in `--dir`, one after the other, every session kept open, stopping early after `--cap`
/// seconds (default 600); RSS is read before and after. The store is not closed (closing
/// flushes and syncs every core, which is not what this measures): the process just exits.
pub(crate) async fn open_cores(args: &Args) -> Result<Value> {
    let count = args.num("count", None)?;
    let cap = Duration::from_secs(args.num("cap", Some(600))?);
    let store = Corestore::new(StoreStorage::dir(args.str("dir")?), store_options(args)?).await?;
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

/// `open-close-cores`: the `get`s of `open-cores` (same names, same `--cap` on the opening
/// loop), then every session closed one by one (the last session of a core closes it: a
/// lazily created core writes its files then) and the store closed. `seconds` covers all of
/// it; `open_seconds` the opening part alone.
pub(crate) async fn open_close_cores(args: &Args) -> Result<Value> {
    let count = args.num("count", None)?;
    let cap = Duration::from_secs(args.num("cap", Some(600))?);
    let store = Corestore::new(StoreStorage::dir(args.str("dir")?), store_options(args)?).await?;
    drop(store.get(GetOptions::name("warm-up")).await?);
    let mut cores: Vec<Hypercore> = Vec::with_capacity(usize::try_from(count)?);
    let started = Instant::now();
    for i in 0..count {
        cores.push(store.get(GetOptions::name(format!("core-{i}"))).await?);
        if started.elapsed() >= cap {
            break;
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    let opened = u64::try_from(cores.len())?;
    for core in &cores {
        core.close().await;
    }
    store.close().await?;
    let elapsed = started.elapsed();
    Ok(report(
        "open-close-cores",
        opened,
        0,
        elapsed,
        json!({ "open_seconds": open_seconds }),
    ))
}
