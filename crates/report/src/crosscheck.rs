//! Cross-checks: each figure set against an independent measure of the same
//! work, shown in every report.
//!
//! - **Unaccounted time.** The top-level stages' cumulative time (the
//!   outermost frames of the folded stacks) against the side's own clock:
//!   what the stages do not cover is time in unmeasured code (the driver's
//!   loop, the link, the clock reads) or waiting. Wall-clock records only:
//!   a virtual-time side's seconds are not the host's.
//! - **Time against instructions.** Where a record carries instruction
//!   counts (`perfkit run --measure instructions`), each stage's share of
//!   the measured time against its share of the counted instructions, with
//!   Spearman's rank correlation: a stage that takes much more time than its
//!   instructions say waits on memory or on the system, or its timing is off.
//! - **Link against a raw copy.** The transfer's throughput against the same
//!   bytes copied raw through the same link in the same run (`cat` through
//!   a pipe, `compare_cat`; iperf3 over the same TCP/UDP path,
//!   `compare_iperf3`).
//! - **Host instructions against device cycles.** Per stage, instructions
//!   per byte on the host and cycles per byte on the emulated RP2040 at the
//!   same block size, when the report's inputs hold both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use crate::group::{self, config_label};
use crate::html::escape;
use crate::model::{Results, RunRecord, TimeBase};

/// The cross-check sections for these inputs (empty when nothing applies).
pub fn section(inputs: &[(PathBuf, Results)]) -> String {
    let all: Vec<&Results> = inputs.iter().map(|(_, r)| r).collect();
    let mut rows = Rows::default();
    for r in &all {
        let keys = group::swept_keys(r);
        for g in group::groups(r) {
            let label = match config_label(g.config, &keys) {
                c if c.is_empty() => r.meta.scenario.name.clone(),
                c => format!("{}: {c}", r.meta.scenario.name),
            };
            let runs: Vec<&RunRecord> = g.ok_runs().collect();
            rows.unaccounted(&label, &runs);
            rows.shares(&label, &runs);
            rows.yardsticks(&label, &runs);
        }
    }
    let mut out = String::new();
    if rows.is_empty() && per_byte_table(&all).is_empty() {
        return out;
    }
    out.push_str("<h2 id=\"cross-checks\">Cross-checks</h2>\n");
    if !rows.unaccounted.is_empty() {
        out.push_str(
            "<h3>Stages against each side's clock</h3>\n<p class=\"lead\">The top-level \
             stages' cumulative time against the side's own seconds, first to last \
             message (median over runs); the rest is unmeasured code, the link or \
             waiting. Stages called once per run (the sender hashing the file before its \
             first message) lie outside that clock and are left out.</p>\n",
        );
        table(
            &mut out,
            &[
                "configuration",
                "side",
                "top-level stages",
                "clock",
                "covered",
                "unaccounted",
            ],
            &rows.unaccounted,
        );
    }
    if !rows.shares.is_empty() {
        out.push_str(
            "<h3>Stage time against counted instructions</h3>\n<p class=\"lead\">Each \
             stage's share of the stages' time against its share of their instructions \
             (callgrind, inclusive), and Spearman's rank correlation over the stages \
             (1: the same order).</p>\n",
        );
        table(
            &mut out,
            &[
                "configuration",
                "stage",
                "time share",
                "instruction share",
                "ratio",
                "Spearman ρ",
            ],
            &rows.shares,
        );
    }
    if !rows.yardsticks.is_empty() {
        out.push_str(
            "<h3>Link against a raw copy</h3>\n<p class=\"lead\">The transfer's received \
             MB/s against the same bytes copied raw through the same link in the same run \
             (median over runs).</p>\n",
        );
        table(
            &mut out,
            &[
                "configuration",
                "yardstick",
                "transfer MB/s",
                "raw MB/s",
                "transfer / raw",
            ],
            &rows.yardsticks,
        );
    }
    out.push_str(&per_byte_table(&all));
    out
}

#[derive(Default)]
struct Rows {
    unaccounted: Vec<Vec<String>>,
    shares: Vec<Vec<String>>,
    yardsticks: Vec<Vec<String>>,
}

impl Rows {
    fn is_empty(&self) -> bool {
        self.unaccounted.is_empty() && self.shares.is_empty() && self.yardsticks.is_empty()
    }

    fn unaccounted(&mut self, label: &str, runs: &[&RunRecord]) {
        let runs: Vec<&&RunRecord> = runs
            .iter()
            .filter(|r| r.time_base == TimeBase::Real && !r.stages.folded.is_empty())
            .collect();
        if runs.is_empty() {
            return;
        }
        // Per side: (stage seconds, clock seconds) of each run.
        let mut per_side: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
        for r in &runs {
            let mut sums: BTreeMap<&str, f64> = BTreeMap::new();
            for site in top_level(r) {
                let sites = || r.stages.sites.iter().filter(|s| s.name == site);
                // Once per run is setup before the side's clock starts (the
                // sender hashing the file), not part of the transfer; a
                // receiver's hashing thread runs beside its clock, not in it.
                if sites().map(|s| s.calls).sum::<u64>() <= 1 || site.starts_with(HASH_THREAD) {
                    continue;
                }
                let ns: u64 = sites().map(|s| s.cum_ns).sum();
                *sums.entry(side_of(&site)).or_default() += ns as f64 / 1e9;
            }
            for (side, stage_s) in sums {
                let clock = match side {
                    "tx" => r.tx.seconds,
                    "rx" => r.rx.seconds,
                    _ => r.tx.seconds.max(r.rx.seconds),
                };
                if clock > 0.0 {
                    per_side.entry(side).or_default().push((stage_s, clock));
                }
            }
        }
        for (side, xs) in per_side {
            let share = median(xs.iter().map(|(s, c)| s / c).collect());
            let name = match side {
                "tx" => "sender",
                "rx" => "receiver",
                _ => "both (one thread)",
            };
            self.unaccounted.push(vec![
                label.to_owned(),
                name.to_owned(),
                format!(
                    "{} s",
                    crate::table::num(median(xs.iter().map(|x| x.0).collect()))
                ),
                format!(
                    "{} s",
                    crate::table::num(median(xs.iter().map(|x| x.1).collect()))
                ),
                format!("{:.1} %", share * 100.0),
                format!("{:.1} %", (1.0 - share) * 100.0),
            ]);
        }
    }

    fn shares(&mut self, label: &str, runs: &[&RunRecord]) {
        // The first run with counts: counts repeat, times are one sample.
        let Some(r) = runs
            .iter()
            .find(|r| r.metrics.keys().any(|k| k.starts_with("instr.")))
        else {
            return;
        };
        let mut pairs: Vec<(String, f64, f64)> = Vec::new();
        for s in &r.stages.sites {
            let Some(per_call) = r.metrics.get(&format!("instr.{}.per_call", s.name)) else {
                continue;
            };
            if pairs.iter().any(|p| p.0 == s.name) {
                continue;
            }
            let ns: u64 = r
                .stages
                .sites
                .iter()
                .filter(|x| x.name == s.name)
                .map(|x| x.cum_ns)
                .sum();
            let calls = r
                .metrics
                .get(&format!("instr.{}.calls", s.name))
                .copied()
                .unwrap_or(0.0);
            pairs.push((s.name.clone(), ns as f64, per_call * calls));
        }
        let (t, i): (f64, f64) = pairs.iter().fold((0.0, 0.0), |a, p| (a.0 + p.1, a.1 + p.2));
        if pairs.len() < 2 || t <= 0.0 || i <= 0.0 {
            return;
        }
        let rho = spearman(
            &pairs.iter().map(|p| p.1).collect::<Vec<_>>(),
            &pairs.iter().map(|p| p.2).collect::<Vec<_>>(),
        );
        pairs.sort_by(|a, b| b.2.total_cmp(&a.2));
        for (k, (site, ns, instr)) in pairs.iter().enumerate() {
            let (ts, is) = (ns / t, instr / i);
            self.shares.push(vec![
                if k == 0 {
                    label.to_owned()
                } else {
                    String::new()
                },
                site.clone(),
                format!("{:.1} %", ts * 100.0),
                format!("{:.1} %", is * 100.0),
                if is > 0.0 {
                    format!("{:.2}", ts / is)
                } else {
                    "-".into()
                },
                match (k, rho) {
                    (0, Some(r)) => format!("{r:.2}"),
                    (0, None) => "-".into(),
                    _ => String::new(),
                },
            ]);
        }
    }

    fn yardsticks(&mut self, label: &str, runs: &[&RunRecord]) {
        for (key, name) in [
            ("cat_mb_s", "cat through the same pipe"),
            ("iperf3_mb_s", "iperf3 (TCP) over the same path"),
            (
                "iperf3_udp_mb_s",
                "iperf3 (UDP, datagrams of the largest message) over the same path",
            ),
        ] {
            let xs: Vec<(f64, f64)> = runs
                .iter()
                .filter_map(|r| Some((r.rx.bps / 1e6, *r.metrics.get(key)?)))
                .filter(|(_, raw)| *raw > 0.0)
                .collect();
            if xs.is_empty() {
                continue;
            }
            let (rx, raw) = (
                median(xs.iter().map(|x| x.0).collect()),
                median(xs.iter().map(|x| x.1).collect()),
            );
            self.yardsticks.push(vec![
                label.to_owned(),
                name.to_owned(),
                format!("{rx:.1}"),
                format!("{raw:.1}"),
                format!("{:.1} %", rx / raw * 100.0),
            ]);
        }
    }
}

/// Per stage, host instructions per byte next to emulated RP2040 cycles per
/// byte, for each block size both were counted at.
fn per_byte_table(all: &[&Results]) -> String {
    // (block size, site) -> (host instructions/byte, device cycles/byte)
    let mut cells: BTreeMap<(i64, String), (Option<f64>, Option<f64>)> = BTreeMap::new();
    for r in all.iter().flat_map(|r| r.runs.iter()) {
        if r.error.is_some() {
            continue;
        }
        let Some(block) = r.config.get("block_size").and_then(|v| v.as_i64()) else {
            continue;
        };
        for (k, v) in &r.metrics {
            let (host, site) = match k.strip_suffix(".per_byte") {
                Some(s) => match (s.strip_prefix("instr."), s.strip_prefix("cycles.")) {
                    (Some(site), _) => (true, site),
                    (_, Some(site)) => (false, site),
                    _ => continue,
                },
                None => continue,
            };
            if matches!(site, "tx" | "rx") {
                continue;
            }
            let cell = cells.entry((block, site.to_owned())).or_default();
            let slot = if host { &mut cell.0 } else { &mut cell.1 };
            slot.get_or_insert(*v);
        }
    }
    cells.retain(|_, (h, d)| h.is_some() && d.is_some());
    if cells.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "<h3>Per byte: host instructions and RP2040 cycles</h3>\n<p class=\"lead\">Each \
         stage's counted cost per payload byte it handled: instructions on this host \
         (callgrind, loopback) next to cycles on the emulated RP2040 (cycle-counted virtual \
         time, 125 MHz), at the same block size. Both inclusive of nested stages; the \
         device's include its own measuring.</p>\n",
    );
    let rows: Vec<Vec<String>> = cells
        .into_iter()
        .map(|((block, site), (h, d))| {
            let (h, d) = (h.unwrap_or(0.0), d.unwrap_or(0.0));
            vec![
                block.to_string(),
                site,
                format!("{h:.2}"),
                format!("{d:.2}"),
                if h > 0.0 {
                    format!("{:.1}", d / h)
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "block size",
            "stage",
            "host instructions/byte",
            "RP2040 cycles/byte",
            "cycles / instructions",
        ],
        &rows,
    );
    out
}

/// The sites that are the outermost frame of some folded stack.
fn top_level(r: &RunRecord) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in &r.stages.folded {
        let root = perfkit::frame_name(f.stack.split(';').next().unwrap_or(""));
        if !root.is_empty() && !out.iter().any(|x| *x == root) {
            out.push(root.into_owned());
        }
    }
    out
}

/// Which side a site's time belongs to, by the stack's naming.
fn side_of(site: &str) -> &'static str {
    // A top-level `wire::crc16` is the sender's: the receiver's runs inside
    // `receiver::crc_check`.
    let tx = ["sender::", "framing::encode", "engine::write", "wire::"];
    let rx = ["receiver::", "framing::decode"];
    if tx.iter().any(|p| site.starts_with(p)) || site.ends_with(".write") || site.ends_with(".send")
    {
        "tx"
    } else if rx.iter().any(|p| site.starts_with(p))
        || site.ends_with(".read")
        // A link's wait for data to read (`link.pipe.wait`).
        || site.ends_with(".wait")
        || site.ends_with(".recv")
    {
        "rx"
    } else {
        "both"
    }
}

/// Prefix of the stages a receiver's hashing thread records (the stack's
/// `HashingSink`): they overlap the receiving thread's own stages.
const HASH_THREAD: &str = "hash_thread::";

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// Ranks from 1, ties sharing their mean rank.
fn ranks(xs: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut out = vec![0.0; xs.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && xs[idx[j + 1]] == xs[idx[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &idx[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation (Pearson's on the ranks); `None` when either
/// side has no spread.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

fn table(out: &mut String, head: &[&str], rows: &[Vec<String>]) {
    out.push_str("<table class=\"cross-check\">\n<tr>");
    for (i, h) in head.iter().enumerate() {
        let class = if i < 2 { " class=\"l\"" } else { "" };
        let _ = write!(out, "<th{class}>{}</th>", escape(h));
    }
    out.push_str("</tr>\n");
    for r in rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if i < 2 { " class=\"l\"" } else { "" };
            let _ = write!(out, "<td{class}>{}</td>", escape(c));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_orders() {
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]), Some(1.0));
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // Ties share a rank: [1, 2.5, 2.5] against [1, 2, 3].
        let r = spearman(&[1.0, 5.0, 5.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((r - 0.866).abs() < 1e-3, "{r}");
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(spearman(&[1.0], &[1.0]), None);
    }

    fn committed(name: &str, text: &str) -> (PathBuf, Results) {
        let p = PathBuf::from(name);
        let r = Results::from_json(&p, text).unwrap();
        (p, r)
    }

    #[test]
    fn committed_baselines_give_every_cross_check() {
        let instr = committed(
            "instructions.json",
            include_str!("../../../fixtures/baselines/instructions.json"),
        );
        let pico = committed(
            "uart-pico.json",
            include_str!("../../../fixtures/baselines/uart-pico.json"),
        );
        let html = section(std::slice::from_ref(&instr));
        assert!(html.contains("Stages against each side"), "{html}");
        assert!(html.contains("both (one thread)"), "{html}");
        assert!(
            html.contains("Stage time against counted instructions"),
            "{html}"
        );
        assert!(html.contains("receiver::crc_check"), "{html}");
        // The per-byte table needs both a host and a device input.
        assert!(!html.contains("RP2040 cycles/byte"));
        let html = section(&[instr, pico]);
        assert!(html.contains("RP2040 cycles/byte"), "{html}");
        assert!(
            html.contains("<td class=\"l\">sender::read_block</td>"),
            "{html}"
        );
        // Nothing to cross-check: no section.
        assert_eq!(section(&[]), "");
    }

    #[test]
    fn sides_by_stage_name() {
        assert_eq!(side_of("sender::sha256"), "tx");
        assert_eq!(side_of("link.pipe.write"), "tx");
        assert_eq!(side_of("receiver::store"), "rx");
        assert_eq!(side_of("link.udp.recv"), "rx");
        assert_eq!(side_of("link.pipe.wait"), "rx");
        assert_eq!(side_of("wire::crc16"), "tx");
        assert_eq!(side_of("loopback::packet"), "both");
    }
}
