//! A seeded synthetic market (`marketflow simulate`): correlated
//! geometric Brownian motion with a BTC factor, Poisson trade arrivals, realistic trade
//! sizes and sides. Same seed, same bytes: the module uses its own random number
//! generator and its own `ln` / `exp`, so outputs never change with platforms or crates.
//!
//! Rates: about 100 trades/s in total for 5 symbols (`--symbols 5 --minutes 1667` gives
//! about 10 million trades), `100 * sqrt(N / 5)` trades/s for N symbols; see
//! [`trade_rates`] and [`Simulator`] for the model.
//!
//! ```
//! use connectors::simulate::{simulator, SimConfig};
//! let config = SimConfig { symbols: 2, minutes: 1, ..SimConfig::default() };
//! let trades: Vec<_> = simulator(&config).collect();
//! assert!(trades.windows(2).all(|w| w[0].1.ts_ms <= w[1].1.ts_ms));
//! assert!(trades.iter().all(|(s, _)| &**s == "BTCUSDT" || &**s == "ETHUSDT"));
//! ```

mod book;
mod market;
mod rng;
#[cfg(test)]
mod tests;
mod write;

pub use book::{write_books, BookSimConfig};
pub use market::{symbol_name, trade_rates, Simulator, BASE_RATE_PER_SEC, SIGMA_BTC_PER_SEC};
pub use write::{trade_schema, write_trades, CSV_HEADER, ROW_GROUP_ROWS};

/// 2024-01-01T00:00:00Z in epoch milliseconds, the default start of a simulation.
pub const DEFAULT_START_MS: i64 = 1_704_067_200_000;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Number of symbols: BTCUSDT, ETHUSDT, ... (see [`symbol_name`]).
    pub symbols: usize,
    /// Length of the simulated period in minutes.
    pub minutes: u64,
    /// The seed; the same seed gives the same trades and the same output bytes.
    pub seed: u64,
    /// Event time of the start, epoch milliseconds (default 2024-01-01T00:00:00Z).
    pub start_ms: i64,
}

impl SimConfig {
    /// A configuration starting at [`DEFAULT_START_MS`].
    pub fn new(symbols: usize, minutes: u64, seed: u64) -> SimConfig {
        SimConfig {
            symbols,
            minutes,
            seed,
            start_ms: DEFAULT_START_MS,
        }
    }

    /// The expected number of trades (the sum of the Poisson rates times the duration).
    pub fn expected_trades(&self) -> f64 {
        trade_rates(self.symbols).iter().sum::<f64>() * self.minutes as f64 * 60.0
    }
}

impl Default for SimConfig {
    /// 5 symbols, 60 minutes, seed 0, from 2024-01-01T00:00:00Z.
    fn default() -> SimConfig {
        SimConfig::new(5, 60, 0)
    }
}

/// The deterministic trades of `config`, in event-time order (ties by symbol index).
pub fn simulator(config: &SimConfig) -> Simulator {
    Simulator::new(config)
}

/// Output format of [`write_trades`], from a path's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SimFormat {
    /// `.parquet`: zstd-compressed Parquet.
    Parquet,
    /// `.csv`: CSV with a header line.
    Csv,
    /// `.csv.gz`: gzip-compressed CSV.
    CsvGz,
    /// `.csv.zst` (or `.csv.zstd`): zstd-compressed CSV.
    CsvZst,
    /// `.jsonl`, `.json` or `.ndjson`: one JSON object a line.
    Jsonl,
    /// `.jsonl.gz`, `.json.gz` or `.ndjson.gz`: gzip-compressed JSON lines.
    JsonlGz,
}

impl SimFormat {
    /// The format named by the extension of `p` (case-insensitive), if any.
    ///
    /// ```
    /// use connectors::simulate::SimFormat;
    /// assert_eq!(SimFormat::from_path("out/t.csv.gz"), Some(SimFormat::CsvGz));
    /// assert_eq!(SimFormat::from_path("file:///tmp/T.PARQUET"), Some(SimFormat::Parquet));
    /// assert_eq!(SimFormat::from_path("t.txt"), None);
    /// ```
    pub fn from_path(p: &str) -> Option<SimFormat> {
        let p = p.to_ascii_lowercase();
        const SUFFIXES: [(&str, SimFormat); 11] = [
            (".parquet", SimFormat::Parquet),
            (".csv", SimFormat::Csv),
            (".csv.gz", SimFormat::CsvGz),
            (".csv.zst", SimFormat::CsvZst),
            (".csv.zstd", SimFormat::CsvZst),
            (".jsonl", SimFormat::Jsonl),
            (".json", SimFormat::Jsonl),
            (".ndjson", SimFormat::Jsonl),
            (".jsonl.gz", SimFormat::JsonlGz),
            (".json.gz", SimFormat::JsonlGz),
            (".ndjson.gz", SimFormat::JsonlGz),
        ];
        SUFFIXES
            .iter()
            .find(|(suffix, _)| p.ends_with(suffix))
            .map(|&(_, f)| f)
    }

    /// The canonical extension of the format, e.g. `csv.gz`.
    pub fn extension(self) -> &'static str {
        match self {
            SimFormat::Parquet => "parquet",
            SimFormat::Csv => "csv",
            SimFormat::CsvGz => "csv.gz",
            SimFormat::CsvZst => "csv.zst",
            SimFormat::Jsonl => "jsonl",
            SimFormat::JsonlGz => "jsonl.gz",
        }
    }
}
