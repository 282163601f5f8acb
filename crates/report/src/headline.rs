//! The headline that opens every report: what a reader should take away
//! before any table.
//!
//! - **A sweep**: per headline metric, the best and the worst configuration
//!   and the parameter that moves the metric most. "Moves most" is measured
//!   with the other swept parameters held: for each setting of the others,
//!   the spread (max − min) of the metric's medians across the parameter's
//!   values, as a share of the largest of those medians; averaged over the
//!   settings. The report states this rule beside the table.
//! - **One configuration**: the medians of the headline metrics in a sentence.
//! - **A comparison**: one sentence per headline metric and candidate, built
//!   from the comparison's own verdicts and intervals, and what differs
//!   between the inputs (configuration keys, scenario, commit, host, version).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::compare::{Comparison, Delta, Verdict};
use crate::group::{value_label, ConfigGroup};
use crate::html::escape;
use crate::metric::{self, Direction};
use crate::model::Results;
use crate::table;

/// One input of a report: its label and its configurations.
pub(crate) struct Part<'a> {
    pub label: &'a str,
    pub groups: &'a [ConfigGroup<'a>],
    pub results: &'a Results,
}

/// A metric's value with its unit, as the headline writes it.
fn value(m: &str, x: f64) -> String {
    if m == "link.utilisation" {
        return format!("{:.1} %", x * 100.0);
    }
    let unit = metric::unit(m);
    if unit.is_empty() {
        table::num(x)
    } else {
        format!("{} {unit}", table::num(x))
    }
}

/// One configuration's median of a metric, labelled.
struct Point<'a> {
    input: usize,
    group: &'a ConfigGroup<'a>,
    median: f64,
}

/// How much `param` moves the medians in `points` (the rule in the module
/// doc): `None` when no setting of the others has two values of `param`.
fn spread_of(points: &[Point<'_>], param: &str, keys: &[String]) -> Option<f64> {
    // Settings of the other parameters (and the input) -> medians across `param`.
    let mut held: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for p in points {
        let mut key = p.input.to_string();
        for k in keys.iter().filter(|k| *k != param) {
            let v = p.group.config.get(k).map(value_label).unwrap_or_default();
            let _ = write!(key, "\u{1f}{v}");
        }
        let v = p
            .group
            .config
            .get(param)
            .map(value_label)
            .unwrap_or_default();
        held.entry(key).or_default().push((v, p.median));
    }
    let spreads: Vec<f64> = held
        .values()
        .filter(|vs| vs.iter().map(|(v, _)| v).collect::<BTreeSet<_>>().len() >= 2)
        .map(|vs| {
            let hi = vs.iter().map(|(_, m)| m.abs()).fold(0.0, f64::max);
            let lo = vs.iter().map(|(_, m)| *m).fold(f64::INFINITY, f64::min);
            let top = vs.iter().map(|(_, m)| *m).fold(f64::NEG_INFINITY, f64::max);
            if hi > 0.0 {
                (top - lo) / hi
            } else {
                0.0
            }
        })
        .collect();
    (!spreads.is_empty()).then(|| spreads.iter().sum::<f64>() / spreads.len() as f64)
}

/// Per headline metric: the swept parameters ordered by how much they move
/// it, largest first, with their spreads (see the module doc).
pub(crate) fn movers(parts: &[Part<'_>], keys: &[String], m: &str) -> Vec<(String, f64)> {
    let points = points_of(parts, m);
    let mut out: Vec<(String, f64)> = keys
        .iter()
        .filter_map(|k| Some((k.clone(), spread_of(&points, k, keys)?)))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

fn points_of<'a>(parts: &[Part<'a>], m: &str) -> Vec<Point<'a>> {
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        for g in p.groups {
            if let Some(s) = g.sample(m) {
                out.push(Point {
                    input: i,
                    group: g,
                    median: s.median(),
                });
            }
        }
    }
    out
}

/// The headline of a report of one or more results files: the section's HTML.
pub(crate) fn sweep(parts: &[Part<'_>], keys: &[String], metrics: &[String]) -> String {
    let mut body =
        String::from("<section class=\"headline\">\n<h2 id=\"headline\">Headline</h2>\n");
    let n_configs: usize = parts.iter().map(|p| p.groups.len()).sum();
    let files: Vec<&Results> = parts.iter().map(|p| p.results).collect();
    let label = |p: &Point<'_>| -> String {
        let cfg = crate::html::label_of(&files, p.group.config, keys);
        if parts.len() > 1 {
            format!("{}: {cfg}", parts[p.input].label)
        } else {
            cfg
        }
    };
    if n_configs <= 1 {
        let figures: Vec<String> = metrics
            .iter()
            .filter_map(|m| {
                let p = points_of(parts, m).into_iter().next()?;
                Some(format!(
                    "{} <b>{}</b>",
                    escape(&metric::name(m)),
                    escape(&value(m, p.median))
                ))
            })
            .collect();
        let runs = parts
            .iter()
            .flat_map(|p| p.groups)
            .map(|g| g.ok_runs().count())
            .sum::<usize>();
        let _ = writeln!(
            body,
            "<p class=\"headline\">One configuration, median of {runs} completed run{}: {}.</p>",
            if runs == 1 { "" } else { "s" },
            figures.join("; ")
        );
        body.push_str("</section>\n");
        return body;
    }
    body.push_str("<table class=\"headline\">\n<tr><th class=\"l\">metric</th><th class=\"l\">best configuration</th><th class=\"l\">worst configuration</th><th class=\"l\">moves it most</th></tr>\n");
    for m in metrics {
        let points = points_of(parts, m);
        let higher = Direction::of(m) == Direction::HigherIsBetter;
        let better = |a: &&Point<'_>, b: &&Point<'_>| {
            let o = a.median.total_cmp(&b.median);
            if higher {
                o
            } else {
                o.reverse()
            }
        };
        let (Some(best), Some(worst)) =
            (points.iter().max_by(better), points.iter().min_by(better))
        else {
            continue;
        };
        let mv = movers(parts, keys, m);
        let moves = match mv.split_first() {
            None => "–".to_string(),
            Some(((k, s), rest)) => {
                let mut t = format!("<b>{}</b> ({:.0} %)", escape(k), s * 100.0);
                if !rest.is_empty() {
                    let others: Vec<String> = rest
                        .iter()
                        .map(|(k, s)| format!("{} {:.0} %", escape(k), s * 100.0))
                        .collect();
                    let _ = write!(
                        t,
                        "<br><span class=\"range\">then {}</span>",
                        others.join(", ")
                    );
                }
                t
            }
        };
        let _ = writeln!(
            body,
            "<tr data-metric=\"{}\"><td class=\"l\">{}<br><span class=\"range\">{}</span></td><td class=\"l best\">{}<br><b>{}</b></td><td class=\"l worst\">{}<br><b>{}</b></td><td class=\"l mover\">{moves}</td></tr>",
            escape(m),
            escape(&metric::name(m)),
            Direction::of(m).describe(),
            escape(&label(best)),
            escape(&value(m, best.median)),
            escape(&label(worst)),
            escape(&value(m, worst.median)),
        );
    }
    body.push_str("</table>\n<p class=\"lead\">Best and worst are medians over runs. \
        <i>Moves it most</i>: for each setting of the other swept parameters, the spread \
        (max − min) of the metric's medians across this parameter's values, as a share of \
        the largest of them, averaged over those settings; the percentage is that average.</p>\n</section>\n");
    body
}

/// A change in percent without sign, for "59 % slower".
fn magnitude(x: f64) -> String {
    format!("{:.1} %", x.abs() * 100.0)
}

/// The word for a change: rates and times are faster or slower; other
/// figures (utilisation, counts) higher or lower.
fn comparative(m: &str, worse: bool, change: f64) -> &'static str {
    let unit = metric::unit(m);
    let speed = unit.ends_with("/s") || unit == "s" || unit == "ns" || unit == "per s";
    match (speed, worse, change > 0.0) {
        (true, true, _) => "slower",
        (true, false, _) => "faster",
        (false, _, true) => "higher",
        (false, _, false) => "lower",
    }
}

/// One sentence about `metric` for candidate `k` against the reference.
fn sentence(cmp: &Comparison, m: &str, k: usize) -> Option<String> {
    let deltas: Vec<&Delta> = cmp
        .rows
        .iter()
        .filter(|r| r.metric == m)
        .flat_map(|r| r.deltas.iter().filter(|d| d.input == k))
        .collect();
    if deltas.is_empty() {
        return None;
    }
    let (a, b) = (escape(&cmp.inputs[0]), escape(&cmp.inputs[k]));
    let n = deltas.len();
    let count = |v: Verdict| deltas.iter().filter(|d| d.verdict == Some(v)).count();
    let (faster, slower, same) = (
        count(Verdict::Faster),
        count(Verdict::Slower),
        count(Verdict::NoChange),
    );
    let changes: Vec<_> = deltas.iter().filter_map(|d| d.change).collect();
    let exact = deltas
        .iter()
        .all(|d| d.method == crate::analysis::Method::Exact);
    let configs = |x: usize| format!("{x} of {n} configuration{}", if n == 1 { "" } else { "s" });
    let mut est: Vec<f64> = changes.iter().map(|c| c.estimate).collect();
    est.sort_by(f64::total_cmp);
    let median_change = crate::stats::Sample::new(est.clone()).map(|s| s.median());
    let interval = if exact {
        "exact: counted in virtual time".to_string()
    } else {
        let lo = changes.iter().map(|c| c.lo).fold(f64::INFINITY, f64::min);
        let hi = changes
            .iter()
            .map(|c| c.hi)
            .fold(f64::NEG_INFINITY, f64::max);
        if changes.is_empty() {
            "no interval".to_string()
        } else if changes.len() == 1 {
            format!("95 % CI [{}, {}]", table::pct(lo), table::pct(hi))
        } else {
            format!(
                "every 95 % CI within [{}, {}]",
                table::pct(lo),
                table::pct(hi)
            )
        }
    };
    let range = match (est.first(), est.last()) {
        (Some(lo), Some(hi)) if est.len() > 1 => {
            format!("; changes from {} to {}", table::pct(*lo), table::pct(*hi))
        }
        _ => String::new(),
    };
    let label = escape(&metric::name(m));
    let text = match median_change {
        Some(c) if slower == n || faster == n => format!(
            "{label}: <b>{b} is {} {} than {a}</b> in {} (median change {}, {interval}{range}).",
            magnitude(c),
            comparative(m, slower == n, c),
            configs(n),
            table::pct(c)
        ),
        Some(c) if same == n => format!(
            "{label}: no significant change from {a} to {b} in {} (median change {}, {interval}{range}).",
            configs(n),
            table::pct(c)
        ),
        Some(c) => format!(
            "{label}: {b} against {a}: slower in {slower}, faster in {faster}, no significant change in {same} of {n} configurations (median change {}, {interval}{range}).",
            table::pct(c)
        ),
        None => format!("{label}: no change could be computed for {b} against {a} (a reference median is zero)."),
    };
    let cls = if slower > 0 && faster == 0 {
        " class=\"bad\""
    } else if faster > 0 && slower == 0 {
        " class=\"ok\""
    } else {
        ""
    };
    Some(format!(
        "<li data-metric=\"{}\"{cls}>{text}</li>",
        escape(m)
    ))
}

/// The values one input gives a configuration key, as a short list.
fn key_values(r: &Results, key: &str) -> Vec<String> {
    let mut vs: Vec<String> = Vec::new();
    for run in &r.runs {
        let v = run
            .config
            .get(key)
            .map(value_label)
            .unwrap_or_else(|| "unset".into());
        if !vs.contains(&v) {
            vs.push(v);
        }
    }
    vs
}

fn short_list(vs: &[String]) -> String {
    const MAX: usize = 6;
    if vs.len() <= MAX {
        vs.join(", ")
    } else {
        format!("{}, … ({} values)", vs[..MAX].join(", "), vs.len())
    }
}

/// What differs between the inputs: rows of `(what, value per input)` for
/// everything that is not the same in all of them, and the names of what is.
fn differences(files: &[&Results]) -> (Vec<(String, Vec<String>)>, Vec<&'static str>) {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut same: Vec<&'static str> = Vec::new();
    let mut check = |what: &'static str, vals: Vec<String>| {
        if vals.windows(2).all(|w| w[0] == w[1]) {
            same.push(what);
        } else {
            rows.push((what.to_string(), vals));
        }
    };
    check(
        "scenario",
        files
            .iter()
            .map(|r| {
                let s = &r.meta.scenario;
                format!(
                    "{} ({}, sha256 {})",
                    s.name,
                    s.path,
                    &s.sha256[..s.sha256.len().min(12)]
                )
            })
            .collect(),
    );
    check(
        "git commit",
        files
            .iter()
            .map(|r| {
                r.meta
                    .git_commit
                    .clone()
                    .unwrap_or_else(|| "unknown".into())
            })
            .collect(),
    );
    check(
        "host",
        files.iter().map(|r| r.meta.host_identity()).collect(),
    );
    check(
        "perfkit",
        files
            .iter()
            .map(|r| r.meta.perfkit_version.clone())
            .collect(),
    );
    let keys: BTreeSet<&String> = files
        .iter()
        .flat_map(|r| r.runs.iter().flat_map(|run| run.config.keys()))
        .collect();
    let mut differing_keys = Vec::new();
    for k in keys {
        let vals: Vec<Vec<String>> = files.iter().map(|r| key_values(r, k)).collect();
        let sets: Vec<BTreeSet<&String>> = vals.iter().map(|v| v.iter().collect()).collect();
        if sets.windows(2).any(|w| w[0] != w[1]) {
            differing_keys.push((
                format!("config: {k}"),
                vals.iter().map(|v| short_list(v)).collect(),
            ));
        }
    }
    if differing_keys.is_empty() {
        same.push("configuration keys");
    }
    rows.extend(differing_keys);
    (rows, same)
}

/// The headline of a comparison: one sentence per headline metric and
/// candidate, a count over the stages, and what differs between the inputs.
pub(crate) fn comparison(cmp: &Comparison, files: &[&Results]) -> String {
    let mut body = String::from("<section class=\"headline\">\n<h2 id=\"headline\">Headline</h2>\n<ul class=\"headline\">\n");
    let mut metrics: Vec<&str> = Vec::new();
    for r in &cmp.rows {
        if !r.metric.starts_with("stage.") && !metrics.contains(&r.metric.as_str()) {
            metrics.push(&r.metric);
        }
    }
    for k in 1..cmp.inputs.len() {
        for m in &metrics {
            if let Some(s) = sentence(cmp, m, k) {
                body.push_str(&s);
                body.push('\n');
            }
        }
        let stage: Vec<&Delta> = cmp
            .rows
            .iter()
            .filter(|r| r.metric.starts_with("stage."))
            .flat_map(|r| r.deltas.iter().filter(|d| d.input == k))
            .collect();
        if !stage.is_empty() {
            let c = |v: Verdict| stage.iter().filter(|d| d.verdict == Some(v)).count();
            let _ = writeln!(
                body,
                "<li>stage p99 times of {} against {}: slower in {}, faster in {}, no significant change in {} of {} (stage, configuration) pairs; the table below lists them.</li>",
                escape(&cmp.inputs[k]),
                escape(&cmp.inputs[0]),
                c(Verdict::Slower),
                c(Verdict::Faster),
                c(Verdict::NoChange),
                stage.len()
            );
        }
    }
    if cmp.rows.is_empty() {
        body.push_str("<li>No configuration matched across the inputs: nothing to compare.</li>\n");
    }
    body.push_str("</ul>\n");
    let (rows, same) = differences(files);
    body.push_str("<h3>What differs</h3>\n");
    if rows.is_empty() {
        body.push_str("<p class=\"note\">Nothing recorded differs: same scenario, commit, host, perfkit version and configuration keys.</p>\n");
    } else {
        body.push_str("<table class=\"differs\">\n<tr><th class=\"l\"></th>");
        for l in &cmp.inputs {
            let _ = write!(body, "<th class=\"l\">{}</th>", escape(l));
        }
        body.push_str("</tr>\n");
        for (what, vals) in &rows {
            let _ = write!(body, "<tr><th class=\"l\">{}</th>", escape(what));
            for v in vals {
                let _ = write!(body, "<td class=\"l\">{}</td>", escape(v));
            }
            body.push_str("</tr>\n");
        }
        body.push_str("</table>\n");
        if !same.is_empty() {
            let _ = writeln!(
                body,
                "<p class=\"lead\">The same in every input: {}.</p>",
                same.join(", ")
            );
        }
    }
    body.push_str("</section>\n");
    body
}
