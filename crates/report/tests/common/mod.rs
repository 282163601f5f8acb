//! Synthetic results files for tests and benches: a sweep with numeric and
//! categorical parameters, seeded noise, per-stage timings and folded stacks.
#![allow(dead_code)]

use std::collections::BTreeMap;

use perfkit_report::model::{
    Folded, Integrity, LinkStats, Meta, Results, RunRecord, ScenarioRef, Side, Stage, Stages,
    TimeBase,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Swept parameters and their values.
    pub params: Vec<(String, Vec<Value>)>,
    /// Runs per configuration.
    pub runs: u32,
    /// Stages per record.
    pub stages: usize,
    /// Relative noise (coefficient of variation) of wall-clock figures.
    pub noise: f64,
    /// Multiplies every duration: 1.25 is a 25 % slowdown.
    pub slowdown: f64,
    /// Virtual-time records (deterministic: noise is ignored).
    pub virtual_time: bool,
    /// RNG seed.
    pub seed: u64,
    /// Add device-side stages.
    pub device: bool,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            params: vec![
                (
                    "block_size".into(),
                    vec![json!(64), json!(256), json!(1024), json!(4096)],
                ),
                ("framing".into(), vec![json!("cobs"), json!("slip")]),
            ],
            runs: 5,
            stages: 4,
            noise: 0.03,
            slowdown: 1.0,
            virtual_time: false,
            seed: 1,
            device: false,
        }
    }
}

impl Spec {
    /// The bench's shape: 3 swept parameters (10 x 4 x 5 = 200
    /// configurations), 5 repeats = 1,000 records, 10 stages each.
    pub fn thousand() -> Spec {
        Spec {
            params: vec![
                (
                    "heap_size".into(),
                    (0..10).map(|i| json!(256u64 << i)).collect(),
                ),
                (
                    "batch".into(),
                    vec![json!(1), json!(4), json!(16), json!(64)],
                ),
                (
                    "impl".into(),
                    vec![
                        json!("perfkit"),
                        json!("spead2"),
                        json!("naive"),
                        json!("mmsg"),
                        json!("ring"),
                    ],
                ),
            ],
            runs: 5,
            stages: 10,
            ..Spec::default()
        }
    }
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Every combination of the parameters, first parameter slowest.
fn combinations(params: &[(String, Vec<Value>)]) -> Vec<BTreeMap<String, Value>> {
    let mut out = vec![BTreeMap::new()];
    for (k, vs) in params {
        let mut next = Vec::new();
        for c in &out {
            for v in vs {
                let mut c = c.clone();
                c.insert(k.clone(), v.clone());
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// Generates a results file.
pub fn synthetic(spec: &Spec) -> Results {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut results = Results::new(Meta {
        perfkit_version: "0.1.0".into(),
        git_commit: Some("0123456789abcdef".into()),
        host: "testhost".into(),
        host_fingerprint: None,
        compiler: None,
        date: "2026-11-21T12:00:00Z".into(),
        scenario: ScenarioRef {
            name: "synthetic-sweep".into(),
            path: "scenarios/synthetic.toml".into(),
            sha256: "ab".repeat(32),
            description: "generated <b>sweep</b> & friends".into(),
            kind: "transfer".into(),
            expect: None,
        },
        swept: spec.params.iter().map(|(k, _)| k.clone()).collect(),
        gate: BTreeMap::new(),
        sentinels: BTreeMap::new(),
        plans: Vec::new(),
    });
    for (id, mut config) in combinations(&spec.params).into_iter().enumerate() {
        config.insert("runs".into(), json!(spec.runs));
        // A deterministic "true" cost per configuration.
        let size = config
            .values()
            .filter_map(|v| v.as_f64())
            .next()
            .unwrap_or(1024.0);
        let cat_factor = 1.0 + 0.15 * (id % 3) as f64;
        let blocks = 1000u64;
        let bytes = (blocks as f64 * size) as u64;
        let base_seconds = 0.002 + bytes as f64 / 80e6 * cat_factor;
        for repeat in 0..spec.runs {
            let jitter = if spec.virtual_time {
                1.0
            } else {
                (1.0 + spec.noise * normal(&mut rng)).max(0.5)
            };
            let secs = base_seconds * spec.slowdown * jitter;
            let tx = Side::new(secs, blocks, bytes);
            let rx = Side::new(secs * 1.01, blocks, bytes);
            let names: Vec<String> = (0..spec.stages)
                .map(|i| match i {
                    0 => "sender::send".to_string(),
                    1 => "crc16".to_string(),
                    2 => "framing::encode".to_string(),
                    3 => "receiver::store".to_string(),
                    i => format!("stage{i}"),
                })
                .collect();
            let total_ns = secs * 1e9;
            let sites: Vec<Stage> = names
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let cum = (total_ns / (i as f64 + 2.0)) as u64;
                    let calls = blocks;
                    let mean = cum / calls.max(1);
                    Stage {
                        name: n.clone(),
                        calls,
                        min_ns: mean / 2,
                        max_ns: mean * 8,
                        cum_ns: cum,
                        p50_ns: mean,
                        p90_ns: mean * 2,
                        p99_ns: mean * 3,
                        p999_ns: mean * 5,
                        bytes: (i == 1).then_some(bytes),
                        tmean_ns: None,
                        cum_cycles: None,
                    }
                })
                .collect();
            let folded: Vec<Folded> = sites
                .iter()
                .enumerate()
                .map(|(i, s)| Folded {
                    stack: if i == 0 {
                        "run;sender::send".to_string()
                    } else {
                        format!("run;sender::send;{}", s.name)
                    },
                    self_ns: s.cum_ns / 2,
                })
                .collect();
            let device_stages = spec.device.then(|| Stages {
                sites: vec![Stage {
                    name: "fw::uart_rx".into(),
                    calls: blocks,
                    min_ns: 1000,
                    max_ns: 5000,
                    cum_ns: blocks * 2000,
                    p50_ns: 2000,
                    p90_ns: 2500,
                    p99_ns: 4000,
                    p999_ns: 4900,
                    bytes: Some(bytes),
                    tmean_ns: None,
                    cum_cycles: Some(blocks * 250_000),
                }],
                folded: vec![Folded {
                    stack: "main;fw::uart_rx".into(),
                    self_ns: blocks * 2000,
                }],
                probe_ns_per_scope: None,
            });
            let mut metrics = BTreeMap::new();
            metrics.insert("mb_per_s".to_string(), bytes as f64 / secs / 1e6);
            results.runs.push(RunRecord {
                config_id: id,
                repeat,
                started_unix_s: None,
                config: config.clone(),
                time_base: if spec.virtual_time {
                    TimeBase::Virtual
                } else {
                    TimeBase::Real
                },
                tx,
                rx,
                integrity: Integrity {
                    ok: true,
                    ..Integrity::default()
                },
                link: LinkStats {
                    wire_bytes: bytes + blocks * 8,
                    utilisation: Some((0.9 / spec.slowdown / jitter).min(1.0)),
                    counters: BTreeMap::new(),
                },
                stages: Stages {
                    sites,
                    folded,
                    probe_ns_per_scope: None,
                },
                device_stages,
                device_model: None,
                metrics,
                hosts: BTreeMap::new(),
                error: None,
            });
        }
    }
    results
}

/// A reference and a candidate `slowdown` times slower (other noise, other
/// commit): the pair comparisons and gates are shown on.
pub fn before_after(slowdown: f64) -> (Results, Results) {
    let a = synthetic(&Spec::default());
    let mut b = synthetic(&Spec {
        slowdown,
        seed: 2,
        ..Spec::default()
    });
    b.meta.git_commit = Some("fedcba9876543210".into());
    (a, b)
}
