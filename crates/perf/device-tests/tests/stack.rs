//! The device's stack paths (no `std`): self time is worked out when the
//! paths are read, from the child paths' totals and the nested calls that
//! had no path. One test: the device's stack is one global context.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static T: AtomicU64 = AtomicU64::new(0);
/// Ticks each read of the clock adds after it (0: time moves only by `adv`).
static STEP: AtomicU64 = AtomicU64::new(0);

struct Mock;

impl perfkit::Clock for Mock {
    fn now(&self) -> u64 {
        T.fetch_add(STEP.load(Relaxed), Relaxed)
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000
    }
}

fn adv(n: u64) {
    T.fetch_add(n, Relaxed);
}

/// (calls, total, self) of the path of `depth` sites ending in `last`.
fn path(last: &str, depth: usize) -> (u64, u64, u64) {
    let mut got = None;
    perfkit::for_each_path(|p| {
        if p.sites.len() == depth && p.sites.last().unwrap().name() == last {
            got = Some((p.calls, p.total_ticks, p.self_ticks));
        }
    });
    got.unwrap_or_else(|| panic!("no path of {depth} sites ending in {last}"))
}

fn site(name: &str) -> &'static perfkit::Site {
    let mut found = None;
    perfkit::for_each_site(|s| {
        if s.name() == name {
            found = Some(s);
        }
    });
    found.unwrap_or_else(|| panic!("no site {name}"))
}

fn deep(left: usize) {
    if left == 0 {
        let _b = perfkit::span!("t::bottom");
        adv(1);
        return;
    }
    let _g = perfkit::span!("t::deep");
    deep(left - 1);
}

fn level(left: usize) {
    if left == 0 {
        // One more: deeper than the stack tracks, so without a path.
        let _leaf = perfkit::span!("t::leaf");
        adv(7);
        return;
    }
    let _g = perfkit::span!("t::level");
    adv(1);
    level(left - 1);
    adv(2);
}

#[test]
fn self_time_leaves_out_child_paths_and_calls_without_a_path() {
    perfkit::set_clock(&Mock).unwrap();
    {
        let _o = perfkit::span!("t::outer");
        adv(10);
        for spent in [20, 5] {
            let _i = perfkit::span!("t::inner");
            adv(spent);
        }
        adv(65);
    }
    assert_eq!(path("t::outer", 1), (1, 100, 75));
    assert_eq!(path("t::inner", 2), (2, 25, 25));
    assert_eq!(perfkit::dropped_paths(), 0);

    // MAX_DEPTH levels with paths, then one without.
    level(perfkit::stack::MAX_DEPTH);
    assert_eq!(perfkit::dropped_paths(), 1);
    let deepest = perfkit::stack::MAX_DEPTH;
    // 1 + 7 (the leaf, nested) + 2.
    assert_eq!(path("t::level", deepest), (1, 10, 3));
    // 1 + 10 (nested) + 2.
    assert_eq!(path("t::level", deepest - 1), (1, 13, 3));
    assert_eq!(path("t::level", 1).2, 3);
    // The leaf's call is its site's.
    perfkit::flush();
    let mut leaf = 0;
    perfkit::for_each_site(|s| {
        if s.name() == "t::leaf" {
            leaf = s.calls();
        }
    });
    assert_eq!(leaf, 1);

    // Far more measurements than the ring holds, inside one: every call
    // counted exactly, however many replays ran meanwhile.
    const N: u64 = 1000;
    {
        let _o = perfkit::span!("t::many");
        adv(10);
        for i in 0..N {
            let mut g = perfkit::span!("t::each");
            g.add_bytes(i % 7 + 1);
            adv(3);
        }
        adv(5);
    }
    assert_eq!(path("t::many", 1), (1, 10 + 3 * N + 5, 15));
    assert_eq!(path("t::each", 2), (N, 3 * N, 3 * N));
    let each = site("t::each");
    assert_eq!((each.min_ticks(), each.max_ticks()), (3, 3));
    assert_eq!(each.bytes(), (0..N).map(|i| i % 7 + 1).sum::<u64>());

    // Guards dropped out of order: the outer one's self time keeps the
    // inner one, which its own end counts on its site, with its bytes.
    {
        let o = perfkit::span!("t::first");
        adv(4);
        let mut i = perfkit::span!("t::second");
        i.add_bytes(5);
        adv(6);
        drop(o);
        adv(100);
        drop(i);
    }
    assert_eq!(path("t::first", 1), (1, 10, 10));
    let second = site("t::second");
    assert_eq!(
        (second.calls(), second.cum_ticks(), second.bytes()),
        (1, 106, 5)
    );

    // Read inside an open measurement: what ended is counted, and the open
    // one's self time comes out exact when it ends.
    {
        let _p = perfkit::span!("t::open");
        {
            let _c = perfkit::span!("t::inside");
            adv(5);
        }
        assert_eq!(path("t::inside", 2), (1, 5, 5));
        adv(2);
    }
    assert_eq!(path("t::open", 1), (1, 7, 2));

    // 70 open: the replay keeps 64 (4 x MAX_DEPTH); the 6 beyond are not
    // counted, but a measurement with nothing nested is, at any depth.
    deep(70);
    perfkit::flush();
    assert_eq!(site("t::deep").calls(), 64);
    assert_eq!(site("t::bottom").calls(), 1);

    // A replay inside a measurement is not its time: with every clock read
    // taking one tick, each measurement inside takes exactly one, and the
    // outer one holds its own reads and theirs, and of each replay's two
    // reads only the one after its end reading.
    STEP.store(1, Relaxed);
    {
        let _o = perfkit::span!("t::paused");
        for _ in 0..N {
            let _i = perfkit::span!("t::tick");
        }
    }
    STEP.store(0, Relaxed);
    let (_, total, _) = path("t::paused", 1);
    assert_eq!(path("t::tick", 2), (N, N, N));
    let replays = total - (2 * N + 1);
    // 2N + 1 events, a replay per 126 of them at most.
    assert!((1..=(2 * N + 1) / 100).contains(&replays), "{total}");
}
