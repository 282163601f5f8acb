//! The gate against history: each configuration and gated metric of a new
//! results file judged against the same scenario, configuration and host
//! class on the base branch, by [`changepoint::judge`].

use std::collections::{BTreeMap, BTreeSet};

use perfkit_report::metric::{self, Direction};
use perfkit_report::model::Results;
use perfkit_report::table;

use crate::changepoint::{self, Rule, Shape, Verdict};
use crate::{flatten, identity, Error, ErrorKind, SeriesQuery, Store};

/// What to compare against.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The base branch whose history is the reference (`main`).
    pub branch: String,
    /// The host class of the new run.
    pub host_fingerprint: String,
    /// The new run's commit: its own points, if already recorded, are left
    /// out of the history.
    pub commit: String,
    /// `(metric or pattern, percent)`, from `--threshold` and `[gate]`.
    pub thresholds: Vec<(String, f64)>,
    /// The rule; its `threshold_pct` is replaced by each metric's.
    pub rule: Rule,
}

/// One configuration and metric judged.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Configuration identity (canonical JSON).
    pub config: String,
    /// Metric name.
    pub metric: String,
    /// Commits of history found (before the window is applied).
    pub history: usize,
    /// Median of the last `window` commits of history.
    pub level: f64,
    /// The new run's value (median over its repeats).
    pub current: f64,
    /// The threshold applied, percent.
    pub threshold_pct: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// The commit where the change began (for a regression).
    pub began: Option<String>,
}

/// Every check of one gate run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Report {
    /// In configuration, then metric order.
    pub checks: Vec<Check>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => xs[n / 2],
        _ => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Judges `current` against the history in `store`.
pub fn evaluate(store: &mut Store, current: &Results, opts: &Options) -> Result<Report, Error> {
    if opts.thresholds.is_empty() {
        return Err(Error::new(ErrorKind::Input(
            "no metrics to gate: give --threshold METRIC=PCT or a [gate] table in the scenario"
                .into(),
        )));
    }
    // The new run's values: config identity -> metric -> values over repeats.
    let mut now: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    // (config identity, metric) of figures some record measured with noise.
    let mut noisy: BTreeSet<(String, String)> = BTreeSet::new();
    for rec in current.runs.iter().filter(|r| r.error.is_none()) {
        let id = identity(&rec.config);
        let per = now.entry(id.clone()).or_default();
        for (name, v) in flatten::figures(rec, &current.meta.scenario.kind) {
            if !metric::is_deterministic(rec, &name) {
                noisy.insert((id.clone(), name.clone()));
            }
            per.entry(name).or_default().push(v);
        }
    }
    let names: BTreeSet<&String> = now.values().flat_map(|m| m.keys()).collect();
    // Each metric with the threshold of the last pattern that names it
    // (flags come after the scenario's table).
    let mut gated: BTreeMap<String, f64> = BTreeMap::new();
    for (pattern, pct) in &opts.thresholds {
        let mut any = false;
        for n in &names {
            if metric::glob_match(pattern, n) {
                gated.insert((*n).clone(), *pct);
                any = true;
            }
        }
        // A mistyped metric would judge nothing and pass; the gate against
        // a baseline file refuses it too.
        if !any {
            let heads = ["tx.bps", "rx.bps", "tx.pps", "rx.pps"];
            let hint: Vec<&str> = heads
                .into_iter()
                .filter(|h| names.iter().any(|n| n == h))
                .collect();
            return Err(Error::new(ErrorKind::Input(format!(
                "threshold `{pattern}` names no metric of the results (e.g. {}; \
                 stages as stage.<site>.<column>, `perfkit params` and docs/gate.md list them)",
                if hint.is_empty() {
                    "metrics.<key>".to_owned()
                } else {
                    hint.join(", ")
                }
            ))));
        }
    }
    let mut report = Report::default();
    for (metric_name, pct) in &gated {
        let points = store.series(&SeriesQuery {
            scenario: current.meta.scenario.name.clone(),
            metric: metric_name.clone(),
            config: Vec::new(),
            branch: Some(opts.branch.clone()),
            host_fingerprint: Some(opts.host_fingerprint.clone()),
        })?;
        for (config, metrics) in &now {
            let Some(values) = metrics.get(metric_name) else {
                continue;
            };
            let past: Vec<_> = points
                .iter()
                .filter(|p| p.config == *config && p.commit != opts.commit)
                .collect();
            let mut series: Vec<f64> = past.iter().map(|p| p.value).collect();
            let current_value = median(values.clone());
            series.push(current_value);
            let rule = Rule {
                threshold_pct: *pct,
                ..opts.rule
            };
            let noise_free = !noisy.contains(&(config.clone(), metric_name.clone()));
            let verdict =
                changepoint::judge(&series, Direction::of(metric_name), &rule, noise_free);
            let began = match verdict {
                Verdict::Regressed(f) | Verdict::Suspect(f) => Some(
                    past.get(f.began_at)
                        .map_or_else(|| opts.commit.clone(), |p| p.commit.clone()),
                ),
                _ => None,
            };
            let window_start = past.len().saturating_sub(rule.window);
            report.checks.push(Check {
                config: config.clone(),
                metric: metric_name.clone(),
                history: past.len(),
                level: median(past[window_start..].iter().map(|p| p.value).collect()),
                current: current_value,
                threshold_pct: *pct,
                verdict,
                began,
            });
        }
    }
    report
        .checks
        .sort_by(|a, b| (&a.config, &a.metric).cmp(&(&b.config, &b.metric)));
    Ok(report)
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

impl Report {
    /// Whether any check found a regression.
    pub fn regressed(&self) -> bool {
        self.checks
            .iter()
            .any(|c| matches!(c.verdict, Verdict::Regressed(_)))
    }

    fn rows(&self) -> Vec<Vec<String>> {
        let labels = crate::export::Labels::new(self.checks.iter().map(|c| c.config.as_str()));
        self.checks
            .iter()
            .map(|c| {
                let change = if c.level != 0.0 && c.level.is_finite() {
                    table::pct((c.current - c.level) / c.level.abs())
                } else {
                    "-".into()
                };
                let describe = |f: &changepoint::Finding| {
                    format!(
                        "{} of {:+.1}% began at {} (z {:.1})",
                        match f.shape {
                            Shape::Step => "step",
                            Shape::Drift => "drift",
                        },
                        f.change_pct,
                        c.began.as_deref().map_or("?", short),
                        f.z.min(999.0)
                    )
                };
                let verdict = match &c.verdict {
                    Verdict::TooShort => "not judged: too little history".to_owned(),
                    Verdict::Steady => format!("ok (threshold {}%)", c.threshold_pct),
                    Verdict::Regressed(f) => format!("REGRESSION: {}", describe(f)),
                    Verdict::Suspect(f) => format!(
                        "suspect (one commit; the next confirms or clears it): {}",
                        describe(f)
                    ),
                };
                vec![
                    labels.get(&c.config),
                    c.metric.clone(),
                    c.history.to_string(),
                    if c.history == 0 {
                        "-".into()
                    } else {
                        table::num(c.level)
                    },
                    table::num(c.current),
                    change,
                    verdict,
                ]
            })
            .collect()
    }

    const HEAD: [&'static str; 7] = [
        "config", "metric", "commits", "level", "now", "change", "verdict",
    ];

    /// A plain-text table.
    pub fn console_table(&self) -> String {
        table::console(&Self::HEAD, &self.rows())
    }

    /// A Markdown table (for a CI job summary).
    pub fn markdown(&self) -> String {
        table::markdown(&Self::HEAD, &self.rows())
    }
}
