//! What a thread used of the machine over a run: CPU time, how often it
//! gave up its core (voluntary context switches: it waited, for a datagram
//! or a full socket) or had it taken (involuntary: the scheduler ran
//! another thread in its place), and how many fresh pages it touched
//! (minor page faults: memory it had not used before, which the kernel
//! maps and zeroes on first touch).
//!
//! A UDP receiver that shares cores with its sender loses datagrams while
//! it is off its core, so the involuntary count beside a lost heap says
//! whether the receiver was pushed aside or simply fell behind while
//! running; a sender's count says what a receiver run ahead of it
//! ([`crate::run::RunConfig::rx_nice`]) cost it. A receiver's faults show
//! buffers it allocated while running, as heaps left incomplete by loss
//! each take one.

use serde::{Deserialize, Serialize};

/// The kernel's counts for a thread (or a process's threads): how often
/// it gave up its core, how often it had it taken, and how many pages it
/// touched for the first time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Times it waited and gave up its core.
    pub voluntary_switches: u64,
    /// Times the scheduler took its core from it.
    pub involuntary_switches: u64,
    /// Minor page faults: pages mapped on first touch.
    pub minor_faults: u64,
}

/// CPU seconds and the kernel's counts, of one thread from [`Usage::thread`]
/// or summed over several (`+`), or a difference of two readings (`-`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU seconds.
    pub cpu_seconds: f64,
    /// The kernel's counts, or `None` when it would not say.
    pub counts: Option<Counts>,
}

impl Usage {
    /// The calling thread's usage since it started: its CPU clock (to the
    /// nanosecond) and the kernel's counts.
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
            counts: ok.then_some(Counts {
                voluntary_switches: ru.ru_nvcsw as u64,
                involuntary_switches: ru.ru_nivcsw as u64,
                minor_faults: ru.ru_minflt as u64,
            }),
        }
    }

    /// The calling thread's usage since `start` (an earlier
    /// [`Usage::thread`] on the same thread).
    pub fn thread_since(start: Usage) -> Usage {
        Usage::thread() - start
    }
}

impl core::ops::Sub for Counts {
    type Output = Counts;
    fn sub(self, earlier: Counts) -> Counts {
        Counts {
            voluntary_switches: self
                .voluntary_switches
                .saturating_sub(earlier.voluntary_switches),
            involuntary_switches: self
                .involuntary_switches
                .saturating_sub(earlier.involuntary_switches),
            minor_faults: self.minor_faults.saturating_sub(earlier.minor_faults),
        }
    }
}

impl core::ops::Add for Counts {
    type Output = Counts;
    fn add(self, other: Counts) -> Counts {
        Counts {
            voluntary_switches: self.voluntary_switches + other.voluntary_switches,
            involuntary_switches: self.involuntary_switches + other.involuntary_switches,
            minor_faults: self.minor_faults + other.minor_faults,
        }
    }
}

impl core::ops::Sub for Usage {
    type Output = Usage;
    fn sub(self, earlier: Usage) -> Usage {
        Usage {
            cpu_seconds: self.cpu_seconds - earlier.cpu_seconds,
            counts: self.counts.zip(earlier.counts).map(|(a, b)| a - b),
        }
    }
}

impl core::ops::Add for Usage {
    type Output = Usage;
    /// A sum knows its counts only when both parts do.
    fn add(self, other: Usage) -> Usage {
        Usage {
            cpu_seconds: self.cpu_seconds + other.cpu_seconds,
            counts: self.counts.zip(other.counts).map(|(a, b)| a + b),
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
            let slept = Usage::thread_since(start).counts.unwrap();
            assert!(slept.voluntary_switches >= 5, "{slept:?}");

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
            assert!(spun.counts.unwrap().voluntary_switches <= 1, "{spun:?}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn fresh_pages_touched_are_counted_as_faults() {
        std::thread::spawn(|| {
            let start = Usage::thread();
            // A fresh anonymous mapping: each page faults once when first
            // written (fewer with huge pages, but never none).
            const LEN: usize = 16 << 20;
            // SAFETY: a private anonymous mapping of LEN bytes, written
            // only inside it, unmapped once.
            unsafe {
                let p = libc::mmap(
                    core::ptr::null_mut(),
                    LEN,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                for off in (0..LEN).step_by(4096) {
                    core::ptr::write_volatile(p.cast::<u8>().add(off), 1);
                }
                libc::munmap(p, LEN);
            }
            let c = Usage::thread_since(start).counts.unwrap();
            assert!(c.minor_faults >= 1, "{c:?}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn sums_and_differences_never_wrap_and_unknown_stays_unknown() {
        let counts = |voluntary_switches, involuntary_switches, minor_faults| Counts {
            voluntary_switches,
            involuntary_switches,
            minor_faults,
        };
        let a = Usage {
            cpu_seconds: 1.0,
            counts: Some(counts(3, 1, 10)),
        };
        let b = Usage {
            cpu_seconds: 0.5,
            counts: Some(counts(5, 0, 4)),
        };
        assert_eq!((a - b).counts, Some(counts(0, 1, 6)));
        assert_eq!((a + b).counts, Some(counts(8, 1, 14)));
        assert_eq!((a + b).cpu_seconds, 1.5);
        let unknown = Usage {
            cpu_seconds: 0.5,
            counts: None,
        };
        assert_eq!((a + unknown).counts, None);
        assert_eq!((a - unknown).counts, None);
    }
}
