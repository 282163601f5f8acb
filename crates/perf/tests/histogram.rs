//! The histogram's error bound, as properties.

use perfkit::hist::{bucket_mid, bucket_of, Histogram, MAX_POW, SUB_BITS};
use proptest::prelude::*;

/// Worst-case relative error of a reported value.
fn bound() -> f64 {
    1.0 / f64::from(1u32 << (SUB_BITS + 1))
}

proptest! {
    #[test]
    fn bucket_midpoint_within_bound(v in 1u64..(1u64 << (MAX_POW + 1))) {
        let mid = bucket_mid(bucket_of(v));
        let err = (mid as f64 - v as f64).abs() / v as f64;
        prop_assert!(err <= bound(), "v {} mid {} err {}", v, mid, err);
        #[cfg(not(feature = "compact"))]
        prop_assert!(err <= 0.03);
    }

    #[test]
    fn quantiles_within_bound(
        mut values in prop::collection::vec(1u64..1_000_000_000, 1..400),
        q in 0.0f64..=1.0,
    ) {
        let h = Histogram::new();
        for &v in &values {
            h.record(v);
        }
        values.sort_unstable();
        // The exact q-quantile by the same rank rule: smallest value with at
        // least q * n values at or below it.
        let n = values.len();
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        let exact = values[rank - 1] as f64;
        let got = h.quantile(q).unwrap() as f64;
        prop_assert!((got - exact).abs() / exact <= bound(), "q {} exact {} got {}", q, exact, got);
        prop_assert_eq!(h.count(), n as u64);
    }
}
