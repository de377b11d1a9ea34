//! In-crate simulations: two [`Connection`]s wired through in-memory buffers with a virtual
//! clock. No sleeps: time only moves when a test calls [`Pair::advance`].

mod replication;

use std::time::Duration;

use crate::noise::KeyPair;
use crate::replicate::{Event, Peer, PeerConfig};
use crate::stream::{Randomness, Receiver, StreamConfig};
use crate::{Connection, ConnectionEvent, Timestamp};

/// Two connections, `a` the initiator, and what each reported.
pub(crate) struct Pair {
    pub(crate) a: Connection,
    pub(crate) b: Connection,
    pub(crate) now: Timestamp,
    pub(crate) a_events: Vec<ConnectionEvent>,
    pub(crate) b_events: Vec<ConnectionEvent>,
    /// `a`'s receiving half, once split off: `a`'s input goes through it.
    pub(crate) a_rx: Option<Receiver>,
    /// The same for `b`.
    pub(crate) b_rx: Option<Receiver>,
}

fn connection(initiator: bool, seed: u8) -> Connection {
    let random = Randomness {
        ephemeral_seed: [seed.wrapping_add(100); 32],
        header: [seed; 24],
    };
    Connection::new(
        initiator,
        KeyPair::from_seed(&[seed; 32]),
        &random,
        StreamConfig::default(),
        PeerConfig::default(),
    )
}

impl Pair {
    pub(crate) fn new() -> Self {
        Self {
            a: connection(true, 1),
            b: connection(false, 2),
            now: Timestamp::ZERO,
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_rx: None,
            b_rx: None,
        }
    }

    /// Shuttles bytes until both sides are quiet (bounded: panics on a livelock).
    pub(crate) fn drive_bounded(&mut self) {
        for _ in 0..1000 {
            let (mut ab, mut ba) = (Vec::new(), Vec::new());
            while self.a.poll_transmit(self.now, &mut ab).is_some() {}
            while self.b.poll_transmit(self.now, &mut ba).is_some() {}
            if ab.is_empty() && ba.is_empty() {
                self.collect();
                return;
            }
            // Failures surface as `ConnectionEvent::Closed`.
            feed(&mut self.b, self.b_rx.as_mut(), self.now, &ab);
            self.feed_a(&ba);
            self.collect();
        }
        panic!("drive_bounded: no quiescence after 1000 rounds");
    }

    /// Feeds `a` from the transport, through its receiver if it is split off.
    fn feed_a(&mut self, input: &[u8]) {
        feed(&mut self.a, self.a_rx.as_mut(), self.now, input);
    }

    fn collect(&mut self) {
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
    }

    /// Moves the virtual clock and fires due timers on both sides.
    pub(crate) fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
        for c in [&mut self.a, &mut self.b] {
            if c.poll_timeout().is_some_and(|t| t <= self.now) {
                c.handle_timeout(self.now);
            }
        }
        self.collect();
    }

    pub(crate) fn pa(&mut self) -> &mut Peer {
        self.a.peer().expect("a handshake")
    }

    pub(crate) fn pb(&mut self) -> &mut Peer {
        self.b.peer().expect("b handshake")
    }

    /// Takes the replication events of one side.
    pub(crate) fn take(events: &mut Vec<ConnectionEvent>) -> Vec<Event> {
        std::mem::take(events)
            .into_iter()
            .filter_map(|e| match e {
                ConnectionEvent::Replication(e) => Some(e),
                _ => None,
            })
            .collect()
    }
}

/// Feeds `c` from the transport, through `rx` if its receiver is split off.
fn feed(c: &mut Connection, rx: Option<&mut Receiver>, now: Timestamp, input: &[u8]) {
    let Some(rx) = rx else {
        let _ = c.handle_bytes(now, input);
        return;
    };
    let mut messages = Vec::new();
    let r = rx.handle_bytes(input, &mut messages);
    for m in messages {
        // The buffers go back to the receiver's pool by themselves.
        assert!(matches!(c.handle_plaintext(now, m), Ok(None) | Err(_)));
    }
    if let Err(e) = r {
        c.handle_receive_error(e);
    }
}

#[test]
fn pair_handshakes() {
    let mut p = Pair::new();
    p.drive_bounded();
    assert!(matches!(
        p.a_events[0],
        ConnectionEvent::HandshakeComplete { .. }
    ));
    assert!(matches!(
        p.b_events[0],
        ConnectionEvent::HandshakeComplete { .. }
    ));
    // Idle streams send keep-alives only when their timer fires.
    let t = p.a.poll_timeout().unwrap();
    p.advance(t.saturating_duration_since(p.now));
    p.drive_bounded();
    assert_eq!(p.a_events.len(), 1);
}

#[test]
fn a_failed_connection_reports_closed_once_and_goes_quiet() {
    let mut p = Pair::new();
    p.drive_bounded();
    p.a_events.clear();
    // b sends a truncated protomux message, then more traffic.
    for _ in 0..3 {
        p.b.stream.send(&[0x01]).unwrap();
    }
    let mut ba = Vec::new();
    while p.b.poll_transmit(p.now, &mut ba).is_some() {}
    assert!(p.a.handle_bytes(p.now, &ba).is_err());
    p.b.stream.send(&[0x01, 0x00, 0x00]).unwrap();
    let mut ba = Vec::new();
    while p.b.poll_transmit(p.now, &mut ba).is_some() {}
    assert!(p.a.handle_bytes(p.now, &ba).is_err());
    p.collect();
    let closed = p
        .a_events
        .iter()
        .filter(|e| matches!(e, ConnectionEvent::Closed(_)))
        .count();
    assert_eq!(closed, 1, "{:?}", p.a_events);
    // No keep-alives or anything else afterwards.
    assert_eq!(p.a.poll_timeout(), None);
    p.advance(Duration::from_secs(60));
    p.a.handle_timeout(p.now);
    let mut out = Vec::new();
    assert!(p.a.poll_transmit(p.now, &mut out).is_none());
    assert!(out.is_empty());
    assert!(p.a.poll_event().is_none());
}

#[test]
fn a_stream_failure_is_reported_once() {
    let mut p = Pair::new();
    p.drive_bounded();
    p.a_events.clear();
    // Garbage that fails decryption.
    assert!(p.a.handle_bytes(p.now, &[1, 0, 0, 0]).is_err());
    assert!(p.a.handle_bytes(p.now, &[1, 0, 0, 0]).is_err());
    p.collect();
    assert_eq!(p.a_events.len(), 1, "{:?}", p.a_events);
    assert!(matches!(p.a_events[0], ConnectionEvent::Closed(_)));
}

#[test]
fn a_split_receiver_feeds_the_connection() {
    let mut p = Pair::new();
    assert_eq!(
        p.a.split_receiver().unwrap_err(),
        crate::ApiMisuse::NoReceiver
    );
    p.drive_bounded();
    p.a_rx = Some(p.a.split_receiver().unwrap());
    p.a_events.clear();
    // Replication runs over the split connection as over a whole one (a channel opens both
    // ways, requests and answers flow in `replication.rs`'s tests with the same `Pair`).
    let key = [7; 32];
    let state = crate::replicate::CoreState {
        fork: 0,
        length: 0,
        contiguous_length: 0,
        downloading: true,
        has_manifest: false,
    };
    let ca = p.pa().open_core(&key, state).unwrap();
    p.drive_bounded();
    let eb = Pair::take(&mut p.b_events);
    let Some(Event::RemoteOpen { id, .. }) = eb.first() else {
        panic!("{eb:?}")
    };
    let dk: [u8; 32] = id.as_deref().unwrap().try_into().unwrap();
    let cb = p.pb().open_core_with(&key, &dk, state).unwrap();
    p.drive_bounded();
    assert!(Pair::take(&mut p.a_events).contains(&Event::CoreOpened { core: ca }));
    assert!(Pair::take(&mut p.b_events).contains(&Event::CoreOpened { core: cb }));
    // A frame the receiver refuses fails the connection once; it goes quiet.
    p.feed_a(&[1, 0, 0, 0]);
    p.feed_a(&[1, 0, 0, 0]);
    p.collect();
    assert_eq!(
        p.a_events,
        vec![ConnectionEvent::Closed(crate::ProtocolError::Decryption)]
    );
    assert!(p.a.handle_plaintext(p.now, b"x".to_vec().into()).is_err());
    let mut out = Vec::new();
    assert!(p.a.poll_transmit(p.now, &mut out).is_none());
    assert_eq!(p.a.poll_timeout(), None);
}
