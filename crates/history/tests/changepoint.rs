//! The history gate's rule on synthetic series: the rates the issue of
//! catching a step and a drift, and of false alarms, asked for (see
//! `tests/rates/mod.rs` for the noise model). Seeded: the same every run.

mod rates;

use perfkit_history::changepoint::{judge, Direction, Rule, Shape, Verdict};

#[test]
fn step_drift_and_a_a_rates_meet_their_targets() {
    let r = rates::measure(1000, &Rule::default(), false);
    eprintln!("{r:?}");
    assert!(r.step_by_122 >= 0.99, "step caught by commit 122: {r:?}");
    assert!(r.step_began_at_120 >= 0.90, "step named at 120: {r:?}");
    assert!(r.drift_flagged >= 0.99, "drift caught: {r:?}");
    assert!(r.aa_last <= 0.01, "A/A false alarms: {r:?}");
}

#[test]
fn a_drift_is_caught_while_it_runs_and_named_a_drift_once_seen_whole() {
    let s = rates::series(7, 135, |c| {
        100.0 * (1.0 + 0.01 * (c.saturating_sub(119)).min(15) as f64)
    });
    let (at, _, _) = rates::first_flag(&s, 120, &Rule::default(), false).expect("caught");
    assert!(at < 134, "caught at {at}, before the drift ends");
    let Verdict::Regressed(f) = judge(&s, Direction::LowerIsBetter, &Rule::default(), false) else {
        panic!("still failing at its end")
    };
    assert_eq!(f.shape, Shape::Drift, "{f:?}");
    assert!(f.began_at.abs_diff(120) <= 3, "{f:?}");
}

#[test]
fn one_slow_commit_is_a_suspect_not_a_failure() {
    let mut s = rates::series(3, 60, |_| 100.0);
    s.push(125.0);
    assert!(
        matches!(
            judge(&s, Direction::LowerIsBetter, &Rule::default(), false),
            Verdict::Suspect(_)
        ),
        "{:?}",
        judge(&s, Direction::LowerIsBetter, &Rule::default(), false)
    );
    s.push(126.0);
    let Verdict::Regressed(f) = judge(&s, Direction::LowerIsBetter, &Rule::default(), false) else {
        panic!("confirmed by the next commit")
    };
    assert_eq!(f.began_at, 60);
    assert_eq!(f.shape, Shape::Step);
}
