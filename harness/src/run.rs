//! `perfkit run`: every configuration x repeats, one record each, results
//! written atomically after every record so an interrupted run keeps them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{anyhow, Context};
use perfkit_report::model::{Meta, Plan, Results, RunRecord, ScenarioRef, Stages};

use crate::kinds;
use crate::output;
use crate::progress::Progress;
use crate::scenario::{Scenario, MAX_RUNS, MAX_WARMUP};
use crate::{CmdResult, Failure, RunArgs, EXIT_DATA_LOST, EXIT_OK, EXIT_RUN_FAILED};

/// Loads the scenario named by the arguments and applies `--set`, `--runs`
/// and `--order`.
pub fn load(args: &RunArgs) -> Result<Scenario, Failure> {
    let mut s = crate::shipped::load(&args.scenario).map_err(Failure::input)?;
    for a in &args.set {
        s.set(a).map_err(|m| Failure::input(anyhow!(m)))?;
    }
    if !args.set.is_empty() {
        // What the file's values passed may not hold once `--set` changed them.
        s.recheck().map_err(Failure::input)?;
    }
    if let Some(m) = &args.measure {
        s.set(&format!("measure={m}"))
            .map_err(|m| Failure::input(anyhow!(m.replace("--set measure", "--measure"))))?;
    }
    if let Some(n) = args.runs {
        if n == 0 || n > MAX_RUNS {
            return Err(Failure::input(anyhow!(
                "--runs must be 1 to {MAX_RUNS}, not {n}"
            )));
        }
        s.runs = n;
    }
    if let Some(n) = args.warmup {
        if n > MAX_WARMUP {
            return Err(Failure::input(anyhow!(
                "--warmup must be 0 to {MAX_WARMUP}, not {n}"
            )));
        }
        s.warmup = n;
    }
    if let Some(o) = args.order {
        s.order = o;
    }
    Ok(s)
}

/// Converts perfkit's in-process snapshot to the results file's form.
pub fn stages_from(snap: &perfkit::Snapshot) -> Stages {
    perfkit_report::model::stages_of(snap)
}

/// What one empty `measure!` nested in a span costs on this host, in
/// nanoseconds: batches of empty scopes timed with perfkit's own clock,
/// nothing subtracted (the loop is a few instructions), the best batch
/// kept because other processes on a shared machine only ever add time.
/// Each record's host stages carry it; the report shows per stage what
/// share of its time the probe could be.
pub fn probe_ns_per_scope() -> f64 {
    const BATCHES: usize = 5;
    const SCOPES: u64 = 20_000;
    let mut best = u64::MAX;
    for _ in 0..BATCHES {
        let _outer = perfkit::span!("perfkit::calibrate");
        let t0 = perfkit::clock::now();
        for _ in 0..SCOPES {
            perfkit::measure!("perfkit::empty", std::hint::black_box(()));
        }
        best = best.min(perfkit::clock::now().saturating_sub(t0));
    }
    perfkit::clock::ticks_to_ns(best, perfkit::clock::ticks_per_second()) as f64 / SCOPES as f64
}

/// Adds another process's stages (a pipe's children) to this run's.
pub fn merge_stages(into: &mut Stages, other: Stages) {
    for site in other.sites {
        match into.sites.iter_mut().find(|s| s.name == site.name) {
            // The same site in two processes: keep both visible rather than
            // pretending the histograms merge.
            Some(_) => into.sites.push(site.map_name(|n| format!("{n} (peer)"))),
            None => into.sites.push(site),
        }
    }
    into.folded.extend(other.folded);
}

fn meta(s: &Scenario, set: &[String]) -> Meta {
    use clap::ValueEnum;
    let order = s.order.to_possible_value().map(|v| v.get_name().to_owned());
    Meta {
        perfkit_version: env!("CARGO_PKG_VERSION").to_owned(),
        git_commit: git_commit(),
        host: crate::host::name(),
        host_fingerprint: Some(crate::host::fingerprint()),
        compiler: Some(env!("PERFKIT_RUSTC").to_owned()),
        date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        scenario: ScenarioRef {
            name: s.name.clone(),
            path: s.path.display().to_string(),
            sha256: s.sha256.clone(),
            description: s.description.clone(),
            kind: s.kind.clone(),
            expect: s.expect_loss.then(|| "loss".to_owned()),
        },
        swept: s.swept(),
        gate: s.gate.clone(),
        sentinels: sentinels(&s.swept()),
        plans: vec![Some(Plan {
            runs: s.runs,
            warmup: s.warmup,
            order: order.unwrap_or_default(),
            set: set.to_vec(),
        })],
    }
}

/// The declared "off" values of the swept parameters, for the report.
fn sentinels(swept: &[String]) -> BTreeMap<String, perfkit_report::model::Sentinel> {
    swept
        .iter()
        .filter_map(|k| {
            let (value, means) = crate::scenario::param(k)?.sentinel?;
            let s = perfkit_report::model::Sentinel {
                value,
                means: means.to_owned(),
            };
            Some((k.clone(), s))
        })
        .collect()
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Default output folder for a scenario.
pub fn default_out(s: &Scenario) -> PathBuf {
    Path::new("reports").join(&s.name)
}

/// `perfkit run`.
pub fn run(args: RunArgs) -> CmdResult {
    // A network namespace a `netns` host made goes when this run does.
    let _topology = crate::remote::netns::Guard;
    let s = load(&args)?;
    // Everything knowable before running is bad input now, not a failed run later.
    kinds::preflight(&s).map_err(Failure::input)?;
    kinds::secrets(&s).map_err(Failure::input)?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&s));
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create output folder {}", out_dir.display()))
        .map_err(Failure::input)?;
    // Held until the process ends: a second run into this folder would
    // interleave its writes of results.json with ours and lose records.
    let _lock = lock_out_dir(&out_dir)?;
    remove_stale_temporaries(&out_dir);
    let results_path = out_dir.join("results.json");

    // Ctrl-C, SIGTERM or SIGHUP: the run under way stops, its children
    // with it, and what finished is kept.
    let cancel = crate::interrupt::watch();

    let configs = s.configs();
    let swept = s.swept();
    // Each configuration's parameters as recorded, worked out once.
    let recorded: Vec<_> = configs
        .iter()
        .map(|c| c.recorded(&s.kind, &swept))
        .collect();
    let mut results = Results::new(meta(&s, &args.set));
    if args.append && results_path.exists() {
        let plans = std::mem::take(&mut results.meta.plans);
        results =
            appendable(&results_path, &results.meta, &recorded, &swept).map_err(Failure::input)?;
        // This run's plan after those of the runs already there; runs from
        // before plans were kept get an unknown one.
        if results.meta.plans.is_empty() && !results.runs.is_empty() {
            results.meta.plans.push(None);
        }
        results.meta.plans.extend(plans);
    }
    // Repeats continue after those already in an appended file.
    let first_repeat: Vec<u32> = (0..configs.len())
        .map(|id| {
            results
                .runs
                .iter()
                .filter(|r| r.config_id == id)
                .map(|r| r.repeat + 1)
                .max()
                .unwrap_or(0)
        })
        .collect();
    if !args.quiet {
        crate::errln!(
            "perfkit: {} ({} kind): {} configuration(s) x {} run(s){}{} -> {}",
            s.name,
            s.kind,
            configs.len(),
            s.runs,
            s.order.phrase(configs.len(), s.runs),
            match s.warmup {
                0 => String::new(),
                n => format!(", after {n} warm-up run(s)"),
            },
            results_path.display()
        );
    }
    // Before the runs, and cleared by the reset before each of them.
    let probe_ns = probe_ns_per_scope();
    let progress = Progress::start(configs.len(), s.runs);
    // Warm-up: unrecorded runs of the first configuration.
    for _ in 0..s.warmup {
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        if let Some(c) = configs.first() {
            let _ = kinds::run_one(&s, c, cancel);
        }
    }

    let mut failed = 0usize;
    // Runs already in an appended file: not this invocation's.
    let earlier = results.runs.len();
    for (id, repeat) in s.order.schedule(&first_repeat, s.runs) {
        let cfg = &configs[id];
        let first = first_repeat[id];
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        progress.begin(id, repeat - first, &describe_config(cfg, &swept));
        perfkit::reset();
        let started_unix_s = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64());
        let outcome = crate::instructions::run_one(&s, cfg, cancel);
        let snap = perfkit::snapshot();
        let mut stages = stages_from(&snap);
        stages.probe_ns_per_scope = Some(probe_ns);
        let record = match outcome {
            Ok(o) => {
                if let Some(peer) = o.peer_stages {
                    merge_stages(&mut stages, peer);
                }
                RunRecord {
                    config_id: id,
                    repeat,
                    started_unix_s,
                    config: recorded[id].clone(),
                    time_base: o.time_base,
                    tx: o.tx,
                    rx: o.rx,
                    integrity: o.integrity,
                    link: o.link,
                    stages,
                    device_stages: o.device_stages,
                    device_model: o.device_model,
                    metrics: o.metrics,
                    hosts: o.hosts,
                    error: None,
                }
            }
            Err(e) => {
                failed += 1;
                RunRecord {
                    config_id: id,
                    repeat,
                    started_unix_s,
                    config: recorded[id].clone(),
                    time_base: Default::default(),
                    tx: Default::default(),
                    rx: Default::default(),
                    integrity: Default::default(),
                    link: Default::default(),
                    stages,
                    device_stages: None,
                    device_model: None,
                    metrics: Default::default(),
                    hosts: Default::default(),
                    error: Some(format!("{e:#}")),
                }
            }
        };
        if !args.quiet {
            let mut head = format!("-- config {id}");
            let d = describe_config(cfg, &swept);
            if !d.is_empty() {
                head.push_str(&format!(" ({d})"));
            }
            head.push_str(&format!(" run {}/{}\n", repeat - first + 1, s.runs));
            progress.say(
                &(head
                    + &output::run_lines(&record)
                    + &kinds::device_model::console_lines(&record)),
            );
        }
        results.runs.push(record);
        results
            .write_atomic(&results_path)
            .map_err(|e| Failure::run(anyhow!(e)))?;
        progress.end();
    }
    drop(progress);

    if results.runs.len() == earlier && cancel.load(Ordering::SeqCst) {
        // Stopped in the warm-up: this invocation wrote nothing.
        crate::errln!(
            "perfkit: interrupted before the first run was recorded; {}",
            if earlier == 0 {
                "nothing written".to_owned()
            } else {
                format!("{} unchanged", results_path.display())
            }
        );
        return Ok(EXIT_RUN_FAILED);
    }
    output::say(&format!(
        "\n{}\nresults: {}\n",
        output::summary(&results.runs, &swept),
        results_path.display()
    ));
    let record = (args.record || s.record) && !results.runs.is_empty();
    if record {
        crate::history::record(&results, args.db.as_deref())?;
    }
    if !args.no_report && !results.runs.is_empty() {
        let html = out_dir.join("report.html");
        crate::reporting::write_report(&results_path, &html, record.then_some(args.db.as_deref()))?;
        output::say(&format!("report:  {}\n", html.display()));
    }
    if cancel.load(Ordering::SeqCst) {
        // The run under way when interrupted is recorded with its error; it
        // did not complete.
        let completed = results.runs.iter().filter(|r| r.error.is_none()).count();
        let cut = if failed > 0 {
            format!(" ({failed} failed or cut short, recorded with their error)")
        } else {
            String::new()
        };
        crate::errln!(
            "perfkit: interrupted; {completed} completed run(s) kept in {}{cut}",
            results_path.display()
        );
        return Ok(EXIT_RUN_FAILED);
    }
    if failed > 0 {
        crate::errln!(
            "perfkit: {failed} run(s) failed; see `error` in {}",
            results_path.display()
        );
        return Ok(EXIT_RUN_FAILED);
    }
    let lost = results
        .runs
        .iter()
        .filter(|r| r.error.is_none() && !r.integrity.ok)
        .count();
    if lost > 0 && !s.expect_loss {
        crate::errln!(
            "perfkit: {lost} run(s) lost or corrupted data (integrity FAILED) in {}; \
             a scenario that shows loss on purpose declares `expect = \"loss\"`",
            results_path.display()
        );
        return Ok(EXIT_DATA_LOST);
    }
    Ok(EXIT_OK)
}

/// The lock file inside an output folder.
pub const LOCK_FILE: &str = ".perfkit.lock";

/// Takes the advisory lock on `dir` for this run; refuses (exit 2) when
/// another run holds it. The kernel drops the lock when the process ends,
/// however it ends.
fn lock_out_dir(dir: &Path) -> Result<std::fs::File, Failure> {
    use std::os::fd::AsRawFd;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))
        .map_err(Failure::input)?;
    // SAFETY: flock on a descriptor this function owns and keeps open.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(Failure::input(
            if e.kind() == std::io::ErrorKind::WouldBlock {
                anyhow!(
                    "output folder {} is in use by another `perfkit run` (it holds {}); \
                 wait for that run to finish, or choose another --out",
                    dir.display(),
                    path.display()
                )
            } else {
                anyhow!("cannot lock {}: {e}", path.display())
            },
        ));
    }
    Ok(file)
}

/// Clears temporary files a killed run left half-written in `dir` (safe:
/// this run holds the folder's lock), and says so.
fn remove_stale_temporaries(dir: &Path) {
    match perfkit_report::model::remove_stale_temporaries(dir) {
        Ok(0) => {}
        Ok(n) => crate::errln!(
            "perfkit: removed {n} unfinished temporary file(s) an interrupted run left in {}",
            dir.display()
        ),
        Err(e) => crate::errln!(
            "perfkit: warning: cannot clear old temporary files in {}: {e}",
            dir.display()
        ),
    }
}

/// The results already in `path`, when this run may add to them: written for
/// the same scenario file with the same configurations (a different file or
/// `--set` would mix unlike samples under one configuration).
fn appendable(
    path: &Path,
    meta: &Meta,
    recorded: &[BTreeMap<String, serde_json::Value>],
    swept: &[String],
) -> anyhow::Result<Results> {
    let prev = Results::load(path).map_err(|e| anyhow!("--append: {e}"))?;
    let refuse = |why: String| {
        anyhow!(
            "--append: {} {why}; use another --out folder, or leave out --append to replace it",
            path.display()
        )
    };
    if prev.meta.scenario.name != meta.scenario.name
        || prev.meta.scenario.sha256 != meta.scenario.sha256
    {
        return Err(refuse(format!(
            "holds results of scenario `{}` ({}), not of this file `{}` ({})",
            prev.meta.scenario.name,
            prev.meta.scenario.path,
            meta.scenario.name,
            meta.scenario.path
        )));
    }
    if prev.meta.swept != swept {
        return Err(refuse(format!(
            "was swept over {:?}, this run over {:?}",
            prev.meta.swept, swept
        )));
    }
    for r in &prev.runs {
        // Room for the most runs one command makes, numbered after these.
        if r.repeat >= u32::MAX - MAX_RUNS {
            return Err(refuse(format!(
                "has run number {} for configuration {}, too high to number more after",
                r.repeat, r.config_id
            )));
        }
        if recorded.get(r.config_id) != Some(&r.config) {
            return Err(refuse(format!(
                "has configuration {} with other parameters than this run's (a different --set?)",
                r.config_id
            )));
        }
    }
    Ok(prev)
}

fn describe_config(cfg: &crate::scenario::Config, swept: &[String]) -> String {
    swept
        .iter()
        .map(|k| {
            let v = cfg.values.get(k).cloned().unwrap_or_default();
            // Command lines as their label: the full argv is in results.json.
            format!("{k}={}", output::value_label(&v).0)
        })
        .collect::<Vec<_>>()
        .join(" ")
}
