//! The self-contained HTML report and the HTML form of `compare`.
//!
//! One file, no network: CSS inline, charts as inline SVG from plotters,
//! flamegraphs as inline documents (`<iframe srcdoc>`, so their own scripts cannot clash).
//! Everything taken from a results file is escaped before it reaches the page.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

use crate::analysis::Method;
use crate::chart::{self, Point, Series, XAxis};
use crate::compare::{self, input_labels, Comparison, Verdict};
use crate::flame;
use crate::group::{self, value_label, ConfigGroup};
use crate::headline;
use crate::metric;
use crate::model::{Results, RunRecord, Stages};
use crate::stats::Sample;
use crate::table;

const TEMPLATE: &str = include_str!("templates/report.html");
const STYLE: &str = include_str!("templates/style.css");

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    // Substitute the body last so text from results files is never expanded.
    TEMPLATE
        .replace("{{version}}", env!("CARGO_PKG_VERSION"))
        .replace("{{style}}", STYLE)
        .replace("{{title}}", &escape(title))
        .replace("{{body}}", body)
}

/// One input file with its grouped configurations.
struct Input<'a> {
    label: String,
    path: &'a PathBuf,
    results: &'a Results,
    groups: Vec<ConfigGroup<'a>>,
}

fn prepare(inputs: &[(PathBuf, Results)]) -> Vec<Input<'_>> {
    let paths: Vec<&std::path::Path> = inputs.iter().map(|(p, _)| p.as_path()).collect();
    let labels = input_labels(&paths);
    inputs
        .iter()
        .zip(labels)
        .map(|((path, results), label)| Input {
            label,
            path,
            results,
            groups: group::groups(results),
        })
        .collect()
}

/// Renders the report of one or more results files.
///
/// Sections: header (scenario, date, version, commit, host per input),
/// summary table of every configuration, comparison charts (one per swept
/// parameter and headline metric; with several inputs the input is one more
/// dimension of the series), per-stage tables and share charts per
/// configuration (device-side too when recorded) and a flamegraph per input.
pub fn render_report(inputs: &[(PathBuf, Results)]) -> String {
    render_report_with_trends(inputs, &crate::trend::Trends::default())
}

/// [`render_report`] with a section of trends across commits (from the
/// results history) after the summary.
pub fn render_report_with_trends(
    inputs: &[(PathBuf, Results)],
    trends: &crate::trend::Trends,
) -> String {
    let ins = prepare(inputs);
    let mut body = String::new();
    let title = title_of(&ins, "report");
    let _ = writeln!(body, "<h1>{}</h1>", escape(&title));
    sweep_headline(&mut body, &ins);
    header(&mut body, &ins);
    summary(&mut body, &ins);
    body.push_str(&crate::trend::section(trends));
    body.push_str(&crate::device::section(inputs));
    charts(&mut body, &ins);
    stages(&mut body, &ins, &trends.stages);
    body.push_str(&crate::probe::section(inputs));
    body.push_str(&crate::crosscheck::section(inputs));
    flamegraphs(&mut body, &ins);
    page(&title, &with_toc(body))
}

/// Renders `compare`: the comparison table with verdicts, the charts with
/// one series per input, and a differential flamegraph between the first
/// two inputs.
pub fn render_compare(inputs: &[(PathBuf, Results)], cmp: &Comparison) -> String {
    let ins = prepare(inputs);
    let mut body = String::new();
    let title = title_of(&ins, "comparison");
    let _ = writeln!(body, "<h1>{}</h1>", escape(&title));
    let _ = writeln!(
        body,
        "<p class=\"lead\">Reference: <b>{}</b>. Each change is the relative change of the \
         median over repeats against the reference, with a 95&nbsp;% bootstrap interval \
         (repeats are the samples); runs interleaved in time with the reference's are \
         compared pair by pair, as the gate does, and virtual-time metrics compare exactly. \
         The method column says which applied.</p>",
        escape(cmp.inputs.first().map(String::as_str).unwrap_or("-"))
    );
    let files: Vec<&Results> = ins.iter().map(|i| i.results).collect();
    body.push_str(&headline::comparison(cmp, &files));
    header(&mut body, &ins);
    compare_table(&mut body, cmp);
    summary(&mut body, &ins);
    charts(&mut body, &ins);
    if ins.len() >= 2 {
        body.push_str("<h2 id=\"flamegraphs\">Differential flamegraph</h2>\n");
        let before = merged_folded(&ins[0], false, false);
        let after = merged_folded(&ins[1], false, false);
        let t = format!("{} → {}", ins[0].label, ins[1].label);
        match flame::differential(&t, &before, &after) {
            Some(svg) => embed_flamegraph(&mut body, &svg, "differential"),
            None => body.push_str(
                "<p class=\"note\">No folded stacks in one of the first two inputs.</p>\n",
            ),
        }
    }
    page(&title, &with_toc(body))
}

fn title_of(ins: &[Input<'_>], what: &str) -> String {
    let mut names: Vec<&str> = Vec::new();
    for i in ins {
        let n = i.results.meta.scenario.name.as_str();
        if !names.contains(&n) {
            names.push(n);
        }
    }
    format!("perfkit {what}: {}", names.join(", "))
}

fn parts<'a>(ins: &'a [Input<'a>]) -> Vec<headline::Part<'a>> {
    ins.iter()
        .map(|i| headline::Part {
            label: &i.label,
            groups: &i.groups,
            results: i.results,
        })
        .collect()
}

fn sweep_headline(body: &mut String, ins: &[Input<'_>]) {
    let keys = swept_for(ins);
    let metrics = metric::headline(ins.iter().flat_map(|i| i.results.runs.iter()));
    body.push_str(&headline::sweep(&parts(ins), &keys, &metrics));
}

fn header(body: &mut String, ins: &[Input<'_>]) {
    body.push_str("<h2 id=\"runs\">Runs</h2>\n<table class=\"meta\">\n<tr><th>input</th><th>scenario</th><th>date</th><th>perfkit</th><th>git commit</th><th>host</th><th>records</th></tr>\n");
    for i in ins {
        let m = &i.results.meta;
        let failed = i.results.runs.iter().filter(|r| r.error.is_some()).count();
        let _ = writeln!(
            body,
            "<tr><td title=\"{}\">{}</td><td>{}<br><span class=\"range\">{} {}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}{}{}</td></tr>",
            escape(&i.path.display().to_string()),
            escape(&i.label),
            escape(&m.scenario.name),
            escape(&m.scenario.kind),
            escape(&m.scenario.description),
            escape(&m.date),
            escape(&m.perfkit_version),
            escape(m.git_commit.as_deref().unwrap_or("unknown")),
            escape(&m.host),
            match &m.host_fingerprint {
                Some(f) => format!("<br><span class=\"range\">{}</span>", escape(f)),
                None => String::new(),
            },
            i.results.runs.len(),
            if failed > 0 {
                format!(" <span class=\"bad\">({failed} failed)</span>")
            } else {
                String::new()
            },
            plans(&m.plans)
        );
    }
    body.push_str("</table>\n");
}

/// How the runs were made, one line per plan; a plan repeated by
/// consecutive `--append` runs is given once with its count.
fn plans(plans: &[Option<crate::model::Plan>]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < plans.len() {
        let same = plans[i..].iter().take_while(|p| **p == plans[i]).count();
        let times = if same > 1 {
            format!(" (&times;{same}, appended)")
        } else {
            String::new()
        };
        let what = match &plans[i] {
            Some(p) => escape(&p.phrase()),
            None => "earlier runs: how they were made was not recorded".to_owned(),
        };
        let _ = write!(out, "<br><span class=\"range\">{what}{times}</span>");
        i += same;
    }
    out
}

fn cell(s: Option<Sample>, fmt: fn(f64) -> String) -> String {
    match s {
        None => "<td>–</td>".into(),
        Some(s) if s.len() == 1 || s.min() == s.max() => format!("<td>{}</td>", fmt(s.median())),
        Some(s) => format!(
            "<td>{}<br><span class=\"range\">{}–{}</span></td>",
            fmt(s.median()),
            fmt(s.min()),
            fmt(s.max())
        ),
    }
}

fn pct_fmt(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

fn swept_for(ins: &[Input<'_>]) -> Vec<String> {
    let files: Vec<&Results> = ins.iter().map(|i| i.results).collect();
    compare::union_swept(&files)
}

fn summary(body: &mut String, ins: &[Input<'_>]) {
    let keys = swept_for(ins);
    let files: Vec<&Results> = ins.iter().map(|i| i.results).collect();
    let has_util = ins
        .iter()
        .any(|i| i.results.runs.iter().any(|r| r.link.utilisation.is_some()));
    body.push_str("<h2 id=\"summary\">Summary</h2>\n<p class=\"lead\">Median over repeats, min–max below.</p>\n<table class=\"summary\">\n<tr>");
    if ins.len() > 1 {
        body.push_str("<th class=\"l\">input</th>");
    }
    body.push_str("<th class=\"l\">configuration</th><th>runs</th><th>tx PPS (packets/s)</th><th>tx BPS (bytes/s)</th><th>rx PPS (packets/s)</th><th>rx BPS (bytes/s)</th>");
    if has_util {
        body.push_str("<th>link utilisation</th>");
    }
    body.push_str("<th>integrity</th></tr>\n");
    for i in ins {
        for g in &i.groups {
            body.push_str("<tr>");
            if ins.len() > 1 {
                let _ = write!(body, "<td class=\"l\">{}</td>", escape(&i.label));
            }
            let ok = g.ok_runs().filter(|r| r.integrity.ok).count();
            let n = g.runs.len();
            let _ = write!(
                body,
                "<td class=\"l\">{}</td><td>{}</td>",
                escape(&label_of(&files, g.config, &keys)),
                g.ok_runs().count()
            );
            for m in ["tx.pps", "tx.bps", "rx.pps", "rx.bps"] {
                body.push_str(&cell(g.sample(m), table::num));
            }
            if has_util {
                body.push_str(&cell(g.sample("link.utilisation"), pct_fmt));
            }
            let errors: Vec<&str> = g.runs.iter().filter_map(|r| r.error.as_deref()).collect();
            let missing: usize = g.ok_runs().map(|r| r.integrity.missing_blocks.len()).sum();
            let cls = if ok == n { "ok" } else { "bad" };
            let _ = write!(body, "<td class=\"{cls}\">{ok}/{n} intact");
            if missing > 0 {
                let _ = write!(
                    body,
                    "<br><span class=\"range\">{missing} blocks missing</span>"
                );
            }
            heaps_lost(body, g.ok_runs());
            if let Some(e) = errors.first() {
                let _ = write!(
                    body,
                    "<br><span class=\"range\">error: {}</span>",
                    escape(e)
                );
            }
            body.push_str("</td></tr>\n");
        }
    }
    body.push_str("</table>\n");
}

/// A heaps run's loss beside its sender's figures: the heaps its receiver
/// lost (median over runs, of the heaps sent), when any were.
fn heaps_lost<'a>(body: &mut String, runs: impl Iterator<Item = &'a RunRecord>) {
    let (lost, sent): (Vec<f64>, Vec<f64>) = runs
        .filter_map(|r| {
            let lost = *r.rx.errors.get("heaps_lost")?;
            Some((lost as f64, r.tx.blocks as f64))
        })
        .unzip();
    if lost.iter().any(|&l| l > 0.0) {
        let _ = write!(
            body,
            "<br><span class=\"range\">{} of {} heaps lost</span>",
            table::num(med(lost)),
            table::num(med(sent))
        );
    }
}

/// Whether every value of `param` is a number, and its values in order
/// (numeric: ascending; categorical: first seen).
fn param_values(ins: &[Input<'_>], param: &str) -> (bool, Vec<Value>) {
    let mut vals: Vec<Value> = Vec::new();
    for i in ins {
        for g in &i.groups {
            let v = g.config.get(param).cloned().unwrap_or(Value::Null);
            if !vals.contains(&v) {
                vals.push(v);
            }
        }
    }
    let numeric = !vals.is_empty() && vals.iter().all(|v| v.is_number());
    if numeric {
        vals.sort_by(|a, b| {
            a.as_f64()
                .unwrap_or(0.0)
                .total_cmp(&b.as_f64().unwrap_or(0.0))
        });
    }
    (numeric, vals)
}

/// A configuration's label with its "off" values explained
/// (`throttle_pps=0 (unthrottled)`), from the sentinels of `results`.
pub(crate) fn label_of(
    results: &[&Results],
    config: &BTreeMap<String, Value>,
    keys: &[String],
) -> String {
    group::config_label_noted(config, keys, &|k, v| {
        let s = results.iter().find_map(|r| r.meta.sentinels.get(k))?;
        (v.as_f64() == Some(s.value)).then(|| s.means.clone())
    })
}

/// The "off" value declared for `param` in any input.
fn sentinel_of(ins: &[Input<'_>], param: &str) -> Option<crate::model::Sentinel> {
    ins.iter()
        .find_map(|i| i.results.meta.sentinels.get(param).cloned())
}

fn charts(body: &mut String, ins: &[Input<'_>]) {
    let keys = swept_for(ins);
    body.push_str("<h2 id=\"charts\">Comparison charts</h2>\n");
    if keys.is_empty() {
        body.push_str("<p class=\"note\">No parameter was swept: nothing to compare across configurations.</p>\n");
        return;
    }
    let all_runs = || ins.iter().flat_map(|i| i.results.runs.iter());
    let metrics = metric::headline(all_runs());
    let open = open_section(ins, &keys, &metrics);
    if open.is_some() {
        body.push_str("<p class=\"lead\">Many charts: each parameter's section folds; the one open is the parameter that moves the received throughput most (see the headline). Printing unfolds them all.</p>\n");
    }
    for p in &keys {
        let (numeric, vals) = param_values(ins, p);
        let files: Vec<&Results> = ins.iter().map(|i| i.results).collect();
        let sentinel = sentinel_of(ins, p);
        let sentinel = sentinel.as_ref().map(|s| (s.value, s.means.as_str()));
        let others: Vec<String> = keys.iter().filter(|k| *k != p).cloned().collect();
        let _ = writeln!(
            body,
            "<details class=\"charts\"{}><summary><h3 id=\"{}\">Against {}</h3></summary>\n<div class=\"charts\">",
            if open.as_deref().is_none_or(|o| o == p) {
                " open"
            } else {
                ""
            },
            anchor("charts-", p),
            escape(p)
        );
        for m in &metrics {
            // Series key: input label (with several inputs) and the other
            // swept parameters; points: one per value of `p`.
            let mut series: BTreeMap<String, BTreeMap<usize, Vec<f64>>> = BTreeMap::new();
            let mut order: Vec<String> = Vec::new();
            for i in ins {
                for g in &i.groups {
                    let v = g.config.get(p).cloned().unwrap_or(Value::Null);
                    let Some(xi) = vals.iter().position(|x| *x == v) else {
                        continue;
                    };
                    let mut name = if others.is_empty() {
                        String::new()
                    } else {
                        label_of(&files, g.config, &others)
                    };
                    if ins.len() > 1 {
                        name = if name.is_empty() {
                            i.label.clone()
                        } else {
                            format!("{}: {name}", i.label)
                        };
                    }
                    if name.is_empty() {
                        name = m.clone();
                    }
                    let xs: Vec<f64> = g.ok_runs().filter_map(|r| metric::value(r, m)).collect();
                    if xs.is_empty() {
                        continue;
                    }
                    if !order.contains(&name) {
                        order.push(name.clone());
                    }
                    series
                        .entry(name)
                        .or_default()
                        .entry(xi)
                        .or_default()
                        .extend(xs);
                }
            }
            if series.is_empty() {
                continue;
            }
            let list: Vec<Series> = order
                .iter()
                .map(|name| Series {
                    name: name.clone(),
                    points: series[name]
                        .iter()
                        .filter_map(|(xi, xs)| {
                            let s = Sample::new(xs.clone())?;
                            let x = if numeric {
                                vals[*xi].as_f64().unwrap_or(0.0)
                            } else {
                                *xi as f64
                            };
                            Some(Point {
                                x,
                                median: s.median(),
                                min: s.min(),
                                max: s.max(),
                                off: numeric && sentinel.is_some_and(|(v, _)| v == x),
                            })
                        })
                        .collect(),
                })
                .collect();
            let axis = if numeric {
                // The scale is of the values that are amounts, not the "off" one.
                let xs: Vec<f64> = vals
                    .iter()
                    .filter_map(|v| v.as_f64())
                    .filter(|x| sentinel.is_none_or(|(v, _)| v != *x))
                    .collect();
                let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                XAxis::Numeric {
                    log: lo > 0.0 && hi / lo >= 16.0,
                    off: sentinel.map(|(v, means)| format!("{} = {means}", chart::si(v))),
                }
            } else {
                XAxis::Categories(vals.iter().map(value_label).collect())
            };
            let title = format!("{} vs {p}", metric::label(m));
            let svg = chart::metric_chart(&title, p, &metric::label(m), &axis, &list);
            figure(body, svg, p, m, &list, &title);
        }
        body.push_str("</div></details>\n");
    }
}

/// An id for an anchor: `prefix` and `name` with anything but ASCII
/// letters, digits, `-` and `_` replaced.
fn anchor(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{prefix}{clean}")
}

/// With more charts than fit on a screen or two, one parameter's section
/// stays open: the one that moves the received throughput most (the
/// headline's measure), else the first headline metric; `None` keeps all open.
fn open_section(ins: &[Input<'_>], keys: &[String], metrics: &[String]) -> Option<String> {
    if keys.len() * metrics.len() <= MAX_OPEN_CHARTS {
        return None;
    }
    let m = metrics
        .iter()
        .find(|m| *m == "rx.bps")
        .or(metrics.first())?;
    headline::movers(&parts(ins), keys, m)
        .into_iter()
        .next()
        .map(|(k, _)| k)
        .or_else(|| keys.first().cloned())
}

/// Most charts a report shows unfolded; beyond, sections fold and a table
/// of contents leads to them.
const MAX_OPEN_CHARTS: usize = 8;

/// A table of contents of the `<h2 id>` and `<h3 id>` headings in `body`,
/// when the page holds more than [`MAX_OPEN_CHARTS`] figures.
fn toc(body: &str) -> String {
    if body.matches("<figure").count() <= MAX_OPEN_CHARTS {
        return String::new();
    }
    let mut out = String::from("<nav class=\"toc\"><b>Contents</b>\n<ul>");
    // Each h2 opens an item that its h3s nest in; the next h2 closes it.
    let (mut open_item, mut in_sub) = (false, false);
    let mut rest = body;
    while let Some(at) = rest.find("<h") {
        rest = &rest[at..];
        let level = match rest.get(..8) {
            Some("<h2 id=\"") => 2,
            Some("<h3 id=\"") => 3,
            _ => {
                rest = &rest[2..];
                continue;
            }
        };
        let after = &rest[8..];
        let (Some(q), Some(end)) = (after.find('"'), after.find("</h")) else {
            break;
        };
        let id = &after[..q];
        let text = after[q..end].split_once('>').map(|x| x.1).unwrap_or("");
        let link = format!("<a href=\"#{id}\">{text}</a>");
        if level == 2 {
            if in_sub {
                out.push_str("</ul>");
                in_sub = false;
            }
            if open_item {
                out.push_str("</li>");
            }
            let _ = write!(out, "\n<li>{link}");
            open_item = true;
        } else {
            if !in_sub {
                out.push_str("<ul>");
                in_sub = true;
            }
            let _ = write!(out, "<li>{link}</li>");
        }
        rest = &after[end..];
    }
    if in_sub {
        out.push_str("</ul>");
    }
    if open_item {
        out.push_str("</li>");
    }
    out.push_str("\n</ul></nav>\n");
    out
}

/// Puts the table of contents after the headline (or the title).
fn with_toc(body: String) -> String {
    let t = toc(&body);
    if t.is_empty() {
        return body;
    }
    let at = body
        .find("</section>\n")
        .map(|i| i + "</section>\n".len())
        .or_else(|| body.find("</h1>\n").map(|i| i + "</h1>\n".len()))
        .unwrap_or(0);
    format!("{}{t}{}", &body[..at], &body[at..])
}

fn figure(
    body: &mut String,
    svg: Result<String, String>,
    param: &str,
    metric_name: &str,
    series: &[Series],
    title: &str,
) {
    match svg {
        Ok(svg) => {
            let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
            let _ = writeln!(
                body,
                "<figure class=\"chart\" data-param=\"{}\" data-metric=\"{}\" data-series=\"{}\">{}<figcaption>{}: medians over runs; range bars span min–max.</figcaption></figure>",
                escape(param),
                escape(metric_name),
                escape(&names.join("\u{1f}")),
                svg_tag(&svg, title),
                escape(title)
            );
        }
        Err(e) => {
            let _ = writeln!(
                body,
                "<p class=\"note\">Chart {} could not be drawn: {}</p>",
                escape(title),
                escape(&e)
            );
        }
    }
}

/// Makes plotters' SVG fit the page: accessible name, scalable width.
pub(crate) fn svg_tag(svg: &str, title: &str) -> String {
    let svg = svg.trim_start();
    let svg = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", escape(title)),
        1,
    )
}

/// Per-stage rows of one configuration, combined over repeats: min of
/// minima, max of maxima, median of everything else.
struct StageRow {
    name: String,
    calls: f64,
    min: u64,
    max: u64,
    cum: f64,
    p50: f64,
    p99: f64,
    share: f64,
    mb_per_s: Option<f64>,
}

fn med(xs: Vec<f64>) -> f64 {
    Sample::new(xs).map(|s| s.median()).unwrap_or(0.0)
}

fn stage_rows(runs: &[&RunRecord], pick: fn(&RunRecord) -> Option<&Stages>) -> Vec<StageRow> {
    let snaps: Vec<&Stages> = runs.iter().filter_map(|r| pick(r)).collect();
    rows_of(&snaps)
}

fn rows_of(snaps: &[&Stages]) -> Vec<StageRow> {
    let mut names: Vec<&str> = Vec::new();
    for s in snaps {
        for site in &s.sites {
            if !names.contains(&site.name.as_str()) {
                names.push(&site.name);
            }
        }
    }
    // The measured total: time under any measured site (folded self times),
    // or, without folded stacks, the sum of cumulative times.
    let total = med(snaps
        .iter()
        .map(|s| {
            if s.folded.is_empty() {
                s.sites.iter().map(|x| x.cum_ns as f64).sum()
            } else {
                s.folded.iter().map(|f| f.self_ns as f64).sum()
            }
        })
        .collect());
    names
        .into_iter()
        .map(|n| {
            let sites: Vec<_> = snaps
                .iter()
                .filter_map(|s| s.sites.iter().find(|x| x.name == n))
                .collect();
            let cum = med(sites.iter().map(|x| x.cum_ns as f64).collect());
            let mbs: Vec<f64> = sites
                .iter()
                .filter_map(|x| {
                    let b = x.bytes? as f64;
                    (x.cum_ns > 0).then(|| b / (x.cum_ns as f64 / 1e9) / 1e6)
                })
                .collect();
            StageRow {
                name: n.to_string(),
                calls: med(sites.iter().map(|x| x.calls as f64).collect()),
                min: sites.iter().map(|x| x.min_ns).min().unwrap_or(0),
                max: sites.iter().map(|x| x.max_ns).max().unwrap_or(0),
                cum,
                p50: med(sites.iter().map(|x| x.p50_ns as f64).collect()),
                p99: med(sites.iter().map(|x| x.p99_ns as f64).collect()),
                share: if total > 0.0 {
                    cum / total * 100.0
                } else {
                    0.0
                },
                mb_per_s: (!mbs.is_empty()).then(|| med(mbs)),
            }
        })
        .collect()
}

/// Nanoseconds in the unit that reads best.
pub fn ns(x: f64) -> String {
    if x >= 1e9 {
        format!("{:.3} s", x / 1e9)
    } else if x >= 1e6 {
        format!("{:.2} ms", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.2} µs", x / 1e3)
    } else {
        format!("{x:.0} ns")
    }
}

/// `sparks`: trends across commits of this configuration's stages (from a
/// results history); a column of sparklines when there are any.
fn stage_section(
    body: &mut String,
    title: &str,
    rows: &[StageRow],
    kind: &str,
    sparks: &[&crate::trend::StageTrend],
) {
    if rows.is_empty() {
        return;
    }
    let trend_head = if sparks.is_empty() {
        ""
    } else {
        "<th>p50 across commits</th>"
    };
    let _ = writeln!(
        body,
        "<table class=\"stages\" data-kind=\"{kind}\"><caption class=\"l\">{}</caption>\n<tr><th class=\"l\">stage</th><th>calls</th><th>min</th><th>max</th><th>cumulative</th><th>p50</th><th>p99</th><th>share of total</th><th>MB/s</th>{trend_head}</tr>",
        escape(title)
    );
    for r in rows {
        let spark = if sparks.is_empty() {
            String::new()
        } else {
            let line = sparks
                .iter()
                .find(|s| s.stage == r.name)
                .map(|s| crate::trend::sparkline(&s.values))
                .unwrap_or_default();
            format!("<td>{line}</td>")
        };
        let _ = writeln!(
            body,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} %</td><td>{}</td>{spark}</tr>",
            escape(&r.name),
            table::num(r.calls),
            ns(r.min as f64),
            ns(r.max as f64),
            ns(r.cum),
            ns(r.p50),
            ns(r.p99),
            r.share,
            r.mb_per_s.map(|v| format!("{v:.1}")).unwrap_or_else(|| "–".into())
        );
    }
    body.push_str("</table>\n");
    let shares: Vec<(String, f64)> = rows.iter().map(|r| (r.name.clone(), r.share)).collect();
    let chart_title = format!("{title}: cumulative share");
    match chart::share_chart(&chart_title, &shares) {
        Ok(svg) => {
            let _ = writeln!(
                body,
                "<figure class=\"chart share\" data-kind=\"{kind}\">{}</figure>",
                svg_tag(&svg, &chart_title)
            );
        }
        Err(e) => {
            let _ = writeln!(
                body,
                "<p class=\"note\">share chart failed: {}</p>",
                escape(&e)
            );
        }
    }
}

fn stages(body: &mut String, ins: &[Input<'_>], trends: &[crate::trend::StageTrend]) {
    let keys = swept_for(ins);
    body.push_str("<h2 id=\"stages\">Per-stage timing</h2>\n<p class=\"lead\">Per configuration, combined over repeats (median; min of minima, max of maxima). Share is each stage's cumulative time over the measured total (time under any measured site); nested stages overlap their parents, so shares can add up to more than 100&nbsp;%.</p>\n");
    let n_configs: usize = ins.iter().map(|i| i.groups.len()).sum();
    let mut any = false;
    for i in ins {
        for (k, g) in i.groups.iter().enumerate() {
            let runs: Vec<&RunRecord> = g.ok_runs().collect();
            let host = stage_rows(&runs, |r| Some(&r.stages));
            let dev = stage_rows(&runs, |r| r.device_stages.as_ref());
            if host.is_empty() && dev.is_empty() {
                continue;
            }
            any = true;
            let mut name = g.label(&keys);
            if ins.len() > 1 {
                name = format!("{}: {name}", i.label);
            }
            // Many configurations: fold all but the first away (print unfolds them).
            let open = n_configs <= 12 || k == 0;
            let _ = writeln!(
                body,
                "<section class=\"stages\"><details{}><summary>{}</summary>",
                if open { " open" } else { "" },
                escape(&name)
            );
            // Trends are of the first input's (the reported run's) configurations.
            let sparks: Vec<_> = trends
                .iter()
                .filter(|t| std::ptr::eq(i, &ins[0]) && t.config_id == g.config_id)
                .collect();
            stage_section(
                body,
                &format!("{name}: host stages"),
                &host,
                "host",
                &sparks,
            );
            stage_section(body, &format!("{name}: device stages"), &dev, "device", &[]);
            body.push_str("</details></section>\n");
        }
    }
    if !any {
        body.push_str("<p class=\"note\">No stage timings were recorded.</p>\n");
    }
}

/// Folded stacks of every completed record of an input, summed; prefixed
/// with the configuration when `by_config` and there are several.
fn merged_folded(i: &Input<'_>, device: bool, by_config: bool) -> String {
    let keys = group::swept_keys(i.results);
    let prefix_cfg = by_config && i.groups.len() > 1;
    let mut sums: BTreeMap<String, u64> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for g in &i.groups {
        let prefix = if prefix_cfg {
            format!("{};", g.label(&keys).replace(';', ","))
        } else {
            String::new()
        };
        for r in g.ok_runs() {
            let st = if device {
                r.device_stages.as_ref()
            } else {
                Some(&r.stages)
            };
            let Some(st) = st else { continue };
            for f in &st.folded {
                // Escaped frames are kept; older files' names with spaces,
                // newlines or nothing are escaped as perfkit now does.
                let stack = perfkit::folded_stack(&f.stack);
                let key = format!("{prefix}{stack}");
                match sums.get_mut(&key) {
                    Some(v) => *v = v.saturating_add(f.self_ns),
                    None => {
                        order.push(key.clone());
                        sums.insert(key, f.self_ns);
                    }
                }
            }
        }
    }
    let mut out = String::new();
    for k in order {
        let _ = writeln!(out, "{k} {}", sums[&k]);
    }
    out
}

fn embed_flamegraph(body: &mut String, svg: &str, kind: &str) {
    // The frame is as tall as the flamegraph, so there is no inner scrolling.
    let height = svg_height(svg).map(|h| h + 4).unwrap_or(560);
    let _ = writeln!(
        body,
        "<iframe class=\"flamegraph\" data-kind=\"{kind}\" title=\"flamegraph ({kind})\" style=\"height:{height}px\" srcdoc=\"{}\"></iframe>",
        escape(&svg_document(svg))
    );
}

/// The `height` attribute of the first `<svg>` element.
fn svg_height(svg: &str) -> Option<u32> {
    let tag = &svg[svg.find("<svg")?..];
    let tag = &tag[..tag.find('>')?];
    let at = tag.find(" height=\"")? + 9;
    let rest = &tag[at..];
    rest[..rest.find('"')?]
        .trim_end_matches("px")
        .parse::<f64>()
        .ok()
        .map(|h| h.ceil() as u32)
}

/// inferno writes a standalone SVG file; as an iframe document it needs no
/// XML declaration or doctype, and a page without margins.
fn svg_document(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>html,body{{margin:0}}svg{{display:block;width:100%}}</style></head><body>{}</body></html>",
        &svg[start..]
    )
}

fn flamegraphs(body: &mut String, ins: &[Input<'_>]) {
    body.push_str("<h2 id=\"flamegraphs\">Flamegraphs</h2>\n<p class=\"lead\">Folded stacks of every completed record, summed over repeats; with several configurations the first frame is the configuration. Click to zoom, Ctrl-F to search.</p>\n");
    let mut any = false;
    for i in ins {
        for (device, kind) in [(false, "host"), (true, "device")] {
            let folded = merged_folded(i, device, true);
            let title = format!("{} ({kind})", i.label);
            if let Some(svg) = flame::flamegraph(&title, &folded) {
                any = true;
                let _ = writeln!(body, "<h3>{}</h3>", escape(&title));
                embed_flamegraph(body, &svg, kind);
            }
        }
    }
    if !any {
        body.push_str("<p class=\"note\">No folded stacks were recorded.</p>\n");
    }
}

/// `s` with its first letter in upper case, for a sentence of its own.
fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn compare_table(body: &mut String, cmp: &Comparison) {
    body.push_str("<h2 id=\"compare\">Comparison</h2>\n<table class=\"compare\">\n<tr><th class=\"l\">configuration</th><th class=\"l\">metric</th><th>reference</th><th class=\"l\">candidate</th><th>median</th><th>change</th><th>95% CI</th><th class=\"l\">method</th><th class=\"l\">verdict</th></tr>\n");
    for r in &cmp.rows {
        for d in &r.deltas {
            let (chg, ci) = table::change_cells(d.change.as_ref(), d.method == Method::Exact);
            let (cls, v) = match d.verdict {
                Some(Verdict::Faster) => ("ok", "faster"),
                Some(Verdict::Slower) => ("bad", "slower"),
                Some(Verdict::NoChange) => ("", "no significant change"),
                None => ("", "n/a"),
            };
            let _ = writeln!(
                body,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td class=\"l {cls}\">{v}</td></tr>",
                escape(&r.config),
                escape(&r.metric),
                table::num(r.reference),
                escape(&cmp.inputs[d.input]),
                table::num(d.median),
                chg,
                ci,
                d.method
            );
        }
    }
    body.push_str("</table>\n");
    for (input, cfg) in &cmp.unmatched {
        let _ = writeln!(
            body,
            "<p class=\"note\">Unmatched in {}: {}</p>",
            escape(input),
            escape(cfg)
        );
    }
    for line in cmp.one_sided_lines() {
        let _ = writeln!(
            body,
            "<p class=\"note\">{}</p>",
            escape(&upper_first(&line))
        );
    }
    for why in &cmp.failed {
        let _ = writeln!(body, "<p class=\"note\">Not compared: {}</p>", escape(why));
    }
}

/// Renders the report of a perfkit snapshot file (the JSON of
/// `perfkit::snapshot().to_json()`): its stage table, share chart and
/// flamegraph.
pub fn render_snapshot(path: &std::path::Path, snap: &perfkit::Snapshot) -> String {
    let stages = crate::model::stages_of(snap);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let title = format!("perfkit snapshot: {name}");
    let mut body = String::new();
    let _ = writeln!(body, "<h1>{}</h1>", escape(&title));
    let rows = rows_of(&[&stages]);
    body.push_str("<section class=\"headline\">\n<h2 id=\"headline\">Headline</h2>\n");
    let top = rows.iter().max_by(|a, b| a.cum.total_cmp(&b.cum));
    let _ = writeln!(
        body,
        "<p class=\"headline\">{} measured call site{}, {} stack path{}{}.</p>\n</section>",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        snap.stacks.len(),
        if snap.stacks.len() == 1 { "" } else { "s" },
        top.map(|t| format!(
            "; the most time is under <b>{}</b>: {} in {} calls",
            escape(&t.name),
            ns(t.cum),
            table::num(t.calls)
        ))
        .unwrap_or_default()
    );
    let _ = writeln!(
        body,
        "<p class=\"lead\">From <code>{}</code>: one process's measurements, as <code>perfkit::snapshot()</code> took them.</p>",
        escape(&path.display().to_string())
    );
    body.push_str("<h2 id=\"stages\">Per-stage timing</h2>\n");
    if rows.is_empty() {
        body.push_str("<p class=\"note\">The snapshot holds no call site with calls.</p>\n");
    }
    stage_section(&mut body, "call sites", &rows, "host", &[]);
    body.push_str("<h2 id=\"flamegraphs\">Flamegraph</h2>\n");
    match flame::flamegraph(&name, &stages.folded_text()) {
        Some(svg) => embed_flamegraph(&mut body, &svg, "host"),
        None => body.push_str("<p class=\"note\">No nested measurements were recorded (no stack paths with self time).</p>\n"),
    }
    page(&title, &body)
}

/// Renders the gate's verdict as a page: the verdict, its power and
/// warnings, and the table of every check, as `--summary-md` has them for CI.
pub fn render_gate(report: &crate::gate::GateReport) -> String {
    use crate::gate::{GateReport, GateVerdict};
    let title = format!("perfkit gate: {}", report.scenario);
    let mut body = String::new();
    let _ = writeln!(body, "<h1>{}</h1>", escape(&title));
    let cls = if report.regressed() { "bad" } else { "ok" };
    body.push_str("<section class=\"headline\">\n<h2 id=\"headline\">Verdict</h2>\n");
    for (i, line) in report.headline().lines().enumerate() {
        let c = if i == 0 { cls } else { "" };
        let _ = writeln!(body, "<p class=\"headline {c}\">{}</p>", escape(line));
    }
    body.push_str("</section>\n<h2 id=\"checks\">Checks</h2>\n");
    let rows = report.table_rows();
    let mut table = table::html("gate", &GateReport::HEADERS, &rows, &[0, 1, 9]);
    // Mark failing rows, so they stand out without reading the last column.
    for (r, row) in report.rows.iter().zip(&rows) {
        if matches!(r.verdict, GateVerdict::Regression | GateVerdict::Changed) {
            let last = format!("<td class=\"l\">{}</td></tr>", escape(&row[row.len() - 1]));
            let marked = format!(
                "<td class=\"l bad\">{}</td></tr>",
                escape(&row[row.len() - 1])
            );
            table = table.replacen(&last, &marked, 1);
        }
    }
    body.push_str(&table);
    body.push_str("<p class=\"lead\">A check fails when the whole 95&nbsp;% interval of the median's change lies beyond its threshold in the worse direction; virtual-time figures compare exactly. <i>catches</i> is the smallest worsening the check would have caught at the noise measured.</p>\n");
    page(&title, &body)
}
