//! `promote`: makes a validated staged run's partitions the production ones, one
//! atomic single-object step per partition (see the design in [`crate::jobs`]).

use std::collections::BTreeMap;

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use crate::jobs::journal::sha256_hex;
use crate::jobs::validate::{is_data_file, load_staged, validate, ExpectRows, StagedFile};
use crate::jobs::{PROMOTIONS_DIR, STAGING_DIR, VERSIONS_DIR};
use crate::parquet::PART_FILE;
use crate::store::{join, runtime, Location};
use crate::{ConnectorError, Result};

/// How to promote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromoteOptions {
    /// Also replace partitions holding files promote did not write, in two steps (new
    /// file in, then the others moved to `_versions/`): a reader in between may see both.
    pub allow_non_atomic: bool,
}

/// What promotion did to one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionChange {
    /// The partition did not exist in the lake.
    Added,
    /// The partition's file was replaced (the old one kept in `_versions/`).
    Replaced,
    /// The lake already held these bytes (a promotion redone).
    Unchanged,
}

/// One promoted partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotedPartition {
    /// The production file, relative to the lake's root.
    pub path: String,
    /// The feature set.
    pub set: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// What changed.
    pub change: PartitionChange,
    /// Production files this partition held before, now under `versions`.
    pub superseded: Vec<String>,
}

/// The commit record `_promotions/<run-id>.json`, written last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    /// The promoted run.
    pub run_id: String,
    /// When, RFC 3339.
    pub promoted_at: String,
    /// Where the superseded files are kept until `gc`, relative to the lake's root.
    pub versions: String,
    /// Rows per set of the run.
    pub rows: BTreeMap<String, u64>,
    /// Every partition of the run.
    pub partitions: Vec<PromotedPartition>,
}

/// The promotion record of `run_id`, if it was promoted.
pub fn read_promotion(output: &Location, run_id: &str) -> Result<Option<Promotion>> {
    let rel = format!("{PROMOTIONS_DIR}/{run_id}.json");
    match output.get(&rel)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ConnectorError::format(output.child_url(&rel), e.to_string())),
    }
}

/// Every promotion record of the lake.
pub fn list_promotions(output: &Location) -> Result<Vec<Promotion>> {
    let mut out = Vec::new();
    for rel in output.list_files(PROMOTIONS_DIR)? {
        let Some(id) = rel
            .strip_prefix(&format!("{PROMOTIONS_DIR}/"))
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        if let Some(p) = read_promotion(output, id)? {
            out.push(p);
        }
    }
    Ok(out)
}

impl Location {
    /// Copies `from` to `to` (both below this location) so that `to` changes in one
    /// step: a server-side copy on an object store (a single PUT of the whole object),
    /// a copy to a hidden file then a rename locally (fsynced).
    pub fn copy_atomic(&self, from: &str, to: &str) -> Result<()> {
        match self {
            Location::Local(dir) => {
                let (src, dst) = (dir.join(from), dir.join(to));
                let parent = dst.parent().unwrap_or(dir).to_path_buf();
                let name = dst.file_name().and_then(|n| n.to_str()).unwrap_or("part");
                let tmp = parent.join(format!(".{name}.promote-{}", std::process::id()));
                let run = || -> std::io::Result<()> {
                    std::fs::create_dir_all(&parent)?;
                    std::fs::copy(&src, &tmp)?;
                    std::fs::File::open(&tmp)?.sync_all()?;
                    std::fs::rename(&tmp, &dst)?;
                    std::fs::File::open(&parent)?.sync_all()
                };
                run().map_err(|e| {
                    let _ = std::fs::remove_file(&tmp);
                    ConnectorError::io(dst.display().to_string(), e)
                })
            }
            Location::Remote { store, prefix, .. } => {
                let (src, dst) = (join(prefix, from), join(prefix, to));
                runtime()
                    .block_on(store.copy(&src, &dst))
                    .map_err(|source| ConnectorError::Store {
                        path: dst.to_string(),
                        source,
                    })
            }
        }
    }
}

/// The production files of partition `dir` (data files only).
fn production_files(output: &Location, dir: &str) -> Result<Vec<String>> {
    Ok(output
        .list_files(dir)?
        .into_iter()
        .filter(|p| is_data_file(p) && p.rsplit_once('/').map(|(d, _)| d) == Some(dir))
        .collect())
}

/// Validates staged run `run_id` of `output` and promotes it; returns the commit record
/// (also written to `_promotions/<run-id>.json`). A refusal changes nothing.
pub fn promote(
    output: &Location,
    run_id: &str,
    expect: &[ExpectRows],
    options: PromoteOptions,
) -> Result<Promotion> {
    let staged = load_staged(output, run_id)?;
    let files = validate(&staged, expect)?;
    // Plan every partition before changing anything.
    let mut by_dir: BTreeMap<String, Vec<&StagedFile>> = BTreeMap::new();
    for f in &files {
        let dir = f.path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
        by_dir.entry(dir).or_default().push(f);
    }
    let mut problems = Vec::new();
    let mut plan = Vec::new();
    for (dir, staged_files) in &by_dir {
        if staged_files.len() > 1 {
            problems.push(format!(
                "{dir}: the staged run wrote {} files in this partition; promote needs one",
                staged_files.len()
            ));
            continue;
        }
        let prod = production_files(output, dir)?;
        let target = format!("{dir}/{PART_FILE}");
        let others: Vec<String> = prod.iter().filter(|p| **p != target).cloned().collect();
        if !others.is_empty() && !options.allow_non_atomic {
            problems.push(format!(
                "{dir}: holds files promote did not write ({}); it cannot be replaced in one atomic step (pass --allow-non-atomic to replace it anyway)",
                others
                    .iter()
                    .map(|p| p.rsplit('/').next().unwrap_or(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        plan.push((
            staged_files[0],
            target,
            prod.contains(&format!("{dir}/{PART_FILE}")),
            others,
        ));
    }
    if !problems.is_empty() {
        return Err(ConnectorError::Refused {
            what: format!("promotion of run {run_id} refused"),
            reasons: problems,
        });
    }
    let now = chrono::Utc::now();
    let versions = format!(
        "{VERSIONS_DIR}/{}-{run_id}",
        now.format("%Y%m%dT%H%M%S%3fZ")
    );
    let staging = format!("{STAGING_DIR}/{run_id}");
    let mut partitions = Vec::new();
    for (file, target, exists, others) in plan {
        let mut change = if exists || !others.is_empty() {
            PartitionChange::Replaced
        } else {
            PartitionChange::Added
        };
        let mut superseded = Vec::new();
        let same = exists
            && output
                .get(&target)?
                .is_some_and(|b| sha256_hex(&b) == file.sha256);
        if same && others.is_empty() {
            change = PartitionChange::Unchanged;
        } else {
            if exists && !same {
                output.copy_atomic(&target, &format!("{versions}/{target}"))?;
                superseded.push(target.clone());
            }
            output.copy_atomic(&format!("{staging}/{}", file.path), &target)?;
            for other in &others {
                output.copy_atomic(other, &format!("{versions}/{other}"))?;
                output.delete(other)?;
                superseded.push(other.clone());
            }
        }
        tracing::debug!(partition = %target, change = ?change, "partition promoted");
        partitions.push(PromotedPartition {
            path: target,
            set: file.set.clone(),
            rows: file.rows,
            bytes: file.bytes,
            sha256: file.sha256.clone(),
            change,
            superseded,
        });
    }
    let promotion = Promotion {
        run_id: run_id.to_string(),
        promoted_at: now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        versions,
        rows: staged
            .manifest
            .feature_sets
            .iter()
            .map(|(s, sum)| (s.clone(), sum.rows))
            .collect(),
        partitions,
    };
    let mut bytes = serde_json::to_vec_pretty(&promotion).unwrap_or_default();
    bytes.push(b'\n');
    output.put(&format!("{PROMOTIONS_DIR}/{run_id}.json"), bytes)?;
    Ok(promotion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::journal::tests::part;
    use crate::jobs::staging_root;
    use crate::manifest::{Manifest, RunEvent, RunInfo};

    const HOUR: &str = "bars/resolution=1s/dt=2024-08-08/hour=23";
    const DAY: &str = "bars/resolution=1m/dt=2024-08-08/hour=__HIVE_DEFAULT_PARTITION__";

    fn stage(lake: &Location, id: &str, files: &[(&str, &[u8])]) {
        let root = staging_root(lake, id);
        let mut events = Vec::new();
        for (path, bytes) in files {
            root.put(path, bytes.to_vec()).unwrap();
            events.push(RunEvent::Partition(part(path, bytes)));
        }
        let info = RunInfo {
            run_id: id.into(),
            kind: "trades".into(),
            inputs: vec![],
            from_ms: None,
            to_ms: None,
            resolutions: vec!["1s".into(), "1m".into()],
            workers: 1,
            processes: 1,
            started_at: "2026-01-01T00:00:00Z".into(),
            feature_sets: vec!["bars".into()],
        };
        Manifest::build(info, &events, None).write(&root).unwrap();
    }

    #[test]
    fn an_object_store_lake_is_promoted_by_copies_over_one_name() {
        let lake = Location::parse("memory:///lake").unwrap();
        let (hour, day) = (
            format!("{HOUR}/{PART_FILE}"),
            format!("{DAY}/part-a-b.parquet"),
        );
        stage(&lake, "r", &[(&hour, b"one"), (&day, b"two")]);
        lake.put(&hour, b"old".to_vec()).unwrap();
        let p = promote(&lake, "r", &[], PromoteOptions::default()).unwrap();
        let changes: Vec<_> = p.partitions.iter().map(|x| x.change).collect();
        assert_eq!(changes, [PartitionChange::Added, PartitionChange::Replaced]);
        assert_eq!(lake.get(&hour).unwrap().unwrap(), b"one");
        assert_eq!(
            lake.get(&format!("{DAY}/{PART_FILE}")).unwrap().unwrap(),
            b"two"
        );
        let kept = format!("{}/{hour}", p.versions);
        assert_eq!(lake.get(&kept).unwrap().unwrap(), b"old");
        assert!(read_promotion(&lake, "r").unwrap().is_some());
        let again = promote(&lake, "r", &[], PromoteOptions::default()).unwrap();
        assert!(again
            .partitions
            .iter()
            .all(|x| x.change == PartitionChange::Unchanged));

        // Tampered, expected rows wrong, unknown: refused, nothing changes.
        staging_root(&lake, "r")
            .put(&hour, b"eno".to_vec())
            .unwrap();
        let e = promote(&lake, "r", &[], PromoteOptions::default()).unwrap_err();
        assert!(e.to_string().contains("checksum differs"), "{e}");
        let expect = ["bars=3".parse().unwrap()];
        let e = promote(&lake, "r", &expect, PromoteOptions::default()).unwrap_err();
        assert!(e.to_string().contains("set bars has 2 rows"), "{e}");
        assert!(matches!(
            promote(&lake, "nope", &[], PromoteOptions::default()),
            Err(ConnectorError::UnknownRun(_))
        ));
        assert_eq!(lake.get(&hour).unwrap().unwrap(), b"one");

        // A partition with a file promote did not write is not swapped in one step.
        stage(&lake, "s", &[(&hour, b"six")]);
        lake.put(&format!("{HOUR}/part-x.parquet"), b"x".to_vec())
            .unwrap();
        let e = promote(&lake, "s", &[], PromoteOptions::default()).unwrap_err();
        assert!(e.to_string().contains("--allow-non-atomic"), "{e}");
        let options = PromoteOptions {
            allow_non_atomic: true,
        };
        promote(&lake, "s", &[], options).unwrap();
        assert_eq!(production_files(&lake, HOUR).unwrap(), [hour]);
    }
}
