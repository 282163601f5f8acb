//! `perfkit`: run communication scenarios, report, compare and gate them.
//!
//! The binary is thin: argument parsing and exit codes live here, the work in
//! the modules beside it and in the library crates under `crates/`.
//! Exit codes: 0 success, 1 regression found by the gate, 2 bad input or
//! usage, 3 a run failed, 4 runs completed but lost or corrupted data.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use perfkit_harness::{
    cli_wire, history, kinds, output, remote, reporting, run, scenario, shipped, CmdResult,
    Failure, RunArgs, EXIT_BAD_INPUT, EXIT_OK,
};

/// Which standard descriptors were closed when perfkit started, noted
/// before `main`: Rust's runtime then opens /dev/null on them, and a
/// `-o /dev/stdout` into a stdout closed with `>&-` must be refused, not
/// swallowed (`perfkit_report::files::closed_at_start`).
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RECORD_CLOSED_AT_START: extern "C" fn() = perfkit_report::files::record_closed_at_start;

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
        /// Folder to look in (default: the project's scenarios/ when found
        /// here or under $PERFKIT_ROOT, else the scenarios built into perfkit).
        dir: Option<PathBuf>,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.command.only_reads_and_prints() {
        die_quietly_on_closed_stdout();
    }
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::CountInstructions {
            scenario,
            config,
            out,
        } => perfkit_harness::instructions::child(&scenario, &config, &out),
        Command::Send(args) => cli_wire::send(args),
        Command::Recv(args) => cli_wire::recv(args),
        Command::Check { scenarios } => check(&scenarios),
        Command::List { dir } => list(dir),
        Command::Report(args) => reporting::report(args),
        Command::Compare(args) => reporting::compare(args),
        Command::Gate(args) => reporting::gate(args),
        Command::History(args) => history::history(args),
        Command::Params => {
            output::print_out(&output::params_table(output::terminal_width()));
            Ok(EXIT_OK)
        }
        Command::Agent(args) => agent(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            perfkit_harness::errln!("perfkit: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

impl Command {
    /// Commands whose only pipe is their own stdout: no child's stdin, no
    /// data link that must see a broken pipe as an error.
    fn only_reads_and_prints(&self) -> bool {
        matches!(
            self,
            Command::Check { .. }
                | Command::List { .. }
                | Command::Report(_)
                | Command::Compare(_)
                | Command::Gate(_)
                | Command::History(_)
                | Command::Params
        )
    }
}

/// `perfkit compare a b | head`: when the reader goes away, end as Unix
/// tools do (by SIGPIPE, silently) rather than panic in `println!` (Rust
/// ignores SIGPIPE, so every write after that is an error).
fn die_quietly_on_closed_stdout() {
    // SAFETY: restoring a signal's default disposition at start-up, before
    // any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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
        match shipped::load(path).and_then(|s| kinds::preflight(&s).map(|()| s)) {
            Ok(s) => {
                // Expanding the sweep can make 100,000 configurations: once.
                let configs = s.configs().len();
                println!(
                    "{}: ok ({} kind, {} configuration(s) x {} run(s){})",
                    path.display(),
                    s.kind,
                    configs,
                    s.runs,
                    s.order.phrase(configs, s.runs)
                )
            }
            Err(e) => {
                perfkit_harness::errln!("perfkit: error: {e}");
                bad += 1;
            }
        }
    }
    Ok(if bad == 0 { EXIT_OK } else { EXIT_BAD_INPUT })
}

fn list(dir: Option<PathBuf>) -> CmdResult {
    let Some(dir) = dir.or_else(shipped::scenarios_dir) else {
        return list_shipped();
    };
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| Failure::input(anyhow::anyhow!("{}: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let rows = files
        .iter()
        .map(|f| list_row(f.display().to_string(), scenario::Scenario::load(f)))
        .collect::<Vec<_>>();
    output::print_out(&output::list_table(&rows, output::terminal_width()));
    Ok(EXIT_OK)
}

/// `perfkit list` where the project's files are not: the built-in copies.
fn list_shipped() -> CmdResult {
    let rows = shipped::SCENARIOS
        .iter()
        .map(|(file, text)| {
            let name = file.strip_suffix(".toml").unwrap_or(file);
            list_row(
                name.to_owned(),
                scenario::Scenario::parse(std::path::Path::new(file), text),
            )
        })
        .collect::<Vec<_>>();
    output::print_out(&format!(
        "{}(built into this perfkit: run one with `perfkit run NAME`)\n",
        output::list_table(&rows, output::terminal_width())
    ));
    Ok(EXIT_OK)
}

fn list_row(
    shown: String,
    loaded: Result<scenario::Scenario, scenario::ScenarioError>,
) -> (String, String, String, String) {
    match loaded {
        Ok(s) => (
            shown,
            s.kind.clone(),
            s.configs().len().to_string(),
            s.description.clone(),
        ),
        Err(e) => (shown, "invalid".into(), "-".into(), e.to_string()),
    }
}
