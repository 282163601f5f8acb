//! The perfkit command's library: scenarios, runs, reports, gates and the
//! agent, behind the thin `perfkit` binary (`main.rs`: argument parsing and
//! exit codes). It is a library so that fuzz targets can reach the scenario
//! parser and the agent's protocol ([`fuzzing`]).
//!
//! Exit codes: 0 success, 1 regression found by the gate, 2 bad input or
//! usage, 3 a run failed, 4 runs completed but lost or corrupted data.

mod against;
pub mod cli_wire;
#[doc(hidden)]
pub mod fuzzing;
pub mod history;
mod host;
pub mod instructions;
mod integrity;
mod interrupt;
pub mod kinds;
mod locate;
pub mod output;
mod progress;
pub mod remote;
pub mod reporting;
pub mod run;
pub mod scenario;
pub mod shipped;
mod spec;

use std::path::PathBuf;

use clap::Args;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the gate found a regression.
pub const EXIT_REGRESSION: u8 = 1;
/// Exit code: bad input or usage.
pub const EXIT_BAD_INPUT: u8 = 2;
/// Exit code: a run failed.
pub const EXIT_RUN_FAILED: u8 = 3;
/// Exit code: runs completed but data was lost or corrupted (unless the
/// scenario declares `expect = "loss"`).
pub const EXIT_DATA_LOST: u8 = 4;

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    /// Process exit code.
    pub code: u8,
    /// What to print.
    pub error: anyhow::Error,
}

impl Failure {
    /// Bad input or usage (exit 2).
    pub fn input(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_BAD_INPUT,
            error: error.into(),
        }
    }
    /// A run failed (exit 3).
    pub fn run(error: impl Into<anyhow::Error>) -> Self {
        Failure {
            code: EXIT_RUN_FAILED,
            error: error.into(),
        }
    }
}

/// Result of a command.
pub type CmdResult = Result<u8, Failure>;

/// Arguments of `perfkit run`.
#[derive(Args)]
pub struct RunArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// Output folder (default: reports/<scenario name>/).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// Override a parameter: KEY=VALUE, or KEY=[V1,V2] to sweep it. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Measured runs per configuration (overrides the scenario's `runs`).
    // `--repeat` stays accepted, unlisted, for scripts and for older builds'
    // callers; it is not named so anywhere a person reads, because
    // `repeats` is the transfer parameter (extra copies of each block).
    #[arg(long, alias = "repeat", value_name = "N")]
    pub runs: Option<u32>,
    /// Unrecorded runs of the first configuration before the measured ones
    /// (overrides the scenario's `warmup`; 0 for none).
    #[arg(long, value_name = "N")]
    pub warmup: Option<u32>,
    /// Runs in rounds of one run of every configuration (`rounds`, so a
    /// machine's slow spell falls on all of them alike), or every run of
    /// one configuration before the next (`configs`); overrides the
    /// scenario's `order`, whose default is `rounds`.
    #[arg(long, value_enum, value_name = "configs|rounds")]
    pub order: Option<crate::scenario::Order>,
    /// What to measure: `wall` (stage times) or `instructions` (each
    /// configuration also under valgrind's callgrind: instructions per
    /// stage, exact; the `measure` parameter).
    #[arg(long, value_name = "wall|instructions")]
    pub measure: Option<String>,
    /// Print only the summary table (progress still shows on stderr: a bar
    /// on a terminal, else a line every 10 s).
    #[arg(long, short)]
    pub quiet: bool,
    /// Do not write report.html beside results.json.
    #[arg(long)]
    pub no_report: bool,
    /// Add the records to the results.json already in the output folder
    /// (same scenario file and configurations), numbering runs after the
    /// ones there. Alternating `--runs 1 --append` runs of two builds
    /// spreads a machine's slow spells over both (see docs/gate.md).
    #[arg(long)]
    pub append: bool,
    /// Store the results in the history database (also `record = true` in
    /// the scenario).
    #[arg(long)]
    pub record: bool,
    /// The history database: a SQLite file or a postgres:// URL (default:
    /// $PERFKIT_DB, else .perfkit/history.db in the project).
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
}
