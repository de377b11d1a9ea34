//! `corestore_proto::stream::SecretStream` and `Connection` as the Noise XX responder (fixed
//! static key pair, fixed ephemeral seed and header), fed arbitrary bytes.
//!
//! Input: `mode || rest`.
//!
//! * `mode % 4 == 0` (raw): `rest` goes to a responder `SecretStream` in chunks of
//!   `rest[0]`-seeded sizes. The responder must fail with a typed error or wait for more; it can
//!   never complete a handshake with garbage.
//! * otherwise (honest initiator): an honest initiator `SecretStream` (also fixed keys) runs the
//!   handshake against the responder, and `rest` is a tape of records `op || u8 len ||
//!   bytes[len]` that tamper with the initiator → responder bytes: deliver, flip bits, drop,
//!   inject, or have the initiator send a message. Responder → initiator bytes are delivered
//!   faithfully. With `mode % 4 == 3` the responder is a whole `Connection` (secret stream plus
//!   replication peer), so delivered messages reach protomux and the peer as well.
//!
//! Invariants: no panic; once the stream failed it stays failed; a completed handshake names the
//! initiator's static key and the same handshake hash on both sides; the messages the responder
//! `SecretStream` delivers are always a prefix of what the initiator sent (no tampered, dropped,
//! injected or reordered message is ever accepted).

#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use corestore_proto::noise::KeyPair;
use corestore_proto::replicate::PeerConfig;
use corestore_proto::stream::{Randomness, SecretStream, StreamConfig, StreamEvent};
use corestore_proto::{Connection, ConnectionEvent, Timestamp};
use libfuzzer_sys::fuzz_target;

const INITIATOR_SEED: [u8; 32] = [1; 32];
const RESPONDER_SEED: [u8; 32] = [2; 32];

fn random(seed: u8) -> Randomness {
    Randomness {
        ephemeral_seed: [seed.wrapping_add(10); 32],
        header: [seed; 24],
    }
}

/// A static key pair, derived once per process (the derivation is a scalar multiplication).
fn keypair(seed: &[u8; 32]) -> KeyPair {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    let (i, r) = KEYS.get_or_init(|| {
        (
            KeyPair::from_seed(&INITIATOR_SEED),
            KeyPair::from_seed(&RESPONDER_SEED),
        )
    });
    if *seed == INITIATOR_SEED {
        i.clone()
    } else {
        r.clone()
    }
}

fn initiator() -> SecretStream {
    SecretStream::new(
        true,
        keypair(&INITIATOR_SEED),
        &random(1),
        StreamConfig::default(),
    )
}

fn responder_stream() -> SecretStream {
    SecretStream::new(
        false,
        keypair(&RESPONDER_SEED),
        &random(2),
        StreamConfig::default(),
    )
}

fn responder_connection() -> Connection {
    let keypair = keypair(&RESPONDER_SEED);
    Connection::new(
        false,
        keypair,
        &random(2),
        StreamConfig::default(),
        PeerConfig::default(),
    )
}

/// The responder under test: a bare secret stream or a whole connection.
enum Responder {
    Stream(Box<SecretStream>),
    Connection(Box<Connection>),
}

/// What the responder reported so far.
#[derive(Default)]
struct Seen {
    failed: bool,
    handshake: Option<([u8; 32], [u8; 64])>,
    messages: Vec<Vec<u8>>,
}

impl Responder {
    fn handle_bytes(&mut self, now: Timestamp, bytes: &[u8], seen: &mut Seen) {
        let r = match self {
            Self::Stream(s) => s.handle_bytes(now, bytes),
            Self::Connection(c) => c.handle_bytes(now, bytes),
        };
        if let Self::Stream(_) = self {
            // The secret stream's failures are sticky.
            if seen.failed {
                assert!(r.is_err(), "a failed secret stream accepted bytes again");
            }
        }
        if r.is_err() {
            seen.failed = true;
        }
        self.drain(seen);
    }

    fn drain(&mut self, seen: &mut Seen) {
        match self {
            Self::Stream(s) => {
                while let Some(e) = s.poll_event() {
                    match e {
                        StreamEvent::HandshakeComplete {
                            remote_public_key,
                            handshake_hash,
                            ..
                        } => {
                            assert!(seen.handshake.is_none(), "two handshakes completed");
                            seen.handshake = Some((remote_public_key, handshake_hash));
                        }
                        StreamEvent::Message(m) => {
                            assert!(seen.handshake.is_some(), "message before the handshake");
                            seen.messages.push(m.to_vec());
                        }
                        StreamEvent::Closed(_) => seen.failed = true,
                        _ => {}
                    }
                }
            }
            Self::Connection(c) => {
                while let Some(e) = c.poll_event() {
                    if let ConnectionEvent::HandshakeComplete {
                        remote_public_key,
                        handshake_hash,
                        ..
                    } = e
                    {
                        assert!(seen.handshake.is_none(), "two handshakes completed");
                        seen.handshake = Some((remote_public_key, handshake_hash));
                    }
                }
            }
        }
    }

    fn poll_transmit(&mut self, now: Timestamp, out: &mut Vec<u8>) {
        match self {
            Self::Stream(s) => while s.poll_transmit(now, out).is_some() {},
            Self::Connection(c) => while c.poll_transmit(now, out).is_some() {},
        }
    }

    fn handle_timeout(&mut self, now: Timestamp, seen: &mut Seen) {
        match self {
            Self::Stream(s) => s.handle_timeout(now),
            Self::Connection(c) => c.handle_timeout(now),
        }
        self.drain(seen);
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    match mode % 4 {
        0 => raw(rest),
        3 => honest(
            Responder::Connection(Box::new(responder_connection())),
            rest,
        ),
        _ => honest(Responder::Stream(Box::new(responder_stream())), rest),
    }
});

fn raw(rest: &[u8]) {
    let Some((&seed, mut bytes)) = rest.split_first() else {
        return;
    };
    let mut responder = Responder::Stream(Box::new(responder_stream()));
    let mut seen = Seen::default();
    let mut state = u32::from(seed) | 1;
    let now = Timestamp::ZERO;
    while !bytes.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let (chunk, tail) = bytes.split_at(((state % 200) as usize).min(bytes.len()));
        bytes = tail;
        responder.handle_bytes(now, chunk, &mut seen);
        let mut out = Vec::new();
        responder.poll_transmit(now, &mut out);
    }
    // Noise message 3 authenticates the initiator: garbage cannot get past it.
    assert!(seen.handshake.is_none(), "handshake completed with garbage");
}

fn honest(mut responder: Responder, mut tape: &[u8]) {
    let mut init = initiator();
    let mut seen = Seen::default();
    let mut now = Timestamp::ZERO;
    // Initiator → responder bytes not delivered yet, and the non-empty messages it sent.
    let mut wire = Vec::new();
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut tampered = false;
    let mut init_hash = None;
    // The initiator can fail too (its handshake timer), dropping what it queued.
    let mut init_failed = false;

    while let [op, len, tail @ ..] = tape {
        let len = usize::from(*len).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        tape = tail;
        while init.poll_transmit(now, &mut wire).is_some() {}
        let b = |i: usize| bytes.get(i).copied().unwrap_or(0);
        match op % 8 {
            // Deliver up to `256 * b0 + b1 + 1` bytes (0 means everything pending).
            0..=2 => {
                let n = match bytes {
                    [] => wire.len(),
                    _ => (usize::from(b(0)) << 8 | usize::from(b(1))) + 1,
                };
                let chunk: Vec<u8> = wire.drain(..n.min(wire.len())).collect();
                responder.handle_bytes(now, &chunk, &mut seen);
            }
            // Flip bits of a pending byte.
            3 => {
                if !wire.is_empty() && b(2) != 0 {
                    let at = (usize::from(b(0)) << 8 | usize::from(b(1))) % wire.len();
                    wire[at] ^= b(2);
                    tampered = true;
                }
            }
            // Drop pending bytes.
            4 => {
                let n = usize::from(b(0)).min(wire.len());
                if n > 0 {
                    wire.drain(..n);
                    tampered = true;
                }
            }
            // Inject bytes the initiator never sent.
            5 => {
                if !bytes.is_empty() {
                    responder.handle_bytes(now, bytes, &mut seen);
                    tampered = true;
                }
            }
            // The initiator sends a message (queued until its handshake is done).
            6 => {
                if init.send(bytes).is_ok() && !bytes.is_empty() {
                    sent.push(bytes.to_vec());
                }
            }
            // Time passes.
            _ => {
                now = now + Duration::from_millis(u64::from(b(0)) * 250);
                init.handle_timeout(now);
                responder.handle_timeout(now, &mut seen);
            }
        }
        // Responder → initiator is faithful.
        let mut back = Vec::new();
        responder.poll_transmit(now, &mut back);
        if !back.is_empty() {
            let _ = init.handle_bytes(now, &back);
        }
        init_events(&mut init, &mut init_hash, &mut init_failed);
        check(&seen, &sent, init_hash);
    }
    // Untouched traffic, all delivered, completes the handshake and carries every message.
    if !tampered && !init_failed && !seen.failed && matches!(responder, Responder::Stream(_)) {
        for _ in 0..3 {
            while init.poll_transmit(now, &mut wire).is_some() {}
            let chunk = std::mem::take(&mut wire);
            responder.handle_bytes(now, &chunk, &mut seen);
            let mut back = Vec::new();
            responder.poll_transmit(now, &mut back);
            let _ = init.handle_bytes(now, &back);
            init_events(&mut init, &mut init_hash, &mut init_failed);
        }
        check(&seen, &sent, init_hash);
        if !seen.failed && !init_failed {
            assert!(
                seen.handshake.is_some(),
                "an untampered handshake did not complete"
            );
            assert_eq!(seen.messages, sent, "untampered messages were lost");
        }
    }
}

fn init_events(init: &mut SecretStream, hash: &mut Option<[u8; 64]>, failed: &mut bool) {
    while let Some(e) = init.poll_event() {
        match e {
            StreamEvent::HandshakeComplete { handshake_hash, .. } => *hash = Some(handshake_hash),
            StreamEvent::Closed(_) => *failed = true,
            _ => {}
        }
    }
}

fn check(seen: &Seen, sent: &[Vec<u8>], init_hash: Option<[u8; 64]>) {
    if let Some((remote_key, hash)) = seen.handshake {
        assert_eq!(
            remote_key,
            keypair(&INITIATOR_SEED).public_key(),
            "wrong remote key"
        );
        if let Some(h) = init_hash {
            assert_eq!(hash, h, "handshake hashes differ");
        }
    }
    assert!(
        seen.messages.len() <= sent.len(),
        "more messages delivered than sent"
    );
    assert_eq!(
        seen.messages.as_slice(),
        &sent[..seen.messages.len()],
        "a message was altered"
    );
}
