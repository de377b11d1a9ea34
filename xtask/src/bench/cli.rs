//! The `serve`/`fetch` scenario of `cargo xtask bench`: the `corestore` command against the same
//! two commands written with JavaScript corestore 6 (`tests/js/bench-cli.mjs`), on directory
//! stores, over loopback TCP.
//!
//! One store with one core of `total` bytes (64 KiB blocks) is written once by `corestore
//! append` and copied, so that each server has its own directory (corestore 6 locks
//! `primary-key`; the format is shared). For every server → client pair a server is started and
//! its `listening on ADDR` line read, then the client fetches every block into an empty store;
//! the time is the client process's wall time, start-up and store open included, as a person
//! running the command sees it.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use xshell::{Shell, cmd};

use super::{BenchPlan, Row};

/// Block size of the served core.
const BLOCK: u64 = 64 << 10;
/// Longest wait for a server's `listening on` line.
const LISTEN_WAIT: Duration = Duration::from_secs(30);
/// Longest run of one fetch.
const FETCH_CAP: Duration = Duration::from_secs(120);

/// Which implementation runs a command.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Rust,
    Js,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Self::Rust => "Rust",
            Self::Js => "JS",
        }
    }
}

/// Paths the scenario needs.
pub(super) struct Tools<'a> {
    /// The release `corestore` binary.
    pub(super) cli: &'a Path,
    /// `tests/js/bench-cli.mjs`.
    pub(super) js: &'a Path,
    /// A scratch directory.
    pub(super) tmp: &'a Path,
}

/// A running server, killed on drop.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic, incompressible-looking content (xorshift64*), so no layer can shortcut it.
fn content(len: u64) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    while (out.len() as u64) < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(usize::try_from(len).unwrap_or(0));
    out
}

fn start_server(side: Side, tools: &Tools<'_>, dir: &Path) -> Result<(Server, String)> {
    let mut command = match side {
        Side::Rust => {
            let mut c = Command::new(tools.cli);
            c.arg("--store").arg(dir);
            c.args(["serve", "--listen", "127.0.0.1:0"]);
            c
        }
        Side::Js => {
            let mut c = Command::new("node");
            c.arg(tools.js).arg("serve").arg("--dir").arg(dir);
            c.args(["--listen", "127.0.0.1:0"]);
            c
        }
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start the {} server", side.label()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let server = Server { child };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout)
            .lines()
            .map_while(std::io::Result::ok);
        let line = lines
            .by_ref()
            .find_map(|l| l.strip_prefix("listening on ").map(str::to_owned));
        let _ = tx.send(line);
        // Keep reading until the server exits: a closed pipe would fail its next line.
        lines.for_each(drop);
    });
    match rx.recv_timeout(LISTEN_WAIT) {
        Ok(Some(addr)) => Ok((server, addr)),
        Ok(None) => bail!("the {} server exited before listening", side.label()),
        Err(_) => bail!(
            "the {} server did not listen within {LISTEN_WAIT:?}",
            side.label()
        ),
    }
}

/// Runs one fetch into the empty store `dir` and returns its wall time.
fn fetch(
    side: Side,
    tools: &Tools<'_>,
    dir: &Path,
    addr: &str,
    key: &str,
    blocks: u64,
) -> Result<Duration> {
    let mut command = match side {
        Side::Rust => {
            let mut c = Command::new(tools.cli);
            c.arg("--store").arg(dir).arg("--json");
            c.args(["fetch", "--connect", addr, key, "--timeout"]);
            c.arg(FETCH_CAP.as_secs().to_string());
            c
        }
        Side::Js => {
            let mut c = Command::new("node");
            c.arg(tools.js).arg("fetch").arg("--dir").arg(dir);
            c.args(["--connect", addr, "--key", key]);
            c
        }
    };
    let log = dir.with_extension("stderr");
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("cannot start the {} fetch", side.label()))?;
    // Wait on another thread so that a stuck client is killed at the cap.
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().context("no stdout")?;
    std::thread::spawn(move || {
        let _ = tx.send(std::io::read_to_string(stdout).unwrap_or_default());
    });
    let Ok(out) = rx.recv_timeout(FETCH_CAP + Duration::from_secs(10)) else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("the {} fetch (pid {pid}) did not finish", side.label());
    };
    let status = child.wait()?;
    let elapsed = started.elapsed();
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    ensure!(
        status.success(),
        "the {} fetch failed ({status}):\n{out}{err}",
        side.label()
    );
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("the fetch printed no JSON")?;
    let json: serde_json::Value = serde_json::from_str(line)?;
    let length = match side {
        Side::Rust => json["cores"][0]["length"].as_u64(),
        Side::Js => json["length"].as_u64(),
    };
    ensure!(
        length == Some(blocks),
        "the {} fetch ended with length {length:?}, expected {blocks}",
        side.label()
    );
    Ok(elapsed)
}

/// Runs the scenario and returns its report rows.
pub(super) fn serve_fetch(sh: &Shell, plan: &BenchPlan, tools: &Tools<'_>) -> Result<Vec<Row>> {
    let total = plan.repl_total;
    let blocks = total / BLOCK;
    let cli = tools.cli;
    let base = tools.tmp.join("cli");
    let data = base.join("data");
    let served = base.join("served-rust");
    sh.create_dir(&base)?;
    std::fs::write(&data, content(total))?;
    cmd!(sh, "{cli} --store {served} init").read()?;
    let block = BLOCK.to_string();
    let appended = cmd!(
        sh,
        "{cli} --store {served} --json append --name bench --block-size {block} {data}"
    )
    .read()?;
    let json: serde_json::Value = serde_json::from_str(appended.trim())?;
    let key = json["key"]
        .as_str()
        .context("`corestore append` printed no key")?
        .to_owned();
    let served_js = base.join("served-js");
    cmd!(sh, "cp -r {served} {served_js}").run()?;

    let mut runs = Vec::new();
    for (server, client) in [
        (Side::Rust, Side::Rust),
        (Side::Rust, Side::Js),
        (Side::Js, Side::Rust),
        (Side::Js, Side::Js),
    ] {
        println!(
            "bench: serve/fetch {} MiB, {} serve → {} fetch",
            total >> 20,
            server.label(),
            client.label()
        );
        let dir = if server == Side::Rust {
            &served
        } else {
            &served_js
        };
        let (running, addr) = start_server(server, tools, dir)?;
        let into = base.join("fetched");
        if into.exists() {
            sh.remove_path(&into)?;
        }
        if client == Side::Rust {
            cmd!(sh, "{cli} --store {into} init").read()?;
        }
        let took = fetch(client, tools, &into, &addr, &key, blocks)?;
        drop(running);
        let mib_s = total as f64 / f64::from(1u32 << 20) / took.as_secs_f64();
        println!("  {:.3} s, {mib_s:.1} MiB/s", took.as_secs_f64());
        runs.push(((server, client), mib_s, took));
    }
    sh.remove_path(&base)?;

    let (_, js_speed, js_took) = runs[3];
    Ok(runs[..3]
        .iter()
        .map(|&((server, client), speed, took)| Row {
            scenario: format!(
                "CLI: `fetch` {} MiB (64 KiB blocks) from `serve`, {} serve → {} fetch, directory \
                 stores, process wall time (JS column: JS→JS)",
                total >> 20,
                server.label(),
                client.label()
            ),
            rust: format!("{speed:.1} MiB/s ({:.2} s)", took.as_secs_f64()),
            js: format!("{js_speed:.1} MiB/s ({:.2} s)", js_took.as_secs_f64()),
            ratio: speed / js_speed,
            target: None,
        })
        .collect())
}
