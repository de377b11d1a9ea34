//! A writer and a reader replicating one core through the whole stack.

use std::time::Duration;

use super::Pair;
use crate::ConnectionEvent;
use crate::error::ProtocolError;
use crate::replicate::{CoreId, CoreState, Event, RequestSpec};
use crate::wire::{self, Data, DataBlock, DataUpgrade, Node, RequestBlock};

const KEY: [u8; 32] = [7; 32];
fn dk() -> [u8; 32] {
    corestore_keys::Key::from_bytes(KEY)
        .discovery_key()
        .to_bytes()
}

fn writer() -> CoreState {
    CoreState {
        fork: 0,
        length: 3,
        contiguous_length: 3,
        downloading: true,
        has_manifest: false,
    }
}

fn reader() -> CoreState {
    CoreState {
        downloading: true,
        ..CoreState::default()
    }
}

/// Handshake, A opens the core, B accepts the remote open: returns both core ids.
fn open(p: &mut Pair, b_key: [u8; 32]) -> (CoreId, CoreId) {
    p.drive_bounded();
    let ca = p.pa().open_core(&KEY, writer()).unwrap();
    p.drive_bounded();
    let ev = Pair::take(&mut p.b_events);
    let Some(Event::RemoteOpen { protocol, id, .. }) = ev.first() else {
        panic!("{ev:?}")
    };
    assert_eq!(protocol, wire::PROTOCOL);
    assert_eq!(id.as_deref(), Some(&dk()[..]));
    let cb = p.pb().open_core_with(&b_key, &dk(), reader()).unwrap();
    p.drive_bounded();
    (ca, cb)
}

#[test]
fn upgrade_then_block_then_timeout() {
    let mut p = Pair::new();
    let (ca, cb) = open(&mut p, KEY);
    let ea = Pair::take(&mut p.a_events);
    assert!(ea.contains(&Event::CoreOpened { core: ca }), "{ea:?}");
    let eb = Pair::take(&mut p.b_events);
    assert!(eb.contains(&Event::CoreOpened { core: cb }));
    // B learned A's length from sync and range.
    let remote = p.pb().remote_state(cb).unwrap();
    assert_eq!(
        (remote.length, remote.contiguous_length, remote.can_upgrade),
        (3, 3, true)
    );

    // B asks for the upgrade, A answers with a plain proof.
    let upgrade = p.pb().upgrade_to_request(cb).unwrap();
    assert_eq!((upgrade.start, upgrade.length), (0, 3));
    let now = p.now;
    let id = p
        .pb()
        .request(
            now,
            cb,
            RequestSpec {
                upgrade: Some(upgrade),
                ..RequestSpec::default()
            },
        )
        .unwrap();
    assert!(
        p.pb().upgrade_to_request(cb).is_none(),
        "one upgrade in flight"
    );
    p.drive_bounded();
    let ea = Pair::take(&mut p.a_events);
    let Some(Event::Request { request, .. }) =
        ea.iter().find(|e| matches!(e, Event::Request { .. }))
    else {
        panic!("{ea:?}")
    };
    assert_eq!(request.id, id);
    let proof = Data {
        request: request.id,
        fork: 0,
        upgrade: Some(DataUpgrade {
            start: 0,
            length: 3,
            nodes: vec![
                Node {
                    index: 1,
                    size: 3,
                    hash: [1; 32],
                },
                Node {
                    index: 4,
                    size: 3,
                    hash: [4; 32],
                },
            ],
            additional_nodes: vec![],
            signature: vec![9; 64],
        }),
        ..Data::default()
    };
    assert!(p.pa().send_data(ca, proof.clone()).unwrap());
    p.drive_bounded();
    let eb = Pair::take(&mut p.b_events);
    assert!(
        eb.contains(&Event::Data {
            core: cb,
            data: Box::new(proof),
            leaf: None,
        }),
        "{eb:?}"
    );
    assert_eq!(p.pb().inflight(cb), 0);

    // B applied the upgrade: its sync now acknowledges A's length.
    p.pb()
        .update_core(
            cb,
            CoreState {
                length: 3,
                ..reader()
            },
        )
        .unwrap();
    p.drive_bounded();
    let ea = Pair::take(&mut p.a_events);
    assert!(ea.iter().any(|e| matches!(e, Event::Synced { remote, .. } if remote.length == 3 && remote.length_acked == 3)), "{ea:?}");

    // Pipelined block requests; A answers one, ignores the other.
    let now = p.now;
    let spec = |i| RequestSpec {
        block: Some(RequestBlock { index: i, nodes: 0 }),
        priority: 1,
        ..RequestSpec::default()
    };
    let r2 = p.pb().request(now, cb, spec(2)).unwrap();
    let r1 = p.pb().request(now, cb, spec(1)).unwrap();
    assert_eq!(p.pb().inflight(cb), 2);
    p.drive_bounded();
    let ea = Pair::take(&mut p.a_events);
    assert_eq!(
        ea.iter()
            .filter(|e| matches!(e, Event::Request { .. }))
            .count(),
        2
    );
    let block = Data {
        request: r2,
        block: Some(DataBlock {
            index: 2,
            value: b"ccc".to_vec().into(),
            nodes: vec![],
        }),
        ..Data::default()
    };
    assert!(p.pa().send_data(ca, block.clone()).unwrap());
    p.drive_bounded();
    assert!(Pair::take(&mut p.b_events).contains(&Event::Data {
        core: cb,
        data: Box::new(block),
        leaf: None,
    }));

    // The other request times out: B reports it and cancels; A learns of the cancel.
    p.advance(Duration::from_secs(31));
    p.drive_bounded();
    let eb = Pair::take(&mut p.b_events);
    assert!(
        eb.contains(&Event::RequestTimedOut {
            core: cb,
            request: r1
        }),
        "{eb:?}"
    );
    let ea = Pair::take(&mut p.a_events);
    assert!(
        ea.contains(&Event::Cancelled {
            core: ca,
            request: r1
        }),
        "{ea:?}"
    );
    assert_eq!(
        p.pa().send_no_data(ca, r1),
        Ok(false),
        "cancelled requests are not answered"
    );
}

#[test]
fn extensions_and_availability() {
    let mut p = Pair::new();
    let (ca, cb) = open(&mut p, KEY);
    let _ = Pair::take(&mut p.b_events);
    p.pa().send_extension(ca, "chat", b"one").unwrap();
    p.pa().send_extension(ca, "chat", b"two").unwrap();
    p.pb().send_want(cb, 0, 2_097_152).unwrap();
    p.drive_bounded();
    let eb = Pair::take(&mut p.b_events);
    let exts: Vec<_> = eb
        .iter()
        .filter_map(|e| match e {
            Event::Extension { name, message, .. } => Some((name.as_str(), message.as_slice())),
            _ => None,
        })
        .collect();
    assert_eq!(exts, vec![("chat", &b"one"[..]), ("chat", &b"two"[..])]);
    let ea = Pair::take(&mut p.a_events);
    assert!(
        ea.iter()
            .any(|e| matches!(e, Event::Want { want, .. } if want.length == 2_097_152))
    );
    p.pa()
        .send_bitfield(
            ca,
            wire::Bitfield {
                start: 0,
                bitfield: vec![0b101],
            },
        )
        .unwrap();
    p.drive_bounded();
    let eb = Pair::take(&mut p.b_events);
    assert!(eb.iter().any(|e| matches!(e, Event::Bitfield { .. })));
    assert_eq!(p.pb().remote_state(cb).unwrap().contiguous_length, 0);
}

#[test]
fn wrong_capability_destroys_the_stream() {
    let mut p = Pair::new();
    // B claims the same discovery key but does not know the core key.
    let _ = open(&mut p, [9; 32]);
    assert!(
        p.a_events
            .iter()
            .any(|e| matches!(e, ConnectionEvent::Closed(ProtocolError::InvalidCapability))),
        "{:?}",
        p.a_events
    );
    assert!(p.pa().open_core(&[1; 32], writer()).is_err());
}

#[test]
fn idle_channel_closes() {
    let mut p = Pair::new();
    p.drive_bounded();
    let idle = CoreState {
        downloading: false,
        ..writer()
    };
    let ca = p.pa().open_core(&KEY, idle).unwrap();
    p.drive_bounded();
    let _ = Pair::take(&mut p.b_events);
    let cb = p
        .pb()
        .open_core_with(
            &KEY,
            &dk(),
            CoreState {
                downloading: false,
                ..reader()
            },
        )
        .unwrap();
    p.drive_bounded();
    let ea = Pair::take(&mut p.a_events);
    let eb = Pair::take(&mut p.b_events);
    assert!(
        ea.contains(&Event::CoreClosed { core: ca })
            || eb.contains(&Event::CoreClosed { core: cb }),
        "{ea:?} {eb:?}"
    );
}

#[test]
fn availability_and_conflict_probe() {
    let mut p = Pair::new();
    let (ca, cb) = open(&mut p, KEY);
    // A advertised range {0, 3}; it grows to 100 blocks with a hole at 50..60.
    assert!(p.pb().remote_has(cb, 2) && !p.pb().remote_has(cb, 3));
    let grown = CoreState {
        length: 100,
        contiguous_length: 50,
        ..writer()
    };
    p.pa().update_core(ca, grown).unwrap();
    p.pa()
        .send_range(
            ca,
            wire::Range {
                drop: false,
                start: 3,
                length: 47,
            },
        )
        .unwrap();
    p.pa()
        .send_range(
            ca,
            wire::Range {
                drop: false,
                start: 60,
                length: 40,
            },
        )
        .unwrap();
    p.drive_bounded();
    assert!(p.pb().remote_has(cb, 49) && !p.pb().remote_has(cb, 55) && p.pb().remote_has(cb, 99));
    assert!(!p.pb().remote_has(cb, 100), "beyond the remote length");
    p.pa()
        .send_range(
            ca,
            wire::Range {
                drop: true,
                start: 60,
                length: 1,
            },
        )
        .unwrap();
    p.drive_bounded();
    assert!(!p.pb().remote_has(cb, 60) && p.pb().remote_has(cb, 61));

    // A conflict probe is request id 0; A answers it as it would any request.
    let _ = Pair::take(&mut p.a_events);
    p.pb().probe(cb, 3).unwrap();
    p.drive_bounded();
    let ea = Pair::take(&mut p.a_events);
    assert!(
        ea.iter()
            .any(|e| matches!(e, Event::Request { request, .. } if request.id == 0)),
        "{ea:?}"
    );
    let proof = Data {
        request: 0,
        ..Data::default()
    };
    assert!(p.pa().send_data(ca, proof.clone()).unwrap());
    p.drive_bounded();
    let eb = Pair::take(&mut p.b_events);
    assert!(
        eb.contains(&Event::Unsolicited {
            core: cb,
            data: Box::new(proof),
            leaf: None,
        }),
        "{eb:?}"
    );
}

#[test]
fn a_split_receiver_hashes_the_blocks_it_receives() {
    let mut p = Pair::new();
    let (ca, cb) = open(&mut p, KEY);
    p.b_rx = Some(p.b.split_receiver().unwrap());
    p.drive_bounded();
    let _ = Pair::take(&mut p.b_events);
    let now = p.now;
    let ids: Vec<u64> = (0..3)
        .map(|index| {
            let spec = RequestSpec {
                block: Some(RequestBlock { index, nodes: 0 }),
                ..RequestSpec::default()
            };
            p.pb().request(now, cb, spec).unwrap()
        })
        .collect();
    p.drive_bounded();
    let value = |i: u64| bytes::Bytes::from(vec![i as u8; 100 + i as usize]);
    let answer = |i: u64| Data {
        request: ids[i as usize],
        block: Some(DataBlock {
            index: i,
            value: value(i),
            nodes: vec![],
        }),
        ..Data::default()
    };
    // One answer in a frame of its own, two in one batch frame.
    assert!(p.pa().send_data(ca, answer(0)).unwrap());
    p.drive_bounded();
    p.pa().cork();
    assert!(p.pa().send_data(ca, answer(1)).unwrap());
    assert!(p.pa().send_data(ca, answer(2)).unwrap());
    p.pa().uncork();
    p.drive_bounded();
    let leaves: Vec<_> = Pair::take(&mut p.b_events)
        .into_iter()
        .filter_map(|e| match e {
            Event::Data { data, leaf, .. } => Some((data.block.unwrap().index, leaf)),
            _ => None,
        })
        .collect();
    let expected: Vec<_> = (0..3)
        .map(|i| (i, Some(corestore_keys::hash::leaf(&value(i)))))
        .collect();
    assert_eq!(leaves, expected);
}
