//! The replication primitives of a core: answer a [`Request`] with a [`Proof`]
//! ([`Core::proof`]), check a received proof against the current state without touching
//! storage ([`Core::verify`]), and commit what it proves ([`Core::apply`]).

use bytes::Bytes;
use corestore_keys::manifest::is_compat;
use corestore_keys::{Hash, Manifest, Node, PublicKey, Verifier};
use tracing::{debug, trace};

use super::open::update_contig;
use super::{Core, Durability};
use crate::error::{Error, Result, VerifyError};
use crate::oplog::entry::{BitfieldUpdate, Entry, TreeUpgrade};
use crate::tree::flat::NodeIndex;
use crate::tree::proof::{self, BlockRequest, Proof, Request, Verified};
use crate::tree::{NodeSource, Overlaid, TreeState, brings, byte_offset};

/// The value of the block a proof from [`Core::proof_deferred`] carries, not read yet.
#[derive(Debug)]
#[must_use]
pub struct BlockValue<'a> {
    core: &'a Core,
    index: u64,
    /// The block's leaf (its size is the value's length).
    leaf: Node,
}

impl BlockValue<'_> {
    /// The block's index.
    #[must_use]
    pub fn index(&self) -> u64 {
        self.index
    }

    /// The value's length in bytes.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.leaf.size
    }

    /// Whether the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.leaf.size == 0
    }

    /// Reads the value onto the end of `out`, checked against its leaf as [`Core::get`]
    /// checks a block; on an error `out` is left as it was.
    ///
    /// # Errors
    ///
    /// [`Error::Corrupt`], [`Error::Storage`].
    pub fn read_append(self, out: &mut Vec<u8>) -> Result<()> {
        self.core.read_leaf_append(self.index, &self.leaf, out)
    }
}

/// A proof that verified against the core's state at the time, ready for [`Core::apply`].
///
/// It records the length and fork it was verified against; applying it after the core
/// changed fails with [`VerifyError::Stale`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct VerifiedBatch {
    verified: Verified,
    block: Option<(u64, Bytes)>,
    reorg: bool,
    manifest: Option<Manifest>,
    base_length: u64,
    base_fork: u64,
}

impl VerifiedBatch {
    /// The length the core will have after [`Core::apply`].
    #[must_use]
    pub const fn length(&self) -> u64 {
        self.verified.batch.state.length
    }

    /// The fork the core will be on after [`Core::apply`].
    #[must_use]
    pub const fn fork(&self) -> u64 {
        self.verified.batch.state.fork
    }

    /// Whether the proof moves the head (an upgrade or a reorg).
    #[must_use]
    pub const fn is_upgrade(&self) -> bool {
        self.verified.batch.upgraded
    }

    /// Whether the proof is a fork proof (the core will reorg onto a higher fork).
    #[must_use]
    pub const fn is_reorg(&self) -> bool {
        self.reorg
    }

    /// The block the proof carries, if any.
    #[must_use]
    pub fn block(&self) -> Option<u64> {
        self.block.as_ref().map(|(i, _)| *i)
    }
}

/// What [`Core::apply`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Applied {
    /// Length after the apply.
    pub length: u64,
    /// Fork after the apply.
    pub fork: u64,
    /// Whether the head moved.
    pub upgraded: bool,
    /// The block stored, if any.
    pub block: Option<u64>,
    /// For a reorg: how many blocks the old and new fork share (blocks from there on were
    /// dropped locally).
    pub ancestors: Option<u64>,
}

impl Core {
    /// Builds the proof answering `request` (hypercore `tree.proof` plus the block value and
    /// the manifest). Returns `Ok(None)` when the request cannot be answered but is not
    /// malformed: another fork, a block we do not store, or (sparse cores) a tree node the
    /// proof needs that we do not store. Answer those with `noData`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidRequest`] for a request no honest peer sends (JavaScript peers close
    /// the stream), [`Error::Corrupt`], [`Error::Storage`], [`Error::Poisoned`].
    pub fn proof(&self, request: &Request) -> Result<Option<Proof>> {
        let Some((mut proof, value)) = self.proof_deferred(request)? else {
            return Ok(None);
        };
        if let (Some(block), Some(value)) = (proof.block.as_mut(), value) {
            let mut bytes = Vec::new();
            value.read_append(&mut bytes)?;
            block.value = bytes.into();
        }
        Ok(Some(proof))
    }

    /// [`Core::proof`] that leaves the block's value out (`block.value` is empty) for the
    /// caller to read where it wants it, say straight into the message being encoded
    /// ([`BlockValue::read_append`]), instead of into a vector of its own first. Borrows the
    /// core: read the value before changing it.
    ///
    /// # Errors
    ///
    /// As [`Core::proof`].
    pub fn proof_deferred(
        &self,
        request: &Request,
    ) -> Result<Option<(Proof, Option<BlockValue<'_>>)>> {
        self.check_poisoned()?;
        if request.fork != self.fork() {
            return Ok(None);
        }
        if let Some(b) = request.block
            && !self.has(b.index)
        {
            return Ok(None);
        }
        let prologue = self.prologue();
        let mut proof = match proof::build(&self.tree, &self.tree.state, request, prologue.as_ref())
        {
            Err(Error::NodeNotAvailable { .. }) => return Ok(None),
            other => other?,
        };
        let value = match &proof.block {
            Some(block) => Some(BlockValue {
                core: self,
                index: block.index,
                leaf: self.tree.require(NodeIndex::leaf(block.index))?,
            }),
            None => None,
        };
        if request.manifest && !self.compat {
            proof.manifest = self.header.manifest.clone();
        }
        Ok(Some((proof, value)))
    }

    /// Verifies `proof` against the current state. Pure: no storage is read or written (the
    /// check of the proof's anchor against a stored tree node, when the anchor is not one of
    /// the roots, happens in [`Core::apply`]).
    ///
    /// A proof on our fork must be anchored in our tree or carry an upgrade starting at our
    /// length; a proof on a higher fork must carry an upgrade from 0 (a fork proof). Upgrades
    /// are checked against the manifest (learned from the proof, or the compat default for
    /// cores opened by key alone, spec §4.5).
    ///
    /// # Errors
    ///
    /// [`Error::Verification`] with the reason, [`Error::Poisoned`].
    pub fn verify(&self, proof: &Proof) -> Result<VerifiedBatch> {
        let mut batch = self.verify_parts(proof, None)?;
        batch.block = proof.block.as_ref().map(|b| (b.index, b.value.clone()));
        Ok(batch)
    }

    /// [`Core::verify`] of a proof the caller is done with: the block's bytes move into the
    /// result instead of being copied.
    ///
    /// # Errors
    ///
    /// As [`Core::verify`].
    pub fn verify_owned(&self, proof: Proof) -> Result<VerifiedBatch> {
        self.verify_owned_hashed(proof, None)
    }

    /// [`Core::verify_owned`] of a proof whose block may be hashed already: `leaf`, if any, is
    /// taken as `corestore_keys::hash::leaf` of the block's value, with the same contract as
    /// in [`Core::verify_many_hashed`].
    ///
    /// # Errors
    ///
    /// As [`Core::verify`].
    pub fn verify_owned_hashed(&self, proof: Proof, leaf: Option<Hash>) -> Result<VerifiedBatch> {
        if let (Some(block), Some(known)) = (&proof.block, leaf) {
            debug_assert_eq!(known, corestore_keys::hash::leaf(&block.value));
        }
        let mut batch = self.verify_parts(&proof, leaf)?;
        batch.block = proof.block.map(|b| (b.index, b.value));
        Ok(batch)
    }

    /// [`Core::verify_owned`] of many proofs, say the block proofs of one read from a peer:
    /// their blocks are hashed side by side first ([`corestore_keys::hash::leaves`], about
    /// twice as fast as one by one), then each proof is verified as [`Core::verify_owned`]
    /// does, against the current state. One result per proof, in order.
    #[must_use]
    pub fn verify_many(&self, proofs: Vec<Proof>) -> Vec<Result<VerifiedBatch>> {
        self.verify_many_hashed(proofs.into_iter().map(|p| (p, None)).collect())
    }

    /// [`Core::verify_many`] of proofs whose blocks may be hashed already: a `Some(leaf)` next
    /// to a proof is taken as `corestore_keys::hash::leaf` of its block's value, so it must
    /// have been computed by the caller from those very bytes (say on another thread as they
    /// arrived), never taken from a peer: the proof is checked against it, not against the
    /// bytes. (Debug builds recompute it and panic on a mismatch.) Blocks without one are
    /// hashed side by side as [`Core::verify_many`] does.
    #[must_use]
    pub fn verify_many_hashed(
        &self,
        proofs: Vec<(Proof, Option<Hash>)>,
    ) -> Vec<Result<VerifiedBatch>> {
        let blocks: Vec<&[u8]> = proofs
            .iter()
            .filter(|(_, known)| known.is_none())
            .filter_map(|(p, _)| p.block.as_ref().map(|b| &b.value[..]))
            .collect();
        let mut leaves = corestore_keys::hash::leaves(&blocks).into_iter();
        proofs
            .into_iter()
            .map(|(proof, known)| {
                let hashed = match (&proof.block, known) {
                    (Some(_), None) => leaves.next(),
                    _ => known,
                };
                self.verify_owned_hashed(proof, hashed)
            })
            .collect()
    }

    /// [`Core::verify`] without the block's bytes; `leaf`: the block's leaf hash if the
    /// caller computed it.
    fn verify_parts(&self, proof: &Proof, leaf: Option<Hash>) -> Result<VerifiedBatch> {
        self.check_poisoned()?;
        let state = &self.tree.state;
        let reorg = proof.fork != state.fork;
        if reorg && (proof.fork < state.fork || proof.upgrade.as_ref().is_none_or(|u| u.start != 0))
        {
            return Err(VerifyError::ForkMismatch {
                ours: state.fork,
                got: proof.fork,
            }
            .into());
        }
        let fork_base;
        let base = if reorg {
            fork_base = TreeState {
                fork: proof.fork,
                ..TreeState::default()
            };
            &fork_base
        } else {
            state
        };
        let prologue = self.prologue();
        let verified = proof::verify_hashed(proof, leaf, base, prologue.as_ref())?;
        let mut manifest = None;
        if verified.batch.upgraded {
            manifest = self.check_upgrade_signature(&verified.batch.state, proof)?;
        }
        Ok(VerifiedBatch {
            block: None,
            verified,
            reorg,
            manifest,
            base_length: state.length,
            base_fork: state.fork,
        })
    }

    /// How many tree nodes a request for block `index` should ask for while the requests
    /// `coming` (to the same peer, on our fork) are still on their way: [`Core::missing_nodes`]
    /// that also stops at the first node one of their proofs brings (every node of a proof's
    /// path from its leaf up `nodes` levels, and the siblings below the top).
    ///
    /// The answer then hashes up to a node the core may not store yet: [`Core::apply_batch`]
    /// accepts it once that node is stored or was brought by an earlier proof of the same
    /// batch, and fails it with [`VerifyError::NotAnchored`] otherwise (the proof it leaned on
    /// did not come: ask again with [`Core::missing_nodes`]).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub fn missing_nodes_after(&self, index: u64, coming: &[BlockRequest]) -> Result<u64> {
        let span = block_span(coming);
        self.tree
            .missing_nodes_unless(NodeIndex::leaf(index), |n| brought(coming, span, n))
    }

    /// [`Core::missing_nodes_after`] with the requests on their way given as the set of nodes
    /// they bring: `known(i)` says whether one of them brings the node with flat index `i`
    /// (collect those with [`BlockRequest::brought`]). A caller that keeps that set as
    /// requests come and go pays one lookup per tree level instead of a scan of every request
    /// in flight.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub fn missing_nodes_unless(
        &self,
        index: u64,
        mut known: impl FnMut(u64) -> bool,
    ) -> Result<u64> {
        self.tree
            .missing_nodes_unless(NodeIndex::leaf(index), |n| known(n.get()))
    }

    /// Checks a conflict probe (hypercore `checkConflict`): a proof with an upgrade from 0 on
    /// our fork, answering `request {id: 0, upgrade: {start: 0, length}}`. Returns `true` if
    /// the proof is validly signed but its tree at `length` differs from ours (the signer
    /// forked the core without bumping the fork id); `false` if the trees agree, or the proof
    /// is for another fork or a length we do not have.
    ///
    /// # Errors
    ///
    /// [`Error::Verification`] if the proof does not verify (hypercore treats that as a
    /// conflict too), [`Error::Corrupt`] / [`Error::Storage`] reading our roots.
    pub fn is_conflict(&self, proof: &Proof) -> Result<bool> {
        self.check_poisoned()?;
        let Some(upgrade) = proof.upgrade.as_ref().filter(|u| u.start == 0) else {
            return Ok(false);
        };
        if proof.fork != self.fork() || upgrade.length > self.length() {
            return Ok(false);
        }
        let base = TreeState {
            fork: proof.fork,
            ..TreeState::default()
        };
        let verified = proof::verify(proof, &base, self.prologue().as_ref())?;
        self.check_upgrade_signature(&verified.batch.state, proof)?;
        let mut ours = Vec::new();
        for index in crate::tree::flat::full_roots(upgrade.length) {
            match self.tree.node(index)? {
                Some(root) => ours.push(root),
                // A sparse core may not know its roots at that length: nothing to compare.
                None => return Ok(false),
            }
        }
        Ok(corestore_keys::hash::tree(&ours) != corestore_keys::hash::tree(&upgrade.nodes))
    }

    /// Checks the signature of an upgraded tree `state` from `proof` against the core's
    /// manifest (or the one the proof offers); returns the manifest to store if we learn it now.
    fn check_upgrade_signature(
        &self,
        state: &TreeState,
        proof: &Proof,
    ) -> Result<Option<Manifest>, VerifyError> {
        let (verifier, learned) = self.upgrade_verifier(proof.manifest.as_ref())?;
        let signature = state.signature.as_deref().unwrap_or_default();
        verifier
            .verify(&state.head(), signature)
            .map_err(|_| VerifyError::BadSignature)?;
        Ok(learned)
    }

    /// The verifier for an upgrade, and the manifest to store if we learn it now.
    fn upgrade_verifier(
        &self,
        offered: Option<&Manifest>,
    ) -> Result<(Verifier, Option<Manifest>), VerifyError> {
        if let Some(v) = &self.verifier {
            return Ok((v.clone(), None));
        }
        let key = self.header.key;
        let manifest = match offered {
            Some(m) => m.clone(),
            None if self.compat => Manifest::default_signer(PublicKey(key.0)),
            None => return Err(VerifyError::InvalidManifest),
        };
        if manifest.hash().0 != key.0 && !(self.compat && is_compat(&key, &manifest)) {
            return Err(VerifyError::InvalidManifest);
        }
        let verifier =
            Verifier::new(key, manifest.clone()).map_err(|_| VerifyError::InvalidManifest)?;
        Ok((verifier, Some(manifest)))
    }

    /// Fails with [`VerifyError::Stale`] if the core changed since [`Core::verify`], or if the
    /// proof's anchor does not match our tree.
    fn check_applicable(&self, batch: &VerifiedBatch) -> Result<()> {
        self.check_applicable_after(batch, &[])
    }

    /// [`Core::check_applicable`] for a proof stored after the (checked, not yet written)
    /// `earlier` entries of its group: its anchor may also be one of their nodes, which are as
    /// trusted as our tree (each was checked the same way before it joined the group).
    fn check_applicable_after(&self, batch: &VerifiedBatch, earlier: &[Entry]) -> Result<()> {
        self.check_poisoned()?;
        if batch.base_length != self.length() || batch.base_fork != self.fork() {
            return Err(VerifyError::Stale.into());
        }
        if let Some(anchor) = batch.verified.anchor {
            let index = NodeIndex(anchor.index);
            let ours = match pending_node(earlier, index) {
                Some(node) => Some(node),
                None => self.tree.node(index)?,
            };
            match ours {
                Some(ours) if ours.hash == anchor.hash => {}
                Some(_) => {
                    return Err(VerifyError::ChecksumMismatch {
                        index: anchor.index,
                    }
                    .into());
                }
                None => {
                    return Err(VerifyError::NotAnchored {
                        index: anchor.index,
                    }
                    .into());
                }
            }
        }
        Ok(())
    }

    /// Commits a verified proof: the block goes to the data file, nodes, bitfield bit and new
    /// head to an oplog entry. A fork proof reorgs the core: blocks under the roots both forks
    /// share are kept, the rest are dropped, and the core flushes.
    ///
    /// # Errors
    ///
    /// [`Error::Verification`] ([`VerifyError::Stale`] if the core changed since
    /// [`Core::verify`], or an anchor that does not match our tree; storage is then
    /// unchanged), [`Error::Storage`] (poisons the core), [`Error::Poisoned`].
    pub fn apply(&mut self, batch: VerifiedBatch) -> Result<Applied> {
        self.check_applicable(&batch)?;
        if batch.reorg {
            return self.apply_reorg(batch);
        }
        let VerifiedBatch {
            verified,
            block,
            manifest,
            ..
        } = batch;
        let tree_batch = verified.batch;
        let upgraded = tree_batch.upgraded;
        let write = match &block {
            Some((index, value)) => {
                let src = Overlaid {
                    batch: &tree_batch,
                    base: &self.tree,
                };
                Some((
                    *index,
                    byte_offset(&src, &tree_batch.state, NodeIndex::leaf(*index))?,
                    value,
                ))
            }
            None => None,
        };
        let update = block.as_ref().map(|(index, _)| BitfieldUpdate {
            drop: false,
            start: *index,
            length: 1,
        });
        let entry = Entry {
            user_data: None,
            tree_nodes: Some(tree_batch.nodes.clone()),
            tree_upgrade: upgraded.then(|| TreeUpgrade {
                fork: tree_batch.state.fork,
                ancestors: tree_batch.base_length,
                length: tree_batch.state.length,
                signature: tree_batch.state.signature.clone().unwrap_or_default(),
            }),
            bitfield: update,
        };
        self.write_data_then_log(write.map(|(_, offset, value)| (offset, &value[..])), entry)?;
        if let Some(u) = update {
            self.bitfield.set_range(u.start, 1, true);
            // `verify` hashed the block into the proof's root: its bytes are checked.
            self.bitfield.mark_checked(u.start, 1);
            update_contig(&mut self.header.hints, u, &self.bitfield);
        }
        self.tree.commit(tree_batch);
        if upgraded {
            self.sync_header_tree();
        }
        if let Some(m) = manifest {
            self.learn_manifest(m)?;
        }
        trace!(block = ?update.map(|u| u.start), upgraded, length = self.length(), "applied proof");
        self.maybe_flush()?;
        Ok(Applied {
            length: self.length(),
            fork: self.fork(),
            upgraded,
            block: update.map(|u| u.start),
            ancestors: None,
        })
    }

    /// Commits several verified proofs in order, with the same outcome as [`Core::apply`] on
    /// each in turn but fewer writes: the blocks of consecutive proofs that carry a block and
    /// nothing else (no upgrade, reorg or manifest) are written to the data file first, then
    /// their oplog entries (one per proof, as `apply` writes) follow in one oplog write, and the
    /// group counts as one mutation towards the periodic flush. hypercore 10 stores the proofs
    /// verified while a write is in progress the same way.
    ///
    /// Crash safety is that of `apply`: data before entries, and a proof is acknowledged (its
    /// result `Ok`) only once its entry was written (and, with [`Durability::Synced`], synced;
    /// the data is synced once before the entries). A crash in the middle of the entries' write
    /// keeps the entries that reached the file whole: their blocks are stored, the rest are not.
    ///
    /// A block proof of a group may hash up to a node that an earlier proof of the same group
    /// brings (a request trimmed with [`Core::missing_nodes_after`]): its anchor is checked
    /// against those nodes as well as the tree. Each of them was checked the same way before
    /// it joined, so every stored node still hashes up to the signed roots.
    ///
    /// Returns one result per proof, in order. A stale or unanchored proof gets its
    /// [`Error::Verification`] and is skipped, leaving storage unchanged for it; a storage error
    /// poisons the core: the proofs of the failed write (and every later one) get an error,
    /// and their blocks may or may not be stored after a reopen.
    pub fn apply_batch(&mut self, batches: Vec<VerifiedBatch>) -> Vec<Result<Applied>> {
        let mut results = Vec::with_capacity(batches.len());
        let mut group = Vec::with_capacity(batches.len());
        for batch in batches {
            let joins = batch.block.is_some()
                && !batch.reorg
                && !batch.verified.batch.upgraded
                && batch.manifest.is_none();
            if joins {
                group.push(batch);
                continue;
            }
            self.apply_group(std::mem::take(&mut group), &mut results);
            results.push(self.apply(batch));
        }
        self.apply_group(group, &mut results);
        results
    }

    /// Stores a group of block-only proofs with one oplog write (see [`Core::apply_batch`]).
    fn apply_group(&mut self, group: Vec<VerifiedBatch>, results: &mut Vec<Result<Applied>>) {
        if group.is_empty() {
            return;
        }
        let mut slots: Vec<Option<Result<Applied>>> = Vec::with_capacity(group.len());
        // (result slot, block index, byte offset, value), and the oplog entry of each.
        let mut writes = Vec::with_capacity(group.len());
        let mut entries: Vec<Entry> = Vec::with_capacity(group.len());
        // Where the previous block of the group ended: every proof of the group verified
        // against the same tree, so the next block starts there (no walk down the tree).
        let mut previous: Option<(u64, u64)> = None;
        for batch in group {
            let placed = self
                .check_applicable_after(&batch, &entries)
                .and_then(|()| {
                    let VerifiedBatch {
                        verified, block, ..
                    } = batch;
                    let (index, value) =
                        block.ok_or(Error::InvalidArgument("proof without a block"))?;
                    let tree_batch = verified.batch;
                    let offset = match previous {
                        Some((last, end)) if last.checked_add(1) == Some(index) => end,
                        _ => {
                            let src = Overlaid {
                                batch: &tree_batch,
                                base: &Pending {
                                    earlier: &entries,
                                    base: &self.tree,
                                },
                            };
                            byte_offset(&src, &tree_batch.state, NodeIndex::leaf(index))?
                        }
                    };
                    Ok((index, offset, value, tree_batch.nodes))
                });
            match placed {
                Ok((index, offset, value, nodes)) => {
                    previous = Some((index, offset.saturating_add(value.len() as u64)));
                    writes.push((slots.len(), index, offset, value));
                    // The nodes move into the entry; they reach the tree from there once
                    // written (for a batch without an upgrade that is all `commit` does).
                    entries.push(Entry {
                        user_data: None,
                        tree_nodes: Some(nodes),
                        tree_upgrade: None,
                        bitfield: Some(BitfieldUpdate {
                            drop: false,
                            start: index,
                            length: 1,
                        }),
                    });
                    slots.push(None);
                }
                Err(e) => slots.push(Some(Err(e))),
            }
        }
        if !writes.is_empty() {
            let written = self.guarded(|c| {
                let synced = c.durability == Durability::Synced;
                // Blocks that follow each other in the data file (a sequential download) go
                // out as one run: small ones gathered into one write.
                let mut run: Vec<&[u8]> = Vec::with_capacity(writes.len());
                let (mut run_at, mut run_end) = (0, 0);
                for (_, _, offset, value) in &writes {
                    if !run.is_empty() && *offset != run_end {
                        c.blocks.write_all(run_at, &run)?;
                        run.clear();
                    }
                    if run.is_empty() {
                        run_at = *offset;
                        run_end = *offset;
                    }
                    run.push(value);
                    run_end += value.len() as u64;
                }
                if !run.is_empty() {
                    c.blocks.write_all(run_at, &run)?;
                }
                if synced {
                    c.blocks.sync()?;
                }
                c.oplog.append(&entries)?;
                if synced {
                    c.oplog.sync()?;
                }
                Ok(())
            });
            match written {
                Ok(()) => {
                    let count = writes.len();
                    let mut last = None;
                    // The bitfield takes each run of consecutive blocks at once (the same bits
                    // and contiguous length as one block at a time, for less work).
                    let mut run: Option<(u64, u64)> = None;
                    for ((slot, index, _, _), entry) in writes.into_iter().zip(&entries) {
                        run = match run {
                            Some((start, n)) if start.checked_add(n) == Some(index) => {
                                Some((start, n + 1))
                            }
                            Some((start, n)) => {
                                self.mark_stored(start, n);
                                Some((index, 1))
                            }
                            None => Some((index, 1)),
                        };
                        self.tree
                            .add_nodes(entry.tree_nodes.as_deref().unwrap_or_default());
                        if let Some(s) = slots.get_mut(slot) {
                            *s = Some(Ok(Applied {
                                length: self.length(),
                                fork: self.fork(),
                                upgraded: false,
                                block: Some(index),
                                ancestors: None,
                            }));
                        }
                        last = Some(slot);
                    }
                    if let Some((start, n)) = run {
                        self.mark_stored(start, n);
                    }
                    trace!(count, length = self.length(), "applied proofs");
                    // As `apply`, a failed flush fails the call (here: the group's last proof).
                    if let Err(e) = self.maybe_flush()
                        && let Some(s) = last.and_then(|l| slots.get_mut(l))
                    {
                        *s = Some(Err(e));
                    }
                }
                Err(e) => {
                    // The first gets the storage error; the core is poisoned for the rest.
                    let mut error = Some(e);
                    for (slot, ..) in writes {
                        if let Some(s) = slots.get_mut(slot) {
                            *s = Some(Err(error.take().unwrap_or(Error::Poisoned)));
                        }
                    }
                }
            }
        }
        results.extend(slots.into_iter().map(|s| s.unwrap_or(Err(Error::Poisoned))));
    }

    /// Records the verified blocks `[start, start + length)` as stored: bitfield bits, checked
    /// marks (`verify` hashed each block into the proof's root) and the contiguous length.
    fn mark_stored(&mut self, start: u64, length: u64) {
        self.bitfield.set_range(start, length, true);
        self.bitfield.mark_checked(start, length);
        let update = BitfieldUpdate {
            drop: false,
            start,
            length,
        };
        update_contig(&mut self.header.hints, update, &self.bitfield);
    }

    /// Applies a fork proof: keep the blocks under the new roots we already hold with the
    /// same hash, drop the rest, then store the proof's block if it carries one.
    fn apply_reorg(&mut self, batch: VerifiedBatch) -> Result<Applied> {
        let VerifiedBatch {
            verified,
            manifest,
            block,
            ..
        } = batch;
        let mut tree_batch = verified.batch;
        let old_length = self.length();
        let mut ancestors = 0;
        for root in &tree_batch.state.roots {
            let index = NodeIndex(root.index);
            if index.end_block() > old_length {
                break;
            }
            match self.tree.node(index)? {
                Some(ours) if ours.hash == root.hash => ancestors = index.end_block(),
                _ => break,
            }
        }
        tree_batch.ancestors = ancestors;
        if let Some(m) = manifest {
            self.learn_manifest(m)?;
        }
        let (length, fork) = (tree_batch.state.length, tree_batch.state.fork);
        debug!(old_length, ancestors, length, fork, "reorg");
        self.commit_truncation(tree_batch)?;
        let stored = match block {
            Some((index, value)) => {
                self.store_verified_block(index, &value)?;
                Some(index)
            }
            None => None,
        };
        Ok(Applied {
            length,
            fork,
            upgraded: true,
            block: stored,
            ancestors: Some(ancestors),
        })
    }

    /// Writes a block whose leaf is already part of the tree, and marks it stored.
    fn store_verified_block(&mut self, index: u64, value: &[u8]) -> Result<()> {
        let offset = byte_offset(&self.tree, &self.tree.state, NodeIndex::leaf(index))?;
        let update = BitfieldUpdate {
            drop: false,
            start: index,
            length: 1,
        };
        let entry = Entry {
            bitfield: Some(update),
            ..Entry::default()
        };
        self.write_data_then_log(Some((offset, value)), entry)?;
        self.bitfield.set_range(index, 1, true);
        self.bitfield.mark_checked(index, 1);
        update_contig(&mut self.header.hints, update, &self.bitfield);
        self.maybe_flush()
    }

    /// Stores a manifest learned from a verified upgrade.
    fn learn_manifest(&mut self, manifest: Manifest) -> Result<()> {
        if self.header.manifest.is_some() {
            return Ok(());
        }
        let verifier = Verifier::new(self.header.key, manifest.clone())?;
        self.compat = verifier.is_compat();
        self.verifier = Some(verifier);
        self.header.manifest = Some(manifest);
        self.manifest_flushed = false;
        Ok(())
    }
}

/// The lowest and highest block of `requests` (`(u64::MAX, 0)` for none).
fn block_span(requests: &[BlockRequest]) -> (u64, u64) {
    requests.iter().fold((u64::MAX, 0), |(lo, hi), r| {
        (lo.min(r.index), hi.max(r.index))
    })
}

/// Whether one of the `requests` (whose blocks lie in `span`, see [`block_span`]) brings node
/// `n` ([`brings`]).
///
/// A proof brings only nodes on its leaf's path and their siblings, all under the parent of
/// each: a node whose parent spans none of the requested blocks (the common case at the
/// bottom of a download's frontier) is answered without a scan.
fn brought(requests: &[BlockRequest], (lo, hi): (u64, u64), n: NodeIndex) -> bool {
    if n.depth() < 62 {
        let parent = n.parent();
        if parent.end_block() <= lo || parent.first_block() > hi {
            return false;
        }
    }
    // Newest first: in a sequential download the request just before brings it.
    requests.iter().rev().any(|r| brings(r.index, r.nodes, n))
}

/// The node at `index` among the tree nodes of `earlier` entries of a group, newest first.
///
/// The nodes of a block proof all lie under its last node (the top of its path), so an entry
/// whose top does not span `index` is skipped without a look at the rest.
fn pending_node(earlier: &[Entry], index: NodeIndex) -> Option<Node> {
    earlier.iter().rev().find_map(|e| {
        let nodes = e.tree_nodes.as_deref()?;
        let top = nodes.last()?;
        if !NodeIndex(top.index).contains(index) {
            return None;
        }
        nodes.iter().rev().find(|n| n.index == index.get()).copied()
    })
}

/// A node source that sees the nodes of a group's earlier (checked, not yet written) entries
/// on top of a tree.
struct Pending<'a, S: NodeSource> {
    earlier: &'a [Entry],
    base: &'a S,
}

impl<S: NodeSource> NodeSource for Pending<'_, S> {
    fn node(&self, index: NodeIndex) -> Result<Option<Node>> {
        match pending_node(self.earlier, index) {
            Some(node) => Ok(Some(node)),
            None => self.base.node(index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The span check answers as the plain scan does, for nodes at every depth around the
    /// requested blocks (the edges of the span included).
    #[test]
    fn brought_agrees_with_a_scan_of_every_request() {
        let sets: [&[(u64, u64)]; 5] = [
            &[],
            &[(5, 0)],
            &[(8, 1), (9, 0), (10, 3), (11, 0)],
            &[(40, 2), (3, 6), (17, 1), (63, 4)],
            &[(u64::MAX >> 2, 5), (0, 60)],
        ];
        for set in sets {
            let requests: Vec<BlockRequest> = set
                .iter()
                .map(|&(index, nodes)| BlockRequest { index, nodes })
                .collect();
            let span = block_span(&requests);
            let mut nodes: Vec<NodeIndex> = (0..300).map(NodeIndex).collect();
            for r in &requests {
                for depth in 0..64 {
                    let on_path = NodeIndex::from_depth_offset(depth, r.index >> depth);
                    nodes.extend([on_path, on_path.sibling(), on_path.parent()]);
                }
            }
            for n in nodes {
                let scan = requests.iter().any(|r| brings(r.index, r.nodes, n));
                assert_eq!(brought(&requests, span, n), scan, "{n:?} in {set:?}");
            }
        }
    }
}
