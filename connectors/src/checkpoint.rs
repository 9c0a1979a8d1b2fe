//! Durable checkpoints under `<output>/_checkpoints/<cut>/`: the operator states and the
//! input offsets of one consistent cut, each file sealed with a SHA-256 so a torn or
//! corrupted file is detected. A restart takes the newest complete cut; old cuts are
//! pruned.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use operators::checkpoint::{Restore, Snapshot, StateKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::Location;
use crate::{ConnectorError, Result};

const DIR: &str = "_checkpoints";
const MAGIC: &[u8] = b"MFCP1\n";

/// The checkpoints of one job, below its output location.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    root: Location,
    keep: usize,
}

/// What a complete checkpoint must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Total workers of the job.
    pub workers: usize,
    /// Operators that take snapshots on every worker.
    pub operators: Vec<StateKind>,
    /// Every (source, partition) read.
    pub partitions: Vec<(String, i32)>,
}

/// A checkpoint read back and verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Loaded {
    /// The operator states.
    pub restore: Restore,
    /// First offset to read per (source, partition).
    pub offsets: HashMap<(String, i32), i64>,
    /// Files read.
    pub files: usize,
    /// Bytes read.
    pub bytes: u64,
}

/// The offsets record of one partition at one cut.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PartitionOffset {
    source: String,
    topic: String,
    partition: i32,
    offset: i64,
}

/// Why a checkpoint cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Missing, torn or corrupted files: an older cut may be used.
    Incomplete(String),
    /// Taken with another number of workers.
    Workers {
        /// Workers when it was taken.
        taken: usize,
    },
}

fn seal(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + body.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(body);
    out.extend_from_slice(&Sha256::digest(body));
    out
}

fn unseal(bytes: &[u8]) -> Option<&[u8]> {
    let body = bytes.strip_prefix(MAGIC)?;
    if body.len() < 32 {
        return None;
    }
    let (body, sum) = body.split_at(body.len() - 32);
    (Sha256::digest(body).as_slice() == sum).then_some(body)
}

impl CheckpointStore {
    /// The checkpoints below `output`, keeping the newest `keep` cuts.
    pub fn new(output: Location, keep: usize) -> CheckpointStore {
        CheckpointStore {
            root: output,
            keep: keep.max(1),
        }
    }

    /// Cuts kept.
    pub fn keep(&self) -> usize {
        self.keep
    }

    fn cut_dir(cut: i64) -> String {
        format!("{DIR}/{cut:015}")
    }

    /// The URL of a cut's directory (for messages).
    pub fn url(&self, cut: i64) -> String {
        self.root.child_url(&Self::cut_dir(cut))
    }

    /// Writes one operator state; returns its size in bytes.
    pub fn write_state(&self, snapshot: &Snapshot) -> Result<usize> {
        let body = bincode::serialize(snapshot)
            .map_err(|e| ConnectorError::format("checkpoint", e.to_string()))?;
        let sealed = seal(&body);
        let n = sealed.len();
        let rel = format!(
            "{}/state/{}-{:04}.bin",
            Self::cut_dir(snapshot.cut),
            snapshot.operator,
            snapshot.worker
        );
        self.root.put(&rel, sealed)?;
        Ok(n)
    }

    /// Writes the first offset to read of one partition at a cut.
    pub fn write_offset(
        &self,
        cut: i64,
        source: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<()> {
        let record = PartitionOffset {
            source: source.to_string(),
            topic: topic.to_string(),
            partition,
            offset,
        };
        let body = serde_json::to_vec(&record)
            .map_err(|e| ConnectorError::format("checkpoint", e.to_string()))?;
        let rel = format!(
            "{}/offsets/{source}/{partition:05}.json",
            Self::cut_dir(cut)
        );
        self.root.put(&rel, seal(&body))
    }

    /// The cuts present, newest first.
    pub fn cuts(&self) -> Result<Vec<i64>> {
        let cuts: BTreeSet<i64> = self
            .root
            .list_files(DIR)?
            .iter()
            .filter_map(|f| {
                f.strip_prefix(&format!("{DIR}/"))?
                    .split('/')
                    .next()?
                    .parse()
                    .ok()
            })
            .collect();
        Ok(cuts.into_iter().rev().collect())
    }

    /// Reads and verifies one cut.
    pub fn load(
        &self,
        cut: i64,
        expected: &Expected,
    ) -> Result<std::result::Result<Loaded, Unusable>> {
        let dir = Self::cut_dir(cut);
        let mut loaded = Loaded {
            restore: Restore {
                cut,
                states: HashMap::new(),
            },
            ..Loaded::default()
        };
        for file in self.root.list_files(&dir)? {
            let Some(bytes) = self.root.get(&file)? else {
                continue;
            };
            loaded.files += 1;
            loaded.bytes += bytes.len() as u64;
            let Some(body) = unseal(&bytes) else {
                return Ok(Err(Unusable::Incomplete(format!(
                    "{file}: checksum mismatch"
                ))));
            };
            if file.contains("/state/") {
                let Ok(s) = bincode::deserialize::<Snapshot>(body) else {
                    return Ok(Err(Unusable::Incomplete(format!("{file}: undecodable"))));
                };
                if s.peers != expected.workers {
                    return Ok(Err(Unusable::Workers { taken: s.peers }));
                }
                let known = expected
                    .operators
                    .iter()
                    .any(|k| k.name == s.operator && k.decodes(&s.state));
                if s.cut != cut || !known {
                    return Ok(Err(Unusable::Incomplete(format!(
                        "{file}: undecodable state"
                    ))));
                }
                loaded
                    .restore
                    .states
                    .insert((s.operator, s.worker), s.state);
            } else if file.contains("/offsets/") {
                let Ok(o) = serde_json::from_slice::<PartitionOffset>(body) else {
                    return Ok(Err(Unusable::Incomplete(format!(
                        "{file}: undecodable offsets"
                    ))));
                };
                loaded.offsets.insert((o.source, o.partition), o.offset);
            }
        }
        for op in expected.operators.iter().map(|k| k.name) {
            for w in 0..expected.workers {
                if !loaded.restore.states.contains_key(&(op.to_string(), w)) {
                    return Ok(Err(Unusable::Incomplete(format!(
                        "no {op} state of worker {w}"
                    ))));
                }
            }
        }
        for (source, p) in &expected.partitions {
            if !loaded.offsets.contains_key(&(source.clone(), *p)) {
                return Ok(Err(Unusable::Incomplete(format!(
                    "no offsets of {source} partition {p}"
                ))));
            }
        }
        Ok(Ok(loaded))
    }

    /// The newest complete checkpoint, skipping (with a warning) incomplete or corrupted
    /// ones; an error when the newest usable one was taken with another worker count.
    pub fn latest(&self, expected: &Expected) -> Result<Option<Loaded>> {
        let started = Instant::now();
        for cut in self.cuts()? {
            match self.load(cut, expected)? {
                Ok(loaded) => {
                    tracing::info!(
                        cut,
                        files = loaded.files,
                        bytes = loaded.bytes,
                        ms = started.elapsed().as_millis() as u64,
                        "checkpoint restored"
                    );
                    return Ok(Some(loaded));
                }
                Err(Unusable::Incomplete(why)) => {
                    tracing::warn!(cut, reason = %why, "checkpoint incomplete or corrupted; trying the previous one");
                }
                Err(Unusable::Workers { taken }) => {
                    return Err(ConnectorError::format(
                        self.url(cut),
                        format!(
                            "the checkpoint was taken with {taken} workers and this job has {}; restart with {taken} workers in total (-n x -w), or move {} away to start from scratch",
                            expected.workers,
                            self.root.child_url(DIR)
                        ),
                    ));
                }
            }
        }
        Ok(None)
    }

    /// Deletes every cut older than the `keep` newest up to `newest`; returns how many.
    pub fn prune(&self, newest: i64) -> Result<usize> {
        let mut removed = 0;
        let older: Vec<i64> = self
            .cuts()?
            .into_iter()
            .filter(|c| *c <= newest)
            .skip(self.keep)
            .collect();
        for cut in older {
            self.root.remove_all(&Self::cut_dir(cut))?;
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(op: &str, worker: usize, cut: i64) -> Snapshot {
        Snapshot {
            operator: op.into(),
            worker,
            peers: 2,
            cut,
            state: operators::checkpoint::encode(&operators::grid::GridState::default()),
        }
    }

    fn expected() -> Expected {
        Expected {
            workers: 2,
            operators: vec![StateKind::of::<operators::grid::DenseGridOp>()],
            partitions: vec![("trades".into(), 0)],
        }
    }

    fn write_cut(store: &CheckpointStore, cut: i64) {
        store.write_state(&snap("grid", 0, cut)).unwrap();
        store.write_state(&snap("grid", 1, cut)).unwrap();
        store
            .write_offset(cut, "trades", "raw", 0, cut / 10)
            .unwrap();
    }

    #[test]
    fn the_newest_complete_cut_is_restored_and_a_corrupted_one_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(Location::parse(dir.path().to_str().unwrap()).unwrap(), 2);
        assert_eq!(store.latest(&expected()).unwrap(), None);
        write_cut(&store, 100);
        write_cut(&store, 200);
        // 300 lacks worker 1's state; 400 has a flipped byte.
        store.write_state(&snap("grid", 0, 300)).unwrap();
        store.write_offset(300, "trades", "raw", 0, 30).unwrap();
        write_cut(&store, 400);
        let f = dir
            .path()
            .join("_checkpoints/000000000000400/state/grid-0001.bin");
        let mut bytes = std::fs::read(&f).unwrap();
        let n = bytes.len();
        bytes[n - 40] ^= 1;
        std::fs::write(&f, bytes).unwrap();
        let got = store.latest(&expected()).unwrap().unwrap();
        assert_eq!(got.restore.cut, 200);
        assert_eq!(got.offsets[&("trades".to_string(), 0)], 20);
        assert_eq!(got.restore.states.len(), 2);
        // A truncated file is caught too.
        let f = dir
            .path()
            .join("_checkpoints/000000000000200/offsets/trades/00000.json");
        let bytes = std::fs::read(&f).unwrap();
        std::fs::write(&f, &bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(store.latest(&expected()).unwrap().unwrap().restore.cut, 100);
    }

    #[test]
    fn another_worker_count_is_refused_and_old_cuts_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(Location::parse(dir.path().to_str().unwrap()).unwrap(), 2);
        for cut in [100, 200, 300] {
            write_cut(&store, cut);
        }
        let mut three = expected();
        three.workers = 3;
        let err = store.latest(&three).unwrap_err().to_string();
        assert!(err.contains("taken with 2 workers"), "{err}");
        assert_eq!(store.prune(300).unwrap(), 1);
        assert_eq!(store.cuts().unwrap(), vec![300, 200]);
    }
}
