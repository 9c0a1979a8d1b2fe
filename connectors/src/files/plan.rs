//! Splitting inputs into units of work (whole files, or Parquet row ranges) and
//! assigning them to workers.

use std::path::Path;

use crate::decode::{plan_file, DecodeOptions, Piece};
use crate::Result;

/// A unit of reading: one piece of one input file.
#[derive(Clone, Debug, PartialEq)]
pub struct Unit {
    /// Index of the file among all inputs (sorted), the high bits of `seq`.
    pub file_index: u32,
    /// The file's URL or path as listed.
    pub url: String,
    /// Which part of the file.
    pub piece: Piece,
}

fn is_local(url: &str) -> bool {
    !url.contains("://") || url.starts_with("file://")
}

/// Splits `inputs` into units: local files into their pieces (Parquet row ranges of
/// at most 262,144 rows), remote files whole (they are downloaded by the worker that reads them).
/// Every worker computes the same list, so unit `u` is read by worker `u % peers`.
pub fn plan_units(inputs: &[String], options: &DecodeOptions) -> Result<Vec<Unit>> {
    let mut units = Vec::new();
    for (i, url) in inputs.iter().enumerate() {
        let mut opts = options.clone();
        opts.file_index = i as u32;
        let pieces = if is_local(url) {
            let path = url.strip_prefix("file://").unwrap_or(url);
            plan_file(Path::new(path), url, &opts)?
        } else {
            vec![Piece::default()]
        };
        units.extend(pieces.into_iter().map(|piece| Unit {
            file_index: i as u32,
            url: url.clone(),
            piece,
        }));
    }
    Ok(units)
}
