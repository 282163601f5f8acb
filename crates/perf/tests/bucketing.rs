//! Both ways a path holds a call waiting for its histogram bucket (its
//! duration, or its bucket's index: chosen by CPU) count every call in the
//! bucket of its own duration, against a mock clock (1 tick = 1 ns).
#![cfg(not(feature = "off"))]

use perfkit::hist::{bucket_of, BUCKETS};
use perfkit::{Clock, Site};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

struct Mock(AtomicU64);

impl Clock for Mock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

static MOCK: Mock = Mock(AtomicU64::new(1_000));
static LOCK: Mutex<()> = Mutex::new(());

/// Durations across the exact buckets, the log-linear ones, and past the
/// last bucket (which clamps).
const DURATIONS: [u64; 9] = [0, 1, 31, 63, 64, 1_000, 123_457, 1 << 40, 1 << 50];

fn site_named(name: &str) -> &'static Site {
    let mut found = None;
    perfkit::for_each_site(|s| {
        if s.name() == name {
            found = Some(s);
        }
    });
    found.unwrap_or_else(|| panic!("no site {name}"))
}

/// Each duration `repeat` times on a fresh thread (so on slots made under
/// the chosen way), flushing after every call when `flush_each` (a merge
/// that finds the last call still waiting counts it itself).
fn record(at_once: bool, name: &'static str, repeat: usize, flush_each: bool) -> Vec<u64> {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| perfkit::set_clock(&MOCK).expect("first clock"));
    perfkit::__private::set_bucket_at_once(at_once);
    std::thread::spawn(move || {
        for _ in 0..repeat {
            for d in DURATIONS {
                match name {
                    "bucketing.index" => perfkit::measure!("bucketing.index", {
                        MOCK.0.fetch_add(d, Ordering::SeqCst);
                    }),
                    "bucketing.duration" => perfkit::measure!("bucketing.duration", {
                        MOCK.0.fetch_add(d, Ordering::SeqCst);
                    }),
                    "bucketing.index_flushed" => {
                        perfkit::measure!("bucketing.index_flushed", {
                            MOCK.0.fetch_add(d, Ordering::SeqCst);
                        })
                    }
                    _ => perfkit::measure!("bucketing.duration_flushed", {
                        MOCK.0.fetch_add(d, Ordering::SeqCst);
                    }),
                }
                if flush_each {
                    perfkit::flush();
                }
            }
        }
    })
    .join()
    .expect("recording thread");
    perfkit::flush();
    let h = site_named(name).histogram();
    (0..BUCKETS).map(|i| h.bucket(i)).collect()
}

fn expected(repeat: u64) -> Vec<u64> {
    let mut want = vec![0u64; BUCKETS];
    for d in DURATIONS {
        want[bucket_of(d)] += repeat;
    }
    want
}

#[test]
fn both_ways_count_each_call_in_its_own_bucket() {
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for (at_once, name) in [(true, "bucketing.index"), (false, "bucketing.duration")] {
        let got = record(at_once, name, 3, false);
        assert_eq!(got, expected(3), "at_once = {at_once}");
    }
}

#[test]
fn a_merge_between_calls_counts_the_waiting_call_once() {
    let _l = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    for (at_once, name) in [
        (true, "bucketing.index_flushed"),
        (false, "bucketing.duration_flushed"),
    ] {
        let got = record(at_once, name, 2, true);
        assert_eq!(got, expected(2), "at_once = {at_once}");
    }
}
