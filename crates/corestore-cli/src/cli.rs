//! The command line grammar (clap derive): global options, the commands and how a command
//! names its core.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Args, CommandFactory as _, Parser, Subcommand};
use corestore::Key;

/// Where the store lives when neither `--store` nor `$CORESTORE_DIR` says.
pub(crate) const DEFAULT_STORE_DIR: &str = "corestore-data";

/// Create, read, serve and fetch Hypercores in a corestore directory (compatible with
/// JavaScript corestore 6).
#[derive(Debug, Parser)]
#[command(name = "corestore", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The store directory [default: $CORESTORE_DIR, else ./corestore-data].
    #[arg(long, global = true, value_name = "DIR", env = "CORESTORE_DIR")]
    pub(crate) store: Option<PathBuf>,

    /// Print one JSON object on stdout instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// More logging on stderr (-v info, -vv debug, -vvv trace); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// The store directory after defaults.
    pub(crate) fn store_dir(&self) -> PathBuf {
        self.store
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_DIR))
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the store (idempotent).
    Init(InitArgs),
    /// Print the key of a named core.
    Key(NameArgs),
    /// Append FILE (or stdin) to a core: one block per line (the newline is kept, so `cat`
    /// gives the input back), or blocks of --block-size bytes.
    Append(AppendArgs),
    /// Write the blocks of a core to stdout.
    Cat(CatArgs),
    /// Key, discovery key, lengths, fork and writability of a core.
    Info(CoreArgs),
    /// Every core in the store with its length.
    List,
    /// Replicate every core of the store with every peer that connects, until interrupted.
    Serve(ServeArgs),
    /// Download cores from a peer into the store.
    Fetch(FetchArgs),
    /// Two stores in a temporary folder: write cores in one, replicate them over loopback TCP
    /// to the other, verify, report.
    Demo,
}

/// `init`.
#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The primary key (64 hex characters) [default: random].
    #[arg(long, value_name = "HEX", value_parser = parse_primary_key)]
    pub(crate) primary_key: Option<[u8; 32]>,
}

/// A core named in a namespace chain.
#[derive(Debug, Clone, Args)]
pub(crate) struct NameArgs {
    /// The core's name.
    #[arg(long, value_name = "NAME")]
    pub(crate) name: String,
    /// A namespace (repeat to chain: `--namespace a --namespace b`).
    #[arg(long, value_name = "NS")]
    pub(crate) namespace: Vec<String>,
}

/// `KEY | --name NAME [--namespace NS]...`.
#[derive(Debug, Clone, Args)]
pub(crate) struct CoreArgs {
    /// The core's key (64 hex characters or z-base-32).
    #[arg(
        value_name = "KEY",
        required_unless_present = "name",
        conflicts_with = "name"
    )]
    pub(crate) key: Option<Key>,
    /// The core's name (instead of KEY).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// A namespace of NAME (repeat to chain).
    #[arg(long, value_name = "NS", requires = "name")]
    pub(crate) namespace: Vec<String>,
}

/// A core as the commands see it once parsed.
#[derive(Debug, Clone)]
pub(crate) enum CoreRef {
    /// By key.
    Key(Key),
    /// By name in a namespace chain.
    Name {
        /// The name.
        name: String,
        /// The namespace chain.
        namespaces: Vec<String>,
    },
}

impl CoreArgs {
    /// The core these arguments name (clap guarantees one of KEY and --name).
    pub(crate) fn core_ref(&self) -> CoreRef {
        match (&self.name, self.key) {
            (Some(name), _) => CoreRef::Name {
                name: name.clone(),
                namespaces: self.namespace.clone(),
            },
            (None, Some(key)) => CoreRef::Key(key),
            // Unreachable through clap (`required_unless_present`); an empty name is rejected
            // by the store with a clear error.
            (None, None) => CoreRef::Name {
                name: String::new(),
                namespaces: Vec::new(),
            },
        }
    }
}

impl From<NameArgs> for CoreRef {
    fn from(args: NameArgs) -> Self {
        Self::Name {
            name: args.name,
            namespaces: args.namespace,
        }
    }
}

/// `append`.
#[derive(Debug, Args)]
pub(crate) struct AppendArgs {
    /// `KEY [FILE]` without --name, `[FILE]` with it; FILE defaults to stdin (`-` too).
    #[arg(value_name = "KEY|FILE", num_args = 0..=2)]
    pub(crate) operands: Vec<String>,
    /// The core's name (instead of KEY).
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// A namespace of NAME (repeat to chain).
    #[arg(long, value_name = "NS", requires = "name")]
    pub(crate) namespace: Vec<String>,
    /// Split the input into blocks of N bytes (the last may be shorter) instead of lines.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) block_size: Option<u64>,
}

impl AppendArgs {
    /// The core and the input file (`None` = stdin) the operands name.
    ///
    /// # Errors
    ///
    /// A clap usage error (exit code 2) for a missing or malformed KEY or extra operands.
    pub(crate) fn target(&self) -> Result<(CoreRef, Option<PathBuf>), clap::Error> {
        let usage = |kind, msg: String| Cli::command().error(kind, msg);
        let (core, file) = match (&self.name, self.operands.as_slice()) {
            (Some(_), [_, _, ..]) => {
                return Err(usage(
                    ErrorKind::TooManyValues,
                    "with --name, give at most one FILE".to_owned(),
                ));
            }
            (Some(name), rest) => (
                CoreRef::Name {
                    name: name.clone(),
                    namespaces: self.namespace.clone(),
                },
                rest.first(),
            ),
            (None, []) => {
                return Err(usage(
                    ErrorKind::MissingRequiredArgument,
                    "give the core as KEY or --name NAME".to_owned(),
                ));
            }
            (None, [key, rest @ ..]) => {
                let key = key.parse::<Key>().map_err(|e| {
                    usage(
                        ErrorKind::ValueValidation,
                        format!("invalid KEY {key:?}: {e}"),
                    )
                })?;
                (CoreRef::Key(key), rest.first())
            }
        };
        let file = file.filter(|f| f.as_str() != "-").map(PathBuf::from);
        Ok((core, file))
    }
}

/// `cat`.
#[derive(Debug, Args)]
pub(crate) struct CatArgs {
    #[command(flatten)]
    pub(crate) core: CoreArgs,
    #[command(flatten)]
    pub(crate) range: RangeArgs,
}

/// `--start A --end B`: blocks `[A, B)`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct RangeArgs {
    /// First block [default: 0].
    #[arg(long, value_name = "A")]
    pub(crate) start: Option<u64>,
    /// End of the range, exclusive [default: the core's length].
    #[arg(long, value_name = "B")]
    pub(crate) end: Option<u64>,
}

/// `serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: SocketAddr,
}

/// `fetch`.
#[derive(Debug, Args)]
pub(crate) struct FetchArgs {
    /// The peer's address.
    #[arg(long, value_name = "ADDR")]
    pub(crate) connect: String,
    /// The keys of the cores to download.
    #[arg(value_name = "KEY", required = true)]
    pub(crate) keys: Vec<Key>,
    #[command(flatten)]
    pub(crate) range: RangeArgs,
    /// Give up (exit 1) when the download is not complete after SECS seconds.
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_secs)]
    pub(crate) timeout: Duration,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|e| format!("not a number of seconds: {e}"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a positive number of seconds".to_owned())
}

fn parse_primary_key(s: &str) -> Result<[u8; 32], String> {
    let bytes = hex::decode(s).map_err(|e| format!("not hex: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("expected 32 bytes (64 hex characters), got {}", bytes.len()))
}
