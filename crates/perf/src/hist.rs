//! Log-linear (HDR-like) histogram of durations in clock ticks.
//!
//! Values below `2^SUB_BITS` get one bucket each (exact). Above that, every
//! power of two `[2^p, 2^(p+1))` is split into `2^SUB_BITS` equal buckets, so a
//! bucket is at most `1/2^SUB_BITS` of its lower bound wide. Reporting the
//! bucket midpoint gives a relative error of at most `1/2^(SUB_BITS+1)`:
//! 1.6 % with the default 5 sub-bucket bits, 6.3 % with the `compact` feature
//! (3 bits). Values at or above `2^(MAX_POW+1)` land in the last bucket
//! (counted, never lost; the exact maximum is kept separately by the site).
//!
//! The bucket index is `leading_zeros`, a shift and a mask: no loop, no table
//! (on ARMv6-M, which has no count-leading-zeros instruction, a shift or two
//! and a 256-byte table instead of the libcall; see `bucket_by_table`).

use crate::owned::Counter;

/// Sub-bucket bits per power of two: relative bucket width is `2^-SUB_BITS`.
#[cfg(not(feature = "compact"))]
pub const SUB_BITS: u32 = 5;
/// Sub-bucket bits per power of two: relative bucket width is `2^-SUB_BITS`.
#[cfg(feature = "compact")]
pub const SUB_BITS: u32 = 3;

/// Highest power of two with its own buckets (`2^37` ticks is 45 s of a 3 GHz TSC).
#[cfg(not(feature = "compact"))]
pub const MAX_POW: u32 = 37;
/// Highest power of two with its own buckets (`2^31` ticks is 35 min of a 1 MHz timer).
#[cfg(feature = "compact")]
pub const MAX_POW: u32 = 31;

const SUB: u64 = 1 << SUB_BITS;

/// Number of buckets per histogram.
pub const BUCKETS: usize = ((MAX_POW - SUB_BITS + 2) as usize) << SUB_BITS;

/// Bucket index of a value in ticks.
#[inline(always)]
pub const fn bucket_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    if v <= u32::MAX as u64 {
        // Short durations, nearly all of them: 32-bit arithmetic, which on
        // a 32-bit core (thumbv6m has no CLZ either) is one count of leading
        // zeros and one shift instead of two and a 64-bit shift.
        return bucket_of_u32(v as u32);
    }
    let p = 63 - v.leading_zeros();
    if p > MAX_POW {
        return BUCKETS - 1;
    }
    let group = (p - SUB_BITS + 1) as usize;
    let sub = ((v >> (p - SUB_BITS)) & (SUB - 1)) as usize;
    (group << SUB_BITS) | sub
}

/// Bucket index of a value in ticks below 2^32 (`bucket_of`).
#[inline(always)]
pub const fn bucket_of_u32(v: u32) -> usize {
    #[cfg(all(target_arch = "arm", not(target_feature = "v7")))]
    {
        bucket_by_table(v)
    }
    #[cfg(not(all(target_arch = "arm", not(target_feature = "v7"))))]
    {
        bucket_by_clz(v)
    }
}

/// `bucket_of_u32` with a count of leading zeros.
#[cfg_attr(all(target_arch = "arm", not(target_feature = "v7")), allow(dead_code))]
#[inline(always)]
const fn bucket_by_clz(v: u32) -> usize {
    if v < SUB as u32 {
        return v as usize;
    }
    let p = 31 - v.leading_zeros();
    let group = (p - SUB_BITS + 1) as usize;
    let sub = ((v >> (p - SUB_BITS)) & (SUB as u32 - 1)) as usize;
    (group << SUB_BITS) | sub
}

/// Shift that keeps a value of 256 and more at `SUB` and more (see
/// `bucket_by_table`).
const TABLE_STEP: u32 = 8 - SUB_BITS;

/// The bucket of every byte value.
const BYTE_BUCKET: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = bucket_by_clz(i as u32) as u8;
        i += 1;
    }
    t
};

/// `bucket_of_u32` without a count of leading zeros, which ARMv6-M (the
/// RP2040's Cortex-M0+) lacks: there `leading_zeros` is a call to
/// `__clzsi2`, about 40 cycles. Shifting a value right by `k` while it
/// stays at `SUB` or more moves it down exactly `k` groups and keeps its
/// sub-bucket, so `bucket(v) = bucket(v >> k) + (k << SUB_BITS)`: shift
/// until the value is a byte, then look it up. With `compact` (8
/// sub-buckets) a step is 5 bits: durations below 256 cycles take a
/// compare and a load, below 8192 one step more.
#[cfg_attr(
    not(all(target_arch = "arm", not(target_feature = "v7"))),
    allow(dead_code)
)]
#[inline(always)]
const fn bucket_by_table(mut v: u32) -> usize {
    let mut base = 0;
    while v >= 256 {
        v >>= TABLE_STEP;
        base += (TABLE_STEP as usize) << SUB_BITS;
    }
    base + BYTE_BUCKET[v as usize] as usize
}

/// [`bucket_of`] without a branch, for 64-bit cores (the host's recording
/// path): the power of two of `v | 2^SUB_BITS` (never below `SUB_BITS`, so
/// the exact buckets need no case of their own), the top `SUB_BITS + 1`
/// bits of `v` added to that power's first bucket, and the last bucket as
/// a ceiling (indices grow with `v`, so a minimum clamps every overflow).
#[inline(always)]
pub const fn bucket_of_flat(v: u64) -> usize {
    let shift = (63 - (v | SUB).leading_zeros()) - SUB_BITS;
    let i = ((shift as usize) << SUB_BITS) + (v >> shift) as usize;
    if i < BUCKETS {
        i
    } else {
        BUCKETS - 1
    }
}

/// Lowest value (ticks) that falls into bucket `i`.
pub const fn bucket_low(i: usize) -> u64 {
    let group = (i >> SUB_BITS) as u32;
    let sub = (i as u64) & (SUB - 1);
    if group == 0 {
        return sub;
    }
    let p = group + SUB_BITS - 1;
    (1u64 << p) + (sub << (p - SUB_BITS))
}

/// Width in ticks of bucket `i` (1 for the exact buckets).
pub const fn bucket_width(i: usize) -> u64 {
    let group = (i >> SUB_BITS) as u32;
    if group == 0 {
        return 1;
    }
    1u64 << (group - 1)
}

/// Representative value of bucket `i`: its midpoint (exact for small values).
pub const fn bucket_mid(i: usize) -> u64 {
    bucket_low(i) + (bucket_width(i) - 1) / 2
}

/// How many of `total` values make up the share `q` (in `[0, 1]`): rounded
/// up, at least one. It is also the 1-based rank of the value at quantile
/// `q`, the smallest value with at least `q * total` values at or below it.
/// (Rounded up by hand: core has no `ceil`.)
fn rank(q: f64, total: u64) -> u64 {
    let exact = q * total as f64;
    let mut r = exact as u64;
    if (r as f64) < exact {
        r += 1;
    }
    r.clamp(1, total)
}

/// A fixed-size array of bucket counters (atomic, or owner-written with the
/// `single-core` feature).
pub struct Histogram {
    buckets: [Counter; BUCKETS],
}

impl Histogram {
    /// An empty histogram (usable in a `static`).
    pub const fn new() -> Self {
        Histogram {
            buckets: [const { Counter::new(0) }; BUCKETS],
        }
    }

    /// Count one value.
    #[inline(always)]
    pub fn record(&self, ticks: u64) {
        self.buckets[bucket_of(ticks)].add(1);
    }

    /// Count one value below 2^32 (32-bit arithmetic only).
    #[inline(always)]
    pub fn record_u32(&self, ticks: u32) {
        self.buckets[bucket_of_u32(ticks)].add(1);
    }

    /// Add `n` values to bucket `i` (merging a path's histogram).
    #[cfg(feature = "std")]
    #[inline]
    pub(crate) fn add_at(&self, i: usize, n: u64) {
        if let Some(b) = self.buckets.get(i) {
            b.add(n);
        }
    }

    /// Total number of values counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load()).sum()
    }

    /// Count in bucket `i`.
    pub fn bucket(&self, i: usize) -> u64 {
        self.buckets[i].load()
    }

    /// The value (ticks, bucket midpoint) at quantile `q` in `[0, 1]`, or
    /// `None` when empty. `q = 0.99` gives p99.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        let rank = rank(q, total);
        let mut seen = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load();
            if seen >= rank {
                return Some(bucket_mid(i));
            }
        }
        // Counters moved under a concurrent recorder: report the last bucket.
        Some(bucket_mid(BUCKETS - 1))
    }

    /// The mean (ticks, rounded) of the smallest `keep` share of the values,
    /// `keep` in `(0, 1]`, each value taken at its bucket's midpoint; `None`
    /// when empty. `keep = 0.99` leaves out the slowest 1 %: the preempted
    /// and interrupted calls that make a plain mean noisy.
    ///
    /// Unlike a quantile, which is always one bucket's value, this moves
    /// smoothly with the true duration where the clock is coarse: a clock
    /// that advances in 10 ns steps reads a 15 ns call as 10 or 20 ns about
    /// equally often, so the median of such calls jumps between 10 and 20
    /// on a change of a fraction of a nanosecond, while their mean is 15.
    pub fn trimmed_mean(&self, keep: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let keep = if keep.is_nan() {
            1.0
        } else {
            keep.clamp(0.0, 1.0)
        };
        let want = rank(keep, total);
        let (mut taken, mut sum) = (0u64, 0u128);
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load().min(want - taken);
            taken += n;
            sum += n as u128 * bucket_mid(i) as u128;
            if taken == want {
                break;
            }
        }
        // Counters moved under a concurrent recorder: the mean of what was read.
        let taken = taken.max(1) as u128;
        Some(((sum + taken / 2) / taken) as u64)
    }

    /// Zero every bucket.
    pub fn clear(&self) {
        for b in &self.buckets {
            b.store(0);
        }
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_monotonic() {
        let mut prev_end = 0u64;
        for i in 0..BUCKETS {
            assert_eq!(bucket_low(i), prev_end, "bucket {i}");
            prev_end = bucket_low(i) + bucket_width(i);
            assert_eq!(bucket_of(bucket_low(i)), i);
            assert_eq!(bucket_of(prev_end - 1), i);
            if let Ok(v) = u32::try_from(prev_end - 1) {
                assert_eq!(bucket_of_u32(v), i);
                assert_eq!(bucket_of_u32(bucket_low(i) as u32), i);
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn table_buckets_match_leading_zeros() {
        let mut v = 0u32;
        loop {
            for w in [v, v.wrapping_sub(1), v | (v >> 1), v | (v >> 3)] {
                assert_eq!(bucket_by_table(w), bucket_by_clz(w), "{w}");
            }
            if v == 0 {
                v = 1;
            } else if let Some(n) = v.checked_add((v >> 4).max(1)) {
                v = n;
            } else {
                break;
            }
        }
        assert_eq!(bucket_by_table(u32::MAX), bucket_by_clz(u32::MAX));
        for w in 0..70_000 {
            assert_eq!(bucket_by_table(w), bucket_by_clz(w), "{w}");
        }
    }

    #[test]
    fn flat_buckets_match() {
        // Every bucket's edges, their neighbours, and every power of two
        // up to the top: the branch-free index equals the reference.
        let mut vs = std::vec::Vec::new();
        for i in 0..BUCKETS {
            let lo = bucket_low(i);
            vs.extend([lo, lo + bucket_width(i) - 1, lo + bucket_width(i) / 2]);
        }
        for p in 0..64 {
            let v = 1u64 << p;
            vs.extend([v - 1, v, v + 1, v | (v - 1)]);
        }
        vs.push(u64::MAX);
        // And a spread of other values (a fixed xorshift sequence).
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            vs.extend([x, x >> (x % 64)]);
        }
        for v in vs {
            assert_eq!(bucket_of_flat(v), bucket_of(v), "{v}");
        }
    }

    #[test]
    fn trimmed_mean_leaves_out_the_slowest_values() {
        let h = Histogram::new();
        assert_eq!(h.trimmed_mean(0.99), None);
        // A coarse clock: a 15-tick call read as 10 or 20, half each, and one
        // preempted call.
        for _ in 0..50 {
            h.record(10);
            h.record(20);
        }
        h.record(1_000_000);
        // The median is one of the two readings; the trimmed mean leaves the
        // outlier out and is the duration.
        assert_eq!(h.quantile(0.5), Some(20));
        assert_eq!(h.trimmed_mean(0.99), Some(15));
        // All of them: the outlier counts (its bucket's midpoint).
        let all = h.trimmed_mean(1.0).unwrap();
        assert!(all > 9_000, "{all}");
        // The share is rounded up to whole values, and never below one.
        assert_eq!(h.trimmed_mean(0.0), Some(10));
        assert_eq!(h.trimmed_mean(f64::NAN), Some(all));
    }

    #[test]
    fn quantiles_of_known_values() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=10u64 {
            h.record(v);
        }
        assert_eq!(h.count(), 10);
        assert_eq!(h.quantile(0.5), Some(5));
        assert_eq!(h.quantile(0.9), Some(9));
        assert_eq!(h.quantile(1.0), Some(10));
        assert_eq!(h.quantile(0.0), Some(1));
        h.clear();
        assert_eq!(h.count(), 0);
    }
}
