//! `Owned64`: a 64-bit counter that only its owner writes (a plain load and
//! store, no read-modify-write) and others may read.
//!
//! Where the target has 64-bit atomics it is an `AtomicU64` with relaxed
//! loads and stores: plain moves on x86_64 and aarch64. Where it has not
//! (thumbv6m, the RP2040), a 64-bit atomic access would be a critical
//! section each; there it is two `AtomicU32` halves, read high-low-high so
//! a reader never sees a half-carried value, at the price of two plain
//! 32-bit accesses per half.

use portable_atomic::Ordering::Relaxed;

/// Two 32-bit halves (see the module docs). Built on every target so the
/// host tests exercise it too.
#[allow(dead_code)]
pub(crate) struct Split64 {
    // `core`'s, not portable-atomic's: with its `critical-section` feature
    // even 32-bit loads and stores are critical sections.
    hi: core::sync::atomic::AtomicU32,
    lo: core::sync::atomic::AtomicU32,
}

#[allow(dead_code)]
impl Split64 {
    pub(crate) const fn new(v: u64) -> Self {
        Split64 {
            hi: core::sync::atomic::AtomicU32::new((v >> 32) as u32),
            lo: core::sync::atomic::AtomicU32::new(v as u32),
        }
    }

    #[inline(always)]
    pub(crate) fn load(&self) -> u64 {
        // With one context there is no writer to race with: two loads.
        #[cfg(feature = "single-core")]
        {
            let lo = self.lo.load(Relaxed);
            (u64::from(self.hi.load(Relaxed)) << 32) | u64::from(lo)
        }
        #[cfg(not(feature = "single-core"))]
        loop {
            let hi = self.hi.load(Relaxed);
            let lo = self.lo.load(Relaxed);
            if self.hi.load(Relaxed) == hi {
                return (u64::from(hi) << 32) | u64::from(lo);
            }
        }
    }

    /// Owner-only add: the low half, and the high half only on a carry
    /// (or a delta of 2^32 and more): one load and one store in nearly
    /// every call on a 32-bit core, instead of two of each.
    #[inline(always)]
    pub(crate) fn add(&self, d: u64) {
        let (lo, carry) = self.lo.load(Relaxed).overflowing_add(d as u32);
        let dh = ((d >> 32) as u32).wrapping_add(u32::from(carry));
        // Low half first, as in `store`.
        self.lo.store(lo, Relaxed);
        if dh != 0 {
            self.hi
                .store(self.hi.load(Relaxed).wrapping_add(dh), Relaxed);
        }
    }

    /// Owner-only add of a 32-bit delta: one load and one store of the
    /// low half, the high half only on a carry.
    #[inline(always)]
    pub(crate) fn add_u32(&self, d: u32) {
        let (lo, carry) = self.lo.load(Relaxed).overflowing_add(d);
        self.lo.store(lo, Relaxed);
        if carry {
            self.hi
                .store(self.hi.load(Relaxed).wrapping_add(1), Relaxed);
        }
    }

    /// `v` minus this value, saturating at 0 (32-bit compares only).
    #[inline(always)]
    pub(crate) fn u32_minus(&self, v: u32) -> u32 {
        if self.hi.load(Relaxed) != 0 {
            return 0;
        }
        v.saturating_sub(self.lo.load(Relaxed))
    }

    /// Owner-only: lower to `v` if above (32-bit compares only).
    #[inline(always)]
    pub(crate) fn lower_to_u32(&self, v: u32) {
        if self.hi.load(Relaxed) != 0 || v < self.lo.load(Relaxed) {
            self.store(u64::from(v));
        }
    }

    /// Owner-only: raise to `v` if below (32-bit compares only).
    #[inline(always)]
    pub(crate) fn raise_to_u32(&self, v: u32) {
        if self.hi.load(Relaxed) == 0 && v > self.lo.load(Relaxed) {
            // The high half is 0 already.
            self.lo.store(v, Relaxed);
        }
    }

    #[inline(always)]
    pub(crate) fn store(&self, v: u64) {
        // Low half first: a reader between the two stores sees the old high
        // half with the new low half only if the high half did not change,
        // which is the correct value; if it changed, its recheck fails.
        self.lo.store(v as u32, Relaxed);
        self.hi.store((v >> 32) as u32, Relaxed);
    }
}

/// A native 64-bit atomic with plain loads and stores.
#[allow(dead_code)]
pub(crate) struct Native64(portable_atomic::AtomicU64);

#[allow(dead_code)]
impl Native64 {
    pub(crate) const fn new(v: u64) -> Self {
        Native64(portable_atomic::AtomicU64::new(v))
    }
    #[inline(always)]
    pub(crate) fn load(&self) -> u64 {
        self.0.load(Relaxed)
    }
    #[inline(always)]
    pub(crate) fn store(&self, v: u64) {
        self.0.store(v, Relaxed)
    }
    /// Owner-only add: a load and a store.
    #[inline(always)]
    pub(crate) fn add(&self, d: u64) {
        self.store(self.load().wrapping_add(d))
    }
    /// Owner-only add of a 32-bit delta (as `Split64::add_u32`).
    #[inline(always)]
    pub(crate) fn add_u32(&self, d: u32) {
        self.add(u64::from(d))
    }
    /// `v` minus this value, saturating at 0.
    #[inline(always)]
    pub(crate) fn u32_minus(&self, v: u32) -> u32 {
        u64::from(v).saturating_sub(self.load()) as u32
    }
    /// Owner-only: lower to `v` if above.
    #[inline(always)]
    pub(crate) fn lower_to_u32(&self, v: u32) {
        if u64::from(v) < self.load() {
            self.store(u64::from(v));
        }
    }
    /// Owner-only: raise to `v` if below.
    #[inline(always)]
    pub(crate) fn raise_to_u32(&self, v: u32) {
        if u64::from(v) > self.load() {
            self.store(u64::from(v));
        }
    }
}

/// The owner-written counter of this target.
#[cfg(target_has_atomic = "64")]
pub(crate) type Owned64 = Native64;
/// The owner-written counter of this target.
#[cfg(not(target_has_atomic = "64"))]
pub(crate) type Owned64 = Split64;

/// Owner-only increment (wrapping).
#[inline(always)]
pub(crate) fn bump(a: &Owned64, d: u64) {
    a.add(d);
}

// What a `Counter` is made of (see `Counter`).
#[cfg(not(feature = "single-core"))]
type CounterCell = Native64;
#[cfg(feature = "single-core")]
type CounterCell = Owned64;

/// A 64-bit statistic that every recording adds to (a site's counters, a
/// histogram bucket).
///
/// By default an `AtomicU64` with read-modify-writes, so any number of
/// threads (or cores) record into one site without losing counts. With the
/// `single-core` feature it is an [`Owned64`]: a plain load and store, for
/// programs that record from one execution context only (firmware on one
/// core, nothing measured in interrupt handlers). On thumbv6m that turns
/// each update from a critical section (interrupts off and, on the RP2040,
/// a hardware spinlock) into four 32-bit moves. Recording from a second
/// context there can lose or garble that context's updates of a shared
/// site, never more: every access is still atomic.
pub(crate) struct Counter(CounterCell);

impl Counter {
    pub(crate) const fn new(v: u64) -> Self {
        Counter(CounterCell::new(v))
    }
    #[inline(always)]
    pub(crate) fn load(&self) -> u64 {
        self.0.load()
    }
    #[inline(always)]
    pub(crate) fn store(&self, v: u64) {
        self.0.store(v)
    }
    #[inline(always)]
    pub(crate) fn add(&self, d: u64) {
        #[cfg(not(feature = "single-core"))]
        self.0 .0.fetch_add(d, Relaxed);
        #[cfg(feature = "single-core")]
        bump(&self.0, d);
    }
    /// Add `d`, stopping at `u64::MAX` instead of wrapping past it (a
    /// byte total that wrapped would read as a small count, or as none at
    /// all). A compare-and-swap loop, out of line: for the merges only,
    /// never a measurement's own path.
    #[cold]
    #[inline(never)]
    pub(crate) fn add_saturating(&self, d: u64) {
        #[cfg(not(feature = "single-core"))]
        {
            // The closure always gives a value, so this never fails.
            let _ = self
                .0
                 .0
                .fetch_update(Relaxed, Relaxed, |v| Some(v.saturating_add(d)));
        }
        #[cfg(feature = "single-core")]
        self.store(self.load().saturating_add(d));
    }
    /// Lower to `v` if above. A plain load first: after warm-up the
    /// minimum almost never changes, and a load is far cheaper than a
    /// locked read-modify-write.
    #[inline(always)]
    pub(crate) fn lower_to(&self, v: u64) {
        if v < self.load() {
            #[cfg(not(feature = "single-core"))]
            self.0 .0.fetch_min(v, Relaxed);
            #[cfg(feature = "single-core")]
            self.store(v);
        }
    }
    /// Raise to `v` if below (a plain load first, as in `lower_to`).
    #[inline(always)]
    pub(crate) fn raise_to(&self, v: u64) {
        if v > self.load() {
            #[cfg(not(feature = "single-core"))]
            self.0 .0.fetch_max(v, Relaxed);
            #[cfg(feature = "single-core")]
            self.store(v);
        }
    }
}

/// Load a portable-atomic byte on the hot path (a site's registration
/// state, the clock mode). With `single-core` it is a plain byte load:
/// under portable-atomic's `critical-section` feature its own load is a
/// critical section, and with one context recording, no write to the byte
/// (a critical section itself) can interleave with the load.
#[inline(always)]
pub(crate) fn load_u8(a: &portable_atomic::AtomicU8, order: portable_atomic::Ordering) -> u8 {
    #[cfg(feature = "single-core")]
    {
        // SAFETY: the pointer is the atomic's own, valid and aligned while
        // `a` lives, and every other access to it is atomic (see above).
        let v = unsafe { core::sync::atomic::AtomicU8::from_ptr(a.as_ptr()) }.load(Relaxed);
        // One context: ordering against other cores is moot, only the
        // compiler's reordering matters (an Acquire load is a `dmb` on
        // thumbv6m, 3 cycles on each clock read).
        if !matches!(order, Relaxed) {
            core::sync::atomic::compiler_fence(portable_atomic::Ordering::Acquire);
        }
        v
    }
    #[cfg(not(feature = "single-core"))]
    a.load(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_halves_carry() {
        let s = Split64::new(u64::from(u32::MAX) - 1);
        assert_eq!(s.load(), 0xFFFF_FFFE);
        s.store(s.load() + 3);
        assert_eq!(s.load(), 0x1_0000_0001);
        s.store(u64::MAX);
        assert_eq!(s.load(), u64::MAX);
        // The owner's add carries into, and adds to, the high half.
        let a = Split64::new(u64::from(u32::MAX));
        a.add(1);
        assert_eq!(a.load(), 1 << 32);
        a.add(0x2_0000_0003);
        assert_eq!(a.load(), 0x3_0000_0003);
        a.add(u64::MAX);
        assert_eq!(a.load(), 0x3_0000_0002);
        // 32-bit deltas carry too; the extremes compare both halves.
        let c = Split64::new(u64::from(u32::MAX) - 1);
        c.add_u32(1);
        assert_eq!(c.load(), u64::from(u32::MAX));
        c.add_u32(3);
        assert_eq!(c.load(), 0x1_0000_0002);
        let lo = Split64::new(u64::MAX);
        lo.lower_to_u32(u32::MAX);
        assert_eq!(lo.load(), u64::from(u32::MAX));
        lo.lower_to_u32(9);
        lo.lower_to_u32(10);
        assert_eq!(lo.load(), 9);
        let hi = Split64::new(1 << 32);
        hi.raise_to_u32(u32::MAX);
        assert_eq!(hi.load(), 1 << 32);
        let hi = Split64::new(0);
        hi.raise_to_u32(7);
        hi.raise_to_u32(5);
        assert_eq!(hi.load(), 7);
        for (start, v) in [(u64::MAX, 3u32), (2, 3), (1 << 32, 3)] {
            let (s, n) = (Split64::new(start), Native64::new(start));
            s.lower_to_u32(v);
            n.lower_to_u32(v);
            assert_eq!(s.load(), n.load());
            let (s, n) = (Split64::new(start), Native64::new(start));
            s.raise_to_u32(v);
            n.raise_to_u32(v);
            assert_eq!(s.load(), n.load());
            s.add_u32(v);
            n.add_u32(v);
            assert_eq!(s.load(), n.load());
            for w in [0, 2, 3, 4, u32::MAX] {
                assert_eq!(s.u32_minus(w), n.u32_minus(w), "{start} {v} {w}");
            }
        }
        assert_eq!(Split64::new(1 << 32).u32_minus(u32::MAX), 0);
        assert_eq!(Split64::new(5).u32_minus(7), 2);
        let n = Native64::new(5);
        n.store(n.load() + 1);
        assert_eq!(n.load(), 6);
    }

    #[test]
    fn counter_adds_and_keeps_extremes() {
        let c = Counter::new(u64::from(u32::MAX));
        c.add(2);
        assert_eq!(c.load(), 0x1_0000_0001);
        let lo = Counter::new(u64::MAX);
        lo.lower_to(7);
        lo.lower_to(9);
        assert_eq!(lo.load(), 7);
        let hi = Counter::new(0);
        hi.raise_to(9);
        hi.raise_to(7);
        assert_eq!(hi.load(), 9);
        hi.store(0);
        assert_eq!(hi.load(), 0);
        let b = Counter::new(u64::MAX - 1);
        b.add_saturating(1);
        assert_eq!(b.load(), u64::MAX);
        b.add_saturating(u64::MAX);
        assert_eq!(b.load(), u64::MAX);
        let b = portable_atomic::AtomicU8::new(3);
        assert_eq!(load_u8(&b, Relaxed), 3);
        b.store(2, Relaxed);
        assert_eq!(load_u8(&b, Relaxed), 2);
    }
}
