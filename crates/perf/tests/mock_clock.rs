//! Statistics, percentiles, nesting and folded stacks against a mock clock
//! that the tests advance by hand (1 tick = 1 ns).
#![cfg(not(feature = "off"))]

use perfkit::{measure, span, Clock};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, Once};

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

/// Install the mock clock once and serialise the tests of this file (they
/// share the clock and the per-thread stack of the test thread pool).
fn setup() -> MutexGuard<'static, ()> {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| perfkit::set_clock(&MOCK).expect("first clock"));
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Within the histogram's error bound (1.6 %; 6.3 % with `compact`), and
/// within 3 % for the default histogram.
fn assert_close(got: u64, want: f64) {
    let bound = 1.0 / f64::from(1u32 << (perfkit::hist::SUB_BITS + 1));
    let err = (got as f64 - want).abs() / want;
    assert!(err <= bound, "got {got}, want {want}, error {err}");
    #[cfg(not(feature = "compact"))]
    assert!(err <= 0.03, "got {got}, want {want}, error {err}");
}

fn advance(ns: u64) {
    MOCK.0.fetch_add(ns, Ordering::SeqCst);
}

#[test]
fn second_clock_is_refused() {
    let _l = setup();
    static OTHER: Mock = Mock(AtomicU64::new(0));
    assert_eq!(perfkit::set_clock(&OTHER), Err(perfkit::ClockAlreadySet));
    assert_eq!(perfkit::clock::clock_name(), "custom");
}

#[test]
fn min_max_cum_and_bytes() {
    let _l = setup();
    for d in [30u64, 10, 20, 50, 40] {
        let v = measure!("mock.basic", bytes = 100usize, {
            advance(d);
            d * 2
        });
        assert_eq!(v, d * 2);
    }
    let snap = perfkit::snapshot();
    let s = snap.site("mock.basic").expect("site recorded");
    assert_eq!(s.calls, 5);
    assert_eq!(s.min_ns, 10);
    assert_eq!(s.max_ns, 50);
    assert_eq!(s.cum_ns, 150);
    assert_eq!(s.bytes, Some(500));
    // Small values have exact buckets with the default histogram.
    assert_close(s.p50_ns, 30.0);
    assert_close(s.p90_ns, 50.0);
    assert_eq!(s.module, module_path!());
    assert!(s.file.ends_with("mock_clock.rs"));
    // 500 bytes in 150 ns: 3333.3 MB/s.
    let mbs = s.mb_per_s().unwrap();
    assert!((mbs - 3333.33).abs() < 0.1, "{mbs}");
}

#[test]
fn percentiles_within_bucket_error() {
    let _l = setup();
    // 1..=10_000 ns: the exact p-quantile is p * 10_000.
    for d in 1..=10_000u64 {
        measure!("mock.pct", advance(d));
    }
    let snap = perfkit::snapshot();
    let s = snap.site("mock.pct").unwrap();
    assert_eq!(s.calls, 10_000);
    assert_eq!(s.min_ns, 1);
    assert_eq!(s.max_ns, 10_000);
    assert_eq!(s.cum_ns, 10_000 * 10_001 / 2);
    for (got, want) in [
        (s.p50_ns, 5_000.0),
        (s.p90_ns, 9_000.0),
        (s.p99_ns, 9_900.0),
        (s.p999_ns, 9_990.0),
    ] {
        assert_close(got, want);
    }
}

#[test]
fn nesting_self_and_total_time_and_folded() {
    let _l = setup();
    for _ in 0..3 {
        let _a = span!("nest.a");
        advance(100);
        {
            let _b = span!("nest.b");
            advance(20);
            measure!("nest.c", advance(5));
            advance(10);
        }
        measure!("nest.c", advance(7));
    }
    let snap = perfkit::snapshot();
    let a = snap.stack("nest.a").unwrap();
    let b = snap.stack("nest.a;nest.b").unwrap();
    let bc = snap.stack("nest.a;nest.b;nest.c").unwrap();
    let ac = snap.stack("nest.a;nest.c").unwrap();
    assert_eq!((a.calls, a.total_ns, a.self_ns), (3, 3 * 142, 3 * 100));
    assert_eq!((b.calls, b.total_ns, b.self_ns), (3, 3 * 35, 3 * 30));
    assert_eq!((bc.calls, bc.total_ns, bc.self_ns), (3, 15, 15));
    assert_eq!((ac.calls, ac.total_ns, ac.self_ns), (3, 21, 21));
    // Two macro uses named "nest.c" are two sites (one per call site), each
    // with its own line; stack paths merge them by name.
    let c: Vec<_> = snap.sites.iter().filter(|s| s.name == "nest.c").collect();
    assert_eq!(c.len(), 2);
    assert_ne!(c[0].line, c[1].line);
    assert_eq!(c.iter().map(|s| s.calls).sum::<u64>(), 6);

    let folded = snap.folded();
    for line in [
        "nest.a 300",
        "nest.a;nest.b 90",
        "nest.a;nest.b;nest.c 15",
        "nest.a;nest.c 21",
    ] {
        assert!(
            folded.lines().any(|l| l == line),
            "missing {line:?} in\n{folded}"
        );
    }
}

#[test]
fn out_of_order_drop_keeps_site_counts() {
    let _l = setup();
    let outer = span!("ooo.outer");
    advance(10);
    let inner = span!("ooo.inner");
    advance(5);
    drop(outer);
    drop(inner);
    // The stack is usable again afterwards.
    measure!("ooo.after", advance(3));
    let snap = perfkit::snapshot();
    assert_eq!(snap.site("ooo.outer").unwrap().cum_ns, 15);
    assert_eq!(snap.site("ooo.inner").unwrap().cum_ns, 5);
    assert_eq!(snap.stack("ooo.after").unwrap().total_ns, 3);
}

#[test]
fn text_dump_in_the_field_form() {
    let _l = setup();
    for d in [3_988_000u64, 24_536_000, 11_000_000] {
        measure!("mock.text", advance(d));
    }
    {
        let _g = span!("mock.span");
        advance(512);
    }
    let text = perfkit::snapshot().text();
    let line = text.lines().find(|l| l.starts_with("mock.text ")).unwrap();
    // The field's order, each figure in its own unit.
    assert!(
        line.starts_with("mock.text measure: calls:3 min:3.99ms max:24.5ms cum:39.5ms p50:"),
        "{line}"
    );
    assert!(line.contains(" p99.9:"), "{line}");
    let line = text.lines().find(|l| l.starts_with("mock.span ")).unwrap();
    assert!(
        line.starts_with("mock.span span: calls:1 min:512ns max:512ns cum:512ns p50:"),
        "{line}"
    );
}

#[test]
fn json_round_trip() {
    let _l = setup();
    measure!("mock.json", bytes = 7u64, advance(11));
    let snap = perfkit::snapshot();
    let back = perfkit::Snapshot::from_json(&snap.to_json()).unwrap();
    assert_eq!(back, snap);
    assert_eq!(back.site("mock.json").unwrap().bytes, Some(7));
}

#[test]
fn reset_clears_and_runtime_switch_stops_recording() {
    let _l = setup();
    measure!("mock.reset", advance(1));
    assert!(perfkit::snapshot().site("mock.reset").is_some());
    perfkit::reset();
    let snap = perfkit::snapshot();
    assert!(snap.sites.is_empty(), "{snap:?}");
    assert!(snap.stacks.is_empty(), "{snap:?}");

    perfkit::set_enabled(false);
    assert!(!perfkit::enabled());
    let v = measure!("mock.disabled", 5);
    perfkit::set_enabled(true);
    assert_eq!(v, 5);
    assert!(perfkit::snapshot().site("mock.disabled").is_none());
    measure!("mock.disabled", advance(2));
    assert_eq!(perfkit::snapshot().site("mock.disabled").unwrap().calls, 1);
}

#[test]
fn for_each_site_gives_ticks_without_a_snapshot() {
    let _l = setup();
    measure!("mock.walk", advance(9));
    let mut found = None;
    perfkit::for_each_site(|s| {
        if s.name() == "mock.walk" {
            found = Some((
                s.calls(),
                s.min_ticks(),
                s.max_ticks(),
                s.cum_ticks(),
                s.cum_ns(),
            ));
        }
    });
    let (calls, min, max, cum, cum_ns) = found.unwrap();
    assert_eq!(calls, 1);
    assert_eq!((min, max, cum, cum_ns), (9, 9, 9, 9));
    let mut paths = 0;
    perfkit::for_each_path(|p| {
        if p.sites.len() == 1 && p.sites[0].name() == "mock.walk" {
            paths += 1;
            assert_eq!((p.calls, p.total_ticks, p.self_ticks), (1, 9, 9));
        }
    });
    assert_eq!(paths, 1);
}

/// `(calls, min, max, cum, histogram count)` of a site, through `for_each_site`.
fn site_stats(name: &str) -> (u64, u64, u64, u64, u64) {
    let mut found = None;
    perfkit::for_each_site(|s| {
        if s.name() == name {
            found = Some((
                s.calls(),
                s.min_ticks(),
                s.max_ticks(),
                s.cum_ticks(),
                s.histogram().count(),
            ));
        }
    });
    found.unwrap()
}

#[test]
fn merges_count_once_and_clear_forgets_the_extremes() {
    let _l = setup();
    // One macro use, one site.
    let call = |d| measure!("mock.merge", advance(d));
    call(100);
    call(300);
    // Every walk merges the thread's paths into the sites: twice is still once.
    assert_eq!(site_stats("mock.merge"), (2, 100, 300, 400, 2));
    assert_eq!(site_stats("mock.merge"), (2, 100, 300, 400, 2));
    perfkit::for_each_site(|s| {
        if s.name() == "mock.merge" {
            s.clear();
        }
    });
    call(200);
    // Only the call after the clear: its extremes, not the earlier ones.
    assert_eq!(site_stats("mock.merge"), (1, 200, 200, 200, 1));
}

#[test]
fn a_running_thread_is_counted_whole() {
    let _l = setup();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        for d in [5u64, 7, 9] {
            measure!("mock.running", advance(d));
        }
        ready_tx.send(()).unwrap();
        // Stay alive (its table in use) while the other thread reads.
        let _ = done_rx.recv();
    });
    ready_rx.recv().unwrap();
    let (calls, _, _, cum, hist) = site_stats("mock.running");
    assert_eq!((calls, hist), (3, 3));
    assert!(cum >= 21, "{cum}");
    done_tx.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn alternating_siblings_keep_their_own_paths() {
    let _l = setup();
    // One macro use, one site, reached from both siblings.
    let inner = |d| measure!("mock.alt.inner", advance(d));
    let _outer = span!("mock.alt");
    for i in 0..6u64 {
        // Two sibling stages under one parent, each with the same nested
        // stage: the nested calls belong to the sibling they ran in.
        if i % 2 == 0 {
            let _a = span!("mock.alt.a");
            inner(1);
        } else {
            let _b = span!("mock.alt.b");
            inner(2);
        }
    }
    drop(_outer);
    let snap = perfkit::snapshot();
    let a = snap.stack("mock.alt;mock.alt.a;mock.alt.inner").unwrap();
    let b = snap.stack("mock.alt;mock.alt.b;mock.alt.inner").unwrap();
    assert_eq!((a.calls, a.total_ns), (3, 3));
    assert_eq!((b.calls, b.total_ns), (3, 6));
}

#[test]
fn a_snapshot_inside_an_open_parent_is_exact() {
    let _l = setup();
    for round in 1..=2u64 {
        let outer = span!("open.outer");
        advance(10);
        measure!("open.inner", advance(4));
        // The open call is not in its path's figures yet, and neither is
        // the time nested in it: the earlier call's self time stays whole.
        let snap = perfkit::snapshot();
        let o = snap
            .stack("open.outer")
            .map(|o| (o.calls, o.total_ns, o.self_ns));
        assert_eq!(o, (round == 2).then_some((1, 14, 10)));
        assert_eq!(snap.stack("open.outer;open.inner").unwrap().calls, round);
        drop(outer);
    }
    let snap = perfkit::snapshot();
    let o = snap.stack("open.outer").unwrap();
    assert_eq!((o.calls, o.total_ns, o.self_ns), (2, 28, 20));
}

#[test]
fn deeper_than_the_path_limit_keeps_site_figures() {
    let _l = setup();
    fn down(n: u64) {
        let _g = span!("deep.level");
        advance(1);
        if n > 1 {
            down(n - 1);
        }
    }
    let levels = perfkit::stack::MAX_DEPTH as u64 + 3;
    let before = perfkit::dropped_paths();
    {
        let _top = span!("deep.top");
        down(levels);
    }
    // One level for `deep.top`: the last four `deep.level`s have no path.
    assert_eq!(perfkit::dropped_paths() - before, 4);
    measure!("deep.after", advance(2));
    let snap = perfkit::snapshot();
    let s = snap.site("deep.level").unwrap();
    assert_eq!(s.calls, levels);
    // The level with `n` to go lasts `n` ticks.
    assert_eq!(s.cum_ns, levels * (levels + 1) / 2);
    assert_eq!((s.min_ns, s.max_ns), (1, levels));
    // The deepest path (MAX_DEPTH sites) has 5 to go: its own tick, and
    // the 4 of the levels without a path nested in it.
    let deepest = std::iter::once("deep.top")
        .chain(std::iter::repeat_n(
            "deep.level",
            perfkit::stack::MAX_DEPTH - 1,
        ))
        .collect::<Vec<_>>()
        .join(";");
    let d = snap.stack(&deepest).unwrap();
    assert_eq!((d.calls, d.total_ns, d.self_ns), (1, 5, 1));
    assert!(snap.stack(&format!("{deepest};deep.level")).is_none());
    // The stack is whole again afterwards.
    assert_eq!(snap.stack("deep.after").unwrap().total_ns, 2);
    assert_eq!(snap.stack("deep.top").unwrap().total_ns, levels);
}

#[test]
fn guards_dropped_outermost_first_past_the_path_limit() {
    let _l = setup();
    let levels = perfkit::stack::MAX_DEPTH + 6;
    let open = || {
        let g = span!("ooo.deep");
        advance(1);
        g
    };
    let guards: Vec<_> = (0..levels).map(|_| open()).collect();
    // A `Vec` drops its first (outermost) guard first: every drop out of
    // order, six of them of levels without a path.
    drop(guards);
    measure!("ooo.deep.after", advance(3));
    let snap = perfkit::snapshot();
    let s = snap.site("ooo.deep").unwrap();
    assert_eq!(s.calls, levels as u64);
    // The outermost lasted all `levels` ticks, the rest one tick less each.
    let levels = levels as u64;
    assert_eq!(s.cum_ns, levels * (levels + 1) / 2);
    // Only the outermost kept its path; the stack is whole again.
    assert_eq!(snap.stack("ooo.deep").unwrap().total_ns, levels);
    assert_eq!(snap.stack("ooo.deep.after").unwrap().total_ns, 3);
}

#[test]
fn every_merge_has_the_last_call_in_its_histogram_once() {
    let _l = setup();
    // One macro use, one site; a merge after every call, and two at the end.
    let call = |d| measure!("mock.last", advance(d));
    let bucket = |v| perfkit::hist::bucket_of(v);
    let durations = [40u64, 5_000, 40, 77, 5_000];
    for (n, d) in durations.into_iter().enumerate() {
        call(d);
        for _ in 0..2 {
            let (calls, _, _, _, hist) = site_stats("mock.last");
            assert_eq!((calls, hist), (n as u64 + 1, n as u64 + 1));
        }
        perfkit::for_each_site(|s| {
            if s.name() == "mock.last" {
                for v in [40, 77, 5_000] {
                    let want = durations[..=n].iter().filter(|&&x| x == v).count();
                    assert_eq!(
                        s.histogram().bucket(bucket(v)),
                        want as u64,
                        "{v} after {n}"
                    );
                }
            }
        });
    }
}
