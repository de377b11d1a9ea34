//! The `corestore` command (crate `corestore-cli`) against the real JavaScript corestore 6 and 7,
//! through the binary itself: every step is a `corestore` process.
//!
//! * JS serves, the command fetches: a `peer.mjs` (corestore 6: a compat core; corestore 7: a
//!   manifest-keyed core) creates a core and listens; `corestore fetch --connect` downloads it
//!   into a fresh store, then `cat`, `info --json` and `list --json` show exactly the JS blocks.
//! * The command serves, JS fetches: `corestore append` writes a core, `corestore serve` serves
//!   it, and a corestore 6 and a corestore 7 peer, both connected at once, download and verify
//!   every block; `serve` then exits 0 on SIGTERM.
//! * Disk: stores written by JS corestore 6 (`disk-write.mjs` scenarios `multi` and `flushed`)
//!   read by `corestore list`, `key` and `cat`; a store written by `corestore append` (several
//!   appends, lines from stdin, fixed-size blocks from a file, namespaces) read by JS corestore 6
//!   through `disk-read.mjs` (every block, signature, audit).
//!
//! The binary is built once per test process with the `cargo` that runs the tests. Every wait
//! on a child process is bounded; children still running at the end are killed.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail, ensure};
use corestore_interop::peer::{CorestoreVersion, JsPeer, PeerStorage};
use corestore_interop::{run_bounded, run_node};
use serde_json::{Value, json};

/// Bound on every wait (a debug build on a loaded 2-core machine).
const BOUND: Duration = Duration::from_secs(180);
/// The JavaScript side's own bound (`timeout_ms`), shorter so its `TIMEOUT` reply comes first.
const JS_TIMEOUT_MS: u64 = 170_000;
/// Bound on building the binary.
const BUILD_BOUND: Duration = Duration::from_secs(900);
/// Bound on a `node disk-*.mjs` run.
const NODE_BOUND: Duration = Duration::from_secs(120);

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds `corestore` once (with the cargo running the tests) and returns its path.
fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| build_binary().unwrap_or_else(|e| panic!("{e:#}")))
}

fn build_binary() -> Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let root = workspace_root();
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "corestore-cli",
        "--bin",
        "corestore",
        "--message-format=json-render-diagnostics",
    ])
    .current_dir(&root);
    let out = run_bounded(cmd, b"", BUILD_BOUND, "cargo build -p corestore-cli")?;
    ensure!(
        out.status.success(),
        "cargo build -p corestore-cli failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // The artifact message names the executable wherever the target directory is.
    let from_cargo = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "corestore")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from));
    let bin = from_cargo.unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), |d| root.join(d));
        target
            .join("debug")
            .join(format!("corestore{}", std::env::consts::EXE_SUFFIX))
    });
    ensure!(bin.is_file(), "no corestore binary at {}", bin.display());
    Ok(bin)
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(signal)
        .arg(pid.to_string())
        .status();
}

/// `corestore --store <store> <args>` with `input` on stdin.
fn corestore(store: &Path, args: &[&str], input: &[u8]) -> Result<Output> {
    let mut cmd = Command::new(binary());
    cmd.arg("--store").arg(store).args(args);
    cmd.env_remove("CORESTORE_DIR");
    run_bounded(cmd, input, BOUND, &format!("corestore {}", args.join(" ")))
}

/// As [`corestore`], failing unless it exits 0; returns stdout.
fn corestore_ok(store: &Path, args: &[&str], input: &[u8]) -> Result<Vec<u8>> {
    let out = corestore(store, args, input)?;
    ensure!(
        out.status.success(),
        "corestore {} failed ({}):\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}

/// As [`corestore_ok`] with `--json`: the one JSON object it prints.
fn corestore_json(store: &Path, args: &[&str], input: &[u8]) -> Result<Value> {
    let mut with_json = vec!["--json"];
    with_json.extend_from_slice(args);
    let out = corestore_ok(store, &with_json, input)?;
    serde_json::from_slice(&out).with_context(|| {
        format!(
            "corestore {} printed something that is not JSON: {}",
            args.join(" "),
            String::from_utf8_lossy(&out)
        )
    })
}

/// A running `corestore serve`; killed when dropped if still running.
struct Serve {
    pid: u32,
    addr: String,
    /// `None` once the exit has been seen.
    exited: Option<mpsc::Receiver<std::io::Result<ExitStatus>>>,
    stderr: Arc<Mutex<String>>,
}

impl Serve {
    /// Starts `corestore --store <store> serve --listen 127.0.0.1:0` and waits for its
    /// `listening on ADDR` line.
    fn start(store: &Path) -> Result<Self> {
        let mut child = Command::new(binary())
            .arg("--store")
            .arg(store)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env_remove("CORESTORE_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting corestore serve")?;
        let pid = child.id();
        let stdout = child.stdout.take().context("serve stdout")?;
        let mut stderr_pipe = child.stderr.take().context("serve stderr")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let keep = Arc::clone(&stderr);
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut s = keep.lock().unwrap_or_else(PoisonError::into_inner);
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (line_tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (exit_tx, exited) = mpsc::channel();
        thread::spawn(move || {
            let _ = exit_tx.send(child.wait());
        });
        let mut serve = Self {
            pid,
            addr: String::new(),
            exited: Some(exited),
            stderr,
        };
        let line = lines.recv_timeout(BOUND).map_err(|_| {
            anyhow!(
                "corestore serve printed no line within {BOUND:?} (or exited)\n{}",
                serve.stderr()
            )
        })?;
        serve.addr = line
            .strip_prefix("listening on ")
            .with_context(|| format!("corestore serve printed {line:?}\n{}", serve.stderr()))?
            .trim()
            .to_owned();
        Ok(serve)
    }

    fn port(&self) -> Result<u16> {
        let addr: std::net::SocketAddr = self.addr.parse().context("serve address")?;
        ensure!(addr.ip().is_loopback(), "serve listens on {addr}");
        Ok(addr.port())
    }

    fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// SIGTERM, then waits (bounded) for a clean exit (status 0).
    fn stop(mut self) -> Result<()> {
        let exited = self.exited.take().context("serve already stopped")?;
        if let Ok(status) = exited.try_recv() {
            bail!(
                "corestore serve had exited before SIGTERM ({status:?})\n{}",
                self.stderr()
            );
        }
        kill(self.pid, "-TERM");
        let status = exited
            .recv_timeout(BOUND)
            .map_err(|_| anyhow!("corestore serve did not exit within {BOUND:?} of SIGTERM"))?
            .context("waiting for corestore serve")?;
        ensure!(
            status.success(),
            "corestore serve exited with {status} on SIGTERM\n{}",
            self.stderr()
        );
        Ok(())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // Still running (not reaped yet, so the pid is still this process): kill it.
        if let Some(exited) = self.exited.take()
            && matches!(exited.try_recv(), Err(mpsc::TryRecvError::Empty))
        {
            kill(self.pid, "-9");
            let _ = exited.recv_timeout(Duration::from_secs(10));
        }
    }
}

/// Block `i`: `block-<i>`, repeated and cut to `size` bytes when a size is given (PEER.md).
fn block(i: u64, size: Option<usize>) -> Vec<u8> {
    let s = format!("block-{i}").into_bytes();
    match size {
        None => s,
        Some(n) => s.iter().copied().cycle().take(n).collect(),
    }
}

fn str_field<'a>(v: &'a Value, field: &str) -> Result<&'a str> {
    v[field]
        .as_str()
        .with_context(|| format!("no string `{field}` in {v}"))
}

fn u64_field(v: &Value, field: &str) -> Result<u64> {
    v[field]
        .as_u64()
        .with_context(|| format!("no integer `{field}` in {v}"))
}

fn hex_blocks(v: &Value) -> Result<Vec<String>> {
    v.as_array()
        .with_context(|| format!("not an array of blocks: {v}"))?
        .iter()
        .map(|b| {
            b.as_str()
                .map(str::to_owned)
                .with_context(|| format!("not a hex block: {b}"))
        })
        .collect()
}

fn tempdir() -> Result<tempfile::TempDir> {
    tempfile::tempdir().context("creating a temporary directory")
}

// ---------------------------------------------------------------------------------------------
// JS serves, `corestore fetch` downloads.

async fn js_serves_cli_fetches(version: CorestoreVersion, blocks: u64, size: Option<usize>) {
    let js = JsPeer::spawn(version, PeerStorage::Memory, BOUND)
        .await
        .unwrap();
    let created = js
        .call_ok(
            "create",
            json!({"name": "served-by-js", "blocks": blocks, "block_size": size,
                   "content": "index", "timeout_ms": JS_TIMEOUT_MS}),
            BOUND,
        )
        .await
        .unwrap();
    assert_eq!(u64_field(&created, "length").unwrap(), blocks, "{created}");
    // corestore 6 makes compat cores, corestore 7 manifest-keyed ones.
    assert_eq!(
        created["compat"],
        version == CorestoreVersion::V6,
        "{created}"
    );
    let key = str_field(&created, "key").unwrap().to_owned();
    let listening = js
        .call_ok("listen", json!({"port": 0}), BOUND)
        .await
        .unwrap();
    let port = u64_field(&listening, "port").unwrap();

    let tmp = tempdir().unwrap();
    let addr = format!("127.0.0.1:{port}");

    // A range first, into its own store: only those blocks are stored.
    let sparse = tmp.path().join("sparse");
    corestore_json(&sparse, &["init"], b"").unwrap();
    let fetched = corestore_json(
        &sparse,
        &[
            "fetch",
            "--connect",
            &addr,
            &key,
            "--start",
            "10",
            "--end",
            "20",
        ],
        b"",
    )
    .unwrap();
    assert_eq!(fetched["cores"][0]["downloaded"], 10, "{fetched}");
    let cat = corestore_ok(&sparse, &["cat", &key, "--start", "10", "--end", "20"], b"").unwrap();
    let want: Vec<u8> = (10..20).flat_map(|i| block(i, size)).collect();
    assert!(cat == want, "cat of the fetched range: {cat:?}");
    let info = corestore_json(&sparse, &["info", &key], b"").unwrap();
    assert_eq!(info["length"], blocks, "{info}");
    assert_eq!(info["contiguous_length"], 0, "{info}");
    let missing = corestore(&sparse, &["cat", &key, "--start", "0", "--end", "1"], b"").unwrap();
    assert_eq!(missing.status.code(), Some(1), "cat of a block not stored");

    let store = tmp.path().join("store");
    let init = corestore_json(&store, &["init"], b"").unwrap();
    assert_eq!(init["created"], true, "{init}");
    let fetched = corestore_json(
        &store,
        &["fetch", "--connect", &addr, &key, "--timeout", "60"],
        b"",
    )
    .unwrap();
    let cores = fetched["cores"].as_array().unwrap();
    assert_eq!(cores.len(), 1, "{fetched}");
    assert_eq!(cores[0]["key"], key.as_str(), "{fetched}");
    assert_eq!(cores[0]["length"], blocks, "{fetched}");
    assert_eq!(cores[0]["downloaded"], blocks, "{fetched}");
    js.exit(BOUND).await.unwrap();

    // Everything is on disk now: the JS peer is gone.
    let expected: Vec<u8> = (0..blocks).flat_map(|i| block(i, size)).collect();
    let cat = corestore_ok(&store, &["cat", &key], b"").unwrap();
    assert!(
        cat == expected,
        "corestore cat printed {} bytes, not the {} bytes JS wrote",
        cat.len(),
        expected.len()
    );
    let info = corestore_json(&store, &["info", &key], b"").unwrap();
    assert_eq!(info["key"], key.as_str(), "{info}");
    assert_eq!(info["discovery_key"], created["discovery_key"], "{info}");
    assert_eq!(info["length"], blocks, "{info}");
    assert_eq!(info["contiguous_length"], blocks, "{info}");
    assert_eq!(info["byte_length"], expected.len() as u64, "{info}");
    assert_eq!(info["writable"], false, "{info}");
    let list = corestore_json(&store, &["list"], b"").unwrap();
    let listed = list["cores"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{list}");
    assert_eq!(listed[0]["key"], key.as_str(), "{list}");
    assert_eq!(listed[0]["length"], blocks, "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fetches_from_js_corestore6() {
    js_serves_cli_fetches(CorestoreVersion::V6, 300, Some(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_fetches_from_js_corestore7() {
    js_serves_cli_fetches(CorestoreVersion::V7, 250, None).await;
}

#[test]
fn cli_fetch_from_an_unreachable_peer_fails_clearly() {
    let tmp = tempdir().unwrap();
    let store = tmp.path().join("store");
    corestore_json(&store, &["init"], b"").unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let key = "0".repeat(64);
    let out = corestore(
        &store,
        &["fetch", "--connect", &addr, &key, "--timeout", "30"],
        b"",
    )
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot connect"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// `corestore serve`, JS downloads.

/// JS `open`s the key, connects to `port` and downloads every block, checking each one.
async fn js_downloads(js: &JsPeer, key: &str, port: u16, blocks: u64, size: usize) -> Result<()> {
    let opened = js
        .call_ok(
            "open",
            json!({"key": key, "timeout_ms": JS_TIMEOUT_MS}),
            BOUND,
        )
        .await?;
    ensure!(opened["length"] == 0, "JS open: {opened}");
    let conn = js
        .call_ok(
            "connect",
            json!({"port": port, "timeout_ms": JS_TIMEOUT_MS}),
            BOUND,
        )
        .await?;
    ensure!(conn["initiator"] == true, "JS connect: {conn}");
    let got = js
        .call_ok(
            "download",
            json!({"key": key, "length": blocks, "expect_content": "index",
                   "block_size": size, "timeout_ms": JS_TIMEOUT_MS}),
            BOUND,
        )
        .await?;
    ensure!(
        got["verified"] == true && got["mismatches"] == 0,
        "JS download: {got}"
    );
    ensure!(
        got["blocks"] == blocks && got["length"] == blocks && got["end"] == blocks,
        "JS download: {got}"
    );
    ensure!(
        got["bytes"] == blocks * size as u64 && got["byte_length"] == blocks * size as u64,
        "JS download: {got}"
    );
    let info = js
        .call_ok(
            "info",
            json!({"key": key, "timeout_ms": JS_TIMEOUT_MS}),
            BOUND,
        )
        .await?;
    ensure!(
        info["contiguous_length"] == blocks && info["writable"] == false,
        "JS info: {info}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_corestore6_and_7_fetch_from_cli_serve() {
    const BLOCKS: u64 = 400;
    const SIZE: usize = 256;
    let tmp = tempdir().unwrap();
    let store = tmp.path().join("store");
    corestore_json(&store, &["init"], b"").unwrap();
    // Two appends from a file, so the core is written in two sessions.
    let input = tmp.path().join("input.bin");
    let mut key = String::new();
    for (from, to) in [(0, BLOCKS / 4), (BLOCKS / 4, BLOCKS)] {
        let bytes: Vec<u8> = (from..to).flat_map(|i| block(i, Some(SIZE))).collect();
        std::fs::write(&input, bytes).unwrap();
        let appended = corestore_json(
            &store,
            &[
                "append",
                "--name",
                "served-by-rust",
                "--block-size",
                &SIZE.to_string(),
                input.to_str().unwrap(),
            ],
            b"",
        )
        .unwrap();
        assert_eq!(appended["appended"], to - from, "{appended}");
        assert_eq!(appended["length"], to, "{appended}");
        assert!(
            key.is_empty() || appended["key"] == key.as_str(),
            "{appended}"
        );
        key = str_field(&appended, "key").unwrap().to_owned();
    }

    let serve = Serve::start(&store).unwrap();
    let port = serve.port().unwrap();
    let (js6, js7) = tokio::join!(
        JsPeer::spawn(CorestoreVersion::V6, PeerStorage::Memory, BOUND),
        JsPeer::spawn(CorestoreVersion::V7, PeerStorage::Memory, BOUND),
    );
    let (js6, js7) = (js6.unwrap(), js7.unwrap());
    // Both peers connected to the one `serve` at once.
    let (r6, r7) = tokio::join!(
        js_downloads(&js6, &key, port, BLOCKS, SIZE),
        js_downloads(&js7, &key, port, BLOCKS, SIZE),
    );
    r6.with_context(|| format!("corestore 6\nserve stderr:\n{}", serve.stderr()))
        .unwrap();
    r7.with_context(|| format!("corestore 7\nserve stderr:\n{}", serve.stderr()))
        .unwrap();
    for js in [&js6, &js7] {
        for event in js.take_events() {
            assert!(
                event["event"] != "error",
                "JS error event: {event}\n{}",
                js.stderr()
            );
        }
    }
    let (e6, e7) = tokio::join!(js6.exit(BOUND), js7.exit(BOUND));
    e6.unwrap();
    e7.unwrap();
    serve.stop().unwrap();
    // The store is intact after serving.
    let info = corestore_json(&store, &["info", "--name", "served-by-rust"], b"").unwrap();
    assert_eq!(info["length"], BLOCKS, "{info}");
    assert_eq!(info["writable"], true, "{info}");
}

// ---------------------------------------------------------------------------------------------
// Store directories on disk, both ways.

/// `disk-write.mjs <scenario>` into a fresh directory; its JSON report.
fn js_write_store(scenario: &str, dir: &Path) -> Value {
    let out = run_node(
        "disk-write.mjs",
        &[scenario, dir.to_str().unwrap()],
        b"",
        NODE_BOUND,
    )
    .unwrap();
    serde_json::from_slice(&out).unwrap()
}

/// The `--namespace` arguments of a `disk-write.mjs` core (`label` is `ns/.../name`).
fn namespace_args(js: &Value) -> Vec<String> {
    let label = js["label"].as_str().unwrap();
    let mut parts: Vec<&str> = label.split('/').collect();
    parts.pop();
    parts
        .into_iter()
        .flat_map(|ns| ["--namespace".to_owned(), ns.to_owned()])
        .collect()
}

#[test]
fn cli_reads_stores_written_by_js_corestore6() {
    let mut checked = 0;
    for scenario in ["multi", "flushed"] {
        let tmp = tempdir().unwrap();
        let store = tmp.path().join("store");
        let written = js_write_store(scenario, &store);
        let js_cores = written["cores"].as_array().unwrap();

        let list = corestore_json(&store, &["list"], b"").unwrap();
        let listed = list["cores"].as_array().unwrap();
        let mut ours: Vec<(String, u64, Value)> = listed
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().unwrap().to_owned(),
                    c["length"].as_u64().unwrap(),
                    c["name"].clone(),
                )
            })
            .collect();
        let mut theirs: Vec<(String, u64, Value)> = js_cores
            .iter()
            .map(|c| {
                (
                    c["key"].as_str().unwrap().to_owned(),
                    c["length"].as_u64().unwrap(),
                    c["name"].clone(),
                )
            })
            .collect();
        ours.sort_by(|a, b| a.0.cmp(&b.0));
        theirs.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(ours, theirs, "{scenario}: corestore list --json: {list}");

        for js in js_cores {
            let what = format!("{scenario}/{}", js["label"]);
            let key = str_field(js, "key").unwrap();
            let expected = hex_blocks(&js["blocks"]).unwrap();

            let cat = corestore_json(&store, &["cat", key], b"").unwrap();
            assert_eq!(hex_blocks(&cat["blocks"]).unwrap(), expected, "{what}: cat");
            let raw = corestore_ok(&store, &["cat", key], b"").unwrap();
            assert_eq!(hex::encode(raw), expected.concat(), "{what}: raw cat");

            let info = corestore_json(&store, &["info", key], b"").unwrap();
            assert_eq!(info["discovery_key"], js["discoveryKey"], "{what}: {info}");
            assert_eq!(info["length"], js["length"], "{what}: {info}");
            assert_eq!(info["byte_length"], js["byteLength"], "{what}: {info}");
            assert_eq!(info["fork"], js["fork"], "{what}: {info}");
            assert_eq!(info["writable"], !js["name"].is_null(), "{what}: {info}");

            // A named core: the command derives the same key from the JS primary key, and
            // `cat --name` reads the same blocks.
            if let Some(name) = js["name"].as_str() {
                let mut args = vec!["key".to_owned(), "--name".to_owned(), name.to_owned()];
                args.extend(namespace_args(js));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let derived = corestore_json(&store, &args, b"").unwrap();
                assert_eq!(derived["key"], key, "{what}: {derived}");
                let mut args = vec!["cat".to_owned(), "--name".to_owned(), name.to_owned()];
                args.extend(namespace_args(js));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let cat = corestore_json(&store, &args, b"").unwrap();
                assert_eq!(
                    hex_blocks(&cat["blocks"]).unwrap(),
                    expected,
                    "{what}: cat --name"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} cores checked");
}

#[test]
fn js_corestore6_reads_a_store_written_by_cli_append() {
    const SIZE: usize = 1000;
    let tmp = tempdir().unwrap();
    let store = tmp.path().join("store");
    corestore_json(&store, &["init"], b"").unwrap();

    // Core 1: lines from stdin, in three appends (one block per line, newline kept).
    let mut notes: Vec<Vec<u8>> = Vec::new();
    let mut notes_key = String::new();
    for batch in [
        &["hello\n", "world\n"][..],
        &["third line\n"][..],
        &["", "a\n", "bb\n", "last without newline"][..],
    ] {
        let input = batch.concat();
        let appended =
            corestore_json(&store, &["append", "--name", "notes"], input.as_bytes()).unwrap();
        notes.extend(
            batch
                .iter()
                .filter(|l| !l.is_empty())
                .map(|l| l.as_bytes().to_vec()),
        );
        assert_eq!(appended["length"], notes.len() as u64, "{appended}");
        notes_key = str_field(&appended, "key").unwrap().to_owned();
    }

    // Core 2: fixed-size blocks from files in a namespace chain, the last block shorter.
    let file = tmp.path().join("data.bin");
    let mut data: Vec<Vec<u8>> = Vec::new();
    let mut data_key = String::new();
    for (from, to, tail) in [(0u64, 7u64, 0usize), (7, 20, 0), (20, 25, 123)] {
        let mut bytes: Vec<u8> = (from..to).flat_map(|i| block(i, Some(SIZE))).collect();
        bytes.extend(block(to, Some(tail)));
        std::fs::write(&file, &bytes).unwrap();
        let appended = corestore_json(
            &store,
            &[
                "append",
                "--name",
                "data",
                "--namespace",
                "media",
                "--namespace",
                "photos",
                "--block-size",
                &SIZE.to_string(),
                file.to_str().unwrap(),
            ],
            b"",
        )
        .unwrap();
        data.extend(bytes.chunks(SIZE).map(<[u8]>::to_vec));
        assert_eq!(appended["length"], data.len() as u64, "{appended}");
        data_key = str_field(&appended, "key").unwrap().to_owned();
    }
    // Core 3: the same name in another namespace is another core; appended by KEY.
    let other = corestore_json(
        &store,
        &["append", "--name", "notes", "--namespace", "other"],
        b"x\n",
    )
    .unwrap();
    let other_key = str_field(&other, "key").unwrap().to_owned();
    assert_ne!(other_key, notes_key);
    let again = corestore_json(&store, &["append", &other_key], b"y\n").unwrap();
    assert_eq!(again["length"], 2, "{again}");
    let other_blocks = vec![b"x\n".to_vec(), b"y\n".to_vec()];

    let expected = [
        (&notes_key, &notes),
        (&data_key, &data),
        (&other_key, &other_blocks),
    ];
    // By key, and (without keys) by discovery key as replication opens them.
    for by_key in [true, false] {
        let mut args = vec![store.to_str().unwrap()];
        if by_key {
            args.extend(expected.iter().map(|(k, _)| k.as_str()));
        }
        let out = run_node("disk-read.mjs", &args, b"", NODE_BOUND).unwrap();
        let read: Value = serde_json::from_slice(&out).unwrap();
        let cores = read["cores"].as_array().unwrap();
        assert_eq!(cores.len(), expected.len(), "{read}");
        for (key, blocks) in expected {
            let js = cores
                .iter()
                .find(|c| c["key"] == key.as_str())
                .unwrap_or_else(|| panic!("JS did not open {key}: {read}"));
            let what = format!("core {key} (by key: {by_key})");
            assert!(js["error"].is_null(), "{what}: {js}");
            assert_eq!(js["length"], blocks.len() as u64, "{what}");
            assert_eq!(js["contiguousLength"], blocks.len() as u64, "{what}");
            assert_eq!(js["fork"], 0, "{what}");
            assert_eq!(
                js["byteLength"],
                blocks.iter().map(Vec::len).sum::<usize>() as u64,
                "{what}"
            );
            assert_eq!(js["signatureValid"], true, "{what}: {js}");
            assert_eq!(js["verifierValid"], true, "{what}: {js}");
            assert_eq!(js["writable"], true, "{what}: {js}");
            assert_eq!(js["leafMismatch"], json!([]), "{what}: {js}");
            let got = hex_blocks(&js["blocks"]).unwrap();
            let want: Vec<String> = blocks.iter().map(hex::encode).collect();
            assert_eq!(got, want, "{what}: blocks");
            let audit = &js["audit"];
            assert_eq!(audit["missing"], json!([]), "{what}: {audit}");
            assert_eq!(
                audit["corrections"],
                json!({"tree": 0, "blocks": 0}),
                "{what}: {audit}"
            );
        }
    }
}
