//! marketflow's dataflow graph. [`graph::features`] turns trades and candles into
//! feature streams; the live job and a backfill call it with different sources and
//! sinks, so the same events give the same rows.

pub mod backfill;
pub mod cluster;
pub mod config;
pub mod graph;
pub mod live;
pub mod progress;
