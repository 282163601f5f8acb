//! One emulated run from the command line, printing both sides' figures and
//! the device's stages, e.g.:
//!
//! ```text
//! cargo run -p perfkit-pico --example pico_run -- receiver --repeats 3 --throttle 0
//! cargo run -p perfkit-pico --example pico_run -- sender --bare
//! ```
//!
//! Options: `--block N`, `--repeats N`, `--throttle PPS`, `--start-meta N`,
//! `--meta-every N`, `--bare` (the firmware built without perfkit),
//! `--serial PATH [--probe VID:PID[:SERIAL]]` (a real board; needs
//! `--features probe`). Run it from the repository root: the firmware, the
//! runner and the image are taken from their places there.

use perfkit_pico::{run, DeviceRole, PicoRunConfig, Target};

fn main() {
    let mut args = std::env::args().skip(1);
    let role = match args.next().as_deref() {
        Some("sender") => DeviceRole::Sender,
        Some("receiver") => DeviceRole::Receiver,
        _ => {
            eprintln!(
                "usage: pico_run sender|receiver [--block N] [--repeats N] [--throttle PPS] \
                 [--start-meta N] [--meta-every N] [--bare] [--serial PATH [--probe SELECTOR]]"
            );
            std::process::exit(2);
        }
    };
    let mut cfg = PicoRunConfig::field_defaults(
        role,
        Target::Emulator {
            runner: "firmware/pico/emulator/runner.mjs".into(),
        },
        "build/firmware/perfkit-pico-fw.elf".into(),
        "fixtures/test35k.jpg".into(),
    );
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> u32 {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{what} needs a number");
                std::process::exit(2)
            })
        };
        match a.as_str() {
            "--block" => cfg.block_size = num("--block").min(255) as u8,
            "--repeats" => cfg.repeats = num("--repeats"),
            "--throttle" => cfg.throttle_pps = num("--throttle"),
            "--start-meta" => cfg.start_meta = num("--start-meta"),
            "--meta-every" => cfg.meta_every = num("--meta-every"),
            "--bare" => cfg.elf = "build/firmware/perfkit-pico-fw-bare.elf".into(),
            "--serial" | "--probe" => {
                let v = args.next().unwrap_or_else(|| {
                    eprintln!("{a} needs a value");
                    std::process::exit(2)
                });
                let (mut probe, mut serial) = match cfg.target {
                    Target::Hardware { probe, serial } => (probe, serial),
                    Target::Emulator { .. } => (None, Default::default()),
                };
                if a == "--serial" {
                    serial = v.into();
                } else {
                    probe = Some(v);
                }
                cfg.target = Target::Hardware { probe, serial };
            }
            other => {
                eprintln!("unknown option {other}");
                std::process::exit(2);
            }
        }
    }
    let out = match run(&cfg) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(3);
        }
    };
    println!(
        "device {} ({}), block {} repeats {} throttle {} pps",
        role, out.device_status, cfg.block_size, cfg.repeats, cfg.throttle_pps
    );
    println!("  tx {}   rx {}", out.tx.stats_line(), out.rx.stats_line());
    println!(
        "  integrity {} (missing {}), wire {} bytes, link {:.1} % busy, run {:.2} virtual s",
        if out.integrity.ok { "ok" } else { "FAILED" },
        out.integrity.missing_blocks.len(),
        out.link.wire_bytes,
        out.link.utilisation.unwrap_or(0.0) * 100.0,
        out.run_seconds
    );
    println!("  link counters {:?}", out.link.counters);
    println!("  device counters {:?}", out.device_counters);
    let hz = out.device_cpu_hz as f64;
    for s in &out.device_stages.sites {
        let cyc = |ns: u64| (ns as f64 * hz / 1e9).round() as u64;
        println!(
            "  {:<22} calls {:>6}  min {:>7} cyc ({:>8.1} us)  mean {:>7} cyc  max {:>7} cyc ({:>8.1} us)",
            s.name,
            s.calls,
            cyc(s.min_ns),
            s.min_ns as f64 / 1e3,
            s.cum_cycles.unwrap_or(0) / s.calls.max(1),
            cyc(s.max_ns),
            s.max_ns as f64 / 1e3
        );
    }
}
