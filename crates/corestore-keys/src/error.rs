//! Error types of this crate.
//!
//! * [`DecodeError`]: malformed compact-encoded input (wire messages, oplog entries, manifests,
//!   signature containers). Always caused by the data, never by the caller.
//! * [`ParseKeyError`]: a textual or byte key (hex, z-base-32, `pear://`) that could not be parsed.
//! * [`Error`](enum@Error): everything else (lengths, signatures, manifests, randomness), with `#[from]`
//!   conversions from the two above.

use thiserror::Error;

/// A compact-encoded value could not be decoded.
///
/// Decoders never read past the end of their input and never allocate more than the input could
/// possibly describe; every failure is reported through this type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the value was complete.
    #[error("unexpected end of input: needed {needed} more bytes, {remaining} remaining")]
    UnexpectedEnd {
        /// How many bytes the value needed.
        needed: u64,
        /// How many bytes were left in the input.
        remaining: usize,
    },
    /// A number was larger than the format allows (for example a varint above 2^53 − 1, which
    /// JavaScript's compact-encoding 3 rejects, or an array count above `0x100000`).
    #[error("{what} too large: limit {limit}, got {got}")]
    TooLarge {
        /// What was being decoded.
        what: &'static str,
        /// The largest accepted value.
        limit: u64,
        /// The value found in the input.
        got: u64,
    },
    /// A string field did not hold valid UTF-8.
    #[error("invalid UTF-8 in string field at byte offset {offset}")]
    InvalidUtf8 {
        /// Offset of the string's first byte in the decoder input.
        offset: usize,
    },
    /// An enumerated field held a value that this implementation (and the JavaScript reference)
    /// does not know, such as manifest version 2 or hash type 1.
    #[error("unknown {what}: {value}")]
    UnknownValue {
        /// Which field held the value.
        what: &'static str,
        /// The value found in the input.
        value: u64,
    },
    /// [`crate::compact::Decoder::finish`] found bytes after the last field.
    #[error("{count} trailing bytes after the last field")]
    TrailingBytes {
        /// How many bytes were left.
        count: usize,
    },
}

/// Which textual encoding a key was being parsed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyEncoding {
    /// 64 hexadecimal characters, either case.
    Hex,
    /// 52 z-base-32 characters (lowercase alphabet `ybndrfg8ejkmcpqxot1uwisza345h769`).
    Z32,
}

impl std::fmt::Display for KeyEncoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Hex => "hex",
            Self::Z32 => "z-base-32",
        })
    }
}

/// A key given as text or bytes could not be parsed (see [`crate::id::parse_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseKeyError {
    /// A textual key had the wrong number of characters (for [`crate::id::parse_key`]:
    /// neither 52 for z-base-32 nor 64 for hex).
    #[error("invalid key length: expected {expected}, got {got} characters")]
    WrongLength {
        /// What was expected, for example `"52 z-base-32 or 64 hex characters"`.
        expected: &'static str,
        /// Number of characters found (after stripping a `pear://` prefix).
        got: usize,
    },
    /// A byte key was not exactly 32 bytes long.
    #[error("invalid key length: expected 32 bytes, got {got} bytes")]
    WrongByteLength {
        /// Number of bytes given.
        got: usize,
    },
    /// A character outside the alphabet of the encoding.
    #[error("invalid {encoding} character {character:?} at position {position}")]
    InvalidCharacter {
        /// The offending character.
        character: char,
        /// Its position, in characters, within the key part of the input.
        position: usize,
        /// The encoding the input was parsed as.
        encoding: KeyEncoding,
    },
}

/// The general error type of this crate.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A byte string had the wrong length.
    #[error("invalid {what} length: expected {expected} bytes, got {got}")]
    InvalidLength {
        /// What the bytes were meant to be.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A signature did not verify, or a signature container did not meet the manifest's quorum.
    #[error("bad signature")]
    BadSignature,
    /// A 64-byte secret key whose second half is not the public key of its first half.
    #[error("secret key does not match its public key")]
    KeyPairMismatch,
    /// A `primary-key` file shorter than 32 bytes.
    #[error("primary key file too short: expected at least 32 bytes, got {got}")]
    PrimaryKeyTooShort {
        /// The file's length.
        got: usize,
    },
    /// A manifest that cannot be used for the requested operation (for example a compat key
    /// for a manifest without signers).
    #[error("invalid manifest: {0}")]
    InvalidManifest(&'static str),
    /// A non-compat manifest whose hash is not the core key.
    #[error("manifest hash does not match the core key")]
    ManifestKeyMismatch,
    /// The key pair given for signing is not one of the manifest's signers.
    #[error("public key is not a declared signer of the manifest")]
    NotASigner,
    /// A valid input that this implementation does not support (documented where returned).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// Malformed compact-encoded input.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A key that could not be parsed.
    #[error(transparent)]
    ParseKey(#[from] ParseKeyError),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(getrandom::Error),
}
