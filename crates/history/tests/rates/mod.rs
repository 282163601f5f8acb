//! The history gate's error rates on synthetic series (shared by
//! `tests/changepoint.rs`, which asserts them, and
//! `examples/changepoint_rates.rs`, which prints them).
//!
//! Noise model, from wall-clock CI runners: each commit's value is the
//! median of 3 repeats with 2 % Gaussian noise each, and on 3 % of commits a
//! slow spell (another job on the machine) makes every repeat 3-12 % worse.
//! The metric is lower-is-better (a duration); a regression raises it.

use perfkit_history::changepoint::{judge, Direction, Rule, Shape, Verdict};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One commit's value around `level`.
fn commit_value(rng: &mut ChaCha8Rng, level: f64) -> f64 {
    let slow = if rng.random::<f64>() < 0.03 {
        1.0 + rng.random_range(0.03..0.12)
    } else {
        1.0
    };
    let mut reps: Vec<f64> = (0..3)
        .map(|_| {
            // Box-Muller: the noise need not be fast, only reproducible.
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            level * slow * (1.0 + 0.02 * z)
        })
        .collect();
    reps.sort_by(f64::total_cmp);
    reps[1]
}

/// A series of `n` commits whose level at commit `i` is `level(i)`.
pub fn series(seed: u64, n: usize, level: impl Fn(usize) -> f64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|i| commit_value(&mut rng, level(i))).collect()
}

/// The first commit at or after `from` that the gate fails (or, with
/// `suspects`, also only suspects), judging each commit against the ones
/// before it, with the commit it says the change began at and the shape.
pub fn first_flag(
    s: &[f64],
    from: usize,
    rule: &Rule,
    suspects: bool,
) -> Option<(usize, usize, Shape)> {
    (from..s.len()).find_map(
        |k| match judge(&s[..=k], Direction::LowerIsBetter, rule, false) {
            Verdict::Regressed(f) => Some((k, f.began_at, f.shape)),
            Verdict::Suspect(f) if suspects => Some((k, f.began_at, f.shape)),
            _ => None,
        },
    )
}

fn fails(s: &[f64], rule: &Rule) -> bool {
    matches!(
        judge(s, Direction::LowerIsBetter, rule, false),
        Verdict::Regressed(_)
    )
}

fn suspects(s: &[f64], rule: &Rule) -> bool {
    matches!(
        judge(s, Direction::LowerIsBetter, rule, false),
        Verdict::Suspect(_)
    )
}

/// Measured rates over `n` series each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// +10 % step at commit 120: share reported (suspect or failed) at 120.
    pub step_at_120: f64,
    /// ... failed by 122.
    pub step_by_122: f64,
    /// ... failed by 122 and named as beginning at 120.
    pub step_began_at_120: f64,
    /// 1 %/commit drift over commits 120..135: share failed by 134.
    pub drift_flagged: f64,
    /// ... and named as beginning within 3 commits of 120.
    pub drift_began_near_120: f64,
    /// A/A series of 150 commits judged at the last: share failed.
    pub aa_last: f64,
    /// A/A: share of all gate evaluations (commits 40..150) failed.
    pub aa_per_evaluation: f64,
    /// A/A: share of all gate evaluations only suspected.
    pub aa_suspect_per_evaluation: f64,
}

/// Runs the study; the A/A rate over every evaluation (110 gate runs per
/// series, the slow part) only when `every_evaluation`.
pub fn measure(n: usize, rule: &Rule, every_evaluation: bool) -> Rates {
    let mut r = Rates {
        step_at_120: 0.0,
        step_by_122: 0.0,
        step_began_at_120: 0.0,
        drift_flagged: 0.0,
        drift_began_near_120: 0.0,
        aa_last: 0.0,
        aa_per_evaluation: 0.0,
        aa_suspect_per_evaluation: 0.0,
    };
    let mut evaluations = 0usize;
    let mut alarms = 0usize;
    let mut suspected = 0usize;
    for i in 0..n {
        let seed = i as u64;
        let step = series(seed, 123, |c| if c >= 120 { 110.0 } else { 100.0 });
        if let Some((k, _, _)) = first_flag(&step, 120, rule, true) {
            r.step_at_120 += f64::from(k == 120);
        }
        if let Some((k, began, _)) = first_flag(&step, 120, rule, false) {
            r.step_by_122 += f64::from(k <= 122);
            r.step_began_at_120 += f64::from(k <= 122 && began == 120);
        }
        let drift = series(seed + 1_000_000, 135, |c| {
            100.0 * (1.0 + 0.01 * (c.saturating_sub(119)).min(15) as f64)
        });
        if let Some((_, began, _)) = first_flag(&drift, 120, rule, false) {
            r.drift_flagged += 1.0;
            r.drift_began_near_120 += f64::from(began.abs_diff(120) <= 3);
        }
        let aa = series(seed + 2_000_000, 150, |_| 100.0);
        r.aa_last += f64::from(fails(&aa, rule));
        for k in (40..150).filter(|_| every_evaluation) {
            evaluations += 1;
            alarms += usize::from(fails(&aa[..=k], rule));
            suspected += usize::from(suspects(&aa[..=k], rule));
        }
    }
    let n = n as f64;
    r.step_at_120 /= n;
    r.step_by_122 /= n;
    r.step_began_at_120 /= n;
    r.drift_flagged /= n;
    r.drift_began_near_120 /= n;
    r.aa_last /= n;
    let evaluations = evaluations.max(1) as f64;
    r.aa_per_evaluation = alarms as f64 / evaluations;
    r.aa_suspect_per_evaluation = suspected as f64 / evaluations;
    r
}
