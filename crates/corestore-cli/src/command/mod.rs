//! The commands, one module each; [`run`] dispatches a parsed command line to them.

mod append;
mod cat;
mod demo;
mod fetch;
mod info;
mod init;
mod key;
mod serve;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::output::Ctx;

/// Runs the command `cli` names.
pub(crate) async fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        store: cli.store_dir(),
        json: cli.json,
    };
    match cli.command {
        Command::Init(args) => init::run(&ctx, args).await,
        Command::Key(args) => key::run(&ctx, args).await,
        Command::Append(args) => {
            // Usage errors exit with clap's code 2, before the store is touched.
            let (core, file) = args.target().unwrap_or_else(|e| e.exit());
            append::run(&ctx, &core, file.as_deref(), args.block_size).await
        }
        Command::Cat(args) => cat::run(&ctx, &args.core.core_ref(), args.range).await,
        Command::Info(args) => info::info(&ctx, &args.core_ref()).await,
        Command::List => info::list(&ctx).await,
        Command::Serve(args) => serve::run(&ctx, args).await,
        Command::Fetch(args) => fetch::run(&ctx, args).await,
        Command::Demo => demo::run(&ctx).await,
    }
}
