//! The link over time, sampled in virtual time into a bounded number of
//! equal intervals: bytes in flight, receive-buffer fill, bytes arrived and
//! bytes lost. The simulation observes the line at every event (each write
//! and each wake-up of the receiver); an interval keeps the largest fill and
//! flight it saw and the running totals at its last event. When the run
//! outlasts the intervals, neighbours merge and the interval doubles, so a
//! run of any length costs at most [`MAX_SAMPLES`] entries.

use serde::{Deserialize, Serialize};

/// Most intervals a timeline holds.
pub const MAX_SAMPLES: usize = 256;
/// Interval a timeline starts with (1 ms of virtual time).
const FIRST_INTERVAL_NS: u64 = 1_000_000;

/// One interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Most bytes written but not yet arrived (transmit buffer and wire).
    pub in_flight: u64,
    /// Most bytes waiting in the receive buffer.
    pub rx_fill: u64,
    /// Bytes arrived at the receiving end so far (kept or lost).
    pub arrived: u64,
    /// Bytes lost to a full receive buffer so far.
    pub dropped: u64,
}

/// The samples of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    /// Length of each interval, ns.
    pub interval_ns: u64,
    /// Interval `k` covers `[k, k+1) x interval_ns`.
    pub samples: Vec<Sample>,
    #[serde(skip)]
    last: Sample,
}

impl Timeline {
    pub(crate) fn new() -> Self {
        Timeline {
            interval_ns: FIRST_INTERVAL_NS,
            samples: Vec::new(),
            last: Sample::default(),
        }
    }

    /// Records the line's state at `t`.
    pub(crate) fn observe(&mut self, t: u64, s: Sample) {
        let mut k = (t / self.interval_ns) as usize;
        while k >= MAX_SAMPLES {
            self.halve();
            k = (t / self.interval_ns) as usize;
        }
        if k < self.samples.len() {
            // This interval already has events (or, for a write observed
            // when it starts, a later one does): keep the largest.
            let cur = &mut self.samples[k];
            cur.in_flight = cur.in_flight.max(s.in_flight);
            cur.rx_fill = cur.rx_fill.max(s.rx_fill);
            cur.arrived = cur.arrived.max(s.arrived);
            cur.dropped = cur.dropped.max(s.dropped);
        } else {
            // Intervals with no event hold the state the last event left
            // (nothing changes the line between events but the wire, whose
            // arrivals the next event counts).
            while self.samples.len() < k {
                self.samples.push(self.last);
            }
            self.samples.push(s);
        }
        self.last = s;
    }

    fn halve(&mut self) {
        let merged = self
            .samples
            .chunks(2)
            .map(|p| {
                let b = p[p.len() - 1];
                Sample {
                    in_flight: p.iter().map(|s| s.in_flight).max().unwrap_or(0),
                    rx_fill: p.iter().map(|s| s.rx_fill).max().unwrap_or(0),
                    arrived: b.arrived,
                    dropped: b.dropped,
                }
            })
            .collect();
        self.samples = merged;
        self.interval_ns *= 2;
    }
}
