//! The CI regression gate: noise-aware comparison of a results file with a
//! committed baseline.
//!
//! # Statistics
//! - **Wall-clock metrics.** Each repeat (a separate run) is one sample. The
//!   relative change of the median gets a percentile-bootstrap 95 % interval
//!   (10,000 seeded resamples). A metric regresses only when the *whole*
//!   interval lies beyond its threshold in the bad direction, so noise alone
//!   rarely fails a build. When the interval is wider than the threshold
//!   allows (half-width above the threshold) and does not already lie beyond
//!   it, the gate cannot tell a regression from noise: it refuses to judge
//!   ([`GateErrorKind::TooFewRuns`]) and says how many repeats would do.
//!   Fewer than [`MIN_REPEATS`] runs on either side is refused outright.
//! - **Sequential looks** ([`Decision::Sequential`], for `perfkit gate
//!   --against`, which measures two builds round by round until the verdict
//!   is clear): a check regresses when its whole interval lies above *half*
//!   the threshold and passes when it lies wholly below half, so a change of
//!   the whole threshold is caught and no change passes, each with the
//!   interval's confidence; otherwise the gate measures another round. At the
//!   last look an undecided check passes only when its interval excludes a
//!   change of the whole threshold.
//! - **Power.** Every wall-clock row carries the smallest worsening its rule
//!   would have caught at the noise measured ([`GateRow::detectable`]), and
//!   the verdict's headline names the least sensitive check.
//! - **Another host.** A wall-clock baseline recorded on another host (by
//!   its fingerprint) is no evidence about this one: the report carries a
//!   warning ([`GateReport::warnings`]) with the verdict.
//! - **Interleaved runs** (baseline and candidate run in alternation, as the
//!   runs' start times show) are compared pair by pair, with the same
//!   choice of statistics as `compare` ([`crate::analysis::metric_change`]).
//! - **Deterministic metrics** (virtual-time records, except host-side
//!   `stage.*` timings which are always real) compare exactly: any change
//!   beyond [`crate::compare::EXACT_TOLERANCE`], in either
//!   direction, is reported as `changed` and fails the gate, because a model
//!   that gives different numbers is a different model; refresh the baseline
//!   with `--update-baseline` when the change is intended.
//! - **Counted metrics** (`metrics.instr.*`, instructions under callgrind;
//!   `metrics.cycles.*`, emulated device cycles; see
//!   [`metric::is_counted`]) are deterministic in any record and compare
//!   exactly too, but against their threshold: a count that grew by more
//!   than the threshold regressed, one within it passes (a threshold of 0
//!   fails on any growth). The headline says how many checks were counted
//!   and that no statistics were made for them.
//!
//! "Runs" are always the samples here; `repeats` is a transfer parameter
//! (extra copies of each block), and the gate's messages never use the word
//! for the number of runs.
//!
//! # Exit codes
//! [`GateReport::exit_code`] is 0 (no regression) or 1 (regression);
//! every [`GateError`] is exit code 2 (bad input), see [`GateError::exit_code`].

use std::fmt;
use std::path::Path;

use crate::analysis::{self, Method, Missing};
use crate::compare::{union_swept, EXACT_TOLERANCE};
use crate::group::{self, config_label, ConfigGroup};
use crate::metric::{self, Direction};
use crate::model::{self, Results};
use crate::stats::{Bootstrap, Change};
use crate::table;

/// Fewer runs than this on either side and a wall-clock metric is not judged.
pub const MIN_REPEATS: usize = 3;

/// A threshold for one metric (or a `*` pattern of metrics).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Metric name or pattern: `tx.bps`, `stage.*.p99_ns`.
    pub metric: String,
    /// Allowed change in the bad direction, in percent.
    pub percent: f64,
    /// Which way is better (from the metric's name).
    pub direction: Direction,
}

impl Threshold {
    /// Parses a `METRIC=PCT` flag (`tx.bps=5`, `stage.crc16.p99_ns=10%`).
    pub fn parse(flag: &str) -> Result<Threshold, GateError> {
        let bad = |why: String| {
            GateError::new(GateErrorKind::BadThreshold {
                flag: flag.to_string(),
                why,
            })
        };
        let (m, p) = flag
            .split_once('=')
            .ok_or_else(|| bad("expected METRIC=PCT, e.g. tx.bps=5".into()))?;
        let m = m.trim();
        let p = p.trim().trim_end_matches('%').trim();
        let percent: f64 = p
            .parse()
            .map_err(|_| bad(format!("`{p}` is not a number of percent")))?;
        Threshold::new(m, percent).map_err(|e| match e.kind {
            GateErrorKind::BadThreshold { why, .. } => bad(why),
            k => GateError::new(k),
        })
    }

    /// A threshold for `metric` at `percent`, checking both.
    pub fn new(metric: &str, percent: f64) -> Result<Threshold, GateError> {
        let bad = |why: String| {
            GateError::new(GateErrorKind::BadThreshold {
                flag: format!("{metric}={percent}"),
                why,
            })
        };
        if !percent.is_finite() || percent < 0.0 {
            return Err(bad("the percentage must be a finite number >= 0".into()));
        }
        if !metric.contains('*') && !metric::is_known(metric) {
            return Err(bad(format!(
                "unknown metric `{metric}`; use tx.pps, tx.bps, rx.pps, rx.bps, tx.seconds, \
                 rx.seconds, link.utilisation, metrics.<key>, stage.<site>.<p50_ns|p99_ns|cum_ns|...>"
            )));
        }
        Ok(Threshold {
            metric: metric.to_string(),
            percent,
            direction: Direction::of(metric),
        })
    }
}

/// What the gate checks.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GateConfig {
    /// One threshold per metric or pattern.
    pub thresholds: Vec<Threshold>,
    /// Bootstrap settings (seeded: the same files always give the same verdict).
    pub bootstrap: Bootstrap,
    /// How a wall-clock check's interval becomes a verdict.
    pub decision: Decision,
}

/// How a wall-clock check's interval becomes a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Decision {
    /// One look at a fixed set of runs (e.g. a committed baseline): a
    /// regression when the whole interval lies beyond the threshold; refused
    /// when the interval is wider than the threshold and does not.
    #[default]
    Fixed,
    /// One look of a sequence that adds rounds until every check is decided:
    /// a regression when the whole interval lies beyond half the threshold,
    /// a pass when it lies wholly on the good side of half, undecided
    /// otherwise. At the `last` look an undecided check passes when its
    /// interval excludes a worsening of the whole threshold, and is refused
    /// otherwise.
    Sequential {
        /// No more rounds will come.
        last: bool,
    },
}

impl Decision {
    /// The worsening (a fraction, positive = worse) beyond which a whole
    /// interval is a regression, for a threshold `tp` (a fraction).
    fn fail_line(self, tp: f64) -> f64 {
        match self {
            Decision::Fixed => tp,
            Decision::Sequential { .. } => tp / 2.0,
        }
    }

    /// The verdict on a worsening interval `[wlo, whi]` (positive = worse)
    /// with half-width `hw`, for a threshold `tp`: `None` when undecided.
    fn verdict(self, wlo: f64, whi: f64, hw: f64, tp: f64) -> Option<GateVerdict> {
        let line = self.fail_line(tp);
        if wlo > line {
            return Some(GateVerdict::Regression);
        }
        if whi < -line {
            return Some(GateVerdict::Improved);
        }
        let decided = match self {
            Decision::Fixed => hw <= tp,
            Decision::Sequential { last: false } => whi < line,
            Decision::Sequential { last: true } => whi < tp,
        };
        decided.then_some(GateVerdict::Pass)
    }

    /// The smallest worsening this rule catches reliably at half-width `hw`:
    /// an interval centred on `line + 2 hw` lies wholly beyond the line
    /// unless the estimate falls a whole half-width short, which a 95 %
    /// interval's estimate does about one time in forty.
    pub fn detectable(self, tp: f64, hw: f64) -> f64 {
        self.fail_line(tp) + 2.0 * hw
    }
}

impl GateConfig {
    /// Thresholds from `METRIC=PCT` flags and from the scenario's `[gate]`
    /// table (`meta.gate` of the current results); a flag overrides the
    /// table for the same metric.
    pub fn from_flags_and_meta(
        flags: &[String],
        meta_gate: &std::collections::BTreeMap<String, f64>,
    ) -> Result<GateConfig, GateError> {
        let mut thresholds: Vec<Threshold> = Vec::new();
        for (m, p) in meta_gate {
            thresholds.push(Threshold::new(m, *p)?);
        }
        for f in flags {
            let t = Threshold::parse(f)?;
            thresholds.retain(|x| x.metric != t.metric);
            thresholds.push(t);
        }
        Ok(GateConfig {
            thresholds,
            bootstrap: Bootstrap::default(),
            decision: Decision::default(),
        })
    }
}

/// The gate's verdict on one metric of one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateVerdict {
    /// No change beyond the threshold (or within the tolerance when exact).
    Pass,
    /// Better beyond the threshold, with the whole interval.
    Improved,
    /// Worse beyond the threshold, with the whole interval: fails the gate.
    Regression,
    /// A deterministic metric changed: fails the gate until the baseline is refreshed.
    Changed,
    /// The interval is too wide to judge at this threshold.
    Inconclusive,
}

impl fmt::Display for GateVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateVerdict::Pass => "ok",
            GateVerdict::Improved => "improved",
            GateVerdict::Regression => "REGRESSION",
            GateVerdict::Changed => "CHANGED",
            GateVerdict::Inconclusive => "inconclusive",
        })
    }
}

/// One line of the gate's table.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRow {
    /// The configuration (`key=value, ...`).
    pub config: String,
    /// Metric name.
    pub metric: String,
    /// Baseline median.
    pub baseline: f64,
    /// Current median.
    pub current: f64,
    /// Relative change of the median with its interval (zero-width when exact).
    pub change: Change,
    /// Threshold in percent.
    pub threshold: f64,
    /// Which way is better.
    pub direction: Direction,
    /// Compared exactly (virtual time).
    pub deterministic: bool,
    /// Runs (baseline, current).
    pub runs: (usize, usize),
    /// The runs were interleaved in time and compared pair by pair: the
    /// change is the median of per-pair changes.
    pub paired: bool,
    /// The verdict.
    pub verdict: GateVerdict,
    /// The smallest worsening (a fraction) this check would have caught at
    /// the noise measured; 0 when compared exactly (any change is caught),
    /// `None` when no interval could be formed.
    pub detectable: Option<f64>,
}

/// Everything the gate found.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReport {
    /// Scenario name.
    pub scenario: String,
    /// One row per configuration and metric.
    pub rows: Vec<GateRow>,
    /// What makes the verdict weaker than it looks (a wall-clock baseline
    /// from another host), printed with it.
    pub warnings: Vec<String>,
}

impl GateReport {
    /// Whether any metric regressed (or a deterministic one changed).
    pub fn regressed(&self) -> bool {
        self.rows
            .iter()
            .any(|r| matches!(r.verdict, GateVerdict::Regression | GateVerdict::Changed))
    }

    /// 1 when [`regressed`](Self::regressed), else 0.
    pub fn exit_code(&self) -> i32 {
        if self.regressed() {
            crate::exit::REGRESSION
        } else {
            crate::exit::OK
        }
    }

    pub(crate) fn headline(&self) -> String {
        let bad: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| matches!(r.verdict, GateVerdict::Regression | GateVerdict::Changed))
            .map(|r| r.metric.as_str())
            .collect();
        let mut out = if bad.is_empty() {
            format!(
                "perfkit gate: pass: no regression in {} ({} checks)",
                self.scenario,
                self.rows.len()
            )
        } else {
            format!(
                "perfkit gate: FAIL: {} of {} checks regressed or changed in {}: {}",
                bad.len(),
                self.rows.len(),
                self.scenario,
                each_once(&bad)
            )
        };
        let counted = self
            .rows
            .iter()
            .filter(|r| metric::is_counted(&r.metric))
            .count();
        if counted > 0 {
            out.push_str(&format!(
                "\ncounted: {counted} check(s) on instruction or cycle counts are deterministic \
                 (the same build counts the same in every run): compared exactly against their \
                 thresholds, no statistics"
            ));
        }
        if let Some(p) = self.power() {
            out.push('\n');
            out.push_str(&p);
        }
        for w in &self.warnings {
            out.push_str("\nWARNING: ");
            out.push_str(w);
        }
        out
    }

    /// The gate's power at the noise measured, in one sentence: the least
    /// sensitive wall-clock check and the smallest worsening it would have
    /// caught. `None` when every check compared exactly.
    pub fn power(&self) -> Option<String> {
        let worst = self
            .rows
            .iter()
            .filter(|r| !r.deterministic)
            .max_by(|a, b| {
                let d = |r: &GateRow| r.detectable.unwrap_or(f64::INFINITY);
                d(a).total_cmp(&d(b))
            })?;
        Some(match worst.detectable {
            Some(d) if d.is_finite() => format!(
                "power: every check would have caught a worsening of {:.1} % or more at this \
                 noise (least sensitive: {}, {})",
                d * 100.0,
                worst.metric,
                worst.config
            ),
            _ => format!(
                "power: unknown: no interval for {} ({})",
                worst.metric, worst.config
            ),
        })
    }

    pub(crate) fn table_rows(&self) -> Vec<Vec<String>> {
        self.rows
            .iter()
            .map(|r| {
                let ci = table::interval(&r.change, r.deterministic);
                let dir = match r.direction {
                    Direction::HigherIsBetter => "-",
                    Direction::LowerIsBetter => "+",
                };
                vec![
                    r.metric.clone(),
                    r.config.clone(),
                    table::num(r.baseline),
                    table::num(r.current),
                    table::pct(r.change.estimate),
                    ci,
                    if metric::is_counted(&r.metric) {
                        format!("{dir}{}% exact", r.threshold)
                    } else if r.deterministic {
                        "exact".into()
                    } else {
                        format!("{dir}{}%", r.threshold)
                    },
                    if r.paired {
                        format!("{} pairs", r.runs.0)
                    } else {
                        format!("{}/{}", r.runs.0, r.runs.1)
                    },
                    match r.detectable {
                        _ if metric::is_counted(&r.metric) => format!("> {} %", r.threshold),
                        Some(d) if r.deterministic || d == 0.0 => "any change".into(),
                        Some(d) => format!(">= {:.1} %", d * 100.0),
                        None => "n/a".into(),
                    },
                    r.verdict.to_string(),
                ]
            })
            .collect()
    }

    pub(crate) const HEADERS: [&'static str; 10] = [
        "metric",
        "configuration",
        "baseline",
        "current",
        "change",
        "95% CI",
        "threshold",
        "runs",
        "catches",
        "verdict",
    ];

    /// The console table (metric, baseline, current, change, interval, verdict).
    pub fn console_table(&self) -> String {
        // Line by line: names may hold escape sequences, the lines are ours.
        let mut out: String = self
            .headline()
            .lines()
            .map(table::printable)
            .collect::<Vec<_>>()
            .join("\n");
        out.push('\n');
        out.push_str(&table::console(&Self::HEADERS, &self.table_rows()));
        out
    }

    /// The same as Markdown, for `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let mark = if self.regressed() { "❌" } else { "✅" };
        format!(
            "### {mark} {}\n\n{}\nA regression is flagged only when the whole 95 % bootstrap \
             interval of the median's change lies beyond the threshold (half the threshold \
             when both builds were measured round by round until the verdict was clear; runs \
             interleaved in time are compared pair by pair); virtual-time metrics compare \
             exactly. `catches` is the smallest worsening each check would have caught at \
             the noise measured.\n",
            self.headline()
                .lines()
                .map(table::markdown_text)
                .collect::<Vec<_>>()
                .join("\n\n"),
            table::markdown(&Self::HEADERS, &self.table_rows())
        )
    }
}

/// Why the gate could not judge (exit code 2).
#[derive(Debug)]
pub struct GateError {
    kind: GateErrorKind,
}

/// What kind of bad input the gate met.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GateErrorKind {
    /// A `METRIC=PCT` threshold did not parse or names no known metric.
    BadThreshold {
        /// The flag as given.
        flag: String,
        /// What is wrong with it.
        why: String,
    },
    /// No thresholds from flags nor from the scenario's `[gate]` table.
    NoThresholds,
    /// A threshold's metric is missing from a file.
    MissingMetric {
        /// The metric or pattern.
        metric: String,
        /// `baseline` or `current`.
        side: &'static str,
        /// The configuration that lacks it, when only some do.
        config: Option<String>,
        /// Metrics the file does have (headline ones), as a hint.
        available: Vec<String>,
    },
    /// The baseline is for another scenario or configuration set.
    Incompatible {
        /// What differs.
        why: String,
    },
    /// Too few runs to reach a verdict at the threshold.
    TooFewRuns {
        /// Configuration.
        config: String,
        /// Metric.
        metric: String,
        /// Runs in baseline and current.
        have: (usize, usize),
        /// Runs per side that should resolve the threshold.
        need: usize,
        /// The threshold in percent.
        threshold: f64,
        /// Half-width of the interval obtained, in percent.
        resolution: f64,
        /// How many checks were inconclusive in all.
        count: usize,
    },
    /// Every run of a configuration failed on one side (or, for `compare`,
    /// every run of an input): no figure to judge.
    NothingToJudge(String),
    /// The baseline's median (or, paired, the median of the per-pair
    /// changes) reads 0 or less: a change relative to 0 is unbounded, and
    /// one relative to a negative value reads upside down.
    BaselineNotPositive {
        /// Configuration.
        config: String,
        /// Metric.
        metric: String,
    },
}

impl GateError {
    pub(crate) fn new(kind: GateErrorKind) -> Self {
        GateError { kind }
    }
    /// What went wrong.
    pub fn kind(&self) -> &GateErrorKind {
        &self.kind
    }
    /// Always 2: bad input, not a regression.
    pub fn exit_code(&self) -> i32 {
        crate::exit::BAD_INPUT
    }
}

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            GateErrorKind::BadThreshold { flag, why } => {
                write!(f, "bad threshold `{flag}`: {why}")
            }
            GateErrorKind::NoThresholds => write!(
                f,
                "nothing to gate: pass --threshold METRIC=PCT (e.g. --threshold tx.bps=5) \
                 or add a [gate] table to the scenario file"
            ),
            GateErrorKind::MissingMetric {
                metric,
                side,
                config,
                available,
            } => {
                write!(f, "metric `{metric}` is not in the {side} results")?;
                if let Some(c) = config {
                    write!(f, " for configuration {c}")?;
                }
                write!(
                    f,
                    "; check the name or drop the threshold (metrics present: {})",
                    available.join(", ")
                )?;
                if *side == "baseline" {
                    write!(
                        f,
                        "; if the scenario now records it, refresh the baseline with --update-baseline"
                    )?;
                }
                Ok(())
            }
            GateErrorKind::Incompatible { why } => write!(
                f,
                "baseline is incompatible with these results: {why}; gate against the baseline \
                 of the same scenario, or refresh it with --update-baseline if the scenario \
                 changed on purpose"
            ),
            GateErrorKind::TooFewRuns {
                config,
                metric,
                have,
                need,
                threshold,
                resolution,
                count,
            } => write!(
                f,
                "too few runs to judge {metric} for {config} at {threshold}%: \
                 {} baseline and {} current runs resolve only +/-{resolution:.1}% \
                 ({count} check(s) inconclusive); make about {need} runs of each side \
                 (`runs` in the scenario, or `perfkit run --runs {need}`) or raise the threshold",
                have.0, have.1
            ),
            GateErrorKind::NothingToJudge(why) => f.write_str(why),
            GateErrorKind::BaselineNotPositive { config, metric } => write!(
                f,
                "cannot judge {metric} for {config}: the baseline's median reads 0 or less, \
                 and a change in percent of that has no size or reads upside down; find out why the baseline \
                 recorded it and refresh it, or gate on another metric"
            ),
        }
    }
}

impl std::error::Error for GateError {}

/// The verdict on a counted metric (instructions, cycles) that moved by
/// `rel` (a fraction of the baseline): no interval, since the same build
/// gives the same count, so a worsening beyond the threshold `tp` is a
/// regression and anything within it passes.
fn counted_verdict(rel: f64, direction: Direction, tp: f64) -> GateVerdict {
    let worse = match direction {
        Direction::HigherIsBetter => -rel,
        Direction::LowerIsBetter => rel,
    };
    // Ratios of integers near the line must not flip on rounding.
    let tp = tp + EXACT_TOLERANCE;
    if worse > tp {
        GateVerdict::Regression
    } else if worse < -tp {
        GateVerdict::Improved
    } else {
        GateVerdict::Pass
    }
}

/// Writes `current` as the new baseline, atomically.
pub fn update_baseline(current: &Results, path: &Path) -> Result<(), model::Error> {
    current.write_atomic(path)
}

/// The warning for wall-clock rows judged against runs from another host:
/// the two sides' runs were not interleaved (so not paired) and the hosts'
/// fingerprints differ. Such a verdict is given, never silently.
fn other_host(baseline: &Results, current: &Results, rows: &[GateRow]) -> Option<String> {
    let (b, c) = (baseline.meta.host_identity(), current.meta.host_identity());
    let unpaired_wall_clock = rows.iter().any(|r| !r.deterministic && !r.paired);
    if !unpaired_wall_clock || b == c {
        return None;
    }
    let why = if baseline.meta.host_fingerprint.is_none() && baseline.meta.host == current.meta.host
    {
        format!(
            "the baseline records no host fingerprint (only the name `{}`), so nothing shows \
             its wall-clock runs were made on this machine ({c})",
            baseline.meta.host
        )
    } else {
        format!(
            "the baseline's wall-clock runs were recorded on another host ({b}; this host: {c})"
        )
    };
    Some(format!(
        "{why}; times from another machine say nothing about this one, so the wall-clock \
         verdicts above are not evidence either way. Measure both builds here instead: \
         perfkit gate --against REV SCENARIO.toml"
    ))
}

/// Instruction counts belong to one compiler's code: against a baseline
/// built by another compiler they move with no change to the source, and a
/// verdict on them would flip with the toolchain. Such rows are left out of
/// the verdict, and the warning says so and how to refresh the baseline.
/// (Emulated device cycles come from the firmware's own pinned compiler.)
fn other_compiler(
    baseline: &Results,
    current: &Results,
    rows: &mut Vec<GateRow>,
) -> Option<String> {
    let (Some(b), Some(c)) = (&baseline.meta.compiler, &current.meta.compiler) else {
        return None;
    };
    let instr = |r: &GateRow| r.metric.starts_with(metric::COUNTED_PREFIXES[0]);
    if b == c || !rows.iter().any(instr) {
        return None;
    }
    let left_out = rows.iter().filter(|r| instr(r)).count();
    rows.retain(|r| !instr(r));
    Some(format!(
        "{left_out} instruction-count check(s) not judged: the baseline was built by {b}, \
         this build by {c}, and counts belong to one compiler's code; record a baseline \
         with this toolchain (perfkit gate ... --update-baseline) to gate them"
    ))
}

/// "every run of OF failed in PLACE (first error: ...)": the words of the
/// gate and of `compare` for records none of which completed.
pub(crate) fn every_run_failed(
    of: Option<&str>,
    place: &str,
    runs: &[&model::RunRecord],
) -> String {
    let first = runs
        .iter()
        .find_map(|r| r.error.as_deref())
        .filter(|e| !e.is_empty());
    format!(
        "every run{} failed in {place} ({})",
        of.map(|o| format!(" of {o}")).unwrap_or_default(),
        match first {
            Some(e) => format!("first error: {e}"),
            None => "no error recorded".to_owned(),
        }
    )
}

fn incompatible(why: String) -> GateError {
    GateError::new(GateErrorKind::Incompatible { why })
}

/// All metric names present in a group's completed records.
fn present_metrics(g: &ConfigGroup<'_>) -> Vec<String> {
    let mut m = metric::headline(g.ok_runs());
    m.push("tx.seconds".into());
    m.push("rx.seconds".into());
    for &f in crate::model::Stage::COLUMNS {
        m.extend(metric::stage_metrics(g.ok_runs(), f));
    }
    for r in g.ok_runs() {
        if let Some(d) = &r.device_stages {
            for s in &d.sites {
                for f in ["cum_ns", "p50_ns", "p99_ns"] {
                    let n = format!("device_stage.{}.{f}", s.name);
                    if !m.contains(&n) {
                        m.push(n);
                    }
                }
            }
        }
    }
    m
}

/// Compares `current` with `baseline` under `cfg`.
///
/// `Ok` holds the report whether or not it regressed (see
/// [`GateReport::regressed`]); `Err` means the gate could not judge.
pub fn evaluate(
    baseline: &Results,
    current: &Results,
    cfg: &GateConfig,
) -> Result<GateReport, GateError> {
    // A baseline of another scenario is the first thing to say: it is why
    // nothing else lines up, thresholds included.
    if baseline.meta.scenario.name != current.meta.scenario.name {
        return Err(incompatible(format!(
            "the baseline is for scenario `{}`, the results for `{}`",
            baseline.meta.scenario.name, current.meta.scenario.name
        )));
    }
    if cfg.thresholds.is_empty() {
        return Err(GateError::new(GateErrorKind::NoThresholds));
    }
    for (side, r) in [("baseline", baseline), ("results", current)] {
        if let Some((a, b)) = analysis::shared_identity(r) {
            return Err(incompatible(format!(
                "the {side} hold one configuration under two ids ({a} and {b}: they differ \
                 only in {}), and only the first would be judged; gate them as two files",
                analysis::NON_IDENTIFYING_KEYS.join(", ")
            )));
        }
    }
    let keys = union_swept(&[baseline, current]);
    // The current results' configurations first: the table follows their order.
    let sides = [group::groups(current), group::groups(baseline)];
    if sides[1].is_empty() {
        return Err(incompatible("the baseline has no run records".into()));
    }
    if sides[0].is_empty() {
        return Err(incompatible("the results have no run records".into()));
    }
    let matching = analysis::match_configs(&sides);
    let mut pairs = Vec::with_capacity(matching.rows.len());
    for row in &matching.rows {
        match row.as_slice() {
            [Some(c), Some(b)] => pairs.push((*b, *c)),
            [Some(c), None] => {
                return Err(incompatible(format!(
                    "configuration {} is not in the baseline",
                    config_label(c.config, &keys)
                )))
            }
            _ => {}
        }
    }
    if let Some((_, b)) = matching.extra.first() {
        return Err(incompatible(format!(
            "baseline configuration {} is missing from the results",
            config_label(b.config, &keys)
        )));
    }

    // A side whose every run of a configuration failed has no figure to
    // judge: say that, not that a metric is missing.
    for (b, c) in &pairs {
        for (side, g) in [("baseline", b), ("results", c)] {
            if g.ok_runs().next().is_none() {
                let of = format!("configuration {}", config_label(c.config, &keys));
                return Err(GateError::new(GateErrorKind::NothingToJudge(format!(
                    "{}, so there is nothing to judge",
                    every_run_failed(Some(&of), &format!("the {side}"), &g.runs)
                ))));
            }
        }
    }
    let mut rows = Vec::new();
    let mut inconclusive: Vec<GateErrorKind> = Vec::new();
    for t in &cfg.thresholds {
        let mut matched_any = false;
        for (b, c) in &pairs {
            let label = config_label(c.config, &keys);
            let names: Vec<String> = if t.metric.contains('*') {
                present_metrics(b)
                    .into_iter()
                    .filter(|m| metric::glob_match(&t.metric, m))
                    .collect()
            } else {
                vec![t.metric.clone()]
            };
            for m in names {
                let missing = |side: &'static str, g: &ConfigGroup<'_>| {
                    GateError::new(GateErrorKind::MissingMetric {
                        metric: m.clone(),
                        side,
                        config: (pairs.len() > 1).then(|| label.clone()),
                        available: metric::headline(g.ok_runs()),
                    })
                };
                let a = analysis::metric_change(b, c, &m, &cfg.bootstrap).map_err(
                    |side| match side {
                        Missing::Base => missing("baseline", b),
                        Missing::Current => missing("current", c),
                    },
                )?;
                matched_any = true;
                let direction = Direction::of(&m);
                let deterministic = a.method == Method::Exact;
                let (sb, sc) = (&a.base, &a.current);
                let (mb, mc) = (sb.median(), sc.median());
                let rel = |x: f64| {
                    if mb != 0.0 {
                        x / mb - 1.0
                    } else if x == 0.0 {
                        0.0
                    } else {
                        f64::INFINITY
                    }
                };
                let tp = t.percent / 100.0;
                let (change, verdict, detectable) = if deterministic {
                    let ch = Change::exact(rel(mc));
                    let same =
                        (mc - mb).abs() <= EXACT_TOLERANCE * mb.abs().max(mc.abs()) || mc == mb;
                    let v = if metric::is_counted(&m) {
                        counted_verdict(rel(mc), direction, tp)
                    } else if same {
                        GateVerdict::Pass
                    } else {
                        GateVerdict::Changed
                    };
                    (ch, v, Some(0.0))
                } else if sb.len() < MIN_REPEATS || sc.len() < MIN_REPEATS {
                    inconclusive.push(GateErrorKind::TooFewRuns {
                        config: label.clone(),
                        metric: m.clone(),
                        have: (sb.len(), sc.len()),
                        need: MIN_REPEATS.max(5),
                        threshold: t.percent,
                        resolution: f64::INFINITY,
                        count: 0,
                    });
                    (Change::exact(rel(mc)), GateVerdict::Inconclusive, None)
                } else {
                    match a.change {
                        // The only way to no interval with enough runs.
                        None => {
                            inconclusive.push(GateErrorKind::BaselineNotPositive {
                                config: label.clone(),
                                metric: m.clone(),
                            });
                            (Change::exact(rel(mc)), GateVerdict::Inconclusive, None)
                        }
                        Some(ch) => {
                            // `worse` as a range where positive means worse.
                            let (wlo, whi) = match direction {
                                Direction::HigherIsBetter => (-ch.hi, -ch.lo),
                                Direction::LowerIsBetter => (ch.lo, ch.hi),
                            };
                            let hw = ch.half_width();
                            let v = cfg.decision.verdict(wlo, whi, hw, tp).unwrap_or_else(|| {
                                let n = sb.len().min(sc.len()) as f64;
                                // Half-width shrinks about as 1/sqrt(runs); aim
                                // at the width the rule needs, with a margin.
                                let want = cfg.decision.fail_line(tp).max(1e-6);
                                // At most 10,000, unless that many were made already.
                                let need = (n * (hw / want).powi(2) * 1.3)
                                    .ceil()
                                    .min(10_000.0)
                                    .max(n + 1.0)
                                    as usize;
                                inconclusive.push(GateErrorKind::TooFewRuns {
                                    config: label.clone(),
                                    metric: m.clone(),
                                    have: (sb.len(), sc.len()),
                                    need,
                                    threshold: t.percent,
                                    resolution: hw * 100.0,
                                    count: 0,
                                });
                                GateVerdict::Inconclusive
                            });
                            (ch, v, Some(cfg.decision.detectable(tp, hw)))
                        }
                    }
                };
                rows.push(GateRow {
                    config: label.clone(),
                    metric: m.clone(),
                    baseline: mb,
                    current: mc,
                    change,
                    threshold: t.percent,
                    direction,
                    deterministic,
                    runs: (sb.len(), sc.len()),
                    paired: matches!(a.method, Method::Paired { .. }),
                    verdict,
                    detectable,
                });
            }
        }
        if !matched_any {
            return Err(GateError::new(GateErrorKind::MissingMetric {
                metric: t.metric.clone(),
                side: "baseline",
                config: None,
                available: metric::headline(baseline.runs.iter()),
            }));
        }
    }
    let mut warnings: Vec<String> = other_host(baseline, current, &rows).into_iter().collect();
    warnings.extend(other_compiler(baseline, current, &mut rows));
    // Every check set aside: a pass would judge nothing.
    if rows.is_empty() {
        if let Some(why) = warnings.pop() {
            return Err(incompatible(why));
        }
    }
    let report = GateReport {
        scenario: current.meta.scenario.name.clone(),
        rows,
        warnings,
    };
    // A clear regression is worth reporting even if other checks could not
    // be judged; otherwise an inconclusive check must not pass silently.
    if !report.regressed() {
        let count = inconclusive.len();
        if let Some(mut first) = inconclusive.into_iter().next() {
            if let GateErrorKind::TooFewRuns { count: c, .. } = &mut first {
                *c = count;
            }
            return Err(GateError::new(first));
        }
    }
    Ok(report)
}

/// Metric names in order of first appearance, each once, with how many
/// checks (configurations) failed on it: "rx.bps (3 configurations)".
fn each_once(names: &[&str]) -> String {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for n in names {
        match seen.iter_mut().find(|(m, _)| m == n) {
            Some((_, k)) => *k += 1,
            None => seen.push((n, 1)),
        }
    }
    seen.iter()
        .map(|(n, k)| match k {
            1 => (*n).to_string(),
            k => format!("{n} ({k} configurations)"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_failing_metric_is_named_once_with_its_count() {
        assert_eq!(
            super::each_once(&["rx.bps", "tx.pps", "rx.bps", "rx.bps"]),
            "rx.bps (3 configurations), tx.pps"
        );
        assert_eq!(super::each_once(&["a"]), "a");
    }

    use super::*;

    #[test]
    fn counted_metrics_are_judged_against_the_threshold_without_statistics() {
        let lower = Direction::LowerIsBetter;
        // 0.5 %: 1,006 instructions against 1,000 regressed, 1,005 did not.
        assert_eq!(
            counted_verdict(0.006, lower, 0.005),
            GateVerdict::Regression
        );
        assert_eq!(counted_verdict(0.005, lower, 0.005), GateVerdict::Pass);
        assert_eq!(counted_verdict(0.0, lower, 0.005), GateVerdict::Pass);
        assert_eq!(counted_verdict(-0.01, lower, 0.005), GateVerdict::Improved);
        // A threshold of 0 fails on any growth.
        assert_eq!(counted_verdict(1e-6, lower, 0.0), GateVerdict::Regression);
        assert!(metric::is_counted("metrics.instr.wire::crc16.per_call"));
        assert!(metric::is_counted("metrics.cycles.wire::crc16.per_byte"));
        assert!(!metric::is_counted("metrics.mb_per_s"));
        assert_eq!(Direction::of("metrics.instr.tx.total"), lower);
    }
}
