//! Command dispatch.

mod backfill;
mod consume;
mod produce;
mod run;
mod signals;
mod simulate;
mod time;

use dataflows::cluster::ClusterError;

use crate::cli::{Cli, Command};
use crate::UsageError;

/// Runs the chosen command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let config = crate::config::load(cli.config.as_deref(), std::env::vars())?;
    match cli.command {
        Command::Backfill(args) => backfill::run(args, config),
        Command::Simulate(args) => simulate::run(args, config),
        Command::Run(args) => run::run(args, config),
        Command::Produce(args) => produce::run(args, config),
        Command::Consume(args) => consume::run(args, config),
    }
}

/// A cluster start-up error: a usage error (exit code 2) when the processes were
/// invoked inconsistently, else a failure (exit code 1).
pub fn cluster_error(e: ClusterError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}
