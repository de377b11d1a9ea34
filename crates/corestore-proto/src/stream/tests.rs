//! Two secret streams talking through in-memory buffers.

use super::*;

fn rand(b: u8) -> Randomness {
    Randomness {
        ephemeral_seed: [b; 32],
        header: [b ^ 0x55; 24],
    }
}

fn pair() -> (SecretStream, SecretStream) {
    let a = SecretStream::new(
        true,
        KeyPair::from_seed(&[1; 32]),
        &rand(3),
        StreamConfig::default(),
    );
    let b = SecretStream::new(
        false,
        KeyPair::from_seed(&[2; 32]),
        &rand(4),
        StreamConfig::default(),
    );
    (a, b)
}

/// Moves bytes both ways in chunks of `chunk` until quiet.
fn shuttle(a: &mut SecretStream, b: &mut SecretStream, now: Timestamp, chunk: usize) {
    for _ in 0..100 {
        let mut ab = Vec::new();
        let mut ba = Vec::new();
        let _ = a.poll_transmit(now, &mut ab);
        let _ = b.poll_transmit(now, &mut ba);
        if ab.is_empty() && ba.is_empty() {
            return;
        }
        for c in ab.chunks(chunk) {
            b.handle_bytes(now, c).unwrap();
        }
        for c in ba.chunks(chunk) {
            a.handle_bytes(now, c).unwrap();
        }
    }
    panic!("did not settle");
}

fn events(s: &mut SecretStream) -> Vec<StreamEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

#[test]
fn handshake_header_and_messages_any_chunking() {
    for chunk in [1, 7, 1000] {
        let (mut a, mut b) = pair();
        a.send(b"early").unwrap();
        shuttle(&mut a, &mut b, Timestamp::ZERO, chunk);
        let ea = events(&mut a);
        let eb = events(&mut b);
        let StreamEvent::HandshakeComplete {
            handshake_hash: ha,
            remote_public_key: ra,
        } = ea[0].clone()
        else {
            panic!("{ea:?}")
        };
        let StreamEvent::HandshakeComplete {
            handshake_hash: hb,
            remote_public_key: rb,
        } = eb[0].clone()
        else {
            panic!("{eb:?}")
        };
        assert_eq!(ha, hb);
        assert_eq!(ra, KeyPair::from_seed(&[2; 32]).public_key());
        assert_eq!(rb, KeyPair::from_seed(&[1; 32]).public_key());
        assert_eq!(eb[1], StreamEvent::Message(b"early".to_vec().into()));
        b.send(b"reply").unwrap();
        b.send(&[]).unwrap(); // an empty message is a keep-alive: not delivered
        shuttle(&mut a, &mut b, Timestamp::ZERO, chunk);
        assert_eq!(
            events(&mut a),
            vec![StreamEvent::Message(b"reply".to_vec().into())]
        );
    }
}

#[test]
fn wire_shape_matches_js_trace() {
    let (mut a, mut b) = pair();
    let mut out = Vec::new();
    let _ = a.poll_transmit(Timestamp::ZERO, &mut out);
    assert_eq!(&out[..3], &[0x20, 0, 0]);
    b.handle_bytes(Timestamp::ZERO, &out).unwrap();
    let mut out = Vec::new();
    let _ = b.poll_transmit(Timestamp::ZERO, &mut out);
    assert_eq!(&out[..3], &[0x60, 0, 0]);
    a.handle_bytes(Timestamp::ZERO, &out).unwrap();
    let mut out = Vec::new();
    let _ = a.poll_transmit(Timestamp::ZERO, &mut out);
    // msg3 then the 56-byte id/header frame.
    assert_eq!(out.len(), 3 + 64 + 3 + 56);
    assert_eq!(&out[67..70], &[0x38, 0, 0]);
}

#[test]
fn keep_alive_after_idle() {
    let (mut a, mut b) = pair();
    shuttle(&mut a, &mut b, Timestamp::ZERO, 4096);
    let _ = events(&mut a);
    let t = a.poll_timeout().unwrap();
    assert_eq!(t, Timestamp::ZERO + DEFAULT_KEEP_ALIVE);
    a.handle_timeout(t);
    let mut out = Vec::new();
    assert_eq!(a.poll_transmit(t, &mut out), Some(Transmit { len: 3 + 17 }));
    b.handle_bytes(t, &out).unwrap();
    assert!(
        events(&mut b)
            .iter()
            .all(|e| matches!(e, StreamEvent::HandshakeComplete { .. }))
    );
    assert_eq!(a.poll_timeout(), Some(t + DEFAULT_KEEP_ALIVE));
}

#[test]
fn handshake_deadline() {
    let (mut a, _b) = pair();
    let mut out = Vec::new();
    let _ = a.poll_transmit(Timestamp::ZERO, &mut out);
    let t = a.poll_timeout().unwrap();
    a.handle_timeout(t);
    assert!(matches!(
        a.poll_event(),
        Some(StreamEvent::Closed(ProtocolError::Handshake(_)))
    ));
    assert_eq!(a.send(b"x"), Err(ApiMisuse::Closed));
}

#[test]
fn bad_header_and_garbage_fail_cleanly() {
    let (mut a, mut b) = pair();
    let mut ab = Vec::new();
    let _ = a.poll_transmit(Timestamp::ZERO, &mut ab);
    b.handle_bytes(Timestamp::ZERO, &ab).unwrap();
    let mut ba = Vec::new();
    let _ = b.poll_transmit(Timestamp::ZERO, &mut ba);
    a.handle_bytes(Timestamp::ZERO, &ba).unwrap();
    let mut ab = Vec::new();
    let _ = a.poll_transmit(Timestamp::ZERO, &mut ab);
    ab[70] ^= 1; // corrupt the stream id
    assert_eq!(
        b.handle_bytes(Timestamp::ZERO, &ab),
        Err(ProtocolError::InvalidHeader)
    );
    assert_eq!(
        b.handle_bytes(Timestamp::ZERO, &[1, 2, 3]),
        Err(ProtocolError::InvalidHeader)
    );

    let (_, mut c) = pair();
    assert!(
        c.handle_bytes(Timestamp::ZERO, &[3, 0, 0, 1, 2, 3])
            .is_err()
    );
}

#[test]
fn pre_established_keys() {
    let hh = [9u8; 64];
    let ka = EstablishedKeys {
        tx: [1; 32],
        rx: [2; 32],
        handshake_hash: hh,
        remote_public_key: KeyPair::from_seed(&[2; 32]).public_key(),
    };
    let kb = EstablishedKeys {
        tx: [2; 32],
        rx: [1; 32],
        handshake_hash: hh,
        remote_public_key: KeyPair::from_seed(&[1; 32]).public_key(),
    };
    let mut a = SecretStream::with_keys(true, &ka, [5; 24], StreamConfig::default()).unwrap();
    let mut b = SecretStream::with_keys(false, &kb, [6; 24], StreamConfig::default()).unwrap();
    a.send(b"hi").unwrap();
    shuttle(&mut a, &mut b, Timestamp::ZERO, 3);
    let eb = events(&mut b);
    assert_eq!(eb.len(), 2);
    assert_eq!(eb[1], StreamEvent::Message(b"hi".to_vec().into()));
    let mut bad = ka;
    bad.remote_public_key = [0; 32];
    assert!(SecretStream::with_keys(true, &bad, [5; 24], StreamConfig::default()).is_err());
}

#[test]
fn handshake_frames_above_the_noise_limit_fail() {
    let (_, mut b) = pair();
    let mut frame = Vec::new();
    encode_frame(&vec![0; MAX_HANDSHAKE_MESSAGE_LEN + 1], &mut frame).unwrap();
    assert_eq!(
        b.handle_bytes(Timestamp::ZERO, &frame),
        Err(ProtocolError::Handshake("message too long"))
    );
}

#[test]
fn sent_buffers_become_frames_in_order() {
    let (mut a, mut b) = pair();
    // Before the handshake messages are queued, and sealed where they are afterwards.
    a.send_buf(MessageBuf::from_slice(b"queued")).unwrap();
    shuttle(&mut a, &mut b, Timestamp::ZERO, 1000);
    let _ = events(&mut b);
    a.send(b"first").unwrap();
    a.send(b"second").unwrap();
    let big = MessageBuf::from_slice(&[7; 100_000]);
    let ptr = big.as_ptr();
    a.send_buf(big).unwrap();
    a.send(b"third").unwrap();
    assert!(a.has_transmit());
    // Small frames are gathered into one buffer; the large one goes out alone, in the very
    // buffer it was sent in.
    let mut wire = Vec::new();
    let mut buffers = Vec::new();
    loop {
        let mut out = Vec::new();
        let Some(t) = a.poll_transmit(Timestamp::ZERO, &mut out) else {
            break;
        };
        assert_eq!(t.len, out.len());
        wire.extend_from_slice(&out);
        buffers.push(out);
    }
    assert!(!a.has_transmit());
    let lens: Vec<usize> = buffers.iter().map(Vec::len).collect();
    let small = |n: usize| 3 + n + ABYTES;
    assert_eq!(lens, vec![small(5) + small(6), small(100_000), small(5)]);
    assert_eq!(buffers[1][MessageBuf::HEADROOM..].as_ptr(), ptr);
    // Into a buffer that holds bytes already, frames are appended.
    a.send(b"fourth").unwrap();
    let mut out = b"xy".to_vec();
    assert_eq!(
        a.poll_transmit(Timestamp::ZERO, &mut out),
        Some(Transmit { len: small(6) })
    );
    wire.extend_from_slice(&out[2..]);
    b.handle_bytes(Timestamp::ZERO, &wire).unwrap();
    let got: Vec<Vec<u8>> = events(&mut b)
        .into_iter()
        .filter_map(|e| match e {
            StreamEvent::Message(m) => Some(m.to_vec()),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        vec![
            b"first".to_vec(),
            b"second".to_vec(),
            vec![7; 100_000],
            b"third".to_vec(),
            b"fourth".to_vec()
        ]
    );
}

#[test]
fn split_receiver_takes_over_mid_frame() {
    let (mut a, mut b) = pair();
    // Before the stream is open there is nothing to split off.
    assert_eq!(b.split_receiver().unwrap_err(), ApiMisuse::NoReceiver);
    shuttle(&mut a, &mut b, Timestamp::ZERO, 1000);
    let _ = events(&mut a);
    let _ = events(&mut b);
    let messages: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![i; 100 * usize::from(i) + 1])
        .collect();
    for m in &messages[..2] {
        a.send(m).unwrap();
    }
    a.send(&[]).unwrap(); // a keep-alive is dropped by the receiver too
    for m in &messages[2..] {
        a.send(m).unwrap();
    }
    let mut wire = Vec::new();
    while a.poll_transmit(Timestamp::ZERO, &mut wire).is_some() {}
    // The stream reads the first message and a part of the second; the receiver takes the
    // partial frame with it.
    let first = 3 + messages[0].len() + ABYTES;
    let cut = first + 10;
    b.handle_bytes(Timestamp::ZERO, &wire[..cut]).unwrap();
    let mut rx = b.split_receiver().unwrap();
    assert_eq!(b.split_receiver().unwrap_err(), ApiMisuse::NoReceiver);
    assert_eq!(
        events(&mut b),
        vec![StreamEvent::Message(messages[0].clone().into())]
    );
    let mut got = Vec::new();
    for chunk in wire[cut..].chunks(7) {
        rx.handle_bytes(chunk, &mut got).unwrap();
    }
    let got: Vec<Vec<u8>> = got.iter().map(|m| m.to_vec()).collect();
    assert_eq!(got, messages[1..]);
    // Bytes fed to the stream now are a caller's mistake, and fail it.
    assert_eq!(
        b.handle_bytes(Timestamp::ZERO, &wire[..1]).unwrap_err(),
        ProtocolError::ReceiverSplit
    );
    assert!(matches!(
        events(&mut b).as_slice(),
        [StreamEvent::Closed(ProtocolError::ReceiverSplit)]
    ));
    assert_eq!(b.split_receiver().unwrap_err(), ApiMisuse::Closed);
}

#[test]
fn split_receiver_fails_on_a_bad_frame_and_stays_failed() {
    let (mut a, mut b) = pair();
    shuttle(&mut a, &mut b, Timestamp::ZERO, 1000);
    let mut rx = b.split_receiver().unwrap();
    a.send(b"good").unwrap();
    a.send(b"tampered").unwrap();
    let mut wire = Vec::new();
    while a.poll_transmit(Timestamp::ZERO, &mut wire).is_some() {}
    let last = wire.len() - 1;
    wire[last] ^= 1;
    let mut got = Vec::new();
    assert_eq!(
        rx.handle_bytes(&wire, &mut got).unwrap_err(),
        ProtocolError::Decryption
    );
    // The message before the bad one is delivered; nothing after it is read.
    assert_eq!(got.len(), 1);
    assert_eq!(&*got[0], b"good");
    assert_eq!(
        rx.handle_bytes(&wire[..3], &mut got).unwrap_err(),
        ProtocolError::Decryption
    );
    assert_eq!(got.len(), 1);
    // Frames above the configured maximum fail it as well, before any body is read.
    let (mut a, _) = pair();
    let mut b = SecretStream::new(
        false,
        KeyPair::from_seed(&[2; 32]),
        &rand(4),
        StreamConfig {
            max_frame: 1000,
            ..StreamConfig::default()
        },
    );
    shuttle(&mut a, &mut b, Timestamp::ZERO, 1000);
    let mut rx = b.split_receiver().unwrap();
    assert_eq!(
        rx.handle_bytes(&[0xe9, 0x03, 0x00], &mut got).unwrap_err(),
        ProtocolError::FrameTooLarge {
            limit: 1000,
            got: 1001
        }
    );
}

#[test]
fn split_receiver_reuses_the_buffers_of_handled_messages() {
    fn receive(a: &mut SecretStream, rx: &mut Receiver, msg: &[u8]) -> Vec<Plaintext> {
        a.send(msg).unwrap();
        let mut wire = Vec::new();
        while a.poll_transmit(Timestamp::ZERO, &mut wire).is_some() {}
        let mut got = Vec::new();
        rx.handle_bytes(&wire, &mut got).unwrap();
        got
    }
    let (mut a, mut b) = pair();
    shuttle(&mut a, &mut b, Timestamp::ZERO, 1000);
    let mut rx = b.split_receiver().unwrap();
    let shared = receive(&mut a, &mut rx, &[1; 1000]).remove(0).into_shared();
    let buffer = shared.as_ptr() as usize - 1; // behind the tag byte
    let value = shared.slice(10..20);
    drop(shared);
    // A value decoded from the message still holds the buffer; once it goes (on any
    // thread), the buffer is back in the pool and the next frame is received into it.
    assert!(rx.pool().is_empty());
    std::thread::spawn(move || drop(value)).join().unwrap();
    assert_eq!(rx.pool().len(), 1);
    let next = receive(&mut a, &mut rx, &[2; 500]).remove(0).into_shared();
    assert_eq!(next.as_ptr() as usize - 1, buffer);
    assert_eq!(&next[..], &[2; 500][..]);
    assert!(rx.pool().is_empty());
    drop(next);
    assert_eq!(rx.pool().len(), 1);
    // A keep-alive (the peer was quiet) drops what the pool keeps.
    assert!(receive(&mut a, &mut rx, &[]).is_empty());
    assert!(rx.pool().is_empty());
}
