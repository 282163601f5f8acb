//! The virtual-time UART simulation against the field's reference figures
//! (docs/specs/dttk-wire.md section 6), with a sender and receiver written from the
//! wire spec: the 34,710-byte test image, 50-byte blocks, START_META 8,
//! META_EVERY_N 50, 115200 8N1, the pico-micropython profile at both ends.

mod common;

use common::dttk::{crc16, Receiver, Sender};
use perfkit_link::sim::{run, SimConfig, SimReport};
use perfkit_link::DeviceProfile;

fn pico_config() -> SimConfig {
    let pico = DeviceProfile::builtin("pico-micropython").unwrap();
    SimConfig::from_profiles(115_200, 10, &pico, &pico)
}

fn simulate(cfg: &SimConfig, repeats: u32, pps: Option<u32>) -> (SimReport, Sender, Receiver) {
    let mut tx = Sender::new(common::dttk::test_image(), 50, repeats, pps);
    let mut rx = Receiver::new(tx.blocks());
    let report = run(cfg, &mut tx, &mut rx).unwrap();
    (report, tx, rx)
}

fn within(value: f64, target: f64, tolerance: f64) -> bool {
    (value - target).abs() <= target * tolerance
}

#[test]
fn crc_matches_the_catalogue() {
    assert_eq!(crc16(b"123456789"), 0xE5CC);
}

#[test]
fn throttled_pico_takes_about_72_s_and_keeps_up() {
    let (r, tx, rx) = simulate(&pico_config(), 3, Some(40));
    assert_eq!(tx.data_messages, 2780, "695 blocks x 4");
    let t_tx = r.sender.span_ns() as f64 * 1e-9;
    assert!(within(t_tx, 72.0, 0.15), "sender T = {t_tx:.1} s");
    let tx_pps = tx.data_messages as f64 / t_tx;
    assert!(within(tx_pps, 38.0, 0.15), "sender PPS = {tx_pps:.1}");
    assert_eq!(r.overflow_drops, 0, "{r:?}");
    assert_eq!(rx.missing_blocks(), 0);
    assert_eq!(rx.bad_frames, 0);
    // The receiver reported 462 BPS (T:75); the transfer itself gives about 490.
    let t_rx = r.receiver.span_ns() as f64 * 1e-9;
    let rx_bps = 34_710.0 / t_rx;
    assert!(
        (462.0 * 0.85..=490.0 * 1.15).contains(&rx_bps),
        "receiver BPS = {rx_bps:.0} (T = {t_rx:.1} s)"
    );
    assert!(r.utilisation > 0.0 && r.utilisation <= 1.0);
    // About 60 bytes per 25 ms of an 11,520 byte/s line.
    assert!(
        within(r.utilisation, 0.21, 0.15),
        "utilisation {}",
        r.utilisation
    );
}

#[test]
fn unthrottled_pico_sends_about_115_pps_and_the_receiver_overflows() {
    let (r, tx, rx) = simulate(&pico_config(), 3, None);
    let t_tx = r.sender.span_ns() as f64 * 1e-9;
    let pps = tx.data_messages as f64 / t_tx;
    assert!(within(pps, 115.0, 0.15), "sender PPS = {pps:.1}");
    assert!(r.overflow_drops > 1000, "overflow {}", r.overflow_drops);
    assert!(rx.bad_frames > 0);
    assert_eq!(
        r.delivered_bytes + r.overflow_drops,
        r.wire_bytes,
        "every byte is delivered or lost"
    );
}

#[test]
fn unthrottled_without_repeats_loses_blocks() {
    // The field's unthrottled line: T:6 blk:695 PPS:115; the receiver failed.
    let (r, tx, rx) = simulate(&pico_config(), 0, None);
    assert_eq!(tx.data_messages, 695);
    let t_tx = r.sender.span_ns() as f64 * 1e-9;
    assert!(within(t_tx, 6.0, 0.15), "sender T = {t_tx:.2} s");
    assert!(rx.missing_blocks() > 0);
}

#[test]
fn host_profile_moves_everything_at_line_rate() {
    let host = DeviceProfile::builtin("host").unwrap();
    let cfg = SimConfig::from_profiles(115_200, 10, &host, &host);
    let (r, _tx, rx) = simulate(&cfg, 3, None);
    assert_eq!(r.overflow_drops, 0);
    assert_eq!(rx.missing_blocks(), 0);
    // A host's costs are tiny: the line is the bottleneck.
    assert!(
        r.utilisation > 0.95 && r.utilisation <= 1.0,
        "{}",
        r.utilisation
    );
}

#[test]
fn same_inputs_same_numbers() {
    let (a, _, _) = simulate(&pico_config(), 3, None);
    let (b, _, _) = simulate(&pico_config(), 3, None);
    assert_eq!(a, b);
}

#[test]
fn time_cap_stops_a_run() {
    let mut cfg = pico_config();
    cfg.time_cap_ns = 1_000_000_000;
    let (r, _, rx) = simulate(&cfg, 3, Some(40));
    assert!(r.timed_out);
    assert!(r.end_ns <= 1_000_000_000);
    assert!(rx.missing_blocks() > 0);
}
