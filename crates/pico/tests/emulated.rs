//! End to end on the emulated Pico: the real firmware on rp2040js, the host
//! side with perfkit-stack, the 34,710-byte test image in both directions.
//! Needs the firmware ELF and the runner's npm packages, both made by
//! `scripts/setup.d/40-firmware.sh`.

mod common;

use common::field;
use perfkit_pico::{run, DeviceRole, PicoRunConfig, PicoRunOutcome};

fn require_setup() {
    let elf = common::elf();
    let modules = common::runner()
        .parent()
        .unwrap()
        .join("node_modules/rp2040js");
    assert!(
        elf.exists() && modules.exists(),
        "missing {} or {}: run scripts/setup.d/40-firmware.sh",
        elf.display(),
        modules.display()
    );
}

fn run_checked(cfg: &PicoRunConfig<'_>) -> PicoRunOutcome {
    require_setup();
    let out = run(cfg).unwrap_or_else(|e| panic!("{} run failed: {e}", cfg.role));
    eprintln!(
        "{}: tx {} | rx {} | util {:?} | {}",
        cfg.role,
        out.tx.stats_line(),
        out.rx.stats_line(),
        out.link.utilisation,
        out.device_status
    );
    for s in &out.device_stages.sites {
        eprintln!(
            "  {:<24} calls {:>6} min {:>8} max {:>8} cum {:>12} cycles {:?}",
            s.name, s.calls, s.min_ns, s.max_ns, s.cum_ns, s.cum_cycles
        );
    }
    out
}

#[test]
fn device_sends_image_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PicoRunConfig {
        repeats: 0,
        output: Some(dir.path().join("received.jpg")),
        ..field(DeviceRole::Sender)
    };
    let out = run_checked(&cfg);
    let sent = std::fs::read(&cfg.input).unwrap();
    let got = std::fs::read(dir.path().join("received.jpg")).unwrap();
    assert!(
        got == sent,
        "received image differs from {}",
        cfg.input.display()
    );
    assert!(out.integrity.ok, "{:?}", out.integrity);
    assert!(out.integrity.missing_blocks.is_empty());
    assert_eq!(out.device_status, "complete");
    assert_eq!(out.tx.bytes, sent.len() as u64);
    assert!(out
        .device_stages
        .sites
        .iter()
        .any(|s| s.name == "wire::crc16" && s.calls > 0 && s.bytes > Some(0)));
    // The device's percentiles come from its histogram: ordered, and p99.9
    // is not the maximum everywhere.
    for s in &out.device_stages.sites {
        assert!(
            s.min_ns <= s.p50_ns
                && s.p50_ns <= s.p90_ns
                && s.p90_ns <= s.p99_ns
                && s.p99_ns <= s.p999_ns
                && s.p999_ns <= s.max_ns,
            "{s:?}"
        );
    }
    assert!(
        out.device_stages.sites.iter().any(|s| s.p999_ns < s.max_ns),
        "p99.9 from the histogram, not the maximum"
    );
}

#[test]
fn device_receives_image_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = PicoRunConfig {
        repeats: 0,
        output: Some(dir.path().join("received.jpg")),
        ..field(DeviceRole::Receiver)
    };
    let out = run_checked(&cfg);
    let sent = std::fs::read(&cfg.input).unwrap();
    let got = std::fs::read(dir.path().join("received.jpg")).unwrap();
    assert!(
        got == sent,
        "device RAM differs from {}",
        cfg.input.display()
    );
    assert!(out.integrity.ok, "{:?}", out.integrity);
    assert_eq!(out.device_status, "complete");
    assert_eq!(out.rx.bytes, sent.len() as u64);
    assert_eq!(out.link.counters["uart_rx_overruns"], 0);
    assert_pacing(&out);
}

/// The runner paces bytes at the baud rate: the link can never carry more
/// than 11,520 bytes/s, so utilisation is at most 1 (it is a property of
/// the emulated wire, not a speed requirement).
fn assert_pacing(out: &PicoRunOutcome) {
    let u = out.link.utilisation.expect("a UART has a known rate");
    assert!(
        u > 0.0 && u <= 1.0 + 1e-6,
        "link utilisation {u} is impossible at 115200 baud"
    );
}

#[test]
fn bare_firmware_receives_and_times_each_message() {
    let bare = common::bare_elf();
    assert!(
        bare.exists(),
        "missing {}: run scripts/setup.d/40-firmware.sh",
        bare.display()
    );
    let cfg = PicoRunConfig {
        repeats: 0,
        elf: bare,
        ..field(DeviceRole::Receiver)
    };
    let out = run_checked(&cfg);
    assert!(out.integrity.ok, "{:?}", out.integrity);
    // No perfkit in this build: no sites, but every message timed.
    assert!(out.device_stages.sites.is_empty());
    let c = &out.device_counters;
    assert!(c["rx_message_cycles_min"] > 0);
    assert!(c["rx_message_cycles_min"] <= c["rx_message_cycles_mean"]);
    assert!(c["rx_message_cycles_mean"] <= c["rx_message_cycles_max"]);
    assert_eq!(c["messages"], 695 + 22, "695 blocks and 22 META messages");
}

/// The RX FIFO is 32 bytes deep, as on the chip: a receiver that completes
/// early and stops reading (to send its report) while the host still sends
/// its last repeats overflows it, and the bytes are counted, not queued.
#[test]
fn rx_fifo_overflows_when_the_device_stops_reading() {
    let cfg = PicoRunConfig {
        block_size: 249,
        ..field(DeviceRole::Receiver)
    };
    let out = run_checked(&cfg);
    assert!(out.integrity.ok, "{:?}", out.integrity);
    assert_eq!(
        out.link.counters["uart_rx_overruns"], 0,
        "none while it listened"
    );
    assert!(
        out.link.counters["uart_rx_overruns_after_end"] > 0,
        "the host's last repeats must overflow a 32-byte FIFO: {:?}",
        out.link.counters
    );
}

/// The run's one policy, in the emulator's virtual time: `timeout_s` stops a
/// transfer part way with the engine's wording, and a raised cancel flag
/// stops the run at the next slice.
#[test]
fn deadline_and_cancel_stop_the_run_with_the_engines_wording() {
    require_setup();
    let cfg = PicoRunConfig {
        // About 14 virtual seconds of sending: the deadline falls inside it.
        timeout_s: 2.0,
        ..field(DeviceRole::Receiver)
    };
    let e = run(&cfg).expect_err("a 2 s deadline on a 14 s transfer");
    assert_eq!(e.to_string(), "gave up after 2.0 s (timeout_s)");

    let flag = std::sync::atomic::AtomicBool::new(true);
    let cfg = PicoRunConfig {
        cancel: Some(&flag),
        ..field(DeviceRole::Sender)
    };
    let e = run(&cfg).expect_err("a raised cancel flag");
    assert_eq!(e.to_string(), "interrupted");
}
