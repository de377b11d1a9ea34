//! A one-line progress bar on stderr, drawn only when stderr is a terminal (so logs and
//! pipes stay clean).

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

/// Width of the bar in characters.
const WIDTH: u64 = 30;

/// A progress bar over a count of blocks.
#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    started: Instant,
    drawn: bool,
}

impl Progress {
    /// A bar that draws if `wanted` and stderr is a terminal.
    pub(crate) fn new(wanted: bool) -> Self {
        Self {
            enabled: wanted && std::io::stderr().is_terminal(),
            started: Instant::now(),
            drawn: false,
        }
    }

    /// Redraws the bar: `done` of `total` blocks (`total` is `None` while unknown).
    pub(crate) fn draw(&mut self, done: u64, total: Option<u64>) {
        if !self.enabled {
            return;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let line = match total {
            Some(total) if total > 0 => {
                let filled = (done.min(total) * WIDTH / total) as usize;
                let percent = done.min(total) * 100 / total;
                format!(
                    "[{}{}] {done}/{total} blocks {percent:>3}% {secs:.1}s",
                    "#".repeat(filled),
                    "-".repeat(WIDTH as usize - filled),
                )
            }
            _ => format!(
                "[{}] {done} blocks, waiting for the peer {secs:.1}s",
                "-".repeat(WIDTH as usize)
            ),
        };
        let mut err = std::io::stderr().lock();
        // Progress is best effort: a closed stderr must not fail the download.
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
        self.drawn = true;
    }

    /// Ends the bar's line.
    pub(crate) fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
