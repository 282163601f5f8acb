//! The gate's verdicts and figures on the committed baselines and on
//! synthetic results, pinned as text: any change to how the gate pairs
//! configurations, chooses its statistics or rounds its figures shows up
//! here as a diff against `golden/gate.txt`.

mod common;

use std::path::Path;

use common::{synthetic, Spec};
use perfkit_report::gate::{evaluate, GateConfig};
use perfkit_report::Results;

const UART_SWEEP: &str = include_str!("../../../fixtures/baselines/uart-sweep.json");
const GATE_LOOPBACK: &str = include_str!("../../../fixtures/baselines/gate-loopback.json");
const GOLDEN: &str = include_str!("golden/gate.txt");

fn parse(name: &str, text: &str) -> Results {
    Results::from_json(Path::new(name), text).unwrap()
}

/// Thresholds from flags and the current file's `[gate]` table, as the command does.
fn gate_text(name: &str, base: &Results, cur: &Results, flags: &[&str]) -> String {
    let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    let mut out = format!("== {name}\n");
    let cfg = match GateConfig::from_flags_and_meta(&flags, &cur.meta.gate) {
        Ok(c) => c,
        Err(e) => return format!("{out}error: {e}\n"),
    };
    match evaluate(base, cur, &cfg) {
        Ok(r) => {
            out.push_str(&format!("exit {}\n", r.exit_code()));
            out.push_str(&r.console_table());
            out.push_str(&r.markdown());
            // Full precision, beyond what the tables round to.
            for row in &r.rows {
                let c = row.change;
                out.push_str(&format!(
                    "{} | {} | {:?} {:?} | {:?} [{:?}, {:?}] | paired {} | {}\n",
                    row.metric,
                    row.config,
                    row.baseline,
                    row.current,
                    c.estimate,
                    c.lo,
                    c.hi,
                    row.paired,
                    row.verdict
                ));
            }
        }
        Err(e) => out.push_str(&format!("exit {}\nerror: {e}\n", e.exit_code())),
    }
    out
}

/// Scales a run's throughput figures (tx and rx) by `k`.
fn scale(r: &mut perfkit_report::model::RunRecord, k: f64) {
    r.tx.bps *= k;
    r.tx.pps *= k;
    r.rx.bps *= k;
    r.rx.pps *= k;
    r.tx.seconds /= k;
    r.rx.seconds /= k;
}

fn all_cases() -> String {
    let sweep = parse("uart-sweep.json", UART_SWEEP);
    let loopback = parse("gate-loopback.json", GATE_LOOPBACK);
    let mut out = String::new();

    // Deterministic sweep: identical, then one figure changed, then reordered.
    out += &gate_text("uart-sweep A/A", &sweep, &sweep, &[]);
    let mut changed = sweep.clone();
    changed.runs[7].rx.bps *= 1.001;
    out += &gate_text("uart-sweep one figure changed", &sweep, &changed, &[]);
    let mut reordered = sweep.clone();
    reordered.runs.reverse();
    out += &gate_text("uart-sweep reordered", &sweep, &reordered, &[]);
    let mut short = sweep.clone();
    short.runs.pop();
    out += &gate_text("uart-sweep configuration missing", &sweep, &short, &[]);
    out += &gate_text("uart-sweep configuration added", &short, &sweep, &[]);

    // Wall-clock loopback, recorded without start times: unpaired.
    out += &gate_text("gate-loopback A/A", &loopback, &loopback, &[]);
    let mut slow = loopback.clone();
    for (i, r) in slow.runs.iter_mut().enumerate() {
        scale(r, 0.5 * (1.0 + 0.01 * (i as f64).sin()));
    }
    out += &gate_text("gate-loopback halved", &loopback, &slow, &[]);
    out += &gate_text(
        "gate-loopback halved, tight and stage thresholds",
        &loopback,
        &slow,
        &["rx.bps=10", "stage.*.p99_ns=50"],
    );
    let mut few = loopback.clone();
    few.runs.truncate(2);
    out += &gate_text("gate-loopback two runs", &loopback, &few, &[]);

    // The same runs interleaved in time: paired.
    let mut base = loopback.clone();
    let mut cand = loopback.clone();
    for (k, (b, c)) in base.runs.iter_mut().zip(&mut cand.runs).enumerate() {
        b.started_unix_s = Some(1.79e9 + 2.0 * k as f64);
        c.started_unix_s = Some(1.79e9 + 2.0 * k as f64 + 1.0);
        scale(c, 0.93 * (1.0 + 0.02 * (k as f64 * 1.7).cos()));
    }
    out += &gate_text(
        "gate-loopback interleaved, 7 % slower",
        &base,
        &cand,
        &["rx.bps=5", "tx.bps=10"],
    );

    // Synthetic sweeps: noise, a slowdown, stage globs, device stages.
    let a = synthetic(&Spec {
        device: true,
        ..Spec::default()
    });
    let b = synthetic(&Spec {
        seed: 4,
        slowdown: 1.25,
        device: true,
        ..Spec::default()
    });
    out += &gate_text(
        "synthetic 25 % slower",
        &a,
        &b,
        &["tx.bps=10", "stage.*.p99_ns=15", "device_stage.*.p99_ns=5"],
    );
    let mut v = synthetic(&Spec {
        virtual_time: true,
        ..Spec::default()
    });
    let vb = v.clone();
    v.runs[3].metrics.insert("mb_per_s".into(), 1.0);
    out += &gate_text(
        "synthetic virtual time, one metric changed",
        &vb,
        &v,
        &["metrics.mb_per_s=1", "stage.crc16.p50_ns=40"],
    );
    out
}

#[test]
fn gate_figures_match_the_recorded_ones() {
    let got = all_cases();
    if got != GOLDEN {
        // The whole text, to refresh golden/gate.txt when a change is intended.
        println!("----- gate golden begin\n{got}----- gate golden end");
    }
    let diff: Vec<(usize, &str, &str)> = GOLDEN
        .lines()
        .zip(got.lines())
        .enumerate()
        .filter(|(_, (w, g))| w != g)
        .map(|(i, (w, g))| (i + 1, w, g))
        .take(5)
        .collect();
    assert!(
        got == GOLDEN,
        "gate output differs from golden/gate.txt ({} vs {} lines); first differences \
         (line, recorded, now): {diff:#?}",
        GOLDEN.lines().count(),
        got.lines().count()
    );
}
