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
    hi: portable_atomic::AtomicU32,
    lo: portable_atomic::AtomicU32,
}

#[allow(dead_code)]
impl Split64 {
    pub(crate) const fn new(v: u64) -> Self {
        Split64 {
            hi: portable_atomic::AtomicU32::new((v >> 32) as u32),
            lo: portable_atomic::AtomicU32::new(v as u32),
        }
    }

    #[inline(always)]
    pub(crate) fn load(&self) -> u64 {
        loop {
            let hi = self.hi.load(Relaxed);
            let lo = self.lo.load(Relaxed);
            if self.hi.load(Relaxed) == hi {
                return (u64::from(hi) << 32) | u64::from(lo);
            }
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
    a.store(a.load().wrapping_add(d));
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
        let n = Native64::new(5);
        n.store(n.load() + 1);
        assert_eq!(n.load(), 6);
    }
}
