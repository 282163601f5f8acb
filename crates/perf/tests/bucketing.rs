//! Both ways a path holds a call waiting for its histogram bucket (its
//! duration, or its bucket's index), merged by `flush()` on another thread
//! while the owner records: after every flush the site's histogram has a
//! sample for each call it counted, and none beyond the calls made but the
//! one in flight; at the end each call is in the bucket of its own
//! duration. A path keeps its way under the next thread that takes its
//! table, and both ways bucket the edges alike. Its own process: a mock
//! clock, 1 tick = 1 ns.
#![cfg(all(feature = "std", not(feature = "off")))]

use perfkit::hist::{bucket_of, BUCKETS};
use perfkit::{Clock, Site};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, MutexGuard, Once};

struct Mock(AtomicU64);

impl Clock for Mock {
    fn now(&self) -> u64 {
        self.0.load(SeqCst)
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

static MOCK: Mock = Mock(AtomicU64::new(1_000));

/// Durations in the exact buckets (whose index is the duration) and above,
/// where an index read as a duration, or a duration as an index, is in
/// another bucket; the last past the last bucket. Small enough that the
/// clock never wraps.
const DURATIONS: [u64; 7] = [3, 40, 1_000, 77_777, 5_000_000, 1 << 33, 1 << 40];
/// Calls per way.
const CALLS: u64 = 100_000;

fn find_site(name: &str) -> Option<&'static Site> {
    let mut found = None;
    perfkit::for_each_site(|s| {
        if s.name() == name {
            found = Some(s);
        }
    });
    found
}

fn site_named(name: &str) -> &'static Site {
    find_site(name).unwrap_or_else(|| panic!("no site {name}"))
}

/// The buckets of `name`'s histogram (all 0 before its first call).
fn buckets(name: &str) -> Vec<u64> {
    find_site(name).map_or(vec![0; BUCKETS], |s| {
        (0..BUCKETS).map(|i| s.histogram().bucket(i)).collect()
    })
}

fn measured(name: &'static str, d: u64) {
    let tick = || MOCK.0.fetch_add(d, SeqCst);
    match name {
        "flush.index" => perfkit::measure!("flush.index", tick()),
        "flush.duration" => perfkit::measure!("flush.duration", tick()),
        "keep.index" => perfkit::measure!("keep.index", tick()),
        "keep.duration" => perfkit::measure!("keep.duration", tick()),
        "edge.index" => perfkit::measure!("edge.index", tick()),
        _ => perfkit::measure!("edge.duration", tick()),
    };
}

/// Record `CALLS` calls on a fresh thread, slots made under `at_once`,
/// flushing on this one meanwhile.
fn check(at_once: bool, name: &'static str) {
    perfkit::__private::set_bucket_at_once(at_once);
    let made = AtomicU64::new(0);
    let flushes = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    // The first bad flush: (site calls, histogram count, calls made after).
    let mut bad: Option<(u64, u64, u64)> = None;
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..CALLS {
                measured(name, DURATIONS[i as usize % DURATIONS.len()]);
                made.fetch_add(1, SeqCst);
                // Every so often, wait for a flush (a loaded machine
                // could otherwise run the whole loop between two).
                if i % 1_000 == 999 {
                    let f = flushes.load(SeqCst);
                    while flushes.load(SeqCst) == f {
                        std::thread::yield_now();
                    }
                }
            }
            done.store(true, SeqCst);
        });
        while made.load(SeqCst) == 0 {
            std::hint::spin_loop();
        }
        let site = site_named(name);
        while !done.load(SeqCst) {
            perfkit::flush();
            let (calls, count) = (site.calls(), site.histogram().count());
            let after = made.load(SeqCst);
            flushes.fetch_add(1, SeqCst);
            if bad.is_none() && (count < calls || count > after + 1) {
                bad = Some((calls, count, after));
            }
        }
    });
    assert_eq!(bad, None, "at_once = {at_once}: (calls, samples, made)");
    perfkit::flush();
    let site = site_named(name);
    assert_eq!(site.calls(), CALLS, "at_once = {at_once}");
    assert_eq!(site.histogram().count(), CALLS, "at_once = {at_once}");
    let mut want = vec![0u64; BUCKETS];
    for i in 0..CALLS {
        want[bucket_of(DURATIONS[i as usize % DURATIONS.len()])] += 1;
    }
    assert_eq!(buckets(name), want, "at_once = {at_once}");
}

/// The tests of this file share the clock and the choice of way.
fn setup() -> MutexGuard<'static, ()> {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| perfkit::set_clock(&MOCK).expect("first clock"));
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn flushes_while_recording_count_each_call_once_in_its_bucket() {
    let _l = setup();
    check(true, "flush.index");
    check(false, "flush.duration");
}

/// A thread's calls of `name`, then a flush (which finds the last call
/// still waiting), on a table the thread gives back when it exits.
fn calls_on_a_thread(name: &'static str) {
    calls_of(name, &DURATIONS);
}

/// As `calls_on_a_thread`, of the given durations.
fn calls_of(name: &'static str, durations: &'static [u64]) {
    std::thread::spawn(move || {
        for &d in durations {
            measured(name, d);
        }
    })
    .join()
    .expect("recording thread");
    perfkit::flush();
}

#[test]
fn a_path_keeps_its_way_under_the_next_thread_on_its_table() {
    let _l = setup();
    for (first, name) in [(true, "keep.index"), (false, "keep.duration")] {
        perfkit::flush();
        let before = buckets(name);
        perfkit::__private::set_bucket_at_once(first);
        calls_on_a_thread(name);
        // The next thread takes the same table and path, made the first
        // way, and counts the call the first left waiting.
        perfkit::__private::set_bucket_at_once(!first);
        calls_on_a_thread(name);
        let mut tables = 0;
        perfkit::for_each_path(|p| {
            tables += usize::from(p.sites.len() == 1 && p.sites[0].name() == name)
        });
        assert_eq!(tables, 1, "{name}: one table");
        let mut want = before;
        for d in DURATIONS {
            want[bucket_of(d)] += 2;
        }
        assert_eq!(buckets(name), want, "first way at_once = {first}");
    }
}

#[test]
fn both_ways_bucket_the_edges_of_the_exact_buckets_and_past_the_last() {
    let _l = setup();
    // 0, the ends of the exact buckets, the first log-linear ones, and a
    // duration past the last bucket (counted in it).
    const EDGES: [u64; 8] = [0, 1, 31, 63, 64, 65, 1 << 39, 1 << 50];
    for (at_once, name) in [(true, "edge.index"), (false, "edge.duration")] {
        perfkit::__private::set_bucket_at_once(at_once);
        calls_of(name, &EDGES);
        let mut want = vec![0u64; BUCKETS];
        for d in EDGES {
            want[bucket_of(d)] += 1;
        }
        assert_eq!(buckets(name), want, "at_once = {at_once}");
    }
}
