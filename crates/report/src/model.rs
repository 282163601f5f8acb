//! The results file: what `perfkit run` writes and every other command reads.
//!
//! One JSON document per scenario run, `results.json`, written atomically
//! (temporary file in the same folder, then rename) after every completed
//! record, so an interrupted run keeps what it finished. Readers check
//! `schema_version` first and refuse files from a newer perfkit with a message
//! that says so.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The version of the results schema this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    /// Always [`SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// Where and how the runs were made.
    pub meta: Meta,
    /// One record per configuration and repeat, in the order they ran.
    pub runs: Vec<RunRecord>,
}

/// Run metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// `perfkit` version that wrote the file.
    pub perfkit_version: String,
    /// `git rev-parse HEAD` of the working tree, when available.
    #[serde(default)]
    pub git_commit: Option<String>,
    /// Host name of the machine.
    pub host: String,
    /// What the machine is, beyond its name: CPU model and logical CPUs
    /// (`AMD EPYC 7B13; 2 cpus`). Wall-clock figures are comparable only
    /// between runs with the same host and fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_fingerprint: Option<String>,
    /// The compiler that built the perfkit that wrote the file
    /// (`rustc 1.95.0 (59807616e 2026-04-14)`): instruction counts belong
    /// to one compiler's code, so the gate compares them only between
    /// files from the same one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiler: Option<String>,
    /// Start of the run, RFC 3339 in UTC.
    pub date: String,
    /// The scenario that was run.
    pub scenario: ScenarioRef,
    /// Names of the parameters that were swept (more than one value), in
    /// scenario order. Reports draw one chart per swept parameter and metric.
    #[serde(default)]
    pub swept: Vec<String>,
    /// Gate thresholds from the scenario's `[gate]` table, `metric -> percent`.
    #[serde(default)]
    pub gate: BTreeMap<String, f64>,
    /// Swept parameters whose value range holds an "off" value, `name ->`
    /// that value and what it means (`throttle_pps`: 0, unthrottled), so a
    /// chart draws it as a labelled category, not as a point on the scale.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sentinels: BTreeMap<String, Sentinel>,
    /// How the runs were made, one entry per `perfkit run` that wrote runs
    /// into this file (more than one with `--append`): what the scenario
    /// file alone does not say. Empty in files written before it was kept;
    /// `null` first when runs were appended to such a file, whose plan is
    /// not known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<Option<Plan>>,
}

/// One `perfkit run`'s plan: with the scenario file and each run's
/// parameters, what it takes to make the same runs again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Measured runs per configuration.
    pub runs: u32,
    /// Unrecorded warm-up runs before the first configuration.
    pub warmup: u32,
    /// `rounds` (one run of every configuration at a time) or `configs`
    /// (every run of one configuration, then the next).
    pub order: String,
    /// The `--set KEY=VALUE` overrides, as given and in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<String>,
}

impl Plan {
    /// `6 runs per configuration, in rounds, after 2 warm-up runs; --set a=1`.
    pub fn phrase(&self) -> String {
        let mut s = format!(
            "{} run{} per configuration, {}",
            self.runs,
            if self.runs == 1 { "" } else { "s" },
            match self.order.as_str() {
                "rounds" => "in rounds",
                "configs" => "configuration by configuration",
                other => other,
            }
        );
        if self.warmup > 0 {
            s.push_str(&format!(
                ", after {} warm-up run{}",
                self.warmup,
                if self.warmup == 1 { "" } else { "s" }
            ));
        }
        for k in &self.set {
            s.push_str(&format!("; --set {k}"));
        }
        s
    }
}

/// A parameter value that means "off" rather than an amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sentinel {
    /// The value (`0`).
    pub value: f64,
    /// What it means (`unthrottled`).
    pub means: String,
}

impl Meta {
    /// The host as wall-clock comparisons must match it: the name and, when
    /// recorded, the fingerprint.
    pub fn host_identity(&self) -> String {
        match &self.host_fingerprint {
            Some(f) => format!("{}, {f}", self.host),
            None => self.host.clone(),
        }
    }
}

/// The scenario file a run came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioRef {
    /// Scenario name (`name` key, or the file stem).
    pub name: String,
    /// Path as given on the command line.
    pub path: String,
    /// SHA-256 of the scenario file's bytes, lowercase hex.
    pub sha256: String,
    /// The scenario's `description`.
    #[serde(default)]
    pub description: String,
    /// Scenario kind: `transfer` (loopback, pipe, uart, serial), `heaps`, `pico`.
    #[serde(default)]
    pub kind: String,
    /// `loss` when the scenario declares that its runs lose data (a failed
    /// integrity check is then what it shows, not a failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<String>,
}

/// How a run's seconds were counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeBase {
    /// The host's monotonic clock: subject to noise.
    #[default]
    Real,
    /// A deterministic model's virtual clock: identical on every machine.
    Virtual,
}

/// One configuration, one repeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRecord {
    /// Index of the configuration in the sweep (0-based); records with the same
    /// `config_id` are repeats of each other.
    pub config_id: usize,
    /// Repeat number within the configuration (0-based; warm-ups are not recorded).
    pub repeat: u32,
    /// When the run started, in seconds since the Unix epoch. `perfkit gate`
    /// uses it to recognise a baseline and a candidate whose runs were
    /// interleaved in time, and then compares them pair by pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_unix_s: Option<f64>,
    /// The resolved parameters, by their scenario key (`block_size`,
    /// `start_meta`, `meta_every`, `repeats`, `throttle_pps`, `baud`,
    /// `framing`, `link`, ...).
    pub config: BTreeMap<String, serde_json::Value>,
    /// Whether `seconds` (and so every rate) is wall-clock or virtual.
    #[serde(default)]
    pub time_base: TimeBase,
    /// The sending side.
    pub tx: Side,
    /// The receiving side.
    pub rx: Side,
    /// Did the bytes arrive intact.
    pub integrity: Integrity,
    /// What the link carried.
    pub link: LinkStats,
    /// Host-side perfkit snapshot taken over this run.
    pub stages: Stages,
    /// Device-side snapshot (firmware on an emulated or real Pico), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_stages: Option<Stages>,
    /// A device model's verdict on what bounded the run, and the link over
    /// time (virtual-time UART runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_model: Option<crate::device::DeviceModel>,
    /// Kind-specific figures (`heaps_per_s`, `mb_per_s`, `packets_per_s`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
    /// Where each end ran when they ran on different hosts (`perfkit
    /// agent`): `sender` / `receiver` -> `name; CPU model; N cpus; kernel`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, String>,
    /// Set when the run itself failed (as opposed to losing data honestly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One side of a transfer, in the field's `T:.. blk:.. by:.. PPS:.. BPS:..` terms.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Side {
    /// Duration of the transfer on this side: from its first message to
    /// its last, and for a receiver on the wall clock on to the file
    /// verified (the wait for a hash thread's last pass included).
    pub seconds: f64,
    /// Messages (blocks, or heaps) sent or stored, repeats included for tx.
    pub blocks: u64,
    /// Payload bytes sent or stored.
    pub bytes: u64,
    /// `blocks / seconds`.
    pub pps: f64,
    /// `bytes / seconds`.
    pub bps: f64,
    /// Named error counters (crc errors, junk bytes, sequence gaps, ...).
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
}

impl Side {
    /// Builds a side, deriving the rates (0 when no time passed).
    pub fn new(seconds: f64, blocks: u64, bytes: u64) -> Self {
        let rate = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        Side {
            seconds,
            blocks,
            bytes,
            pps: rate(blocks),
            bps: rate(bytes),
            errors: BTreeMap::new(),
        }
    }

    /// The field's stats line: `T:72 blk:2780 by:138840 PPS:38 BPS:1928`.
    pub fn stats_line(&self) -> String {
        format!(
            "T:{} blk:{} by:{} PPS:{} BPS:{}",
            self.seconds as u64, self.blocks, self.bytes, self.pps as u64, self.bps as u64
        )
    }
}

/// The integrity verdict of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Integrity {
    /// SHA-256 of what arrived equals SHA-256 of what was sent.
    pub ok: bool,
    /// Block numbers that never arrived.
    #[serde(default)]
    pub missing_blocks: Vec<u32>,
    /// SHA-256 of the input, lowercase hex.
    #[serde(default)]
    pub sha256_sent: String,
    /// SHA-256 of the output, lowercase hex (empty when nothing was complete).
    #[serde(default)]
    pub sha256_received: String,
    /// Why the check failed, when the figures above do not say it alone
    /// (what arrived was whole but is not the run's input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the link carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkStats {
    /// Bytes on the wire (framing and headers included).
    pub wire_bytes: u64,
    /// `wire_bytes / (rate x seconds)` where the link has a known rate
    /// (a UART: `baud / bits_per_char` bytes per second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilisation: Option<f64>,
    /// Link and framing counters (overflow drops, injected faults, junk bytes, ...).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
}

/// A perfkit snapshot as stored in a results file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// One entry per call site that recorded at least one call.
    pub sites: Vec<Stage>,
    /// Folded stacks: `a;b;c` with the self time spent there.
    #[serde(default)]
    pub folded: Vec<Folded>,
    /// What one empty measured scope nested in another costs on this side,
    /// in nanoseconds, calibrated when the run started (host: empty
    /// `measure!`s timed with perfkit's clock; device: the firmware's
    /// `probe_cycles_per_scope`). Nothing is subtracted from the stages
    /// for it: the report shows what share of each stage it could be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_ns_per_scope: Option<f64>,
}

/// Statistics of one measured call site: perfkit's one record, so a
/// snapshot, a device report and a results file carry the same columns.
pub type Stage = perfkit::SiteRecord<String>;

/// One folded stack line: `path` is `a;b;c`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Folded {
    /// Semicolon-separated frames, outermost first: site names as
    /// [`perfkit::folded_frame`] writes them ([`perfkit::frame_name`] reads
    /// them back); in files written before it, the names themselves.
    pub stack: String,
    /// Time spent in the innermost frame itself.
    pub self_ns: u64,
}

/// The most a results, baseline or snapshot file may hold: far above any
/// perfkit writes, and a bound on what a wrong path (`/dev/zero`) can cost.
pub const READ_LIMIT: u64 = 1 << 30;

/// A file's text, or an error naming it.
fn read(path: &Path) -> Result<String, Error> {
    crate::files::read_text_limited(path, READ_LIMIT).map_err(|e| Error {
        path: path.to_owned(),
        kind: ErrorKind::Io(e),
    })
}

/// A JSON syntax or shape error, with the file, line and column.
fn parse_error(path: &Path, e: serde_json::Error) -> Error {
    Error {
        path: path.to_owned(),
        kind: ErrorKind::Parse {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        },
    }
}

/// A perfkit snapshot's sites and stack paths as a results file stores them
/// (stack paths with no time of their own are left out: they add nothing to
/// a flamegraph). No probe calibration: the caller adds its own.
pub fn stages_of(snap: &perfkit::Snapshot) -> Stages {
    Stages {
        sites: snap.sites.iter().map(|s| s.record.clone()).collect(),
        folded: snap
            .stacks
            .iter()
            .filter(|s| s.self_ns > 0)
            .map(|s| Folded {
                stack: s.stack.clone(),
                self_ns: s.self_ns,
            })
            .collect(),
        probe_ns_per_scope: None,
    }
}

/// What a JSON file given to `perfkit report` holds.
#[derive(Debug)]
pub enum Loaded {
    /// A results file (`perfkit run`), boxed: it is much the larger.
    Results(Box<Results>),
    /// A snapshot file (`perfkit::snapshot().to_json()`).
    Snapshot(perfkit::Snapshot),
}

/// Reads a results file or a perfkit snapshot file, telling them apart by
/// their top-level keys: a results file has `schema_version`, a snapshot
/// `sites` and `stacks` and no `schema_version`.
pub fn load_any(path: impl AsRef<Path>) -> Result<Loaded, Error> {
    let path = path.as_ref();
    let text = read(path)?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| parse_error(path, e))?;
    let is_snapshot = value.get("schema_version").is_none()
        && value.get("sites").is_some_and(|v| v.is_array())
        && value.get("stacks").is_some_and(|v| v.is_array());
    if is_snapshot {
        let snap = perfkit::Snapshot::from_json(&text)
            .map_err(|e| Error::invalid(path, format!("not a valid perfkit snapshot file: {e}")))?;
        return Ok(Loaded::Snapshot(snap));
    }
    Results::from_json(path, &text).map(|r| Loaded::Results(Box::new(r)))
}

impl Stages {
    /// The folded text inferno reads: one `stack self_ns` line per entry,
    /// each stack made safe for the format (files written before perfkit
    /// escaped its frames hold names with spaces, newlines or nothing).
    pub fn folded_text(&self) -> String {
        let mut out = String::new();
        for f in &self.folded {
            out.push_str(&perfkit::folded_stack(&f.stack));
            out.push(' ');
            out.push_str(&f.self_ns.to_string());
            out.push('\n');
        }
        out
    }
}

/// Why a results file could not be read or written.
#[derive(Debug)]
pub struct Error {
    path: PathBuf,
    kind: ErrorKind,
}

/// What went wrong with a results file.
#[derive(Debug)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The file could not be opened, read or written.
    Io(std::io::Error),
    /// Not valid JSON, truncated, or fields of the wrong type.
    Parse {
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// serde_json's description.
        message: String,
    },
    /// Written by a newer perfkit.
    NewerSchema {
        /// The file's schema_version.
        found: u32,
    },
    /// Parsed, but makes no sense (no runs, ...).
    Invalid(String),
}

impl Error {
    /// The file this error is about.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }
    /// Always 2 ([`crate::exit::BAD_INPUT`]): a results file that cannot be
    /// used is bad input.
    pub fn exit_code(&self) -> i32 {
        crate::exit::BAD_INPUT
    }
    pub(crate) fn invalid(path: &Path, what: impl Into<String>) -> Self {
        Error {
            path: path.to_owned(),
            kind: ErrorKind::Invalid(what.into()),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.path.display();
        match &self.kind {
            ErrorKind::Io(e) => write!(f, "{p}: {e}"),
            ErrorKind::Parse {
                line,
                column,
                message,
            } => write!(
                f,
                "{p}:{line}:{column}: not a valid perfkit results file: {message}"
            ),
            ErrorKind::NewerSchema { found } => write!(
                f,
                "{p}: schema_version {found} is newer than this perfkit understands \
                 ({SCHEMA_VERSION}); upgrade perfkit to read it"
            ),
            ErrorKind::Invalid(what) => write!(f, "{p}: {what}"),
        }
    }
}

// No `source`: the message already includes the OS error, and a chain
// printer (`{:#}`) would print it twice.
impl std::error::Error for Error {}

impl Results {
    /// A results document with no runs yet.
    pub fn new(meta: Meta) -> Self {
        Results {
            schema_version: SCHEMA_VERSION,
            meta,
            runs: Vec::new(),
        }
    }

    /// Reads and checks a results file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        Self::from_json(path, &read(path)?)
    }

    /// Parses results from text; `path` is used in messages only.
    pub fn from_json(path: &Path, text: &str) -> Result<Self, Error> {
        let parse_err = |e| parse_error(path, e);
        // Look at the version before the shape, so a newer file gets the
        // "upgrade" message rather than a confusing field error.
        let value: serde_json::Value = serde_json::from_str(text).map_err(parse_err)?;
        match value.get("schema_version").and_then(|v| v.as_u64()) {
            None => {
                return Err(Error::invalid(
                    path,
                    "no schema_version: not a perfkit results file",
                ))
            }
            Some(v) if v > SCHEMA_VERSION as u64 => {
                return Err(Error {
                    path: path.to_owned(),
                    kind: ErrorKind::NewerSchema {
                        found: v.min(u32::MAX as u64) as u32,
                    },
                })
            }
            Some(_) => {}
        }
        let results: Results = serde_json::from_str(text).map_err(parse_err)?;
        results.validate(path)?;
        Ok(results)
    }

    fn validate(&self, path: &Path) -> Result<(), Error> {
        // Runs of one configuration id are one configuration: perfkit writes
        // them so (and `--append` refuses to mix), and every reader groups
        // by the id.
        let mut first_of: BTreeMap<usize, usize> = BTreeMap::new();
        for (i, r) in self.runs.iter().enumerate() {
            let j = *first_of.entry(r.config_id).or_insert(i);
            if self.runs[j].config != r.config {
                return Err(Error::invalid(
                    path,
                    format!(
                        "runs[{i}] and runs[{j}] have config_id {} but different configurations",
                        r.config_id
                    ),
                ));
            }
        }
        for (i, r) in self.runs.iter().enumerate() {
            for (what, x) in [
                ("tx.seconds", r.tx.seconds),
                ("rx.seconds", r.rx.seconds),
                ("tx.bps", r.tx.bps),
                ("rx.bps", r.rx.bps),
                ("tx.pps", r.tx.pps),
                ("rx.pps", r.rx.pps),
            ] {
                if !x.is_finite() || x < 0.0 {
                    return Err(Error::invalid(
                        path,
                        format!("runs[{i}].{what} is {x}: must be a finite number >= 0"),
                    ));
                }
            }
            if let Some(u) = r.link.utilisation {
                if !u.is_finite() || u < 0.0 {
                    return Err(Error::invalid(
                        path,
                        format!("runs[{i}].link.utilisation is {u}: must be a finite number >= 0"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain data to a String cannot fail.
        serde_json::to_string_pretty(self).expect("results serialise")
    }

    /// Writes the file atomically: a temporary file in the same folder, then
    /// rename, so readers see the old or the new file, never half of one.
    pub fn write_atomic(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        write_atomic(path.as_ref(), self.to_json().as_bytes())
    }
}

/// How the temporary files [`write_atomic`] creates begin. One left behind
/// (the process was killed between create and rename) holds nothing a
/// reader needs; [`remove_stale_temporaries`] clears them.
pub const TEMP_PREFIX: &str = ".perfkit-tmp";

/// Removes the temporary files an interrupted [`write_atomic`] left in
/// `dir`; returns how many. Call it only while no other writer uses `dir`.
pub fn remove_stale_temporaries(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) && e.file_type()?.is_file() {
            std::fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Writes `bytes` to `path` atomically (temporary file beside it, fsync,
/// rename) when `path` is a regular file or nothing yet. A symbolic link,
/// device or FIFO (`/dev/null`) is written through, never replaced, and
/// `/dev/stdout` is this process's stdout; a folder is an error (see
/// [`crate::files::Target`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let target = crate::files::Target::of(path).map_err(|e| Error {
        path: path.to_owned(),
        kind: ErrorKind::Io(e),
    })?;
    write_to(path, &target, bytes)
}

/// [`write_atomic`] to `path` as `target`, what [`crate::files::Target::of`]
/// said of it, without asking again: for a caller that acted on the answer
/// (`perfkit recv` lets a signal end a write into a FIFO), so the write is
/// the one it prepared for, whatever has come to `path` since.
pub fn write_to(path: &Path, target: &crate::files::Target, bytes: &[u8]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error {
        path: path.to_owned(),
        kind: ErrorKind::Io(e),
    };
    if !matches!(target, crate::files::Target::Replace(_)) {
        return target.write_directly(bytes).map_err(io);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .map_err(io)?;
    // Temporary files are created owner-only; results and reports are
    // ordinary files that CI artifacts and colleagues need to read. A file
    // being replaced keeps the mode it had (a private one stays private).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
    }
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_says_how_the_runs_were_made() {
        let mut p = Plan {
            runs: 1,
            warmup: 0,
            order: "rounds".into(),
            set: vec![],
        };
        assert_eq!(p.phrase(), "1 run per configuration, in rounds");
        p.runs = 6;
        p.warmup = 2;
        p.order = "configs".into();
        p.set = vec!["a=1".into(), "b=[1,2]".into()];
        assert_eq!(
            p.phrase(),
            "6 runs per configuration, configuration by configuration, after 2 warm-up runs; \
             --set a=1; --set b=[1,2]"
        );
    }

    fn sample() -> Results {
        let mut r = Results::new(Meta {
            perfkit_version: "0.1.0".into(),
            git_commit: None,
            host: "h".into(),
            host_fingerprint: None,
            compiler: None,
            date: "2026-11-21T00:00:00Z".into(),
            scenario: ScenarioRef {
                name: "s".into(),
                path: "s.toml".into(),
                sha256: "00".into(),
                description: String::new(),
                kind: "transfer".into(),
                expect: None,
            },
            swept: vec![],
            gate: BTreeMap::new(),
            sentinels: BTreeMap::new(),
            plans: Vec::new(),
        });
        r.runs.push(RunRecord {
            config_id: 0,
            repeat: 0,
            started_unix_s: Some(1_790_000_000.25),
            config: BTreeMap::new(),
            time_base: TimeBase::Virtual,
            tx: Side::new(72.0, 2780, 138840),
            rx: Side::new(75.0, 695, 34710),
            integrity: Integrity::default(),
            link: LinkStats::default(),
            stages: Stages::default(),
            device_stages: None,
            device_model: None,
            metrics: BTreeMap::new(),
            hosts: Default::default(),
            error: None,
        });
        r
    }

    #[test]
    fn round_trip_and_stats_line() {
        let r = sample();
        let back = Results::from_json(Path::new("x.json"), &r.to_json()).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            r.runs[0].tx.stats_line(),
            "T:72 blk:2780 by:138840 PPS:38 BPS:1928"
        );
        assert_eq!(
            r.runs[0].rx.stats_line(),
            "T:75 blk:695 by:34710 PPS:9 BPS:462"
        );
    }

    #[test]
    fn truncated_file_names_file_line_and_column() {
        let text = sample().to_json();
        let cut = &text[..text.len() / 2];
        let e = Results::from_json(Path::new("cut.json"), cut).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("cut.json:"), "{msg}");
        assert!(matches!(e.kind(), ErrorKind::Parse { .. }));
    }

    #[test]
    fn newer_schema_is_refused_with_advice() {
        let text = sample().to_json().replacen(
            &format!("\"schema_version\": {SCHEMA_VERSION}"),
            "\"schema_version\": 99",
            1,
        );
        let e = Results::from_json(Path::new("new.json"), &text).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::NewerSchema { found: 99 }));
        assert!(e.to_string().contains("upgrade perfkit"));
    }

    #[test]
    fn hand_edited_negative_rate_is_rejected() {
        let text = sample()
            .to_json()
            .replacen("\"pps\": 38.6", "\"pps\": -1.0", 1);
        let e = Results::from_json(Path::new("e.json"), &text).unwrap_err();
        assert!(e.to_string().contains("runs[0].tx.pps"), "{e}");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/results.json");
        let r = sample();
        r.write_atomic(&p).unwrap();
        r.write_atomic(&p).unwrap();
        assert_eq!(Results::load(&p).unwrap(), r);
        let leftovers = std::fs::read_dir(p.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary files left behind");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o644, "readable by others, like any report");
            // A private file stays private when replaced.
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            r.write_atomic(&p).unwrap();
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    #[test]
    fn atomic_write_keeps_links_and_special_files() {
        use std::io::Read;
        use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
        let dir = tempfile::tempdir().unwrap();
        // A link stays a link; its target gets the bytes.
        let real = dir.path().join("kept/real.json");
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink("kept/real.json", &link).unwrap();
        write_atomic(&link, b"one").unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
        assert_eq!(std::fs::read(&real).unwrap(), b"one");
        // A FIFO stays a FIFO; its reader gets the bytes.
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        write_atomic(&fifo, b"two").unwrap();
        assert!(std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo());
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"two");
        // A folder is refused, and nothing is left in it.
        let e = write_atomic(dir.path(), b"three").unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn a_write_to_a_target_goes_as_the_look_found_it() {
        use crate::files::Target;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        let target = Target::of(&p).unwrap();
        assert_eq!(target, Target::Replace(p.clone()));
        // A FIFO nobody reads comes after the look: it is replaced, not
        // waited on.
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path and a mode.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        write_to(&p, &target, b"bytes").unwrap();
        assert!(std::fs::symlink_metadata(&p).unwrap().is_file());
        assert_eq!(std::fs::read(&p).unwrap(), b"bytes");
    }
}
