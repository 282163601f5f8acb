//! One measured run, printed as JSON (for profiling a single point):
//! `cargo run --release -p perfkit-spead --example point -- <perfkit|spead2> <heap|batch|batch+gso> <heap_bytes> [volume_MiB]`

use perfkit_spead::run::{run, RunConfig};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let get = |i: usize, d: &str| a.get(i).cloned().unwrap_or_else(|| d.to_string());
    let cfg = RunConfig {
        implementation: get(0, "perfkit").parse().expect("implementation"),
        mode: get(1, "batch+gso").parse().expect("mode"),
        heap_size: get(2, "8192").parse().expect("heap size"),
        volume_bytes: get(3, "256").parse::<u64>().expect("volume") << 20,
        ..RunConfig::default()
    };
    match run(&cfg) {
        Ok(s) => println!("{}", serde_json::to_string_pretty(&s).expect("json")),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(3);
        }
    }
}
