//! Crash test with real process kills: a child process appends batches to a core on disk in
//! a loop and is killed with `SIGKILL` at pseudo-random points; after every kill the core must
//! reopen, verify its signature (also through a reader that checks an upgrade proof), and hold
//! every block up to the last acknowledged length with the right content.
//!
//! The child is this test binary itself (a private copy of it), re-executed with `--exact <this test> --nocapture`
//! and [`CHILD_ENV`] naming the core's directory. It prints `@crash open <length>` once the core is
//! open and `@crash ack <length>` after every append returns (stdout flushed per line); the parent
//! collects those lines through a reader thread and a channel (every wait bounded by
//! `recv_timeout`).
//!
//! The core uses [`Durability::Buffered`] (the default, as JavaScript): an append is
//! acknowledged once its data and oplog entry are written to the file, i.e. into the OS page
//! cache, without `fsync`. A process kill does not lose the page cache, so acknowledged writes
//! must survive it; that is exactly the property under test (power loss is the business of
//! `Durability::Synced` and of the fault-injection tests in `faults`).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use corestore_keys::Verifier;
use hypercore_lite::{Core, CoreOptions, CoreStorage, Durability, Error};
use rac_storage::DirectoryProvider;

use crate::common::{TempDir, test_key_pair, upgrade};

/// Set in the child: the directory of the store to append to.
const CHILD_ENV: &str = "HYPERCORE_LITE_CRASH_CHILD_DIR";
/// The full name of the test, for `--exact`.
const TEST_NAME: &str = "crash::killed_appender_loses_nothing_acknowledged";
/// Kill cycles.
const CYCLES: u32 = 110;
/// Bound on every wait for a line from the child.
const LINE_TIMEOUT: Duration = Duration::from_secs(20);
/// The core's name prefix in the store.
const PREFIX: &str = "cores/aa/bb/crash/";

/// Block `i`: its content is a function of its index, mostly small, every 13th one 4 KiB
/// (so data writes straddle pages), every 37th empty.
fn content(i: u64) -> Vec<u8> {
    let len = match i {
        _ if i % 37 == 5 => 0,
        _ if i.is_multiple_of(13) => 4096,
        _ => (i % 29 + 1) as usize,
    };
    (0..len as u64)
        .map(|j| (i.wrapping_mul(131) ^ j.wrapping_mul(7)) as u8)
        .collect()
}

/// xorshift64*: the deterministic kill schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn open_core(dir: &Path) -> hypercore_lite::Result<Core> {
    Core::open(
        &DirectoryProvider::new(dir),
        PREFIX,
        CoreOptions::new()
            .key_pair(test_key_pair())
            .durability(Durability::Buffered),
    )
}

/// The child: open (or create) the core, then append batches of 1 to 5 blocks until killed,
/// reporting every acknowledged length. Stops on its own only if the parent is gone (stdout
/// fails) or after a cap the parent never lets it reach.
fn child(dir: &Path) {
    let mut out = std::io::stdout().lock();
    let mut core = open_core(dir).expect("child: open");
    // The harness printed `test <name> ... ` without a newline: start a fresh line.
    writeln!(out, "\n@crash open {}", core.length()).unwrap();
    out.flush().unwrap();
    for _ in 0..100_000 {
        let start = core.length();
        let count = start % 5 + 1;
        let blocks: Vec<Vec<u8>> = (start..start + count).map(content).collect();
        let outcome = core.append_batch(&blocks).expect("child: append");
        if writeln!(out, "@crash ack {}", outcome.length)
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

/// What the parent saw of one child run.
struct Seen {
    opened: Option<u64>,
    acked: u64,
}

/// Reads `open`/`ack` lines (ignoring the test harness's own output) from the child's
/// stdout into a channel.
fn spawn_reader(child: &mut Child) -> mpsc::Receiver<(bool, u64)> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(msg) = line.split("@crash ").nth(1) else {
                continue;
            };
            let parsed = msg
                .strip_prefix("open ")
                .map(|n| (true, n))
                .or_else(|| msg.strip_prefix("ack ").map(|n| (false, n)));
            if let Some((open, n)) = parsed
                && let Ok(n) = n.trim().parse()
                && tx.send((open, n)).is_err()
            {
                break;
            }
        }
    });
    rx
}

/// Records one line of the child.
fn record((open, n): (bool, u64), seen: &mut Seen) {
    if open {
        seen.opened = Some(n);
    } else {
        assert!(n > seen.acked, "acknowledged lengths grow");
    }
    seen.acked = n;
}

/// Runs one child on `dir` and kills it after `acks` acknowledged appends (or right after
/// spawning, before it even opened, if `acks` is `None`).
fn run_child(exe: &Path, dir: &Path, acks: Option<u64>) -> Seen {
    let mut child = Command::new(exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let rx = spawn_reader(&mut child);
    let mut seen = Seen {
        opened: None,
        acked: 0,
    };
    if let Some(acks) = acks {
        let mut got = 0;
        while seen.opened.is_none() || got < acks {
            assert!(
                got <= acks + 1,
                "the child acknowledged appends before it opened"
            );
            match rx.recv_timeout(LINE_TIMEOUT) {
                Ok(line) => {
                    got += u64::from(!line.0);
                    record(line, &mut seen);
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("child did not report within {LINE_TIMEOUT:?}: {e}");
                }
            }
        }
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed, it did not exit");
    // Lines printed before the kill are acknowledged too; the reader ends at EOF.
    while let Ok(line) = rx.recv_timeout(LINE_TIMEOUT) {
        record(line, &mut seen);
    }
    seen
}

/// Reopens after a kill and checks everything acknowledged; returns the length.
fn check_after_kill(dir: &Path, seen: &Seen, before: u64, cycle: u32) -> u64 {
    let kp = test_key_pair();
    let options = CoreOptions::new().key(kp.public_key().into()).create(false);
    let core = match Core::open(&DirectoryProvider::new(dir), PREFIX, options) {
        Ok(core) => core,
        // Killed before the child ever created the core.
        Err(Error::NotFound) if seen.opened.is_none() && before == 0 => return 0,
        Err(e) => panic!("cycle {cycle}: reopen failed: {e}"),
    };
    let acked = seen.acked.max(before);
    let length = core.length();
    assert!(
        length >= acked,
        "cycle {cycle}: length {length} < acknowledged {acked}"
    );
    for i in 0..length {
        assert!(core.has(i), "cycle {cycle}: block {i} lost");
        assert_eq!(core.get(i).unwrap(), content(i), "cycle {cycle}: block {i}");
    }
    if length > 0 {
        let signature = core.signature().expect("a signed head");
        Verifier::compat(kp.public_key())
            .verify(&core.head(), signature)
            .unwrap_or_else(|e| panic!("cycle {cycle}: signature: {e}"));
        // And as a peer sees it: a reader accepts the upgrade proof.
        let mut reader =
            Core::open_storage(CoreStorage::memory(), CoreOptions::new().key(*core.key())).unwrap();
        upgrade(&core, &mut reader);
        assert_eq!(reader.tree_hash(), core.tree_hash(), "cycle {cycle}");
    }
    length
}

#[test]
fn killed_appender_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    let tmp = TempDir::new("crash");
    // Run a private copy of this binary: a concurrent `cargo` build may replace the original.
    let exe = tmp.path().join("child-exe");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let store = tmp.path().join("store");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut length = 0;
    let (mut kills_before_open, mut kills_at_zero) = (0, 0);
    for cycle in 0..CYCLES {
        let r = rng.next();
        let acks = match r % 16 {
            0 => None, // before (or during) open
            1 | 2 => Some(0),
            n => Some(r / 16 % (n * 2)),
        };
        kills_before_open += u32::from(acks.is_none());
        kills_at_zero += u32::from(acks == Some(0));
        let seen = run_child(&exe, &store, acks);
        if let Some(opened) = seen.opened {
            assert!(opened >= length, "cycle {cycle}: the child opened shorter");
        }
        length = check_after_kill(&store, &seen, length, cycle);
    }
    assert!(length > 0);
    assert!(kills_before_open > 0 && kills_at_zero > 0);
}
