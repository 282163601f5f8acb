//! Rendering speed: the report of 1,000 run records (3 swept parameters,
//! 200 configurations x 5 repeats, 10 stages each), from a results file on
//! disk, load included, as `perfkit report` does it. Target: under 1 s.
//!
//! `cargo bench -p perfkit-report --bench render -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use perfkit_report::{compare, load_all, render_compare, render_report};

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let results = common::synthetic(&common::Spec::thousand());
    assert_eq!(results.runs.len(), 1000);
    let path = dir.path().join("results.json");
    results.write_atomic(&path).unwrap();
    let other = common::synthetic(&common::Spec {
        seed: 2,
        slowdown: 1.1,
        ..common::Spec::thousand()
    });
    let path2 = dir.path().join("after.json");
    other.write_atomic(&path2).unwrap();

    let mut g = c.benchmark_group("render");
    g.sample_size(10);
    g.bench_function("report_1000_records", |b| {
        b.iter(|| {
            let inputs = load_all(&[&path]).unwrap();
            let html = render_report(&inputs);
            std::hint::black_box(html.len())
        })
    });
    g.bench_function("compare_2x1000_records", |b| {
        b.iter(|| {
            let inputs: Vec<(PathBuf, _)> = load_all(&[&path, &path2]).unwrap();
            let cmp = compare(&inputs);
            let html = render_compare(&inputs, &cmp);
            std::hint::black_box((cmp.console_table().len(), html.len()))
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
