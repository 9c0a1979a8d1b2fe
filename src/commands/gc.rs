//! `marketflow gc --older-than DURATION`: deletes the files promotions superseded and
//! the promoted runs' staged data, once the promotion is older than DURATION.

use connectors::jobs::gc::gc;

use crate::cli::GcArgs;
use crate::config::Validated;

/// Collects the lake's garbage.
pub fn run(args: GcArgs, config: Validated) -> anyhow::Result<()> {
    let output = super::lake_output(&config.config, args.output.as_deref())?;
    let now = chrono::Utc::now().timestamp_millis();
    let report = gc(&output, args.older_than.as_ms(), now).map_err(super::job_error)?;
    println!(
        "gc: {} file(s) deleted from {} promotion(s){}; {} promotion(s) younger than {} kept",
        report.files,
        report.runs.len(),
        if report.runs.is_empty() {
            String::new()
        } else {
            format!(" ({})", report.runs.join(", "))
        },
        report.kept,
        args.older_than.text()
    );
    Ok(())
}
