//! `pico`: the stack as RP2040 firmware against the host's stack, on the
//! rp2040js emulator (cycle-counted virtual time, runs in CI) or on a real
//! board through a debug probe. The device's own per-stage snapshot comes
//! back with the run and is kept as `device_stages`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, bail};
use perfkit_pico::{DeviceRole, PicoRunConfig, Target};
use perfkit_report::model::TimeBase;

use super::Outcome;
use crate::scenario::{Config, Scenario};
use crate::spec::TransferSpec;

/// The `pico` kind.
pub struct Pico;

impl super::Kind for Pico {
    fn name(&self) -> &'static str {
        "pico"
    }
    fn run(&self, ctx: &super::RunCtx<'_>) -> anyhow::Result<Outcome> {
        run(ctx.scenario, ctx.config, &ctx.spec.transfer, ctx.cancel)
    }
}

/// Runs one pico configuration.
fn run(
    s: &Scenario,
    cfg: &Config,
    transfer: &TransferSpec,
    cancel: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let role = match cfg.str("role") {
        Some("receiver") => DeviceRole::Receiver,
        _ => DeviceRole::Sender,
    };
    let target = match cfg.str("target") {
        Some("hardware") => {
            let Some(serial) = cfg.str("device") else {
                bail!("{}: key `link.device`: target = \"hardware\" needs the serial device wired to the board's UART0", s.path.display());
            };
            Target::Hardware {
                probe: cfg.str("probe").map(str::to_owned),
                serial: PathBuf::from(serial),
            }
        }
        _ => Target::Emulator { runner: None },
    };
    let input = super::input::resolve(s, &s.input).ok_or_else(|| {
        anyhow!(
            "{}: key `input`: {} not found",
            s.path.display(),
            s.input.display()
        )
    })?;
    // The same settings, validated the same way, as a host-side sender.
    let sc = transfer.sender_config()?;
    let pc = PicoRunConfig {
        target,
        role,
        baud: cfg.int("baud") as u32,
        block_size: sc.block_size,
        start_meta: sc.start_meta,
        meta_every: sc.meta_every,
        repeats: sc.repeats,
        throttle_pps: sc.throttle_pps,
        elf: cfg
            .str("elf")
            .map(PathBuf::from)
            .unwrap_or_else(perfkit_pico::default_elf),
        input,
        output: None,
        timeout_s: transfer.timeout_s,
        cancel: Some(cancel),
    };
    let o = perfkit_pico::run(&pc).map_err(|e| anyhow!("{e}"))?;
    let mut link = o.link;
    for (k, v) in o.device_counters {
        link.counters.insert(format!("device.{k}"), v);
    }
    let metrics = BTreeMap::from([
        ("run_seconds".to_owned(), o.run_seconds),
        ("device_cpu_hz".to_owned(), o.device_cpu_hz as f64),
    ]);
    Ok(Outcome {
        time_base: match pc.target {
            Target::Emulator { .. } => TimeBase::Virtual,
            Target::Hardware { .. } => TimeBase::Real,
        },
        tx: o.tx,
        rx: o.rx,
        integrity: o.integrity,
        link,
        device_stages: Some(o.device_stages),
        metrics,
        ..Default::default()
    })
}
