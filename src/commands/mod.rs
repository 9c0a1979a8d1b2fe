//! Command dispatch.

mod backfill;
mod simulate;
mod time;

use crate::cli::{Cli, Command};

/// Runs the chosen command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = crate::config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Backfill(args) => backfill::run(args, config),
        Command::Simulate(args) => simulate::run(args, config),
    }
}
