//! `corestore fetch --connect ADDR KEY... [--start A] [--end B] [--timeout SECS]`: download
//! cores from a peer into the store, with a progress bar on stderr.
//!
//! The whole command (connecting included) is bounded by the timeout; it fails with the
//! missing blocks named when the download is incomplete then, and at once when the peer is
//! unreachable or closes the connection.

use std::fmt;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use corestore::{Corestore, Download, GetOptions, Hypercore, Key};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::debug;

use crate::cli::{FetchArgs, RangeArgs};
use crate::output::{Ctx, human_bytes};
use crate::progress::Progress;
use crate::store;

/// How often the progress bar and the connection are checked.
const TICK: Duration = Duration::from_millis(100);
/// How long a finished fetch waits for the stream to close cleanly.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The outcome of a fetch.
#[derive(Debug, Serialize)]
pub(crate) struct FetchReport {
    pub(crate) peer: String,
    pub(crate) cores: Vec<FetchedCore>,
    pub(crate) elapsed_ms: u128,
}

/// One fetched core.
#[derive(Debug, Serialize)]
pub(crate) struct FetchedCore {
    #[serde(serialize_with = "crate::output::display")]
    pub(crate) key: Key,
    pub(crate) start: u64,
    pub(crate) end: u64,
    /// Blocks downloaded by this fetch (the others were already stored).
    pub(crate) downloaded: u64,
    pub(crate) length: u64,
    pub(crate) byte_length: u64,
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.cores {
            writeln!(
                f,
                "{}: blocks {}..{} stored ({} downloaded); length {}, {}",
                c.key,
                c.start,
                c.end,
                c.downloaded,
                c.length,
                human_bytes(c.byte_length)
            )?;
        }
        writeln!(
            f,
            "fetched {} cores from {} in {} ms",
            self.cores.len(),
            self.peer,
            self.elapsed_ms
        )
    }
}

/// `fetch`.
pub(crate) async fn run(ctx: &Ctx, args: FetchArgs) -> Result<()> {
    let store = store::open(&ctx.store).await?;
    let result = fetch(
        &store,
        &args.connect,
        &args.keys,
        args.range,
        args.timeout,
        true,
    )
    .await;
    store.close().await.context("cannot close the store")?;
    ctx.emit(&result?)
}

/// One core being downloaded.
struct Job {
    core: Hypercore,
    download: Download,
    start: u64,
    end: Option<u64>,
    had: u64,
}

impl Job {
    /// The end of the range now: the given end, or the longest length known.
    fn end(&self) -> u64 {
        self.end.unwrap_or_else(|| self.core.length())
    }

    /// Blocks of the range stored locally.
    fn stored(&self) -> u64 {
        let end = self.end();
        let contiguous = self
            .core
            .contiguous_length()
            .clamp(self.start, end.max(self.start));
        let rest = (contiguous..end).filter(|&i| self.core.has(i)).count() as u64;
        contiguous - self.start + rest
    }
}

/// Downloads blocks `range` of each core in `keys` from the peer at `addr` into `store`,
/// within `timeout`.
pub(crate) async fn fetch(
    store: &Corestore,
    addr: &str,
    keys: &[Key],
    range: RangeArgs,
    timeout: Duration,
    show_progress: bool,
) -> Result<FetchReport> {
    let started = Instant::now();
    let deadline = started + timeout;
    let socket = tokio::time::timeout_at(deadline, TcpStream::connect(addr))
        .await
        .map_err(|_| anyhow!("cannot connect to {addr}: no answer within {timeout:?}"))?
        .with_context(|| format!("cannot connect to {addr}"))?;
    let peer = socket
        .peer_addr()
        .map_or_else(|_| addr.to_owned(), |a| a.to_string());
    debug!(%peer, "connected");

    let start = range.start.unwrap_or(0);
    let mut jobs = Vec::with_capacity(keys.len());
    for key in keys {
        let core = store
            .get(GetOptions::key(*key))
            .await
            .with_context(|| format!("cannot open core {key}"))?;
        let download = match range.end {
            Some(end) => core.download(start..end),
            None => core.download(start..),
        };
        let mut job = Job {
            core,
            download,
            start,
            end: range.end,
            had: 0,
        };
        job.had = job.stored();
        jobs.push(job);
    }
    let stream = store
        .replicate_tcp(socket, true)
        .with_context(|| format!("cannot replicate with {peer}"))?;

    let mut progress = Progress::new(show_progress);
    let all_done = async {
        for job in &jobs {
            job.download.done_within(None).await?;
        }
        Ok::<_, corestore::Error>(())
    };
    tokio::pin!(all_done);
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            biased;
            r = &mut all_done => {
                r.context("the download failed")?;
                break;
            }
            () = tokio::time::sleep_until(deadline) => {
                progress.finish();
                bail!("download incomplete after {timeout:?}: {}", missing(&jobs));
            }
            _ = tick.tick() => {
                let (done, total) = totals(&jobs);
                progress.draw(done, total);
                if stream.is_finished() {
                    progress.finish();
                    let why = match stream.join().await {
                        Ok(()) => "the peer closed the connection".to_owned(),
                        Err(e) => format!("the connection failed: {e}"),
                    };
                    bail!("{why} before the download finished: {}", missing(&jobs));
                }
            }
        }
    }
    let (done, total) = totals(&jobs);
    progress.draw(done, total);
    progress.finish();

    stream.close();
    match tokio::time::timeout(CLOSE_GRACE, stream.join()).await {
        Ok(Ok(())) => debug!(%peer, "stream closed"),
        Ok(Err(e)) => debug!(%peer, error = %e, "stream closed with an error"),
        Err(_) => debug!(%peer, "stream did not close in time"),
    }
    let cores = jobs
        .iter()
        .map(|j| FetchedCore {
            key: j.core.key(),
            start: j.start,
            end: j.end(),
            downloaded: j.stored().saturating_sub(j.had),
            length: j.core.length(),
            byte_length: j.core.byte_length(),
        })
        .collect();
    Ok(FetchReport {
        peer,
        cores,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

/// Blocks stored and wanted over all jobs (`None` while a core's length is still unknown).
fn totals(jobs: &[Job]) -> (u64, Option<u64>) {
    let done = jobs.iter().map(Job::stored).sum();
    let known = jobs.iter().all(|j| j.end.is_some() || j.core.length() > 0);
    let total = jobs.iter().map(|j| j.end().saturating_sub(j.start)).sum();
    (done, known.then_some(total))
}

/// What is missing, core by core, for an error message.
fn missing(jobs: &[Job]) -> String {
    let parts: Vec<String> = jobs
        .iter()
        .filter_map(|j| {
            let end = j.end();
            let stored = j.stored();
            let wanted = end.saturating_sub(j.start);
            if j.end.is_none() && j.core.length() == 0 {
                Some(format!(
                    "core {} (the peer has not announced it: does it have the core?)",
                    j.core.key()
                ))
            } else if stored < wanted {
                Some(format!(
                    "core {} has {stored} of {wanted} blocks",
                    j.core.key()
                ))
            } else {
                None
            }
        })
        .collect();
    if parts.is_empty() {
        "the peer has not confirmed the length of every core".to_owned()
    } else {
        parts.join("; ")
    }
}
