//! The run journal under `_journal/<run-id>/`: `run.json`, what the run computes (written
//! when it starts), and `parts-<attempt>-<seq>.json`, batches of the partition files
//! it made visible, written by worker 0 as they arrive. A resumed run reads it back,
//! keeps the files whose size and SHA-256 still match, and skips writing them.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::StreamVec;

use crate::manifest::RunInfo;
use crate::parquet::{hex_digest, PartitionWritten};
use crate::store::Location;
use crate::sync::ErrorSlot;
use crate::{ConnectorError, Result};

/// What a run computes, recorded at its start so that a resume can check it is given
/// the same work.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunStart {
    /// Run facts (inputs, range, kind, resolutions).
    #[serde(flatten)]
    pub info: RunInfo,
    /// The feature sets computed.
    pub sets: Vec<String>,
    /// True for a staged run (`--stage`).
    pub staged: bool,
    /// A hash of everything that decides the output (inputs, range, settings).
    pub fingerprint: String,
}

/// The journal directory of `run_id`, relative to the run's output root.
pub fn journal_dir(run_id: &str) -> String {
    format!("_journal/{run_id}")
}

/// Starts the journal of a fresh run: drops any journal left by an earlier run of the
/// same id and records `start`.
pub fn begin(output: &Location, start: &RunStart) -> Result<()> {
    let dir = journal_dir(&start.info.run_id);
    output.remove_all(&dir)?;
    write_start(output, start)
}

/// Records `start` (a resumed run keeps the parts already journaled).
pub fn write_start(output: &Location, start: &RunStart) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(start).unwrap_or_default();
    bytes.push(b'\n');
    output.put(
        &format!("{}/run.json", journal_dir(&start.info.run_id)),
        bytes,
    )
}

/// Drops the part records of a run that succeeded (its manifest lists its files; a
/// succeeded run is not resumed), keeping `run.json`.
pub fn finish(output: &Location, run_id: &str) -> Result<()> {
    for rel in output.list_files(&journal_dir(run_id))? {
        if rel
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("parts-"))
        {
            output.delete(&rel)?;
        }
    }
    Ok(())
}

/// The recorded start of `run_id`, if it has a journal.
pub fn read_start(output: &Location, run_id: &str) -> Result<Option<RunStart>> {
    let rel = format!("{}/run.json", journal_dir(run_id));
    match output.get(&rel)? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| ConnectorError::format(output.child_url(&rel), e.to_string())),
    }
}

/// The partitions a resumed run does not write again.
#[derive(Clone, Debug, Default)]
pub struct Durable {
    /// The journaled files still present with their size and checksum.
    pub parts: Vec<PartitionWritten>,
    /// Journaled files that are missing or differ (written again).
    pub stale: Vec<String>,
}

impl Durable {
    /// The partition directories to skip (each file's parent).
    pub fn skip_dirs(&self) -> HashSet<String> {
        self.parts
            .iter()
            .filter_map(|p| p.path.rsplit_once('/').map(|(d, _)| d.to_string()))
            .collect()
    }
}

/// Reads the journal of `run_id` and verifies each file it lists against the store.
pub fn durable_parts(output: &Location, run_id: &str) -> Result<Durable> {
    let dir = journal_dir(run_id);
    let mut by_path: BTreeMap<String, PartitionWritten> = BTreeMap::new();
    for rel in output.list_files(&dir)? {
        let name = rel.rsplit('/').next().unwrap_or_default();
        if !(name.starts_with("parts-") && name.ends_with(".json")) {
            continue;
        }
        let Some(bytes) = output.get(&rel)? else {
            continue;
        };
        let parts: Vec<PartitionWritten> = serde_json::from_slice(&bytes)
            .map_err(|e| ConnectorError::format(output.child_url(&rel), e.to_string()))?;
        for p in parts {
            by_path.insert(p.path.clone(), p);
        }
    }
    let mut durable = Durable::default();
    for (path, part) in by_path {
        match output.get(&path)? {
            Some(b) if b.len() as u64 == part.bytes && sha256_hex(&b) == part.sha256 => {
                durable.parts.push(part)
            }
            _ => durable.stale.push(path),
        }
    }
    Ok(durable)
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_digest(&Sha256::digest(bytes))
}

/// Extension trait: journal the partition files of a run as they become visible.
pub trait JournalParts<'scope> {
    /// Passes the records to worker 0, which writes each batch it receives to
    /// `_journal/<run-id>/parts-<attempt>-<seq>.json` below `output` before passing it on.
    fn journal(
        self,
        output: Location,
        run_id: String,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, PartitionWritten>;
}

impl<'scope> JournalParts<'scope> for StreamVec<'scope, i64, PartitionWritten> {
    fn journal(
        self,
        output: Location,
        run_id: String,
        errors: ErrorSlot,
    ) -> StreamVec<'scope, i64, PartitionWritten> {
        let attempt = chrono::Utc::now().format("%Y%m%dT%H%M%S%3f").to_string();
        let dir = journal_dir(&run_id);
        let mut seq = 0u64;
        self.unary(Exchange::new(|_| 0), "JournalParts", move |_, _| {
            move |input, output_handle| {
                input.for_each(|time, data| {
                    if !data.is_empty() && !errors.is_set() {
                        let rel = format!("{dir}/parts-{attempt}-{seq:06}.json");
                        seq += 1;
                        let bytes = serde_json::to_vec(&*data).unwrap_or_default();
                        match output.put(&rel, bytes) {
                            Ok(()) => {
                                tracing::debug!(journal = %rel, files = data.len(), "journaled");
                                crate::failpoint::reach("journal");
                            }
                            Err(e) => errors.set(format!("writing the run journal: {e}")),
                        }
                    }
                    output_handle.session(&time).give_iterator(data.drain(..));
                });
            }
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-row `bars` file of `bytes` at `path`.
    pub(crate) fn part(path: &str, bytes: &[u8]) -> PartitionWritten {
        PartitionWritten {
            set: "bars".into(),
            path: path.into(),
            rows: 1,
            bytes: bytes.len() as u64,
            sha256: sha256_hex(bytes),
            min_window_end: 0,
            max_window_end: 0,
            resolution_ms: 0,
        }
    }

    #[test]
    fn only_files_still_matching_are_durable() {
        let lake = Location::parse("memory:///j").unwrap();
        let (a, b) = (
            "bars/r=1/a/part-00000.parquet",
            "bars/r=1/b/part-00000.parquet",
        );
        lake.put(a, b"aaa".to_vec()).unwrap();
        lake.put(b, b"bbb".to_vec()).unwrap();
        let parts = vec![part(a, b"aaa"), part(b, b"bbb")];
        lake.put(
            "_journal/r/parts-1-000000.json",
            serde_json::to_vec(&parts).unwrap(),
        )
        .unwrap();
        lake.put(b, b"tampered".to_vec()).unwrap();
        let d = durable_parts(&lake, "r").unwrap();
        assert_eq!(d.parts.len(), 1);
        assert_eq!(d.stale, [b]);
        assert_eq!(d.skip_dirs(), HashSet::from(["bars/r=1/a".to_string()]));
        assert!(durable_parts(&lake, "other").unwrap().parts.is_empty());
    }
}
