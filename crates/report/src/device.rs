//! The device side of a modelled run: what bounded its throughput (with
//! the evidence), and the link over time (bytes in flight, receive-buffer
//! fill, throughput, drops), as recorded by the virtual-time UART model;
//! and that section of the HTML report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::group;
use crate::html::escape;
use crate::model::Results;

/// What a device model says of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceModel {
    /// The resource that bounded the throughput: `sender CPU`, `receiver
    /// CPU`, `wire`, `buffer overflow` or `sender throttle`.
    pub bottleneck: String,
    /// One sentence with the deciding figures.
    pub why: String,
    /// The figures: busy and waiting fractions, utilisation, drops.
    pub evidence: BTreeMap<String, f64>,
    /// The link over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Timeline>,
}

/// The link sampled in equal intervals of virtual time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeline {
    /// Length of one interval, seconds.
    pub interval_s: f64,
    /// Most bytes written and not yet arrived, per interval.
    pub in_flight: Vec<u64>,
    /// Most bytes waiting in the receive buffer, per interval.
    pub rx_fill: Vec<u64>,
    /// Bytes arriving per second, per interval.
    pub throughput_bps: Vec<f64>,
    /// Bytes lost to a full receive buffer so far, per interval.
    pub dropped: Vec<u64>,
}

/// Configurations that get a chart; the verdict table covers them all.
const MAX_CHARTS: usize = 12;

/// The report section: a verdict table over every modelled configuration
/// and a timeline chart per configuration (the first twelve).
/// Empty when no run carries a device model.
pub fn section(inputs: &[(PathBuf, Results)]) -> String {
    let mut rows = Vec::new();
    for (_, results) in inputs {
        let keys = group::swept_keys(results);
        for g in group::groups(results) {
            if let Some(m) = g.ok_runs().find_map(|r| r.device_model.as_ref()) {
                rows.push((g.label(&keys), m));
            }
        }
    }
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h2 id=\"device\">Device model: what bounds the throughput</h2>\n\
         <p class=\"lead\">The virtual-time model's verdict per configuration. Sender \
         fractions are of its time from the start to its last write (computing, waiting \
         for room in the transmit buffer, idling for the throttle); the receiver's busy \
         fraction is of the whole run.</p>\n<table class=\"device\">\n<tr><th>configuration</th>\
         <th>bound by</th><th>tx CPU</th><th>tx waits line</th><th>tx idle</th><th>rx busy</th>\
         <th>utilisation</th><th>bytes lost</th><th>rx high water</th><th>why</th></tr>\n",
    );
    let pct = |m: &DeviceModel, k: &str| {
        m.evidence
            .get(k)
            .map_or("–".into(), |v| format!("{:.0}&nbsp;%", v * 100.0))
    };
    for (label, m) in &rows {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(label),
            escape(&m.bottleneck),
            pct(m, "tx_cpu"),
            pct(m, "tx_write_wait"),
            pct(m, "tx_idle"),
            pct(m, "rx_busy"),
            pct(m, "utilisation"),
            m.evidence.get("overflow_bytes").map_or(0.0, |v| *v),
            pct(m, "rx_high_water_fraction"),
            escape(&m.why)
        );
    }
    out.push_str("</table>\n<h3>The link over time</h3>\n");
    for (k, (label, m)) in rows.iter().take(MAX_CHARTS).enumerate() {
        let Some(t) = &m.timeline else { continue };
        let _ = writeln!(
            out,
            "<details class=\"timeline\"{}><summary>{}</summary><figure class=\"chart timeline\">{}</figure></details>",
            if k == 0 { " open" } else { "" },
            escape(label),
            timeline_svg(t)
        );
    }
    if rows.len() > MAX_CHARTS {
        let _ = writeln!(
            out,
            "<p class=\"note\">Timelines of the first {MAX_CHARTS} of {} configurations.</p>",
            rows.len()
        );
    }
    out
}

/// Four stacked panels sharing the time axis.
fn timeline_svg(t: &Timeline) -> String {
    const W: f64 = 720.0;
    const PANEL: f64 = 90.0;
    const LEFT: f64 = 70.0;
    const RIGHT: f64 = 10.0;
    let panels: [(&str, Vec<f64>, &str); 4] = [
        (
            "bytes in flight",
            t.in_flight.iter().map(|&v| v as f64).collect(),
            "#1f77b4",
        ),
        (
            "receive buffer fill, bytes",
            t.rx_fill.iter().map(|&v| v as f64).collect(),
            "#ff7f0e",
        ),
        ("throughput, bytes/s", t.throughput_bps.clone(), "#2ca02c"),
        (
            "bytes lost (total)",
            t.dropped.iter().map(|&v| v as f64).collect(),
            "#d62728",
        ),
    ];
    let n = t.in_flight.len().max(1);
    let span = t.interval_s * n as f64;
    let h = 4.0 * (PANEL + 24.0) + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {h}\" width=\"100%\" role=\"img\" \
         aria-label=\"the link over time\" font-family=\"sans-serif\" font-size=\"11\">"
    );
    let plot_w = W - LEFT - RIGHT;
    for (i, (title, ys, colour)) in panels.iter().enumerate() {
        let top = 14.0 + i as f64 * (PANEL + 24.0);
        let max = ys.iter().copied().fold(0.0f64, f64::max);
        let scale = if max > 0.0 { max } else { 1.0 };
        let _ = write!(
            s,
            "<text x=\"{LEFT}\" y=\"{}\" font-weight=\"bold\">{}</text>\
             <line x1=\"{LEFT}\" y1=\"{b}\" x2=\"{}\" y2=\"{b}\" stroke=\"#999\"/>\
             <line x1=\"{LEFT}\" y1=\"{}\" x2=\"{LEFT}\" y2=\"{b}\" stroke=\"#999\"/>\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <text x=\"{}\" y=\"{b}\" text-anchor=\"end\">0</text>",
            top - 2.0,
            escape(title),
            LEFT + plot_w,
            top + 4.0,
            LEFT - 4.0,
            top + 12.0,
            short(max),
            LEFT - 4.0,
            b = top + 4.0 + PANEL,
        );
        // A step line: each interval's value held across it.
        let mut path = String::new();
        for (k, &y) in ys.iter().enumerate() {
            let x0 = LEFT + plot_w * k as f64 / n as f64;
            let x1 = LEFT + plot_w * (k + 1) as f64 / n as f64;
            let py = top + 4.0 + PANEL - PANEL * y / scale;
            let _ = write!(
                path,
                "{}{x0:.1},{py:.1} L{x1:.1},{py:.1} ",
                if k == 0 { "M" } else { "L" }
            );
        }
        let _ = write!(
            s,
            "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\"/>",
            path.trim_end()
        );
    }
    let axis_y = h - 8.0;
    for k in 0..=4 {
        let x = LEFT + plot_w * k as f64 / 4.0;
        // The last label ends at the axis's end, so it is not cut off.
        let anchor = if k == 4 { "end" } else { "middle" };
        let _ = write!(
            s,
            "<text x=\"{x:.1}\" y=\"{axis_y}\" text-anchor=\"{anchor}\">{:.1} s</text>",
            span * k as f64 / 4.0
        );
    }
    s.push_str("</svg>");
    s
}

fn short(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.1}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.0}k", x / 1e3)
    } else if x >= 10.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_draws_four_panels_with_the_largest_value_labelled() {
        let t = Timeline {
            interval_s: 0.5,
            in_flight: vec![0, 32, 59],
            rx_fill: vec![0, 544, 3],
            throughput_bps: vec![0.0, 11_520.0, 100.0],
            dropped: vec![0, 0, 17],
        };
        let svg = timeline_svg(&t);
        assert_eq!(svg.matches("<path").count(), 4);
        assert!(svg.contains(">544<"), "{svg}");
        assert!(svg.contains(">12k<"), "{svg}");
        assert!(svg.contains(">1.5 s<"), "{svg}");
    }
}
