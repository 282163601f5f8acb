//! `heaps`: SPEAD heaps over UDP on 127.0.0.1, sent by perfkit's sender (one
//! heap per call, a batch per call, or a batch with UDP GSO) or by spead2's
//! batched Python API, and received, reassembled and verified by perfkit's
//! receiver or by spead2's (`receiver_implementation`; its C++ stream
//! through the Python package, each heap checked against the pattern in the
//! script). Each record holds the sender's figures beside its receiver's
//! loss (`rx.errors.heaps_lost`, `integrity`) and the receiver's own rate
//! and CPU time (`metrics.rx_mb_per_s`, `metrics.rx_mb_per_cpu_s`).
//! spead2's Python and scripts are found here ([`crate::locate`]);
//! the run stops with "interrupted" once the run's cancel flag is set.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::anyhow;
use perfkit_report::model::{Integrity, LinkStats, Side, TimeBase};
use perfkit_spead::run::{self, Impl, RunConfig, RunStats, RxStats, Spead2Sender};
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
        run(ctx)
    }
    fn preflight(&self, s: &Scenario, spec: &crate::spec::RunSpec) -> Result<(), super::Refusal> {
        let rc = config(&Places::for_scenario(&s.path), &spec.heaps)
            .map_err(|e| super::Refusal::new("heaps.implementation", format!("{e:#}")))?;
        // With both ends here, the receiver's CPU must be one of ours, with
        // another left for the sender; an agent's CPUs are its own, and
        // its record says whether the CPU held.
        if let (Some(cpu), true) = (rc.rx_cpu, spec.hosts.all_local()) {
            if let Some(why) = perfkit_spead::affinity::refusal(cpu) {
                return Err(super::Refusal::new("heaps.receiver_cpu", why));
            }
        }
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

/// Runs one heaps configuration: both ends here, or one on an agent.
fn run(ctx: &super::RunCtx<'_>) -> anyhow::Result<Outcome> {
    let (s, spec, cancel) = (ctx.scenario, ctx.spec, ctx.cancel);
    let h = &spec.heaps;
    let mut rc = config(&Places::for_scenario(&s.path), h)?;
    if let Some(place) = spec.hosts.remote() {
        let hash = crate::remote::config_hash(ctx.config);
        return crate::remote::client::heaps(&rc, h, &hash, &place?, ctx.cancel);
    }
    // Both ends here: the receiver's CPU is its own.
    rc.tx_avoid_cpu = rc.rx_cpu;
    if h.receiver == HeapSender::Spead2 {
        // spead2 receives: its receiver here, the sender on a second thread.
        let places = Places::for_scenario(&s.path);
        let waiting = Waiting::bind(&places, h, &rc, std::net::Ipv4Addr::LOCALHOST.into())?;
        let dest = waiting.address();
        let (tx, rx) = std::thread::scope(|scope| {
            let rx = scope.spawn(|| waiting.receive(&rc, cancel));
            let tx = run::send_to(&rc, dest, cancel).map_err(|e| anyhow!("{e}"));
            let rx = rx
                .join()
                .unwrap_or_else(|_| Err(anyhow!("the receiving thread panicked")));
            (tx, rx)
        });
        return Ok(both_here(&run::combine(&rc, tx?, rx?)));
    }
    let st = run::run(&rc, cancel).map_err(|e| anyhow!("{e}"))?;
    Ok(both_here(&st))
}

/// The record of a run with both ends here: the receiver's rate is read
/// over the sender's time, as the record always has, whichever receiver
/// ran, so perfkit's and spead2's receivers compare on one clock.
fn both_here(st: &RunStats) -> Outcome {
    let mut o = outcome(st);
    o.rx = Side::new(st.seconds, st.rx.verified_heaps, st.rx.payload_bytes);
    o.rx.errors = rx_errors(&st.rx);
    o
}

/// The spead crate's settings for one configuration, with spead2's Python
/// and sender script found in `places` when spead2 sends.
pub(crate) fn config(places: &Places, h: &HeapsSpec) -> anyhow::Result<RunConfig> {
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
        rx_nice: h.receiver_nice,
        rx_cpu: h.receiver_cpu,
        rx_buffer: h
            .receiver_buffer_mb
            .map_or(RunConfig::default().rx_buffer, |mb| {
                mb.saturating_mul(1 << 20)
            }),
        ..RunConfig::default()
    })
}

/// A receiver bound and waiting for heaps: perfkit's or spead2's.
pub(crate) enum Waiting {
    /// perfkit's reassembler.
    Perfkit(run::Receiving),
    /// spead2's Python receiver.
    Spead2(run::Spead2Receiving),
}

impl Waiting {
    /// The configuration's receiver, bound on `ip` (a free port).
    pub(crate) fn bind(
        places: &Places,
        h: &HeapsSpec,
        rc: &RunConfig,
        ip: std::net::IpAddr,
    ) -> anyhow::Result<Waiting> {
        let at = std::net::SocketAddr::new(ip, 0);
        Ok(match h.receiver {
            HeapSender::Perfkit => {
                Waiting::Perfkit(run::Receiving::bind(at, rc).map_err(|e| anyhow!("{e}"))?)
            }
            HeapSender::Spead2 => {
                let script = places.default(
                    "scripts/spead2/recv.py",
                    "spead2 receiver script",
                    "run from the perfkit repository or set PERFKIT_ROOT to it",
                )?;
                let timeout = rc.time_cap + Duration::from_secs(30);
                Waiting::Spead2(
                    run::Spead2Receiving::start(&places.spead2_python(), &script, ip, rc, timeout)
                        .map_err(|e| anyhow!("{e}"))?,
                )
            }
        })
    }

    /// Where senders send.
    pub(crate) fn address(&self) -> std::net::SocketAddr {
        match self {
            Waiting::Perfkit(r) => r.address(),
            Waiting::Spead2(r) => r.address(),
        }
    }

    /// Receives until the stream ends.
    pub(crate) fn receive(self, rc: &RunConfig, cancel: &AtomicBool) -> anyhow::Result<RxStats> {
        match self {
            Waiting::Perfkit(r) => r.receive(rc, cancel),
            Waiting::Spead2(r) => r.receive(cancel),
        }
        .map_err(|e| anyhow!("{e}"))
    }
}

fn rx_errors(rx: &RxStats) -> BTreeMap<String, u64> {
    BTreeMap::from([
        ("heaps_incomplete".to_owned(), rx.heaps_incomplete),
        ("heaps_lost".to_owned(), rx.heaps_lost),
        ("duplicates".to_owned(), rx.duplicates),
        ("bad_packets".to_owned(), rx.bad_packets),
        ("over_budget".to_owned(), rx.over_budget),
        ("verify_failures".to_owned(), rx.verify_failures),
    ])
}

/// 10^6 bytes per second, 0 without time.
fn per(bytes: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        bytes as f64 / seconds / 1e6
    } else {
        0.0
    }
}

/// One run's record from its figures (each side's rate over its own time:
/// the sender's sending, the receiver's first to last datagram).
pub(crate) fn outcome(st: &RunStats) -> Outcome {
    let rx = &st.rx;
    let tx_side = Side::new(st.seconds, st.heaps, st.bytes);
    let mut rx_side = Side::new(rx.seconds, rx.verified_heaps, rx.payload_bytes);
    rx_side.errors = rx_errors(rx);
    let metrics = BTreeMap::from([
        ("heaps_per_s".to_owned(), st.heaps_per_s),
        ("packets_per_s".to_owned(), st.packets_per_s),
        ("mb_per_s".to_owned(), st.mb_per_s),
        // The sender's payload per CPU-second, beside the receiver's below:
        // whether a receiver can keep up with a sender on the same machine.
        ("mb_per_cpu_s".to_owned(), st.mb_per_cpu_s),
        (
            "rx_complete_fraction".to_owned(),
            if st.heaps > 0 {
                rx.verified_heaps as f64 / st.heaps as f64
            } else {
                0.0
            },
        ),
        // The receiver's own figures: verified payload over its time (first
        // to last datagram) and over the CPU time it used, which tells two
        // receivers apart when both keep up with the sender.
        ("rx_mb_per_s".to_owned(), per(rx.payload_bytes, rx.seconds)),
        (
            "rx_mb_per_cpu_s".to_owned(),
            per(rx.payload_bytes, rx.cpu_seconds),
        ),
        ("rx_cpu_seconds".to_owned(), rx.cpu_seconds),
    ]);
    let mut counters = BTreeMap::from([
        ("packets".to_owned(), st.packets),
        ("send_calls".to_owned(), st.send_calls),
        ("gso_fallbacks".to_owned(), st.gso_fallbacks),
        ("gso_active".to_owned(), st.gso_active as u64),
        ("time_capped".to_owned(), st.time_capped as u64),
        ("rx_packets".to_owned(), rx.packets),
        ("rx_recv_calls".to_owned(), rx.recv_calls),
        ("rx_gro".to_owned(), rx.gro as u64),
        ("stopped_cleanly".to_owned(), rx.stopped_cleanly as u64),
        ("rx_heaps_lost".to_owned(), rx.heaps_lost),
        ("rx_rcvbuf".to_owned(), rx.rcvbuf as u64),
    ]);
    // How often each end waited (voluntary) or had its core taken
    // (involuntary): a receiver off its core is a receiver whose datagrams
    // only the socket buffer holds; and the fresh pages each touched
    // (docs/heaps.md). Absent when not known.
    for (end, counts) in [("rx", rx.counts), ("tx", st.sender_counts)] {
        if let Some(c) = counts {
            counters.insert(format!("{end}_switches_voluntary"), c.voluntary_switches);
            counters.insert(
                format!("{end}_switches_involuntary"),
                c.involuntary_switches,
            );
            counters.insert(format!("{end}_minor_faults"), c.minor_faults);
        }
    }
    // Asked for: whether each end ran as the run asked. A refusal is
    // said once per process; each record keeps it.
    static NICE: std::sync::Once = std::sync::Once::new();
    static RX_CPU: std::sync::Once = std::sync::Once::new();
    static TX_CPU: std::sync::Once = std::sync::Once::new();
    let held = [
        (
            "rx_nice_set",
            rx.nice_set,
            &NICE,
            "the receiver ran without the priority `receiver_nice` asks for \
             (raising it needs CAP_SYS_NICE, or an agent that knows the setting)",
        ),
        (
            "rx_cpu_set",
            rx.cpu_set,
            &RX_CPU,
            "the receiver did not run on the CPU `receiver_cpu` names alone \
             (one the receiving host does not let it use, one another perfkit run's receiver had, \
             or an agent that does not know the setting)",
        ),
        (
            "tx_cpu_set",
            st.sender_cpu_set,
            &TX_CPU,
            "the sender did not keep off the receiver's CPU `receiver_cpu` names",
        ),
    ];
    for (key, set, once, why) in held {
        let Some(set) = set else { continue };
        counters.insert(key.to_owned(), set as u64);
        if !set {
            once.call_once(|| {
                crate::errln!(
                    "perfkit: warning: {why}; each record says so (link.counters.{key} = 0)"
                )
            });
        }
    }
    Outcome {
        time_base: TimeBase::Real,
        tx: tx_side,
        rx: rx_side,
        // Every heap sent arrived and matched its pattern. Loss on loopback
        // under overload is reported here, not hidden.
        integrity: Integrity {
            ok: rx.verified_ok && rx.heaps_lost == 0 && rx.verify_failures == 0,
            ..Default::default()
        },
        link: LinkStats {
            wire_bytes: st.bytes,
            utilisation: None,
            counters,
        },
        metrics,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_spead::run::TxOutcome;
    use perfkit_spead::usage::Counts;

    #[test]
    fn kernel_counts_are_recorded_where_known_and_left_out_where_not() {
        let tx = TxOutcome {
            heaps: 1,
            counts: Some(Counts {
                voluntary_switches: 5,
                involuntary_switches: 2,
                minor_faults: 9,
            }),
            ..TxOutcome::default()
        };
        // A receiver that did not say (an agent from before the count):
        // no figure, rather than a zero that reads as measured.
        let o = outcome(&run::combine(&RunConfig::default(), tx, RxStats::default()));
        let c = &o.link.counters;
        assert_eq!(c.get("tx_switches_voluntary"), Some(&5));
        assert_eq!(c.get("tx_switches_involuntary"), Some(&2));
        assert_eq!(c.get("tx_minor_faults"), Some(&9));
        assert!(!c.contains_key("rx_switches_voluntary"), "{c:?}");
        assert!(!c.contains_key("rx_switches_involuntary"), "{c:?}");
        assert!(!c.contains_key("rx_minor_faults"), "{c:?}");
    }
}
