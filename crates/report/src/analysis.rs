//! The one analysis under `compare` and the gate: configurations of several
//! results files paired through an identity index, and per metric of a pair
//! the relative change of the median with its confidence interval.
//!
//! - **Pairing.** A configuration's [`Identity`] is its `config` map without
//!   [`NON_IDENTIFYING_KEYS`]; each input is indexed by identity once (a hash
//!   map, so matching N inputs of n configurations is O(N·n)), and
//!   [`match_configs`] lines every input up against the first.
//! - **Statistics, chosen once** ([`metric_change`]): a metric counted in
//!   virtual time on both sides compares exactly; runs of the two sides
//!   interleaved in time (see [`interleaved`]) are compared pair by pair,
//!   so a slow spell of the machine cancels in each pair's ratio; otherwise
//!   the two sides are independent samples. [`Method`] records which.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value;

use crate::group::ConfigGroup;
use crate::metric;
use crate::stats::{Bootstrap, Change, Sample};

/// Configuration keys that do not define a configuration (how often it
/// ran is not what ran), ignored when matching across files. Note that
/// `repeats` is the stack's block-repeat count, a real parameter; the run
/// count is `runs`.
///
/// `slowdown_ns_per_packet` is the stack's deliberate per-packet busy-wait: it
/// stands in for "the code got slower", so a run with it set is the same
/// configuration, regressed, which is exactly what the gate must be able to
/// judge. `extra_work_per_packet`, its counted twin (deliberate work in one
/// stage), stands in for the same in instruction counts.
pub const NON_IDENTIFYING_KEYS: &[&str] = &[
    "runs",
    "warmup",
    "slowdown_ns_per_packet",
    "extra_work_per_packet",
];

/// Fewer rounds than this are never treated as paired: the same floor under
/// which the gate does not judge a wall-clock metric at all.
pub const MIN_PAIRS: usize = crate::gate::MIN_REPEATS;

/// The identity of a configuration for matching across files: its `config`
/// without [`NON_IDENTIFYING_KEYS`]. Two identities are equal exactly when
/// the two filtered maps are equal as JSON values; unlike
/// [`serde_json::Value`] it can key a hash map.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity(Vec<(String, Canon)>);

impl Identity {
    /// The identity of `config`.
    pub fn of(config: &BTreeMap<String, Value>) -> Identity {
        Identity(
            config
                .iter()
                .filter(|(k, _)| !NON_IDENTIFYING_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), Canon::of(v)))
                .collect(),
        )
    }
}

/// Two configuration ids of `results` whose configurations have one
/// [`Identity`] (they differ only in [`NON_IDENTIFYING_KEYS`], or a file
/// was edited): matching by identity would take only the first, so a
/// verdict or a history would silently leave the other out.
pub fn shared_identity(results: &crate::Results) -> Option<(usize, usize)> {
    let mut seen: HashMap<Identity, usize> = HashMap::new();
    for r in &results.runs {
        match seen.entry(Identity::of(&r.config)) {
            std::collections::hash_map::Entry::Occupied(e) if *e.get() != r.config_id => {
                return Some((*e.get(), r.config_id));
            }
            std::collections::hash_map::Entry::Occupied(_) => {}
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(r.config_id);
            }
        }
    }
    None
}

/// A JSON value with the equality of [`serde_json::Value`] and a hash:
/// numbers keep serde_json's three kinds (an integer never equals a float),
/// floats compare by value (`-0.0` equals `0.0`; a `Value` holds no NaN),
/// objects by their sorted entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Canon {
    Null,
    Bool(bool),
    PosInt(u64),
    NegInt(i64),
    Float(u64),
    Digits(String),
    Str(String),
    Array(Vec<Canon>),
    Object(Vec<(String, Canon)>),
}

impl Canon {
    fn of(v: &Value) -> Canon {
        match v {
            Value::Null => Canon::Null,
            Value::Bool(b) => Canon::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Canon::PosInt(u),
                (None, Some(i), _) => Canon::NegInt(i),
                // Bits of the value, with both zeros as one.
                (None, None, Some(x)) => Canon::Float(if x == 0.0 { 0 } else { x.to_bits() }),
                // Only with serde_json's arbitrary precision: the digits.
                (None, None, None) => Canon::Digits(n.to_string()),
            },
            Value::String(s) => Canon::Str(s.clone()),
            Value::Array(a) => Canon::Array(a.iter().map(Canon::of).collect()),
            Value::Object(o) => {
                let mut e: Vec<(String, Canon)> =
                    o.iter().map(|(k, v)| (k.clone(), Canon::of(v))).collect();
                e.sort_by(|x, y| x.0.cmp(&y.0));
                Canon::Object(e)
            }
        }
    }
}

/// The configurations of several inputs lined up against the first input's.
#[derive(Debug, Clone)]
pub struct Matching<'g, 'a> {
    /// One row per configuration of the first input, in its order: that
    /// configuration in every input (index 0 is the first input's own),
    /// `None` where an input lacks it.
    pub rows: Vec<Vec<Option<&'g ConfigGroup<'a>>>>,
    /// Configurations of the other inputs that the first lacks, as
    /// `(input, configuration)`, by input and then in file order.
    pub extra: Vec<(usize, &'g ConfigGroup<'a>)>,
}

/// Matches the configurations of every input with the first input's by
/// [`Identity`]. Each identity is computed once and each input indexed once;
/// where one input holds several configurations of the same identity, the
/// first of them is its match.
pub fn match_configs<'g, 'a>(inputs: &'g [Vec<ConfigGroup<'a>>]) -> Matching<'g, 'a> {
    let ids: Vec<Vec<Identity>> = inputs
        .iter()
        .map(|gs| gs.iter().map(|g| Identity::of(g.config)).collect())
        .collect();
    let index: Vec<HashMap<&Identity, usize>> = ids
        .iter()
        .map(|is| {
            let mut m = HashMap::with_capacity(is.len());
            for (i, id) in is.iter().enumerate() {
                m.entry(id).or_insert(i);
            }
            m
        })
        .collect();
    let (Some(first), Some(first_index)) = (inputs.first(), index.first()) else {
        return Matching {
            rows: Vec::new(),
            extra: Vec::new(),
        };
    };
    let rows = first
        .iter()
        .zip(&ids[0])
        .map(|(g0, id)| {
            std::iter::once(Some(g0))
                .chain(
                    inputs
                        .iter()
                        .zip(&index)
                        .skip(1)
                        .map(|(gs, ix)| ix.get(id).map(|&i| &gs[i])),
                )
                .collect()
        })
        .collect();
    let extra = inputs
        .iter()
        .zip(&ids)
        .enumerate()
        .skip(1)
        .flat_map(|(k, (gs, is))| {
            gs.iter()
                .zip(is)
                .filter(|(_, id)| !first_index.contains_key(id))
                .map(move |(g, _)| (k, g))
        })
        .collect();
    Matching { rows, extra }
}

/// How a change was estimated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Counted in virtual time on both sides: compared exactly.
    Exact,
    /// Runs interleaved in time, compared pair by pair: the change is the
    /// median of the per-pair changes.
    Paired {
        /// Number of pairs (rounds).
        pairs: usize,
    },
    /// Two independent samples: the change is that of the medians.
    Unpaired {
        /// Baseline repeats.
        base: usize,
        /// Candidate repeats.
        current: usize,
    },
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::Exact => f.write_str("exact"),
            Method::Paired { pairs } => write!(f, "paired, {pairs} pairs"),
            Method::Unpaired { base, current } => write!(f, "unpaired, {base}/{current} runs"),
        }
    }
}

/// One metric of one configuration, a baseline against a candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricChange {
    /// The baseline's completed repeats.
    pub base: Sample,
    /// The candidate's completed repeats.
    pub current: Sample,
    /// Which statistics gave [`change`](Self::change).
    pub method: Method,
    /// The relative change with its 95 % interval (zero-width when exact);
    /// `None` when the baseline median (or, paired, a baseline run) is zero.
    pub change: Option<Change>,
}

/// The side of a pair that lacks a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// The baseline (reference).
    Base,
    /// The candidate.
    Current,
}

/// The change of `metric` from `base` to `current`, by the one choice of
/// statistics: exact when deterministic on both sides, paired when the runs
/// were [`interleaved`], two independent samples otherwise.
pub fn metric_change(
    base: &ConfigGroup<'_>,
    current: &ConfigGroup<'_>,
    metric_name: &str,
    bs: &Bootstrap,
) -> Result<MetricChange, Missing> {
    let sb = base.sample(metric_name).ok_or(Missing::Base)?;
    let sc = current.sample(metric_name).ok_or(Missing::Current)?;
    let (method, change) = if base.deterministic(metric_name) && current.deterministic(metric_name)
    {
        let mb = sb.median();
        let change = (mb != 0.0).then(|| Change::exact(sc.median() / mb - 1.0));
        (Method::Exact, change)
    } else if let Some((pb, pc)) = interleaved(base, current, metric_name) {
        let method = Method::Paired { pairs: pb.len() };
        (method, bs.paired_change(&pb, &pc))
    } else {
        let method = Method::Unpaired {
            base: sb.len(),
            current: sc.len(),
        };
        (method, bs.relative_change(&sb, &sc))
    };
    Ok(MetricChange {
        base: sb,
        current: sc,
        method,
        change,
    })
}

/// The values of `metric` as (baseline, candidate) pairs, when the two sides'
/// runs were interleaved in time: every completed run has a start time, both
/// sides have the same number of runs (at least [`MIN_PAIRS`]), and in
/// start order the `i`-th baseline and `i`-th candidate run both come before
/// either run of pair `i + 1`. A baseline recorded at another time never
/// qualifies, and is compared as two independent samples.
pub fn interleaved(
    base: &ConfigGroup<'_>,
    current: &ConfigGroup<'_>,
    metric_name: &str,
) -> Option<(Vec<f64>, Vec<f64>)> {
    let timed = |g: &ConfigGroup<'_>| -> Option<Vec<(f64, f64)>> {
        let mut v = g
            .ok_runs()
            .map(|r| Some((r.started_unix_s?, metric::value(r, metric_name)?)))
            .collect::<Option<Vec<_>>>()?;
        v.sort_by(|x, y| x.0.total_cmp(&y.0));
        Some(v)
    };
    let (tb, tc) = (timed(base)?, timed(current)?);
    if tb.len() != tc.len() || tb.len() < MIN_PAIRS {
        return None;
    }
    let alternate = (1..tb.len()).all(|i| tb[i - 1].0.max(tc[i - 1].0) < tb[i].0.min(tc[i].0));
    alternate.then(|| tb.iter().zip(&tc).map(|(x, y)| (x.1, y.1)).unzip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn group(config: &BTreeMap<String, Value>, id: usize) -> ConfigGroup<'_> {
        ConfigGroup {
            config_id: id,
            config,
            runs: Vec::new(),
        }
    }

    /// Equality of configurations as JSON values, ignoring the same keys:
    /// the definition the index must agree with.
    fn same(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> bool {
        let f = |m: &BTreeMap<String, Value>| -> BTreeMap<String, Value> {
            m.iter()
                .filter(|(k, _)| !NON_IDENTIFYING_KEYS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        f(a) == f(b)
    }

    #[test]
    fn identity_follows_json_equality() {
        let m = |v: Value| -> BTreeMap<String, Value> {
            serde_json::from_value(json!({ "x": v, "runs": 3 })).unwrap()
        };
        let id = |v: Value| Identity::of(&m(v));
        assert_eq!(id(json!(0.0)), id(json!(-0.0)));
        assert_ne!(id(json!(1)), id(json!(1.0)), "an integer is not a float");
        assert_ne!(id(json!(-1)), id(json!(-1.0)));
        assert_ne!(id(json!("1")), id(json!(1)));
        assert_eq!(
            id(json!({"a": 1, "b": [2, null]})),
            id(json!({"b": [2, null], "a": 1}))
        );
        let mut other_runs = m(json!(5));
        other_runs.insert("runs".into(), json!(99));
        other_runs.insert("warmup".into(), json!(1));
        assert_eq!(Identity::of(&other_runs), id(json!(5)));
        let mut extra = m(json!(5));
        extra.insert("repeats".into(), json!(1));
        assert_ne!(Identity::of(&extra), id(json!(5)));
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(json!(null)),
            Just(json!(true)),
            Just(json!(0)),
            Just(json!(1)),
            Just(json!(-1)),
            Just(json!(1.0)),
            Just(json!(0.0)),
            Just(json!(-0.0)),
            Just(json!("a")),
            Just(json!("1")),
            Just(json!([1, "a"])),
            Just(json!({"k": 1})),
        ]
    }

    fn config() -> impl Strategy<Value = BTreeMap<String, Value>> {
        prop::collection::btree_map(
            prop::sample::select(vec!["block_size", "framing", "runs", "warmup"])
                .prop_map(String::from),
            value(),
            0..4,
        )
    }

    proptest! {
        /// Over configurations drawn from a small domain (so that many are
        /// equal, some only up to `runs`/`warmup`, `0.0`/`-0.0`, or not at all
        /// as `1`/`1.0`), the index pairs a configuration of the first input
        /// with one of another input exactly when they are equal as JSON
        /// without the non-identifying keys, lists as extra exactly the ones
        /// the first lacks, and finds the same partners in any input order.
        #[test]
        fn index_pairs_exactly_equal_identities(
            a in prop::collection::vec(config(), 0..12),
            b in prop::collection::vec(config(), 0..12),
            seed in any::<u64>(),
        ) {
            let ga: Vec<ConfigGroup<'_>> = a.iter().enumerate().map(|(i, c)| group(c, i)).collect();
            let gb: Vec<ConfigGroup<'_>> = b.iter().enumerate().map(|(i, c)| group(c, i)).collect();
            let inputs = [ga, gb];
            let m = match_configs(&inputs);
            prop_assert_eq!(m.rows.len(), a.len());
            for (row, ca) in m.rows.iter().zip(&a) {
                prop_assert_eq!(row.len(), 2);
                prop_assert!(row[0].is_some_and(|g| std::ptr::eq(g.config, ca)));
                // The partner is the first equal configuration of the other input.
                let want = b.iter().position(|cb| same(ca, cb));
                prop_assert_eq!(row[1].map(|g| g.config_id), want);
            }
            let extra: Vec<usize> = m.extra.iter().map(|(k, g)| { assert_eq!(*k, 1); g.config_id }).collect();
            let want: Vec<usize> = (0..b.len()).filter(|&j| !a.iter().any(|ca| same(ca, &b[j]))).collect();
            prop_assert_eq!(extra, want);

            // Shuffled inputs: every configuration keeps a partner of the same
            // identity, or none, and the same ones are extra.
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (mut ra, mut rb) = (a.clone(), b.clone());
            ra.shuffle(&mut rng);
            rb.shuffle(&mut rng);
            let rga: Vec<ConfigGroup<'_>> = ra.iter().enumerate().map(|(i, c)| group(c, i)).collect();
            let rgb: Vec<ConfigGroup<'_>> = rb.iter().enumerate().map(|(i, c)| group(c, i)).collect();
            let rinputs = [rga, rgb];
            let rm = match_configs(&rinputs);
            let matched = |m: &Matching<'_, '_>| -> Vec<String> {
                let mut v: Vec<String> = m.rows.iter().map(|r| {
                    let a = Identity::of(r[0].map(|g| g.config).unwrap());
                    if let Some(b) = r[1] {
                        assert_eq!(Identity::of(b.config), a);
                    }
                    format!("{a:?} {}", r[1].is_some())
                }).collect();
                v.sort();
                v
            };
            let extras = |m: &Matching<'_, '_>| -> Vec<String> {
                let mut v: Vec<String> = m.extra.iter().map(|(_, g)| format!("{:?}", Identity::of(g.config))).collect();
                v.sort();
                v
            };
            prop_assert_eq!(extras(&m), extras(&rm));
            prop_assert_eq!(matched(&m), matched(&rm));
        }
    }

    #[test]
    fn three_inputs_line_up_against_the_first() {
        let cfg = |x: i64| -> BTreeMap<String, Value> {
            serde_json::from_value(json!({ "x": x })).unwrap()
        };
        let (c1, c2, c3) = (cfg(1), cfg(2), cfg(3));
        let inputs = [
            vec![group(&c1, 0), group(&c2, 1)],
            vec![group(&c2, 0), group(&c1, 1)],
            vec![group(&c3, 0), group(&c1, 1)],
        ];
        let m = match_configs(&inputs);
        let ids: Vec<Vec<Option<usize>>> = m
            .rows
            .iter()
            .map(|r| r.iter().map(|g| g.map(|g| g.config_id)).collect())
            .collect();
        assert_eq!(ids, [[Some(0), Some(1), Some(1)], [Some(1), Some(0), None]]);
        assert_eq!(m.extra.len(), 1);
        assert_eq!((m.extra[0].0, m.extra[0].1.config_id), (2, 0));
        assert!(match_configs(&[]).rows.is_empty());
    }
}
