//! `serve` and `fetch` between stores on 127.0.0.1, and how `fetch` fails.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{Env, SPEC_TEST_KEY, failure, noise, str_field, u64_field};

/// Bound on waiting for `serve` to print its address.
const STARTUP: Duration = Duration::from_secs(60);

/// A running `corestore serve`, killed when dropped.
struct Server {
    child: Child,
    addr: String,
    /// The Noise public key `serve` prints (hex).
    identity: String,
}

impl Server {
    /// Spawns `corestore [--json] serve` on a free port; its stdout lines arrive on the channel.
    fn spawn(env: &Env, json: bool) -> (Self, mpsc::Receiver<std::io::Result<String>>) {
        let args: &[&str] = if json {
            &["--json", "serve", "--listen", "127.0.0.1:0"]
        } else {
            &["serve", "--listen", "127.0.0.1:0"]
        };
        let child = env
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn corestore serve");
        let mut server = Self {
            child,
            addr: String::new(),
            identity: String::new(),
        };
        let stdout = server.child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (server, rx)
    }

    fn start(env: &Env) -> Self {
        let (mut server, rx) = Self::spawn(env, false);
        let line = rx
            .recv_timeout(STARTUP)
            .expect("serve prints its address in time")
            .expect("read serve's stdout");
        server.addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from serve: {line:?}"))
            .to_owned();
        assert!(server.addr.starts_with("127.0.0.1:"), "{line}");
        assert!(
            !server.addr.ends_with(":0"),
            "the real port is printed: {line}"
        );
        let line = rx
            .recv_timeout(STARTUP)
            .expect("serve prints its identity in time")
            .expect("read serve's stdout");
        server.identity = line
            .strip_prefix("identity ")
            .unwrap_or_else(|| panic!("unexpected second line from serve: {line:?}"))
            .to_owned();
        assert_eq!(server.identity.len(), 64, "{line}");
        server
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn serve_and_fetch_between_two_stores() {
    let a = Env::init();
    let lines: Vec<u8> = (0..200)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    let k1 = str_field(&a.json_stdin(&["append", "--name", "lines"], &lines), "key").to_owned();
    let blob = noise(8 * 16_384, 3);
    let k2 = str_field(
        &a.json_stdin(
            &["append", "--name", "blob", "--block-size", "16384"],
            &blob,
        ),
        "key",
    )
    .to_owned();

    let server = Server::start(&a);
    // The served store is locked: other commands get a clear error instead of corrupting it.
    let stderr = failure(&["list"], &a.run(&["list"]), 1);
    assert!(stderr.contains("locked"), "{stderr}");

    let b = Env::init();
    let args = [
        "fetch",
        "--connect",
        &server.addr,
        &k1,
        &k2,
        "--timeout",
        "120",
    ];
    let report = b.json(&args);
    let cores = report["cores"].as_array().expect("cores");
    assert_eq!(cores.len(), 2);
    assert_eq!(str_field(&cores[0], "key"), k1);
    assert_eq!(u64_field(&cores[0], "downloaded"), 200);
    assert_eq!(u64_field(&cores[1], "downloaded"), 8);

    assert_eq!(b.ok(&["cat", &k1]), lines);
    assert_eq!(b.ok(&["cat", &k2]), blob);
    let info = b.json(&["info", &k2]);
    assert_eq!(u64_field(&info, "length"), 8);
    assert_eq!(u64_field(&info, "contiguous_length"), 8);
    assert_eq!(u64_field(&info, "byte_length"), blob.len() as u64);
    assert_eq!(info["writable"], false);

    // A range only: those blocks are stored, the others are not.
    let c = Env::init();
    let args = [
        "fetch",
        "--connect",
        &server.addr,
        &k2,
        "--start",
        "2",
        "--end",
        "5",
        "--timeout",
        "120",
    ];
    c.ok(&args);
    assert_eq!(
        c.ok(&["cat", &k2, "--start", "2", "--end", "5"]),
        &blob[2 * 16_384..5 * 16_384]
    );
    let args = ["cat", k2.as_str()];
    let stderr = failure(&args, &c.run(&args), 1);
    assert!(stderr.contains("block 0"), "{stderr}");
    drop(server);
}

#[test]
fn fetch_from_an_unreachable_peer_fails_clearly() {
    // A port nobody listens on: bind one, then free it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let env = Env::init();
    let addr = format!("127.0.0.1:{port}");
    let args = [
        "fetch",
        "--connect",
        &addr,
        SPEC_TEST_KEY,
        "--timeout",
        "10",
    ];
    let started = Instant::now();
    let out = env.run(&args);
    let stderr = failure(&args, &out, 1);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        stderr.contains(&format!("cannot connect to {addr}")),
        "{stderr}"
    );
    // Nothing was added to the store.
    assert_eq!(
        env.json(&["list"])["cores"].as_array().map(Vec::len),
        Some(0)
    );
}

#[test]
fn fetch_of_a_core_the_peer_lacks_fails_at_the_timeout() {
    let a = Env::init();
    a.ok_stdin(&["append", "--name", "something"], b"x\n");
    let server = Server::start(&a);
    let b = Env::init();
    let args = [
        "fetch",
        "--connect",
        &server.addr,
        SPEC_TEST_KEY,
        "--timeout",
        "2",
    ];
    let started = Instant::now();
    let out = b.run(&args);
    let stderr = failure(&args, &out, 1);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
    assert!(stderr.contains("download incomplete"), "{stderr}");
    assert!(stderr.contains(SPEC_TEST_KEY), "{stderr}");
    drop(server);
}

#[test]
fn serve_has_a_stable_identity_per_store() {
    let a = Env::init();
    let first = Server::start(&a);
    let identity = first.identity.clone();
    drop(first);
    // The same store served again: the same identity; another store: another one.
    let again = Server::start(&a);
    assert_eq!(again.identity, identity);
    drop(again);
    let b = Env::init();
    let other = Server::start(&b);
    assert_ne!(other.identity, identity);
    let b_identity = other.identity.clone();
    drop(other);
    // `--json` carries it too.
    let (_server, rx) = Server::spawn(&b, true);
    let line = rx
        .recv_timeout(STARTUP)
        .expect("serve --json prints in time")
        .expect("read serve's stdout");
    let json: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON object");
    assert_eq!(str_field(&json, "identity"), b_identity);
}
