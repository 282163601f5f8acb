//! Snapshots (std): every site's statistics in nanoseconds, the merged stack
//! paths, the text dump, folded stacks and JSON.

use crate::clock::{ticks_per_second, ticks_to_ns};
use crate::record::SiteRecord;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
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
    /// Site names from the outermost, joined by `;` (a `;` inside a name becomes `:`).
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
            key.extend(s.name().chars().map(|c| if c == ';' { ':' } else { c }));
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
    /// `a;b;c <self-ns>` line per path with non-zero self time.
    pub fn folded(&self) -> String {
        let mut out = String::new();
        for s in &self.stacks {
            if s.self_ns > 0 {
                out.push_str(&s.stack);
                out.push(' ');
                out.push_str(&s.self_ns.to_string());
                out.push('\n');
            }
        }
        out
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

    /// The stack path `a;b;c`, if recorded.
    pub fn stack(&self, path: &str) -> Option<&StackSnapshot> {
        self.stacks.iter().find(|s| s.stack == path)
    }
}

/// Microseconds with thousands separators: 3988123 ns -> "3,988".
pub fn us(ns: u64) -> String {
    let digits = (ns / 1000).to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Snapshot {
    /// One line per site, in the field's form (microseconds):
    /// `name measure: calls:772 min:3,988 max:24,536 cum:11,925,377 p50:.. p90:.. p99:.. p99.9:..`,
    /// then ` bytes:N MB/s:X` for sites that count bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sites {
            write!(
                f,
                "{} measure: calls:{} min:{} max:{} cum:{} p50:{} p90:{} p99:{} p99.9:{}",
                s.name,
                s.calls,
                us(s.min_ns),
                us(s.max_ns),
                us(s.cum_ns),
                us(s.p50_ns),
                us(s.p90_ns),
                us(s.p99_ns),
                us(s.p999_ns)
            )?;
            if let (Some(bytes), Some(mbs)) = (s.bytes, s.mb_per_s()) {
                write!(f, " bytes:{bytes} MB/s:{mbs:.1}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
