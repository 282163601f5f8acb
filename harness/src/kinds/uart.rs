//! `uart`: the transfer over the virtual-time UART model, each device charged
//! the CPU costs of its profile (`fixtures/profiles/`). The stack's real
//! sender and receiver run inside the model; only time is simulated, so the
//! figures are identical on every machine while the per-stage host timings
//! perfkit records stay real.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context};
use perfkit_engine::{RxPump, TxPump};
use perfkit_link::sim::{SimConfig, SimReport};
use perfkit_link::DeviceProfile;
use perfkit_report::model::{Integrity, LinkStats, Side, TimeBase};

use super::endpoint;
use super::input::Input;
use super::Outcome;
use crate::scenario::Scenario;
use crate::spec::{LinkSpec, RunSpec};

fn profile(s: &Scenario, name: &str, key: &str) -> anyhow::Result<DeviceProfile> {
    load_profile(s, name).map_err(|e| anyhow!("{}: key `link.{key}`: {e}", s.path.display()))
}

/// A name in fixtures/profiles/, then a path as given or beside the scenario.
pub(super) fn load_profile(s: &Scenario, name: &str) -> perfkit_link::Result<DeviceProfile> {
    DeviceProfile::resolve(name).or_else(|e| {
        match super::input::resolve(s, std::path::Path::new(name)) {
            Some(p) => DeviceProfile::load(&p),
            None => Err(e),
        }
    })
}

/// Runs one uart configuration.
pub fn run(s: &Scenario, spec: &RunSpec, input: &Input) -> anyhow::Result<Outcome> {
    let LinkSpec::Uart {
        baud,
        bits_per_char,
        rx_buffer,
        tx_buffer,
        tx_profile,
        rx_profile,
        device,
    } = &spec.link
    else {
        anyhow::bail!("the uart runner was given another link");
    };
    let t = &spec.transfer;
    let tx_profile = profile(s, tx_profile, "tx_profile")?;
    let rx_profile = profile(s, rx_profile, "rx_profile")?;
    let mut sc = SimConfig::from_profiles(*baud, *bits_per_char, &tx_profile, &rx_profile);
    // Scenario values override the profiles' buffers.
    if let Some(n) = *rx_buffer {
        sc.uart.rx_buffer = n;
    }
    if let Some(n) = *tx_buffer {
        sc.uart.tx_buffer = n;
    }
    sc.time_cap_ns = (t.timeout_s * 1e9) as u64;
    super::device_model::apply(&mut sc, &tx_profile, &rx_profile, device)?;
    if t.mux_transfers > 1 {
        return super::mux::run(&sc, t, input);
    }

    let name = endpoint::file_name(&input.path);
    let framing = t.framing();
    let mut tx = endpoint::sender(t, &input.bytes, &name)?;
    // Virtual time: a second thread would change nothing measured.
    let mut rx = endpoint::receiver(t.channel, t.framing(), false);
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
    let integrity = endpoint::integrity(&input.sha256, &rx);
    Ok(outcome(&sc, &report, tx_side, rx_side, integrity))
}

/// A modelled run's record: both sides as given, the line's counters, busy
/// fractions, and the device model's stage tables and verdict.
pub(super) fn outcome(
    sc: &SimConfig,
    report: &SimReport,
    tx: Side,
    rx: Side,
    integrity: Integrity,
) -> Outcome {
    let counters = BTreeMap::from([
        ("overflow_drops".to_owned(), report.overflow_drops),
        ("delivered_bytes".to_owned(), report.delivered_bytes),
        ("rx_high_water".to_owned(), report.rx_high_water as u64),
        ("timed_out".to_owned(), report.timed_out as u64),
    ]);
    let (device_stages, device_model) = super::device_model::outcome(sc, report);
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
    Outcome {
        time_base: TimeBase::Virtual,
        tx,
        rx,
        integrity,
        link: LinkStats {
            wire_bytes: report.wire_bytes,
            utilisation: Some(report.utilisation),
            counters,
        },
        metrics,
        device_stages,
        device_model: Some(device_model),
        ..Default::default()
    }
}

fn busy(busy_ns: u64, end_ns: u64) -> f64 {
    if end_ns == 0 {
        0.0
    } else {
        busy_ns as f64 / end_ns as f64
    }
}
