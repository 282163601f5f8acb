//! The device's replay of its ring of events: exact counts across many
//! replays, guards dropped out of order, reads inside an open measurement.

mod common;

use common::*;

#[test]
fn the_replay_counts_as_each_call_would_have_at_its_end() {
    perfkit::set_clock(&Mock).unwrap();
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
}
