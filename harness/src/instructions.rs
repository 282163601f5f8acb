//! `measure = "instructions"` (`perfkit run --measure instructions`): each
//! run's transfer executes under valgrind's callgrind, and the record
//! carries instructions per stage, which do not depend on the machine's
//! load: the same build on the same machine gives the same counts.
//!
//! How: perfkit runs itself again under `valgrind --tool=callgrind` with a
//! hidden subcommand ([`CHILD_COMMAND`]) that performs the one
//! configuration and writes what it measured to a file. perfkit is built
//! with `perfkit`'s `outline` feature, so every `measure!` body sits in a
//! never-inlined function whose symbol names its site
//! (`__perfkit_site_<hex>`): callgrind's inclusive cost of that function is
//! the site's instructions, without the timing around it. The sending side
//! is everything under `TxPump::poll` plus the `sender::sha256` site (the
//! sender hashes the file when it is built), the receiving side everything
//! under the `RxPump` entry points; both include perfkit's own timing of
//! their stages.
//!
//! The counts go into `metrics` as `instr.<site>.per_call`,
//! `instr.<site>.per_byte` (where the site counts bytes), `instr.<site>.calls`,
//! and `instr.tx.total` / `instr.rx.total` with their `per_byte` (per file
//! byte). Metrics named `instr.*` are counted, not timed: the gate compares
//! them exactly against thresholds in instructions
//! ([`perfkit_report::metric::is_counted`]).
//!
//! The measured process reads no clock to decide anything: the loopback
//! link does not pace, the input is seeded, and perfkit's stage clock is
//! replaced by a counter (one tick per reading), so its histograms take the
//! same paths every run. The record's times, stages and integrity come from
//! the same configuration run once more natively, right after (a transfer
//! that arrived damaged under callgrind is recorded as damaged), so the
//! report can set stage time shares against instruction shares.
//!
//! Counts depend on the build and on the CPU features the C library and
//! the CRC code pick (valgrind reports the host's): a baseline holds for
//! one build on one machine type; not on where it was built, since stages'
//! stack paths are placed by name, not address. They also move, by a few instructions,
//! with where the process's stack starts (the environment's size): the
//! sender's file hash copies through a stack buffer whose alignment picks
//! the C library's copy path (measured: 128 of `sender::sha256`'s 14
//! million instructions); thresholds in percent absorb that.
//!
//! Links: `loopback`. Other links run in several processes or wait on
//! the clock, and are refused with a clear message.
//!
//! The emulated RP2040 (`pico` kind) needs none of this: it runs in
//! cycle-counted virtual time, and [`device_cycles`] turns its per-site
//! cycle counts into `cycles.*` metrics, counted the same way.

mod callgrind;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{anyhow, bail, Context};
use perfkit_report::model::{Integrity, LinkStats, Side, Stages, TimeBase};
use serde::{Deserialize, Serialize};

use crate::kinds::{self, Outcome};
use crate::scenario::{Config, Scenario};
use crate::{CmdResult, Failure, EXIT_OK};

pub use callgrind::Profile;

/// The hidden subcommand the measured child runs.
pub const CHILD_COMMAND: &str = "__count-instructions";

/// The `measure` value that asks for instruction counts.
pub const INSTRUCTIONS: &str = "instructions";

/// Prefix of a symbol that carries a site's name (perfkit's `outline`).
const SITE_SYMBOL: &str = "__perfkit_site_";

/// Functions whose inclusive cost is each side's (prefixes of demangled
/// names; the engine keeps them out of line).
const TX_ROOTS: &[&str] = &["perfkit_engine::tx::TxPump<"];
const RX_ROOTS: &[&str] = &["perfkit_engine::rx::RxPump<"];
/// Sites of a side that run before its pump: the sender hashes the file
/// when it is built. Named by site, so the count does not depend on
/// whether the code around them was inlined.
const TX_SITES: &[&str] = &["sender::sha256"];

/// Runs one configuration: under callgrind when it asks for instruction
/// counts, else as every other run.
pub fn run_one(s: &Scenario, cfg: &Config, cancel: &AtomicBool) -> anyhow::Result<Outcome> {
    if cfg.str("measure") != Some(INSTRUCTIONS) {
        return kinds::run_one(s, cfg, cancel);
    }
    let mut counted = counted(s, cfg)?;
    // The same configuration natively, for the record's times and stages:
    // times under callgrind say nothing, and the report sets stage times
    // against instruction shares of the same run.
    let mut native = kinds::run_one(s, cfg, cancel)?;
    if !counted.integrity.ok {
        native.integrity = counted.integrity;
    }
    native.metrics.append(&mut counted.metrics);
    Ok(native)
}

/// What the measured child hands back: the run's outcome and its stages.
#[derive(Serialize, Deserialize)]
struct ChildOutcome {
    time_base: TimeBase,
    tx: Side,
    rx: Side,
    integrity: Integrity,
    link: LinkStats,
    stages: Stages,
    metrics: BTreeMap<String, f64>,
}

/// Refuses, before any run, a configuration that asks for instruction
/// counts where they would not repeat.
pub fn preflight(s: &Scenario, cfg: &Config) -> Result<(), kinds::Refusal> {
    let link = cfg.str("link").unwrap_or("loopback");
    if cfg.str("measure") != Some(INSTRUCTIONS) || s.kind == "transfer" && link == "loopback" {
        return Ok(());
    }
    Err(kinds::Refusal::new(
        "transfer.measure",
        format!(
            "measure = \"instructions\" runs transfers over the loopback link; this \
             configuration is a `{}` run over `{link}` (its ends wait on the clock or run in \
             other processes, so their counts would not repeat)",
            s.kind
        ),
    ))
}

fn counted(s: &Scenario, cfg: &Config) -> anyhow::Result<Outcome> {
    preflight(s, cfg).map_err(|r| anyhow!(r.message))?;
    let dir = tempfile::Builder::new()
        .prefix("perfkit-callgrind-")
        .tempdir()
        .context("cannot make a folder for callgrind's output")?;
    let config_path = dir.path().join("config.json");
    let outcome_path = dir.path().join("outcome.json");
    let profile_path = dir.path().join("callgrind.out");
    std::fs::write(&config_path, serde_json::to_vec(&cfg.values)?)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the perfkit binary to measure")?;
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg("--quiet")
        .arg(format!("--callgrind-out-file={}", profile_path.display()))
        .args(["--compress-strings=no", "--compress-pos=no"])
        .arg(&exe)
        .arg(CHILD_COMMAND)
        .arg(&s.path)
        .arg(&config_path)
        .arg(&outcome_path);
    // SIGTERM to the run reaches valgrind too, which passes it to perfkit.
    let status = match crate::interrupt::output(&mut cmd) {
        Ok(out) => out.status,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "measure = \"instructions\" needs valgrind (Debian: apt-get install valgrind; \
             scripts/setup.d/10-debian.sh installs it)"
        ),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
            bail!("interrupted while under callgrind")
        }
        Err(e) => return Err(anyhow!(e).context("cannot start valgrind")),
    };
    if !status.success() {
        bail!("the run under callgrind failed ({status})");
    }
    let child: ChildOutcome = serde_json::from_slice(
        &std::fs::read(&outcome_path)
            .with_context(|| format!("cannot read {}", outcome_path.display()))?,
    )
    .context("the measured run's outcome")?;
    let text = std::fs::read_to_string(&profile_path)
        .with_context(|| format!("cannot read {}", profile_path.display()))?;
    let profile = callgrind::parse(&text)?;
    check_attribution(&profile, &child.stages)?;
    let mut metrics = child.metrics;
    metrics.extend(counts(&profile, &child.stages, child.tx.bytes));
    Ok(Outcome {
        time_base: child.time_base,
        tx: child.tx,
        rx: child.rx,
        integrity: child.integrity,
        link: child.link,
        metrics,
        ..Default::default()
    })
}

/// The `instr.*` metrics of a profile: per site (by the symbols perfkit's
/// `outline` feature gives), and per side. `stages` gives each site's byte
/// count; `file_bytes` the transfer's payload.
pub fn counts(profile: &Profile, stages: &Stages, file_bytes: u64) -> BTreeMap<String, f64> {
    let sites = site_totals(profile);
    let mut tx: u64 = sites
        .iter()
        .filter(|(site, _)| TX_SITES.contains(&site.as_str()))
        .map(|(_, (count, _))| count)
        .sum();
    let mut rx = 0u64;
    for (name, f) in &profile.fns {
        if site_of(name).is_some() {
            continue;
        }
        if TX_ROOTS.iter().any(|r| name.starts_with(r)) {
            tx += f.inclusive;
        }
        if RX_ROOTS.iter().any(|r| name.starts_with(r)) {
            rx += f.inclusive;
        }
    }
    let mut out = per_site("instr", sites, stages);
    for (side, total) in [("tx", tx), ("rx", rx)] {
        out.insert(format!("instr.{side}.total"), total as f64);
        if file_bytes > 0 {
            out.insert(
                format!("instr.{side}.per_byte"),
                total as f64 / file_bytes as f64,
            );
        }
    }
    out
}

/// Refuses counts that callgrind gave a site which perfkit did not see it
/// run as often: each site's function must have been called once per
/// measurement. A mismatch means two sites' functions were merged under one
/// symbol (or a symbol names no site), and the counts would be another
/// site's.
fn check_attribution(profile: &Profile, stages: &Stages) -> anyhow::Result<()> {
    if stages.sites.is_empty() {
        // Recording off: nothing to check against.
        return Ok(());
    }
    for (site, (_, n)) in site_totals(profile) {
        let seen: u64 = stages
            .sites
            .iter()
            .filter(|s| s.name == site)
            .map(|s| s.calls)
            .sum();
        if n != seen {
            bail!(
                "callgrind counted {n} calls of site `{site}`'s function where perfkit measured \
                 {seen}: its counts would not be that site's alone (two sites' functions merged \
                 into one symbol?), so none are reported"
            );
        }
    }
    Ok(())
}

/// Each site's inclusive count and calls, summed over the functions whose
/// symbols name it.
fn site_totals(profile: &Profile) -> BTreeMap<String, (u64, u64)> {
    let mut sites: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (name, f) in &profile.fns {
        if let Some(site) = site_of(name) {
            let e = sites.entry(site).or_default();
            e.0 += f.inclusive;
            e.1 += f.calls;
        }
    }
    sites
}

/// `<unit>.<site>.calls`, `.per_call` and `.per_byte` (where `stages` counts
/// the site's bytes) from each site's count and calls.
fn per_site(
    unit: &str,
    sites: BTreeMap<String, (u64, u64)>,
    stages: &Stages,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (site, (count, calls)) in sites {
        let bytes: u64 = stages
            .sites
            .iter()
            .filter(|s| s.name == site)
            .filter_map(|s| s.bytes)
            .sum();
        let key = |what: &str| format!("{unit}.{site}.{what}");
        out.insert(key("calls"), calls as f64);
        if calls > 0 {
            out.insert(key("per_call"), count as f64 / calls as f64);
        }
        if bytes > 0 {
            out.insert(key("per_byte"), count as f64 / bytes as f64);
        }
    }
    out
}

/// The emulated device's cycles per site as counted metrics
/// (`cycles.<site>.per_call`, `.per_byte`, `.calls`): the emulator counts
/// every instruction's cycles in virtual time, so these repeat exactly for
/// one firmware build. Inclusive of nested sites and of the device's own
/// measuring; sites of one name are summed. Sites without a cycle count
/// (a device clock that does not tick at the CPU's rate) are left out.
pub fn device_cycles(stages: &Stages) -> BTreeMap<String, f64> {
    let mut sites: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for s in &stages.sites {
        if let Some(c) = s.cum_cycles {
            let e = sites.entry(s.name.clone()).or_default();
            e.0 += c;
            e.1 += s.calls;
        }
    }
    per_site("cycles", sites, stages)
}

/// The site a symbol's last path segment names, if it is an outlined body
/// (`…::__perfkit_site_<hex of the name>`).
fn site_of(symbol: &str) -> Option<String> {
    let last = symbol.rsplit("::").next()?;
    let hex = last.strip_prefix(SITE_SYMBOL)?;
    // A generic instantiation may be printed with its parameters.
    let hex = hex.split(['<', ' ']).next()?;
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok()
}

/// perfkit's stage clock in the measured process: one tick per reading,
/// so the figures perfkit keeps take the same code paths every run.
struct Readings(AtomicU64);

impl perfkit::Clock for Readings {
    fn now(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
    fn ticks_per_second(&self) -> u64 {
        1_000_000_000
    }
}

static READINGS: Readings = Readings(AtomicU64::new(0));

/// The hidden subcommand: runs one configuration (as `counted` asked) and
/// writes its outcome to `out`.
pub fn child(scenario: &Path, config: &Path, out: &Path) -> CmdResult {
    // Before any measurement: ticks of two clocks do not mix.
    let _ = perfkit::set_clock(&READINGS);
    let s = Scenario::load(scenario).map_err(Failure::input)?;
    let values = std::fs::read(config)
        .with_context(|| format!("cannot read {}", config.display()))
        .and_then(|b| Ok(serde_json::from_slice(&b)?))
        .map_err(Failure::input)?;
    let cfg = Config { values };
    perfkit::reset();
    let o = kinds::run_one(&s, &cfg, &AtomicBool::new(false)).map_err(Failure::run)?;
    let record = ChildOutcome {
        time_base: o.time_base,
        tx: o.tx,
        rx: o.rx,
        integrity: o.integrity,
        link: o.link,
        stages: crate::run::stages_from(&perfkit::snapshot()),
        metrics: o.metrics,
    };
    let tmp: PathBuf = out.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(&record).map_err(Failure::run)?)
        .and_then(|()| std::fs::rename(&tmp, out))
        .with_context(|| format!("cannot write {}", out.display()))
        .map_err(Failure::run)?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use perfkit_report::model::Stage;

    fn site(name: &str, calls: u64, bytes: Option<u64>, cycles: Option<u64>) -> Stage {
        Stage {
            name: name.to_owned(),
            calls,
            bytes,
            tmean_ns: None,
            cum_cycles: cycles,
            ..Default::default()
        }
    }

    #[test]
    fn device_cycles_per_call_and_byte_sum_sites_of_one_name() {
        let stages = Stages {
            sites: vec![
                site("wire::crc16", 10, Some(500), Some(3_000)),
                site("wire::crc16", 2, Some(100), Some(600)),
                site("sender::add_header", 4, None, Some(800)),
                site("timed::only", 4, None, None),
            ],
            folded: vec![],
            probe_ns_per_scope: None,
        };
        let m = device_cycles(&stages);
        assert_eq!(m["cycles.wire::crc16.calls"], 12.0);
        assert_eq!(m["cycles.wire::crc16.per_call"], 300.0);
        assert_eq!(m["cycles.wire::crc16.per_byte"], 6.0);
        assert_eq!(m["cycles.sender::add_header.per_call"], 200.0);
        assert!(!m.contains_key("cycles.sender::add_header.per_byte"));
        assert!(!m.keys().any(|k| k.contains("timed::only")));
    }

    #[test]
    fn site_names_come_back_from_symbols() {
        assert_eq!(
            site_of(
                "perfkit_stack::dttk::wire::encapsulate::__perfkit_site_776972653a3a6372633136"
            )
            .as_deref(),
            Some("wire::crc16")
        );
        assert_eq!(site_of("perfkit_stack::dttk::wire::encapsulate"), None);
        assert_eq!(site_of("x::__perfkit_site_7"), None);
        assert_eq!(site_of("x::__perfkit_site_zz"), None);
    }
}
