//! `marketflow consume`: prints a feature topic as JSON lines or an aligned table.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use connectors::kafka::rdkafka::consumer::Consumer;
use connectors::kafka::rdkafka::message::Message;
use connectors::kafka::rdkafka::{Offset, TopicPartitionList};
use connectors::kafka::topic_partitions;

use crate::cli::{ConsumeArgs, ConsumeFormat};
use crate::config::Validated;

/// How long `--idle-exit` waits for records known to exist before giving up on them.
const UNREAD_LIMIT: Duration = Duration::from_secs(60);

/// Reads `--topic` until `--limit`, `--idle-exit` or Ctrl-C.
pub fn run(args: ConsumeArgs, config: Validated) -> anyhow::Result<()> {
    let settings = super::produce::brokers(&config)?;
    let group = format!("marketflow-consume-{}", std::process::id());
    let consumer = settings.plain_consumer(Some(&group))?;
    let partitions = topic_partitions(&consumer, &args.topic)?;
    let mut tpl = TopicPartitionList::new();
    let start = if args.from_beginning {
        Offset::Beginning
    } else {
        Offset::End
    };
    for p in &partitions {
        tpl.add_partition_offset(&args.topic, *p, start)?;
    }
    consumer.assign(&tpl)?;
    // With `--idle-exit`, idleness counts only once every record present at start is
    // read: a slow broker must not end the read early.
    let mut behind: BTreeMap<i32, i64> = BTreeMap::new();
    if args.idle_exit.is_some() && args.from_beginning {
        for p in &partitions {
            let (low, high) =
                consumer.fetch_watermarks(&args.topic, *p, Duration::from_secs(10))?;
            if high > low {
                behind.insert(*p, high);
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    super::signals::stop_on_signal(move || flag.store(true, Ordering::SeqCst));
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut table = Table::default();
    let mut printed = 0u64;
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) && args.limit.is_none_or(|l| printed < l) {
        if let Some(secs) = args.idle_exit {
            let idle = last.elapsed();
            if behind.is_empty() && idle >= Duration::from_secs_f64(secs) {
                break;
            }
            if !behind.is_empty() && idle >= UNREAD_LIMIT {
                eprintln!(
                    "warning: no record for {} s with partitions {:?} not read to their end",
                    UNREAD_LIMIT.as_secs(),
                    behind.keys().collect::<Vec<_>>()
                );
                break;
            }
        }
        let Some(msg) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let msg = msg?;
        last = Instant::now();
        if behind
            .get(&msg.partition())
            .is_some_and(|high| msg.offset() + 1 >= *high)
        {
            behind.remove(&msg.partition());
        }
        if let Some(symbol) = &args.symbol {
            let key = msg.key().map(String::from_utf8_lossy).unwrap_or_default();
            if key != *symbol && !key.split('|').any(|k| k == symbol) {
                continue;
            }
        }
        let value = String::from_utf8_lossy(msg.payload().unwrap_or(&[])).into_owned();
        match args.format {
            ConsumeFormat::Json => {
                if writeln!(out, "{value}").is_err() {
                    break;
                }
            }
            ConsumeFormat::Table => table.push(&value),
        }
        printed += 1;
    }
    if args.format == ConsumeFormat::Table {
        table.print(&mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Rows collected for `--format table`.
#[derive(Default)]
struct Table {
    columns: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn push(&mut self, value: &str) {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(value)
        else {
            self.rows.push(vec![value.to_string()]);
            return;
        };
        if self.columns.is_empty() {
            self.columns = map.keys().cloned().collect();
        }
        let row = self
            .columns
            .iter()
            .map(|c| match map.get(c) {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
                None => String::new(),
            })
            .collect();
        self.rows.push(row);
    }

    fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.len()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.len());
                }
            }
        }
        let line = |cells: &[String]| -> String {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:>w$}", w = widths.get(i).copied().unwrap_or(0)))
                .collect::<Vec<_>>()
                .join("  ")
        };
        writeln!(out, "{}", line(&self.columns))?;
        for row in &self.rows {
            writeln!(out, "{}", line(row))?;
        }
        Ok(())
    }
}
