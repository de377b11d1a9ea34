//! The fetching half of the driver: deciding what to request from the remote and applying
//! the proofs it sends.

use std::sync::Arc;

use super::inflight::Asked;
use corestore_keys::Hash;
use corestore_proto::replicate::{CoreId, RequestSpec};
use corestore_proto::wire::{self, RequestBlock};
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
            .missing(room, |i| a.inflight.has_block(i) || a.refused.contains(&i));
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
        let (inflight, full) = (&mut a.inflight, &mut a.full);
        let asked = a.core.with(|c| {
            for index in fetch {
                // A trimmed request leaves out the nodes the answers on their way (of our
                // fork) bring; a block whose trimmed proof found nothing to lean on asks for
                // every node it misses.
                let nodes = if trim && !full.contains(&index) {
                    c.missing_nodes_unless(index, |n| inflight.brings(fork, n))
                } else {
                    c.missing_nodes(index)
                };
                let nodes = nodes.unwrap_or(0);
                let spec = RequestSpec {
                    block: Some(RequestBlock { index, nodes }),
                    ..RequestSpec::default()
                };
                match peer.request(now, id, spec) {
                    Ok(r) => {
                        inflight.insert(r, Asked { index, nodes, fork });
                        full.remove(&index);
                    }
                    Err(_) => break,
                }
            }
            Ok(())
        });
        if let Err(e) = asked {
            debug!(error = %e, "no block requests: the core is unavailable");
        }
    }

    /// Takes a proof from the remote. A proof of one block (nothing else) is kept with the
    /// others of this round, to be verified and stored with them by [`Driver::apply_verified`]
    /// (blocks hashed side by side, one oplog write per core per round); any other proof first
    /// has those verified and stored, then itself, so proofs are applied in the order they
    /// arrived.
    ///
    /// A proof that does not verify pauses the peer (no more requests to it) and, on our fork,
    /// probes it for a conflict ([`Driver::check_if_conflict`]); a conflict probe's answer
    /// goes to [`Driver::on_conflict_proof`].
    /// `leaf`: the leaf hash of the block value, when the receiver task computed it.
    pub(super) fn on_data(&mut self, id: CoreId, data: wire::Data, leaf: Option<Hash>) {
        let Some(a) = self.attached.get_mut(&id) else {
            return;
        };
        if a.upgrade == Some(data.request) {
            a.upgrade = None;
        }
        a.inflight.remove(data.request);
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
            self.received.push(Received {
                id,
                core,
                proof,
                leaf,
                bytes,
            });
            return;
        }
        self.apply_verified();
        let mut reorg = false;
        let result = core.with(|c| {
            reorg = proof.fork > c.fork();
            let verified = c.verify_owned_hashed(proof, leaf)?;
            Ok(c.apply(verified)?)
        });
        self.on_applied(id, &core, result, bytes, reorg);
    }

    /// Verifies and stores the block proofs received this round, per core in the order they
    /// arrived: their blocks are hashed side by side ([`Core::verify_many`]; those the
    /// receiver task hashed already are not hashed again) and the proofs
    /// that verify are stored with one [`Core::apply_batch`] (one oplog write per core per
    /// round).
    ///
    /// [`Core::verify_many`]: hypercore_lite::Core::verify_many
    /// [`Core::apply_batch`]: hypercore_lite::Core::apply_batch
    pub(super) fn apply_verified(&mut self) {
        let mut received = std::mem::take(&mut self.received);
        while let Some(first) = received.first() {
            let id = first.id;
            let core = Arc::clone(&first.core);
            // Usually every proof of a round is of one core: taken in one go, not split.
            let rest = if received.iter().all(|r| r.id == id) {
                Vec::new()
            } else {
                let (mine, rest) = received.into_iter().partition(|r| r.id == id);
                received = mine;
                rest
            };
            let (proofs, sizes): (Vec<_>, Vec<_>) = received
                .drain(..)
                .map(|r| ((r.proof, r.leaf), r.bytes))
                .unzip();
            if !rest.is_empty() {
                received = rest;
            }
            let outcome = core.with(|c| {
                let mut outcomes = Vec::with_capacity(proofs.len());
                let mut batches = Vec::with_capacity(proofs.len());
                for (verified, bytes) in c.verify_many_hashed(proofs).into_iter().zip(sizes) {
                    match verified {
                        Ok(batch) => {
                            outcomes.push(Outcome::Verified(batch.block(), bytes));
                            batches.push(batch);
                        }
                        Err(e) => outcomes.push(Outcome::Rejected(e)),
                    }
                }
                // Block-only proofs are stored together, anything else alone, in order.
                Ok((outcomes, c.apply_batch(batches)))
            });
            match outcome {
                Ok((outcomes, stored)) => {
                    let mut stored = stored.into_iter();
                    for outcome in outcomes {
                        match outcome {
                            Outcome::Verified(block, bytes) => {
                                let Some(result) = stored.next() else {
                                    continue;
                                };
                                match (result, block) {
                                    (Err(e), Some(index)) if not_anchored(&e) => {
                                        self.ask_again(id, index);
                                    }
                                    (result, _) => self.on_applied(
                                        id,
                                        &core,
                                        result.map_err(Into::into),
                                        bytes,
                                        false,
                                    ),
                                }
                            }
                            Outcome::Rejected(e) => self.on_rejected(id, &e.into(), false),
                        }
                    }
                }
                Err(e) => debug!(error = %e, "proofs not stored"),
            }
        }
        // Keep the buffer for the next round.
        if self.received.capacity() == 0 {
            self.received = received;
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
                if applied.upgraded || applied.ancestors.is_some() {
                    // The peer learns our new length now, not from the store's signal next
                    // round: the requests of this round's end must not ask for the same
                    // upgrade again.
                    if let Some(state) = super::core_state(core)
                        && let Some(p) = self.conn.peer()
                    {
                        let _ = p.update_core(id, state);
                    }
                    self.check_upgradeable(id);
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

/// A block proof received this round, verified and stored at its end.
pub(super) struct Received {
    id: CoreId,
    core: Arc<LoadedCore>,
    proof: hypercore_lite::Proof,
    /// The leaf hash of the block, if the receiver task computed it.
    leaf: Option<Hash>,
    /// The block's size, for the download event.
    bytes: Option<u64>,
}

/// What became of one received block proof: verified (its block and size; the result of
/// storing it comes from `apply_batch`), or rejected.
enum Outcome {
    Verified(Option<u64>, Option<u64>),
    Rejected(hypercore_lite::Error),
}
