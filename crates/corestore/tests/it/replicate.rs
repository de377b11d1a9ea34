//! Two stores replicating over `tokio::io::duplex`: full and sparse downloads, live appends,
//! many cores on one stream, cores opened late, and cores served from storage.

use corestore::{
    CoreEvent, Corestore, GetOptions, Hypercore, ReplicationHandle, StoreOptions, StoreStorage,
};

use crate::{bounded, memory_store};

/// Connects two stores with an in-memory pipe.
fn connect(a: &Corestore, b: &Corestore) -> (ReplicationHandle, ReplicationHandle) {
    let (x, y) = tokio::io::duplex(64 * 1024);
    (
        a.replicate(x, true).unwrap(),
        b.replicate(y, false).unwrap(),
    )
}

pub(crate) async fn writer_with(store: &Corestore, name: &str, blocks: u64) -> Hypercore {
    let core = store.get(GetOptions::name(name)).await.unwrap();
    let data: Vec<Vec<u8>> = (0..blocks)
        .map(|i| format!("{name}-{i}").into_bytes())
        .collect();
    core.append_batch(&data).await.unwrap();
    core
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_download() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 300).await;
    let reader = b.get(writer.key()).await.unwrap();
    assert!(!reader.is_writable());
    let mut events = reader.events();
    let (ha, hb) = connect(&a, &b);
    bounded(reader.download(0..300).done()).await.unwrap();
    for i in 0..300 {
        assert_eq!(
            reader.get(i).await.unwrap(),
            format!("log-{i}").into_bytes()
        );
    }
    assert_eq!(reader.contiguous_length(), 300);
    assert_eq!(reader.byte_length(), writer.byte_length());
    let mut saw_peer = false;
    while let Ok(e) = events.try_recv() {
        saw_peer |= matches!(e, CoreEvent::PeerAdd { .. });
    }
    assert!(saw_peer);
    ha.close();
    bounded(ha.join()).await.unwrap();
    bounded(hb.join()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_range() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 50).await;
    let reader = b.get(writer.key()).await.unwrap();
    let (_ha, _hb) = connect(&a, &b);
    bounded(reader.download(10..20).done()).await.unwrap();
    assert!((10..20).all(|i| reader.has(i)));
    assert!(!reader.has(0) && !reader.has(9) && !reader.has(20) && !reader.has(49));
    assert_eq!(reader.length(), 50);
    assert_eq!(reader.contiguous_length(), 0);
    assert_eq!(bounded(reader.get(42)).await.unwrap(), b"log-42");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_append_is_seen_by_the_other_side() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 1).await;
    let reader = b.get(writer.key()).await.unwrap();
    let (_ha, _hb) = connect(&a, &b);
    assert_eq!(bounded(reader.get(0)).await.unwrap(), b"log-0");
    let mut events = reader.events();
    let pending = {
        let reader = reader.session().unwrap();
        tokio::spawn(async move { reader.get(1).await })
    };
    writer.append(b"live").await.unwrap();
    assert_eq!(bounded(pending).await.unwrap().unwrap(), b"live");
    loop {
        if let CoreEvent::Append { length } = bounded(events.recv()).await.unwrap() {
            assert_eq!(length, 2);
            break;
        }
    }
    assert!(bounded(reader.update()).await.is_ok());
    assert_eq!(reader.length(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_cores_over_one_stream() {
    let (a, b) = (memory_store().await, memory_store().await);
    let mut writers = Vec::new();
    for i in 0..100 {
        writers.push(writer_with(&a, &format!("core{i}"), 3).await);
    }
    let mut readers = Vec::new();
    for w in &writers {
        readers.push(b.get(w.key()).await.unwrap());
    }
    let (_ha, _hb) = connect(&a, &b);
    let downloads: Vec<_> = readers.iter().map(|r| r.download(0..3)).collect();
    for d in &downloads {
        bounded(d.done()).await.unwrap();
    }
    for (i, r) in readers.iter().enumerate() {
        assert_eq!(r.get(2).await.unwrap(), format!("core{i}-2").into_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_opened_late_joins_the_live_stream() {
    let (a, b) = (memory_store().await, memory_store().await);
    let first = writer_with(&a, "first", 1).await;
    let first_reader = b.get(first.key()).await.unwrap();
    let (_ha, _hb) = connect(&a, &b);
    assert_eq!(bounded(first_reader.get(0)).await.unwrap(), b"first-0");
    // Both sides open the second core after the stream is up.
    let late = writer_with(&a, "late", 5).await;
    let late_reader = b.get(late.key()).await.unwrap();
    assert_eq!(bounded(late_reader.get(4)).await.unwrap(), b"late-4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_opens_a_stored_core_by_key_only() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "stored", 4).await;
    let key = writer.key();
    // The writer's core is closed: it is served from storage when the remote asks for it.
    writer.close().await;
    let (_ha, _hb) = connect(&a, &b);
    let reader = b.get(key).await.unwrap();
    assert_eq!(bounded(reader.get(3)).await.unwrap(), b"stored-3");
    bounded(reader.download(..).done()).await.unwrap();
    assert_eq!(reader.contiguous_length(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passive_stores_only_answer() {
    let a = memory_store().await;
    let b = Corestore::new(StoreStorage::memory(), StoreOptions::new().passive(true))
        .await
        .unwrap();
    let writer = writer_with(&b, "log", 2).await;
    let reader = a.get(writer.key()).await.unwrap();
    let (_ha, _hb) = connect(&a, &b);
    // The passive side serves the channel the active side opens.
    assert_eq!(bounded(reader.get(1)).await.unwrap(), b"log-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_root_ends_its_streams() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 1).await;
    let reader = b.get(writer.key()).await.unwrap();
    let (ha, hb) = connect(&a, &b);
    assert_eq!(bounded(reader.get(0)).await.unwrap(), b"log-0");
    a.close().await.unwrap();
    bounded(ha.join()).await.unwrap();
    bounded(hb.join()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_sparse_session_downloads_everything() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 20).await;
    let reader = b
        .get(GetOptions::key(writer.key()).sparse(false))
        .await
        .unwrap();
    let mut events = reader.events();
    let (_ha, _hb) = connect(&a, &b);
    let mut downloaded = 0;
    while downloaded < 20 {
        if let CoreEvent::Download { .. } = bounded(events.recv()).await.unwrap() {
            downloaded += 1;
        }
    }
    assert_eq!(reader.contiguous_length(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncation_reaches_the_reader() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 10).await;
    let reader = b.get(writer.key()).await.unwrap();
    let (_ha, _hb) = connect(&a, &b);
    bounded(reader.download(0..10).done()).await.unwrap();
    let mut events = reader.events();
    writer.truncate(4).await.unwrap();
    writer.append(b"new-4").await.unwrap();
    loop {
        if let CoreEvent::Truncate { fork, .. } = bounded(events.recv()).await.unwrap() {
            assert_eq!(fork, 1);
            break;
        }
    }
    assert_eq!(bounded(reader.get(4)).await.unwrap(), b"new-4");
    assert_eq!(reader.get(3).await.unwrap(), b"log-3");
    assert_eq!(reader.length(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_peers_at_once_and_a_relay() {
    let (a, b, c) = (
        memory_store().await,
        memory_store().await,
        memory_store().await,
    );
    let writer = writer_with(&a, "log", 30).await;
    let via_b = b.get(writer.key()).await.unwrap();
    let via_c = c.get(writer.key()).await.unwrap();
    // b talks to a and downloads everything; c talks only to b, which serves what it has.
    let (_ab, _ba) = connect(&a, &b);
    let (_bc, _cb) = connect(&b, &c);
    let _everything = via_b.download(..);
    bounded(via_c.download(0..30).done()).await.unwrap();
    assert_eq!(via_c.get(29).await.unwrap(), b"log-29");
    assert!(via_b.has(29), "the relay stored what it served");
    // A second direct peer of the writer.
    let d = memory_store().await;
    let via_d = d.get(writer.key()).await.unwrap();
    let (_ad, _da) = connect(&a, &d);
    writer.append(b"fan-out").await.unwrap();
    assert_eq!(bounded(via_d.get(30)).await.unwrap(), b"fan-out");
    assert_eq!(bounded(via_c.get(30)).await.unwrap(), b"fan-out");
    assert!(via_b.info().unwrap().peers >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_core_replicates_to_a_reader_by_key() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = a.get(GetOptions::name("m").compat(false)).await.unwrap();
    let kp = a.key_pair("m");
    assert_ne!(
        writer.key(),
        corestore::Key::from(kp.public_key()),
        "key is the manifest hash"
    );
    writer.append(b"signed by manifest").await.unwrap();
    let reader = b.get(writer.key()).await.unwrap();
    let (_ha, _hb) = connect(&a, &b);
    assert_eq!(bounded(reader.get(0)).await.unwrap(), b"signed by manifest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_blocks_through_a_small_pipe() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = a.get(GetOptions::name("big")).await.unwrap();
    let blocks: Vec<Vec<u8>> = (0..32u8).map(|i| vec![i; 64 * 1024]).collect();
    writer.append_batch(&blocks).await.unwrap();
    let reader = b.get(writer.key()).await.unwrap();
    let (x, y) = tokio::io::duplex(4096);
    let _ha = a.replicate(x, true).unwrap();
    let _hb = b.replicate(y, false).unwrap();
    bounded(reader.download(..).done()).await.unwrap();
    assert_eq!(reader.byte_length(), 32 * 64 * 1024);
    assert_eq!(reader.get(31).await.unwrap(), vec![31; 64 * 1024]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_waits_for_peers_while_finding_them() {
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = writer_with(&a, "log", 3).await;
    let short = std::time::Duration::from_millis(50);
    let impatient = b
        .get(GetOptions::key(writer.key()).timeout(short))
        .await
        .unwrap();
    let finding = b.finding_peers();
    assert!(matches!(
        impatient.update().await,
        Err(corestore::Error::Timeout(_))
    ));
    let reader = b.get(writer.key()).await.unwrap();
    let waiting = tokio::spawn(async move {
        let grew = reader.update().await;
        (grew, reader.length())
    });
    let (_ha, _hb) = connect(&a, &b);
    let (grew, length) = bounded(waiting).await.unwrap();
    assert!(grew.unwrap());
    assert_eq!(length, 3);
    finding.done();
}

/// The writer's end of a pipe that writes only as many bytes as the test has released, and
/// says when a write finds nothing left to spend.
struct Gate {
    inner: tokio::io::DuplexStream,
    state: std::sync::Arc<GateState>,
}

#[derive(Default)]
struct GateState {
    /// Bytes the writer may still write, and its waker while it waits for more.
    left: std::sync::Mutex<(usize, Option<std::task::Waker>)>,
    /// Notified whenever a write finds the allowance spent.
    blocked: tokio::sync::Notify,
}

impl GateState {
    fn release(&self, bytes: usize) {
        let mut left = self.left.lock().unwrap();
        left.0 += bytes;
        if let Some(waker) = left.1.take() {
            waker.wake();
        }
    }
}

impl tokio::io::AsyncRead for Gate {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Gate {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let state = std::sync::Arc::clone(&self.state);
        let mut left = state.left.lock().unwrap();
        if left.0 == 0 {
            left.1 = Some(cx.waker().clone());
            drop(left);
            state.blocked.notify_one();
            return std::task::Poll::Pending;
        }
        let n = buf.len().min(left.0);
        let written = std::pin::Pin::new(&mut self.inner).poll_write(cx, &buf[..n]);
        if let std::task::Poll::Ready(Ok(w)) = written {
            left.0 -= w;
        }
        written
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A writer whose transport drains slowly answers requests only while less than 1 MiB of its
/// output waits (plus the batch frame being built): the requests beyond wait instead of being
/// answered into memory all at once when the transport drains a little.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_wait_at_the_high_water_mark() {
    const BLOCK: usize = 64 * 1024;
    const BLOCKS: u64 = 40;
    const HIGH_WATER: usize = 1 << 20;
    const STEP: usize = 256 * 1024;
    let (a, b) = (memory_store().await, memory_store().await);
    let writer = a.get(GetOptions::name("slow pipe")).await.unwrap();
    let blocks: Vec<Vec<u8>> = (0..BLOCKS).map(|i| vec![i as u8; BLOCK]).collect();
    writer.append_batch(&blocks).await.unwrap();
    let mut uploads = writer.events();
    let reader = b.get(writer.key()).await.unwrap();
    let (x, y) = tokio::io::duplex(64 * 1024);
    let gate = std::sync::Arc::new(GateState::default());
    let mut released = 64 * 1024;
    gate.release(released);
    let gated = Gate {
        inner: x,
        state: std::sync::Arc::clone(&gate),
    };
    let _ha = a.replicate(gated, true).unwrap();
    let _hb = b.replicate(y, false).unwrap();
    let download = reader.download(0..BLOCKS);
    let mut done = std::pin::pin!(download.done());
    let mut answered = 0;
    let mut deferred_seen = false;
    loop {
        let finished = bounded(async {
            tokio::select! {
                r = &mut done => Some(r),
                () = gate.blocked.notified() => None,
            }
        })
        .await;
        while let Ok(event) = uploads.try_recv() {
            if let CoreEvent::Upload { bytes, .. } = event {
                answered += usize::try_from(bytes).unwrap();
            }
        }
        if let Some(r) = finished {
            r.unwrap();
            break;
        }
        // Everything answered is written, queued under the mark, or in the last batch frame.
        assert!(
            answered <= released + HIGH_WATER + 3 * 128 * 1024,
            "{answered} bytes answered with {released} written"
        );
        deferred_seen |= answered < BLOCKS as usize * BLOCK;
        gate.release(STEP);
        released += STEP;
    }
    assert!(deferred_seen, "the transport never held the writer back");
    assert_eq!(answered, BLOCKS as usize * BLOCK);
    assert_eq!(reader.get(BLOCKS - 1).await.unwrap(), vec![39; BLOCK]);
}
