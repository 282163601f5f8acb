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
//!   *and* the relative change exceeds the metric's threshold, so a
//!   statistically clear but immaterial shift does not fail CI; of a tail's
//!   two middle values the less bad one counts, so two points must both
//!   have moved;
//! - the newest point alone (a tail of one) cannot be told from a slow
//!   spell of the machine: past [`Rule::z_single`] it is a
//!   [`Verdict::Suspect`], reported but not failed, and the next commit
//!   confirms it. In virtual time (no noise) one point is enough.
//!
//! A sudden step shows up as a short tail with a large `z`; a slow drift as
//! a longer tail whose median has moved past the threshold although no
//! single commit did. The split with the largest `z` is kept, then a ramp
//! (level, then a straight line from some commit) is fitted beside the step
//! and the better fit names the commit where the change began.
//!
//! A deterministic metric (virtual time, counted instructions) has zero
//! scale: any change past the threshold is then a change, the newest point
//! alone included. A wall-clock metric can have zero scale too (a
//! quantised one: a stage of a few clock steps reads 10 or 20 ns, so its
//! MAD is 0 though it varies); its newest point alone stays a suspect, and
//! a tail of two or more past the threshold is a change. (A fallback scale
//! such as the mean absolute deviation is not robust: one preempted run in
//! the head would hide a doubling.)
//!
//! Measured on synthetic series (`examples/changepoint_rates.rs`, asserted
//! in `tests/changepoint.rs`) with the default rule, 1,000 series each, a
//! lower-is-better metric whose commits are medians of 3 repeats with 2 %
//! noise and, on 3 % of commits, a slow spell of 3-12 %: a +10 % step at
//! commit 120 fails by commit 122 in 99.9 % of series (a suspect at 120 in
//! about half), named as beginning at 120 in 95 %; a 1 %/commit drift over
//! 15 commits fails in 100 %; A/A series fail at their last commit in
//! 0.2 % of series (0.14 % of all evaluations fail, 0.66 % are suspects).

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
    /// `z` a tail of two or more points must exceed to fail.
    pub z: f64,
    /// `z` the newest point alone must exceed to be a suspect.
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
    /// The newest point alone is far out: a step or a slow spell of the
    /// machine, which one point cannot tell apart. Reported, not failed;
    /// the next commit confirms it (as [`Verdict::Regressed`]) or not.
    Suspect(Finding),
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

/// The tail's median, taking of two middle values the one less bad, so a
/// tail of two points needs both to have moved: the mean of a slow spell
/// and a normal commit is not a change.
fn cautious_median(xs: &[f64], sign: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else if sign > 0.0 {
        v[n / 2 - 1]
    } else {
        v[n / 2]
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
/// not expected: the store keeps none). `noise_free` says the figure
/// repeats exactly (virtual time, counted instructions): then one point
/// past the threshold is a regression. Otherwise the newest point alone is
/// at most a suspect, even where the head shows no spread to scale by.
pub fn judge(series: &[f64], direction: Direction, rule: &Rule, noise_free: bool) -> Verdict {
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
    // (z, change) of the most significant tail of 2+ points, and of the
    // newest point alone.
    let mut best: Option<(f64, f64)> = None;
    let mut single: Option<(f64, f64)> = None;
    for m in 1..=rule.max_tail.min(n - rule.min_head) {
        let split = n - m;
        let head = &s[..split];
        let (mh, scale) = location_scale(head);
        let mt = cautious_median(&s[split..], sign);
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
        if m == 1 {
            if z > rule.z_single {
                single = Some((z, change));
            }
        } else if z > rule.z && best.is_none_or(|b| z > b.0) {
            best = Some((z, change));
        }
    }
    let finding = |(z, change): (f64, f64)| {
        let (began, shape) = began(s, rule.max_tail);
        Finding {
            began_at: start + began,
            shape,
            change_pct: change * 100.0,
            z,
        }
    };
    match (best, single) {
        (Some(b), _) => Verdict::Regressed(finding(b)),
        // Without noise (virtual time) one point is proof.
        (None, Some(s)) if noise_free => Verdict::Regressed(finding(s)),
        (None, Some(s)) => Verdict::Suspect(finding(s)),
        (None, None) => Verdict::Steady,
    }
}

/// Where the change began, and its shape. Least absolute deviations, so a
/// slow spell next to the change does not move it: a step (two levels,
/// each its median) with its split anywhere in the last `max_tail` points,
/// against a ramp (a level, then a straight line from some commit, its
/// slope the median of the per-commit slopes). The ramp has one more free
/// parameter, so it must explain clearly more to be called a drift.
fn began(s: &[f64], max_tail: usize) -> (usize, Shape) {
    let n = s.len();
    let lo = n.saturating_sub(2 * max_tail);
    let first = n.saturating_sub(max_tail).max(lo + 1);
    let med = |xs: &[f64]| median(&mut xs.to_vec());
    let dev = |xs: &[f64], m: f64| xs.iter().map(|x| (x - m).abs()).sum::<f64>();
    let mut step = (f64::INFINITY, n - 1);
    for c in first..n {
        let (head, tail) = (&s[lo..c], &s[c..]);
        let cost = dev(head, med(head)) + dev(tail, med(tail));
        if cost < step.0 {
            step = (cost, c);
        }
    }
    let mut ramp = (f64::INFINITY, n - 1);
    for b in first..n.saturating_sub(2) {
        let head = &s[lo..b];
        let level = med(head);
        let x = |t: usize| (t + 1 - b) as f64;
        let slopes: Vec<f64> = (b..n).map(|t| (s[t] - level) / x(t)).collect();
        let slope = med(&slopes);
        let cost = dev(head, level)
            + (b..n)
                .map(|t| (s[t] - level - slope * x(t)).abs())
                .sum::<f64>();
        if cost < ramp.0 {
            ramp = (cost, b);
        }
    }
    if ramp.0 < 0.8 * step.0 {
        (ramp.1, Shape::Drift)
    } else {
        (step.1, Shape::Step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_series_flags_any_change_past_the_threshold() {
        let mut s = vec![100.0; 20];
        s.push(94.0);
        let v = judge(&s, Direction::HigherIsBetter, &Rule::default(), true);
        let Verdict::Regressed(f) = v else {
            panic!("{v:?}")
        };
        assert_eq!(f.began_at, 20);
        assert_eq!(f.shape, Shape::Step);
        s.pop();
        s.push(96.0);
        assert_eq!(
            judge(&s, Direction::HigherIsBetter, &Rule::default(), true),
            Verdict::Steady,
            "4 % is inside a 5 % threshold"
        );
    }

    #[test]
    fn an_improvement_is_not_a_regression() {
        let mut s = vec![100.0; 20];
        s.push(150.0);
        assert_eq!(
            judge(&s, Direction::HigherIsBetter, &Rule::default(), true),
            Verdict::Steady
        );
        assert!(matches!(
            judge(&s, Direction::LowerIsBetter, &Rule::default(), true),
            Verdict::Regressed(_)
        ));
    }

    /// A stage of a few clock steps reads 10 or 20 ns: its MAD is 0 though
    /// it varies. One commit reading 30 is a suspect, not a regression (it
    /// was, with z "infinite"); two in a row are one.
    #[test]
    fn a_quantised_wall_clock_series_is_not_taken_for_a_noise_free_one() {
        let mut s = vec![
            20.0, 20.0, 10.0, 20.0, 20.0, 20.0, 10.0, 20.0, 20.0, 20.0, 20.0, 20.0,
        ];
        s.push(30.0);
        let rule = Rule {
            threshold_pct: 25.0,
            ..Rule::default()
        };
        let v = judge(&s, Direction::LowerIsBetter, &rule, false);
        assert!(matches!(v, Verdict::Suspect(_) | Verdict::Steady), "{v:?}");
        s.push(30.0);
        let v = judge(&s, Direction::LowerIsBetter, &rule, false);
        assert!(matches!(v, Verdict::Regressed(_)), "{v:?}");
        // One preempted run in the head does not hide a doubling.
        let mut s = vec![20.0; 9];
        s.push(2000.0);
        s.extend([20.0; 10]);
        s.extend([40.0, 40.0]);
        let v = judge(&s, Direction::LowerIsBetter, &rule, false);
        assert!(matches!(v, Verdict::Regressed(_)), "{v:?}");
        // A wall-clock series constant so far: the newest point alone
        // cannot be told from a slow spell.
        let mut flat = vec![20.0; 12];
        flat.push(30.0);
        let v = judge(&flat, Direction::LowerIsBetter, &rule, false);
        assert!(matches!(v, Verdict::Suspect(_)), "{v:?}");
        assert!(matches!(
            judge(&flat, Direction::LowerIsBetter, &rule, true),
            Verdict::Regressed(_)
        ));
    }

    #[test]
    fn too_short_a_history_is_not_judged() {
        assert_eq!(
            judge(
                &[1.0, 1.0, 0.5],
                Direction::HigherIsBetter,
                &Rule::default(),
                true
            ),
            Verdict::TooShort
        );
    }
}
