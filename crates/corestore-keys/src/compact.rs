//! compact-encoding, the schema-less binary format of every Hypercore structure (spec §1).
//!
//! Values are concatenated with no framing, tags or message-level length prefix. This module
//! provides an appending [`Encoder`], a zero-copy [`Decoder`] over `&[u8]`, `*_len` functions
//! that compute encoded sizes up front (the JavaScript "preencode" pass), and the [`Encode`] /
//! [`Decode`] traits that upper layers implement for their messages.
//!
//! | primitive | bytes |
//! |---|---|
//! | `uint` | `n <= 0xfc`: `n`; `<= 0xffff`: `fd` + u16; `<= 0xffff_ffff`: `fe` + u32; else `ff` + u64 (all LE) |
//! | `u8`…`u64` | fixed width, little-endian |
//! | `fixed::<N>` | exactly `N` raw bytes |
//! | `buffer` | `uint` length + bytes (an absent buffer is written as length 0) |
//! | `string` | `uint` byte length + UTF-8 |
//! | `raw` | every remaining byte (last field only) |
//! | `array` | `uint` count (at most [`MAX_ARRAY_LEN`]) + items |
//! | `uint32_array` | `uint` count of 32-bit words + `4 * count` bytes |
//! | `bool` | one byte; decodes as `byte == 1` |
//!
//! Compatibility notes (where this module and JavaScript could differ):
//! * The encoder always writes minimal varints; the decoder accepts non-minimal ones
//!   (`fd 05 00` decodes as 5), as JavaScript does.
//! * JavaScript numbers are exact only up to 2^53 − 1 ([`MAX_SAFE_INTEGER`]). compact-encoding 3
//!   rejects larger `uint64` values when decoding, and both versions refuse to encode them. The
//!   [`Decoder`] rejects them with [`DecodeError::TooLarge`] in [`Decoder::uint`] and
//!   [`Decoder::u64`]; the [`Encoder`] writes any `u64` faithfully, so callers must not encode
//!   larger values if JavaScript peers are to read them.
//! * [`Decoder::string`] rejects invalid UTF-8 ([`DecodeError::InvalidUtf8`]); JavaScript would
//!   substitute U+FFFD.
//! * Trailing bytes are not an error: hypercore messages rely on it to add optional fields.
//!   Call [`Decoder::finish`] where a caller wants exact input.

use crate::error::DecodeError;

/// The largest integer JavaScript represents exactly (`Number.MAX_SAFE_INTEGER`, 2^53 − 1).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The largest array count the JavaScript `c.array` decoder accepts.
pub const MAX_ARRAY_LEN: u64 = 0x10_0000;

/// A value with a compact encoding.
pub trait Encode {
    /// Exact number of bytes [`Encode::encode`] appends (the JavaScript "preencode" pass).
    fn encoded_len(&self) -> usize;

    /// Appends the encoding of `self` to `enc`.
    fn encode(&self, enc: &mut Encoder);

    /// Encodes `self` into a new vector of exactly [`Encode::encoded_len`] bytes.
    fn to_bytes(&self) -> Vec<u8> {
        let mut enc = Encoder::with_capacity(self.encoded_len());
        self.encode(&mut enc);
        enc.into_vec()
    }
}

/// A value that can be decoded from its compact encoding.
pub trait Decode: Sized {
    /// Decodes one value, advancing `dec` past it.
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`] for malformed or truncated input.
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError>;

    /// Decodes one value from the start of `bytes`, ignoring trailing bytes (as JavaScript's
    /// `c.decode` does).
    ///
    /// # Errors
    ///
    /// Any [`DecodeError`] for malformed or truncated input.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(&mut Decoder::new(bytes))
    }
}

/// Encoded length of a `uint` varint.
#[must_use]
pub const fn uint_len(n: u64) -> usize {
    if n <= 0xfc {
        1
    } else if n <= 0xffff {
        3
    } else if n <= 0xffff_ffff {
        5
    } else {
        9
    }
}

/// Encoded length of a `buffer` (or `string`) whose content is `byte_len` bytes.
#[must_use]
pub const fn buffer_len(byte_len: usize) -> usize {
    uint_len(byte_len as u64) + byte_len
}

/// Encoded length of a `uint32_array` of `words` words.
#[must_use]
pub const fn uint32_array_len(words: usize) -> usize {
    uint_len(words as u64) + 4 * words
}

/// Writes the minimal `uint` encoding of `n` to the start of `out` (the prefix byte and the
/// little-endian value side by side); returns its length.
fn put_uint(out: &mut [u8], n: u64) -> usize {
    let le = n.to_le_bytes();
    let (prefix, len) = if n <= 0xfc {
        // The branch guarantees `n` fits; `le[0]` avoids a cast.
        (le[0], 1)
    } else if n <= 0xffff {
        (0xfd, 3)
    } else if n <= 0xffff_ffff {
        (0xfe, 5)
    } else {
        (0xff, 9)
    };
    if let Some((first, rest)) = out.split_first_mut() {
        *first = prefix;
        let tail = rest.len().min(8);
        rest[..tail].copy_from_slice(&le[..tail]);
    }
    len
}

/// Appends compact-encoded values to a `Vec<u8>`.
///
/// Every method returns `&mut Self`, so fields can be chained:
///
/// ```
/// use corestore_keys::compact::Encoder;
///
/// let mut enc = Encoder::new();
/// enc.uint(253).buffer(b"hi").bool(true);
/// assert_eq!(enc.as_bytes(), &[0xfd, 0xfd, 0x00, 0x02, b'h', b'i', 0x01]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    #[must_use]
    pub const fn new() -> Self {
        Self { buf: Vec::new() }
    }

    /// An empty encoder with room for `capacity` bytes (use the `*_len` functions or
    /// [`Encode::encoded_len`] to size it exactly).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: Vec::with_capacity(capacity),
        }
    }

    /// An encoder that appends to the existing bytes of `buf`.
    #[must_use]
    pub const fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// The bytes written so far.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written so far (including any the encoder was created with).
    #[must_use]
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing has been written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Returns the encoded bytes.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Writes a minimal `uint` varint.
    pub fn uint(&mut self, n: u64) -> &mut Self {
        let mut word = [0u8; 9];
        let len = put_uint(&mut word, n);
        self.buf.extend_from_slice(&word[..len]);
        self
    }

    /// Writes two `uint`s and 32 fixed bytes with one copy into the buffer: the layout of a
    /// tree node (index, size, hash), the bulk of proofs and oplog entries.
    pub fn uint_uint_fixed32(&mut self, a: u64, b: u64, bytes: &[u8; 32]) -> &mut Self {
        let mut out = [0u8; 9 + 9 + 32];
        let mut len = put_uint(&mut out, a);
        len += put_uint(&mut out[len..], b);
        out[len..len + 32].copy_from_slice(bytes);
        self.buf.extend_from_slice(&out[..len + 32]);
        self
    }

    /// Writes one byte.
    pub fn u8(&mut self, n: u8) -> &mut Self {
        self.buf.push(n);
        self
    }

    /// Writes a fixed 2-byte little-endian integer.
    pub fn u16(&mut self, n: u16) -> &mut Self {
        self.buf.extend_from_slice(&n.to_le_bytes());
        self
    }

    /// Writes the low 3 bytes of `n`, little-endian (the high byte is ignored).
    pub fn u24(&mut self, n: u32) -> &mut Self {
        self.buf.extend_from_slice(&n.to_le_bytes()[..3]);
        self
    }

    /// Writes a fixed 4-byte little-endian integer.
    pub fn u32(&mut self, n: u32) -> &mut Self {
        self.buf.extend_from_slice(&n.to_le_bytes());
        self
    }

    /// Writes a fixed 8-byte little-endian integer (the `uint64` of hashes and signables).
    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.buf.extend_from_slice(&n.to_le_bytes());
        self
    }

    /// Writes `bytes` with no length prefix (`fixed32`, `fixed64`, or `raw` as last field).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Writes exactly `N` bytes with no length prefix (`fixed32` / `fixed64`).
    pub fn fixed<const N: usize>(&mut self, bytes: &[u8; N]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Writes a length-prefixed byte string.
    pub fn buffer(&mut self, bytes: &[u8]) -> &mut Self {
        self.uint(bytes.len() as u64).raw(bytes)
    }

    /// Writes an optional byte string; `None` is written as length 0 (JavaScript `null`).
    pub fn optional_buffer(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        self.buffer(bytes.unwrap_or_default())
    }

    /// Writes a length-prefixed UTF-8 string.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.buffer(s.as_bytes())
    }

    /// Writes a boolean as one byte, `1` or `0`.
    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.u8(u8::from(b))
    }

    /// Writes an array count. The caller then writes `count` items.
    pub fn array_len(&mut self, count: usize) -> &mut Self {
        self.uint(count as u64)
    }

    /// Writes an array: its count, then each item with `item`.
    pub fn array<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) -> &mut Self {
        self.array_len(items.len());
        for it in items {
            item(self, it);
        }
        self
    }

    /// Writes an array of [`Encode`] values.
    pub fn encode_array<T: Encode>(&mut self, items: &[T]) -> &mut Self {
        self.array(items, |enc, it| it.encode(enc))
    }

    /// Writes a `uint32array`: the word count, then each word little-endian.
    pub fn uint32_array(&mut self, words: &[u32]) -> &mut Self {
        self.uint(words.len() as u64);
        self.buf.reserve(4 * words.len());
        for w in words {
            self.buf.extend_from_slice(&w.to_le_bytes());
        }
        self
    }

    /// Appends the encoding of an [`Encode`] value.
    pub fn encode<T: Encode + ?Sized>(&mut self, value: &T) -> &mut Self {
        value.encode(self);
        self
    }
}

/// Reads compact-encoded values from a byte slice, tracking a position.
///
/// Borrowing methods ([`Decoder::buffer`], [`Decoder::string`], [`Decoder::raw`],
/// [`Decoder::fixed_ref`]) return slices of the input without copying. Lengths read from the
/// input are checked against the remaining bytes before anything is allocated.
///
/// ```
/// use corestore_keys::compact::Decoder;
///
/// let mut dec = Decoder::new(&[0xfd, 0x05, 0x00, 0x02, b'h', b'i', 0xaa]);
/// assert_eq!(dec.uint()?, 5); // non-minimal encodings are accepted
/// assert_eq!(dec.buffer()?, b"hi");
/// assert_eq!(dec.remaining(), 1); // trailing bytes are left for the caller
/// # Ok::<(), corestore_keys::DecodeError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder positioned at the start of `buf`.
    #[must_use]
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Current offset from the start of the input.
    #[must_use]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Number of unread bytes.
    #[must_use]
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether every byte has been read.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Succeeds only if every byte has been read.
    ///
    /// # Errors
    ///
    /// [`DecodeError::TrailingBytes`] if unread bytes remain.
    pub const fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }

    /// Takes the next `n` bytes.
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if n > remaining {
            return Err(DecodeError::UnexpectedEnd {
                needed: n as u64,
                remaining,
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Reads exactly `N` bytes as a reference into the input (no copy).
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if fewer than `N` bytes remain.
    pub fn fixed_ref<const N: usize>(&mut self) -> Result<&'a [u8; N], DecodeError> {
        let bytes = self.take(N)?;
        // `take` returned exactly N bytes, so the conversion cannot fail; map it anyway
        // rather than unwrap.
        bytes.try_into().map_err(|_| DecodeError::UnexpectedEnd {
            needed: N as u64,
            remaining: 0,
        })
    }

    /// Reads exactly `N` bytes by value (`fixed32`, `fixed64`).
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if fewer than `N` bytes remain.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        self.fixed_ref::<N>().copied()
    }

    /// Reads one byte.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] at the end of input.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.fixed::<1>()?[0])
    }

    /// Reads a fixed 2-byte little-endian integer.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if fewer than 2 bytes remain.
    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        self.fixed().map(u16::from_le_bytes)
    }

    /// Reads a fixed 3-byte little-endian integer.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if fewer than 3 bytes remain.
    pub fn u24(&mut self) -> Result<u32, DecodeError> {
        let [a, b, c] = self.fixed()?;
        Ok(u32::from_le_bytes([a, b, c, 0]))
    }

    /// Reads a fixed 4-byte little-endian integer.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if fewer than 4 bytes remain.
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.fixed().map(u32::from_le_bytes)
    }

    /// Reads a fixed 8-byte little-endian integer, rejecting values above
    /// [`MAX_SAFE_INTEGER`] as compact-encoding 3 does.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if fewer than 8 bytes remain, [`DecodeError::TooLarge`]
    /// above 2^53 − 1.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        let n = u64::from_le_bytes(self.fixed()?);
        check_safe("uint64", n)
    }

    /// Reads a `uint` varint (minimal or not), rejecting values above [`MAX_SAFE_INTEGER`].
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] on truncated input, [`DecodeError::TooLarge`] above
    /// 2^53 − 1.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        match self.u8()? {
            0xfd => self.u16().map(u64::from),
            0xfe => self.u32().map(u64::from),
            0xff => {
                let n = u64::from_le_bytes(self.fixed()?);
                check_safe("uint", n)
            }
            small => Ok(u64::from(small)),
        }
    }

    /// Reads a `uint` length and checks that `unit * length` bytes remain.
    fn length(&mut self, unit: u64) -> Result<usize, DecodeError> {
        let len = self.uint()?;
        let remaining = self.remaining();
        let needed = len.saturating_mul(unit);
        if needed > remaining as u64 {
            return Err(DecodeError::UnexpectedEnd { needed, remaining });
        }
        // `len * unit <= remaining <= usize::MAX`, so `len` fits in usize.
        usize::try_from(len).map_err(|_| DecodeError::UnexpectedEnd { needed, remaining })
    }

    /// Reads a length-prefixed byte string (length 0 is an empty slice, JavaScript's `null`).
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if the length exceeds the remaining input.
    pub fn buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.length(1)?;
        self.take(len)
    }

    /// Reads a length-prefixed byte string, mapping length 0 to `None` (compact-encoding 2's
    /// `buffer` decoding).
    ///
    /// # Errors
    ///
    /// As [`Decoder::buffer`].
    pub fn optional_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let b = self.buffer()?;
        Ok(if b.is_empty() { None } else { Some(b) })
    }

    /// Reads a length-prefixed UTF-8 string.
    ///
    /// # Errors
    ///
    /// As [`Decoder::buffer`], plus [`DecodeError::InvalidUtf8`].
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        let bytes = self.buffer()?;
        let offset = self.pos - bytes.len();
        std::str::from_utf8(bytes).map_err(|e| DecodeError::InvalidUtf8 {
            offset: offset + e.valid_up_to(),
        })
    }

    /// Reads every remaining byte.
    pub fn raw(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    /// Reads a boolean: one byte, `true` iff it equals 1 (as JavaScript does).
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] at the end of input.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.u8()? == 1)
    }

    /// Reads an array count, rejecting counts above [`MAX_ARRAY_LEN`] like JavaScript, and
    /// counts larger than the remaining bytes (every item takes at least one byte).
    ///
    /// # Errors
    ///
    /// [`DecodeError::TooLarge`] above `0x100000`, [`DecodeError::UnexpectedEnd`] if fewer
    /// than `count` bytes remain.
    pub fn array_len(&mut self) -> Result<usize, DecodeError> {
        let count = self.uint()?;
        if count > MAX_ARRAY_LEN {
            return Err(DecodeError::TooLarge {
                what: "array length",
                limit: MAX_ARRAY_LEN,
                got: count,
            });
        }
        let remaining = self.remaining();
        if count > remaining as u64 {
            return Err(DecodeError::UnexpectedEnd {
                needed: count,
                remaining,
            });
        }
        usize::try_from(count).map_err(|_| DecodeError::UnexpectedEnd {
            needed: count,
            remaining,
        })
    }

    /// Reads an array, decoding each item with `item`.
    ///
    /// # Errors
    ///
    /// As [`Decoder::array_len`], plus any error from `item`.
    pub fn array<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let count = self.array_len()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Reads an array of [`Decode`] values.
    ///
    /// # Errors
    ///
    /// As [`Decoder::array`].
    pub fn decode_array<T: Decode>(&mut self) -> Result<Vec<T>, DecodeError> {
        self.array(T::decode)
    }

    /// Reads a `uint32array` without copying: returns its `4 * count` bytes.
    ///
    /// # Errors
    ///
    /// [`DecodeError::UnexpectedEnd`] if fewer than `4 * count` bytes remain.
    pub fn uint32_array_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let words = self.length(4)?;
        self.take(words * 4)
    }

    /// Reads a `uint32array` into a vector of words.
    ///
    /// # Errors
    ///
    /// As [`Decoder::uint32_array_bytes`].
    pub fn uint32_array(&mut self) -> Result<Vec<u32>, DecodeError> {
        let bytes = self.uint32_array_bytes()?;
        Ok(bytes
            .chunks_exact(4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .collect())
    }

    /// Decodes one [`Decode`] value.
    ///
    /// # Errors
    ///
    /// Whatever `T::decode` returns.
    pub fn decode<T: Decode>(&mut self) -> Result<T, DecodeError> {
        T::decode(self)
    }
}

const fn check_safe(what: &'static str, n: u64) -> Result<u64, DecodeError> {
    if n > MAX_SAFE_INTEGER {
        Err(DecodeError::TooLarge {
            what,
            limit: MAX_SAFE_INTEGER,
            got: n,
        })
    } else {
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
