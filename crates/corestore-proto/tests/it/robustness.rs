//! Arbitrary peer bytes never panic any layer; failures are typed and sticky.

use corestore_proto::Timestamp;
use corestore_proto::mux::Mux;
use corestore_proto::noise::KeyPair;
use corestore_proto::replicate::{CoreState, Event, Peer, PeerConfig, Session};
use corestore_proto::stream::{Randomness, SecretStream, StreamConfig};
use proptest::prelude::*;

fn responder() -> SecretStream {
    let random = Randomness {
        ephemeral_seed: [4; 32],
        header: [4; 24],
    };
    SecretStream::new(
        false,
        KeyPair::from_seed(&[2; 32]),
        &random,
        StreamConfig::default(),
    )
}

/// A responder whose core channel is open with a valid remote (the initiator's messages
/// delivered), so garbage reaches the replication state machine.
fn peer() -> Peer {
    let session = |initiator| Session {
        initiator,
        handshake_hash: [1; 64],
        remote_public_key: [0; 32],
    };
    let state = CoreState {
        length: 5,
        contiguous_length: 5,
        downloading: true,
        ..CoreState::default()
    };
    let mut remote = Peer::new(session(true), PeerConfig::default());
    let mut p = Peer::new(session(false), PeerConfig::default());
    remote.open_core(&[7; 32], state).unwrap();
    p.open_core(&[7; 32], state).unwrap();
    while let Some(m) = remote.poll_message() {
        p.handle_message(Timestamp::ZERO, &m).unwrap();
    }
    assert!(std::iter::from_fn(|| p.poll_event()).any(|e| matches!(e, Event::CoreOpened { .. })));
    p
}

/// Messages that look like protomux frames: small channel ids and types, random payloads.
fn framed() -> impl Strategy<Value = Vec<u8>> {
    (0u8..3, 0u8..11, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(ch, ty, payload)| {
        let mut m = vec![ch, ty];
        m.extend(payload);
        m
    })
}

proptest! {
    #[test]
    fn secret_stream_survives_garbage(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..6)) {
        let mut s = responder();
        let mut failed = false;
        for c in &chunks {
            match s.handle_bytes(Timestamp::ZERO, c) {
                Ok(()) => prop_assert!(!failed, "a failed stream stays failed"),
                Err(_) => failed = true,
            }
        }
        let mut out = Vec::new();
        let _ = s.poll_transmit(Timestamp::ZERO, &mut out);
        while s.poll_event().is_some() {}
    }

    #[test]
    fn mux_survives_garbage(msgs in prop::collection::vec(prop_oneof![framed(), prop::collection::vec(any::<u8>(), 0..64)], 0..12)) {
        let mut m = Mux::default();
        let _ = m.open("hypercore/alpha", Some(&[1; 32]), &[0; 33]);
        for msg in &msgs {
            if m.handle_message(msg).is_err() {
                break;
            }
        }
        while m.poll_event().is_some() {}
        while m.poll_message().is_some() {}
    }

    #[test]
    fn peer_survives_garbage(msgs in prop::collection::vec(framed(), 0..16)) {
        let mut p = peer();
        for msg in &msgs {
            let _ = p.handle_message(Timestamp::ZERO, msg);
        }
        while p.poll_event().is_some() {}
        while p.poll_message().is_some() {}
        p.handle_timeout(Timestamp::ZERO + std::time::Duration::from_secs(3600));
    }
}
