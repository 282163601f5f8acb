//! The gate and compare statistics on synthetic results with known noise
//! and known slowdowns.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{synthetic, Spec};
use perfkit_report::analysis::Method;
use perfkit_report::compare::{compare, Verdict};
use perfkit_report::gate::{
    evaluate, update_baseline, Decision, GateConfig, GateErrorKind, GateVerdict, Threshold,
};
use perfkit_report::stats::Bootstrap;
use perfkit_report::Results;

fn one_config(spec: Spec) -> Spec {
    Spec {
        params: vec![("block_size".into(), vec![serde_json::json!(1024)])],
        ..spec
    }
}

fn cfg(flags: &[&str]) -> GateConfig {
    let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    GateConfig::from_flags_and_meta(&flags, &BTreeMap::new()).unwrap()
}

#[test]
fn a_a_passes_and_a_25_percent_slowdown_fails() {
    let base = synthetic(&Spec::default());
    let same = synthetic(&Spec {
        seed: 7,
        ..Spec::default()
    });
    let c = cfg(&["tx.bps=10", "stage.*.p99_ns=10"]);
    let r = evaluate(&base, &same, &c).unwrap();
    assert!(!r.regressed(), "{}", r.console_table());
    assert_eq!(r.exit_code(), 0);
    // 8 configurations x (tx.bps + 4 stages)
    assert_eq!(r.rows.len(), 8 * 5);

    let slow = synthetic(&Spec {
        seed: 9,
        slowdown: 1.25,
        ..Spec::default()
    });
    let r = evaluate(&base, &slow, &c).unwrap();
    assert!(r.regressed());
    assert_eq!(r.exit_code(), 1);
    let table = r.console_table();
    assert!(
        table.contains("REGRESSION") && table.contains("95% CI"),
        "{table}"
    );
    let md = r.markdown();
    assert!(
        md.starts_with("### ❌") && md.contains("| metric |"),
        "{md}"
    );
    // Both directions: throughput down, stage times up.
    assert!(r
        .rows
        .iter()
        .any(|x| x.metric == "tx.bps" && x.verdict == GateVerdict::Regression));
    assert!(r
        .rows
        .iter()
        .any(|x| x.metric == "stage.crc16.p99_ns" && x.verdict == GateVerdict::Regression));
}

#[test]
fn speedup_is_not_a_regression() {
    let base = synthetic(&Spec::default());
    let fast = synthetic(&Spec {
        seed: 3,
        slowdown: 0.7,
        ..Spec::default()
    });
    let r = evaluate(&base, &fast, &cfg(&["rx.bps=10"])).unwrap();
    assert!(!r.regressed());
    assert!(r.rows.iter().all(|x| x.verdict == GateVerdict::Improved));
}

/// The gate's error rates on synthetic data with 3 % noise, 5 repeats and a
/// 10 % threshold: A/A false alarms at most 5 %, a 25 % slowdown caught at
/// least 95 % of the time. (The rates measured on real runs are in docs/gate.md.)
#[test]
fn error_rates_on_synthetic_noise() {
    let mut c = cfg(&["tx.bps=10"]);
    c.bootstrap = Bootstrap {
        resamples: 2000,
        ..Bootstrap::default()
    };
    let trials = 60;
    let (mut false_alarms, mut caught, mut refused) = (0, 0, 0);
    for t in 0..trials {
        let base = synthetic(&one_config(Spec {
            seed: 1000 + t,
            ..Spec::default()
        }));
        let aa = synthetic(&one_config(Spec {
            seed: 2000 + t,
            ..Spec::default()
        }));
        let slow = synthetic(&one_config(Spec {
            seed: 3000 + t,
            slowdown: 1.25,
            ..Spec::default()
        }));
        match evaluate(&base, &aa, &c) {
            Ok(r) if r.regressed() => false_alarms += 1,
            Ok(_) => {}
            Err(_) => refused += 1,
        }
        if evaluate(&base, &slow, &c)
            .map(|r| r.regressed())
            .unwrap_or(false)
        {
            caught += 1;
        }
    }
    assert!(
        false_alarms * 20 <= trials,
        "A/A false alarms {false_alarms}/{trials}"
    );
    assert!(caught * 100 >= trials * 95, "caught {caught}/{trials}");
    assert!(refused * 10 <= trials, "refused {refused}/{trials}");
}

#[test]
fn too_few_runs_is_refused_with_advice() {
    let base = synthetic(&Spec {
        runs: 2,
        ..Spec::default()
    });
    let cur = synthetic(&Spec {
        runs: 2,
        seed: 5,
        ..Spec::default()
    });
    let e = evaluate(&base, &cur, &cfg(&["tx.bps=10"])).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(matches!(e.kind(), GateErrorKind::TooFewRuns { .. }));
    let msg = e.to_string();
    // The advice names the run count, never `repeats` (a transfer
    // parameter: following such advice would change the workload).
    assert!(msg.contains("`runs`") && msg.contains("--runs"), "{msg}");
    assert!(!msg.contains("repeat"), "{msg}");
}

#[test]
fn threshold_below_the_noise_is_refused() {
    // 3 % noise, 5 repeats: a 0.5 % threshold cannot be resolved, even
    // with no change at all (the same runs on both sides).
    let base = synthetic(&one_config(Spec::default()));
    let e = evaluate(&base, &base, &cfg(&["tx.bps=0.5"])).unwrap_err();
    match e.kind() {
        GateErrorKind::TooFewRuns {
            need, resolution, ..
        } => {
            assert!(*need > 5, "suggests more runs: {need}");
            assert!(*resolution > 0.5);
        }
        k => panic!("{k:?}"),
    }
}

#[test]
fn virtual_time_compares_exactly() {
    let v = Spec {
        virtual_time: true,
        ..Spec::default()
    };
    let base = synthetic(&v);
    // Deterministic metrics with a single repeat are still judged.
    let same = synthetic(&v);
    let r = evaluate(&base, &same, &cfg(&["tx.bps=5", "link.utilisation=5"])).unwrap();
    assert!(!r.regressed());
    assert!(r.rows.iter().all(|x| x.deterministic));
    // A 0.1 % change, far inside the 5 % threshold, is still reported.
    let tiny = synthetic(&Spec {
        slowdown: 1.001,
        ..v.clone()
    });
    let r = evaluate(&base, &tiny, &cfg(&["tx.bps=5"])).unwrap();
    assert!(r.regressed());
    assert!(r.rows.iter().all(|x| x.verdict == GateVerdict::Changed));
    assert!(r.console_table().contains("exact"));
    // Host stage timings stay noisy even in virtual-time runs.
    let r = evaluate(&base, &same, &cfg(&["stage.crc16.p99_ns=10"])).unwrap();
    assert!(r.rows.iter().all(|x| !x.deterministic));
}

#[test]
fn single_repeat_virtual_time_is_enough() {
    let v = Spec {
        virtual_time: true,
        runs: 1,
        ..Spec::default()
    };
    let r = evaluate(&synthetic(&v), &synthetic(&v), &cfg(&["rx.pps=1"])).unwrap();
    assert!(!r.regressed());
}

#[test]
fn missing_metric_and_bad_thresholds() {
    let base = synthetic(&Spec::default());
    let e = evaluate(&base, &base, &cfg(&["metrics.heaps_per_s=5"])).unwrap_err();
    assert!(matches!(e.kind(), GateErrorKind::MissingMetric { .. }));
    assert!(e.to_string().contains("metrics.heaps_per_s"), "{e}");
    assert!(e.to_string().contains("tx.bps"), "lists what is there: {e}");

    let e = evaluate(&base, &base, &cfg(&["stage.nosuch*.p99_ns=5"])).unwrap_err();
    assert!(matches!(e.kind(), GateErrorKind::MissingMetric { .. }));

    for bad in ["tx.bps", "tx.bps=abc", "tx.bogus=5", "tx.bps=-3"] {
        let e = Threshold::parse(bad).unwrap_err();
        assert!(
            matches!(e.kind(), GateErrorKind::BadThreshold { .. }),
            "{bad}"
        );
        assert_eq!(e.exit_code(), 2);
    }
    assert_eq!(Threshold::parse("tx.bps=5%").unwrap().percent, 5.0);
    let e = evaluate(&base, &base, &GateConfig::default()).unwrap_err();
    assert!(e.to_string().contains("--threshold"), "{e}");
}

#[test]
fn thresholds_from_scenario_gate_table_and_flags() {
    let mut meta = BTreeMap::new();
    meta.insert("tx.bps".to_string(), 5.0);
    meta.insert("rx.bps".to_string(), 5.0);
    let c = GateConfig::from_flags_and_meta(&["tx.bps=12".to_string()], &meta).unwrap();
    let tx = c.thresholds.iter().find(|t| t.metric == "tx.bps").unwrap();
    assert_eq!(tx.percent, 12.0, "a flag overrides the [gate] table");
    assert_eq!(c.thresholds.len(), 2);
}

#[test]
fn incompatible_baselines() {
    let base = synthetic(&Spec::default());
    let mut other = base.clone();
    other.meta.scenario.name = "other".into();
    let e = evaluate(&base, &other, &cfg(&["tx.bps=5"])).unwrap_err();
    assert!(matches!(e.kind(), GateErrorKind::Incompatible { .. }));
    assert!(e.to_string().contains("--update-baseline"));

    let fewer = synthetic(&Spec {
        params: vec![(
            "block_size".into(),
            vec![serde_json::json!(64), serde_json::json!(256)],
        )],
        ..Spec::default()
    });
    let e = evaluate(&base, &fewer, &cfg(&["tx.bps=5"])).unwrap_err();
    assert!(
        matches!(e.kind(), GateErrorKind::Incompatible { .. }),
        "{e}"
    );
}

#[test]
fn update_baseline_writes_atomically_and_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("baselines/uart.json");
    let cur = synthetic(&Spec::default());
    update_baseline(&cur, &p).unwrap();
    assert_eq!(Results::load(&p).unwrap(), cur);
}

#[test]
fn compare_verdicts_in_both_directions() {
    let a = synthetic(&Spec::default());
    let b = synthetic(&Spec {
        seed: 4,
        slowdown: 1.3,
        ..Spec::default()
    });
    let c = synthetic(&Spec {
        seed: 5,
        ..Spec::default()
    });
    let inputs = vec![
        (PathBuf::from("reports/a/results.json"), a),
        (PathBuf::from("reports/b/results.json"), b),
        (PathBuf::from("reports/c/results.json"), c),
    ];
    let cmp = compare(&inputs);
    assert_eq!(cmp.inputs, ["a", "b", "c"]);
    assert!(cmp.unmatched.is_empty());
    for row in cmp.rows.iter().filter(|r| r.metric == "tx.bps") {
        assert_eq!(row.deltas.len(), 2);
        assert_eq!(row.deltas[0].verdict, Some(Verdict::Slower), "{row:?}");
        let ch = row.deltas[0].change.unwrap();
        // 1/1.3 - 1 = -23 %: the interval covers it.
        assert!(ch.lo <= -0.2308 + 0.06 && ch.hi >= -0.2308 - 0.06, "{ch:?}");
    }
    let stage_rows: Vec<_> = cmp
        .rows
        .iter()
        .filter(|r| r.metric.starts_with("stage."))
        .collect();
    assert!(!stage_rows.is_empty());
    // Lower-is-better metrics: a rise is "slower".
    assert!(stage_rows
        .iter()
        .all(|r| r.deltas[0].verdict == Some(Verdict::Slower)));
    let (faster, slower, same) = cmp.tally();
    assert!(slower > 0 && faster + same > 0);
    let table = cmp.console_table();
    assert!(table.contains("no significant change") || table.contains("faster"));
    assert!(table.contains("slower"));
}

#[test]
fn compare_matches_configurations_by_config_not_id() {
    let a = synthetic(&Spec::default());
    let mut b = synthetic(&Spec::default());
    // Same configurations, run in another order with other ids and repeats.
    b.runs.reverse();
    for r in &mut b.runs {
        r.config_id = 100 - r.config_id;
        r.config.insert("runs".into(), serde_json::json!(99));
    }
    let cmp = compare(&[(PathBuf::from("a.json"), a), (PathBuf::from("b.json"), b)]);
    assert!(cmp.unmatched.is_empty());
    assert!(cmp
        .rows
        .iter()
        .all(|r| r.deltas[0].verdict == Some(Verdict::NoChange)));
}

#[test]
fn block_repeats_is_a_parameter_not_the_run_count() {
    // `repeats` in a config is the stack's block-repeat count; configurations
    // that differ only there must stay apart.
    let spec = Spec {
        params: vec![(
            "repeats".into(),
            vec![
                serde_json::json!(0),
                serde_json::json!(1),
                serde_json::json!(3),
            ],
        )],
        ..Spec::default()
    };
    let a = synthetic(&spec);
    let cmp = compare(&[
        (PathBuf::from("a.json"), a.clone()),
        (PathBuf::from("b.json"), a.clone()),
    ]);
    let configs: std::collections::BTreeSet<&str> =
        cmp.rows.iter().map(|r| r.config.as_str()).collect();
    assert_eq!(configs.len(), 3, "{configs:?}");
    // tx.seconds: the synthetic `repeats=0` moves 0 bytes, so its tx.bps
    // reads 0, which the gate refuses to judge.
    let r = evaluate(&a, &a, &cfg(&["tx.seconds=10"])).unwrap();
    assert_eq!(r.rows.len(), 3);
}

#[test]
fn slowdown_knob_does_not_change_the_configuration() {
    // A candidate run with the deliberate per-packet slowdown is the same
    // configuration, regressed: the gate judges it instead of refusing it.
    let base = synthetic(&one_config(Spec::default()));
    let mut slow = synthetic(&one_config(Spec {
        seed: 9,
        slowdown: 1.25,
        ..Spec::default()
    }));
    for r in &mut slow.runs {
        r.config
            .insert("slowdown_ns_per_packet".into(), serde_json::json!(250));
    }
    let r = evaluate(&base, &slow, &cfg(&["tx.bps=10"])).unwrap();
    assert!(r.regressed(), "{}", r.console_table());
}

/// One configuration, 10 runs, 1 % noise, slowed by `slowdown`.
fn spell_spec(seed: u64, slowdown: f64) -> Spec {
    one_config(Spec {
        runs: 10,
        noise: 0.01,
        seed,
        slowdown,
        ..Spec::default()
    })
}

/// A machine with slow spells (every third round 1.5x slower for both
/// sides); round k of `side` (0 baseline, 1 candidate) starts at
/// t0 + 2k + side when `timed`.
fn spell(r: &mut Results, side: f64, timed: bool) {
    for run in &mut r.runs {
        let k = run.repeat as f64;
        let slow = if run.repeat % 3 == 0 { 1.5 } else { 1.0 };
        run.tx.seconds *= slow;
        run.tx.bps /= slow;
        run.started_unix_s = timed.then_some(1.79e9 + 2.0 * k + side);
    }
}

/// Runs of a baseline and a candidate interleaved in time on a machine with
/// slow spells: the gate pairs them, which cancels the spells; the same
/// values without start times are two independent samples with a far wider
/// interval; a baseline recorded before the candidate is never paired.
#[test]
fn interleaved_runs_are_compared_pair_by_pair() {
    let spec = spell_spec;
    let c = cfg(&["tx.bps=10"]);
    let judge = |b: &Results, k: &Results| {
        let r = evaluate(b, k, &c);
        match r {
            Ok(rep) => (Some(rep.rows[0].clone()), rep.exit_code()),
            Err(e) => (None, e.exit_code()),
        }
    };

    let mut base = synthetic(&spec(1, 1.0));
    spell(&mut base, 0.0, true);
    let mut same = synthetic(&spec(2, 1.0));
    spell(&mut same, 1.0, true);
    let mut slow = synthetic(&spec(3, 1.25));
    spell(&mut slow, 1.0, true);

    let (row, code) = judge(&base, &same);
    let row = row.expect("A/A interleaved is judged");
    assert!(row.paired, "interleaved runs are paired");
    assert_eq!(code, 0, "A/A passes: {row:?}");
    assert!(row.change.half_width() < 0.02, "{row:?}");
    let (row, code) = judge(&base, &slow);
    assert!(row
        .as_ref()
        .is_some_and(|r| r.paired && r.verdict == GateVerdict::Regression));
    assert_eq!(code, 1);
    let paired_width = judge(&base, &same).0.unwrap().change.half_width();

    // The same values with no start times: unpaired, and the spells widen
    // the interval (here past the threshold: refused).
    let mut base_u = synthetic(&spec(1, 1.0));
    spell(&mut base_u, 0.0, false);
    let mut same_u = synthetic(&spec(2, 1.0));
    spell(&mut same_u, 1.0, false);
    let unpaired = Bootstrap::default()
        .relative_change(
            &perfkit_report::stats::Sample::new(base_u.runs.iter().map(|r| r.tx.bps).collect())
                .unwrap(),
            &perfkit_report::stats::Sample::new(same_u.runs.iter().map(|r| r.tx.bps).collect())
                .unwrap(),
        )
        .unwrap();
    assert!(
        unpaired.half_width() > 3.0 * paired_width,
        "unpaired {unpaired:?} vs paired half-width {paired_width}"
    );
    let (row, _) = judge(&base_u, &same_u);
    assert!(row.is_none_or(|r| !r.paired));

    // Baseline entirely before the candidate: not interleaved.
    for run in &mut same.runs {
        run.started_unix_s = run.started_unix_s.map(|t| t + 100.0);
    }
    let (row, _) = judge(&base, &same);
    assert!(row.is_none_or(|r| !r.paired));
}

/// `compare` makes the gate's choice: interleaved runs are compared pair by
/// pair with the very figures the gate gives, and says so in its tables;
/// the same values without start times are two independent samples.
#[test]
fn compare_pairs_interleaved_runs_as_the_gate_does() {
    let mut base = synthetic(&spell_spec(1, 1.0));
    spell(&mut base, 0.0, true);
    let mut slow = synthetic(&spell_spec(3, 1.25));
    spell(&mut slow, 1.0, true);
    let inputs = vec![
        (PathBuf::from("base/results.json"), base.clone()),
        (PathBuf::from("slow/results.json"), slow.clone()),
    ];
    let cmp = compare(&inputs);
    let row = cmp.rows.iter().find(|r| r.metric == "tx.bps").unwrap();
    let d = &row.deltas[0];
    assert_eq!(d.method, Method::Paired { pairs: 10 });
    assert_eq!(d.verdict, Some(Verdict::Slower));
    let gate = evaluate(&base, &slow, &cfg(&["tx.bps=10"])).unwrap();
    assert!(gate.rows[0].paired);
    assert_eq!(d.change, Some(gate.rows[0].change), "the gate's figures");
    assert!(cmp.console_table().contains("paired, 10 pairs"));
    assert!(cmp.markdown().contains("| paired, 10 pairs |"));
    let html = perfkit_report::render_compare(&inputs, &cmp);
    assert!(html.contains("<td class=\"l\">paired, 10 pairs</td>"));

    // Without start times: unpaired, and the spells widen the interval.
    for r in inputs.iter().flat_map(|(_, r)| &r.runs) {
        assert!(r.started_unix_s.is_some());
    }
    let untimed: Vec<(PathBuf, Results)> = inputs
        .into_iter()
        .map(|(p, mut r)| {
            for run in &mut r.runs {
                run.started_unix_s = None;
            }
            (p, r)
        })
        .collect();
    let cmp_u = compare(&untimed);
    let du = &cmp_u
        .rows
        .iter()
        .find(|r| r.metric == "tx.bps")
        .unwrap()
        .deltas[0];
    assert_eq!(
        du.method,
        Method::Unpaired {
            base: 10,
            current: 10
        }
    );
    assert!(du.change.unwrap().half_width() > 3.0 * d.change.unwrap().half_width());
    assert!(cmp_u.console_table().contains("unpaired, 10/10 runs"));
    // Virtual-time figures compare exactly, whatever the start times say.
    let v = synthetic(&Spec {
        virtual_time: true,
        ..spell_spec(1, 1.0)
    });
    let cmp_v = compare(&[
        (PathBuf::from("a.json"), v.clone()),
        (PathBuf::from("b.json"), v),
    ]);
    let rv = cmp_v.rows.iter().find(|r| r.metric == "tx.bps").unwrap();
    assert!(rv.deterministic && rv.deltas[0].method == Method::Exact);
}

/// Interleaved runs (so paired) of one configuration: the candidate is the
/// baseline times `k` with 1 % noise.
fn paired(k: f64, seed: u64) -> (Results, Results) {
    let mut b = synthetic(&spell_spec(seed, 1.0));
    let mut c = synthetic(&spell_spec(seed + 100, k));
    spell(&mut b, 0.0, true);
    spell(&mut c, 1.0, true);
    (b, c)
}

fn sequential(flags: &[&str], last: bool) -> GateConfig {
    GateConfig {
        decision: Decision::Sequential { last },
        ..cfg(flags)
    }
}

/// The sequential rule decides on which side of half the threshold a change
/// lies: a 10 % threshold fails a clear 7 % slowdown that the fixed rule
/// (whole interval beyond 10 %) passes, passes no change, and leaves a
/// change near the half undecided until the last look.
#[test]
fn sequential_looks_judge_against_half_the_threshold() {
    let (b, slow7) = paired(1.07, 11);
    let fixed = evaluate(&b, &slow7, &cfg(&["tx.seconds=10"])).unwrap();
    assert!(!fixed.regressed(), "{}", fixed.console_table());
    let seq = evaluate(&b, &slow7, &sequential(&["tx.seconds=10"], false)).unwrap();
    assert!(seq.regressed(), "{}", seq.console_table());
    assert!(seq
        .console_table()
        .contains("FAIL: 1 of 1 checks regressed or changed in synthetic-sweep: tx.seconds"));

    let (b, same) = paired(1.0, 12);
    let seq = evaluate(&b, &same, &sequential(&["tx.seconds=10"], false)).unwrap();
    assert!(!seq.regressed(), "{}", seq.console_table());

    // 5 %, right at the half: undecided, so measure on; at the last look it
    // passes only if a change of the whole threshold is excluded.
    let (b, half) = paired(1.05, 13);
    let e = evaluate(&b, &half, &sequential(&["tx.seconds=10"], false)).unwrap_err();
    assert!(matches!(e.kind(), GateErrorKind::TooFewRuns { .. }), "{e}");
    let last = evaluate(&b, &half, &sequential(&["tx.seconds=10"], true)).unwrap();
    assert_eq!(last.exit_code(), 0, "{}", last.console_table());
    // Too noisy to exclude the whole threshold even at the last look: refused.
    let mut wide = half.clone();
    for (i, r) in wide.runs.iter_mut().enumerate() {
        r.tx.seconds *= if i % 2 == 0 { 1.12 } else { 0.97 };
    }
    let e = evaluate(&b, &wide, &sequential(&["tx.seconds=10"], true)).unwrap_err();
    assert!(matches!(e.kind(), GateErrorKind::TooFewRuns { .. }), "{e}");
}

/// Every verdict carries its power: per row the smallest worsening the rule
/// would catch at the noise measured, and the least sensitive in the
/// headline; exact rows catch any change.
#[test]
fn every_verdict_states_its_power() {
    let (b, c) = paired(1.0, 14);
    let r = evaluate(&b, &c, &sequential(&["tx.seconds=10"], false)).unwrap();
    let row = &r.rows[0];
    let hw = row.change.half_width();
    let d = row.detectable.unwrap();
    assert!((d - (0.05 + 2.0 * hw)).abs() < 1e-12, "{d} {hw}");
    let text = r.console_table();
    assert!(
        text.contains("power: every check would have caught a worsening of"),
        "{text}"
    );
    assert!(text.contains("least sensitive: tx.seconds"), "{text}");
    assert!(text.contains("catches"), "{text}");
    assert!(r.markdown().contains("power:"), "{}", r.markdown());

    let v = synthetic(&Spec {
        virtual_time: true,
        ..Spec::default()
    });
    let r = evaluate(&v, &v, &cfg(&["tx.bps=1"])).unwrap();
    assert!(r.rows.iter().all(|r| r.detectable == Some(0.0)));
    assert_eq!(r.power(), None, "exact checks need no power statement");
    assert!(r.console_table().contains("any change"));
}

/// A wall-clock baseline from another host gives its verdict with a warning
/// that says it is no evidence; the same host, deterministic metrics, or
/// runs interleaved here carry none.
#[test]
fn wall_clock_baseline_from_another_host_warns() {
    let base = synthetic(&one_config(Spec::default()));
    let mut cur = synthetic(&one_config(Spec {
        seed: 3,
        ..Spec::default()
    }));
    let c = cfg(&["tx.bps=10"]);
    assert!(evaluate(&base, &cur, &c).unwrap().warnings.is_empty());
    let mut base = base;
    base.meta.host_fingerprint = Some("A CPU; 2 cpus".into());
    cur.meta.host_fingerprint = Some("A CPU; 2 cpus".into());
    assert!(evaluate(&base, &cur, &c).unwrap().warnings.is_empty());
    cur.meta.host_fingerprint = Some("Other CPU; 2 cpus".into());
    let r = evaluate(&base, &cur, &c).unwrap();
    assert_eq!(r.warnings.len(), 1, "{}", r.console_table());
    assert!(r.warnings[0].contains("another host"), "{}", r.warnings[0]);
    assert!(r
        .console_table()
        .contains("WARNING: the baseline's wall-clock runs"));
    assert!(r.markdown().contains("WARNING"));

    // An older baseline with no fingerprint cannot show it is this host.
    let mut named = cur.clone();
    named.meta.host = base.meta.host.clone();
    let mut old = base.clone();
    old.meta.host_fingerprint = None;
    let r = evaluate(&old, &named, &c).unwrap();
    assert!(
        r.warnings[0].contains("records no host fingerprint"),
        "{}",
        r.warnings[0]
    );

    let mut v = synthetic(&one_config(Spec {
        virtual_time: true,
        ..Spec::default()
    }));
    let vb = v.clone();
    v.meta.host = "elsewhere".into();
    assert!(evaluate(&vb, &v, &c).unwrap().warnings.is_empty());

    let (b, mut k) = paired(1.0, 15);
    k.meta.host = "elsewhere".into();
    assert!(evaluate(&b, &k, &c).unwrap().warnings.is_empty());
}

/// Without any threshold, a baseline of another scenario is reported as
/// such, not as "nothing to gate".
#[test]
fn scenario_mismatch_is_reported_before_missing_thresholds() {
    let base = synthetic(&Spec::default());
    let mut other = base.clone();
    other.meta.scenario.name = "other".into();
    let e = evaluate(&base, &other, &cfg(&[])).unwrap_err();
    assert!(
        matches!(e.kind(), GateErrorKind::Incompatible { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("scenario `synthetic-sweep`"), "{e}");
    let e = evaluate(&base, &base, &cfg(&[])).unwrap_err();
    assert!(matches!(e.kind(), GateErrorKind::NoThresholds), "{e}");
}

/// Instruction counts belong to one compiler's code: the committed
/// baseline's counts, 5 % more in one stage, fail the exact gate; the same
/// counts from a build by another compiler are not judged, and a warning
/// says so rather than a verdict that would flip with the toolchain.
#[test]
fn instruction_counts_from_another_compiler_are_not_judged() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/baselines/instructions.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut base = Results::from_json(&path, &text).unwrap();
    base.meta.compiler = Some("rustc 1.95.0 (59807616e 2026-04-14)".into());
    let mut cur = base.clone();
    for r in &mut cur.runs {
        if let Some(v) = r.metrics.get_mut("instr.sender::read_block.per_call") {
            *v *= 1.05;
        }
    }
    let c = cfg(&["metrics.instr.*=0.5"]);
    let r = evaluate(&base, &cur, &c).unwrap();
    assert!(r.regressed(), "{}", r.console_table());
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    cur.meta.compiler = Some("rustc 1.99.0 (0123456789 2027-01-01)".into());
    // Every check is an instruction count from another compiler: set
    // aside, nothing would be judged, so the gate refuses rather than pass.
    let e = evaluate(&base, &cur, &c).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("not judged") && msg.contains("rustc 1.99.0") && !msg.contains("  "),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 2);
    // Beside a check that is judged, they are set aside with a warning.
    let mut base2 = base.clone();
    let mut cur2 = cur.clone();
    for r in base2.runs.iter_mut().chain(cur2.runs.iter_mut()) {
        r.time_base = perfkit_report::model::TimeBase::Virtual;
    }
    let c2 = cfg(&["metrics.instr.*=0.5", "link.wire_bytes=1"]);
    let r = evaluate(&base2, &cur2, &c2).unwrap();
    assert!(!r.regressed(), "{}", r.console_table());
    assert!(r
        .rows
        .iter()
        .all(|row| !row.metric.starts_with("metrics.instr.")));
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("not judged") && w.contains("rustc 1.99.0")),
        "{:?}",
        r.warnings
    );
}

/// A baseline whose median reads 0 gives a change without a size, a
/// negative one a change upside down: the gate refuses (exit 2) and never
/// passes the check as it did.
#[test]
fn a_baseline_reading_zero_is_refused_not_passed() {
    let base = synthetic(&one_config(Spec::default()));
    let cur = synthetic(&one_config(Spec {
        seed: 5,
        ..Spec::default()
    }));
    let c = cfg(&["metrics.mb_per_s=5"]);
    for zeros in [5, 3] {
        let mut b = base.clone();
        for r in b.runs.iter_mut().take(zeros) {
            r.metrics.insert("mb_per_s".into(), 0.0);
        }
        let err = evaluate(&b, &cur, &c).unwrap_err();
        assert!(
            matches!(err.kind(), GateErrorKind::BaselineNotPositive { metric, .. } if metric == "metrics.mb_per_s"),
            "{zeros} zero run(s): {err}"
        );
        assert_eq!(err.exit_code(), 2);
    }
    // Negative: -10 against -5 is not "+100 %, improved".
    let (mut b, mut k) = (base.clone(), cur.clone());
    for r in &mut b.runs {
        r.metrics.insert("mb_per_s".into(), -5.0);
    }
    for r in &mut k.runs {
        r.metrics.insert("mb_per_s".into(), -10.0);
    }
    let err = evaluate(&b, &k, &c).unwrap_err();
    assert!(
        matches!(err.kind(), GateErrorKind::BaselineNotPositive { .. }),
        "{err}"
    );
    // Without zeros the same check is judged; so it is with one zero in
    // ten runs (a counter that is sometimes 0): its median is not 0.
    assert!(evaluate(&base, &cur, &c).is_ok());
    let ten = |seed| {
        synthetic(&one_config(Spec {
            runs: 10,
            seed,
            ..Spec::default()
        }))
    };
    let mut b = ten(1);
    b.runs[3].metrics.insert("mb_per_s".into(), 0.0);
    match evaluate(&b, &ten(2), &c) {
        Ok(r) => assert_eq!(r.rows.len(), 1),
        Err(e) => assert!(
            !matches!(e.kind(), GateErrorKind::BaselineNotPositive { .. }),
            "{e}"
        ),
    }
}

/// However many runs the sides have, asking for more never panics.
#[test]
fn ten_thousand_runs_a_side_are_judged() {
    let spec = Spec {
        runs: 10_001,
        noise: 0.2,
        ..one_config(Spec::default())
    };
    let base = synthetic(&spec);
    let cur = synthetic(&Spec { seed: 77, ..spec });
    // A 0 % threshold cannot be resolved by any number of runs.
    let r = evaluate(&base, &cur, &cfg(&["tx.bps=0"]));
    match r {
        Ok(r) => assert_eq!(r.rows.len(), 1),
        Err(e) => assert!(
            matches!(e.kind(), GateErrorKind::TooFewRuns { need, .. } if *need > 10_001),
            "{e}"
        ),
    }
}

/// One or two wall-clock runs a side bound nothing: compare shows the
/// change without a verdict (it said "faster" from one run each).
#[test]
fn compare_gives_no_verdict_from_fewer_than_three_runs() {
    // tx.bps of `runs` runs a side, against the same 50 % slower.
    let delta = |runs| {
        let spec = Spec {
            runs,
            ..one_config(Spec::default())
        };
        let a = synthetic(&spec);
        let b = synthetic(&Spec {
            seed: 4,
            slowdown: 1.5,
            ..spec
        });
        let cmp = compare(&[(PathBuf::from("a.json"), a), (PathBuf::from("b.json"), b)]);
        cmp.rows
            .iter()
            .find(|r| r.metric == "tx.bps")
            .unwrap()
            .deltas[0]
            .clone()
    };
    for runs in [1, 2] {
        let d = delta(runs);
        assert_eq!(d.verdict, None, "{runs} run(s): {d:?}");
        let c = d.change.unwrap();
        assert!(
            c.estimate < -0.2 && c.lo.is_infinite() && c.hi.is_infinite(),
            "{c:?}"
        );
    }
    let d = delta(Spec::default().runs);
    assert_eq!(d.verdict, Some(Verdict::Slower), "{d:?}");
}

/// A configuration named to hide a CI summary (`<!--`) or to colour a
/// terminal: the Markdown summary shows it as text above the table too,
/// and the console prints no escape sequence.
#[test]
fn names_outside_the_table_are_text_too() {
    let spec = Spec {
        params: vec![("framing".into(), vec![serde_json::json!("x<!--\u{1b}[31m")])],
        ..Spec::default()
    };
    let a = synthetic(&spec);
    let r = evaluate(&a, &a, &cfg(&["tx.bps=10"])).unwrap();
    let md = r.markdown();
    assert!(!md.contains("<!--"), "{md}");
    assert!(md.contains("x&lt;!--"), "{md}");
    assert!(!md.contains('\u{1b}') && !r.console_table().contains('\u{1b}'));
}

/// Every candidate run of a configuration failed: the gate says so, not
/// that the metric is missing from results that list it as present.
#[test]
fn failed_runs_are_named_not_called_a_missing_metric() {
    let base = synthetic(&one_config(Spec::default()));
    let mut cur = base.clone();
    for r in &mut cur.runs {
        r.error = Some("link: the peer went away".into());
    }
    let e = evaluate(&base, &cur, &cfg(&["rx.bps=10"])).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("every run of configuration")
            && msg.contains("failed in the results")
            && msg.contains("the peer went away"),
        "{msg}"
    );
    assert_eq!(e.exit_code(), 2);
}

/// An input none of whose runs completed has no figure: compare refuses
/// (exit 2, the gate's words), naming each such input and its first error,
/// instead of printing an empty table.
#[test]
fn compare_refuses_an_input_whose_every_run_failed() {
    let base = synthetic(&one_config(Spec::default()));
    let fail = |r: &Results, why: &str| {
        let mut r = r.clone();
        for x in &mut r.runs {
            x.error = Some(why.into());
        }
        r
    };
    let cmp = compare(&[
        (PathBuf::from("a.json"), base.clone()),
        (
            PathBuf::from("b.json"),
            fail(&base, "link: the peer went away"),
        ),
    ]);
    let e = cmp.refusal().expect("refused");
    assert!(matches!(e.kind(), GateErrorKind::NothingToJudge(_)));
    assert_eq!(e.exit_code(), 2);
    let msg = e.to_string();
    assert!(
        msg.contains("every run failed in b.json (first error: link: the peer went away)")
            && msg.ends_with("so there is nothing to compare")
            && !msg.contains("a.json"),
        "{msg}"
    );

    // Every input that failed is named, each with its own first error; so
    // is one with no runs at all.
    let mut empty = base.clone();
    empty.runs.clear();
    let cmp = compare(&[
        (PathBuf::from("a.json"), fail(&base, "no device")),
        (PathBuf::from("b.json"), fail(&base, "timed out")),
        (PathBuf::from("c.json"), empty),
    ]);
    let msg = cmp.refusal().expect("refused").to_string();
    for want in [
        "every run failed in a.json (first error: no device)",
        "every run failed in b.json (first error: timed out)",
        "c.json holds no run records",
    ] {
        assert!(msg.contains(want), "{want}: {msg}");
    }

    // Completed runs on both sides: nothing refused.
    let cmp = compare(&[
        (PathBuf::from("a.json"), base.clone()),
        (PathBuf::from("b.json"), base),
    ]);
    assert!(cmp.refusal().is_none());
    assert!(cmp.failed.is_empty() && cmp.one_sided.is_empty());
}

/// A stage or metric that one side has and the other lacks cannot be
/// compared, and is listed under the table ("only in a: ...") rather than
/// dropped; so is a configuration whose runs all failed in one input.
#[test]
fn compare_lists_what_only_one_side_has() {
    let spec = Spec {
        params: vec![(
            "block_size".into(),
            vec![serde_json::json!(64), serde_json::json!(256)],
        )],
        ..Spec::default()
    };
    let a = synthetic(&spec);
    let mut b = synthetic(&Spec { seed: 4, ..spec });
    // b renamed a stage everywhere and records a figure a does not, in
    // one configuration.
    for r in &mut b.runs {
        for s in &mut r.stages.sites {
            if s.name == "crc16" {
                s.name = "wire::crc16".into();
            }
        }
        if r.config["block_size"] == 64 {
            r.metrics.insert("cat_mb_s".into(), 900.0);
        }
    }
    let inputs = vec![
        (PathBuf::from("reports/a/results.json"), a.clone()),
        (PathBuf::from("reports/b/results.json"), b.clone()),
    ];
    let cmp = compare(&inputs);
    assert!(cmp.refusal().is_none());
    let lines = cmp.one_sided_lines();
    assert_eq!(
        lines,
        [
            "only in a: stage.crc16.p99_ns (not in b; every configuration)",
            "only in b: metrics.cat_mb_s, stage.wire::crc16.p99_ns (not in a; block_size=64)",
            "only in b: stage.wire::crc16.p99_ns (not in a; block_size=256)",
        ]
        .map(String::from),
        "{lines:#?}"
    );
    let table = cmp.console_table();
    let md = cmp.markdown();
    for l in &lines {
        assert!(table.contains(l.as_str()), "{table}");
        // The CI summary says it too, a list under the table.
        assert!(md.contains(&format!("- {l}\n")), "{md}");
    }
    let html = perfkit_report::render_compare(&inputs, &cmp);
    assert!(
        html.contains("Only in a: stage.crc16.p99_ns (not in b; every configuration)"),
        "the page lists them too"
    );
    assert!(html.contains("Only in b: metrics.cat_mb_s, stage.wire::crc16.p99_ns"));

    // Every run of one configuration failed in b: said, with its error,
    // and its figures are not listed as missing one by one.
    let mut c = a.clone();
    for r in c.runs.iter_mut().filter(|r| r.config["block_size"] == 256) {
        r.error = Some("link: the peer went away".into());
    }
    let inputs = vec![
        (PathBuf::from("reports/a/results.json"), a),
        (PathBuf::from("reports/c/results.json"), c),
    ];
    let cmp = compare(&inputs);
    assert!(cmp.refusal().is_none());
    assert!(cmp.one_sided.is_empty(), "{:?}", cmp.one_sided);
    assert_eq!(
        cmp.failed,
        ["every run of configuration block_size=256 failed in c (first error: link: the peer went away)"]
    );
    assert!(cmp
        .console_table()
        .contains("not compared: every run of configuration block_size=256 failed in c"));
    assert!(perfkit_report::render_compare(&inputs, &cmp)
        .contains("Not compared: every run of configuration block_size=256 failed in c"));
    assert!(cmp
        .markdown()
        .contains("- not compared: every run of configuration block_size=256 failed in c"));
}
