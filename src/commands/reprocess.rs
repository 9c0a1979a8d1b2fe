//! `marketflow run --from TIME [--to TIME] --topic-prefix P`: a reprocess of a time range
//! from Kafka into side topics and a staged run of the lake, validated and promoted like
//! a staged backfill.

use connectors::decode::Kind;
use connectors::jobs::resume::RunTarget;
use connectors::kafka::config::SourceConfig;
use connectors::manifest::{Manifest, RunInfo};
use connectors::store::Location;
use dataflows::live::ReplaySpec;

use crate::cli::RunArgs;
use crate::commands::time::parse_time;
use crate::config::Validated;
use crate::UsageError;

/// A reprocess about to start: what the job needs and where it writes.
pub struct Reprocess {
    /// The job's side of it.
    pub spec: ReplaySpec,
    /// The staged run.
    pub target: RunTarget,
}

/// The reprocess `args` ask for, `None` for the live job. Checks the flags, opens the
/// staged run under `lake` and (on process 0) starts its journal.
pub fn plan(
    args: &RunArgs,
    config: &Validated,
    sources: &[SourceConfig],
    lake: &Location,
) -> anyhow::Result<Option<Reprocess>> {
    let Some(from) = args.from.as_deref() else {
        return Ok(None);
    };
    let c = &config.config;
    if c.kafka.is_embedded() {
        return Err(UsageError(
            "--from reprocesses what a real broker holds; kafka.brokers = \"embedded\" holds only the bundled sample being fed"
                .into(),
        )
        .into());
    }
    let from_ms = parse_time("--from", from)?;
    let to_ms = args
        .to
        .as_deref()
        .map(|t| parse_time("--to", t))
        .transpose()?;
    if to_ms.is_some_and(|t| t <= from_ms) {
        return Err(UsageError(format!(
            "--from ({from_ms}) must be before --to ({})",
            to_ms.unwrap_or(0)
        ))
        .into());
    }
    let prefix = args.topic_prefix.clone().unwrap_or_default();
    if prefix.trim().is_empty() || prefix == c.sinks.kafka.topic_prefix {
        return Err(UsageError(format!(
            "--topic-prefix `{prefix}`: a reprocess writes side topics; give a prefix other than the live job's `{}`",
            c.sinks.kafka.topic_prefix
        ))
        .into());
    }
    let inputs: Vec<String> = sources
        .iter()
        .map(|s| format!("kafka:{}", s.topic))
        .collect();
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        let h = operators::route::stable_hash(format!("{inputs:?} {from_ms} {to_ms:?}").as_bytes());
        format!(
            "{}-{:08x}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            h as u32
        )
    });
    let target = RunTarget::fresh(lake, run_id.clone(), true).map_err(super::job_error)?;
    let book = sources.iter().any(|s| s.kind == Kind::Book);
    let info = RunInfo {
        run_id,
        kind: sources
            .iter()
            .map(|s| s.kind.name())
            .collect::<Vec<_>>()
            .join(","),
        inputs,
        from_ms: Some(from_ms),
        to_ms,
        resolutions: config.resolution_labels(),
        workers: args.timely.spec().workers(),
        processes: args.timely.processes,
        // The order-book sets are listed when a source is of kind book (or when the
        // topics held book records and they were written).
        feature_sets: c
            .features
            .enabled_sets()
            .into_iter()
            .filter(|s| {
                book || !operators::FeatureSet::from_name(s)
                    .is_some_and(operators::FeatureSet::from_book_records)
            })
            .collect(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    let fingerprint = format!(
        "{:016x}",
        operators::route::stable_hash(format!("{info:?}").as_bytes())
    );
    target
        .prepare(&info, &fingerprint, args.timely.process)
        .map_err(super::job_error)?;
    Ok(Some(Reprocess {
        spec: ReplaySpec {
            info,
            topic_prefix: prefix,
        },
        target,
    }))
}

/// After the job: the failed manifest when it failed (process 0), the closing lines
/// when it succeeded.
pub fn finish(r: &Reprocess, manifest: Option<&Manifest>, failure: Option<&str>, process: usize) {
    let output = &r.target.output;
    let run_id = &r.target.run_id;
    if let (Some(error), 0) = (failure, process) {
        let m = Manifest::build(r.spec.info.clone(), &[], Some(error.to_string()));
        if let Err(e) = m.write(output) {
            tracing::warn!(error = %e, "could not write the failed run manifest");
        }
        return;
    }
    if let Some(m) = manifest {
        if let Err(e) = connectors::jobs::journal::finish(output, run_id) {
            tracing::warn!(error = %e, "could not drop the run journal's part records");
        }
        let rows: u64 = m.feature_sets.values().map(|s| s.rows).sum();
        tracing::info!(run_id = %run_id, records = m.records, rows_out = rows, rejects = m.rejects.total, topic_prefix = %r.spec.topic_prefix, "reprocess succeeded");
        println!(
            "staged run {run_id} in {}: check it with `marketflow runs show {run_id}`, promote it with `marketflow promote {run_id}`",
            output.child_url("")
        );
    }
}
