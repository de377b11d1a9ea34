//! [`Worker`]: the thread on which a store opens cores.
//!
//! Opening a stored core is blocking file I/O (reading the oplog header, a replay of the
//! entries written since the last flush), so it must not run on a Tokio worker. Tokio's
//! blocking pool would do, but it spawns a thread whenever no idle one is at hand, and every
//! new thread brings its own allocator arena and stack: with thousands of cores opened one
//! after the other, a few hundred bytes of resident memory per core came from that spread
//! alone. One long-lived thread per store keeps the open path's allocations in one place and
//! needs no runtime (it works under any executor). Loads are serialised by the registry
//! anyway, so one thread loses no parallelism. A core created lazily (one failed probe and no
//! write) skips the thread: `get` creates it inline, which halves the cost of a new core.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::mpsc;

use tokio::sync::oneshot;
use tracing::warn;

use crate::core::lock;
use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// A lazily started thread that runs blocking jobs in order; it ends when the store is
/// dropped.
#[derive(Default)]
pub(crate) struct Worker {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
}

impl Worker {
    /// Runs `f` on the worker thread and waits for its result.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the thread cannot be started, [`Error::Worker`] if `f` panicked.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let outcome = catch_unwind(AssertUnwindSafe(f));
            let _ = done.send(outcome.ok());
        });
        self.submit(job)?;
        result
            .await
            .ok()
            .flatten()
            .ok_or(Error::Worker("a blocking storage task panicked"))
    }

    fn submit(&self, job: Job) -> Result<()> {
        let mut tx = lock(&self.tx);
        let job = match tx.as_ref() {
            Some(t) => match t.send(job) {
                Ok(()) => return Ok(()),
                // The thread is gone (it cannot be, since jobs never unwind out of it, but a
                // fresh one costs nothing to try).
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (new_tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("corestore-io".to_owned())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job();
                }
            })?;
        if new_tx.send(job).is_err() {
            warn!("the store's I/O thread ended at once");
            return Err(Error::Worker("the store's I/O thread ended"));
        }
        *tx = Some(new_tx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_in_order_and_survives_a_panicking_one() {
        let worker = Worker::default();
        assert_eq!(worker.run(|| 41 + 1).await.unwrap(), 42);
        let panicked = worker.run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(panicked, Err(Error::Worker(_))), "{panicked:?}");
        let thread = worker.run(|| std::thread::current().id()).await.unwrap();
        assert_eq!(
            worker.run(|| std::thread::current().id()).await.unwrap(),
            thread,
            "one long-lived thread"
        );
    }
}
