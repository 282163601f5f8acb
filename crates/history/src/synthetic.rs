//! Synthetic results files, for the store's tests, its benchmark and the
//! gate's error-rate study: the shape of a real transfer record (tx, rx,
//! link, two measured stages), 30 figures per record.

use std::collections::BTreeMap;

use perfkit_report::model::{
    Integrity, LinkStats, Meta, Results, RunRecord, ScenarioRef, Side, Stage, Stages, TimeBase,
};

/// Figures per record of [`results`]: tx and rx (5 each), link (2), two
/// stages of 9 columns each.
pub const FIGURES_PER_RECORD: usize = 30;

/// A commit's hash in a synthetic history (40 hex digits).
pub fn commit_hash(i: usize) -> String {
    format!("{i:08x}{:032x}", i as u128 * 0x9e37_79b9_7f4a_7c15)
}

/// A results file of `scenario` at synthetic commit `commit`: `configs`
/// configurations (a swept `block_size`) x `repeats`, each record's rates
/// scaled by `factor(config, repeat)`.
pub fn results(
    scenario: &str,
    commit: usize,
    configs: usize,
    repeats: u32,
    factor: &mut dyn FnMut(usize, u32) -> f64,
) -> Results {
    let mut r = Results::new(Meta {
        host_fingerprint: None,
        compiler: None,
        perfkit_version: "0.1.0".into(),
        git_commit: Some(commit_hash(commit)),
        host: "bench-host".into(),
        date: format!(
            "2026-{:02}-{:02}T{:02}:00:00Z",
            1 + commit / 600 % 12,
            1 + commit / 24 % 25,
            commit % 24
        ),
        scenario: ScenarioRef {
            expect: None,
            name: scenario.into(),
            path: format!("scenarios/{scenario}.toml"),
            sha256: "00".into(),
            description: String::new(),
            kind: "transfer".into(),
        },
        swept: vec!["block_size".into()],
        gate: BTreeMap::new(),
        sentinels: BTreeMap::new(),
        plans: Vec::new(),
    });
    for c in 0..configs {
        for repeat in 0..repeats {
            let f = factor(c, repeat);
            let seconds = 1.0 / f;
            let stage = |name: &str, ns: u64| Stage {
                name: name.into(),
                calls: 2780,
                min_ns: ns / 2,
                max_ns: ns * 4,
                cum_ns: ns * 2780,
                p50_ns: ns,
                p90_ns: ns + ns / 4,
                p99_ns: ns * 2,
                p999_ns: ns * 3,
                bytes: Some(138_840),
                tmean_ns: None,
                cum_cycles: None,
            };
            let ns = (1000.0 / f) as u64 + 1;
            r.runs.push(RunRecord {
                hosts: Default::default(),
                config_id: c,
                repeat,
                started_unix_s: Some(1_790_000_000.0 + commit as f64 * 3600.0 + repeat as f64),
                config: BTreeMap::from([
                    ("block_size".into(), serde_json::json!(16 + c)),
                    ("link".into(), serde_json::json!("loopback")),
                ]),
                time_base: TimeBase::Real,
                tx: Side::new(seconds, 2780, 138_840),
                rx: Side::new(seconds, 695, 34_710),
                integrity: Integrity {
                    ok: true,
                    ..Integrity::default()
                },
                link: LinkStats {
                    wire_bytes: 169_026,
                    utilisation: Some(0.2 * f),
                    counters: BTreeMap::new(),
                },
                stages: Stages {
                    sites: vec![stage("wire::crc16", ns), stage("framing::encode", ns / 2)],
                    folded: vec![],
                    probe_ns_per_scope: None,
                },
                device_stages: None,
                device_model: None,
                metrics: BTreeMap::new(),
                error: None,
            });
        }
    }
    r
}
