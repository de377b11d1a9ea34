//! `corestore init [--primary-key HEX]`: create the store, or check an existing one.

use std::fmt;
use std::path::PathBuf;

use anyhow::{Context as _, Result, bail};
use corestore::{PRIMARY_KEY_FILE, PrimaryKey, StoreOptions};
use serde::Serialize;

use crate::cli::InitArgs;
use crate::output::Ctx;
use crate::store;

/// What `init` did.
#[derive(Debug, Serialize)]
struct InitReport {
    store: PathBuf,
    created: bool,
}

impl fmt::Display for InitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.created {
            writeln!(f, "created a store at {}", self.store.display())
        } else {
            writeln!(f, "a store already exists at {}", self.store.display())
        }
    }
}

/// Creates the store; an existing store is left as it is (but a different `--primary-key`
/// is an error, since the store's named cores derive from its key).
pub(crate) async fn run(ctx: &Ctx, args: InitArgs) -> Result<()> {
    let existed = ctx.store.join(PRIMARY_KEY_FILE).is_file();
    std::fs::create_dir_all(&ctx.store)
        .with_context(|| format!("cannot create the directory {}", ctx.store.display()))?;
    let mut options = StoreOptions::new();
    if let (false, Some(pk)) = (existed, args.primary_key) {
        options = options.primary_key(PrimaryKey::from_bytes(pk));
    }
    let store = store::open_with(&ctx.store, options).await?;
    let mismatch = existed
        && args
            .primary_key
            .is_some_and(|pk| store.primary_key().as_bytes() != &pk);
    store.close().await.context("cannot close the store")?;
    if mismatch {
        bail!(
            "the store at {} already exists with a different primary key",
            ctx.store.display()
        );
    }
    ctx.emit(&InitReport {
        store: ctx.store.clone(),
        created: !existed,
    })
}
