//! The `data` file (spec §5.8): block bytes at their byte offsets, no framing. Offsets come
//! from the Merkle tree; this module only moves bytes.

use std::sync::Arc;

use rac_storage::Storage;

use crate::error::{Error, Result};

/// Blocks of at most this many bytes are read without checking the file's length first.
const UNCHECKED_READ: u64 = 1 << 20;

/// In [`Blocks::write_all`], blocks of at least this size are written as they are; smaller ones
/// are gathered into one buffer (one system call for many small blocks, no copy of big ones).
const DIRECT_WRITE: usize = 16 << 10;

/// Most bytes [`Blocks::write_all`] gathers before writing them.
const GATHER_MAX: usize = 1 << 20;

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

    /// Reads `size` bytes at `offset` onto the end of `out` (left as it was on an error). A
    /// non-empty range past the end of the file is corruption (the tree says the bytes are
    /// there). A large range is checked against the file's length before allocating; a small
    /// one (the common case) is read directly, a short read being the error.
    pub(crate) fn read_append(&self, offset: u64, size: u64, out: &mut Vec<u8>) -> Result<()> {
        if size == 0 {
            return Ok(());
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
        match self.storage.read_append(offset, size, out) {
            Ok(()) => Ok(()),
            Err(e) if e.is_out_of_bounds() => Err(past_end()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `data` at `offset`.
    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Result<()> {
        Ok(self.storage.write(offset, data)?)
    }

    /// Writes `blocks` back to back from `offset`: big blocks with one call each, runs of small
    /// ones as one vectored call (see [`DIRECT_WRITE`]; a file gathers them into one system
    /// call, memory copies each in place). The writes go in ascending order.
    pub(crate) fn write_all(&self, offset: u64, blocks: &[&[u8]]) -> Result<()> {
        if let [one] = blocks {
            return self.write(offset, one);
        }
        let mut pos = offset;
        let mut run: Vec<&[u8]> = Vec::with_capacity(blocks.len());
        let (mut run_at, mut run_len) = (offset, 0usize);
        for &block in blocks {
            if block.len() >= DIRECT_WRITE {
                if !run.is_empty() {
                    self.storage.write_vectored(run_at, &run)?;
                    run.clear();
                }
                self.write(pos, block)?;
            } else {
                if run.is_empty() {
                    (run_at, run_len) = (pos, 0);
                }
                run.push(block);
                run_len += block.len();
                if run_len >= GATHER_MAX {
                    self.storage.write_vectored(run_at, &run)?;
                    run.clear();
                }
            }
            pos += block.len() as u64;
        }
        if !run.is_empty() {
            self.storage.write_vectored(run_at, &run)?;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use rac_storage::MemoryStorage;

    /// Mixed big and small blocks land back to back, whatever the gathering does.
    #[test]
    fn write_all_puts_blocks_back_to_back() {
        let storage = Arc::new(MemoryStorage::new());
        let blocks = Blocks::new(storage.clone());
        let sizes = [
            0,
            3,
            DIRECT_WRITE,
            1,
            0,
            DIRECT_WRITE - 1,
            2 * DIRECT_WRITE,
            5,
        ];
        let data: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| vec![i as u8 + 1; n])
            .collect();
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        blocks.write_all(7, &refs).unwrap();
        let mut want = vec![0u8; 7];
        want.extend(data.concat());
        assert_eq!(crate::tests_support::read_all(&*storage), want);
        // Enough small blocks to fill the gathering buffer more than once.
        let small: Vec<Vec<u8>> = (0..3 * GATHER_MAX / 1000)
            .map(|i| vec![(i % 251) as u8; 1000])
            .collect();
        let refs: Vec<&[u8]> = small.iter().map(Vec::as_slice).collect();
        blocks.write_all(0, &refs).unwrap();
        assert_eq!(
            storage
                .read_to_vec(0, 3 * GATHER_MAX as u64 / 1000 * 1000)
                .unwrap(),
            small.concat()
        );
    }
}
