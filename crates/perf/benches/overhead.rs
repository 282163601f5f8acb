//! What one measurement costs, next to the clock reads it cannot avoid.
//!
//! `cargo bench -p perfkit --features tracing --bench overhead`
//!
//! - `clock_floor`: two raw reads of the clock perfkit uses (the physical
//!   floor of any measured scope);
//! - `instant_pair`: two `std::time::Instant::now()`;
//! - `quanta_raw_pair`: two `quanta::Clock::raw()` (the crate we compared with);
//! - `measure`: `perfkit::measure!` around an empty black-boxed body: the
//!   push (the path found in the parent path's memo), the two clock reads, and
//!   the call's statistics written with plain stores on the thread's own
//!   path slot (no locked instruction; `flush`, in the snapshot printed at
//!   the end, adds them to the site);
//! - `span`: a `span!` guard;
//! - `measure_nested`: `measure!` one level inside a `span!` (the outer span
//!   is entered once per batch, so this is the cost of a nested measurement);
//! - `measure_disabled`: `measure!` with `set_enabled(false)`;
//! - `tracing_span`: entering and leaving a `tracing` span with the perfkit
//!   layer installed.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;

fn overhead(c: &mut Criterion) {
    let mut g = c.benchmark_group("overhead");
    // Select the clock before the first timing.
    println!("perfkit clock: {}", perfkit::clock::clock_name());

    g.bench_function("clock_floor", |b| {
        b.iter(|| {
            let a = perfkit::clock::now();
            let z = perfkit::clock::now();
            black_box(z.wrapping_sub(a))
        })
    });
    g.bench_function("instant_pair", |b| {
        b.iter(|| {
            let a = Instant::now();
            let z = Instant::now();
            black_box(z.duration_since(a))
        })
    });
    let q = quanta::Clock::new();
    g.bench_function("quanta_raw_pair", |b| {
        b.iter(|| {
            let a = q.raw();
            let z = q.raw();
            black_box(z.wrapping_sub(a))
        })
    });
    g.bench_function("measure", |b| {
        b.iter(|| perfkit::measure!("bench.measure", black_box(1u32)))
    });
    g.bench_function("span", |b| {
        b.iter(|| {
            let _g = perfkit::span!("bench.span");
            black_box(1u32)
        })
    });
    g.bench_function("measure_nested", |b| {
        let _outer = perfkit::span!("bench.outer");
        b.iter(|| perfkit::measure!("bench.nested", black_box(1u32)))
    });
    g.bench_function("measure_disabled", |b| {
        perfkit::set_enabled(false);
        b.iter(|| perfkit::measure!("bench.disabled", black_box(1u32)));
        perfkit::set_enabled(true);
    });

    let subscriber = tracing_subscriber::registry().with(perfkit::tracing::PerfkitLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("bench.tracing");
        g.bench_function("tracing_span", |b| {
            b.iter(|| {
                let _e = span.enter();
                black_box(1u32)
            })
        });
    });
    g.finish();
    print!("{}", perfkit::snapshot());
}

criterion_group!(benches, overhead);
criterion_main!(benches);
