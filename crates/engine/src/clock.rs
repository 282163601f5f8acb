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
    ///
    /// Where perfkit's own clock is the CPU's counter (an invariant TSC, or
    /// aarch64's CNTVCT), it reads that counter and scales the ticks with
    /// one multiply: a driver reads the clock at every step, and
    /// `Instant::now` costs about three TSC reads in a VM (a vDSO call that
    /// checks the clock source each time), which was a fifth of a 249-byte
    /// message's trip through the in-memory stack. Elsewhere, and under a
    /// clock installed with [`perfkit::clock::set_clock`] (firmware, the
    /// instruction counter), it is `Instant`.
    #[derive(Debug, Clone, Copy)]
    pub struct WallClock {
        source: Source,
    }

    #[derive(Debug, Clone, Copy)]
    enum Source {
        /// The counter's reading at start, and nanoseconds per tick in
        /// 32.32 fixed point.
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        Counter {
            origin: u64,
            scale: u64,
        },
        Instant(Instant),
    }

    /// Counter rates believed: a calibration outside them (a counter that
    /// differs between CPUs, say) falls back to `Instant`.
    const PLAUSIBLE_TPS: core::ops::RangeInclusive<u64> = 1_000_000..=100_000_000_000;

    impl WallClock {
        /// A clock reading 0 now. The first clock in a process may wait up
        /// to 20 ms for perfkit's counter rate to calibrate; later ones do
        /// not.
        pub fn start() -> Self {
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            if matches!(perfkit::clock::clock_name(), "tsc" | "cntvct") {
                let tps = perfkit::clock::ticks_per_second();
                if PLAUSIBLE_TPS.contains(&tps) {
                    return WallClock {
                        source: Source::Counter {
                            origin: perfkit::clock::counter_now(),
                            scale: scale_of(tps),
                        },
                    };
                }
            }
            WallClock {
                source: Source::Instant(Instant::now()),
            }
        }

        /// Whether it reads the CPU's counter (else `Instant`).
        pub fn on_counter(&self) -> bool {
            !matches!(self.source, Source::Instant(_))
        }
    }

    /// 1e9 / `tps` in 32.32 fixed point. The rounding costs under 2^-32 ns
    /// per tick: at 2.5 GHz, under 0.6 ns per second.
    pub(super) fn scale_of(tps: u64) -> u64 {
        let s = (1_000_000_000u128 << 32) / u128::from(tps.max(1));
        u64::try_from(s).unwrap_or(u64::MAX)
    }

    /// `ticks` in nanoseconds at `scale` (saturating).
    #[inline]
    pub(super) fn scaled(ticks: u64, scale: u64) -> u64 {
        let ns = (u128::from(ticks) * u128::from(scale)) >> 32;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    impl perfkit::Clock for WallClock {
        #[inline]
        fn now(&self) -> u64 {
            match self.source {
                #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
                Source::Counter { origin, scale } => {
                    scaled(perfkit::clock::counter_now().saturating_sub(origin), scale)
                }
                Source::Instant(origin) => origin.elapsed().as_nanos() as u64,
            }
        }
        fn ticks_per_second(&self) -> u64 {
            1_000_000_000
        }
    }

    impl super::Clock for WallClock {
        #[inline]
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

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::wall::{scale_of, scaled};
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn ticks_scale_to_nanoseconds() {
        // A 1 GHz clock is the identity, to the nanosecond, far out.
        let s = scale_of(1_000_000_000);
        for t in [0u64, 1, 999, 1 << 40, u64::MAX >> 2] {
            assert_eq!(scaled(t, s), t);
        }
        // A 2.5 GHz TSC: 2.5 ticks per nanosecond, 0.4 ns per tick.
        let s = scale_of(2_500_000_000);
        assert_eq!(scaled(2_500_000_000, s), 1_000_000_000 - 1);
        assert_eq!(scaled(25, s), 9);
        // A 1 kHz clock: a million nanoseconds per tick.
        assert_eq!(scaled(3, scale_of(1_000)), 3_000_000);
        // Saturates rather than wraps; a zero rate is taken as one.
        assert_eq!(scaled(u64::MAX, scale_of(1)), u64::MAX);
        assert_eq!(scale_of(0), scale_of(1));
    }

    #[test]
    fn the_wall_clock_keeps_time_with_instant() {
        let clock = WallClock::start();
        // These machines have an invariant TSC: the counter is in use.
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            clock.on_counter(),
            perfkit::clock::clock_name() == "tsc",
            "{}",
            perfkit::clock::clock_name()
        );
        // Each Instant reading is bracketed by two clock readings, so a
        // preemption between reads widens the bracket instead of failing.
        let bracket = || {
            let a = clock.now_ns();
            let i = Instant::now();
            (a, i, clock.now_ns())
        };
        let (a0, i0, b0) = bracket();
        std::thread::sleep(Duration::from_millis(50));
        let (a1, i1, b1) = bracket();
        // The same interval measured by both: only the counter's calibrated
        // rate (1 % allowed) and the bracket separate them.
        let by_instant = (i1 - i0).as_nanos() as u64;
        let (lo, hi) = (a1.saturating_sub(b0), b1 - a0);
        let slack = by_instant / 100 + 1_000;
        assert!(
            lo <= by_instant + slack && by_instant <= hi + slack,
            "Instant {by_instant} ns, wall clock between {lo} and {hi} ns"
        );
        // Never backwards, and waiting reaches its time.
        let mut last = clock.now_ns();
        for _ in 0..1000 {
            let t = clock.now_ns();
            assert!(t >= last);
            last = t;
        }
        let target = clock.now_ns() + 2_000_000;
        clock.wait_until_ns(target);
        assert!(clock.now_ns() + 100_000 >= target);
    }
}
