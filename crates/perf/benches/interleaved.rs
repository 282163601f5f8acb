//! A contention-robust companion to `overhead`: runs the variants in
//! interleaved blocks and keeps each one's best block, so load from other
//! processes on a shared machine hits every variant alike and mostly drops
//! out. Prints ns per iteration and the ratios the `overhead` targets use.
//!
//! `cargo bench -p perfkit --features tracing --bench interleaved`

use std::hint::black_box;
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;

const ITERS: u32 = 200_000;
const ROUNDS: u32 = 60;

fn block(f: &mut dyn FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..ITERS {
        f();
    }
    t.elapsed().as_nanos() as f64 / f64::from(ITERS)
}

/// Ten dependent rotate-multiply steps (about 40 cycles of latency) on a
/// value no clock read touches.
#[inline(always)]
fn chain() -> u64 {
    let mut x = black_box(5u64);
    for i in 0..10 {
        x = x.rotate_left(i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    x
}

type Variant = (&'static str, Box<dyn FnMut()>);

fn main() {
    // `cargo test --all-targets` runs benches in test mode: nothing to check.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("perfkit clock: {}", perfkit::clock::clock_name());
    let subscriber = tracing_subscriber::registry().with(perfkit::tracing::PerfkitLayer::new());
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    let span = tracing::info_span!("ab.tracing");
    let q = quanta::Clock::new();
    let mut variants: Vec<Variant> = vec![
        (
            "empty",
            Box::new(|| {
                black_box(1u32);
            }),
        ),
        (
            "clock_floor",
            Box::new(|| {
                let a = perfkit::clock::now();
                let z = perfkit::clock::now();
                black_box(z.wrapping_sub(a));
            }),
        ),
        (
            // Two clock reads with a chain of ten dependent rotate-multiply
            // steps (about 40 cycles) after them that uses neither read:
            // when this costs clock_floor plus the chain, a clock read
            // waits for every instruction before it to complete, and a
            // measurement costs its longest chain, not its instruction count.
            "floor+chain",
            Box::new(|| {
                let a = perfkit::clock::now();
                let z = perfkit::clock::now();
                black_box((chain(), z.wrapping_sub(a)));
            }),
        ),
        (
            "chain",
            Box::new(|| {
                black_box(chain());
            }),
        ),
        (
            "instant_pair",
            Box::new(|| {
                let a = Instant::now();
                let z = Instant::now();
                black_box(z.duration_since(a));
            }),
        ),
        (
            "quanta_raw_pair",
            Box::new(move || {
                let a = q.raw();
                let z = q.raw();
                black_box(z.wrapping_sub(a));
            }),
        ),
        (
            "measure",
            Box::new(|| {
                black_box(perfkit::measure!("ab.measure", black_box(1u32)));
            }),
        ),
        (
            "span",
            Box::new(|| {
                let _g = perfkit::span!("ab.span");
                black_box(1u32);
            }),
        ),
        (
            "tracing_span",
            Box::new(move || {
                let _e = span.enter();
                black_box(1u32);
            }),
        ),
    ];
    let mut best = vec![f64::INFINITY; variants.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in variants.iter_mut().enumerate() {
            best[i] = best[i].min(block(f.as_mut()));
        }
    }
    for (i, (name, _)) in variants.iter().enumerate() {
        println!("{name:14} {:7.2} ns", best[i]);
    }
    let get = |n: &str| best[variants.iter().position(|v| v.0 == n).unwrap()];
    println!(
        "measure/clock_floor {:.2}  measure/instant_pair {:.2}",
        get("measure") / get("clock_floor"),
        get("measure") / get("instant_pair")
    );
    // Alone, iterations of `chain` overlap and it costs its throughput; if
    // between clock reads it costs far more (its latency), the reads wait.
    println!(
        "chain between clock reads: +{:.2} ns (alone {:.2} ns)",
        get("floor+chain") - get("clock_floor"),
        get("chain")
    );
}
