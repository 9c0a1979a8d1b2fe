//! The run registry: every backfill's manifest under `<output>/_runs/`, read back,
//! summarised and looked up by id.

use serde::Serialize;

use crate::manifest::Manifest;
use crate::store::Location;
use crate::{ConnectorError, Result};

/// One line of the registry: what a user asks of a run at a glance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// `succeeded` or `failed`.
    pub status: String,
    /// Start time, RFC 3339.
    pub started_at: String,
    /// Seconds from start to the manifest, when both times parse.
    pub duration_s: Option<f64>,
    /// `trades` or `candles`.
    pub kind: String,
    /// Requested range (`--from`, `--to`), epoch ms.
    pub requested: (Option<i64>, Option<i64>),
    /// Least and greatest event time read, epoch ms.
    pub event_range: Option<(i64, i64)>,
    /// Input files.
    pub inputs: usize,
    /// Records accepted.
    pub records: u64,
    /// Feature rows written, over every set.
    pub rows: u64,
    /// Records rejected.
    pub rejects: u64,
    /// Processes x workers.
    pub processes: usize,
    /// Total workers.
    pub workers: usize,
    /// The error of a failed run.
    pub error: Option<String>,
}

impl RunSummary {
    /// The summary of `m`.
    pub fn of(m: &Manifest) -> RunSummary {
        let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
        let duration_s = match (parse(&m.info.started_at), parse(&m.finished_at)) {
            (Some(a), Some(b)) => Some((b - a).num_milliseconds() as f64 / 1e3),
            _ => None,
        };
        RunSummary {
            run_id: m.info.run_id.clone(),
            status: m.status.clone(),
            started_at: m.info.started_at.clone(),
            duration_s,
            kind: m.info.kind.clone(),
            requested: (m.info.from_ms, m.info.to_ms),
            event_range: m.event_range,
            inputs: m.info.inputs.len(),
            records: m.records,
            rows: m.feature_sets.values().map(|s| s.rows).sum(),
            rejects: m.rejects.total,
            processes: m.info.processes,
            workers: m.info.workers,
            error: m.error.clone(),
        }
    }
}

/// Every run's manifest under `output`, oldest first (by start time, then id). A
/// manifest that does not parse is an error naming it.
pub fn list_runs(output: &Location) -> Result<Vec<Manifest>> {
    let mut runs = Vec::new();
    for rel in output.list_files("_runs")? {
        if !rel.ends_with(".json") || rel.trim_start_matches("_runs/").contains('/') {
            continue;
        }
        let Some(bytes) = output.get(&rel)? else {
            continue;
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::format(output.child_url(&rel), e.to_string()))?;
        runs.push(m);
    }
    runs.sort_by(|a, b| {
        (&a.info.started_at, &a.info.run_id).cmp(&(&b.info.started_at, &b.info.run_id))
    });
    Ok(runs)
}

/// The manifest of run `id` under `output`, if there is one.
pub fn find_run(output: &Location, id: &str) -> Result<Option<Manifest>> {
    if id.is_empty() || id.contains('/') || id.starts_with('.') {
        return Ok(None);
    }
    match output.get(&format!("_runs/{id}.json"))? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            ConnectorError::format(output.child_url(&format!("_runs/{id}.json")), e.to_string())
        }),
    }
}
