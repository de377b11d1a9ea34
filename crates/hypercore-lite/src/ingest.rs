//! Appending a batch: the leaf hashes of its blocks are computed while its bytes are written,
//! on two threads when the batch is large enough to repay the thread.
//!
//! The two jobs are independent (the data write needs no hash, the hashes need no write). A
//! second thread (a scoped one, spawned per large batch and joined before the call returns)
//! writes while the calling thread hashes, then joins the hashing, chunk by chunk. On files the
//! write (the kernel's copy into the page cache) is the cheaper job, so a large batch is hashed
//! on both cores for most of its time. Nothing is ordered differently for the caller: the data is
//! written, and synced if asked, before the call returns, and the oplog entry that acknowledges
//! the batch is written only after that.

use std::sync::{Mutex, PoisonError};

use corestore_keys::Hash;
use corestore_keys::hash::{leaf_lanes, leaves};

use crate::error::Result;

/// Batches smaller than this are hashed and written on the calling thread. Starting a thread
/// costs some 40 µs here (Rust sets up a guard page and a signal stack for each), about what
/// writing 64 KiB takes, and the second core may be busy: measured with batches of 100 × 1 KiB,
/// the serial path was faster on a loaded 2-core machine, while 100 × 64 KiB gained about 20%.
pub(crate) const PARALLEL_MIN_BYTES: usize = 512 << 10;

/// Bytes per unit of shared hashing work (at least as many blocks as are hashed side by side):
/// small enough that the two threads finish within a few dozen microseconds of each other.
const CHUNK_BYTES: usize = 64 << 10;

/// Hashes every block of `blocks` (the hypercore leaf hash) while `write` stores them; returns
/// the hashes in block order once both are done. `write`'s error wins; no hash is returned
/// without a completed write.
pub(crate) fn hash_while_writing<W>(blocks: &[&[u8]], write: W) -> Result<Vec<Hash>>
where
    W: FnOnce() -> Result<()> + Send,
{
    let mut hashes = vec![Hash([0; 32]); blocks.len()];
    let total: usize = blocks.iter().map(|b| b.len()).sum();
    if total < PARALLEL_MIN_BYTES {
        hash_all(blocks, &mut hashes);
        write()?;
        return Ok(hashes);
    }
    // At least as many blocks per chunk as `leaves` hashes side by side.
    let per_chunk = (CHUNK_BYTES.saturating_mul(blocks.len()) / total).max(leaf_lanes());
    let jobs = Mutex::new(blocks.chunks(per_chunk).zip(hashes.chunks_mut(per_chunk)));
    let work = || {
        loop {
            // Take one chunk, then hash it without holding the lock.
            let next = lock(&jobs).next();
            let Some((blocks, out)) = next else { break };
            hash_all(blocks, out);
        }
    };
    // Whichever thread takes the write runs it; if the writer thread cannot be started
    // (resource limits), the calling thread does.
    let write = Mutex::new(Some(write));
    let run_write = || lock(&write).take().map(|w| w());
    let written = std::thread::scope(|s| {
        let writer = std::thread::Builder::new()
            .name("hypercore-write".into())
            .spawn_scoped(s, || {
                let written = run_write();
                work();
                written
            });
        let here = if writer.is_err() { run_write() } else { None };
        work();
        let there = match writer {
            Ok(writer) => writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => None,
        };
        here.or(there)
    });
    match written {
        Some(result) => result?,
        // Not reachable (one of the threads took the write), but never skip it.
        None => {
            if let Some(w) = write.into_inner().unwrap_or_else(PoisonError::into_inner) {
                w()?;
            }
        }
    }
    Ok(hashes)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The guarded values are plain iterators and options: a panic cannot leave them broken.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The leaf hashes of `blocks` into `out` (same length), several blocks side by side.
fn hash_all(blocks: &[&[u8]], out: &mut [Hash]) {
    for (hash, computed) in out.iter_mut().zip(leaves(blocks)) {
        *hash = computed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn blocks(n: usize, size: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| vec![(i % 251) as u8; size + i % 3])
            .collect()
    }

    /// Small and large batches (the large ones on two threads) give every leaf hash in order
    /// and run the write exactly once.
    #[test]
    fn hashes_match_and_the_write_runs_once() {
        for (n, size) in [(1, 10), (3, 1000), (100, 1024), (37, 64 << 10)] {
            let data = blocks(n, size);
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let writes = AtomicUsize::new(0);
            let hashes = hash_while_writing(&refs, || {
                writes.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
            assert_eq!(writes.load(Ordering::Relaxed), 1);
            let want: Vec<Hash> = refs.iter().map(|b| corestore_keys::hash::leaf(b)).collect();
            assert_eq!(hashes, want, "{n} blocks of {size} bytes");
        }
    }

    /// A failed write is the result, on both paths.
    #[test]
    fn a_failed_write_is_returned() {
        for size in [10, 64 << 10] {
            let data = blocks(16, size);
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let result = hash_while_writing(&refs, || Err(Error::InvalidArgument("no space")));
            assert!(matches!(result, Err(Error::InvalidArgument("no space"))));
        }
    }
}
