//! `pico`: the stack as RP2040 firmware, on rp2040js or a real board.

use std::sync::atomic::AtomicBool;

use super::Outcome;
use crate::scenario::{Config, Scenario};

/// Runs one pico configuration.
pub fn run(_s: &Scenario, _cfg: &Config, _cancel: &AtomicBool) -> anyhow::Result<Outcome> {
    anyhow::bail!("the pico kind is not available in this build yet")
}
