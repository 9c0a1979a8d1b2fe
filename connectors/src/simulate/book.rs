//! A synthetic order book around the simulator's GBM mids, written as a raw capture
//! (`<local_recv_ns> <json>` lines, one file per symbol): a REST snapshot at the start,
//! a Binance `depthUpdate` every step, a `bookTicker` whenever the best levels change,
//! and, when asked, injected sequence gaps and crossed updates, each followed by a
//! resync snapshot.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::market::Simulator;
use super::rng::{exp, Rng};
use super::SimConfig;
use crate::{ConnectorError, Result};

/// What the book simulation adds to a market.
#[derive(Clone, Debug, PartialEq)]
pub struct BookSimConfig {
    /// Levels kept on each side.
    pub levels: usize,
    /// Milliseconds between two diffs of a symbol (Binance: 100).
    pub step_ms: i64,
    /// Probability that a diff skips an update id (a gap), then a resync snapshot.
    pub gap_rate: f64,
    /// Probability that a diff crosses the book, then a resync snapshot.
    pub crossed_rate: f64,
    /// USD-M futures payloads (`pu`, `T`) instead of spot.
    pub futures: bool,
}

impl Default for BookSimConfig {
    /// 20 levels a side, a diff every 100 ms, no injected faults, spot.
    fn default() -> Self {
        BookSimConfig {
            levels: 20,
            step_ms: 100,
            gap_rate: 0.0,
            crossed_rate: 0.0,
            futures: false,
        }
    }
}

/// Stream number of the book's random draws (apart from the market's and trades').
const BOOK_STREAM: u64 = 3 << 32;
/// Steps between a fault and its resync snapshot.
const RESYNC_STEPS: i64 = 3;
/// Receive latency written in the capture prefix, ms.
const LATENCY_MS: i64 = 3;

/// Levels as (price ticks, quantity lots).
type Ticks = Vec<(i64, i64)>;

/// One symbol's book in ticks and lots.
struct SymBook {
    bids: BTreeMap<i64, i64>,
    asks: BTreeMap<i64, i64>,
    last_id: u64,
    resync_at: Option<i64>,
    top: Option<(i64, i64, i64, i64)>,
    rng: Rng,
    median_lots: f64,
}

/// A capture file being written.
enum Sink {
    Plain(BufWriter<File>),
    Gz(flate2::write::GzEncoder<BufWriter<File>>),
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(bytes),
            Sink::Gz(w) => w.write_all(bytes),
        }
    }

    /// Completes the file (the gzip trailer) and flushes it.
    fn finish(self) -> io::Result<()> {
        let mut w = match self {
            Sink::Plain(w) => w,
            Sink::Gz(w) => w.finish()?,
        };
        w.flush()
    }
}

/// Decimal text of `units` with `decimals` fractional digits.
fn text(units: i64, decimals: u32) -> String {
    if decimals == 0 {
        return units.to_string();
    }
    let scale = 10i64.pow(decimals);
    format!(
        "{}.{:0w$}",
        units / scale,
        units % scale,
        w = decimals as usize
    )
}

impl SymBook {
    fn lots(&mut self) -> i64 {
        let z = self.rng.normal().clamp(-3.0, 3.0);
        ((self.median_lots * exp(0.8 * z)) as i64).max(1)
    }

    /// Moves the book to `mid_ticks` with `levels` a side; returns the changed levels.
    fn step(&mut self, mid_ticks: f64, levels: usize) -> (Ticks, Ticks) {
        let spread = if self.rng.uniform() < 0.3 { 2 } else { 1 };
        let best_bid = (mid_ticks - spread as f64 / 2.0).floor() as i64;
        let best_ask = best_bid + spread;
        let (mut db, mut da) = (BTreeMap::new(), BTreeMap::new());
        let lo_bid = best_bid - levels as i64 + 1;
        let hi_ask = best_ask + levels as i64 - 1;
        for (&p, _) in self
            .bids
            .iter()
            .filter(|(&p, _)| p > best_bid || p < lo_bid)
        {
            db.insert(p, 0);
        }
        for (&p, _) in self
            .asks
            .iter()
            .filter(|(&p, _)| p < best_ask || p > hi_ask)
        {
            da.insert(p, 0);
        }
        for p in lo_bid..=best_bid {
            if !self.bids.contains_key(&p) || self.rng.uniform() < 0.1 {
                let q = self.lots();
                db.insert(p, q);
            }
        }
        for p in best_ask..=hi_ask {
            if !self.asks.contains_key(&p) || self.rng.uniform() < 0.1 {
                let q = self.lots();
                da.insert(p, q);
            }
        }
        for (side, changes) in [(&mut self.bids, &db), (&mut self.asks, &da)] {
            for (&p, &q) in changes {
                if q > 0 {
                    side.insert(p, q);
                } else {
                    side.remove(&p);
                }
            }
        }
        (db.into_iter().collect(), da.into_iter().collect())
    }

    fn best(&self) -> Option<(i64, i64, i64, i64)> {
        let (b, qb) = self.bids.last_key_value()?;
        let (a, qa) = self.asks.first_key_value()?;
        Some((*b, *qb, *a, *qa))
    }
}

/// Writes the book capture of `config`'s market into `dir`, one file per symbol named
/// `<SYMBOL>.book.jsonl` (gzip when `gzip`); returns the files and the lines written.
pub fn write_books(
    config: &SimConfig,
    book: &BookSimConfig,
    dir: &Path,
    gzip: bool,
) -> Result<(Vec<PathBuf>, u64)> {
    let io_err = |p: &Path, e: io::Error| ConnectorError::io(p.display().to_string(), e);
    let mut sim = Simulator::new(config);
    let (duration_ms, start_ms) = sim.span();
    let info = sim.info().to_vec();
    let mut books = Vec::with_capacity(info.len());
    let mut files: Vec<(PathBuf, Sink)> = Vec::with_capacity(info.len());
    for (i, inf) in info.iter().enumerate() {
        let mid = sim.mid_at(i, 0);
        books.push(SymBook {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            last_id: 1_000_000 * (i as u64 + 1),
            resync_at: Some(0),
            top: None,
            rng: Rng::stream(config.seed, BOOK_STREAM + i as u64),
            median_lots: (2_000.0 / mid * inf.qty_scale).max(1.0),
        });
        let ext = if gzip { "jsonl.gz" } else { "jsonl" };
        let path = dir.join(format!("{}.book.{ext}", inf.name));
        let file = BufWriter::new(File::create(&path).map_err(|e| io_err(&path, e))?);
        let w = if gzip {
            Sink::Gz(flate2::write::GzEncoder::new(
                file,
                flate2::Compression::default(),
            ))
        } else {
            Sink::Plain(file)
        };
        files.push((path, w));
    }
    let mut lines = 0u64;
    let mut t = 0;
    while t < duration_ms {
        for (i, inf) in info.iter().enumerate() {
            let mid_ticks = sim.mid_at(i, t.div_euclid(1000)) * inf.price_scale;
            let b = &mut books[i];
            let (path, w) = &mut files[i];
            let (pd, qd) = (inf.price_decimals, inf.qty_decimals);
            let lv = |v: &[(i64, i64)]| {
                v.iter()
                    .map(|&(p, q)| format!(r#"["{}","{}"]"#, text(p, pd), text(q, qd)))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let e_ms = start_ms + t;
            let recv_ns = |ms: i64| (ms + LATENCY_MS) * 1_000_000 + i as i64;
            let mut out = String::new();
            let (mut bids, asks) = b.step(mid_ticks, book.levels);
            let fault = b.resync_at.is_none() && t > 0;
            let gap = fault && b.rng.uniform() < book.gap_rate;
            let crossed = fault && !gap && b.rng.uniform() < book.crossed_rate;
            if crossed {
                // A bid at the best ask: the book crosses (the generator keeps its own
                // book right, and resyncs).
                if let Some((&a, &q)) = b.asks.first_key_value() {
                    bids.push((a, q));
                }
            }
            if t > 0 && !(bids.is_empty() && asks.is_empty()) {
                let first = b.last_id + if gap { 2 } else { 1 };
                let last = first + (bids.len() + asks.len()) as u64 - 1;
                let sym = &inf.name;
                let stream = format!("{}@depth@100ms", sym.to_lowercase());
                let extra = if book.futures {
                    // A gap claims a previous `u` that was never sent.
                    format!(r#","T":{},"pu":{}"#, e_ms - 1, b.last_id + u64::from(gap))
                } else {
                    String::new()
                };
                out += &format!(
                    "{} {{\"stream\":\"{stream}\",\"data\":{{\"e\":\"depthUpdate\",\"E\":{e_ms}{extra},\"s\":\"{sym}\",\"U\":{first},\"u\":{last},\"b\":[{}],\"a\":[{}]}}}}\n",
                    recv_ns(e_ms),
                    lv(&bids),
                    lv(&asks)
                );
                b.last_id = last;
                if gap || crossed {
                    b.resync_at = Some(t + RESYNC_STEPS * book.step_ms);
                }
            }
            if let Some(top) = b.best().filter(|top| Some(*top) != b.top) {
                b.top = Some(top);
                let (bp, bq, ap, aq) = top;
                out += &format!(
                    "{} {{\"stream\":\"{}@bookTicker\",\"data\":{{\"u\":{},\"s\":\"{}\",\"b\":\"{}\",\"B\":\"{}\",\"a\":\"{}\",\"A\":\"{}\"}}}}\n",
                    recv_ns(e_ms + 1),
                    inf.name.to_lowercase(),
                    b.last_id,
                    inf.name,
                    text(bp, pd),
                    text(bq, qd),
                    text(ap, pd),
                    text(aq, qd)
                );
            }
            if b.resync_at.is_some_and(|r| r <= t) {
                b.resync_at = None;
                let bl: Vec<(i64, i64)> = b.bids.iter().rev().map(|(p, q)| (*p, *q)).collect();
                let al: Vec<(i64, i64)> = b.asks.iter().map(|(p, q)| (*p, *q)).collect();
                out += &format!(
                    "{} {{\"lastUpdateId\":{},\"bids\":[{}],\"asks\":[{}]}}\n",
                    recv_ns(e_ms + 2),
                    b.last_id,
                    lv(&bl),
                    lv(&al)
                );
            }
            lines += out.lines().count() as u64;
            w.write(out.as_bytes()).map_err(|e| io_err(path, e))?;
        }
        t += book.step_ms;
    }
    let mut paths = Vec::with_capacity(files.len());
    for (path, w) in files {
        w.finish().map_err(|e| io_err(&path, e))?;
        paths.push(path);
    }
    Ok((paths, lines))
}
