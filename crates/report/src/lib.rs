//! Results model, statistics, compare, gate, plots, flamegraphs and HTML reports.
//!
//! Everything here works from saved results files (see [`model`]), never from
//! a run's in-memory state, so any results file, old or new, can be reported,
//! compared and gated again.
//!
//! # Pieces
//! - [`model`]: the results file (`results.json`), loading with clear errors
//!   and atomic writes.
//! - [`files`]: reading the files perfkit is handed (regular files, a size
//!   limit, no waiting on a FIFO) and where a write lands (a link is
//!   followed, a device is written into, never replaced).
//! - [`metric`]: metric names (`tx.bps`, `stage.crc16.p99_ns`, ...), how to
//!   read them from a record, their direction and unit.
//! - [`group`]: records grouped into configurations (same `config_id` =
//!   repeats of one configuration).
//! - [`stats`]: medians and the bootstrap interval of a median's relative
//!   change; each repeat is one sample.
//! - [`analysis`]: what `compare` and the gate share: configurations paired
//!   across files through an identity index, and per metric the change and
//!   its interval, exact, paired (runs interleaved in time) or unpaired.
//! - [`mod@compare`]: N-way comparison with verdicts ([`compare()`]).
//! - [`gate`]: the CI gate ([`gate::evaluate`]).
//! - [`table`]: console and Markdown tables, shared with other perfkit crates.
//! - [`trend`]: the report's trends across commits, handed in from a results history.
//! - [`html`]: the self-contained report ([`html::render_report`],
//!   [`html::render_compare`], and [`html::render_snapshot`] for a perfkit
//!   snapshot file, told apart from results by [`model::load_any`]).
//!
//! # Exit codes for the commands built on this crate
//! | outcome | code |
//! | --- | --- |
//! | report / compare written, gate found no regression | 0 |
//! | [`gate::GateReport::regressed`] | 1 |
//! | any [`model::Error`] (missing, truncated, hand-edited, newer file) or [`gate::GateError`] | 2 |
//!
//! # Trade-offs
//! - **Charts** are plotters' SVG backend with text left as SVG `<text>`: no
//!   font files, tiny output, crisp at any zoom and in print, at the price of
//!   estimated text widths. Rendering 1,000 records takes milliseconds (see
//!   `benches/render.rs`), where bitmap plotting with font rasterisation is
//!   what makes some benchmark reports take tens of seconds.
//! - **Flamegraphs** come from inferno and keep their own inline script;
//!   each lives in an `<iframe srcdoc>` so several can share a page with the
//!   charts without clashing ids. The page stays one file with no network
//!   access.
//! - **Statistics** use the median over repeats (runs), never in-process
//!   iterations, and a seeded percentile bootstrap: distribution-free and
//!   reproducible, wide with few repeats, which is why the gate refuses to
//!   judge rather than guess (see [`gate`]).
//! - **Configurations** are matched across files by their `config` maps
//!   (ignoring [`analysis::NON_IDENTIFYING_KEYS`] such as the run count `runs`), not by
//!   `config_id`, so reordered or extended sweeps still compare.
#![deny(missing_docs)]

pub mod analysis;
mod chart;
pub mod compare;
pub mod crosscheck;
pub mod device;
pub mod files;
mod flame;
pub mod gate;
pub mod group;
mod headline;
pub mod html;
pub mod metric;
pub mod model;
pub mod probe;
pub mod stats;
pub mod table;
pub mod trend;

pub use compare::{compare, Comparison};
pub use gate::{evaluate, GateConfig, GateError, GateReport, Threshold};
pub use html::{
    render_compare, render_gate, render_report, render_report_with_trends, render_snapshot,
};
pub use model::{Results, SCHEMA_VERSION};

use std::path::{Path, PathBuf};

/// Exit codes of the `perfkit` commands built on this crate.
pub mod exit {
    /// Report or comparison written; the gate found no regression.
    pub const OK: i32 = 0;
    /// The gate found a regression ([`crate::gate::GateReport::exit_code`]).
    pub const REGRESSION: i32 = 1;
    /// Bad input: [`crate::model::Error`] or [`crate::gate::GateError`].
    pub const BAD_INPUT: i32 = 2;
}

/// Loads several results files, stopping at the first bad one (its error
/// names the file); the pairs are what the render and compare functions take.
pub fn load_all<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<(PathBuf, Results)>, model::Error> {
    paths
        .iter()
        .map(|p| Ok((p.as_ref().to_path_buf(), Results::load(p)?)))
        .collect()
}
