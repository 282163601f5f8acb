//! Statistics over repeats: medians, ranges and a bootstrap confidence
//! interval for the relative change of a median.
//!
//! Each repeat is a separate run and counts as one sample; the in-process
//! iterations inside a run are never samples (they are not independent: they
//! share caches, frequency state and the neighbours' noise). With the handful
//! of repeats a scenario affords, the median is the robust centre and the
//! percentile bootstrap the honest interval: it needs no normality, and with
//! few repeats it is wide, which is the point.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A non-empty set of finite samples (one per repeat).
///
/// The constructor enforces the invariant so the statistics below have no
/// defensive branches.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample(Vec<f64>);

impl Sample {
    /// `None` when `xs` is empty or holds a NaN or infinity.
    pub fn new(xs: Vec<f64>) -> Option<Sample> {
        if xs.is_empty() || xs.iter().any(|x| !x.is_finite()) {
            None
        } else {
            Some(Sample(xs))
        }
    }
    /// The samples.
    pub fn values(&self) -> &[f64] {
        &self.0
    }
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Always false (kept for clippy's `len_without_is_empty`).
    pub fn is_empty(&self) -> bool {
        false
    }
    /// The median (mean of the two middle values for an even count).
    pub fn median(&self) -> f64 {
        let mut v = self.0.clone();
        median_in_place(&mut v)
    }
    /// Smallest sample.
    pub fn min(&self) -> f64 {
        self.0.iter().copied().fold(f64::INFINITY, f64::min)
    }
    /// Largest sample.
    pub fn max(&self) -> f64 {
        self.0.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }
    /// Whether every sample is the same value (within a relative `tol`).
    pub fn is_constant(&self, tol: f64) -> bool {
        let (lo, hi) = (self.min(), self.max());
        hi - lo <= tol * lo.abs().max(hi.abs()).max(f64::MIN_POSITIVE)
    }
}

/// Median of a non-empty slice of finite numbers, reordering it.
fn median_in_place(v: &mut [f64]) -> f64 {
    let n = v.len();
    let mid = n / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    let m = *m;
    if n % 2 == 1 {
        m
    } else {
        // The lower middle is the largest of the left part.
        let lower = v[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Halved first: the same value as (lower + m) / 2 (halving is exact
        // in binary), without overflowing for values past f64::MAX / 2.
        lower / 2.0 + m / 2.0
    }
}

/// Relative change of the median from a baseline to a candidate, with a
/// confidence interval. `0.05` means the candidate's median is 5 % above the
/// baseline's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    /// `median(current) / median(baseline) - 1`.
    pub estimate: f64,
    /// Lower end of the confidence interval.
    pub lo: f64,
    /// Upper end of the confidence interval.
    pub hi: f64,
}

impl Change {
    /// A change known exactly (deterministic metrics): a zero-width interval.
    pub fn exact(estimate: f64) -> Change {
        Change {
            estimate,
            lo: estimate,
            hi: estimate,
        }
    }
    /// Whether the interval excludes zero.
    pub fn excludes_zero(&self) -> bool {
        self.lo > 0.0 || self.hi < 0.0
    }
    /// Half the width of the interval: the resolution these samples give.
    pub fn half_width(&self) -> f64 {
        (self.hi - self.lo) / 2.0
    }
}

/// Settings of the bootstrap.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Number of resamples (10,000 by default).
    pub resamples: usize,
    /// Two-sided confidence level (0.95 by default).
    pub confidence: f64,
    /// RNG seed: the same data always gives the same interval.
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Bootstrap {
            resamples: 10_000,
            confidence: 0.95,
            seed: 0x0070_6572_666b_6974,
        }
    }
}

impl Bootstrap {
    /// Percentile-bootstrap interval for `median(cur)/median(base) - 1`:
    /// each resample draws `base.len()` baseline repeats and `cur.len()`
    /// candidate repeats with replacement. `None` when the baseline median
    /// is zero (no relative change exists) or negative (a change relative
    /// to it would read upside down: -10 against -5 is +100 %). A resample
    /// whose baseline median reads 0 counts as a change without bound.
    pub fn relative_change(&self, base: &Sample, cur: &Sample) -> Option<Change> {
        let mb = base.median();
        if mb <= 0.0 {
            return None;
        }
        let estimate = cur.median() / mb - 1.0;
        let mut bs = base.0.clone();
        bs.sort_unstable_by(f64::total_cmp);
        let mut cs = cur.0.clone();
        cs.sort_unstable_by(f64::total_cmp);
        // The resampling pattern (which ranks form each resample's median)
        // depends only on the sample sizes and the seed, so it is drawn
        // once and reused for every metric of the same shape.
        let plan = plan(bs.len(), cs.len(), self.resamples.max(1), self.seed);
        let mut ratios = Vec::with_capacity(plan.len());
        for &[bl, bh, cl, ch] in plan.iter() {
            ratios.push(ratio(mid(&cs, cl, ch), mid(&bs, bl, bh)));
        }
        self.interval(estimate, ratios)
    }

    /// Percentile-bootstrap interval for the median of per-pair changes
    /// `cur[i] / base[i] - 1`, for runs measured in interleaved pairs (the
    /// baseline's run `i` right next to the candidate's run `i`). Each
    /// resample draws whole pairs with replacement, so a slow spell of the
    /// machine that lasts longer than a pair slows both of its runs and
    /// cancels in the ratio instead of widening the interval. `None` when the
    /// sides differ in length, are empty, or a baseline value is zero.
    pub fn paired_change(&self, base: &[f64], cur: &[f64]) -> Option<Change> {
        if base.len() != cur.len() || base.is_empty() {
            return None;
        }
        let mut r: Vec<f64> = base.iter().zip(cur).map(|(&b, &c)| ratio(c, b)).collect();
        let estimate = median_in_place(&mut r);
        if !estimate.is_finite() {
            return None;
        }
        r.sort_unstable_by(f64::total_cmp);
        let n = r.len();
        // The same resampling plan as the unpaired case; only the first
        // sample's ranks are used, the pairs being one sample.
        let plan = plan(n, n, self.resamples.max(1), self.seed);
        let changes = plan.iter().map(|&[lo, hi, _, _]| mid(&r, lo, hi)).collect();
        self.interval(estimate, changes)
    }

    /// The percentile interval of bootstrap replicates around `estimate`.
    fn interval(&self, estimate: f64, mut ratios: Vec<f64>) -> Option<Change> {
        if ratios.is_empty() {
            return None;
        }
        let alpha = (1.0 - self.confidence.clamp(0.0, 1.0)) / 2.0;
        let last = ratios.len() - 1;
        let rank = |q: f64| ((q * last as f64).round() as usize).min(last);
        let (i_lo, i_hi) = (rank(alpha), rank(1.0 - alpha));
        // Two selections instead of a sort; the second only right of the first.
        let (_, lo, right) = ratios.select_nth_unstable_by(i_lo, f64::total_cmp);
        let lo = *lo;
        let hi = if i_hi > i_lo {
            *right
                .select_nth_unstable_by(i_hi - i_lo - 1, f64::total_cmp)
                .1
        } else {
            lo
        };
        Some(Change {
            estimate,
            lo: lo.min(estimate),
            hi: hi.max(estimate),
        })
    }
}

/// The median of a sorted sample from its middle ranks (equal for odd sizes).
fn mid(sorted: &[f64], lo: u32, hi: u32) -> f64 {
    let (a, b) = (sorted[lo as usize], sorted[hi as usize]);
    a + (b - a) / 2.0
}

/// `cur / base - 1`, where a baseline of 0 or less (a resample of a
/// baseline holding a few zeros, a pair whose baseline run read 0) gives
/// a change without bound in the direction the candidate moved: kept, it
/// widens the interval by as much as it should; left out, it would narrow
/// it.
fn ratio(cur: f64, base: f64) -> f64 {
    if base > 0.0 {
        cur / base - 1.0
    } else if cur > base {
        f64::INFINITY
    } else if cur < base {
        f64::NEG_INFINITY
    } else {
        0.0
    }
}

/// SplitMix64: a tiny, fast generator with good statistical quality, plenty
/// for drawing resample indices (a cryptographic generator here costs more
/// than the rest of the bootstrap together).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The middle ranks of one bootstrap resample of `n` sorted values, drawn as
/// counts per index: no copying or sorting of the resample, which keeps
/// 10,000 resamples per metric cheap enough for a 200-configuration compare.
/// Indices come two per 64-bit draw by multiply-shift; the bias (below
/// n/2^32) is far under the Monte Carlo error.
fn resampled_ranks(n: usize, counts: &mut [u32], rng: &mut SplitMix64) -> (u32, u32) {
    counts.fill(0);
    let pick = |r: u64| ((r * n as u64) >> 32) as usize;
    let mut i = 0;
    while i < n {
        let r = rng.next_u64();
        counts[pick(r & 0xffff_ffff)] += 1;
        i += 1;
        if i < n {
            counts[pick(r >> 32)] += 1;
            i += 1;
        }
    }
    // 0-based ranks of the middle value(s): equal for odd n.
    let (lo_k, hi_k) = ((n - 1) / 2, n / 2);
    let mut seen = 0usize;
    let mut lo = None;
    for (j, &c) in counts.iter().enumerate() {
        seen += c as usize;
        if lo.is_none() && seen > lo_k {
            lo = Some(j as u32);
        }
        if seen > hi_k {
            return (lo.unwrap_or(j as u32), j as u32);
        }
    }
    let last = (n - 1) as u32;
    (last, last)
}

/// Per resample: the (low, high) middle ranks of the baseline's and the
/// candidate's resampled medians, `[b_lo, b_hi, c_lo, c_hi]`.
type Plan = Vec<[u32; 4]>;

/// (baseline size, candidate size, resamples, seed).
type PlanKey = (usize, usize, usize, u64);

thread_local! {
    static PLANS: RefCell<HashMap<PlanKey, Rc<Plan>>> = RefCell::new(HashMap::new());
}

fn plan(nb: usize, nc: usize, resamples: usize, seed: u64) -> Rc<Plan> {
    let key = (nb, nc, resamples, seed);
    if let Some(p) = PLANS.with(|m| m.borrow().get(&key).cloned()) {
        return p;
    }
    let mut rng = SplitMix64(seed);
    let mut counts_b = vec![0u32; nb];
    let mut counts_c = vec![0u32; nc];
    let p: Rc<Plan> = Rc::new(
        (0..resamples)
            .map(|_| {
                let (bl, bh) = resampled_ranks(nb, &mut counts_b, &mut rng);
                let (cl, ch) = resampled_ranks(nc, &mut counts_c, &mut rng);
                [bl, bh, cl, ch]
            })
            .collect(),
    );
    PLANS.with(|m| {
        let mut m = m.borrow_mut();
        // A handful of shapes in practice; bound the memory anyway.
        if m.len() >= 32 {
            m.clear();
        }
        m.insert(key, p.clone());
    });
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr_free::normal;

    /// Box-Muller without pulling in rand_distr.
    mod rand_distr_free {
        use rand::Rng;
        pub fn normal(rng: &mut impl Rng, mean: f64, sd: f64) -> f64 {
            let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
            let u2: f64 = rng.random();
            mean + sd * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        }
    }

    #[test]
    fn medians() {
        assert_eq!(Sample::new(vec![3.0, 1.0, 2.0]).unwrap().median(), 2.0);
        assert_eq!(Sample::new(vec![4.0, 1.0, 3.0, 2.0]).unwrap().median(), 2.5);
        assert!(Sample::new(vec![]).is_none());
        assert!(Sample::new(vec![1.0, f64::NAN]).is_none());
    }

    #[test]
    fn identical_samples_give_zero_width_interval() {
        let s = Sample::new(vec![5.0; 5]).unwrap();
        let c = Bootstrap::default().relative_change(&s, &s).unwrap();
        assert_eq!((c.estimate, c.lo, c.hi), (0.0, 0.0, 0.0));
    }

    #[test]
    fn paired_change_is_the_median_of_pair_changes() {
        let bs = Bootstrap::default();
        // Pairs change by 10 %, 20 % (twice), 30 % and 40 %: the median is 20 %.
        let base = [100.0, 50.0, 200.0, 100.0, 10.0];
        let cur = [110.0, 60.0, 240.0, 130.0, 14.0];
        let c = bs.paired_change(&base, &cur).unwrap();
        assert!((c.estimate - 0.2).abs() < 1e-12, "{c:?}");
        assert!(c.lo >= 0.1 - 1e-12 && c.hi <= 0.4 + 1e-12, "{c:?}");
        assert!(bs.paired_change(&base, &cur[..4]).is_none());
        assert!(bs.paired_change(&[0.0, 1.0], &[1.0, 1.0]).is_none());
        assert!(bs.paired_change(&[], &[]).is_none());
    }

    #[test]
    fn zero_baseline_has_no_relative_change() {
        let z = Sample::new(vec![0.0; 3]).unwrap();
        let one = Sample::new(vec![1.0; 3]).unwrap();
        assert!(Bootstrap::default().relative_change(&z, &one).is_none());
        // A median of 10, but resamples drawing three of the zeros read 0:
        // they are changes without bound, so the interval has no upper
        // bound (they were dropped, which gave [+0 %, +4 %]).
        let some = Sample::new(vec![0.0, 10.0, 10.0, 10.0, 10.0]).unwrap();
        let cur = Sample::new(vec![10.0; 5]).unwrap();
        let c = Bootstrap::default().relative_change(&some, &cur).unwrap();
        assert_eq!(c.estimate, 0.0);
        assert_eq!(c.hi, f64::INFINITY, "{c:?}");
        // One zero in ten: rarely a resample's median, the interval stays
        // finite.
        let mut ten = vec![10.0; 9];
        ten.push(0.0);
        let c = Bootstrap::default()
            .relative_change(
                &Sample::new(ten).unwrap(),
                &Sample::new(vec![10.0; 10]).unwrap(),
            )
            .unwrap();
        assert!(c.hi.is_finite() && c.lo.is_finite(), "{c:?}");
    }

    #[test]
    fn medians_of_huge_values_do_not_overflow() {
        let big = Sample::new(vec![1.7e308; 4]).unwrap();
        assert_eq!(big.median(), 1.7e308);
        let mixed = Sample::new(vec![1.7e308, 1.5e308, -1.7e308, 1.6e308]).unwrap();
        assert_eq!(mixed.median(), 1.55e308);
        let half = Sample::new(vec![0.85e308; 4]).unwrap();
        let c = Bootstrap::default().relative_change(&big, &half).unwrap();
        assert!((c.estimate + 0.5).abs() < 1e-12, "{c:?}");
    }

    /// On synthetic data with 3 % noise and a known 10 % change, the 95 %
    /// interval from 10 repeats per side covers the true change in most
    /// trials (the percentile bootstrap of a median from few samples is a
    /// little liberal; we ask for at least 85 % over 200 seeded trials) and
    /// excludes zero nearly always.
    #[test]
    fn interval_covers_true_change_on_synthetic_data() {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let truth = 0.10;
        let (mut covered, mut detected) = (0, 0);
        let trials = 200;
        let bs = Bootstrap {
            resamples: 2000,
            ..Bootstrap::default()
        };
        for _ in 0..trials {
            let base: Vec<f64> = (0..10).map(|_| normal(&mut rng, 100.0, 3.0)).collect();
            let cur: Vec<f64> = (0..10)
                .map(|_| normal(&mut rng, 100.0 * (1.0 + truth), 3.3))
                .collect();
            let c = bs
                .relative_change(&Sample::new(base).unwrap(), &Sample::new(cur).unwrap())
                .unwrap();
            if c.lo <= truth && truth <= c.hi {
                covered += 1;
            }
            if c.excludes_zero() {
                detected += 1;
            }
        }
        assert!(covered >= trials * 85 / 100, "covered {covered}/{trials}");
        assert!(
            detected >= trials * 98 / 100,
            "detected {detected}/{trials}"
        );
    }

    proptest! {
        /// The estimate always lies inside its interval, and scaling both
        /// samples by the same factor does not change the relative change.
        #[test]
        fn estimate_inside_interval_and_scale_free(
            base in prop::collection::vec(1.0f64..1e6, 1..12),
            cur in prop::collection::vec(1.0f64..1e6, 1..12),
            k in 0.001f64..1000.0,
        ) {
            let bs = Bootstrap { resamples: 200, ..Bootstrap::default() };
            let b = Sample::new(base.clone()).unwrap();
            let c = Sample::new(cur.clone()).unwrap();
            let ch = bs.relative_change(&b, &c).unwrap();
            prop_assert!(ch.lo <= ch.estimate && ch.estimate <= ch.hi);
            let bk = Sample::new(base.iter().map(|x| x * k).collect()).unwrap();
            let ck = Sample::new(cur.iter().map(|x| x * k).collect()).unwrap();
            let chk = bs.relative_change(&bk, &ck).unwrap();
            let tol = 1e-9 * (1.0 + ch.estimate.abs());
            prop_assert!((chk.estimate - ch.estimate).abs() <= tol);
        }
    }
}
