//! [`Core`]: one hypercore on five storages, with its options and read operations.
//!
//! The mutating operations live in `write` (append, truncate, clear, user data, flush,
//! sync), proof handling in `replicate`, and opening and oplog replay in `open`.

mod open;
mod replicate;
mod write;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use corestore_keys::{DiscoveryKey, Hash, Key, KeyPair, Manifest, Node, TreeHead, Verifier};
use rac_storage::{MemoryStorage, OpenOptions, Provider, Storage};
use tracing::trace;

use crate::bitfield::Bitfield;
use crate::blocks::Blocks;
use crate::error::{Error, Result};
use crate::header::Header;
use crate::oplog::Oplog;
use crate::tree::flat::NodeIndex;
use crate::tree::{MerkleTree, NodeSource, byte_offset};

pub use replicate::{Applied, BlockValue, VerifiedBatch};

/// When an acknowledged mutation becomes durable (see the crate docs, "Durability").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// As JavaScript hypercore: a mutation is acknowledged once its data and its oplog entry
    /// are written to storage (for files: the OS page cache), and no mutation or flush ever
    /// syncs; they become durable at the next [`Core::sync`] or [`Core::close`]. A process
    /// crash or a failed write at any point loses nothing acknowledged; a power loss is
    /// survived only for the state as of the last completed sync (see the crate docs,
    /// "Durability").
    #[default]
    Buffered,
    /// Every mutation syncs its data and its oplog entry before returning, and flushes are
    /// ordered with sync barriers: acknowledged means durable, also against power loss.
    Synced,
}

/// When [`Core::get`] (and every other read of a block) hashes the block's bytes to check them
/// against its Merkle leaf.
///
/// The leaf comes from the tree file (or from the oplog entries replayed at open). Open checks
/// the roots against the signed tree hash, but leaves and inner nodes read later are not hashed
/// up to the roots again: the check catches damaged data bytes (and damaged leaves, as a
/// mismatch), not a deliberate rewrite of both the tree and the data file. The data file is
/// what this option is about.
///
/// Trust model of [`ReadCheck::Once`]: a block's bytes are trusted for the rest of this open
/// once this open has seen them match the leaf, which happens when it
///
/// * appended the block (it hashed the very bytes it wrote),
/// * stored the block from a verified proof ([`Core::apply`]: hashed on arrival), or
/// * read the block and the bytes matched.
///
/// So bad bytes on disk are caught (as [`Error::Corrupt`]) on the first read of each block in
/// each open; a change to the data file made *behind this open's back* after that (another
/// process writing the file, a disk that flips bits under a live process) is not, until the
/// next open. Blocks dropped by a truncation, reorg or [`Core::clear`] lose their mark and are
/// checked again once stored anew. The marks live in memory only: one bit per checked block
/// (allocated in pages of 4096 blocks), none for a core that is never read.
///
/// [`ReadCheck::Always`] hashes on every read, as this crate did before the marks existed, for
/// callers that want a change behind their back caught too. (JavaScript hypercore checks
/// nothing on read.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadCheck {
    /// Hash a block on its first read in this open unless this open already saw its bytes
    /// match (see the type docs).
    #[default]
    Once,
    /// Hash every block on every read.
    Always,
}

/// How to open or create a core. `CoreOptions::default()` creates a new writable core with a
/// fresh key pair if the storage is empty.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CoreOptions {
    /// Create a core when the storage holds none (default `true`); otherwise open fails with
    /// [`Error::NotFound`].
    pub create: bool,
    /// The expected core key (reader cores are opened by key alone).
    pub key: Option<Key>,
    /// The key pair to sign with (and to store in a new core's header).
    pub key_pair: Option<KeyPair>,
    /// The manifest (for non-compat cores).
    pub manifest: Option<Manifest>,
    /// Force compat mode on (`Some(true)`) or off; by default a core is compat unless a
    /// manifest is given.
    pub compat: Option<bool>,
    /// Durability of acknowledged mutations.
    pub durability: Durability,
    /// When reads hash blocks to check them (see [`ReadCheck`]).
    pub read_check: ReadCheck,
    /// Create a new core in memory only (default `false`): its header, key pair and
    /// [`user_data`](Self::user_data) exist in memory, and its files are written, with the
    /// same bytes an eager creation writes, at its first durable operation (see
    /// [`Core::is_materialized`]). An existing core opens as usual.
    pub lazy: bool,
    /// User data a *new* core starts with, in order: written as an eager creation followed by
    /// one [`Core::set_user_data`] per entry would write them (corestore records
    /// `corestore/name` and `corestore/namespace` this way). Ignored when the core exists.
    pub user_data: Vec<(String, Vec<u8>)>,
}

impl Default for CoreOptions {
    fn default() -> Self {
        Self {
            create: true,
            key: None,
            key_pair: None,
            manifest: None,
            compat: None,
            durability: Durability::default(),
            read_check: ReadCheck::default(),
            lazy: false,
            user_data: Vec::new(),
        }
    }
}

impl CoreOptions {
    /// Default options.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`CoreOptions::key`].
    #[must_use]
    pub fn key(mut self, key: Key) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets [`CoreOptions::key_pair`].
    #[must_use]
    pub fn key_pair(mut self, key_pair: KeyPair) -> Self {
        self.key_pair = Some(key_pair);
        self
    }

    /// Sets [`CoreOptions::manifest`].
    #[must_use]
    pub fn manifest(mut self, manifest: Manifest) -> Self {
        self.manifest = Some(manifest);
        self
    }

    /// Sets [`CoreOptions::compat`].
    #[must_use]
    pub const fn compat(mut self, compat: bool) -> Self {
        self.compat = Some(compat);
        self
    }

    /// Sets [`CoreOptions::create`].
    #[must_use]
    pub const fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Sets [`CoreOptions::durability`].
    #[must_use]
    pub const fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Sets [`CoreOptions::read_check`].
    #[must_use]
    pub const fn read_check(mut self, read_check: ReadCheck) -> Self {
        self.read_check = read_check;
        self
    }

    /// Sets [`CoreOptions::lazy`].
    #[must_use]
    pub const fn lazy(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Adds an entry to [`CoreOptions::user_data`].
    #[must_use]
    pub fn user_data(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.user_data.push((key.into(), value.into()));
        self
    }
}

/// The five storages of one core.
#[derive(Debug, Clone)]
pub struct CoreStorage {
    /// `oplog`: header slots and entries.
    pub oplog: Arc<dyn Storage>,
    /// `tree`: Merkle nodes.
    pub tree: Arc<dyn Storage>,
    /// `bitfield`: which blocks are stored.
    pub bitfield: Arc<dyn Storage>,
    /// `data`: the blocks.
    pub data: Arc<dyn Storage>,
    /// `header`: big headers.
    pub header: Arc<dyn Storage>,
}

impl CoreStorage {
    /// Opens `<prefix>oplog`, `<prefix>tree`, `<prefix>bitfield`, `<prefix>data` and
    /// `<prefix>header` from `provider` (corestore uses `cores/aa/bb/<discovery key>/`).
    ///
    /// # Errors
    ///
    /// Whatever the provider returns (an invalid name, I/O).
    pub fn open(provider: &(impl Provider + ?Sized), prefix: &str) -> Result<Self> {
        let oplog = provider.open(&format!("{prefix}oplog"), &OpenOptions::new())?;
        Self::open_rest(provider, prefix, oplog, false)
    }

    /// The other four storages next to `oplog`; `absent` passes the
    /// [`OpenOptions::absent`] hint (the oplog was found missing, so the core does not exist).
    fn open_rest(
        provider: &(impl Provider + ?Sized),
        prefix: &str,
        oplog: Arc<dyn Storage>,
        absent: bool,
    ) -> Result<Self> {
        let options = OpenOptions::new().absent(absent);
        let open = |name: &str| provider.open(&format!("{prefix}{name}"), &options);
        Ok(Self {
            oplog,
            tree: open("tree")?,
            bitfield: open("bitfield")?,
            data: open("data")?,
            header: open("header")?,
        })
    }

    /// Five fresh in-memory storages.
    #[must_use]
    pub fn memory() -> Self {
        let m = || -> Arc<dyn Storage> { Arc::new(MemoryStorage::new()) };
        Self {
            oplog: m(),
            tree: m(),
            bitfield: m(),
            data: m(),
            header: m(),
        }
    }
}

/// What an append produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The core's length after the append.
    pub length: u64,
    /// The core's byte length after the append.
    pub byte_length: u64,
}

/// One hypercore: a signed, Merkle-verified, append-only log of blocks on a set of
/// storages. See the [crate docs](crate) for the format, durability and an example.
pub struct Core {
    pub(crate) header: Header,
    pub(crate) oplog: Oplog,
    pub(crate) tree: MerkleTree,
    pub(crate) bitfield: Bitfield,
    pub(crate) blocks: Blocks,
    pub(crate) big_header: Arc<dyn Storage>,
    /// Location of the current big header, once the header outgrew its slot.
    pub(crate) external: Option<(u64, u64)>,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) key_pair: Option<KeyPair>,
    pub(crate) compat: bool,
    /// Mutations left before the next automatic flush.
    pub(crate) auto_flush: u32,
    pub(crate) manifest_flushed: bool,
    pub(crate) durability: Durability,
    pub(crate) read_check: ReadCheck,
    pub(crate) poisoned: bool,
    /// A lazily created core whose files are not written yet (see [`Core::is_materialized`]).
    pub(crate) pending: bool,
    /// Blocks kept by each truncation or reorg since open (a snapshot taken before event `i`
    /// keeps `min(truncations[i..])` blocks).
    pub(crate) truncations: Vec<u64>,
    /// Where the last block read ended, so that a read of the next block skips the walk down
    /// the tree for its byte offset (sequential reads, and serving a sequential download).
    pub(crate) last_read: Mutex<Option<LastRead>>,
}

/// The end of the last block read: block `index` ended at byte `end` of the data file, as long
/// as no truncation or reorg happened since (`epoch` is the length of [`Core::truncations`]
/// then; only those move the bytes of blocks below the length).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LastRead {
    epoch: usize,
    index: u64,
    end: u64,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("key", &self.header.key)
            .field("fork", &self.tree.state.fork)
            .field("length", &self.tree.state.length)
            .field("byte_length", &self.tree.state.byte_length)
            .field("writable", &self.is_writable())
            .field("poisoned", &self.poisoned)
            .field("materialized", &!self.pending)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Opens (or creates) the core stored under `prefix` in `provider`; see
    /// [`CoreStorage::open`] for the file names and [`Core::open_storage`] for the rest.
    ///
    /// # Errors
    ///
    /// As [`Core::open_storage`].
    ///
    /// A missing core costs one probe: the length of its `oplog`. When that is 0 the other
    /// files are opened with the [`OpenOptions::absent`] hint and not probed.
    pub fn open(
        provider: &(impl Provider + ?Sized),
        prefix: &str,
        options: CoreOptions,
    ) -> Result<Self> {
        Self::open_probed(provider, prefix, &options, false)?.ok_or(Error::NotFound)
    }

    /// The part of [`Core::open`] that needs no reading: creates the core under `prefix` (as
    /// [`Core::open`] would) if its storage holds none, and returns `Ok(None)`, having
    /// probed only the length of its `oplog`, if a core is stored there (open it with
    /// [`Core::open`]). With [`CoreOptions::lazy`] a missing core costs that one probe and no
    /// write, so a caller may run this where blocking I/O is unwelcome and leave the opening
    /// of stored cores to a thread of its own.
    ///
    /// # Errors
    ///
    /// As [`Core::open`]: [`Error::NotFound`] when the core is missing and `options.create`
    /// is false.
    pub fn create_if_missing(
        provider: &(impl Provider + ?Sized),
        prefix: &str,
        options: &CoreOptions,
    ) -> Result<Option<Self>> {
        Self::open_probed(provider, prefix, options, true)
    }

    /// Probes the oplog, then opens or creates the core; `None` when a core is stored and
    /// `only_missing` is set.
    fn open_probed(
        provider: &(impl Provider + ?Sized),
        prefix: &str,
        options: &CoreOptions,
        only_missing: bool,
    ) -> Result<Option<Self>> {
        let oplog = provider.open(&format!("{prefix}oplog"), &OpenOptions::new())?;
        let oplog_len = oplog.len()?;
        if oplog_len == 0 && !options.create {
            return Err(Error::NotFound);
        }
        if oplog_len != 0 && only_missing {
            return Ok(None);
        }
        let storage = CoreStorage::open_rest(provider, prefix, oplog, oplog_len == 0)?;
        Self::open_with_len(storage, options, Some(oplog_len)).map(Some)
    }

    /// The core key.
    #[must_use]
    pub const fn key(&self) -> &Key {
        &self.header.key
    }

    /// The discovery key (channel id and storage directory name).
    #[must_use]
    pub fn discovery_key(&self) -> DiscoveryKey {
        self.header.key.discovery_key()
    }

    /// The manifest, once known (readers learn it with their first verified upgrade).
    #[must_use]
    pub const fn manifest(&self) -> Option<&Manifest> {
        self.header.manifest.as_ref()
    }

    /// Whether the key is the signer's public key (corestore 6 default cores).
    #[must_use]
    pub const fn is_compat(&self) -> bool {
        self.compat
    }

    /// Whether this core can sign appends and truncations.
    #[must_use]
    pub const fn is_writable(&self) -> bool {
        self.key_pair.is_some()
    }

    /// The key pair, if the core is writable.
    #[must_use]
    pub const fn key_pair(&self) -> Option<&KeyPair> {
        self.key_pair.as_ref()
    }

    /// Number of blocks.
    #[must_use]
    pub const fn length(&self) -> u64 {
        self.tree.state.length
    }

    /// Total bytes of all blocks.
    #[must_use]
    pub const fn byte_length(&self) -> u64 {
        self.tree.state.byte_length
    }

    /// Number of leading blocks stored locally.
    #[must_use]
    pub const fn contiguous_length(&self) -> u64 {
        let c = self.header.hints.contiguous_length;
        if c < self.tree.state.length {
            c
        } else {
            self.tree.state.length
        }
    }

    /// The fork id (bumped by every truncation and reorg).
    #[must_use]
    pub const fn fork(&self) -> u64 {
        self.tree.state.fork
    }

    /// The tree hash (root hash) of the current head.
    #[must_use]
    pub fn tree_hash(&self) -> Hash {
        self.tree.state.hash()
    }

    /// The current signed head: tree hash, length, fork.
    #[must_use]
    pub fn head(&self) -> TreeHead {
        self.tree.state.head()
    }

    /// The signature of the current head (absent at length 0).
    #[must_use]
    pub fn signature(&self) -> Option<&[u8]> {
        self.tree
            .state
            .signature
            .as_deref()
            .filter(|s| !s.is_empty())
    }

    /// The user-data value of `key` (corestore stores `corestore/name` and
    /// `corestore/namespace`).
    #[must_use]
    pub fn user_data(&self, key: &str) -> Option<&[u8]> {
        self.header.user_data(key)
    }

    /// Every user-data entry, in insertion order.
    pub fn user_data_entries(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.header
            .user_data
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// Whether block `index` is stored locally.
    #[must_use]
    pub fn has(&self, index: u64) -> bool {
        index < self.tree.state.length && self.bitfield.get(index)
    }

    /// Reads block `index`. Bytes this open has not yet seen match the block's leaf hash are
    /// checked against it (every read is, with [`ReadCheck::Always`]), so a damaged data file
    /// gives [`Error::Corrupt`], never wrong data; see [`ReadCheck`] for the trust model.
    ///
    /// # Errors
    ///
    /// [`Error::OutOfBounds`] at or beyond the length, [`Error::BlockNotAvailable`] if the block
    /// is not stored locally, [`Error::Corrupt`], [`Error::Storage`], [`Error::Poisoned`].
    pub fn get(&self, index: u64) -> Result<Vec<u8>> {
        self.check_poisoned()?;
        if index >= self.tree.state.length {
            return Err(Error::OutOfBounds {
                index,
                length: self.tree.state.length,
            });
        }
        if !self.bitfield.get(index) {
            return Err(Error::BlockNotAvailable { index });
        }
        let value = self.read_block(index)?;
        trace!(index, len = value.len(), "get");
        Ok(value)
    }

    /// Reads a block known to be in the tree, checking it against its leaf unless this open
    /// already saw its bytes match (see [`ReadCheck`]).
    pub(crate) fn read_block(&self, index: u64) -> Result<Vec<u8>> {
        let leaf = self.tree.require(NodeIndex::leaf(index))?;
        let mut value = Vec::new();
        self.read_leaf_append(index, &leaf, &mut value)?;
        Ok(value)
    }

    /// [`Core::read_block`] of a block whose leaf the caller looked up already, onto the end of
    /// `out` (left as it was on an error).
    pub(crate) fn read_leaf_append(
        &self,
        index: u64,
        leaf: &Node,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let leaf_index = NodeIndex::leaf(index);
        let check = self.read_check == ReadCheck::Always || !self.bitfield.is_checked(index);
        let epoch = self.truncations.len();
        // The end of the previous block places this one without walking the tree (a peer
        // downloading in order asks for the blocks in order). The end is recorded only for a
        // block whose bytes matched its leaf, so the leaf's size is its true size, and the
        // offset it started at came from the tree or, the same way, from the block before.
        let last = *lock(&self.last_read);
        let offset = match last {
            Some(l) if l.epoch == epoch && l.index.checked_add(1) == Some(index) => l.end,
            _ => byte_offset(&self.tree, &self.tree.state, leaf_index)?,
        };
        let start = out.len();
        self.blocks.read_append(offset, leaf.size, out)?;
        if check {
            let value = out.get(start..).unwrap_or_default();
            if corestore_keys::hash::leaf(value) != leaf.hash {
                out.truncate(start);
                return Err(Error::corrupt(
                    "data",
                    offset,
                    "block does not match its hash",
                ));
            }
            self.bitfield.mark_checked(index, 1);
        }
        // Hashed now or earlier in this open: the hash covers the length, so offset and size
        // are known good and may place the next block.
        *lock(&self.last_read) = Some(LastRead {
            epoch,
            index,
            end: offset.saturating_add(leaf.size),
        });
        Ok(())
    }

    /// Finds the block holding byte `bytes`: `(block index, offset within the block)`. A
    /// byte offset equal to a block boundary maps to the start of the next block; `bytes ==
    /// byte_length` gives `(length, 0)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] beyond the byte length, [`Error::BlockNotAvailable`] if a
    /// tree node needed on the way is not stored (sparse cores), [`Error::Storage`].
    pub fn seek(&self, bytes: u64) -> Result<(u64, u64)> {
        self.check_poisoned()?;
        write::seek(&self.tree, bytes)
    }

    /// How many tree nodes a request for block `index` should say we lack (the `nodes` field
    /// of [`BlockRequest`](crate::BlockRequest)): consecutive missing nodes from the leaf up,
    /// 0 if the block is beyond our length.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub fn missing_nodes(&self, index: u64) -> Result<u64> {
        self.tree.missing_nodes(NodeIndex::leaf(index))
    }

    /// Whether we can prove an upgrade from `length` (hypercore's `upgradeable`): every full
    /// root of a tree of `length` blocks is stored. A core that appended or downloaded the
    /// blocks below `length`, or was once `length` long, holds them; a sparse core that
    /// jumped past `length` may not. `false` beyond our length.
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub fn upgradeable(&self, length: u64) -> Result<bool> {
        if length > self.tree.state.length {
            return Ok(false);
        }
        for root in crate::tree::flat::full_roots(length) {
            if self.tree.node(root)?.is_none() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The same count for any tree node (the `nodes` field of a
    /// [`HashRequest`](crate::HashRequest)).
    ///
    /// # Errors
    ///
    /// [`Error::Storage`].
    pub fn missing_nodes_of(&self, node: NodeIndex) -> Result<u64> {
        self.tree.missing_nodes(node)
    }

    /// Fails if poisoned.
    pub(crate) const fn check_poisoned(&self) -> Result<()> {
        if self.poisoned {
            Err(Error::Poisoned)
        } else {
            Ok(())
        }
    }
}

/// Locks `m`; the values behind the core's mutexes are plain data that a panic cannot leave
/// half-updated.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
