//! Conflict detection (spec §9.9), as hypercore 10's replicator: a proof from a peer that
//! does not verify pauses the peer and probes it with request id 0 for its signed tree at
//! `min(our length, its length)`. An answer that is validly signed but whose tree differs from
//! ours at that length proves that the writer signed two versions of the core on one fork: a
//! *conflict*. Every driver then sends our own proof for that length to its peer (as an answer
//! to request 0, so the peer can see the conflict too), closes the core's channel, and the
//! core closes with all its sessions ([`Conflict`]).

use std::sync::Arc;

use corestore_proto::replicate::CoreId;
use corestore_proto::wire;
use tracing::{debug, trace, warn};

use super::Driver;
use crate::core::{Conflict, LoadedCore, Signal};
use crate::replicate::convert;

impl Driver {
    /// A proof from the remote did not verify: pause the peer and, unless it was a fork proof,
    /// ask it for its signed tree at `min(our length, its length)` (hypercore
    /// `_checkIfConflict`; nothing to compare at length 0).
    pub(super) fn check_if_conflict(&mut self, id: CoreId, reorg: bool) {
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        a.paused = true;
        if reorg {
            return;
        }
        let Ok(length) = a.core.with(|c| Ok(c.length())) else {
            return;
        };
        let Some(peer) = self.conn.peer() else {
            return;
        };
        let Some(remote) = peer.remote_state(id) else {
            return;
        };
        let length = length.min(remote.length);
        if length > 0 {
            debug!(
                length,
                "proof failed to verify: probing the peer for a conflict"
            );
            let _ = peer.probe(id, length);
        }
    }

    /// Checks a proof answering request 0 with an upgrade from 0 (our probe's answer, or a
    /// peer's proof after it found a conflict), as hypercore's `checkConflict`: a validly
    /// signed tree that differs from ours is a conflict; one that agrees lets requests to the
    /// peer resume; one that does not verify is ignored.
    pub(super) fn on_conflict_proof(&mut self, id: CoreId, data: &wire::Data) {
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        let proof = convert::proof_from_data(data.clone());
        match a.core.with(|c| Ok(c.is_conflict(&proof)?)) {
            Ok(true) => {
                let length = proof.upgrade.as_ref().map_or(0, |u| u.length);
                let core = Arc::clone(&a.core);
                self.start_conflict(&core, length, proof.fork);
            }
            Ok(false) => {
                a.paused = false;
                self.dirty.insert(id);
            }
            Err(e) => trace!(error = %e, "conflict proof ignored"),
        }
    }

    /// Announces a conflict found on `core` to every driver (this one included).
    fn start_conflict(&self, core: &Arc<LoadedCore>, length: u64, fork: u64) {
        if let Some(conflict) = Conflict::start(&self.root.registry, core, length, fork) {
            warn!(dk = %core.discovery_key, length, fork, "conflicting signed trees");
            self.root
                .registry
                .hub
                .send(&Signal::Conflict(Arc::clone(&conflict)));
        }
    }

    /// Answers a conflict on this stream (hypercore `_onconflict`): if the remote is on our
    /// fork and has blocks, it gets our proof for `min(our length, its length)` as an answer
    /// to request 0; then the core's channel closes.
    pub(super) fn answer_conflict(&mut self, conflict: &Conflict) {
        let Some(&id) = self.by_dk.get(&conflict.core.discovery_key) else {
            return;
        };
        let core = Arc::clone(&conflict.core);
        let Some(peer) = self.conn.peer() else {
            return;
        };
        if let Some(remote) = peer.remote_state(id)
            && let Ok((fork, length)) = core.with(|c| Ok((c.fork(), c.length())))
            && remote.fork == fork
            && length.min(remote.length) > 0
        {
            let request = wire::Request {
                fork,
                upgrade: Some(wire::RequestUpgrade {
                    start: 0,
                    length: length.min(remote.length),
                }),
                ..wire::Request::default()
            };
            match core.with(|c| Ok(c.proof(&convert::request_from_wire(&request))?)) {
                Ok(Some(proof)) => {
                    let _ = peer.send_data(id, convert::data_from_proof(0, proof));
                }
                Ok(None) => {}
                Err(e) => debug!(error = %e, "no proof for the conflict answer"),
            }
        }
        let _ = peer.close_core(id);
        self.detach(id);
    }
}
