//! `corestore key --name NAME [--namespace NS]...`: the key a named core has in this store.

use std::fmt;

use anyhow::{Context as _, Result, bail};
use corestore::Key;
use serde::Serialize;

use crate::cli::NameArgs;
use crate::output::Ctx;
use crate::store;

/// A named core's key.
#[derive(Debug, Serialize)]
struct KeyReport {
    name: String,
    namespace: Vec<String>,
    #[serde(serialize_with = "crate::output::display")]
    key: Key,
}

impl fmt::Display for KeyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.key)
    }
}

/// Derives the key from the store's primary key (the core need not exist).
pub(crate) async fn run(ctx: &Ctx, args: NameArgs) -> Result<()> {
    if args.name.is_empty() {
        bail!("a core name must not be empty");
    }
    let store = store::open(&ctx.store).await?;
    let key = store::in_namespaces(&store, &args.namespace).key_of(&args.name);
    store.close().await.context("cannot close the store")?;
    ctx.emit(&KeyReport {
        name: args.name,
        namespace: args.namespace,
        key,
    })
}
