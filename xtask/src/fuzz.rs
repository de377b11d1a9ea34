//! `cargo xtask fuzz`: drives the libFuzzer targets of the separate `fuzz/` project.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use xshell::{Shell, cmd};

use crate::{project_root, target_dir};
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
pub(crate) const FUZZ_DEFAULT_SECS: u64 = 60;

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
pub(crate) fn fuzz(sh: &Shell, name: &str, secs: u64) -> Result<()> {
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
pub(crate) fn fuzz_smoke(sh: &Shell) -> Result<()> {
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
