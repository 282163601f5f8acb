//! Runs across two hosts: `perfkit agent` runs one end of a transfer for a
//! `perfkit run` on another machine, which runs the other end and puts
//! both ends' figures and stage tables into one record.
//!
//! - [`proto`]: the control protocol (framing, messages, the token's
//!   challenge-response, the clock exchange); docs/specs/agent.md.
//! - [`agent`]: the server: one run at a time, every wait bounded.
//! - [`client`]: the transfer kind's side of a run with a remote end.
//! - [`netns`]: a second host on this machine (a network namespace joined
//!   by a veth pair, optionally shaped) with an agent in it.

pub mod agent;
pub mod client;
pub mod netns;
pub mod proto;

use std::collections::BTreeMap;
use std::time::Duration;

use perfkit_engine::{drive, Clock, Policy};
use perfkit_link::faults::FaultConfig;
use perfkit_link::End;

use crate::integrity::hex;
use crate::kinds::endpoint::{self, EndReport};
use crate::kinds::latency::{Stamper, Stamps};
use crate::kinds::transfer::{fault_counters, Injector};
use crate::spec::TransferSpec;

/// One end's report and, when the transfer measures latency, its stamps.
pub type Side = (EndReport, Option<Vec<(u16, u64)>>);

/// Runs one sending end to END over `end`, with `faults` injected in front
/// of it; its report (no stages: the caller's snapshot holds them).
#[allow(clippy::too_many_arguments)]
pub fn send_side(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    t: &TransferSpec,
    bytes: &[u8],
    name: &[u8],
    end: End<'static>,
    faults: Option<&FaultConfig>,
) -> anyhow::Result<Side> {
    let mut tx = endpoint::sender(t, bytes, name)?;
    let mut injector = Injector::new(end, faults)?;
    let mut stamper = Stamper::new(injector.end(), t.latency, t.channel, t.framing());
    let mut driven = stamper.end();
    let wire = drive::send_end(clock, policy, &mut tx, t.framing(), &mut driven)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut counters = BTreeMap::new();
    let on_wire = matches!(driven, End::Packets(_)).then(|| driven.stats().packets_out);
    drop(driven);
    let stamps = stamper.stamps.as_ref().map(Stamps::pairs);
    drop(stamper);
    let injected = injector.fault_stats();
    if let Some(f) = &injected {
        fault_counters(f, &mut counters);
    }
    if let Some(n) = on_wire {
        // What the sender sent: what left, plus what the injector dropped,
        // less the copies it added.
        let f = injected.unwrap_or_default();
        counters.insert(
            "packets_sent".to_owned(),
            (n + f.packets_lost).saturating_sub(f.packets_duplicated),
        );
    }
    let report = EndReport {
        side: endpoint::side(tx.stats()),
        wire_bytes: wire,
        counters,
        ..Default::default()
    };
    Ok((report, stamps))
}

/// Runs one receiving end over `end` until the transfer ends; its report
/// with the verdict against the SHA-256 the sender's META announced.
pub fn receive_side(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    t: &TransferSpec,
    end: End<'static>,
    chunk: usize,
) -> anyhow::Result<Side> {
    let mut rx = endpoint::receiver(t.channel, t.framing(), t.hash_thread);
    let mut stamper = Stamper::new(end, t.latency, t.channel, t.framing());
    let mut driven = stamper.end();
    let (_, wire) = drive::receive_end(
        clock,
        policy,
        &mut rx,
        &mut driven,
        chunk,
        Duration::from_secs(2),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    drop(driven);
    let stamps = stamper.stamps.as_ref().map(Stamps::pairs);
    let mut counters = BTreeMap::new();
    if let End::Packets(l) = stamper.inner() {
        counters.insert(
            "packets_arrived".to_owned(),
            crate::kinds::transfer::drain(l.as_mut()),
        );
    }
    let side = endpoint::rx_side(&rx);
    let sent_sha = rx.meta().map(|m| hex(&m.sha256)).unwrap_or_default();
    let report = EndReport {
        side,
        integrity: Some(endpoint::integrity(&sent_sha, &rx)),
        wire_bytes: wire,
        counters,
        ..Default::default()
    };
    Ok((report, stamps))
}

/// SHA-256 of a configuration's flat values, as `setup` carries it.
pub fn config_hash(cfg: &crate::scenario::Config) -> String {
    crate::integrity::sha256_hex(
        serde_json::to_string(&cfg.values)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// The chunk a kind's settings ask for (the default read otherwise).
pub fn chunk(settings: &perfkit_link::registry::Settings) -> usize {
    settings
        .get("chunk")
        .and_then(|v| v.as_u64())
        .map_or(1 << 16, |c| usize::try_from(c).unwrap_or(1 << 16))
}
