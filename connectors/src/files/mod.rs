//! The file source: historical inputs from local paths, globs and object-store URLs.

mod plan;
mod source;

pub use plan::{plan_units, Unit};
pub use source::{
    ahead_budget, width_budget, FileSource, FileSourceConfig, SourceProgress, MAX_AHEAD_CHUNKS,
    NARROW_SYMBOLS,
};
