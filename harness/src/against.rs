//! `perfkit gate --against REV SCENARIO`: the wall-clock gate that holds on
//! any machine.
//!
//! A wall-clock baseline recorded elsewhere says nothing about this machine,
//! and one recorded here an hour ago says little more on a shared VM whose
//! speed changes for seconds at a time. So the base revision is built here
//! (in a git worktree, cached by commit under `target/perfkit-gate/`, with
//! one target folder shared by every base so registry crates build once),
//! and the two builds run the scenario in alternating rounds, one run each,
//! in the same job: a slow spell falls on both runs of a round and cancels in
//! their ratio (the paired statistics of [`perfkit_report::analysis`]).
//!
//! The rounds stop as soon as every check is decided ([`Decision::Sequential`]:
//! the whole interval above half the threshold fails, wholly below passes),
//! or at a budget of rounds and seconds; the verdict prints the power the
//! measured noise left (the smallest worsening each check would catch).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use clap::Args;
use perfkit_report::gate::{self, Decision, GateConfig, GateErrorKind};
use perfkit_report::model::Results;

use crate::{CmdResult, Failure, EXIT_OK, EXIT_REGRESSION};

/// The options of `perfkit gate --against`.
#[derive(Args, Debug, Clone)]
pub struct AgainstArgs {
    /// With --against: override a scenario parameter for both builds
    /// (KEY=VALUE). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "against")]
    pub set: Vec<String>,
    /// With --against: override a parameter for this build only, to see
    /// what the gate catches (e.g. `slowdown_ns_per_packet=100`, a
    /// deliberate per-packet cost). Repeatable.
    #[arg(long = "head-set", value_name = "KEY=VALUE", requires = "against")]
    pub head_set: Vec<String>,
    /// With --against: rounds before the first look at the statistics.
    #[arg(long, default_value_t = 12, value_name = "N", requires = "against")]
    pub min_rounds: u32,
    /// With --against: at most this many rounds (one run of each build per round).
    #[arg(long, default_value_t = 200, value_name = "N", requires = "against")]
    pub max_rounds: u32,
    /// With --against: seconds of measurement after which the current round
    /// is the last.
    #[arg(
        long,
        default_value_t = 170,
        value_name = "SECONDS",
        requires = "against"
    )]
    pub budget: u64,
    /// With --against: where the two builds' results go
    /// (default: build/gate-against/<scenario name>/{base,head}).
    #[arg(long, value_name = "DIR", requires = "against")]
    pub out: Option<PathBuf>,
    /// With --against: only build (or find in the cache) the base revision's
    /// binary and print its path.
    #[arg(long, requires = "against")]
    pub build_only: bool,
}

/// `perfkit gate --against REV SCENARIO`.
pub fn gate(
    rev: &str,
    scenario: &Path,
    thresholds: &[String],
    summary_md: Option<&Path>,
    a: &AgainstArgs,
) -> CmdResult {
    if a.min_rounds < gate::MIN_REPEATS as u32 || a.max_rounds < a.min_rounds {
        return Err(Failure::input(anyhow!(
            "--min-rounds must be at least {} and at most --max-rounds ({})",
            gate::MIN_REPEATS,
            a.max_rounds
        )));
    }
    // Ctrl-C, SIGTERM or SIGHUP stops the build or run under way, then the gate.
    crate::interrupt::watch();
    // This build must accept the scenario before anything is built.
    let s = crate::scenario::Scenario::load(scenario).map_err(Failure::input)?;
    // And there must be something to judge.
    let cfg = GateConfig::from_flags_and_meta(thresholds, &s.gate)
        .map_err(|e| Failure::input(anyhow!(e)))?;
    if cfg.thresholds.is_empty() {
        return Err(Failure::input(anyhow!(
            "nothing to gate in {}: pass --threshold METRIC=PCT or add a [gate] table",
            scenario.display()
        )));
    }
    let base = base_binary(rev)?;
    if a.build_only {
        println!("{}", base.display());
        return Ok(EXIT_OK);
    }
    let head = std::env::current_exe()
        .context("cannot find this perfkit's own binary")
        .map_err(Failure::run)?;
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| Path::new("build/gate-against").join(&s.name));
    let sides = [
        Side {
            name: "base",
            bin: base,
            dir: out.join("base"),
            set: a.set.clone(),
        },
        Side {
            name: "head",
            bin: head,
            dir: out.join("head"),
            set: a.set.iter().chain(&a.head_set).cloned().collect(),
        },
    ];
    for side in &sides {
        match std::fs::remove_dir_all(&side.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Failure::input(anyhow!("{}: {e}", side.dir.display())))
            }
            _ => {}
        }
    }

    let start = Instant::now();
    let budget = Duration::from_secs(a.budget);
    for round in 1..=a.max_rounds {
        // Alternate which build goes first, so neither always runs right
        // after the other's warm caches or right after a pause.
        let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        for i in order {
            sides[i].run_once(scenario, round > 1)?;
        }
        if round < a.min_rounds {
            continue;
        }
        let last = round == a.max_rounds || start.elapsed() >= budget;
        let [b, h] = [&sides[0], &sides[1]].map(|s| s.results());
        let (b, h) = (b?, h?);
        let mut cfg = GateConfig::from_flags_and_meta(thresholds, &h.meta.gate)
            .map_err(|e| Failure::input(anyhow!(e)))?;
        cfg.decision = Decision::Sequential { last };
        let report = match gate::evaluate(&b, &h, &cfg) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), GateErrorKind::TooFewRuns { .. }) && !last => {
                if round % 10 == 0 {
                    crate::errln!(
                        "gate: round {round}, {:.0} s: undecided: {e}",
                        start.elapsed().as_secs_f64()
                    );
                }
                continue;
            }
            Err(e) if matches!(e.kind(), GateErrorKind::TooFewRuns { .. }) => {
                return Err(Failure::input(anyhow!(
                    "{e}\n(after {round} rounds in {:.0} s the noise on this machine left the \
                     check undecided: raise --budget or --max-rounds, or the threshold)",
                    start.elapsed().as_secs_f64()
                )))
            }
            Err(e) => return Err(Failure::input(anyhow!(e))),
        };
        println!(
            "base {rev} against this build: {round} rounds of {} in {:.0} s{}",
            s.name,
            start.elapsed().as_secs_f64(),
            if last {
                " (the budget's last round)"
            } else {
                ""
            }
        );
        print!("{}", report.console_table());
        for w in &report.warnings {
            crate::errln!("perfkit: warning: {w}");
        }
        if let Some(p) = summary_md {
            model_write(p, &report.markdown())?;
        }
        return Ok(if report.regressed() {
            crate::errln!("perfkit: gate: regression beyond the threshold");
            EXIT_REGRESSION
        } else {
            println!("gate: no regression");
            EXIT_OK
        });
    }
    unreachable_rounds()
}

/// The loop above returns at its last round; this keeps the function total
/// without a panic should the bounds ever change.
fn unreachable_rounds() -> CmdResult {
    Err(Failure::input(anyhow!("no rounds were measured")))
}

fn model_write(path: &Path, text: &str) -> Result<(), Failure> {
    perfkit_report::model::write_atomic(path, text.as_bytes()).map_err(|e| Failure::run(anyhow!(e)))
}

/// One of the two builds and where its results go.
struct Side {
    name: &'static str,
    bin: PathBuf,
    dir: PathBuf,
    /// `--set` arguments for this side.
    set: Vec<String>,
}

impl Side {
    /// One measured run, appended to this side's results.
    fn run_once(&self, scenario: &Path, append: bool) -> Result<(), Failure> {
        let mut c = Command::new(&self.bin);
        // `--repeat` is the spelling every perfkit accepts, old builds
        // included; newer ones list it as `--runs`.
        c.arg("run")
            .arg(scenario)
            .args(["--repeat", "1", "--quiet", "--no-report", "--out"])
            .arg(&self.dir);
        if append {
            c.arg("--append");
        }
        for kv in &self.set {
            c.args(["--set", kv]);
        }
        let out = crate::interrupt::output(
            c.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        )
        .with_context(|| format!("running {}", self.bin.display()))
        .map_err(Failure::run)?;
        if !out.status.success() {
            return Err(Failure::run(anyhow!(
                "the {} build ({}) failed to run {} ({}):\n{}",
                self.name,
                self.bin.display(),
                scenario.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim_end()
            )));
        }
        Ok(())
    }

    fn results(&self) -> Result<Results, Failure> {
        Results::load(self.dir.join("results.json")).map_err(|e| Failure::run(anyhow!(e)))
    }
}

/// Runs `git` in the current folder and returns its trimmed stdout.
fn git(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run git")?;
    if !out.status.success() {
        anyhow::bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The release binary of `rev`, from the cache or built now.
///
/// Layout under `<repository>/target/perfkit-gate/`: `bin/<commit>/perfkit`
/// (the cache), `src/<commit>` (the worktree, removed after the build) and
/// `target/` (the one Cargo target folder of every base build, so registry
/// crates build once and only the workspace's own crates build per base).
/// A missing `target/` is first seeded from the repository's own release
/// build, which already holds the registry crates.
pub fn base_binary(rev: &str) -> Result<PathBuf, Failure> {
    let fail = |e: anyhow::Error| {
        Failure::input(anyhow!(
            "cannot build the base revision `{rev}`: {e:#}\n(no wall-clock verdict: the gate \
             needs the base build to measure against)"
        ))
    };
    let root = PathBuf::from(git(&["rev-parse", "--show-toplevel"]).map_err(fail)?);
    let sha = git(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])
    .map_err(|_| {
        fail(anyhow!(
            "no commit `{rev}` in this repository (a shallow clone lacks parent commits: \
                 fetch with a depth of 2 or more)"
        ))
    })?;
    let cache = root.join("target/perfkit-gate");
    let bin = cache.join("bin").join(&sha).join("perfkit");
    let short = &sha[..sha.len().min(12)];
    if bin.is_file() {
        crate::errln!(
            "gate: base {rev} ({short}) from the cache: {}",
            bin.display()
        );
        return Ok(bin);
    }
    let t0 = Instant::now();
    let target = cache.join("target");
    if !target.exists() {
        seed(&root.join("target/release"), &target.join("release"));
    }
    let src = cache.join("src").join(&sha);
    remove_worktree(&src);
    let src_s = src.to_string_lossy().into_owned();
    git(&["worktree", "add", "--detach", "--force", &src_s, &sha]).map_err(fail)?;
    crate::errln!("gate: building base {rev} ({short}) in {}", src.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = crate::interrupt::output(
        Command::new(cargo)
            .args(["build", "--release", "--locked", "-p", "perfkit-harness"])
            .current_dir(&src)
            .env("CARGO_TARGET_DIR", &target)
            .stdin(Stdio::null())
            // Cargo's progress goes to stderr; keep stdout for the verdict.
            .stdout(Stdio::null()),
    )
    .map(|o| o.status);
    let built = target.join("release/perfkit");
    if matches!(&status, Err(e) if e.kind() == std::io::ErrorKind::Interrupted) {
        remove_worktree(&src);
        return Err(Failure::run(anyhow!(
            "interrupted while building base {rev}"
        )));
    }
    let copied = match status {
        Ok(s) if s.success() => copy_atomic(&built, &bin),
        Ok(s) => Err(anyhow!("cargo build failed ({s}); its output is above")),
        Err(e) => Err(anyhow!("cannot run cargo: {e}")),
    };
    remove_worktree(&src);
    copied.map_err(fail)?;
    crate::errln!(
        "gate: built base {rev} ({short}) in {:.0} s: {}",
        t0.elapsed().as_secs_f64(),
        bin.display()
    );
    Ok(bin)
}

/// Copies the repository's release dependencies into a new base target
/// folder (`cp -a`, which keeps times and reflinks where the filesystem can).
/// The workspace's own crates are dropped from the copy's fingerprints, so
/// they always build from the base's sources. Best effort: without a seed
/// the first base build is a cold one.
fn seed(from: &Path, to: &Path) {
    if !from.join("deps").is_dir() || std::fs::create_dir_all(to).is_err() {
        return;
    }
    let t0 = Instant::now();
    let ok = ["deps", "build", ".fingerprint"].iter().all(|d| {
        Command::new("cp")
            .args(["-a", "--reflink=auto"])
            .arg(from.join(d))
            .arg(to)
            .status()
            .is_ok_and(|s| s.success())
    });
    if !ok {
        let _ = std::fs::remove_dir_all(to);
        return;
    }
    if let Ok(entries) = std::fs::read_dir(to.join(".fingerprint")) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("perfkit") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    crate::errln!(
        "gate: seeded the base builds' target folder from {} in {:.0} s",
        from.display(),
        t0.elapsed().as_secs_f64()
    );
}

fn remove_worktree(src: &Path) {
    if src.exists() {
        let s = src.to_string_lossy();
        let _ = git(&["worktree", "remove", "--force", &s]);
        let _ = std::fs::remove_dir_all(src);
    }
    let _ = git(&["worktree", "prune"]);
}

fn copy_atomic(from: &Path, to: &Path) -> anyhow::Result<()> {
    let dir = to.parent().context("cache path has no folder")?;
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let tmp = dir.join(".perfkit.tmp");
    std::fs::copy(from, &tmp).with_context(|| format!("copy {}", from.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("rename to {}", to.display()))?;
    Ok(())
}
