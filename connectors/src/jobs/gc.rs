//! `gc`: deletes what promotions left behind once they are old enough: the superseded
//! production files under `_versions/` and the promoted runs' staged data (their
//! manifests and journals stay, so the registry still lists them).

use serde::Serialize;

use crate::jobs::promote::list_promotions;
use crate::jobs::STAGING_DIR;
use crate::store::Location;
use crate::Result;

/// What `gc` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Runs whose promotion was old enough.
    pub runs: Vec<String>,
    /// Files deleted.
    pub files: usize,
    /// Promotions kept (younger than the cut-off).
    pub kept: usize,
}

/// Deletes the leftovers of every promotion made more than `older_than_ms` before
/// `now_ms` (epoch ms).
pub fn gc(output: &Location, older_than_ms: i64, now_ms: i64) -> Result<GcReport> {
    let mut report = GcReport::default();
    for p in list_promotions(output)? {
        let at = chrono::DateTime::parse_from_rfc3339(&p.promoted_at)
            .map(|t| t.timestamp_millis())
            .unwrap_or(i64::MAX);
        if now_ms.saturating_sub(at) < older_than_ms {
            report.kept += 1;
            continue;
        }
        let mut doomed = output.list_files(&p.versions)?;
        output.remove_all(&p.versions)?;
        let staging = format!("{STAGING_DIR}/{}", p.run_id);
        let staged = output.list_files(&staging)?;
        let mut tops: Vec<String> = staged
            .iter()
            .filter_map(|f| f.strip_prefix(&format!("{staging}/")))
            .filter_map(|r| r.split('/').next())
            .filter(|top| *top != "_runs" && *top != "_journal")
            .map(|top| format!("{staging}/{top}"))
            .collect();
        tops.dedup();
        for top in tops {
            doomed.extend(output.list_files(&top)?);
            output.remove_all(&top)?;
        }
        tracing::info!(run_id = %p.run_id, files = doomed.len(), "promotion leftovers deleted");
        report.files += doomed.len();
        report.runs.push(p.run_id);
    }
    Ok(report)
}
