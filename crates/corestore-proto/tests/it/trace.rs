//! The §9.11 replication trace between two JavaScript stores: every frame decodes and is
//! re-produced byte for byte by our mux and message encoders.

use corestore_proto::mux::{Mux, MuxEvent};
use corestore_proto::wire::{self, Handshake, Message};
use serde::Deserialize;

#[derive(Deserialize)]
struct Trace {
    key: String,
    discovery_key: String,
    handshake_hash: String,
    capability_initiator: String,
    capability_responder: String,
    frames: Vec<Frame>,
}

#[derive(Deserialize)]
struct Frame {
    from: String,
    note: String,
    hex: String,
}

fn arr<const N: usize>(s: &str) -> [u8; N] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn load() -> Trace {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/vectors/replication-trace.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn events(m: &mut Mux) -> Vec<MuxEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

#[test]
fn traced_session_decodes_and_reencodes_byte_for_byte() {
    let t = load();
    let key: [u8; 32] = arr(&t.key);
    let dk: [u8; 32] = arr(&t.discovery_key);
    let hh: [u8; 64] = arr(&t.handshake_hash);
    let cap_i = wire::capability(&hh, true, &key);
    let cap_r = wire::capability(&hh, false, &key);
    assert_eq!(hex::encode(cap_i), t.capability_initiator);
    assert_eq!(hex::encode(cap_r), t.capability_responder);

    let frames: Vec<Vec<u8>> = t
        .frames
        .iter()
        .map(|f| hex::decode(&f.hex).unwrap())
        .collect();
    let (mut a, mut b) = (Mux::default(), Mux::default());

    // Frame 0: A opens corked.
    let mut hs = Vec::new();
    Handshake {
        seeks: true,
        capability: cap_i,
    }
    .encode(&mut hs);
    a.cork();
    let ca = a.open(wire::PROTOCOL, Some(&dk), &hs).unwrap();
    a.uncork();
    assert_eq!(a.poll_message().unwrap(), frames[0], "{}", t.frames[0].note);
    b.handle_message(&frames[0]).unwrap();
    assert!(matches!(
        events(&mut b).as_slice(),
        [MuxEvent::RemoteOpen { .. }]
    ));

    // Frame 1: B accepts with its own open (not batched).
    let mut hs = Vec::new();
    Handshake {
        seeks: true,
        capability: cap_r,
    }
    .encode(&mut hs);
    let cb = b.open(wire::PROTOCOL, Some(&dk), &hs).unwrap();
    assert_eq!(b.poll_message().unwrap(), frames[1]);
    let ev = events(&mut b);
    let [MuxEvent::Opened { handshake, .. }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(Handshake::decode(handshake).unwrap().capability, cap_i);
    a.handle_message(&frames[1]).unwrap();
    let ev = events(&mut a);
    let [MuxEvent::Opened { handshake, .. }] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!(Handshake::decode(handshake).unwrap().capability, cap_r);

    // The rest: decode at the receiver, re-send from the sender, compare bytes.
    for (f, bytes) in t.frames.iter().zip(&frames).skip(2) {
        let (tx, rx, ch) = if f.from == "A" {
            (&mut a, &mut b, ca)
        } else {
            (&mut b, &mut a, cb)
        };
        rx.handle_message(bytes).unwrap();
        let batched = bytes.starts_with(&[0, 0]);
        if batched {
            tx.cork();
        }
        for e in events(rx) {
            let MuxEvent::Message {
                message_type,
                payload,
                ..
            } = e
            else {
                panic!("{e:?}")
            };
            let m = Message::decode(message_type, &payload).unwrap();
            assert_eq!(m.encode(), payload, "{}: {m:?}", f.note);
            tx.send(ch, m.message_type(), &m.encode()).unwrap();
        }
        if batched {
            tx.uncork();
        }
        assert_eq!(&tx.poll_message().unwrap(), bytes, "{}", f.note);
        assert!(tx.poll_message().is_none());
    }
}

/// B's side of the trace through a real [`Peer`]: fed A's frames, driven like corestore (request
/// the upgrade on `sync`, record the verified upgrade, request block 2), it replies with B's
/// frames, including the deferred `sync` without `canUpgrade` (`01 00 06 00 00 03`).
#[test]
fn traced_session_reader_replies_match() {
    use corestore_proto::Timestamp;
    use corestore_proto::replicate::{CoreState, Event, Peer, PeerConfig, RequestSpec, Session};
    use corestore_proto::wire::{Request, RequestBlock};

    let t = load();
    let key: [u8; 32] = arr(&t.key);
    let frames: Vec<Vec<u8>> = t
        .frames
        .iter()
        .map(|f| hex::decode(&f.hex).unwrap())
        .collect();
    let now = Timestamp::ZERO;
    let mut b = Peer::new(
        Session {
            initiator: false,
            handshake_hash: arr(&t.handshake_hash),
            remote_public_key: [0; 32],
        },
        PeerConfig::default(),
    );
    let reader = CoreState {
        downloading: true,
        ..CoreState::default()
    };
    let mut sent: Vec<Vec<u8>> = Vec::new();
    let mut core = None;
    for (f, bytes) in t.frames.iter().zip(&frames) {
        if f.from != "A" {
            continue;
        }
        b.handle_message(now, bytes).unwrap();
        while let Some(e) = b.poll_event() {
            match e {
                Event::RemoteOpen { .. } => core = Some(b.open_core(&key, reader).unwrap()),
                Event::Synced { core: c, .. } => {
                    if let Some(upgrade) = b.upgrade_to_request(c) {
                        let spec = RequestSpec {
                            upgrade: Some(upgrade),
                            ..RequestSpec::default()
                        };
                        b.request(now, c, spec).unwrap();
                    }
                }
                Event::Data { core: c, data, .. } if data.upgrade.is_some() => {
                    let state = CoreState {
                        length: 3,
                        ..reader
                    };
                    b.update_core(c, state).unwrap();
                    let spec = RequestSpec {
                        block: Some(RequestBlock { index: 2, nodes: 0 }),
                        priority: 1,
                        ..RequestSpec::default()
                    };
                    b.request(now, c, spec).unwrap();
                }
                _ => {}
            }
        }
        sent.extend(std::iter::from_fn(|| b.poll_message().map(|m| m.to_vec())));
    }
    assert!(core.is_some());
    let expected: Vec<&Vec<u8>> = t
        .frames
        .iter()
        .zip(&frames)
        .filter(|(f, _)| f.from == "B")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(sent.len(), expected.len(), "{sent:02x?}");
    for (i, (got, want)) in sent.iter().zip(&expected).enumerate() {
        if i + 1 == expected.len() {
            // The JavaScript replicator shares request ids across peers and reused id 1; ours
            // are per channel. Everything else is identical.
            let decode = |m: &[u8]| match Message::decode(1, &m[2..]).unwrap() {
                Message::Request(r) => Request { id: 0, ..r },
                m => panic!("{m:?}"),
            };
            assert_eq!(got[..2], want[..2]);
            assert_eq!(decode(got), decode(want));
        } else {
            assert_eq!(hex::encode(got), hex::encode(want), "B frame {i}");
        }
    }
}
