//! `heaps`: SPEAD heaps over UDP on 127.0.0.1, sent by perfkit's sender (one
//! heap per call, a batch per call, or a batch with UDP GSO) or by spead2's
//! batched Python API, and received, reassembled and verified by perfkit.
//! spead2's Python and sender script are found here ([`crate::locate`]);
//! the run stops with "interrupted" once the run's cancel flag is set.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::anyhow;
use perfkit_report::model::{Integrity, LinkStats, Side, TimeBase};
use perfkit_spead::run::{self, Impl, RunConfig, Spead2Sender};
use perfkit_spead::send::Mode;

use super::Outcome;
use crate::locate::Places;
use crate::scenario::Scenario;
use crate::spec::{HeapMode, HeapSender, HeapsSpec};

/// The `heaps` kind.
pub struct Heaps;

impl super::Kind for Heaps {
    fn name(&self) -> &'static str {
        "heaps"
    }
    fn run(&self, ctx: &super::RunCtx<'_>) -> anyhow::Result<Outcome> {
        run(ctx.scenario, &ctx.spec.heaps, ctx.cancel)
    }
    fn preflight(&self, s: &Scenario, spec: &crate::spec::RunSpec) -> Result<(), super::Refusal> {
        let rc = config(s, &spec.heaps)
            .map_err(|e| super::Refusal::new("heaps.implementation", format!("{e:#}")))?;
        rc.validate().map_err(|e| {
            let key = match e.to_string() {
                m if m.contains("heap size") => "heaps.heap_size",
                m if m.contains("packet size") => "heaps.packet_size",
                _ => "heaps.implementation",
            };
            super::Refusal::new(key, e.to_string())
        })
    }
}

/// The spead crate's settings for one heaps configuration, with spead2's
/// sender found when it is the one to run.
fn config(s: &Scenario, h: &HeapsSpec) -> anyhow::Result<RunConfig> {
    let mode = match h.mode {
        HeapMode::Heap => Mode::Heap,
        HeapMode::Batch => Mode::Batch,
        HeapMode::BatchGso => Mode::BatchGso,
    };
    let implementation = match h.implementation {
        HeapSender::Perfkit => Impl::Perfkit,
        HeapSender::Spead2 => Impl::Spead2,
    };
    let spead2 = match implementation {
        Impl::Spead2 => {
            let places = Places::for_scenario(&s.path);
            let script = places.default(
                "scripts/spead2/send.py",
                "spead2 sender script",
                "run from the perfkit repository or set PERFKIT_ROOT to it",
            )?;
            Some(Spead2Sender {
                python: places.spead2_python(),
                script,
            })
        }
        Impl::Perfkit => None,
    };
    Ok(RunConfig {
        heap_size: h.heap_size,
        packet_size: h.packet_size,
        mode,
        implementation,
        volume_bytes: (h.volume_mb * 1024.0 * 1024.0) as u64,
        time_cap: Duration::from_secs_f64(h.time_cap_s),
        rate_bytes_per_s: (h.rate_mb_s * 1024.0 * 1024.0) as u64,
        spead2,
        ..RunConfig::default()
    })
}

/// Runs one heaps configuration.
fn run(s: &Scenario, h: &HeapsSpec, cancel: &AtomicBool) -> anyhow::Result<Outcome> {
    let rc = config(s, h)?;
    let st = run::run(&rc, cancel).map_err(|e| anyhow!("{e}"))?;
    let tx = Side::new(st.seconds, st.heaps, st.bytes);
    let mut rx = Side::new(st.seconds, st.rx.verified_heaps, st.rx.payload_bytes);
    rx.errors = BTreeMap::from([
        ("heaps_incomplete".to_owned(), st.rx.heaps_incomplete),
        ("heaps_lost".to_owned(), st.rx.heaps_lost),
        ("duplicates".to_owned(), st.rx.duplicates),
        ("bad_packets".to_owned(), st.rx.bad_packets),
        ("over_budget".to_owned(), st.rx.over_budget),
        ("verify_failures".to_owned(), st.rx.verify_failures),
    ]);
    let metrics = BTreeMap::from([
        ("heaps_per_s".to_owned(), st.heaps_per_s),
        ("packets_per_s".to_owned(), st.packets_per_s),
        ("mb_per_s".to_owned(), st.mb_per_s),
        (
            "rx_complete_fraction".to_owned(),
            if st.heaps > 0 {
                st.rx.verified_heaps as f64 / st.heaps as f64
            } else {
                0.0
            },
        ),
    ]);
    let counters = BTreeMap::from([
        ("packets".to_owned(), st.packets),
        ("send_calls".to_owned(), st.send_calls),
        ("gso_fallbacks".to_owned(), st.gso_fallbacks),
        ("gso_active".to_owned(), st.gso_active as u64),
        ("time_capped".to_owned(), st.time_capped as u64),
        ("rx_packets".to_owned(), st.rx.packets),
        ("rx_recv_calls".to_owned(), st.rx.recv_calls),
        ("rx_gro".to_owned(), st.rx.gro as u64),
        ("stopped_cleanly".to_owned(), st.rx.stopped_cleanly as u64),
    ]);
    Ok(Outcome {
        time_base: TimeBase::Real,
        tx,
        rx,
        // Every heap sent arrived and matched its pattern. Loss on loopback
        // under overload is reported here, not hidden.
        integrity: Integrity {
            ok: st.rx.verified_ok && st.rx.heaps_lost == 0 && st.rx.verify_failures == 0,
            ..Default::default()
        },
        link: LinkStats {
            wire_bytes: st.bytes,
            utilisation: None,
            counters,
        },
        metrics,
        ..Default::default()
    })
}
