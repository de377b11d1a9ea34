//! The transport side of a driver: the driver's task writes, sleeps and listens for signals
//! on the byte stream, with no writer task and no channel in between; it reads the stream
//! itself until the secret stream is open.
//!
//! Then, on a multi-threaded runtime, reading moves to a receiver task
//! ([`Io::spawn_receiver`]): it reads, frames and decrypts (the
//! `Receiver` split off the connection) on another worker
//! thread while the driver verifies and stores what came before, and hands each read's
//! messages over a bounded channel.
//!
//! [`Io::poll_step`] writes whatever the [`Outbox`] holds, then reports the first thing that
//! needs the driver's attention (a stop, a timer, signals, input). Reading goes on while output
//! is queued, so two peers that both write never wait on each other; back-pressure is applied
//! on what *produces* output instead (see [`Outbox`]).

use std::collections::VecDeque;
use std::future::Future as _;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker, ready};

use corestore_proto::ProtocolError;
use corestore_proto::stream::{Plaintext, Receiver};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::sync::futures::Notified;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};
use tracing::Instrument as _;

use crate::core::Signal;

/// Bytes read from the transport per step: a read of this size holds a few hundred small
/// messages, which the driver handles before it writes once.
const READ_BUF: usize = 256 * 1024;

/// Output bytes queued above which remote requests wait for the transport to drain
/// (JavaScript also queues requests while protomux is not drained).
pub(super) const HIGH_WATER: usize = 1 << 20;

/// Output bytes queued above which the driver stops reading the transport until it drains.
/// Requests are deferred long before (at [`HIGH_WATER`]), so only a peer that floods us with
/// messages producing other output (`want`, `sync`) while not reading gets here.
pub(super) const READ_STOP: usize = 8 << 20;

/// Buffers written out that [`Outbox::spent`] keeps for the connection to reuse (the
/// connection keeps a bounded few of them in turn).
const SPENT_MAX: usize = 16;

/// Buffers written with one vectored write, at most.
const WRITE_SLICES: usize = 16;

/// The bytes waiting for the transport: the buffers [`Connection::poll_transmit`] handed out,
/// written from where they are (no copy into one contiguous buffer).
///
/// Queued output is bounded by what produces it: remote requests are answered only below
/// [`HIGH_WATER`] (the rest wait, up to the protocol's per-channel cap on remote requests),
/// and above [`READ_STOP`] nothing more is read.
///
/// [`Connection::poll_transmit`]: corestore_proto::Connection::poll_transmit
#[derive(Debug, Default)]
pub(super) struct Outbox {
    bufs: VecDeque<Vec<u8>>,
    /// How much of the front buffer is written.
    written: usize,
    /// Bytes queued and not yet written.
    queued: usize,
    /// Buffers written out, to hand back to the connection.
    spent: Vec<Vec<u8>>,
    /// Whether bytes were written since the last flush of the transport.
    unflushed: bool,
}

impl Outbox {
    /// Bytes queued and not yet written.
    pub(super) fn queued(&self) -> usize {
        self.queued
    }

    /// Queues `buf` behind what is queued.
    pub(super) fn push(&mut self, buf: Vec<u8>) {
        if !buf.is_empty() {
            self.queued += buf.len();
            self.bufs.push_back(buf);
        }
    }

    /// The buffers written out since the last call, for reuse.
    pub(super) fn spent(&mut self) -> std::vec::Drain<'_, Vec<u8>> {
        self.spent.drain(..)
    }

    /// Counts `n` bytes as written, retiring the buffers written whole.
    fn advance(&mut self, mut n: usize) {
        self.queued -= n.min(self.queued);
        while let Some(front) = self.bufs.front() {
            let rest = front.len().saturating_sub(self.written);
            if n < rest {
                self.written += n;
                return;
            }
            n -= rest;
            self.written = 0;
            if let Some(buf) = self.bufs.pop_front()
                && self.spent.len() < SPENT_MAX
            {
                self.spent.push(buf);
            }
        }
    }

    /// Writes what is queued until the transport would block.
    fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
    ) -> Poll<io::Result<()>> {
        while let Some(front) = self.bufs.front() {
            let rest = front.get(self.written..).unwrap_or_default();
            let n = if self.bufs.len() > 1 && stream.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
                slices[0] = IoSlice::new(rest);
                for (slice, buf) in slices.iter_mut().skip(1).zip(self.bufs.iter().skip(1)) {
                    *slice = IoSlice::new(buf);
                }
                let count = self.bufs.len().min(WRITE_SLICES);
                let slices = slices.get(..count).unwrap_or_default();
                ready!(Pin::new(&mut *stream).poll_write_vectored(cx, slices))?
            } else {
                ready!(Pin::new(&mut *stream).poll_write(cx, rest))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(n);
            self.unflushed = true;
        }
        if self.unflushed {
            ready!(Pin::new(&mut *stream).poll_flush(cx))?;
            self.unflushed = false;
        }
        Poll::Ready(Ok(()))
    }

    /// Writes everything queued, then shuts the write side down.
    pub(super) async fn finish<S: AsyncWrite + Unpin>(&mut self, stream: &mut S) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write(cx, stream)).await?;
        tokio::io::AsyncWriteExt::shutdown(stream).await
    }
}

/// What woke the driver.
pub(super) enum Step {
    /// `n` bytes were read into [`Io::input`] (before the receiving half is split off).
    Read(usize),
    /// Messages the receiver task framed and decrypted, in order (at least one).
    Messages(Vec<Plaintext>),
    /// The receiver task found a frame that fails the stream.
    Invalid(ProtocolError),
    /// The remote ended the transport.
    Eof,
    /// Signals from the store (at least one).
    Signals(Vec<Signal>),
    /// The protocol's deadline passed.
    Timeout,
    /// The transport drained below [`HIGH_WATER`]: deferred requests can be answered.
    Drained,
    /// The handle asked to stop, or the store is shutting down.
    Stop,
    /// The transport failed.
    Failed(io::Error),
}

/// What the receiver task hands the driver.
enum Inbound {
    Messages(Vec<Plaintext>),
    Invalid(ProtocolError),
    Eof,
    Failed(io::Error),
}

/// Batches of messages the receiver task may have ready before it waits for the driver (each
/// is one read of at most [`READ_BUF`] bytes).
const INBOUND_BATCHES: usize = 4;

/// Where the driver's input comes from.
enum Input<S> {
    /// The driver reads the transport itself (the handshake, and on a single-threaded
    /// runtime, the whole stream).
    Direct { read: ReadHalf<S>, buf: Box<[u8]> },
    /// A receiver task reads, frames and decrypts on another worker thread.
    Task {
        messages: mpsc::Receiver<Inbound>,
        /// Whether the driver waits for the task's next messages (set when it finds the
        /// channel empty, cleared when it takes messages).
        waiting: Arc<AtomicBool>,
        _task: AbortOnDrop,
    },
    /// Only while switching from `Direct` to `Task`.
    Switching,
}

/// Aborts the receiver task when the driver ends.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The byte stream of one replication stream and what the driver waits on besides it.
pub(super) struct Io<S> {
    /// The transport's write half.
    pub(super) writer: WriteHalf<S>,
    input: Input<S>,
    signals: mpsc::UnboundedReceiver<Signal>,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is set to, if any.
    armed: Option<Instant>,
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io<S> {
    pub(super) fn new(stream: S, signals: mpsc::UnboundedReceiver<Signal>) -> Self {
        let (read, writer) = tokio::io::split(stream);
        Self {
            writer,
            input: Input::Direct {
                read,
                buf: vec![0; READ_BUF].into_boxed_slice(),
            },
            signals,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
        }
    }

    /// The bytes of the last [`Step::Read`].
    pub(super) fn input(&self, n: usize) -> &[u8] {
        match &self.input {
            Input::Direct { buf, .. } => buf.get(..n).unwrap_or_default(),
            _ => &[],
        }
    }

    /// Whether the driver still reads the transport itself.
    pub(super) fn reads_directly(&self) -> bool {
        matches!(self.input, Input::Direct { .. })
    }

    /// Hands reading, framing and decryption to a task of their own, so that they run on
    /// another worker thread while the driver verifies and stores what came before.
    /// From now on input arrives as [`Step::Messages`].
    pub(super) fn spawn_receiver(&mut self, receiver: Receiver) {
        let input = std::mem::replace(&mut self.input, Input::Switching);
        let Input::Direct { read, buf } = input else {
            // Split off already: nothing changes.
            self.input = input;
            return;
        };
        let (tx, messages) = mpsc::channel(INBOUND_BATCHES);
        let waiting = Arc::new(AtomicBool::new(false));
        let task = receive(read, buf, receiver, tx, Arc::clone(&waiting));
        self.input = Input::Task {
            messages,
            waiting,
            _task: AbortOnDrop(tokio::spawn(task.in_current_span())),
        };
    }

    /// Writes what `outbox` holds as far as the transport takes it without waiting (a write
    /// in the middle of a round; [`Io::poll_step`] writes the rest). A failure is left for
    /// `poll_step` to report: the transport fails the same way there.
    pub(super) fn write_now(&mut self, outbox: &mut Outbox) {
        let mut cx = Context::from_waker(Waker::noop());
        if let Poll::Ready(Err(e)) = outbox.poll_write(&mut cx, &mut self.writer) {
            tracing::trace!(error = %e, "write in the round failed");
        }
    }

    /// Sets the timer (`None`: no deadline).
    pub(super) fn set_deadline(&mut self, deadline: Option<Instant>) {
        if deadline != self.armed {
            if let Some(d) = deadline {
                self.sleep.as_mut().reset(d);
            }
            self.armed = deadline;
        }
    }

    /// Writes what `outbox` holds and waits for the next thing to do. `deferred` says whether
    /// requests wait for the transport to drain; `stop` is the handle's stop notification.
    pub(super) fn poll_step(
        &mut self,
        cx: &mut Context<'_>,
        outbox: &mut Outbox,
        deferred: bool,
        stop: Pin<&mut Notified<'_>>,
    ) -> Poll<Step> {
        if stop.poll(cx).is_ready() {
            return Poll::Ready(Step::Stop);
        }
        let congested = outbox.queued() >= HIGH_WATER;
        if let Poll::Ready(Err(e)) = outbox.poll_write(cx, &mut self.writer) {
            return Poll::Ready(Step::Failed(e));
        }
        if deferred && congested && outbox.queued() < HIGH_WATER {
            return Poll::Ready(Step::Drained);
        }
        if self.armed.is_some() && self.sleep.as_mut().poll(cx).is_ready() {
            self.armed = None;
            return Poll::Ready(Step::Timeout);
        }
        match self.signals.poll_recv(cx) {
            Poll::Ready(Some(first)) => {
                let mut all = vec![first];
                while let Ok(s) = self.signals.try_recv() {
                    all.push(s);
                }
                return Poll::Ready(Step::Signals(all));
            }
            Poll::Ready(None) => return Poll::Ready(Step::Stop),
            Poll::Pending => {}
        }
        if outbox.queued() >= READ_STOP {
            return Poll::Pending;
        }
        match &mut self.input {
            Input::Direct { read, buf } => {
                let mut buf = ReadBuf::new(buf);
                match Pin::new(read).poll_read(cx, &mut buf) {
                    Poll::Ready(Ok(())) if buf.filled().is_empty() => Poll::Ready(Step::Eof),
                    Poll::Ready(Ok(())) => Poll::Ready(Step::Read(buf.filled().len())),
                    Poll::Ready(Err(e)) => Poll::Ready(Step::Failed(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            Input::Task {
                messages, waiting, ..
            } => {
                let Poll::Ready(inbound) = messages.poll_recv(cx) else {
                    waiting.store(true, Ordering::Relaxed);
                    return Poll::Pending;
                };
                waiting.store(false, Ordering::Relaxed);
                Poll::Ready(match inbound {
                    Some(Inbound::Messages(m)) => Step::Messages(m),
                    Some(Inbound::Invalid(e)) => Step::Invalid(e),
                    Some(Inbound::Failed(e)) => Step::Failed(e),
                    // The task ends only after reporting why, or when aborted with the driver.
                    Some(Inbound::Eof) | None => Step::Eof,
                })
            }
            Input::Switching => Poll::Pending,
        }
    }
}

/// The receiver task: reads the transport, frames and decrypts, and hands the messages of
/// each read to the driver (waiting while [`INBOUND_BATCHES`] reads are not taken yet: the
/// channel is the back-pressure). Unless the driver is `waiting` for them, it also hashes the
/// blocks of `data` messages, which the driver would otherwise do when it verifies them. Ends
/// at the end of the transport, on a failure (after reporting it), or when the driver is gone.
async fn receive<S: AsyncRead>(
    mut read: ReadHalf<S>,
    mut buf: Box<[u8]>,
    mut receiver: Receiver,
    tx: mpsc::Sender<Inbound>,
    waiting: Arc<AtomicBool>,
) {
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) => {
                let _ = tx.send(Inbound::Eof).await;
                return;
            }
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Inbound::Failed(e)).await;
                return;
            }
        };
        // Hashing the blocks here pays while the driver is busy; while it waits for input,
        // the messages go at once and it hashes them itself.
        receiver.set_hash_blocks(!waiting.load(Ordering::Relaxed));
        let mut messages = Vec::new();
        let r = receiver.handle_bytes(buf.get(..n).unwrap_or_default(), &mut messages);
        if !messages.is_empty() && tx.send(Inbound::Messages(messages)).await.is_err() {
            return;
        }
        if let Err(e) = r {
            let _ = tx.send(Inbound::Invalid(e)).await;
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport that takes at most `max` bytes per write, vectored or not.
    struct Sink {
        data: Vec<u8>,
        max: usize,
        vectored: bool,
        writes: usize,
    }

    impl AsyncWrite for Sink {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.max);
            self.data.extend_from_slice(&buf[..n]);
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut n = 0;
            for b in bufs {
                let take = b.len().min(self.max - n);
                self.data.extend_from_slice(&b[..take]);
                n += take;
            }
            self.writes += 1;
            Poll::Ready(Ok(n))
        }

        fn is_write_vectored(&self) -> bool {
            self.vectored
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn outbox_writes_buffers_in_order_and_hands_them_back() {
        for vectored in [false, true] {
            let mut outbox = Outbox::default();
            let bufs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
            let total: usize = bufs.iter().map(Vec::len).sum();
            for b in bufs.iter().cloned().chain([Vec::new()]) {
                outbox.push(b);
            }
            assert_eq!(outbox.queued(), total);
            let mut sink = Sink {
                data: Vec::new(),
                max: 250,
                vectored,
                writes: 0,
            };
            let mut cx = Context::from_waker(Waker::noop());
            assert!(matches!(
                outbox.poll_write(&mut cx, &mut sink),
                Poll::Ready(Ok(()))
            ));
            assert_eq!(outbox.queued(), 0);
            assert_eq!(sink.data, bufs.concat(), "vectored: {vectored}");
            // Every write took as much as the transport would.
            assert_eq!(
                sink.writes,
                total.div_ceil(250).max(if vectored { 0 } else { 40 })
            );
            // The written buffers come back for reuse, a bounded few.
            let spent: Vec<Vec<u8>> = outbox.spent().collect();
            assert_eq!(spent.len(), SPENT_MAX);
            assert_eq!(spent[0], bufs[0]);
            assert_eq!(outbox.spent().count(), 0);
        }
    }
}
