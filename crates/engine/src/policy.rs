//! When a run stops early: the one cancel and deadline policy every driver
//! checks, with one wording for each way of stopping.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;

/// Why a run stopped before its transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The cancel flag was raised (Ctrl-C, a parent giving up).
    Interrupted,
    /// The run's clock passed the deadline.
    TimedOut {
        /// The deadline, ns after the run began.
        after_ns: u64,
    },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Interrupted => f.write_str("interrupted"),
            Stop::TimedOut { after_ns } => write!(
                f,
                "gave up after {:.1} s (timeout_s)",
                *after_ns as f64 / 1e9
            ),
        }
    }
}

/// A deadline on the run's clock and an optional cancel flag.
///
/// Drivers call [`check`](Self::check) once per poll, before doing work, so a
/// raised flag or a passed deadline is honoured within one poll.
#[derive(Debug, Clone, Copy)]
pub struct Policy<'a> {
    deadline_ns: u64,
    cancel: Option<&'a AtomicBool>,
}

impl<'a> Policy<'a> {
    /// Stop once `deadline` has passed on the run's clock (at least 1 ms,
    /// so a zero or negative setting still lets the run start).
    pub fn new(deadline: Duration) -> Self {
        let ns = u64::try_from(deadline.as_nanos()).unwrap_or(u64::MAX);
        Policy {
            deadline_ns: ns.max(1_000_000),
            cancel: None,
        }
    }

    /// A deadline in seconds, as scenarios and flags give it (`timeout_s`);
    /// NaN and negatives count as the minimum, infinity as no deadline.
    pub fn seconds(timeout_s: f64) -> Self {
        let ns = if timeout_s.is_nan() || timeout_s <= 0.0 {
            0
        } else if timeout_s >= u64::MAX as f64 / 1e9 {
            u64::MAX
        } else {
            (timeout_s * 1e9) as u64
        };
        Self::new(Duration::from_nanos(ns))
    }

    /// Also stop when `flag` is raised.
    pub fn cancel_on(mut self, flag: &'a AtomicBool) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// The deadline, ns after the run began.
    pub fn deadline_ns(&self) -> u64 {
        self.deadline_ns
    }

    /// Nanoseconds left at `now_ns` (0 once past).
    pub fn remaining_ns(&self, now_ns: u64) -> u64 {
        self.deadline_ns.saturating_sub(now_ns)
    }

    /// `Err` if the run must stop at `now_ns`: the flag first, then the deadline.
    pub fn check(&self, now_ns: u64) -> Result<(), Stop> {
        if self.cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Err(Stop::Interrupted);
        }
        if now_ns > self.deadline_ns {
            return Err(Stop::TimedOut {
                after_ns: self.deadline_ns,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_over_the_deadline() {
        let flag = AtomicBool::new(false);
        let p = Policy::seconds(1.5).cancel_on(&flag);
        assert_eq!(p.check(1_500_000_000), Ok(()));
        assert_eq!(
            p.check(1_500_000_001).unwrap_err().to_string(),
            "gave up after 1.5 s (timeout_s)"
        );
        flag.store(true, Ordering::Relaxed);
        assert_eq!(p.check(0), Err(Stop::Interrupted));
        assert_eq!(Stop::Interrupted.to_string(), "interrupted");
    }

    #[test]
    fn odd_settings_stay_usable() {
        assert_eq!(Policy::seconds(f64::NAN).deadline_ns(), 1_000_000);
        assert_eq!(Policy::seconds(-3.0).deadline_ns(), 1_000_000);
        assert_eq!(Policy::seconds(f64::INFINITY).deadline_ns(), u64::MAX);
        assert_eq!(
            Policy::seconds(2.0).remaining_ns(500_000_000),
            1_500_000_000
        );
    }
}
