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
fn benchmark_name(l: &Latest, labels: &Labels, many_hosts: bool) -> String {
    let cfg = labels.get(&l.config);
    let mut name = l.scenario.clone();
    if !cfg.is_empty() {
        name.push_str(&format!("[{cfg}]"));
    }
    if many_hosts {
        name.push_str(&format!("@{}", l.host_fingerprint));
    }
    name
}

/// Short names for configuration identities: `k=v,k=v` over the
/// parameters whose values differ between them (the swept ones), since a
/// recorded configuration lists every parameter.
#[derive(Debug, Clone, Default)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// Labels for a set of identities (canonical JSON objects).
    pub fn new<'a>(identities: impl IntoIterator<Item = &'a str>) -> Labels {
        let maps: BTreeMap<&str, BTreeMap<String, Value>> = identities
            .into_iter()
            .map(|i| (i, serde_json::from_str(i).unwrap_or_default()))
            .collect();
        let keys: BTreeSet<&String> = maps.values().flat_map(|m| m.keys()).collect();
        let varying: Vec<&String> = keys
            .into_iter()
            .filter(|k| {
                let mut values = maps.values().map(|m| m.get(*k));
                let first = values.next().flatten();
                values.any(|v| v != first)
            })
            .collect();
        Labels(
            maps.iter()
                .map(|(i, m)| {
                    let text = varying
                        .iter()
                        .filter_map(|k| {
                            m.get(*k).map(|v| match v {
                                Value::String(s) => format!("{k}={s}"),
                                v => format!("{k}={v}"),
                            })
                        })
                        .collect::<Vec<_>>()
                        .join(",");
                    (i.to_string(), text)
                })
                .collect(),
        )
    }

    /// The label of an identity given to [`Labels::new`] (else empty).
    pub fn get(&self, identity: &str) -> String {
        self.0.get(identity).cloned().unwrap_or_default()
    }
}

/// Labels per scenario: configurations are told apart within a scenario.
fn labels_by_scenario(latest: &[Latest]) -> BTreeMap<&str, Labels> {
    let mut ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in latest {
        ids.entry(&l.scenario).or_default().push(&l.config);
    }
    ids.into_iter().map(|(s, v)| (s, Labels::new(v))).collect()
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
    let labels = labels_by_scenario(latest);
    let mut doc = Map::new();
    for l in latest {
        let bench = doc
            .entry(benchmark_name(l, &labels[l.scenario.as_str()], many))
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
    let labels = labels_by_scenario(latest);
    let items: Vec<Value> = latest
        .iter()
        .filter(|l| Direction::of(&l.metric) == direction)
        .map(|l| {
            json!({
                "name": format!("{} {}", benchmark_name(l, &labels[l.scenario.as_str()], many), l.metric),
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
    let labels = labels_by_scenario(latest);
    for l in latest {
        if !l.value.is_finite() {
            continue;
        }
        let (_, stage, _) = flatten::keys(&l.metric);
        let mut labels = vec![
            format!("scenario=\"{}\"", label(&l.scenario)),
            format!(
                "config=\"{}\"",
                label(&labels[l.scenario.as_str()].get(&l.config))
            ),
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
        lc(metric, value, r#"{"baud":115200,"link":"uart"}"#)
    }

    fn lc(metric: &str, value: f64, config: &str) -> Latest {
        Latest {
            scenario: "uart".into(),
            config: config.into(),
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
            lc("rx.bps", 3.0, r#"{"baud":9600,"link":"uart"}"#),
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
        assert!(text.contains("config=\"baud=115200\""), "{text}");
        assert!(text.contains("config=\"baud=9600\""), "{text}");
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
        assert_eq!(
            smaller[0]["name"], "uart rx.seconds",
            "one configuration: no label"
        );
    }

    #[test]
    fn bmf_nests_measures_under_benchmarks() {
        let v: Value = serde_json::from_str(&bmf(&[
            l("rx.bps", 5.0),
            lc("rx.bps", 6.0, r#"{"baud":9600,"link":"uart"}"#),
        ]))
        .unwrap();
        assert_eq!(v["uart[baud=115200]"]["rx.bps"]["value"], 5.0);
        assert_eq!(v["uart[baud=9600]"]["rx.bps"]["value"], 6.0);
    }
}
