//! `cargo xtask bench`: runs every scenario in Rust (`tests/bench`) and in JavaScript in one run
//! and prints the ratios.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use xshell::{Shell, cmd};

use crate::{npm_ci, project_root, target_dir};

mod cli;

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
    repl_cap: 40,
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

/// One corestore scenario run once by `corestore-bench` and once by `bench-corestore.mjs`,
/// each on a fresh directory under `tmp` that is removed afterwards.
struct StoreRun<'a> {
    sh: &'a Shell,
    tmp: &'a Path,
    bin: &'a Path,
    js: &'a Path,
    count: &'a str,
    cap: &'a str,
}

impl StoreRun<'_> {
    /// Runs `scenario` on both sides (`node_flags` go to node); returns (Rust, JS).
    fn run(&self, scenario: &str, node_flags: &[&str]) -> Result<(Measured, Measured)> {
        let (sh, bin, js, count, cap) = (self.sh, self.bin, self.js, self.count, self.cap);
        let dir_r = self.tmp.join(format!("{scenario}-rust"));
        let dir_j = self.tmp.join(format!("{scenario}-js"));
        let (r, j) = (dir_r.display().to_string(), dir_j.display().to_string());
        let rust = best_of(
            1,
            || Ok(()),
            || Ok(cmd!(sh, "{bin} {scenario} --dir {r} --count {count} --cap {cap}").read()?),
        )?;
        let js = best_of(
            1,
            || Ok(()),
            || {
                Ok(cmd!(
                    sh,
                    "node {node_flags...} {js} {scenario} --dir {j} --count {count} --cap {cap}"
                )
                .read()?)
            },
        )?;
        sh.remove_path(&dir_r)?;
        sh.remove_path(&dir_j)?;
        Ok((rust, js))
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
        keep_best(&mut best, measured(&out)?);
    }
    best.context("no run")
}

/// The measurement in a scenario's output (its last JSON line), echoed.
fn measured(out: &str) -> Result<Measured> {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("no JSON result in the output:\n{out}"))?;
    let json: serde_json::Value = serde_json::from_str(line)?;
    let num = |k: &str| json[k].as_f64().unwrap_or(0.0);
    println!("  {line}");
    Ok(Measured {
        ops: num("ops"),
        bytes: num("bytes"),
        seconds: num("seconds").max(1e-9),
        json: json.clone(),
    })
}

/// Keeps the faster of `best` and `m` (bytes per second, or operations per second when
/// nothing moves).
fn keep_best(best: &mut Option<Measured>, m: Measured) {
    let speed = |m: &Measured| {
        if m.bytes > 0.0 {
            m.bytes / m.seconds
        } else {
            m.ops / m.seconds
        }
    };
    if best.as_ref().is_none_or(|b| speed(&m) > speed(b)) {
        *best = Some(m);
    }
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
pub(crate) fn bench(sh: &Shell, quick: bool) -> Result<()> {
    let started = Instant::now();
    let plan = if quick { &BENCH_QUICK } else { &BENCH_FULL };
    let root = project_root();
    if !root.join("tests/js/node_modules").is_dir() {
        npm_ci(sh)?;
    }
    cmd!(
        sh,
        "cargo build --release -p corestore-bench -p corestore-cli"
    )
    .run()?;
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
    // The BLAKE2b bound of appending large blocks, measured in the rounds of the 64 KiB runs.
    let mut blake2b_bound: Option<Measured> = None;
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
        // One run of each scenario on one side (a fresh core for the append, read by the gets).
        let side = |name: &str, is_js: bool| -> Result<[Measured; 3]> {
            let dir = tmp.join(format!("core-{name}-{block_size}"));
            let run = |args: Vec<String>| -> Result<Measured> {
                let out = if is_js {
                    cmd!(sh, "node {hc_js} {args...}").read()?
                } else {
                    cmd!(sh, "{bin} {args...}").read()?
                };
                measured(&out)
            };
            let d = dir.display().to_string();
            println!("bench: {name} hypercore, {label} blocks");
            if dir.exists() {
                sh.remove_path(&dir)?;
            }
            let append = run([
                "append",
                "--dir",
                &d,
                "--block-size",
                &bs,
                "--total",
                &total,
            ]
            .map(String::from)
            .to_vec())?;
            let seq = run(["seq-get", "--dir", &d].map(String::from).to_vec())?;
            let rand = run(["rand-get", "--dir", &d, "--count", &count, "--seed", "42"]
                .map(String::from)
                .to_vec())?;
            sh.remove_path(&dir)?;
            Ok([append, seq, rand])
        };
        // The best of `reps` rounds, each round one run of every scenario on both sides, so
        // that both sides meet the same slow and fast spells of the machine.
        let mut best: [Option<Measured>; 6] = Default::default();
        for _ in 0..reps.max(1) {
            if block_size != 1024 {
                let out = cmd!(sh, "{bin} blake2b --block-size 65536 --total {total}").read()?;
                keep_best(&mut blake2b_bound, measured(&out)?);
            }
            let both = [side("rust", false)?, side("js", true)?];
            for (slot, m) in best.iter_mut().zip(both.into_iter().flatten()) {
                keep_best(slot, m);
            }
        }
        let [r0, r1, r2, j0, j1, j2] = best.map(Option::unwrap_or_default);
        let (rust, js) = ([r0, r1, r2], [j0, j1, j2]);
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
        let bound = blake2b_bound.context("no BLAKE2b bound run")?;
        rows.push(Row {
            scenario: format!(
                "hypercore: 64 KiB append vs the BLAKE2b bound (blake2b_simd leaf hashing, 4 lanes: {:.0} MiB/s)",
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
    // Loopback runs vary by a third from one run to the next on two cores (where the scheduler
    // puts the two peers), and the machine's speed drifts over a minute: every pair, JS→JS
    // included, and the crypto bound get the best of `reps` runs, taken round-robin (one run of
    // each, then the next round) so that every pair meets the same slow and fast spells.
    //
    // Every reader prewarms the memory its download will fill (`replicate --prewarm`, JS
    // readers too): this VM's host reclaims guest memory left free for a couple of seconds,
    // and touching reclaimed memory costs as much as the crypto of the bytes it holds, so
    // without it a run's speed would depend on how long ago the run before it freed its
    // memory (a Rust run right after another meets warm memory, one after a JS run cold).
    const PAIRS: [(&str, &str); 5] = [
        ("rust", "rust"),
        ("rust", "js"),
        ("js", "rust"),
        ("js", "js"),
        // The Rust writer in a process of its own, as the JS writer always is.
        ("rust-process", "rust"),
    ];
    const REPL_SIZES: [u64; 2] = [1024, 64 << 10];
    let mut crypto: Option<Measured> = None;
    let mut repl: Vec<Option<Measured>> = vec![None; REPL_SIZES.len() * PAIRS.len()];
    for round in 0..plan.reps.max(1) {
        let total = s(plan.core_total);
        let out = cmd!(sh, "{bin} crypto --block-size 65536 --total {total}").read()?;
        keep_best(&mut crypto, measured(&out)?);
        for (i, block_size) in REPL_SIZES.into_iter().enumerate() {
            let (bs, total, cap) = (s(block_size), s(plan.repl_total), s(plan.repl_cap));
            for (j, (writer, reader)) in PAIRS.into_iter().enumerate() {
                println!(
                    "bench: replicate {} KiB blocks, {writer} → {reader} (round {})",
                    block_size >> 10,
                    round + 1
                );
                let out = cmd!(sh, "{bin} replicate --writer {writer} --reader {reader} --block-size {bs} --total {total} --cap {cap} --peer {peer} --prewarm 1").read()?;
                keep_best(&mut repl[i * PAIRS.len() + j], measured(&out)?);
            }
        }
    }
    let crypto = crypto.context("no crypto run")?;
    for (i, block_size) in REPL_SIZES.into_iter().enumerate() {
        let label = if block_size == 1024 {
            "1 KiB"
        } else {
            "64 KiB"
        };
        let mut runs = Vec::new();
        for (j, pair) in PAIRS.into_iter().enumerate() {
            let m = repl[i * PAIRS.len() + j]
                .take()
                .context("no replication run")?;
            runs.push((pair, m));
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
        let side = |k: &str| match k {
            "rust" => "Rust",
            "rust-process" => "Rust (own process)",
            _ => "JS",
        };
        for ((writer, reader), m) in runs.iter().filter(|((w, r), _)| (*w, *r) != ("js", "js")) {
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
    let (cores_count, cores_cap) = (s(plan.cores), s(plan.cores_cap));
    let store = StoreRun {
        sh,
        tmp: &tmp,
        bin: &bin,
        js: &cs_js,
        count: &cores_count,
        cap: &cores_cap,
    };
    {
        println!(
            "bench: open {} named cores (cap {} s)",
            plan.cores, plan.cores_cap
        );
        let (rust, js) = store.run("open-cores", &["--expose-gc"])?;
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

    // The same opens, then closing every session and the store: where the work that lazy
    // creation defers (and the syncs of close) shows up. No target: it is there to be seen.
    {
        println!(
            "bench: open and close {} named cores (cap {} s on the opens)",
            plan.cores, plan.cores_cap
        );
        let (rust, js) = store.run("open-close-cores", &[])?;
        let shown = |m: &Measured| {
            let open = m.json["open_seconds"].as_f64().unwrap_or(0.0);
            // The cap applies to the opens: fewer cores than planned means it was hit.
            format!(
                "{:.0} cores/s ({} cores in {:.2} s, opens {open:.2} s)",
                m.ops_per_s(),
                m.ops,
                m.seconds
            )
        };
        rows.push(Row {
            scenario: format!(
                "corestore: open and close {} named cores (opens + every close + store close)",
                plan.cores
            ),
            rust: shown(&rust),
            js: shown(&js),
            ratio: rust.ops_per_s() / js.ops_per_s(),
            target: None,
        });
    }

    // The `corestore serve` / `corestore fetch` commands against the same two written with
    // corestore 6.
    rows.extend(cli::serve_fetch(
        sh,
        plan,
        &cli::Tools {
            cli: &target_dir(root.join("target")).join("release/corestore"),
            js: &js_dir.join("bench-cli.mjs"),
            tmp: &tmp,
        },
    )?);

    let table = render_table(&rows);
    let report = format!(
        "Benchmark of corestore-rs against the JavaScript reference, measured in one run of \
         `cargo xtask bench{}` on this machine (best of {} round(s) of each hypercore and replication \
         scenario, Rust and JS runs taken in turn; one run of each corestore scenario) in \
         {:.0?}.\n\n{table}",
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
