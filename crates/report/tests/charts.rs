//! Charts that do not lie: a declared "off" value is a labelled category at
//! the axis end, and a report with many charts has contents and folds.

mod common;

use std::path::PathBuf;

use common::{synthetic, Spec};
use perfkit_report::model::Sentinel;
use perfkit_report::render_report;
use scraper::{Html, Selector};
use serde_json::json;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn throttle_sweep() -> Spec {
    Spec {
        params: vec![
            (
                "throttle_pps".into(),
                vec![json!(40), json!(100), json!(200), json!(0)],
            ),
            ("block_size".into(), vec![json!(50), json!(249)]),
        ],
        ..Spec::default()
    }
}

fn chart_text(html: &str, param: &str) -> String {
    let doc = Html::parse_document(html);
    doc.select(&sel(&format!(
        "figure.chart[data-param=\"{param}\"][data-metric=\"rx.bps\"] svg text"
    )))
    .map(|t| t.text().collect::<String>().trim().to_owned())
    .collect::<Vec<_>>()
    .join("|")
}

#[test]
fn a_declared_off_value_is_labelled_at_the_axis_end() {
    let mut r = synthetic(&throttle_sweep());
    r.meta.sentinels.insert(
        "throttle_pps".into(),
        Sentinel {
            value: 0.0,
            means: "unthrottled".into(),
        },
    );
    let html = render_report(&[(PathBuf::from("s/results.json"), r.clone())]);
    let t = chart_text(&html, "throttle_pps");
    // The x-axis labels in drawing order: the amounts, then the off value
    // and what it means.
    assert!(t.ends_with("|40|100|200|0|unthrottled"), "{t}");
    // Only the parameter that declares it has a slot; elsewhere the off
    // value is explained in the series' names.
    let t = chart_text(&html, "block_size");
    assert!(t.ends_with("|50|249"), "{t}");
    assert!(t.contains("throttle_pps=0 (unthrottled)"), "{t}");
    assert!(html.contains("<td class=\"l\">throttle_pps=0 (unthrottled), block_size=50</td>"));

    // Nothing declared (an older results file): 0 is a point on the scale.
    r.meta.sentinels.clear();
    let html = render_report(&[(PathBuf::from("s/results.json"), r)]);
    let t = chart_text(&html, "throttle_pps");
    assert!(!t.contains("unthrottled"), "{t}");
    assert!(t.ends_with("|0|40|100|200"), "{t}");
}

#[test]
fn many_charts_get_contents_and_one_open_section() {
    // 2 swept parameters x 6 headline metrics = 12 charts.
    let r = synthetic(&Spec::default());
    let html = render_report(&[(PathBuf::from("s/results.json"), r)]);
    let doc = Html::parse_document(&html);
    let links: Vec<String> = doc
        .select(&sel("nav.toc a"))
        .filter_map(|a| a.value().attr("href").map(str::to_owned))
        .collect();
    for want in [
        "#headline",
        "#summary",
        "#charts",
        "#charts-block_size",
        "#charts-framing",
        "#stages",
        "#flamegraphs",
    ] {
        assert!(links.iter().any(|l| l == want), "{want} in {links:?}");
        assert_eq!(doc.select(&sel(want)).count(), 1, "{want} leads somewhere");
    }
    // The open section is the parameter that moves rx throughput most.
    let open: Vec<String> = doc
        .select(&sel("details.charts[open] h3"))
        .map(|h| h.value().attr("id").unwrap().to_owned())
        .collect();
    assert_eq!(open, ["charts-block_size"]);
    assert_eq!(doc.select(&sel("details.charts")).count(), 2);

    // One parameter, 6 charts: no contents, nothing folded.
    let r = synthetic(&Spec {
        params: vec![("block_size".into(), vec![json!(64), json!(4096)])],
        ..Spec::default()
    });
    let html = render_report(&[(PathBuf::from("s/results.json"), r)]);
    let doc = Html::parse_document(&html);
    assert_eq!(doc.select(&sel("nav.toc")).count(), 0);
    assert_eq!(doc.select(&sel("details.charts:not([open])")).count(), 0);
}
