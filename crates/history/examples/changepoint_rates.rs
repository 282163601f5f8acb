//! Prints the history gate's error rates on synthetic series:
//! `cargo run --release -p perfkit-history --example changepoint_rates [N [Z Z_SINGLE]]`
//! (the rule's `z` and `z_single` may be varied to study them).

#[path = "../tests/rates/mod.rs"]
mod rates;

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let arg = |i: usize| std::env::args().nth(i).and_then(|a| a.parse().ok());
    let mut rule = perfkit_history::changepoint::Rule::default();
    if let (Some(z), Some(zs)) = (arg(2), arg(3)) {
        rule.z = z;
        rule.z_single = zs;
    }
    let r = rates::measure(n, &rule, true);
    println!("rule: {rule:?}");
    println!("{n} series each (noise: 2 % per repeat, median of 3, 3 % slow spells of 3-12 %)");
    println!("+10 % step at commit 120: reported at 120 (suspect or failed) {:.1} %, failed by 122 {:.1} %, named as beginning at 120 {:.1} %",
        r.step_at_120 * 100.0, r.step_by_122 * 100.0, r.step_began_at_120 * 100.0);
    println!("1 %/commit drift from commit 120 for 15 commits: failed {:.1} %, beginning named within 3 commits {:.1} %",
        r.drift_flagged * 100.0, r.drift_began_near_120 * 100.0);
    println!("A/A, 150 commits: failed at the last commit {:.2} %, over every evaluation (commits 40-149) {:.3} % failed, {:.3} % suspects",
        r.aa_last * 100.0, r.aa_per_evaluation * 100.0, r.aa_suspect_per_evaluation * 100.0);
}
