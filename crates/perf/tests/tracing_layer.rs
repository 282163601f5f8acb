//! The `tracing` layer records span busy time into perfkit sites.
#![cfg(all(feature = "tracing", not(feature = "off")))]

use tracing_subscriber::layer::SubscriberExt;

#[test]
fn tracing_spans_become_sites_and_stacks() {
    let subscriber = tracing_subscriber::registry().with(perfkit::tracing::PerfkitLayer::new());
    tracing::subscriber::with_default(subscriber, || {
        for _ in 0..5 {
            let outer = tracing::info_span!("tr.outer");
            let _e = outer.enter();
            for _ in 0..2 {
                let _i = tracing::info_span!("tr.inner").entered();
                perfkit::measure!("tr.leaf", std::hint::black_box(1));
            }
        }
        // Entering one span twice (re-entry) counts two calls.
        let s = tracing::info_span!("tr.twice");
        s.in_scope(|| {});
        s.in_scope(|| {});
    });
    let snap = perfkit::snapshot();
    assert_eq!(snap.site("tr.outer").unwrap().calls, 5);
    assert_eq!(snap.site("tr.inner").unwrap().calls, 10);
    assert_eq!(snap.site("tr.twice").unwrap().calls, 2);
    // A tracing span times a scope, as `span!` does, and is labelled so.
    assert_eq!(snap.site("tr.outer").unwrap().kind, perfkit::SiteKind::Span);
    assert_eq!(
        snap.site("tr.leaf").unwrap().kind,
        perfkit::SiteKind::Measure
    );
    assert!(snap
        .site("tr.outer")
        .unwrap()
        .file
        .ends_with("tracing_layer.rs"));
    assert_eq!(snap.stack("tr.outer;tr.inner;tr.leaf").unwrap().calls, 10);
    assert_eq!(snap.stack("tr.outer;tr.inner").unwrap().calls, 10);
}
