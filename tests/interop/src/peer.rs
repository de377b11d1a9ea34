//! A Rust handle over a running `node tests/js/peer.mjs` (protocol: `tests/js/PEER.md`).
//!
//! One [`JsPeer`] is one JavaScript Corestore (6 or 7) in its own Node process. Commands go to its
//! stdin as JSON lines; a reader thread parses its stdout and hands each reply to the task that
//! waits for it (by `id`), and every other event to [`JsPeer::next_event`]. A second thread keeps
//! the process's stderr so that every failure message can show it.
//!
//! Every wait is bounded: [`JsPeer::call`] and [`Pending::wait`] take a bound and fail with the
//! peer's stderr when it passes (or when the process dies). Dropping the handle asks the peer to
//! exit and kills it if it has not exited within a few seconds.

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{js_dir, require_node_modules};

/// How much of the peer's stderr is kept for failure messages (the tail).
const STDERR_KEEP: usize = 16 * 1024;

/// Which JavaScript Corestore the peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorestoreVersion {
    /// corestore 6.18 / hypercore 10.38 (compat cores by default).
    V6,
    /// corestore 7.12 / hypercore 11.39 (manifest-keyed cores by default).
    V7,
}

impl CorestoreVersion {
    /// The `--corestore` argument.
    pub fn arg(self) -> &'static str {
        match self {
            Self::V6 => "6",
            Self::V7 => "7",
        }
    }
}

/// Where the peer keeps its store.
#[derive(Debug, Clone)]
pub enum PeerStorage {
    /// `--memory` (cs7: a temporary directory the peer deletes on exit).
    Memory,
    /// `--dir <path>`.
    Dir(std::path::PathBuf),
}

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// A running `peer.mjs`.
#[derive(Debug)]
pub struct JsPeer {
    version: CorestoreVersion,
    stdin: Mutex<Option<ChildStdin>>,
    waiters: Waiters,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Value>>,
    stderr: Arc<Mutex<String>>,
    next_id: Mutex<u64>,
    pid: u32,
    exited: Mutex<Option<std_mpsc::Receiver<()>>>,
    ready: Value,
}

/// A command sent to the peer whose reply has not been awaited yet.
#[derive(Debug)]
#[must_use = "a pending command does nothing unless its reply is awaited"]
pub struct Pending {
    cmd: String,
    id: u64,
    reply: oneshot::Receiver<Value>,
    stderr: Arc<Mutex<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn stderr_tail(stderr: &Mutex<String>) -> String {
    let s = lock(stderr);
    if s.is_empty() {
        "(peer.mjs wrote nothing on stderr)".to_owned()
    } else {
        format!("peer.mjs stderr:\n{s}")
    }
}

impl Pending {
    /// Waits (at most `bound`) for the reply, `ok` or not.
    ///
    /// # Errors
    ///
    /// When the bound passes or the peer exits first (with the peer's stderr).
    pub async fn wait(self, bound: Duration) -> Result<Value> {
        match tokio::time::timeout(bound, self.reply).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(anyhow!(
                "peer.mjs exited before answering `{}` (id {})\n{}",
                self.cmd,
                self.id,
                stderr_tail(&self.stderr)
            )),
            Err(_) => Err(anyhow!(
                "peer.mjs did not answer `{}` (id {}) within {bound:?}\n{}",
                self.cmd,
                self.id,
                stderr_tail(&self.stderr)
            )),
        }
    }

    /// [`Pending::wait`] that fails unless the reply is `ok: true`.
    ///
    /// # Errors
    ///
    /// As [`Pending::wait`], and when the reply is `ok: false`.
    pub async fn wait_ok(self, bound: Duration) -> Result<Value> {
        let cmd = self.cmd.clone();
        let stderr = Arc::clone(&self.stderr);
        let reply = self.wait(bound).await?;
        if reply["ok"] != true {
            bail!("peer.mjs `{cmd}` failed: {reply}\n{}", stderr_tail(&stderr));
        }
        Ok(reply)
    }
}

impl JsPeer {
    /// Starts `node tests/js/peer.mjs --corestore <version> <storage>` and waits (at most
    /// `bound`) for its `ready` event.
    ///
    /// # Errors
    ///
    /// When Node or the packages are missing, the store fails to open, or `bound` passes.
    pub async fn spawn(
        version: CorestoreVersion,
        storage: PeerStorage,
        bound: Duration,
    ) -> Result<Self> {
        Self::spawn_with(version, storage, None, bound).await
    }

    /// [`JsPeer::spawn`] with a fixed primary key (`--primary-key`), so that named cores get
    /// the keys a Rust store with the same primary key derives.
    ///
    /// # Errors
    ///
    /// As [`JsPeer::spawn`].
    pub async fn spawn_with_primary_key(
        version: CorestoreVersion,
        storage: PeerStorage,
        primary_key: [u8; 32],
        bound: Duration,
    ) -> Result<Self> {
        Self::spawn_with(version, storage, Some(primary_key), bound).await
    }

    async fn spawn_with(
        version: CorestoreVersion,
        storage: PeerStorage,
        primary_key: Option<[u8; 32]>,
        bound: Duration,
    ) -> Result<Self> {
        require_node_modules()?;
        let mut cmd = Command::new("node");
        cmd.arg(js_dir().join("peer.mjs"))
            .args(["--corestore", version.arg()]);
        if let Some(key) = primary_key {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            cmd.args(["--primary-key", &hex]);
        }
        match &storage {
            PeerStorage::Memory => {
                cmd.arg("--memory");
            }
            PeerStorage::Dir(dir) => {
                cmd.arg("--dir").arg(dir);
            }
        }
        let mut child = cmd
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting node tests/js/peer.mjs (is Node 20 installed?)")?;
        let pid = child.id();
        let stdin = child.stdin.take().context("peer.mjs stdin")?;
        let stdout = child.stdout.take().context("peer.mjs stdout")?;
        let mut stderr_pipe = child.stderr.take().context("peer.mjs stderr")?;

        let stderr = Arc::new(Mutex::new(String::new()));
        let keep = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = lock(&keep);
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if s.len() > STDERR_KEEP {
                    let mut cut = s.len() - STDERR_KEEP;
                    while !s.is_char_boundary(cut) {
                        cut += 1;
                    }
                    s.drain(..cut);
                }
            }
        });

        let waiters: Waiters = Arc::new(Mutex::new(HashMap::new()));
        let (tx, mut events) = mpsc::unbounded_channel();
        let route = Arc::clone(&waiters);
        let log = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(event) = serde_json::from_str::<Value>(&line) else {
                    lock(&log).push_str(&format!("[not JSON on stdout] {line}\n"));
                    continue;
                };
                if event["event"] == "reply"
                    && let Some(id) = event["id"].as_u64()
                    && let Some(waiter) = lock(&route).remove(&id)
                {
                    let _ = waiter.send(event);
                    continue;
                }
                let _ = tx.send(event);
            }
            // The process closed stdout: every pending reply fails now instead of at its bound.
            lock(&route).clear();
        });

        let (exit_tx, exit_rx) = std_mpsc::channel();
        thread::spawn(move || {
            let _ = child.wait();
            let _ = exit_tx.send(());
        });

        let ready = loop {
            let event = match tokio::time::timeout(bound, events.recv()).await {
                Ok(Some(event)) => event,
                Ok(None) => bail!(
                    "peer.mjs exited before it was ready\n{}",
                    stderr_tail(&stderr)
                ),
                Err(_) => {
                    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
                    bail!(
                        "peer.mjs was not ready within {bound:?}\n{}",
                        stderr_tail(&stderr)
                    )
                }
            };
            match event["event"].as_str() {
                Some("ready") => break event,
                Some("fatal") => bail!(
                    "peer.mjs could not open its store: {event}\n{}",
                    stderr_tail(&stderr)
                ),
                _ => {}
            }
        };
        Ok(Self {
            version,
            stdin: Mutex::new(Some(stdin)),
            waiters,
            events: tokio::sync::Mutex::new(events),
            stderr,
            next_id: Mutex::new(1),
            pid,
            exited: Mutex::new(Some(exit_rx)),
            ready,
        })
    }

    /// The corestore version this peer runs.
    pub fn version(&self) -> CorestoreVersion {
        self.version
    }

    /// The `ready` event (versions, storage, primary key).
    pub fn ready(&self) -> &Value {
        &self.ready
    }

    /// The tail of the peer's stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Sends `cmd` with the fields of `args` (a JSON object) without waiting for the reply.
    ///
    /// # Errors
    ///
    /// When `args` is not an object or the peer's stdin is closed.
    pub fn send(&self, cmd: &str, args: Value) -> Result<Pending> {
        let mut msg = match args {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => bail!("peer.mjs arguments must be a JSON object, not {other}"),
        };
        let id = {
            let mut next = lock(&self.next_id);
            let id = *next;
            *next += 1;
            id
        };
        msg.insert("id".into(), json!(id));
        msg.insert("cmd".into(), json!(cmd));
        let (tx, rx) = oneshot::channel();
        lock(&self.waiters).insert(id, tx);
        let line = format!("{}\n", Value::Object(msg));
        let mut stdin = lock(&self.stdin);
        let stdin = stdin.as_mut().context("peer.mjs stdin already closed")?;
        if let Err(e) = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
        {
            lock(&self.waiters).remove(&id);
            bail!(
                "writing `{cmd}` to peer.mjs: {e}\n{}",
                stderr_tail(&self.stderr)
            );
        }
        Ok(Pending {
            cmd: cmd.to_owned(),
            id,
            reply: rx,
            stderr: Arc::clone(&self.stderr),
        })
    }

    /// Sends `cmd` and waits (at most `bound`) for its reply, `ok` or not.
    ///
    /// # Errors
    ///
    /// As [`JsPeer::send`] and [`Pending::wait`].
    pub async fn call(&self, cmd: &str, args: Value, bound: Duration) -> Result<Value> {
        self.send(cmd, args)?.wait(bound).await
    }

    /// Sends `cmd` and waits (at most `bound`) for an `ok: true` reply.
    ///
    /// # Errors
    ///
    /// As [`JsPeer::call`], and when the reply is `ok: false`.
    pub async fn call_ok(&self, cmd: &str, args: Value, bound: Duration) -> Result<Value> {
        self.send(cmd, args)?.wait_ok(bound).await
    }

    /// The next unsolicited event (`connection`, `peer-closed`, `error`, ...), waiting at most
    /// `bound`.
    ///
    /// # Errors
    ///
    /// When the bound passes or the peer exits.
    pub async fn next_event(&self, bound: Duration) -> Result<Value> {
        let mut events = self.events.lock().await;
        match tokio::time::timeout(bound, events.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(anyhow!(
                "peer.mjs exited while an event was awaited\n{}",
                stderr_tail(&self.stderr)
            )),
            Err(_) => Err(anyhow!(
                "no event from peer.mjs within {bound:?}\n{}",
                stderr_tail(&self.stderr)
            )),
        }
    }

    /// The unsolicited events received so far and not yet taken, without waiting.
    pub fn take_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        if let Ok(mut events) = self.events.try_lock() {
            while let Ok(event) = events.try_recv() {
                out.push(event);
            }
        }
        out
    }

    /// Waits (at most `bound`) for the next event named `name`, skipping others; fails on an
    /// `error` event (an uncaught exception inside the JavaScript libraries).
    ///
    /// # Errors
    ///
    /// As [`JsPeer::next_event`], and on an `error` event.
    pub async fn wait_event(&self, name: &str, bound: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let event = self
                .next_event(left)
                .await
                .with_context(|| format!("waiting for a `{name}` event"))?;
            if event["event"] == name {
                return Ok(event);
            }
            if event["event"] == "error" {
                bail!(
                    "peer.mjs reported an error while `{name}` was awaited: {event}\n{}",
                    stderr_tail(&self.stderr)
                );
            }
        }
    }

    /// Asks the peer to exit and waits (at most `bound`) until the process has exited.
    ///
    /// # Errors
    ///
    /// When the peer does not exit in time (it is then killed).
    pub async fn exit(self, bound: Duration) -> Result<()> {
        let reply = self.call("exit", json!({}), bound).await;
        let exited = lock(&self.exited).take();
        if let Some(exited) = exited {
            let waited = tokio::task::spawn_blocking(move || exited.recv_timeout(bound)).await;
            if !matches!(waited, Ok(Ok(()))) {
                let _ = Command::new("kill")
                    .arg("-9")
                    .arg(self.pid.to_string())
                    .status();
                bail!("peer.mjs did not exit within {bound:?}");
            }
        }
        reply.map(drop)
    }
}

impl Drop for JsPeer {
    fn drop(&mut self) {
        // Closing stdin makes the peer shut down cleanly (and delete a cs7 temporary store).
        drop(lock(&self.stdin).take());
        let Some(exited) = lock(&self.exited).take() else {
            return;
        };
        if exited.recv_timeout(Duration::from_secs(5)).is_err() {
            let _ = Command::new("kill")
                .arg("-9")
                .arg(self.pid.to_string())
                .status();
            let _ = exited.recv_timeout(Duration::from_secs(5));
        }
    }
}
