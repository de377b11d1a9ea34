//! On-disk layout constants of the five files of a core (spec §5), and the oplog frame codec.
//!
//! ```text
//! oplog:    [0, 4096) header slot 0 | [4096, 8192) header slot 1 | 8192.. entry frames
//! frame:    u32le crc32(lenword || payload) | u32le lenword = len << 2 | partial << 1 | header
//! tree:     node i at 40 * i: u64le size || hash(32); 40 zero bytes = no node
//! bitfield: 4096-byte pages, bit i = block i, LSB first
//! data:     block bytes at their byte offsets
//! header:   the big header (an oplog header too large for a slot), unframed
//! ```
//!
//! Offsets and sizes are chained constants; the unit test at the bottom pins the concrete
//! numbers from the spec so that a drift in either shows up.

use std::mem::size_of;

use corestore_keys::hash::crc32;

/// Size of one oplog header slot (and of a bitfield page).
pub(crate) const PAGE_SIZE: u64 = 4096;
/// Offset of header slot 0.
pub(crate) const SLOT_0_OFFSET: u64 = 0;
/// Offset of header slot 1.
pub(crate) const SLOT_1_OFFSET: u64 = SLOT_0_OFFSET + PAGE_SIZE;
/// Offset of the first entry frame.
pub(crate) const ENTRIES_OFFSET: u64 = SLOT_1_OFFSET + PAGE_SIZE;

/// Size of a frame's CRC32 field.
pub(crate) const CHECKSUM_SIZE: usize = size_of::<u32>();
/// Size of a frame's length word.
pub(crate) const LEN_WORD_SIZE: usize = size_of::<u32>();
/// Bytes before a frame's payload.
pub(crate) const FRAME_PREFIX_SIZE: usize = CHECKSUM_SIZE + LEN_WORD_SIZE;
/// The largest header payload that fits in a slot; larger headers go to the `header` file.
pub(crate) const MAX_HEADER_PAYLOAD: usize = PAGE_SIZE as usize - FRAME_PREFIX_SIZE;

/// Length-word bit 0: the header generation the frame belongs to.
pub(crate) const HEADER_BIT: u32 = 1;
/// Length-word bit 1: all but the last entry of an atomic batch.
pub(crate) const PARTIAL_BIT: u32 = 2;
/// The payload length sits above the two flag bits.
pub(crate) const LEN_SHIFT: u32 = 2;
/// The largest payload a length word can describe.
pub(crate) const MAX_FRAME_PAYLOAD: usize = (u32::MAX >> LEN_SHIFT) as usize;

/// Flush after this many mutations (hypercore `_autoFlush`; the first mutation after open
/// flushes too).
pub(crate) const FLUSH_EVERY: u32 = 4;
/// Flush when the entries exceed this many bytes (hypercore `_maxOplogSize`).
pub(crate) const MAX_OPLOG_ENTRIES_SIZE: u64 = 65536;

/// Size of a node hash in the tree file.
pub(crate) const TREE_HASH_SIZE: usize = 32;
/// Size of one tree-file record: `u64le size || hash`.
pub(crate) const TREE_NODE_SIZE: u64 = (size_of::<u64>() + TREE_HASH_SIZE) as u64;
/// The start of a hypercore ≤ 9 (SLEEP) tree file, which hypercore 10 rejects.
pub(crate) const OLD_TREE_MAGIC: [u8; 15] = [
    0x05, 0x02, 0x57, 0x02, 0x00, 0x00, 0x28, 0x07, 0x42, 0x4c, 0x41, 0x4b, 0x45, 0x32, 0x62,
];

/// Size of a bitfield page in bytes.
pub(crate) const BITFIELD_PAGE_SIZE: usize = PAGE_SIZE as usize;
/// Blocks covered by one bitfield page.
pub(crate) const BITS_PER_PAGE: u64 = BITFIELD_PAGE_SIZE as u64 * 8;

/// Big headers start at a multiple of this.
pub(crate) const BIG_HEADER_ALIGN: u64 = PAGE_SIZE;

/// A decoded frame: where its payload is and what its flag bits say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The header generation bit.
    pub(crate) header_bit: u8,
    /// Whether the partial bit is set.
    pub(crate) partial: bool,
    /// Payload start within the buffer given to [`decode_frame`].
    pub(crate) payload_start: usize,
    /// Payload length.
    pub(crate) payload_len: usize,
}

impl Frame {
    /// Bytes the frame takes on disk.
    pub(crate) const fn size(&self) -> usize {
        FRAME_PREFIX_SIZE + self.payload_len
    }

    /// The payload within `buf` (the buffer the frame was decoded from).
    pub(crate) fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.payload_start..self.payload_start + self.payload_len)
            .unwrap_or_default()
    }
}

/// Decodes the frame starting at `at`, or `None` if fewer than 8 bytes remain, the payload is
/// cut off, or the CRC does not match (hypercore treats all of these as "no frame here").
pub(crate) fn decode_frame(buf: &[u8], at: usize) -> Option<Frame> {
    let prefix = buf.get(at..at.checked_add(FRAME_PREFIX_SIZE)?)?;
    let checksum = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
    let word = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]);
    let payload_len = (word >> LEN_SHIFT) as usize;
    let payload_start = at + FRAME_PREFIX_SIZE;
    let covered = buf.get(at + CHECKSUM_SIZE..payload_start.checked_add(payload_len)?)?;
    if crc32(covered) != checksum {
        return None;
    }
    Some(Frame {
        header_bit: u8::from(word & HEADER_BIT != 0),
        partial: word & PARTIAL_BIT != 0,
        payload_start,
        payload_len,
    })
}

/// Appends one frame holding `payload` to `out`. The caller bounds `payload` by
/// [`MAX_FRAME_PAYLOAD`].
pub(crate) fn encode_frame(out: &mut Vec<u8>, payload: &[u8], header_bit: u8, partial: bool) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_PREFIX_SIZE]);
    out.extend_from_slice(payload);
    seal_frame(&mut out[start..], header_bit, partial);
}

/// Fills in the prefix of the frame `frame`: 8 bytes of room, then the payload (written in
/// place by the caller, bounded by [`MAX_FRAME_PAYLOAD`]).
pub(crate) fn seal_frame(frame: &mut [u8], header_bit: u8, partial: bool) {
    let len = u32::try_from(frame.len().saturating_sub(FRAME_PREFIX_SIZE)).unwrap_or(u32::MAX);
    let word =
        (len << LEN_SHIFT) | if partial { PARTIAL_BIT } else { 0 } | u32::from(header_bit & 1);
    if let Some(w) = frame.get_mut(CHECKSUM_SIZE..FRAME_PREFIX_SIZE) {
        w.copy_from_slice(&word.to_le_bytes());
    }
    let checksum = crc32(frame.get(CHECKSUM_SIZE..).unwrap_or_default());
    if let Some(c) = frame.get_mut(..CHECKSUM_SIZE) {
        c.copy_from_slice(&checksum.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers of spec §5.2, §5.6, §5.7, §5.10.
    #[test]
    fn layout_numbers_match_the_spec() {
        assert_eq!(SLOT_0_OFFSET, 0);
        assert_eq!(SLOT_1_OFFSET, 4096);
        assert_eq!(ENTRIES_OFFSET, 8192);
        assert_eq!(FRAME_PREFIX_SIZE, 8);
        assert_eq!(MAX_HEADER_PAYLOAD, 4088);
        assert_eq!(TREE_NODE_SIZE, 40);
        assert_eq!(BITFIELD_PAGE_SIZE, 4096);
        assert_eq!(BITS_PER_PAGE, 32768);
        assert_eq!(FLUSH_EVERY, 4);
        assert_eq!(MAX_OPLOG_ENTRIES_SIZE, 65536);
        assert_eq!(MAX_FRAME_PAYLOAD, (1 << 30) - 1);
    }

    /// Spec §5.11: the first entry frame of the example core.
    #[test]
    fn frame_round_trip_matches_the_spec_example() {
        let mut payload = vec![0x01, 0x13];
        payload.extend_from_slice(b"corestore/namespace");
        payload.push(0x20);
        payload.extend_from_slice(&[0; 32]);
        assert_eq!(payload.len(), 54);

        let mut out = Vec::new();
        encode_frame(&mut out, &payload, 1, false);
        assert_eq!(&out[..8], &[0xe3, 0xcb, 0x78, 0x5c, 0xd9, 0x00, 0x00, 0x00]);

        let frame = decode_frame(&out, 0).unwrap();
        assert_eq!(frame.header_bit, 1);
        assert!(!frame.partial);
        assert_eq!(frame.payload(&out), &payload[..]);
        assert_eq!(frame.size(), 62);
    }

    #[test]
    fn damaged_frames_are_rejected() {
        let mut out = Vec::new();
        encode_frame(&mut out, b"hello", 0, true);
        assert!(decode_frame(&out, 0).unwrap().partial);
        assert_eq!(decode_frame(&out[..out.len() - 1], 0), None);
        assert_eq!(decode_frame(&out[..7], 0), None);
        assert_eq!(decode_frame(&out, 1), None);
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x10;
            assert_eq!(decode_frame(&bad, 0), None, "flip in byte {i}");
        }
        // A length word claiming far more than the buffer holds.
        let mut huge = out.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_frame(&huge, 0), None);
    }
}
