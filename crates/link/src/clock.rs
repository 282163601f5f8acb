//! Virtual time for links that model their own timing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A shared virtual clock in nanoseconds: starts at 0 and only moves
/// forward, when a virtual-time link or a driver advances it. Clones share
/// the same time.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock(Arc<AtomicU64>);

impl VirtualClock {
    /// A clock at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current virtual time, ns.
    pub fn now_ns(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Moves the clock to `t_ns` unless it is already later.
    pub fn advance_to(&self, t_ns: u64) {
        self.0.fetch_max(t_ns, Ordering::AcqRel);
    }
}

impl perfkit::Clock for VirtualClock {
    fn now(&self) -> u64 {
        self.now_ns()
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}
