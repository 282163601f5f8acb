//! Reports from the real binary: a swept parameter's declared "off" value
//! travels from the parameter table into results.json and onto the chart,
//! and `perfkit report` takes a perfkit snapshot file too.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn perfkit(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::exe())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
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
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
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
    assert_eq!(html.matches("unthrottled").count(), charts);
}
