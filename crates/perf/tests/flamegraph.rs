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

/// Frame name and count of an inferno tooltip, `name (1,234 ns, 5.00%)`.
fn tooltip(t: &str) -> Option<(&str, u64)> {
    let (name, rest) = t.rsplit_once(" (")?;
    let count = rest.split(' ').next()?.replace(',', "");
    Some((name, count.parse().ok()?))
}

#[test]
fn site_names_stay_frames_of_their_own_with_their_own_time() {
    // Names that mean something in the folded format: a space before a
    // number (read as a second count: a differential graph), a newline
    // (a split line), nothing (a line starting with its separator), `;`
    // beside `:` (once one frame), edge whitespace (trimmed by readers).
    for _ in 0..5 {
        let _outer = perfkit::span!("names.outer");
        perfkit::measure!("stage 1", work(3_000));
        perfkit::measure!("line1\nline2 99", work(3_000));
        perfkit::measure!("", work(3_000));
        perfkit::measure!("x;y", work(3_000));
        perfkit::measure!("x:y", work(3_000));
        perfkit::measure!(" edge\t", work(3_000));
        perfkit::measure!("2024", work(3_000));
    }
    let names = [
        "stage 1",
        "line1\nline2 99",
        "",
        "x;y",
        "x:y",
        " edge\t",
        "2024",
    ];
    let snap = perfkit::snapshot();
    // Only this test's lines: other tests record in this process too.
    let folded: String = snap
        .folded()
        .lines()
        .filter(|l| l.starts_with("names.outer"))
        .map(|l| format!("{l}\n"))
        .collect();
    // One count per line, after the only space.
    for l in folded.lines() {
        let (stack, count) = l.split_once(' ').unwrap();
        assert!(
            !count.contains(' ') && count.parse::<u64>().is_ok(),
            "{l:?}"
        );
        assert!(!stack.split(';').any(str::is_empty), "{l:?}");
    }
    let mut frames = Vec::new();
    for name in names {
        let frame = perfkit::folded_frame(name);
        assert_eq!(perfkit::frame_name(&frame), name);
        let stack = snap
            .stack(&format!("names.outer;{frame}"))
            .unwrap_or_else(|| panic!("{name:?} as {frame:?} not in {:?}", snap.stacks));
        assert_eq!(stack.calls, 5, "{name:?}");
        assert!(stack.self_ns > 0, "{name:?}");
        frames.push((frame.into_owned(), stack.self_ns));
    }
    assert_eq!(folded.lines().count(), names.len() + 1, "{folded}");

    let svg = perfkit::flamegraph_svg("names", &folded, Some(0.0)).unwrap();
    let titles = titles(&svg);
    // Not a differential graph: no tooltip has a second percentage.
    assert!(!titles.iter().any(|t| t.contains("%;")), "{titles:?}");
    // Every line's time is in "all": none was dropped.
    let total: u64 = folded
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    let all: Vec<_> = titles.iter().filter_map(|t| tooltip(t)).collect();
    assert!(all.contains(&("all", total)), "{all:?}");
    // Each frame drawn once, named as it was written, with its own time.
    for (frame, ns) in &frames {
        let drawn: Vec<_> = all.iter().filter(|(n, _)| n == frame).collect();
        assert_eq!(drawn, [&(frame.as_str(), *ns)], "{frame:?} in {all:?}");
    }
}
