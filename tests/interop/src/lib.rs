//! Helpers for the interop tests: run the pinned JavaScript reference packages from Rust.
//!
//! The JavaScript side lives in `tests/js` (a pinned `package.json` and lockfile, installed by
//! `npm ci`, which `cargo xtask ci` and `cargo xtask interop` run). Each helper script reads its input
//! as JSON on stdin and writes JSON on stdout, so the Rust tests stay in charge of what is checked.
//!
//! Every wait on a child process has a bound: a script that does not finish in time is killed and
//! the test fails with the script's stderr.

pub mod peer;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The folder holding the JavaScript package and scripts (`tests/js`).
pub fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../js")
}

/// Fails with instructions when the pinned npm packages are not installed.
pub fn require_node_modules() -> Result<()> {
    if !js_dir().join("node_modules/corestore6").is_dir() {
        bail!(
            "the pinned JavaScript packages are not installed in tests/js: run `cargo xtask interop` \
             (or `npm ci` in tests/js) before the interop tests"
        );
    }
    Ok(())
}

/// Runs `cmd` to completion with `input` on stdin and returns its output, whatever its exit status.
///
/// The process is killed and an error returned if it has not exited within `bound`; `what` names
/// it in errors.
pub fn run_bounded(mut cmd: Command, input: &[u8], bound: Duration, what: &str) -> Result<Output> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))?;
    let pid = child.id();
    let mut stdin = child.stdin.take().context("child stdin")?;
    let input = input.to_vec();
    let writer = thread::spawn(move || stdin.write_all(&input));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(bound) {
        Ok(result) => result.with_context(|| format!("waiting for {what}"))?,
        Err(_) => {
            // Bounded wait: kill the child; `wait_with_output` then returns in the other thread.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            bail!("{what} did not finish within {bound:?}");
        }
    };
    // A process may exit without reading all of its input; that is not an error here.
    let _ = writer.join();
    Ok(output)
}

/// Runs `node tests/js/<script> <args>` with `input` on stdin and returns its stdout.
///
/// The process is killed and an error returned if it has not exited within `timeout`, or if it
/// exits unsuccessfully; the error carries the script's stderr.
pub fn run_node(script: &str, args: &[&str], input: &[u8], timeout: Duration) -> Result<Vec<u8>> {
    require_node_modules()?;
    let mut cmd = Command::new("node");
    cmd.arg(js_dir().join(script))
        .args(args)
        .current_dir(js_dir());
    let what = format!("node {script}");
    let output = run_bounded(cmd, input, timeout, &what)
        .context("is Node 20 installed and `npm ci` run in tests/js?")?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}

/// Runs a script that takes JSON in and gives JSON out.
pub fn run_node_json<I: serde::Serialize, O: serde::de::DeserializeOwned>(
    script: &str,
    input: &I,
    timeout: Duration,
) -> Result<O> {
    let input = serde_json::to_vec(input)?;
    let out = run_node(script, &[], &input, timeout)?;
    serde_json::from_slice(&out).with_context(|| {
        format!(
            "node {script} printed something that is not the expected JSON: {}",
            String::from_utf8_lossy(&out)
        )
    })
}
