//! The store's test suite, run against both engines: SQLite always, and
//! PostgreSQL when `PERFKIT_TEST_POSTGRES` names a server (scripts/test.d/
//! starts a throwaway cluster and sets it). Each PostgreSQL test works in a
//! schema of its own.

use perfkit_history::{synthetic, ErrorKind, Provenance, Prune, SeriesQuery, Store};

struct Db {
    url: String,
    _dir: Option<tempfile::TempDir>,
}

fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: dir.path().join("h/history.db").display().to_string(),
        _dir: Some(dir),
    }
}

/// A fresh schema on the test server, or None when there is none.
fn postgres(test: &str) -> Option<Db> {
    let base = std::env::var("PERFKIT_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())?;
    let schema = format!("t_{}_{test}", std::process::id());
    let mut c = postgres::Client::connect(&base, postgres::NoTls).expect("test server");
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    Some(Db {
        url: format!("{base}{sep}options=-csearch_path%3D{schema}"),
        _dir: None,
    })
}

/// Runs SQL on the database directly, around the store.
fn raw(db: &Db, sql: &str) {
    if db._dir.is_some() {
        let c = rusqlite::Connection::open(&db.url).unwrap();
        c.execute_batch(sql).unwrap();
    } else {
        let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
        c.batch_execute(sql).unwrap();
    }
}

fn prov(commit: usize, branch: &str) -> Provenance {
    Provenance {
        commit: synthetic::commit_hash(commit),
        branch: branch.into(),
        commit_time: 1_790_000_000 + commit as i64 * 60,
        host_fingerprint: "x86_64-4c".into(),
        source: "perfkit".into(),
    }
}

fn flat(level: f64) -> impl FnMut(usize, u32) -> f64 {
    move |c, r| level * (1.0 + c as f64 * 0.1) * (1.0 + r as f64 * 0.001)
}

/// Each test once per engine.
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[test] fn $name() { super::$name(&super::sqlite()); })*
        }
        mod on_postgres {
            $(#[test] fn $name() {
                match super::postgres(stringify!($name)) {
                    Some(db) => super::$name(&db),
                    None => eprintln!("PERFKIT_TEST_POSTGRES not set: PostgreSQL suite not run"),
                }
            })*
        }
    };
}

suite!(
    importing_twice_adds_nothing,
    an_appended_file_adds_only_its_new_records,
    series_is_one_median_per_commit_in_commit_order,
    config_branch_and_host_filters,
    list_is_newest_first_with_record_counts,
    prune_keeps_the_newest_commits_and_drops_branches,
    latest_is_the_newest_run_per_scenario,
    failed_records_keep_no_figures,
    reopening_keeps_data_and_a_newer_schema_is_refused,
    runs_started_in_the_same_second_stay_apart,
    a_file_with_no_runs_stores_nothing,
    one_configuration_under_two_ids_is_refused,
    a_later_import_fills_in_a_missing_branch_and_keeps_another,
    a_later_import_names_a_host_class_known_only_by_name,
    opening_to_read_reads_a_current_schema_and_migrates_an_empty_one,
);

/// A reading command's open: a current schema is read as it is, and a
/// database with no schema yet is brought up to date where it may be
/// written (a fresh PostgreSQL schema, an empty SQLite file); a newer one
/// is refused.
fn opening_to_read_reads_a_current_schema_and_migrates_an_empty_one(db: &Db) {
    if let Some(dir) = &db._dir {
        // The folder and an empty file: what `touch` or a first copy leaves.
        std::fs::create_dir_all(dir.path().join("h")).unwrap();
        std::fs::write(&db.url, "").unwrap();
    }
    let mut s = Store::open_to_read(&db.url).unwrap();
    assert_eq!(
        s.schema_version().unwrap(),
        perfkit_history::schema::VERSION
    );
    assert!(s.runs(None).unwrap().is_empty());
    drop(s);
    let mut w = Store::open(&db.url).unwrap();
    w.import(
        &synthetic::results("lb", 1, 2, 1, &mut flat(1.0)),
        &prov(1, "main"),
    )
    .unwrap();
    drop(w);
    let mut s = Store::open_to_read(&db.url).unwrap();
    assert_eq!(s.counts().unwrap().1, 2);
    drop(s);
    raw(
        db,
        "INSERT INTO perfkit_schema (version, applied_unix_s) VALUES (99, 0)",
    );
    let e = Store::open_to_read(&db.url).err().expect("refused");
    assert!(
        matches!(e.kind(), ErrorKind::NewerSchema { found: 99 }),
        "{e}"
    );
}

fn sha(path: &std::path::Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// A SQLite history opened read-only is read with nothing written to it,
/// writes through it fail, and a schema older than this perfkit's (here an
/// empty file: none at all) is refused with what to run, not migrated.
#[test]
fn a_read_only_sqlite_history_is_read_and_never_written() {
    let d = tempfile::tempdir().unwrap();
    // Every byte a file name may hold that a SQLite URI would misread.
    let dir = d.path().join("a ?#%25 é");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("h.db");
    let url = path.to_str().unwrap();
    let r = synthetic::results("lb", 1, 2, 2, &mut flat(1.0));
    Store::open(url)
        .unwrap()
        .import(&r, &prov(1, "main"))
        .unwrap();
    let before = sha(&path);

    let mut s = Store::open_read_only(&path).unwrap();
    assert_eq!(s.counts().unwrap().1, 4);
    assert_eq!(s.runs(None).unwrap()[0].branch, "main");
    let q = SeriesQuery {
        scenario: "lb".into(),
        metric: "tx.bps".into(),
        ..SeriesQuery::default()
    };
    assert_eq!(s.series(&q).unwrap().len(), 2);
    let more = synthetic::results("lb", 2, 2, 1, &mut flat(1.0));
    assert!(s.import(&more, &prov(2, "main")).is_err(), "it only reads");
    assert!(s
        .prune(&Prune {
            branch: Some("main".into()),
            ..Prune::default()
        })
        .is_err());
    drop(s);
    assert_eq!(sha(&path), before, "nothing written");

    let empty = dir.join("empty.db");
    std::fs::write(&empty, "").unwrap();
    let e = Store::open_read_only(&empty).err().expect("refused");
    assert!(
        matches!(e.kind(), ErrorKind::OlderSchema { found: 0, .. }),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("older than this perfkit's")
            && msg.contains("perfkit history import")
            && msg.contains("write access"),
        "{msg}"
    );
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "not migrated");

    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("INSERT INTO perfkit_schema (version, applied_unix_s) VALUES (99, 0)")
        .unwrap();
    let e = Store::open_read_only(&path).err().expect("refused");
    assert!(
        matches!(e.kind(), ErrorKind::NewerSchema { found: 99 }),
        "{e}"
    );
}

/// A file stored without a branch gets one from a later import that names
/// it (the import stays idempotent: no record twice); a run stored under
/// one branch is never moved to another, and the import says which it kept.
fn a_later_import_fills_in_a_missing_branch_and_keeps_another(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    let r = synthetic::results("lb", 1, 2, 2, &mut flat(1.0));
    let branches = |s: &mut Store| -> Vec<String> {
        s.runs(None)
            .unwrap()
            .into_iter()
            .map(|r| r.branch)
            .collect()
    };
    let first = s.import(&r, &prov(1, "")).unwrap();
    assert!(!first.branch_filled && first.branch_kept.is_none());
    assert_eq!(branches(&mut s), [""]);
    let counts = s.counts().unwrap();

    let again = s.import(&r, &prov(1, "main")).unwrap();
    assert_eq!((again.added, again.present), (0, 4));
    assert!(again.branch_filled && again.branch_kept.is_none());
    assert_eq!(branches(&mut s), ["main"]);
    assert_eq!(s.counts().unwrap(), counts, "no record stored twice");
    // The runs now count as main's history.
    let on_main = SeriesQuery {
        scenario: "lb".into(),
        metric: "tx.bps".into(),
        branch: Some("main".into()),
        ..SeriesQuery::default()
    };
    assert_eq!(s.series(&on_main).unwrap().len(), 2);

    // Another branch is not written over; the import says which was kept.
    let other = s.import(&r, &prov(1, "feature")).unwrap();
    assert!(!other.branch_filled);
    assert_eq!(other.branch_kept.as_deref(), Some("main"));
    assert_eq!(branches(&mut s), ["main"]);
    // The same branch, or none, again: nothing to fill or keep.
    for b in ["main", ""] {
        let same = s.import(&r, &prov(1, b)).unwrap();
        assert!(!same.branch_filled && same.branch_kept.is_none(), "{b}");
    }
    assert_eq!(branches(&mut s), ["main"]);
    assert_eq!(s.counts().unwrap(), counts);
}

/// A run imported away from its machine, with no class named, is stored
/// under its host's name; a later import naming the class files it there
/// (so `gate --history` for that class sees it); another class is kept.
fn a_later_import_names_a_host_class_known_only_by_name(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    let r = synthetic::results("lb", 1, 2, 2, &mut flat(1.0));
    let classes = |s: &mut Store| -> Vec<String> {
        s.runs(None)
            .unwrap()
            .into_iter()
            .map(|r| r.host_fingerprint)
            .collect()
    };
    let with = |class: &str| Provenance {
        host_fingerprint: class.into(),
        ..prov(1, "main")
    };
    let first = s.import(&r, &with("host:ci-7")).unwrap();
    assert!(!first.host_class_filled && first.host_class_kept.is_none());
    let counts = s.counts().unwrap();
    // Known by name only again (another machine re-imports it): unchanged.
    let again = s.import(&r, &with("host:ci-7")).unwrap();
    assert!(!again.host_class_filled && again.host_class_kept.is_none());
    assert_eq!(classes(&mut s), ["host:ci-7"]);

    let named = s.import(&r, &with("x86_64-2c-epyc")).unwrap();
    assert_eq!((named.added, named.present), (0, 4));
    assert!(named.host_class_filled && named.host_class_kept.is_none());
    assert_eq!(classes(&mut s), ["x86_64-2c-epyc"]);
    assert_eq!(s.counts().unwrap(), counts, "no record stored twice");
    let of_class = SeriesQuery {
        scenario: "lb".into(),
        metric: "tx.bps".into(),
        host_fingerprint: Some("x86_64-2c-epyc".into()),
        ..SeriesQuery::default()
    };
    assert_eq!(s.series(&of_class).unwrap().len(), 2);

    // Another class is not written over, nor a name put back.
    let other = s.import(&r, &with("aarch64-4c")).unwrap();
    assert!(!other.host_class_filled);
    assert_eq!(other.host_class_kept.as_deref(), Some("x86_64-2c-epyc"));
    let by_name = s.import(&r, &with("host:ci-7")).unwrap();
    assert!(!by_name.host_class_filled && by_name.host_class_kept.is_none());
    assert_eq!(classes(&mut s), ["x86_64-2c-epyc"]);
    assert_eq!(s.counts().unwrap(), counts);
}

/// Two ids of one configuration (they differ only in a key the history
/// does not tell apart) would collide: the second id's records were
/// counted "already stored" and dropped. The import is refused instead.
fn one_configuration_under_two_ids_is_refused(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    let mut r = synthetic::results("lb", 1, 2, 2, &mut flat(1.0));
    let first = r.runs[0].config.clone();
    let other = r
        .runs
        .iter()
        .position(|x| x.config_id != r.runs[0].config_id)
        .unwrap();
    let id = r.runs[other].config_id;
    for x in r.runs.iter_mut().filter(|x| x.config_id == id) {
        x.config = first.clone();
        x.config.insert("runs".into(), serde_json::json!(7));
    }
    let e = s.import(&r, &prov(1, "main")).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Input(_)), "{e}");
    assert!(e.to_string().contains("history does not tell apart"), "{e}");
    assert_eq!(s.counts().unwrap(), (0, 0, 0), "nothing stored");
}

fn a_file_with_no_runs_stores_nothing(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    // A run stopped before its first record writes a file with no runs.
    let mut r = synthetic::results("lb", 1, 2, 1, &mut flat(1.0));
    r.runs.clear();
    let done = s.import(&r, &prov(1, "main")).unwrap();
    assert_eq!((done.added, done.present, done.figures), (0, 0, 0));
    assert_eq!(s.counts().unwrap(), (0, 0, 0));
    assert!(s.runs(None).unwrap().is_empty(), "no empty run is listed");
}

fn runs_started_in_the_same_second_stay_apart(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    let a = synthetic::results("lb", 1, 2, 1, &mut flat(1.0));
    let mut b = a.clone();
    for r in &mut b.runs {
        r.started_unix_s = r.started_unix_s.map(|t| t + 0.25);
    }
    s.import(&a, &prov(1, "main")).unwrap();
    let done = s.import(&b, &prov(1, "main")).unwrap();
    assert_eq!(done.added, 2, "a parallel job's run is not a re-import");
    assert_eq!(s.counts().unwrap().0, 2);
}

fn importing_twice_adds_nothing(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    let r = synthetic::results("lb", 1, 3, 2, &mut flat(1.0));
    let a = s.import(&r, &prov(1, "main")).unwrap();
    assert_eq!(a.added, 6);
    assert_eq!(a.figures, 6 * synthetic::FIGURES_PER_RECORD);
    let counts = s.counts().unwrap();
    let b = s.import(&r, &prov(1, "main")).unwrap();
    assert_eq!((b.added, b.present, b.figures), (0, 6, 0));
    assert_eq!(s.counts().unwrap(), counts);
    assert_eq!(counts, (1, 6, 6 * synthetic::FIGURES_PER_RECORD as i64));
}

fn an_appended_file_adds_only_its_new_records(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    let mut r = synthetic::results("lb", 1, 2, 1, &mut flat(1.0));
    s.import(&r, &prov(1, "main")).unwrap();
    // `perfkit run --append` adds repeats to the same file.
    let more = synthetic::results("lb", 1, 2, 2, &mut flat(1.0));
    r.runs = more.runs;
    let b = s.import(&r, &prov(1, "main")).unwrap();
    assert_eq!((b.added, b.present), (2, 2));
    assert_eq!(s.counts().unwrap().1, 4);
}

fn series_is_one_median_per_commit_in_commit_order(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    // Imported out of order: commit 3 first.
    for commit in [3usize, 1, 2] {
        let level = commit as f64;
        let r = synthetic::results("lb", commit, 1, 3, &mut |_, rep| {
            level * [1.0, 2.0, 10.0][rep as usize]
        });
        s.import(&r, &prov(commit, "main")).unwrap();
    }
    let q = SeriesQuery {
        scenario: "lb".into(),
        metric: "rx.pps".into(),
        ..Default::default()
    };
    let pts = s.series(&q).unwrap();
    let commits: Vec<_> = pts.iter().map(|p| p.commit.clone()).collect();
    assert_eq!(
        commits,
        [1, 2, 3].map(synthetic::commit_hash).to_vec(),
        "ordered by commit time"
    );
    for (i, p) in pts.iter().enumerate() {
        assert_eq!(p.n, 3);
        // rx: 695 blocks in 1/f seconds; the median repeat has factor 2x level.
        let want = 695.0 * 2.0 * (i + 1) as f64;
        assert!((p.value - want).abs() < 1e-6, "{} vs {want}", p.value);
    }
    let stage = SeriesQuery {
        metric: "stage.wire::crc16.calls".into(),
        ..q.clone()
    };
    assert_eq!(s.series(&stage).unwrap()[0].value, 2780.0);
    let none = SeriesQuery {
        metric: "rx.nothing".into(),
        ..q
    };
    assert!(s.series(&none).unwrap().is_empty());
}

fn config_branch_and_host_filters(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    s.import(
        &synthetic::results("lb", 1, 3, 1, &mut flat(1.0)),
        &prov(1, "main"),
    )
    .unwrap();
    let mut other = prov(2, "feature");
    other.host_fingerprint = "aarch64-4c".into();
    s.import(&synthetic::results("lb", 2, 3, 1, &mut flat(1.0)), &other)
        .unwrap();
    let q = |config: &[(&str, &str)], branch: Option<&str>, host: Option<&str>| SeriesQuery {
        scenario: "lb".into(),
        metric: "tx.bps".into(),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        branch: branch.map(str::to_owned),
        host_fingerprint: host.map(str::to_owned),
    };
    assert_eq!(s.series(&q(&[], None, None)).unwrap().len(), 6);
    let one = s.series(&q(&[("block_size", "17")], None, None)).unwrap();
    assert_eq!(one.len(), 2);
    assert!(one.iter().all(|p| p.config.contains("\"block_size\":17")));
    assert_eq!(
        s.series(&q(&[("link", "loopback")], Some("main"), None))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        s.series(&q(&[], None, Some("aarch64-4c"))).unwrap().len(),
        3
    );
    assert!(s
        .series(&q(&[("link", "uart")], None, None))
        .unwrap()
        .is_empty());
}

fn list_is_newest_first_with_record_counts(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    for c in [2usize, 5, 1] {
        s.import(
            &synthetic::results("lb", c, 2, 2, &mut flat(1.0)),
            &prov(c, "main"),
        )
        .unwrap();
    }
    let runs = s.runs(None).unwrap();
    let commits: Vec<_> = runs.iter().map(|r| r.commit.clone()).collect();
    assert_eq!(commits, [5, 2, 1].map(synthetic::commit_hash).to_vec());
    assert!(runs.iter().all(|r| r.records == 4 && r.scenario == "lb"));
    assert!(s.runs(Some("other")).unwrap().is_empty());
    assert_eq!(
        s.metrics("lb").unwrap().len(),
        synthetic::FIGURES_PER_RECORD
    );
}

fn prune_keeps_the_newest_commits_and_drops_branches(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    for c in 1..=5usize {
        s.import(
            &synthetic::results("lb", c, 1, 1, &mut flat(1.0)),
            &prov(c, "main"),
        )
        .unwrap();
    }
    s.import(
        &synthetic::results("lb", 9, 1, 1, &mut flat(1.0)),
        &prov(9, "feature"),
    )
    .unwrap();
    let gone = s
        .prune(&Prune {
            keep_commits: Some(2),
            branch: Some("feature".into()),
        })
        .unwrap();
    assert_eq!(gone, 4);
    let left: Vec<_> = s
        .runs(None)
        .unwrap()
        .iter()
        .map(|r| r.commit.clone())
        .collect();
    assert_eq!(left, [5, 4].map(synthetic::commit_hash).to_vec());
    let (runs, records, figures) = s.counts().unwrap();
    assert_eq!((runs, records), (2, 2));
    assert_eq!(figures, 2 * synthetic::FIGURES_PER_RECORD as i64);
    assert!(matches!(
        s.prune(&Prune::default()).unwrap_err().kind(),
        ErrorKind::Input(_)
    ));
}

fn latest_is_the_newest_run_per_scenario(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    for (c, level) in [(1usize, 1.0), (2, 2.0)] {
        s.import(
            &synthetic::results("lb", c, 2, 3, &mut flat(level)),
            &prov(c, "main"),
        )
        .unwrap();
    }
    let latest = s.latest(None).unwrap();
    assert_eq!(latest.len(), 2 * synthetic::FIGURES_PER_RECORD);
    assert!(latest.iter().all(|l| l.commit == synthetic::commit_hash(2)));
    let pps = latest
        .iter()
        .find(|l| l.metric == "rx.pps" && l.config.contains("\"block_size\":16"))
        .unwrap();
    assert!((pps.value - 695.0 * 2.0 * 1.001).abs() < 1e-6, "{pps:?}");
    assert!(pps.range.0 < pps.value && pps.value < pps.range.1);
}

fn failed_records_keep_no_figures(db: &Db) {
    let mut s = Store::open(&db.url).unwrap();
    let mut r = synthetic::results("lb", 1, 1, 2, &mut flat(1.0));
    r.runs[1].error = Some("link went away".into());
    let a = s.import(&r, &prov(1, "main")).unwrap();
    assert_eq!(a.added, 2);
    assert_eq!(a.figures, synthetic::FIGURES_PER_RECORD);
}

fn reopening_keeps_data_and_a_newer_schema_is_refused(db: &Db) {
    {
        let mut s = Store::open(&db.url).unwrap();
        assert_eq!(
            s.schema_version().unwrap(),
            perfkit_history::schema::VERSION
        );
        s.import(
            &synthetic::results("lb", 1, 1, 1, &mut flat(1.0)),
            &prov(1, "main"),
        )
        .unwrap();
    }
    let mut s = Store::open(&db.url).unwrap();
    assert_eq!(s.counts().unwrap().1, 1);
    drop(s);
    raw(
        db,
        "INSERT INTO perfkit_schema (version, applied_unix_s) VALUES (99, 0)",
    );
    let e = Store::open(&db.url).err().expect("refused");
    assert!(
        matches!(e.kind(), ErrorKind::NewerSchema { found: 99 }),
        "{e}"
    );
    assert!(e.to_string().contains("upgrade perfkit"));
}
