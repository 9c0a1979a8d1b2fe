//! Command-line definitions. Dataflow commands take timely's own flags unchanged
//! (`-w -n -p -h -z`), so `-h` means hostfile there and help is `--help`.

use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};
use connectors::decode::Kind;
use connectors::jobs::validate::ExpectRows;
use dataflows::cluster::ClusterSpec;
use operators::duration::DurationMs;

/// Incremental market features for crypto exchanges, on timely dataflow.
#[derive(Debug, Parser)]
#[command(name = "marketflow", version, about, disable_help_subcommand = true)]
pub struct Cli {
    /// Configuration file (TOML); the embedded default when absent.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The live job: Kafka sources to feature topics and the Parquet lake, until stopped
    /// (with --from: a reprocess of a time range into side topics and a staged run).
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Run the feature graph over historical files and write Parquet.
    #[command(disable_help_flag = true)]
    Backfill(BackfillArgs),
    /// Write a seeded synthetic market (correlated GBM with a BTC factor).
    #[command(disable_help_flag = true)]
    Simulate(SimulateArgs),
    /// Load historical files into a Kafka topic.
    Produce(ProduceArgs),
    /// Print a feature topic as JSON lines or a table.
    Consume(ConsumeArgs),
    /// List the backfill runs of a lake (`runs`), or print one (`runs show RUN_ID`).
    Runs(RunsArgs),
    /// Validate a staged backfill run and make its partitions the production ones.
    Promote(PromoteArgs),
    /// Delete the files promotions superseded, once older than a duration.
    Gc(GcArgs),
    /// Draw a symbol's candles (volume, Bollinger bands, RSI) or the correlation
    /// matrix from a lake, as SVG or PNG.
    Chart(ChartArgs),
}

/// `marketflow run`
#[derive(Debug, Args)]
pub struct RunArgs {
    /// With `kafka.brokers = "embedded"`: replay speed of the bundled sample
    /// (0 = as fast as possible, 1 = real time, 60 = a minute per second).
    #[arg(long, default_value_t = 60.0, value_name = "X")]
    pub speed: f64,
    /// With `kafka.brokers = "embedded"`: feed the sample once. By default (at a speed
    /// above 0) it is replayed after it ends, again and again, each replay shifted
    /// after the previous one in event time and trade ids, and logged as a replay.
    #[arg(long)]
    pub once: bool,
    /// Parquet output root (overrides sinks.parquet.output).
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// Reprocess instead of running live: rewind the sources to TIME (RFC 3339, a date
    /// or epoch ms; Kafka's offsets for times), recompute the features of events from
    /// TIME on into the side topics of --topic-prefix and a staged run of the lake, and
    /// end. Check and promote it like a staged backfill (`runs show`, `promote`).
    #[arg(long, value_name = "TIME", requires = "topic_prefix")]
    pub from: Option<String>,
    /// With --from: the end of the range (exclusive); default: the end of the topics
    /// (every partition silent for time.idle_timeout).
    #[arg(long, value_name = "TIME", requires = "from")]
    pub to: Option<String>,
    /// With --from: the reprocess's feature topics are `<P><set>.<resolution>` and its
    /// dead-letter topics `<P>dlq.<source>` (it must differ from
    /// sinks.kafka.topic_prefix).
    #[arg(long, value_name = "P", requires = "from")]
    pub topic_prefix: Option<String>,
    /// With --from: the staged run's id (default: the time and a hash of the topics).
    #[arg(long, value_name = "ID", requires = "from")]
    pub run_id: Option<String>,
    /// Cluster flags.
    #[command(flatten)]
    pub timely: TimelyArgs,
}

/// `marketflow produce`
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Input files: paths, globs, directories or object-store URLs.
    #[arg(long, required = true, num_args = 1.., value_name = "URL")]
    pub input: Vec<String>,
    /// The topic to load into.
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// 0 = as fast as possible, 1 = real time, 60 = a minute of event time per second.
    #[arg(long, default_value_t = 0.0, value_name = "X")]
    pub speed: f64,
    /// What the inputs hold (default: the first configured source's kind).
    #[arg(long, value_parser = kind_parser())]
    pub kind: Option<Kind>,
}

/// Output formats of `consume`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConsumeFormat {
    /// One JSON object per line, as stored.
    Json,
    /// An aligned table.
    Table,
}

/// `marketflow runs`
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The lake's root (default: sinks.parquet.output).
    #[arg(long, global = true, value_name = "URL")]
    pub output: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = RunsFormat::Table)]
    pub format: RunsFormat,
    /// `show RUN_ID`: one run's manifest.
    #[command(subcommand)]
    pub show: Option<RunsCommand>,
}

/// `marketflow runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One run: its facts, rows and checksum per feature set, rejects and error.
    Show {
        /// The run id (the manifest's file name under `_runs/`).
        run_id: String,
    },
}

/// Formats of `marketflow runs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunsFormat {
    /// Aligned text.
    Table,
    /// JSON: an array of run summaries, or the manifest as written.
    Json,
}

/// `marketflow promote`
#[derive(Debug, Args)]
pub struct PromoteArgs {
    /// The staged run (its id under `<output>/_staging/`).
    #[arg(value_name = "RUN_ID")]
    pub run_id: String,
    /// The lake's root (default: sinks.parquet.output).
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// Refuse unless feature set SET of the run has exactly N rows (repeatable).
    #[arg(long, value_name = "SET=N")]
    pub expect_rows: Vec<ExpectRows>,
    /// Also replace partitions holding files promote did not write (a direct backfill's,
    /// the live job's), in two steps: a reader in between may see both.
    #[arg(long)]
    pub allow_non_atomic: bool,
}

/// `marketflow gc`
#[derive(Debug, Args)]
pub struct GcArgs {
    /// The lake's root (default: sinks.parquet.output).
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// Delete what promotions made longer ago than this superseded (e.g. 7d, 12h, 0s).
    #[arg(long, value_name = "DURATION", value_parser = duration_parser)]
    pub older_than: DurationMs,
}

fn duration_parser(s: &str) -> Result<DurationMs, String> {
    DurationMs::parse(s).map_err(|e| e.to_string())
}

/// `marketflow consume`
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// The topic, e.g. feature.bars.1m.
    #[arg(long, value_name = "T")]
    pub topic: String,
    /// Start at the oldest record instead of new ones.
    #[arg(long)]
    pub from_beginning: bool,
    /// Only records of this symbol (either side of a correlation pair).
    #[arg(long, value_name = "S")]
    pub symbol: Option<String>,
    /// Stop after N records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Stop after this many seconds without a new record, counted once the records
    /// present at start are read (default: run until Ctrl-C).
    #[arg(long, value_name = "SECS")]
    pub idle_exit: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConsumeFormat::Json)]
    pub format: ConsumeFormat,
}

/// timely's cluster flags, unchanged.
#[derive(Clone, Debug, Args)]
pub struct TimelyArgs {
    /// Worker threads per process.
    #[arg(
        short = 'w',
        long = "threads",
        default_value_t = 1,
        value_name = "THREADS"
    )]
    pub threads: usize,
    /// Number of processes.
    #[arg(
        short = 'n',
        long = "processes",
        default_value_t = 1,
        value_name = "PROCESSES"
    )]
    pub processes: usize,
    /// Index of this process, 0-based.
    #[arg(
        short = 'p',
        long = "process",
        default_value_t = 0,
        value_name = "INDEX"
    )]
    pub process: usize,
    /// Hostfile: one host:port a line, in process order.
    #[arg(short = 'h', long = "hostfile", value_name = "HOSTFILE")]
    pub hostfile: Option<PathBuf>,
    /// Serialize data between local workers too (zero-copy allocator).
    #[arg(short = 'z', long = "zerocopy")]
    pub zerocopy: bool,
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
}

impl TimelyArgs {
    /// The cluster the flags describe.
    pub fn spec(&self) -> ClusterSpec {
        ClusterSpec {
            threads: self.threads,
            processes: self.processes,
            process: self.process,
            hostfile: self.hostfile.clone(),
            zerocopy: self.zerocopy,
        }
    }
}

/// `--kind`: `trades` or `candles`, into the decoders' [`Kind`].
fn kind_parser() -> impl TypedValueParser<Value = Kind> {
    PossibleValuesParser::new(Kind::ALL.map(Kind::name)).try_map(|s| s.parse::<Kind>())
}

/// `marketflow backfill`
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Input files: paths, globs, directories or object-store URLs.
    #[arg(long, required = true, num_args = 1.., value_name = "URL")]
    pub input: Vec<String>,
    /// Output root (overrides sinks.parquet.output).
    #[arg(long, value_name = "URL")]
    pub output: Option<String>,
    /// What the inputs hold (default: the first configured source's kind).
    #[arg(long, value_parser = kind_parser())]
    pub kind: Option<Kind>,
    /// Keep events at or after TIME (RFC 3339 or epoch ms).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Keep events before TIME (RFC 3339 or epoch ms).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Run id (manifest name); generated when absent.
    #[arg(long, value_name = "ID", conflicts_with = "resume")]
    pub run_id: Option<String>,
    /// Write under `<output>/_staging/<run-id>/` for a later `promote`.
    #[arg(long)]
    pub stage: bool,
    /// Continue the failed or killed run RUN_ID (same arguments otherwise): its
    /// partitions already durable are not written again.
    #[arg(long, value_name = "RUN_ID")]
    pub resume: Option<String>,
    /// Cluster flags.
    #[command(flatten)]
    pub timely: TimelyArgs,
}

/// `marketflow chart`
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    marketflow chart --input out --symbol spot:BTCUSDT --resolution 1m --output btc.png\n  \
    marketflow chart --input s3://bucket/lake --correlation --to 2024-08-09T00:00:00Z --output corr.svg")]
pub struct ChartArgs {
    /// The lake's root: a path or an object-store URL (the backfill's --output).
    #[arg(long, value_name = "LAKE")]
    pub input: String,
    /// The symbol to draw (not needed with --correlation).
    #[arg(long, value_name = "S", required_unless_present = "correlation")]
    pub symbol: Option<String>,
    /// Only bars whose window starts at or after TIME (RFC 3339 or epoch ms).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// Only bars whose window ends at or before TIME (RFC 3339 or epoch ms); with
    /// --correlation, the matrix of the latest window end at or before TIME.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Bar resolution, e.g. 1m (default: the finest one present in the lake's bars,
    /// or in its correlation set with --correlation).
    #[arg(long, value_name = "R")]
    pub resolution: Option<String>,
    /// Draw the correlation matrix (last window end <= --to, or the lake's last) as a
    /// heatmap instead of candles.
    #[arg(long)]
    pub correlation: bool,
    /// The image to write: FILE.svg or FILE.png.
    #[arg(long, value_name = "FILE")]
    pub output: PathBuf,
    /// Image width in pixels.
    #[arg(long, default_value_t = 1280, value_parser = clap::value_parser!(u32).range(320..=8192))]
    pub width: u32,
    /// Image height in pixels.
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(320..=8192))]
    pub height: u32,
}

/// `marketflow simulate`
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of symbols (BTCUSDT first).
    #[arg(long, default_value_t = 5)]
    pub symbols: usize,
    /// Minutes of market time.
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file (.parquet, .csv, .csv.gz, .csv.zst, .jsonl, .jsonl.gz), local or object store.
    #[arg(
        long,
        value_name = "URL",
        required_unless_present_any = ["topic", "book"],
        conflicts_with = "topic"
    )]
    pub output: Option<String>,
    /// Kafka topic to produce to.
    #[arg(long, value_name = "T")]
    pub topic: Option<String>,
    /// Also write a synthetic order book around the same prices: one raw-capture file
    /// per symbol (`<SYMBOL>.book.jsonl.gz`: a depth snapshot, a diff every 100 ms, a
    /// bookTicker when the best levels change) in this local directory.
    #[arg(long, value_name = "DIR")]
    pub book: Option<std::path::PathBuf>,
    /// With --book: probability that a diff skips an update id (then a resync snapshot).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub book_gaps: f64,
    /// With --book: probability that a diff crosses the book (then a resync snapshot).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub book_crossed: f64,
    /// With --book: USD-M futures payloads (`pu`) instead of spot.
    #[arg(long)]
    pub book_futures: bool,
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
}
