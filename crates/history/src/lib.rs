//! Results history: every run's figures, per commit, branch, host class,
//! scenario, configuration and metric, kept in one database so trends can be
//! drawn and a gate can judge a run against its recent past instead of one
//! hand-kept baseline file.
//!
//! # Design
//! - **One store, two engines.** [`Store`] is written once over a small
//!   engine interface ([`engine::Engine`]: execute, query, begin a write);
//!   SQLite (rusqlite's bundled library: nothing to install) is the default,
//!   a single file; PostgreSQL (`postgres://...`) serves a team whose CI
//!   runners and lab machines are many. The SQL is the common subset both
//!   speak; aggregation (medians) happens in Rust, so no query depends on an
//!   engine's statistics functions.
//! - **Input is the results file** (`perfkit_report::model::Results`): what
//!   `perfkit run --record` stores is exactly what `history import` would
//!   store from its results.json, and imports are idempotent per record.
//!   The branch is not part of a run's identity: a later import fills in
//!   a branch the stored run lacks, and never moves it to another.
//! - **Schema versioned** ([`schema`]): migrations applied on open, a
//!   database from a newer perfkit refused. Commands that only read open
//!   with [`Store::open_to_read`]: a current schema is not migrated, and a
//!   SQLite file (or folder) this user may only read is opened read-only,
//!   so a shared or archived history can be read.
//! - **Concurrent writers**: each import is one transaction that takes the
//!   writers' lock first (SQLite `BEGIN IMMEDIATE` under WAL with a busy
//!   timeout; a PostgreSQL advisory lock), so parallel `run --record`
//!   processes queue instead of failing or losing rows.
//! - **Judging a series** ([`changepoint`]): robust statistics (medians and
//!   MAD) over a window of recent commits, a search over where a change
//!   began, and a step or a ramp model, so a sudden step and a slow drift
//!   are both caught and the first commit of the change is named.
//! - **Gate** ([`mod@gate`]): a results file judged against its history.
//! - **Imports from other tools** ([`foreign`]): hyperfine and criterion
//!   figures become records of their own scenarios.
//! - **Exports** ([`export`]): Bencher Metric Format, github-action-benchmark's
//!   custom JSON, OpenMetrics text.
#![deny(missing_docs)]

pub mod changepoint;
pub mod engine;
pub mod export;
pub mod flatten;
pub mod foreign;
pub mod gate;
pub mod schema;
mod store;
pub mod synthetic;

pub use store::{
    identity, identity_matches, sqlite_path, Imported, Latest, Point, Provenance, Prune, RunRow,
    SeriesQuery, Store, HOST_NAME_ONLY,
};

use std::fmt;

/// Why the history could not be read or written.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The database refused, or could not be reached.
    Database(String),
    /// The database was migrated by a newer perfkit.
    NewerSchema {
        /// Its schema version.
        found: i64,
    },
    /// The database predates this perfkit's schema and, opened to read,
    /// could not be brought up to date: this user may not write it.
    OlderSchema {
        /// Its schema version (0: no perfkit schema at all).
        found: i64,
        /// Why it could not be migrated.
        why: String,
    },
    /// A request that cannot be answered as asked.
    Input(String),
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Self {
        Error { kind }
    }
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Database(m) => write!(f, "history database: {m}"),
            ErrorKind::NewerSchema { found } => write!(
                f,
                "history database has schema version {found}, newer than this perfkit \
                 understands ({}); upgrade perfkit to use it",
                schema::VERSION
            ),
            ErrorKind::OlderSchema { found, why } => write!(
                f,
                "history database has schema version {found}, older than this perfkit's ({}), \
                 and cannot be migrated here ({why}); run `perfkit history import` (or \
                 `perfkit run --record`) on it once as a user with write access to the file \
                 and its folder, which brings it up to date",
                schema::VERSION
            ),
            ErrorKind::Input(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
