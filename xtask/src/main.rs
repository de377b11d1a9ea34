//! `cargo xtask`: the project's only build script.
//!
//! Every check that CI runs is reachable from here, so that `cargo xtask ci` passing on a developer's
//! machine means CI passes too (`.ci/run` is a thin wrapper around it).
//!
//! | command | what it does |
//! | --- | --- |
//! | `cargo xtask ci` | fmt check, clippy `-D warnings`, `npm ci`, every test (tidy and interop included), docs with `-Dwarnings`, cargo-deny, vector check |
//! | `cargo xtask tidy` | the tidy checks alone (they also run inside `cargo test`) |
//! | `cargo xtask interop` | `npm ci` under `tests/js`, then the interop tests that drive the JavaScript reference |
//! | `cargo xtask vectors [--check]` | regenerate the committed JS test vectors, or diff them against a fresh run |

// xtask is a command-line tool: printing progress is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod tidy;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

/// A JavaScript generator and the committed file it produces.
struct VectorSet {
    /// Script under `tests/js/`, run with the output path as its only argument.
    script: &'static str,
    /// Output path relative to the workspace root.
    output: &'static str,
}

/// Every committed vector file that is generated from the JavaScript reference.
const VECTOR_SETS: &[VectorSet] = &[
    VectorSet {
        script: "gen-key-vectors.mjs",
        output: "crates/corestore-keys/tests/vectors/js-keys.json",
    },
    VectorSet {
        script: "proof-gen.mjs",
        output: "crates/hypercore-lite/tests/fixtures/hc10.38/proofs.json",
    },
];

const USAGE: &str = "usage: cargo xtask <ci | tidy | interop | vectors [--check]>";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sh = Shell::new()?;
    sh.change_dir(project_root());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["ci"] => ci(&sh),
        ["tidy"] => {
            let problems = tidy::run_all(&project_root())?;
            tidy::report(&problems)
        }
        ["interop"] => interop(&sh),
        ["vectors"] => vectors(&sh, false),
        ["vectors", "--check"] => vectors(&sh, true),
        ["help" | "--help" | "-h"] => {
            println!("{USAGE}");
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

/// The workspace root (the parent of this crate's manifest directory).
pub(crate) fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Runs one named step, timing it, and stops at the first failure.
fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("::group:: {name}");
    let started = Instant::now();
    let result = f().with_context(|| format!("step `{name}` failed"));
    println!("::endgroup:: {name} ({:.1?})", started.elapsed());
    result
}

fn ci(sh: &Shell) -> Result<()> {
    let started = Instant::now();
    step("fmt", || Ok(cmd!(sh, "cargo fmt --all -- --check").run()?))?;
    step("clippy", || {
        Ok(cmd!(
            sh,
            "cargo clippy --workspace --all-targets --all-features -- -D warnings"
        )
        .run()?)
    })?;
    // The interop tests (in the workspace, outside `default-members`) need the pinned npm packages.
    step("npm ci", || npm_ci(sh))?;
    step("test", || {
        Ok(cmd!(sh, "cargo test --workspace --all-features").run()?)
    })?;
    step("doc", || {
        let _env = sh.push_env("RUSTDOCFLAGS", "-Dwarnings");
        Ok(cmd!(sh, "cargo doc --workspace --no-deps --all-features").run()?)
    })?;
    step("deny", || deny(sh))?;
    step("vectors", || vectors(sh, true))?;
    println!("xtask ci: all steps passed in {:.1?}", started.elapsed());
    Ok(())
}

/// `cargo deny check bans licenses sources`, installing cargo-deny first when it is missing.
///
/// The advisory database cannot be fetched on the project's machines, so `advisories` is not run.
fn deny(sh: &Shell) -> Result<()> {
    if cmd!(sh, "cargo deny --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        println!("cargo-deny is missing: installing it with `cargo install --locked cargo-deny`");
        cmd!(sh, "cargo install --locked cargo-deny").run()?;
    }
    cmd!(sh, "cargo deny --all-features check bans licenses sources").run()?;
    Ok(())
}

/// Installs the pinned JavaScript packages (`npm ci`) and runs the interop tests alone.
fn interop(sh: &Shell) -> Result<()> {
    npm_ci(sh)?;
    cmd!(sh, "cargo test -p corestore-interop --all-features").run()?;
    Ok(())
}

/// `npm ci` under `tests/js`, so the interop tests and vector generators see the pinned packages.
fn npm_ci(sh: &Shell) -> Result<()> {
    let _dir = sh.push_dir("tests/js");
    cmd!(sh, "npm ci --no-audit --no-fund --loglevel=error")
        .run()
        .context("`npm ci` in tests/js failed (is Node 20 with npm installed?)")?;
    Ok(())
}

/// Regenerates every committed vector file from the JavaScript reference, or (`check`) diffs them.
fn vectors(sh: &Shell, check: bool) -> Result<()> {
    let root = project_root();
    if !root.join("tests/js/node_modules").is_dir() {
        npm_ci(sh)?;
    }
    let scratch = sh.create_temp_dir()?;
    let mut stale = Vec::new();
    for set in VECTOR_SETS {
        let script = root.join("tests/js").join(set.script);
        let committed = root.join(set.output);
        let target = if check {
            scratch.path().join(set.script)
        } else {
            committed.clone()
        };
        cmd!(sh, "node {script} {target}").run()?;
        if check {
            let fresh = sh.read_file(&target)?;
            let old = sh.read_file(&committed).unwrap_or_default();
            if fresh != old {
                stale.push(set.output);
            }
        } else {
            println!("wrote {}", set.output);
        }
    }
    if !stale.is_empty() {
        bail!(
            "committed vectors differ from what the JavaScript reference generates: {}\n\
             run `cargo xtask vectors` and review the diff",
            stale.join(", ")
        );
    }
    if check {
        println!(
            "vectors: {} file(s) match the JavaScript reference",
            VECTOR_SETS.len()
        );
    }
    Ok(())
}
