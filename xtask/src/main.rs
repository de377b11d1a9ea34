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

/// A target of the fuzzing project in `fuzz/` and the longest input it is given (`-max_len`).
struct FuzzTarget {
    /// The `[[bin]]` name (`fuzz/fuzz_targets/<name>.rs`, seeds in `fuzz/corpus/<name>/`).
    name: &'static str,
    /// Long enough for every seed (the core stores are the largest).
    max_len: usize,
}

/// Every fuzz target, in the order the smoke runs them.
const FUZZ_TARGETS: &[FuzzTarget] = &[
    FuzzTarget {
        name: "compact_encoding",
        max_len: 4096,
    },
    FuzzTarget {
        name: "key_parse",
        max_len: 1024,
    },
    FuzzTarget {
        name: "frame_decoder",
        max_len: 4096,
    },
    FuzzTarget {
        name: "wire_decode",
        max_len: 4096,
    },
    FuzzTarget {
        name: "mux",
        max_len: 4096,
    },
    FuzzTarget {
        name: "handshake",
        max_len: 2048,
    },
    FuzzTarget {
        name: "peer_ops",
        max_len: 4096,
    },
    FuzzTarget {
        name: "oplog_decode",
        max_len: 16 * 1024,
    },
    FuzzTarget {
        name: "core_open",
        max_len: 64 * 1024,
    },
];

/// Seconds per target in `cargo xtask fuzz --smoke`.
const FUZZ_SMOKE_SECS: u64 = 5;

/// Seconds for `cargo xtask fuzz <target>` without `--time`.
const FUZZ_DEFAULT_SECS: u64 = 60;

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
        ["bench"] => bench(&sh, false),
        ["bench", "--quick"] => bench(&sh, true),
        ["vectors", "--check"] => vectors(&sh, true),
        ["fuzz", "--smoke"] => fuzz_smoke(&sh),
        ["fuzz", target] => fuzz(&sh, target, FUZZ_DEFAULT_SECS),
        ["fuzz", target, "--time", secs] => {
            let secs = secs
                .parse()
                .with_context(|| format!("--time wants whole seconds, got `{secs}`"))?;
            fuzz(&sh, target, secs)
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
    step("fuzz smoke", || fuzz_smoke(sh))?;
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

/// `cargo fuzz`, installing cargo-fuzz first when it is missing.
///
/// The fuzz project builds on the pinned stable toolchain with `--sanitizer=none`: the crates forbid
/// `unsafe`, so AddressSanitizer (which needs nightly) would find nothing that a panic does not show,
/// and the targets run several times faster without it.
fn ensure_cargo_fuzz(sh: &Shell) -> Result<()> {
    if cmd!(sh, "cargo fuzz --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_err()
    {
        println!("cargo-fuzz is missing: installing it with `cargo install --locked cargo-fuzz`");
        cmd!(sh, "cargo install --locked cargo-fuzz").run()?;
    }
    Ok(())
}

fn fuzz_target(name: &str) -> Result<&'static FuzzTarget> {
    FUZZ_TARGETS
        .iter()
        .find(|t| t.name == name)
        .with_context(|| {
            let names: Vec<&str> = FUZZ_TARGETS.iter().map(|t| t.name).collect();
            format!(
                "unknown fuzz target `{name}`; the targets are: {}",
                names.join(", ")
            )
        })
}

/// Where cargo-fuzz puts the target binaries: `<target dir>/<host triple>/release/`, the target dir
/// being `fuzz/target` unless `CARGO_TARGET_DIR` says otherwise.
fn fuzz_bin_dir(sh: &Shell) -> Result<PathBuf> {
    let version = cmd!(sh, "rustc -vV").read()?;
    let host = version
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .context("`rustc -vV` printed no host triple")?;
    Ok(target_dir(project_root().join("fuzz/target"))
        .join(host)
        .join("release"))
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set (relative to the workspace root, as cargo
/// reads it here), else `default`.
fn target_dir(default: PathBuf) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => project_root().join(dir),
        _ => default,
    }
}

/// libFuzzer's time and input-size limits for one run of `target`.
fn libfuzzer_limits(target: &FuzzTarget, secs: u64) -> [String; 2] {
    [
        format!("-max_total_time={secs}"),
        format!("-max_len={}", target.max_len),
    ]
}

/// Copies the committed seeds of `target` into `dir`, so that runs never write to `fuzz/corpus/`.
fn copy_seeds(sh: &Shell, target: &FuzzTarget, dir: &Path) -> Result<()> {
    sh.create_dir(dir)?;
    for seed in sh.read_dir(project_root().join("fuzz/corpus").join(target.name))? {
        if let Some(file) = seed.file_name() {
            sh.copy_file(&seed, dir.join(file))?;
        }
    }
    Ok(())
}

/// Runs one fuzz target for `secs` seconds. The corpus lives in `fuzz/target/corpus/<target>/`
/// (seeded from `fuzz/corpus/<target>/`, kept between runs, ignored by git); crashes are written
/// to `fuzz/artifacts/<target>/`.
fn fuzz(sh: &Shell, name: &str, secs: u64) -> Result<()> {
    let target = fuzz_target(name)?;
    ensure_cargo_fuzz(sh)?;
    let corpus = project_root().join("fuzz/target/corpus").join(name);
    copy_seeds(sh, target, &corpus)?;
    let limits = libfuzzer_limits(target, secs);
    let _dir = sh.push_dir("fuzz");
    cmd!(
        sh,
        "cargo fuzz run --sanitizer=none {name} {corpus} -- {limits...}"
    )
    .run()
    .with_context(|| {
        format!("fuzz target `{name}` failed (a crashing input is saved in fuzz/artifacts/{name}/)")
    })?;
    Ok(())
}

/// Builds every fuzz target, replays `fuzz/regressions/`, and runs each target for
/// [`FUZZ_SMOKE_SECS`] on a scratch copy of its seeds. Fails if any input crashes a target.
///
/// A regression file `<target>-<what>.bin` must not crash its target. A target may tolerate a known,
/// reported library bug so that the smoke keeps checking everything else; with
/// `CORESTORE_FUZZ_STRICT=1` it crashes again, and the smoke says whether each bug still reproduces.
fn fuzz_smoke(sh: &Shell) -> Result<()> {
    let started = Instant::now();
    ensure_cargo_fuzz(sh)?;
    let root = project_root();
    let _dir = sh.push_dir(root.join("fuzz"));
    cmd!(sh, "cargo fuzz build --sanitizer=none").run()?;
    println!(
        "fuzz smoke: built every target in {:.1?}",
        started.elapsed()
    );
    // Run the built binaries directly: `cargo fuzz run` re-checks the build every time.
    let bins = fuzz_bin_dir(sh)?;

    let mut failures = Vec::new();
    let mut regressions = sh.read_dir(root.join("fuzz/regressions"))?;
    regressions.sort();
    for file in regressions
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "bin"))
    {
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let Some(target) = FUZZ_TARGETS.iter().find(|t| {
            stem.strip_prefix(t.name)
                .is_some_and(|rest| rest.starts_with('-'))
        }) else {
            failures.push(format!("{}: the name names no fuzz target", file.display()));
            continue;
        };
        let name = target.name;
        let bin = bins.join(name);
        let out = cmd!(sh, "{bin} {file}").ignore_status().output()?;
        if !out.status.success() {
            println!("{}", String::from_utf8_lossy(&out.stderr));
            failures.push(format!("{}: crashes `{name}`", file.display()));
            continue;
        }
        let strict = cmd!(sh, "{bin} {file}")
            .env("CORESTORE_FUZZ_STRICT", "1")
            .ignore_status()
            .output()?;
        if strict.status.success() {
            println!("fuzz smoke: {} passes, strict mode too", file.display());
        } else {
            println!(
                "fuzz smoke: KNOWN BUG still reproduces with CORESTORE_FUZZ_STRICT=1 (the target \
                 tolerates it, see fuzz/README.md): {}",
                file.display()
            );
        }
    }

    let scratch = sh.create_temp_dir()?;
    for target in FUZZ_TARGETS {
        let name = target.name;
        let corpus = scratch.path().join(name);
        copy_seeds(sh, target, &corpus)?;
        let limits = libfuzzer_limits(target, FUZZ_SMOKE_SECS);
        let artifacts = sh.create_dir(root.join("fuzz/artifacts").join(name))?;
        let prefix = format!("-artifact_prefix={}/", artifacts.display());
        let bin = bins.join(name);
        let out = cmd!(sh, "{bin} {prefix} {limits...} {corpus}")
            .ignore_status()
            .output()?;
        let log = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            let done = log
                .lines()
                .rev()
                .find(|l| l.starts_with("Done "))
                .unwrap_or("done");
            println!("fuzz smoke: {name}: {done}");
        } else {
            println!("{log}");
            failures.push(format!(
                "`{name}` crashed: the input is in fuzz/artifacts/{name}/"
            ));
        }
    }
    println!("fuzz smoke: finished in {:.1?}", started.elapsed());
    if !failures.is_empty() {
        bail!("fuzz smoke failed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

/// Sizes of one `cargo xtask bench` run.
struct BenchPlan {
    /// Runs of each cheap scenario; the best (fastest) counts.
    reps: usize,
    /// Bytes appended per hypercore scenario (1 KiB and 64 KiB blocks).
    core_total: u64,
    /// Random reads per random-get scenario (at most one per block).
    rand_reads: u64,
    /// Blocks (of 64 bytes) of the core that `open` opens.
    open_blocks: u64,
    /// Bytes replicated per replication scenario.
    repl_total: u64,
    /// Seconds after which a replication run stops and reports what it got.
    repl_cap: u64,
    /// Named cores to open.
    cores: u64,
    /// Seconds after which the opening of named cores stops.
    cores_cap: u64,
}

const BENCH_FULL: BenchPlan = BenchPlan {
    reps: 3,
    core_total: 64 << 20,
    rand_reads: 16_384,
    open_blocks: 1_000_000,
    repl_total: 100 << 20,
    repl_cap: 25,
    cores: 10_000,
    cores_cap: 40,
};

const BENCH_QUICK: BenchPlan = BenchPlan {
    reps: 1,
    core_total: 4 << 20,
    rand_reads: 2_048,
    open_blocks: 50_000,
    repl_total: 4 << 20,
    repl_cap: 10,
    cores: 500,
    cores_cap: 5,
};

/// The best of several runs of one scenario: the run with the fewest seconds.
#[derive(Debug, Clone, Default)]
struct Measured {
    ops: f64,
    bytes: f64,
    seconds: f64,
    /// The whole JSON line of the best run (scenario-specific fields).
    json: serde_json::Value,
}

impl Measured {
    fn mib_per_s(&self) -> f64 {
        self.bytes / f64::from(1u32 << 20) / self.seconds
    }

    fn ops_per_s(&self) -> f64 {
        self.ops / self.seconds
    }

    fn complete(&self) -> bool {
        self.json["complete"] != false
    }
}

/// Runs a scenario command `reps` times and keeps the fastest run. `setup` runs before each
/// (untimed), for example to clear the directory the scenario writes.
fn best_of(
    reps: usize,
    mut setup: impl FnMut() -> Result<()>,
    mut run: impl FnMut() -> Result<String>,
) -> Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..reps.max(1) {
        setup()?;
        let out = run()?;
        let line = out
            .lines()
            .rev()
            .find(|l| l.trim_start().starts_with('{'))
            .with_context(|| format!("no JSON result in the output:\n{out}"))?;
        let json: serde_json::Value = serde_json::from_str(line)?;
        let num = |k: &str| json[k].as_f64().unwrap_or(0.0);
        let m = Measured {
            ops: num("ops"),
            bytes: num("bytes"),
            seconds: num("seconds").max(1e-9),
            json: json.clone(),
        };
        println!("  {line}");
        // The faster run wins (bytes per second, or operations per second when nothing moves).
        let speed = |m: &Measured| {
            if m.bytes > 0.0 {
                m.bytes / m.seconds
            } else {
                m.ops / m.seconds
            }
        };
        if best.as_ref().is_none_or(|b| speed(&m) > speed(b)) {
            best = Some(m);
        }
    }
    best.context("no run")
}

/// One row of the report table.
struct Row {
    scenario: String,
    rust: String,
    js: String,
    /// Rust speed / JS speed (or the fraction of a bound).
    ratio: f64,
    /// The target and whether it is met; `None` when the issues set no target.
    target: Option<(&'static str, bool)>,
}

fn fmt_ratio(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.2}×")
    }
}

fn render_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | Rust | JS | ratio (Rust/JS speed) | target | met? |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for r in rows {
        let (target, met) = match r.target {
            Some((text, met)) => (text, if met { "yes" } else { "**no**" }),
            None => ("—", "—"),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {target} | {met} |\n",
            r.scenario,
            r.rust,
            r.js,
            fmt_ratio(r.ratio)
        ));
    }
    out
}

/// `cargo xtask bench [--quick]`: builds `corestore-bench` in release, runs every scenario in
/// Rust and in JavaScript on this machine, prints the ratios as a markdown table and writes it to
/// `target/bench/report.md`.
fn bench(sh: &Shell, quick: bool) -> Result<()> {
    let started = Instant::now();
    let plan = if quick { &BENCH_QUICK } else { &BENCH_FULL };
    let root = project_root();
    if !root.join("tests/js/node_modules").is_dir() {
        npm_ci(sh)?;
    }
    cmd!(sh, "cargo build --release -p corestore-bench").run()?;
    let bin = target_dir(root.join("target")).join("release/corestore-bench");
    let js_dir = root.join("tests/js");
    let hc_js = js_dir.join("bench-hypercore.mjs");
    let cs_js = js_dir.join("bench-corestore.mjs");
    let peer = js_dir.join("peer.mjs");
    let scratch = sh.create_temp_dir()?;
    let tmp = scratch.path().to_path_buf();
    let reps = plan.reps;
    let mut rows = Vec::new();
    let s = |n: u64| n.to_string();

    // hypercore-lite vs hypercore 10, both on files.
    let mut append_64k_rust = Measured::default();
    for block_size in [1024u64, 64 << 10] {
        let label = if block_size == 1024 {
            "1 KiB"
        } else {
            "64 KiB"
        };
        let total = s(plan.core_total);
        let bs = s(block_size);
        let blocks = plan.core_total / block_size;
        let count = s(plan.rand_reads.min(blocks));
        let side = |name: &str, is_js: bool| -> Result<[Measured; 3]> {
            let dir = tmp.join(format!("core-{name}-{block_size}"));
            let run = |args: Vec<String>| -> Result<String> {
                if is_js {
                    Ok(cmd!(sh, "node {hc_js} {args...}").read()?)
                } else {
                    Ok(cmd!(sh, "{bin} {args...}").read()?)
                }
            };
            let d = dir.display().to_string();
            println!("bench: {name} hypercore, {label} blocks");
            let append = best_of(
                reps,
                || {
                    if dir.exists() {
                        sh.remove_path(&dir)?;
                    }
                    Ok(())
                },
                || {
                    run([
                        "append",
                        "--dir",
                        &d,
                        "--block-size",
                        &bs,
                        "--total",
                        &total,
                    ]
                    .map(String::from)
                    .to_vec())
                },
            )?;
            let seq = best_of(
                reps,
                || Ok(()),
                || run(["seq-get", "--dir", &d].map(String::from).to_vec()),
            )?;
            let rand = best_of(
                reps,
                || Ok(()),
                || {
                    run(["rand-get", "--dir", &d, "--count", &count, "--seed", "42"]
                        .map(String::from)
                        .to_vec())
                },
            )?;
            sh.remove_path(&dir)?;
            Ok([append, seq, rand])
        };
        let rust = side("rust", false)?;
        let js = side("js", true)?;
        if block_size != 1024 {
            append_64k_rust = rust[0].clone();
        }
        for (i, (what, target)) in [
            ("append (batches of 100)", ("≥ 5×", 5.0)),
            ("sequential get", ("≥ 20×", 20.0)),
            ("random get (seeded)", ("≥ 20×", 20.0)),
        ]
        .into_iter()
        .enumerate()
        {
            rows.push(Row {
                scenario: format!(
                    "hypercore: {what}, {label} blocks, {} MiB",
                    plan.core_total >> 20
                ),
                rust: format!("{:.1} MiB/s", rust[i].mib_per_s()),
                js: format!("{:.1} MiB/s", js[i].mib_per_s()),
                ratio: rust[i].mib_per_s() / js[i].mib_per_s(),
                target: Some((
                    target.0,
                    rust[i].mib_per_s() / js[i].mib_per_s() >= target.1,
                )),
            });
        }
    }

    // Opening a large core: written once by Rust, opened by both (the format is shared).
    {
        let dir = tmp.join("open-core");
        let d = dir.display().to_string();
        let blocks = s(plan.open_blocks);
        println!(
            "bench: filling a core of {} × 64-byte blocks",
            plan.open_blocks
        );
        cmd!(sh, "{bin} fill --dir {d} --blocks {blocks} --block-size 64").run()?;
        let rust = best_of(
            reps,
            || Ok(()),
            || Ok(cmd!(sh, "{bin} open --dir {d}").read()?),
        )?;
        let js = best_of(
            reps,
            || Ok(()),
            || Ok(cmd!(sh, "node {hc_js} open --dir {d}").read()?),
        )?;
        sh.remove_path(&dir)?;
        rows.push(Row {
            scenario: format!(
                "hypercore: open a core of {} × 64 B blocks and read the last block",
                plan.open_blocks
            ),
            rust: format!("{:.2} ms", rust.seconds * 1e3),
            js: format!("{:.2} ms", js.seconds * 1e3),
            ratio: js.seconds / rust.seconds,
            target: None,
        });
    }

    // The BLAKE2b bound of appending large blocks.
    {
        let total = s(plan.core_total);
        let bound = best_of(
            reps,
            || Ok(()),
            || Ok(cmd!(sh, "{bin} blake2b --block-size 65536 --total {total}").read()?),
        )?;
        rows.push(Row {
            scenario: format!(
                "hypercore: 64 KiB append vs the BLAKE2b bound (blake2b_simd leaf hashing: {:.0} MiB/s)",
                bound.mib_per_s()
            ),
            rust: format!("{:.1} MiB/s", append_64k_rust.mib_per_s()),
            js: "—".to_owned(),
            ratio: append_64k_rust.mib_per_s() / bound.mib_per_s(),
            target: Some((
                "≥ 0.5× of the bound",
                append_64k_rust.mib_per_s() / bound.mib_per_s() >= 0.5,
            )),
        });
    }

    // Replication over loopback TCP: every writer → reader pair, JS → JS as the baseline.
    let crypto = {
        let total = s(plan.core_total);
        best_of(
            reps,
            || Ok(()),
            || Ok(cmd!(sh, "{bin} crypto --block-size 65536 --total {total}").read()?),
        )?
    };
    for block_size in [1024u64, 64 << 10] {
        let label = if block_size == 1024 {
            "1 KiB"
        } else {
            "64 KiB"
        };
        let bs = s(block_size);
        let total = s(plan.repl_total);
        let cap = s(plan.repl_cap);
        let mut runs = Vec::new();
        for (writer, reader) in [
            ("rust", "rust"),
            ("rust", "js"),
            ("js", "rust"),
            ("js", "js"),
        ] {
            println!("bench: replicate {label} blocks, {writer} → {reader}");
            let m = best_of(
                1,
                || Ok(()),
                || {
                    Ok(cmd!(sh, "{bin} replicate --writer {writer} --reader {reader} --block-size {bs} --total {total} --cap {cap} --peer {peer}").read()?)
                },
            )?;
            runs.push(((writer, reader), m));
        }
        let baseline = runs[3].1.clone();
        let show = |m: &Measured| {
            let capped = if m.complete() {
                String::new()
            } else {
                format!(" (capped at {} s)", plan.repl_cap)
            };
            format!("{:.1} MiB/s{capped}", m.mib_per_s())
        };
        let side = |k: &str| if k == "rust" { "Rust" } else { "JS" };
        for ((writer, reader), m) in &runs[..3] {
            let target = match (*writer, *reader, block_size) {
                ("rust", "rust", 1024) => Some(("≥ 20× JS→JS", 20.0)),
                ("rust", "rust", _) => Some(("≥ 4× JS→JS", 4.0)),
                _ => None,
            };
            rows.push(Row {
                scenario: format!(
                    "replicate {} MiB, {label} blocks, {}→{} (JS column: JS→JS)",
                    plan.repl_total >> 20,
                    side(writer),
                    side(reader)
                ),
                rust: show(m),
                js: show(&baseline),
                ratio: m.mib_per_s() / baseline.mib_per_s(),
                target: target.map(|(t, min)| (t, m.mib_per_s() / baseline.mib_per_s() >= min)),
            });
        }
        if block_size != 1024 {
            let rr = &runs[0].1;
            rows.push(Row {
                scenario: format!(
                    "replicate 64 KiB Rust→Rust vs the XChaCha20-Poly1305 + BLAKE2b bound ({:.0} MiB/s)",
                    crypto.mib_per_s()
                ),
                rust: show(rr),
                js: "—".to_owned(),
                ratio: rr.mib_per_s() / crypto.mib_per_s(),
                target: Some((
                    "≥ 0.5× of the bound",
                    rr.mib_per_s() / crypto.mib_per_s() >= 0.5,
                )),
            });
        }
    }

    // Opening named cores and the memory of idle cores: facade vs corestore 6, on directories.
    {
        let count = s(plan.cores);
        let cap = s(plan.cores_cap);
        println!(
            "bench: open {} named cores (cap {} s)",
            plan.cores, plan.cores_cap
        );
        let dir_r = tmp.join("cores-rust");
        let dir_j = tmp.join("cores-js");
        let (r, j) = (dir_r.display().to_string(), dir_j.display().to_string());
        let rust = best_of(
            1,
            || Ok(()),
            || Ok(cmd!(sh, "{bin} open-cores --dir {r} --count {count} --cap {cap}").read()?),
        )?;
        let js = best_of(
            1,
            || Ok(()),
            || {
                Ok(cmd!(
                    sh,
                    "node --expose-gc {cs_js} open-cores --dir {j} --count {count} --cap {cap}"
                )
                .read()?)
            },
        )?;
        sh.remove_path(&dir_r)?;
        sh.remove_path(&dir_j)?;
        let opened = |m: &Measured| {
            let note = if m.ops < plan.cores as f64 {
                format!(", {} opened in the {} s cap", m.ops, plan.cores_cap)
            } else {
                String::new()
            };
            format!("{:.0} cores/s{note}", m.ops_per_s())
        };
        rows.push(Row {
            scenario: format!(
                "corestore: open {} named cores (created on first open)",
                plan.cores
            ),
            rust: opened(&rust),
            js: opened(&js),
            ratio: rust.ops_per_s() / js.ops_per_s(),
            target: Some(("≥ 20×", rust.ops_per_s() / js.ops_per_s() >= 20.0)),
        });
        let kib = |m: &Measured| m.json["rss_per_core"].as_f64().unwrap_or(0.0) / 1024.0;
        let (rk, jk) = (kib(&rust), kib(&js));
        rows.push(Row {
            scenario: "corestore: memory per idle core (VmRSS delta / cores; ratio = JS/Rust)"
                .to_owned(),
            rust: format!("{rk:.1} KiB"),
            js: format!("{jk:.1} KiB"),
            ratio: jk / rk.max(1e-9),
            target: Some(("Rust ≤ 4 KiB", rk <= 4.0)),
        });
    }

    let table = render_table(&rows);
    let report = format!(
        "Benchmark of corestore-rs against the JavaScript reference, measured in one run of \
         `cargo xtask bench{}` on this machine (best of {} run(s) of each hypercore scenario; one \
         run of each replication and corestore scenario) in {:.0?}.\n\n{table}",
        if quick { " --quick" } else { "" },
        plan.reps,
        started.elapsed()
    );
    let out = root.join("target/bench");
    sh.create_dir(&out)?;
    sh.write_file(out.join("report.md"), &report)?;
    println!("\n{report}\nwritten to target/bench/report.md");
    Ok(())
}
