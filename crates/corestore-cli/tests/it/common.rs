//! Running the built `corestore` binary against a store in a temporary directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_corestore");

/// The primary key of the spec vectors: 32 bytes of 0x11.
pub(crate) const SPEC_PRIMARY_KEY: &str =
    "1111111111111111111111111111111111111111111111111111111111111111";

/// The key of the core named `test` under [`SPEC_PRIMARY_KEY`] (spec vector).
pub(crate) const SPEC_TEST_KEY: &str =
    "37966fe2bbd8113f13fb54c571217097ab64c6140fb6694e8ef4d9f774ab935b";

/// A temporary directory holding one store (`<tmp>/store`).
pub(crate) struct Env {
    dir: TempDir,
}

impl Env {
    /// A fresh directory; the store is not created.
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// A fresh directory with a store initialised with `init`.
    pub(crate) fn init() -> Self {
        let env = Self::new();
        env.ok(&["init"]);
        env
    }

    /// The temporary directory.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The store directory.
    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// `corestore --store <store> args...`, with no inherited store or log settings.
    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--store")
            .arg(self.store())
            .args(args)
            .current_dir(self.dir())
            .env_remove("CORESTORE_DIR")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs the command to completion.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run corestore")
    }

    /// Runs the command with `input` on stdin.
    pub(crate) fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn corestore");
        let mut stdin = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("wait for corestore");
        writer.join().expect("writer").expect("write stdin");
        out
    }

    /// Runs the command, asserts success and returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> Vec<u8> {
        success(args, self.run(args))
    }

    /// Runs the command with stdin, asserts success and returns stdout.
    pub(crate) fn ok_stdin(&self, args: &[&str], input: &[u8]) -> Vec<u8> {
        success(args, self.run_stdin(args, input))
    }

    /// Runs the command with `--json`, asserts success and parses its one JSON object.
    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        parse_json(&self.ok(&all))
    }

    /// [`Env::json`] with `input` on stdin.
    pub(crate) fn json_stdin(&self, args: &[&str], input: &[u8]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        parse_json(&self.ok_stdin(&all, input))
    }
}

/// Asserts the command succeeded; returns its stdout.
pub(crate) fn success(args: &[&str], out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "corestore {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Asserts the command failed with `code`; returns its stderr.
pub(crate) fn failure(args: &[&str], out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "corestore {args:?}: expected exit code {code}; stderr:\n{stderr}"
    );
    stderr
}

/// Parses stdout as exactly one JSON object.
pub(crate) fn parse_json(stdout: &[u8]) -> Value {
    let text = std::str::from_utf8(stdout).expect("UTF-8 output");
    assert_eq!(text.lines().count(), 1, "one JSON line expected: {text}");
    let v: Value = serde_json::from_str(text).expect("valid JSON");
    assert!(v.is_object(), "a JSON object expected: {text}");
    v
}

/// The string field `name` of `v`.
pub(crate) fn str_field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name]
        .as_str()
        .unwrap_or_else(|| panic!("string field {name} in {v}"))
}

/// The integer field `name` of `v`.
pub(crate) fn u64_field(v: &Value, name: &str) -> u64 {
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("integer field {name} in {v}"))
}

/// Deterministic bytes (xorshift), different for each `seed`.
pub(crate) fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}
