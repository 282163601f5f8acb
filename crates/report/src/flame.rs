//! Flamegraphs of folded stacks, drawn by inferno.
//!
//! inferno's SVG carries its own inline script (zoom, search, details) that
//! finds its elements by id and takes the document's first `<svg>` as its
//! own. Several flamegraphs, or one next to plotters' charts, would fight
//! over those ids, so the report embeds each flamegraph as its own document
//! in an `<iframe srcdoc>`: still inline (no file, no network), still
//! interactive, and isolated.

use inferno::differential;
use inferno::flamegraph::{self, Options};

/// A flamegraph SVG from folded lines (`a;b;c 123`), or `None` when there is
/// nothing to draw.
pub(crate) fn flamegraph(title: &str, folded: &str) -> Option<String> {
    if folded.lines().all(|l| l.trim().is_empty()) {
        return None;
    }
    perfkit::flamegraph_svg(title, folded, Some(0.05)).ok()
}

/// A differential flamegraph: frames sized by `after`, red where they took
/// more time than in `before`, blue where less. Totals are normalised first,
/// so different repeat counts or run lengths do not paint everything one
/// colour.
pub(crate) fn differential(title: &str, before: &str, after: &str) -> Option<String> {
    if before.trim().is_empty() || after.trim().is_empty() {
        return None;
    }
    let mut diff = Vec::new();
    differential::from_readers(
        differential::Options {
            normalize: true,
            strip_hex: false,
        },
        before.as_bytes(),
        after.as_bytes(),
        &mut diff,
    )
    .ok()?;
    let text = String::from_utf8(diff).ok()?;
    let mut opt = Options::default();
    opt.title = title.to_string();
    opt.subtitle = Some("red: more time than the first input; blue: less".into());
    opt.count_name = "ns".into();
    opt.deterministic = true;
    opt.min_width = 0.05;
    let mut out = Vec::new();
    flamegraph::from_lines(&mut opt, text.lines(), &mut out).ok()?;
    String::from_utf8(out).ok()
}
