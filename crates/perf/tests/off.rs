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
    // A variable used only for the byte count is not reported unused (the
    // crate's tests build with -D warnings in CI), and is never evaluated.
    let len = 10usize;
    let evaluated = std::cell::Cell::new(false);
    let w = perfkit::measure!(
        "off.bytes",
        bytes = {
            evaluated.set(true);
            len
        },
        v * 2
    );
    assert!(!evaluated.get());
    let _g = perfkit::span!("off.span", bytes = len);
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
