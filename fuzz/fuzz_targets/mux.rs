//! `corestore_proto::mux::Mux`: arbitrary remote frames through `handle_message`, interleaved
//! with local opens, closes, rejects, sends and corks, checked against a model of the channels.
//!
//! Input: records `op || u16le len || bytes[len]` (a short last record takes what is left).
//! `op % 10`: 0–3 a remote message (`bytes` as is), 4 open, 5 close, 6 answer a pending remote
//! open (accept or reject), 7 send, 8 cork, 9 uncork. The seeds are the frames of the traced
//! replication session (`crates/corestore-proto/tests/vectors/replication-trace.json`).
//!
//! Invariants: no panic; events only name channels in the model, in order (`Opened` once for an
//! opening channel, `Message` only on an open one, `Closed` ends it); `close` fails exactly for
//! channels not in the model; `is_open` agrees with the model; a pending remote open is no
//! longer pending once rejected, and accepting (`open` with its protocol and id) binds the oldest
//! pending open of that key, leaving newer ones pending (protomux pairs them first come, first
//! served).

#![no_main]

use std::collections::BTreeMap;

use corestore_proto::mux::{ChannelId, Mux, MuxConfig, MuxEvent, PendingOpen};
use libfuzzer_sys::fuzz_target;

const PROTOCOLS: [&str; 2] = ["hypercore/alpha", "other"];

/// Channel ids: none, the discovery key of the traced session, and a short one.
const IDS: [Option<&[u8]>; 3] = [
    None,
    Some(&[
        0x91, 0x1c, 0xe7, 0x6d, 0x4b, 0xb2, 0xb6, 0x2e, 0x40, 0x73, 0xe9, 0xab, 0xe5, 0x01, 0x09,
        0xb6, 0x14, 0x85, 0x0d, 0xbd, 0xba, 0x5e, 0x01, 0x32, 0x41, 0xfc, 0x8b, 0x2e, 0xb2, 0xed,
        0x8e, 0x28,
    ]),
    Some(b"id"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    Open,
}

#[derive(Default)]
struct Model {
    channels: BTreeMap<ChannelId, State>,
    /// Remote opens reported and not answered yet, with their protocol and id.
    pending: Vec<(PendingOpen, String, Option<Vec<u8>>)>,
}

impl Model {
    fn pick_channel(&self, b: u8) -> Option<ChannelId> {
        let n = self.channels.len();
        if n == 0 {
            return None;
        }
        self.channels.keys().nth(usize::from(b) % n).copied()
    }

    fn drain(&mut self, mux: &mut Mux) {
        while let Some(e) = mux.poll_event() {
            match e {
                MuxEvent::RemoteOpen {
                    pending,
                    protocol,
                    id,
                    ..
                } => {
                    // (A later item of the same batch may already have closed it.)
                    let key = (protocol, id);
                    // Handles are remote channel ids: a new open can reuse a closed one's id.
                    self.pending.retain(|(p, ..)| *p != pending);
                    self.pending.push((pending, key.0, key.1));
                }
                MuxEvent::Opened { channel, .. } => {
                    let state = self.channels.get_mut(&channel);
                    assert_eq!(
                        state.as_deref(),
                        Some(&State::Opening),
                        "Opened for {channel:?}"
                    );
                    if let Some(s) = state {
                        *s = State::Open;
                    }
                }
                MuxEvent::Message { channel, .. } => {
                    assert_eq!(
                        self.channels.get(&channel),
                        Some(&State::Open),
                        "Message on {channel:?}"
                    );
                }
                MuxEvent::Closed { channel, .. } => {
                    assert!(
                        self.channels.remove(&channel).is_some(),
                        "Closed for unknown {channel:?}"
                    );
                }
                _ => {}
            }
        }
        self.pending.retain(|(p, ..)| mux.is_pending(*p));
        for (&channel, &state) in &self.channels {
            assert_eq!(
                mux.is_open(channel),
                state == State::Open,
                "is_open({channel:?})"
            );
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let mut config = MuxConfig::default();
    // Small limits so that the overflow paths are reachable.
    config.max_remote_channels = 8;
    config.max_pending_bytes = 512;
    let mut mux = Mux::new(config);
    let mut model = Model::default();
    let mut rest = input;
    while let [op, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(tail.len());
        let (bytes, tail) = tail.split_at(len);
        rest = tail;
        let b = |i: usize| bytes.get(i).copied().unwrap_or(0);
        match op % 10 {
            0..=3 => {
                // Errors are typed and leave the mux usable (the caller decides to close).
                let _ = mux.handle_message(bytes);
            }
            4 => {
                let protocol = PROTOCOLS[usize::from(b(0)) % PROTOCOLS.len()];
                let id = IDS[usize::from(b(1)) % IDS.len()];
                let handshake = bytes.get(2..).unwrap_or_default();
                if let Ok(channel) = mux.open(protocol, id, handshake) {
                    assert!(
                        model.channels.insert(channel, State::Opening).is_none(),
                        "open returned a live channel id {channel:?}"
                    );
                }
            }
            5 => {
                if let Some(channel) = model.pick_channel(b(0)) {
                    assert!(mux.close(channel).is_ok(), "close of a live channel failed");
                    model.channels.remove(&channel);
                    assert!(mux.close(channel).is_err(), "second close succeeded");
                }
            }
            6 => {
                if !model.pending.is_empty() {
                    let i = usize::from(b(0)) % model.pending.len();
                    let (pending, protocol, id) = model.pending[i].clone();
                    let same_key = |(_, pr, i): &(PendingOpen, String, Option<Vec<u8>>)| {
                        (pr, i) == (&protocol, &id)
                    };
                    if b(1) % 2 == 0 {
                        model.pending.remove(i);
                        mux.reject(pending);
                        assert!(!mux.is_pending(pending), "still pending after reject");
                    } else if let Ok(channel) =
                        mux.open(&protocol, id.as_deref(), bytes.get(2..).unwrap_or_default())
                    {
                        assert!(model.channels.insert(channel, State::Opening).is_none());
                        // protomux pairs remote opens of one (protocol, id) first come, first
                        // served: the accept binds the oldest pending one (regression:
                        // fuzz/regressions/mux-duplicate-remote-open.bin).
                        let oldest = model.pending.iter().position(same_key).unwrap_or(i);
                        let (bound, ..) = model.pending.remove(oldest);
                        assert!(!mux.is_pending(bound), "still pending after accept");
                    }
                    for (p, ..) in model.pending.iter().filter(|e| same_key(e)) {
                        assert!(mux.is_pending(*p), "a newer open of the key was dropped");
                    }
                }
            }
            7 => {
                if let Some(channel) = model.pick_channel(b(0)) {
                    assert!(
                        mux.send(channel, u64::from(b(1)), bytes.get(2..).unwrap_or_default())
                            .is_ok()
                    );
                }
            }
            8 => mux.cork(),
            _ => mux.uncork(),
        }
        model.drain(&mut mux);
        while mux.poll_message().is_some() {}
    }
});
