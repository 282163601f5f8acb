//! `perfkit history ...`, `perfkit run --record` and `perfkit gate --history`:
//! thin commands over `perfkit-history`.
//!
//! The database is `--db`, else `$PERFKIT_DB`, else `.perfkit/history.db` in
//! the project being measured: the nearest folder above the current one
//! that holds a `.perfkit` folder, else a `.git`, else the current folder.
//! A `postgres://` or `postgresql://` URL selects PostgreSQL.
//!
//! The keys a results file does not carry are worked out here: the branch
//! (`$PERFKIT_BRANCH`, else git's current branch when the file's commit is
//! the checkout's HEAD), the commit time (git, else the run's date) and the
//! host class (`$PERFKIT_HOST_CLASS`, else this machine's architecture, CPU
//! count and CPU model, when the file was written on this machine).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::anyhow;
use clap::{Args, Subcommand, ValueEnum};
use perfkit_history::changepoint::{self, Direction, Rule, Verdict};
use perfkit_history::{export, foreign, gate as hgate, Provenance, Prune, SeriesQuery, Store};
use perfkit_report::trend::{StageTrend, TrendChart, TrendSeries, Trends};
use perfkit_report::{files, gate::GateConfig, model, table};

use crate::{CmdResult, Failure, EXIT_OK, EXIT_REGRESSION};

/// The environment variable naming the history database.
pub const DB_VAR: &str = "PERFKIT_DB";

/// Arguments of `perfkit history`.
#[derive(Args)]
pub struct HistoryArgs {
    #[command(subcommand)]
    command: HistoryCommand,
    /// The database: a SQLite file or a postgres:// URL (default: $PERFKIT_DB,
    /// else .perfkit/history.db in the project).
    #[arg(long, global = true, value_name = "PATH|URL")]
    db: Option<String>,
}

#[derive(Subcommand)]
enum HistoryCommand {
    /// Store results files (idempotent: a record already stored is skipped;
    /// a run stored without a branch takes --branch, one stored under
    /// another branch keeps it, with a warning).
    #[command(
        after_help = "Example:\n  perfkit history import reports/*/results.json --branch main"
    )]
    Import(ImportArgs),
    /// List the stored runs, newest commit first.
    List {
        /// Only this scenario's runs.
        #[arg(long)]
        scenario: Option<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// A metric across commits, one row per commit and configuration.
    #[command(
        after_help = "Example:\n  perfkit history show rx.bps --scenario uart-sweep --config baud=115200"
    )]
    Show(ShowArgs),
    /// The latest figures in another tool's format.
    #[command(after_help = "Examples:\n  \
        perfkit history export --format bmf -o bench.json\n  \
        perfkit history export --format gab --direction smaller\n  \
        perfkit history export --format openmetrics")]
    Export(ExportArgs),
    /// Remove old runs, or a branch's runs.
    Prune {
        /// Keep the newest N commits of each scenario, branch and host class.
        #[arg(long, value_name = "N")]
        keep_commits: Option<usize>,
        /// Remove every run of this branch.
        #[arg(long, value_name = "BRANCH")]
        branch: Option<String>,
    },
}

/// Overrides for the keys a results file does not carry.
#[derive(Args, Default, Clone)]
pub struct KeyArgs {
    /// Branch the runs were measured on (default: $PERFKIT_BRANCH, else git's).
    #[arg(long)]
    branch: Option<String>,
    /// Host class (default: $PERFKIT_HOST_CLASS, else this machine's when the
    /// file was written here, else `host:<name>`).
    #[arg(long, value_name = "CLASS", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    host_class: Option<String>,
}

#[derive(Args)]
struct ImportArgs {
    /// Results files written by `perfkit run`; with --from hyperfine, its
    /// --export-json files; with --from criterion, estimates.json files or
    /// folders to search for them (criterion's target/criterion).
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// The tool that wrote the files.
    #[arg(long, value_enum, default_value = "perfkit")]
    from: Tool,
    /// With --from hyperfine|criterion: the scenario to file them under.
    #[arg(long, required_if_eq_any = [("from", "hyperfine"), ("from", "criterion")])]
    scenario: Option<String>,
    /// With --from hyperfine|criterion: the commit measured (default: git's HEAD).
    #[arg(long, value_name = "SHA")]
    commit: Option<String>,
    #[command(flatten)]
    keys: KeyArgs,
}

#[derive(Clone, Copy, PartialEq, ValueEnum)]
enum Tool {
    /// perfkit's results.json.
    Perfkit,
    /// hyperfine --export-json.
    Hyperfine,
    /// criterion's estimates.json.
    Criterion,
}

#[derive(Args)]
struct ShowArgs {
    /// Metric: rx.bps, tx.pps, link.utilisation, stage.<site>.p99_ns, ...
    metric: String,
    /// Scenario name.
    #[arg(long)]
    scenario: String,
    /// Only configurations with this parameter value. Repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// Only runs on this branch.
    #[arg(long)]
    branch: Option<String>,
    /// Only runs of this host class.
    #[arg(long, value_name = "CLASS")]
    host_class: Option<String>,
    /// Only the newest N commits.
    #[arg(long, value_name = "N")]
    last: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Bencher Metric Format (JSON).
    Bmf,
    /// github-action-benchmark custom JSON (customBiggerIsBetter / customSmallerIsBetter).
    Gab,
    /// OpenMetrics text (Prometheus, Grafana).
    Openmetrics,
}

#[derive(Clone, Copy, ValueEnum)]
enum Better {
    /// Rates and throughput: customBiggerIsBetter.
    Bigger,
    /// Times and latencies: customSmallerIsBetter.
    Smaller,
}

#[derive(Args)]
struct ExportArgs {
    /// Output format.
    #[arg(long, value_enum)]
    format: Format,
    /// For `gab`: which metrics (the tool takes one direction per file).
    #[arg(long, value_enum, default_value = "bigger")]
    direction: Better,
    /// Only the newest run on this branch.
    #[arg(long)]
    branch: Option<String>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// `perfkit gate --history` arguments, flattened into `perfkit gate`.
#[derive(Args, Default)]
pub struct GateHistoryArgs {
    /// Judge the results against the history of the same scenario,
    /// configuration and host class on the base branch, not a baseline file.
    #[arg(long, conflicts_with = "baseline")]
    pub history: bool,
    /// With --history: commits of history to compare with.
    #[arg(long, value_name = "N", default_value_t = 30, requires = "history")]
    pub window: usize,
    /// With --history: the branch whose history is the reference.
    #[arg(
        long,
        value_name = "BRANCH",
        default_value = "main",
        requires = "history"
    )]
    pub base_branch: String,
    /// With --history: the database (default: $PERFKIT_DB, else
    /// .perfkit/history.db in the project).
    #[arg(long = "db", value_name = "PATH|URL", requires = "history")]
    pub db: Option<String>,
    /// With --history: the host class of the results (default: this machine's).
    #[arg(
        long,
        value_name = "CLASS",
        requires = "history",
        value_parser = clap::builder::NonEmptyStringValueParser::new()
    )]
    pub host_class: Option<String>,
}

/// The database location: the flag, `$PERFKIT_DB`, or the project's default.
pub fn database(flag: Option<&str>) -> String {
    if let Some(f) = flag.filter(|f| !f.is_empty()) {
        return f.to_owned();
    }
    if let Some(v) = std::env::var(DB_VAR).ok().filter(|v| !v.is_empty()) {
        return v;
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    project_root(&cwd)
        .join(".perfkit/history.db")
        .display()
        .to_string()
}

/// The project being measured: the nearest folder at or above `from` with a
/// `.perfkit` folder, else with a `.git`, else `from` itself.
fn project_root(from: &Path) -> PathBuf {
    let with = |marker: &str| from.ancestors().find(|d| d.join(marker).exists());
    with(".perfkit")
        .or_else(|| with(".git"))
        .unwrap_or(from)
        .to_owned()
}

/// Opens the history to store runs in, making a SQLite file if there is none.
fn open(db: &str) -> Result<Store, Failure> {
    // Named: "file is not a database" alone does not say which file.
    Store::open(db)
        .map_err(|e| Failure::input(anyhow!("{}: {e}", perfkit_history::engine::redact(db))))
}

/// Opens the history to read: a SQLite file must exist already, or a
/// mistyped `--db` would read an empty history (and leave a new file) and a
/// gate would find nothing to fail. Nothing is written to read it, so a
/// history this user may only read (a shared file, a read-only folder or
/// mount) is read read-only.
fn open_existing(db: &str) -> Result<Store, Failure> {
    must_exist(db)?;
    Store::open_to_read(db)
        .map_err(|e| Failure::input(anyhow!("{}: {e}", perfkit_history::engine::redact(db))))
}

/// [`open_existing`] for a command that changes the history (`prune`).
fn open_existing_to_write(db: &str) -> Result<Store, Failure> {
    must_exist(db)?;
    open(db)
}

fn must_exist(db: &str) -> Result<(), Failure> {
    let path = perfkit_history::sqlite_path(db).map_err(|e| Failure::input(anyhow!(e)))?;
    if let Some(path) = path.filter(|p| !p.is_file()) {
        return Err(Failure::input(anyhow!(
            "no history database at {}: `perfkit run --record` or `perfkit history import` \
             makes one; check --db or ${DB_VAR}",
            path.display()
        )));
    }
    Ok(())
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// When `commit` was made, as git knows it. The name comes from a results
/// file or the command line: one that git would read as an option (a
/// crafted `--output=FILE` made `git show` overwrite FILE) is never passed.
fn commit_time(commit: &str) -> Option<i64> {
    if commit.is_empty() || commit.starts_with('-') {
        return None;
    }
    git(&["show", "-s", "--format=%ct", commit])?.parse().ok()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The keys of a results file: flags, environment, git, the file.
fn provenance(results: &model::Results, keys: &KeyArgs) -> Provenance {
    let commit = results.meta.git_commit.clone().unwrap_or_default();
    let head = git(&["rev-parse", "HEAD"]);
    let branch = keys
        .branch
        .clone()
        .or_else(|| env("PERFKIT_BRANCH"))
        .or_else(|| {
            (head.as_deref() == Some(commit.as_str()))
                .then(|| git(&["rev-parse", "--abbrev-ref", "HEAD"]))
                .flatten()
                .filter(|b| b != "HEAD")
        })
        .unwrap_or_default();
    let run_time = humantime::parse_rfc3339_weak(&results.meta.date)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let commit_time = commit_time(&commit).unwrap_or(run_time);
    // As documented: the flag, then the variable, whichever host wrote the
    // file (`host::class` reads the variable too, but only for this one).
    let named = keys
        .host_class
        .clone()
        .or_else(|| env("PERFKIT_HOST_CLASS"));
    let host_fingerprint = named.unwrap_or_else(|| {
        if results.meta.host == crate::host::name() {
            crate::host::class()
        } else {
            format!("{}{}", perfkit_history::HOST_NAME_ONLY, results.meta.host)
        }
    });
    Provenance {
        commit,
        branch,
        commit_time,
        host_fingerprint,
        source: "perfkit".into(),
    }
}

/// Stores a finished run's results (`perfkit run --record`).
pub fn record(results: &model::Results, db: Option<&str>) -> Result<(), Failure> {
    let location = database(db);
    let mut store = open(&location)?;
    let prov = provenance(results, &KeyArgs::default());
    let done = store
        .import(results, &prov)
        .map_err(|e| Failure::run(anyhow!(e)))?;
    println!(
        "history: {} record(s) of commit {} on {} -> {}",
        done.added,
        short(&prov.commit),
        if prov.branch.is_empty() {
            "(no branch)"
        } else {
            &prov.branch
        },
        perfkit_history::engine::redact(&location)
    );
    import_notes("history", &done, &prov);
    Ok(())
}

/// What an import did to a run stored before: a missing branch or host
/// class filled in (said), or another kept (a warning: the figures stay
/// where they were first stored, not where this import asked).
fn import_notes(name: &str, done: &perfkit_history::Imported, prov: &Provenance) {
    if done.branch_filled {
        println!(
            "{name}: stored before without a branch; now on {}",
            prov.branch
        );
    }
    if let Some(kept) = &done.branch_kept {
        crate::errln!(
            "perfkit: warning: {name}: already stored on branch `{kept}`, which it keeps; \
             not moved to `{}` (a run belongs to the branch it was first stored under)",
            prov.branch
        );
    }
    if done.host_class_filled {
        println!(
            "{name}: stored before under its host's name only; now of host class {}",
            prov.host_fingerprint
        );
    }
    if let Some(kept) = &done.host_class_kept {
        crate::errln!(
            "perfkit: warning: {name}: already stored as host class `{kept}`, which it keeps; \
             not moved to `{}`",
            prov.host_fingerprint
        );
    }
}

/// Prints to standard output; a closed pipe (`| head`) ends quietly.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

fn date(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `perfkit history ...`.
pub fn history(args: HistoryArgs) -> CmdResult {
    let location = database(args.db.as_deref());
    if let HistoryCommand::Import(a) = &args.command {
        // Every input is read before the database is opened: an import that
        // fails on its input makes no new, empty database, which a later
        // `gate --history` would read as a history with nothing to fail.
        let inputs = import_inputs(a)?;
        import(&mut open(&location)?, inputs, a, &location)?;
        return Ok(EXIT_OK);
    }
    let mut store = if matches!(args.command, HistoryCommand::Prune { .. }) {
        open_existing_to_write(&location)?
    } else {
        open_existing(&location)?
    };
    let db_err = |e: perfkit_history::Error| Failure::input(anyhow!(e));
    match args.command {
        // Done above, before the database was opened.
        HistoryCommand::Import(_) => {}
        HistoryCommand::List { scenario, limit } => {
            let runs = store.runs(scenario.as_deref()).map_err(db_err)?;
            let rows: Vec<Vec<String>> = runs
                .iter()
                .take(limit)
                .map(|r| {
                    vec![
                        r.scenario.clone(),
                        short(&r.commit).to_owned(),
                        date(r.commit_time),
                        r.branch.clone(),
                        r.host.clone(),
                        r.host_fingerprint.clone(),
                        r.records.to_string(),
                    ]
                })
                .collect();
            out(&table::console(
                &[
                    "scenario",
                    "commit",
                    "commit time",
                    "branch",
                    "host",
                    "host class",
                    "records",
                ],
                &rows,
            ));
            let (runs, records, figures) = store.counts().map_err(db_err)?;
            println!(
                "{runs} run(s), {records} record(s), {figures} figure(s) in {}",
                perfkit_history::engine::redact(&location)
            );
        }
        HistoryCommand::Show(a) => show(&mut store, &a)?,
        HistoryCommand::Export(a) => {
            let latest = store.latest(a.branch.as_deref()).map_err(db_err)?;
            let text = match a.format {
                Format::Bmf => export::bmf(&latest) + "\n",
                Format::Gab => {
                    let d = match a.direction {
                        Better::Bigger => Direction::HigherIsBetter,
                        Better::Smaller => Direction::LowerIsBetter,
                    };
                    export::gab(&latest, d) + "\n"
                }
                Format::Openmetrics => export::openmetrics(&latest),
            };
            match &a.output {
                Some(p) => model::write_atomic(p, text.as_bytes())
                    .map_err(|e| Failure::input(anyhow!(e)))?,
                None => out(&text),
            }
        }
        HistoryCommand::Prune {
            keep_commits,
            branch,
        } => {
            let n = store
                .prune(&Prune {
                    keep_commits,
                    branch,
                })
                .map_err(db_err)?;
            println!("history: {n} run(s) removed");
        }
    }
    Ok(EXIT_OK)
}

/// The files of an import as results documents, each with a name for messages.
fn import_inputs(a: &ImportArgs) -> Result<Vec<(String, model::Results)>, Failure> {
    let read = |p: &Path| {
        files::read_text_limited(p, model::READ_LIMIT)
            .map_err(|e| Failure::input(anyhow!("{}: {e}", p.display())))
    };
    let origin = |paths: &[&Path]| -> Result<foreign::Origin, Failure> {
        let mut newest = std::time::UNIX_EPOCH;
        for p in paths {
            let m = std::fs::metadata(p)
                .and_then(|m| m.modified())
                .map_err(|e| Failure::input(anyhow!("{}: {e}", p.display())))?;
            newest = newest.max(m);
        }
        Ok(foreign::Origin {
            scenario: a.scenario.clone().unwrap_or_default(),
            commit: a.commit.clone().or_else(|| git(&["rev-parse", "HEAD"])),
            host: crate::host::name(),
            date: humantime::format_rfc3339_seconds(newest).to_string(),
            unix_s: newest
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        })
    };
    let input = |e: perfkit_history::Error| Failure::input(anyhow!(e));
    match a.from {
        Tool::Perfkit => a
            .results
            .iter()
            .map(|p| {
                let mut r = model::Results::load(p).map_err(|e| Failure::input(anyhow!(e)))?;
                if r.meta.git_commit.is_none() {
                    r.meta.git_commit = a.commit.clone();
                }
                Ok((p.display().to_string(), r))
            })
            .collect(),
        Tool::Hyperfine => a
            .results
            .iter()
            .map(|p| {
                let r = foreign::hyperfine(p, &read(p)?, &origin(&[p])?).map_err(input)?;
                Ok((p.display().to_string(), r))
            })
            .collect(),
        Tool::Criterion => {
            let mut files = Vec::new();
            for p in &a.results {
                criterion_files(p, p, &mut files)?;
            }
            if files.is_empty() {
                return Err(Failure::input(anyhow!(
                    "no criterion estimates.json (under */new/) in {}",
                    a.results
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            let texts = files
                .iter()
                .map(|(id, p)| Ok((id.clone(), p.as_path(), read(p)?)))
                .collect::<Result<Vec<_>, Failure>>()?;
            let paths: Vec<&Path> = files.iter().map(|(_, p)| p.as_path()).collect();
            let r = foreign::criterion(&texts, &origin(&paths)?).map_err(input)?;
            Ok(vec![(format!("{} criterion benchmark(s)", files.len()), r)])
        }
    }
}

/// Criterion's `<id>/new/estimates.json` files under `p` (or `p` itself),
/// with the id relative to `root`.
fn criterion_files(root: &Path, p: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), Failure> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| Failure::input(anyhow!("{}: {e}", p.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            criterion_files(root, &e, out)?;
        }
        return Ok(());
    }
    let in_new = p
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "new"));
    if let (Some(true), Some(new)) = (p.file_name().map(|n| n == "estimates.json"), in_new) {
        let bench = new.parent().unwrap_or(new);
        let id = bench
            .strip_prefix(root)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new(bench.file_name().unwrap_or_default()));
        // criterion writes a `report` folder beside the benchmarks, never a `new`.
        out.push((id.display().to_string(), p.to_owned()));
    } else if p == root {
        return Err(Failure::input(anyhow!(
            "{}: not a criterion <benchmark>/new/estimates.json",
            p.display()
        )));
    }
    Ok(())
}

fn import(
    store: &mut Store,
    inputs: Vec<(String, model::Results)>,
    a: &ImportArgs,
    location: &str,
) -> Result<(), Failure> {
    let mut total = perfkit_history::Imported::default();
    for (name, results) in inputs {
        if results.runs.is_empty() {
            println!("{name}: no runs in it, nothing stored");
            continue;
        }
        let mut prov = provenance(&results, &a.keys);
        if a.from != Tool::Perfkit {
            prov.source = results.meta.scenario.kind.clone();
        }
        let done = store.import(&results, &prov).map_err(|e| {
            let input = matches!(e.kind(), perfkit_history::ErrorKind::Input(_));
            let e = anyhow!(e).context(format!("importing {name}"));
            if input {
                Failure::input(e)
            } else {
                Failure::run(e)
            }
        })?;
        println!(
            "{name}: {} record(s) added, {} already stored",
            done.added, done.present
        );
        import_notes(&name, &done, &prov);
        total.added += done.added;
        total.present += done.present;
        total.figures += done.figures;
    }
    println!(
        "history: {} record(s), {} figure(s) added -> {}",
        total.added,
        total.figures,
        perfkit_history::engine::redact(location)
    );
    Ok(())
}

fn show(store: &mut Store, a: &ShowArgs) -> Result<(), Failure> {
    let config = a
        .config
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| Failure::input(anyhow!("--config {kv}: expected KEY=VALUE")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut points = store
        .series(&SeriesQuery {
            scenario: a.scenario.clone(),
            metric: a.metric.clone(),
            config,
            branch: a.branch.clone(),
            host_fingerprint: a.host_class.clone(),
        })
        .map_err(|e| Failure::input(anyhow!(e)))?;
    if points.is_empty() {
        let known = store
            .metrics(&a.scenario)
            .map_err(|e| Failure::input(anyhow!(e)))?;
        return Err(Failure::input(if known.is_empty() {
            anyhow!("no history for scenario `{}`", a.scenario)
        } else {
            anyhow!(
                "no history of `{}` in scenario `{}` matching the filters; its metrics include {}",
                a.metric,
                a.scenario,
                known.iter().take(8).cloned().collect::<Vec<_>>().join(", ")
            )
        }));
    }
    if let Some(n) = a.last {
        let commits: Vec<String> = {
            let mut seen = Vec::new();
            for p in points.iter().rev() {
                if !seen.contains(&p.commit) {
                    seen.push(p.commit.clone());
                }
            }
            seen.into_iter().take(n).collect()
        };
        points.retain(|p| commits.contains(&p.commit));
    }
    let several = points.iter().any(|p| p.config != points[0].config);
    let unit = perfkit_report::metric::unit(&a.metric);
    let mut head = vec!["commit", "commit time", "branch"];
    if several {
        head.push("config");
    }
    let value_head = if unit.is_empty() {
        a.metric.clone()
    } else {
        format!("{} ({unit})", a.metric)
    };
    head.push(&value_head);
    head.push("n");
    let labels = export::Labels::new(points.iter().map(|p| p.config.as_str()));
    let rows: Vec<Vec<String>> = points
        .iter()
        .map(|p| {
            let mut r = vec![
                short(&p.commit).to_owned(),
                date(p.commit_time),
                p.branch.clone(),
            ];
            if several {
                r.push(labels.get(&p.config));
            }
            r.push(table::num(p.value));
            r.push(p.n.to_string());
            r
        })
        .collect();
    out(&table::console(&head, &rows));
    Ok(())
}

/// The report's trends for `current` from the history: a chart per
/// headline metric (the scenario's gated metrics, else tx.bps and rx.bps)
/// with a line per configuration (up to eight), and per configuration a
/// p50 sparkline per stage.
pub fn trends(current: &model::Results, db: Option<&str>) -> Result<Trends, Failure> {
    const MAX_SERIES: usize = 8;
    let mut store = open_existing(&database(db))?;
    let host = provenance(current, &KeyArgs::default()).host_fingerprint;
    let commit = current.meta.git_commit.clone().unwrap_or_default();
    let mut headline: Vec<String> = current
        .meta
        .gate
        .keys()
        .filter(|m| !m.contains('*'))
        .cloned()
        .collect();
    if headline.is_empty() {
        headline = vec!["tx.bps".into(), "rx.bps".into()];
    }
    let query = |metric: &str| SeriesQuery {
        scenario: current.meta.scenario.name.clone(),
        metric: metric.to_owned(),
        config: Vec::new(),
        branch: None,
        host_fingerprint: Some(host.clone()),
    };
    let db_err = |e: perfkit_history::Error| Failure::input(anyhow!(e));
    let mut out = Trends::default();
    for metric in &headline {
        let points = store.series(&query(metric)).map_err(db_err)?;
        let mut commits: Vec<(String, i64)> = Vec::new();
        for p in &points {
            if !commits.iter().any(|(c, _)| *c == p.commit) {
                commits.push((p.commit.clone(), p.commit_time));
            }
        }
        if commits.len() < 2 {
            continue;
        }
        let labels = export::Labels::new(points.iter().map(|p| p.config.as_str()));
        let mut configs: Vec<&str> = Vec::new();
        for p in &points {
            if !configs.contains(&p.config.as_str()) {
                configs.push(&p.config);
            }
        }
        let series = configs
            .iter()
            .take(MAX_SERIES)
            .map(|cfg| {
                let mut values = vec![None; commits.len()];
                for p in points.iter().filter(|p| p.config == *cfg) {
                    if let Some(i) = commits.iter().position(|(c, _)| *c == p.commit) {
                        values[i] = Some(p.value);
                    }
                }
                let present: Vec<(usize, f64)> = values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i, v)))
                    .collect();
                let ys: Vec<f64> = present.iter().map(|(_, v)| *v).collect();
                // A suspect marks the chart as a regression does, so whether
                // one point is proof (noise-free) does not matter here.
                let change_at =
                    match changepoint::judge(&ys, Direction::of(metric), &Rule::default(), false) {
                        Verdict::Regressed(f) | Verdict::Suspect(f) => {
                            present.get(f.began_at).map(|(i, _)| *i)
                        }
                        _ => None,
                    };
                TrendSeries {
                    name: labels.get(cfg),
                    values,
                    change_at,
                }
            })
            .collect();
        out.charts.push(TrendChart {
            metric: metric.clone(),
            current: commits.iter().position(|(c, _)| *c == commit),
            commits: commits
                .iter()
                .map(|(c, t)| format!("{} {}", c.get(..7).unwrap_or(c), &date(*t)[..10]))
                .collect(),
            series,
        });
    }
    // Per configuration of this run, each host stage's p50 across commits.
    let ids: std::collections::HashMap<String, usize> = current
        .runs
        .iter()
        .map(|r| (perfkit_history::identity(&r.config), r.config_id))
        .collect();
    let mut sites: Vec<&str> = Vec::new();
    for site in current.runs.iter().flat_map(|r| &r.stages.sites) {
        if !sites.contains(&site.name.as_str()) {
            sites.push(&site.name);
        }
    }
    for site in sites {
        let points = store
            .series(&query(&format!("stage.{site}.p50_ns")))
            .map_err(db_err)?;
        let mut by_config: std::collections::BTreeMap<usize, Vec<f64>> = Default::default();
        for p in &points {
            if let Some(id) = ids.get(&p.config) {
                by_config.entry(*id).or_default().push(p.value);
            }
        }
        for (config_id, values) in by_config.into_iter().filter(|(_, v)| v.len() >= 2) {
            out.stages.push(StageTrend {
                config_id,
                stage: site.to_owned(),
                field: "p50_ns".into(),
                values,
            });
        }
    }
    Ok(out)
}

/// `perfkit gate --history`.
pub fn gate(
    h: &GateHistoryArgs,
    results: &Path,
    thresholds: &[String],
    summary_md: Option<&Path>,
) -> CmdResult {
    let current = model::Results::load(results).map_err(|e| Failure::input(anyhow!(e)))?;
    let cfg = GateConfig::from_flags_and_meta(thresholds, &current.meta.gate)
        .map_err(|e| Failure::input(anyhow!(e)))?;
    let mut store = open_existing(&database(h.db.as_deref()))?;
    if h.window < Rule::default().min_head {
        return Err(Failure::input(anyhow!(
            "--window {}: at least {} commits are needed to judge",
            h.window,
            Rule::default().min_head
        )));
    }
    let opts = hgate::Options {
        branch: h.base_branch.clone(),
        host_fingerprint: h
            .host_class
            .clone()
            .unwrap_or_else(|| provenance(&current, &KeyArgs::default()).host_fingerprint),
        commit: current.meta.git_commit.clone().unwrap_or_default(),
        thresholds: cfg
            .thresholds
            .iter()
            .map(|t| (t.metric.clone(), t.percent))
            .collect(),
        rule: Rule {
            window: h.window,
            max_tail: (h.window / 2).max(1),
            ..Rule::default()
        },
    };
    let report =
        hgate::evaluate(&mut store, &current, &opts).map_err(|e| Failure::input(anyhow!(e)))?;
    print!("{}", report.console_table());
    if let Some(p) = summary_md {
        model::write_atomic(p, report.markdown().as_bytes())
            .map_err(|e| Failure::input(anyhow!(e)))?;
    }
    let judged = report
        .checks
        .iter()
        .filter(|c| !matches!(c.verdict, Verdict::TooShort))
        .count();
    let suspects = report
        .checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Suspect(_)))
        .count();
    if suspects > 0 {
        crate::errln!(
            "perfkit: gate: {suspects} suspect(s): one commit far out, not failed; the next run confirms or clears"
        );
    }
    if judged == 0 && report.checks.iter().all(|c| c.history == 0) {
        // A new host class or branch starts here; a mistyped one looks the same.
        crate::errln!(
            "perfkit: gate: nothing judged: no commit of branch `{}` on host class `{}` is in the \
             history for these checks; if that is not a new branch or host class, check \
             --base-branch and --host-class (`perfkit history list` shows what is stored)",
            opts.branch,
            opts.host_fingerprint
        );
    }
    if report.regressed() {
        crate::errln!(
            "perfkit: gate: regression against the history of {}",
            opts.branch
        );
        Ok(EXIT_REGRESSION)
    } else {
        println!(
            "gate: no regression ({judged} of {} check(s) had enough history on {})",
            report.checks.len(),
            opts.branch
        );
        Ok(EXIT_OK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_root_prefers_perfkit_then_git_then_here() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("a/b/c");
        std::fs::create_dir_all(&deep).unwrap();
        assert_eq!(project_root(&deep), deep);
        std::fs::create_dir_all(d.path().join(".git")).unwrap();
        assert_eq!(project_root(&deep), d.path());
        std::fs::create_dir_all(d.path().join("a/.perfkit")).unwrap();
        assert_eq!(project_root(&deep), d.path().join("a"));
    }

    #[test]
    fn a_commit_name_is_never_an_option_to_git() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim.txt");
        std::fs::write(&victim, "kept").unwrap();
        let name = format!("--output={}", victim.display());
        assert_eq!(commit_time(&name), None);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "kept");
        assert_eq!(commit_time(""), None);
    }

    #[test]
    fn the_flag_wins() {
        assert_eq!(database(Some("postgres://x/y")), "postgres://x/y");
    }
}
