//! `u24le length || body` framing on the raw transport (spec §7.1).
//!
//! [`FrameDecoder`] reassembles frames across arbitrary chunking. The announced length is checked
//! against a maximum *before* any buffer for the body is reserved, so a peer cannot make us
//! hold more than one body of at most `max_frame` bytes per stream, plus, while it is sending,
//! the previous body's buffer kept for reuse ([`FrameDecoder::recycle`]).

use crate::error::ProtocolError;

/// The largest body a u24 length prefix can announce.
pub const MAX_FRAME_LEN: usize = 0xff_ffff;

/// The most a [`FrameDecoder`] reserves for a body up front beyond the bytes at hand; the buffer
/// grows only as the body's bytes arrive, so memory follows what the peer actually sent, not
/// what it announced. Large enough for a whole batch frame of answers (128 KiB and a bit), so
/// such a frame arriving over several reads is received without growing (copying) its buffer.
pub const INITIAL_BODY_CAPACITY: usize = 256 * 1024;

/// Appends one frame (`u24le(len) || body`) to `out`.
///
/// Returns `None` (and appends nothing) if `body` is longer than [`MAX_FRAME_LEN`].
pub fn encode_frame(body: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME_LEN)?;
    out.extend_from_slice(&len.to_le_bytes()[..3]);
    out.extend_from_slice(body);
    Some(())
}

/// Reassembles u24-length-prefixed frames from a byte stream.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_frame: usize,
    header: [u8; 3],
    header_len: usize,
    /// The body being collected, once its length is known and accepted.
    body: Option<(usize, Vec<u8>)>,
    /// A finished body handed back by [`FrameDecoder::recycle`], reused for the next body.
    spare: Vec<u8>,
}

impl FrameDecoder {
    /// A decoder that accepts bodies of at most `max_frame` bytes (capped at [`MAX_FRAME_LEN`]).
    #[must_use]
    pub fn new(max_frame: usize) -> Self {
        Self {
            max_frame: max_frame.min(MAX_FRAME_LEN),
            header: [0; 3],
            header_len: 0,
            body: None,
            spare: Vec::new(),
        }
    }

    /// Consumes bytes from the front of `input` until one frame is complete or `input` is empty.
    ///
    /// Returns the complete body, if any; `input` is advanced past what was consumed, so call
    /// this in a loop until it returns `Ok(None)`.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Vec<u8>>, ProtocolError> {
        loop {
            if let Some((len, body)) = &mut self.body {
                let take = (*len - body.len()).min(input.len());
                body.extend_from_slice(&input[..take]);
                *input = &input[take..];
                if body.len() == *len {
                    let (_, body) = self.body.take().unwrap_or_default();
                    return Ok(Some(body));
                }
                return Ok(None);
            }
            let Some((&b, rest)) = input.split_first() else {
                return Ok(None);
            };
            self.header[self.header_len] = b;
            self.header_len += 1;
            *input = rest;
            if self.header_len == 3 {
                self.header_len = 0;
                let [a, b, c] = self.header;
                let len = u32::from_le_bytes([a, b, c, 0]) as usize;
                if len > self.max_frame {
                    return Err(ProtocolError::FrameTooLarge {
                        limit: self.max_frame,
                        got: len,
                    });
                }
                // Reserve what arrived already (or the initial capacity), never more than
                // announced.
                let reserve = len.min(INITIAL_BODY_CAPACITY.max(input.len()));
                let mut body = std::mem::take(&mut self.spare);
                body.clear();
                body.reserve(reserve);
                self.body = Some((len, body));
            }
        }
    }

    /// Hands back a body [`FrameDecoder::decode`] returned, once its bytes are used, so the
    /// next frame reuses its memory instead of allocating (and faulting in) a fresh buffer.
    ///
    /// Kept only while a frame is being collected (the peer is sending) and only one: a
    /// stream that goes quiet between frames holds no spare.
    pub fn recycle(&mut self, body: Vec<u8>) {
        if self.is_mid_frame() {
            self.keep_spare(body);
        }
    }

    /// Keeps `body` for the next frame, even between frames, unless a spare at least as large
    /// is kept already: for a caller that hands bodies back from elsewhere (another thread)
    /// and bounds what it keeps itself.
    pub fn keep_spare(&mut self, body: Vec<u8>) {
        if body.capacity() > self.spare.capacity() {
            self.spare = body;
        }
    }

    /// Whether a spare body is kept for the next frame.
    #[must_use]
    pub fn has_spare(&self) -> bool {
        self.spare.capacity() > 0
    }

    /// Drops the spare body, if any (the peer stopped between frames).
    pub fn release_spare(&mut self) {
        if !self.is_mid_frame() {
            self.spare = Vec::new();
        }
    }

    /// Whether the decoder holds a partial frame.
    #[must_use]
    pub fn is_mid_frame(&self) -> bool {
        self.header_len > 0 || self.body.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(dec: &mut FrameDecoder, mut input: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(f) = dec.decode(&mut input).unwrap() {
            out.push(f);
        }
        assert!(input.is_empty());
        out
    }

    #[test]
    fn reassembles_across_any_chunking() {
        let mut wire = Vec::new();
        let bodies: Vec<Vec<u8>> = vec![vec![], vec![1], vec![7; 300], vec![9; 70_000]];
        for b in &bodies {
            encode_frame(b, &mut wire).unwrap();
        }
        for chunk in [1, 2, 3, 5, 64, 4096, wire.len()] {
            let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
            let mut got = Vec::new();
            for c in wire.chunks(chunk) {
                got.extend(all(&mut dec, c));
            }
            assert_eq!(got, bodies, "chunk size {chunk}");
            assert!(!dec.is_mid_frame());
        }
    }

    #[test]
    fn rejects_oversized_before_allocating() {
        let mut dec = FrameDecoder::new(100);
        let mut input: &[u8] = &[101, 0, 0];
        assert_eq!(
            dec.decode(&mut input),
            Err(ProtocolError::FrameTooLarge {
                limit: 100,
                got: 101
            })
        );
        let mut input: &[u8] = &[0xff, 0xff, 0xff];
        assert!(
            FrameDecoder::new(usize::MAX)
                .decode(&mut input)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn initial_reservation_is_capped() {
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 1];
        assert!(dec.decode(&mut input).unwrap().is_none());
        let Some((len, body)) = &dec.body else {
            panic!("no body")
        };
        assert_eq!(*len, MAX_FRAME_LEN);
        assert!(body.capacity() < 2 * INITIAL_BODY_CAPACITY);
    }

    #[test]
    fn encode_limits() {
        let mut out = Vec::new();
        assert!(encode_frame(&vec![0; MAX_FRAME_LEN + 1], &mut out).is_none());
        assert!(out.is_empty());
        encode_frame(b"abc", &mut out).unwrap();
        assert_eq!(out, b"\x03\x00\x00abc");
    }

    #[test]
    fn recycled_bodies_are_reused_only_mid_frame() {
        let mut wire = Vec::new();
        for b in [vec![1u8; 5000], vec![2u8; 3000], vec![3u8; 10]] {
            encode_frame(&b, &mut wire).unwrap();
        }
        let mut dec = FrameDecoder::new(MAX_FRAME_LEN);
        // The first frame, and the second one started.
        let mut input = &wire[..5003 + 100];
        let first = dec.decode(&mut input).unwrap().unwrap();
        assert_eq!(dec.decode(&mut input).unwrap(), None);
        assert!(dec.is_mid_frame());
        let ptr = first.as_ptr();
        dec.recycle(first);
        dec.release_spare(); // mid-frame: kept
        let mut input = &wire[5103..];
        let second = dec.decode(&mut input).unwrap().unwrap();
        assert_eq!(second, vec![2u8; 3000]);
        let third = dec.decode(&mut input).unwrap().unwrap();
        // The third body lives in the first one's memory.
        assert_eq!(third, vec![3u8; 10]);
        assert_eq!(third.as_ptr(), ptr);
        assert!(third.capacity() >= 5000);
        // Between frames nothing is kept.
        dec.recycle(second);
        dec.recycle(third);
        dec.release_spare();
        assert_eq!(dec.spare.capacity(), 0);
    }
}
