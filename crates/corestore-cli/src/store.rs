//! Opening the store directory and the core a command names, with the context a person needs
//! when either fails.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use corestore::{Corestore, GetOptions, Hypercore, PRIMARY_KEY_FILE, StoreOptions, StoreStorage};

use crate::cli::CoreRef;

/// Opens an existing store (one with a `primary-key` file, as corestore 6 writes it).
pub(crate) async fn open(dir: &Path) -> Result<Corestore> {
    if !dir.join(PRIMARY_KEY_FILE).is_file() {
        bail!(
            "no store at {} (no {PRIMARY_KEY_FILE} file): run `corestore init` or pass --store DIR",
            dir.display()
        );
    }
    open_with(dir, StoreOptions::new()).await
}

/// Opens (or creates) the store in `dir` with `options`.
pub(crate) async fn open_with(dir: &Path, options: StoreOptions) -> Result<Corestore> {
    Corestore::new(StoreStorage::dir(dir), options)
        .await
        .with_context(|| format!("cannot open the store at {}", dir.display()))
}

/// The store session whose namespace is the chain `namespaces`.
pub(crate) fn in_namespaces(store: &Corestore, namespaces: &[String]) -> Corestore {
    namespaces
        .iter()
        .fold(store.clone(), |s, ns| s.namespace(ns.as_bytes()))
}

/// Opens the core `core` names. `create` allows creating a named core that is not stored yet;
/// a core given by key is never created here.
pub(crate) async fn core(store: &Corestore, core: &CoreRef, create: bool) -> Result<Hypercore> {
    match core {
        CoreRef::Key(key) => store
            .get(GetOptions::key(*key).create_if_missing(false))
            .await
            .with_context(|| format!("cannot open core {key}")),
        CoreRef::Name { name, namespaces } => in_namespaces(store, namespaces)
            .get(GetOptions::name(name.clone()).create_if_missing(create))
            .await
            .with_context(|| {
                format!(
                    "cannot open the core named {name:?}{}",
                    ns_suffix(namespaces)
                )
            }),
    }
}

fn ns_suffix(namespaces: &[String]) -> String {
    if namespaces.is_empty() {
        String::new()
    } else {
        format!(" in namespace {}", namespaces.join("/"))
    }
}
