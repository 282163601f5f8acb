//! The cycle clock: SysTick at the CPU clock, extended to 64 bits.
//!
//! SysTick is a 24-bit down-counter clocked by the processor (125 MHz), so
//! it gives single-cycle resolution but wraps every 134 ms. [`now`] extends
//! it to 64 bits by remembering the last value it read: a counter that went
//! up since then has wrapped once. That needs a read at least once per wrap
//! period, which the SysTick exception guarantees by calling [`now`] at
//! every wrap. (Counting wraps in the exception and guessing from the
//! pending bit instead counted a wrap twice under rp2040js, whose pending
//! flag and wake-up rules differ from the silicon's; this scheme depends on
//! neither.)
//!
//! The 1 MHz RP2040 timer would do for the transfer figures (seconds, PPS)
//! and the throttle, but the stages perfkit measures on the device last from
//! a few hundred to a few thousand cycles (a CRC over a 55-byte message, a
//! header, a frame): they need cycles. One clock for both keeps the report
//! consistent; [`alarm_at`] uses the timer only to sleep.

use core::cell::UnsafeCell;
use cortex_m::peripheral::{scb::SystemHandler, syst::SystClkSource, SCB, SYST};
use cortex_m_rt::exception;
use rp2040_hal::pac::{self, interrupt};

/// CPU and SysTick clock rate after `init_clocks_and_plls`.
pub const CPU_HZ: u32 = 125_000_000;
const RELOAD: u32 = 0x00FF_FFFF;

/// The counter value at the last read, then the wraps seen by then (32-bit
/// wraps give 56-bit cycle counts: 18 years). Read and written as a pair
/// with one LDM and one STM (`now`).
#[repr(C, align(8))]
struct State(UnsafeCell<[u32; 2]>);
// SAFETY: accessed only by `now`, whose pair accesses the SysTick exception
// (the one other context that calls it) cannot split; see there.
unsafe impl Sync for State {}
static STATE: State = State(UnsafeCell::new([RELOAD, 0]));

/// Starts SysTick free-running at the CPU clock with its wrap exception.
pub fn start(mut syst: SYST, scb: &mut SCB) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    // SAFETY: lowest priority for the wrap counter; nothing depends on
    // SysTick's priority relative to other handlers.
    unsafe { scb.set_priority(SystemHandler::SysTick, 0xC0) };
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Cycles since [`start`].
///
/// No critical section. The state is loaded with one LDM and stored with
/// one STM: the Cortex-M0+ abandons either when an exception arrives and
/// restarts it from the beginning on return (Cortex-M0+ TRM, 3.6.1), so
/// the pair is loaded whole, and the pair this call stores is the last
/// word on it even if the SysTick exception read a half-written pair
/// meanwhile (that call's own result is discarded). Every pair stored is
/// true: a counter value with the wraps up to it, since a counter that
/// went up since `last` has wrapped exactly once as long as reads are less
/// than one period (134 ms) apart, which the wrap exception ensures. A pair
/// older than one already stored may overwrite it (the exception ran
/// between this call's load and store): it is still true, and younger
/// than a period. Only one context besides the exception may call this
/// (the firmware measures nothing in interrupt handlers).
#[inline]
pub fn now() -> u64 {
    let last: u32;
    let mut wraps: u32;
    // SAFETY: STATE's two words, 8-byte aligned; the pointer's copy is
    // advanced by the write-back and dropped.
    unsafe {
        core::arch::asm!(
            "ldm {p}!, {{r2, r3}}",
            p = inout(reg) STATE.0.get() as *mut u32 => _,
            out("r2") last,
            out("r3") wraps,
            options(nostack, preserves_flags, readonly),
        );
    }
    let cvr = SYST::get_current();
    if cvr > last {
        wraps = wraps.wrapping_add(1);
    }
    // SAFETY: as above.
    unsafe {
        core::arch::asm!(
            "stm {p}!, {{r2, r3}}",
            p = inout(reg) STATE.0.get() as *mut u32 => _,
            in("r2") cvr,
            in("r3") wraps,
            options(nostack, preserves_flags),
        );
    }
    (u64::from(wraps) << 24) | u64::from(RELOAD - cvr)
}

/// Nanoseconds since [`start`] (exact at 125 MHz: 8 ns per cycle).
#[inline]
pub fn now_ns() -> u64 {
    to_ns(now())
}

/// A cycle count in nanoseconds.
#[inline]
pub fn to_ns(cycles: u64) -> u64 {
    cycles * (1_000_000_000 / CPU_HZ as u64)
}

#[exception]
fn SysTick() {
    // A read per wrap keeps `now` from missing one.
    let _ = now();
}

/// Arms TIMER alarm 0 as a wake-up source (the timer must be out of reset).
pub fn enable_sleep() {
    // SAFETY: the handler only clears the alarm flag.
    unsafe { cortex_m::peripheral::NVIC::unmask(pac::Interrupt::TIMER_IRQ_0) };
}

/// Sleeps (WFI) until `now_ns() >= t`, woken by TIMER alarm 0 (1 us
/// resolution); the SysTick wrap may wake it earlier, so it loops.
pub fn sleep_until_ns(t: u64) {
    // SAFETY: alarm 0 belongs to this function and its handler.
    let timer = unsafe { &*pac::TIMER::ptr() };
    loop {
        let now = now_ns();
        if now >= t {
            return;
        }
        let wait_us = (t - now).div_ceil(1000).min(u32::MAX as u64 / 2) as u32;
        cortex_m::interrupt::free(|_| {
            timer.intr().write(|w| w.alarm_0().clear_bit_by_one());
            timer.inte().modify(|_, w| w.alarm_0().set_bit());
            let target = timer.timerawl().read().bits().wrapping_add(wait_us);
            timer.alarm0().write(|w| unsafe { w.bits(target) });
            cortex_m::asm::wfi();
        });
    }
}

/// Sleeps for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    sleep_until_ns(now_ns() + ns);
}

#[interrupt]
fn TIMER_IRQ_0() {
    // SAFETY: see sleep_until_ns.
    let timer = unsafe { &*pac::TIMER::ptr() };
    timer.intr().write(|w| w.alarm_0().clear_bit_by_one());
}

/// perfkit's clock: cycles.
pub struct Cycles;

impl perfkit::Clock for Cycles {
    fn now(&self) -> u64 {
        now()
    }
    fn ticks_per_second(&self) -> u64 {
        CPU_HZ as u64
    }
}
