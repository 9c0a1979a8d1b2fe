//! `marketflow produce`: historical files into a Kafka topic, as canonical JSON records
//! keyed by symbol, at a chosen replay speed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use connectors::decode::{open, Chunk, DecodeOptions, FormatHint, Kind, RecordReader};
use connectors::kafka::{produce_chunks, KafkaSettings, Pace, ProduceStats, SharedProducer, Speed};
use connectors::store::{fetch_local, list_inputs};

use crate::cli::ProduceArgs;
use crate::config::Validated;
use crate::UsageError;

/// The configured brokers; `embedded` only exists inside `marketflow run`.
pub fn brokers(config: &Validated) -> anyhow::Result<KafkaSettings> {
    config.config.kafka.settings().ok_or_else(|| {
        UsageError(
            "kafka.brokers is \"embedded\", which only exists inside `marketflow run`; set it in --config or with MARKETFLOW__KAFKA__BROKERS=host:port".into(),
        )
        .into()
    })
}

/// Loads every input into `--topic`.
pub fn run(args: ProduceArgs, config: Validated) -> anyhow::Result<()> {
    let settings = brokers(&config)?;
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        return Err(
            UsageError(format!("--speed must be 0 or positive, got {}", args.speed)).into(),
        );
    }
    let DecodeOptions { kind, format, .. } = config.config.first_source().decode_options(args.kind);
    let inputs = list_inputs(&args.input).map_err(|e| UsageError(e.to_string()))?;
    let started = Instant::now();
    let stats = produce_files(
        &settings,
        &args.topic,
        &inputs,
        kind,
        format,
        Speed(args.speed),
    )?;
    tracing::info!(
        topic = %args.topic,
        records = stats.records,
        rejects = stats.rejects,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "produced"
    );
    Ok(())
}

/// Produces the records of `inputs` (in order) to `topic`; stops early on SIGINT/SIGTERM.
pub fn produce_files(
    settings: &KafkaSettings,
    topic: &str,
    inputs: &[String],
    kind: Kind,
    format: FormatHint,
    speed: Speed,
) -> anyhow::Result<ProduceStats> {
    let producer = SharedProducer::new(settings)?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    super::signals::stop_on_signal(move || flag.store(true, Ordering::SeqCst));
    let scratch = tempfile::Builder::new().prefix("marketflow-").tempdir()?;
    let mut total = ProduceStats::default();
    for (i, url) in inputs.iter().enumerate() {
        let path = fetch_local(url, scratch.path())?;
        let opts = DecodeOptions {
            kind,
            format,
            symbol_prefix: String::new(),
            file_index: i as u32,
        };
        let mut reader: Box<dyn RecordReader> = open(&path, url, &Default::default(), &opts)?;
        let s = produce_chunks(
            &producer,
            topic,
            &mut Pace::new(speed),
            |chunk: &mut Chunk| reader.read_chunk(8192, chunk),
            &|| stop.load(Ordering::Relaxed),
        )?;
        total.records += s.records;
        total.rejects += s.rejects;
        tracing::debug!(input = %url, records = s.records, "input produced");
    }
    Ok(total)
}
