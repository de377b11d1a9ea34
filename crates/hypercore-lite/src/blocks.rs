//! The `data` file (spec §5.8): block bytes at their byte offsets, no framing. Offsets come
//! from the Merkle tree; this module only moves bytes.

use std::sync::Arc;

use rac_storage::Storage;

use crate::error::{Error, Result};

/// Blocks of at most this many bytes are read without checking the file's length first.
const UNCHECKED_READ: u64 = 1 << 20;

/// The data file.
#[derive(Debug)]
pub(crate) struct Blocks {
    storage: Arc<dyn Storage>,
}

impl Blocks {
    /// Wraps the file.
    pub(crate) fn new(storage: Arc<dyn Storage>) -> Self {
        Self { storage }
    }

    /// Reads `size` bytes at `offset`. A non-empty range past the end of the file is corruption (the
    /// tree says the bytes are there). A large range is checked against the file's length before
    /// allocating; a small one (the common case) is read directly, a short read being the error.
    pub(crate) fn read(&self, offset: u64, size: u64) -> Result<Vec<u8>> {
        if size == 0 {
            // Empty blocks occupy no bytes (and may sit past the end of the file).
            return Ok(Vec::new());
        }
        let past_end = || {
            Error::corrupt(
                "data",
                offset,
                "block extends past the end of the data file",
            )
        };
        if size > UNCHECKED_READ {
            let len = self.storage.len()?;
            if offset.checked_add(size).is_none_or(|end| end > len) {
                return Err(past_end());
            }
        }
        match self.storage.read_to_vec(offset, size) {
            Ok(data) => Ok(data),
            Err(e) if e.is_out_of_bounds() => Err(past_end()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `data` at `offset`.
    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        Ok(self.storage.write(offset, data)?)
    }

    /// Zeroes (or cuts, at the end) `len` bytes at `offset` (JavaScript `del`).
    pub(crate) fn clear(&self, offset: u64, len: u64) -> Result<()> {
        Ok(self.storage.del(offset, len)?)
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
