//! `marketflow run`: the live job (README "The live job"). With `kafka.brokers = "embedded"` it
//! starts an in-process broker and feeds it the bundled Binance sample.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use connectors::decode::Kind;
use connectors::kafka::config::SourceConfig;
use connectors::kafka::{
    ensure_topics, feature_topic, feed_in_background, EmbeddedBroker, Feed, LiveProgress, Speed,
};
use connectors::metrics::JobKind;
use connectors::sync::ErrorSlot;
use dataflows::cluster::{self, watchdog};
use dataflows::live::{check_topics, embedded_topics, run_worker, LiveJob, LiveShared, LiveSpec};

use crate::cli::RunArgs;
use crate::commands::cluster_error;
use crate::config::Validated;
use crate::UsageError;

/// The bundled real Binance sample fed to the embedded broker.
const SAMPLE: &[u8] = include_bytes!("../../data/binance_ws_trades_2024-08-08.csv.gz");
/// The bundled raw capture (order book of spot BTCUSDT over the sample's first six
/// minutes) fed to the embedded broker's `book` source.
const CAPTURE: &[u8] = include_bytes!("../../data/hftbacktest_spot_btcusdt_20240808.gz");
/// The event-time shift between two replays of the bundled files: the trades sample's
/// span (23:54:15 to 00:05:05) in whole minutes, so both files replay side by side.
const SAMPLE_PERIOD_MS: i64 = 11 * 60_000;
/// Partitions of the embedded broker's source topics.
const EMBEDDED_PARTITIONS: i32 = 4;

/// The sources of a run: the configured ones, plus, on the embedded broker, a `book`
/// source on `raw.book` for the bundled capture when none is configured.
fn demo_sources(configured: &[SourceConfig], embedded: bool) -> Vec<SourceConfig> {
    let mut sources = configured.to_vec();
    if embedded && !sources.iter().any(|s| s.kind == Kind::Book) {
        sources.push(SourceConfig {
            name: "book".into(),
            kind: Kind::Book,
            topic: "raw.book".into(),
            ..SourceConfig::default()
        });
    }
    sources
}

/// Runs the live job until SIGINT/SIGTERM (a reprocess until its range is written).
pub fn run(args: RunArgs, config: Validated) -> anyhow::Result<()> {
    let spec = args.timely.spec();
    spec.validate().map_err(cluster_error)?;
    let c = &config.config;
    let embedded = c.kafka.is_embedded();
    if embedded && spec.processes > 1 {
        return Err(UsageError(
            "kafka.brokers = \"embedded\" runs in one process; give -n 1 or a real broker".into(),
        )
        .into());
    }
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        return Err(
            UsageError(format!("--speed must be 0 or positive, got {}", args.speed)).into(),
        );
    }
    let sources = demo_sources(&c.sources, embedded);
    check_topics(&sources).map_err(|e| UsageError(e.to_string()))?;
    let lake = super::lake_output(&config.config, args.output.as_deref())?;
    let reprocess = super::reprocess::plan(&args, &config, &sources, &lake)?;
    let output = reprocess.as_ref().map_or(lake, |r| r.target.output.clone());
    let topic_prefix = reprocess
        .as_ref()
        .map_or(c.sinks.kafka.topic_prefix.as_str(), |r| {
            r.spec.topic_prefix.as_str()
        });
    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    let served = super::serve_metrics(c, JobKind::Live, spec.process, &names)?;
    let progress = Arc::new(LiveProgress::new());
    if let Some((m, _)) = &served {
        progress.latency.export_to(m.clone());
    }
    let stop_flag = progress.clone();
    super::signals::stop_on_signal(move || stop_flag.stop.store(true, Ordering::SeqCst));

    // The broker: embedded (with the sample fed in the background) or the configured one.
    let mut _broker = None;
    let settings = if embedded {
        let topics = embedded_topics(&sources, EMBEDDED_PARTITIONS);
        let refs: Vec<(&str, i32)> = topics.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        let broker = EmbeddedBroker::start(&refs)?;
        if let Some(layout) = c.sinks.kafka.layout() {
            for name in feature_topics(&config, topic_prefix) {
                broker.create_topic(&name, layout.partitions)?;
            }
        }
        let settings = c.kafka.build(&broker.bootstrap_servers());
        tracing::info!(brokers = %settings.brokers, topic = %sources[0].topic, speed = args.speed, "embedded broker started; feeding the bundled Binance sample");
        // The embedded broker keeps about 5 MB per partition: compress what is fed so
        // the whole sample stays readable even at --speed 0.
        let mut feed = settings.clone();
        feed.client.insert("compression.type".into(), "lz4".into());
        let repeat = !args.once && args.speed > 0.0;
        let stop = progress.clone();
        feed_in_background(
            &feed,
            Feed {
                topic: sources[0].topic.clone(),
                name: "binance_ws_trades_2024-08-08.csv.gz".into(),
                bytes: SAMPLE,
                speed: Speed(args.speed),
                repeat,
                period_ms: Some(SAMPLE_PERIOD_MS),
                book_only: false,
            },
            move || stop.stop.load(Ordering::Relaxed),
        )?;
        // The bundled capture's order book, to the first source of kind `book`.
        if let Some(book) = sources.iter().find(|s| s.kind == Kind::Book) {
            let stop = progress.clone();
            feed_in_background(
                &feed,
                Feed {
                    topic: book.topic.clone(),
                    name: "hftbacktest_spot_btcusdt_20240808.gz".into(),
                    bytes: CAPTURE,
                    speed: Speed(args.speed),
                    repeat,
                    period_ms: Some(SAMPLE_PERIOD_MS),
                    book_only: true,
                },
                move || stop.stop.load(Ordering::Relaxed),
            )?;
        }
        _broker = Some(broker);
        settings
    } else {
        c.kafka.build(&c.kafka.brokers)
    };
    let mut job = LiveJob::build(LiveSpec {
        settings: settings.clone(),
        sources: &sources,
        time: &c.time,
        features: &c.features,
        resolutions: &config.resolutions,
        checkpoint: &c.checkpoint,
        progress: &c.progress,
        sink: &c.sinks.kafka,
        output: output.clone(),
        partitioning: c.sinks.parquet.partitioning,
        charts: &c.sinks.charts,
        workers: spec.workers(),
        replay: reprocess.as_ref().map(|r| r.spec.clone()),
    })
    .map_err(|e| -> anyhow::Error {
        if e.is_usage() {
            UsageError(e.to_string()).into()
        } else {
            e.into()
        }
    })?;
    job.metrics = served.as_ref().map(|(m, _)| m.clone());
    // Process 0 creates the feature topics before the cluster connects, so no process
    // writes to one that the broker would auto-create with its defaults (the embedded
    // broker made them at start).
    if let (0, Some(layout), false) = (spec.process, c.sinks.kafka.layout(), embedded) {
        let names = feature_topics(&config, topic_prefix);
        let created = ensure_topics(&settings, &names, layout)?;
        tracing::info!(
            topics = names.len(),
            created = created.len(),
            partitions = layout.partitions,
            replication_factor = layout.replication_factor,
            "feature topics ready"
        );
    }
    let job = Arc::new(job);
    tracing::info!(
        brokers = %if embedded { "embedded" } else { settings.brokers.as_str() },
        sources = job.sources.len(),
        workers = spec.workers(),
        process = spec.process,
        output = %output.child_url(""),
        restored_cut = ?job.restored_cut,
        reprocess = ?reprocess.as_ref().map(|r| &r.target.run_id),
        "live job starting"
    );
    let shared = LiveShared {
        errors: ErrorSlot::default(),
        progress,
        producer: Default::default(),
        leader: Default::default(),
        manifest: Default::default(),
    };
    let (job2, shared2) = (job.clone(), shared.clone());
    let guards = cluster::execute(&spec, job.hash(), move |worker| {
        run_worker(worker, &job2, &shared2)
    })
    .map_err(cluster_error)?;
    let mut failure = None;
    for result in guards.join() {
        if let (Err(e), None) = (result, failure.as_ref()) {
            failure = Some(format!("a worker failed: {e}"));
        }
    }
    watchdog::disarm();
    let failure = shared.errors.get().or(failure);
    if let Some(r) = &reprocess {
        let manifest = shared.manifest.lock().unwrap_or_else(|p| p.into_inner());
        super::reprocess::finish(r, manifest.as_ref(), failure.as_deref(), spec.process);
        if failure.is_none() && manifest.is_none() && spec.process == 0 {
            anyhow::bail!(
                "reprocess {} stopped before its end: its staged run is incomplete",
                r.target.run_id
            );
        }
    }
    if let Some(error) = failure {
        anyhow::bail!("live job failed: {error}");
    }
    log_summary(&shared.progress);
    Ok(())
}

/// The closing log line: records, rejects and watermark latencies.
fn log_summary(progress: &LiveProgress) {
    let lat = &progress.latency;
    let latency = lat.summary(None);
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    let by_set: Vec<String> = lat
        .sets()
        .into_iter()
        .filter_map(|set| {
            let s = lat.summary(Some(set))?;
            Some(format!("{set}:{}/{}", ms(s.p50), ms(s.p99)))
        })
        .collect();
    tracing::info!(
        records = progress.records.load(Ordering::Relaxed),
        rejects = progress.rejects.load(Ordering::Relaxed),
        latency_p50_ms = latency.map(|l| ms(l.p50)).unwrap_or_default(),
        latency_p99_ms = latency.map(|l| ms(l.p99)).unwrap_or_default(),
        latency_max_ms = latency.map(|l| ms(l.max)).unwrap_or_default(),
        latency_samples = latency.map_or(0, |l| l.samples),
        latency_p50_p99_ms_by_set = %by_set.join(","),
        "live job stopped; sinks flushed and offsets committed"
    );
}

/// Every feature topic the job writes: each enabled set at each resolution, named with
/// `prefix`.
fn feature_topics(config: &Validated, prefix: &str) -> Vec<String> {
    config
        .config
        .features
        .enabled_sets()
        .iter()
        .flat_map(|set| {
            config
                .resolutions
                .iter()
                .map(move |r| feature_topic(prefix, set, r.label()))
        })
        .collect()
}
