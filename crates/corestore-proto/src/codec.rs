//! Compact-encoding on the wire (spec §1): a bounded [`Reader`] over
//! [`corestore_keys::compact::Decoder`]. Messages are written with
//! [`corestore_keys::compact::Encoder`].
//!
//! Every primitive (varints and their 2^53 − 1 check, fixed fields, length-prefixed buffers,
//! UTF-8 strings, `uint32array`s) is parsed by `corestore-keys`. This adapter adds only what the
//! protocol needs on top: a limit on every length and count, checked *before* anything is
//! allocated (and before the input is known to hold that many bytes), and this crate's
//! [`DecodeError`]. Decoders accept non-minimal varints, encoders always write the minimal form,
//! and message decoders ignore trailing bytes (newer peers append optional fields, §10.1).

use corestore_keys::DecodeError as KeysDecodeError;
use corestore_keys::compact::{Decode, Decoder, Encoder};

pub use corestore_keys::compact::{MAX_ARRAY_LEN, MAX_SAFE_INTEGER, uint_len};

use crate::error::DecodeError;

/// A cursor over a byte slice that never reads past its end, with the wire's length bounds.
///
/// Each read runs the matching [`Decoder`] method on the unread bytes and advances past what it
/// consumed; on error the cursor does not move.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading `buf` from its beginning.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// The bytes not read yet.
    #[must_use]
    pub fn remaining(&self) -> &'a [u8] {
        self.buf
    }

    /// Whether every byte was read.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Runs one `corestore-keys` read on the unread bytes and advances past what it consumed.
    #[inline]
    fn read<T>(
        &mut self,
        f: impl FnOnce(&mut Decoder<'a>) -> Result<T, KeysDecodeError>,
    ) -> Result<T, DecodeError> {
        let mut dec = Decoder::new(self.buf);
        let value = f(&mut dec)?;
        self.buf = self.buf.get(dec.position()..).unwrap_or_default();
        Ok(value)
    }

    /// Reads the `uint` at the cursor without consuming it and rejects values above `limit`.
    fn peek_bounded(&self, limit: u64) -> Result<u64, DecodeError> {
        self.clone().bounded(limit)
    }

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let (head, tail) = self
            .buf
            .split_at_checked(n)
            .ok_or(DecodeError::UnexpectedEnd)?;
        self.buf = tail;
        Ok(head)
    }

    /// Reads exactly `N` raw bytes (`fixed32`, `fixed64`).
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.read(Decoder::fixed::<N>)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        self.read(Decoder::u8)
    }

    /// Reads a compact-encoding `uint` (varint with `0xfd`/`0xfe`/`0xff` prefixes).
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        self.read(Decoder::uint)
    }

    /// Reads a `uint` and rejects values above `limit` (used for lengths and counts).
    pub fn bounded(&mut self, limit: u64) -> Result<u64, DecodeError> {
        let got = self.uint()?;
        if got > limit {
            return Err(DecodeError::TooLarge { limit, got });
        }
        Ok(got)
    }

    /// Reads a length-prefixed `buffer` of at most `limit` bytes.
    pub fn buffer(&mut self, limit: usize) -> Result<&'a [u8], DecodeError> {
        self.peek_bounded(limit as u64)?;
        self.read(Decoder::buffer)
    }

    /// Reads a length-prefixed UTF-8 `string` of at most `limit` bytes.
    pub fn string(&mut self, limit: usize) -> Result<&'a str, DecodeError> {
        self.peek_bounded(limit as u64)?;
        self.read(Decoder::string)
    }

    /// Reads an array count of at most `limit` items, each at least `min_item_len` bytes long,
    /// and checks that the input can hold them before the caller allocates.
    pub fn count(&mut self, limit: u64, min_item_len: usize) -> Result<usize, DecodeError> {
        let n = self.bounded(limit.min(MAX_ARRAY_LEN))?;
        let n = usize::try_from(n).map_err(|_| DecodeError::UnexpectedEnd)?;
        if n.saturating_mul(min_item_len) > self.buf.len() {
            return Err(DecodeError::UnexpectedEnd);
        }
        Ok(n)
    }

    /// Reads a `uint32array` of at most `limit` words.
    pub fn uint32_array(&mut self, limit: u64) -> Result<Vec<u32>, DecodeError> {
        self.peek_bounded(limit.min(MAX_ARRAY_LEN))?;
        self.read(Decoder::uint32_array)
    }

    /// Decodes one value with its `corestore-keys` [`Decode`] implementation.
    pub fn decode<T: Decode>(&mut self) -> Result<T, DecodeError> {
        self.read(T::decode)
    }

    /// Reads every remaining byte (`raw`).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// Appends to `out` through an [`Encoder`] (the vector is moved in and out, not copied).
pub(crate) fn append(out: &mut Vec<u8>, write: impl FnOnce(&mut Encoder)) {
    let mut enc = Encoder::from_vec(std::mem::take(out));
    write(&mut enc);
    *out = enc.into_vec();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded_uint(n: u64) -> Vec<u8> {
        let mut e = Encoder::new();
        e.uint(n);
        e.into_vec()
    }

    #[test]
    fn varint_examples() {
        for (n, hex) in [
            (252u64, "fc"),
            (253, "fdfd00"),
            (65535, "fdffff"),
            (65536, "fe00000100"),
            (1 << 32, "ff0000000001000000"),
            (MAX_SAFE_INTEGER, "ffffffffffffff1f00"),
        ] {
            let out = encoded_uint(n);
            assert_eq!(hex::encode(&out), hex);
            assert_eq!(uint_len(n), out.len());
            assert_eq!(Reader::new(&out).uint(), Ok(n));
        }
        // Non-minimal forms decode.
        assert_eq!(Reader::new(&[0xfd, 5, 0]).uint(), Ok(5));
        assert_eq!(
            Reader::new(&[0xfe, 1]).uint(),
            Err(DecodeError::UnexpectedEnd)
        );
        let big = encoded_uint(MAX_SAFE_INTEGER + 1);
        assert_eq!(
            Reader::new(&big).uint(),
            Err(DecodeError::UnsafeInteger(MAX_SAFE_INTEGER + 1))
        );
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_corestore_keys(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12),
            n in 0..=MAX_SAFE_INTEGER,
        ) {
            let ours = Reader::new(&bytes).uint().ok();
            let theirs = Decoder::new(&bytes).uint().ok();
            proptest::prop_assert_eq!(ours, theirs);
            // The wire encoders write `uint`s as corestore-keys does.
            let a = crate::wire::Message::Cancel(n).encode();
            let mut e = Encoder::new();
            e.uint(n);
            proptest::prop_assert_eq!(a, e.into_vec());
        }
    }

    #[test]
    fn bounds_checked_before_allocation() {
        let out = encoded_uint(1 << 40);
        assert_eq!(
            Reader::new(&out).buffer(1024),
            Err(DecodeError::TooLarge {
                limit: 1024,
                got: 1 << 40
            })
        );
        assert_eq!(
            Reader::new(&[10]).count(100, 34),
            Err(DecodeError::UnexpectedEnd)
        );
        assert_eq!(
            Reader::new(&[2, 0xff, 0xfe]).string(10),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn failed_reads_do_not_advance() {
        let mut r = Reader::new(&[3, b'a']);
        assert_eq!(r.buffer(8), Err(DecodeError::UnexpectedEnd));
        assert_eq!(r.buffer(2), Err(DecodeError::TooLarge { limit: 2, got: 3 }));
        assert_eq!(r.remaining(), &[3, b'a']);
        assert_eq!(
            r.uint32_array(1),
            Err(DecodeError::TooLarge { limit: 1, got: 3 })
        );
        assert_eq!(r.bytes(3), Err(DecodeError::UnexpectedEnd));
        assert_eq!(r.u8(), Ok(3));
        assert_eq!(r.rest(), b"a");
        assert!(r.is_empty());
    }
}
