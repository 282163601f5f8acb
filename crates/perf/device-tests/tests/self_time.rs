//! The device's stack paths (no `std`): self time, nesting beyond `MAX_DEPTH`.

mod common;

use common::*;

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
fn self_time_leaves_out_nested_calls_with_and_without_a_path() {
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
}
