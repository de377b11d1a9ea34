//! What every command shares: the store directory, and how a result is printed (text for a
//! person, or one JSON object with `--json`).

use std::fmt::Display;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use serde::Serialize;

/// The global options a command runs with.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The store directory.
    pub(crate) store: PathBuf,
    /// Print one JSON object instead of text.
    pub(crate) json: bool,
}

impl Ctx {
    /// Prints `report` on stdout: its `Display` form, or one line of JSON with `--json`.
    ///
    /// The report is formatted first and written with one write: a reader that stops after
    /// the line it waited for (`serve`'s `listening on`) cannot make a later line of the same
    /// report fail.
    pub(crate) fn emit<R: Serialize + Display>(&self, report: &R) -> Result<()> {
        let text = if self.json {
            let mut line =
                serde_json::to_string(report).context("cannot encode the JSON output")?;
            line.push('\n');
            line
        } else {
            report.to_string()
        };
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write to stdout")
    }
}

/// Serializes a value (a key) by its `Display` form (lowercase hex for keys).
pub(crate) fn display<T: Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// `n` bytes for a person: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub(crate) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    #[allow(clippy::cast_precision_loss)] // for display only
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
