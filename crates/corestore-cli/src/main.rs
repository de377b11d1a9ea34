//! `corestore`: the command line of corestore-rs. Creates stores, appends to and reads cores,
//! and serves and fetches them over TCP, on directories that JavaScript corestore 6 reads and
//! writes too.
//!
//! This file only parses the arguments, sets up logging and runs the command; the commands
//! live in [`command`]. Exit codes: 0 success, 1 error (printed on stderr with its causes),
//! 2 usage error (from clap).

// Printing results and progress is what a command line is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cli;
mod command;
mod output;
mod progress;
mod store;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;
use tracing_subscriber::EnvFilter;

use crate::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(command::run(cli));
    // Do not wait for a reader thread blocked on stdin or a lingering stream.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr: `RUST_LOG` if set, else warnings (and `serve`'s peer log) with no `-v`,
/// info, debug and trace with `-v`, `-vv`, `-vvv`.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn,corestore::command=info",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Fails only if a subscriber is already installed, which nothing else here does.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
