//! `cargo xtask`: the project's only build script.
//!
//! Every check that CI runs is reachable from here, so that `cargo xtask ci` passing on a developer's
//! machine means CI passes too (`.ci/run` is a thin wrapper around it).
//!
//! | command | what it does |
//! | --- | --- |
//! | `cargo xtask ci` | fmt check, clippy `-D warnings`, `npm ci`, every test (tidy and interop included), fuzz smoke, docs with `-Dwarnings`, cargo-deny, vector check |
//! | `cargo xtask tidy` | the tidy checks alone (they also run inside `cargo test`) |
//! | `cargo xtask interop` | `npm ci` under `tests/js`, then the interop tests that drive the JavaScript reference |
//! | `cargo xtask vectors [--check]` | regenerate the committed JS test vectors, or diff them against a fresh run |
//! | `cargo xtask fuzz <target> [--time SECS]` | run one fuzz target of `fuzz/` (default 60 s) from its seed corpus |
//! | `cargo xtask fuzz --smoke` | build every fuzz target, replay `fuzz/regressions/`, run each target for 5 s |
//! | `cargo xtask bench [--quick]` | build `corestore-bench` in release, run every scenario in Rust and in JavaScript in one run, print the ratios as a markdown table (also written to `target/bench/report.md`); `--quick`: small sizes, a smoke run (under 2 minutes). Not part of `ci` |

// xtask is a command-line tool: printing progress is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod bench;
mod fuzz;
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

const USAGE: &str = "usage: cargo xtask <ci | tidy | interop | vectors [--check] | fuzz <TARGET [--time SECS] | --smoke> | bench [--quick]>";

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
        ["bench"] => bench::bench(&sh, false),
        ["bench", "--quick"] => bench::bench(&sh, true),
        ["vectors", "--check"] => vectors(&sh, true),
        ["fuzz", "--smoke"] => fuzz::fuzz_smoke(&sh),
        ["fuzz", target] => fuzz::fuzz(&sh, target, fuzz::FUZZ_DEFAULT_SECS),
        ["fuzz", target, "--time", secs] => {
            let secs = secs
                .parse()
                .with_context(|| format!("--time wants whole seconds, got `{secs}`"))?;
            fuzz::fuzz(&sh, target, secs)
        }
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
    step("fmt", || {
        cmd!(sh, "cargo fmt --all -- --check").run()?;
        // The fuzz project is its own workspace, so `--all` does not reach it.
        Ok(cmd!(sh, "cargo fmt --manifest-path fuzz/Cargo.toml -- --check").run()?)
    })?;
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
    step("fuzz smoke", || fuzz::fuzz_smoke(sh))?;
    step("doc", || {
        let _env = sh.push_env("RUSTDOCFLAGS", "-Dwarnings");
        // Private items too: their intra-doc links are checked as strictly as the public ones.
        Ok(cmd!(
            sh,
            "cargo doc --workspace --no-deps --all-features --document-private-items"
        )
        .run()?)
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
pub(crate) fn npm_ci(sh: &Shell) -> Result<()> {
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

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root, as cargo
/// reads it here), else `default`.
pub(crate) fn target_dir(default: PathBuf) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => default,
    }
}
