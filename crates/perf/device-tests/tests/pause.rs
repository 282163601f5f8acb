//! A replay inside a measurement is kept out of its time.

mod common;

use common::*;
use std::sync::atomic::Ordering::Relaxed;

#[test]
fn a_replay_inside_a_measurement_is_not_its_time() {
    perfkit::set_clock(&Mock).unwrap();
    const N: u64 = 1000;
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
