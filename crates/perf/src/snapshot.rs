//! Snapshots (std): every site's statistics in nanoseconds, the merged stack
//! paths, the text dump, folded stacks and JSON.

use crate::clock::{ticks_per_second, ticks_to_ns};
use crate::record::SiteRecord;
use crate::site::SiteKind;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::format;
use std::ops::Deref;
use std::string::{String, ToString};
use std::vec::Vec;

/// Statistics of one call site, in nanoseconds, and where the site is.
///
/// The statistics are the one [`SiteRecord`] (reachable through `Deref`:
/// `snap.site("crc16").unwrap().calls`); the location is only known in the
/// process that measured, so it stays out of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteSnapshot {
    /// The statistics.
    #[serde(flatten)]
    pub record: SiteRecord<String>,
    /// `module_path!()` of the site.
    pub module: String,
    /// `file!()` of the site.
    pub file: String,
    /// `line!()` of the site.
    pub line: u32,
    /// The instrument that made the site (`measure` or `span`; snapshots
    /// written before it was recorded read as `measure`).
    #[serde(default)]
    pub kind: SiteKind,
}

impl Deref for SiteSnapshot {
    type Target = SiteRecord<String>;
    fn deref(&self) -> &SiteRecord<String> {
        &self.record
    }
}

/// Total and self time of one stack path, merged over threads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackSnapshot {
    /// Site names from the outermost, each as [`folded_frame`] writes it
    /// (`stage 1` is `stage␣1`, `a;b` is `a；b`), joined by `;`.
    /// Snapshots written before frames were escaped hold the names as they
    /// were, but for a `;` made `:`; [`folded_stack`] makes those safe too.
    pub stack: String,
    /// Time in this path minus time in its nested measurements.
    pub self_ns: u64,
    /// Time in this path.
    pub total_ns: u64,
    /// Number of calls of the innermost site on this path.
    pub calls: u64,
}

/// Every site with calls, and every stack path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Sites with at least one call, sorted by name, then file and line.
    pub sites: Vec<SiteSnapshot>,
    /// Stack paths, sorted by path.
    pub stacks: Vec<StackSnapshot>,
}

/// Take a snapshot of every site and stack path.
pub fn snapshot() -> Snapshot {
    let tps = ticks_per_second();
    let ns = |t: u64| ticks_to_ns(t, tps);
    let mut sites = Vec::new();
    crate::for_each_site(|s| {
        let calls = s.calls();
        if calls == 0 {
            return;
        }
        sites.push(SiteSnapshot {
            record: SiteRecord::from_site(s)
                .map_durations(ns)
                .map_name(String::from),
            module: s.module().into(),
            file: s.file().into(),
            line: s.line(),
            kind: s.kind(),
        });
    });
    sites.sort_by(|a, b| (&a.name, &a.file, a.line).cmp(&(&b.name, &b.file, b.line)));

    let mut merged: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut key = String::new();
    crate::for_each_path(|p| {
        key.clear();
        for (i, s) in p.sites.iter().enumerate() {
            if i > 0 {
                key.push(';');
            }
            key.push_str(&folded_frame(s.name()));
        }
        let e = merged.entry(key.clone()).or_default();
        e.0 += p.calls;
        e.1 += p.total_ticks;
        e.2 += p.self_ticks;
    });
    let stacks = merged
        .into_iter()
        .map(|(stack, (calls, total, self_))| StackSnapshot {
            stack,
            self_ns: ns(self_),
            total_ns: ns(total),
            calls,
        })
        .collect();
    Snapshot { sites, stacks }
}

impl Snapshot {
    /// Stacks in the folded format inferno and flamegraph.pl read: one
    /// `a;b;c <self-ns>` line per path with non-zero self time, each frame
    /// a site name as [`folded_frame`] writes it, so that no name can split
    /// a line, merge with another or read as a second count.
    pub fn folded(&self) -> String {
        let mut out = String::new();
        for s in &self.stacks {
            if s.self_ns > 0 {
                // Safe already when this process made the snapshot; not
                // always when it was read from an older file.
                out.push_str(&folded_stack(&s.stack));
                out.push(' ');
                out.push_str(&s.self_ns.to_string());
                out.push('\n');
            }
        }
        out
    }

    /// A flamegraph of the stack paths' self time as an SVG document
    /// (inferno's, with its zoom and search), titled `title`. An error when
    /// no path has self time to draw (nothing nested was measured).
    pub fn flamegraph_svg(&self, title: &str) -> std::io::Result<String> {
        let folded = self.folded();
        if folded.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no stack paths with self time to draw a flamegraph of",
            ));
        }
        flamegraph_svg(title, &folded, None)
    }

    /// Writes [`Snapshot::flamegraph_svg`] to `path`, titled after the
    /// file, so `perfkit::snapshot().write_flamegraph_svg("perf.svg")` gives
    /// a flamegraph without inferno's command-line tools.
    pub fn write_flamegraph_svg(&self, path: impl AsRef<std::path::Path>) -> std::io::Result<()> {
        let path = path.as_ref();
        let title = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "perfkit".into());
        let svg = self.flamegraph_svg(&title)?;
        std::fs::write(path, svg).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
        })
    }

    /// The text dump (same as `Display`).
    pub fn text(&self) -> String {
        self.to_string()
    }

    /// The snapshot as JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and integers into a String cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parse a snapshot written by [`Snapshot::to_json`].
    pub fn from_json(s: &str) -> Result<Snapshot, serde_json::Error> {
        serde_json::from_str(s)
    }

    /// The first site with this name, if it has calls (two macro uses with
    /// one name are two sites, each with its own file and line).
    pub fn site(&self, name: &str) -> Option<&SiteSnapshot> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// The stack path `a;b;c`, if recorded (frames as [`folded_frame`]
    /// writes them: the names themselves unless they hold spaces, `;`,
    /// `\`, control characters or nothing).
    pub fn stack(&self, path: &str) -> Option<&StackSnapshot> {
        self.stacks.iter().find(|s| s.stack == path)
    }
}

/// What an empty site name is as a frame: visible, and no other name's
/// frame (a `\` in a name is doubled, so no other frame starts `\(`).
const EMPTY_FRAME: &str = "\\(empty)";

/// What stands for a space in a frame: `␣`, the symbol for a space. Not a
/// look-alike space such as U+00A0: Rust's `trim` (inferno's, on every
/// line) strips those too, so a name ending in one would lose it.
const SPACE: char = '\u{2423}';

/// What stands for a `;` in a frame: `；`, the fullwidth semicolon (not
/// `:`, which names hold: `x;y` and `x:y` were one frame; nor U+037E, the
/// Greek question mark, which Unicode normalisation turns back into `;`).
const SEMICOLON: char = '\u{FF1B}';

/// A site name as a frame of a folded stack (`a;b;c 123`, what inferno and
/// flamegraph.pl read, and [`Snapshot::folded`] writes).
///
/// The folded format gives some characters meaning: `;` separates frames,
/// a newline ends the line, the count is what follows the last space, and
/// readers trim whitespace off each line. So a name ending in a space and
/// digits (`stage 1`) made inferno read a second count, take the line for
/// a differential (before / after) one and draw the whole graph as
/// differences; a newline split a line; an empty name started a line with
/// its separator (inferno dropped it, and its time with it). Hence:
///
/// - a space becomes `␣`, a `;` becomes `；` (U+FF1B): both plain
///   characters to every folded reader, and close to what they stand for;
/// - other whitespace and control characters become escapes (`\n`, `\r`,
///   `\t`, `\u{85}`, ...), a `\` becomes `\\`, and a `␣` or `；` that is
///   in the name itself becomes `\u{2423}` or `\u{ff1b}`;
/// - an empty name becomes `\(empty)`.
///
/// So no two names give one frame ([`frame_name`] reads a frame back), and
/// a name without any of these characters is its own frame.
pub fn folded_frame(name: &str) -> Cow<'_, str> {
    if name.is_empty() {
        return Cow::Borrowed(EMPTY_FRAME);
    }
    let special =
        |c: char| c == ';' || c == '\\' || c == SPACE || c == SEMICOLON || unsafe_in_frame(c);
    if !name.contains(special) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        match c {
            ' ' => out.push(SPACE),
            ';' => out.push(SEMICOLON),
            '\\' => out.push_str("\\\\"),
            c if c == SPACE || c == SEMICOLON || unsafe_in_frame(c) => escape_char(&mut out, c),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// The site name a frame of [`folded_frame`] stands for (its inverse). A
/// `\` that starts no escape is kept as it is, so frames of older files,
/// which were the names themselves, read back as those names.
pub fn frame_name(frame: &str) -> Cow<'_, str> {
    if frame == EMPTY_FRAME {
        return Cow::Borrowed("");
    }
    if !frame.contains(['\\', SPACE, SEMICOLON]) {
        return Cow::Borrowed(frame);
    }
    let mut out = String::with_capacity(frame.len());
    let mut rest = frame;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            SPACE => out.push(' '),
            SEMICOLON => out.push(';'),
            '\\' => {
                let (decoded, len) = match rest.as_bytes().first() {
                    Some(b'\\') => (Some('\\'), 1),
                    Some(b'n') => (Some('\n'), 1),
                    Some(b'r') => (Some('\r'), 1),
                    Some(b't') => (Some('\t'), 1),
                    Some(b'u') => unicode_escape(rest),
                    _ => (None, 0),
                };
                match decoded {
                    Some(d) => {
                        out.push(d);
                        rest = &rest[len..];
                    }
                    None => out.push('\\'),
                }
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `u{hex}` at the start of `s`: the character and the length, or `None`.
fn unicode_escape(s: &str) -> (Option<char>, usize) {
    let Some(body) = s.strip_prefix("u{") else {
        return (None, 0);
    };
    let Some(end) = body.find('}') else {
        return (None, 0);
    };
    let c = u32::from_str_radix(&body[..end], 16)
        .ok()
        .and_then(char::from_u32);
    (c, 2 + end + 1)
}

/// Whitespace (Unicode's: the readers trim it off a line's ends) and
/// control characters (a line break, or not allowed in the SVG's XML).
fn unsafe_in_frame(c: char) -> bool {
    c.is_whitespace() || c.is_control()
}

/// `c` as a `\` escape.
fn escape_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// A stored stack (a [`StackSnapshot::stack`], a results file's folded
/// stack) made safe as the stack of a folded line. What [`snapshot`]
/// makes is safe already and comes back as it is (nothing it writes is
/// changed here); stacks written before frames were escaped hold the names
/// themselves: their whitespace and control characters are escaped and
/// their empty frames named as [`folded_frame`] would, so older files
/// still draw every frame, each with its own time.
pub fn folded_stack(stack: &str) -> Cow<'_, str> {
    let bad = stack
        .split(';')
        .any(|f| f.is_empty() || f.contains(unsafe_in_frame));
    if !bad {
        return Cow::Borrowed(stack);
    }
    let mut out = String::with_capacity(stack.len() + 8);
    for (i, f) in stack.split(';').enumerate() {
        if i > 0 {
            out.push(';');
        }
        if f.is_empty() {
            out.push_str(EMPTY_FRAME);
            continue;
        }
        for c in f.chars() {
            match c {
                ' ' => out.push(SPACE),
                c if unsafe_in_frame(c) => escape_char(&mut out, c),
                c => out.push(c),
            }
        }
    }
    Cow::Owned(out)
}

/// A flamegraph SVG document (inferno's, with its zoom and search) of
/// folded lines (`a;b;c 123`, counts in nanoseconds), titled `title`.
/// Frames narrower than `min_width` percent of the total are left out
/// (`None`: inferno's default). The same lines give the same file: colours
/// come from the frames' names, not at random.
pub fn flamegraph_svg(
    title: &str,
    folded: &str,
    min_width: Option<f64>,
) -> std::io::Result<String> {
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = title.into();
    opt.count_name = "ns".into();
    opt.deterministic = true;
    opt.hash = true;
    if let Some(w) = min_width {
        opt.min_width = w;
    }
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, folded.lines(), &mut svg)
        .map_err(|e| std::io::Error::other(format!("flamegraph: {e}")))?;
    String::from_utf8(svg).map_err(|e| std::io::Error::other(format!("flamegraph: {e}")))
}

/// A duration for people: three significant figures in the largest unit
/// (ns, us, ms, s) that keeps the figure at least 1, so 512 ns, 3.99 us and
/// 24.5 ms each read at a glance; `3,988s` past a thousand seconds.
pub fn format_ns(ns: u64) -> String {
    if ns < 1000 {
        return format!("{ns}ns");
    }
    for (unit, div) in [("us", 1e3), ("ms", 1e6)] {
        let v = ns as f64 / div;
        // Decide the decimals on the rounded figure, so 999.96 us prints
        // as 1.00ms rather than 1000us.
        let text = if v < 9.995 {
            format!("{v:.2}")
        } else if v < 99.95 {
            format!("{v:.1}")
        } else if v < 999.5 {
            format!("{v:.0}")
        } else {
            continue;
        };
        return text + unit;
    }
    let v = ns as f64 / 1e9;
    if v < 9.995 {
        format!("{v:.2}s")
    } else if v < 99.95 {
        format!("{v:.1}s")
    } else {
        let whole = ns / 1_000_000_000 + u64::from(ns % 1_000_000_000 >= 500_000_000);
        format!("{}s", thousands(whole))
    }
}

/// Whole microseconds with thousands separators, the field's own form for
/// device stage lines: 3988123 ns -> `"3,988"`.
pub fn us(ns: u64) -> String {
    thousands(ns / 1000)
}

/// `1234567` -> `"1,234,567"`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// One site's line of the text dump, in the field's order
/// (`name measure: calls:N min:.. max:.. cum:..`), each duration with its
/// own unit ([`format_ns`]), then the percentiles and, for sites that count
/// bytes, `bytes:N MB/s:X`. `label` is the instrument (`measure`, `span`);
/// durations are taken as nanoseconds.
pub fn site_line<N: AsRef<str>>(r: &SiteRecord<N>, label: &str) -> String {
    let mut line = format!(
        "{} {label}: calls:{} min:{} max:{} cum:{} p50:{} p90:{} p99:{} p99.9:{}",
        r.name.as_ref(),
        r.calls,
        format_ns(r.min_ns),
        format_ns(r.max_ns),
        format_ns(r.cum_ns),
        format_ns(r.p50_ns),
        format_ns(r.p90_ns),
        format_ns(r.p99_ns),
        format_ns(r.p999_ns)
    );
    if let (Some(bytes), Some(mbs)) = (r.bytes, r.mb_per_s()) {
        line.push_str(&format!(" bytes:{bytes} MB/s:{mbs:.1}"));
    }
    line
}

impl fmt::Display for Snapshot {
    /// One line per site ([`site_line`]), e.g.
    /// `add_header_and_send measure: calls:772 min:3.99ms max:24.5ms cum:11.9s p50:.. p90:.. p99:.. p99.9:..`;
    /// `span!` sites say `span` where `measure!` sites say `measure`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sites {
            writeln!(f, "{}", site_line(&s.record, s.kind.as_str()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_frames_no_folded_reader_misreads() {
        for (name, frame) in [
            ("frame.encode", "frame.encode"),
            ("stage 1", "stage\u{2423}1"),
            ("x;y", "x\u{ff1b}y"),
            ("x:y", "x:y"),
            ("", "\\(empty)"),
            ("(empty)", "(empty)"),
            ("\\(empty)", "\\\\(empty)"),
            ("line1\nline2 99", "line1\\nline2\u{2423}99"),
            ("tab\there\r", "tab\\there\\r"),
            ("nbsp\u{a0}end\u{85}", "nbsp\\u{a0}end\\u{85}"),
            ("␣；", "\\u{2423}\\u{ff1b}"),
            ("\u{1}\u{7f}", "\\u{1}\\u{7f}"),
        ] {
            assert_eq!(folded_frame(name), frame, "{name:?}");
            assert_eq!(frame_name(frame), name, "{frame:?}");
        }
        // A `\` that starts no escape (a frame of an older file) stays.
        for f in ["a\\b", "a\\", "a\\u{", "a\\u{zz}", "a\\u{110000}"] {
            assert_eq!(frame_name(f), f);
        }
    }

    #[test]
    fn stacks_of_older_files_are_made_safe_and_new_ones_kept() {
        for (old, safe) in [
            ("frame;stage 1", "frame;stage\u{2423}1"),
            (" lead;trail ", "\u{2423}lead;trail\u{2423}"),
            ("a;;b", "a;\\(empty);b"),
            ("", "\\(empty)"),
            ("two\nlines", "two\\nlines"),
            ("x:y;a\\b", "x:y;a\\b"),
        ] {
            assert_eq!(folded_stack(old), safe, "{old:?}");
        }
        let snap = Snapshot {
            sites: Vec::new(),
            stacks: ["frame;stage 1", "", "idle"]
                .iter()
                .map(|s| StackSnapshot {
                    stack: s.to_string(),
                    self_ns: 5,
                    total_ns: 5,
                    calls: 1,
                })
                .collect(),
        };
        assert_eq!(
            snap.folded(),
            "frame;stage\u{2423}1 5\n\\(empty) 5\nidle 5\n"
        );
    }

    proptest::proptest! {
        // Every name has a frame of its own that reads back as it, with
        // nothing a folded reader splits or trims on; a stack of such
        // frames is safe as it is.
        #[test]
        fn frames_are_safe_distinct_and_read_back(
            names in proptest::collection::vec("(\\PC|[ ;\\\\␣；\t\n\u{a0}\u{1}]){0,12}", 1..4),
        ) {
            let frames: Vec<Cow<'_, str>> = names.iter().map(|n| folded_frame(n)).collect();
            for (n, f) in names.iter().zip(&frames) {
                proptest::prop_assert!(!f.is_empty());
                proptest::prop_assert!(!f.contains(|c: char| c == ';' || unsafe_in_frame(c)), "{f:?}");
                proptest::prop_assert_eq!(frame_name(f), n.as_str());
            }
            let stack = frames.join(";");
            proptest::prop_assert_eq!(folded_stack(&stack), stack.as_str());
        }
    }

    #[test]
    fn durations_keep_three_figures_in_their_own_unit() {
        for (ns, text) in [
            (0, "0ns"),
            (999, "999ns"),
            (1_000, "1.00us"),
            (3_988_000, "3.99ms"),
            (12_345, "12.3us"),
            (999_960, "1.00ms"),
            (24_536_000, "24.5ms"),
            (999_500_000, "1.00s"),
            (11_925_377_000, "11.9s"),
            (99_960_000_000, "100s"),
            (3_988_400_000_000, "3,988s"),
            (u64::MAX, "18,446,744,074s"),
        ] {
            assert_eq!(format_ns(ns), text, "{ns} ns");
        }
    }

    #[test]
    fn a_line_keeps_the_fields_order_and_names_its_instrument() {
        let r = SiteRecord {
            name: "get_next_packet_into",
            calls: 3,
            min_ns: 24_543_000,
            max_ns: 33_458_000,
            cum_ns: 85_000_000,
            p50_ns: 27_000_000,
            p90_ns: 33_000_000,
            p99_ns: 33_458_000,
            p999_ns: 33_458_000,
            bytes: Some(192),
            tmean_ns: None,
            cum_cycles: None,
        };
        assert_eq!(
            site_line(&r, "span"),
            "get_next_packet_into span: calls:3 min:24.5ms max:33.5ms cum:85.0ms \
             p50:27.0ms p90:33.0ms p99:33.5ms p99.9:33.5ms bytes:192 MB/s:0.0"
        );
    }
}
