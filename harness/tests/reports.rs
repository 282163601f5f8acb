//! Reports from the real binary: a swept parameter's declared "off" value
//! travels from the parameter table into results.json and onto the chart,
//! and `perfkit report` takes a perfkit snapshot file too.

mod common;

use std::process::Output;

use common::perfkit_in as perfkit;

/// Asserts exit 0, showing stderr otherwise.
fn succeeded(o: &Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
}

#[test]
fn a_swept_off_value_is_recorded_and_labelled() {
    let d = tempfile::tempdir().unwrap();
    let input = common::root().join("fixtures/test35k.jpg");
    std::fs::write(
        d.path().join("s.toml"),
        format!(
            "name = \"throttle\"\ninput = {:?}\nruns = 1\n[link]\nkind = \"uart\"\nbaud = 115200\n\
             [transfer]\nblock_size = 249\n[sweep]\nthrottle_pps = [100, 0]\nrepeats = [0, 1]\n",
            input.display().to_string()
        ),
    )
    .unwrap();
    let o = perfkit(d.path(), &["run", "s.toml", "--quiet", "--out", "out"]);
    succeeded(&o);
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("out/results.json")).unwrap())
            .unwrap();
    let s = &results["meta"]["sentinels"];
    assert_eq!(s["throttle_pps"]["means"], "unthrottled", "{s}");
    assert_eq!(s["throttle_pps"]["value"], 0.0);
    // Only swept parameters with a declared off value: `repeats` has none.
    assert_eq!(s.as_object().unwrap().len(), 1, "{s}");
    let html = std::fs::read_to_string(d.path().join("out/report.html")).unwrap();
    // Each chart against throttle_pps (one per headline metric) labels the slot.
    let charts = html.matches("data-param=\"throttle_pps\"").count();
    assert!(charts >= 5, "{charts} charts");
    let slots = html
        .split("unthrottled")
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0].trim_end().ends_with('>') && w[1].trim_start().starts_with('<'))
        .count();
    assert_eq!(slots, charts, "a text of its own on each chart's axis");
    assert!(
        html.contains("throttle_pps=0.0 (unthrottled), repeats=0"),
        "named in the summary"
    );
}

/// Nested measurements, so the snapshot has stack paths with self time.
fn work() -> u64 {
    let _outer = perfkit::span!("report_test::outer");
    let mut acc = 0u64;
    for i in 0..200u64 {
        acc = acc.wrapping_add(perfkit::measure!("report_test::inner", {
            (0..500u64).fold(i, |a, x| a.wrapping_mul(31).wrapping_add(x))
        }));
    }
    acc
}

#[test]
fn report_takes_a_snapshot_file() {
    std::hint::black_box(work());
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("snap.json"), perfkit::snapshot().to_json()).unwrap();
    let o = perfkit(d.path(), &["report", "snap.json", "-o", "snap.html"]);
    succeeded(&o);
    let html = std::fs::read_to_string(d.path().join("snap.html")).unwrap();
    let table = &html[html.find("<table class=\"stages\"").expect("a stage table")..];
    let table = &table[..table.find("</table>").unwrap()];
    for site in ["report_test::outer", "report_test::inner"] {
        assert!(table.contains(site), "{site} in the stage table: {table}");
    }
    let frame = &html[html
        .find("<iframe class=\"flamegraph\"")
        .expect("a flamegraph")..];
    // The nested site is a frame of the flamegraph (inferno's SVG, escaped in srcdoc).
    assert!(
        frame.contains("report_test::inner"),
        "the nested site is a frame"
    );
    assert!(frame.contains("&lt;svg"), "an SVG inside the frame");

    // Not a snapshot nor results: a clear error, exit 2.
    std::fs::write(d.path().join("other.json"), "{\"sites\": 3}").unwrap();
    let o = perfkit(d.path(), &["report", "other.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("other.json"));
    std::fs::write(
        d.path().join("bad.json"),
        "{\"sites\": [], \"stacks\": [1]}",
    )
    .unwrap();
    let o = perfkit(d.path(), &["report", "bad.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a valid perfkit snapshot"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn gate_writes_its_summary_as_a_page() {
    let d = tempfile::tempdir().unwrap();
    let base = common::root().join("fixtures/baselines/uart-sweep.json");
    let base = base.to_str().unwrap();
    let o = perfkit(
        d.path(),
        &[
            "gate",
            "--baseline",
            base,
            base,
            "--summary-html",
            "gate.html",
        ],
    );
    succeeded(&o);
    let html = std::fs::read_to_string(d.path().join("gate.html")).unwrap();
    assert!(
        html.contains("perfkit gate: pass"),
        "the verdict heads the page"
    );
    assert!(html.contains("<table class=\"gate\">") && html.contains("rx.bps"));
    // Not with --against, which has its own report.
    let o = perfkit(
        d.path(),
        &[
            "gate",
            "--against",
            "HEAD",
            "x.toml",
            "--summary-html",
            "g.html",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
}
