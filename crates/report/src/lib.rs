//! Results model, statistics, compare, gate, plots, flamegraphs and HTML reports.
//!
//! Everything here works from saved results files (see [`model`]), never from
//! a run's in-memory state, so any results file, old or new, can be reported,
//! compared and gated again.
#![deny(missing_docs)]

pub mod model;

pub use model::{Results, SCHEMA_VERSION};
