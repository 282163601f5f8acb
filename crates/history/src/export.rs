//! The latest figures in other tools' formats.
//!
//! - **BMF**, Bencher Metric Format: `{benchmark: {measure: {value,
//!   lower_value, upper_value}}}`; the benchmark is the scenario and its
//!   configuration, the measure the metric name.
//! - **gab**, github-action-benchmark's `customBiggerIsBetter` /
//!   `customSmallerIsBetter` JSON: an array of `{name, unit, value, range,
//!   extra}`; the tool takes one direction per file, so one export holds the
//!   metrics of one direction.
//! - **OpenMetrics** text for Prometheus and Grafana: one gauge family per
//!   figure (`perfkit_rx_bps`, `perfkit_stage_p99_ns`), labelled with the
//!   scenario, configuration, stage, commit, branch and host class; ends with
//!   `# EOF`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::changepoint::Direction;
use crate::{flatten, Latest};

/// `scenario` or `scenario[k=v,k=v]`, with the host class when the export
/// holds several (the same benchmark measured on unlike machines).
fn benchmark_name(l: &Latest, many_hosts: bool) -> String {
    let cfg = config_text(&l.config);
    let mut name = l.scenario.clone();
    if !cfg.is_empty() {
        name.push_str(&format!("[{cfg}]"));
    }
    if many_hosts {
        name.push_str(&format!("@{}", l.host_fingerprint));
    }
    name
}

/// A configuration identity (JSON object) as `k=v,k=v`.
pub fn config_text(identity: &str) -> String {
    let map: BTreeMap<String, Value> = serde_json::from_str(identity).unwrap_or_default();
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            v => format!("{k}={v}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn many_hosts(latest: &[Latest]) -> bool {
    latest
        .iter()
        .map(|l| &l.host_fingerprint)
        .collect::<BTreeSet<_>>()
        .len()
        > 1
}

/// Bencher Metric Format (pretty JSON).
pub fn bmf(latest: &[Latest]) -> String {
    let many = many_hosts(latest);
    let mut doc = Map::new();
    for l in latest {
        let bench = doc
            .entry(benchmark_name(l, many))
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(measures) = bench {
            measures.insert(
                l.metric.clone(),
                json!({"value": l.value, "lower_value": l.range.0, "upper_value": l.range.1}),
            );
        }
    }
    serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default()
}

/// github-action-benchmark custom JSON for the metrics of one direction
/// (`customBiggerIsBetter` for [`Direction::HigherIsBetter`]).
pub fn gab(latest: &[Latest], direction: Direction) -> String {
    let many = many_hosts(latest);
    let items: Vec<Value> = latest
        .iter()
        .filter(|l| Direction::of(&l.metric) == direction)
        .map(|l| {
            json!({
                "name": format!("{} {}", benchmark_name(l, many), l.metric),
                "unit": perfkit_report::metric::unit(&l.metric),
                "value": l.value,
                "range": format!("{}..{}", l.range.0, l.range.1),
                "extra": format!("commit {} on {}", l.commit, l.branch),
            })
        })
        .collect();
    serde_json::to_string_pretty(&Value::Array(items)).unwrap_or_default()
}

fn family(metric: &str) -> String {
    let (side, _, field) = flatten::keys(metric);
    let head = match side.as_str() {
        "host" => "stage",
        "device" => "device_stage",
        s => s,
    };
    let raw = format!("perfkit_{head}_{field}");
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// OpenMetrics text exposition.
pub fn openmetrics(latest: &[Latest]) -> String {
    // Families must not interleave: group samples by family first.
    let mut families: BTreeMap<String, (String, Vec<String>)> = BTreeMap::new();
    for l in latest {
        if !l.value.is_finite() {
            continue;
        }
        let (_, stage, _) = flatten::keys(&l.metric);
        let mut labels = vec![
            format!("scenario=\"{}\"", label(&l.scenario)),
            format!("config=\"{}\"", label(&config_text(&l.config))),
        ];
        if !stage.is_empty() {
            labels.push(format!("stage=\"{}\"", label(&stage)));
        }
        labels.push(format!("metric=\"{}\"", label(&l.metric)));
        labels.push(format!("commit=\"{}\"", label(&l.commit)));
        labels.push(format!("branch=\"{}\"", label(&l.branch)));
        labels.push(format!("host_class=\"{}\"", label(&l.host_fingerprint)));
        let name = family(&l.metric);
        let entry = families.entry(name.clone()).or_insert_with(|| {
            let unit = perfkit_report::metric::unit(&l.metric);
            (unit.to_owned(), Vec::new())
        });
        entry
            .1
            .push(format!("{name}{{{}}} {}", labels.join(","), l.value));
    }
    let mut out = String::new();
    for (name, (unit, samples)) in families {
        out.push_str(&format!("# TYPE {name} gauge\n"));
        let help = if unit.is_empty() {
            "perfkit figure".to_owned()
        } else {
            format!("perfkit figure, in {unit}")
        };
        out.push_str(&format!("# HELP {name} {}\n", label(&help)));
        for s in samples {
            out.push_str(&s);
            out.push('\n');
        }
    }
    out.push_str("# EOF\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(metric: &str, value: f64) -> Latest {
        Latest {
            scenario: "uart".into(),
            config: r#"{"baud":115200,"link":"uart"}"#.into(),
            metric: metric.into(),
            commit: "abc".into(),
            branch: "main".into(),
            host_fingerprint: "x86_64-4c".into(),
            value,
            range: (value, value),
        }
    }

    #[test]
    fn openmetrics_groups_families_and_ends_with_eof() {
        let text = openmetrics(&[
            l("rx.bps", 1.0),
            l("stage.wire::crc16.p99_ns", 2.0),
            l("rx.bps", 3.0),
        ]);
        assert!(text.ends_with("# EOF\n"));
        let types: Vec<_> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        assert_eq!(
            types,
            [
                "# TYPE perfkit_rx_bps gauge",
                "# TYPE perfkit_stage_p99_ns gauge"
            ]
        );
        assert!(text.contains("stage=\"wire::crc16\""), "{text}");
        assert!(text.contains("config=\"baud=115200,link=uart\""), "{text}");
    }

    #[test]
    fn gab_keeps_one_direction() {
        let all = [l("rx.bps", 1.0), l("rx.seconds", 2.0)];
        let bigger: Vec<Value> =
            serde_json::from_str(&gab(&all, Direction::HigherIsBetter)).unwrap();
        assert_eq!(bigger.len(), 1);
        assert_eq!(bigger[0]["unit"], "bytes/s");
        let smaller: Vec<Value> =
            serde_json::from_str(&gab(&all, Direction::LowerIsBetter)).unwrap();
        assert_eq!(smaller[0]["name"], "uart[baud=115200,link=uart] rx.seconds");
    }

    #[test]
    fn bmf_nests_measures_under_benchmarks() {
        let v: Value = serde_json::from_str(&bmf(&[l("rx.bps", 5.0)])).unwrap();
        assert_eq!(v["uart[baud=115200,link=uart]"]["rx.bps"]["value"], 5.0);
    }
}
