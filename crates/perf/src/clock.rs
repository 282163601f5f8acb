//! The time source: raw ticks on the hot path, nanoseconds only on demand.
//!
//! The hot path calls [`now`], which returns raw ticks. Which ticks depends on
//! what is installed:
//!
//! - a [`Clock`] given to [`set_clock`] (firmware: SysTick, the RP2040 timer;
//!   tests: a mock clock advanced by hand) always wins;
//! - otherwise, with `std`, the CPU's own counter when it is trustworthy: the
//!   TSC on x86_64 when CPUID reports an invariant TSC (`constant_tsc` and
//!   `nonstop_tsc` in `/proc/cpuinfo`), the virtual counter `CNTVCT_EL0` on
//!   aarch64; else the monotonic clock (`std::time::Instant`) in nanoseconds.
//!   `PERFKIT_CLOCK=monotonic` in the environment forces the monotonic clock.
//! - without `std` and without an installed clock, time stands still (0).
//!
//! Ticks become nanoseconds with [`ticks_per_second`], asked only when a
//! snapshot is taken. The TSC rate is calibrated against `Instant` over the
//! whole time since the first measurement (at least 20 ms), so it gets more
//! precise the longer the process runs, and costs nothing on the hot path.

use core::cell::UnsafeCell;
use portable_atomic::{AtomicU8, Ordering};

/// A source of raw ticks. Firmware implements it over its hardware timer.
///
/// ```
/// struct Timer1MHz;
/// impl perfkit::Clock for Timer1MHz {
///     fn now(&self) -> u64 { 0 /* read TIMERAWL/TIMERAWH */ }
///     fn ticks_per_second(&self) -> u64 { 1_000_000 }
/// }
/// ```
pub trait Clock: Sync {
    /// The current tick count; must never go backwards.
    fn now(&self) -> u64;
    /// Tick rate, used to convert ticks to nanoseconds.
    fn ticks_per_second(&self) -> u64;
}

/// Error from [`set_clock`]: a clock was installed already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockAlreadySet;

impl core::fmt::Display for ClockAlreadySet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("a perfkit clock was already installed")
    }
}

const MODE_UNINIT: u8 = 0;
#[cfg_attr(not(feature = "std"), allow(dead_code))]
const MODE_COUNTER: u8 = 1;
const MODE_CUSTOM: u8 = 2;
const MODE_MONOTONIC: u8 = 3;
#[cfg_attr(feature = "std", allow(dead_code))]
const MODE_NONE: u8 = 4;
const MODE_BUSY: u8 = 5;

static MODE: AtomicU8 = AtomicU8::new(MODE_UNINIT);

struct ClockCell(UnsafeCell<Option<&'static dyn Clock>>);
// SAFETY: written once, under MODE_BUSY, before MODE_CUSTOM is published with
// Release; read only after MODE_CUSTOM was seen with Acquire.
unsafe impl Sync for ClockCell {}
static CUSTOM: ClockCell = ClockCell(UnsafeCell::new(None));

/// Install the clock all measurements use. Install it before the first
/// measurement (ticks from different clocks do not mix; call [`crate::reset`]
/// otherwise). Only one clock can be installed per program.
pub fn set_clock(clock: &'static dyn Clock) -> Result<(), ClockAlreadySet> {
    loop {
        let m = MODE.load(Ordering::Acquire);
        match m {
            MODE_CUSTOM => return Err(ClockAlreadySet),
            MODE_BUSY => core::hint::spin_loop(),
            _ => {
                if MODE
                    .compare_exchange(m, MODE_BUSY, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    // SAFETY: MODE_BUSY excludes every other writer and reader.
                    unsafe { *CUSTOM.0.get() = Some(clock) };
                    MODE.store(MODE_CUSTOM, Ordering::Release);
                    return Ok(());
                }
            }
        }
    }
}

fn custom() -> Option<&'static dyn Clock> {
    if crate::owned::load_u8(&MODE, Ordering::Acquire) == MODE_CUSTOM {
        // SAFETY: see ClockCell.
        unsafe { *CUSTOM.0.get() }
    } else {
        None
    }
}

/// Raw ticks from the installed clock (the hot path).
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
    if crate::owned::load_u8(&MODE, Ordering::Relaxed) == MODE_COUNTER {
        return counter::read();
    }
    // Firmware's clock: straight to it, without `now_slow`'s loop.
    #[cfg(all(not(feature = "std"), not(feature = "single-core")))]
    if let Some(c) = custom() {
        return c.now();
    }
    // With one context, which installs the clock before it measures, the
    // cell is read without MODE first: one load and a test, not two of each.
    #[cfg(all(not(feature = "std"), feature = "single-core"))]
    // SAFETY: written once, by `set_clock`, which the one recording context
    // (the only one that reads it here) does not interrupt with a measurement.
    if let Some(c) = unsafe { *CUSTOM.0.get() } {
        return c.now();
    }
    now_slow()
}

#[inline(never)]
fn now_slow() -> u64 {
    loop {
        match crate::owned::load_u8(&MODE, Ordering::Acquire) {
            MODE_CUSTOM => {
                return custom().map_or(0, |c| c.now());
            }
            #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
            MODE_COUNTER => return counter::read(),
            #[cfg(feature = "std")]
            MODE_MONOTONIC => return mono::now(),
            MODE_UNINIT => init(),
            MODE_BUSY => core::hint::spin_loop(),
            _ => return 0,
        }
    }
}

/// Pick the default clock, once.
fn init() {
    let mode = default_mode();
    let _ = MODE.compare_exchange(MODE_UNINIT, mode, Ordering::AcqRel, Ordering::Relaxed);
}

#[cfg(feature = "std")]
fn default_mode() -> u8 {
    mono::anchor();
    let forced = std::env::var_os("PERFKIT_CLOCK").is_some_and(|v| v == "monotonic");
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if !forced && counter::trustworthy() {
        counter::anchor();
        return MODE_COUNTER;
    }
    let _ = forced;
    MODE_MONOTONIC
}

#[cfg(not(feature = "std"))]
fn default_mode() -> u8 {
    MODE_NONE
}

/// The hardware counter behind perfkit's default clock (the TSC on x86_64,
/// CNTVCT on aarch64), read directly whatever clock is installed. Its rate
/// is [`ticks_per_second`] while [`clock_name`] says `"tsc"` or `"cntvct"`;
/// under any other clock perfkit has not vouched for it.
#[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
pub fn counter_now() -> u64 {
    counter::read()
}

/// Which clock the hot path reads, for reports and docs.
pub fn clock_name() -> &'static str {
    if MODE.load(Ordering::Acquire) == MODE_UNINIT {
        init();
    }
    match MODE.load(Ordering::Acquire) {
        MODE_CUSTOM => "custom",
        #[cfg(target_arch = "x86_64")]
        MODE_COUNTER => "tsc",
        #[cfg(target_arch = "aarch64")]
        MODE_COUNTER => "cntvct",
        MODE_MONOTONIC => "monotonic",
        _ => "none",
    }
}

/// Tick rate of the clock [`now`] reads. Calibrates the TSC when needed
/// (may wait up to 20 ms the first time); 1e9 for the monotonic clock;
/// 1e9 (meaning "ticks are nanoseconds") when no clock exists.
pub fn ticks_per_second() -> u64 {
    if MODE.load(Ordering::Acquire) == MODE_UNINIT {
        init();
    }
    match MODE.load(Ordering::Acquire) {
        MODE_CUSTOM => custom().map_or(1_000_000_000, |c| c.ticks_per_second().max(1)),
        #[cfg(all(feature = "std", any(target_arch = "x86_64", target_arch = "aarch64")))]
        MODE_COUNTER => counter::ticks_per_second(),
        _ => 1_000_000_000,
    }
}

/// Convert ticks to nanoseconds at the given tick rate (saturating).
#[inline]
pub fn ticks_to_ns(ticks: u64, ticks_per_second: u64) -> u64 {
    let ns = ticks as u128 * 1_000_000_000 / ticks_per_second.max(1) as u128;
    if ns > u64::MAX as u128 {
        u64::MAX
    } else {
        ns as u64
    }
}

#[cfg(feature = "std")]
mod mono {
    use std::sync::OnceLock;
    use std::time::Instant;

    static EPOCH: OnceLock<Instant> = OnceLock::new();

    pub(super) fn anchor() -> Instant {
        *EPOCH.get_or_init(Instant::now)
    }

    pub(super) fn now() -> u64 {
        anchor().elapsed().as_nanos() as u64
    }
}

#[cfg(all(feature = "std", target_arch = "x86_64"))]
mod counter {
    use portable_atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    /// Plain RDTSC: not serialising, so it costs what the counter costs.
    /// (RDTSCP or LFENCE;RDTSC would order it against the measured code at
    /// two to three times the price; for scopes of 100 ns and up the
    /// difference is below the bucket width.)
    #[inline(always)]
    pub(super) fn read() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    /// CPUID 0x8000_0007 EDX bit 8: invariant TSC (constant rate, runs in
    /// every C-state, synchronised across cores).
    pub(super) fn trustworthy() -> bool {
        #[allow(unused_unsafe)]
        // SAFETY: CPUID exists on every x86_64 CPU.
        let max_ext = unsafe { core::arch::x86_64::__cpuid(0x8000_0000) }.eax;
        if max_ext < 0x8000_0007 {
            return false;
        }
        #[allow(unused_unsafe)]
        // SAFETY: as above, the leaf exists (checked).
        let edx = unsafe { core::arch::x86_64::__cpuid(0x8000_0007) }.edx;
        edx & (1 << 8) != 0
    }

    static ANCHOR: OnceLock<(u64, Instant)> = OnceLock::new();
    static SETTLED: AtomicU64 = AtomicU64::new(0);

    pub(super) fn anchor() -> (u64, Instant) {
        *ANCHOR.get_or_init(pair)
    }

    /// A TSC reading and an `Instant` taken as close together as possible:
    /// the tightest of a few tries.
    fn pair() -> (u64, Instant) {
        let mut best = (u64::MAX, 0, Instant::now());
        for _ in 0..5 {
            let a = read();
            let t = Instant::now();
            let b = read();
            if b.wrapping_sub(a) < best.0 {
                best = (b.wrapping_sub(a), a + (b.wrapping_sub(a)) / 2, t);
            }
        }
        (best.1, best.2)
    }

    pub(super) fn ticks_per_second() -> u64 {
        let settled = SETTLED.load(Relaxed);
        if settled != 0 {
            return settled;
        }
        let (t0, i0) = anchor();
        let mut elapsed = i0.elapsed();
        if elapsed < Duration::from_millis(20) {
            std::thread::sleep(Duration::from_millis(20) - elapsed);
        }
        let (t1, i1) = pair();
        elapsed = i1 - i0;
        let rate = (t1.wrapping_sub(t0) as u128 * 1_000_000_000 / elapsed.as_nanos().max(1)) as u64;
        // After ten seconds the rate is good to better than 1e-6: keep it.
        if elapsed >= Duration::from_secs(10) {
            SETTLED.store(rate, Relaxed);
        }
        rate.max(1)
    }
}

#[cfg(all(feature = "std", target_arch = "aarch64"))]
mod counter {
    /// The virtual counter: constant rate by architecture (ARMv8 generic timer).
    #[inline(always)]
    pub(super) fn read() -> u64 {
        let v: u64;
        // SAFETY: CNTVCT_EL0 is readable from EL0 on every OS we run on.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
        v
    }

    pub(super) fn trustworthy() -> bool {
        ticks_per_second() > 0
    }

    pub(super) fn anchor() {}

    pub(super) fn ticks_per_second() -> u64 {
        let f: u64;
        // SAFETY: CNTFRQ_EL0 is readable from EL0.
        unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f, options(nomem, nostack)) };
        f
    }
}
