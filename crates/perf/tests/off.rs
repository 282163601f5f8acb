//! The `off` feature: every macro is the bare expression, nothing is
//! recorded. Run with `cargo test -p perfkit --features off --test off`.
#![cfg(feature = "off")]

#[perfkit::measured]
fn attributed(x: u32) -> u32 {
    x + 1
}

#[perfkit::measured("async.off")]
async fn attributed_async() -> u32 {
    7
}

#[test]
fn nothing_is_recorded() {
    let v = perfkit::measure!("off.expr", 41 + 1);
    let w = perfkit::measure!("off.bytes", bytes = 10usize, v * 2);
    let _g = perfkit::span!("off.span");
    assert_eq!((v, w, attributed(1)), (42, 84, 2));
    drop(attributed_async());
    drop(_g);
    let snap = perfkit::snapshot();
    assert!(snap.sites.is_empty(), "{snap:?}");
    assert!(snap.stacks.is_empty(), "{snap:?}");
    let mut sites = 0;
    perfkit::for_each_site(|_| sites += 1);
    assert_eq!(sites, 0, "no site was even registered");
    // The span guard is a zero-sized nothing.
    assert_eq!(std::mem::size_of_val(&perfkit::span!("off.size")), 0);
}
