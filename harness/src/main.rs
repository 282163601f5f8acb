//! `perfkit`: run communication scenarios, report, compare and gate them.
//!
//! The binary is thin: argument parsing and exit codes live here, the work in
//! the modules beside it and in the library crates under `crates/`.
//! Exit codes: 0 success, 1 regression found by the gate, 2 bad input or
//! usage, 3 a run failed, 4 runs completed but lost or corrupted data.

mod against;
mod cli_wire;
mod history;
mod host;
mod instructions;
mod integrity;
mod kinds;
mod locate;
mod output;
mod remote;
mod reporting;
mod run;
mod scenario;
mod spec;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

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

#[derive(Parser)]
#[command(
    name = "perfkit",
    version,
    about = "Measure communication code: run transfer scenarios, report, compare and gate them",
    after_help = "Examples:\n  \
      perfkit run scenarios/uart-throttled.toml\n  \
      perfkit run scenarios/uart-sweep.toml --set repeats=1 --runs 3\n  \
      perfkit send fixtures/test35k.jpg | perfkit recv /tmp/out.jpg\n  \
      perfkit check scenarios/*.toml\n  \
      perfkit list\n\n\
      Exit codes: 0 success, 1 regression found by the gate, 2 bad input or usage, 3 a run failed,\n  \
      4 a run lost or corrupted data (unless the scenario declares expect = \"loss\")."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every configuration of a scenario and write results.json.
    #[command(after_help = "Examples:\n  \
        perfkit run scenarios/uart-throttled.toml\n  \
        perfkit run scenarios/loopback.toml --set block_size=[50,249] --runs 5 --out /tmp/lb\n  \
        perfkit run scenarios/pipe.toml --quiet")]
    Run(RunArgs),
    /// One configuration under callgrind (started by `run --measure instructions`).
    #[command(name = "__count-instructions", hide = true)]
    CountInstructions {
        /// The scenario file.
        scenario: PathBuf,
        /// The configuration's parameters (JSON).
        config: PathBuf,
        /// Where the outcome goes (JSON).
        out: PathBuf,
    },
    /// Send a file as the wire profile on stdout (or a serial device).
    #[command(
        after_help = "Example:\n  perfkit send fixtures/test35k.jpg | perfkit recv /tmp/out.jpg"
    )]
    Send(cli_wire::SendArgs),
    /// Receive the wire profile from stdin (or a serial device) into a file.
    #[command(
        after_help = "Example:\n  perfkit send fixtures/test35k.jpg | perfkit recv /tmp/out.jpg"
    )]
    Recv(cli_wire::RecvArgs),
    /// Validate scenario files without running them.
    Check {
        /// Scenario files.
        #[arg(required = true)]
        scenarios: Vec<PathBuf>,
    },
    /// List the scenarios in a folder with their descriptions.
    List {
        /// Folder to look in.
        #[arg(default_value = "scenarios")]
        dir: PathBuf,
    },
    /// Render an HTML report from one or more results files.
    #[command(
        after_help = "Example:\n  perfkit report reports/uart-sweep/results.json -o /tmp/sweep.html"
    )]
    Report(reporting::ReportArgs),
    /// Compare saved runs (N-way) with bootstrap confidence intervals.
    #[command(
        after_help = "Example:\n  perfkit compare old/results.json new/results.json -o /tmp/compare.html"
    )]
    Compare(reporting::CompareArgs),
    /// Fail (exit 1) when results regress against a baseline file, or when
    /// this build regresses against another revision measured here.
    #[command(after_help = "Examples:\n  \
        perfkit gate --baseline fixtures/baselines/uart-sweep.json reports/uart-sweep/results.json\n  \
        perfkit gate --baseline base.json results.json --threshold rx.bps=5 --summary-md summary.md\n  \
        perfkit gate --against HEAD~1 scenarios/gate-loopback.toml\n\n\
        --baseline judges a results file against a committed one: right for deterministic \
        metrics (virtual time) and for runs made on the same machine. --against REV builds \
        REV in a cached git worktree (target/perfkit-gate/) and measures it and this build \
        in alternating rounds on this machine until the verdict is clear: right for \
        wall-clock metrics on any machine.")]
    Gate(reporting::GateArgs),
    /// Print every scenario parameter with its section, type and default.
    Params,
    /// Serve the other end of transfers for `perfkit run` on other hosts.
    #[command(after_help = "Examples:\n  \
        PERFKIT_AGENT_TOKEN=$(cat token) perfkit agent --listen 0.0.0.0:7117\n  \
        perfkit agent --listen 10.0.0.2:7117 --token-file /etc/perfkit/token\n\n\
        A scenario then places one end there:\n  \
        [hosts]\n  receiver = \"agent://10.0.0.2:7117\"")]
    Agent(AgentArgs),
    /// The results history: import, list, show trends, export, prune.
    #[command(after_help = "Examples:\n  \
        perfkit run scenarios/uart-sweep.toml --record\n  \
        perfkit history show rx.bps --scenario uart-sweep --config baud=115200\n  \
        perfkit history export --format openmetrics --db postgres://ci@db.lab/perf")]
    History(history::HistoryArgs),
}

/// Arguments of `perfkit agent`.
#[derive(Args)]
pub struct AgentArgs {
    /// Address to listen on for control connections (port 0 = any free port;
    /// the address is printed on stdout).
    #[arg(long, default_value = "0.0.0.0:7117")]
    pub listen: String,
    /// File holding the shared token (default: PERFKIT_AGENT_TOKEN).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// Exit after serving this many control connections (default: serve forever).
    #[arg(long)]
    pub sessions: Option<u64>,
}

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
    /// What to measure: `wall` (stage times) or `instructions` (each
    /// configuration under valgrind's callgrind: instructions per stage,
    /// exact; the `measure` parameter).
    #[arg(long, value_name = "wall|instructions")]
    pub measure: Option<String>,
    /// Print only the summary table.
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::CountInstructions {
            scenario,
            config,
            out,
        } => instructions::child(&scenario, &config, &out),
        Command::Send(args) => cli_wire::send(args),
        Command::Recv(args) => cli_wire::recv(args),
        Command::Check { scenarios } => check(&scenarios),
        Command::List { dir } => list(&dir),
        Command::Report(args) => reporting::report(args),
        Command::Compare(args) => reporting::compare(args),
        Command::Gate(args) => reporting::gate(args),
        Command::History(args) => history::history(args),
        Command::Params => {
            print!("{}", output::params_table());
            Ok(EXIT_OK)
        }
        Command::Agent(args) => agent(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("perfkit: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn agent(args: AgentArgs) -> CmdResult {
    let token = remote::proto::load_token(args.token_file.as_deref()).map_err(Failure::input)?;
    remote::agent::serve(remote::agent::AgentConfig {
        listen: args.listen,
        token,
        max_sessions: args.sessions,
    })
    .map_err(Failure::run)?;
    Ok(EXIT_OK)
}

fn check(paths: &[PathBuf]) -> CmdResult {
    let mut bad = 0;
    for path in paths {
        // The same checks a run makes before its first configuration.
        match scenario::Scenario::load(path).and_then(|s| kinds::preflight(&s).map(|()| s)) {
            Ok(s) => println!(
                "{}: ok ({} kind, {} configuration(s) x {} run(s))",
                path.display(),
                s.kind,
                s.configs().len(),
                s.runs
            ),
            Err(e) => {
                eprintln!("perfkit: error: {e}");
                bad += 1;
            }
        }
    }
    Ok(if bad == 0 { EXIT_OK } else { EXIT_BAD_INPUT })
}

fn list(dir: &std::path::Path) -> CmdResult {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::input(anyhow::anyhow!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        match scenario::Scenario::load(&f) {
            Ok(s) => rows.push((
                f.display().to_string(),
                s.kind.clone(),
                s.configs().len().to_string(),
                s.description.clone(),
            )),
            Err(e) => rows.push((
                f.display().to_string(),
                "invalid".into(),
                "-".into(),
                e.to_string(),
            )),
        }
    }
    print!("{}", output::list_table(&rows));
    Ok(EXIT_OK)
}
