//! Trends across commits for the HTML report, from a results history.
//!
//! The report crate does not read the history itself (the history crate
//! builds on this one); the caller hands in [`Trends`]: per headline metric,
//! one value per commit and configuration, where the run being reported sits
//! and where a change began; per stage, a series for a sparkline.

use std::fmt::Write as _;

use crate::chart;
use crate::html::escape;

/// Everything the trends section shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trends {
    /// One chart per headline metric.
    pub charts: Vec<TrendChart>,
    /// One sparkline per stage.
    pub stages: Vec<StageTrend>,
}

/// A headline metric across commits.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendChart {
    /// Metric name (`rx.bps`).
    pub metric: String,
    /// Per commit, oldest first: `short-hash date` (the space splits the label's lines).
    pub commits: Vec<String>,
    /// Index of the commit of the run being reported.
    pub current: Option<usize>,
    /// One line per configuration.
    pub series: Vec<TrendSeries>,
}

/// One configuration's values across the chart's commits.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendSeries {
    /// Configuration label.
    pub name: String,
    /// Per commit; `None` where the configuration was not measured.
    pub values: Vec<Option<f64>>,
    /// Index of the commit where a change began, when one was found.
    pub change_at: Option<usize>,
}

/// One host stage's figure across commits (oldest first), shown as a
/// sparkline in the stage table of its configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct StageTrend {
    /// The configuration (`config_id` in the reported results).
    pub config_id: usize,
    /// Site name.
    pub stage: String,
    /// Which figure (`p50_ns`).
    pub field: String,
    /// Values, oldest first.
    pub values: Vec<f64>,
}

/// A tiny inline SVG line of `values` (scaled to its own range), the last
/// point dotted: the newest commit.
pub(crate) fn sparkline(values: &[f64]) -> String {
    let (w, h) = (120.0, 24.0);
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    if values.is_empty() || !lo.is_finite() {
        return String::new();
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let n = values.len().max(2) as f64 - 1.0;
    let pt = |i: usize, v: f64| {
        (
            2.0 + (w - 4.0) * i as f64 / n,
            h - 2.0 - (h - 4.0) * (v - lo) / span,
        )
    };
    let path: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = pt(i, *v);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let (lx, ly) = pt(values.len() - 1, values[values.len() - 1]);
    format!(
        "<svg class=\"spark\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"trend\"><polyline fill=\"none\" stroke=\"#0072b2\" stroke-width=\"1.5\" points=\"{}\"/><circle cx=\"{lx:.1}\" cy=\"{ly:.1}\" r=\"2.5\" fill=\"#c81e1e\"/></svg>",
        path.join(" ")
    )
}

/// The trends section's HTML (the stage sparklines go in the stage tables).
pub fn section(t: &Trends) -> String {
    let mut body = String::new();
    if t.charts.is_empty() {
        return body;
    }
    body.push_str("<h2 id=\"trends\">Trends across commits</h2>\n<p class=\"lead\">From the results history: one point per commit (the median of its runs), oldest first; the red line is this run, a ring and dashed line mark where a change began.</p>\n");
    for c in &t.charts {
        let title = format!("{} across commits", c.metric);
        let unit = crate::metric::unit(&c.metric);
        let y = if unit.is_empty() {
            c.metric.clone()
        } else {
            format!("{} ({unit})", c.metric)
        };
        match chart::trend_chart(&title, &y, &c.commits, c.current, &c.series) {
            Ok(svg) => {
                let _ = writeln!(
                    body,
                    "<figure class=\"chart trend\" data-metric=\"{}\">{}<figcaption>{}: {} commit(s).</figcaption></figure>",
                    escape(&c.metric),
                    crate::html::svg_tag(&svg, &title),
                    escape(&title),
                    c.commits.len()
                );
            }
            Err(e) => {
                let _ = writeln!(
                    body,
                    "<p class=\"note\">Trend chart {} could not be drawn: {}</p>",
                    escape(&title),
                    escape(&e)
                );
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trends {
        Trends {
            charts: vec![TrendChart {
                metric: "rx.bps".into(),
                commits: (0..30)
                    .map(|i| format!("c{i:05} 2026-11-{:02}", 1 + i % 28))
                    .collect(),
                current: Some(29),
                series: vec![TrendSeries {
                    name: "block_size=50 <b>".into(),
                    values: (0..30)
                        .map(|i| (i != 3).then_some(if i >= 20 { 90.0 } else { 100.0 }))
                        .collect(),
                    change_at: Some(20),
                }],
            }],
            stages: vec![StageTrend {
                config_id: 0,
                stage: "wire::crc16".into(),
                field: "p50_ns".into(),
                values: vec![10.0, 11.0, 30.0],
            }],
        }
    }

    #[test]
    fn section_has_a_chart_per_metric() {
        let html = section(&sample());
        let doc = scraper::Html::parse_fragment(&html);
        let sel = |s: &str| scraper::Selector::parse(s).unwrap();
        assert_eq!(doc.select(&sel("figure.trend svg")).count(), 1);
        assert!(html.contains("this run"), "the current run is marked");
        assert!(html.contains("c00021"), "commit labels on the x axis");
        assert!(!html.contains("<b>"), "labels escaped");
        assert!(section(&Trends::default()).is_empty());
    }

    #[test]
    fn stage_tables_of_the_reported_configuration_get_sparklines() {
        use crate::model::*;
        use std::collections::BTreeMap;
        let mut r = Results::new(Meta {
            host_fingerprint: None,
            compiler: None,
            perfkit_version: "0".into(),
            git_commit: None,
            host: "h".into(),
            date: "2026-12-01T00:00:00Z".into(),
            scenario: ScenarioRef {
                expect: None,
                name: "s".into(),
                path: "s.toml".into(),
                sha256: "0".into(),
                description: String::new(),
                kind: "transfer".into(),
            },
            swept: vec!["block_size".into()],
            gate: BTreeMap::new(),
            sentinels: BTreeMap::new(),
            plans: Vec::new(),
        });
        for id in 0..2 {
            r.runs.push(RunRecord {
                hosts: Default::default(),
                config_id: id,
                repeat: 0,
                started_unix_s: None,
                config: BTreeMap::from([("block_size".into(), serde_json::json!(50 + id))]),
                time_base: TimeBase::Real,
                tx: Side::new(1.0, 10, 100),
                rx: Side::new(1.0, 10, 100),
                integrity: Integrity::default(),
                link: LinkStats::default(),
                stages: Stages {
                    sites: vec![Stage {
                        name: "wire::crc16".into(),
                        calls: 10,
                        min_ns: 1,
                        max_ns: 9,
                        cum_ns: 50,
                        p50_ns: 5,
                        p90_ns: 8,
                        p99_ns: 9,
                        p999_ns: 9,
                        bytes: None,
                        tmean_ns: None,
                        cum_cycles: None,
                    }],
                    folded: vec![],
                    probe_ns_per_scope: None,
                },
                device_stages: None,
                device_model: None,
                metrics: BTreeMap::new(),
                error: None,
            });
        }
        let html = crate::html::render_report_with_trends(
            &[(std::path::PathBuf::from("r.json"), r)],
            &sample(),
        );
        let doc = scraper::Html::parse_document(&html);
        let sel = |s: &str| scraper::Selector::parse(s).unwrap();
        let tables: Vec<_> = doc.select(&sel("table.stages")).collect();
        assert_eq!(tables.len(), 2);
        let sparks = |t: &scraper::ElementRef<'_>| t.select(&sel("svg.spark")).count();
        assert_eq!(sparks(&tables[0]), 1, "configuration 0 has a trend");
        assert_eq!(sparks(&tables[1]), 0, "configuration 1 has none");
    }
}
