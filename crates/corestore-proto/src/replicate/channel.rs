//! Per-(stream, core) replication state (spec §9.3): what we advertise, what the remote told
//! us, and the sync rules deciding when a fresh `sync` goes out.

use std::collections::HashSet;

use super::availability::Availability;
use crate::idhash::IdMap;
use crate::mux::ChannelId;
use crate::timer::Timestamp;
use crate::wire::{Request, RequestUpgrade, Sync};

/// What the layer above knows about its local copy of a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CoreState {
    /// Our fork id.
    pub fork: u64,
    /// Our length.
    pub length: u64,
    /// How many blocks from 0 we have without gaps.
    pub contiguous_length: u64,
    /// Whether we want data for this core.
    pub downloading: bool,
    /// Whether we store a manifest and the core is not compat (advertised as `hasManifest`).
    pub has_manifest: bool,
}

/// What the remote announced for a core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RemoteState {
    /// Whether a `sync` arrived yet.
    pub synced: bool,
    /// The remote's fork.
    pub fork: u64,
    /// The remote's length.
    pub length: u64,
    /// The remote can produce an upgrade proof from what it believes our length is.
    pub can_upgrade: bool,
    /// The remote serves data.
    pub uploading: bool,
    /// The remote wants data.
    pub downloading: bool,
    /// The remote has a manifest.
    pub has_manifest: bool,
    /// hypercore 11: the remote accepts pushes.
    pub allow_push: bool,
    /// The remote understands `seek` requests.
    pub seeks: bool,
    /// Blocks `[0, contiguous_length)` are known to be available at the remote.
    pub contiguous_length: u64,
    /// What the remote believes our length is (`sync.remoteLength`), if forks match.
    pub length_acked: u64,
}

#[derive(Debug)]
pub(crate) struct Inflight {
    pub(crate) request: Request,
    pub(crate) deadline: Timestamp,
}

#[derive(Debug)]
pub(crate) struct CoreChannel {
    pub(crate) key: [u8; 32],
    pub(crate) discovery_key: [u8; 32],
    pub(crate) channel: ChannelId,
    pub(crate) local: CoreState,
    pub(crate) remote: RemoteState,
    pub(crate) opened: bool,
    /// What we advertise as `canUpgrade`.
    pub(crate) can_upgrade: bool,
    /// The `canUpgrade` of the last `sync` we sent (`None` before the first).
    pub(crate) advertised_can_upgrade: Option<bool>,
    /// A follow-up `sync` is due once the layer above has reacted to the remote's `sync`.
    pub(crate) needs_sync: bool,
    /// A remote length the layer above found we can upgrade from ([`Peer::set_upgradeable`]).
    ///
    /// [`Peer::set_upgradeable`]: super::Peer::set_upgradeable
    pub(crate) upgradeable: Option<u64>,
    /// The last `(remote length, local length, local contiguous length)` the layer above was
    /// asked to check ([`Peer::take_upgrade_check`]): asked once per change.
    ///
    /// [`Peer::take_upgrade_check`]: super::Peer::take_upgrade_check
    pub(crate) upgrade_asked: Option<(u64, u64, u64)>,
    pub(crate) next_request_id: u64,
    pub(crate) inflight: IdMap<u64, Inflight>,
    pub(crate) remote_requests: HashSet<u64>,
    /// Blocks the remote announced beyond its contiguous prefix.
    pub(crate) available: Availability,
    pub(crate) last_extension_sent: Option<String>,
    pub(crate) last_extension_received: Option<String>,
}

impl CoreChannel {
    pub(crate) fn new(
        key: [u8; 32],
        discovery_key: [u8; 32],
        channel: ChannelId,
        local: CoreState,
    ) -> Self {
        Self {
            key,
            discovery_key,
            channel,
            local,
            remote: RemoteState::default(),
            opened: false,
            can_upgrade: true,
            advertised_can_upgrade: None,
            needs_sync: false,
            upgradeable: None,
            upgrade_asked: None,
            next_request_id: 1,
            inflight: IdMap::default(),
            remote_requests: HashSet::new(),
            available: Availability::default(),
            last_extension_sent: None,
            last_extension_received: None,
        }
    }

    /// The `sync` we send now.
    pub(crate) fn sync_message(&mut self) -> Sync {
        let same_fork = self.local.fork == self.remote.fork;
        if !same_fork {
            self.can_upgrade = false;
        }
        self.advertised_can_upgrade = Some(self.can_upgrade);
        self.needs_sync = false;
        Sync {
            fork: self.local.fork,
            length: self.local.length,
            remote_length: if same_fork { self.remote.length } else { 0 },
            can_upgrade: self.can_upgrade,
            uploading: true,
            downloading: self.local.downloading,
            has_manifest: self.local.has_manifest,
            allow_push: false,
        }
    }

    /// Whether we can prove an upgrade from `remote_length` (hypercore's `_canUpgrade`): on
    /// our fork, below our length, and with every full root of `remote_length` stored. The
    /// roots are stored when the blocks below `remote_length` are (`contiguous_length`);
    /// otherwise (a sparse core) only the layer above knows, and until it says so
    /// ([`CoreChannel::upgrade_check`]) the answer is no: a remote told yes would ask for
    /// upgrades we cannot prove.
    fn compute_can_upgrade(&self, remote_length: u64, remote_fork: u64) -> bool {
        remote_fork == self.local.fork
            && (remote_length == 0
                || remote_length < self.local.length
                    && (remote_length <= self.local.contiguous_length
                        || self.upgradeable == Some(remote_length)))
    }

    /// The remote length whose full roots the layer above should look up, once per change of
    /// it or of our state: when we cannot yet say we can upgrade the remote but might.
    pub(crate) fn upgrade_check(&mut self) -> Option<u64> {
        let length = self.remote.length;
        let asked = (length, self.local.length, self.local.contiguous_length);
        let unknown = self.remote.synced
            && !self.can_upgrade
            && self.remote.fork == self.local.fork
            && length > self.local.contiguous_length
            && length < self.local.length;
        if !unknown || self.upgrade_asked == Some(asked) {
            return None;
        }
        self.upgrade_asked = Some(asked);
        Some(length)
    }

    /// The layer above found every full root of `remote_length` stored. Returns whether a
    /// `sync` must be sent (what we advertise changed).
    pub(crate) fn set_upgradeable(&mut self, remote_length: u64) -> bool {
        self.upgradeable = Some(remote_length);
        let now = self.compute_can_upgrade(self.remote.length, self.remote.fork);
        if now == self.can_upgrade {
            return false;
        }
        self.can_upgrade = now;
        self.opened && self.advertised_can_upgrade != Some(now)
    }

    /// Applies a received `sync`. Returns `(idle, send_sync)`: whether the channel is idle and
    /// must be closed, and whether a fresh `sync` must be sent.
    pub(crate) fn on_sync(&mut self, m: &Sync) -> (bool, bool) {
        let length_changed = m.length != self.remote.length;
        let same_fork = m.fork == self.local.fork;
        self.remote.synced = true;
        self.remote.fork = m.fork;
        self.remote.length = m.length;
        self.remote.can_upgrade = m.can_upgrade;
        self.remote.uploading = m.uploading;
        self.remote.downloading = m.downloading;
        self.remote.has_manifest = m.has_manifest;
        self.remote.allow_push = m.allow_push;
        if !m.downloading && !self.local.downloading {
            return (true, false);
        }
        self.remote.length_acked = if same_fork { m.remote_length } else { 0 };
        let upgrade = if !length_changed || !same_fork {
            self.can_upgrade && same_fork
        } else {
            self.compute_can_upgrade(m.length, m.fork)
        };
        if same_fork {
            self.can_upgrade = upgrade;
        }
        let mut send = false;
        if same_fork && self.local.length > self.remote.length {
            if !self.can_upgrade {
                let now = self.compute_can_upgrade(self.remote.length, self.remote.fork);
                if now {
                    self.can_upgrade = true;
                    send = true;
                }
            } else {
                send = true;
            }
        }
        // hypercore processes a `sync` asynchronously and re-announces when its state changed
        // meanwhile (`needsSync`, then `signalUpgrade`): the §9.11 trace shows the reader's
        // `sync {len 0, rlen 3}` without `canUpgrade` after the writer's first `sync`. When the
        // `canUpgrade` we last advertised went stale, a follow-up `sync` is due; the peer sends it
        // after the layer above reacted (its request goes first, as in the trace).
        if !send
            && self
                .advertised_can_upgrade
                .is_some_and(|a| a != self.can_upgrade)
        {
            self.needs_sync = true;
        }
        (false, send)
    }

    /// Applies a new local state; returns whether a `sync` must be sent.
    pub(crate) fn on_local_update(&mut self, state: CoreState) -> bool {
        let changed = state.length != self.local.length
            || state.fork != self.local.fork
            || state.downloading != self.local.downloading
            || state.has_manifest != self.local.has_manifest;
        if state.fork != self.local.fork {
            self.upgradeable = None;
        }
        self.local = state;
        if changed {
            self.can_upgrade = self.compute_can_upgrade(self.remote.length, self.remote.fork);
        }
        changed && self.opened
    }

    /// Whether the remote announced block `index` (spec §9.4: request only from peers that
    /// have it).
    pub(crate) fn remote_has(&self, index: u64) -> bool {
        index < self.remote.length
            && (index < self.remote.contiguous_length || self.available.contains(index))
    }

    /// Whether the remote announced all of `[start, start + length)`.
    pub(crate) fn remote_has_range(&self, start: u64, length: u64) -> bool {
        let end = start.saturating_add(length);
        end <= self.remote.contiguous_length || self.available.contains_range(start, end)
    }

    /// The upgrade to attach to a request now, following hypercore's rules (spec §9.4).
    pub(crate) fn upgrade_to_request(&self) -> Option<RequestUpgrade> {
        let r = &self.remote;
        let busy = self.inflight.values().any(|i| i.request.upgrade.is_some());
        (r.can_upgrade
            && r.fork == self.local.fork
            && r.length > self.local.length
            && r.length_acked == self.local.length
            && !busy)
            .then(|| RequestUpgrade {
                start: self.local.length,
                length: r.length - self.local.length,
            })
    }
}
