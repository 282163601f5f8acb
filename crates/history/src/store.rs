//! The store: import, list, trend queries, export rows and pruning, written
//! once over [`Engine`] for both databases.

use std::collections::{BTreeMap, HashMap};

use perfkit_report::analysis::NON_IDENTIFYING_KEYS;
use perfkit_report::model::{Results, TimeBase};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::engine::{sqlite_writable, Cell, Engine, Param, Postgres, Sqlite};
use crate::{flatten, schema, Error, ErrorKind};

/// Where a run's figures came from: the keys the results file does not carry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Provenance {
    /// Full commit hash (`meta.git_commit` when the file has it).
    pub commit: String,
    /// Branch the commit was measured on (`main`, a pull request's branch).
    pub branch: String,
    /// Commit time, seconds since the Unix epoch; orders a series.
    pub commit_time: i64,
    /// The host class: runs on machines with the same fingerprint compare.
    pub host_fingerprint: String,
    /// What wrote the figures: `perfkit`, `hyperfine`, `criterion`.
    pub source: String,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Imported {
    /// Records stored now.
    pub added: usize,
    /// Records that were already there (the same file imported again).
    pub present: usize,
    /// Figures stored now.
    pub figures: usize,
    /// The run was stored before without a branch, and this import named
    /// one: the stored run carries it now.
    pub branch_filled: bool,
    /// The run was stored before under another branch, which it keeps (a
    /// run was measured on one branch; an import never moves it): that
    /// branch.
    pub branch_kept: Option<String>,
    /// The run was stored before under only its host's name (`host:NAME`,
    /// imported away from the machine that ran it, with no class named),
    /// and this import named a host class: the stored run carries it now.
    pub host_class_filled: bool,
    /// The run was stored before under another host class, which it keeps:
    /// that class.
    pub host_class_kept: Option<String>,
}

/// The host class an import gives a run when it knows only the name of the
/// host that ran it: `host:NAME`. A later import that names a class fills
/// it in ([`Imported::host_class_filled`]).
pub const HOST_NAME_ONLY: &str = "host:";

/// One stored run, as `history list` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// Store id.
    pub id: i64,
    /// Scenario name.
    pub scenario: String,
    /// Commit hash.
    pub commit: String,
    /// Branch.
    pub branch: String,
    /// Commit time (Unix seconds).
    pub commit_time: i64,
    /// Host name.
    pub host: String,
    /// Host class.
    pub host_fingerprint: String,
    /// When the run started (RFC 3339).
    pub run_date: String,
    /// Records of the run.
    pub records: i64,
}

/// Which series a trend query reads.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SeriesQuery {
    /// Scenario name.
    pub scenario: String,
    /// Metric name (`rx.bps`, `stage.wire::crc16.p99_ns`).
    pub metric: String,
    /// `KEY=VALUE` filters on the configuration's parameters.
    pub config: Vec<(String, String)>,
    /// Only runs on this branch.
    pub branch: Option<String>,
    /// Only runs on this host class.
    pub host_fingerprint: Option<String>,
}

/// One commit of one configuration's series: the median over its records.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Commit hash.
    pub commit: String,
    /// Commit time (Unix seconds).
    pub commit_time: i64,
    /// Branch.
    pub branch: String,
    /// The earliest run date of the commit's records.
    pub run_date: String,
    /// The configuration identity (canonical JSON).
    pub config: String,
    /// Median over the records (repeats and runs) of this commit.
    pub value: f64,
    /// How many records the median is over.
    pub n: usize,
}

/// The latest figure of a series, for exports.
#[derive(Debug, Clone, PartialEq)]
pub struct Latest {
    /// Scenario name.
    pub scenario: String,
    /// Configuration identity (canonical JSON).
    pub config: String,
    /// Metric name.
    pub metric: String,
    /// Commit hash.
    pub commit: String,
    /// Branch.
    pub branch: String,
    /// Host class.
    pub host_fingerprint: String,
    /// Median over the run's records of this configuration.
    pub value: f64,
    /// Smallest and largest record value.
    pub range: (f64, f64),
}

/// What `prune` removes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Prune {
    /// Keep only the newest N commits of each scenario, branch and host class.
    pub keep_commits: Option<usize>,
    /// Remove every run of this branch (a merged or abandoned branch).
    pub branch: Option<String>,
}

/// The results history: one database, SQLite or PostgreSQL.
pub struct Store {
    db: Box<dyn Engine>,
}

/// Rows per multi-row INSERT: few round trips, far below both engines'
/// parameter limits (3 per row).
const BATCH: usize = 300;

/// The identity of a configuration: its identifying parameters as canonical
/// JSON (keys sorted), the same rule `perfkit compare` matches by.
pub fn identity(config: &BTreeMap<String, Value>) -> String {
    let kept: BTreeMap<&String, &Value> = config
        .iter()
        .filter(|(k, _)| !NON_IDENTIFYING_KEYS.contains(&k.as_str()))
        .collect();
    serde_json::to_string(&kept).unwrap_or_default()
}

/// Whether an identity matches `KEY=VALUE` filters (a value matches its
/// JSON text or, for strings, the bare string).
pub fn identity_matches(identity: &str, filters: &[(String, String)]) -> bool {
    let map: BTreeMap<String, Value> = serde_json::from_str(identity).unwrap_or_default();
    filters.iter().all(|(k, want)| match map.get(k) {
        Some(Value::String(s)) => s == want,
        Some(v) => v.to_string().as_str() == want.as_str(),
        None => false,
    })
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The SQLite file a history location names, or `None` for a PostgreSQL
/// URL. `sqlite://PATH` (so `sqlite:///abs/path`) is a file path too; any
/// other `SCHEME://` is an error rather than a file of that odd name.
pub fn sqlite_path(location: &str) -> Result<Option<std::path::PathBuf>, Error> {
    if location.starts_with("postgres://") || location.starts_with("postgresql://") {
        return Ok(None);
    }
    if let Some(path) = location.strip_prefix("sqlite://") {
        return Ok(Some(path.into()));
    }
    if let Some((scheme, _)) = location.split_once("://") {
        if !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
        {
            return Err(Error::new(ErrorKind::Database(format!(
                "{scheme}:// is not a history database: use a SQLite file path, \
                 sqlite://PATH, or a postgres:// URL"
            ))));
        }
    }
    Ok(Some(location.into()))
}

impl Store {
    /// Opens the history at `location` (see [`sqlite_path`]): a
    /// `postgres://` or `postgresql://` URL, or else a SQLite file (created
    /// with its folder). Brings the schema up to date.
    pub fn open(location: &str) -> Result<Store, Error> {
        let db: Box<dyn Engine> = match sqlite_path(location)? {
            None => Box::new(Postgres::connect(location)?),
            Some(path) => Box::new(Sqlite::open(&path)?),
        };
        Store::with_engine(db)
    }

    fn with_engine(mut db: Box<dyn Engine>) -> Result<Store, Error> {
        schema::migrate(db.as_mut())?;
        Ok(Store { db })
    }

    /// Opens an existing history to read it (list, show, export, trends,
    /// the gate). A current schema is only read, not migrated (so no
    /// write transaction, no wait for the writers' lock). A SQLite file
    /// that this user may not write, or whose folder it may not write, is
    /// opened read-only ([`Store::open_read_only`]); an older schema is
    /// migrated where it may be written and refused
    /// ([`ErrorKind::OlderSchema`]) where not.
    pub fn open_to_read(location: &str) -> Result<Store, Error> {
        let db: Box<dyn Engine> = match sqlite_path(location)? {
            None => Box::new(Postgres::connect(location)?),
            Some(path) if sqlite_writable(&path) => Box::new(Sqlite::open(&path)?),
            Some(path) => Box::new(Sqlite::open_read_only(&path)?),
        };
        Store::read_with_engine(db)
    }

    /// Opens an existing SQLite history read-only, whatever the
    /// permissions: nothing is written to it; a schema older than this
    /// perfkit's is refused ([`ErrorKind::OlderSchema`]), one newer too.
    pub fn open_read_only(path: &std::path::Path) -> Result<Store, Error> {
        Store::read_with_engine(Box::new(Sqlite::open_read_only(path)?))
    }

    fn read_with_engine(mut db: Box<dyn Engine>) -> Result<Store, Error> {
        let found = schema::stored(db.as_mut())?;
        if found > schema::VERSION {
            return Err(Error::new(ErrorKind::NewerSchema { found }));
        }
        if found < schema::VERSION {
            let why = if db.read_only() {
                "it is open read-only".to_owned()
            } else {
                match schema::migrate(db.as_mut()) {
                    Ok(_) => return Ok(Store { db }),
                    Err(e) => e.to_string(),
                }
            };
            return Err(Error::new(ErrorKind::OlderSchema { found, why }));
        }
        Ok(Store { db })
    }

    /// `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        self.db.name()
    }

    /// The schema version of the database.
    pub fn schema_version(&mut self) -> Result<i64, Error> {
        schema::current(self.db.as_mut())
    }

    /// Runs `f` in one write transaction, rolled back on error.
    fn write<T>(
        &mut self,
        f: impl FnOnce(&mut dyn Engine) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.db.begin_write()?;
        match f(self.db.as_mut()) {
            Ok(v) => {
                self.db.batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.db.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Stores every record of `results` under `prov`. Idempotent: records
    /// already stored (same run, configuration and repeat) are counted in
    /// [`Imported::present`] and left alone, so importing a file twice, or
    /// again after `--append` added runs to it, stores each record once.
    /// A run stored without a branch takes `prov.branch` when that is set
    /// ([`Imported::branch_filled`]); a run stored under another branch
    /// keeps it ([`Imported::branch_kept`]); the same for the host class
    /// of a run stored as [`HOST_NAME_ONLY`].
    pub fn import(&mut self, results: &Results, prov: &Provenance) -> Result<Imported, Error> {
        // A results file of a run stopped before its first record: there is
        // nothing to store, and an empty run row would list as a run.
        if results.runs.is_empty() {
            return Ok(Imported::default());
        }
        // The history keeps a configuration by its identity: a second id of
        // the same one would have its records dropped as already stored.
        if let Some((a, b)) = perfkit_report::analysis::shared_identity(results) {
            return Err(Error::new(ErrorKind::Input(format!(
                "configurations {a} and {b} differ only in {}, which the history does not \
                 tell apart; import them from two files",
                NON_IDENTIFYING_KEYS.join(", ")
            ))));
        }
        let m = &results.meta;
        // A run is its file's identity: two runs started in the same second
        // on one host (parallel CI jobs) differ in their first record's
        // start time, which `--append` never changes.
        let first_start = results
            .runs
            .first()
            .and_then(|r| r.started_unix_s)
            .map_or(String::new(), |t| format!("{t:?}"));
        let run_key = {
            let mut h = Sha256::new();
            for part in [
                m.scenario.name.as_str(),
                m.scenario.sha256.as_str(),
                m.host.as_str(),
                m.date.as_str(),
                first_start.as_str(),
                prov.commit.as_str(),
                prov.source.as_str(),
            ] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        self.write(|db| {
            db.execute(
                "INSERT INTO runs (run_key, scenario, scenario_sha256, commit_sha, branch, \
                 commit_time, host, host_fingerprint, run_date, perfkit_version, source) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (run_key) DO NOTHING",
                &[
                    run_key.as_str().into(),
                    m.scenario.name.as_str().into(),
                    m.scenario.sha256.as_str().into(),
                    prov.commit.as_str().into(),
                    prov.branch.as_str().into(),
                    prov.commit_time.into(),
                    m.host.as_str().into(),
                    prov.host_fingerprint.as_str().into(),
                    m.date.as_str().into(),
                    m.perfkit_version.as_str().into(),
                    prov.source.as_str().into(),
                ],
            )?;
            let stored = db.query(
                "SELECT id, branch, host_fingerprint FROM runs WHERE run_key = $1",
                &[run_key.as_str().into()],
            )?;
            let (run_id, stored_branch, stored_class) = stored
                .first()
                .map(|r| (r[0].int(), r[1].text(), r[2].text()))
                .ok_or_else(|| Error::new(ErrorKind::Database("no row for the run".into())))?;
            let mut done = Imported::default();
            // Neither the branch nor the host class is part of a run's
            // identity: a run stored without a branch (no --branch, a
            // detached checkout), or known only by its host's name, takes
            // the one a later import names; one stored under another keeps
            // it, and the caller says so. An import that names none changes
            // nothing and says nothing.
            (done.branch_filled, done.branch_kept) =
                fill_in(db, "branch", run_id, stored_branch, &prov.branch, |b| {
                    !b.is_empty()
                })?;
            (done.host_class_filled, done.host_class_kept) = fill_in(
                db,
                "host_fingerprint",
                run_id,
                stored_class,
                &prov.host_fingerprint,
                |c| !c.is_empty() && !c.starts_with(HOST_NAME_ONLY),
            )?;
            let mut metric_ids = metric_ids(db)?;
            let mut config_ids: HashMap<String, i64> = HashMap::new();
            let mut pending: Vec<(i64, i64, f64)> = Vec::new();
            for rec in &results.runs {
                let ident = identity(&rec.config);
                let config_id = match config_ids.get(&ident) {
                    Some(id) => *id,
                    None => {
                        db.execute(
                            "INSERT INTO configs (scenario, identity) VALUES ($1, $2) \
                             ON CONFLICT (scenario, identity) DO NOTHING",
                            &[m.scenario.name.as_str().into(), ident.as_str().into()],
                        )?;
                        let id = one_id(
                            db,
                            "SELECT id FROM configs WHERE scenario = $1 AND identity = $2",
                            &[m.scenario.name.as_str().into(), ident.as_str().into()],
                        )?;
                        config_ids.insert(ident, id);
                        id
                    }
                };
                let time_base = match rec.time_base {
                    TimeBase::Real => "real",
                    TimeBase::Virtual => "virtual",
                };
                let inserted = db.query(
                    "INSERT INTO records (run_id, config_id, repeat_no, started_unix_s, time_base, failed) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (run_id, config_id, repeat_no) DO NOTHING RETURNING id",
                    &[
                        run_id.into(),
                        config_id.into(),
                        i64::from(rec.repeat).into(),
                        rec.started_unix_s.map_or(Param::NullReal, Param::Real),
                        time_base.into(),
                        i64::from(rec.error.is_some()).into(),
                    ],
                )?;
                let Some(record_id) = inserted.first().and_then(|r| r.first()).map(Cell::int)
                else {
                    done.present += 1;
                    continue;
                };
                done.added += 1;
                // A failed run's figures are zeros, not measurements.
                if rec.error.is_some() {
                    continue;
                }
                for (name, value) in flatten::figures(rec, &m.scenario.kind) {
                    let metric_id = match metric_ids.get(&name) {
                        Some(id) => *id,
                        None => {
                            let id = new_metric(db, &name)?;
                            metric_ids.insert(name, id);
                            id
                        }
                    };
                    pending.push((record_id, metric_id, value));
                    if pending.len() == BATCH {
                        done.figures += insert_figures(db, &pending)?;
                        pending.clear();
                    }
                }
            }
            done.figures += insert_figures(db, &pending)?;
            Ok(done)
        })
    }

    /// Stored runs, newest commit first; only `scenario`'s when given.
    pub fn runs(&mut self, scenario: Option<&str>) -> Result<Vec<RunRow>, Error> {
        let sql = "SELECT r.id, r.scenario, r.commit_sha, r.branch, r.commit_time, r.host, \
                   r.host_fingerprint, r.run_date, COUNT(rec.id) \
                   FROM runs r LEFT JOIN records rec ON rec.run_id = r.id \
                   WHERE (CAST($1 AS TEXT) = '' OR r.scenario = $1) \
                   GROUP BY r.id, r.scenario, r.commit_sha, r.branch, r.commit_time, r.host, \
                   r.host_fingerprint, r.run_date \
                   ORDER BY r.commit_time DESC, r.run_date DESC, r.id DESC";
        let rows = self.db.query(sql, &[scenario.unwrap_or("").into()])?;
        Ok(rows
            .iter()
            .map(|r| RunRow {
                id: r[0].int(),
                scenario: r[1].text(),
                commit: r[2].text(),
                branch: r[3].text(),
                commit_time: r[4].int(),
                host: r[5].text(),
                host_fingerprint: r[6].text(),
                run_date: r[7].text(),
                records: r[8].int(),
            })
            .collect())
    }

    /// The metric names stored for a scenario.
    pub fn metrics(&mut self, scenario: &str) -> Result<Vec<String>, Error> {
        let rows = self.db.query(
            "SELECT DISTINCT m.name FROM metrics m \
             JOIN figures f ON f.metric_id = m.id \
             JOIN records rec ON rec.id = f.record_id \
             JOIN runs r ON r.id = rec.run_id \
             WHERE r.scenario = $1 ORDER BY m.name",
            &[scenario.into()],
        )?;
        Ok(rows.iter().map(|r| r[0].text()).collect())
    }

    /// A metric's series across commits: one point per commit and
    /// configuration, in commit order (commit time, then run date).
    pub fn series(&mut self, q: &SeriesQuery) -> Result<Vec<Point>, Error> {
        let metric = self.db.query(
            "SELECT id FROM metrics WHERE name = $1",
            &[q.metric.as_str().into()],
        )?;
        let Some(metric_id) = metric.first().map(|r| r[0].int()) else {
            return Ok(Vec::new());
        };
        let rows = self.db.query(
            "SELECT r.commit_sha, r.commit_time, r.branch, r.run_date, c.identity, f.value \
             FROM runs r \
             JOIN records rec ON rec.run_id = r.id \
             JOIN configs c ON c.id = rec.config_id \
             JOIN figures f ON f.record_id = rec.id AND f.metric_id = $1 \
             WHERE r.scenario = $2 AND (CAST($3 AS TEXT) = '' OR r.branch = $3) \
             AND (CAST($4 AS TEXT) = '' OR r.host_fingerprint = $4) \
             ORDER BY r.commit_time, r.run_date, r.id",
            &[
                metric_id.into(),
                q.scenario.as_str().into(),
                q.branch.clone().unwrap_or_default().into(),
                q.host_fingerprint.clone().unwrap_or_default().into(),
            ],
        )?;
        let mut matches: HashMap<String, bool> = HashMap::new();
        // (config, commit) -> index in `points`, so repeats and re-runs of a
        // commit fold into one point at its first appearance.
        let mut at: HashMap<(String, String), usize> = HashMap::new();
        let mut points: Vec<Point> = Vec::new();
        let mut samples: Vec<Vec<f64>> = Vec::new();
        for r in rows {
            let config = r[4].text();
            let ok = *matches
                .entry(config.clone())
                .or_insert_with(|| identity_matches(&config, &q.config));
            if !ok {
                continue;
            }
            let commit = r[0].text();
            let i = *at
                .entry((config.clone(), commit.clone()))
                .or_insert_with(|| {
                    points.push(Point {
                        commit,
                        commit_time: r[1].int(),
                        branch: r[2].text(),
                        run_date: r[3].text(),
                        config,
                        value: f64::NAN,
                        n: 0,
                    });
                    samples.push(Vec::new());
                    points.len() - 1
                });
            samples[i].push(r[5].real());
        }
        for (p, s) in points.iter_mut().zip(samples.iter_mut()) {
            p.n = s.len();
            p.value = median(s);
        }
        Ok(points)
    }

    /// The newest run of each scenario and host class (on `branch` when
    /// given), each configuration's figures as medians over its records.
    pub fn latest(&mut self, branch: Option<&str>) -> Result<Vec<Latest>, Error> {
        let runs = self.db.query(
            "SELECT id, scenario, host_fingerprint, commit_sha, branch FROM runs \
             WHERE (CAST($1 AS TEXT) = '' OR branch = $1) \
             ORDER BY commit_time DESC, run_date DESC, id DESC",
            &[branch.unwrap_or("").into()],
        )?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for run in runs {
            if !seen.insert((run[1].text(), run[2].text())) {
                continue;
            }
            let rows = self.db.query(
                "SELECT c.identity, m.name, f.value FROM records rec \
                 JOIN configs c ON c.id = rec.config_id \
                 JOIN figures f ON f.record_id = rec.id \
                 JOIN metrics m ON m.id = f.metric_id \
                 WHERE rec.run_id = $1 ORDER BY c.identity, m.name",
                &[run[0].int().into()],
            )?;
            let mut groups: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
            for r in rows {
                groups
                    .entry((r[0].text(), r[1].text()))
                    .or_default()
                    .push(r[2].real());
            }
            for ((config, metric), mut xs) in groups {
                let value = median(&mut xs);
                out.push(Latest {
                    scenario: run[1].text(),
                    config,
                    metric,
                    commit: run[3].text(),
                    branch: run[4].text(),
                    host_fingerprint: run[2].text(),
                    value,
                    range: (xs[0], xs[xs.len() - 1]),
                });
            }
        }
        Ok(out)
    }

    /// Removes runs (with their records and figures); how many runs went.
    pub fn prune(&mut self, p: &Prune) -> Result<usize, Error> {
        if p.keep_commits.is_none() && p.branch.is_none() {
            return Err(Error::new(ErrorKind::Input(
                "prune needs --keep-commits N or --branch B".into(),
            )));
        }
        let rows = self.db.query(
            "SELECT id, scenario, branch, host_fingerprint, commit_sha FROM runs \
             ORDER BY commit_time DESC, run_date DESC, id DESC",
            &[],
        )?;
        let mut commits: HashMap<(String, String, String), Vec<String>> = HashMap::new();
        let mut doomed = Vec::new();
        for r in rows {
            let branch = r[2].text();
            if p.branch.as_deref() == Some(branch.as_str()) {
                doomed.push(r[0].int());
                continue;
            }
            if let Some(keep) = p.keep_commits {
                let seen = commits
                    .entry((r[1].text(), branch, r[3].text()))
                    .or_default();
                let commit = r[4].text();
                if !seen.contains(&commit) {
                    seen.push(commit.clone());
                }
                if seen.iter().position(|c| *c == commit).unwrap_or(0) >= keep {
                    doomed.push(r[0].int());
                }
            }
        }
        self.write(|db| {
            for id in &doomed {
                let id = Param::Int(*id);
                db.execute(
                    "DELETE FROM figures WHERE record_id IN (SELECT id FROM records WHERE run_id = $1)",
                    std::slice::from_ref(&id),
                )?;
                db.execute(
                    "DELETE FROM records WHERE run_id = $1",
                    std::slice::from_ref(&id),
                )?;
                db.execute("DELETE FROM runs WHERE id = $1", &[id])?;
            }
            Ok(doomed.len())
        })
    }

    /// Counts of stored runs, records and figures (for checks and `history list`).
    pub fn counts(&mut self) -> Result<(i64, i64, i64), Error> {
        let rows = self.db.query(
            "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM records), \
             (SELECT COUNT(*) FROM figures)",
            &[],
        )?;
        let r = rows
            .first()
            .ok_or_else(|| Error::new(ErrorKind::Database("COUNT returned no row".into())))?;
        Ok((r[0].int(), r[1].int(), r[2].int()))
    }
}

/// A stored run's `column` (a key outside its identity) as an import that
/// asks for `asked` finds it: a value that is not `named` (a placeholder)
/// is replaced, a named one other than `asked` kept. Whether it was filled
/// in, and the value kept.
fn fill_in(
    db: &mut dyn Engine,
    column: &'static str,
    run_id: i64,
    stored: String,
    asked: &str,
    named: impl Fn(&str) -> bool,
) -> Result<(bool, Option<String>), Error> {
    if !named(asked) || stored == asked {
        return Ok((false, None));
    }
    if named(&stored) {
        return Ok((false, Some(stored)));
    }
    db.execute(
        &format!("UPDATE runs SET {column} = $1 WHERE id = $2 AND {column} = $3"),
        &[asked.into(), run_id.into(), stored.as_str().into()],
    )?;
    Ok((true, None))
}

fn one_id(db: &mut dyn Engine, sql: &str, params: &[Param]) -> Result<i64, Error> {
    db.query(sql, params)?
        .first()
        .and_then(|r| r.first())
        .map(Cell::int)
        .ok_or_else(|| Error::new(ErrorKind::Database(format!("no row for: {sql}"))))
}

fn metric_ids(db: &mut dyn Engine) -> Result<HashMap<String, i64>, Error> {
    Ok(db
        .query("SELECT name, id FROM metrics", &[])?
        .iter()
        .map(|r| (r[0].text(), r[1].int()))
        .collect())
}

fn new_metric(db: &mut dyn Engine, name: &str) -> Result<i64, Error> {
    let (side, stage, field) = flatten::keys(name);
    db.execute(
        "INSERT INTO metrics (name, side, stage, field, unit) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (name) DO NOTHING",
        &[
            name.into(),
            side.into(),
            stage.into(),
            field.into(),
            perfkit_report::metric::unit(name).into(),
        ],
    )?;
    one_id(db, "SELECT id FROM metrics WHERE name = $1", &[name.into()])
}

fn insert_figures(db: &mut dyn Engine, rows: &[(i64, i64, f64)]) -> Result<usize, Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut sql = String::from("INSERT INTO figures (record_id, metric_id, value) VALUES ");
    let mut params = Vec::with_capacity(rows.len() * 3);
    for (i, (r, m, v)) in rows.iter().enumerate() {
        if i > 0 {
            sql.push(',');
        }
        let b = i * 3;
        sql.push_str(&format!("(${}, ${}, ${})", b + 1, b + 2, b + 3));
        params.extend([Param::Int(*r), Param::Int(*m), Param::Real(*v)]);
    }
    Ok(db.execute(&sql, &params)? as usize)
}
