//! A store replicating with a hand-driven `corestore-proto` peer, which can send what the
//! facade itself never sends: invalid requests, and extension messages checked byte by byte.

use corestore::{Error, Hypercore, convert};
use corestore_proto::noise::KeyPair;
use corestore_proto::replicate::{CoreId, CoreState, Event, PeerConfig, RequestSpec};
use corestore_proto::stream::{Randomness, StreamConfig};
use corestore_proto::wire::{Range, RequestBlock, RequestUpgrade};
use corestore_proto::{Connection, ConnectionEvent, ProtocolError, Timestamp};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};

use crate::{bounded, memory_store};

/// The remote end of a pipe, driven by hand.
pub(crate) struct Raw {
    pub(crate) conn: Connection,
    io: DuplexStream,
    pub(crate) core: Option<CoreId>,
}

impl Raw {
    /// A peer with the static key from `seed`.
    pub(crate) fn new(io: DuplexStream, initiator: bool, seed: u8) -> Self {
        let random = Randomness {
            ephemeral_seed: [seed ^ 0x5a; 32],
            header: [seed; 24],
        };
        let conn = Connection::new(
            initiator,
            KeyPair::from_seed(&[seed; 32]),
            &random,
            StreamConfig::default(),
            PeerConfig::default(),
        );
        Self {
            conn,
            io,
            core: None,
        }
    }

    async fn flush(&mut self) {
        let mut out = Vec::new();
        while self.conn.poll_transmit(Timestamp::ZERO, &mut out).is_some() {}
        if !out.is_empty() {
            // The other side may have ended the stream already.
            let _ = self.io.write_all(&out).await;
        }
    }

    /// Exchanges bytes until an event matches `want` (returned), or the stream ends (`None`).
    /// Every other event is dropped, except that the core channel of `key` is opened once the
    /// handshake completes.
    pub(crate) async fn until(
        &mut self,
        key: &[u8; 32],
        mut want: impl FnMut(&ConnectionEvent) -> bool,
    ) -> Option<ConnectionEvent> {
        let mut buf = vec![0; 64 * 1024];
        loop {
            while let Some(e) = self.conn.poll_event() {
                if matches!(e, ConnectionEvent::HandshakeComplete { .. })
                    && self.core.is_none()
                    && let Some(p) = self.conn.peer()
                {
                    self.core = p.open_core(key, CoreState::default()).ok();
                }
                if want(&e) {
                    self.flush().await;
                    return Some(e);
                }
            }
            self.flush().await;
            let n = self.io.read(&mut buf).await.unwrap_or(0);
            if n == 0 || self.conn.handle_bytes(Timestamp::ZERO, &buf[..n]).is_err() {
                return None;
            }
        }
    }

    /// Sends a request on the core channel.
    pub(crate) fn request(&mut self, spec: RequestSpec) -> u64 {
        let core = self.core.expect("core channel");
        let peer = self.conn.peer().expect("peer");
        peer.request(Timestamp::ZERO, core, spec).expect("request")
    }
}

/// A writer with `blocks` blocks serving over a pipe to a [`Raw`] peer that is synced.
async fn serve(
    blocks: u64,
) -> (
    corestore::Corestore,
    Hypercore,
    corestore::ReplicationHandle,
    Raw,
) {
    let store = memory_store().await;
    let core = crate::replicate::writer_with(&store, "served", blocks).await;
    let (x, y) = tokio::io::duplex(64 * 1024);
    let handle = store.replicate(x, false).unwrap();
    let mut raw = Raw::new(y, true, 9);
    let key = core.key().to_bytes();
    let synced = bounded(raw.until(&key, |e| {
        matches!(e, ConnectionEvent::Replication(Event::Synced { .. }))
    }))
    .await;
    assert!(synced.is_some(), "no sync from the store");
    (store, core, handle, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswerable_requests_get_no_data() {
    let (_store, core, handle, mut raw) = serve(10).await;
    let key = core.key().to_bytes();
    // A tree node beyond our length and a block beyond it: `noData`, the stream stays.
    for spec in [
        RequestSpec {
            hash: Some(RequestBlock {
                index: 99,
                nodes: 0,
            }),
            ..RequestSpec::default()
        },
        RequestSpec {
            block: Some(RequestBlock {
                index: 20,
                nodes: 0,
            }),
            ..RequestSpec::default()
        },
    ] {
        let id = raw.request(spec);
        let got = bounded(raw.until(&key, |e| {
            matches!(e, ConnectionEvent::Replication(Event::NoData { request, .. }) if *request == id)
        }))
        .await;
        assert!(got.is_some(), "no noData for request {id}");
    }
    // A valid block request is still answered.
    let id = raw.request(RequestSpec {
        block: Some(RequestBlock { index: 3, nodes: 0 }),
        upgrade: Some(RequestUpgrade {
            start: 0,
            length: 10,
        }),
        ..RequestSpec::default()
    });
    let got = bounded(raw.until(&key, |e| {
        matches!(e, ConnectionEvent::Replication(Event::Data { data, .. }) if data.request == id)
    }))
    .await;
    assert!(got.is_some(), "no data for a valid request");
    assert!(!handle.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_request_ends_the_stream() {
    let (_store, core, handle, mut raw) = serve(10).await;
    let key = core.key().to_bytes();
    // An upgrade beyond our length on our fork: hypercore 10 destroys the stream.
    raw.request(RequestSpec {
        upgrade: Some(RequestUpgrade {
            start: 0,
            length: 20,
        }),
        ..RequestSpec::default()
    });
    let after = bounded(raw.until(&key, |e| {
        matches!(
            e,
            ConnectionEvent::Replication(Event::Data { .. } | Event::NoData { .. })
        )
    }))
    .await;
    assert!(after.is_none(), "the stream went on: {after:?}");
    let ended = bounded(handle.join()).await;
    assert!(
        matches!(
            ended,
            Err(Error::Protocol(ProtocolError::InvalidRequest(_)))
        ),
        "{ended:?}"
    );
}

/// Bytes that fail decryption once the stream is open end the stream with the decryption
/// error, whether the store's receiver task reads them (multi-threaded runtime) or its driver
/// (one thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_that_fails_decryption_ends_the_stream() {
    frame_that_fails_decryption().await;
}

#[tokio::test]
async fn a_frame_that_fails_decryption_ends_the_stream_on_one_thread() {
    frame_that_fails_decryption().await;
}

async fn frame_that_fails_decryption() {
    let (_store, _core, handle, mut raw) = serve(10).await;
    let mut garbage = vec![40, 0, 0];
    garbage.extend_from_slice(&[0xa5; 40]);
    raw.io.write_all(&garbage).await.unwrap();
    let ended = bounded(handle.join()).await;
    assert!(
        matches!(ended, Err(Error::Protocol(ProtocolError::Decryption))),
        "{ended:?}"
    );
}

/// A writer peer answers the first request for block 0 with `noData` (and then announces it
/// again). The reader's trimmed request for block 1 leaned on that proof (it brings block 1's
/// leaf): the proof of block 1 is not anchored, which is not the writer's fault; block 1 is
/// asked for again with every node the reader misses, and the whole download completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_proof_only_delays_the_blocks_that_leaned_on_it() {
    const N: u64 = 16;
    let key_pair = corestore_keys::corestore::named_key_pair(
        &corestore_keys::PrimaryKey::from_bytes([0x21; 32]),
        &corestore_keys::Namespace::DEFAULT,
        "trimmed",
    );
    let mut writer = hypercore_lite::Core::open_storage(
        hypercore_lite::CoreStorage::memory(),
        hypercore_lite::CoreOptions::new().key_pair(key_pair),
    )
    .unwrap();
    let values: Vec<Vec<u8>> = (0..N)
        .map(|i| format!("trimmed-{i}").into_bytes())
        .collect();
    writer.append_batch(&values).unwrap();
    let key = writer.key().0;

    let store = memory_store().await;
    let reader = store.get(key).await.unwrap();
    let (x, y) = tokio::io::duplex(64 * 1024);
    let handle = store.replicate(x, false).unwrap();
    let mut raw = Raw::new(y, true, 7);
    let state = CoreState {
        fork: 0,
        length: N,
        contiguous_length: N,
        downloading: false,
        has_manifest: false,
    };
    let download = {
        let reader = reader.session().unwrap();
        tokio::spawn(async move { reader.download(0..N).done().await })
    };
    // Every block request the writer saw, in order: (block, nodes).
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(u64, u64)>::new()));
    let seen = std::sync::Arc::clone(&asked);
    let server = tokio::spawn(async move {
        let (mut refused, mut opened) = (false, false);
        // Announced on open, and again after the refusal.
        let all = Range {
            drop: false,
            start: 0,
            length: N,
        };
        loop {
            let Some(event) = raw
                .until(&key, |e| {
                    matches!(
                        e,
                        ConnectionEvent::Replication(
                            Event::Request { .. } | Event::CoreOpened { .. }
                        )
                    )
                })
                .await
            else {
                return;
            };
            let core = raw.core.expect("core channel");
            let peer = raw.conn.peer().expect("peer");
            let request = match event {
                ConnectionEvent::Replication(Event::CoreOpened { .. }) if !opened => {
                    opened = true;
                    peer.update_core(core, state).unwrap();
                    peer.send_range(core, all).unwrap();
                    continue;
                }
                ConnectionEvent::Replication(Event::Request { request, .. }) => request,
                _ => continue,
            };
            if let Some(b) = request.block {
                seen.lock().unwrap().push((b.index, b.nodes));
                if b.index == 0 && !refused {
                    refused = true;
                    peer.send_no_data(core, request.id).unwrap();
                    peer.send_range(core, all).unwrap();
                    continue;
                }
            }
            let proof = writer
                .proof(&convert::request_from_wire(&request))
                .unwrap()
                .expect("a proof");
            peer.send_data(core, convert::data_from_proof(request.id, proof))
                .unwrap();
        }
    });
    bounded(download).await.unwrap().unwrap();
    // No proof counted against the writer: the stream is still up (until the writer goes).
    assert!(!handle.is_finished(), "the stream ended");
    server.abort();
    let asked = asked.lock().unwrap().clone();
    for i in 0..N {
        assert_eq!(bounded(reader.get(i)).await.unwrap(), values[i as usize]);
    }
    let first_of_1 = asked.iter().position(|a| a.0 == 1).unwrap();
    assert_eq!(asked[first_of_1], (1, 0), "block 1 trimmed: {asked:?}");
    // Block 1's proof leaned on block 0's, which never came: block 1 is asked again, in full
    // unless block 0 was asked again (in full) before it, whose proof then brings the node.
    let again = first_of_1
        + 1
        + asked[first_of_1 + 1..]
            .iter()
            .position(|a| a.0 == 1)
            .expect("block 1 asked again");
    let zero_again_first = asked[first_of_1 + 1..again]
        .iter()
        .any(|&(b, n)| b == 0 && n > 0);
    assert!(
        asked[again].1 > 0 || zero_again_first,
        "block 1 asked again in full, or trimmed behind a full request of block 0: {asked:?}"
    );
}
