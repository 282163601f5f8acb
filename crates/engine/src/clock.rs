//! The run's one clock: a [`perfkit::Clock`] that can also be waited on.

/// A run's time source. Drivers read it once per step and pass the time to
/// the pumps; throttled senders wait on it.
pub trait Clock: perfkit::Clock {
    /// Nanoseconds since the run began.
    fn now_ns(&self) -> u64 {
        perfkit::clock::ticks_to_ns(self.now(), self.ticks_per_second())
    }

    /// Returns at or after `t_ns`: a wall clock sleeps, a virtual clock jumps.
    fn wait_until_ns(&self, t_ns: u64);
}

#[cfg(feature = "std")]
mod wall {
    use std::time::{Duration, Instant};

    /// Real time since the clock was made, in nanoseconds.
    #[derive(Debug, Clone, Copy)]
    pub struct WallClock {
        origin: Instant,
    }

    impl WallClock {
        /// A clock reading 0 now.
        pub fn start() -> Self {
            WallClock {
                origin: Instant::now(),
            }
        }
    }

    impl perfkit::Clock for WallClock {
        fn now(&self) -> u64 {
            self.origin.elapsed().as_nanos() as u64
        }
        fn ticks_per_second(&self) -> u64 {
            1_000_000_000
        }
    }

    impl super::Clock for WallClock {
        fn now_ns(&self) -> u64 {
            perfkit::Clock::now(self)
        }
        fn wait_until_ns(&self, t_ns: u64) {
            let now = self.now_ns();
            if t_ns > now {
                std::thread::sleep(Duration::from_nanos(t_ns - now));
            }
        }
    }

    impl super::Clock for perfkit_link::VirtualClock {
        fn now_ns(&self) -> u64 {
            perfkit_link::VirtualClock::now_ns(self)
        }
        fn wait_until_ns(&self, t_ns: u64) {
            self.advance_to(t_ns);
        }
    }
}

#[cfg(feature = "std")]
pub use wall::WallClock;
