//! Store events (corestore 6 `core-open` / `core-close`, spec §6.10, and conflicts, §9.9): [`StoreEvent`] and the
//! channels that carry them to store sessions ([`Corestore::events`](crate::Corestore::events)).
//!
//! As in corestore 6, an event reaches the session whose `get` loaded the core, every session
//! made directly from the root store, and the root. Channels are created by the first
//! subscriber, so a store nobody listens to pays nothing per core.

use std::sync::{Arc, Mutex, Weak};

use corestore_keys::{DiscoveryKey, Key};
use tokio::sync::broadcast;

use crate::core::lock;

/// Events buffered per store session for slow subscribers (older ones are reported as
/// lagged).
const EVENT_BUFFER: usize = 1024;

/// A core was loaded into or removed from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreEvent {
    /// A core was opened (loaded) by a `get` or for a remote peer (`core-open`).
    CoreOpen {
        /// The core key.
        key: Key,
        /// Its discovery key.
        discovery_key: DiscoveryKey,
    },
    /// A loaded core closed (`core-close`): its last user left, it lingered out, or the store
    /// closed.
    CoreClose {
        /// The core key.
        key: Key,
        /// Its discovery key.
        discovery_key: DiscoveryKey,
    },
    /// A peer proved that the core's writer signed two different trees at `length` on the
    /// same fork (hypercore's `conflict`). The core's channels were closed and the core was
    /// closed with every session (a `CoreClose` follows); see
    /// [`CoreEvent::Conflict`](crate::CoreEvent::Conflict).
    Conflict {
        /// The core key.
        key: Key,
        /// Its discovery key.
        discovery_key: DiscoveryKey,
        /// The length at which the trees differ.
        length: u64,
        /// The fork both trees claim.
        fork: u64,
    },
}

/// The event channel of one store session (created by its first subscriber).
#[derive(Default)]
pub(crate) struct EventTx {
    tx: Mutex<Option<broadcast::Sender<StoreEvent>>>,
}

impl EventTx {
    /// A new receiver.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        lock(&self.tx)
            .get_or_insert_with(|| broadcast::channel(EVENT_BUFFER).0)
            .subscribe()
    }

    fn send(&self, event: &StoreEvent) {
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(event.clone());
        }
    }
}

/// Who hears about cores: the root and its direct sessions.
#[derive(Default)]
pub(crate) struct StoreEvents {
    pub(crate) root: Arc<EventTx>,
    children: Mutex<Vec<Weak<EventTx>>>,
}

impl StoreEvents {
    /// Registers a session made directly from the root.
    pub(crate) fn add_child(&self, child: &Arc<EventTx>) {
        let mut children = lock(&self.children);
        children.retain(|c| c.strong_count() > 0);
        children.push(Arc::downgrade(child));
    }

    /// Sends `event` to the opener (if any), the root's direct sessions and the root, once
    /// each.
    pub(crate) fn emit(&self, opener: Option<&Arc<EventTx>>, event: &StoreEvent) {
        let mut targets: Vec<Arc<EventTx>> = lock(&self.children)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        targets.push(Arc::clone(&self.root));
        targets.extend(opener.cloned());
        for (i, t) in targets.iter().enumerate() {
            if !targets[..i].iter().any(|o| Arc::ptr_eq(o, t)) {
                t.send(event);
            }
        }
    }
}
