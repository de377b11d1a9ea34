//! [`MessageBuf`]: an outgoing message laid out so the secret stream encrypts it where it is.
//!
//! A message for the transport becomes `u24le(len) || tag || ciphertext || mac` (spec §7.3).
//! The mux encodes each message after [`MessageBuf::HEADROOM`] bytes kept free for the length
//! and the tag, with room left behind it for the MAC; [`SecretStream`](crate::stream::SecretStream)
//! writes the length, encrypts `tag || message` in place, appends the MAC, and hands that very
//! buffer to the transport. A sent block is thus copied once on its way out: into the mux's
//! batch (the kernel's copy aside).
//!
//! The transport gives the buffers back ([`Connection::recycle`](crate::Connection::recycle)),
//! and the mux builds its next batches in them (`Spares`, bounded) instead of allocating (and
//! faulting in) fresh memory for every frame.
//!
//! [`FramePool`] does the same for incoming frames received by a split-off
//! [`Receiver`](crate::stream::Receiver): a frame's buffer returns to the pool when the last
//! value decoded from it is dropped, on whichever thread that happens.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use crate::secretstream::MAC_LEN;

/// An outgoing message (one protomux frame) with room around it for its encryption.
///
/// Dereferences to the message bytes.
#[derive(Clone, Eq)]
pub struct MessageBuf {
    /// `HEADROOM` bytes, then the message; capacity for `TAILROOM` more.
    buf: Vec<u8>,
}

impl MessageBuf {
    /// Bytes kept free before the message: the frame's u24 length and the secretstream tag.
    pub const HEADROOM: usize = 4;
    /// Bytes of capacity kept free after the message: the secretstream MAC.
    pub const TAILROOM: usize = MAC_LEN;

    /// A message of `msg`'s bytes (one copy of them).
    #[must_use]
    pub fn from_slice(msg: &[u8]) -> Self {
        let mut buf = with_headroom(Vec::new(), msg.len());
        buf.extend_from_slice(msg);
        Self { buf }
    }

    /// Wraps a buffer that starts with [`MessageBuf::HEADROOM`] bytes of headroom (as
    /// [`with_headroom`] makes them); a shorter buffer is an empty message.
    pub(crate) fn from_headroom_vec(mut buf: Vec<u8>) -> Self {
        if buf.len() < Self::HEADROOM {
            buf.resize(Self::HEADROOM, 0);
        }
        Self { buf }
    }

    /// The message bytes.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        self.buf.get(Self::HEADROOM..).unwrap_or_default()
    }

    /// The whole buffer: [`MessageBuf::HEADROOM`] bytes, then the message.
    pub(crate) fn into_inner(self) -> Vec<u8> {
        self.buf
    }
}

/// The bytes a message of `len` bytes takes with its headroom and MAC.
fn framed_len(len: usize) -> usize {
    MessageBuf::HEADROOM + len + MessageBuf::TAILROOM
}

/// `buf` emptied, with `HEADROOM` zero bytes and capacity for a message of `len` bytes and the
/// MAC behind it (the allocation is kept, and grown if it is smaller).
pub(crate) fn with_headroom(mut buf: Vec<u8>, len: usize) -> Vec<u8> {
    buf.clear();
    buf.reserve_exact(framed_len(len));
    buf.resize(MessageBuf::HEADROOM, 0);
    buf
}

/// [`with_headroom`] for a buffer meant to be reused ([`Spares`]): one that must grow gets an
/// eighth more than the message needs, rounded up to whole pages, so that the next messages
/// of about the same size (a block with a node more in its proof, a batch with an item more)
/// fit it instead of each growing it into fresh memory.
fn with_room(mut buf: Vec<u8>, len: usize) -> Vec<u8> {
    let need = framed_len(len);
    if buf.capacity() < need {
        buf.clear();
        let roomy = need.saturating_add(need / 8).next_multiple_of(4096);
        buf.reserve_exact(roomy);
    }
    with_headroom(buf, len)
}

impl From<&[u8]> for MessageBuf {
    fn from(msg: &[u8]) -> Self {
        Self::from_slice(msg)
    }
}

impl std::ops::Deref for MessageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for MessageBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for MessageBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<[u8]> for MessageBuf {
    fn eq(&self, other: &[u8]) -> bool {
        self.as_slice() == other
    }
}

impl PartialEq<Vec<u8>> for MessageBuf {
    fn eq(&self, other: &Vec<u8>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for MessageBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MessageBuf").field(&self.as_slice()).finish()
    }
}

/// Buffers handed back after they were written, kept for the next large messages.
///
/// Bounded: at most [`Spares::MAX_BYTES`] of capacity in all; smaller buffers than
/// [`Spares::MIN_LEN`] (cheap to allocate) and larger ones than `MAX_BYTES` are dropped.
#[derive(Debug, Default)]
pub(crate) struct Spares {
    bufs: Vec<Vec<u8>>,
    /// The capacity of `bufs` in all.
    bytes: usize,
}

impl Spares {
    /// The smallest message worth a spare buffer, and the smallest buffer kept.
    pub(crate) const MIN_LEN: usize = 16 * 1024;
    /// The most capacity kept (what a driver has in flight when it answers requests up to its
    /// high-water mark, and a few batches more).
    pub(crate) const MAX_BYTES: usize = 2 * 1024 * 1024;

    /// A buffer with headroom for a message of `len` bytes: a spare one for a large message
    /// (when one is kept), a fresh one otherwise.
    pub(crate) fn take(&mut self, len: usize) -> Vec<u8> {
        if len < Self::MIN_LEN {
            return with_headroom(Vec::new(), len);
        }
        // The most recently returned buffer that holds the message (the likeliest to be
        // still in the cache), else the most recent one, grown.
        let need = framed_len(len);
        let at = self
            .bufs
            .iter()
            .rposition(|b| b.capacity() >= need)
            .or_else(|| self.bufs.len().checked_sub(1));
        let spare = at.map(|i| self.bufs.remove(i)).unwrap_or_default();
        self.bytes = self.bytes.saturating_sub(spare.capacity());
        with_room(spare, len)
    }

    /// Keeps `buf` for a later message, if it is worth keeping and there is room.
    pub(crate) fn put(&mut self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap < Self::MIN_LEN || self.bytes + cap > Self::MAX_BYTES {
            return;
        }
        buf.clear();
        self.bytes += cap;
        self.bufs.push(buf);
    }

    /// Drops every spare buffer.
    pub(crate) fn clear(&mut self) {
        self.bufs = Vec::new();
        self.bytes = 0;
    }
}

/// A bounded pool of buffers for incoming frames, shared by a
/// [`Receiver`](crate::stream::Receiver) and the messages it decrypted: a message's buffer
/// goes back to the pool when the last [`Bytes`] sliced from it is dropped (block values of
/// `data` messages live until they are stored), so the next frames are received into memory
/// that is already mapped instead of fresh allocations. Cloning gives another handle onto the
/// same pool.
///
/// At most [`FramePool::BUFFERS`] buffers of at most [`FramePool::CAPACITY`] bytes are kept;
/// others are dropped.
#[derive(Clone, Default)]
pub struct FramePool(Arc<Mutex<Vec<Vec<u8>>>>);

impl FramePool {
    /// The most buffers kept: the frames of a few reads, which come back together when the
    /// round that stored their blocks ends.
    pub const BUFFERS: usize = 16;

    /// The largest buffer kept (two batch frames' worth): a peer that sends larger frames gets
    /// fresh memory for each, so the pool stays bounded (8 MiB at most, about 2 MiB while
    /// batch frames of 128 KiB flow).
    pub const CAPACITY: usize = 2 * crate::frame::INITIAL_BODY_CAPACITY;

    /// An empty pool.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn bufs(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `buf` (emptied) if it is small enough and there is room.
    pub fn put(&self, mut buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > Self::CAPACITY {
            return;
        }
        buf.clear();
        let mut bufs = self.bufs();
        if bufs.len() < Self::BUFFERS {
            bufs.push(buf);
        }
    }

    /// A kept buffer (empty), if any.
    #[must_use]
    pub fn take(&self) -> Option<Vec<u8>> {
        self.bufs().pop()
    }

    /// How many buffers are kept.
    #[must_use]
    pub fn len(&self) -> usize {
        self.bufs().len()
    }

    /// Whether no buffer is kept.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every kept buffer.
    pub fn clear(&self) {
        let dropped = std::mem::take(&mut *self.bufs());
        drop(dropped);
    }

    /// `buf[range]` as shared bytes that hand `buf` back to this pool once the last of them
    /// (and of the slices taken from them) is dropped.
    pub(crate) fn share(&self, buf: Vec<u8>, range: std::ops::Range<usize>) -> Bytes {
        let owner = Pooled {
            buf,
            pool: self.clone(),
        };
        Bytes::from_owner(owner).slice(range)
    }
}

impl std::fmt::Debug for FramePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramePool")
            .field("buffers", &self.len())
            .finish()
    }
}

/// A frame buffer lent out as [`Bytes`]; back to its pool when dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: FramePool,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_pool_gets_buffers_back_when_the_last_slice_drops() {
        let pool = FramePool::new();
        let mut buf = Vec::with_capacity(1000);
        buf.extend_from_slice(b"..hello world..");
        let ptr = buf.as_ptr();
        let shared = pool.share(buf, 2..13);
        assert_eq!(&shared[..], b"hello world");
        let world = shared.slice(6..);
        drop(shared);
        assert!(pool.is_empty(), "a slice still holds the buffer");
        let moved = std::thread::spawn(move || drop(world));
        moved.join().unwrap();
        let back = pool.take().unwrap();
        assert_eq!((back.as_ptr(), back.len(), back.capacity()), (ptr, 0, 1000));
        // Bounded in count and in size.
        for _ in 0..FramePool::BUFFERS + 3 {
            pool.put(Vec::with_capacity(10));
        }
        assert_eq!(pool.len(), FramePool::BUFFERS);
        pool.clear();
        pool.put(Vec::with_capacity(FramePool::CAPACITY + 1));
        pool.put(Vec::new());
        assert!(pool.is_empty());
    }

    #[test]
    fn message_buf_has_room_around_the_message() {
        let m = MessageBuf::from_slice(b"hello");
        assert_eq!(m.as_slice(), b"hello");
        assert_eq!(m, b"hello".to_vec());
        let inner = m.into_inner();
        assert_eq!(&inner[..MessageBuf::HEADROOM], &[0; MessageBuf::HEADROOM]);
        assert!(inner.capacity() >= inner.len() + MessageBuf::TAILROOM);
        assert!(MessageBuf::from_headroom_vec(vec![1, 2]).is_empty());
    }

    #[test]
    fn spares_are_reused_and_bounded() {
        let mut s = Spares::default();
        let big = s.take(100_000);
        let ptr = big.as_ptr();
        assert_eq!(big.len(), MessageBuf::HEADROOM);
        s.put(big);
        // Small messages get fresh buffers; a large one gets the spare.
        let small = s.take(10);
        assert_ne!(small.as_ptr(), ptr);
        let again = s.take(50_000);
        assert_eq!(again.as_ptr(), ptr);
        assert_eq!(again, vec![0; MessageBuf::HEADROOM]);
        assert_eq!(s.bytes, 0);
        // Small buffers are not kept; capacity beyond the bound is not kept.
        s.put(vec![0; 10]);
        assert!(s.bufs.is_empty());
        for _ in 0..100 {
            s.put(Vec::with_capacity(Spares::MAX_BYTES / 4));
        }
        assert_eq!(s.bufs.len(), 4);
        assert!(s.bytes <= Spares::MAX_BYTES);
        s.put(Vec::with_capacity(Spares::MAX_BYTES + 1));
        assert_eq!(s.bufs.len(), 4);
        s.clear();
        assert_eq!((s.bufs.len(), s.bytes), (0, 0));
    }

    #[test]
    fn spares_fit_messages_of_about_the_same_size() {
        let mut s = Spares::default();
        // A buffer grown for a message has room for one a little larger (a node more).
        let first = s.take(65_600);
        let ptr = first.as_ptr();
        s.put(first);
        let second = s.take(65_640);
        assert_eq!(second.as_ptr(), ptr, "grown into fresh memory");
        assert!(second.capacity() >= framed_len(65_640));
        // A spare that holds the message is preferred to a more recent one that does not.
        let small = s.take(20_000);
        let small_ptr = small.as_ptr();
        s.put(second);
        s.put(small);
        let big = s.take(65_000);
        assert_eq!(big.as_ptr(), ptr);
        assert_eq!(s.bufs.len(), 1);
        assert_eq!(s.bufs[0].as_ptr(), small_ptr);
        assert_eq!(s.bytes, s.bufs[0].capacity());
    }
}
