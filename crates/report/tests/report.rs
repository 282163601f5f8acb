//! Golden-structure tests of the HTML report: parse it and check its parts.

mod common;

use std::path::PathBuf;

use common::{synthetic, Spec};
use perfkit_report::{compare, metric, render_compare, render_report, Results};
use scraper::{Html, Selector};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn report_of(spec: &Spec) -> (Results, Html, String) {
    let r = synthetic(spec);
    let html = render_report(&[(PathBuf::from("reports/sweep/results.json"), r.clone())]);
    (r, Html::parse_document(&html), html)
}

#[test]
fn one_chart_per_swept_parameter_and_metric() {
    let (r, doc, _) = report_of(&Spec::default());
    let metrics = metric::headline(r.runs.iter());
    // tx/rx pps/bps, utilisation, metrics.mb_per_s
    assert_eq!(metrics.len(), 6, "{metrics:?}");
    for p in &r.meta.swept {
        for m in &metrics {
            let s = sel(&format!(
                "figure.chart[data-param=\"{p}\"][data-metric=\"{m}\"] svg"
            ));
            assert_eq!(doc.select(&s).count(), 1, "chart {m} vs {p}");
        }
    }
    let all = doc.select(&sel("figure.chart[data-param]")).count();
    assert_eq!(all, r.meta.swept.len() * metrics.len());
}

#[test]
fn series_names_and_units_are_in_the_charts() {
    let (_, doc, _) = report_of(&Spec::default());
    let text_of = |param: &str, m: &str| -> String {
        let s = sel(&format!(
            "figure.chart[data-param=\"{param}\"][data-metric=\"{m}\"] svg text"
        ));
        doc.select(&s)
            .map(|t| t.text().collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Against block_size: one line per framing.
    let t = text_of("block_size", "tx.bps");
    assert!(
        t.contains("framing=cobs") && t.contains("framing=slip"),
        "{t}"
    );
    assert!(t.contains("bytes/s"), "y axis carries the unit: {t}");
    assert!(t.contains("block_size"), "x axis named: {t}");
    // Against framing (categorical): one bar colour per block size, the
    // categories as labels.
    let t = text_of("framing", "rx.pps");
    for b in ["64", "256", "1024", "4096"] {
        assert!(t.contains(&format!("block_size={b}")), "{t}");
    }
    assert!(t.contains("cobs") && t.contains("slip") && t.contains("packets/s"));
    // Categorical charts draw bars: rects beyond the background.
    let rects = doc
        .select(&sel(
            "figure.chart[data-param=\"framing\"][data-metric=\"rx.pps\"] svg rect",
        ))
        .count();
    assert!(rects >= 8, "grouped bars present ({rects} rects)");
}

#[test]
fn summary_and_stage_tables() {
    let (r, doc, _) = report_of(&Spec::default());
    let rows = doc.select(&sel("table.summary tr")).count();
    assert_eq!(rows, 1 + 8, "header + one row per configuration");
    let header: String = doc
        .select(&sel("table.summary tr th"))
        .map(|t| t.text().collect::<String>())
        .collect::<Vec<_>>()
        .join("|");
    for h in [
        "tx PPS",
        "tx BPS",
        "rx PPS",
        "rx BPS",
        "link utilisation",
        "integrity",
    ] {
        assert!(header.contains(h), "{header}");
    }
    let tables: Vec<_> = doc.select(&sel("table.stages[data-kind=host]")).collect();
    assert_eq!(tables.len(), 8, "one stage table per configuration");
    let first = tables[0].text().collect::<String>();
    for s in ["sender::send", "crc16", "share of total", "MB/s", "p99"] {
        assert!(first.contains(s), "{s} in {first}");
    }
    // crc16 counted bytes, so it has an MB/s figure; sender::send does not.
    let crc_row: String = tables[0]
        .select(&sel("tr"))
        .map(|t| t.text().collect::<Vec<_>>().join("|"))
        .find(|t| t.starts_with("crc16"))
        .unwrap();
    assert!(!crc_row.ends_with('–'), "{crc_row}");
    assert_eq!(doc.select(&sel("figure.share svg")).count(), 8);
    assert!(r.runs.iter().all(|x| x.device_stages.is_none()));
    assert_eq!(
        doc.select(&sel("table.stages[data-kind=device]")).count(),
        0
    );
}

#[test]
fn device_stages_get_their_own_table_and_flamegraph() {
    let (_, doc, _) = report_of(&Spec {
        device: true,
        ..Spec::default()
    });
    assert_eq!(
        doc.select(&sel("table.stages[data-kind=device]")).count(),
        8
    );
    assert_eq!(
        doc.select(&sel("iframe.flamegraph[data-kind=device]"))
            .count(),
        1
    );
}

#[test]
fn flamegraph_is_embedded_and_interactive() {
    let (_, doc, _) = report_of(&Spec::default());
    let frames: Vec<_> = doc
        .select(&sel("iframe.flamegraph[data-kind=host]"))
        .collect();
    assert_eq!(frames.len(), 1);
    let src = frames[0].value().attr("srcdoc").unwrap();
    let inner = Html::parse_document(src);
    assert!(inner.select(&sel("svg")).count() >= 1);
    // inferno's own inline script (zoom, search) travels with it.
    let script: String = inner
        .select(&sel("script"))
        .map(|s| s.text().collect::<String>())
        .collect();
    assert!(
        script.contains("function zoom"),
        "interactive script present"
    );
    // Frames of the folded stacks, with the configuration as the first frame.
    assert!(src.contains("crc16") && src.contains("block_size=64, framing=cobs"));
}

#[test]
fn report_is_offline_and_escapes_file_text() {
    let mut r = synthetic(&Spec::default());
    r.meta.host = "<script>alert(1)</script>".into();
    r.runs[0].stages.sites[0].name = "evil<img src=x onerror=alert(1)>".into();
    let html = render_report(&[(PathBuf::from("x.json"), r)]);
    assert!(!html.contains("<script>alert(1)"));
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;script&gt;alert(1)"));
    let doc = Html::parse_document(&html);
    // No external resources: no src/href pointing anywhere, no link tags.
    assert_eq!(doc.select(&sel("link, script[src], img[src]")).count(), 0);
    // Links within the page (the table of contents) are fine.
    let external: Vec<_> = doc
        .select(&sel("[href], [src]"))
        .filter(|a| !a.value().attr("href").is_some_and(|h| h.starts_with('#')))
        .map(|a| a.value().clone())
        .collect();
    assert!(external.is_empty(), "external references: {external:?}");
    // One inline script (unfold sections before printing); the flamegraphs'
    // own scripts live inside their frames.
    let scripts: Vec<String> = doc
        .select(&sel("script"))
        .map(|s| s.text().collect())
        .collect();
    assert_eq!(scripts.len(), 1, "{scripts:?}");
    assert!(scripts[0].contains("beforeprint"));
}

#[test]
fn several_inputs_become_series() {
    let a = synthetic(&Spec::default());
    let b = synthetic(&Spec {
        slowdown: 1.3,
        seed: 2,
        ..Spec::default()
    });
    let html = render_report(&[
        (PathBuf::from("reports/before/results.json"), a),
        (PathBuf::from("reports/after/results.json"), b),
    ]);
    let doc = Html::parse_document(&html);
    let t: String = doc
        .select(&sel(
            "figure.chart[data-param=\"block_size\"][data-metric=\"tx.bps\"] svg text",
        ))
        .map(|t| t.text().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        t.contains("before: framing=cobs") && t.contains("after: framing=slip"),
        "{t}"
    );
    assert_eq!(doc.select(&sel("iframe.flamegraph")).count(), 2);
}

#[test]
fn compare_html_has_table_and_differential_flamegraph() {
    let a = synthetic(&Spec::default());
    let b = synthetic(&Spec {
        slowdown: 1.3,
        seed: 2,
        ..Spec::default()
    });
    let inputs = vec![(PathBuf::from("a.json"), a), (PathBuf::from("b.json"), b)];
    let cmp = compare(&inputs);
    let html = render_compare(&inputs, &cmp);
    let doc = Html::parse_document(&html);
    let verdicts: Vec<String> = doc
        .select(&sel("table.compare td:last-child"))
        .map(|t| t.text().collect())
        .collect();
    assert!(!verdicts.is_empty());
    assert!(verdicts.iter().any(|v| v == "slower"), "{verdicts:?}");
    let f = doc
        .select(&sel("iframe.flamegraph[data-kind=differential]"))
        .next()
        .expect("differential flamegraph");
    assert!(f.value().attr("srcdoc").unwrap().contains("<svg"));
}

#[test]
fn no_swept_parameter_gives_a_note_not_a_crash() {
    let (_, doc, html) = report_of(&Spec {
        params: vec![],
        ..Spec::default()
    });
    assert_eq!(doc.select(&sel("figure.chart[data-param]")).count(), 0);
    assert!(html.contains("No parameter was swept"));
    assert_eq!(doc.select(&sel("table.stages")).count(), 1);
}
