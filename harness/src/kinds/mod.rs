//! Scenario kinds: each turns one configuration into one measured run.
//!
//! `transfer` moves a file through the dttk stack over a loopback, a pipe
//! between two processes, an emulated UART in virtual time, or a serial
//! device; `heaps` streams SPEAD heaps over UDP; `pico` runs the stack as
//! firmware on an emulated or real RP2040.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use perfkit_report::model::{Integrity, LinkStats, Side, Stages, TimeBase};

use crate::scenario::{Config, Scenario, ScenarioError};
use crate::spec::RunSpec;

mod children;
pub mod device_model;
pub mod endpoint;
pub mod heaps;
pub(crate) mod input;
pub(crate) mod latency;
mod mux;
pub use input::{check_size, max_file_size};
pub mod pico;
mod preflight;
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
    /// Stages measured on a device (firmware) or charged by a device model.
    pub device_stages: Option<Stages>,
    /// A device model's bottleneck verdict and link timeline.
    pub device_model: Option<perfkit_report::device::DeviceModel>,
    /// Kind-specific figures.
    pub metrics: BTreeMap<String, f64>,
    /// Where each end ran, when not both here (see `RunRecord::hosts`).
    pub hosts: BTreeMap<String, String>,
}

/// What a kind gets for one run: the scenario, the configuration (flat, as
/// recorded), the same configuration typed, and the run's cancel flag.
pub struct RunCtx<'a> {
    /// The scenario file.
    pub scenario: &'a Scenario,
    /// The configuration's parameters as the record keeps them.
    pub config: &'a Config,
    /// The same, typed.
    pub spec: &'a RunSpec,
    /// Raised when the run must stop (Ctrl-C).
    pub cancel: &'a AtomicBool,
}

/// A scenario kind: turns one configuration into one measured run.
pub trait Kind: Sync {
    /// The name a scenario's `kind` gives.
    fn name(&self) -> &'static str;
    /// Runs one configuration once.
    fn run(&self, ctx: &RunCtx<'_>) -> anyhow::Result<Outcome>;
    /// Checks what a run of this configuration would refuse and can be
    /// known without running it (files to find, values out of reach).
    fn preflight(&self, _s: &Scenario, _spec: &RunSpec) -> Result<(), Refusal> {
        Ok(())
    }
}

/// A value a run would refuse: its key (`section.key`, or a top-level key)
/// and why.
#[derive(Debug)]
pub struct Refusal {
    /// The key, as written in the scenario.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl Refusal {
    /// A refusal of `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Refusal {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Checks every configuration of `s` as its runs would, before any runs:
/// what can be known up front is an error naming the file, line and key.
pub fn preflight(s: &Scenario) -> Result<(), ScenarioError> {
    let Some(kind) = KINDS.iter().find(|k| k.name() == s.kind) else {
        return Err(s.error_at("kind", format!("unknown scenario kind `{}`", s.kind)));
    };
    for cfg in s.configs() {
        let spec = RunSpec::from_config(&cfg).map_err(|e| s.error_at("", format!("{e:#}")))?;
        kind.preflight(s, &spec)
            .and_then(|()| crate::instructions::preflight(s, &cfg))
            .map_err(|r| s.error_at(&r.key, r.message))?;
    }
    Ok(())
}

/// What only a run needs beyond [`preflight`], checked before its first
/// run: an agent's token. `perfkit check` (a lint step that holds no
/// secrets) does not ask for it.
pub fn secrets(s: &Scenario) -> Result<(), ScenarioError> {
    for cfg in s.configs() {
        let spec = RunSpec::from_config(&cfg).map_err(|e| s.error_at("", format!("{e:#}")))?;
        preflight::hosts(&spec).map_err(|r| s.error_at(&r.key, r.message))?;
    }
    Ok(())
}

/// Every kind: a new one is a module here and one line in this list.
pub static KINDS: &[&dyn Kind] = &[&transfer::Transfer, &heaps::Heaps, &pico::Pico];

/// Runs one configuration once.
pub fn run_one(s: &Scenario, cfg: &Config, cancel: &AtomicBool) -> anyhow::Result<Outcome> {
    let kind = KINDS
        .iter()
        .find(|k| k.name() == s.kind)
        .ok_or_else(|| anyhow::anyhow!("unknown scenario kind `{}`", s.kind))?;
    let spec = RunSpec::from_config(cfg)?;
    kind.run(&RunCtx {
        scenario: s,
        config: cfg,
        spec: &spec,
        cancel,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_kind_the_parser_accepts_is_registered() {
        let names: Vec<&str> = super::KINDS.iter().map(|k| k.name()).collect();
        assert_eq!(names, crate::scenario::KINDS);
    }
}
