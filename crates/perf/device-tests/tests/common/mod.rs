//! What every device-core test shares: a mock clock and readers of the
//! statistics. Each test file is its own program, so its measurements have
//! the device's global ring and path table to themselves (64 slots: a few
//! dozen paths in one table can make a path's probe run out).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub static T: AtomicU64 = AtomicU64::new(0);
/// Ticks each read of the clock adds after it (0: time moves only by `adv`).
pub static STEP: AtomicU64 = AtomicU64::new(0);

pub struct Mock;

impl perfkit::Clock for Mock {
    fn now(&self) -> u64 {
        T.fetch_add(STEP.load(Relaxed), Relaxed)
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000
    }
}

pub fn adv(n: u64) {
    T.fetch_add(n, Relaxed);
}

/// (calls, total, self) of the path of `depth` sites ending in `last`.
pub fn path(last: &str, depth: usize) -> (u64, u64, u64) {
    let mut got = None;
    perfkit::for_each_path(|p| {
        if p.sites.len() == depth && p.sites.last().unwrap().name() == last {
            got = Some((p.calls, p.total_ticks, p.self_ticks));
        }
    });
    got.unwrap_or_else(|| panic!("no path of {depth} sites ending in {last}"))
}

pub fn site(name: &str) -> &'static perfkit::Site {
    let mut found = None;
    perfkit::for_each_site(|s| {
        if s.name() == name {
            found = Some(s);
        }
    });
    found.unwrap_or_else(|| panic!("no site {name}"))
}
