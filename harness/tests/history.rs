//! `perfkit run --record`, `perfkit history ...` and `perfkit gate --history`
//! through the real binary, in temporary project folders.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn perfkit(dir: &Path, args: &[&str], db: Option<&Path>) -> Output {
    let mut c = Command::new(common::exe());
    c.args(args)
        .current_dir(dir)
        .env("PERFKIT_ROOT", common::root())
        .env_remove("PERFKIT_DB")
        .env_remove("PERFKIT_BRANCH")
        .env_remove("PERFKIT_HOST_CLASS");
    if let Some(db) = db {
        c.env("PERFKIT_DB", db);
    }
    c.output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run_args<'a>(scenario: &'a str, out: &'a str) -> Vec<&'a str> {
    vec!["run", scenario, "--quiet", "--no-report", "--out", out]
}

fn records(results: &Path) -> usize {
    let v: Value = serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    v["runs"].as_array().unwrap().len()
}

/// `N run(s), N record(s), N figure(s)` from `history list`.
fn counts(dir: &Path, db: impl AsRef<std::ffi::OsStr>) -> (u64, u64, u64) {
    let o = perfkit(dir, &["history", "list"], Some(Path::new(db.as_ref())));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    let last = t.lines().rfind(|l| l.contains("record(s)")).unwrap();
    let n: Vec<u64> = last
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (n[0], n[1], n[2])
}

#[test]
fn record_goes_to_the_projects_default_database_and_import_is_idempotent() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join(".git")).unwrap();
    let sub = d.path().join("deep/er");
    std::fs::create_dir_all(&sub).unwrap();
    let scenario = common::root().join("scenarios/uart-throttled.toml");
    let out = d.path().join("out");
    let mut args = run_args(scenario.to_str().unwrap(), out.to_str().unwrap());
    args.push("--record");
    let o = perfkit(&sub, &args, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let db = d.path().join(".perfkit/history.db");
    assert!(db.exists(), "the project root is the folder with .git");
    assert!(text(&o).contains("history: 1 record(s)"), "{}", text(&o));

    let results = out.join("results.json");
    let o = perfkit(
        &sub,
        &["history", "import", results.to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("0 record(s) added, 1 already stored"),
        "{}",
        text(&o)
    );
    assert_eq!(counts(&sub, &db).0, 1);
}

#[test]
fn record_key_in_a_scenario_records_without_the_flag() {
    let d = tempfile::tempdir().unwrap();
    let src =
        std::fs::read_to_string(common::root().join("scenarios/uart-throttled.toml")).unwrap();
    let scenario = d.path().join("rec.toml");
    std::fs::write(&scenario, format!("record = true\n{src}")).unwrap();
    let db = d.path().join("h.db");
    let out = d.path().join("out");
    let o = perfkit(
        d.path(),
        &run_args(scenario.to_str().unwrap(), out.to_str().unwrap()),
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(counts(d.path(), &db).1, 1);
}

/// Five `perfkit run --record` processes at once into `db` (short runs of
/// equal length, so their writes meet); every record must arrive.
fn record_concurrently(dir: &Path, db: &str) {
    let scenario = common::root().join("scenarios/loopback.toml");
    let outs: Vec<PathBuf> = (0..5).map(|i| dir.join(format!("o{i}"))).collect();
    let children: Vec<_> = outs
        .iter()
        .map(|out| {
            let mut args = run_args(scenario.to_str().unwrap(), out.to_str().unwrap());
            args.extend(["--record", "--db", db]);
            Command::new(common::exe())
                .args(&args)
                .current_dir(dir)
                .env("PERFKIT_ROOT", common::root())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let want: usize = outs.iter().map(|o| records(&o.join("results.json"))).sum();
    let (runs, recs, figures) = counts(dir, db);
    assert_eq!(runs, 5);
    assert_eq!(recs as usize, want);
    assert!(
        figures > 50 * want as u64,
        "every record's figures: {figures}"
    );
}

#[test]
fn concurrent_recording_processes_lose_nothing() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("shared.db");
    record_concurrently(d.path(), db.to_str().unwrap());
}

/// The same against PostgreSQL when `PERFKIT_TEST_POSTGRES` names a server
/// (scripts/test.d/50-history-postgres.sh), in a schema of its own.
#[test]
fn concurrent_recording_into_postgres_loses_nothing() {
    let Some(base) = std::env::var("PERFKIT_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty())
    else {
        eprintln!("PERFKIT_TEST_POSTGRES not set: PostgreSQL not tried");
        return;
    };
    let schema = format!("harness_{}", std::process::id());
    let mut c = postgres::Client::connect(&base, postgres::NoTls).unwrap();
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-csearch_path%3D{schema}");
    let d = tempfile::tempdir().unwrap();
    record_concurrently(d.path(), &url);
}

/// A copy of `results` as if measured at another commit, its rates scaled.
fn at_commit(results: &Path, to: &Path, i: usize, scale: f64) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(results).unwrap()).unwrap();
    v["meta"]["git_commit"] = format!("{i:040x}").into();
    v["meta"]["date"] = format!("2026-11-{:02}T10:00:00Z", 1 + i).into();
    for r in v["runs"].as_array_mut().unwrap() {
        let bps = r["rx"]["bps"].as_f64().unwrap();
        r["rx"]["bps"] = (bps * scale).into();
    }
    std::fs::write(to, serde_json::to_vec(&v).unwrap()).unwrap();
}

#[test]
fn gate_against_history_flags_a_step_and_names_its_commit() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("h.db");
    let scenario = common::root().join("scenarios/uart-throttled.toml");
    let out = d.path().join("out");
    let o = perfkit(
        d.path(),
        &run_args(scenario.to_str().unwrap(), out.to_str().unwrap()),
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let base = out.join("results.json");
    let mut files = Vec::new();
    for i in 0..12 {
        let f = d.path().join(format!("c{i}.json"));
        at_commit(&base, &f, i, 1.0);
        files.push(f);
    }
    let mut args = vec!["history", "import", "--branch", "main"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let o = perfkit(d.path(), &args, Some(&db));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    let same = d.path().join("same.json");
    at_commit(&base, &same, 20, 1.0);
    let gate = |f: &Path| {
        perfkit(
            d.path(),
            &[
                "gate",
                "--history",
                f.to_str().unwrap(),
                "--threshold",
                "rx.bps=5",
            ],
            Some(&db),
        )
    };
    let o = gate(&same);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("ok (threshold 5%)"), "{}", text(&o));

    let slow = d.path().join("slow.json");
    at_commit(&base, &slow, 21, 0.9);
    let o = gate(&slow);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("began at {}", &format!("{:040x}", 21)[..10])),
        "{}",
        text(&o)
    );

    // The report's trends: a chart per headline metric across the commits.
    let html = d.path().join("r.html");
    let o = perfkit(
        d.path(),
        &[
            "report",
            "--history",
            same.to_str().unwrap(),
            "-o",
            html.to_str().unwrap(),
        ],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<figure class=\"chart trend\" data-metric=\"rx.bps\""));
    assert!(page.contains("<svg class=\"spark\""), "stage sparklines");

    // The trend, one row per commit; exports parse.
    let o = perfkit(
        d.path(),
        &["history", "show", "rx.bps", "--scenario", "uart-throttled"],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(text(&o).lines().count(), 2 + 12, "{}", text(&o));
    let o = perfkit(
        d.path(),
        &["history", "export", "--format", "bmf"],
        Some(&db),
    );
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["uart-throttled"]["rx.bps"]["value"].as_f64().unwrap() > 0.0);
}

#[test]
fn bad_requests_exit_2_with_a_message() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("h.db");
    // Reading a history that is not there (a mistyped --db) makes none.
    let baseline = common::root().join("fixtures/baselines/uart-sweep.json");
    let baseline = baseline.to_str().unwrap();
    for args in [
        &["history", "list"][..],
        &["history", "show", "rx.bps", "--scenario", "x"],
        &["gate", "--history", baseline],
    ] {
        let o = perfkit(d.path(), args, Some(&db));
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("no history database at"), "{}", text(&o));
        assert!(!db.exists(), "{args:?} made {}", db.display());
    }
    // An import that fails on its input makes no database either (a later
    // gate would pass against the empty one).
    let o = perfkit(d.path(), &["history", "import", "missing.json"], Some(&db));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!db.exists(), "a failed import made {}", db.display());
    let o = perfkit(d.path(), &["history", "import", baseline], Some(&db));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // A threshold naming no metric judges nothing: refused, not passed.
    let o = perfkit(
        d.path(),
        &[
            "gate",
            "--history",
            baseline,
            "--threshold",
            "stage.receiver::stroe.p50_ns=25",
        ],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("`stage.receiver::stroe.p50_ns` names no metric"),
        "{}",
        text(&o)
    );
    let o = perfkit(
        d.path(),
        &["history", "show", "rx.bps", "--scenario", "nothing"],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o).contains("no history for scenario `nothing`"),
        "{}",
        text(&o)
    );
    // A database path that is a folder.
    let o = perfkit(
        d.path(),
        &["history", "list", "--db", d.path().to_str().unwrap()],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("history database"), "{}", text(&o));
    let o = perfkit(d.path(), &["history", "import", "missing.json"], Some(&db));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("missing.json"), "{}", text(&o));
    let o = perfkit(d.path(), &["gate", "results.json"], Some(&db));
    assert_eq!(o.status.code(), Some(2), "neither --baseline nor --history");
}

/// A file imported without a branch gets one from a later import that names
/// it (no record stored twice); a run stored under another branch keeps it,
/// and the import warns instead of moving it.
#[test]
fn a_later_import_names_the_branch_a_first_left_out() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("h.db");
    let file = common::root().join("fixtures/baselines/uart-sweep.json");
    let file = file.to_str().unwrap();
    let branches = || {
        let o = perfkit(d.path(), &["history", "list"], Some(&db));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let t = String::from_utf8_lossy(&o.stdout).into_owned();
        (t.contains(" main "), t.contains(" feature "), t)
    };
    let o = perfkit(d.path(), &["history", "import", file], Some(&db));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(matches!(branches(), (false, false, _)), "{}", branches().2);

    let o = perfkit(
        d.path(),
        &["history", "import", file, "--branch", "main"],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("0 record(s) added"), "{}", text(&o));
    assert!(
        text(&o).contains("stored before without a branch; now on main"),
        "{}",
        text(&o)
    );
    assert!(matches!(branches(), (true, false, _)), "{}", branches().2);

    let o = perfkit(
        d.path(),
        &["history", "import", file, "--branch", "feature"],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("already stored on branch `main`, which it keeps"),
        "{err}"
    );
    assert!(matches!(branches(), (true, false, _)), "{}", branches().2);
}

#[test]
fn a_later_import_names_the_host_class_a_first_knew_only_by_name() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("h.db");
    // Results from a machine that is not this one.
    let src = common::root().join("fixtures/baselines/uart-sweep.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(src).unwrap()).unwrap();
    v["meta"]["host"] = "far-runner-17".into();
    let file = d.path().join("far.json");
    std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    let file = file.to_str().unwrap();
    let list = || {
        let o = perfkit(d.path(), &["history", "list"], Some(&db));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let o = perfkit(d.path(), &["history", "import", file], Some(&db));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(list().contains("host:far-runner-17"), "{}", list());

    let import_as = |class: &str| {
        let o = perfkit(
            d.path(),
            &["history", "import", file, "--host-class", class],
            Some(&db),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        o
    };
    let o = import_as("ci-epyc-2c");
    assert!(text(&o).contains("0 record(s) added"), "{}", text(&o));
    assert!(
        text(&o).contains("stored before under its host's name only; now of host class ci-epyc-2c"),
        "{}",
        text(&o)
    );
    assert!(list().contains("ci-epyc-2c"), "{}", list());
    assert!(!list().contains("host:far-runner-17"), "{}", list());

    let o = import_as("ci-xeon-2c");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("warning") && err.contains("already stored as host class `ci-epyc-2c`"),
        "{err}"
    );
    assert!(!list().contains("ci-xeon-2c"), "{}", list());
    // An empty class is no class: refused, not stored.
    let o = perfkit(
        d.path(),
        &["history", "import", file, "--host-class", ""],
        Some(&db),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));

    // $PERFKIT_HOST_CLASS names the class of a file from another host too.
    let db2 = d.path().join("h2.db");
    let o = Command::new(common::exe())
        .args(["history", "import", file])
        .current_dir(d.path())
        .env("PERFKIT_DB", &db2)
        .env_remove("PERFKIT_BRANCH")
        .env("PERFKIT_HOST_CLASS", "ci-from-env")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = perfkit(d.path(), &["history", "list"], Some(&db2));
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.contains("ci-from-env") && !t.contains("host:far"), "{t}");
}

/// `perfkit` as a user who may only read what the test made: `nobody`
/// through setpriv when the tests run as root (whom file permissions do not
/// stop), else the test's own user. `None` when that cannot be arranged.
fn as_reader(dir: &Path, args: &[&str], db: &Path) -> Option<Output> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mut c = if root {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            common::exe(),
        ]);
        c
    } else {
        Command::new(common::exe())
    };
    c.args(args)
        .current_dir(dir)
        .env("PERFKIT_ROOT", common::root())
        .env("PERFKIT_DB", db)
        .env_remove("PERFKIT_BRANCH")
        .env_remove("PERFKIT_HOST_CLASS");
    match c.output() {
        Err(e) if root => {
            eprintln!("setpriv: {e}: the read-only history test needs it as root; not run");
            None
        }
        o => Some(o.unwrap()),
    }
}

/// Sets a path's mode; puts the saved modes back when dropped, so the
/// temporary folder can be removed whoever ran the test.
struct Modes(Vec<(PathBuf, u32)>);

impl Modes {
    fn set(&mut self, p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let old = std::fs::metadata(p).unwrap().permissions().mode();
        self.0.push((p.to_owned(), old));
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

impl Drop for Modes {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for (p, m) in self.0.drain(..).rev() {
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m));
        }
    }
}

/// A history this user may only read (the file, or its folder, not
/// writable: a shared or archived database) is read by every reading
/// command, with nothing written to it; `prune`, which writes, is refused;
/// a schema older than this perfkit's is refused naming the file and
/// saying what to run, not half-read.
#[test]
fn a_history_this_user_may_only_read_is_read() {
    let d = tempfile::tempdir().unwrap();
    let mut modes = Modes(Vec::new());
    modes.set(d.path(), 0o755);
    let folder = d.path().join("h");
    std::fs::create_dir(&folder).unwrap();
    let db = folder.join("h.db");
    let results = common::root().join("fixtures/baselines/uart-sweep.json");
    let results = results.to_str().unwrap();
    let o = perfkit(d.path(), &["history", "import", results], Some(&db));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    modes.set(&out, 0o777);
    let report = out.join("r.html");
    let report = report.to_str().unwrap();
    let reading: [&[&str]; 5] = [
        &["history", "list"],
        &[
            "history",
            "show",
            "rx.bps",
            "--scenario",
            "uart-sweep",
            "--last",
            "3",
        ],
        &["history", "export", "--format", "openmetrics"],
        &["gate", "--history", results, "--threshold", "rx.bps=5"],
        &["report", results, "--history", "-o", report],
    ];
    let before = std::fs::read(&db).unwrap();
    let listing = |dir: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // The file and its folder read-only, then the file alone.
    modes.set(&db, 0o444);
    modes.set(&folder, 0o555);
    for args in reading {
        let Some(o) = as_reader(d.path(), args, &db) else {
            return;
        };
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    }
    assert!(text(&as_reader(d.path(), reading[0], &db).unwrap()).contains("36 record(s)"));
    assert!(std::fs::read_to_string(report).unwrap().contains("<svg"));
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing written");
    assert_eq!(listing(&folder), ["h.db"], "no file made beside it");
    let o = as_reader(d.path(), &["history", "prune", "--keep-commits", "1"], &db).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("h.db"), "{}", text(&o));
    modes.set(&folder, 0o777);
    let o = as_reader(d.path(), reading[0], &db).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(std::fs::read(&db).unwrap(), before, "nothing written");

    // No perfkit schema yet (an empty file): older than this perfkit's.
    let empty = folder.join("empty.db");
    std::fs::write(&empty, "").unwrap();
    modes.set(&empty, 0o444);
    modes.set(&folder, 0o555);
    let o = as_reader(d.path(), reading[0], &empty).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(empty.to_str().unwrap())
            && t.contains("older than this perfkit's")
            && t.contains("with write access"),
        "{t}"
    );
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);
}

/// Runs scripts/validate-export.py (needs scripts/setup.d/35-export-validators.sh
/// and scripts/env.sh, as every test run does).
fn validate(format: &str, file: &Path) -> Output {
    Command::new("python3")
        .arg(common::root().join("scripts/validate-export.py"))
        .args([format, file.to_str().unwrap()])
        .output()
        .unwrap()
}

#[test]
fn exports_are_accepted_by_their_consumers_parsers() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("h.db");
    let scenario = common::root().join("scenarios/loopback.toml");
    let out = d.path().join("out");
    let mut args = run_args(scenario.to_str().unwrap(), out.to_str().unwrap());
    args.push("--record");
    let o = perfkit(d.path(), &args, Some(&db));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (format, extra) in [
        ("openmetrics", None),
        ("bmf", None),
        ("gab", Some("bigger")),
        ("gab", Some("smaller")),
    ] {
        let file = d.path().join(format!("export.{format}"));
        let mut args = vec!["history", "export", "--format", format, "-o"];
        args.push(file.to_str().unwrap());
        if let Some(dir) = extra {
            args.extend(["--direction", dir]);
        }
        let o = perfkit(d.path(), &args, Some(&db));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let v = validate(format, &file);
        assert!(
            v.status.success(),
            "{format} rejected (validators installed? bash scripts/setup.d/35-export-validators.sh): {}",
            text(&v)
        );
    }
    // The validators do reject: OpenMetrics without its `# EOF`.
    let om = std::fs::read_to_string(d.path().join("export.openmetrics")).unwrap();
    let cut = d.path().join("cut.openmetrics");
    std::fs::write(&cut, om.replace("# EOF\n", "")).unwrap();
    assert!(!validate("openmetrics", &cut).status.success());
}

#[test]
fn hyperfine_and_criterion_figures_import_beside_perfkits() {
    let d = tempfile::tempdir().unwrap();
    let db = d.path().join("h.db");
    let hf = d.path().join("hf.json");
    std::fs::write(
        &hf,
        r#"{"results":[{"command":"perfkit send x","mean":0.25,"stddev":0.01,"median":0.24,
        "user":0.2,"system":0.03,"min":0.23,"max":0.3,"times":[0.23,0.3],"exit_codes":[0,0]}]}"#,
    )
    .unwrap();
    let crit = d.path().join("criterion");
    for (bench, mean) in [("render/one", 1500.0), ("render/many", 9100.0)] {
        for sub in ["new", "base"] {
            let dir = crit.join(bench).join(sub);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("estimates.json"),
                format!(
                    r#"{{"mean":{{"point_estimate":{mean}}},"median":{{"point_estimate":{mean}}}}}"#
                ),
            )
            .unwrap();
        }
    }
    std::fs::create_dir_all(crit.join("report")).unwrap();
    let import = |tool: &str, scenario: &str, path: &Path| {
        perfkit(
            d.path(),
            &[
                "history",
                "import",
                "--from",
                tool,
                "--scenario",
                scenario,
                path.to_str().unwrap(),
            ],
            Some(&db),
        )
    };
    for _ in 0..2 {
        for (tool, scenario, path) in [("hyperfine", "cli", &hf), ("criterion", "benches", &crit)] {
            let o = import(tool, scenario, path);
            assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        }
    }
    assert_eq!(
        counts(d.path(), &db),
        (2, 3, 7 + 2 * 2),
        "twice imported, stored once"
    );
    let o = perfkit(
        d.path(),
        &[
            "history",
            "show",
            "metrics.mean_ns",
            "--scenario",
            "benches",
            "--config",
            "benchmark=render/many",
        ],
        Some(&db),
    );
    assert!(text(&o).contains("9100"), "{}", text(&o));
    let o = import("criterion", "b", &hf);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}
