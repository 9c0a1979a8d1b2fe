//! Command dispatch.

mod backfill;
mod chart;
mod consume;
mod gc;
mod produce;
mod promote;
mod reprocess;
mod run;
mod runs;
mod signals;
mod simulate;
mod time;

use std::sync::Arc;

use anyhow::Context;
use connectors::metrics::{JobKind, Metrics, MetricsServer};
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
        Command::Chart(args) => chart::run(args),
        Command::Runs(args) => runs::run(args, config),
        Command::Promote(args) => promote::run(args, config),
        Command::Gc(args) => gc::run(args, config),
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

/// The process's metrics and their endpoint, when `[metrics]` serves them for `job` on
/// process `process` (port + process). A port in use is an error naming the key.
pub fn serve_metrics(
    config: &crate::config::Config,
    job: JobKind,
    process: usize,
    sources: &[&str],
) -> anyhow::Result<Option<(Arc<Metrics>, MetricsServer)>> {
    let addr = config.metrics.address(job, process).map_err(UsageError)?;
    let Some(addr) = addr else { return Ok(None) };
    let command = match job {
        JobKind::Live => "run",
        JobKind::Backfill => "backfill",
    };
    let metrics = Arc::new(Metrics::new(command, sources));
    let server = MetricsServer::start(addr, metrics.clone()).with_context(|| {
        "serving metrics (set [metrics] listen, or MARKETFLOW__METRICS__LISTEN=\"\" to turn them off)"
    })?;
    Ok(Some((metrics, server)))
}

/// A connector error as the command's error: a usage error (exit code 2) when it is
/// about the request (an unknown run, a refused promotion), else a failure.
pub fn job_error(e: connectors::ConnectorError) -> anyhow::Error {
    if e.is_usage() {
        UsageError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// The lake's root: `--output` when given, else `sinks.parquet.output`; a bad one is a
/// usage error.
pub fn lake_output(
    config: &crate::config::Config,
    arg: Option<&str>,
) -> anyhow::Result<connectors::store::Location> {
    config
        .sinks
        .parquet
        .build(arg)
        .map_err(|e| UsageError(format!("--output: {e}")).into())
}
