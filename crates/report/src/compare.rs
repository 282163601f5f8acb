//! N-way comparison of saved results: configurations matched across files
//! by their `config` maps, each metric compared with the first input's by
//! the statistics of [`crate::analysis`] (exact, paired when the runs were
//! interleaved in time, or two independent samples), with a bootstrap
//! confidence interval and a verdict. What cannot be compared is said, not
//! dropped: metrics one side lacks, configurations whose runs all failed,
//! and (refused outright) an input with no completed run.

use std::fmt;
use std::path::PathBuf;

use crate::analysis::{self, Method};
use crate::gate::{GateError, GateErrorKind};
use crate::group::{self, config_label, ConfigGroup};
use crate::metric::{self, Direction};
use crate::model::Results;
use crate::stats::{Bootstrap, Change};
use crate::table;

pub use crate::analysis::NON_IDENTIFYING_KEYS;

/// Relative tolerance under which a deterministic (virtual-time) metric
/// counts as unchanged: float formatting noise, nothing more.
pub const EXACT_TOLERANCE: f64 = 1e-9;

/// The verdict on one metric of one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Better in the metric's direction, with the interval excluding zero.
    Faster,
    /// Worse in the metric's direction, with the interval excluding zero.
    Slower,
    /// The interval includes zero (or a deterministic metric is unchanged).
    NoChange,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Faster => "faster",
            Verdict::Slower => "slower",
            Verdict::NoChange => "no significant change",
        })
    }
}

/// Verdict from a change: deterministic changes count beyond
/// [`EXACT_TOLERANCE`]; noisy ones when the interval excludes zero.
pub fn verdict(change: &Change, direction: Direction, deterministic: bool) -> Verdict {
    let significant = if deterministic {
        change.estimate.abs() > EXACT_TOLERANCE
    } else {
        change.excludes_zero()
    };
    if !significant {
        return Verdict::NoChange;
    }
    let up = change.estimate > 0.0;
    match (direction, up) {
        (Direction::HigherIsBetter, true) | (Direction::LowerIsBetter, false) => Verdict::Faster,
        _ => Verdict::Slower,
    }
}

/// One candidate input against the first input, for one metric of one
/// configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Delta {
    /// Index of the candidate input.
    pub input: usize,
    /// Candidate median.
    pub median: f64,
    /// Relative change against the first input, with its interval; `None`
    /// when the first input's median is zero.
    pub change: Option<Change>,
    /// How the change was estimated: exact, paired or unpaired.
    pub method: Method,
    /// Faster / slower / no significant change.
    pub verdict: Option<Verdict>,
}

/// One metric of one matched configuration across the inputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The configuration, as `key=value, ...` over the swept keys.
    pub config: String,
    /// Metric name (`tx.bps`, `stage.crc16.p99_ns`, ...).
    pub metric: String,
    /// The first input's median.
    pub reference: f64,
    /// Each further input against the first.
    pub deltas: Vec<Delta>,
    /// Whether every delta compared exactly (deterministic in every input).
    pub deterministic: bool,
}

/// Metrics that one input of a pair has and the other lacks (a stage
/// renamed, added or removed, a `metrics.*` key recorded on one side only),
/// in the configurations listed: no row can compare them.
#[derive(Debug, Clone, PartialEq)]
pub struct OneSided {
    /// The input that has them.
    pub present: usize,
    /// The input that lacks them (the reference, or the candidate against it).
    pub absent: usize,
    /// The metrics, in the order of the input that has them.
    pub metrics: Vec<String>,
    /// The configurations where this is so.
    pub configs: Vec<String>,
    /// Whether that is every configuration (more than one) the pair shares.
    pub every_configuration: bool,
}

/// The result of comparing N results files.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Short labels of the inputs, in order (the first is the reference).
    pub inputs: Vec<String>,
    /// Matched rows.
    pub rows: Vec<Row>,
    /// Configurations present in some inputs but not all: `(input, config)`.
    pub unmatched: Vec<(String, String)>,
    /// Metrics present on one side of a pair only, grouped by pair and list.
    pub one_sided: Vec<OneSided>,
    /// Configurations of an input none of whose runs completed, as
    /// sentences naming the first error: nothing of theirs is compared.
    pub failed: Vec<String>,
    /// Inputs with no completed run at all (or no runs), as sentences
    /// naming the first error: see [`Comparison::refusal`].
    pub nothing_to_compare: Vec<String>,
}

/// A short label for an input file: the folder name for `.../NAME/results.json`,
/// the file stem otherwise.
pub fn input_label(path: &std::path::Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    if stem == "results" {
        if let Some(dir) = path.parent().and_then(|p| p.file_name()) {
            return dir.to_string_lossy().into_owned();
        }
    }
    stem
}

/// Unique labels for a list of inputs (duplicates get `#2`, `#3`, ...).
pub fn input_labels(paths: &[&std::path::Path]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in paths {
        let base = input_label(p);
        let mut l = base.clone();
        let mut k = 2;
        while out.contains(&l) {
            l = format!("{base}#{k}");
            k += 1;
        }
        out.push(l);
    }
    out
}

/// Union of the swept keys of several files, in first-seen order.
pub(crate) fn union_swept(files: &[&Results]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for r in files {
        for k in group::swept_keys(r) {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    keys
}

/// Compares every input with the first one. Metrics: the headline metrics
/// and every stage's p99, wherever both sides have them; those only one
/// side has are listed in [`Comparison::one_sided`]. An input with no
/// completed run leaves nothing to compare: see [`Comparison::refusal`].
pub fn compare(inputs: &[(PathBuf, Results)]) -> Comparison {
    compare_with(inputs, &Bootstrap::default())
}

/// [`compare`] with explicit bootstrap settings.
pub fn compare_with(inputs: &[(PathBuf, Results)], bs: &Bootstrap) -> Comparison {
    let paths: Vec<&std::path::Path> = inputs.iter().map(|(p, _)| p.as_path()).collect();
    let labels = input_labels(&paths);
    let files: Vec<&Results> = inputs.iter().map(|(_, r)| r).collect();
    // An input none of whose runs completed has no figure at all; its
    // configurations are not named one by one as well.
    let mut nothing_to_compare = Vec::new();
    let mut dead = vec![false; files.len()];
    for ((path, r), dead) in inputs.iter().zip(&mut dead) {
        if r.runs.is_empty() {
            nothing_to_compare.push(format!("{} holds no run records", path.display()));
            *dead = true;
        } else if r.runs.iter().all(|x| x.error.is_some()) {
            let runs: Vec<_> = r.runs.iter().collect();
            nothing_to_compare.push(crate::gate::every_run_failed(
                None,
                &path.display().to_string(),
                &runs,
            ));
            *dead = true;
        }
    }
    let keys = union_swept(&files);
    let grouped: Vec<Vec<ConfigGroup<'_>>> = files.iter().map(|r| group::groups(r)).collect();
    let matching = analysis::match_configs(&grouped);
    let mut unmatched: Vec<(String, String)> = matching
        .extra
        .iter()
        .map(|(k, g)| (labels[*k].clone(), config_label(g.config, &keys)))
        .collect();
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    let mut one_sided: Vec<OneSided> = Vec::new();
    // Configurations compared between the reference and each input.
    let mut shared = vec![0usize; files.len()];
    for row in &matching.rows {
        let Some((Some(g0), others)) = row.split_first() else {
            continue;
        };
        let label = config_label(g0.config, &keys);
        for (k, o) in others.iter().enumerate() {
            if o.is_none() {
                unmatched.push((
                    labels[0].clone(),
                    format!("{label} (not in {})", labels[k + 1]),
                ));
            }
        }
        // A configuration none of whose runs completed in an input that has
        // completed runs elsewhere: said, rather than its rows left out.
        let mut completed = |k: usize, g: &ConfigGroup<'_>| {
            let ok = g.ok_runs().next().is_some();
            if !ok && !dead[k] {
                failed.push(crate::gate::every_run_failed(
                    Some(&format!("configuration {label}")),
                    &labels[k],
                    &g.runs,
                ));
            }
            ok
        };
        if !completed(0, g0) {
            continue;
        }
        let mut completed_others = Vec::with_capacity(others.len());
        for (k, o) in others.iter().enumerate() {
            completed_others.push(o.is_some_and(|o| completed(k + 1, o)));
        }
        let metrics = table_metrics(g0);
        for (k, o) in others.iter().enumerate() {
            let Some(o) = o.filter(|_| completed_others[k]) else {
                continue;
            };
            shared[k + 1] += 1;
            let theirs = table_metrics(o);
            for (present, absent, mine, other) in
                [(0, k + 1, &metrics, &theirs), (k + 1, 0, &theirs, &metrics)]
            {
                let only: Vec<String> = mine
                    .iter()
                    .filter(|m| !other.contains(m))
                    .cloned()
                    .collect();
                if only.is_empty() {
                    continue;
                }
                match one_sided
                    .iter_mut()
                    .find(|x| x.present == present && x.absent == absent && x.metrics == only)
                {
                    Some(x) => x.configs.push(label.clone()),
                    None => one_sided.push(OneSided {
                        present,
                        absent,
                        metrics: only,
                        configs: vec![label.clone()],
                        every_configuration: false,
                    }),
                }
            }
        }
        for m in metrics {
            let Some(s0) = g0.sample(&m) else { continue };
            let deltas: Vec<Delta> = others
                .iter()
                .enumerate()
                .filter_map(|(k, o)| {
                    let a = analysis::metric_change(g0, (*o)?, &m, bs).ok()?;
                    let exact = a.method == Method::Exact;
                    // A bootstrap of one or two wall-clock runs a side is
                    // zero-width or nearly, not a 95 % interval: the change
                    // is shown, unbounded, and judged by no verdict (the
                    // gate refuses so few runs outright).
                    let few = !exact
                        && (a.base.len() < crate::gate::MIN_REPEATS
                            || a.current.len() < crate::gate::MIN_REPEATS);
                    let change = match a.change {
                        Some(c) if few => Some(Change {
                            lo: f64::NEG_INFINITY,
                            hi: f64::INFINITY,
                            ..c
                        }),
                        c => c,
                    };
                    Some(Delta {
                        input: k + 1,
                        median: a.current.median(),
                        change,
                        method: a.method,
                        verdict: change
                            .filter(|_| !few)
                            .map(|c| verdict(&c, Direction::of(&m), exact)),
                    })
                })
                .collect();
            if deltas.is_empty() {
                continue;
            }
            rows.push(Row {
                config: label.clone(),
                metric: m,
                reference: s0.median(),
                deterministic: deltas.iter().all(|d| d.method == Method::Exact),
                deltas,
            });
        }
    }
    for x in &mut one_sided {
        let n = shared[x.present.max(x.absent)];
        x.every_configuration = n > 1 && x.configs.len() == n;
    }
    Comparison {
        inputs: labels,
        rows,
        unmatched,
        one_sided,
        failed,
        nothing_to_compare,
    }
}

/// The metrics a row of the table can hold for one configuration: the
/// headline ones and every stage's p99, wherever a completed run has them.
fn table_metrics(g: &ConfigGroup<'_>) -> Vec<String> {
    let mut metrics = metric::headline(g.ok_runs());
    metrics.extend(metric::stage_metrics(g.ok_runs(), "p99_ns"));
    metrics.retain(|m| g.sample(m).is_some());
    metrics
}

impl Comparison {
    fn table_rows(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for r in &self.rows {
            for d in &r.deltas {
                let (chg, ci) = table::change_cells(d.change.as_ref(), d.method == Method::Exact);
                out.push(vec![
                    r.config.clone(),
                    r.metric.clone(),
                    table::num(r.reference),
                    self.inputs[d.input].clone(),
                    table::num(d.median),
                    chg,
                    ci,
                    d.method.to_string(),
                    d.verdict
                        .map(|v| v.to_string())
                        .unwrap_or_else(|| "n/a".into()),
                ]);
            }
        }
        out
    }

    const HEADERS: [&'static str; 9] = [
        "configuration",
        "metric",
        "reference",
        "candidate",
        "median",
        "change",
        "95% CI",
        "method",
        "verdict",
    ];

    /// The console table: one line per configuration, metric and candidate,
    /// with the reference (first input) median, the candidate median, the
    /// relative change, its 95 % bootstrap interval, the method (`exact`,
    /// `paired, N pairs` for runs interleaved in time, `unpaired, B/C runs`)
    /// and the verdict.
    pub fn console_table(&self) -> String {
        let mut out = format!(
            "reference: {}; candidates: {}\n",
            self.inputs.first().map(String::as_str).unwrap_or("-"),
            self.inputs
                .iter()
                .skip(1)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.push_str(&table::console(&Self::HEADERS, &self.table_rows()));
        for line in self.notes() {
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    /// What the table leaves out, a line each: configurations one input
    /// has and no other (`unmatched:`), metrics one side has
    /// ([`Comparison::one_sided_lines`]), configurations whose runs all
    /// failed on a side (`not compared:`).
    pub fn notes(&self) -> Vec<String> {
        let unmatched = self
            .unmatched
            .iter()
            .map(|(input, cfg)| format!("unmatched: {input}: {cfg}"));
        let failed = self.failed.iter().map(|why| format!("not compared: {why}"));
        unmatched
            .chain(self.one_sided_lines())
            .chain(failed)
            .collect()
    }

    /// [`Comparison::one_sided`] as lines: `only in b: stage.new.p99_ns
    /// (not in a; every configuration)`.
    pub fn one_sided_lines(&self) -> Vec<String> {
        self.one_sided
            .iter()
            .map(|x| {
                format!(
                    "only in {}: {} (not in {}; {})",
                    self.inputs[x.present],
                    x.metrics.join(", "),
                    self.inputs[x.absent],
                    if x.every_configuration {
                        "every configuration".to_owned()
                    } else {
                        x.configs.join("; ")
                    }
                )
            })
            .collect()
    }

    /// Why these inputs cannot be compared: an input none of whose runs
    /// completed (or with no runs) has no figure, and a table without it
    /// would read as a comparison. The gate's [`GateErrorKind::NothingToJudge`]
    /// (exit 2), naming each such input with its first error.
    pub fn refusal(&self) -> Option<GateError> {
        if self.nothing_to_compare.is_empty() {
            return None;
        }
        Some(GateError::new(GateErrorKind::NothingToJudge(format!(
            "{}, so there is nothing to compare",
            self.nothing_to_compare.join(";\n")
        ))))
    }

    /// The same table as Markdown, with the same notes under it (a list).
    pub fn markdown(&self) -> String {
        let mut out = table::markdown(&Self::HEADERS, &self.table_rows());
        let notes = self.notes();
        if !notes.is_empty() {
            out.push('\n');
            for line in notes {
                out.push_str(&format!("- {}\n", table::markdown_text(&line)));
            }
        }
        out
    }

    /// Counts of verdicts: (faster, slower, no significant change).
    pub fn tally(&self) -> (usize, usize, usize) {
        let mut t = (0, 0, 0);
        for d in self.rows.iter().flat_map(|r| &r.deltas) {
            match d.verdict {
                Some(Verdict::Faster) => t.0 += 1,
                Some(Verdict::Slower) => t.1 += 1,
                Some(Verdict::NoChange) => t.2 += 1,
                None => {}
            }
        }
        t
    }
}
