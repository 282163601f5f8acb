//! One measured run, printed as JSON (for profiling a single point):
//! `cargo run --release -p perfkit-spead --example point -- <perfkit|spead2> <heap|batch|batch+gso> <heap_bytes> [volume_MiB]`
//!
//! For spead2, run it from the repository root after `source scripts/env.sh`
//! (which puts the Python that has spead2 first on PATH).

use perfkit_spead::run::{run, RunConfig, Spead2Sender};
use std::sync::atomic::AtomicBool;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let cfg = RunConfig {
        implementation: get(0, "perfkit").parse().expect("implementation"),
        mode: get(1, "batch+gso").parse().expect("mode"),
        heap_size: get(2, "8192").parse().expect("heap size"),
        volume_bytes: get(3, "256").parse::<u64>().expect("volume") << 20,
        spead2: Some(Spead2Sender {
            python: "python3".into(),
            script: "scripts/spead2/send.py".into(),
        }),
        ..RunConfig::default()
    };
    match run(&cfg, &AtomicBool::new(false)) {
        Ok(s) => println!("{}", serde_json::to_string_pretty(&s).expect("json")),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(3);
        }
    }
}
