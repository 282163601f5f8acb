//! Scenario kinds: each turns one configuration into one measured run.
//!
//! `transfer` moves a file through the dttk stack over a loopback, a pipe
//! between two processes, an emulated UART in virtual time, or a serial
//! device; `heaps` streams SPEAD heaps over UDP; `pico` runs the stack as
//! firmware on an emulated or real RP2040.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use perfkit_report::model::{Integrity, LinkStats, Side, Stages, TimeBase};

use crate::scenario::{Config, Scenario};

pub mod endpoint;
pub mod heaps;
mod input;
pub use input::check_size;
pub mod pico;
pub mod transfer;
mod uart;
mod yardstick;

/// What one run produced (the runner adds the config, ids and host stages).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Seconds counted in real or virtual time.
    pub time_base: TimeBase,
    /// Sending side.
    pub tx: Side,
    /// Receiving side.
    pub rx: Side,
    /// Did the file arrive intact.
    pub integrity: Integrity,
    /// What the link carried.
    pub link: LinkStats,
    /// Stages measured in another process (a pipe's children).
    pub peer_stages: Option<Stages>,
    /// Stages measured on a device (firmware).
    pub device_stages: Option<Stages>,
    /// Kind-specific figures.
    pub metrics: BTreeMap<String, f64>,
}

/// Runs one configuration once.
pub fn run_one(s: &Scenario, cfg: &Config, cancel: &AtomicBool) -> anyhow::Result<Outcome> {
    match s.kind.as_str() {
        "transfer" => transfer::run(s, cfg, cancel),
        "heaps" => heaps::run(s, cfg, cancel),
        "pico" => pico::run(s, cfg, cancel),
        other => anyhow::bail!("unknown scenario kind `{other}`"),
    }
}
