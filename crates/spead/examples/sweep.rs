//! Sweep heap size (8 KiB .. 4 MiB) x mode x implementation on 127.0.0.1 and
//! print MB/s with the perfkit/spead2 ratios.
//!
//! ```text
//! cargo run --release -p perfkit-spead --example sweep -- [volume_MiB] [time_cap_s] [sizes_KiB,..|all] [repeats]
//! ```
//!
//! Defaults: 256 MiB per point, 5 s cap, every power of two from 8 KiB to 4 MiB,
//! 3 repeats per point with the median reported (the five configurations are
//! interleaved within each repeat, so background load hits them alike).
//! spead2 must be installed (`scripts/setup.d/30-spead2.sh`); run from the
//! repository root after `source scripts/env.sh` (which puts the Python that
//! has spead2 first on PATH).

use perfkit_spead::run::{run, Impl, RunConfig, RunStats, Spead2Sender};
use perfkit_spead::send::Mode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let volume_mib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(256);
    let cap: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5.0);
    // An empty or "all" list means every power of two from 8 KiB to 4 MiB.
    let sizes: Vec<usize> = match args.get(2).map(String::as_str) {
        Some(list) if !list.is_empty() && list != "all" => list
            .split(',')
            .filter_map(|s| s.parse::<usize>().ok())
            .map(|k| k * 1024)
            .collect(),
        _ => (13..=22).map(|p| 1usize << p).collect(),
    };

    let repeats: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    let points = [
        (Impl::Perfkit, Mode::Heap),
        (Impl::Perfkit, Mode::Batch),
        (Impl::Perfkit, Mode::BatchGso),
        (Impl::Spead2, Mode::Heap),
        (Impl::Spead2, Mode::Batch),
    ];
    println!(
        "{:>8} | {:>10} {:>10} {:>10} | {:>10} {:>10} | {:>7} {:>7} {:>9} | rx verified/expected per run, per column",
        "heap", "pk heap", "pk batch", "pk gso", "s2 heap", "s2 batch", "gso/s2", "bat/s2", "bat/heap"
    );
    let mut cpu_rows = Vec::new();
    for &hs in &sizes {
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); points.len()];
        let mut rx: Vec<String> = vec![String::new(); points.len()];
        for _ in 0..repeats {
            for (k, &(implementation, mode)) in points.iter().enumerate() {
                let cfg = RunConfig {
                    heap_size: hs,
                    mode,
                    implementation,
                    volume_bytes: volume_mib << 20,
                    time_cap: Duration::from_secs_f64(cap),
                    spead2: Some(Spead2Sender {
                        python: "python3".into(),
                        script: "scripts/spead2/send.py".into(),
                    }),
                    ..RunConfig::default()
                };
                match run(&cfg, &AtomicBool::new(false)) {
                    Ok(s) => {
                        if std::env::var_os("SWEEP_STAGES").is_some() {
                            eprintln!(
                                "{implementation} {mode} {hs}: {:.3}s sent {} heaps, {} calls, {} gso fallbacks",
                                s.seconds, s.heaps, s.send_calls, s.gso_fallbacks
                            );
                            for st in &s.stages {
                                eprintln!(
                                    "    {:<20} calls {:>8} cum {:>8.3}s p50 {:>8}ns",
                                    st.name,
                                    st.calls,
                                    st.cum_ns as f64 / 1e9,
                                    st.p50_ns
                                );
                            }
                            perfkit::reset();
                        }
                        samples[k].push(s.mb_per_s);
                        cpu[k].push(s.mb_per_cpu_s);
                        rx[k].push_str(&summary(&s));
                    }
                    Err(e) => {
                        eprintln!("{implementation} {mode} {hs}: {e}");
                        rx[k].push_str("error ");
                    }
                }
            }
        }
        let mb: Vec<f64> = samples.iter_mut().map(|v| median(v)).collect();
        let per_cpu: Vec<f64> = cpu.iter_mut().map(|v| median(v)).collect();
        cpu_rows.push((hs, per_cpu));
        println!(
            "{:>7}K | {:>10.0} {:>10.0} {:>10.0} | {:>10.0} {:>10.0} | {:>7.2} {:>7.2} {:>9.2} | {}",
            hs / 1024,
            mb[0],
            mb[1],
            mb[2],
            mb[3],
            mb[4],
            mb[2] / mb[4],
            mb[1] / mb[4],
            mb[1] / mb[0],
            rx.join("| ")
        );
    }
    println!();
    println!("sender MB per CPU-second (less sensitive to other load on the machine):");
    println!(
        "{:>8} | {:>10} {:>10} {:>10} | {:>10} {:>10} | {:>7}",
        "heap", "pk heap", "pk batch", "pk gso", "s2 heap", "s2 batch", "gso/s2"
    );
    for (hs, c) in cpu_rows {
        println!(
            "{:>7}K | {:>10.0} {:>10.0} {:>10.0} | {:>10.0} {:>10.0} | {:>7.2}",
            hs / 1024,
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[2] / c[4]
        );
    }
}

fn summary(s: &RunStats) -> String {
    let mark = if s.rx.verify_failures > 0 { "!" } else { "" };
    format!("{}/{}{} ", s.rx.verified_heaps, s.rx.heaps_expected, mark)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
