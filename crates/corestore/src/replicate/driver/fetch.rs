//! The fetching half of the driver: deciding what to request from the remote and applying
//! the proofs it sends.

use std::sync::Arc;

use corestore_proto::replicate::{CoreId, RequestSpec};
use corestore_proto::wire::{self, RequestBlock};
use hypercore_lite::BlockRequest;
use tracing::{debug, trace};

use super::{Applied, Driver};
use crate::core::{CoreEvent, LoadedCore};
use crate::error::Error;
use crate::replicate::convert;

/// Blocks per availability segment (hypercore asks `want` per segment).
const SEGMENT: u64 = 2_097_152;

impl Driver {
    /// Forgets a finished request and asks for more.
    pub(super) fn settle(&mut self, id: CoreId, request: u64) {
        if let Some(a) = self.attached.get_mut(&id)
            && a.upgrade == Some(request)
        {
            a.upgrade = None;
        }
        self.dirty.insert(id);
    }

    /// Sends the upgrade and block requests this core needs from this peer now.
    pub(super) fn fill(&mut self, id: CoreId) {
        let now = self.now();
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        let Some(peer) = self.conn.peer() else {
            return;
        };
        let Some(remote) = peer.remote_state(id) else {
            return;
        };
        let Ok((fork, has_manifest)) = a.core.with(|c| Ok((c.fork(), c.manifest().is_some())))
        else {
            return;
        };
        // Readers of manifest (non-compat, corestore 7) cores learn the manifest with their
        // first upgrade.
        let manifest = remote.has_manifest && !has_manifest;
        if !a.opened || !remote.synced || a.paused {
            return;
        }
        if remote.fork > fork {
            // The remote truncated: ask for its whole new head (a fork proof) and reorg.
            if a.upgrade.is_none() && remote.length > 0 {
                let spec = RequestSpec {
                    upgrade: Some(wire::RequestUpgrade {
                        start: 0,
                        length: remote.length,
                    }),
                    manifest,
                    ..RequestSpec::default()
                };
                if let Ok(r) = peer.request(now, id, spec) {
                    a.upgrade = Some(r);
                }
            }
            return;
        }
        if remote.fork != fork {
            return;
        }
        if a.upgrade.is_none()
            && let Some(upgrade) = peer.upgrade_to_request(id)
        {
            let spec = RequestSpec {
                upgrade: Some(upgrade),
                manifest,
                ..RequestSpec::default()
            };
            if let Ok(r) = peer.request(now, id, spec) {
                a.upgrade = Some(r);
            }
        }
        let room = self.max_inflight.saturating_sub(peer.inflight(id));
        if room == 0 {
            return;
        }
        let missing = a
            .core
            .missing(room, |i| a.requested.contains(&i) || a.refused.contains(&i));
        let mut fetch = Vec::with_capacity(missing.len());
        for index in missing {
            if peer.remote_has(id, index) {
                fetch.push(index);
                continue;
            }
            let segment = index / SEGMENT;
            if index < remote.length && a.wanted.insert(segment) {
                let _ = peer.send_want(id, segment * SEGMENT, SEGMENT);
            }
        }
        let trim = self.trim;
        let nodes: Vec<u64> = a
            .core
            .with(|c| {
                // The proofs on their way (of our fork): each brings the nodes of its path.
                let mut coming: Vec<BlockRequest> = Vec::new();
                if trim {
                    coming.extend(a.blocks.values().filter(|q| q.fork == fork).map(|q| {
                        BlockRequest {
                            index: q.index,
                            nodes: q.nodes,
                        }
                    }));
                }
                Ok(fetch
                    .iter()
                    .map(|&i| {
                        let nodes = if trim && !a.full.contains(&i) {
                            c.missing_nodes_after(i, &coming)
                        } else {
                            c.missing_nodes(i)
                        };
                        let nodes = nodes.unwrap_or(0);
                        if trim {
                            coming.push(BlockRequest { index: i, nodes });
                        }
                        nodes
                    })
                    .collect())
            })
            .unwrap_or_default();
        for (index, nodes) in fetch.into_iter().zip(nodes) {
            let spec = RequestSpec {
                block: Some(RequestBlock { index, nodes }),
                ..RequestSpec::default()
            };
            match peer.request(now, id, spec) {
                Ok(r) => {
                    a.blocks.insert(r, Asked { index, nodes, fork });
                    a.requested.insert(index);
                    a.full.remove(&index);
                }
                Err(_) => break,
            }
        }
    }

    /// Verifies a proof from the remote. A proof of one block (nothing else) is kept with the
    /// others of this round and stored with them by [`Driver::apply_verified`] (one oplog write
    /// per core per round); any other proof first stores those, then itself, so proofs are
    /// applied in the order they arrived.
    ///
    /// A proof that does not verify pauses the peer (no more requests to it) and, on our fork,
    /// probes it for a conflict ([`Driver::check_if_conflict`]); a conflict probe's answer
    /// goes to [`Driver::on_conflict_proof`].
    pub(super) fn on_data(&mut self, id: CoreId, data: wire::Data) {
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        if a.upgrade == Some(data.request) {
            a.upgrade = None;
        }
        if let Some(asked) = a.blocks.remove(&data.request) {
            a.requested.remove(&asked.index);
        }
        if a.core.is_conflicted() {
            return;
        }
        if data.request == 0 && data.upgrade.as_ref().is_some_and(|u| u.start == 0) {
            // Conflict proofs are always checked; only a fork proof goes on from there.
            let reorg = a.core.with(|c| Ok(data.fork > c.fork())).unwrap_or(false);
            self.on_conflict_proof(id, &data);
            if !reorg {
                return;
            }
        }
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        self.dirty.insert(id);
        let bytes = data.block.as_ref().map(|b| b.value.len() as u64);
        let block_only = data.block.is_some()
            && data.upgrade.is_none()
            && data.manifest.is_none()
            && data.seek.is_none()
            && data.hash.is_none();
        let proof = convert::proof_from_data(data);
        let core = Arc::clone(&a.core);
        if block_only {
            match core.with(|c| Ok(c.verify_owned(proof)?)) {
                Ok(batch) if !batch.is_upgrade() => {
                    self.verified.push(Verified {
                        id,
                        core,
                        batch,
                        bytes,
                    });
                }
                Ok(batch) => {
                    self.apply_verified();
                    let result = core.with(|c| Ok(c.apply(batch)?));
                    self.on_applied(id, &core, result, bytes, false);
                }
                Err(e) => self.on_rejected(id, &e, false),
            }
            return;
        }
        self.apply_verified();
        let mut reorg = false;
        let result = core.with(|c| {
            reorg = proof.fork > c.fork();
            let verified = c.verify_owned(proof)?;
            Ok(c.apply(verified)?)
        });
        self.on_applied(id, &core, result, bytes, reorg);
    }

    /// Stores the block proofs verified this round: one [`Core::apply_batch`] per core, in the
    /// order they arrived.
    ///
    /// [`Core::apply_batch`]: hypercore_lite::Core::apply_batch
    pub(super) fn apply_verified(&mut self) {
        let mut verified = std::mem::take(&mut self.verified);
        while let Some(first) = verified.first() {
            let id = first.id;
            let core = Arc::clone(&first.core);
            // Usually every proof of a round is of one core: taken in one go, not split.
            let rest = if verified.iter().all(|v| v.id == id) {
                Vec::new()
            } else {
                let (mine, rest) = verified.into_iter().partition(|v| v.id == id);
                verified = mine;
                rest
            };
            let mut about = Vec::with_capacity(verified.len());
            let batches: Vec<_> = verified
                .drain(..)
                .map(|v| {
                    about.push((v.batch.block(), v.bytes));
                    v.batch
                })
                .collect();
            if !rest.is_empty() {
                verified = rest;
            }
            match core.with(|c| Ok(c.apply_batch(batches))) {
                Ok(results) => {
                    for (result, (block, bytes)) in results.into_iter().zip(about) {
                        if let (Err(e), Some(index)) = (&result, block)
                            && not_anchored(e)
                        {
                            self.ask_again(id, index);
                            continue;
                        }
                        self.on_applied(id, &core, result.map_err(Into::into), bytes, false);
                    }
                }
                Err(e) => debug!(error = %e, "proofs not stored"),
            }
        }
        // Keep the buffer for the next round.
        if self.verified.capacity() == 0 {
            self.verified = verified;
        }
    }

    /// Reports a stored proof (events, and the blocks to announce at the end of the round);
    /// `reorg`: whether the proof was of a higher fork (for the conflict probe of a failure).
    fn on_applied(
        &mut self,
        id: CoreId,
        core: &Arc<LoadedCore>,
        result: crate::error::Result<hypercore_lite::Applied>,
        bytes: Option<u64>,
        reorg: bool,
    ) {
        match result {
            Ok(applied) => {
                trace!(block = ?applied.block, length = applied.length, "applied");
                if let Some(ancestors) = applied.ancestors {
                    // Blocks stored earlier this round are announced now, as far as the
                    // reorg kept them.
                    if let Some(mut earlier) = self.applied.remove(&id) {
                        earlier.blocks.retain(|&b| b < ancestors);
                        earlier.announce();
                    }
                    core.emit(CoreEvent::Truncate {
                        length: ancestors,
                        fork: applied.fork,
                    });
                }
                if applied.upgraded {
                    core.emit(CoreEvent::Append {
                        length: applied.length,
                    });
                }
                if let (Some(index), Some(bytes)) = (applied.block, bytes) {
                    core.emit(CoreEvent::Download { index, bytes });
                }
                let round = self.applied.entry(id).or_insert_with(|| Applied {
                    core: Arc::clone(core),
                    blocks: Vec::new(),
                });
                round.blocks.extend(applied.block);
            }
            Err(e) => self.on_rejected(id, &e, reorg),
        }
    }

    /// A trimmed block proof that hashes up to a node we do not have: the proof it leaned on
    /// did not come (`noData`, a timeout, a cancelled request) or has not come yet. Not the
    /// peer's fault: the block is asked for again, with every node we miss.
    fn ask_again(&mut self, id: CoreId, index: u64) {
        trace!(index, "proof not anchored yet: asking again");
        if let Some(a) = self.attached.get_mut(&id) {
            a.full.insert(index);
        }
        self.dirty.insert(id);
    }

    /// A proof that did not verify or could not be stored: a peer's fault probes for a
    /// conflict.
    fn on_rejected(&mut self, id: CoreId, e: &Error, reorg: bool) {
        debug!(error = %e, "proof rejected");
        if peer_fault(e) {
            self.check_if_conflict(id, reorg);
        }
    }
}

/// Whether a rejected proof calls for a conflict probe. hypercore probes on every error but
/// `INVALID_OPERATION`, which it raises for proofs of the wrong shape (an unexpected node, an
/// upgrade that does not fit); what is left are proofs that hash to something other than the
/// tree we trust: a checksum mismatch, a bad signature, a manifest that is not the key's.
/// Proofs that went stale because our own state moved, and local storage failures, are not
/// the peer's doing.
fn peer_fault(e: &Error) -> bool {
    use hypercore_lite::VerifyError::{BadSignature, ChecksumMismatch, InvalidManifest};
    matches!(
        e,
        Error::Core(hypercore_lite::Error::Verification(
            BadSignature | ChecksumMismatch { .. } | InvalidManifest
        ))
    )
}

/// Whether a block proof could not be stored only because it hashes up to a node we do not
/// have (yet): see [`Core::missing_nodes_after`](hypercore_lite::Core::missing_nodes_after).
fn not_anchored(e: &hypercore_lite::Error) -> bool {
    matches!(
        e,
        hypercore_lite::Error::Verification(hypercore_lite::VerifyError::NotAnchored { .. })
    )
}

/// One of our block requests still in flight.
#[derive(Debug, Clone, Copy)]
pub(super) struct Asked {
    /// The block.
    pub(super) index: u64,
    /// The `nodes` it asked for.
    pub(super) nodes: u64,
    /// Our fork when we asked.
    pub(super) fork: u64,
}

/// A block proof verified this round and not stored yet.
pub(super) struct Verified {
    id: CoreId,
    core: Arc<LoadedCore>,
    batch: hypercore_lite::VerifiedBatch,
    /// The block's size, for the download event.
    bytes: Option<u64>,
}
