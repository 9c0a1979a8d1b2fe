//! `marketflow promote`: validates a staged run and promotes it (README "Backfill
//! runbook"); a refusal is a usage error (exit code 2) listing every reason.

use connectors::jobs::promote::{promote, PartitionChange, PromoteOptions};

use crate::cli::PromoteArgs;
use crate::config::Validated;

/// Promotes the staged run.
pub fn run(args: PromoteArgs, config: Validated) -> anyhow::Result<()> {
    let output = super::lake_output(&config.config, args.output.as_deref())?;
    let options = PromoteOptions {
        allow_non_atomic: args.allow_non_atomic,
    };
    let p = promote(&output, &args.run_id, &args.expect_rows, options).map_err(super::job_error)?;
    let count = |c: PartitionChange| p.partitions.iter().filter(|x| x.change == c).count();
    let rows: u64 = p.rows.values().sum();
    tracing::info!(
        run_id = %p.run_id,
        partitions = p.partitions.len(),
        added = count(PartitionChange::Added),
        replaced = count(PartitionChange::Replaced),
        unchanged = count(PartitionChange::Unchanged),
        rows,
        versions = %output.child_url(&p.versions),
        "run promoted"
    );
    println!(
        "promoted {}: {} partitions ({} added, {} replaced, {} unchanged), {rows} rows; superseded files kept in {} until `marketflow gc`",
        p.run_id,
        p.partitions.len(),
        count(PartitionChange::Added),
        count(PartitionChange::Replaced),
        count(PartitionChange::Unchanged),
        output.child_url(&p.versions),
    );
    Ok(())
}
