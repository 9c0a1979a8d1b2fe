//! Validation of a staged run before its promotion: the manifest says `succeeded`,
//! every file it lists is present with its size and checksum, no other file lies in
//! a set's directory, each set's checksum matches, and the expected row counts hold.

use std::collections::BTreeMap;
use std::str::FromStr;

use crate::jobs::journal::sha256_hex;
use crate::jobs::{staging_root, valid_run_id};
use crate::manifest::{set_checksum, Manifest};
use crate::store::Location;
use crate::{ConnectorError, Result};

/// `--expect-rows SET=N`: the rows a set of the staged run must hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectRows {
    /// The feature set.
    pub set: String,
    /// Its row count.
    pub rows: u64,
}

impl FromStr for ExpectRows {
    type Err = String;

    /// ```
    /// use connectors::jobs::validate::ExpectRows;
    /// let e: ExpectRows = "bars=120".parse().unwrap();
    /// assert_eq!((e.set.as_str(), e.rows), ("bars", 120));
    /// assert!("bars".parse::<ExpectRows>().is_err());
    /// ```
    fn from_str(s: &str) -> std::result::Result<ExpectRows, String> {
        let (set, n) = s
            .split_once('=')
            .ok_or_else(|| format!("`{s}` is not SET=N (e.g. bars=1200)"))?;
        let rows = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` in `{s}` is not a row count"))?;
        Ok(ExpectRows {
            set: set.trim().to_string(),
            rows,
        })
    }
}

/// A staged run: its manifest and the root it was written to.
#[derive(Clone, Debug)]
pub struct StagedRun {
    /// The manifest `_staging/<run-id>/_runs/<run-id>.json`.
    pub manifest: Manifest,
    /// `<output>/_staging/<run-id>/`.
    pub root: Location,
}

/// A validated file of a staged run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedFile {
    /// The feature set.
    pub set: String,
    /// Path relative to the staging root (and, once promoted, to the lake's root).
    pub path: String,
    /// Rows.
    pub rows: u64,
    /// Bytes.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The staged run `run_id` of the lake `output`; an unknown id is
/// [`ConnectorError::UnknownRun`], naming a run of that id written straight to the lake.
pub fn load_staged(output: &Location, run_id: &str) -> Result<StagedRun> {
    let unknown = |why: String| Err(ConnectorError::UnknownRun(why));
    if !valid_run_id(run_id) {
        return unknown(format!("`{run_id}` is not a run id"));
    }
    let root = staging_root(output, run_id);
    let rel = format!("_runs/{run_id}.json");
    let Some(bytes) = root.get(&rel)? else {
        if output.get(&rel)?.is_some() {
            return unknown(format!(
                "run {run_id} was not staged: it was written straight to the lake (backfill without --stage)"
            ));
        }
        return unknown(format!(
            "no staged run {run_id} under {} (stage one with `backfill ... --stage --run-id {run_id}`)",
            output.child_url(&format!("{}/", super::STAGING_DIR))
        ));
    };
    let manifest = serde_json::from_slice(&bytes)
        .map_err(|e| ConnectorError::format(root.child_url(&rel), e.to_string()))?;
    Ok(StagedRun { manifest, root })
}

/// True for a lake data file: a Parquet file with no hidden path segment.
pub fn is_data_file(path: &str) -> bool {
    path.ends_with(".parquet")
        && !path
            .split('/')
            .any(|seg| seg.starts_with('.') || seg.starts_with('_'))
}

/// Checks `run` file by file; returns its files, or [`ConnectorError::Refused`] with
/// every problem found.
pub fn validate(run: &StagedRun, expect: &[ExpectRows]) -> Result<Vec<StagedFile>> {
    let m = &run.manifest;
    let mut problems = Vec::new();
    if m.status != "succeeded" {
        problems.push(format!(
            "the run did not succeed (status {}{}); resume it with `backfill ... --resume {}`",
            m.status,
            m.error.as_ref().map_or(String::new(), |e| format!(": {e}")),
            m.info.run_id
        ));
    }
    let mut files = Vec::new();
    for (set, sum) in &m.feature_sets {
        let listed: BTreeMap<&str, _> = sum.files.iter().map(|f| (f.path.as_str(), f)).collect();
        let mut found = Vec::new();
        for path in run.root.list_files(set)? {
            if !is_data_file(&path) {
                continue;
            }
            let bytes = run.root.get(&path)?.unwrap_or_default();
            let sha = sha256_hex(&bytes);
            match listed.get(path.as_str()) {
                None if !sum.files.is_empty() || sum.partitions == 0 => {
                    problems.push(format!("{path}: not in the run's manifest"))
                }
                Some(f) if f.bytes != bytes.len() as u64 => problems.push(format!(
                    "{path}: {} bytes, the manifest says {}",
                    bytes.len(),
                    f.bytes
                )),
                Some(f) if f.sha256 != sha => {
                    problems.push(format!("{path}: checksum differs from the manifest's"))
                }
                _ => {}
            }
            found.push((path, sha, bytes.len() as u64));
        }
        for f in &sum.files {
            if !found.iter().any(|(p, _, _)| *p == f.path) {
                problems.push(format!("{}: missing", f.path));
            }
        }
        let mut pairs: Vec<(String, String)> = found
            .iter()
            .map(|(p, s, _)| (p.clone(), s.clone()))
            .collect();
        if set_checksum(&mut pairs) != sum.checksum {
            problems.push(format!("set {set}: checksum differs from the manifest's"));
        }
        for (path, sha, bytes) in found {
            let rows = listed.get(path.as_str()).map_or(0, |f| f.rows);
            files.push(StagedFile {
                set: set.clone(),
                path,
                rows,
                bytes,
                sha256: sha,
            });
        }
    }
    for e in expect {
        match m.feature_sets.get(&e.set) {
            None => problems.push(format!(
                "--expect-rows {}={}: the run has no set {} (sets: {})",
                e.set,
                e.rows,
                e.set,
                m.feature_sets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some(s) if s.rows != e.rows => problems.push(format!(
                "set {} has {} rows, --expect-rows says {}",
                e.set, s.rows, e.rows
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        problems.dedup();
        Err(ConnectorError::Refused {
            what: format!("promotion of run {} refused", m.info.run_id),
            reasons: problems,
        })
    }
}
