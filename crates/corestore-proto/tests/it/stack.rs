//! Secret stream + mux end to end through the public API.

use corestore_proto::mux::{Mux, MuxEvent};
use corestore_proto::noise::KeyPair;
use corestore_proto::stream::{Randomness, SecretStream, StreamConfig, StreamEvent};
use corestore_proto::timer::Timestamp;

fn stream(initiator: bool, seed: u8) -> SecretStream {
    let random = Randomness {
        ephemeral_seed: [seed ^ 0xf0; 32],
        header: [seed; 24],
    };
    SecretStream::new(
        initiator,
        KeyPair::from_seed(&[seed; 32]),
        &random,
        StreamConfig::default(),
    )
}

#[test]
fn mux_over_secret_stream_in_odd_chunks() {
    let now = Timestamp::ZERO;
    let (mut sa, mut sb) = (stream(true, 1), stream(false, 2));
    let (mut ma, mut mb) = (Mux::default(), Mux::default());
    let ca = ma.open("test/proto", None, b"hello").unwrap();
    let mut got = Vec::new();
    for _ in 0..20 {
        while let Some(m) = ma.poll_message() {
            sa.send(&m).unwrap();
        }
        while let Some(m) = mb.poll_message() {
            sb.send(&m).unwrap();
        }
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        let _ = sa.poll_transmit(now, &mut ab);
        let _ = sb.poll_transmit(now, &mut ba);
        for c in ab.chunks(5) {
            sb.handle_bytes(now, c).unwrap();
        }
        for c in ba.chunks(11) {
            sa.handle_bytes(now, c).unwrap();
        }
        while let Some(e) = sb.poll_event() {
            if let StreamEvent::Message(m) = e {
                mb.handle_message(&m).unwrap();
            }
        }
        while let Some(e) = sa.poll_event() {
            if let StreamEvent::Message(m) = e {
                ma.handle_message(&m).unwrap();
            }
        }
        while let Some(e) = mb.poll_event() {
            if let MuxEvent::RemoteOpen { protocol, id, .. } = &e {
                let cb = mb.open(protocol, id.as_deref(), b"world").unwrap();
                mb.send(cb, 1, b"ping").unwrap();
            }
            got.push(format!("b {e:?}"));
        }
        while let Some(e) = ma.poll_event() {
            got.push(format!("a {e:?}"));
        }
    }
    assert!(ma.is_open(ca));
    assert!(
        got.iter()
            .any(|e| e.starts_with("a Message") && e.contains("message_type: 1")),
        "{got:?}"
    );
}

#[test]
fn pre_established_keys_carry_replication() {
    use corestore_proto::replicate::{CoreState, Event, PeerConfig};
    use corestore_proto::stream::EstablishedKeys;
    use corestore_proto::{Connection, ConnectionEvent};

    let hh = [3u8; 64];
    let pk = |s: u8| KeyPair::from_seed(&[s; 32]).public_key();
    let keys = |tx, rx, remote| EstablishedKeys {
        tx: [tx; 32],
        rx: [rx; 32],
        handshake_hash: hh,
        remote_public_key: remote,
    };
    let cfg = || (StreamConfig::default(), PeerConfig::default());
    let (s, p) = cfg();
    let mut a = Connection::with_keys(true, &keys(1, 2, pk(2)), [7; 24], s, p).unwrap();
    let (s, p) = cfg();
    let mut b = Connection::with_keys(false, &keys(2, 1, pk(1)), [8; 24], s, p).unwrap();
    let now = Timestamp::ZERO;
    let mut seen = Vec::new();
    for round in 0..6 {
        let (mut ab, mut ba) = (Vec::new(), Vec::new());
        while a.poll_transmit(now, &mut ab).is_some() {}
        while b.poll_transmit(now, &mut ba).is_some() {}
        b.handle_bytes(now, &ab).unwrap();
        a.handle_bytes(now, &ba).unwrap();
        while let Some(e) = a.poll_event() {
            if matches!(e, ConnectionEvent::HandshakeComplete { .. }) {
                a.peer()
                    .unwrap()
                    .open_core(
                        &[9; 32],
                        CoreState {
                            length: 1,
                            contiguous_length: 1,
                            downloading: true,
                            ..CoreState::default()
                        },
                    )
                    .unwrap();
            }
        }
        while let Some(e) = b.poll_event() {
            if let ConnectionEvent::Replication(Event::RemoteOpen { .. }) = e {
                b.peer()
                    .unwrap()
                    .open_core(
                        &[9; 32],
                        CoreState {
                            downloading: true,
                            ..CoreState::default()
                        },
                    )
                    .unwrap();
            }
            seen.push((round, e));
        }
    }
    assert!(
        seen.iter().any(|(_, e)| matches!(e, ConnectionEvent::Replication(Event::Synced { remote, .. }) if remote.length == 1)),
        "{seen:?}"
    );
}
