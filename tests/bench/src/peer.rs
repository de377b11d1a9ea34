//! A driver for `tests/js/peer.mjs` (documented in `tests/js/PEER.md`): one JavaScript
//! corestore 6 process, commands on stdin, JSON events on stdout.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// A running `peer.mjs`; killed when dropped.
#[derive(Debug)]
pub(crate) struct JsPeer {
    child: Child,
    stdin: ChildStdin,
    events: Receiver<Value>,
    next_id: u64,
}

impl JsPeer {
    /// Starts `node --expose-gc <script> --corestore 6 --memory` (the collector exposed for
    /// `prewarm`) and waits for its `ready` event.
    pub(crate) fn spawn(script: &str) -> Result<Self> {
        let mut child = Command::new("node")
            .arg("--expose-gc")
            .arg(script)
            .args(["--corestore", "6", "--memory"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting `node {script}`"))?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, events) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let mut peer = Self {
            child,
            stdin,
            events,
            next_id: 1,
        };
        peer.wait_event(|e| e["event"] == "ready", Duration::from_secs(30))
            .context("peer.mjs did not become ready")?;
        Ok(peer)
    }

    fn wait_event(&mut self, want: impl Fn(&Value) -> bool, bound: Duration) -> Result<Value> {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if want(&e) => return Ok(e),
                Ok(e) if e["event"] == "fatal" => bail!("peer.mjs failed: {e}"),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => bail!("no answer from peer.mjs within {bound:?}"),
                Err(RecvTimeoutError::Disconnected) => bail!("peer.mjs exited"),
            }
        }
    }

    /// Sends `cmd` with `args` and waits (at most `bound`) for its reply, which is returned
    /// whether `ok` or not.
    pub(crate) fn call(&mut self, cmd: &str, mut args: Value, bound: Duration) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        args["id"] = json!(id);
        args["cmd"] = json!(cmd);
        writeln!(self.stdin, "{args}")?;
        self.stdin.flush()?;
        self.wait_event(|e| e["event"] == "reply" && e["id"] == id, bound)
            .with_context(|| format!("peer.mjs command `{cmd}`"))
    }

    /// [`JsPeer::call`] that fails unless the reply is `ok`.
    pub(crate) fn call_ok(&mut self, cmd: &str, args: Value, bound: Duration) -> Result<Value> {
        let reply = self.call(cmd, args, bound)?;
        if reply["ok"] != true {
            bail!("peer.mjs `{cmd}` failed: {reply}");
        }
        Ok(reply)
    }
}

impl JsPeer {
    /// How many of blocks `0..blocks` of `key` are stored, asked block by block with `has`
    /// (pipelined). JS downloads a range in no fixed order, so the contiguous length says
    /// little about a download that was stopped early.
    pub(crate) fn count_present(&mut self, key: &str, blocks: u64, bound: Duration) -> Result<u64> {
        let first = self.next_id;
        self.next_id += blocks;
        let mut out = std::io::BufWriter::new(&mut self.stdin);
        for i in 0..blocks {
            writeln!(
                out,
                "{}",
                json!({"id": first + i, "cmd": "has", "key": key, "start": i})
            )?;
        }
        out.flush()?;
        drop(out);
        let deadline = Instant::now() + bound;
        let (mut seen, mut present) = (0u64, 0u64);
        while seen < blocks {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(e) = self.events.recv_timeout(left) else {
                bail!("peer.mjs answered {seen} of {blocks} `has` commands");
            };
            let id = e["id"].as_u64().unwrap_or(0);
            if e["event"] == "reply" && (first..first + blocks).contains(&id) {
                seen += 1;
                if e["has"] == true {
                    present += 1;
                }
            }
        }
        Ok(present)
    }
}

impl Drop for JsPeer {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "{}", json!({"id": "bye", "cmd": "exit"}));
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
