//! Consumer lag of a source's partitions: a thread of its own asks the brokers for the
//! high watermarks, so the worker never waits on a broker round trip for the progress
//! line.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use crate::kafka::source::PartState;
use crate::kafka::watermark::Watermarks;
use crate::kafka::{KafkaSettings, LiveProgress, PartitionLag};

/// How often the high watermarks are asked for.
const LAG_INTERVAL: Duration = Duration::from_secs(5);
/// How long one partition's high watermark may take.
const FETCH_TIMEOUT: Duration = Duration::from_millis(500);

/// Asks the brokers for the high watermarks of some partitions every [`LAG_INTERVAL`]
/// and stores them in [`LiveProgress::lag`] (the source stores the next offsets). Stops
/// when dropped or when the job stops.
pub(crate) struct LagWatcher {
    stop: Arc<AtomicBool>,
}

impl LagWatcher {
    /// Starts watching `parts` (partition id and `topic/partition` label) of `topic`.
    pub(crate) fn spawn(
        settings: &KafkaSettings,
        topic: &str,
        parts: Vec<(i32, String)>,
        progress: Arc<LiveProgress>,
    ) -> LagWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let (settings, topic, done) = (settings.clone(), topic.to_string(), stop.clone());
        let spawned = std::thread::Builder::new()
            .name("marketflow-lag".into())
            .spawn(move || {
                let consumer = match settings.plain_consumer(None) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(topic = %topic, error = %e, "lag consumer");
                        return;
                    }
                };
                let stopped =
                    || done.load(Ordering::Relaxed) || progress.stop.load(Ordering::Relaxed);
                while !stopped() {
                    let started = Instant::now();
                    for (id, label) in &parts {
                        let (low, high) = consumer
                            .fetch_watermarks(&topic, *id, FETCH_TIMEOUT)
                            .unwrap_or((-1, -1));
                        let mut lag = progress.lag.lock().unwrap_or_else(|p| p.into_inner());
                        let entry = lag.entry(label.clone()).or_default();
                        (entry.low, entry.high) = (low, high);
                    }
                    while !stopped() && started.elapsed() < LAG_INTERVAL {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "lag thread");
        }
        LagWatcher { stop }
    }

    /// Stores the next offset this job reads from partition `label`.
    pub(crate) fn next(progress: &LiveProgress, label: &str, next: i64) {
        let mut lag = progress.lag.lock().unwrap_or_else(|p| p.into_inner());
        match lag.get_mut(label) {
            Some(l) => l.next = next,
            None => {
                let lag_of = PartitionLag {
                    next,
                    high: -1,
                    low: -1,
                };
                lag.insert(label.to_string(), lag_of);
            }
        }
    }

    /// Keeps every partition of `parts` with records known to be unread (by the last
    /// high watermark asked for) from counting as idle at `now`.
    pub(crate) fn keep_unread_active(
        progress: &LiveProgress,
        parts: &[PartState],
        marks: &mut Watermarks,
        now: Instant,
    ) {
        let lag = progress.lag.lock().unwrap_or_else(|p| p.into_inner());
        for (i, p) in parts.iter().enumerate() {
            let known = lag.get(&p.label).copied().unwrap_or_default();
            let waiting = PartitionLag {
                next: p.next,
                ..known
            };
            if waiting.unread() {
                marks.touch(i, now);
            }
        }
    }
}

impl Drop for LagWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
