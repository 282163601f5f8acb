//! Console output: aligned tables and the field's familiar lines.

use perfkit_report::model::{Integrity, RunRecord, Side};

use crate::scenario::{describe, PARAMS};

/// Left-aligned columns separated by two spaces; numeric-looking cells right-aligned.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let numeric = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_digit() || ",.-%x /kMG±".contains(c))
            && s.chars().any(|c| c.is_ascii_digit())
    };
    // A column is right-aligned, header included, when every cell in it is a number.
    let right: Vec<bool> = (0..n)
        .map(|i| {
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r.get(i)
                        .is_none_or(|c| numeric(c) || c == "-" || c.is_empty())
                })
        })
        .collect();
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            if right[i] {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                l.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// `perfkit params`, fitted to `width` characters when given: the table as
/// it is when it fits, else with its `meaning` column wrapped, else (a
/// narrow terminal) one block per parameter, its description indented.
pub fn params_table(width: Option<usize>) -> String {
    let header = ["parameter", "written as", "type", "default", "meaning"];
    let rows: Vec<Vec<String>> = PARAMS
        .iter()
        .map(|p| {
            let d = p.default.clone();
            vec![
                p.name.to_owned(),
                format!("[{}] {}", p.section, p.key),
                describe(&p.ty),
                if d.is_null() {
                    "-".into()
                } else {
                    d.to_string()
                },
                p.help.to_owned(),
            ]
        })
        .collect();
    fit(&header, &rows, width).unwrap_or_else(|| {
        stacked(&rows, width, |r| {
            format!("{} ({})\n{}, default {}", r[0], r[1], r[2], r[3])
        })
    })
}

/// The narrow form of a table: per row, `head(row)` (its lines wrapped to
/// `width`, all but the first indented), then the last column indented.
fn stacked(
    rows: &[Vec<String>],
    width: Option<usize>,
    head: impl Fn(&[String]) -> String,
) -> String {
    let width = width.unwrap_or(usize::MAX).max(20);
    let mut out = String::new();
    let mut put = |indent: &str, text: &str| {
        for l in wrap(text, width - indent.len()) {
            out.push_str(indent);
            out.push_str(&l);
            out.push('\n');
        }
    };
    for r in rows {
        for (i, part) in head(r).lines().enumerate() {
            put(if i == 0 { "" } else { "    " }, part);
        }
        put("    ", r.last().map(String::as_str).unwrap_or(""));
    }
    out
}

/// The table fitted to `width` characters: as it is when it fits (or no
/// width is given), else with its last column wrapped when that leaves the
/// column at least 30 characters; `None` when even that is too wide.
pub fn fit(header: &[&str], rows: &[Vec<String>], width: Option<usize>) -> Option<String> {
    let plain = table(header, rows);
    let Some(width) = width else {
        return Some(plain);
    };
    if plain.lines().all(|l| l.chars().count() <= width) {
        return Some(plain);
    }
    let last = header.len().checked_sub(1)?;
    // Columns before the last and their separators.
    let lead: usize = (0..last)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .chain([header[i].chars().count()])
                .max()
                .unwrap_or(0)
                + 2
        })
        .sum();
    if lead + 30 > width {
        return None;
    }
    let mut wrapped = Vec::new();
    for r in rows {
        let text = r.get(last).map(String::as_str).unwrap_or("");
        for (i, part) in wrap(text, width - lead).into_iter().enumerate() {
            let mut row = if i == 0 {
                r[..last.min(r.len())].to_vec()
            } else {
                vec![String::new(); last]
            };
            row.resize(last, String::new());
            row.push(part);
            wrapped.push(row);
        }
    }
    Some(table(header, &wrapped))
}

/// `text` in lines of at most `width` characters, broken between words (a
/// word longer than a line is cut).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        loop {
            let used = line.chars().count();
            let room = if used == 0 {
                width
            } else {
                width.saturating_sub(used + 1)
            };
            if word.len() <= room {
                if used > 0 {
                    line.push(' ');
                }
                line.extend(word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a whole line.
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// `eprintln!` that never panics: when standard error is closed (`2>&-`, a
/// reader that has gone) there is nowhere left to say anything, and a
/// finished transfer or run must not end in a panic (exit 101) over it.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::to_stderr(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// [`errln!`] without the newline.
#[macro_export]
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::output::to_stderr(&format!($($arg)*))
    };
}

/// Writes `text` to standard error; an error doing so is ignored.
pub fn to_stderr(text: &str) {
    use std::io::Write;
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(text.as_bytes()).and_then(|()| e.flush());
}

/// Prints `text` on stdout; a failed write (a full disk) is reported
/// rather than a panic. A reader that went away (`perfkit params | head`)
/// never shows here: the printing commands end by SIGPIPE (see `main`).
pub fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        crate::errln!("perfkit: cannot write to stdout: {e}");
    }
}

/// Prints console text of a command that goes on when its reader has gone
/// (`perfkit run ... | head`): the run still finishes and writes its
/// results, so a closed or failing stdout is said once on stderr and later
/// text is dropped instead of ending the run with a panic.
pub fn say(text: &str) {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    static GONE: AtomicBool = AtomicBool::new(false);
    if GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if !GONE.swap(true, Ordering::Relaxed) {
            crate::errln!("perfkit: stdout: {e}; going on without console output");
        }
    }
}

/// The width to fit output to: the terminal's when stdout is one, else
/// `$COLUMNS` when set, else none (output to files and pipes is not wrapped).
pub fn terminal_width() -> Option<usize> {
    use std::os::fd::AsRawFd;
    let stdout = std::io::stdout();
    if std::io::IsTerminal::is_terminal(&stdout) {
        // SAFETY: TIOCGWINSZ fills a winsize; both live for the call.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(stdout.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } == 0
            && ws.ws_col > 0
        {
            return Some(usize::from(ws.ws_col));
        }
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok())
        .filter(|&c: &usize| c > 0)
}

/// `perfkit list`, its descriptions wrapped to `width` when given.
pub fn list_table(rows: &[(String, String, String, String)], width: Option<usize>) -> String {
    let header = ["scenario", "kind", "configs", "description"];
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(a, b, c, d)| vec![a.clone(), b.clone(), c.clone(), d.clone()])
        .collect();
    fit(&header, &rows, width).unwrap_or_else(|| {
        stacked(&rows, width, |r| {
            format!("{}  {}  {} configuration(s)", r[0], r[1], r[2])
        })
    })
}

/// A short human rate: 1.23 M, 456 k, 78.9.
pub fn si(x: f64) -> String {
    let a = x.abs();
    if a >= 1e9 {
        format!("{:.2} G", x / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1} k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// Counters as `name:value` pairs, non-zero ones only.
fn counters<'a>(it: impl Iterator<Item = (&'a String, &'a u64)>) -> String {
    let parts: Vec<String> = it
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k}:{v}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(" ")
    }
}

/// The lines printed after each run: tx and rx in the field's form, then the
/// link and error counters and the integrity verdict.
pub fn run_lines(r: &RunRecord) -> String {
    let mut s = String::new();
    let side = |name: &str, x: &Side| format!("{name} transfer: {}\n", x.stats_line());
    s.push_str(&side("tx", &r.tx));
    s.push_str(&side("rx", &r.rx));
    let util = r
        .link
        .utilisation
        .map(|u| format!(" utilisation:{:.1}%", u * 100.0))
        .unwrap_or_default();
    s.push_str(&format!(
        "link: wire_bytes:{}{} counters: {}\n",
        r.link.wire_bytes,
        util,
        counters(r.link.counters.iter())
    ));
    s.push_str(&format!(
        "errors: tx {} | rx {}\n",
        counters(r.tx.errors.iter()),
        counters(r.rx.errors.iter())
    ));
    if r.integrity.ok {
        s.push_str(&format!(
            "integrity: ok sha256:{}\n",
            short(&r.integrity.sha256_received)
        ));
    } else {
        s.push_str(&format!("integrity: FAILED, {}\n", failure(&r.integrity)));
    }
    for (k, v) in &r.metrics {
        s.push_str(&format!("{k}: {}\n", si(*v)));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!("run failed: {e}\n"));
    }
    s
}

/// Why an integrity check failed, from what the record knows: the reason
/// it gives, the blocks missing, or a SHA-256 that differs, or that no META
/// ever said what to expect (then nothing is known about missing blocks).
pub fn failure(i: &Integrity) -> String {
    let missing = &i.missing_blocks;
    if let Some(reason) = &i.reason {
        reason.clone()
    } else if !missing.is_empty() {
        let shown: Vec<String> = missing.iter().take(20).map(|b| b.to_string()).collect();
        let more = if missing.len() > 20 {
            format!(" (+{} more)", missing.len() - 20)
        } else {
            String::new()
        };
        format!(
            "{} block(s) missing: {}{more}",
            missing.len(),
            shown.join(",")
        )
    } else if !i.sha256_received.is_empty() {
        format!(
            "SHA-256 {} differs from the sent {}",
            short(&i.sha256_received),
            short(&i.sha256_sent)
        )
    } else if !i.sha256_sent.is_empty() {
        "no META arrived, so which blocks are missing is unknown".into()
    } else {
        "data lost or corrupted (see the counters)".into()
    }
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}

/// Median of a non-empty slice (0 for an empty one).
pub fn median(xs: &mut [f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[m]
    } else {
        (xs[m - 1] + xs[m]) / 2.0
    }
}

/// Half the min-max range of `xs` in % of `mid`, as ` ±N%`; empty for
/// fewer than two values (no spread to show) or a zero middle.
fn spread(xs: &[f64], mid: f64) -> String {
    if xs.len() < 2 || mid == 0.0 {
        return String::new();
    }
    let (lo, hi) = xs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    let pct = (hi - lo) / 2.0 / mid.abs() * 100.0;
    if pct < 10.0 {
        format!(" ±{pct:.1}%")
    } else {
        format!(" ±{pct:.0}%")
    }
}

/// Programs that run a script: their label names the script too.
const INTERPRETERS: &[&str] = &[
    "python", "python3", "node", "sh", "bash", "perl", "ruby", "env",
];

/// Longest parameter value the summary shows as it is.
const MAX_CELL: usize = 24;

/// A configuration value as the console shows it: strings and numbers as
/// they are; a command line (the argv of an external implementation) as its
/// program, or interpreter and script (`python3 dttk_send.py`); anything
/// else longer than [`MAX_CELL`] cut with `…`. The second value is the full
/// form when the label is shorter (results.json keeps it whole).
pub fn value_label(v: &serde_json::Value) -> (String, Option<String>) {
    let full = v
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| v.to_string());
    if let Some(argv) = v
        .as_array()
        .and_then(|a| a.iter().map(|x| x.as_str()).collect::<Option<Vec<&str>>>())
    {
        let base = |w: &str| w.rsplit('/').next().unwrap_or(w).to_owned();
        let mut label = argv.first().map(|p| base(p)).unwrap_or_default();
        if INTERPRETERS.contains(&label.as_str()) {
            if let Some(script) = argv[1..].iter().find(|a| {
                let placeholder = a.starts_with('{') && a.ends_with('}');
                !a.starts_with('-') && !placeholder
            }) {
                label = format!("{label} {}", base(script));
            }
        }
        let shown = argv.join(" ");
        if label != shown {
            return (label, Some(shown));
        }
        return (label, None);
    }
    if full.chars().count() > MAX_CELL {
        let cut: String = full.chars().take(MAX_CELL - 1).collect();
        return (format!("{cut}…"), Some(full));
    }
    (full, None)
}

/// The summary table over all records: one row per configuration, the
/// median over runs of each rate with its spread (half the min-max range,
/// in % of the median), swept command lines shortened to a label; then a
/// legend of those labels and what ± means.
pub fn summary(records: &[RunRecord], swept: &[String]) -> String {
    // Runs made in rounds interleave the configurations: one row per id.
    let mut ids: Vec<usize> = records.iter().map(|r| r.config_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut header: Vec<&str> = vec!["#"];
    header.extend(swept.iter().map(String::as_str));
    header.extend([
        "runs", "tx PPS", "tx BPS", "rx PPS", "rx BPS", "util", "intact",
    ]);
    let mut rows = Vec::new();
    let mut legend: Vec<String> = Vec::new();
    let mut any_spread = false;
    for id in ids {
        let rs: Vec<&RunRecord> = records.iter().filter(|r| r.config_id == id).collect();
        let mut rate = |f: &dyn Fn(&RunRecord) -> f64| {
            let xs: Vec<f64> = rs.iter().map(|r| f(r)).collect();
            let mid = median(&mut xs.clone());
            let sp = spread(&xs, mid);
            any_spread |= !sp.is_empty();
            si(mid) + &sp
        };
        let mut row = vec![id.to_string()];
        let mut rates = vec![
            rate(&|r| r.tx.pps),
            rate(&|r| r.tx.bps),
            rate(&|r| r.rx.pps),
            rate(&|r| r.rx.bps),
        ];
        for name in swept {
            let (label, full) = rs[0].config.get(name).map(value_label).unwrap_or_default();
            if let Some(full) = full {
                let line = format!("  {name} {label}: {full}");
                if !legend.contains(&line) {
                    legend.push(line);
                }
            }
            row.push(label);
        }
        let utils: Vec<f64> = rs.iter().filter_map(|r| r.link.utilisation).collect();
        row.push(rs.len().to_string());
        row.append(&mut rates);
        row.extend([
            if utils.is_empty() {
                "-".into()
            } else {
                let mut u = utils;
                format!("{:.1}%", median(&mut u) * 100.0)
            },
            format!(
                "{}/{}",
                rs.iter().filter(|r| r.integrity.ok).count(),
                rs.len()
            ),
        ]);
        rows.push(row);
    }
    let mut out = table(&header, &rows);
    if any_spread {
        out.push_str("rates: median over runs ± half the min-max range, in % of the median\n");
    }
    if !legend.is_empty() {
        out.push_str("labels (results.json keeps each configuration whole):\n");
        for l in legend {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_numbers_right() {
        let t = table(
            &["a", "n"],
            &[
                vec!["x".into(), "5".into()],
                vec!["long".into(), "1,234".into()],
            ],
        );
        assert_eq!(t, "a         n\nx         5\nlong  1,234\n");
    }

    fn record(config_id: usize, cmd: serde_json::Value, rx_bps: f64) -> RunRecord {
        RunRecord {
            config_id,
            repeat: 0,
            started_unix_s: None,
            config: [("receiver_cmd".to_owned(), cmd)].into_iter().collect(),
            time_base: Default::default(),
            tx: Side::new(1.0, 100, 5000),
            rx: Side {
                bps: rx_bps,
                ..Side::new(1.0, 10, 500)
            },
            integrity: Integrity {
                ok: true,
                ..Default::default()
            },
            link: Default::default(),
            stages: Default::default(),
            device_stages: None,
            device_model: None,
            metrics: Default::default(),
            hosts: Default::default(),
            error: None,
        }
    }

    #[test]
    fn summary_shows_spread_and_labels_command_lines() {
        let argv = serde_json::json!([
            "python3",
            "scripts/dttk-py/dttk_recv.py",
            "{output}",
            "--quiet"
        ]);
        let records = [
            record(0, "perfkit".into(), 400.0),
            record(0, "perfkit".into(), 500.0),
            record(0, "perfkit".into(), 600.0),
            record(1, argv.clone(), 450.0),
        ];
        let text = summary(&records, &["receiver_cmd".to_owned()]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("#  receiver_cmd"), "{text}");
        // 400..600 around a median of 500: ±20 %; one run has no spread.
        assert!(lines[1].contains("  500 ±20%  "), "{text}");
        assert!(lines[2].starts_with("1  python3 dttk_recv.py "), "{text}");
        assert!(lines[2].contains("  450  "), "{text}");
        assert!(text.contains("± half the min-max range"), "{text}");
        assert!(
            text.contains(
                "  receiver_cmd python3 dttk_recv.py: python3 scripts/dttk-py/dttk_recv.py {output} --quiet\n"
            ),
            "{text}"
        );
        // Every row as wide as the header: no cell wider than its label.
        assert!(
            lines[..3]
                .iter()
                .all(|l| l.chars().count() <= lines[0].chars().count() + 8),
            "{text}"
        );
    }

    #[test]
    fn summary_has_one_row_per_configuration_in_rounds() {
        // Two rounds of two configurations, as `--order rounds` records them.
        let records = [
            record(0, "a".into(), 400.0),
            record(1, "b".into(), 100.0),
            record(0, "a".into(), 600.0),
            record(1, "b".into(), 300.0),
        ];
        let text = summary(&records, &["receiver_cmd".to_owned()]);
        let rows: Vec<&str> = text
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with("rates"))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert!(
            rows[0].starts_with("0  a ") && rows[0].contains("  500 ±20%  "),
            "{text}"
        );
        assert!(
            rows[1].starts_with("1  b ") && rows[1].contains("  200 ±50%  "),
            "{text}"
        );
    }

    #[test]
    fn labels_of_values() {
        use serde_json::json;
        assert_eq!(value_label(&json!("perfkit")), ("perfkit".to_owned(), None));
        assert_eq!(value_label(&json!(249)), ("249".to_owned(), None));
        assert_eq!(value_label(&json!(["cat"])), ("cat".to_owned(), None));
        assert_eq!(
            value_label(&json!(["/usr/bin/cat", "-u"])),
            ("cat".to_owned(), Some("/usr/bin/cat -u".to_owned()))
        );
        assert_eq!(
            value_label(&json!(["python3", "-u", "{dir}/spead2_recv.py", "x"])).0,
            "python3 spead2_recv.py"
        );
        let long = "a".repeat(40);
        let (label, full) = value_label(&json!(long));
        assert_eq!(label.chars().count(), MAX_CELL);
        assert_eq!(full.as_deref(), Some(long.as_str()));
    }

    #[test]
    fn wrap_breaks_between_words_and_cuts_long_ones() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh x", 3), ["abc", "def", "gh", "x"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn params_fit_any_width() {
        let plain = params_table(None);
        for width in [40, 80, 120, 200, 1000] {
            let t = params_table(Some(width));
            for l in t.lines() {
                assert!(l.chars().count() <= width, "{width}: {l:?}");
            }
            // Nothing is lost: every word of the plain table is there.
            let words = |s: &str| {
                // The narrow form adds a comma and parentheses.
                let mut w: Vec<String> = s
                    .split_whitespace()
                    .map(|w| w.trim_matches(|c| "(),".contains(c)).to_owned())
                    .collect();
                w.sort();
                w
            };
            let (mut a, mut b) = (words(&plain), words(&t));
            // The narrow form says `default` once per parameter instead of in the header.
            a.retain(|w| {
                !["parameter", "written", "as", "type", "default", "meaning"].contains(&w.as_str())
            });
            b.retain(|w| {
                !["parameter", "written", "as", "type", "default", "meaning"].contains(&w.as_str())
            });
            // A name longer than the line is cut across lines, so compare
            // the characters of the words, not the words.
            let chars = |w: &[String]| {
                let mut c: Vec<char> = w.concat().chars().collect();
                c.sort_unstable();
                c
            };
            assert_eq!(chars(&a), chars(&b), "{width}");
        }
        assert_eq!(params_table(Some(1000)), plain);
    }

    #[test]
    fn median_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&mut []), 0.0);
    }
}
