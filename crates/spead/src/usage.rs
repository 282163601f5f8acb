//! What a thread used of the machine over a run: CPU time, and how often it
//! gave up its core (voluntary context switches: it waited, for a datagram
//! or a full socket) or had it taken (involuntary: the scheduler ran
//! another thread in its place).
//!
//! A UDP receiver that shares cores with its sender loses datagrams while
//! it is off its core, so the involuntary count beside a lost heap says
//! whether the receiver was pushed aside or simply fell behind while
//! running; a sender's count says what a receiver run ahead of it
//! ([`crate::run::RunConfig::rx_nice`]) cost it.

use serde::{Deserialize, Serialize};

/// Context switches: how often a thread (or a process's threads) gave
/// up its core, and how often it had it taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switches {
    /// Times it waited and gave up its core.
    pub voluntary: u64,
    /// Times the scheduler took its core from it.
    pub involuntary: u64,
}

/// CPU seconds and context switches, of one thread from [`Usage::thread`]
/// or summed over several (`+`), or a difference of two readings (`-`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU seconds.
    pub cpu_seconds: f64,
    /// Context switches, or `None` when the kernel would not say.
    pub switches: Option<Switches>,
}

impl Usage {
    /// The calling thread's usage since it started: its CPU clock (to the
    /// nanosecond) and the kernel's context switch counts.
    pub fn thread() -> Usage {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        // SAFETY: an all-zero rusage is valid.
        let mut ru: libc::rusage = unsafe { core::mem::zeroed() };
        // SAFETY: getrusage writes one rusage; RUSAGE_THREAD is Linux's.
        let ok = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) } == 0;
        Usage {
            cpu_seconds: ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9,
            switches: ok.then_some(Switches {
                voluntary: ru.ru_nvcsw as u64,
                involuntary: ru.ru_nivcsw as u64,
            }),
        }
    }

    /// The calling thread's usage since `start` (an earlier
    /// [`Usage::thread`] on the same thread).
    pub fn thread_since(start: Usage) -> Usage {
        Usage::thread() - start
    }
}

impl core::ops::Sub for Switches {
    type Output = Switches;
    fn sub(self, earlier: Switches) -> Switches {
        Switches {
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }
}

impl core::ops::Add for Switches {
    type Output = Switches;
    fn add(self, other: Switches) -> Switches {
        Switches {
            voluntary: self.voluntary + other.voluntary,
            involuntary: self.involuntary + other.involuntary,
        }
    }
}

impl core::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, earlier: Usage) -> Usage {
        Usage {
            cpu_seconds: self.cpu_seconds - earlier.cpu_seconds,
            switches: self.switches.zip(earlier.switches).map(|(a, b)| a - b),
        }
    }
}

impl core::ops::Add for Usage {
    type Output = Usage;
    /// A sum knows its switches only when both parts do.
    fn add(self, other: Usage) -> Usage {
        Usage {
            cpu_seconds: self.cpu_seconds + other.cpu_seconds,
            switches: self.switches.zip(other.switches).map(|(a, b)| a + b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_thread_that_sleeps_switches_voluntarily_and_one_that_spins_uses_cpu() {
        std::thread::spawn(|| {
            let start = Usage::thread();
            for _ in 0..5 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let slept = Usage::thread_since(start).switches.unwrap();
            assert!(slept.voluntary >= 5, "{slept:?}");

            let start = Usage::thread();
            let until = Instant::now() + Duration::from_millis(30);
            let mut x = 0u64;
            while Instant::now() < until {
                x = std::hint::black_box(x.wrapping_add(1));
            }
            let spun = Usage::thread_since(start);
            // A spin of 30 ms wall: most of it on the CPU unless the
            // machine is very busy, and certainly more than nothing.
            assert!(spun.cpu_seconds > 0.001, "{spun:?}");
            assert!(spun.switches.unwrap().voluntary <= 1, "{spun:?}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sums_and_differences_never_wrap_and_unknown_stays_unknown() {
        let a = Usage {
            cpu_seconds: 1.0,
            switches: Some(Switches {
                voluntary: 3,
                involuntary: 1,
            }),
        };
        let b = Usage {
            cpu_seconds: 0.5,
            switches: Some(Switches {
                voluntary: 5,
                involuntary: 0,
            }),
        };
        let d = (a - b).switches.unwrap();
        assert_eq!((d.voluntary, d.involuntary), (0, 1));
        let s = (a + b).switches.unwrap();
        assert_eq!((s.voluntary, s.involuntary), (8, 1));
        assert_eq!((a + b).cpu_seconds, 1.5);
        let unknown = Usage {
            cpu_seconds: 0.5,
            switches: None,
        };
        assert_eq!((a + unknown).switches, None);
        assert_eq!((a - unknown).switches, None);
    }
}
