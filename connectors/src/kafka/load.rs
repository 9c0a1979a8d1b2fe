//! Loading records into a Kafka topic: files decoded in chunks (any input format), each
//! record produced as a canonical JSON object keyed by symbol, paced by event time.

use std::time::{Duration, Instant};

use operators::book::{BookKind, BookRecord, Dec};
use operators::{Candle, Trade, NO_TRADE_ID};

use crate::decode::{Chunk, DecodeOptions, FormatHint, Kind};
use crate::kafka::SharedProducer;
use crate::{ConnectorError, Result};

/// How fast to replay: `0` as fast as possible, `1` real time, `60` a minute per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Speed(pub f64);

/// What a load produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProduceStats {
    /// Records produced.
    pub records: u64,
    /// Rejected input records (not produced).
    pub rejects: u64,
}

/// A canonical JSON trade.
///
/// ```
/// use operators::{Trade, NO_TRADE_ID};
/// let t = Trade { ts_ms: 5, trade_id: NO_TRADE_ID, seq: 0, exchange: 0, price: 61837.63,
///     qty: 0.02, is_buyer_maker: true };
/// assert_eq!(connectors::kafka::trade_json("BTCUSDT", &t),
///     r#"{"ts_ms":5,"symbol":"BTCUSDT","price":61837.63,"qty":0.02,"is_buyer_maker":true}"#);
/// ```
pub fn trade_json(symbol: &str, t: &Trade) -> String {
    let mut s = format!(
        "{{\"ts_ms\":{},\"symbol\":{},\"price\":{},\"qty\":{},\"is_buyer_maker\":{}",
        t.ts_ms,
        serde_json::to_string(symbol).unwrap_or_default(),
        num(t.price),
        num(t.qty),
        t.is_buyer_maker
    );
    if t.trade_id != NO_TRADE_ID {
        s.push_str(&format!(",\"trade_id\":{}", t.trade_id));
    }
    s.push('}');
    s
}

/// A canonical JSON candle.
pub fn candle_json(symbol: &str, c: &Candle) -> String {
    let mut s = format!(
        "{{\"ts_ms\":{},\"symbol\":{},\"open\":{},\"high\":{},\"low\":{},\"close\":{},\"volume\":{},\"resolution\":\"{}\"",
        c.ts_ms,
        serde_json::to_string(symbol).unwrap_or_default(),
        num(c.open),
        num(c.high),
        num(c.low),
        num(c.close),
        num(c.volume),
        operators::Resolution::from_ms(c.resolution_ms).label()
    );
    if let Some(q) = c.quote_volume {
        s.push_str(&format!(",\"quote_volume\":{}", num(q)));
    }
    if let Some(n) = c.trades {
        s.push_str(&format!(",\"trades\":{n}"));
    }
    if let Some(b) = c.buy_volume {
        s.push_str(&format!(",\"buy_volume\":{}", num(b)));
    }
    s.push('}');
    s
}

/// An order-book record as the Binance payload it came from, with its event time as
/// `E` (so that the topic's consumers need not trust record timestamps).
///
/// ```
/// use operators::book::{BookKind, BookRecord, Dec};
/// let d = |s| Dec::parse(s).unwrap();
/// let r = BookRecord { ts_ms: 7, seq: 0, kind: BookKind::Snapshot { last_update_id: Some(9) },
///     bids: vec![(d("10.50"), d("1"))], asks: vec![] };
/// assert_eq!(connectors::kafka::book_json("BTCUSDT", &r),
///     r#"{"lastUpdateId":9,"E":7,"bids":[["10.5","1"]],"asks":[]}"#);
/// ```
pub fn book_json(symbol: &str, r: &BookRecord) -> String {
    let levels = |ls: &[(Dec, Dec)]| {
        let items: Vec<String> = ls
            .iter()
            .map(|(p, q)| format!(r#"["{p}","{q}"]"#))
            .collect();
        format!("[{}]", items.join(","))
    };
    let sym = serde_json::to_string(symbol).unwrap_or_default();
    let (b, a) = (levels(&r.bids), levels(&r.asks));
    match r.kind {
        BookKind::Snapshot {
            last_update_id: Some(id),
        } => format!(
            r#"{{"lastUpdateId":{id},"E":{},"bids":{b},"asks":{a}}}"#,
            r.ts_ms
        ),
        // Tardis rows (no update ids) in marketflow's own form.
        BookKind::Snapshot {
            last_update_id: None,
        }
        | BookKind::Levels => format!(
            r#"{{"e":"bookLevels","E":{},"s":{sym},"snapshot":{},"b":{b},"a":{a}}}"#,
            r.ts_ms,
            r.kind != BookKind::Levels
        ),
        BookKind::Diff { first, last, prev } => {
            let pu = prev.map(|p| format!(r#","pu":{p}"#)).unwrap_or_default();
            format!(
                r#"{{"e":"depthUpdate","E":{},"s":{sym},"U":{first},"u":{last}{pu},"b":{b},"a":{a}}}"#,
                r.ts_ms
            )
        }
        BookKind::Ticker => {
            let top = |ls: &[(Dec, Dec)]| ls.first().map(|(p, q)| (p.to_string(), q.to_string()));
            let ((bp, bq), (ap, aq)) = (
                top(&r.bids).unwrap_or_default(),
                top(&r.asks).unwrap_or_default(),
            );
            format!(
                r#"{{"e":"bookTicker","E":{},"s":{sym},"b":"{bp}","B":"{bq}","a":"{ap}","A":"{aq}"}}"#,
                r.ts_ms
            )
        }
    }
}

fn num(v: f64) -> String {
    serde_json::Number::from_f64(v).map_or_else(|| "null".into(), |n| n.to_string())
}

/// The pace of a load: records are due `speed` times faster than their event time
/// from the first record's, measured from when the pace was made (one pace across the
/// passes of a replay keeps them on one clock).
#[derive(Clone, Copy, Debug)]
pub struct Pace {
    speed: Speed,
    started: Instant,
    origin: Option<i64>,
}

impl Pace {
    /// A pace at `speed` starting now.
    pub fn new(speed: Speed) -> Pace {
        Pace {
            speed,
            started: Instant::now(),
            origin: None,
        }
    }
}

/// Produces chunks from `next_chunk` (which fills a chunk and returns false when the
/// input is exhausted) to `topic`, in input order per symbol, at `pace`; flushes at the
/// end.
pub fn produce_chunks(
    producer: &SharedProducer,
    topic: &str,
    pace: &mut Pace,
    mut next_chunk: impl FnMut(&mut Chunk) -> Result<bool>,
    stop: &dyn Fn() -> bool,
) -> Result<ProduceStats> {
    let mut stats = ProduceStats::default();
    let (speed, started) = (pace.speed, pace.started);
    let origin = &mut pace.origin;
    let mut chunk = Chunk::default();
    loop {
        if stop() {
            break;
        }
        let more = next_chunk(&mut chunk)?;
        stats.rejects += chunk.rejects.len() as u64;
        chunk.rejects.clear();
        // Back into input order (the chunk groups records by symbol).
        let mut records: Vec<(i64, u64, usize, String)> = Vec::with_capacity(chunk.records());
        let batches = chunk.take_batches();
        for (i, b) in batches.iter().enumerate() {
            for t in &b.trades {
                records.push((t.ts_ms, t.seq, i, trade_json(&b.symbol, t)));
            }
            for c in &b.candles {
                records.push((c.ts_ms, c.seq, i, candle_json(&b.symbol, c)));
            }
            for r in &b.book {
                records.push((r.ts_ms, r.seq, i, book_json(&b.symbol, r)));
            }
        }
        records.sort_by_key(|(_, seq, _, _)| *seq);
        for (ts, _, i, value) in records {
            let key = batches[i].symbol.as_str();
            if speed.0 > 0.0 {
                let o = *origin.get_or_insert(ts);
                let due = Duration::from_secs_f64(((ts - o).max(0) as f64 / 1000.0) / speed.0);
                let elapsed = started.elapsed();
                // Sleep only when well ahead; flush first so consumers see what is due.
                if due > elapsed + Duration::from_millis(2) {
                    producer.flush()?;
                    std::thread::sleep(due - elapsed);
                    if stop() {
                        return Ok(stats);
                    }
                }
            }
            producer.send(topic, key, value.as_bytes())?;
            stats.records += 1;
        }
        chunk.rows = 0;
        if !more {
            break;
        }
    }
    producer.flush()?;
    Ok(stats)
}

/// The event-time and trade-id range of a file fed in a loop: pass k is shifted by k
/// times the span (whole minutes) and k times the id range, so that it follows the
/// previous pass and its ids are new.
#[derive(Clone, Copy, Debug)]
struct FeedExtent {
    first: i64,
    last: i64,
    min_id: i64,
    max_id: i64,
    /// Least and greatest order-book update id.
    min_uid: u64,
    max_uid: u64,
    /// The event-time shift per pass, when fixed.
    period_ms: Option<i64>,
}

impl Default for FeedExtent {
    fn default() -> Self {
        FeedExtent {
            first: i64::MAX,
            last: i64::MIN,
            min_id: i64::MAX,
            max_id: i64::MIN,
            min_uid: u64::MAX,
            max_uid: 0,
            period_ms: None,
        }
    }
}

/// Moves a book record's update ids up by `ids` (a replay); on a replay a snapshot goes
/// first (input order 0), so the diffs held for it in the file follow it.
fn shift_update_ids(r: &mut BookRecord, ids: u64, pass: u32) {
    match &mut r.kind {
        BookKind::Diff { first, last, prev } => {
            *first += ids;
            *last += ids;
            if let Some(p) = prev {
                *p += ids;
            }
        }
        BookKind::Snapshot {
            last_update_id: Some(id),
        } => {
            *id += ids;
            if pass > 0 {
                r.seq = 0;
            }
        }
        _ => {}
    }
}

impl FeedExtent {
    /// Widens the span to `t` (unshifted).
    fn see(&mut self, t: &operators::Trade) {
        self.first = self.first.min(t.ts_ms);
        self.last = self.last.max(t.ts_ms);
        if t.trade_id != operators::NO_TRADE_ID {
            self.min_id = self.min_id.min(t.trade_id);
            self.max_id = self.max_id.max(t.trade_id);
        }
    }

    /// Widens the update-id range to a book record's.
    fn see_book(&mut self, r: &BookRecord) {
        let (lo, hi) = match r.kind {
            BookKind::Diff { first, last, .. } => (first, last),
            BookKind::Snapshot {
                last_update_id: Some(id),
            } => (id, id),
            _ => return,
        };
        self.min_uid = self.min_uid.min(lo);
        self.max_uid = self.max_uid.max(hi);
    }

    /// The update-id shift of pass `pass`: the next pass continues the sequence.
    fn update_id_shift(&self, pass: u32) -> u64 {
        if pass == 0 || self.min_uid > self.max_uid {
            return 0;
        }
        u64::from(pass) * (self.max_uid - self.min_uid + 1)
    }

    /// (event-time shift in ms, trade-id shift) of pass `pass`.
    fn shift(&self, pass: u32) -> (i64, i64) {
        if pass == 0 || (self.first > self.last && self.period_ms.is_none()) {
            return (0, 0);
        }
        let period = self
            .period_ms
            .unwrap_or(((self.last - self.first) / 60_000 + 1) * 60_000);
        let ids = (self.max_id - self.min_id + 1).max(0);
        let k = i64::from(pass);
        (k * period, k * ids)
    }
}

/// A bundled file fed to a topic by [`feed_in_background`].
#[derive(Clone, Debug)]
pub struct Feed {
    /// The topic.
    pub topic: String,
    /// The file's name (its format is detected from it and its content).
    pub name: String,
    /// The file's bytes.
    pub bytes: &'static [u8],
    /// Replay speed.
    pub speed: Speed,
    /// Feed it again and again, each pass shifted after the previous one.
    pub repeat: bool,
    /// The event-time shift per pass; `None`: the file's span in whole minutes.
    pub period_ms: Option<i64>,
    /// Only its order-book records (a capture's trades are left out).
    pub book_only: bool,
}

/// Feeds `bytes`, a trades file in any supported format (`name` is its file name, for
/// format detection), into `topic` from a background thread at `speed`, until it ends
/// or `stop` returns true; the outcome is logged. With `repeat` the file is then fed
/// again and again, each pass shifted after the previous one in event time and trade
/// ids (logged as a replay), by `period_ms` when given (files fed side by side stay
/// aligned), else by the file's own span in whole minutes; book records keep their
/// update-id sequence across passes and each replay starts with the file's depth
/// snapshot. Every pass keeps one clock: pass k is due k periods after the first. The
/// live job's embedded default feeds the bundled trades and capture this way.
pub fn feed_in_background(
    settings: &crate::kafka::KafkaSettings,
    feed: Feed,
    stop: impl Fn() -> bool + Send + 'static,
) -> Result<()> {
    let Feed {
        topic,
        name,
        bytes,
        speed,
        repeat,
        period_ms,
        book_only,
    } = feed;
    let dir = tempfile::Builder::new()
        .prefix("marketflow-feed-")
        .tempdir()
        .map_err(|e| ConnectorError::io("a temporary folder", e))?;
    let path = dir.path().join(&name);
    std::fs::write(&path, bytes).map_err(|e| ConnectorError::io(path.display().to_string(), e))?;
    let settings = settings.clone();
    std::thread::Builder::new()
        .name("feed".into())
        .spawn(move || {
            let _dir = dir;
            let result = (|| -> Result<()> {
                let producer = SharedProducer::new(&settings)?;
                let opts = DecodeOptions {
                    kind: Kind::Trades,
                    format: FormatHint::Auto,
                    ..DecodeOptions::default()
                };
                // Measured on the first pass; later passes are shifted by it.
                let mut extent = FeedExtent {
                    period_ms,
                    ..FeedExtent::default()
                };
                let mut pace = Pace::new(speed);
                for pass in 0u32.. {
                    let shift = extent.shift(pass);
                    let ids = extent.update_id_shift(pass);
                    let mut reader =
                        crate::decode::open(&path, &name, &Default::default(), &opts)?;
                    let next = |chunk: &mut Chunk| {
                        let more = reader.read_chunk(8192, chunk)?;
                        for b in chunk.batches.iter_mut() {
                            if book_only {
                                b.trades.clear();
                            }
                            for t in b.trades.iter_mut() {
                                if pass == 0 {
                                    extent.see(t);
                                }
                                t.ts_ms += shift.0;
                                if t.trade_id != operators::NO_TRADE_ID {
                                    t.trade_id += shift.1;
                                }
                            }
                            for r in b.book.iter_mut() {
                                if pass == 0 {
                                    extent.see_book(r);
                                }
                                r.ts_ms += shift.0;
                                shift_update_ids(r, ids, pass);
                            }
                        }
                        Ok(more)
                    };
                    let s = produce_chunks(&producer, &topic, &mut pace, next, &stop)?;
                    tracing::info!(records = s.records, topic = %topic, file = %name, pass, "fed");
                    if !repeat || stop() {
                        return Ok(());
                    }
                    tracing::info!(
                        file = %name,
                        pass = pass + 1,
                        shift_minutes = extent.shift(pass + 1).0 / 60_000,
                        "sample ended: replaying it with event times and trade ids shifted (a replay, not new market data)"
                    );
                }
                Ok(())
            })();
            if let Err(e) = result {
                tracing::error!(error = %e, file = %name, "feeding a file");
            }
        })
        .map_err(|e| ConnectorError::io("the feed thread", e))?;
    Ok(())
}
