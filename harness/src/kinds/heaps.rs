//! `heaps`: SPEAD heaps over UDP on 127.0.0.1, perfkit's sender or spead2's.

use std::sync::atomic::AtomicBool;

use super::Outcome;
use crate::scenario::{Config, Scenario};

/// Runs one heaps configuration.
pub fn run(_s: &Scenario, _cfg: &Config, _cancel: &AtomicBool) -> anyhow::Result<Outcome> {
    anyhow::bail!("the heaps kind is not available in this build yet")
}
