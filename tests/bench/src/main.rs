//! `corestore-bench`: one benchmark scenario per subcommand, each printing one JSON object
//! (`scenario`, `ops`, `bytes`, `seconds`, and scenario-specific fields) on stdout.
//!
//! `cargo xtask bench` builds this binary in release, runs every scenario here and its
//! JavaScript counterpart (`tests/js/bench-*.mjs`, or `tests/js/peer.mjs` for replication) on
//! the same machine in the same run, and prints the ratios. Nothing here asserts on time.
//!
//! | subcommand | what it measures |
//! | --- | --- |
//! | `append --dir D --block-size N --total BYTES [--batch 100]` | `Core::append_batch` on files |
//! | `seq-get --dir D` | `Core::get` of every block, in order |
//! | `rand-get --dir D --count N [--seed S]` | `Core::get` of seeded random blocks (mulberry32, as JS) |
//! | `fill --dir D --blocks N --block-size N` | setup for `open`: a core of N blocks (not a measurement) |
//! | `open --dir D` | `Core::open` of an existing core plus a read of its last block |
//! | `blake2b --block-size N --total BYTES` | the BLAKE2b hashing bound (`blake2b_simd`, 32-byte leaf hashes) |
//! | `crypto --block-size N --total BYTES` | the XChaCha20-Poly1305 + BLAKE2b bound of replication |
//! | `engine --block-size N --total BYTES [--group 32] [--trim 0] [--many 0]` | replication's per-block engine work: proof building, verify, apply (no wire) |
//! | `open-cores --dir D --count N [--lazy 0]` | `Corestore::get` of N named cores, and RSS per idle core |
//! | `open-close-cores --dir D --count N [--lazy 0]` | the same `get`s, then closing every session and the store, timed together |
//! | `replicate --writer rust\|rust-process\|js --reader rust\|js --block-size N --total BYTES --cap SECS --peer PEER.mjs [--prewarm 1]` | one core over loopback TCP (`rust-process`: the Rust writer in a child process; `--prewarm 0`: the reader does not touch the memory its download will fill first) |
//! | `replicate-serve --block-size N --total BYTES` | the Rust writer of `replicate --writer rust-process` (not a measurement): prints its key and port, serves until stdin closes |

// A benchmark binary: printing its result is its job.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod core_bench;
mod engine_bench;
mod peer;
mod replicate;
mod store_bench;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Parsed `--flag value` arguments of one subcommand.
#[derive(Debug)]
pub(crate) struct Args {
    values: HashMap<String, String>,
}

impl Args {
    fn parse(rest: &[String]) -> Result<Self> {
        let mut values = HashMap::new();
        let mut it = rest.iter();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .with_context(|| format!("expected a --flag, got `{flag}`"))?;
            let value = it
                .next()
                .with_context(|| format!("--{name} needs a value"))?;
            values.insert(name.to_owned(), value.clone());
        }
        Ok(Self { values })
    }

    /// The string value of `--name`.
    pub(crate) fn str(&self, name: &str) -> Result<&str> {
        self.values
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("missing --{name}"))
    }

    /// The numeric value of `--name`, or `default` when it is absent.
    pub(crate) fn num(&self, name: &str, default: Option<u64>) -> Result<u64> {
        match (self.values.get(name), default) {
            (Some(v), _) => v
                .parse()
                .with_context(|| format!("--{name} wants a number, got `{v}`")),
            (None, Some(d)) => Ok(d),
            (None, None) => bail!("missing --{name}"),
        }
    }
}

/// One measurement: `ops` operations moving `bytes` bytes in `seconds`.
pub(crate) fn report(
    scenario: &str,
    ops: u64,
    bytes: u64,
    elapsed: Duration,
    extra: Value,
) -> Value {
    let mut out = json!({
        "scenario": scenario,
        "impl": "rust",
        "ops": ops,
        "bytes": bytes,
        "seconds": elapsed.as_secs_f64(),
    });
    if let (Some(out), Value::Object(extra)) = (out.as_object_mut(), extra) {
        out.extend(extra);
    }
    out
}

/// mulberry32, the seeded generator both sides use for random reads (same sequence as
/// `tests/js/bench-hypercore.mjs`).
#[derive(Debug, Clone)]
pub(crate) struct Mulberry32(u32);

impl Mulberry32 {
    /// A generator seeded with `seed`.
    pub(crate) const fn new(seed: u32) -> Self {
        Self(seed)
    }

    /// The next 32-bit value.
    pub(crate) const fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_add(0x6D2B_79F5);
        let a = self.0;
        let mut t = (a ^ (a >> 15)).wrapping_mul(1 | a);
        t = t.wrapping_add((t ^ (t >> 7)).wrapping_mul(61 | t)) ^ t;
        t ^ (t >> 14)
    }
}

/// The resident set size of this process in bytes (`VmRSS` of `/proc/self/status`).
pub(crate) fn rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()?;
    Ok(kib * 1024)
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        bail!("usage: corestore-bench <scenario> [--flag value]... (see the module docs)");
    };
    let args = Args::parse(rest)?;
    let result = match command.as_str() {
        "append" => core_bench::append(&args)?,
        "seq-get" => core_bench::seq_get(&args)?,
        "rand-get" => core_bench::rand_get(&args)?,
        "fill" => core_bench::fill(&args)?,
        "open" => core_bench::open(&args)?,
        "blake2b" => core_bench::blake2b(&args)?,
        "crypto" => core_bench::crypto(&args)?,
        "engine" => engine_bench::run(&args)?,
        "open-cores" => runtime()?.block_on(store_bench::open_cores(&args))?,
        "open-close-cores" => runtime()?.block_on(store_bench::open_close_cores(&args))?,
        "replicate" => runtime()?.block_on(replicate::run(&args))?,
        "replicate-serve" => runtime()?.block_on(replicate::serve(&args))?,
        other => bail!("unknown scenario `{other}`"),
    };
    println!("{result}");
    Ok(())
}

/// The Tokio runtime of the facade scenarios: one worker per core.
fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::Mulberry32;

    /// The first values of mulberry32(1), as JavaScript computes them.
    #[test]
    fn mulberry32_matches_javascript() {
        let mut r = Mulberry32::new(1);
        let got: Vec<u32> = (0..3).map(|_| r.next_u32()).collect();
        assert_eq!(got, [2_693_262_067, 11_749_833, 2_265_367_787]);
    }
}
