//! The cycle clock: SysTick at the CPU clock, extended to 64 bits.
//!
//! SysTick is a 24-bit down-counter clocked by the processor (125 MHz), so
//! it gives single-cycle resolution but wraps every 134 ms. Its exception,
//! taken once per wrap, is the only writer of the extension: it counts the
//! wrap and records the counter value it read. [`now`] reads that pair and
//! the counter, and adds the one wrap the exception has not counted yet
//! when the counter is at or above the exception's reading. Readers store
//! nothing, so none can put back an older pair over a newer one, and a
//! wrap is counted even when nothing but the exception reads the clock
//! (an idle device in WFI).
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

/// The counter value the SysTick exception read, then the wraps counted
/// by then (32-bit wraps give 56-bit cycle counts: 18 years). Written only
/// by the exception, with one STM; read with one LDM. Until the first wrap
/// the reading is `START_READING`, as if an exception had read the counter
/// `START_LATENCY` cycles after a wrap at `start`.
#[repr(C, align(8))]
struct State(UnsafeCell<[u32; 2]>);
// SAFETY: written only by the SysTick exception, which no reader preempts
// (nothing reads the clock in an interrupt handler); a reader's LDM is
// restarted, not split, if the exception arrives during it (Cortex-M0+ TRM
// 3.6.1), and `now` rereads the count.
unsafe impl Sync for State {}
static STATE: State = State(UnsafeCell::new([START_READING, 0]));

/// About the cycles the exception takes to read the counter after a wrap.
const START_LATENCY: u32 = 16;
/// The exception's reading before the first wrap (see `STATE`).
const START_READING: u32 = RELOAD - START_LATENCY;

/// The exception's reading and the wraps counted, as one pair.
#[inline(always)]
fn state() -> (u32, u32) {
    let last: u32;
    let wraps: u32;
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
    (last, wraps)
}

/// The wraps counted (one load).
#[inline(always)]
fn wraps() -> u32 {
    // SAFETY: an aligned word of STATE; see `State`.
    unsafe { core::ptr::read_volatile((STATE.0.get() as *const u32).add(1)) }
}

/// Starts SysTick free-running at the CPU clock with its wrap exception.
pub fn start(mut syst: SYST, scb: &mut SCB) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    // SAFETY: priority 0, tied with the RP2040's interrupts (which this
    // firmware leaves at 0): the wrap is counted within a few cycles of it
    // unless interrupts are masked or another handler is running, neither
    // of which reads the clock. The handler is a few instructions, and
    // nothing else depends on SysTick's priority.
    unsafe { scb.set_priority(SystemHandler::SysTick, 0x00) };
    // The cleared counter loads RELOAD on its first tick. The wrap
    // exception is enabled after that, with nothing pending, so the clear's
    // zero is not counted as a wrap (rp2040js pends one for it); and `now`
    // may first be read once the counter is below `START_READING`.
    syst.enable_counter();
    while matches!(SYST::get_current(), 0 | START_READING..) {}
    SCB::clear_pendst();
    syst.enable_interrupt();
}

/// Cycles since [`start`].
///
/// No critical section and no store. The pair and the counter are read,
/// then the wrap count again: if the exception ran in between, again. A
/// counter at or above the exception's reading has wrapped since it (once:
/// the exception runs within a few cycles of each wrap), and the exception
/// that will count that wrap has not run yet; the reader is then inside a
/// critical section, or in the instruction the wrap interrupted. With
/// interrupts masked for longer than the exception took to start at the
/// last wrap, a read can miss a wrap the exception has not counted yet:
/// the firmware reads the clock with interrupts masked nowhere.
#[inline]
pub fn now() -> u64 {
    loop {
        let (last, counted) = state();
        let cvr = SYST::get_current();
        if wraps() != counted {
            continue;
        }
        let w = counted.wrapping_add(u32::from(cvr >= last));
        return (u64::from(w) << 24) | u64::from(RELOAD - cvr);
    }
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
    // Count the wrap, with the counter read just after it.
    let cvr = SYST::get_current();
    let counted = wraps().wrapping_add(1);
    // SAFETY: the one writer of STATE (see `State`); one STM, so a reader's
    // LDM sees the old pair or the new one.
    unsafe {
        core::arch::asm!(
            "stm {p}!, {{r2, r3}}",
            p = inout(reg) STATE.0.get() as *mut u32 => _,
            in("r2") cvr,
            in("r3") counted,
            options(nostack, preserves_flags),
        );
    }
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
