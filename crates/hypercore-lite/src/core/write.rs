//! Local mutations of a core: append, truncate, clear, user data; and flush, sync, close.
//!
//! Every mutation writes its data first, then its oplog entry (that is the moment it is
//! *acknowledged*), then updates the in-memory state, then maybe flushes (spec §5.10: the
//! first mutation after open, then every fourth, or when the entries pass 64 KiB; truncations
//! and reorgs always). A storage error inside a mutation poisons the core.
//!
//! Only [`Durability::Synced`] syncs inside a mutation or a flush (the barriers that make
//! every acknowledged state power-loss safe). Under [`Durability::Buffered`] the same writes
//! happen in the same order, but only [`Core::sync`] and [`Core::close`] sync: the order is
//! what a process crash or a failed write needs, and power loss is covered up to the last
//! sync.

use corestore_keys::{Manifest, PublicKey, Verifier};
use tracing::{debug, trace, warn};

use super::open::{FLUSH_RESET, add_reorg_hint, update_contig};
use super::{AppendOutcome, Core, Durability};
use crate::error::{Error, Result};
use crate::header::encode_external;
use crate::ingest::hash_while_writing;
use crate::oplog::entry::{BitfieldUpdate, Entry, TreeUpgrade, UserDataEntry};
use crate::oplog::format::{BIG_HEADER_ALIGN, MAX_HEADER_PAYLOAD, MAX_OPLOG_ENTRIES_SIZE};
use crate::tree::flat::{Cursor, NodeIndex};
use crate::tree::{Batch, MerkleTree, NodeSource, TreeState, byte_offset};

impl Core {
    /// Appends one block; see [`Core::append_batch`].
    ///
    /// # Errors
    ///
    /// As [`Core::append_batch`].
    pub fn append(&mut self, block: &[u8]) -> Result<AppendOutcome> {
        self.append_batch(&[block])
    }

    /// Appends `blocks` under one signature and one oplog entry. An empty batch changes
    /// nothing.
    ///
    /// # Errors
    ///
    /// [`Error::NotWritable`] without a key pair that may sign, [`Error::InvalidArgument`] for
    /// an append shorter than the manifest's prologue, [`Error::Storage`] (which poisons the
    /// core), [`Error::Poisoned`].
    pub fn append_batch<B: AsRef<[u8]>>(&mut self, blocks: &[B]) -> Result<AppendOutcome> {
        self.check_poisoned()?;
        self.ensure_signer()?;
        let old = (self.length(), self.byte_length());
        if blocks.is_empty() {
            return Ok(AppendOutcome {
                length: old.0,
                byte_length: old.1,
            });
        }
        let blocks: Vec<&[u8]> = blocks.iter().map(AsRef::as_ref).collect();
        // Check what can be refused before anything is written.
        let added = blocks
            .iter()
            .try_fold(0u64, |sum, b| sum.checked_add(b.len() as u64))
            .filter(|&n| old.1.checked_add(n).is_some())
            .ok_or(Error::InvalidArgument("byte length overflows"))?;
        if let Some(p) = self.prologue()
            && old.0.saturating_add(blocks.len() as u64) < p.length
        {
            return Err(Error::InvalidArgument(
                "append is not consistent with the prologue",
            ));
        }
        // The data goes to the data file while the leaves are hashed (in parallel for large
        // batches); only then is the entry that acknowledges them built and written.
        let leaves = self.guarded(|c| {
            let synced = c.durability == Durability::Synced;
            let data = &c.blocks;
            hash_while_writing(&blocks, || {
                data.write_all(old.1, &blocks)?;
                if synced {
                    data.sync()?;
                }
                Ok(())
            })
        })?;
        let mut batch = self.tree.batch();
        for (b, hash) in blocks.iter().zip(leaves) {
            batch
                .append_leaf(b.len() as u64, hash)
                .map_err(|_| Error::InvalidArgument("byte length overflows"))?;
        }
        let signature = self.sign(&batch.state)?;
        batch.state.signature = Some(signature.clone());
        let entry = Entry {
            user_data: None,
            tree_nodes: Some(batch.nodes.clone()),
            tree_upgrade: Some(TreeUpgrade {
                fork: batch.state.fork,
                ancestors: old.0,
                length: batch.state.length,
                signature,
            }),
            bitfield: Some(BitfieldUpdate {
                drop: false,
                start: old.0,
                length: blocks.len() as u64,
            }),
        };
        self.write_data_then_log(None, entry)?;
        let outcome = AppendOutcome {
            length: batch.state.length,
            byte_length: batch.state.byte_length,
        };
        let update = BitfieldUpdate {
            drop: false,
            start: old.0,
            length: blocks.len() as u64,
        };
        self.bitfield.set_range(update.start, update.length, true);
        // This open hashed the very bytes it wrote: they are checked.
        self.bitfield.mark_checked(update.start, update.length);
        self.tree.commit(batch);
        self.sync_header_tree();
        update_contig(&mut self.header.hints, update, &self.bitfield);
        trace!(start = old.0, count = blocks.len(), len = added, "append");
        self.maybe_flush()?;
        Ok(outcome)
    }

    /// Truncates the core to `new_length` blocks, bumping the fork to `fork + 1` (as
    /// hypercore's `truncate`); always flushes. Blocks past the new length become
    /// unavailable, also through earlier [`Snapshot`](crate::Snapshot)s.
    ///
    /// # Errors
    ///
    /// As [`Core::truncate_with_fork`].
    pub fn truncate(&mut self, new_length: u64) -> Result<()> {
        self.truncate_with_fork(new_length, self.fork() + 1)
    }

    /// Truncates the core to `new_length` blocks on fork `fork`; always flushes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] if `new_length` exceeds the length or cuts into the
    /// prologue, [`Error::NotWritable`], [`Error::Storage`], [`Error::Poisoned`].
    pub fn truncate_with_fork(&mut self, new_length: u64, fork: u64) -> Result<()> {
        self.check_poisoned()?;
        self.ensure_signer()?;
        if new_length > self.length() {
            return Err(Error::InvalidArgument("cannot truncate beyond the length"));
        }
        if self.prologue().is_some_and(|p| new_length < p.length) {
            return Err(Error::InvalidArgument("truncation breaks the prologue"));
        }
        let mut batch = self.tree.truncate_batch(new_length, fork)?;
        if new_length > 0 {
            batch.state.signature = Some(self.sign(&batch.state)?);
        }
        self.commit_truncation(batch)
    }

    /// Records and applies a batch that cuts the tree at `batch.ancestors` (a truncation or a
    /// reorg), then flushes.
    pub(crate) fn commit_truncation(&mut self, batch: Batch) -> Result<()> {
        let old_length = self.length();
        let old_fork = self.fork();
        let ancestors = batch.ancestors;
        let update = BitfieldUpdate {
            drop: true,
            start: ancestors,
            length: old_length.saturating_sub(ancestors),
        };
        let entry = Entry {
            user_data: None,
            tree_nodes: Some(batch.nodes.clone()),
            tree_upgrade: Some(TreeUpgrade {
                fork: batch.state.fork,
                ancestors,
                length: batch.state.length,
                signature: batch.state.signature.clone().unwrap_or_default(),
            }),
            bitfield: Some(update),
        };
        // The entry must be written (and, when synced, durable) before the flush cuts the tree
        // file below the old roots: replay then truncates past the roots it cannot find any
        // more.
        self.write_data_then_log(None, entry)?;
        self.bitfield.set_range(update.start, update.length, false);
        add_reorg_hint(
            &mut self.header.hints,
            old_length,
            old_fork,
            batch.state.fork,
            ancestors,
        );
        let (length, fork) = (batch.state.length, batch.state.fork);
        self.tree.commit(batch);
        update_contig(&mut self.header.hints, update, &self.bitfield);
        self.sync_header_tree();
        self.truncations.push(ancestors);
        debug!(old_length, ancestors, length, fork, "truncated");
        self.flush_now()
    }

    /// Drops the local copies of blocks `[start, end)`: their bits are cleared and the data
    /// file range no other stored block shares is zeroed. The tree (and so the length and
    /// every proof about the blocks) is kept.
    ///
    /// The clear is written to the oplog (and synced, with [`Durability::Synced`]) before any
    /// byte is zeroed, so a crash never leaves a block marked as stored with its bytes gone
    /// (with [`Durability::Buffered`], a power loss before the next [`Core::sync`] may: the
    /// read then fails its hash check, see the crate docs).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`], [`Error::Corrupt`] (a tree node needed for the byte range is
    /// missing), [`Error::Poisoned`].
    pub fn clear(&mut self, start: u64, end: u64) -> Result<()> {
        self.check_poisoned()?;
        if start >= end {
            return Ok(());
        }
        let length = self.length();
        let hole_start = self.bitfield.last_set_before(start);
        let hole_end = self
            .bitfield
            .first_set(end, length)
            .unwrap_or(length)
            .min(length);
        let zero = if hole_start < hole_end {
            let a = byte_offset(&self.tree, &self.tree.state, NodeIndex::leaf(hole_start))?;
            let b = byte_offset(&self.tree, &self.tree.state, NodeIndex::leaf(hole_end))?;
            Some((a, b.saturating_sub(a)))
        } else {
            None
        };
        let update = BitfieldUpdate {
            drop: true,
            start,
            length: end - start,
        };
        let entry = Entry {
            bitfield: Some(update),
            ..Entry::default()
        };
        self.write_data_then_log(None, entry)?;
        if let Some((offset, len)) = zero {
            self.guarded(|c| {
                c.blocks.clear(offset, len)?;
                if c.durability == Durability::Synced {
                    c.blocks.sync()?;
                }
                Ok(())
            })?;
        }
        self.bitfield.set_range(start, end - start, false);
        if start < self.header.hints.contiguous_length {
            self.header.hints.contiguous_length = start;
        }
        debug!(start, end, "cleared");
        self.maybe_flush()
    }

    /// Sets user data `key` to `value` (an empty value deletes the key, as in hypercore).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`], [`Error::Poisoned`].
    pub fn set_user_data(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.put_user_data(key, Some(value))
    }

    /// Deletes user data `key`.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`], [`Error::Poisoned`].
    pub fn delete_user_data(&mut self, key: &str) -> Result<()> {
        self.put_user_data(key, None)
    }

    fn put_user_data(&mut self, key: &str, value: Option<&[u8]>) -> Result<()> {
        self.check_poisoned()?;
        let value = value.filter(|v| !v.is_empty());
        match (self.header.user_data(key), value) {
            (Some(old), Some(new)) if old == new => return Ok(()),
            (None, None) => return Ok(()),
            _ => {}
        }
        let entry = Entry {
            user_data: Some(UserDataEntry {
                key: key.to_owned(),
                value: value.map(<[u8]>::to_vec),
            }),
            ..Entry::default()
        };
        self.write_data_then_log(None, entry)?;
        self.header.set_user_data(key, value);
        self.maybe_flush()
    }

    /// Writes the bitfield pages, tree nodes and header now and folds the oplog entries into
    /// the header (what hypercore does every few mutations).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] (which poisons the core), [`Error::Poisoned`].
    pub fn flush(&mut self) -> Result<()> {
        self.check_poisoned()?;
        // A lazily created core first writes what its creation deferred, as it was.
        self.guarded(|_| Ok(()))?;
        self.manifest_flushed = true;
        self.auto_flush = FLUSH_RESET;
        self.flush_now()
    }

    /// Makes every acknowledged mutation durable: syncs the data, bitfield, tree, header and
    /// oplog files.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] (which poisons the core: the durable state is then unknown),
    /// [`Error::Poisoned`].
    pub fn sync(&mut self) -> Result<()> {
        self.check_poisoned()?;
        self.guarded(|c| {
            c.blocks.sync()?;
            c.bitfield.sync()?;
            c.tree.sync()?;
            c.big_header.sync()?;
            c.oplog.sync()
        })
    }

    /// Flushes and syncs (unless poisoned), then releases the storages. Unlike JavaScript
    /// hypercore, which leaves its entries in the oplog, a cleanly closed core opens without
    /// replay.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] from the flush, the sync or the close.
    pub fn close(mut self) -> Result<()> {
        let result = if self.poisoned {
            Ok(())
        } else if let Err(e) = self.guarded(|_| Ok(())) {
            // A lazily created core could not write its files.
            Err(e)
        } else if self.oplog.entries_size() > 0 || self.tree.is_dirty() || self.bitfield.is_dirty()
        {
            self.flush().and_then(|()| self.sync())
        } else {
            self.sync()
        };
        let closed = [
            self.oplog.close(),
            self.tree.close(),
            self.bitfield.close(),
            self.blocks.close(),
            self.big_header.close().map_err(Error::from),
        ];
        result?;
        closed.into_iter().collect::<Result<Vec<()>>>().map(drop)
    }

    /// Writes block bytes at `data.0` (if any), then appends `entry` to the oplog: the order that
    /// makes a mutation acknowledged only once its data is in place. With [`Durability::Synced`]
    /// each write is synced before the next step.
    pub(crate) fn write_data_then_log(
        &mut self,
        data: Option<(u64, &[u8])>,
        entry: Entry,
    ) -> Result<()> {
        self.guarded(|c| {
            let synced = c.durability == Durability::Synced;
            if let Some((offset, bytes)) = data {
                c.blocks.write(offset, bytes)?;
                if synced {
                    c.blocks.sync()?;
                }
            }
            c.oplog.append(&[entry])?;
            if synced {
                c.oplog.sync()?;
            }
            Ok(())
        })
    }

    /// hypercore `_shouldFlush`, then the flush.
    pub(crate) fn maybe_flush(&mut self) -> Result<()> {
        self.auto_flush = self.auto_flush.saturating_sub(1);
        if self.auto_flush == 0 || self.oplog.entries_size() >= MAX_OPLOG_ENTRIES_SIZE {
            self.auto_flush = FLUSH_RESET;
            return self.flush_now();
        }
        if !self.manifest_flushed && self.header.manifest.is_some() {
            self.manifest_flushed = true;
            return self.flush_now();
        }
        Ok(())
    }

    /// Flush order: bitfield pages, tree nodes, the header (big header first if needed), then
    /// the oplog slot, then the entries are dropped. With [`Durability::Synced`] sync barriers
    /// separate the steps (data, bitfield and tree synced before the header; the big header
    /// before the slot; the slot before the entries go); with [`Durability::Buffered`] the
    /// writes keep that order and nothing is synced.
    pub(crate) fn flush_now(&mut self) -> Result<()> {
        self.guarded(|c| {
            let synced = c.durability == Durability::Synced;
            c.bitfield.flush()?;
            c.tree.flush()?;
            if synced {
                c.blocks.sync()?;
                c.bitfield.sync()?;
                c.tree.sync()?;
            }
            let payload = c.header.encode();
            let slot = if c.external.is_some() || payload.len() > MAX_HEADER_PAYLOAD {
                let (cur_start, cur_len) = c.external.unwrap_or((0, 0));
                let start = if payload.len() as u64 > cur_start {
                    (cur_start + cur_len).div_ceil(BIG_HEADER_ALIGN) * BIG_HEADER_ALIGN
                } else {
                    0
                };
                c.big_header.write(start, &payload)?;
                if synced {
                    c.big_header.sync()?;
                }
                c.external = Some((start, payload.len() as u64));
                encode_external(start, payload.len() as u64)
            } else {
                payload
            };
            c.oplog.flush(&slot, synced)
        })?;
        debug!(length = self.length(), fork = self.fork(), "flushed");
        Ok(())
    }

    /// Runs a storage-touching step; any error poisons the core.
    /// A lazily created core writes its files first ([`Core::write_pending`]).
    pub(crate) fn guarded<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let result = match self.write_pending() {
            Ok(()) => f(self),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            warn!(error = %e, "storage failure: the core is poisoned until reopened");
            self.poisoned = true;
        }
        result
    }

    /// The manifest's prologue, if any.
    pub(crate) fn prologue(&self) -> Option<corestore_keys::Prologue> {
        self.header.manifest.as_ref().and_then(|m| m.prologue)
    }

    /// Makes sure we hold a key pair and a verifier that can sign with it; a compat core
    /// without a stored manifest gets the default one (hypercore `_setManifest`).
    fn ensure_signer(&mut self) -> Result<()> {
        let kp = self.key_pair.as_ref().ok_or(Error::NotWritable)?;
        if self.verifier.is_none() {
            if kp.public_key().0 != self.header.key.0 {
                return Err(Error::NotWritable);
            }
            let manifest = Manifest::default_signer(PublicKey(self.header.key.0));
            self.verifier = Some(Verifier::new(self.header.key, manifest.clone())?);
            self.header.manifest = Some(manifest);
            self.compat = true;
            self.manifest_flushed = false;
        }
        Ok(())
    }

    /// Signs the head of `state` with our key pair.
    fn sign(&self, state: &TreeState) -> Result<Vec<u8>> {
        let (Some(verifier), Some(kp)) = (&self.verifier, &self.key_pair) else {
            return Err(Error::NotWritable);
        };
        verifier.sign(&state.head(), kp).map_err(|e| match e {
            corestore_keys::Error::NotASigner => Error::NotWritable,
            other => Error::Keys(other),
        })
    }
}

/// The block holding byte `bytes`, walking the tree's roots and left children.
pub(crate) fn seek(tree: &MerkleTree, mut bytes: u64) -> Result<(u64, u64)> {
    let state = &tree.state;
    if bytes > state.byte_length {
        return Err(Error::InvalidArgument("seek beyond the byte length"));
    }
    if bytes == 0 {
        return Ok((0, 0));
    }
    for root in &state.roots {
        let root_index = NodeIndex(root.index);
        if bytes == root.size {
            return Ok((root_index.end_block(), 0));
        }
        if bytes > root.size {
            bytes -= root.size;
            continue;
        }
        let mut c = Cursor::new(root_index);
        while !c.is_leaf() {
            let left = c.left_child();
            let Some(l) = tree.node(left)? else {
                return Err(Error::BlockNotAvailable {
                    index: left.first_block(),
                });
            };
            if l.size == bytes {
                return Ok((left.end_block(), 0));
            }
            if l.size > bytes {
                continue;
            }
            bytes -= l.size;
            c.sibling();
        }
        return Ok((c.index().get() / 2, bytes));
    }
    Ok((state.length, 0))
}
