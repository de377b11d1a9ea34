//! Compact-encoding primitives (spec §1) as used on the wire: a bounded [`Reader`] and
//! append-only writers on `Vec<u8>`.
//!
//! `corestore-keys` owns the workspace's general compact-encoding primitives; this module keeps
//! the small wire-side subset with the protocol's own bounds (every length and count is checked
//! against a limit *before* anything is allocated) and typed [`DecodeError`]s. Decoders accept
//! non-minimal varints, encoders always write the minimal form, and message decoders ignore
//! trailing bytes (newer peers append optional fields, §10.1).

use crate::error::DecodeError;

/// The largest integer a JavaScript peer can represent exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The array count limit compact-encoding itself enforces (`array(enc)` throws above it).
pub const MAX_ARRAY_LEN: u64 = 0x10_0000;

/// A cursor over a byte slice that never reads past its end.
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

    /// Reads `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::UnexpectedEnd);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Reads exactly `N` raw bytes (`fixed32`, `fixed64`).
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    /// Reads a compact-encoding `uint` (varint with `0xfd`/`0xfe`/`0xff` prefixes).
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        let first = self.u8()?;
        let v = match first {
            0xfd => u64::from(u16::from_le_bytes(self.fixed()?)),
            0xfe => u64::from(u32::from_le_bytes(self.fixed()?)),
            0xff => u64::from_le_bytes(self.fixed()?),
            n => u64::from(n),
        };
        if v > MAX_SAFE_INTEGER {
            return Err(DecodeError::UnsafeInteger(v));
        }
        Ok(v)
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
        let len = self.bounded(limit as u64)?;
        // `len <= limit`, which is a usize.
        self.bytes(usize::try_from(len).map_err(|_| DecodeError::UnexpectedEnd)?)
    }

    /// Reads a length-prefixed UTF-8 `string` of at most `limit` bytes.
    pub fn string(&mut self, limit: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.buffer(limit)?).map_err(|_| DecodeError::InvalidUtf8)
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

    /// Reads every remaining byte (`raw`).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }
}

/// Appends a compact-encoding `uint` in its minimal form.
pub fn put_uint(out: &mut Vec<u8>, n: u64) {
    if n <= 0xfc {
        out.push(n as u8);
    } else if let Ok(v) = u16::try_from(n) {
        out.push(0xfd);
        out.extend_from_slice(&v.to_le_bytes());
    } else if let Ok(v) = u32::try_from(n) {
        out.push(0xfe);
        out.extend_from_slice(&v.to_le_bytes());
    } else {
        out.push(0xff);
        out.extend_from_slice(&n.to_le_bytes());
    }
}

/// Appends a length-prefixed `buffer`.
pub fn put_buffer(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The encoded length of a `uint`.
#[must_use]
pub fn uint_len(n: u64) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let mut out = Vec::new();
            put_uint(&mut out, n);
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
        let mut big = Vec::new();
        put_uint(&mut big, MAX_SAFE_INTEGER + 1);
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
            let theirs = corestore_keys::compact::Decoder::new(&bytes).uint().ok();
            proptest::prop_assert_eq!(ours, theirs);
            let mut a = Vec::new();
            put_uint(&mut a, n);
            let mut e = corestore_keys::compact::Encoder::new();
            e.uint(n);
            proptest::prop_assert_eq!(a, e.into_vec());
        }
    }

    #[test]
    fn bounds_checked_before_allocation() {
        let mut out = Vec::new();
        put_uint(&mut out, 1 << 40);
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
}
