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
//!   ([`GateErrorKind::TooFewRepeats`]) and says how many repeats would do.
//!   Fewer than [`MIN_REPEATS`] repeats on either side is refused outright.
//! - **Interleaved runs** (baseline and candidate run in alternation, as the
//!   runs' start times show) are compared pair by pair, with the same
//!   choice of statistics as `compare` ([`crate::analysis::metric_change`]).
//! - **Deterministic metrics** (virtual-time records, except host-side
//!   `stage.*` timings which are always real) compare exactly: any change
//!   beyond [`crate::compare::EXACT_TOLERANCE`], in either
//!   direction, is reported as `changed` and fails the gate, because a model
//!   that gives different numbers is a different model; refresh the baseline
//!   with `--update-baseline` when the change is intended.
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

/// Fewer repeats than this on either side and a wall-clock metric is not judged.
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
    /// Repeats (baseline, current).
    pub repeats: (usize, usize),
    /// The runs were interleaved in time and compared pair by pair: the
    /// change is the median of per-pair changes.
    pub paired: bool,
    /// The verdict.
    pub verdict: GateVerdict,
}

/// Everything the gate found.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReport {
    /// Scenario name.
    pub scenario: String,
    /// One row per configuration and metric.
    pub rows: Vec<GateRow>,
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

    fn headline(&self) -> String {
        let bad = self
            .rows
            .iter()
            .filter(|r| matches!(r.verdict, GateVerdict::Regression | GateVerdict::Changed))
            .count();
        if bad > 0 {
            format!(
                "perfkit gate: FAIL: {bad} of {} checks regressed or changed in {}",
                self.rows.len(),
                self.scenario
            )
        } else {
            format!(
                "perfkit gate: pass: no regression in {} ({} checks)",
                self.scenario,
                self.rows.len()
            )
        }
    }

    fn table_rows(&self) -> Vec<Vec<String>> {
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
                    if r.deterministic {
                        "exact".into()
                    } else {
                        format!("{dir}{}%", r.threshold)
                    },
                    if r.paired {
                        format!("{} pairs", r.repeats.0)
                    } else {
                        format!("{}/{}", r.repeats.0, r.repeats.1)
                    },
                    r.verdict.to_string(),
                ]
            })
            .collect()
    }

    const HEADERS: [&'static str; 9] = [
        "metric",
        "configuration",
        "baseline",
        "current",
        "change",
        "95% CI",
        "threshold",
        "repeats",
        "verdict",
    ];

    /// The console table (metric, baseline, current, change, interval, verdict).
    pub fn console_table(&self) -> String {
        let mut out = self.headline();
        out.push('\n');
        out.push_str(&table::console(&Self::HEADERS, &self.table_rows()));
        out
    }

    /// The same as Markdown, for `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let mark = if self.regressed() { "❌" } else { "✅" };
        format!(
            "### {mark} {}\n\n{}\nA regression is flagged only when the whole 95 % bootstrap \
             interval of the median's change lies beyond the threshold (runs interleaved in \
             time are compared pair by pair); virtual-time metrics compare exactly.\n",
            self.headline(),
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
    /// Too few repeats to reach a verdict at the threshold.
    TooFewRepeats {
        /// Configuration.
        config: String,
        /// Metric.
        metric: String,
        /// Repeats in baseline and current.
        have: (usize, usize),
        /// Repeats per side that should resolve the threshold.
        need: usize,
        /// The threshold in percent.
        threshold: f64,
        /// Half-width of the interval obtained, in percent.
        resolution: f64,
        /// How many checks were inconclusive in all.
        count: usize,
    },
}

impl GateError {
    fn new(kind: GateErrorKind) -> Self {
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
            GateErrorKind::TooFewRepeats {
                config,
                metric,
                have,
                need,
                threshold,
                resolution,
                count,
            } => write!(
                f,
                "too few repeats to judge {metric} for {config} at {threshold}%: \
                 {} baseline and {} current repeats resolve only +/-{resolution:.1}% \
                 ({count} check(s) inconclusive); raise `repeats` to about {need} in the scenario \
                 (for both baseline and current runs) or raise the threshold",
                have.0, have.1
            ),
        }
    }
}

impl std::error::Error for GateError {}

/// Writes `current` as the new baseline, atomically.
pub fn update_baseline(current: &Results, path: &Path) -> Result<(), model::Error> {
    current.write_atomic(path)
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
    if cfg.thresholds.is_empty() {
        return Err(GateError::new(GateErrorKind::NoThresholds));
    }
    if baseline.meta.scenario.name != current.meta.scenario.name {
        return Err(incompatible(format!(
            "the baseline is for scenario `{}`, the results for `{}`",
            baseline.meta.scenario.name, current.meta.scenario.name
        )));
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
                let (change, verdict) = if deterministic {
                    let ch = Change::exact(rel(mc));
                    let same =
                        (mc - mb).abs() <= EXACT_TOLERANCE * mb.abs().max(mc.abs()) || mc == mb;
                    (
                        ch,
                        if same {
                            GateVerdict::Pass
                        } else {
                            GateVerdict::Changed
                        },
                    )
                } else if sb.len() < MIN_REPEATS || sc.len() < MIN_REPEATS {
                    inconclusive.push(GateErrorKind::TooFewRepeats {
                        config: label.clone(),
                        metric: m.clone(),
                        have: (sb.len(), sc.len()),
                        need: MIN_REPEATS.max(5),
                        threshold: t.percent,
                        resolution: f64::INFINITY,
                        count: 0,
                    });
                    (Change::exact(rel(mc)), GateVerdict::Inconclusive)
                } else {
                    match a.change {
                        None => (Change::exact(rel(mc)), GateVerdict::Inconclusive),
                        Some(ch) => {
                            // `worse` as a range where positive means worse.
                            let (wlo, whi) = match direction {
                                Direction::HigherIsBetter => (-ch.hi, -ch.lo),
                                Direction::LowerIsBetter => (ch.lo, ch.hi),
                            };
                            let v = if wlo > tp {
                                GateVerdict::Regression
                            } else if whi < -tp {
                                GateVerdict::Improved
                            } else if ch.half_width() > tp {
                                let n = sb.len().min(sc.len()) as f64;
                                let need = (n * (ch.half_width() / tp.max(1e-6)).powi(2) * 1.3)
                                    .ceil()
                                    .clamp(n + 1.0, 10_000.0)
                                    as usize;
                                inconclusive.push(GateErrorKind::TooFewRepeats {
                                    config: label.clone(),
                                    metric: m.clone(),
                                    have: (sb.len(), sc.len()),
                                    need,
                                    threshold: t.percent,
                                    resolution: ch.half_width() * 100.0,
                                    count: 0,
                                });
                                GateVerdict::Inconclusive
                            } else {
                                GateVerdict::Pass
                            };
                            (ch, v)
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
                    repeats: (sb.len(), sc.len()),
                    paired: matches!(a.method, Method::Paired { .. }),
                    verdict,
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
    let report = GateReport {
        scenario: current.meta.scenario.name.clone(),
        rows,
    };
    // A clear regression is worth reporting even if other checks could not
    // be judged; otherwise an inconclusive check must not pass silently.
    if !report.regressed() {
        let count = inconclusive.len();
        if let Some(mut first) = inconclusive.into_iter().next() {
            if let GateErrorKind::TooFewRepeats { count: c, .. } = &mut first {
                *c = count;
            }
            return Err(GateError::new(first));
        }
    }
    Ok(report)
}
