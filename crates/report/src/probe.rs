//! The probe's own cost, per stage: what share of a stage's measured time
//! could be perfkit's measuring rather than the stage's work.
//!
//! Each record's stages carry the calibrated cost of one empty measured
//! scope nested in another (`probe_ns_per_scope`, host and device apart).
//! A stage's measured time holds, per call, part of its own scope (the
//! clock reads either side of the body) and the whole scope of every
//! measured call nested inside it, at any depth. So the count is
//!
//! `probe = (calls of the stage + calls of every site nested below it) x cost per scope`
//!
//! over the stage's cumulative time, summed over the configuration's
//! completed records. Nesting comes from the folded stacks: a site counts
//! as nested below the stage when it appears after it on some stack, with
//! all its calls (an upper bound when the site is also reached outside the
//! stage). Without stacks (the device sends none) only the stage's own
//! calls count. Counting the stage's own scope whole makes the figure an
//! upper bound (only the clock reads around its body fall inside its own
//! time; the share is capped at 100 %): it is what the probe *could* be,
//! not a correction. perfkit's calibration sites (`perfkit::*`) are the
//! probe itself and are left out.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::group::{self, ConfigGroup};
use crate::html::{escape, ns};
use crate::model::{Results, RunRecord, Stages};
use crate::table;

/// Share above which a stage is flagged.
pub const FLAG_SHARE: f64 = 0.10;

/// One stage's probe share over a set of records.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeShare {
    /// The stage (site name).
    pub name: String,
    /// Calls of the stage itself.
    pub calls: u64,
    /// Calls of the sites nested below it (see the module docs).
    pub nested_calls: u64,
    /// Time the probe could account for, in ns.
    pub probe_ns: f64,
    /// The stage's cumulative time, in ns.
    pub cum_ns: f64,
}

impl ProbeShare {
    /// `probe_ns / cum_ns`, at most 1 (0 for a stage with no time). The
    /// own scope counts whole although only the clock reads around the
    /// body fall inside the stage's time, so a short leaf stage can come
    /// out above 1: the probe could then be all of it.
    pub fn share(&self) -> f64 {
        if self.cum_ns > 0.0 {
            (self.probe_ns / self.cum_ns).min(1.0)
        } else {
            0.0
        }
    }
    /// Whether the share exceeds [`FLAG_SHARE`].
    pub fn flagged(&self) -> bool {
        self.share() > FLAG_SHARE
    }
}

/// Sites nested below each site in the folded stacks (itself excluded),
/// by site name (frames read back with [`perfkit::frame_name`]).
fn nested_sites(st: &Stages) -> BTreeMap<Cow<'_, str>, BTreeSet<Cow<'_, str>>> {
    let mut below: BTreeMap<Cow<'_, str>, BTreeSet<Cow<'_, str>>> = BTreeMap::new();
    for f in &st.folded {
        let frames: Vec<Cow<'_, str>> = f.stack.split(';').map(perfkit::frame_name).collect();
        for (i, outer) in frames.iter().enumerate() {
            let set = below.entry(outer.clone()).or_default();
            set.extend(frames[i + 1..].iter().filter(|n| *n != outer).cloned());
        }
    }
    below
}

/// Probe shares of the stages picked from `runs` (records without a
/// calibrated cost are skipped), in stage-name order.
pub fn shares<'a>(
    runs: impl IntoIterator<Item = &'a RunRecord>,
    pick: fn(&RunRecord) -> Option<&Stages>,
) -> Vec<ProbeShare> {
    let mut out: BTreeMap<String, ProbeShare> = BTreeMap::new();
    for r in runs {
        let Some(st) = pick(r) else { continue };
        let Some(cost) = st.probe_ns_per_scope.filter(|c| c.is_finite() && *c >= 0.0) else {
            continue;
        };
        // Sites sharing a name are one stage, as in the stage tables.
        let mut by_name: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
        for s in &st.sites {
            let e = by_name.entry(s.name.as_str()).or_default();
            e.0 = e.0.saturating_add(s.calls);
            e.1 = e.1.saturating_add(s.cum_ns);
        }
        let below = nested_sites(st);
        // The calibration's own sites are the probe itself.
        let stages = by_name.iter().filter(|(n, _)| !n.starts_with("perfkit::"));
        for (&name, &(calls, cum)) in stages {
            let nested: u64 = below
                .get(name)
                .into_iter()
                .flatten()
                .filter_map(|n| by_name.get(n.as_ref()).map(|c| c.0))
                .fold(0u64, u64::saturating_add);
            let e = out.entry(name.to_owned()).or_insert_with(|| ProbeShare {
                name: name.to_owned(),
                calls: 0,
                nested_calls: 0,
                probe_ns: 0.0,
                cum_ns: 0.0,
            });
            e.calls = e.calls.saturating_add(calls);
            e.nested_calls = e.nested_calls.saturating_add(nested);
            e.probe_ns += calls.saturating_add(nested) as f64 * cost;
            e.cum_ns += cum as f64;
        }
    }
    out.into_values().collect()
}

/// The cost per scope of these records' picked stages: the median, or
/// `None` when none was calibrated.
fn cost<'a>(
    runs: impl IntoIterator<Item = &'a RunRecord>,
    pick: fn(&RunRecord) -> Option<&Stages>,
) -> Option<f64> {
    let mut v: Vec<f64> = runs
        .into_iter()
        .filter_map(|r| pick(r).and_then(|s| s.probe_ns_per_scope))
        .filter(|c| c.is_finite())
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

fn table_for(
    body: &mut String,
    title: &str,
    kind: &str,
    g: &ConfigGroup<'_>,
    pick: fn(&RunRecord) -> Option<&Stages>,
) {
    let rows = shares(g.ok_runs(), pick);
    let Some(per_scope) = cost(g.ok_runs(), pick) else {
        return;
    };
    if rows.is_empty() {
        return;
    }
    let no_stacks = g.ok_runs().filter_map(pick).all(|s| s.folded.is_empty());
    let _ = writeln!(
        body,
        "<table class=\"probe\" data-kind=\"{kind}\"><caption class=\"l\">{}: {} per scope{}</caption>\n<tr><th class=\"l\">stage</th><th>calls</th><th>nested calls</th><th>probe time</th><th>cumulative</th><th>probe share</th></tr>",
        escape(title),
        ns(per_scope),
        if no_stacks { " (no stack paths: own calls only)" } else { "" }
    );
    for r in &rows {
        let flag = if r.flagged() {
            " <span class=\"bad\">over 10&nbsp;%</span>"
        } else {
            ""
        };
        let _ = writeln!(
            body,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}&nbsp;%{flag}</td></tr>",
            escape(&r.name),
            table::num(r.calls as f64),
            table::num(r.nested_calls as f64),
            ns(r.probe_ns),
            ns(r.cum_ns),
            r.share() * 100.0
        );
    }
    body.push_str("</table>\n");
}

/// The report's section: per configuration, host and device tables of
/// each stage's probe share, stages over 10 % flagged. Empty when no
/// record carries a calibrated cost.
pub fn section(inputs: &[(PathBuf, Results)]) -> String {
    let mut body = String::new();
    for (path, results) in inputs {
        let keys = group::swept_keys(results);
        for g in group::groups(results) {
            let name = if inputs.len() > 1 {
                format!("{}: {}", path.display(), g.label(&keys))
            } else {
                g.label(&keys)
            };
            table_for(&mut body, &format!("{name}: host"), "host", &g, |r| {
                Some(&r.stages)
            });
            table_for(&mut body, &format!("{name}: device"), "device", &g, |r| {
                r.device_stages.as_ref()
            });
        }
    }
    if body.is_empty() {
        return body;
    }
    format!(
        "<h2 id=\"probe\">Probe cost</h2>\n<p class=\"lead\">What share of each stage's time could be perfkit's own: (calls of the stage + calls of every site nested below it in the stack paths) &times; the cost of one empty nested scope calibrated at the start of the run, over the stage's cumulative time. An upper bound (the own scope counts whole, though only its clock reads fall inside the stage, so short stages can reach 100&nbsp;%); nothing is subtracted from the figures above. Stages over 10&nbsp;% are flagged.</p>\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Folded, Stage};

    fn site(name: &str, calls: u64, cum_ns: u64) -> Stage {
        Stage {
            name: name.into(),
            calls,
            cum_ns,
            ..Default::default()
        }
    }

    fn record(stages: Stages) -> RunRecord {
        let mut r: RunRecord = serde_json::from_str(
            r#"{"config_id":0,"repeat":0,"config":{},"tx":{"seconds":1,"blocks":0,"bytes":0,"pps":0,"bps":0},
                "rx":{"seconds":1,"blocks":0,"bytes":0,"pps":0,"bps":0},"integrity":{"ok":true},
                "link":{"wire_bytes":0},"stages":{"sites":[]}}"#,
        )
        .expect("a minimal record");
        r.stages = stages;
        r
    }

    #[test]
    fn nested_calls_at_any_depth_count_towards_the_outer_stage() {
        let st = Stages {
            sites: vec![
                site("a", 10, 10_000),
                site("b", 20, 4_000),
                site("c", 5, 500),
                site("d", 100, 10),
                site("perfkit::empty", 64, 100),
            ],
            folded: vec![
                Folded {
                    stack: "a;b".into(),
                    self_ns: 1,
                },
                Folded {
                    stack: "a;b;c".into(),
                    self_ns: 1,
                },
            ],
            probe_ns_per_scope: Some(20.0),
        };
        let rows = shares([&record(st)], |r| Some(&r.stages));
        let a = rows.iter().find(|r| r.name == "a").expect("a");
        assert_eq!((a.calls, a.nested_calls), (10, 25));
        assert!((a.share() - 35.0 * 20.0 / 10_000.0).abs() < 1e-12);
        assert!(!a.flagged());
        let b = rows.iter().find(|r| r.name == "b").expect("b");
        assert_eq!(b.nested_calls, 5);
        assert!((b.share() - 25.0 * 20.0 / 4_000.0).abs() < 1e-12);
        assert!(b.flagged());
        let c = rows.iter().find(|r| r.name == "c").expect("c");
        assert_eq!(c.nested_calls, 0);
        assert!(c.flagged());
        let d = rows.iter().find(|r| r.name == "d").expect("d");
        assert_eq!(d.share(), 1.0);
        assert!(!rows.iter().any(|r| r.name.starts_with("perfkit::")));
    }

    #[test]
    fn escaped_frames_are_matched_to_their_sites_and_old_stacks_drawn() {
        // Frames as perfkit writes them now (`stage 1` is `stage␣1`, `x;y`
        // is `x；y`) and, in an older file, the names themselves.
        let frame = |n: &str| perfkit::folded_frame(n).into_owned();
        for outer in [frame("stage 1"), "stage 1".to_owned()] {
            let st = Stages {
                sites: vec![site("stage 1", 10, 10_000), site("x;y", 5, 500)],
                folded: vec![Folded {
                    stack: format!("{outer};{}", frame("x;y")),
                    self_ns: 7,
                }],
                probe_ns_per_scope: Some(20.0),
            };
            let rows = shares([&record(st.clone())], |r| Some(&r.stages));
            let s = rows.iter().find(|r| r.name == "stage 1").expect("stage 1");
            assert_eq!((s.calls, s.nested_calls), (10, 5), "{outer:?}");
            // One count per line, after the only space.
            assert_eq!(st.folded_text(), "stage\u{2423}1;x\u{ff1b}y 7\n");
        }
    }

    #[test]
    fn records_without_a_calibration_are_left_out() {
        let st = Stages {
            sites: vec![site("a", 10, 10_000)],
            ..Default::default()
        };
        assert!(shares([&record(st)], |r| Some(&r.stages)).is_empty());
    }
}
