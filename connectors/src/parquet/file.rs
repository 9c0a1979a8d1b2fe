//! [`OpenFile`]: the rows of one lake file on their way out. Rows are written as soon
//! as they are final (the frontier has passed their window end plus the allowed
//! lateness), in row groups of [`ROW_GROUP`] rows, into a file that becomes visible
//! once, when the frontier has passed the file's end. Memory holds the rows not yet
//! final and less than one row group, not the partition.

use arrow_array::{Array, TimestampMillisecondArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;

use crate::parquet::layout::{FileRange, Span, PART_FILE};
use crate::parquet::order::sort_order;
use crate::parquet::rows::{writer_properties, FeatureRow};
use crate::parquet::sink::PartitionWritten;
use crate::store::Location;
use crate::upload::Upload;
use crate::{ConnectorError, Result};

/// Rows per row group. Every row group but a file's last holds exactly this many rows,
/// whatever the batching upstream, so a file's bytes do not depend on the worker count.
pub const ROW_GROUP: usize = 1 << 16;

/// Which file a row goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileKey {
    /// The rows' resolution, ms.
    pub resolution_ms: i64,
    /// The partition's span.
    pub span: Span,
    /// The partition's start.
    pub partition: i64,
    /// The first window end the file may hold.
    pub start: i64,
    /// The end of the window ends the file may hold (exclusive): the file is complete
    /// once the frontier has passed it plus the allowed lateness.
    pub end: i64,
}

/// The rows of one file, and its writer once a row group was written.
pub struct OpenFile<R: FeatureRow> {
    key: FileKey,
    /// Rows not yet final, by window end.
    pending: std::collections::BTreeMap<i64, Vec<R>>,
    ready: Vec<R>,
    writer: Option<ArrowWriter<Upload>>,
    rows: u64,
    first: i64,
    last: i64,
}

/// A Parquet writer of `R` into a new upload at the working name `rel`.
fn open_writer<R: FeatureRow>(output: &Location, rel: &str) -> Result<ArrowWriter<Upload>> {
    ArrowWriter::try_new(
        output.create(rel)?,
        R::schema(),
        Some(writer_properties::<R>()),
    )
    .map_err(parquet_error(rel))
}

fn parquet_error(path: &str) -> impl Fn(parquet::errors::ParquetError) -> ConnectorError + '_ {
    move |source| ConnectorError::Parquet {
        path: path.to_string(),
        source,
    }
}

impl<R: FeatureRow> OpenFile<R> {
    /// An empty file.
    pub fn new(key: FileKey) -> OpenFile<R> {
        OpenFile {
            key,
            pending: Default::default(),
            ready: Vec::new(),
            writer: None,
            rows: 0,
            first: i64::MAX,
            last: i64::MIN,
        }
    }

    /// Adds a row (possibly a revision of one already added).
    pub fn push(&mut self, row: R) {
        self.pending.entry(row.window_end()).or_default().push(row);
    }

    /// Rows added and not yet written to the file.
    #[cfg(test)]
    pub fn held_rows(&self) -> usize {
        self.pending.values().map(Vec::len).sum::<usize>() + self.ready.len()
    }

    fn dir(&self) -> String {
        let k = &self.key;
        k.span.dir(R::SET.name(), k.resolution_ms, k.partition)
    }

    /// Moves the rows whose window end is below `final_below` into the file in file
    /// order (the latest revision of a row replacing the earlier ones), and writes every
    /// full row group.
    pub fn advance(&mut self, final_below: i64, output: &Location) -> Result<()> {
        // Only the rows that became final move (a frontier that stands still while rows
        // pour in costs nothing here).
        let rest = self.pending.split_off(&final_below);
        let done: Vec<R> = std::mem::replace(&mut self.pending, rest)
            .into_values()
            .flatten()
            .collect();
        let group = self
            .ready
            .first()
            .or(done.first())
            .map_or(ROW_GROUP, FeatureRow::row_group_rows);
        if done.is_empty() && self.ready.len() < group {
            return Ok(());
        }
        // The rows in file order, by reference: the rows left from before (earlier in
        // the order), then the new ones sorted. Revisions of a row are final together:
        // the first in file order is the latest, and the rest are dropped.
        let ready = std::mem::take(&mut self.ready);
        let mut refs: Vec<&R> = Vec::with_capacity(ready.len() + done.len());
        refs.extend(ready.iter());
        let revised = done.iter().any(|r| r.revision() > 0);
        let mut prev: Option<&R> = None;
        for i in sort_order(&done) {
            let row = &done[i];
            let same = revised && prev.is_some_and(|p| R::sort_cmp(p, row).is_eq());
            prev = Some(row);
            // A retracted latest revision leaves the row out.
            if !same && !row.retracted() {
                refs.push(row);
            }
        }
        // Full row groups are written from the references; the rest waits, copied.
        let full = refs.len() / group * group;
        for group in refs[..full].chunks(group) {
            self.write(group, output)?;
        }
        self.ready = refs[full..].iter().map(|r| (*r).clone()).collect();
        Ok(())
    }

    fn write(&mut self, rows: &[&R], output: &Location) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let dir = self.dir();
        let writer = match self.writer.as_mut() {
            Some(w) => w,
            None => self.writer.insert(open_writer::<R>(
                output,
                &format!("{dir}/part-{}.parquet", self.key.start),
            )?),
        };
        writer
            .write(&R::to_batch(rows)?)
            .map_err(parquet_error(&dir))?;
        if rows.len() < ROW_GROUP {
            // A narrower row group than the writer's limit (wide rows): close it now.
            writer.flush().map_err(parquet_error(&dir))?;
        }
        self.rows += rows.len() as u64;
        self.first = self.first.min(rows[0].window_end());
        self.last = self.last.max(rows[rows.len() - 1].window_end());
        Ok(())
    }

    /// Writes the remaining rows and makes the file visible; `None` when it holds no
    /// rows. A file of a daily or monthly partition replaces the files of earlier runs
    /// whose range it covers (and the covered part of those it overlaps). Durability
    /// is left to a later [`Location::sync`].
    pub fn commit(mut self, output: &Location) -> Result<Option<PartitionWritten>> {
        self.advance(i64::MAX, output)?;
        let rest = std::mem::take(&mut self.ready);
        self.write(&rest.iter().collect::<Vec<_>>(), output)?;
        let Some(writer) = self.writer.take() else {
            return Ok(None);
        };
        let dir = self.dir();
        let upload = writer.into_inner().map_err(parquet_error(&dir))?;
        let range = match self.key.span {
            Span::Hour => None,
            _ => Some(FileRange {
                first: self.first,
                last: self.last,
            }),
        };
        let name = range.map_or(PART_FILE.to_string(), |r| r.file_name());
        let path = format!("{dir}/{name}");
        let committed = upload.commit_as(&path)?;
        if let Some(range) = range {
            replace_covered::<R>(output, &dir, &name, range)?;
        }
        tracing::debug!(path = %path, rows = self.rows, bytes = committed.bytes, "partition file written");
        Ok(Some(PartitionWritten {
            set: R::SET.to_string(),
            path,
            rows: self.rows,
            bytes: committed.bytes,
            sha256: committed.sha256,
            min_window_end: self.first,
            max_window_end: self.last,
            resolution_ms: self.key.resolution_ms,
        }))
    }
}

/// Replaces the rows that earlier files of `dir` (other than `name`) hold within
/// `range`: a file wholly inside it is deleted, one partly inside it is rewritten with
/// only its rows outside it.
fn replace_covered<R: FeatureRow>(
    output: &Location,
    dir: &str,
    name: &str,
    range: FileRange,
) -> Result<()> {
    for file in output.list_files(dir)? {
        let Some(other_name) = file.rsplit('/').next().filter(|n| *n != name) else {
            continue;
        };
        // A promoted partition's single file (`promote` names it PART_FILE) may hold
        // rows anywhere in the partition: its rows in `range` are replaced like others'.
        let whole = FileRange {
            first: i64::MIN,
            last: i64::MAX,
        };
        let Some(other) =
            FileRange::parse(other_name).or((other_name == PART_FILE).then_some(whole))
        else {
            continue;
        };
        if !range.overlaps(&other) {
            continue;
        }
        if range.holds(other.first) && range.holds(other.last) {
            output.delete(&file)?;
        } else {
            keep_outside::<R>(output, dir, &file, range)?;
        }
        tracing::info!(file = %file, by = %name, "a rerun replaced rows of an earlier file");
    }
    Ok(())
}

/// Rewrites the file `from` of `dir` with only its rows outside `range`, named by their
/// own range (replacing `from` when that is its name); deletes it when none are left.
fn keep_outside<R: FeatureRow>(
    output: &Location,
    dir: &str,
    from: &str,
    range: FileRange,
) -> Result<()> {
    let Some(bytes) = output.get(from)? else {
        return Ok(());
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .and_then(|b| b.build())
        .map_err(parquet_error(from))?;
    let mut writer: Option<ArrowWriter<Upload>> = None;
    let (mut first, mut last, mut dropped) = (i64::MAX, i64::MIN, 0);
    for batch in reader {
        let batch = batch?;
        let ends = batch
            .column_by_name("window_end")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMillisecondArray>())
            .ok_or_else(|| arrow_schema::ArrowError::SchemaError("no window_end".into()))?;
        let mask: arrow_array::BooleanArray = ends
            .values()
            .iter()
            .map(|&t| {
                let keep = !range.holds(t);
                if keep {
                    (first, last) = (first.min(t), last.max(t));
                }
                Some(keep)
            })
            .collect();
        let kept = arrow_select::filter::filter_record_batch(&batch, &mask)?;
        dropped += batch.num_rows() - kept.num_rows();
        if kept.num_rows() == 0 {
            continue;
        }
        let w = match writer.as_mut() {
            Some(w) => w,
            None => writer.insert(open_writer::<R>(
                output,
                &format!("{dir}/part-rewrite.parquet"),
            )?),
        };
        w.write(&kept).map_err(parquet_error(from))?;
    }
    if dropped == 0 {
        return Ok(());
    }
    let to = writer
        .map(|w| -> Result<String> {
            let to = format!("{dir}/{}", FileRange { first, last }.file_name());
            w.into_inner()
                .map_err(parquet_error(from))?
                .commit_as(&to)?;
            Ok(to)
        })
        .transpose()?;
    if to.as_deref() != Some(from) {
        output.delete(from)?;
    }
    Ok(())
}
