//! Metric names shared by the report, `compare` and the gate.
//!
//! A metric is a dotted name read from one run record: `tx.pps`, `tx.bps`,
//! `rx.pps`, `rx.bps`, `tx.seconds`, `rx.seconds`, `link.utilisation`,
//! `metrics.<key>`, `stage.<site>.<field>` and `device_stage.<site>.<field>`
//! where `<field>` is one of `calls`, `min_ns`, `max_ns`, `cum_ns`, `p50_ns`,
//! `p90_ns`, `p99_ns`, `p999_ns`. The site name may itself contain dots: the
//! field is always the last component.

use std::collections::BTreeSet;

use crate::model::{RunRecord, Stage, Stages, TimeBase};

/// Which way is better for a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Rates, utilisation, throughput: a drop is a regression.
    HigherIsBetter,
    /// Durations and stage times: a rise is a regression.
    LowerIsBetter,
}

impl Direction {
    /// The direction of a metric from its name: `seconds`, `*_s` (`mean_s`),
    /// `*_ns`, `*_cycles`, `calls` and `*_busy_fraction` (the same work in
    /// less of a CPU's time) are lower-is-better, everything else (rates,
    /// utilisation, `metrics.*` figures such as `mb_per_s` and `cat_mb_s`,
    /// an amount per second) is higher-is-better.
    pub fn of(metric: &str) -> Direction {
        if is_counted(metric) {
            return Direction::LowerIsBetter;
        }
        let last = metric.rsplit('.').next().unwrap_or(metric);
        if last == "seconds"
            || last.ends_with("_ns")
            || last.ends_with("_cycles")
            || last.ends_with("_seconds")
            || last.ends_with("_s") && !is_rate(last)
            || last == "calls"
            || last.ends_with("_busy_fraction")
        {
            Direction::LowerIsBetter
        } else {
            Direction::HigherIsBetter
        }
    }

    /// `higher is better` / `lower is better`.
    pub fn describe(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher is better",
            Direction::LowerIsBetter => "lower is better",
        }
    }
}

/// Whether a name ending in `_s` is an amount per second (`mb_per_s`,
/// `cat_mb_s`, `iperf3_udp_mb_s`) rather than a time in seconds.
fn is_rate(last: &str) -> bool {
    const AMOUNTS: &[&str] = &[
        "b", "kb", "mb", "gb", "bit", "kbit", "mbit", "gbit", "bytes",
    ];
    last.contains("per_s")
        || last
            .strip_suffix("_s")
            .and_then(|stem| stem.rsplit('_').next())
            .is_some_and(|unit| AMOUNTS.contains(&unit))
}

/// Reads a metric from one record; `None` when the record does not have it.
pub fn value(rec: &RunRecord, metric: &str) -> Option<f64> {
    match metric {
        "tx.pps" => return Some(rec.tx.pps),
        "tx.bps" => return Some(rec.tx.bps),
        "rx.pps" => return Some(rec.rx.pps),
        "rx.bps" => return Some(rec.rx.bps),
        "tx.seconds" => return Some(rec.tx.seconds),
        "rx.seconds" => return Some(rec.rx.seconds),
        "link.utilisation" => return rec.link.utilisation,
        "link.wire_bytes" => return Some(rec.link.wire_bytes as f64),
        _ => {}
    }
    if let Some(key) = metric.strip_prefix("metrics.") {
        return rec.metrics.get(key).copied().filter(|x| x.is_finite());
    }
    if let Some(rest) = metric.strip_prefix("stage.") {
        return stage_value(&rec.stages, rest);
    }
    if let Some(rest) = metric.strip_prefix("device_stage.") {
        return stage_value(rec.device_stages.as_ref()?, rest);
    }
    None
}

fn stage_value(stages: &Stages, rest: &str) -> Option<f64> {
    let (site, field) = rest.rsplit_once('.')?;
    let s = stages.sites.iter().find(|s| s.name == site)?;
    let v = s.column(field)?;
    Some(v as f64)
}

/// Whether a metric of this record is deterministic: the record ran in
/// virtual time and the metric is counted in that time. Host-side stage
/// timings (`stage.*`) are always real clock readings, even in a virtual-time
/// run, so they stay noisy.
pub fn is_deterministic(rec: &RunRecord, metric: &str) -> bool {
    is_counted(metric) || rec.time_base == TimeBase::Virtual && !metric.starts_with("stage.")
}

/// Prefixes of counted metrics: instructions under callgrind
/// (`perfkit run --measure instructions`) and emulated device cycles.
pub const COUNTED_PREFIXES: &[&str] = &["metrics.instr.", "metrics.cycles."];

/// Whether `metric` is counted rather than timed (instructions, cycles):
/// the same build gives the same count in any run, so it is deterministic
/// in any record, compared exactly, and fewer is better.
pub fn is_counted(metric: &str) -> bool {
    COUNTED_PREFIXES.iter().any(|p| metric.starts_with(p))
}

/// Whether `metric` names a field this module knows how to read (whether or
/// not a given record has it).
pub fn is_known(metric: &str) -> bool {
    if matches!(
        metric,
        "tx.pps"
            | "tx.bps"
            | "rx.pps"
            | "rx.bps"
            | "tx.seconds"
            | "rx.seconds"
            | "link.utilisation"
            | "link.wire_bytes"
    ) {
        return true;
    }
    if let Some(k) = metric.strip_prefix("metrics.") {
        return !k.is_empty();
    }
    let rest = metric
        .strip_prefix("stage.")
        .or_else(|| metric.strip_prefix("device_stage."));
    match rest.and_then(|r| r.rsplit_once('.')) {
        Some((site, field)) => {
            !site.is_empty() && (Stage::COLUMNS.contains(&field) || field == "cum_cycles")
        }
        None => false,
    }
}

/// The headline metrics present in these records, in display order:
/// tx/rx PPS and BPS, link utilisation where any record has it, then every
/// `metrics.*` key.
pub fn headline<'a>(runs: impl IntoIterator<Item = &'a RunRecord> + Clone) -> Vec<String> {
    let mut out: Vec<String> = ["tx.pps", "tx.bps", "rx.pps", "rx.bps"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if runs
        .clone()
        .into_iter()
        .any(|r| r.link.utilisation.is_some())
    {
        out.push("link.utilisation".into());
    }
    let keys: BTreeSet<&String> = runs.into_iter().flat_map(|r| r.metrics.keys()).collect();
    out.extend(keys.into_iter().map(|k| format!("metrics.{k}")));
    out
}

/// `stage.<site>.<field>` for every host stage seen in these records, in
/// first-seen order.
pub fn stage_metrics<'a>(
    runs: impl IntoIterator<Item = &'a RunRecord>,
    field: &str,
) -> Vec<String> {
    let mut seen = Vec::<String>::new();
    for r in runs {
        for s in &r.stages.sites {
            if !seen.iter().any(|n| n == &s.name) {
                seen.push(s.name.clone());
            }
        }
    }
    seen.into_iter()
        .map(|n| format!("stage.{n}.{field}"))
        .collect()
}

/// A human label with unit for a metric, for axes and tables:
/// `tx.bps` -> `tx throughput (bytes/s)`.
pub fn label(metric: &str) -> String {
    let unit = unit(metric);
    let name = name(metric);
    if unit.is_empty() {
        name
    } else {
        format!("{name} ({unit})")
    }
}

/// A human name for a metric, without its unit: `tx.bps` -> `tx throughput`.
pub fn name(metric: &str) -> String {
    match metric {
        "tx.pps" => "tx rate".to_string(),
        "rx.pps" => "rx rate".to_string(),
        "tx.bps" => "tx throughput".to_string(),
        "rx.bps" => "rx throughput".to_string(),
        "link.utilisation" => "link utilisation".to_string(),
        m => m.to_string(),
    }
}

/// The unit of a metric, for axis labels.
pub fn unit(metric: &str) -> &'static str {
    let last = metric.rsplit('.').next().unwrap_or(metric);
    match last {
        "pps" => "packets/s",
        "bps" => "bytes/s",
        "seconds" => "s",
        "utilisation" => "fraction of link rate",
        "calls" => "calls",
        "wire_bytes" => "bytes",
        "cum_cycles" => "cycles",
        l if l.ends_with("_ns") => "ns",
        "mb_per_s" => "MB/s",
        "gb_per_s" => "GB/s",
        "mbit_per_s" | "mbps" => "Mbit/s",
        "gbit_per_s" | "gbps" => "Gbit/s",
        l if l.ends_with("_per_s") => "per s",
        l if l.ends_with("_bytes") => "bytes",
        _ => "",
    }
}

/// Matches `name` against a pattern where `*` stands for any run of
/// characters (`stage.*.p99_ns`).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directions() {
        assert_eq!(Direction::of("tx.bps"), Direction::HigherIsBetter);
        assert_eq!(Direction::of("link.utilisation"), Direction::HigherIsBetter);
        assert_eq!(Direction::of("metrics.mb_per_s"), Direction::HigherIsBetter);
        assert_eq!(Direction::of("tx.seconds"), Direction::LowerIsBetter);
        // Amounts per second named `*_mb_s` are rates; other `*_s` are times.
        for rate in [
            "cat_mb_s",
            "rx_mb_s",
            "iperf3_udp_mb_s",
            "gb_s",
            "rate_mb_s",
        ] {
            let m = format!("metrics.{rate}");
            assert_eq!(Direction::of(&m), Direction::HigherIsBetter, "{m}");
        }
        for time in ["mean_s", "stddev_s", "rx_lag_s", "timeout_s", "gbs_s"] {
            let m = format!("metrics.{time}");
            assert_eq!(Direction::of(&m), Direction::LowerIsBetter, "{m}");
        }
        assert_eq!(
            Direction::of("metrics.rx_busy_fraction"),
            Direction::LowerIsBetter
        );
        assert_eq!(
            Direction::of("stage.crc16.p99_ns"),
            Direction::LowerIsBetter
        );
        assert_eq!(
            Direction::of("device_stage.a.b.cum_ns"),
            Direction::LowerIsBetter
        );
    }

    #[test]
    fn known_names() {
        assert!(is_known("stage.sender::add_header.p99_ns"));
        assert!(is_known("stage.a.b.p50_ns"));
        assert!(is_known("metrics.mb_per_s"));
        assert!(!is_known("stage.crc16.p42_ns"));
        assert!(!is_known("tx.bogus"));
    }

    #[test]
    fn globs() {
        assert!(glob_match("stage.*.p99_ns", "stage.crc16.p99_ns"));
        assert!(!glob_match("stage.*.p99_ns", "stage.crc16.p50_ns"));
        assert!(glob_match("tx.bps", "tx.bps"));
        assert!(glob_match("*", ""));
    }
}
