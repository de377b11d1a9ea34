//! Opening a core: pick the header, create one if the storage is empty, load the tree and
//! bitfield, replay the oplog entries (spec §5.3, §5.5), and repair what a crash can leave
//! behind.

use corestore_keys::manifest::is_compat;
use corestore_keys::{KeyPair, Manifest, PublicKey, Verifier};
use rac_storage::Storage;
use tracing::{debug, warn};

use super::{Core, CoreOptions, CoreStorage, Durability};
use crate::bitfield::Bitfield;
use crate::blocks::Blocks;
use crate::error::{Error, Result};
use crate::header::{Header, Hints, ReorgHint, SlotHeader, StoredKeyPair, TreeHeader};
use crate::oplog::entry::{BitfieldUpdate, Entry};
use crate::oplog::format::FLUSH_EVERY;
use crate::oplog::{Opened, Oplog};
use crate::tree::store::TreeStore;
use crate::tree::{MerkleTree, TreeState};

impl Core {
    /// Opens the core in `storage`, creating it if the storage is empty (unless
    /// `options.create` is false).
    ///
    /// A new core gets a fresh key pair unless `options.key` (a reader) or
    /// `options.key_pair` is given; it is compat (key = public key) unless a manifest is given.
    /// An existing core must match `options.key` and `options.manifest` when given.
    ///
    /// Open replays the oplog entries written since the last flush, drops a torn oplog tail,
    /// and unmarks replayed blocks whose data did not survive a crash (`warn!`).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`], [`Error::KeyMismatch`], [`Error::InvalidArgument`] (a compat key
    /// that is not the key pair's), [`Error::Corrupt`] / [`Error::Incompatible`] for bad
    /// files, [`Error::Storage`].
    pub fn open_storage(storage: CoreStorage, options: CoreOptions) -> Result<Self> {
        Self::open_with_len(storage, &options, None)
    }

    /// [`Core::open_storage`] with the length of the oplog, when the caller already read it.
    pub(crate) fn open_with_len(
        storage: CoreStorage,
        options: &CoreOptions,
        oplog_len: Option<u64>,
    ) -> Result<Self> {
        let Opened {
            mut oplog,
            header,
            entries,
        } = Oplog::open_with_len(storage.oplog.clone(), false, oplog_len)?;
        let mut external = None;
        let mut created = false;
        let mut header = match header {
            None => {
                if !options.create {
                    return Err(Error::NotFound);
                }
                let mut header = new_header(options)?;
                created = true;
                if options.lazy {
                    // Kept in memory until `materialize`, which writes what the eager branch
                    // below and the `set_user_data` calls at the end of this function write.
                    for (key, value) in &options.user_data {
                        header.set_user_data(key, Some(value));
                    }
                    debug!(key = %header.key, "created core in memory");
                } else {
                    oplog.flush(&header.encode(), options.durability == Durability::Synced)?;
                    debug!(key = %header.key, "created core");
                }
                header
            }
            Some(SlotHeader::Inline(h)) => *h,
            Some(SlotHeader::External { start, length }) => {
                external = Some((start, length));
                load_big_header(storage.header.as_ref(), start, length)?
            }
        };

        if let Some(m) = &options.manifest {
            if options.key.is_none() && m.hash().0 != header.key.0 && !is_compat(&header.key, m) {
                return Err(Error::KeyMismatch);
            }
            if header.manifest.is_none() {
                header.manifest = Some(m.clone());
            }
        }
        if options.key.is_some_and(|k| k != header.key) {
            return Err(Error::KeyMismatch);
        }
        let mut compat = options.compat == Some(true)
            || (options.compat != Some(false) && options.manifest.is_none());
        if let Some(m) = &header.manifest {
            compat = is_compat(&header.key, m);
        }
        let verifier =
            match &header.manifest {
                Some(m) => Some(Verifier::new(header.key, m.clone()).map_err(|_| {
                    Error::corrupt("oplog", 0, "manifest does not match the core key")
                })?),
                None => None,
            };
        let key_pair = match (&options.key_pair, &header.key_pair) {
            (Some(kp), _) => Some(kp.clone()),
            (
                None,
                Some(StoredKeyPair {
                    secret_key: Some(sk),
                    ..
                }),
            ) => Some(
                KeyPair::from_secret_key(sk)
                    .map_err(|_| Error::corrupt("oplog", 0, "invalid stored secret key"))?,
            ),
            (None, _) => None,
        };

        let store = TreeStore::open(storage.tree.clone())?;
        let (tree, _rooted) = MerkleTree::open(store, &header.tree)?;
        let max_length = entries
            .iter()
            .filter_map(|(_, e)| e.tree_upgrade.as_ref().map(|u| u.length))
            .fold(header.tree.length, u64::max);
        let bitfield = Bitfield::open(storage.bitfield.clone(), max_length)?;
        if header.hints.contiguous_length == 0 {
            header.hints.contiguous_length = bitfield.first_unset(0);
        }
        let manifest_flushed = header.manifest.is_some();

        let mut core = Self {
            header,
            oplog,
            tree,
            bitfield,
            blocks: Blocks::new(storage.data.clone()),
            big_header: storage.header,
            external,
            verifier,
            key_pair,
            compat,
            auto_flush: 1,
            manifest_flushed,
            durability: options.durability,
            read_check: options.read_check,
            poisoned: false,
            pending: created && options.lazy,
            truncations: Vec::new(),
            last_read: std::sync::Mutex::new(None),
        };
        let replayed = entries.len();
        let mut added = Vec::new();
        for (offset, entry) in &entries {
            core.replay(*offset, entry, &mut added)?;
        }
        core.tree.check_rooted()?;
        core.check_signature()?;
        core.repair_replayed_blocks(&added)?;
        debug!(
            key = %core.header.key,
            length = core.length(),
            fork = core.fork(),
            replayed,
            writable = core.is_writable(),
            "opened core"
        );
        if created && !options.lazy {
            for (key, value) in &options.user_data {
                core.set_user_data(key, value)?;
            }
        }
        Ok(core)
    }

    /// Whether the core's files exist: always, except for a core created with
    /// [`CoreOptions::lazy`] that has had no durable operation yet.
    ///
    /// A lazily created core writes its files, with exactly the bytes an eager creation (and
    /// its [`CoreOptions::user_data`]) would have written, right before its first write to
    /// storage: an append, data applied from a peer, a truncation, a clear, a user-data
    /// change, [`Core::flush`], [`Core::sync`], [`Core::close`] or [`Core::materialize`].
    /// Reads, proofs and verification do not. A process that ends before any of these leaves
    /// no trace of the core, and loses nothing that was acknowledged: nothing was.
    #[must_use]
    pub const fn is_materialized(&self) -> bool {
        !self.pending
    }

    /// Writes the files of a lazily created core now (see [`Core::is_materialized`]); a no-op
    /// for a core whose files exist.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`] (which poisons the core), [`Error::Poisoned`].
    pub fn materialize(&mut self) -> Result<()> {
        self.check_poisoned()?;
        self.guarded(|_| Ok(()))
    }

    /// The writes a lazy creation deferred: the new header, then one user-data entry per
    /// creation entry, through the same code (and so the same flushes) as an eager creation.
    /// Called by [`Core::guarded`] before every storage-touching step.
    pub(crate) fn write_pending(&mut self) -> Result<()> {
        if !self.pending {
            return Ok(());
        }
        self.pending = false;
        // While pending the header differs from the created one only by the creation user
        // data: every other header change follows a storage write, which materializes first.
        let user_data = std::mem::take(&mut self.header.user_data);
        self.oplog
            .flush(&self.header.encode(), self.durability == Durability::Synced)?;
        for (key, value) in user_data {
            self.set_user_data(&key, &value)?;
        }
        debug!(key = %self.header.key, "materialized core");
        Ok(())
    }

    /// Applies one oplog entry to the in-memory state (hypercore `Core.resume`). Blocks the
    /// entry marks as stored are collected into `added`.
    fn replay(&mut self, offset: u64, e: &Entry, added: &mut Vec<(u64, u64)>) -> Result<()> {
        if let Some(u) = &e.user_data {
            self.header.set_user_data(&u.key, u.value.as_deref());
        }
        // Truncate before adding the entry's nodes (a reorg's nodes lie past the cut); this is
        // the order of the live operation.
        if let Some(u) = e
            .tree_upgrade
            .as_ref()
            .filter(|u| u.ancestors < self.tree.state.length)
        {
            self.tree.truncate_nodes(u.ancestors);
        }
        if let Some(nodes) = &e.tree_nodes {
            self.tree.add_nodes(nodes);
        }
        if let Some(b) = e.bitfield {
            if !b.drop {
                let limit = e.tree_upgrade.as_ref().map_or(self.tree.state.length, |u| {
                    u.length.max(self.tree.state.length)
                });
                if b.start.checked_add(b.length).is_none_or(|end| end > limit) {
                    return Err(Error::corrupt(
                        "oplog",
                        offset,
                        "bitfield entry beyond the tree",
                    ));
                }
                added.push((b.start, b.length));
            }
            self.bitfield.set_range(b.start, b.length, !b.drop);
            update_contig(&mut self.header.hints, b, &self.bitfield);
        }
        if let Some(u) = &e.tree_upgrade {
            let signature = (!u.signature.is_empty()).then(|| u.signature.clone());
            let state = match self.tree.truncate_batch(u.length, u.fork) {
                Ok(batch) => TreeState {
                    signature,
                    ..batch.state
                },
                // The roots are gone when a crash interrupted the flush of a later
                // truncation (it cut the tree file first); that truncation, further down the
                // oplog, moves the tree back onto stored roots. `check_rooted` reports it if
                // nothing does.
                Err(_) => TreeState {
                    fork: u.fork,
                    length: u.length,
                    byte_length: 0,
                    roots: Vec::new(),
                    signature,
                },
            };
            add_reorg_hint(
                &mut self.header.hints,
                self.tree.state.length,
                self.tree.state.fork,
                u.fork,
                u.ancestors,
            );
            if u.ancestors < self.tree.state.length {
                self.truncations.push(u.ancestors);
            }
            self.tree.state = state;
            self.sync_header_tree();
        }
        Ok(())
    }

    /// Checks the stored signature of the head when the header came from the big-header
    /// file, which (unlike oplog slots) has no checksum of its own: a damaged key, manifest or
    /// tree head then shows up here instead of as a core that signs for another key.
    fn check_signature(&self) -> Result<()> {
        let (Some(_), Some(verifier), Some(signature)) =
            (self.external, &self.verifier, self.signature())
        else {
            return Ok(());
        };
        if verifier.verify(&self.head(), signature).is_err() {
            return Err(Error::corrupt(
                "header",
                0,
                "the stored signature does not verify",
            ));
        }
        Ok(())
    }

    /// Unmarks blocks that replayed entries claim but whose bytes did not make it to the data
    /// file (the oplog entry survived a crash, the data write did not), and records that.
    fn repair_replayed_blocks(&mut self, added: &[(u64, u64)]) -> Result<()> {
        let length = self.length();
        let mut bad = Vec::new();
        for &(start, len) in added {
            for index in start..start.saturating_add(len).min(length) {
                if self.bitfield.get(index)
                    && !bad.contains(&index)
                    && self.read_block(index).is_err()
                {
                    bad.push(index);
                }
            }
        }
        if bad.is_empty() {
            return Ok(());
        }
        warn!(
            blocks = bad.len(),
            first = bad[0],
            "data lost in a crash: unmarking blocks"
        );
        let entries: Vec<Entry> = bad
            .iter()
            .map(|&index| Entry {
                bitfield: Some(BitfieldUpdate {
                    drop: true,
                    start: index,
                    length: 1,
                }),
                ..Entry::default()
            })
            .collect();
        self.oplog.append(&entries)?;
        for e in &entries {
            if let Some(b) = e.bitfield {
                self.bitfield.set_range(b.start, b.length, false);
                update_contig(&mut self.header.hints, b, &self.bitfield);
            }
        }
        Ok(())
    }

    /// Copies the tree head into the header.
    pub(crate) fn sync_header_tree(&mut self) {
        let s = &self.tree.state;
        self.header.tree = TreeHeader {
            fork: s.fork,
            length: s.length,
            root_hash: Some(s.hash().as_bytes().to_vec()),
            signature: s.signature.clone().filter(|x| !x.is_empty()),
        };
    }
}

/// The header of a new core (hypercore `Core.resume` with an empty oplog).
fn new_header(options: &CoreOptions) -> Result<Header> {
    for (i, (key, value)) in options.user_data.iter().enumerate() {
        if value.is_empty() || options.user_data[..i].iter().any(|(k, _)| k == key) {
            return Err(Error::InvalidArgument(
                "creation user data needs distinct keys and non-empty values",
            ));
        }
    }
    let compat = options.compat == Some(true)
        || (options.compat != Some(false) && options.manifest.is_none());
    if compat
        && let (Some(key), Some(kp)) = (&options.key, &options.key_pair)
        && key.0 != kp.public_key().0
    {
        return Err(Error::InvalidArgument(
            "in compat mode the key must be the public key",
        ));
    }
    let key_pair = match (&options.key_pair, &options.key) {
        (Some(kp), _) => Some(kp.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(KeyPair::generate()?),
    };
    let default_manifest = options.manifest.is_none()
        && (options.compat == Some(true)
            || options.key.is_none()
            || key_pair
                .as_ref()
                .zip(options.key.as_ref())
                .is_some_and(|(kp, k)| kp.public_key().0 == k.0));
    let manifest = if default_manifest {
        let pk = match (&options.key, &key_pair) {
            (Some(k), _) => PublicKey(k.0),
            (None, Some(kp)) => kp.public_key(),
            (None, None) => {
                return Err(Error::InvalidArgument(
                    "a new core needs a key or a key pair",
                ));
            }
        };
        Some(Manifest::default_signer(pk))
    } else {
        options.manifest.clone()
    };
    let key = match (&options.key, &manifest) {
        (Some(k), _) => *k,
        (None, Some(m)) => corestore_keys::manifest::core_key(m, compat)?,
        (None, None) => {
            return Err(Error::InvalidArgument(
                "a new core needs a key or a manifest",
            ));
        }
    };
    Ok(Header {
        key,
        manifest,
        key_pair: key_pair.map(|kp| StoredKeyPair {
            public_key: kp.public_key().as_bytes().to_vec(),
            secret_key: Some(kp.secret_key().as_bytes().to_vec()),
        }),
        user_data: Vec::new(),
        tree: TreeHeader::default(),
        hints: Hints::default(),
    })
}

/// Reads the big header at `[start, start + length)` of the `header` file.
fn load_big_header(storage: &dyn Storage, start: u64, length: u64) -> Result<Header> {
    let len = storage.len()?;
    if start.checked_add(length).is_none_or(|end| end > len) {
        return Err(Error::corrupt(
            "header",
            start,
            "big header extends past the end of the file",
        ));
    }
    let bytes = storage.read_to_vec(start, length)?;
    match crate::header::decode(&bytes) {
        Ok(SlotHeader::Inline(h)) => Ok(*h),
        Ok(SlotHeader::External { .. }) => Err(Error::corrupt(
            "header",
            start,
            "big header points elsewhere",
        )),
        Err(_) => Err(Error::corrupt("header", start, "undecodable big header")),
    }
}

/// hypercore `updateContig`: keeps the contiguous length in step with a bitfield change.
///
/// Unlike hypercore, a drop anywhere below the contiguous length lowers it (hypercore only
/// lowers it when the drop reaches the contiguous end, so replaying a `clear` in the middle
/// leaves a contiguous length that is too long; its live `clear` gets it right).
pub(crate) fn update_contig(hints: &mut Hints, upd: BitfieldUpdate, bitfield: &Bitfield) {
    let end = upd.start.saturating_add(upd.length);
    let c = hints.contiguous_length;
    if upd.drop {
        if upd.length > 0 && upd.start < c {
            hints.contiguous_length = upd.start;
        }
    } else if c <= end && c >= upd.start {
        hints.contiguous_length = bitfield.first_unset(end);
    }
}

/// hypercore `addReorgHint`: remember at most four fork changes.
pub(crate) fn add_reorg_hint(
    hints: &mut Hints,
    old_length: u64,
    old_fork: u64,
    new_fork: u64,
    ancestors: u64,
) {
    if old_length == 0 || old_fork == new_fork {
        return;
    }
    while hints.reorgs.len() >= 4 {
        hints.reorgs.remove(0);
    }
    while hints.reorgs.last().is_some_and(|r| r.ancestors > ancestors) {
        hints.reorgs.pop();
    }
    hints.reorgs.push(ReorgHint {
        from: old_fork,
        to: new_fork,
        ancestors,
    });
}

/// Auto-flush counter after a flush.
pub(crate) const FLUSH_RESET: u32 = FLUSH_EVERY;
