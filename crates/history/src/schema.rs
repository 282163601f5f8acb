//! The versioned schema and its migrations.
//!
//! `perfkit_schema` holds one row per applied migration. Opening a store
//! applies the missing ones in order, inside one write transaction, so two
//! processes opening a fresh database at once do not both create it. A
//! database migrated by a newer perfkit is refused rather than misread.
//! Opening to read ([`crate::Store::open_to_read`]) only reads the version:
//! an up-to-date database is read as it is, an older one migrated when
//! this user may write it and refused, with what to run, when not.
//!
//! Tables (v1), keys first:
//! - `runs`: one `perfkit run` (or one imported file): commit, branch, commit
//!   time, host and host fingerprint, scenario; `run_key` makes imports idempotent.
//! - `configs`: a configuration's identity within a scenario (canonical JSON
//!   of its identifying parameters).
//! - `metrics`: a figure's name (`rx.bps`, `stage.wire::crc16.p99_ns`) split
//!   into side (`tx`, `rx`, `link`, `metrics`, `host`, `device`), stage and field.
//! - `records`: one configuration x repeat of a run.
//! - `figures`: one value per record and metric.

use crate::engine::Engine;
use crate::{Error, ErrorKind};

/// The newest schema this build knows.
pub const VERSION: i64 = 1;

/// Migration `n` (1-based) brings the schema from `n - 1` to `n`. `{id}` and
/// `{real}` become the engine's column types; everything else is shared SQL.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE runs (
    id {id},
    run_key TEXT NOT NULL UNIQUE,
    scenario TEXT NOT NULL,
    scenario_sha256 TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    branch TEXT NOT NULL,
    commit_time BIGINT NOT NULL,
    host TEXT NOT NULL,
    host_fingerprint TEXT NOT NULL,
    run_date TEXT NOT NULL,
    perfkit_version TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX runs_by_series ON runs (scenario, host_fingerprint, branch, commit_time);
CREATE INDEX runs_by_commit ON runs (commit_sha);
CREATE TABLE configs (
    id {id},
    scenario TEXT NOT NULL,
    identity TEXT NOT NULL,
    UNIQUE (scenario, identity)
);
CREATE TABLE metrics (
    id {id},
    name TEXT NOT NULL UNIQUE,
    side TEXT NOT NULL,
    stage TEXT NOT NULL,
    field TEXT NOT NULL,
    unit TEXT NOT NULL
);
CREATE TABLE records (
    id {id},
    run_id BIGINT NOT NULL REFERENCES runs (id),
    config_id BIGINT NOT NULL REFERENCES configs (id),
    repeat_no BIGINT NOT NULL,
    started_unix_s {real},
    time_base TEXT NOT NULL,
    failed BIGINT NOT NULL,
    UNIQUE (run_id, config_id, repeat_no)
);
CREATE INDEX records_by_config ON records (config_id, run_id);
CREATE TABLE figures (
    record_id BIGINT NOT NULL REFERENCES records (id),
    metric_id BIGINT NOT NULL REFERENCES metrics (id),
    value {real} NOT NULL,
    PRIMARY KEY (record_id, metric_id)
);
CREATE INDEX figures_by_metric ON figures (metric_id, record_id);
"#];

/// Brings the database to [`VERSION`]; the version it was at before.
pub fn migrate(db: &mut dyn Engine) -> Result<i64, Error> {
    db.begin_write()?;
    let result = migrate_in_transaction(db);
    match result {
        Ok(v) => {
            db.batch("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = db.batch("ROLLBACK");
            Err(e)
        }
    }
}

fn migrate_in_transaction(db: &mut dyn Engine) -> Result<i64, Error> {
    db.batch(
        "CREATE TABLE IF NOT EXISTS perfkit_schema (version BIGINT NOT NULL PRIMARY KEY, applied_unix_s BIGINT NOT NULL)",
    )?;
    let found = current(db)?;
    if found > VERSION {
        return Err(Error::new(ErrorKind::NewerSchema { found }));
    }
    for (i, ddl) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let ddl = ddl
            .replace("{id}", db.id_column())
            .replace("{real}", db.real_column());
        db.batch(&ddl)?;
        let v = i as i64 + 1;
        db.execute(
            "INSERT INTO perfkit_schema (version, applied_unix_s) VALUES ($1, $2)",
            &[v.into(), crate::unix_now().into()],
        )?;
    }
    Ok(found)
}

/// The schema version of the database by reads alone (0 when it holds no
/// perfkit schema): what a reader checks instead of migrating.
pub fn stored(db: &mut dyn Engine) -> Result<i64, Error> {
    if !db.has_table("perfkit_schema")? {
        return Ok(0);
    }
    current(db)
}

/// The schema version of the database (0 when empty).
pub fn current(db: &mut dyn Engine) -> Result<i64, Error> {
    let rows = db.query("SELECT MAX(version) FROM perfkit_schema", &[])?;
    Ok(rows.first().and_then(|r| r.first()).map_or(0, |c| c.int()))
}
