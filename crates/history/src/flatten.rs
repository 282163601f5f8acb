//! A run record's figures as `(metric name, value)` pairs, named as the
//! report and the gate name them (`rx.bps`, `stage.wire::crc16.p99_ns`, see
//! `perfkit_report::metric`), and a metric name split into the store's keys.

use perfkit_report::model::{RunRecord, Side, Stage, Stages};

/// Every figure of a record that the history keeps; `kind` is the
/// scenario's (records imported from other tools carry `metrics.*` only).
pub fn figures(rec: &RunRecord, kind: &str) -> Vec<(String, f64)> {
    let mut out = Vec::with_capacity(16 + 10 * rec.stages.sites.len());
    let own = !crate::foreign::KINDS.contains(&kind);
    if own {
        side(&mut out, "tx", &rec.tx);
        side(&mut out, "rx", &rec.rx);
        out.push(("link.wire_bytes".into(), rec.link.wire_bytes as f64));
        if let Some(u) = rec.link.utilisation {
            out.push(("link.utilisation".into(), u));
        }
    }
    for (k, v) in &rec.metrics {
        out.push((format!("metrics.{k}"), *v));
    }
    if own {
        stages(&mut out, "stage", &rec.stages);
        if let Some(d) = &rec.device_stages {
            stages(&mut out, "device_stage", d);
        }
    }
    // A results file is validated on load, but `metrics.*` may hold
    // anything a kind computed; NaN has no place in a trend.
    out.retain(|(_, v)| v.is_finite());
    out
}

fn side(out: &mut Vec<(String, f64)>, name: &str, s: &Side) {
    out.push((format!("{name}.seconds"), s.seconds));
    out.push((format!("{name}.blocks"), s.blocks as f64));
    out.push((format!("{name}.bytes"), s.bytes as f64));
    out.push((format!("{name}.pps"), s.pps));
    out.push((format!("{name}.bps"), s.bps));
}

fn stages(out: &mut Vec<(String, f64)>, prefix: &str, st: &Stages) {
    // Two call sites may share a name (crc16 on both ends of a transfer);
    // a metric name reads the first, as `perfkit_report::metric::value` does.
    let mut seen = std::collections::HashSet::new();
    for site in st.sites.iter().filter(|s| seen.insert(s.name.as_str())) {
        for col in Stage::COLUMNS.iter().chain(&["bytes", "cum_cycles"]) {
            if let Some(v) = site.column(col) {
                out.push((format!("{prefix}.{}.{col}", site.name), v as f64));
            }
        }
    }
}

/// A metric name's keys: `(side, stage, field)`. Stages are on the `host`
/// or `device` side; the site name may contain dots, the field never does.
pub fn keys(metric: &str) -> (String, String, String) {
    let (head, rest) = metric.split_once('.').unwrap_or((metric, ""));
    match head {
        "stage" | "device_stage" => {
            let (site, field) = rest.rsplit_once('.').unwrap_or((rest, ""));
            let side = if head == "stage" { "host" } else { "device" };
            (side.into(), site.into(), field.into())
        }
        _ => (head.into(), String::new(), rest.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_site_name_twice_gives_its_figures_once() {
        let mut rec = crate::synthetic::results("s", 0, 1, 1, &mut |_, _| 1.0)
            .runs
            .remove(0);
        let first = rec.stages.sites[0].clone();
        let mut twin = first.clone();
        twin.calls += 1;
        rec.stages.sites.push(twin);
        let f = figures(&rec, "transfer");
        let calls: Vec<_> = f
            .iter()
            .filter(|(n, _)| *n == format!("stage.{}.calls", first.name))
            .collect();
        assert_eq!(
            calls,
            [&(format!("stage.{}.calls", first.name), first.calls as f64)]
        );
        assert_eq!(f.len(), crate::synthetic::FIGURES_PER_RECORD);
    }

    #[test]
    fn stage_names_with_dots_keep_the_field_last() {
        assert_eq!(
            keys("stage.a.b::c.p99_ns"),
            ("host".into(), "a.b::c".into(), "p99_ns".into())
        );
        assert_eq!(
            keys("device_stage.crc16.cum_cycles"),
            ("device".into(), "crc16".into(), "cum_cycles".into())
        );
        assert_eq!(keys("rx.bps"), ("rx".into(), String::new(), "bps".into()));
        assert_eq!(
            keys("metrics.mb_per_s"),
            ("metrics".into(), String::new(), "mb_per_s".into())
        );
    }
}
