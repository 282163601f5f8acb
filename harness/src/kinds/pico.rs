//! `pico`: the stack as RP2040 firmware against the host's stack, on the
//! rp2040js emulator (cycle-counted virtual time, runs in CI) or on a real
//! board through a debug probe. The device's own per-stage snapshot comes
//! back with the run and is kept as `device_stages`. The firmware ELF, the
//! emulator's runner and the image are found here ([`crate::locate`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{anyhow, bail};
use perfkit_pico::{DeviceRole, PicoRunConfig, Target};
use perfkit_report::model::TimeBase;

use super::Outcome;
use crate::locate::Places;
use crate::scenario::Scenario;
use crate::spec::{PicoSpec, PicoTarget, TransferSpec};

/// The `pico` kind.
pub struct Pico;

impl super::Kind for Pico {
    fn name(&self) -> &'static str {
        "pico"
    }
    fn run(&self, ctx: &super::RunCtx<'_>) -> anyhow::Result<Outcome> {
        run(ctx.scenario, &ctx.spec.pico, &ctx.spec.transfer, ctx.cancel)
    }
    fn preflight(&self, s: &Scenario, spec: &crate::spec::RunSpec) -> Result<(), super::Refusal> {
        super::preflight::sender(&spec.transfer)?;
        super::preflight::input(s, &spec.transfer)?;
        config(s, &spec.pico, &spec.transfer, None)
            .map(drop)
            .map_err(|e| {
                let key = match format!("{e:#}") {
                    m if m.contains("pico.elf") => "pico.elf",
                    m if m.contains("link.device") => "link.device",
                    _ => "pico.target",
                };
                super::Refusal::new(key, super::preflight::strip(s, &e))
            })
    }
}

/// The device run's settings: firmware, runner and input found, the sender
/// settings validated.
fn config<'a>(
    s: &Scenario,
    p: &PicoSpec,
    transfer: &TransferSpec,
    cancel: Option<&'a AtomicBool>,
) -> anyhow::Result<PicoRunConfig<'a>> {
    let places = Places::for_scenario(&s.path);
    let setup = "run scripts/setup.d/40-firmware.sh, from the perfkit repository or with PERFKIT_ROOT set to it";
    let role = match p.device_receives {
        true => DeviceRole::Receiver,
        false => DeviceRole::Sender,
    };
    let target = match &p.target {
        PicoTarget::Hardware { probe, device } => {
            let Some(serial) = device else {
                bail!("{}: key `link.device`: target = \"hardware\" needs the serial device wired to the board's UART0", s.path.display());
            };
            Target::Hardware {
                probe: probe.clone(),
                serial: PathBuf::from(serial),
            }
        }
        PicoTarget::Emulator => Target::Emulator {
            runner: places.default(
                "firmware/pico/emulator/runner.mjs",
                "rp2040js runner",
                setup,
            )?,
        },
    };
    let input = super::input::locate(s)?;
    let elf = places.file(
        p.elf.as_deref().map(Path::new),
        "build/firmware/perfkit-pico-fw.elf",
        "firmware ELF (key `pico.elf`)",
        setup,
    )?;
    // The same settings, validated the same way, as a host-side sender.
    let sc = transfer.sender_config()?;
    Ok(PicoRunConfig {
        target,
        role,
        baud: p.baud,
        block_size: sc.block_size,
        start_meta: sc.start_meta,
        meta_every: sc.meta_every,
        repeats: sc.repeats,
        throttle_pps: sc.throttle_pps,
        elf,
        input,
        output: None,
        timeout_s: transfer.timeout_s,
        cancel,
    })
}

/// Runs one pico configuration.
fn run(
    s: &Scenario,
    p: &PicoSpec,
    transfer: &TransferSpec,
    cancel: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let pc = config(s, p, transfer, Some(cancel))?;
    let o = perfkit_pico::run(&pc).map_err(|e| anyhow!("{e}"))?;
    let mut link = o.link;
    for (k, v) in o.device_counters {
        link.counters.insert(format!("device.{k}"), v);
    }
    let mut metrics = BTreeMap::from([
        ("run_seconds".to_owned(), o.run_seconds),
        ("device_cpu_hz".to_owned(), o.device_cpu_hz as f64),
    ]);
    // Cycles are counted only by the emulator; a board's are timed.
    if matches!(pc.target, Target::Emulator { .. }) {
        metrics.extend(crate::instructions::device_cycles(&o.device_stages));
    }
    let verdict = super::device_model::pico_verdict(
        p.device_receives,
        transfer.throttle_pps,
        o.tx.seconds.max(o.rx.seconds),
        &link,
        o.device_cpu_hz as f64,
    );
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
        device_model: Some(verdict),
        metrics,
        ..Default::default()
    })
}
