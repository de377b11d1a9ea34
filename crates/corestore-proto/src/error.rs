//! Errors: [`DecodeError`] (bytes that do not parse), [`ProtocolError`] (the peer misbehaved; each
//! maps to a [`CloseReason`]) and [`ApiMisuse`] (a local mistake, raised before any byte is sent).

/// Bytes that do not decode as the expected compact-encoding structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("unexpected end of input")]
    UnexpectedEnd,
    /// A message, hash or signature type this implementation does not know.
    #[error("unknown type {0}")]
    UnknownType(u64),
    /// A length or count above the bound this implementation accepts (checked before allocating).
    #[error("too large: {got} > limit {limit}")]
    TooLarge {
        /// The largest accepted value.
        limit: u64,
        /// The value found on the wire.
        got: u64,
    },
    /// A manifest version this implementation does not decode.
    #[error("unknown manifest version {0}")]
    UnknownVersion(u64),
    /// A string field that is not UTF-8.
    #[error("invalid UTF-8 in a string field")]
    InvalidUtf8,
    /// An integer above 2^53-1, which JavaScript peers cannot represent.
    #[error("integer {0} exceeds 2^53-1")]
    UnsafeInteger(u64),
    /// Any other malformed compact-encoding reported by `corestore-keys` (for example
    /// [`corestore_keys::DecodeError::TrailingBytes`]). The wire decoders of this crate do not
    /// produce it; it keeps the conversion from `corestore-keys` lossless.
    #[error(transparent)]
    Compact(corestore_keys::DecodeError),
}

/// The wire meaning of a `corestore-keys` decoding error (every primitive is parsed there).
impl From<corestore_keys::DecodeError> for DecodeError {
    fn from(e: corestore_keys::DecodeError) -> Self {
        use corestore_keys::DecodeError as E;
        use corestore_keys::compact::MAX_SAFE_INTEGER;
        match e {
            E::UnexpectedEnd { .. } => Self::UnexpectedEnd,
            // `Decoder::uint` and `Decoder::u64` reject values above 2^53 - 1 this way.
            E::TooLarge {
                limit: MAX_SAFE_INTEGER,
                got,
                ..
            } => Self::UnsafeInteger(got),
            E::TooLarge { limit, got, .. } => Self::TooLarge { limit, got },
            E::InvalidUtf8 { .. } => Self::InvalidUtf8,
            E::UnknownValue {
                what: "manifest version",
                value,
            } => Self::UnknownVersion(value),
            // Hash, signature and manifest types.
            E::UnknownValue { value, .. } => Self::UnknownType(value),
            other => Self::Compact(other),
        }
    }
}

/// The remote peer misbehaved. The stream is destroyed ([`ProtocolError::close_reason`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame longer than the configured maximum.
    #[error("frame of {got} bytes exceeds the maximum of {limit}")]
    FrameTooLarge {
        /// The configured maximum body length.
        limit: usize,
        /// The announced body length.
        got: usize,
    },
    /// A Noise handshake message had the wrong length, failed authentication or carried an
    /// invalid Ed25519 point.
    #[error("noise handshake failed: {0}")]
    Handshake(&'static str),
    /// The stream-id/header frame was malformed or carried the wrong stream id.
    #[error("invalid secret-stream header")]
    InvalidHeader,
    /// An encrypted message failed authentication or was shorter than 17 bytes.
    #[error("message decryption failed")]
    Decryption,
    /// A message could not be decoded.
    #[error("undecodable message: {0}")]
    Decode(#[from] DecodeError),
    /// An open used an id that is neither a free slot nor `max + 1` (protomux: "Invalid open
    /// message"). An open on channel id 0 is not an error: it is answered with `reject 0`.
    #[error("invalid open message for remote channel id {0}")]
    InvalidOpen(u64),
    /// The handshakes and buffered messages of remote channels not yet accepted or rejected
    /// exceeded [`MuxConfig::max_pending_bytes`](crate::mux::MuxConfig::max_pending_bytes).
    /// protomux pauses the transport instead; a sans-IO mux cannot, so to keep memory bounded
    /// the whole stream fails.
    #[error("too many bytes buffered for pending remote channel {0}")]
    PendingOverflow(u64),
    /// The remote's replication capability did not match the core key and this session.
    #[error("invalid capability for a hypercore channel")]
    InvalidCapability,
    /// The remote has more than the allowed number of requests in flight to us.
    #[error("too many inflight requests from the remote ({0})")]
    TooManyRequests(usize),
    /// The remote sent a request on our fork that no honest peer sends (an upgrade beyond our
    /// length, `nodes` reaching past the proof root, a seek that cannot be answered): the
    /// layer above reports it when its proof builder refuses the request, as hypercore 10
    /// destroys the stream when `tree.proof` throws a `HypercoreError` (spec §9.6).
    #[error("invalid request from the remote: {0}")]
    InvalidRequest(&'static str),
    /// Transport bytes were fed to a stream whose receiving half was split off
    /// ([`SecretStream::split_receiver`](crate::stream::SecretStream::split_receiver)): a
    /// caller's mistake, reported as a failure of the stream so that no bytes are dropped
    /// unnoticed.
    #[error("bytes fed to a stream whose receiver was split off")]
    ReceiverSplit,
}

/// How a stream or channel ended because of a [`ProtocolError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The whole stream is destroyed (as JavaScript peers do for every listed error).
    DestroyStream,
    /// Only the affected channel is closed. No current [`ProtocolError`] maps to it.
    CloseChannel,
}

impl ProtocolError {
    /// The close action the reference implementation takes for this error.
    ///
    /// hypercore 10 destroys the whole stream for a bad capability, an undecodable message or an
    /// invalid request; protomux destroys it for invalid opens. Pending-buffer overflow (where
    /// protomux would pause) destroys it too, to keep memory bounded: every error is
    /// [`CloseReason::DestroyStream`].
    #[must_use]
    pub fn close_reason(&self) -> CloseReason {
        CloseReason::DestroyStream
    }
}

/// A local mistake in how the API was called. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The message does not fit one frame.
    #[error("message of {got} bytes exceeds the maximum of {limit}")]
    MessageTooLarge {
        /// The largest message accepted.
        limit: usize,
        /// The message length.
        got: usize,
    },
    /// Messages cannot be sent before the handshake completed.
    #[error("the handshake is not complete")]
    NotReady,
    /// The stream or channel was already closed.
    #[error("closed")]
    Closed,
    /// The channel handle does not name a live channel.
    #[error("unknown channel")]
    UnknownChannel,
    /// A channel for this (protocol, id) is already open locally.
    #[error("a channel for this protocol and id is already open")]
    DuplicateChannel,
    /// An invalid Ed25519 key was supplied.
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    /// The request id does not name an inflight request.
    #[error("unknown request id {0}")]
    UnknownRequest(u64),
    /// The request has nothing to ask for (no block, hash, seek, upgrade or manifest).
    #[error("empty request")]
    EmptyRequest,
    /// The per-peer inflight request limit is reached; retry after a reply arrives.
    #[error("inflight request limit {0} reached")]
    TooManyRequests(usize),
    /// A block value read for `Peer::send_data_with` was not the announced length.
    #[error("block value of {got} bytes, {expected} announced")]
    ValueLength {
        /// The length announced.
        expected: usize,
        /// The length read.
        got: usize,
    },
    /// The receiving half was split off already, or the stream is not open yet.
    #[error("the receiving half is split off or not available yet")]
    NoReceiver,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_reasons() {
        assert_eq!(
            ProtocolError::InvalidCapability.close_reason(),
            CloseReason::DestroyStream
        );
        assert_eq!(
            ProtocolError::PendingOverflow(3).close_reason(),
            CloseReason::DestroyStream
        );
        let e: ProtocolError = DecodeError::UnexpectedEnd.into();
        assert_eq!(
            e.to_string(),
            "undecodable message: unexpected end of input"
        );
    }

    #[test]
    fn from_corestore_keys() {
        use corestore_keys::DecodeError as E;
        use corestore_keys::compact::{MAX_ARRAY_LEN, MAX_SAFE_INTEGER};
        let cases = [
            (
                E::UnexpectedEnd {
                    needed: 4,
                    remaining: 1,
                },
                DecodeError::UnexpectedEnd,
            ),
            (
                E::TooLarge {
                    what: "uint",
                    limit: MAX_SAFE_INTEGER,
                    got: MAX_SAFE_INTEGER + 1,
                },
                DecodeError::UnsafeInteger(MAX_SAFE_INTEGER + 1),
            ),
            (
                E::TooLarge {
                    what: "array length",
                    limit: MAX_ARRAY_LEN,
                    got: MAX_ARRAY_LEN + 1,
                },
                DecodeError::TooLarge {
                    limit: MAX_ARRAY_LEN,
                    got: MAX_ARRAY_LEN + 1,
                },
            ),
            (E::InvalidUtf8 { offset: 3 }, DecodeError::InvalidUtf8),
            (
                E::UnknownValue {
                    what: "signature type",
                    value: 1,
                },
                DecodeError::UnknownType(1),
            ),
            (
                E::UnknownValue {
                    what: "manifest version",
                    value: 9,
                },
                DecodeError::UnknownVersion(9),
            ),
            (
                E::TrailingBytes { count: 2 },
                DecodeError::Compact(E::TrailingBytes { count: 2 }),
            ),
        ];
        for (theirs, ours) in cases {
            assert_eq!(DecodeError::from(theirs), ours);
        }
    }
}
