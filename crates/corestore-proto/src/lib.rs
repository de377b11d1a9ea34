//! The Hypercore 10/11 wire protocol as a sans-IO state machine: bytes and time in; bytes,
//! timers and events out.
//!
//! A Rust peer built on this crate speaks exactly what a JavaScript peer
//! (`@hyperswarm/secret-stream` + `protomux` + hypercore's replicator) speaks: the u24-framed
//! Noise XX handshake over Ed25519 keys, the stream-id/header exchange, libsodium secretstream
//! encryption, protomux channels and batches, and every `hypercore/alpha` message.
//!
//! This crate contains **no networking, no storage and no clock**. It never spawns, never
//! reads `now` (time is an argument, see [`Timestamp`]) and never draws randomness (ephemeral
//! keys and headers are caller-supplied, see [`stream::Randomness`]). The `corestore` facade
//! drives it over a real transport and answers its events from `hypercore-lite`.
//!
//! # Goals
//!
//! - **Integrity first.** Peer bytes never panic the process: every input is a typed
//!   [`DecodeError`] or [`ProtocolError`], and each protocol error says how the stream ends
//!   ([`ProtocolError::close_reason`]). A wrong replication capability destroys the stream.
//! - **Bounded memory per peer.** Frame sizes, array counts, proof node counts, block sizes,
//!   buffered messages of pending channels and remote inflight requests are all capped before
//!   anything is allocated.
//! - **Byte-for-byte compatibility**, pinned by the vectors of the specification: the Noise
//!   vector, the secretstream vector and the traced replication session decode and re-encode
//!   identically.
//!
//! # Non-goals
//!
//! Discovery (hyperswarm, DHT), transports (TCP, UDX), storage and proof verification (the
//! layer above verifies the plain proof structs of [`wire`]).
//!
//! # Layers and key types
//!
//! - [`stream::SecretStream`]: transport bytes ↔ messages (framing, Noise, secretstream,
//!   keep-alive). Built with [`SecretStream::new`](stream::SecretStream::new) (Noise XX) or
//!   [`SecretStream::with_keys`](stream::SecretStream::with_keys) (keys from elsewhere).
//! - [`mux::Mux`]: messages ↔ channels (protomux).
//! - [`replicate::Peer`]: hypercore replication over a mux. Used directly in "plain" mode
//!   when the transport already gives message boundaries and encryption.
//! - [`Connection`]: a secret stream with a peer on top; what a driver usually holds.
//! - [`wire::Message`]: the ten hypercore messages.
//! - [`buffer::MessageBuf`]: an outgoing message with room around it for its encryption, so
//!   it is encrypted where it was encoded.
//!
//! # Polling order
//!
//! Every state machine has the same shape (as quinn-proto's `Connection`). A driver:
//!
//! 1. feeds input with `handle_bytes(now, bytes)` (or `handle_message` in plain mode), and calls
//!    `handle_timeout(now)` when the deadline from `poll_timeout()` has passed;
//! 2. drains `poll_event()` until `None`, and issues commands in response (`open_core`,
//!    `request`, `send_data`, …);
//! 3. drains `poll_transmit(now, &mut buf)` until `None` and writes `buf` to the transport
//!    (commands in step 2 queue output, so transmit after handling events). A driver that passes
//!    an empty `buf` to every call gets each large message in the buffer it was encoded and
//!    encrypted in (no copy), and hands it back with `Connection::recycle` once written;
//! 4. sleeps until `poll_timeout()` or until more input arrives, then starts again.
//!
//! # Example
//!
//! Two in-memory connections complete the handshake by shuttling bytes:
//!
//! ```
//! use corestore_proto::{Connection, ConnectionEvent, Timestamp};
//! use corestore_proto::noise::KeyPair;
//! use corestore_proto::replicate::PeerConfig;
//! use corestore_proto::stream::{Randomness, StreamConfig};
//!
//! let conn = |initiator: bool, seed: u8| {
//!     // Real drivers fill `Randomness` from the OS RNG for every connection.
//!     let random = Randomness { ephemeral_seed: [seed + 10; 32], header: [seed; 24] };
//!     let keypair = KeyPair::from_seed(&[seed; 32]);
//!     Connection::new(initiator, keypair, &random, StreamConfig::default(), PeerConfig::default())
//! };
//! let (mut a, mut b) = (conn(true, 1), conn(false, 2));
//! let now = Timestamp::ZERO;
//! for _ in 0..4 {
//!     let (mut ab, mut ba) = (Vec::new(), Vec::new());
//!     while a.poll_transmit(now, &mut ab).is_some() {}
//!     while b.poll_transmit(now, &mut ba).is_some() {}
//!     b.handle_bytes(now, &ab)?;
//!     a.handle_bytes(now, &ba)?;
//! }
//! let Some(ConnectionEvent::HandshakeComplete { handshake_hash: ha, .. }) = a.poll_event() else {
//!     panic!("no handshake");
//! };
//! let Some(ConnectionEvent::HandshakeComplete { handshake_hash: hb, .. }) = b.poll_event() else {
//!     panic!("no handshake");
//! };
//! assert_eq!(ha, hb);
//! assert!(a.peer().is_some());
//! # Ok::<(), corestore_proto::ProtocolError>(())
//! ```
//!
//! # Crate features
//!
//! None. The crate has no optional parts and no default features.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod buffer;
pub mod codec;
mod connection;
pub mod error;
pub mod frame;
pub mod idhash;
pub mod mux;
pub mod noise;
pub mod replicate;
pub mod secretstream;
pub mod stream;
pub mod timer;
pub mod wire;

#[cfg(test)]
mod tests;

pub use connection::{Connection, ConnectionEvent};
pub use error::{ApiMisuse, CloseReason, DecodeError, ProtocolError};
pub use timer::Timestamp;
