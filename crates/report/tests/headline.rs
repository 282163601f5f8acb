//! The headline that opens each report: best and worst configuration and
//! the parameter that moves a metric most (sweeps), one sentence per metric
//! and what differs (comparisons).

mod common;

use std::path::PathBuf;

use common::{before_after, synthetic, Spec};
use perfkit_report::{compare, render_compare, render_report};
use scraper::{Html, Selector};
use serde_json::json;

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn text(doc: &Html, s: &str) -> String {
    doc.select(&sel(s))
        .map(|e| e.text().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sweep_headline_names_best_worst_and_the_strongest_parameter() {
    let r = synthetic(&Spec::default());
    let html = render_report(&[(PathBuf::from("reports/sweep/results.json"), r)]);
    let doc = Html::parse_document(&html);
    // The headline comes before everything else after the title.
    let first_h2 = text(&doc, "main > h2:first-of-type, main > section > h2");
    assert!(first_h2.starts_with("Headline"), "{first_h2}");
    let row = "table.headline tr[data-metric=\"rx.bps\"]";
    // Throughput grows with the block size in the synthetic sweep.
    let best = text(&doc, &format!("{row} td.best"));
    let worst = text(&doc, &format!("{row} td.worst"));
    assert!(best.contains("block_size=4096"), "{best}");
    assert!(worst.contains("block_size=64"), "{worst}");
    assert!(best.contains("bytes/s"), "value with unit: {best}");
    // block_size moves it most (factors of ~30), framing less (15-30 %).
    let mover = text(&doc, &format!("{row} td.mover"));
    assert!(mover.starts_with("block_size"), "{mover}");
    assert!(mover.contains("then framing"), "{mover}");
    // The rule is stated on the page.
    assert!(html.contains("spread (max − min)"));
}

#[test]
fn one_configuration_gets_its_figures_in_a_sentence() {
    let r = synthetic(&Spec {
        params: vec![],
        ..Spec::default()
    });
    let html = render_report(&[(PathBuf::from("x/results.json"), r)]);
    let doc = Html::parse_document(&html);
    let p = text(&doc, "p.headline");
    assert!(
        p.starts_with("One configuration, median of 5 completed runs"),
        "{p}"
    );
    assert!(p.contains("rx throughput") && p.contains("bytes/s"), "{p}");
}

#[test]
fn comparison_headline_says_how_much_slower_and_what_differs() {
    let (a, mut b) = before_after(1.5);
    b.meta.host = "otherhost".into();
    for r in &mut b.runs {
        r.config
            .insert("slowdown_ns_per_packet".into(), json!(20000));
    }
    let inputs = vec![
        (PathBuf::from("reports/a/results.json"), a),
        (PathBuf::from("reports/b/results.json"), b),
    ];
    let cmp = compare(&inputs);
    let html = render_compare(&inputs, &cmp);
    let doc = Html::parse_document(&html);
    let s = text(&doc, "ul.headline li[data-metric=\"rx.bps\"]");
    // 1.5x the time is a third less throughput.
    assert!(s.contains("b is 33."), "{s}");
    assert!(s.contains("slower than a in 8 of 8 configurations"), "{s}");
    assert!(s.contains("95 % CI within ["), "{s}");
    let differs = text(&doc, "table.differs");
    for w in [
        "git commit",
        "0123456789abcdef",
        "fedcba9876543210",
        "host",
        "otherhost",
        "config: slowdown_ns_per_packet",
        "20000",
        "unset",
    ] {
        assert!(differs.contains(w), "{w} in {differs}");
    }
    assert!(!differs.contains("scenario"), "{differs}");
    assert!(html.contains("The same in every input: scenario"), "{html}");
}

#[test]
fn comparison_of_equal_inputs_says_no_change() {
    let a = synthetic(&Spec {
        virtual_time: true,
        ..Spec::default()
    });
    let inputs = vec![
        (PathBuf::from("reports/a/results.json"), a.clone()),
        (PathBuf::from("reports/b/results.json"), a),
    ];
    let html = render_compare(&inputs, &compare(&inputs));
    let doc = Html::parse_document(&html);
    let s = text(&doc, "ul.headline li[data-metric=\"tx.pps\"]");
    assert!(
        s.contains("no significant change from a to b in 8 of 8 configurations"),
        "{s}"
    );
    assert!(s.contains("exact"), "{s}");
    assert!(html.contains("Nothing recorded differs"));
}
