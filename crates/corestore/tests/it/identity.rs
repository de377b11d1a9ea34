//! `Corestore::replicate_with`: a fixed Noise identity, and streams whose keys come from a
//! handshake made elsewhere (as a swarm library hands them over).

use corestore::{CoreEvent, EstablishedKeys, Hypercore, KeyPair, ReplicateOptions};
use tokio::sync::broadcast;

use crate::replicate::writer_with;
use crate::{bounded, memory_store};

/// Waits for the `PeerAdd` event of a core and returns the remote key it names.
async fn peer_added(events: &mut broadcast::Receiver<CoreEvent>) -> [u8; 32] {
    loop {
        if let CoreEvent::PeerAdd { remote_public_key } = events.recv().await.unwrap() {
            return remote_public_key;
        }
    }
}

async fn read_all(reader: &Hypercore, blocks: u64) {
    bounded(reader.download(0..blocks).done()).await.unwrap();
    assert_eq!(
        reader.get(blocks - 1).await.unwrap(),
        format!("id-{}", blocks - 1).into_bytes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_key_pair_is_the_identity_the_remote_sees() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "id", 20).await;
    let reader = b.get(writer.key()).await.unwrap();
    let mut events = reader.events();
    let identity = KeyPair::generate().unwrap();
    let (x, y) = tokio::io::duplex(64 * 1024);
    let options = ReplicateOptions::new(true).key_pair(identity.clone());
    let ha = a.replicate_with(x, options).unwrap();
    let hb = b.replicate(y, false).unwrap();
    assert_eq!(
        bounded(peer_added(&mut events)).await,
        identity.public_key().to_bytes()
    );
    read_all(&reader, 20).await;
    ha.close();
    bounded(ha.join()).await.unwrap();
    bounded(hb.join()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_from_an_outside_handshake_replicate() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "id", 20).await;
    let reader = b.get(writer.key()).await.unwrap();
    let mut events = reader.events();
    // What a Noise IK handshake in a swarm library would have produced on both sides.
    let pk = |seed: u8| corestore_proto::noise::KeyPair::from_seed(&[seed; 32]).public_key();
    let hash = [42; 64];
    let keys = |tx: u8, rx: u8, remote: u8| EstablishedKeys {
        tx: [tx; 32],
        rx: [rx; 32],
        handshake_hash: hash,
        remote_public_key: pk(remote),
    };
    let (x, y) = tokio::io::duplex(64 * 1024);
    let ha = a
        .replicate_with(x, ReplicateOptions::new(true).established(keys(1, 2, 20)))
        .unwrap();
    let hb = b
        .replicate_with(y, ReplicateOptions::new(false).established(keys(2, 1, 10)))
        .unwrap();
    assert_eq!(bounded(peer_added(&mut events)).await, pk(10));
    read_all(&reader, 20).await;
    ha.close();
    bounded(ha.join()).await.unwrap();
    bounded(hb.join()).await.unwrap();

    // Mismatched keys: the side that cannot decrypt ends with an error, then both end.
    let (c, d) = (memory_store().await, memory_store().await);
    // `d` has a core to announce, so it sends an encrypted message right away.
    let _announced = writer_with(&d, "id", 1).await;
    let (x, y) = tokio::io::duplex(64 * 1024);
    let hc = c
        .replicate_with(x, ReplicateOptions::new(true).established(keys(1, 2, 20)))
        .unwrap();
    let hd = d
        .replicate_with(y, ReplicateOptions::new(false).established(keys(3, 1, 10)))
        .unwrap();
    let ended = bounded(hc.join()).await;
    assert!(
        matches!(
            ended,
            Err(corestore::Error::Protocol(
                corestore_proto::ProtocolError::Decryption
            ))
        ),
        "{ended:?}"
    );
    let _ = bounded(hd.join()).await;
}
