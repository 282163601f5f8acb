//! `uart`: the transfer over the virtual-time UART model, each device charged
//! the CPU costs of its profile (`fixtures/profiles/`). The stack's real
//! sender and receiver run inside the model; only time is simulated, so the
//! figures are identical on every machine while the per-stage host timings
//! perfkit records stay real.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use perfkit_engine::{RxPump, TxPump};
use perfkit_link::sim::SimConfig;
use perfkit_link::DeviceProfile;
use perfkit_report::model::{LinkStats, Side, TimeBase};

use super::endpoint;
use super::input::Input;
use super::Outcome;
use crate::scenario::{Config, Scenario};

fn profile(s: &Scenario, cfg: &Config, key: &str) -> anyhow::Result<DeviceProfile> {
    let name = cfg
        .str(key)
        .or_else(|| cfg.str("profile"))
        .unwrap_or("host");
    // A name in fixtures/profiles/, then a path as given or beside the scenario.
    DeviceProfile::resolve(name)
        .or_else(
            |e| match super::input::resolve(s, std::path::Path::new(name)) {
                Some(p) => DeviceProfile::load(&p),
                None => Err(e),
            },
        )
        .map_err(|e| anyhow!("{}: key `link.{key}`: {e}", s.path.display()))
}

/// Runs one uart configuration.
pub fn run(s: &Scenario, cfg: &Config, input: &Input) -> anyhow::Result<Outcome> {
    let tx_profile = profile(s, cfg, "tx_profile")?;
    let rx_profile = profile(s, cfg, "rx_profile")?;
    let baud = cfg.int("baud") as u32;
    let bits = cfg.int("bits_per_char") as u32;
    let mut sc = SimConfig::from_profiles(baud, bits, &tx_profile, &rx_profile);
    // Scenario values override the profiles' buffers.
    if let Some(n) = cfg.values.get("rx_buffer").and_then(|v| v.as_u64()) {
        sc.uart.rx_buffer = n as usize;
    }
    if let Some(n) = cfg.values.get("tx_buffer").and_then(|v| v.as_u64()) {
        sc.uart.tx_buffer = n as usize;
    }
    sc.time_cap_ns = (cfg.float("timeout_s") * 1e9) as u64;

    let name = endpoint::file_name(&input.path);
    let framing = endpoint::framing(cfg);
    let mut tx = endpoint::sender(cfg, &input.bytes, &name)?;
    let mut rx = endpoint::receiver(cfg);
    let report = perfkit_engine::simulate(
        &sc,
        &mut TxPump::framed(&mut tx, framing),
        &mut RxPump::new(&mut rx),
    )
    .context("uart model")?;
    let stats = tx.stats();
    let tx_side = Side::new(
        report.sender.span_ns() as f64 / 1e9,
        stats.blocks,
        stats.bytes,
    );
    let mut rx_side = endpoint::side(rx.stats());
    rx_side.errors = endpoint::rx_errors(&rx);
    let counters = BTreeMap::from([
        ("overflow_drops".to_owned(), report.overflow_drops),
        ("delivered_bytes".to_owned(), report.delivered_bytes),
        ("rx_high_water".to_owned(), report.rx_high_water as u64),
        ("timed_out".to_owned(), report.timed_out as u64),
    ]);
    let mut metrics = BTreeMap::new();
    metrics.insert("virtual_seconds".to_owned(), report.end_ns as f64 / 1e9);
    metrics.insert(
        "tx_busy_fraction".to_owned(),
        busy(report.sender.busy_ns, report.end_ns),
    );
    metrics.insert(
        "rx_busy_fraction".to_owned(),
        busy(report.receiver.busy_ns, report.end_ns),
    );
    Ok(Outcome {
        time_base: TimeBase::Virtual,
        tx: tx_side,
        rx: rx_side,
        integrity: endpoint::integrity(&input.sha256, &rx),
        link: LinkStats {
            wire_bytes: report.wire_bytes,
            utilisation: Some(report.utilisation),
            counters,
        },
        metrics,
        ..Default::default()
    })
}

fn busy(busy_ns: u64, end_ns: u64) -> f64 {
    if end_ns == 0 {
        0.0
    } else {
        busy_ns as f64 / end_ns as f64
    }
}
