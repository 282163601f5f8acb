//! Judging the newest point of a series against its recent past.
//!
//! A series is one metric of one scenario, configuration and host class on
//! the base branch, one value per commit (the median of its repeats),
//! oldest first; the last value is the run being judged.
//!
//! # The rule
//! For every split of the recent points into a *head* (the window before
//! the split) and a *tail* (from the split to the newest point, 1 to
//! [`Rule::max_tail`] points), compare the tail's median with the head's:
//!
//! - the scale is the head's MAD (x 1.4826, a robust standard deviation),
//!   so one slow run in the window does not hide a change, and one slow run
//!   in the tail cannot fake one when the tail is longer than one point;
//! - `z = (median(tail) - median(head)) / (scale * sqrt(pi/2) * sqrt(1/m + 1/h))`,
//!   the change over its standard error (the variance of a median of `n`
//!   normal values is `pi/2 * sigma^2 / n`);
//! - a split is a change when `z` in the bad direction exceeds [`Rule::z`]
//!   ([`Rule::z_single`] for a tail of one point, the newest alone, which
//!   is indistinguishable from an outlier unless far out) *and* the relative
//!   change exceeds the metric's threshold, so a statistically clear but
//!   immaterial shift does not fail CI.
//!
//! A sudden step shows up as a short tail with a large `z`; a slow drift as
//! a longer tail whose median has moved past the threshold although no
//! single commit did. The split with the largest `z` is kept, then a ramp
//! (level, then a straight line from some commit) is fitted beside the step
//! and the better fit names the commit where the change began.
//!
//! A deterministic metric (virtual time) has zero scale: any change past
//! the threshold is then a change.
//!
//! Measured error rates on synthetic series are in `tests/changepoint.rs`
//! and `examples/changepoint_rates.rs`.

/// Which way is better (from `perfkit_report::metric::Direction`).
pub use perfkit_report::metric::Direction;

/// The rule's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    /// Commits of history before the judged point that the rule looks at.
    pub window: usize,
    /// Longest tail tried (how far back a change may have begun).
    pub max_tail: usize,
    /// Fewest head points needed to judge at all.
    pub min_head: usize,
    /// `z` a tail of two or more points must exceed.
    pub z: f64,
    /// `z` the newest point alone must exceed.
    pub z_single: f64,
    /// Relative change (percent) in the bad direction that matters.
    pub threshold_pct: f64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            window: 30,
            max_tail: 15,
            min_head: 8,
            z: 4.5,
            z_single: 6.0,
            threshold_pct: 5.0,
        }
    }
}

/// How the change looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// A level shift at one commit.
    Step,
    /// A gradual change over several commits.
    Drift,
}

/// A change found in a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    /// Index (into the judged series) of the first commit of the change.
    pub began_at: usize,
    /// Step or drift.
    pub shape: Shape,
    /// The newest points' median relative to the level before, in percent
    /// (signed: negative is lower).
    pub change_pct: f64,
    /// The change over its standard error.
    pub z: f64,
}

/// The verdict on the newest point of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// Too little history to judge (fewer than [`Rule::min_head`] + 1 points).
    TooShort,
    /// No change past the threshold.
    Steady,
    /// A regression.
    Regressed(Finding),
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Median and robust scale (1.4826 x MAD) of a non-empty slice.
fn location_scale(xs: &[f64]) -> (f64, f64) {
    let mut v = xs.to_vec();
    let m = median(&mut v);
    let mut dev: Vec<f64> = xs.iter().map(|x| (x - m).abs()).collect();
    (m, 1.4826 * median(&mut dev))
}

/// Judges the last value of `series` (oldest first; non-finite values are
/// not expected: the store keeps none).
pub fn judge(series: &[f64], direction: Direction, rule: &Rule) -> Verdict {
    let n = series.len();
    if n < rule.min_head + 1 {
        return Verdict::TooShort;
    }
    let start = n.saturating_sub(rule.window + 1);
    let s = &series[start..];
    let n = s.len();
    let sign = match direction {
        Direction::HigherIsBetter => -1.0,
        Direction::LowerIsBetter => 1.0,
    };
    let mut best: Option<(usize, f64, f64, f64)> = None; // (split, z, head median, change)
    for m in 1..=rule.max_tail.min(n - rule.min_head) {
        let split = n - m;
        let head = &s[..split];
        let (mh, scale) = location_scale(head);
        let mut tail = s[split..].to_vec();
        let mt = median(&mut tail);
        let change = if mh != 0.0 { (mt - mh) / mh.abs() } else { 0.0 };
        if sign * change * 100.0 <= rule.threshold_pct {
            continue;
        }
        let se = scale
            * (std::f64::consts::FRAC_PI_2).sqrt()
            * (1.0 / m as f64 + 1.0 / split as f64).sqrt();
        let z = if se > 0.0 {
            sign * (mt - mh) / se
        } else {
            f64::INFINITY
        };
        let need = if m == 1 { rule.z_single } else { rule.z };
        if z > need && best.is_none_or(|b| z > b.1) {
            best = Some((split, z, mh, change));
        }
    }
    let Some((split, z, level, change)) = best else {
        return Verdict::Steady;
    };
    let (began, shape) = began(s, split, level);
    Verdict::Regressed(Finding {
        began_at: start + began,
        shape,
        change_pct: change * 100.0,
        z,
    })
}

/// Where the change began, and its shape: the step at `split` against the
/// best ramp starting anywhere in the span a ramp could explain, by squared
/// error over the points from the earliest candidate on.
fn began(s: &[f64], split: usize, level: f64) -> (usize, Shape) {
    let n = s.len();
    // A ramp may have begun up to as many points before the step's split
    // as there are after it (the step then sits near the ramp's middle).
    let from = split.saturating_sub(n - split).max(1);
    let step_level = {
        let mut t = s[split..].to_vec();
        median(&mut t)
    };
    let sse = |f: &dyn Fn(usize) -> f64| -> f64 { (from..n).map(|t| (s[t] - f(t)).powi(2)).sum() };
    let step_sse = sse(&|t| if t < split { level } else { step_level });
    let mut best_ramp = (f64::INFINITY, split);
    for b in from..n.saturating_sub(2) {
        // Least squares slope through (b - 1, level): the commit before
        // `b` is the last at the old level.
        let (mut num, mut den) = (0.0, 0.0);
        for (t, y) in s.iter().enumerate().skip(b) {
            let x = (t + 1 - b) as f64;
            num += (y - level) * x;
            den += x * x;
        }
        let slope = num / den;
        let e = sse(&|t| {
            if t < b {
                level
            } else {
                level + slope * (t + 1 - b) as f64
            }
        });
        if e < best_ramp.0 {
            best_ramp = (e, b);
        }
    }
    // The ramp has one more free parameter than the step: ask it to explain
    // clearly more before calling the change a drift.
    if best_ramp.0 < 0.7 * step_sse {
        (best_ramp.1, Shape::Drift)
    } else {
        (split, Shape::Step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_series_flags_any_change_past_the_threshold() {
        let mut s = vec![100.0; 20];
        s.push(94.0);
        let v = judge(&s, Direction::HigherIsBetter, &Rule::default());
        let Verdict::Regressed(f) = v else {
            panic!("{v:?}")
        };
        assert_eq!(f.began_at, 20);
        assert_eq!(f.shape, Shape::Step);
        s.pop();
        s.push(96.0);
        assert_eq!(
            judge(&s, Direction::HigherIsBetter, &Rule::default()),
            Verdict::Steady,
            "4 % is inside a 5 % threshold"
        );
    }

    #[test]
    fn an_improvement_is_not_a_regression() {
        let mut s = vec![100.0; 20];
        s.push(150.0);
        assert_eq!(
            judge(&s, Direction::HigherIsBetter, &Rule::default()),
            Verdict::Steady
        );
        assert!(matches!(
            judge(&s, Direction::LowerIsBetter, &Rule::default()),
            Verdict::Regressed(_)
        ));
    }

    #[test]
    fn too_short_a_history_is_not_judged() {
        assert_eq!(
            judge(
                &[1.0, 1.0, 0.5],
                Direction::HigherIsBetter,
                &Rule::default()
            ),
            Verdict::TooShort
        );
    }
}
