//! The run registry: every backfill's manifest under `<output>/_runs/` and every staged
//! run's under `<output>/_staging/<run-id>/_runs/`, read back, summarised (with whether
//! a staged run was promoted) and looked up by id.

use serde::Serialize;

use crate::jobs::promote::read_promotion;
use crate::jobs::{staging_root, STAGING_DIR};
use crate::manifest::Manifest;
use crate::store::Location;
use crate::{ConnectorError, Result};

/// Where a run's output went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStage {
    /// Written straight to the lake.
    Direct,
    /// Written under `_staging/<run-id>/`, not promoted (yet).
    Staged,
    /// Staged, then promoted.
    Promoted,
}

impl RunStage {
    /// The lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            RunStage::Direct => "direct",
            RunStage::Staged => "staged",
            RunStage::Promoted => "promoted",
        }
    }
}

/// A run's manifest and where its output went.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The manifest.
    pub manifest: Manifest,
    /// Direct, staged or promoted.
    pub stage: RunStage,
    /// When it was promoted, RFC 3339.
    pub promoted_at: Option<String>,
}

/// One line of the registry: what a user asks of a run at a glance.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// `direct`, `staged` or `promoted`.
    pub stage: RunStage,
    /// When a staged run was promoted, RFC 3339.
    pub promoted_at: Option<String>,
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
    /// The summary of `r`.
    pub fn of(r: &RunRecord) -> RunSummary {
        let m = &r.manifest;
        let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).ok();
        let duration_s = match (parse(&m.info.started_at), parse(&m.finished_at)) {
            (Some(a), Some(b)) => Some((b - a).num_milliseconds() as f64 / 1e3),
            _ => None,
        };
        RunSummary {
            run_id: m.info.run_id.clone(),
            stage: r.stage,
            promoted_at: r.promoted_at.clone(),
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

/// The manifests directly under `<root>/_runs/`.
fn manifests_in(root: &Location) -> Result<Vec<Manifest>> {
    let mut runs = Vec::new();
    for rel in root.list_files("_runs")? {
        if !rel.ends_with(".json") || rel.trim_start_matches("_runs/").contains('/') {
            continue;
        }
        let Some(bytes) = root.get(&rel)? else {
            continue;
        };
        let m: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::format(root.child_url(&rel), e.to_string()))?;
        runs.push(m);
    }
    Ok(runs)
}

fn staged_record(output: &Location, manifest: Manifest) -> Result<RunRecord> {
    let promotion = read_promotion(output, &manifest.info.run_id)?;
    Ok(RunRecord {
        manifest,
        stage: if promotion.is_some() {
            RunStage::Promoted
        } else {
            RunStage::Staged
        },
        promoted_at: promotion.map(|p| p.promoted_at),
    })
}

/// Every run under `output`, direct and staged, oldest first (by start time, then
/// id). A manifest that does not parse is an error naming it.
pub fn list_runs(output: &Location) -> Result<Vec<RunRecord>> {
    let mut runs: Vec<RunRecord> = manifests_in(output)?
        .into_iter()
        .map(|manifest| RunRecord {
            manifest,
            stage: RunStage::Direct,
            promoted_at: None,
        })
        .collect();
    let mut staged_ids: Vec<String> = output
        .list_files(STAGING_DIR)?
        .iter()
        .filter_map(|f| f.strip_prefix(&format!("{STAGING_DIR}/")))
        .filter_map(|r| r.split_once("/_runs/").map(|(id, _)| id.to_string()))
        .collect();
    staged_ids.dedup();
    for id in staged_ids {
        for m in manifests_in(&staging_root(output, &id))? {
            runs.push(staged_record(output, m)?);
        }
    }
    runs.sort_by(|a, b| {
        let key = |r: &RunRecord| {
            (
                r.manifest.info.started_at.clone(),
                r.manifest.info.run_id.clone(),
            )
        };
        key(a).cmp(&key(b))
    });
    Ok(runs)
}

/// The run `id` under `output` (direct or staged), if there is one.
pub fn find_run(output: &Location, id: &str) -> Result<Option<RunRecord>> {
    if !crate::jobs::valid_run_id(id) {
        return Ok(None);
    }
    let rel = format!("_runs/{id}.json");
    let parse = |root: &Location, bytes: Vec<u8>| -> Result<Manifest> {
        serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::format(root.child_url(&rel), e.to_string()))
    };
    if let Some(bytes) = output.get(&rel)? {
        return Ok(Some(RunRecord {
            manifest: parse(output, bytes)?,
            stage: RunStage::Direct,
            promoted_at: None,
        }));
    }
    let staging = staging_root(output, id);
    match staging.get(&rel)? {
        Some(bytes) => Ok(Some(staged_record(output, parse(&staging, bytes)?)?)),
        None => Ok(None),
    }
}
