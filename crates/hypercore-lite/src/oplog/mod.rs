//! The `oplog` file (spec §5.2–§5.3): two header slots selected by the XOR of their
//! generation bits, then CRC-framed entries of the current generation.
//!
//! * Open reads the whole file, picks the current header, and decodes entries until the first
//!   invalid frame or the first frame of another generation; trailing partial entries are
//!   dropped and the torn tail is cut off (unless read-only).
//! * [`Oplog::append`] writes entry frames at the end.
//! * [`Oplog::flush`] writes a new header into the *other* slot, then (after a sync, when
//!   asked to: `Durability::Synced`) truncates the entries: a crash before the slot write
//!   leaves the old slot and its entries current; a crash after it leaves stale entries of the
//!   old generation, which replay ignores.

pub(crate) mod entry;
pub(crate) mod format;

use std::sync::Arc;

use corestore_keys::compact::Encoder;
use rac_storage::Storage;
use tracing::{debug, warn};

use crate::error::{Error, Result};
use crate::header::{self, SlotHeader};
use entry::Entry;
use format::{
    ENTRIES_OFFSET, FRAME_PREFIX_SIZE, MAX_FRAME_PAYLOAD, MAX_HEADER_PAYLOAD, SLOT_1_OFFSET,
    decode_frame, encode_frame, seal_frame,
};

/// The oplog file and its slot state.
#[derive(Debug)]
pub(crate) struct Oplog {
    storage: Arc<dyn Storage>,
    /// Generation bits of slot 0 and slot 1.
    bits: [u8; 2],
    /// Bytes of entries after [`ENTRIES_OFFSET`].
    entries_size: u64,
}

/// What [`Oplog::open_with_len`] found.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The oplog, ready for appends.
    pub(crate) oplog: Oplog,
    /// The current header, if any slot is valid.
    pub(crate) header: Option<SlotHeader>,
    /// The entries of the current generation, in order, with their file offsets.
    pub(crate) entries: Vec<(u64, Entry)>,
}

impl Oplog {
    /// Opens the oplog (see the module docs). `read_only` keeps a torn tail on disk.
    #[cfg(test)]
    pub(crate) fn open(storage: Arc<dyn Storage>, read_only: bool) -> Result<Opened> {
        Self::open_with_len(storage, read_only, None)
    }

    /// Opens the oplog (see the module docs) of a file whose length the caller already read
    /// (`known_len`); `read_only` keeps a torn tail on disk. An empty file is not read at all.
    pub(crate) fn open_with_len(
        storage: Arc<dyn Storage>,
        read_only: bool,
        known_len: Option<u64>,
    ) -> Result<Opened> {
        let len = match known_len {
            Some(len) => len,
            None => storage.len()?,
        };
        let buf = if len == 0 {
            Vec::new()
        } else {
            storage.read_to_vec(0, len)?
        };
        let slot0 = decode_slot(&buf, 0);
        let slot1 = decode_slot(&buf, SLOT_1_OFFSET as usize);

        let (bits, header) = match (slot0, slot1) {
            (None, None) => {
                if len >= ENTRIES_OFFSET {
                    return Err(Error::corrupt("oplog", 0, "no valid header slot"));
                }
                let oplog = Self {
                    storage,
                    bits: [1, 0],
                    entries_size: 0,
                };
                return Ok(Opened {
                    oplog,
                    header: None,
                    entries: Vec::new(),
                });
            }
            (Some((b0, h0)), None) => ([b0, b0], h0),
            (None, Some((b1, h1))) => ([(b1 + 1) & 1, b1], h1),
            (Some((b0, h0)), Some((b1, h1))) => {
                let current = (b0 + b1) & 1;
                ([b0, b1], if current == 0 { h0 } else { h1 })
            }
        };
        let current = (bits[0] + bits[1]) & 1;

        let mut frames = Vec::new();
        let mut at = ENTRIES_OFFSET as usize;
        while let Some(frame) = decode_frame(&buf, at) {
            if frame.header_bit != current {
                break;
            }
            let Ok(entry) = Entry::decode(frame.payload(&buf)) else {
                break;
            };
            frames.push((at as u64, entry, frame.partial, frame.size()));
            at += frame.size();
        }
        while frames.last().is_some_and(|(_, _, partial, _)| *partial) {
            frames.pop();
        }
        let entries_size: u64 = frames.iter().map(|(_, _, _, size)| *size as u64).sum();
        let good = ENTRIES_OFFSET + entries_size;
        if good != len && !read_only {
            if good < len {
                warn!(dropped = len - good, "oplog: dropping a torn or stale tail");
            }
            storage.truncate(good)?;
        }
        debug!(entries = frames.len(), slot = current, "oplog opened");
        Ok(Opened {
            oplog: Self {
                storage,
                bits,
                entries_size,
            },
            header: Some(header),
            entries: frames.into_iter().map(|(at, e, _, _)| (at, e)).collect(),
        })
    }

    /// Bytes of entries since the last flush.
    pub(crate) const fn entries_size(&self) -> u64 {
        self.entries_size
    }

    /// Appends `entries` as non-atomic frames (hypercore never sets the partial bit).
    pub(crate) fn append(&mut self, entries: &[Entry]) -> Result<()> {
        let bit = (self.bits[0] + self.bits[1]) & 1;
        // Every frame is encoded in place in one buffer: room for its prefix, the entry, then
        // the prefix is filled in.
        let bound = entries
            .iter()
            .map(|e| e.encoded_len_bound() + FRAME_PREFIX_SIZE)
            .sum();
        let mut buf = Vec::with_capacity(bound);
        for entry in entries {
            let start = buf.len();
            buf.extend_from_slice(&[0; FRAME_PREFIX_SIZE]);
            let mut enc = Encoder::from_vec(buf);
            entry.encode_to(&mut enc);
            buf = enc.into_vec();
            if buf.len() - start - FRAME_PREFIX_SIZE > MAX_FRAME_PAYLOAD {
                return Err(Error::InvalidArgument(
                    "oplog entry too large for one frame",
                ));
            }
            seal_frame(&mut buf[start..], bit, false);
        }
        self.storage
            .write(ENTRIES_OFFSET + self.entries_size, &buf)?;
        self.entries_size += buf.len() as u64;
        Ok(())
    }

    /// Writes `payload` (an encoded header of at most [`MAX_HEADER_PAYLOAD`] bytes) as the
    /// new current header, syncs it if `sync`, and drops the entries.
    ///
    /// Without `sync` the slot write still precedes the truncation, which is all a process
    /// crash needs; only a power loss can then persist the truncation without the slot.
    pub(crate) fn flush(&mut self, payload: &[u8], sync: bool) -> Result<()> {
        if payload.len() > MAX_HEADER_PAYLOAD {
            return Err(Error::InvalidArgument("header too large for an oplog slot"));
        }
        let slot = usize::from(self.bits[0] == self.bits[1]);
        let bit = (self.bits[slot] + 1) & 1;
        let mut buf = Vec::with_capacity(payload.len() + 8);
        encode_frame(&mut buf, payload, bit, false);
        self.storage.write(slot as u64 * SLOT_1_OFFSET, &buf)?;
        // With `sync`, the new header is durable before the entries it replaces disappear.
        if sync {
            self.storage.sync()?;
        }
        self.storage.truncate(ENTRIES_OFFSET)?;
        self.bits[slot] = bit;
        self.entries_size = 0;
        Ok(())
    }

    /// Syncs the file.
    pub(crate) fn sync(&self) -> Result<()> {
        Ok(self.storage.sync()?)
    }

    /// Releases the file.
    pub(crate) fn close(&self) -> Result<()> {
        Ok(self.storage.close()?)
    }
}

/// Decodes the header slot at `at`: its generation bit and header, or `None` if invalid.
fn decode_slot(buf: &[u8], at: usize) -> Option<(u8, SlotHeader)> {
    let frame = decode_frame(buf, at)?;
    let header = header::decode(frame.payload(buf)).ok()?;
    Some((frame.header_bit, header))
}

#[cfg(test)]
mod tests;
