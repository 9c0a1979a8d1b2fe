//! marketflow's incremental operators: pure timely operators and the record types they
//! exchange. Nothing here does I/O; sources and sinks live in the `connectors` crate.
//!
//! Operators are extension traits on timely streams, one per module, each with a name
//! and an oracle test against a from-scratch recomputation.

pub mod bars;
pub mod book;
pub mod checkpoint;
pub mod comoments;
pub mod duration;
pub mod error;
pub mod fixed;
pub mod grid;
pub mod indicators;
pub mod record;
pub mod resolution;
pub mod restate;
pub mod risk;
pub mod route;
pub mod sets;
pub mod splitmix;
pub mod symbol;
pub mod window;

pub use bars::{Bar, BarAcc, Bars, BarsConfig, BarsStats};
pub use duration::DurationMs;
pub use error::OperatorError;
pub use fixed::Fixed;
pub use record::{Candle, Reject, RejectReason, SymbolBatch, Trade, NO_TRADE_ID};
pub use resolution::Resolution;
pub use sets::FeatureSet;
pub use symbol::Symbol;
