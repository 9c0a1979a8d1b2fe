//! Backfills as jobs: staged runs, their promotion into the lake, resuming a failed or
//! killed run, and garbage collection of the files a promotion superseded.
//!
//! # Layout
//! A staged run (`backfill --stage`) writes the same lake layout and manifest as any
//! run, below `<output>/_staging/<run-id>/`. Paths starting with `_` are outside every
//! `<output>/<set>/` dataset, so no reader of the lake sees them.
//!
//! # Promotion (`promote RUN_ID`)
//! Promotion is a *dynamic partition overwrite* (Spark's `INSERT OVERWRITE` with
//! `partitionOverwriteMode=dynamic`): every partition directory the staged run wrote
//! replaces the production partition of the same key, whole; partitions it did not
//! write are untouched. Object stores have no rename and no multi-object transaction,
//! and pyarrow, polars and DuckDB list a partition's files themselves, so the only
//! atomic step a reader can observe is a single object PUT (or server-side copy) over
//! a name, and locally a rename over a name. Hence the rule:
//!
//! * **A promoted partition is exactly one file with a fixed name**,
//!   `part-00000.parquet` (a staged backfill writes one file per partition). Promoting
//!   a partition is one server-side copy (object store) or copy-then-rename (local)
//!   of the staged file over that name: a reader listing the partition sees the same
//!   name before and after, and opening it gets either the old bytes or the new ones,
//!   never a mix and never a gap. A partition that did not exist appears whole.
//! * The previous bytes are first copied to `<output>/_versions/<run-id>/<partition>/`
//!   (outside the datasets) and kept until `marketflow gc --older-than DURATION`.
//! * A production partition that also holds files promote did not write (a direct
//!   backfill's `part-<first>-<last>.parquet`, the live job's hourly files) cannot be
//!   swapped in one step; promote refuses it (exit 2) unless `--allow-non-atomic`, which
//!   copies the new file in first and then moves the others to `_versions/` (a reader
//!   in between may see both).
//! * Atomicity is per partition, like Hive or a plain Parquet lake: a reader scanning
//!   many partitions during a promotion may see some partitions old and others new.
//! * The commit record `<output>/_promotions/<run-id>.json` is written last; promoting
//!   again (after a crash half-way) redoes only the partitions not yet equal.
//!
//! Before anything changes, the staged run is validated: its manifest says
//! `succeeded`, every file it lists is present with its size and SHA-256 and no other
//! file is in a set's directory, each set's checksum matches, and `--expect-rows SET=N`
//! holds. Any failure refuses the promotion and lists every reason.
//!
//! # Resume (`backfill ... --resume RUN_ID`)
//! A run records what it made durable as it goes, in a journal under
//! `_journal/<run-id>/`: `run.json` (what the run computes, written at its start) and
//! `parts-*.json` (batches of partition files written). A resumed run checks the same
//! inputs, range and settings, verifies each journaled file (size and SHA-256 read
//! back), recomputes everything (rolling features need their warm-up) and skips
//! writing the partitions already durable; their journal entries go into the final
//! manifest, so its per-set checksums equal those of an uninterrupted run.

pub mod gc;
pub mod journal;
pub mod promote;
pub mod resume;
pub mod validate;

use crate::store::Location;

/// Below the output root: where staged runs live.
pub const STAGING_DIR: &str = "_staging";
/// Below the output root: where the files superseded by promotions are kept.
pub const VERSIONS_DIR: &str = "_versions";
/// Below the output root: the promotion commit records.
pub const PROMOTIONS_DIR: &str = "_promotions";

/// The root of staged run `run_id` below `output`.
pub fn staging_root(output: &Location, run_id: &str) -> Location {
    output.join(&format!("{STAGING_DIR}/{run_id}"))
}

/// True when `id` can name a run (a single path segment, not hidden).
pub fn valid_run_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && !id.starts_with('_')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

impl Location {
    /// The location `rel` below this one.
    ///
    /// ```
    /// use connectors::store::Location;
    /// let lake = Location::parse("memory:///lake").unwrap();
    /// assert_eq!(lake.join("_staging/r1").child_url("x"), "memory:///lake/_staging/r1/x");
    /// ```
    pub fn join(&self, rel: &str) -> Location {
        match self {
            Location::Local(dir) => Location::Local(dir.join(rel)),
            Location::Remote { store, prefix, url } => Location::Remote {
                store: store.clone(),
                prefix: crate::store::join(prefix, rel),
                url: format!("{}/{}", url.trim_end_matches('/'), rel.trim_matches('/')),
            },
        }
    }
}
