//! Many threads recording into the same sites lose no counts, and each
//! thread's stack paths are merged in the snapshot.
#![cfg(not(feature = "off"))]

#[test]
// With `single-core` shared sites are owner-written: several threads lose
// counts there by design (this test shows it when run with the feature).
#[cfg_attr(
    feature = "single-core",
    ignore = "single-core: one recording context only"
)]
fn many_threads_lose_no_counts() {
    const THREADS: u64 = 16;
    const CALLS: u64 = 20_000;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    for i in 0..CALLS {
                        let _g = perfkit::span!("threads.outer");
                        perfkit::measure!("threads.shared", bytes = t + 1, std::hint::black_box(i));
                    }
                })
            })
            .collect();
        // An explicit join waits for the thread's exit, thread-local
        // destructors included (they hand back the path tables).
        for h in handles {
            h.join().unwrap();
        }
    });
    let snap = perfkit::snapshot();
    let shared = snap.site("threads.shared").unwrap();
    assert_eq!(shared.calls, THREADS * CALLS);
    // sum over t of (t + 1) * CALLS
    assert_eq!(shared.bytes, Some(THREADS * (THREADS + 1) / 2 * CALLS));
    assert_eq!(snap.site("threads.outer").unwrap().calls, THREADS * CALLS);
    assert_eq!(
        snap.stack("threads.outer;threads.shared").unwrap().calls,
        THREADS * CALLS
    );
    assert_eq!(snap.stack("threads.outer").unwrap().calls, THREADS * CALLS);
    // The histogram and the counters agree: every path was merged.
    assert!(shared.min_ns <= shared.p50_ns && shared.p50_ns <= shared.max_ns);
    perfkit::for_each_site(|s| {
        if s.name().starts_with("threads.") && s.name() != "threads.reuse" {
            assert_eq!(s.histogram().count(), s.calls(), "{}", s.name());
        }
    });
}

#[test]
fn thread_tables_are_reused() {
    // Threads that come and go reuse path tables: their counts stay.
    for _ in 0..50 {
        std::thread::spawn(|| perfkit::measure!("threads.reuse", 1))
            .join()
            .unwrap();
    }
    let snap = perfkit::snapshot();
    assert_eq!(snap.stack("threads.reuse").unwrap().calls, 50);
}
