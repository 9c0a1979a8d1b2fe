//! `marketflow run`: the live job (README "The live job"). With `kafka.brokers = "embedded"` it
//! starts an in-process broker and feeds it the bundled Binance sample.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use connectors::checkpoint::{CheckpointStore, Expected};
use connectors::decode::{Chunk, DecodeOptions, FormatHint, Kind};
use connectors::kafka::{
    topic_partitions, DoneRule, EmbeddedBroker, KafkaSettings, KafkaSourceConfig, LiveProgress,
    SharedProducer, SourceCheckpoints, Speed,
};
use connectors::store::Location;
use connectors::sync::ErrorSlot;
use dataflows::live::{run_worker, LiveJob, LiveShared};
use operators::checkpoint::CheckpointPlan;
use operators::resolution::parse_duration_ms;
use operators::BarsConfig;

use crate::cli::RunArgs;
use crate::commands::backfill::feature_config;
use crate::config::Validated;
use crate::UsageError;

/// The bundled real Binance sample fed to the embedded broker.
const SAMPLE: &[u8] = include_bytes!("../../data/binance_ws_trades_2024-08-08.csv.gz");
/// Partitions of the embedded broker's source topics.
const EMBEDDED_PARTITIONS: i32 = 4;

/// Runs the live job until SIGINT/SIGTERM.
pub fn run(args: RunArgs, config: Validated) -> anyhow::Result<()> {
    crate::cluster::validate(&args.timely)?;
    let c = &config.config;
    let embedded = c.kafka.brokers.trim() == "embedded";
    if embedded && args.timely.processes > 1 {
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
    let mut problems = Vec::new();
    for (i, s) in c.sources.iter().enumerate() {
        if s.topic.trim().is_empty() {
            problems.push(format!("sources[{i}].topic: a live source needs a topic"));
        }
    }
    if !problems.is_empty() {
        return Err(UsageError(problems.join("\n")).into());
    }
    let output_url = args
        .output
        .clone()
        .unwrap_or_else(|| c.sinks.parquet.output.clone());
    let output = Location::parse(&output_url).map_err(|e| UsageError(format!("--output: {e}")))?;
    let progress = Arc::new(LiveProgress::new());
    let stop_flag = progress.clone();
    super::signals::stop_on_signal(move || stop_flag.stop.store(true, Ordering::SeqCst));

    // The broker: embedded (with the sample fed in the background) or the configured one.
    let mut _broker = None;
    let settings = if embedded {
        let mut topics: Vec<(String, i32)> = c
            .sources
            .iter()
            .map(|s| (s.topic.clone(), EMBEDDED_PARTITIONS))
            .collect();
        topics.extend(c.sources.iter().map(|s| (format!("dlq.{}", s.name), 1)));
        let refs: Vec<(&str, i32)> = topics.iter().map(|(t, p)| (t.as_str(), *p)).collect();
        let broker = EmbeddedBroker::start(&refs)?;
        let settings = KafkaSettings {
            brokers: broker.bootstrap_servers(),
            client: c.kafka.client.clone(),
        };
        tracing::info!(brokers = %settings.brokers, topic = %c.sources[0].topic, speed = args.speed, "embedded broker started; feeding the bundled Binance sample");
        // The embedded broker keeps about 5 MB per partition: compress what is fed so
        // the whole sample stays readable even at --speed 0.
        let mut feed = settings.clone();
        feed.client.insert("compression.type".into(), "lz4".into());
        feed_sample(
            &feed,
            &c.sources[0].topic,
            Speed(args.speed),
            progress.clone(),
        )?;
        _broker = Some(broker);
        settings
    } else {
        KafkaSettings {
            brokers: c.kafka.brokers.clone(),
            client: c.kafka.client.clone(),
        }
    };

    let lateness_ms = parse_duration_ms(&c.time.allowed_lateness).unwrap_or(0);
    let done = DoneRule {
        resolutions_ms: config.resolutions.iter().map(|r| r.ms).collect(),
        lateness_ms,
    };
    let meta = settings.plain_consumer(None)?;
    let mut partitions = Vec::new();
    for s in &c.sources {
        partitions.push(topic_partitions(&meta, &s.topic)?);
    }
    drop(meta);
    let mut bars = BarsConfig::new(&config.resolutions)?;
    bars.lateness_ms = lateness_ms;
    let mut features = feature_config(bars, &c.features);
    // The newest complete checkpoint (states of every operator on every worker, offsets
    // of every partition) is where the job resumes.
    let keep = c.checkpoint.keep.max(1) as usize;
    let store = CheckpointStore::new(output.clone(), keep);
    let workers = args.timely.threads * args.timely.processes;
    let expected = Expected {
        workers,
        operators: features.checkpointed_operators(),
        partitions: c
            .sources
            .iter()
            .zip(&partitions)
            .flat_map(|(s, ps)| ps.iter().map(|p| (s.name.clone(), *p)))
            .collect(),
    };
    let loaded = store
        .latest(&expected)
        .map_err(|e| UsageError(format!("checkpoint: {e}")))?;
    let restored = loaded.as_ref().map(|l| l.restore.cut);
    features.checkpoint = Some(CheckpointPlan {
        interval_ms: config.checkpoint_ms,
        keep,
        restore: loaded.as_ref().map(|l| Arc::new(l.restore.clone())),
    });
    let mut sources = Vec::new();
    for (s, partitions) in c.sources.iter().zip(partitions) {
        let offsets = loaded.as_ref().map(|l| {
            let mine = l
                .offsets
                .iter()
                .filter(|((source, _), _)| *source == s.name)
                .map(|((_, p), o)| (*p, *o))
                .collect();
            (l.restore.cut, mine)
        });
        sources.push(KafkaSourceConfig {
            settings: settings.clone(),
            name: s.name.clone(),
            topic: s.topic.clone(),
            partitions,
            kind: super::backfill::input_kind(s, None).0,
            symbol_prefix: s.symbol_prefix.clone(),
            max_out_of_orderness_ms: parse_duration_ms(&c.time.max_out_of_orderness).unwrap_or(0),
            idle_timeout: Duration::from_millis(
                parse_duration_ms(&c.time.idle_timeout)
                    .unwrap_or(10_000)
                    .max(1) as u64,
            ),
            done: done.clone(),
            checkpoints: SourceCheckpoints {
                store: store.clone(),
                interval_ms: config.checkpoint_ms,
                restored: offsets,
            },
            max_poll: 10_000,
        });
    }
    let job = Arc::new(LiveJob {
        sources,
        features,
        output: output.clone(),
        topic_prefix: c.sinks.kafka.topic_prefix.clone(),
        lateness_ms,
        restored_frontier: restored.map(|cut| cut.saturating_add(lateness_ms)),
        checkpoints: store,
        progress_interval: Duration::from_millis(config.progress_ms.max(1) as u64),
    });
    tracing::info!(
        brokers = %if embedded { "embedded" } else { settings.brokers.as_str() },
        sources = job.sources.len(),
        workers = args.timely.threads * args.timely.processes,
        process = args.timely.process,
        output = %output.child_url(""),
        restored_cut = ?restored,
        "live job starting"
    );
    let shared = LiveShared {
        errors: ErrorSlot::default(),
        progress,
        producer: Default::default(),
    };
    let hash = operators::route::stable_hash(
        format!(
            "run\n{:?}\n{:?}",
            job.sources
                .iter()
                .map(|s| (&s.topic, &s.partitions))
                .collect::<Vec<_>>(),
            job.features
        )
        .as_bytes(),
    );
    let (job2, shared2) = (job.clone(), shared.clone());
    let guards = crate::cluster::execute(&args.timely, hash, move |worker| {
        run_worker(worker, &job2, &shared2)
    })?;
    let mut failure = None;
    for result in guards.join() {
        if let (Err(e), None) = (result, failure.as_ref()) {
            failure = Some(format!("a worker failed: {e}"));
        }
    }
    crate::watchdog::disarm();
    if let Some(error) = shared.errors.get().or(failure) {
        anyhow::bail!("live job failed: {error}");
    }
    let lat = &shared.progress.latency;
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
        records = shared.progress.records.load(Ordering::Relaxed),
        rejects = shared.progress.rejects.load(Ordering::Relaxed),
        latency_p50_ms = latency.map(|l| ms(l.p50)).unwrap_or_default(),
        latency_p99_ms = latency.map(|l| ms(l.p99)).unwrap_or_default(),
        latency_max_ms = latency.map(|l| ms(l.max)).unwrap_or_default(),
        latency_samples = latency.map_or(0, |l| l.samples),
        latency_p50_p99_ms_by_set = %by_set.join(","),
        "live job stopped; sinks flushed and offsets committed"
    );
    Ok(())
}

/// Feeds the bundled sample into `topic` from a background thread.
fn feed_sample(
    settings: &KafkaSettings,
    topic: &str,
    speed: Speed,
    progress: Arc<LiveProgress>,
) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("marketflow-sample-")
        .tempdir()?;
    let path = dir.path().join("binance_ws_trades_2024-08-08.csv.gz");
    std::fs::write(&path, SAMPLE)?;
    let (settings, topic) = (settings.clone(), topic.to_string());
    std::thread::Builder::new()
        .name("sample-feed".into())
        .spawn(move || {
            let _dir = dir;
            let result = (|| -> connectors::Result<connectors::kafka::ProduceStats> {
                let producer = SharedProducer::new(&settings)?;
                let opts = DecodeOptions {
                    kind: Kind::Trades,
                    format: FormatHint::Auto,
                    ..DecodeOptions::default()
                };
                let mut reader =
                    connectors::decode::open(&path, "bundled sample", &Default::default(), &opts)?;
                let stop = || progress.stop.load(Ordering::Relaxed);
                connectors::kafka::produce_chunks(
                    &producer,
                    &topic,
                    speed,
                    |chunk: &mut Chunk| reader.read_chunk(8192, chunk),
                    &stop,
                )
            })();
            match result {
                Ok(s) => tracing::info!(records = s.records, topic = %topic, "bundled sample fed"),
                Err(e) => tracing::error!(error = %e, "feeding the bundled sample"),
            }
        })?;
    Ok(())
}
