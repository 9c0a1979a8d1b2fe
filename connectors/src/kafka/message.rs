//! Decoding one Kafka message of a live source into its chunk: accepted records,
//! rejects (malformed, invalid, late), or nothing for records already durable.

use std::sync::atomic::Ordering;
use std::time::Instant;

use operators::{Reject, RejectReason};
use rdkafka::message::{BorrowedMessage, Message};

use crate::decode::{decode_json, decode_keyed_book, seq, Chunk, Kind, Record};
use crate::kafka::source::{KafkaSourceConfig, LiveProgress, PartState};
use crate::kafka::Watermarks;

/// What handling one message needs.
pub(super) struct Ctx<'a> {
    pub(super) config: &'a KafkaSourceConfig,
    pub(super) progress: &'a LiveProgress,
    pub(super) chunk: &'a mut Chunk,
    pub(super) marks: &'a mut Watermarks,
    pub(super) watermark: i64,
    pub(super) now: Instant,
    pub(super) kind: Kind,
}

impl Ctx<'_> {
    /// False for a record outside a replay's range (it still moves the watermark, as
    /// it did in the live job).
    fn in_range(&self, ts: i64) -> bool {
        self.config.replay.as_ref().is_none_or(|r| r.keeps(ts))
    }

    /// Decodes one message of partition `pi` into the chunk: accepted records, rejects
    /// (malformed, invalid, or behind the watermark), or nothing for records whose
    /// outputs were durable before a restart.
    pub(super) fn handle(&mut self, pi: usize, part: &mut PartState, msg: &BorrowedMessage<'_>) {
        let offset = msg.offset();
        part.next = offset + 1;
        self.marks.touch(pi, self.now);
        let payload = msg.payload().unwrap_or(&[]);
        let position = offset.max(0) as u64;
        let s = seq(part.id as u32, position);
        let reject = |reason: RejectReason, detail: String| Reject {
            reason,
            source: part.label.clone(),
            position,
            seq: s,
            detail,
            raw: String::from_utf8_lossy(payload).into_owned(),
        };
        let prefix = &self.config.symbol_prefix;
        let recv_ms = msg.timestamp().to_millis();
        if let Some(decoded) = decode_keyed_book(payload, prefix, recv_ms, msg.key()) {
            match decoded {
                // Book records are never late (the book operator stamps a record behind
                // the watermark at the watermark) nor skipped after a restart (a
                // restored book skips what it applied): the sequence stays whole.
                Ok((symbol, mut rec)) => {
                    self.marks.observe(pi, rec.ts_ms, self.now);
                    if !self.in_range(rec.ts_ms) {
                        return;
                    }
                    part.tracker.push(offset, rec.ts_ms);
                    rec.seq = s;
                    self.chunk.push_book(&symbol, rec);
                }
                Err((reason, detail)) => {
                    self.chunk.push_reject(reject(reason, detail));
                    part.tracker.skip(offset);
                }
            }
            return;
        }
        let records = match decode_json(payload, self.kind, &self.config.symbol_prefix) {
            Ok(r) => r,
            Err((reason, detail)) => {
                self.chunk.push_reject(reject(reason, detail));
                part.tracker.skip(offset);
                return;
            }
        };
        let mut kept = false;
        for (symbol, record) in records {
            let ts = match &record {
                Record::Trade(t) => t.ts_ms,
                Record::Candle(c) => c.ts_ms,
            };
            if self.config.done.done(ts, part.skip_below) {
                self.progress.skipped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if !self.in_range(ts) {
                self.marks.observe(pi, ts, self.now);
                continue;
            }
            // Within the allowed lateness a record restates the bars it falls in.
            let horizon = self.watermark.saturating_sub(self.config.done.lateness_ms);
            if ts < horizon {
                let detail = format!(
                    "event time {ts} is behind the watermark {} minus the allowed lateness",
                    self.watermark
                );
                self.chunk.push_reject(reject(RejectReason::Late, detail));
                continue;
            }
            self.marks.observe(pi, ts, self.now);
            part.tracker.push(offset, ts);
            kept = true;
            match record {
                Record::Trade(mut t) => {
                    t.seq = s;
                    self.chunk.push_trade(&symbol, t);
                }
                Record::Candle(mut c) => {
                    c.seq = s;
                    self.chunk.push_candle(&symbol, c);
                }
            }
        }
        if !kept {
            part.tracker.skip(offset);
        }
    }
}
