//! The device's replay beyond the open measurements it keeps.

mod common;

use common::*;

fn deep(left: usize) {
    if left == 0 {
        let _b = perfkit::span!("t::bottom");
        adv(1);
        return;
    }
    let _g = perfkit::span!("t::deep");
    deep(left - 1);
}

#[test]
fn measurements_deeper_than_the_replay_keeps() {
    perfkit::set_clock(&Mock).unwrap();
    // 70 open: the replay keeps 64 (4 x MAX_DEPTH); the 6 beyond are not
    // counted, but a measurement with nothing nested is, at any depth.
    deep(70);
    perfkit::flush();
    assert_eq!(site("t::deep").calls(), 64);
    assert_eq!(site("t::bottom").calls(), 1);
}
