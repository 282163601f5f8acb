//! Records grouped into configurations (records with the same `config_id`
//! are repeats of one configuration) and labels for them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::metric;
use crate::model::{Results, RunRecord};
use crate::stats::Sample;

/// One configuration of a results file and its repeats.
#[derive(Debug, Clone)]
pub struct ConfigGroup<'a> {
    /// The configuration's index in the sweep.
    pub config_id: usize,
    /// Its resolved parameters.
    pub config: &'a BTreeMap<String, Value>,
    /// Every record of this configuration, failed ones included.
    pub runs: Vec<&'a RunRecord>,
}

impl<'a> ConfigGroup<'a> {
    /// The records that completed (no `error`).
    pub fn ok_runs(&self) -> impl Iterator<Item = &'a RunRecord> + Clone + '_ {
        self.runs.iter().copied().filter(|r| r.error.is_none())
    }

    /// One sample per completed repeat of `metric`; `None` when no completed
    /// repeat has it.
    pub fn sample(&self, metric_name: &str) -> Option<Sample> {
        let xs: Vec<f64> = self
            .ok_runs()
            .filter_map(|r| metric::value(r, metric_name))
            .collect();
        Sample::new(xs)
    }

    /// Whether every completed repeat has `metric` counted in virtual time.
    pub fn deterministic(&self, metric_name: &str) -> bool {
        let mut any = false;
        for r in self.ok_runs() {
            any = true;
            if !metric::is_deterministic(r, metric_name) {
                return false;
            }
        }
        any
    }

    /// `key=value, ...` over `keys`, or over every key when `keys` is empty.
    pub fn label(&self, keys: &[String]) -> String {
        config_label(self.config, keys)
    }
}

/// Groups the records of a results file by `config_id`, in order of first
/// appearance.
pub fn groups(results: &Results) -> Vec<ConfigGroup<'_>> {
    let mut out: Vec<ConfigGroup<'_>> = Vec::new();
    let mut index: BTreeMap<usize, usize> = BTreeMap::new();
    for r in &results.runs {
        match index.get(&r.config_id) {
            Some(&i) => out[i].runs.push(r),
            None => {
                index.insert(r.config_id, out.len());
                out.push(ConfigGroup {
                    config_id: r.config_id,
                    config: &r.config,
                    runs: vec![r],
                });
            }
        }
    }
    out
}

/// A parameter value as people write it: strings without quotes.
pub fn value_label(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// `key=value, ...` over `keys` (every key when `keys` is empty).
pub fn config_label(config: &BTreeMap<String, Value>, keys: &[String]) -> String {
    config_label_noted(config, keys, &|_, _| None)
}

/// [`config_label`] with a note in brackets after each value that `note`
/// explains: a parameter's "off" value reads `throttle_pps=0 (unthrottled)`.
pub fn config_label_noted(
    config: &BTreeMap<String, Value>,
    keys: &[String],
    note: &dyn Fn(&str, &Value) -> Option<String>,
) -> String {
    // Only the parameters that tell configurations apart: with nothing swept
    // there is one configuration, and listing every parameter says nothing.
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            let Some(v) = config.get(k) else {
                return format!("{k}=-");
            };
            match note(k, v) {
                Some(n) => format!("{k}={} ({n})", value_label(v)),
                None => format!("{k}={}", value_label(v)),
            }
        })
        .collect();
    if parts.is_empty() {
        "all runs".into()
    } else {
        parts.join(", ")
    }
}

/// The parameters that distinguish configurations: `meta.swept` when set,
/// otherwise every key whose value differs between configurations.
pub fn swept_keys(results: &Results) -> Vec<String> {
    if !results.meta.swept.is_empty() {
        return results.meta.swept.clone();
    }
    let mut values: BTreeMap<&String, Vec<&Value>> = BTreeMap::new();
    for r in &results.runs {
        for (k, v) in &r.config {
            let e = values.entry(k).or_default();
            if !e.contains(&v) {
                e.push(v);
            }
        }
    }
    values
        .into_iter()
        .filter(|(k, vs)| {
            vs.len() > 1 && !crate::analysis::NON_IDENTIFYING_KEYS.contains(&k.as_str())
        })
        .map(|(k, _)| k.clone())
        .collect()
}
