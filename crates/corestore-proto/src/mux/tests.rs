//! Protomux framing, pairing, batches and id allocation.

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).unwrap()
}

fn drain(m: &mut Mux) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| m.poll_message().map(|b| b.to_vec())).collect()
}

fn events(m: &mut Mux) -> Vec<MuxEvent> {
    std::iter::from_fn(|| m.poll_event()).collect()
}

fn deliver(from: &mut Mux, to: &mut Mux) {
    for msg in drain(from) {
        to.handle_message(&msg).unwrap();
    }
}

#[test]
fn open_frames_match_spec_examples() {
    let mut a = Mux::default();
    let ch = a
        .open("hypercore/alpha", Some(&[0xdd; 32]), &h("01aa"))
        .unwrap();
    assert_eq!(ch.get(), 1);
    let mut expect = h("0001010f");
    expect.extend_from_slice(b"hypercore/alpha");
    expect.push(0x20);
    expect.extend_from_slice(&[0xdd; 32]);
    expect.extend_from_slice(&h("01aa"));
    assert_eq!(drain(&mut a), vec![expect]);
    a.close(ch).unwrap();
    assert_eq!(drain(&mut a), vec![h("000301")]);
}

#[test]
fn both_sides_open_then_messages_flow() {
    let (mut a, mut b) = (Mux::default(), Mux::default());
    let ca = a.open("p", Some(b"x"), b"ha").unwrap();
    let cb = b.open("p", Some(b"x"), b"hb").unwrap();
    deliver(&mut a, &mut b);
    deliver(&mut b, &mut a);
    assert_eq!(
        events(&mut a),
        vec![MuxEvent::Opened {
            channel: ca,
            handshake: b"hb".to_vec()
        }]
    );
    assert_eq!(
        events(&mut b),
        vec![MuxEvent::Opened {
            channel: cb,
            handshake: b"ha".to_vec()
        }]
    );
    assert!(a.is_open(ca));
    a.send(ca, 3, b"pay").unwrap();
    assert_eq!(a.out.front().unwrap(), &h("0103706179"));
    deliver(&mut a, &mut b);
    assert_eq!(
        events(&mut b),
        vec![MuxEvent::Message {
            channel: cb,
            message_type: 3,
            payload: b"pay".to_vec()
        }]
    );
    a.close(ca).unwrap();
    deliver(&mut a, &mut b);
    assert_eq!(events(&mut b), vec![MuxEvent::Closed { channel: cb }]);
    assert!(!b.is_open(cb));
}

#[test]
fn remote_open_buffers_until_accepted() {
    let (mut a, mut b) = (Mux::default(), Mux::default());
    let ca = a.open("p", None, b"").unwrap();
    a.send(ca, 0, b"early").unwrap();
    deliver(&mut a, &mut b);
    let ev = events(&mut b);
    let [
        MuxEvent::RemoteOpen {
            pending: _,
            protocol,
            id,
        },
    ] = ev.as_slice()
    else {
        panic!("{ev:?}")
    };
    assert_eq!((protocol.as_str(), id), ("p", &None));
    let cb = b.open("p", None, b"").unwrap();
    assert_eq!(
        events(&mut b),
        vec![
            MuxEvent::Opened {
                channel: cb,
                handshake: vec![]
            },
            MuxEvent::Message {
                channel: cb,
                message_type: 0,
                payload: b"early".to_vec()
            },
        ]
    );
    deliver(&mut b, &mut a);
    assert!(matches!(
        events(&mut a).as_slice(),
        [MuxEvent::Opened { .. }]
    ));
}

#[test]
fn reject_closes_the_opener_and_frees_its_id() {
    let (mut a, mut b) = (Mux::default(), Mux::default());
    let ca = a.open("p", None, b"").unwrap();
    deliver(&mut a, &mut b);
    let Some(MuxEvent::RemoteOpen { pending, .. }) = b.poll_event() else {
        panic!()
    };
    b.reject(pending);
    assert_eq!(b.out.front().unwrap(), &h("000201"));
    deliver(&mut b, &mut a);
    assert_eq!(events(&mut a), vec![MuxEvent::Closed { channel: ca }]);
    // The id is reused.
    assert_eq!(a.open("q", None, b"").unwrap(), ca);
}

#[test]
fn batches_both_ways() {
    let (mut a, mut b) = (Mux::default(), Mux::default());
    a.cork();
    let ca = a.open("p", None, b"").unwrap();
    a.send(ca, 5, b"s").unwrap();
    a.send(ca, 4, b"r").unwrap();
    assert!(a.poll_message().is_none());
    a.uncork();
    let msgs = drain(&mut a);
    // 00 00 <ch 0> <len> <open item> 00 <ch 1> <len> <item> <len> <item>
    assert_eq!(
        msgs,
        vec![h("0000 00 05 0101 0170 00 00 01 02 0573 02 0472")]
    );
    for m in &msgs {
        b.handle_message(m).unwrap();
    }
    let _ = b.open("p", None, b"").unwrap();
    let ev = events(&mut b);
    assert_eq!(ev.len(), 4);
    assert!(matches!(
        &ev[3],
        MuxEvent::Message {
            message_type: 4,
            ..
        }
    ));
}

#[test]
fn invalid_opens_and_garbage() {
    let mut b = Mux::default();
    // Remote id 2 before 1: not dense.
    assert_eq!(
        b.handle_message(&h("0001 02 0170 00")),
        Err(ProtocolError::InvalidOpen(2))
    );
    let mut b = Mux::default();
    b.handle_message(&h("0001 01 0170 00")).unwrap();
    assert_eq!(
        b.handle_message(&h("0001 01 0170 00")),
        Err(ProtocolError::InvalidOpen(1))
    );
    // Open on channel 0 is rejected.
    let mut b = Mux::default();
    b.handle_message(&h("0001 00 0170 00")).unwrap();
    assert_eq!(drain(&mut b), vec![h("000200")]);
    // Unknown channels and types are dropped, truncated input is an error, empty is ignored.
    let mut b = Mux::default();
    b.handle_message(&h("0705aa")).unwrap();
    b.handle_message(&h("0009")).unwrap();
    b.handle_message(&[]).unwrap();
    assert!(b.handle_message(&h("0001")).is_err());
    assert!(events(&mut b).is_empty());
}

#[test]
fn pending_buffer_is_bounded() {
    let mut b = Mux::new(MuxConfig {
        max_pending_bytes: 100,
        ..MuxConfig::default()
    });
    b.handle_message(&h("0001 01 0170 00")).unwrap();
    let mut big = h("0100");
    big.extend_from_slice(&[0; 90]);
    assert_eq!(
        b.handle_message(&big),
        Err(ProtocolError::PendingOverflow(1))
    );
}

#[test]
fn thousands_of_channels_pair_quickly() {
    let (mut a, mut b) = (Mux::default(), Mux::default());
    let n = 5000u32;
    for i in 0..n {
        a.open("hypercore/alpha", Some(&i.to_le_bytes()), b"")
            .unwrap();
    }
    deliver(&mut a, &mut b);
    for e in events(&mut b) {
        let MuxEvent::RemoteOpen { protocol, id, .. } = e else {
            panic!()
        };
        b.open(&protocol, id.as_deref(), b"").unwrap();
    }
    deliver(&mut b, &mut a);
    let opened = events(&mut a)
        .iter()
        .filter(|e| matches!(e, MuxEvent::Opened { .. }))
        .count();
    assert_eq!(opened, n as usize);
    assert_eq!(events(&mut b).len(), n as usize);
}

#[test]
fn pending_overflow_fails_the_stream_and_releases_the_channel() {
    let mut b = Mux::new(MuxConfig {
        max_pending_bytes: 100,
        ..MuxConfig::default()
    });
    b.handle_message(&h("0001 01 0170 00")).unwrap();
    let Some(MuxEvent::RemoteOpen { pending, .. }) = b.poll_event() else {
        panic!()
    };
    let mut big = h("0100");
    big.extend_from_slice(&[0; 90]);
    let err = b.handle_message(&big).unwrap_err();
    assert_eq!(err, ProtocolError::PendingOverflow(1));
    assert_eq!(err.close_reason(), crate::CloseReason::DestroyStream);
    assert!(!b.is_pending(pending), "the pending channel is dropped");
    assert_eq!(b.pending_bytes, 0);
}

#[test]
fn pending_handshakes_count_against_the_bound() {
    let mut b = Mux::new(MuxConfig {
        max_pending_bytes: 100,
        ..MuxConfig::default()
    });
    let open = |rid: &str, name: &str| {
        let mut m = h(&format!("0001 {rid} 01 {name} 00"));
        m.extend_from_slice(&[0xaa; 50]);
        m
    };
    b.handle_message(&open("01", "70")).unwrap();
    assert_eq!(b.pending_bytes, 50 + 16);
    assert_eq!(
        b.handle_message(&open("02", "71")),
        Err(ProtocolError::PendingOverflow(2))
    );
    // Accepting the first releases its handshake.
    let Some(MuxEvent::RemoteOpen { .. }) = b.poll_event() else {
        panic!()
    };
    b.open("p", None, b"").unwrap();
    assert_eq!(b.pending_bytes, 0);
    let mut c = Mux::new(MuxConfig {
        max_pending_bytes: 100,
        ..MuxConfig::default()
    });
    c.handle_message(&open("01", "70")).unwrap();
    let Some(MuxEvent::RemoteOpen { pending, .. }) = c.poll_event() else {
        panic!()
    };
    c.reject(pending);
    assert_eq!(c.pending_bytes, 0);
    c.handle_message(&open("02", "71")).unwrap();
    c.handle_message(&h("000302")).unwrap();
    assert_eq!(c.pending_bytes, 0, "a remote close releases it too");
}

#[test]
fn late_open_pairs_fifo_with_the_closed_channel() {
    let mut a = Mux::default();
    let old = a.open("p", None, b"").unwrap();
    a.close(old).unwrap();
    let new = a.open("p", None, b"").unwrap();
    assert_ne!(old, new);
    // The remote's answer to our first open arrives late: it is consumed by the closed channel.
    a.handle_message(&h("0001 01 0170 00")).unwrap();
    assert!(events(&mut a).is_empty());
    assert!(!a.is_open(new));
    // Its answer to the second open binds the new channel (protomux leaves the slot free).
    a.handle_message(&h("0001 01 0170 00 bb")).unwrap();
    assert_eq!(
        events(&mut a),
        vec![MuxEvent::Opened {
            channel: new,
            handshake: vec![0xbb]
        }]
    );
    // The closed channel's id was freed.
    assert_eq!(a.open("q", None, b"").unwrap(), old);
}

#[test]
fn oversized_messages_are_refused_and_batches_split() {
    let config = MuxConfig {
        max_message_len: 100,
        ..MuxConfig::default()
    };
    let (mut a, mut b) = (Mux::new(config.clone()), Mux::new(config));
    assert_eq!(
        a.open("p", None, &[0; 100]),
        Err(ApiMisuse::MessageTooLarge {
            limit: 100,
            got: 106
        })
    );
    let ca = a.open("p", None, b"").unwrap();
    let cb = b.open("p", None, b"").unwrap();
    deliver(&mut a, &mut b);
    deliver(&mut b, &mut a);
    let _ = (events(&mut a), events(&mut b));
    assert_eq!(
        a.send(ca, 1, &[0; 99]),
        Err(ApiMisuse::MessageTooLarge {
            limit: 100,
            got: 101
        })
    );
    assert!(a.poll_message().is_none(), "nothing was queued");
    // The largest message that fits, corked alone: sent as a plain frame.
    a.cork();
    a.send(ca, 1, &[1; 98]).unwrap();
    a.uncork();
    let msgs = drain(&mut a);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].len(), 100);
    // Many corked messages: split over several batches, none too large, all delivered in order.
    a.cork();
    for i in 0..10u8 {
        a.send(ca, 2, &[i; 30]).unwrap();
    }
    a.uncork();
    let msgs = drain(&mut a);
    assert!(msgs.len() > 1);
    assert!(msgs.iter().all(|m| m.len() <= 100), "{msgs:?}");
    for m in &msgs {
        b.handle_message(m).unwrap();
    }
    b.handle_message(&h("0101 01")).unwrap();
    let got: Vec<_> = events(&mut b)
        .into_iter()
        .map(|e| match e {
            MuxEvent::Message {
                channel, payload, ..
            } => {
                assert_eq!(channel, cb);
                payload
            }
            e => panic!("{e:?}"),
        })
        .collect();
    let mut want: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 30]).collect();
    want.push(vec![1]);
    assert_eq!(got, want);
}

/// A remote open of ("p", no id) on remote channel `rid` with handshake `hs`.
fn remote_open(rid: u8, hs: &[u8]) -> Vec<u8> {
    let mut m = vec![0, 1, rid, 1, b'p', 0];
    m.extend_from_slice(hs);
    m
}

fn pendings(m: &mut Mux) -> Vec<PendingOpen> {
    events(m)
        .into_iter()
        .map(|e| match e {
            MuxEvent::RemoteOpen { pending, .. } => pending,
            e => panic!("{e:?}"),
        })
        .collect()
}

#[test]
fn duplicate_remote_opens_pair_oldest_first() {
    // fuzz/regressions/mux-duplicate-remote-open.bin
    let mut b = Mux::default();
    b.handle_message(&remote_open(1, b"h1")).unwrap();
    b.handle_message(&remote_open(2, b"h2")).unwrap();
    let [p1, p2] = pendings(&mut b)[..] else {
        panic!()
    };
    let cb = b.open("p", None, b"").unwrap();
    assert_eq!(
        events(&mut b),
        vec![MuxEvent::Opened {
            channel: cb,
            handshake: b"h1".to_vec()
        }]
    );
    assert!(!b.is_pending(p1), "accept bound the newer open");
    assert!(b.is_pending(p2));
    let _ = drain(&mut b);
    b.reject(p2);
    assert!(!b.is_pending(p2));
    assert_eq!(drain(&mut b), vec![h("000202")]);
    assert!(
        b.is_open(cb),
        "rejecting the newer open touched the bound one"
    );
}

#[test]
fn rejecting_or_closing_a_stale_duplicate_keeps_the_newer_open() {
    for close in [false, true] {
        let mut b = Mux::default();
        b.handle_message(&remote_open(1, b"h1")).unwrap();
        b.handle_message(&remote_open(2, b"h2")).unwrap();
        b.handle_message(&h("02 05 6c617465")).unwrap();
        let [p1, p2] = pendings(&mut b)[..] else {
            panic!()
        };
        if close {
            b.handle_message(&h("000301")).unwrap();
        } else {
            b.reject(p1);
        }
        assert!(!b.is_pending(p1));
        assert!(b.is_pending(p2));
        let cb = b.open("p", None, b"").unwrap();
        assert_eq!(
            events(&mut b),
            vec![
                MuxEvent::Opened {
                    channel: cb,
                    handshake: b"h2".to_vec()
                },
                MuxEvent::Message {
                    channel: cb,
                    message_type: 5,
                    payload: b"late".to_vec()
                },
            ],
            "close: {close}"
        );
        assert!(!b.is_pending(p2));
        assert_eq!(b.pending_bytes, 0);
        assert!(b.pending_keys.is_empty());
    }
}

#[test]
fn next_incoming_borrows_bound_messages_in_order_with_events() {
    let (mut a, mut b) = (Mux::default(), Mux::default());
    let ca = a.open("p", None, b"ha").unwrap();
    let cb = b.open("p", None, b"hb").unwrap();
    deliver(&mut a, &mut b);
    deliver(&mut b, &mut a);
    let _ = (events(&mut a), events(&mut b));
    // One batch: two messages on the channel, then its close, then a message after it.
    a.cork();
    a.send(ca, 1, b"one").unwrap();
    a.send(ca, 2, b"two").unwrap();
    a.close(ca).unwrap();
    a.uncork();
    let batch = drain(&mut a);
    assert_eq!(batch.len(), 1);
    let mut extra = batch[0].clone();
    // An item for the closed channel and a nested batch are dropped.
    extra.extend_from_slice(&h("00 01 03 01 78 02 00 00"));
    let mut incoming = Incoming::new(&extra);
    let first = b.next_incoming(&mut incoming).unwrap().unwrap();
    assert_eq!(
        (first.channel, first.message_type, first.payload),
        (cb, 1, &b"one"[..])
    );
    // Borrowed from the message, not copied.
    assert!(extra.as_ptr_range().contains(&first.payload.as_ptr()));
    assert!(events(&mut b).is_empty());
    let second = b.next_incoming(&mut incoming).unwrap().unwrap();
    assert_eq!((second.message_type, second.payload), (2, &b"two"[..]));
    assert_eq!(b.next_incoming(&mut incoming).unwrap(), None);
    assert_eq!(events(&mut b), vec![MuxEvent::Closed { channel: cb }]);
    assert_eq!(b.next_incoming(&mut incoming).unwrap(), None);

    // `handle_message` gives the same as owned events.
    let (mut c, mut d) = (Mux::default(), Mux::default());
    let cc = c.open("p", None, b"").unwrap();
    let cd = d.open("p", None, b"").unwrap();
    deliver(&mut c, &mut d);
    deliver(&mut d, &mut c);
    let _ = events(&mut d);
    c.cork();
    c.send(cc, 1, b"one").unwrap();
    c.close(cc).unwrap();
    c.uncork();
    deliver(&mut c, &mut d);
    assert_eq!(
        events(&mut d),
        vec![
            MuxEvent::Message {
                channel: cd,
                message_type: 1,
                payload: b"one".to_vec()
            },
            MuxEvent::Closed { channel: cd }
        ]
    );
}

#[test]
fn send_with_matches_send_and_survives_a_wrong_length() {
    let (mut a, mut b) = (Mux::default(), Mux::default());
    let ca = a.open("p", None, b"").unwrap();
    b.open("p", None, b"").unwrap();
    deliver(&mut a, &mut b);
    deliver(&mut b, &mut a);
    let (mut c, _) = (Mux::default(), ());
    let cc = c.open("p", None, b"").unwrap();
    drain(&mut a);
    drain(&mut c);
    for corked in [false, true] {
        if corked {
            a.cork();
            c.cork();
        }
        a.send(ca, 3, b"abc").unwrap();
        c.send_with(cc, 3, 3, |o| {
            o.raw(b"abc");
        })
        .unwrap();
        // Announced 2, wrote 4: sent as written.
        a.send(ca, 4, b"wxyz").unwrap();
        c.send_with(cc, 4, 2, |o| {
            o.raw(b"wxyz");
        })
        .unwrap();
        a.send(ca, 5, b"").unwrap();
        c.send_with(cc, 5, 0, |_| {}).unwrap();
        if corked {
            a.uncork();
            c.uncork();
        }
        assert_eq!(drain(&mut a), drain(&mut c));
    }
    assert_eq!(
        c.send_with(ChannelId(9), 1, 0, |_| {}),
        Err(ApiMisuse::UnknownChannel)
    );
}

#[test]
fn messages_have_room_for_encryption_and_written_buffers_are_reused() {
    let mut a = Mux::default();
    let ch = a.open("p", None, b"").unwrap();
    let _ = drain(&mut a);
    let batch = |a: &mut Mux| {
        a.cork();
        a.send(ch, 1, &[7; 40_000]).unwrap();
        a.send(ch, 1, &[8; 40_000]).unwrap();
        a.uncork();
        a.poll_message().unwrap()
    };
    let first = batch(&mut a);
    let mut b = Mux::default();
    b.handle_message(&first).unwrap();
    // Headroom in front, room for the MAC behind.
    let buf = first.into_inner();
    assert_eq!(&buf[..MessageBuf::HEADROOM], &[0; MessageBuf::HEADROOM]);
    assert!(buf.capacity() >= buf.len() + MessageBuf::TAILROOM);
    // A buffer handed back carries the next batch, then a large single message.
    a.recycle(buf);
    let second = batch(&mut a).into_inner();
    let ptr = second.as_ptr();
    assert!(second.capacity() >= 80_000);
    a.recycle(second);
    a.send(ch, 1, &[9; 50_000]).unwrap();
    let single = a.poll_message().unwrap();
    assert_eq!(single.len(), 2 + 50_000);
    let inner = single.into_inner();
    assert_eq!(inner.as_ptr(), ptr);
    assert!(inner.capacity() >= 80_000);
    // After `release_spares` nothing is kept.
    a.recycle(inner);
    a.release_spares();
    a.send(ch, 1, &[9; 50_000]).unwrap();
    assert!(a.poll_message().unwrap().into_inner().capacity() < 80_000);
}
