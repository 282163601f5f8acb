//! `perfkit report`, `perfkit compare` and `perfkit gate`: thin commands over
//! `perfkit-report`, which works from saved results files only.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::Args;
use perfkit_report::{gate, html, model};

use crate::{CmdResult, Failure, EXIT_OK, EXIT_REGRESSION};

/// Arguments of `perfkit report`.
#[derive(Args)]
pub struct ReportArgs {
    /// One or more results files, or one perfkit snapshot file (the JSON of
    /// `perfkit::snapshot().to_json()`).
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Where to write the HTML (default: report.html beside the first results file).
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Add trends across commits from the results history (the first file's
    /// scenario and host class).
    #[arg(long)]
    pub history: bool,
    /// With --history: the database (default: $PERFKIT_DB, else
    /// .perfkit/history.db in the project).
    #[arg(long, value_name = "PATH|URL", requires = "history")]
    pub db: Option<String>,
}

/// Arguments of `perfkit compare`.
#[derive(Args)]
pub struct CompareArgs {
    /// Two or more results files; the first is the reference.
    #[arg(required = true, num_args = 2..)]
    pub results: Vec<PathBuf>,
    /// Also write the comparison as an HTML report here.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Also write the table as Markdown here.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// Arguments of `perfkit gate`.
#[derive(Args)]
pub struct GateArgs {
    /// The baseline results file (deterministic metrics, or runs made on this machine).
    #[arg(
        long,
        value_name = "BASELINE.json",
        required_unless_present_any = ["against", "history"],
        conflicts_with = "against"
    )]
    pub baseline: Option<PathBuf>,
    /// A git revision to build and measure here against this build, in
    /// alternating rounds (wall-clock metrics, on any machine).
    #[arg(long, value_name = "REV")]
    pub against: Option<String>,
    /// The results to judge (with --baseline), or the scenario to run (with --against).
    #[arg(value_name = "RESULTS.json|SCENARIO.toml")]
    pub input: PathBuf,
    /// A threshold, e.g. `rx.bps=5` (percent); overrides the scenario's [gate] table. Repeatable.
    #[arg(long = "threshold", value_name = "METRIC=PCT")]
    pub thresholds: Vec<String>,
    /// Write the verdict table as Markdown (for a CI job summary).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Write the verdict and its table as an HTML page (with --baseline).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["against", "history"])]
    pub summary_html: Option<PathBuf>,
    /// After judging, write the results as the new baseline (atomically);
    /// a missing baseline is created without judging.
    #[arg(long, conflicts_with = "against")]
    pub update_baseline: bool,
    /// Options of --against.
    #[command(flatten)]
    pub against_opts: crate::against::AgainstArgs,
    /// Options of --history.
    #[command(flatten)]
    pub history: crate::history::GateHistoryArgs,
}

fn load(paths: &[PathBuf]) -> Result<Vec<(PathBuf, model::Results)>, Failure> {
    perfkit_report::load_all(paths).map_err(|e| Failure::input(anyhow!(e)))
}

/// Writes an output the command was asked for. A path that cannot take it
/// is the caller's to fix (exit 2), never "a run failed" (3): these
/// commands run nothing.
fn write(path: &Path, text: &str) -> Result<(), Failure> {
    writable(path)?;
    model::write_atomic(path, text.as_bytes()).map_err(|e| Failure::input(anyhow!(e)))
}

/// Prints where the report went, on stdout unless the report itself went
/// there (`-o /dev/stdout | ...`): then on stderr, after it.
fn said_where(path: &Path) {
    use perfkit_report::files::Target;
    if matches!(Target::of(path), Ok(Target::Descriptor(1))) {
        crate::errln!("report: {}", path.display());
    } else {
        println!("report: {}", path.display());
    }
}

/// A path that cannot take a file (a folder, a closed descriptor) is the
/// caller's mistake: exit 2, before any work.
pub(crate) fn writable(path: &Path) -> Result<(), Failure> {
    perfkit_report::files::Target::of(path)
        .map(drop)
        .map_err(|e| Failure::input(anyhow!("{}: {e}", path.display())))
}

/// Renders `report.html` for one results file (used by `perfkit run`),
/// with trends from the history when `history` names a database (or
/// `Some(None)`, the default one).
pub fn write_report(
    results: &Path,
    output: &Path,
    history: Option<Option<&str>>,
) -> Result<(), Failure> {
    let inputs = load(&[results.to_owned()])?;
    let trends = match history {
        Some(db) => crate::history::trends(&inputs[0].1, db)?,
        None => Default::default(),
    };
    write(output, &html::render_report_with_trends(&inputs, &trends))
}

/// `perfkit report`.
pub fn report(args: ReportArgs) -> CmdResult {
    let out = args.output.clone().unwrap_or_else(|| {
        args.results[0]
            .parent()
            .unwrap_or(Path::new("."))
            .join("report.html")
    });
    if let [one] = args.results.as_slice() {
        if let model::Loaded::Snapshot(snap) =
            model::load_any(one).map_err(|e| Failure::input(anyhow!(e)))?
        {
            if args.history {
                return Err(Failure::input(anyhow!(
                    "{}: a perfkit snapshot has no history; --history is for results files",
                    one.display()
                )));
            }
            write(&out, &html::render_snapshot(one, &snap))?;
            said_where(&out);
            return Ok(EXIT_OK);
        }
    }
    let inputs = load(&args.results)?;
    let trends = if args.history {
        crate::history::trends(&inputs[0].1, args.db.as_deref())?
    } else {
        Default::default()
    };
    write(&out, &html::render_report_with_trends(&inputs, &trends))?;
    said_where(&out);
    Ok(EXIT_OK)
}

/// `perfkit compare`.
pub fn compare(args: CompareArgs) -> CmdResult {
    for p in args.summary_md.iter().chain(&args.output) {
        writable(p)?;
    }
    let inputs = load(&args.results)?;
    let cmp = perfkit_report::compare(&inputs);
    if let Some(e) = cmp.refusal() {
        return Err(Failure::input(anyhow!(e)));
    }
    print!("{}", cmp.console_table());
    if let Some(p) = &args.summary_md {
        write(p, &cmp.markdown())?;
    }
    if let Some(p) = &args.output {
        write(p, &html::render_compare(&inputs, &cmp))?;
        said_where(p);
    }
    Ok(EXIT_OK)
}

/// `perfkit gate`.
pub fn gate(args: GateArgs) -> CmdResult {
    // Before judging: a summary that cannot be written found after the
    // verdict would turn a regression's exit 1 into another code.
    for p in args.summary_md.iter().chain(&args.summary_html) {
        writable(p)?;
    }
    let base_path = match (&args.against, &args.baseline) {
        (Some(rev), _) => {
            return crate::against::gate(
                rev,
                &args.input,
                &args.thresholds,
                args.summary_md.as_deref(),
                &args.against_opts,
            )
        }
        (None, Some(p)) if !args.history.history => p,
        (None, _) => {
            return crate::history::gate(
                &args.history,
                &args.input,
                &args.thresholds,
                args.summary_md.as_deref(),
            )
        }
    };
    let current = model::Results::load(&args.input).map_err(|e| Failure::input(anyhow!(e)))?;
    if args.update_baseline && !base_path.exists() {
        // Nothing to judge against yet: this run becomes the baseline.
        gate::update_baseline(&current, base_path).map_err(|e| Failure::input(anyhow!(e)))?;
        println!(
            "baseline created: {} (from {}); later runs are judged against it",
            base_path.display(),
            args.input.display()
        );
        return Ok(EXIT_OK);
    }
    let baseline = model::Results::load(base_path).map_err(|e| {
        let hint = if !base_path.exists() {
            format!(
                "make a baseline with `perfkit gate --baseline {} RESULTS.json --update-baseline`",
                base_path.display()
            )
        } else {
            // --update-baseline replaces a baseline only after judging
            // against it, so it cannot mend an unreadable one.
            format!(
                "the baseline is there but unreadable; restore it (`git checkout -- {0}`), or \
                 delete it and run again with --update-baseline to start from these results",
                base_path.display()
            )
        };
        Failure::input(anyhow!("{e}\n({hint})"))
    })?;
    let cfg = gate::GateConfig::from_flags_and_meta(&args.thresholds, &current.meta.gate)
        .map_err(|e| Failure::input(anyhow!(e)))?;
    let report =
        gate::evaluate(&baseline, &current, &cfg).map_err(|e| Failure::input(anyhow!(e)))?;
    print!("{}", report.console_table());
    for w in &report.warnings {
        crate::errln!("perfkit: warning: {w}");
    }
    if let Some(p) = &args.summary_md {
        write(p, &report.markdown())?;
    }
    if let Some(p) = &args.summary_html {
        write(p, &html::render_gate(&report))?;
    }
    if args.update_baseline {
        if let Err(e) = gate::update_baseline(&current, base_path) {
            // The verdict stands: a regression still exits 1.
            crate::errln!("perfkit: gate: cannot update the baseline: {e}");
            if !report.regressed() {
                return Err(Failure::input(anyhow!("cannot update the baseline: {e}")));
            }
        } else {
            println!("baseline updated: {}", base_path.display());
        }
    }
    if report.regressed() {
        crate::errln!("perfkit: gate: regression beyond the threshold");
        Ok(EXIT_REGRESSION)
    } else {
        println!("gate: no regression");
        Ok(EXIT_OK)
    }
}
