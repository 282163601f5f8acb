//! Which resource bounded a simulated transfer's throughput, with the
//! figures that show it.
//!
//! The sender's time splits into CPU (its stages), waiting in writes for
//! the line (the transmit buffer was full) and idling (throttled); the
//! receiver's into CPU and waiting. The rule, in order:
//!
//! 1. bytes lost to a full receive buffer: **buffer overflow** (the
//!    receiver fell behind and the link has no flow control);
//! 2. the receiver still busy long after the sender finished, and busy
//!    nearly all the time: **receiver CPU**;
//! 3. the sender idle more than it computed or waited for the line: its
//!    **throttle** set the pace;
//! 4. the sender waiting for the line more than computing: **wire**;
//! 5. otherwise **sender CPU**.

use serde::{Deserialize, Serialize};

use crate::sim::{SimConfig, SimReport};

/// The resource that bounded the throughput.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// The sender's CPU.
    SenderCpu,
    /// The receiver's CPU.
    ReceiverCpu,
    /// The line's rate.
    Wire,
    /// The receive buffer overflowed.
    BufferOverflow,
    /// The sender's throttle.
    Throttle,
}

impl Resource {
    /// How reports name it.
    pub fn name(self) -> &'static str {
        match self {
            Resource::SenderCpu => "sender CPU",
            Resource::ReceiverCpu => "receiver CPU",
            Resource::Wire => "wire",
            Resource::BufferOverflow => "buffer overflow",
            Resource::Throttle => "sender throttle",
        }
    }
}

/// The verdict and its evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bottleneck {
    /// What bounded the throughput.
    pub resource: Resource,
    /// One sentence with the deciding figures.
    pub why: String,
    /// The figures: `tx_cpu`, `tx_write_wait`, `tx_idle` (fractions of the
    /// sender's time), `rx_busy` (of the run), `utilisation`,
    /// `overflow_bytes`, `rx_high_water_fraction`, `rx_lag_s`.
    pub evidence: Vec<(String, f64)>,
}

fn frac(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Judges one simulated run.
pub fn judge(cfg: &SimConfig, r: &SimReport) -> Bottleneck {
    let window = r.sender.last_message_ns.unwrap_or(0);
    let tx_cpu = frac(r.sender.busy_ns, window);
    let tx_wait = frac(r.sender.write_wait_ns, window);
    let tx_idle = (1.0 - tx_cpu - tx_wait).max(0.0);
    let rx_busy = frac(r.receiver.busy_ns, r.end_ns);
    let lag_ns = r
        .receiver
        .last_message_ns
        .unwrap_or(0)
        .saturating_sub(window);
    let high = frac(r.rx_high_water as u64, cfg.uart.rx_buffer as u64);
    let pct = |x: f64| format!("{:.0} %", x * 100.0);
    let (resource, why) = if r.overflow_drops > 0 {
        (
            Resource::BufferOverflow,
            format!(
                "{} bytes found the receiver's {}-byte buffer full and were lost; the receiver was busy {} of the run and the link has no flow control",
                r.overflow_drops,
                cfg.uart.rx_buffer,
                pct(rx_busy)
            ),
        )
    } else if rx_busy > 0.9 && lag_ns > window / 10 {
        (
            Resource::ReceiverCpu,
            format!(
                "the receiver was busy {} of the run and finished {:.1} s after the sender's last write",
                pct(rx_busy),
                lag_ns as f64 / 1e9
            ),
        )
    } else if tx_idle >= tx_cpu.max(tx_wait) {
        (
            Resource::Throttle,
            format!(
                "the sender idled {} of its time waiting for its next slot (CPU {}, waiting for the line {}; line utilisation {})",
                pct(tx_idle),
                pct(tx_cpu),
                pct(tx_wait),
                pct(r.utilisation)
            ),
        )
    } else if tx_wait > tx_cpu {
        (
            Resource::Wire,
            format!(
                "the sender waited for the line {} of its time and computed {}; line utilisation {}",
                pct(tx_wait),
                pct(tx_cpu),
                pct(r.utilisation)
            ),
        )
    } else {
        (
            Resource::SenderCpu,
            format!(
                "the sender computed {} of its time and waited for the line {}; line utilisation {}",
                pct(tx_cpu),
                pct(tx_wait),
                pct(r.utilisation)
            ),
        )
    };
    let evidence = [
        ("tx_cpu", tx_cpu),
        ("tx_write_wait", tx_wait),
        ("tx_idle", tx_idle),
        ("rx_busy", rx_busy),
        ("utilisation", r.utilisation),
        ("overflow_bytes", r.overflow_drops as f64),
        ("rx_high_water_fraction", high),
        ("rx_lag_s", lag_ns as f64 / 1e9),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Bottleneck {
        resource,
        why,
        evidence,
    }
}
