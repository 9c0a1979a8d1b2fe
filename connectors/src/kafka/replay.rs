//! Reprocessing a time range from Kafka (`run --from TIME [--to TIME]`): where each
//! partition's re-read starts (offsets for times, with the broker's answer checked),
//! which records the range keeps and when a partition's part of the range is read.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{KafkaSettings, METADATA_TIMEOUT};
use crate::{ConnectorError, Result};

/// How long reading the one record that checks a broker's answer may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bounded re-read of a source's topic: records with `from_ms <= ts < to_ms` go
/// through the graph again; the job ends when every partition has passed the range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The first event time kept, epoch ms.
    pub from_ms: i64,
    /// The end of the range (exclusive), epoch ms; `None`: to the end of the topic.
    pub to_ms: Option<i64>,
    /// The offset each partition starts from.
    pub starts: HashMap<i32, i64>,
    /// The consumer group the re-read uses (never committed to, so the live job's
    /// group is left alone).
    pub group: String,
}

impl Replay {
    /// True when a record at event time `ts` is in the range.
    ///
    /// ```
    /// use connectors::kafka::Replay;
    /// let r = Replay { from_ms: 10, to_ms: Some(20), starts: Default::default(), group: "g".into() };
    /// assert!(!r.keeps(9) && r.keeps(10) && r.keeps(19) && !r.keeps(20));
    /// ```
    pub fn keeps(&self, ts: i64) -> bool {
        ts >= self.from_ms && self.to_ms.is_none_or(|to| ts < to)
    }

    /// True when a source whose watermark is `watermark` can accept no more record of
    /// the range: anything before `to_ms` would now be behind the watermark minus the
    /// allowed lateness, so the live job would reject it as late.
    ///
    /// ```
    /// use connectors::kafka::Replay;
    /// let r = Replay { from_ms: 0, to_ms: Some(1_000), starts: Default::default(), group: "g".into() };
    /// assert!(!r.passed(1_499, 500) && r.passed(1_500, 500));
    /// ```
    pub fn passed(&self, watermark: i64, lateness_ms: i64) -> bool {
        self.to_ms
            .is_some_and(|to| watermark >= to.saturating_add(lateness_ms))
    }
}

/// The broker's answer to "the first offset at or after a time" for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// This offset.
    At(i64),
    /// No record at or after the time: the end of the partition.
    End,
}

/// Checks a broker's answer for one partition whose records run from offset `low` to
/// `high` (exclusive): the record just before the answer must be older than `target`
/// (else the broker skipped records of the range). `timestamp_at(o)` reads the
/// timestamp of the record at offset `o`. Returns the offset to start from.
///
/// ```
/// use connectors::kafka::{check_answer, Answer};
/// // Records 0..10 stamped 0, 100, ..., 900.
/// let ts = |o: i64| Ok(Some(o * 100));
/// assert_eq!(check_answer(450, Answer::At(5), (0, 10), ts).unwrap(), 5);
/// assert_eq!(check_answer(450, Answer::At(0), (0, 10), ts).unwrap(), 0); // early: fine
/// assert!(check_answer(450, Answer::At(7), (0, 10), ts).is_err()); // record 6 is in range
/// assert!(check_answer(450, Answer::End, (0, 10), ts).is_err());
/// assert_eq!(check_answer(950, Answer::End, (0, 10), ts).unwrap(), 10);
/// ```
pub fn check_answer(
    target: i64,
    answer: Answer,
    (low, high): (i64, i64),
    timestamp_at: impl Fn(i64) -> Result<Option<i64>>,
) -> std::result::Result<i64, String> {
    let start = match answer {
        Answer::At(o) => o,
        Answer::End => high,
    };
    if start <= low {
        return Ok(start.max(low));
    }
    match timestamp_at(start - 1) {
        Ok(Some(ts)) if ts < target => Ok(start),
        Ok(Some(ts)) => Err(format!(
            "it answered offset {} ({answer:?}), but the record at offset {} before it has timestamp {ts}, not before {target}",
            start,
            start - 1
        )),
        Ok(None) => Err(format!(
            "it answered offset {start} ({answer:?}), but the record at offset {} before it could not be read to check the answer",
            start - 1
        )),
        Err(e) => Err(format!("checking its answer: {e}")),
    }
}

/// Finds, for every partition of `topic`, the first offset whose record timestamp is
/// at or after `at_ms` (Kafka's offsets for times) and checks each answer with
/// [`check_answer`]. A broker that cannot answer, or answers past records of the
/// range, is an error naming the topic, the partition and the answer.
pub fn rewind(
    settings: &KafkaSettings,
    topic: &str,
    partitions: &[i32],
    at_ms: i64,
) -> Result<HashMap<i32, i64>> {
    let consumer = settings.plain_consumer(Some("marketflow-rewind"))?;
    let mut query = TopicPartitionList::new();
    for p in partitions {
        query
            .add_partition_offset(topic, *p, Offset::Offset(at_ms))
            .map_err(|e| ConnectorError::Kafka(e.to_string()))?;
    }
    let cannot = |p: Option<i32>, why: String| {
        let part = p.map_or(String::new(), |p| format!(" partition {p}"));
        ConnectorError::Kafka(format!(
            "the brokers cannot answer where topic {topic}{part} reaches time {at_ms} (offsets for times, ListOffsets by timestamp): {why}; without that answer no Kafka reprocess can start there (backfill from files instead)"
        ))
    };
    let answers = consumer
        .offsets_for_times(query, METADATA_TIMEOUT)
        .map_err(|e| cannot(None, e.to_string()))?;
    let mut starts = HashMap::new();
    for e in answers.elements() {
        let p = e.partition();
        let answer = match e.offset() {
            Offset::Offset(o) => Answer::At(o),
            Offset::End => Answer::End,
            other => return Err(cannot(Some(p), format!("it answered {other:?}"))),
        };
        if let Err(err) = e.error() {
            return Err(cannot(Some(p), err.to_string()));
        }
        let bounds = consumer
            .fetch_watermarks(topic, p, METADATA_TIMEOUT)
            .map_err(|e| cannot(Some(p), format!("reading its offsets: {e}")))?;
        let start = check_answer(at_ms, answer, bounds, |o| {
            timestamp_at(&consumer, topic, p, o)
        })
        .map_err(|why| cannot(Some(p), why))?;
        tracing::info!(topic, partition = p, at_ms, answer = ?answer, start, low = bounds.0, high = bounds.1, "partition rewound");
        starts.insert(p, start);
    }
    Ok(starts)
}

/// The timestamp of the record at `offset` of a partition, read with `consumer`
/// (assigned to that offset alone); `None` when nothing comes back in time (a
/// compacted or deleted offset).
fn timestamp_at(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
        .map_err(|e| ConnectorError::Kafka(e.to_string()))?;
    consumer
        .assign(&tpl)
        .map_err(|e| ConnectorError::Kafka(format!("assigning {topic}/{partition}: {e}")))?;
    let deadline = std::time::Instant::now() + PROBE_TIMEOUT;
    while std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.partition() == partition && m.offset() >= offset => {
                return Ok((m.offset() == offset)
                    .then(|| m.timestamp().to_millis())
                    .flatten());
            }
            Some(Err(e)) => return Err(ConnectorError::Kafka(e.to_string())),
            _ => {}
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    #[test]
    fn an_answer_past_records_of_the_range_is_refused() {
        let ts = |o: i64| Ok(Some([0, 0, 5, 5, 9][o as usize]));
        // Equal timestamps: the first of them is the start.
        assert_eq!(check_answer(5, Answer::At(2), (0, 5), ts), Ok(2));
        assert!(check_answer(5, Answer::At(3), (0, 5), ts).is_err());
        // An empty partition, or one whose records all came before the time.
        assert_eq!(check_answer(5, Answer::End, (3, 3), ts), Ok(3));
        let none = |_| Ok(None);
        assert!(check_answer(5, Answer::At(4), (0, 5), none).is_err());
    }

    /// librdkafka's mock broker answers "end of partition" for every time: the rewind
    /// says it cannot start there instead of reading nothing.
    #[test]
    fn a_broker_that_cannot_answer_offsets_for_times_is_named() {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("raw", 1, 1).unwrap();
        let settings = KafkaSettings::new(&cluster.bootstrap_servers());
        let producer: BaseProducer = settings.client_config().create().unwrap();
        for i in 0..10i64 {
            producer
                .send(
                    BaseRecord::to("raw")
                        .partition(0)
                        .payload("x")
                        .key("k")
                        .timestamp(1_000 + i * 100),
                )
                .unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();
        let err = rewind(&settings, "raw", &[0], 1_450)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot answer where topic raw partition 0 reaches time 1450"),
            "{err}"
        );
        assert!(err.contains("timestamp 1900"), "{err}");
        // After every record, "the end" is the right answer.
        let starts = rewind(&settings, "raw", &[0], 5_000).unwrap();
        assert_eq!(starts[&0], 10);
    }
}
