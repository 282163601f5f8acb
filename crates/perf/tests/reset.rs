//! `reset()` while another thread measures: no call made before it is
//! counted after it (its own process: it resets every site).
#![cfg(all(feature = "std", not(feature = "off")))]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};

/// Calls the recording thread has completed.
static MADE: AtomicU64 = AtomicU64::new(0);

fn nested() {
    let _g = perfkit::span!("reset.outer");
    perfkit::measure!("reset.leaf", std::hint::black_box(0));
}

fn leaf_calls() -> u64 {
    let mut c = 0;
    perfkit::for_each_site(|s| {
        if s.name() == "reset.leaf" {
            c += s.calls();
        }
    });
    c
}

#[test]
fn a_reset_during_measurements_brings_back_no_earlier_call() {
    // Once reset zeroed the recording thread's counts: an owner between
    // its load and store of a path's count stored the old count plus one,
    // and the next flush added the path's whole history again.
    let stop = AtomicBool::new(false);
    // The worst reset: (counted at its site, on its path, made). Asserted
    // once the recorder stopped, so a failure ends the test.
    let mut worst = (0u64, 0u64, 0u64);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(SeqCst) {
                nested();
                MADE.fetch_add(1, SeqCst);
            }
        });
        while MADE.load(SeqCst) < 1_000 {
            std::hint::spin_loop();
        }
        for _ in 0..3_000 {
            let before = MADE.load(SeqCst);
            perfkit::reset();
            let counted = leaf_calls();
            let snap = perfkit::snapshot();
            let after = MADE.load(SeqCst);
            let path = snap.stack("reset.outer;reset.leaf").map_or(0, |p| p.calls);
            let made = after - before;
            if counted.max(path).saturating_sub(made) > worst.0.max(worst.1).saturating_sub(worst.2)
            {
                worst = (counted, path, made);
            }
        }
        stop.store(true, SeqCst);
    });
    // At most the call in flight as a reset ran is counted beyond those
    // made since it began.
    let (counted, path, made) = worst;
    assert!(
        counted <= made + 1 && path <= made + 1,
        "after a reset: {counted} counted at the site, {path} on the path, {made} made"
    );
    // Quiet now: a reset then three calls count exactly three, everywhere.
    perfkit::reset();
    for _ in 0..3 {
        nested();
    }
    let snap = perfkit::snapshot();
    for name in ["reset.outer", "reset.leaf"] {
        assert_eq!(snap.site(name).map(|s| s.calls), Some(3), "{name}");
    }
    assert_eq!(snap.stack("reset.outer;reset.leaf").unwrap().calls, 3);
    assert_eq!(snap.stack("reset.outer").unwrap().calls, 3);
    perfkit::for_each_site(|s| {
        if s.name().starts_with("reset.") {
            assert_eq!(s.histogram().count(), s.calls(), "{}", s.name());
        }
    });
}
