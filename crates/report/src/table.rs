//! Plain-text, Markdown and HTML tables for the console, CI summaries and pages.

/// Renders rows as an aligned console table with a header rule.
pub fn console(headers: &[&str], rows: &[Vec<String>]) -> String {
    // Names come from files anyone may have written: a control character
    // (an escape sequence) is shown, not sent to the terminal.
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| printable(c)).collect())
        .collect();
    let rows = &rows;
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(w[i].saturating_sub(c.chars().count())));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(headers.to_vec());
    let rule: Vec<String> = w.iter().map(|&k| "-".repeat(k)).collect();
    out.push_str(&line(rule.iter().map(|s| s.as_str()).collect()));
    for r in rows {
        out.push_str(&line(r.iter().map(|s| s.as_str()).collect()));
    }
    out
}

/// `s` with each control character written as its escape (`\u{1b}`).
pub(crate) fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `s` (names from results files among it) as Markdown text: `<` and `&`
/// as entities (a name holding `<!--` hid the rest of a CI summary,
/// `<img onerror=...>` ran as markup where HTML is allowed), control
/// characters escaped.
pub fn markdown_text(s: &str) -> String {
    printable(&s.replace('&', "&amp;").replace('<', "&lt;"))
}

/// Renders rows as a GitHub-flavoured Markdown table (pipes escaped).
pub fn markdown(headers: &[&str], rows: &[Vec<String>]) -> String {
    // A cell is text ([`markdown_text`]; a lone `>` starts nothing inside
    // a cell), `|` escaped, line breaks as spaces.
    let cell = |s: &str| markdown_text(&s.replace('|', "\\|").replace(['\n', '\r'], " "));
    let mut out = String::new();
    out.push('|');
    for h in headers {
        out.push_str(&format!(" {} |", cell(h)));
    }
    out.push_str("\n|");
    for _ in headers {
        out.push_str(" --- |");
    }
    out.push('\n');
    for r in rows {
        out.push('|');
        for c in r {
            out.push_str(&format!(" {} |", cell(c)));
        }
        out.push('\n');
    }
    out
}

/// Renders rows as an HTML table of class `class`, every cell escaped;
/// columns listed in `left` are left-aligned (text), the others right (figures).
pub fn html(class: &str, headers: &[&str], rows: &[Vec<String>], left: &[usize]) -> String {
    use crate::html::escape;
    let align = |i: usize| {
        if left.contains(&i) {
            " class=\"l\""
        } else {
            ""
        }
    };
    let mut out = format!("<table class=\"{}\">\n<tr>", escape(class));
    for (i, h) in headers.iter().enumerate() {
        out.push_str(&format!("<th{}>{}</th>", align(i), escape(h)));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            out.push_str(&format!("<td{}>{}</td>", align(i), escape(c)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// A relative change as a signed percentage: `+4.2 %`; past a million
/// percent (a change against a value near zero) in scientific form,
/// `+1.0e302 %`, rather than as hundreds of digits.
pub fn pct(x: f64) -> String {
    let p = x * 100.0;
    if p.is_finite() && p.abs() >= 1e6 {
        format!("{p:+.1e} %")
    } else {
        format!("{p:+.1} %")
    }
}

/// The confidence-interval cell: `[lo, hi]`, or `exact` for a deterministic figure.
pub(crate) fn interval(c: &crate::stats::Change, deterministic: bool) -> String {
    if deterministic {
        "exact".into()
    } else {
        format!("[{}, {}]", pct(c.lo), pct(c.hi))
    }
}

/// The change and interval cells of a comparison row (`n/a` when there is none).
pub(crate) fn change_cells(
    c: Option<&crate::stats::Change>,
    deterministic: bool,
) -> (String, String) {
    match c {
        Some(c) => (pct(c.estimate), interval(c, deterministic)),
        None => ("n/a".into(), "n/a".into()),
    }
}

/// A number for tables: SI-scaled with a few significant digits (`1.25M`,
/// `38.6k`, `0.25`); at or past 1e15 and below 0.01 in scientific form
/// (`1.80e308`, `1.50e-3`), so no value is wider than 9 characters;
/// `inf`, `-inf` and `NaN` as such.
pub fn num(x: f64) -> String {
    crate::chart::si(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Magnitudes past the largest prefix and tiny ones print in
    /// scientific form a table column can hold, never as hundreds of
    /// digits; infinities and NaN as words.
    #[test]
    fn numbers_of_any_magnitude_stay_short() {
        for (x, want) in [
            (1e300, "1.00e300"),
            (f64::MAX, "1.80e308"),
            (-f64::MAX, "-1.80e308"),
            (2.5e15, "2.50e15"),
            (999e12, "999T"),
            (1.25e6, "1.25M"),
            (38_600.0, "38.6k"),
            (512.0, "512"),
            (0.25, "0.25"),
            (0.0, "0"),
            (-0.0, "0"),
            (1.5e-3, "1.50e-3"),
            (1e-300, "1.00e-300"),
            (f64::MIN_POSITIVE / 4.0, "5.56e-309"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(num(x), want, "{x:e}");
            assert!(num(x).len() <= 9, "{x:e}: {}", num(x));
        }
        for (x, want) in [
            (0.042, "+4.2 %"),
            (-0.5, "-50.0 %"),
            (1e300, "+1.0e302 %"),
            (-1e300, "-1.0e302 %"),
            (f64::INFINITY, "+inf %"),
            (f64::NAN, "NaN %"),
        ] {
            assert_eq!(pct(x), want, "{x:e}");
        }
    }

    #[test]
    fn markdown_cells_are_text_and_console_cells_print_no_control_characters() {
        let rows = vec![vec![
            "<!-- a|b".to_owned(),
            "<img src=x onerror=alert(1)> & \u{1b}[31mred\nx".to_owned(),
        ]];
        let md = markdown(&["name", "value"], &rows);
        assert!(md.contains("| &lt;!-- a\\|b |"), "{md}");
        assert!(
            md.contains("&lt;img src=x onerror=alert(1)> &amp; \\u{1b}[31mred x |"),
            "{md}"
        );
        assert!(!md.contains('<') && !md.contains('\u{1b}'), "{md}");
        let con = console(&["name", "value"], &rows);
        assert!(!con.contains('\u{1b}'), "{con}");
        assert!(con.contains("\\u{1b}[31mred\\nx"), "{con}");
    }
}
