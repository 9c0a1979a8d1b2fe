//! Where a backfill writes and what it may skip: a fresh run (straight to the lake or
//! staged) or the resumption of a failed or killed one ([`RunTarget`]).

use crate::jobs::journal::{self, durable_parts, read_start, Durable, RunStart};
use crate::jobs::promote::read_promotion;
use crate::jobs::{staging_root, valid_run_id, STAGING_DIR};
use crate::manifest::{Manifest, RunInfo};
use crate::store::Location;
use crate::{ConnectorError, Result};

/// The run a backfill is about to do.
#[derive(Clone, Debug)]
pub struct RunTarget {
    /// The run id.
    pub run_id: String,
    /// The run's output root: the lake, or `<lake>/_staging/<run-id>/`.
    pub output: Location,
    /// True for a staged run.
    pub staged: bool,
    /// The journal of the run being resumed.
    resumed: Option<RunStart>,
}

impl RunTarget {
    /// A new run `run_id` of `lake`, staged or not.
    pub fn fresh(lake: &Location, run_id: String, staged: bool) -> Result<RunTarget> {
        if !valid_run_id(&run_id) {
            return Err(ConnectorError::Refused {
                what: format!("--run-id {run_id}"),
                reasons: vec!["a run id is letters, digits, `-`, `_`, `.` and `:`, not starting with `_` or `.`".into()],
            });
        }
        if staged && read_promotion(lake, &run_id)?.is_some() {
            return Err(ConnectorError::Refused {
                what: format!("staging run {run_id}"),
                reasons: vec![format!(
                    "run {run_id} was already promoted: stage under another --run-id"
                )],
            });
        }
        Ok(RunTarget {
            output: if staged {
                staging_root(lake, &run_id)
            } else {
                lake.clone()
            },
            run_id,
            staged,
            resumed: None,
        })
    }

    /// The run `run_id` of `lake` to resume, found by its journal (staged or not); an
    /// unknown id is [`ConnectorError::UnknownRun`], a run that cannot be resumed is
    /// [`ConnectorError::Refused`].
    pub fn resume(lake: &Location, run_id: &str, stage: bool) -> Result<RunTarget> {
        let refuse = |reason: String| ConnectorError::Refused {
            what: format!("--resume {run_id}"),
            reasons: vec![reason],
        };
        if !valid_run_id(run_id) {
            return Err(ConnectorError::UnknownRun(format!(
                "`{run_id}` is not a run id"
            )));
        }
        let staging = staging_root(lake, run_id);
        let (output, start) = match (read_start(lake, run_id)?, read_start(&staging, run_id)?) {
            (Some(s), _) => (lake.clone(), s),
            (None, Some(s)) => (staging, s),
            (None, None) => {
                return Err(ConnectorError::UnknownRun(format!(
                    "no run {run_id} to resume under {} or {} (only runs started with this version keep the journal a resume needs)",
                    lake.child_url("_journal/"),
                    lake.child_url(&format!("{STAGING_DIR}/"))
                )))
            }
        };
        if stage && !start.staged {
            return Err(refuse(format!(
                "run {run_id} was not staged: resume it without --stage"
            )));
        }
        if start.staged && read_promotion(lake, run_id)?.is_some() {
            return Err(refuse(format!("run {run_id} was already promoted")));
        }
        let manifest = output.get(&format!("_runs/{run_id}.json"))?;
        let status = manifest
            .and_then(|b| serde_json::from_slice::<Manifest>(&b).ok())
            .map(|m| m.status);
        if status.as_deref() == Some("succeeded") {
            return Err(refuse(format!(
                "run {run_id} already succeeded: there is nothing to resume"
            )));
        }
        Ok(RunTarget {
            run_id: run_id.to_string(),
            output,
            staged: start.staged,
            resumed: Some(start),
        })
    }

    /// True when this resumes an earlier run.
    pub fn is_resume(&self) -> bool {
        self.resumed.is_some()
    }

    /// Before the run starts: a fresh run's process 0 starts its journal; a resumed
    /// run checks that `info` and `fingerprint` match the journal's and returns the
    /// partitions already durable (every process reads them).
    pub fn prepare(&self, info: &RunInfo, fingerprint: &str, process: usize) -> Result<Durable> {
        let Some(start) = &self.resumed else {
            if process == 0 {
                journal::begin(
                    &self.output,
                    &RunStart {
                        info: info.clone(),
                        sets: info.feature_sets.clone(),
                        staged: self.staged,
                        fingerprint: fingerprint.to_string(),
                    },
                )?;
            }
            return Ok(Durable::default());
        };
        let was = &start.info;
        let mut reasons = Vec::new();
        let mut differ = |what: &str, a: String, b: String| {
            if a != b {
                reasons.push(format!("{what}: the run had {a}, now {b}"));
            }
        };
        differ("inputs", was.inputs.join(" "), info.inputs.join(" "));
        differ("--kind", was.kind.clone(), info.kind.clone());
        differ(
            "--from",
            format!("{:?}", was.from_ms),
            format!("{:?}", info.from_ms),
        );
        differ(
            "--to",
            format!("{:?}", was.to_ms),
            format!("{:?}", info.to_ms),
        );
        differ(
            "resolutions",
            was.resolutions.join(","),
            info.resolutions.join(","),
        );
        differ(
            "feature sets",
            start.sets.join(","),
            info.feature_sets.join(","),
        );
        if reasons.is_empty() && start.fingerprint != fingerprint {
            reasons.push("the feature settings ([features] of the config) differ".into());
        }
        if !reasons.is_empty() {
            return Err(ConnectorError::Refused {
                what: format!(
                    "--resume {}: give the arguments and config the run started with",
                    self.run_id
                ),
                reasons,
            });
        }
        let durable = durable_parts(&self.output, &self.run_id)?;
        tracing::info!(
            run_id = %self.run_id,
            durable = durable.parts.len(),
            stale = durable.stale.len(),
            "resuming: durable partitions are not written again"
        );
        Ok(durable)
    }
}
