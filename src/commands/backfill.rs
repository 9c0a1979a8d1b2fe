//! `marketflow backfill`: the feature graph over historical files (README "Backfill runs").

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use connectors::jobs::resume::RunTarget;
use connectors::manifest::{Manifest, RunInfo};
use connectors::metrics::JobKind;
use connectors::store::list_inputs;
use connectors::ConnectorError;
use dataflows::backfill::{run_worker, BackfillJob, BackfillShared};
use dataflows::cluster::{self, watchdog};
use operators::{BarsConfig, FeatureSet};

use crate::cli::BackfillArgs;
use crate::commands::cluster_error;
use crate::commands::time::parse_time;
use crate::config::Validated;
use crate::UsageError;

/// Rows per source chunk: large enough to amortise per-chunk work, small enough to
/// keep memory flat.
const CHUNK_ROWS: usize = 32_768;

/// With several processes, how long a process that met a fatal error waits for the
/// run to wind down (every worker then reports the error to the manifest writer)
/// before it exits, which its peers see as a lost connection: a failure stops the
/// whole cluster promptly instead of after the rest of the input.
const FAIL_GRACE: Duration = Duration::from_secs(3);

fn usage_if_input(e: ConnectorError) -> anyhow::Error {
    match e {
        ConnectorError::NoInput(_) | ConnectorError::InvalidUrl { .. } => {
            UsageError(e.to_string()).into()
        }
        other => other.into(),
    }
}

/// Runs a backfill to completion.
pub fn run(args: BackfillArgs, config: Validated) -> anyhow::Result<()> {
    let started = Instant::now();
    let spec = args.timely.spec();
    spec.validate().map_err(cluster_error)?;
    let decode = config.config.first_source().decode_options(args.kind);
    let from_ms = args
        .from
        .as_deref()
        .map(|t| parse_time("--from", t))
        .transpose()?;
    let to_ms = args
        .to
        .as_deref()
        .map(|t| parse_time("--to", t))
        .transpose()?;
    if let (Some(f), Some(t)) = (from_ms, to_ms) {
        if f >= t {
            return Err(UsageError(format!("--from ({f}) must be before --to ({t})")).into());
        }
    }
    let lake = super::lake_output(&config.config, args.output.as_deref())?;
    let inputs = list_inputs(&args.input).map_err(usage_if_input)?;
    let bars = BarsConfig::new(&config.resolutions)?;
    let workers = spec.workers();
    let target = match &args.resume {
        Some(id) => RunTarget::resume(&lake, id, args.stage).map_err(super::job_error)?,
        None => {
            let id = args
                .run_id
                .clone()
                .unwrap_or_else(|| default_run_id(&inputs));
            RunTarget::fresh(&lake, id, args.stage).map_err(super::job_error)?
        }
    };
    let (run_id, output) = (target.run_id.clone(), target.output.clone());
    let info = RunInfo {
        run_id: run_id.clone(),
        kind: decode.kind.name().into(),
        inputs: inputs.clone(),
        from_ms,
        to_ms,
        resolutions: config.resolution_labels(),
        workers,
        processes: args.timely.processes,
        // The order-book sets join the manifest when the input had book records.
        feature_sets: config
            .config
            .features
            .enabled_sets()
            .into_iter()
            .filter(|s| !FeatureSet::from_name(s).is_some_and(FeatureSet::from_book_records))
            .collect(),
        started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    // An input that cannot be planned (unreadable metadata) fails the run: it is
    // recorded like any failed run, so the registry shows it.
    let units = match connectors::files::plan_units(&inputs, &decode) {
        Ok(u) => u,
        Err(e) => {
            if args.timely.process == 0 {
                let manifest = Manifest::build(info, &[], Some(e.to_string()));
                if let Err(w) = manifest.write(&output) {
                    tracing::warn!(error = %w, "could not write the failed run manifest");
                }
            }
            return Err(e.into());
        }
    };
    let source_name = config.config.first_source().name;
    let served = super::serve_metrics(
        &config.config,
        JobKind::Backfill,
        args.timely.process,
        &[source_name.as_str()],
    )?;
    let scratch = tempfile::Builder::new()
        .prefix("marketflow-")
        .tempdir()
        .context("creating a scratch directory")?;
    tracing::info!(
        run_id = %run_id,
        inputs = inputs.len(),
        units = units.len(),
        workers,
        process = args.timely.process,
        output = %output.child_url(""),
        "backfill starting"
    );
    let mut job = BackfillJob {
        inputs: Arc::new(inputs),
        units,
        decode,
        from_ms: from_ms.unwrap_or(i64::MIN),
        to_ms: to_ms.unwrap_or(i64::MAX),
        chunk_rows: CHUNK_ROWS,
        scratch: scratch.path().to_path_buf(),
        output: output.clone(),
        partitioning: config.config.sinks.parquet.partitioning,
        features: config.config.features.build(bars),
        charts: config.config.sinks.charts.build(
            &output,
            config.config.sinks.parquet.partitioning,
            0,
            &config.resolutions,
        ),
        info: info.clone(),
        progress_interval: config.config.progress.build(),
        progress_bar: true,
        source_name,
        metrics: served.as_ref().map(|(m, _)| m.clone()),
        durable: Default::default(),
    };
    let fingerprint = format!("{:016x}", job_hash(&job));
    job.durable = target
        .prepare(&job.info, &fingerprint, args.timely.process)
        .map_err(super::job_error)?;
    let job = Arc::new(job);
    if args.timely.process == 0 {
        let (info, output) = (info.clone(), output.clone());
        watchdog::on_failure(move |error| {
            let manifest = Manifest::build(info.clone(), &[], Some(error.to_string()));
            if let Err(e) = manifest.write(&output) {
                tracing::warn!(error = %e, "could not write the failed run manifest");
            }
        });
    }
    let shared = BackfillShared::default();
    if let Some((m, _)) = &served {
        shared.progress.latency.export_to(m.clone());
    }
    if args.timely.processes > 1 {
        let errors = shared.errors.clone();
        std::thread::spawn(move || loop {
            if let Some(error) = errors.get() {
                std::thread::sleep(FAIL_GRACE);
                watchdog::fail(&format!("backfill failed: {error}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        });
    }
    let (job2, shared2) = (job.clone(), shared.clone());
    let skip_hash = operators::route::stable_hash(
        format!(
            "{:?}",
            job.durable
                .skip_dirs()
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
        )
        .as_bytes(),
    );
    let guards = cluster::execute(&spec, job_hash(&job) ^ skip_hash, move |worker| {
        run_worker(worker, &job2, &shared2)
    })
    .map_err(cluster_error)?;
    let mut failure = shared.errors.get();
    for result in guards.join() {
        if let (Err(e), None) = (result, failure.as_ref()) {
            failure = Some(format!("a worker failed: {e}"));
        }
    }
    watchdog::disarm();
    if failure.is_none() {
        failure = shared.errors.get();
    }
    let linger = config.config.metrics.linger();
    if let (Some((_, server)), false) = (&served, linger.is_zero()) {
        tracing::info!(address = %server.addr(), seconds = linger.as_secs_f64(), "serving the final metrics before exiting");
        std::thread::sleep(linger);
    }
    if let Some(error) = failure {
        if args.timely.process == 0 {
            let manifest = Manifest::build(info, &[], Some(error.clone()));
            if let Err(e) = manifest.write(&output) {
                tracing::warn!(error = %e, "could not write the failed run manifest");
            }
        }
        anyhow::bail!("backfill failed: {error}");
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Some(m) = shared
        .manifest
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        if let Err(e) = connectors::jobs::journal::finish(&output, &run_id) {
            tracing::warn!(error = %e, "could not drop the run journal's part records");
        }
        let rows: u64 = m.feature_sets.values().map(|s| s.rows).sum();
        tracing::info!(
            run_id = %m.info.run_id,
            records = m.records,
            rows_out = rows,
            rejects = m.rejects.total,
            seconds = format!("{elapsed:.2}"),
            rate = format!("{:.0}/s", m.input_rows as f64 / elapsed.max(1e-9)),
            manifest = %output.child_url(&format!("_runs/{}.json", m.info.run_id)),
            "backfill succeeded"
        );
    } else {
        tracing::info!(
            seconds = format!("{elapsed:.2}"),
            "backfill finished on this process"
        );
    }
    if target.staged && args.timely.process == 0 {
        println!(
            "staged run {run_id} in {}: check it with `marketflow runs show {run_id}`, promote it with `marketflow promote {run_id}`",
            output.child_url("")
        );
    }
    Ok(())
}

/// A hash of what must be equal on every process of a run: inputs, range, kind and
/// feature settings (not the output or run id, which only process 0 uses).
fn job_hash(job: &BackfillJob) -> u64 {
    let i = &job.info;
    let text = format!(
        "backfill\n{:?}\n{}\n{}\n{}\n{:?}\n{:?}\n{:?}\n{:?}",
        job.inputs,
        job.units.len(),
        job.from_ms,
        job.to_ms,
        i.kind,
        i.resolutions,
        i.feature_sets,
        job.features
    );
    operators::route::stable_hash(text.as_bytes())
}

/// `YYYYMMDDTHHMMSSZ-<8 hex>`: time of day plus a hash of the inputs.
fn default_run_id(inputs: &[String]) -> String {
    let now = chrono::Utc::now();
    let h = operators::route::stable_hash(inputs.join("\n").as_bytes());
    format!("{}-{:08x}", now.format("%Y%m%dT%H%M%SZ"), h as u32)
}
