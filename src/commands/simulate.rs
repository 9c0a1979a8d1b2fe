//! `marketflow simulate`: a seeded synthetic market written to a file or a Kafka topic.

use anyhow::Context;
use connectors::simulate::{write_books, write_trades, BookSimConfig, SimConfig, SimFormat};
use connectors::store::Location;

use crate::cli::SimulateArgs;
use crate::config::Validated;
use crate::UsageError;

/// 2024-01-01T00:00:00Z, the simulator's first trade time.
const START_MS: i64 = 1_704_067_200_000;

/// Writes the simulated market to `--output`.
pub fn run(args: SimulateArgs, config: Validated) -> anyhow::Result<()> {
    if args.symbols == 0 || args.minutes == 0 {
        return Err(UsageError("--symbols and --minutes must be at least 1".into()).into());
    }
    let sim = SimConfig {
        symbols: args.symbols,
        minutes: args.minutes,
        seed: args.seed,
        start_ms: START_MS,
    };
    if let Some(dir) = &args.book {
        write_book(&sim, &args, dir)?;
    }
    let Some(output) = args.output else {
        return match args.topic.as_deref() {
            Some(topic) => to_topic(&sim, topic, &config),
            None => Ok(()),
        };
    };
    let format = SimFormat::from_path(&output).ok_or_else(|| {
        UsageError(format!("--output {output}: unknown extension (use .parquet, .csv, .csv.gz, .csv.zst, .jsonl or .jsonl.gz)"))
    })?;
    let (dir, name) = output.rsplit_once('/').unwrap_or((".", output.as_str()));
    let location = Location::parse(if dir.is_empty() { "/" } else { dir })
        .map_err(|e| UsageError(format!("--output: {e}")))?;
    let started = std::time::Instant::now();
    let written = match &location {
        Location::Local(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            write_trades(&sim, &dir.join(name), format)?
        }
        Location::Remote { .. } => {
            let tmp = tempfile::Builder::new()
                .prefix("marketflow-sim-")
                .tempdir()?;
            let path = tmp.path().join(name);
            let n = write_trades(&sim, &path, format)?;
            location.put(name, std::fs::read(&path)?)?;
            n
        }
    };
    tracing::info!(
        trades = written,
        symbols = args.symbols,
        minutes = args.minutes,
        seed = args.seed,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        output = %location.child_url(name),
        "simulation written"
    );
    Ok(())
}

/// Writes the synthetic order book of `--book`.
fn write_book(sim: &SimConfig, args: &SimulateArgs, dir: &std::path::Path) -> anyhow::Result<()> {
    for (flag, p) in [
        ("--book-gaps", args.book_gaps),
        ("--book-crossed", args.book_crossed),
    ] {
        if !(0.0..=1.0).contains(&p) {
            return Err(
                UsageError(format!("{flag} must be a probability in [0, 1], got {p}")).into(),
            );
        }
    }
    let book = BookSimConfig {
        gap_rate: args.book_gaps,
        crossed_rate: args.book_crossed,
        futures: args.book_futures,
        ..BookSimConfig::default()
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let started = std::time::Instant::now();
    let (files, lines) = write_books(sim, &book, dir, true)?;
    tracing::info!(
        files = files.len(),
        records = lines,
        seed = sim.seed,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        output = %dir.display(),
        "order book written"
    );
    Ok(())
}

/// Produces the simulated market to a Kafka topic, in time order, as fast as possible.
fn to_topic(sim: &SimConfig, topic: &str, config: &Validated) -> anyhow::Result<()> {
    let settings = super::produce::brokers(config)?;
    let tmp = tempfile::Builder::new()
        .prefix("marketflow-sim-")
        .tempdir()?;
    let path = tmp.path().join("trades.jsonl");
    write_trades(sim, &path, SimFormat::from_path("x.jsonl").expect("jsonl"))?;
    let started = std::time::Instant::now();
    let stats = super::produce::produce_files(
        &settings,
        topic,
        &[path.display().to_string()],
        connectors::decode::Kind::Trades,
        connectors::decode::FormatHint::Canonical,
        connectors::kafka::Speed(0.0),
    )?;
    tracing::info!(
        topic,
        trades = stats.records,
        seed = sim.seed,
        seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
        "simulation produced"
    );
    Ok(())
}
