//! Other tools' results as perfkit results, so a team's existing figures
//! sit beside perfkit's in one history: hyperfine's `--export-json` file and
//! criterion's `estimates.json`.
//!
//! Each benchmark becomes one record whose configuration names it
//! (`command` and hyperfine's `--parameter-scan` parameters, or
//! criterion's `benchmark` id) and whose figures are `metrics.*` only:
//! hyperfine's `mean_s`, `stddev_s`, `median_s`, `min_s`, `max_s`,
//! `user_s`, `system_s`; criterion's `mean_ns`, `median_ns`, `std_dev_ns`,
//! `slope_ns` (point estimates). The scenario's `kind` is the tool's name.

use std::collections::BTreeMap;
use std::path::Path;

use perfkit_report::model::{Meta, Results, RunRecord, ScenarioRef, TimeBase};
use serde_json::Value;

use crate::{Error, ErrorKind};

/// The scenario kinds of imported results: their records carry only `metrics.*`.
pub const KINDS: &[&str] = &["hyperfine", "criterion"];

/// Where and when the foreign figures were made (the files do not say).
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    /// Scenario name to file them under.
    pub scenario: String,
    /// Commit measured, when known.
    pub commit: Option<String>,
    /// Host name.
    pub host: String,
    /// When measured, RFC 3339 (the file's modification time, so importing
    /// the same file again is recognised).
    pub date: String,
    /// The same instant in Unix seconds.
    pub unix_s: f64,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Input(format!("{}: {what}", path.display())))
}

fn results(origin: &Origin, kind: &str, path: &Path) -> Results {
    Results::new(Meta {
        host_fingerprint: None,
        compiler: None,
        perfkit_version: String::new(),
        git_commit: origin.commit.clone(),
        host: origin.host.clone(),
        date: origin.date.clone(),
        scenario: ScenarioRef {
            expect: None,
            name: origin.scenario.clone(),
            path: path.display().to_string(),
            sha256: String::new(),
            description: format!("imported from {kind}"),
            kind: kind.into(),
        },
        swept: vec![],
        gate: BTreeMap::new(),
        sentinels: BTreeMap::new(),
        plans: Vec::new(),
    })
}

fn record(
    id: usize,
    origin: &Origin,
    config: BTreeMap<String, Value>,
    metrics: BTreeMap<String, f64>,
) -> RunRecord {
    RunRecord {
        hosts: Default::default(),
        config_id: id,
        repeat: 0,
        started_unix_s: Some(origin.unix_s),
        config,
        time_base: TimeBase::Real,
        tx: Default::default(),
        rx: Default::default(),
        integrity: Default::default(),
        link: Default::default(),
        stages: Default::default(),
        device_stages: None,
        device_model: None,
        metrics,
        error: None,
    }
}

/// A hyperfine `--export-json` file.
pub fn hyperfine(path: &Path, text: &str, origin: &Origin) -> Result<Results, Error> {
    let doc: Value = serde_json::from_str(text).map_err(|e| bad(path, e))?;
    let list = doc
        .get("results")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            bad(
                path,
                "no `results` array: not a hyperfine --export-json file",
            )
        })?;
    let mut out = results(origin, "hyperfine", path);
    for (i, r) in list.iter().enumerate() {
        let command = r
            .get("command")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(path, format!("results[{i}] has no `command`")))?;
        let mut config = BTreeMap::from([("command".to_owned(), Value::from(command))]);
        if let Some(Value::Object(p)) = r.get("parameters") {
            for (k, v) in p {
                config.insert(k.clone(), v.clone());
            }
        }
        let metrics: BTreeMap<String, f64> =
            ["mean", "stddev", "median", "min", "max", "user", "system"]
                .iter()
                .filter_map(|k| {
                    let v = r.get(*k)?.as_f64()?;
                    v.is_finite().then(|| (format!("{k}_s"), v))
                })
                .collect();
        if !metrics.contains_key("mean_s") {
            return Err(bad(path, format!("results[{i}] has no numeric `mean`")));
        }
        out.runs.push(record(i, origin, config, metrics));
    }
    Ok(out)
}

/// Criterion `estimates.json` files: `(benchmark id, path, text)` each, the
/// id being the folders between criterion's output folder and `new/`.
pub fn criterion(files: &[(String, &Path, String)], origin: &Origin) -> Result<Results, Error> {
    let first = files.first().map_or(Path::new("criterion"), |(_, p, _)| *p);
    let mut out = results(origin, "criterion", first);
    for (i, (id, path, text)) in files.iter().enumerate() {
        let doc: Value = serde_json::from_str(text).map_err(|e| bad(path, e))?;
        let metrics: BTreeMap<String, f64> = ["mean", "median", "std_dev", "slope"]
            .iter()
            .filter_map(|k| {
                let v = doc.get(*k)?.get("point_estimate")?.as_f64()?;
                v.is_finite().then(|| (format!("{k}_ns"), v))
            })
            .collect();
        if !metrics.contains_key("mean_ns") {
            return Err(bad(
                path,
                "no mean.point_estimate: not a criterion estimates.json",
            ));
        }
        let config = BTreeMap::from([("benchmark".to_owned(), Value::from(id.as_str()))]);
        out.runs.push(record(i, origin, config, metrics));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            scenario: "tools".into(),
            commit: Some("abc".into()),
            host: "h".into(),
            date: "2026-12-01T00:00:00Z".into(),
            unix_s: 1.0,
        }
    }

    // Trimmed from hyperfine 1.18's --export-json with --parameter-scan.
    const HYPERFINE: &str = r#"{"results":[{"command":"sleep 0.1","mean":0.1021,"stddev":0.0011,
      "median":0.102,"user":0.0007,"system":0.0012,"min":0.1005,"max":0.1039,
      "times":[0.1005,0.1039],"exit_codes":[0,0],"parameters":{"n":"1"}},
      {"command":"sleep 0.2","mean":0.2019,"stddev":null,"median":0.2019,"user":0.0,
      "system":0.0,"min":0.2019,"max":0.2019,"times":[0.2019],"exit_codes":[0]}]}"#;

    // Trimmed from criterion 0.5's target/criterion/<id>/new/estimates.json.
    const CRITERION: &str = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,
      "lower_bound":101.2,"upper_bound":103.9},"point_estimate":102.4,"standard_error":0.7},
      "median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":100.1,
      "upper_bound":101.0},"point_estimate":100.6,"standard_error":0.2},
      "median_abs_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":0.5,
      "upper_bound":1.5},"point_estimate":1.0,"standard_error":0.3},"slope":null,
      "std_dev":{"confidence_interval":{"confidence_level":0.95,"lower_bound":2.0,
      "upper_bound":9.1},"point_estimate":6.5,"standard_error":1.8}}"#;

    #[test]
    fn hyperfine_commands_and_parameters_become_configurations() {
        let r = hyperfine(Path::new("h.json"), HYPERFINE, &origin()).unwrap();
        assert_eq!(r.runs.len(), 2);
        assert_eq!(r.runs[0].config["n"], "1");
        assert_eq!(r.runs[0].metrics["mean_s"], 0.1021);
        assert!(
            !r.runs[1].metrics.contains_key("stddev_s"),
            "null is absent"
        );
        assert_eq!(r.meta.scenario.kind, "hyperfine");
        let e = hyperfine(Path::new("h.json"), "{\"x\":1}", &origin()).unwrap_err();
        assert!(e.to_string().starts_with("h.json: no `results`"), "{e}");
    }

    #[test]
    fn criterion_point_estimates_become_metrics() {
        let files = vec![(
            "group/bench".to_owned(),
            Path::new("e.json"),
            CRITERION.to_owned(),
        )];
        let r = criterion(&files, &origin()).unwrap();
        assert_eq!(r.runs[0].config["benchmark"], "group/bench");
        assert_eq!(r.runs[0].metrics["mean_ns"], 102.4);
        assert_eq!(r.runs[0].metrics["std_dev_ns"], 6.5);
        assert!(!r.runs[0].metrics.contains_key("slope_ns"));
        let bad = vec![("b".to_owned(), Path::new("e.json"), "[]".to_owned())];
        assert!(criterion(&bad, &origin()).is_err());
    }
}
