//! `Snapshot::write_flamegraph_svg` writes an SVG that parses and draws
//! every measured stack frame.
#![cfg(all(feature = "std", not(feature = "off")))]

use quick_xml::events::Event;

fn work(n: u64) -> u64 {
    (0..n).fold(0u64, |a, i| {
        a.wrapping_mul(31).wrapping_add(std::hint::black_box(i))
    })
}

/// The text of every `<title>` in the SVG, failing on malformed XML.
fn titles(svg: &str) -> Vec<String> {
    let mut reader = quick_xml::Reader::from_str(svg);
    let mut titles = Vec::new();
    let mut in_title = false;
    let mut root = None;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => {
                let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
                root.get_or_insert_with(|| name.clone());
                in_title = name == "title";
            }
            Event::Text(t) if in_title => titles.push(t.decode().unwrap().into_owned()),
            Event::End(_) => in_title = false,
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(root.as_deref(), Some("svg"));
    titles
}

#[test]
fn a_snapshot_draws_its_stacks_as_an_svg_flamegraph() {
    for _ in 0..50 {
        let _outer = perfkit::span!("flame.outer");
        work(2_000);
        perfkit::measure!("flame.inner", work(20_000));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flame.svg");
    let snap = perfkit::snapshot();
    snap.write_flamegraph_svg(&path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    let titles = titles(&svg);
    // Each frame's tooltip names it with its time.
    for frame in ["flame.outer (", "flame.inner ("] {
        assert!(
            titles
                .iter()
                .any(|t| t.starts_with(frame) && t.contains(" ns")),
            "{frame} not in {titles:?}"
        );
    }
    // The same snapshot gives the same picture.
    assert_eq!(snap.flamegraph_svg("flame").unwrap(), svg);

    // Nothing to draw, or nowhere to write: errors, not panics.
    let empty = perfkit::Snapshot::default();
    let e = empty
        .write_flamegraph_svg(dir.path().join("e.svg"))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    let e = snap
        .write_flamegraph_svg(dir.path().join("no/such/dir.svg"))
        .unwrap_err();
    assert!(e.to_string().contains("no/such/dir.svg"), "{e}");
}
