//! The sync rules against the §9.11 trace, request matching and bounds, in plain mode.

use super::*;

const KEY: [u8; 32] = [7; 32];
fn dk() -> [u8; 32] {
    corestore_keys::Key::from_bytes(KEY)
        .discovery_key()
        .to_bytes()
}

fn session(initiator: bool) -> Session {
    Session {
        initiator,
        handshake_hash: [5; 64],
        remote_public_key: [0; 32],
    }
}

fn deliver(from: &mut Peer, to: &mut Peer) -> Vec<Vec<u8>> {
    let msgs: Vec<_> = std::iter::from_fn(|| from.poll_message().map(|b| b.to_vec())).collect();
    for m in &msgs {
        to.handle_message(Timestamp::ZERO, m).unwrap();
    }
    msgs
}

fn events(p: &mut Peer) -> Vec<Event> {
    std::iter::from_fn(|| p.poll_event()).collect()
}

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

type Opened = (Peer, Peer, CoreId, CoreId, Vec<Vec<u8>>, Vec<Vec<u8>>);

/// A downloading core of `length` blocks, the first `contiguous_length` of them stored.
fn state(length: u64, contiguous_length: u64) -> CoreState {
    CoreState {
        length,
        contiguous_length,
        downloading: true,
        ..CoreState::default()
    }
}

/// A writer of length 3 and an empty reader, both open, in plain mode.
fn opened() -> Opened {
    opened_with(state(3, 3), state(0, 0))
}

/// Peer A opens the core with state `a`, peer B answers with state `b`: the messages each
/// sent up to B's open being answered.
fn opened_with(a_state: CoreState, b_state: CoreState) -> Opened {
    let mut a = Peer::new(session(true), PeerConfig::default());
    let mut b = Peer::new(session(false), PeerConfig::default());
    let ca = a.open_core(&KEY, a_state).unwrap();
    deliver(&mut a, &mut b);
    let Some(Event::RemoteOpen { .. }) = b.poll_event() else {
        panic!()
    };
    let cb = b.open_core_with(&KEY, &dk(), b_state).unwrap();
    let from_b = deliver(&mut b, &mut a);
    let from_a = deliver(&mut a, &mut b);
    (a, b, ca, cb, from_a, from_b)
}

#[test]
fn open_sends_sync_and_range_batched_like_the_trace() {
    let (_, mut b, _, cb, from_a, from_b) = opened();
    // A: batch on ch1 of sync{7, 0, 3, 0} and range{0, 3}; then, having seen B's sync, a fresh
    // sync because it is longer (trace: `01 00 07 00 03 00`).
    assert_eq!(
        from_a,
        vec![h("000001 050007000300 0408000003"), h("010007000300")]
    );
    // B: its open, then a batch with sync{7, 0, 0, 0} (no range: nothing to offer).
    assert_eq!(from_b[1], h("000001 050007000000"));
    // B's request of the upgrade is byte-identical to the trace.
    let _ = events(&mut b);
    let up = b.upgrade_to_request(cb).unwrap();
    let id = b
        .request(
            Timestamp::ZERO,
            cb,
            RequestSpec {
                upgrade: Some(up),
                ..RequestSpec::default()
            },
        )
        .unwrap();
    assert_eq!(id, 1);
    assert_eq!(b.poll_message().unwrap(), h("01010801000003"));
}

#[test]
fn data_must_match_the_request() {
    let (mut a, mut b, ca, cb, _, _) = opened();
    let _ = (events(&mut a), events(&mut b));
    let spec = RequestSpec {
        block: Some(RequestBlock { index: 2, nodes: 0 }),
        ..RequestSpec::default()
    };
    let id = b.request(Timestamp::ZERO, cb, spec).unwrap();
    deliver(&mut b, &mut a);
    let _ = events(&mut a);
    // Wrong block index: dropped, still in flight.
    let wrong = Data {
        request: id,
        block: Some(wire::DataBlock {
            index: 1,
            value: vec![].into(),
            nodes: vec![],
        }),
        ..Data::default()
    };
    a.send_data(ca, wrong).unwrap();
    deliver(&mut a, &mut b);
    // (B's follow-up sync, sent with its request, drew a sync from A.)
    let ev = events(&mut b);
    assert!(
        ev.iter().all(|e| matches!(e, Event::Synced { .. })),
        "{ev:?}"
    );
    assert_eq!(b.inflight(cb), 1);
    // A fork proof is surfaced unsolicited.
    let fork = Data {
        request: 0,
        fork: 1,
        ..Data::default()
    };
    a.send_data(ca, fork.clone()).unwrap();
    deliver(&mut a, &mut b);
    assert_eq!(
        events(&mut b),
        vec![Event::Unsolicited {
            core: cb,
            data: Box::new(fork),
            leaf: None,
        }]
    );
    // noData completes the request.
    assert_eq!(a.send_no_data(ca, id), Ok(false), "already answered once");
    a.mux.send(a.cores[&ca].channel, 4, &[id as u8]).unwrap();
    deliver(&mut a, &mut b);
    assert_eq!(
        events(&mut b),
        vec![Event::NoData {
            core: cb,
            request: id,
            reason: None,
        }]
    );
    assert_eq!(b.poll_timeout(), None);
    // A hypercore 11 noData carries its reason.
    let spec = RequestSpec {
        block: Some(RequestBlock { index: 1, nodes: 0 }),
        ..RequestSpec::default()
    };
    let id = b.request(Timestamp::ZERO, cb, spec).unwrap();
    deliver(&mut b, &mut a);
    let _ = events(&mut a);
    a.mux
        .send(a.cores[&ca].channel, 4, &[id as u8, 1, 1])
        .unwrap();
    deliver(&mut a, &mut b);
    assert_eq!(
        events(&mut b),
        vec![Event::NoData {
            core: cb,
            request: id,
            reason: Some(1),
        }]
    );
}

#[test]
fn local_limits_and_misuse() {
    let config = PeerConfig {
        max_inflight: 2,
        ..PeerConfig::default()
    };
    let mut b = Peer::new(session(false), config);
    let cb = b.open_core(&KEY, CoreState::default()).unwrap();
    let spec = RequestSpec {
        manifest: true,
        ..RequestSpec::default()
    };
    b.request(Timestamp::ZERO, cb, spec.clone()).unwrap();
    b.request(Timestamp::ZERO, cb, spec.clone()).unwrap();
    assert_eq!(
        b.request(Timestamp::ZERO, cb, spec),
        Err(ApiMisuse::TooManyRequests(2))
    );
    assert_eq!(
        b.request(Timestamp::ZERO, cb, RequestSpec::default()),
        Err(ApiMisuse::EmptyRequest)
    );
    assert_eq!(b.cancel(cb, 77), Err(ApiMisuse::UnknownRequest(77)));
    b.cancel(cb, 1).unwrap();
    b.close_core(cb).unwrap();
    assert_eq!(b.send_sync(cb), Err(ApiMisuse::UnknownChannel));
}

#[test]
fn remote_request_flood_is_bounded() {
    let (mut a, mut b, _, cb, _, _) = opened();
    let _ = events(&mut a);
    let config = PeerConfig {
        max_remote_requests: 3,
        ..PeerConfig::default()
    };
    a.config = config;
    let spec = RequestSpec {
        manifest: true,
        ..RequestSpec::default()
    };
    for _ in 0..4 {
        b.request(Timestamp::ZERO, cb, spec.clone()).unwrap();
    }
    let msgs: Vec<_> = std::iter::from_fn(|| b.poll_message()).collect();
    let results: Vec<_> = msgs
        .iter()
        .map(|m| a.handle_message(Timestamp::ZERO, m))
        .collect();
    assert_eq!(
        results.last().unwrap(),
        &Err(ProtocolError::TooManyRequests(4))
    );
    assert!(events(&mut a).contains(&Event::Failed(ProtocolError::TooManyRequests(4))));
}

#[test]
fn undecodable_message_fails_the_peer() {
    let (mut a, _, _, _, _, _) = opened();
    // A truncated sync on remote channel 1.
    assert!(a.handle_message(Timestamp::ZERO, &h("0100 fd")).is_err());
    assert!(
        a.handle_message(Timestamp::ZERO, &h("0100 00000000"))
            .is_err(),
        "failed peers stay failed"
    );
}

#[test]
fn unknown_protocol_is_reported_and_rejected_cleanly() {
    let mut b = Peer::new(session(false), PeerConfig::default());
    // Remote opens "other/proto" with no id on its channel 1.
    b.handle_message(Timestamp::ZERO, &h("0001 01 0b 6f746865722f70726f746f 00"))
        .unwrap();
    let ev = events(&mut b);
    let [
        Event::RemoteOpen {
            pending,
            protocol,
            id,
        },
    ] = ev.as_slice()
    else {
        panic!("{ev:?}")
    };
    assert_eq!((protocol.as_str(), id), ("other/proto", &None));
    assert!(b.is_pending(*pending));
    b.reject(*pending);
    assert!(!b.is_pending(*pending));
    assert_eq!(b.poll_message().unwrap(), h("000201"));
    // Messages for the rejected channel are dropped; the stream stays healthy.
    b.handle_message(Timestamp::ZERO, &h("0100 00")).unwrap();
    assert!(events(&mut b).is_empty());
}

#[test]
fn unknown_message_types_are_ignored_but_malformed_manifests_fail() {
    let (mut a, _, _, _, _, _) = opened();
    let _ = events(&mut a);
    // Type 10 on remote channel 1: a future message, ignored.
    a.handle_message(Timestamp::ZERO, &h("010a ffff")).unwrap();
    assert!(events(&mut a).is_empty());
    // `data` {flags manifest, request 0, fork 0} whose manifest (version 1) has hash type 9.
    let err = a
        .handle_message(Timestamp::ZERO, &h("0103 10 00 00 01 00 09"))
        .unwrap_err();
    assert_eq!(
        err,
        ProtocolError::Decode(crate::error::DecodeError::UnknownType(9))
    );
    assert!(events(&mut a).contains(&Event::Failed(err)));
}

#[test]
fn pending_overflow_fails_the_peer() {
    let config = PeerConfig {
        mux: MuxConfig {
            max_pending_bytes: 64,
            ..MuxConfig::default()
        },
        ..PeerConfig::default()
    };
    let mut b = Peer::new(session(false), config);
    b.handle_message(Timestamp::ZERO, &h("0001 01 0170 00"))
        .unwrap();
    let mut big = h("0100");
    big.extend_from_slice(&[0; 64]);
    let err = b.handle_message(Timestamp::ZERO, &big).unwrap_err();
    assert_eq!(err, ProtocolError::PendingOverflow(1));
    assert!(events(&mut b).contains(&Event::Failed(err)));
}

#[test]
fn the_largest_block_fits_one_message_and_larger_replies_are_refused() {
    let (mut a, mut b, ca, cb, _, _) = opened();
    let _ = (events(&mut a), events(&mut b));
    let answer = |a: &mut Peer, b: &mut Peer, len: usize| {
        let spec = RequestSpec {
            block: Some(RequestBlock { index: 2, nodes: 0 }),
            ..RequestSpec::default()
        };
        let id = b.request(Timestamp::ZERO, cb, spec).unwrap();
        deliver(b, a);
        let _ = events(a);
        let node = wire::Node {
            index: 1,
            size: 1,
            hash: [1; 32],
        };
        let data = Data {
            request: id,
            block: Some(wire::DataBlock {
                index: 2,
                value: vec![7; len].into(),
                nodes: vec![node; 64],
            }),
            ..Data::default()
        };
        a.send_data(ca, data)
    };
    assert_eq!(
        answer(&mut a, &mut b, wire::limits::MAX_BLOCK_LEN),
        Ok(true)
    );
    for msg in std::iter::from_fn(|| a.poll_message()) {
        assert!(msg.len() <= crate::stream::MAX_MESSAGE_LEN);
        b.handle_message(Timestamp::ZERO, &msg).unwrap();
    }
    let ev = events(&mut b);
    assert!(ev.iter().any(|e| matches!(e, Event::Data { .. })), "{ev:?}");
    // A block of 16 MiB does not fit: refused when issued, not dropped later.
    assert!(matches!(
        answer(&mut a, &mut b, 16 * 1024 * 1024),
        Err(ApiMisuse::MessageTooLarge { .. })
    ));
    assert!(
        std::iter::from_fn(|| a.poll_message()).all(|m| m.len() < 1024),
        "nothing large was queued"
    );
}

#[test]
fn a_request_refused_by_a_failed_peer_leaves_no_state() {
    // fuzz/regressions/peer_ops-request-after-failure.bin
    let (mut a, mut b, ca, cb, _, _) = opened();
    let _ = (events(&mut a), events(&mut b));
    let spec = RequestSpec {
        manifest: true,
        ..RequestSpec::default()
    };
    assert!(b.handle_message(Timestamp::ZERO, &h("0100 fd")).is_err());
    assert_eq!(b.request(Timestamp::ZERO, cb, spec), Err(ApiMisuse::Closed));
    assert_eq!(b.inflight(cb), 0, "the refused request stays in flight");
    assert_eq!(b.poll_timeout(), None, "the refused request armed a timer");
    b.handle_timeout(Timestamp::ZERO + Duration::from_secs(3600));
    let ev = events(&mut b);
    assert!(
        !ev.iter()
            .any(|e| matches!(e, Event::RequestTimedOut { .. })),
        "{ev:?}"
    );
    let _ = ca;
}

#[test]
fn replies_refused_by_the_mux_leave_the_remote_request_answerable() {
    let (mut a, mut b, ca, cb, _, _) = opened();
    let _ = (events(&mut a), events(&mut b));
    let spec = RequestSpec {
        block: Some(RequestBlock { index: 2, nodes: 0 }),
        ..RequestSpec::default()
    };
    let id = b.request(Timestamp::ZERO, cb, spec).unwrap();
    deliver(&mut b, &mut a);
    let _ = events(&mut a);
    let data = Data {
        request: id,
        block: Some(wire::DataBlock {
            index: 2,
            value: vec![7; 16 * 1024 * 1024].into(),
            nodes: Vec::new(),
        }),
        ..Data::default()
    };
    assert!(matches!(
        a.send_data(ca, data),
        Err(ApiMisuse::MessageTooLarge { .. })
    ));
    // The request was not answered: noData still goes out.
    assert_eq!(a.send_no_data(ca, id), Ok(true));
    // An extension name that was refused is not elided next time.
    let big = vec![0; 16 * 1024 * 1024];
    assert!(a.send_extension(ca, "ext", &big).is_err());
    let _ = std::iter::from_fn(|| a.poll_message()).count();
    a.send_extension(ca, "ext", b"hi").unwrap();
    deliver(&mut a, &mut b);
    let ev = events(&mut b);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Extension { name, message, .. } if name == "ext" && message == b"hi"
        )),
        "{ev:?}"
    );
}

#[test]
fn data_with_a_value_read_into_the_message_is_data() {
    let (mut a, mut b, ca, cb, _, _) = opened();
    let _ = (events(&mut a), events(&mut b));
    let spec = |index| RequestSpec {
        block: Some(RequestBlock { index, nodes: 0 }),
        ..RequestSpec::default()
    };
    let value = vec![5u8; 3000];
    let data = |request, value: Vec<u8>| Data {
        request,
        block: Some(wire::DataBlock {
            index: 2,
            value: value.into(),
            nodes: vec![wire::Node {
                index: 5,
                size: 6000,
                hash: [9; 32],
            }],
        }),
        ..Data::default()
    };
    for corked in [false, true] {
        let ids: Vec<u64> = (0..5)
            .map(|_| b.request(Timestamp::ZERO, cb, spec(2)).unwrap())
            .collect();
        deliver(&mut b, &mut a);
        let _ = events(&mut a);
        if corked {
            a.cork();
        }
        // A failed read sends nothing and leaves the request answerable.
        assert_eq!(
            a.send_data_with(ca, data(ids[0], Vec::new()), 3000, |_| Err("gone")),
            Ok(Err("gone"))
        );
        // A read of another length is refused, nothing sent.
        assert_eq!(
            a.send_data_with(ca, data(ids[0], Vec::new()), 3000, |out| {
                out.extend_from_slice(&[1; 10]);
                Ok::<_, ()>(())
            }),
            Err(ApiMisuse::ValueLength {
                expected: 3000,
                got: 10
            })
        );
        // The value read into the message: the same bytes as `send_data`.
        assert_eq!(
            a.send_data_with(ca, data(ids[0], vec![1; 7]), 3000, |out| {
                out.extend_from_slice(&value);
                Ok::<_, ()>(())
            }),
            Ok(Ok(true))
        );
        assert_eq!(a.send_data(ca, data(ids[1], value.clone())), Ok(true));
        // Answered already: nothing is read.
        assert_eq!(
            a.send_data_with(ca, data(ids[0], Vec::new()), 3000, |_| Err(())),
            Ok(Ok(false))
        );
        // With a manifest the value is read first, then sent as `send_data`.
        let mut with_manifest = data(ids[2], Vec::new());
        with_manifest.manifest = Some(wire::Manifest::default());
        assert_eq!(
            a.send_data_with(ca, with_manifest, 3000, |out| {
                out.extend_from_slice(&value);
                Ok::<_, ()>(())
            }),
            Ok(Ok(true))
        );
        if corked {
            a.uncork();
        }
        let sent = deliver(&mut a, &mut b);
        if !corked {
            // Both data messages are the same bytes but for the request id.
            let big: Vec<&Vec<u8>> = sent.iter().filter(|m| m.len() > 3000).collect();
            assert_eq!(big.len(), 3);
            assert_eq!(big[0].len(), big[1].len());
        }
        let got: Vec<Data> = events(&mut b)
            .into_iter()
            .filter_map(|e| match e {
                Event::Data { data, .. } => Some(*data),
                _ => None,
            })
            .collect();
        assert_eq!(got.len(), 3, "corked: {corked}");
        assert_eq!(got[0], data(ids[0], value.clone()));
        assert_eq!(got[1], data(ids[1], value.clone()));
        assert_eq!(got[2].block, data(ids[2], value.clone()).block);
        // Cancelled meanwhile: nothing read; the rest answered so the next round starts clean.
        for &id in &ids[3..] {
            let _ = a.send_no_data(ca, id);
        }
        deliver(&mut a, &mut b);
        let _ = events(&mut b);
    }
    assert_eq!(DATA_TYPE, Message::Data(Box::default()).message_type());
}

#[test]
fn an_answered_request_leaves_an_early_timer_that_rearms_without_timing_anything_out() {
    let (mut a, mut b, ca, cb, _, _) = opened();
    let _ = (events(&mut a), events(&mut b));
    let timeout = b.config.request_timeout;
    let spec = |index| RequestSpec {
        block: Some(RequestBlock { index, nodes: 0 }),
        ..RequestSpec::default()
    };
    let t0 = Timestamp::ZERO;
    let t1 = t0 + Duration::from_secs(1);
    let first = b.request(t0, cb, spec(0)).unwrap();
    let second = b.request(t1, cb, spec(1)).unwrap();
    assert_eq!(b.poll_timeout(), Some(t0 + timeout));
    deliver(&mut b, &mut a);
    let _ = events(&mut a);
    // The first is answered; the second stays in flight.
    assert_eq!(a.send_no_data(ca, first), Ok(true));
    deliver(&mut a, &mut b);
    let _ = events(&mut b);
    assert_eq!(b.inflight(cb), 1);
    // The timer is left at the first's deadline, early for the second.
    let early = t0 + timeout;
    assert_eq!(b.poll_timeout(), Some(early));
    // Woken then: nothing is due, nothing times out, the timer moves to the second.
    b.handle_timeout(early);
    assert!(events(&mut b).is_empty());
    assert_eq!(b.inflight(cb), 1);
    assert_eq!(b.poll_timeout(), Some(t1 + timeout));
    b.handle_timeout(t1 + timeout);
    assert_eq!(
        events(&mut b),
        vec![Event::RequestTimedOut {
            core: cb,
            request: second,
        }]
    );
    assert_eq!(b.poll_timeout(), None);
}

/// A sparse core (length 10, no blocks) cannot say it can upgrade a remote of length 4 until
/// the layer above found the full roots of 4 stored; the remote asks for no upgrade before.
#[test]
fn a_sparse_core_advertises_an_upgrade_only_once_its_roots_are_confirmed() {
    let sparse = state(10, 0);
    let (mut a, mut b, ca, cb, _, _) = opened_with(sparse, state(4, 4));
    for _ in 0..2 {
        deliver(&mut b, &mut a);
        deliver(&mut a, &mut b);
    }
    let _ = (events(&mut a), events(&mut b));
    assert_eq!(b.remote_state(cb).unwrap().length, 10);
    assert!(!b.remote_state(cb).unwrap().can_upgrade);
    assert_eq!(b.upgrade_to_request(cb), None);
    // Asked once; not again while nothing changed.
    assert_eq!(a.take_upgrade_check(ca), Some(4));
    assert_eq!(a.take_upgrade_check(ca), None);
    a.set_upgradeable(ca, 4).unwrap();
    assert!(!deliver(&mut a, &mut b).is_empty(), "a sync announces it");
    assert!(b.remote_state(cb).unwrap().can_upgrade);
    assert_eq!(
        b.upgrade_to_request(cb),
        Some(RequestUpgrade {
            start: 4,
            length: 6
        })
    );
    // It holds while our length grows; a new fork forgets it.
    a.update_core(
        ca,
        CoreState {
            length: 12,
            ..sparse
        },
    )
    .unwrap();
    deliver(&mut a, &mut b);
    assert!(b.remote_state(cb).unwrap().can_upgrade);
    a.update_core(
        ca,
        CoreState {
            fork: 1,
            length: 12,
            ..sparse
        },
    )
    .unwrap();
    deliver(&mut a, &mut b);
    assert!(!b.remote_state(cb).unwrap().can_upgrade);
    // A core holding the blocks below the remote's length needs no check.
    let (mut w, _, cw, _, _, _) = opened();
    assert_eq!(w.take_upgrade_check(cw), None);
}
