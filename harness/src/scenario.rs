//! Scenario files: TOML in, validated configurations out.
//!
//! Every parameter lives in one table ([`PARAMS`]): its flat name (the key a
//! results file and `--set` use), the TOML section it is written in, its type,
//! range and default. Loading walks the parsed document with spans, so every
//! error names the file, line, column and key. A `[sweep]` table gives a list
//! of values for any parameter; the configurations are the cartesian product
//! of those lists, in the order the sweep keys are written.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use std::sync::LazyLock;

use perfkit_link::registry::ParamType;
use perfkit_report::files::{self, Accept};
use serde_json::Value;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::integrity::sha256_hex;

/// The scenario kinds.
pub const KINDS: &[&str] = &["transfer", "heaps", "pico"];

/// What a parameter holds.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    /// Integer in `min..=max`.
    Int(i64, i64),
    /// Float in `min..=max`.
    Float(f64, f64),
    /// One of these strings.
    Choice(&'static [&'static str]),
    /// Any string (paths, names).
    Str,
    /// A list of strings (a command line).
    StrList,
    /// true / false.
    Bool,
}

/// One scenario parameter.
#[derive(Debug)]
pub struct Param {
    /// Flat name: the key in `[sweep]`, `--set` and a run record's `config`.
    pub name: &'static str,
    /// TOML section it is written in (`""` for the top level).
    pub section: &'static str,
    /// Key inside the section.
    pub key: &'static str,
    /// Type and range.
    pub ty: Ty,
    /// Value when the scenario does not give one (`Null` = unset).
    pub default: Value,
    /// One line of help.
    pub help: &'static str,
    /// A value that means "off" rather than an amount, and what it means
    /// (`throttle_pps` 0: unthrottled). Runs record it for swept parameters
    /// (`meta.sentinels`), so reports show it as a labelled category instead
    /// of a point on the scale.
    pub sentinel: Option<(f64, &'static str)>,
}

macro_rules! p {
    ($name:literal, $section:literal, $key:literal, $ty:expr, $default:tt, $help:literal) => {
        p!($name, $section, $key, $ty, $default, $help, None)
    };
    ($name:literal, $section:literal, $key:literal, $ty:expr, $default:tt, $help:literal, off = $off:literal => $means:literal) => {
        p!(
            $name,
            $section,
            $key,
            $ty,
            $default,
            $help,
            Some(($off as f64, $means))
        )
    };
    ($name:literal, $section:literal, $key:literal, $ty:expr, $default:tt, $help:literal, $sentinel:expr) => {
        Param {
            name: $name,
            section: $section,
            key: $key,
            ty: $ty,
            default: serde_json::json!($default),
            help: $help,
            sentinel: $sentinel,
        }
    };
}

const MAX_INT: i64 = i64::MAX;

/// Every parameter a scenario can set, sweep or `--set`: the table below,
/// then each byte-stream link kind's own ([`perfkit_link::LINK_KINDS`]).
pub static PARAMS: LazyLock<Vec<Param>> =
    LazyLock::new(|| with_device_stages(with_link_kinds(core_params())));

/// The link kinds this module runs itself; byte-stream kinds come from the link crate.
const BUILTIN_LINKS: &[&str] = &["loopback", "pipe", "uart"];

#[rustfmt::skip]
fn core_params() -> Vec<Param> { vec![
    // link
    p!("link", "link", "kind", Ty::Choice(BUILTIN_LINKS), "loopback",
       "link kind: loopback (in process), pipe (two processes), uart (emulated, virtual time)"),
    p!("mtu", "link", "mtu", Ty::Int(8, 65536), 256, "loopback: largest packet the link carries, bytes"),
    p!("baud", "link", "baud", Ty::Int(300, 16_000_000), 115200, "uart/serial: line rate, bits per second"),
    p!("bits_per_char", "link", "bits_per_char", Ty::Int(7, 13), 10, "uart: bits on the wire per byte (8N1 = 10)"),
    p!("rx_buffer", "link", "rx_buffer", Ty::Int(1, 1 << 24), null, "uart: receiving device's buffer, bytes, lost when full (default: the profile's)"),
    p!("tx_buffer", "link", "tx_buffer", Ty::Int(0, 1 << 24), null, "uart: sending device's buffer, bytes, 0 = a write blocks until sent (default: the profile's)"),
    p!("profile", "link", "profile", Ty::Str, "host", "uart: device cost profile for both ends (name in fixtures/profiles/ or a path)"),
    p!("tx_profile", "link", "tx_profile", Ty::Str, null, "uart: cost profile of the sending device (overrides profile)"),
    p!("rx_profile", "link", "rx_profile", Ty::Str, null, "uart: cost profile of the receiving device (overrides profile)"),
    p!("device", "link", "device", Ty::Str, null, "serial: the sender's serial device (a pty pair is made when unset)"),
    p!("sender_cmd", "link", "sender_cmd", Ty::StrList, null,
       "pipe: an external sender (argv) writing the wire profile to stdout; \"perfkit\" = the built-in one"),
    p!("receiver_cmd", "link", "receiver_cmd", Ty::StrList, null,
       "pipe: an external receiver (argv) reading the wire profile from stdin; \"perfkit\" = the built-in one"),
    p!("chunk", "link", "chunk", Ty::Int(1, 1 << 24), 65536, "pipe/serial/tcp: largest read, bytes"),
    // transfer
    p!("block_size", "transfer", "block_size", Ty::Int(1, 249), 50, "payload bytes per data message (1..=249)"),
    p!("start_meta", "transfer", "start_meta", Ty::Int(0, 65535), 8, "META messages sent on the first ticks"),
    p!("meta_every", "transfer", "meta_every", Ty::Int(0, 65535), 50, "a META every N ticks after that (0 = none after the first start_meta)"),
    p!("repeats", "transfer", "repeats", Ty::Int(0, 255), 3, "extra copies of every block"),
    p!("throttle_pps", "transfer", "throttle_pps", Ty::Float(0.0, 1e9), 0, "sender limit, packets per second (0 = unthrottled)", off = 0 => "unthrottled"),
    p!("framing", "transfer", "framing", Ty::Choice(&["dttk", "cobs"]), "dttk", "byte-stream framing: dttk (0xFF/0xFE stuffing) or cobs"),
    p!("channel", "transfer", "channel", Ty::Int(0, 127), 0, "data channel (0..127)"),
    p!("slowdown_ns_per_packet", "transfer", "slowdown_ns_per_packet", Ty::Int(0, 1_000_000_000), 0,
       "deliberate busy-wait per sent packet, to test the regression gate"),
    p!("extra_work_per_packet", "transfer", "extra_work_per_packet", Ty::Int(0, 1_000_000), 0,
       "test knob: rounds of deliberate counted work per data message in sender::read_block, to test the exact instruction-count gate"),
    p!("measure", "transfer", "measure", Ty::Choice(&["wall", "instructions"]), "wall",
       "wall: time the stages; instructions: run each configuration under valgrind's callgrind and count instructions per stage (metrics.instr.*, exact)"),
    p!("input_size", "transfer", "input_size", Ty::Int(0, 16_318_463), 0,
       "generate a seeded pseudo-random input of this many bytes instead of reading `input` (0 = use `input`)", off = 0 => "the input file"),
    p!("compare_cat", "transfer", "compare_cat", Ty::Bool, false,
       "pipe: also time the same bytes through `cat` over a real pipe, the fastest of 3, timed from the first bytes to the last as the receiver is, as a yardstick (metrics.cat_mb_s), and take the two cats' CPU time (metrics.cat_cpu_seconds, and metrics.cpu_vs_cat against both perfkit ends')"),
    p!("compare_iperf3", "transfer", "compare_iperf3", Ty::Bool, false,
       "tcp/udp links, here or to a netns host: also measure iperf3's TCP throughput over the same path, as a yardstick (metrics.iperf3_mb_s)"),
    p!("latency", "transfer", "latency", Ty::Bool, false,
       "tcp/udp links: each block's one-way delay, sender's write to receiver's read (metrics.one_way_delay_*_us; across hosts, less the clocks' measured offset); costs a second deframing"),
    p!("mux_transfers", "transfer", "mux_transfers", Ty::Int(1, 4), 1,
       "uart: this many transfers of the input at once over the one link, on channels `channel`, `channel`+1, ..., multiplexed message by message"),
    p!("stages", "transfer", "stages", Ty::Bool, true,
       "record perfkit's stage table; false switches recording off at run time (in both processes of a pipe), so throughput is measured without the probe's cost"),
    p!("hash_thread", "transfer", "hash_thread", Ty::Bool, true,
       "the receiving host hashes the file on a second thread as it arrives, where the machine has a second core (not under measure = \"instructions\", whose counts must repeat); false hashes on the receiving thread"),
    p!("timeout_s", "transfer", "timeout_s", Ty::Float(0.001, 86400.0), 60.0, "give up a run after this many (real or virtual) seconds"),
    // faults
    p!("seed", "faults", "seed", Ty::Int(0, MAX_INT), 1, "seed of the fault injector"),
    p!("bit_error_rate", "faults", "bit_error_rate", Ty::Float(0.0, 1.0), 0.0, "probability that a bit is flipped"),
    p!("byte_drop", "faults", "byte_drop", Ty::Float(0.0, 1.0), 0.0, "probability that a byte is dropped"),
    p!("byte_dup", "faults", "byte_dup", Ty::Float(0.0, 1.0), 0.0, "probability that a byte is duplicated"),
    p!("packet_loss", "faults", "packet_loss", Ty::Float(0.0, 1.0), 0.0, "probability that a packet is lost (packet links)"),
    p!("packet_dup", "faults", "packet_dup", Ty::Float(0.0, 1.0), 0.0, "probability that a packet is duplicated (packet links)"),
    p!("reorder", "faults", "reorder", Ty::Float(0.0, 1.0), 0.0, "probability that a packet is held back and reordered (packet links)"),
    // heaps
    p!("heap_size", "heaps", "heap_size", Ty::Int(1, 1 << 30), 65536, "bytes of payload per heap"),
    p!("packet_size", "heaps", "packet_size", Ty::Int(64, 65507), 9000, "largest UDP payload"),
    p!("mode", "heaps", "mode", Ty::Choice(&["heap", "batch", "batch+gso"]), "batch", "one heap per call, a batch per call, or a batch with UDP GSO"),
    p!("implementation", "heaps", "implementation", Ty::Choice(&["perfkit", "spead2"]), "perfkit", "which sender"),
    p!("receiver_implementation", "heaps", "receiver", Ty::Choice(&["perfkit", "spead2"]), "perfkit",
       "which receiver: perfkit's, or spead2's (its Python receiver, each heap checked against the pattern)"),
    p!("volume_mb", "heaps", "volume_mb", Ty::Float(0.001, 1e6), 256.0, "payload to move per run, MiB"),
    p!("time_cap_s", "heaps", "time_cap_s", Ty::Float(0.01, 3600.0), 5.0, "stop a run after this many seconds"),
    p!("rate_mb_s", "heaps", "rate_mb_s", Ty::Float(0.0, 1e6), 0.0, "sender rate limit, MiB/s (0 = unlimited)", off = 0 => "unlimited"),
    p!("receiver_nice", "heaps", "receiver_nice", Ty::Int(-20, 19), null,
       "the receiving end's scheduling priority for the run, a nice value (lower runs first), wherever it runs; below the current one needs CAP_SYS_NICE, and whether it was in effect is recorded (link.counters.rx_nice_set); unset = as started"),
    p!("receiver_cpu", "heaps", "receiver_cpu", Ty::Int(0, 1023), null,
       "the one CPU the receiving end runs on for the run, wherever it runs; with both ends here the sender keeps to the other CPUs, so the receiver has its CPU to itself; whether it held is recorded (link.counters.rx_cpu_set, tx_cpu_set); unset = wherever the scheduler puts each end"),
    p!("receiver_buffer_mb", "heaps", "receiver_buffer_mb", Ty::Int(1, 1024), null,
       "the receiving socket's buffer (SO_RCVBUF, forced past rmem_max as root; Linux grants twice it), MiB, for either receiver, wherever it runs: what holds datagrams while the receiver is off its core or behind its sender; the size granted is recorded (link.counters.rx_rcvbuf); unset = 64 MiB"),
    // pico
    p!("target", "pico", "target", Ty::Choice(&["emulator", "hardware"]), "emulator", "where the firmware runs"),
    p!("role", "pico", "role", Ty::Choice(&["sender", "receiver"]), "sender", "the device's role; the host takes the other"),
    p!("elf", "pico", "elf", Ty::Str, null, "firmware ELF (default: the one scripts/setup.d builds)"),
    p!("probe", "pico", "probe", Ty::Str, null, "hardware: probe selector (VID:PID[:serial])"),
    // hosts
    p!("sender_host", "hosts", "sender", Ty::Str, "local",
       "where the sending end runs: local, agent://HOST:PORT (a `perfkit agent`), or netns (an agent in a network namespace this run makes; root); tcp and udp links"),
    p!("receiver_host", "hosts", "receiver", Ty::Str, "local",
       "where the receiving end runs: local, agent://HOST:PORT or netns"),
    p!("agent_token_file", "hosts", "token_file", Ty::Str, null,
       "file holding the agent's shared token (default: the PERFKIT_AGENT_TOKEN environment variable)"),
    p!("netns_rate_mbit", "hosts", "rate_mbit", Ty::Float(0.0, 1e6), 0.0,
       "netns hosts: shape the veth pair to this rate with tbf, Mbit/s (0 = unshaped)", off = 0 => "unshaped"),
    p!("netns_mtu", "hosts", "mtu", Ty::Int(576, 65535), 1500,
       "netns hosts: the veth pair's MTU, bytes (1500 = Ethernet; 9000 = jumbo frames, as 10 GbE instrument links use)"),
]}

/// Adds the byte-stream link kinds: each kind's name to `link`'s choices and
/// its parameters to the table. A parameter another kind already declared
/// is kept once (the kinds agree on its type; a test checks).
fn with_link_kinds(mut params: Vec<Param>) -> Vec<Param> {
    // Built once per process, so the composed strings live as long as the table.
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let kinds = perfkit_link::LINK_KINDS;
    if let Some(link) = params.iter_mut().find(|p| p.name == "link") {
        let names: Vec<&'static str> = BUILTIN_LINKS
            .iter()
            .copied()
            .chain(kinds.iter().map(|k| k.name))
            .collect();
        link.ty = Ty::Choice(Box::leak(names.into_boxed_slice()));
        let mut help = link.help.to_owned();
        for k in kinds {
            help.push_str(&format!(", {} ({})", k.name, k.help));
        }
        link.help = leak(help);
    }
    for k in kinds {
        for lp in k.params {
            if params.iter().any(|p| p.name == lp.key) {
                continue;
            }
            params.push(Param {
                name: lp.key,
                section: "link",
                key: lp.key,
                ty: link_ty(lp.ty),
                default: lp.default.value(),
                help: leak(format!("{}: {}", k.name, lp.help)),
                sentinel: None,
            });
        }
    }
    params
}

/// Adds the device model's parameters (uart links): every stage's cost on
/// either side (`device.send.crc16.per_call_us`), a stage both sides have
/// on both at once (`device.crc16.per_byte_us`), a side's scale factor
/// (`device.receive.scale`), the spread's seed and the receiver's poll
/// interval. All unset by default: the profile's figures.
fn with_device_stages(mut params: Vec<Param>) -> Vec<Param> {
    use perfkit_link::stages::Side;
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut add = |key: String, ty: Ty, help: String| {
        params.push(Param {
            name: leak(format!("device.{key}")),
            section: "device",
            key: leak(key),
            ty,
            default: Value::Null,
            help: leak(help),
            sentinel: None,
        })
    };
    let fields = [
        ("per_call_us", "fixed cost per call, us"),
        ("per_byte_us", "cost per byte, us"),
        ("scale", "multiplies the profile's figures"),
    ];
    let (send, receive) = (Side::Send.stages(), Side::Receive.stages());
    for side in [Side::Send, Side::Receive] {
        for stage in side.stages() {
            for (f, what) in fields {
                add(
                    format!("{}.{stage}.{f}", side.name()),
                    Ty::Float(0.0, 1e9),
                    format!("uart: the {} device's `{stage}` stage: {what}", side.name()),
                );
            }
        }
    }
    for stage in send.iter().filter(|s| receive.contains(s)) {
        for (f, what) in fields {
            add(
                format!("{stage}.{f}"),
                Ty::Float(0.0, 1e9),
                format!("uart: `{stage}` on both devices: {what}"),
            );
        }
    }
    add(
        "scale".into(),
        Ty::Float(0.0, 1e9),
        "uart: multiplies every stage cost of both devices".into(),
    );
    for side in [Side::Send, Side::Receive] {
        add(
            format!("{}.scale", side.name()),
            Ty::Float(0.0, 1e9),
            format!(
                "uart: multiplies every stage cost of the {} device",
                side.name()
            ),
        );
    }
    add(
        "send.write_chunk".into(),
        Ty::Int(0, 65536),
        "uart: the sending device writes each frame in calls of at most this many bytes, each charged its `uart_write` stage (0 = one call per frame)".into(),
    );
    add(
        "spread_seed".into(),
        Ty::Int(0, MAX_INT),
        "uart: draw each stage call's fixed cost from its profile's min..max with this seed (0 = every call costs its mean)".into(),
    );
    add(
        "receive.poll_interval_us".into(),
        Ty::Float(0.0, 1e9),
        "uart: the receiving device looks at its buffer only every this many us when idle (0 = as soon as a byte arrives, as an interrupt or callback would)".into(),
    );
    params
}

/// Names of the parameters declared here, before the link kinds' are added.
fn core_param_names() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| core_params().iter().map(|p| p.name).collect());
    &NAMES
}

fn link_ty(t: ParamType) -> Ty {
    match t {
        ParamType::Int(lo, hi) => Ty::Int(lo, hi),
        ParamType::Float(lo, hi) => Ty::Float(lo, hi),
        ParamType::Str => Ty::Str,
        ParamType::Bool => Ty::Bool,
    }
}

/// Top-level keys that are not parameters.
const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "kind",
    "runs",
    "warmup",
    "order",
    "input",
    "expect",
    "sweep",
    "gate",
    "record",
];

/// Most runs of a configuration in one `perfkit run`.
pub const MAX_RUNS: u32 = 10_000;
/// Most warm-up runs a scenario or `--warmup` may ask for.
pub const MAX_WARMUP: u32 = 10_000;

/// Most configurations a sweep may expand to.
const MAX_CONFIGS: usize = 100_000;
const SECTIONS: &[&str] = &[
    "link", "transfer", "faults", "heaps", "pico", "hosts", "device",
];

/// Looks a parameter up by flat name.
pub fn param(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

/// In what order `perfkit run` makes the runs of a scenario's
/// configurations (`order` in the file, `--order` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Order {
    /// Rounds of one run of every configuration. A machine's slow spell
    /// (a shared host's, seconds long) then falls on every configuration
    /// alike, so that comparisons between them hold: one configuration as
    /// another's same-run baseline, one implementation against another.
    #[default]
    Rounds,
    /// Every run of one configuration, then every run of the next.
    Configs,
}

impl Order {
    /// The order named `name`, by the names `--order` takes, or an error
    /// that lists them.
    pub fn from_name(name: &str) -> Result<Order, String> {
        use clap::ValueEnum;
        Order::from_str(name, false).map_err(|_| {
            let names: Vec<String> = Order::value_variants()
                .iter()
                .filter_map(|o| Some(o.to_possible_value()?.get_name().to_owned()))
                .collect();
            format!("`{name}` is not one of {}", names.join(", "))
        })
    }

    /// How a line about `configs` configurations x `runs` runs says the
    /// order: nothing when there is one of either (both orders are then
    /// the same), else `, in rounds` or `, configuration by configuration`.
    pub fn phrase(self, configs: usize, runs: u32) -> &'static str {
        match self {
            _ if configs < 2 || runs < 2 => "",
            Order::Rounds => ", in rounds",
            Order::Configs => ", configuration by configuration",
        }
    }

    /// `(configuration, run)` pairs in this order, for `first.len()`
    /// configurations whose runs go from `first[id]` to `first[id] + runs`
    /// (each below `u32::MAX - runs`: see `run::appendable`). Made as
    /// they are taken, so a sweep at the file's limits does not allocate
    /// its whole schedule first.
    pub fn schedule(self, first: &[u32], runs: u32) -> impl Iterator<Item = (usize, u32)> + '_ {
        let configs = first.len() as u64;
        let per = u64::from(runs);
        (0..configs * per).map(move |n| {
            let (id, k) = match self {
                Order::Rounds => (n % configs, n / configs),
                Order::Configs => (n / per, n % per),
            };
            (id as usize, first[id as usize] + k as u32)
        })
    }
}

/// A loaded, validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File it came from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, lowercase hex.
    pub sha256: String,
    /// `name`, or the file stem.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `transfer`, `heaps` or `pico`.
    pub kind: String,
    /// Measured runs per configuration.
    pub runs: u32,
    /// Unrecorded warm-up runs before the first configuration.
    pub warmup: u32,
    /// `order`: in what order the runs of the configurations are made.
    pub order: Order,
    /// Input file (transfer and pico kinds), resolved.
    pub input: PathBuf,
    /// Every parameter's single value (defaults filled in).
    pub base: BTreeMap<String, Value>,
    /// Swept parameters in file order, each with its values.
    pub sweep: Vec<(String, Vec<Value>)>,
    /// `[gate]` thresholds, metric -> percent.
    pub gate: BTreeMap<String, f64>,
    /// `record = true`: every run is stored in the results history, as
    /// with `perfkit run --record`.
    pub record: bool,
    /// `expect = "loss"`: the scenario shows data being lost, so a failed
    /// integrity check is its expected outcome rather than exit 4.
    pub expect_loss: bool,
    /// Parameters (flat names) whose value came from `--set`: an error about
    /// one names the flag, not the file's line for that key.
    pub set_by_flag: Vec<String>,
}

/// Why a scenario could not be loaded.
#[derive(Debug)]
pub struct ScenarioError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line and column, when known.
    pub at: Option<(usize, usize)>,
    /// The key concerned, when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some((l, c)) = self.at {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": ")?;
        if let Some(k) = &self.key {
            write!(f, "key `{k}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Option<Range<usize>>,
        key: Option<&str>,
        msg: impl Into<String>,
    ) -> ScenarioError {
        // Without a span (a check across keys), the line that sets the key.
        let at = span
            .map(|s| line_col(self.text, s.start))
            .or_else(|| key.and_then(|k| key_position(self.text, k)));
        ScenarioError {
            path: self.path.to_owned(),
            at,
            key: key.map(str::to_owned),
            message: msg.into(),
        }
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Converts one TOML value to the parameter's JSON value, checking type and range.
fn convert(p: &Param, v: &DeValue<'_>) -> Result<Value, String> {
    let want = describe(&p.ty);
    let got = v.type_str();
    match p.ty {
        Ty::Int(lo, hi) => {
            let int = v
                .as_integer()
                .ok_or_else(|| format!("expected {want}, found {got}"))?;
            // Beyond i64: out of any range a parameter has.
            let i = i64::from_str_radix(int.as_str(), int.radix())
                .map_err(|_| format!("{} is out of range: expected {want}", int.as_str()))?;
            if i < lo || i > hi {
                return Err(format!("{i} is out of range: expected {want}"));
            }
            Ok(Value::from(i))
        }
        Ty::Float(lo, hi) => {
            let x = if let Some(i) = v.as_integer() {
                Some(
                    i64::from_str_radix(i.as_str(), i.radix())
                        .map_err(|_| format!("{} is out of range: expected {want}", i.as_str()))?
                        as f64,
                )
            } else {
                v.as_float()
                    .and_then(|f| f.as_str().replace('_', "").parse::<f64>().ok())
            }
            .ok_or_else(|| format!("expected {want}, found {got}"))?;
            if !x.is_finite() || x < lo || x > hi {
                return Err(format!("{x} is out of range: expected {want}"));
            }
            Ok(serde_json::json!(x))
        }
        Ty::Choice(choices) => {
            let s = v
                .as_str()
                .ok_or_else(|| format!("expected {want}, found {got}"))?;
            if !choices.contains(&s) {
                return Err(format!("`{s}` is not one of {}", choices.join(", ")));
            }
            Ok(Value::from(s))
        }
        Ty::Str => v
            .as_str()
            .map(Value::from)
            .ok_or_else(|| format!("expected {want}, found {got}")),
        Ty::Bool => v
            .as_bool()
            .map(Value::from)
            .ok_or_else(|| format!("expected {want}, found {got}")),
        Ty::StrList => {
            // "perfkit" names the built-in end, so a sweep can compare an
            // external program with perfkit's own: ["perfkit", ["my-rx", "{output}"]].
            if v.as_str() == Some("perfkit") {
                return Ok(Value::from("perfkit"));
            }
            let arr = v
                .as_array()
                .ok_or_else(|| format!("expected {want} or \"perfkit\", found {got}"))?;
            let mut out = Vec::new();
            for item in arr.iter() {
                let s = item.get_ref().as_str().ok_or_else(|| {
                    format!(
                        "expected {want}, found an array holding {}",
                        item.get_ref().type_str()
                    )
                })?;
                out.push(Value::from(s));
            }
            if out.is_empty() {
                return Err("expected a non-empty command (array of strings)".into());
            }
            Ok(Value::Array(out))
        }
    }
}

/// A section's entries; with `nested`, tables inside it become dotted
/// keys (`[device.send.crc16] per_call_us` is `send.crc16.per_call_us`).
fn flatten<'a, 'i>(
    t: &'a DeTable<'i>,
    prefix: &str,
    nested: bool,
    out: &mut Vec<(String, Range<usize>, &'a Spanned<DeValue<'i>>)>,
) {
    for (k, v) in t.iter() {
        let key = format!("{prefix}{}", k.get_ref().as_ref());
        match v.get_ref().as_table() {
            Some(inner) if nested => flatten(inner, &format!("{key}."), nested, out),
            _ => out.push((key, k.span(), v)),
        }
    }
}

/// Human description of a type, for messages and the schema dump.
pub fn describe(ty: &Ty) -> String {
    match ty {
        Ty::Int(lo, hi) if *hi == MAX_INT => format!("an integer >= {lo}"),
        Ty::Int(lo, hi) => format!("an integer {lo}..={hi}"),
        Ty::Float(lo, hi) => format!("a number {lo}..={hi}"),
        Ty::Choice(c) => format!("one of {}", c.join(", ")),
        Ty::Str => "a string".into(),
        Ty::StrList => "an array of strings".into(),
        Ty::Bool => "true or false".into(),
    }
}

fn expect_table<'a, 'i>(
    ctx: &Ctx<'_>,
    key: &str,
    v: &'a Spanned<DeValue<'i>>,
) -> Result<&'a DeTable<'i>, ScenarioError> {
    v.get_ref().as_table().ok_or_else(|| {
        ctx.err(
            Some(v.span()),
            Some(key),
            format!("expected a table [{key}], found {}", v.get_ref().type_str()),
        )
    })
}

fn int_key(
    ctx: &Ctx<'_>,
    key: &str,
    v: &Spanned<DeValue<'_>>,
    lo: i64,
    hi: i64,
) -> Result<i64, ScenarioError> {
    let ty = Ty::Int(lo, hi);
    let param = Param {
        name: "",
        section: "",
        key: "",
        ty,
        default: Value::Null,
        help: "",
        sentinel: None,
    };
    convert(&param, v.get_ref())
        .map(|j| j.as_i64().unwrap_or(0))
        .map_err(|m| ctx.err(Some(v.span()), Some(key), m))
}

fn str_key(ctx: &Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>) -> Result<String, ScenarioError> {
    v.get_ref().as_str().map(str::to_owned).ok_or_else(|| {
        ctx.err(
            Some(v.span()),
            Some(key),
            format!("expected a string, found {}", v.get_ref().type_str()),
        )
    })
}

fn bool_key(ctx: &Ctx<'_>, key: &str, v: &Spanned<DeValue<'_>>) -> Result<bool, ScenarioError> {
    v.get_ref().as_bool().ok_or_else(|| {
        ctx.err(
            Some(v.span()),
            Some(key),
            format!("expected true or false, found {}", v.get_ref().type_str()),
        )
    })
}

/// A scenario name becomes a folder under reports/: non-empty, at most 100
/// characters of letters, digits, `-`, `_` and `.`, not starting with `.`
/// (so never `..`, a path or a hidden file).
fn check_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() {
        Err("must not be empty".into())
    } else if name.len() > 100 {
        Err(format!("{} characters: at most 100", name.len()))
    } else if name.starts_with('.') || !name.chars().all(ok_char) {
        Err(format!(
            "{name:?} is not a safe folder name: use letters, digits, `-`, `_` and `.`, not first"
        ))
    } else {
        Ok(())
    }
}

/// The most a scenario file may hold: shipped ones are a few KB, and a
/// wrong path (`/dev/zero`, a FIFO) must fail at once, not fill memory.
const FILE_LIMIT: u64 = 4 << 20;

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let bytes =
            files::read_limited(path, FILE_LIMIT, Accept::Regular).map_err(|e| ScenarioError {
                path: path.to_owned(),
                at: None,
                key: None,
                message: format!("cannot read scenario: {e}"),
            })?;
        let text = String::from_utf8(bytes.clone()).map_err(|e| ScenarioError {
            path: path.to_owned(),
            at: None,
            key: None,
            message: format!("not UTF-8 text: {e}"),
        })?;
        let mut s = Self::parse(path, &text)?;
        s.sha256 = sha256_hex(&bytes);
        Ok(s)
    }

    /// Parses scenario text; `path` names the file in messages and anchors `input`.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let ctx = Ctx { path, text };
        let doc = DeTable::parse(text).map_err(|e| {
            let msg = e.message().trim().to_owned();
            ctx.err(e.span(), None, format!("invalid TOML: {msg}"))
        })?;
        let doc = doc.get_ref();

        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into());
        let mut s = Scenario {
            path: path.to_owned(),
            sha256: sha256_hex(text.as_bytes()),
            name: stem,
            description: String::new(),
            kind: "transfer".into(),
            runs: 1,
            warmup: 0,
            order: Order::Rounds,
            input: PathBuf::from("fixtures/test35k.jpg"),
            base: PARAMS
                .iter()
                .map(|p| (p.name.to_owned(), p.default.clone()))
                .collect(),
            sweep: Vec::new(),
            gate: BTreeMap::new(),
            record: false,
            expect_loss: false,
            set_by_flag: Vec::new(),
        };
        let mut sweep_table = None;
        let mut named = false;

        for (k, v) in doc.iter() {
            let key = k.get_ref().as_ref();
            let kspan = Some(k.span());
            match key {
                "name" => {
                    s.name = str_key(&ctx, key, v)?;
                    named = true;
                    check_name(&s.name).map_err(|m| ctx.err(Some(v.span()), Some(key), m))?;
                }
                "expect" => {
                    s.expect_loss = match str_key(&ctx, key, v)?.as_str() {
                        "loss" => true,
                        "intact" => false,
                        other => {
                            return Err(ctx.err(
                                Some(v.span()),
                                Some(key),
                                format!("`{other}` is not one of intact, loss"),
                            ))
                        }
                    }
                }
                "description" => s.description = str_key(&ctx, key, v)?,
                "kind" => {
                    let kind = str_key(&ctx, key, v)?;
                    if !KINDS.contains(&kind.as_str()) {
                        return Err(ctx.err(
                            Some(v.span()),
                            Some(key),
                            format!("`{kind}` is not one of {}", KINDS.join(", ")),
                        ));
                    }
                    s.kind = kind;
                }
                "runs" => s.runs = int_key(&ctx, key, v, 1, MAX_RUNS as i64)? as u32,
                "warmup" => s.warmup = int_key(&ctx, key, v, 0, MAX_WARMUP as i64)? as u32,
                "order" => {
                    let name = str_key(&ctx, key, v)?;
                    s.order = Order::from_name(&name)
                        .map_err(|m| ctx.err(Some(v.span()), Some(key), m))?;
                }
                "input" => s.input = PathBuf::from(str_key(&ctx, key, v)?),
                "sweep" => sweep_table = Some(expect_table(&ctx, key, v)?),
                "record" => s.record = bool_key(&ctx, key, v)?,
                "gate" => {
                    for (gk, gv) in expect_table(&ctx, key, v)?.iter() {
                        let metric = gk.get_ref().as_ref();
                        let full = format!("gate.{metric}");
                        let p = Param {
                            name: "",
                            section: "",
                            key: "",
                            ty: Ty::Float(0.0, 1e6),
                            default: Value::Null,
                            help: "",
                            sentinel: None,
                        };
                        let pct = convert(&p, gv.get_ref()).map_err(|m| {
                            ctx.err(
                                Some(gv.span()),
                                Some(&full),
                                format!("threshold in percent: {m}"),
                            )
                        })?;
                        let pct = pct.as_f64().unwrap_or(0.0);
                        // The gate's own check, now: every gate of these
                        // results would otherwise fail on the name.
                        perfkit_report::gate::Threshold::new(metric, pct).map_err(|e| {
                            let why = match e.kind() {
                                perfkit_report::gate::GateErrorKind::BadThreshold {
                                    why, ..
                                } => why.clone(),
                                _ => e.to_string(),
                            };
                            ctx.err(Some(gk.span()), Some(&full), why)
                        })?;
                        s.gate.insert(metric.to_owned(), pct);
                    }
                }
                section if SECTIONS.contains(&section) => {
                    let mut entries = Vec::new();
                    flatten(
                        expect_table(&ctx, key, v)?,
                        "",
                        section == "device",
                        &mut entries,
                    );
                    for (pk, kspan, pv) in entries {
                        let pkey = pk.as_str();
                        let full = format!("{section}.{pkey}");
                        let p = PARAMS
                            .iter()
                            .find(|p| p.section == section && p.key == pkey)
                            .ok_or_else(|| {
                                let known: Vec<_> = PARAMS
                                    .iter()
                                    .filter(|p| p.section == section)
                                    .map(|p| p.key)
                                    .collect();
                                ctx.err(
                                    Some(kspan),
                                    Some(&full),
                                    format!("unknown key; [{section}] takes: {}", known.join(", ")),
                                )
                            })?;
                        let value = convert(p, pv.get_ref())
                            .map_err(|m| ctx.err(Some(pv.span()), Some(&full), m))?;
                        s.base.insert(p.name.to_owned(), value);
                    }
                }
                _ => {
                    let mut known: Vec<&str> = TOP_KEYS.to_vec();
                    known.extend(SECTIONS.iter().copied());
                    return Err(ctx.err(
                        kspan,
                        Some(key),
                        format!("unknown key; a scenario takes: {}", known.join(", ")),
                    ));
                }
            }
        }

        if let Some(t) = sweep_table {
            for (k, v) in t.iter() {
                let name = k.get_ref().as_ref();
                let full = format!("sweep.{name}");
                let p = param(name).ok_or_else(|| {
                    ctx.err(
                        Some(k.span()),
                        Some(&full),
                        "unknown parameter (see `perfkit params` for the list)",
                    )
                })?;
                let arr = v.get_ref().as_array().ok_or_else(|| {
                    ctx.err(
                        Some(v.span()),
                        Some(&full),
                        format!(
                            "expected an array of values to sweep, found {}",
                            v.get_ref().type_str()
                        ),
                    )
                })?;
                if arr.is_empty() {
                    return Err(ctx.err(
                        Some(v.span()),
                        Some(&full),
                        "a sweep needs at least one value",
                    ));
                }
                let mut values = Vec::new();
                for item in arr.iter() {
                    let value = convert(p, item.get_ref())
                        .map_err(|m| ctx.err(Some(item.span()), Some(&full), m))?;
                    if values.contains(&value) {
                        return Err(ctx.err(
                            Some(item.span()),
                            Some(&full),
                            format!("{value} appears twice"),
                        ));
                    }
                    values.push(value);
                }
                s.sweep.push((name.to_owned(), values));
            }
        }
        if !named {
            check_name(&s.name).map_err(|m| {
                ctx.err(
                    None,
                    Some("name"),
                    format!("the file name gives the scenario's name: {m}; add a `name` key"),
                )
            })?;
        }
        s.check_consistency(&ctx)?;
        Ok(s)
    }

    /// Checks again what loading checked across parameters, after `--set`
    /// changed some: an error about a key `--set` gave names the flag, one
    /// about a key of the file its line.
    pub fn recheck(&self) -> Result<(), ScenarioError> {
        // Every error of these checks names a key, and error_at places it.
        self.check_consistency(&Ctx {
            path: &self.path,
            text: "",
        })
        .map_err(|e| match e.key.as_deref() {
            Some(key) => self.error_at(key, e.message),
            None => e,
        })
    }

    /// The scenario file's text as it is now ("" for a built-in one).
    fn text(&self) -> String {
        files::read_text_limited(&self.path, FILE_LIMIT).unwrap_or_default()
    }

    fn check_consistency(&self, ctx: &Ctx<'_>) -> Result<(), ScenarioError> {
        let swept_or = |name: &str| -> Vec<Value> {
            self.sweep
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| vec![self.base[name].clone()])
        };
        self.check_sweep_size()
            .map_err(|m| ctx.err(None, Some("sweep"), m))?;
        // Keys that only make sense for another link kind are mistakes worth naming.
        for link in swept_or("link") {
            let link = link.as_str().unwrap_or("");
            let only = |name: &str, why: &str| {
                ctx.err(
                    None,
                    Some(&format!("link.{name}")),
                    format!("only applies to link kind `{why}`, but this scenario runs `{link}`"),
                )
            };
            for (name, why) in [("sender_cmd", "pipe"), ("receiver_cmd", "pipe")] {
                let set = !self.base[name].is_null() && self.base[name] != "perfkit";
                if set && link != why && self.kind == "transfer" {
                    return Err(only(name, why));
                }
            }
            if self.kind != "transfer" {
                continue;
            }
            if link != "uart" {
                if let Some(p) = PARAMS.iter().find(|p| {
                    p.section == "device" && swept_or(p.name).iter().any(|v| !v.is_null())
                }) {
                    return Err(ctx.err(
                        None,
                        Some(p.name),
                        format!("the device model runs on link kind `uart`, but this scenario runs `{link}`"),
                    ));
                }
            }
            // A byte-stream kind's own parameters, set away from their
            // defaults, while the run uses a kind that does not read them.
            let reads = |kind: &str, key: &str| {
                perfkit_link::link_kind(kind).is_some_and(|k| k.params.iter().any(|p| p.key == key))
            };
            for k in perfkit_link::LINK_KINDS {
                for lp in k.params {
                    let core = core_param_names().contains(&lp.key);
                    let set = swept_or(lp.key).iter().any(|v| *v != lp.default.value());
                    if !core && set && !reads(link, lp.key) {
                        return Err(only(lp.key, k.name));
                    }
                }
            }
            if let Some(k) = perfkit_link::link_kind(link) {
                k.check(&k.settings(|key| self.base.get(key)))
                    .map_err(|(key, why)| ctx.err(None, Some(&format!("link.{key}")), why))?;
            }
            let hosts = [("sender_host", "sender"), ("receiver_host", "receiver")];
            let mut remote = 0;
            for (name, key) in hosts {
                for v in swept_or(name) {
                    let h = v.as_str().unwrap_or("");
                    let at = Some(format!("hosts.{key}"));
                    match crate::spec::Host::parse(h) {
                        Err(why) => return Err(ctx.err(None, at.as_deref(), why)),
                        Ok(crate::spec::Host::Agent(_) | crate::spec::Host::Netns) => {
                            remote += 1;
                            if !perfkit_link::link_kind(link).is_some_and(|k| k.across_hosts) {
                                return Err(ctx.err(
                                    None,
                                    at.as_deref(),
                                    format!("link kind `{link}` cannot join two hosts (tcp and udp can)"),
                                ));
                            }
                        }
                        Ok(crate::spec::Host::Local) => {}
                    }
                }
            }
            if remote > 0 && hosts.iter().all(|(n, _)| self.base[*n] != "local") {
                return Err(ctx.err(
                    None,
                    Some("hosts.receiver"),
                    "one end must run here (local): perfkit joins this host to one agent",
                ));
            }
        }
        Ok(())
    }

    /// Replaces a parameter's value (and removes it from the sweep), from `--set key=value`.
    /// A list value (`--set block_size=[50,249]`) sweeps it instead.
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let (name, raw) = assignment
            .split_once('=')
            .ok_or_else(|| format!("--set {assignment}: expected KEY=VALUE"))?;
        let name = name.trim();
        let p = param(name)
            .ok_or_else(|| format!("--set {name}: unknown parameter (see `perfkit params`)"))?;
        let raw = raw.trim();
        if !self.set_by_flag.iter().any(|n| n == name) {
            self.set_by_flag.push(name.to_owned());
        }
        // Bare words are strings; anything else is a TOML value.
        let doc = format!("v = {raw}");
        let parsed = DeTable::parse(&doc);
        let value = match parsed {
            Ok(t) => t.get_ref().get("v").map(|v| v.get_ref().clone()),
            Err(_) => None,
        };
        let value = match value {
            Some(v) => v,
            None => DeValue::String(raw.to_owned().into()),
        };
        self.sweep.retain(|(n, _)| n != name);
        if let Some(arr) = value.as_array() {
            let mut values = Vec::new();
            for item in arr.iter() {
                values.push(convert(p, item.get_ref()).map_err(|m| format!("--set {name}: {m}"))?);
            }
            if values.is_empty() {
                return Err(format!("--set {name}: a sweep needs at least one value"));
            }
            if let Some(v) = values
                .iter()
                .enumerate()
                .find_map(|(i, v)| values[..i].contains(v).then_some(v))
            {
                return Err(format!("--set {name}: {v} appears twice"));
            }
            self.sweep.push((name.to_owned(), values));
            self.check_sweep_size()
                .map_err(|m| format!("--set {name}: {m}"))?;
        } else {
            let v = convert(p, &value).map_err(|m| format!("--set {name}: {m}"))?;
            self.base.insert(name.to_owned(), v);
        }
        Ok(())
    }

    /// An error about `key` (`section.key`, a top-level key, or "" for
    /// none), placed at the line that sets or sweeps it.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> ScenarioError {
        if let Some(name) = flat_name(key).filter(|n| self.set_by_flag.iter().any(|f| f == n)) {
            return ScenarioError {
                path: self.path.clone(),
                at: None,
                key: Some(key.to_owned()),
                message: format!("{} (the value given by --set {name})", message.into()),
            };
        }
        let text = self.text();
        ScenarioError {
            path: self.path.clone(),
            at: key_position(&text, key),
            key: (!key.is_empty()).then(|| key.to_owned()),
            message: message.into(),
        }
    }

    /// Refuses a sweep of more than [`MAX_CONFIGS`] configurations, counted
    /// without overflow (a product of list lengths wraps easily).
    fn check_sweep_size(&self) -> Result<(), String> {
        let count = self
            .sweep
            .iter()
            .try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()));
        match count {
            Some(n) if n <= MAX_CONFIGS => Ok(()),
            Some(n) => Err(format!(
                "{n} configurations: too many (at most {MAX_CONFIGS})"
            )),
            None => Err(format!(
                "more than {} configurations: too many (at most {MAX_CONFIGS})",
                usize::MAX
            )),
        }
    }

    /// Names of the swept parameters (more than one value), in file order.
    pub fn swept(&self) -> Vec<String> {
        self.sweep
            .iter()
            .filter(|(_, v)| v.len() > 1)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Every configuration: the cartesian product of the sweep, first key slowest.
    pub fn configs(&self) -> Vec<Config> {
        let mut out = vec![self.base.clone()];
        for (name, values) in &self.sweep {
            let mut next = Vec::with_capacity(out.len() * values.len());
            for c in &out {
                for v in values {
                    let mut c = c.clone();
                    c.insert(name.clone(), v.clone());
                    next.push(c);
                }
            }
            out = next;
        }
        out.into_iter().map(|values| Config { values }).collect()
    }
}

/// The parameter's flat name (`throttle_pps`) for a `section.key` (or a
/// flat name) in an error, if it is a parameter.
fn flat_name(key: &str) -> Option<&'static str> {
    let (section, name) = key.split_once('.').unwrap_or(("", key));
    PARAMS
        .iter()
        .find(|p| p.section == section && p.key == name)
        .or_else(|| param(key))
        .map(|p| p.name)
}

/// Line and column of the line that sets `key` (`section.key` or a
/// top-level key) in its section, or sweeps it.
fn key_position(text: &str, key: &str) -> Option<(usize, usize)> {
    if key.is_empty() {
        return None;
    }
    let (section, name) = key.split_once('.').unwrap_or(("", key));
    let flat = flat_name(key);
    let mut current = "";
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(h) = t.strip_prefix('[') {
            current = h.split(']').next().unwrap_or("").trim();
            continue;
        }
        let k = t.split('=').next().unwrap_or("").trim();
        // `[hosts]` then `receiver = ...`, a dotted `hosts.receiver = ...`
        // at the top, or the key's sweep.
        if (current == section && k == name)
            || (current.is_empty() && k == key)
            || (current == "sweep" && Some(k) == flat)
        {
            return Some((i + 1, line.len() - t.len() + 1));
        }
    }
    None
}

/// One resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Every parameter by flat name.
    pub values: BTreeMap<String, Value>,
}

impl Config {
    /// A string parameter, `None` when unset.
    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).and_then(Value::as_str)
    }
    /// The parameters a record keeps: those relevant to the kind and link, and
    /// everything that was swept or set away from its default.
    pub fn recorded(&self, kind: &str, swept: &[String]) -> BTreeMap<String, Value> {
        let link = self.str("link").unwrap_or("loopback");
        self.values
            .iter()
            .filter(|(name, v)| {
                let p = match param(name) {
                    Some(p) => p,
                    None => return true,
                };
                if swept.iter().any(|s| s == *name) {
                    return true;
                }
                if v.is_null() {
                    return false;
                }
                // How a run is observed or where its ends run, at the
                // default, is what every record before these existed did:
                // left out, so those records keep their identity.
                if QUIET_AT_DEFAULT.contains(&name.as_str()) && **v == p.default {
                    return false;
                }
                match (kind, p.section) {
                    ("transfer", "transfer") | ("transfer", "faults") => true,
                    ("transfer", "hosts") => p.key != "token_file",
                    ("transfer", "link") => relevant_link_key(link, p.key),
                    ("transfer", "device") => link == "uart",
                    ("heaps", "heaps") => true,
                    ("heaps", "hosts") => p.key != "token_file",
                    ("pico", "pico") | ("pico", "transfer") => true,
                    ("pico", "link") => matches!(p.key, "baud" | "device"),
                    _ => false,
                }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// Parameters recorded only when set away from their defaults: they say how
/// a run is observed (`latency`, `compare_iperf3`, `measure`), add a test's
/// deliberate work (`extra_work_per_packet`), or where its ends run
/// (`[hosts]`), not what is run, and records made before they existed must
/// keep matching (a gate pairs configurations by their recorded values).
const QUIET_AT_DEFAULT: &[&str] = &[
    "mux_transfers",
    "latency",
    "compare_iperf3",
    "sender_host",
    "receiver_host",
    "netns_rate_mbit",
    "netns_mtu",
    "receiver_implementation",
    "measure",
    "extra_work_per_packet",
    "stages",
    "hash_thread",
];

fn relevant_link_key(link: &str, key: &str) -> bool {
    if let Some(k) = perfkit_link::link_kind(link) {
        return key == "kind" || k.params.iter().any(|p| p.key == key);
    }
    match key {
        "kind" => true,
        "mtu" => link == "loopback",
        "baud" => link == "uart",
        "bits_per_char" | "rx_buffer" | "tx_buffer" | "profile" | "tx_profile" | "rx_profile" => {
            link == "uart"
        }
        "sender_cmd" | "receiver_cmd" => link == "pipe",
        "chunk" => link == "pipe",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_off_values_are_numbers_in_range() {
        let with: Vec<&str> = PARAMS
            .iter()
            .filter(|p| p.sentinel.is_some())
            .map(|p| p.name)
            .collect();
        assert!(with.contains(&"throttle_pps"), "{with:?}");
        for p in PARAMS.iter() {
            let Some((v, means)) = p.sentinel else {
                continue;
            };
            assert!(!means.is_empty(), "{}", p.name);
            let ok = match p.ty {
                Ty::Int(lo, hi) => v.fract() == 0.0 && (lo as f64..=hi as f64).contains(&v),
                Ty::Float(lo, hi) => (lo..=hi).contains(&v),
                _ => false,
            };
            assert!(ok, "{}: off value {v} outside {:?}", p.name, p.ty);
        }
    }

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("t.toml"), text)
    }

    /// Mutated shipped scenarios and random `--set`s: every outcome is a
    /// scenario or an error naming the file, never a panic, and a loaded one
    /// expands to its configurations within the cap.
    #[test]
    fn mutated_scenarios_and_sets_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let shipped: Vec<String> = [
            include_str!("../../scenarios/uart-sweep.toml"),
            include_str!("../../scenarios/two-hosts.toml"),
            include_str!("../../scenarios/batched-heaps.toml"),
            include_str!("../../scenarios/pipe-implementations.toml"),
        ]
        .map(str::to_owned)
        .to_vec();
        let pieces = [
            "=",
            "[",
            "]",
            "\"",
            "'",
            "\n",
            "[sweep]\n",
            "1e400",
            "-1",
            "nan",
            "inf",
            "[[x]]",
            "{a=1}",
            "\u{0}",
            "block_size = [",
            "999999999999999999999",
            "kind = \"heaps\"\n",
            "[hosts]\nreceiver = \"netns\"\n",
            "name = \"../x\"\n",
        ];
        for _ in 0..3000 {
            let mut text = shipped[rng.random_range(0..shipped.len())].clone();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..=text.len());
                let at = (0..=at)
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                match rng.random_range(0..3) {
                    0 => text.insert_str(at, pieces[rng.random_range(0..pieces.len())]),
                    1 => {
                        let end = (at + rng.random_range(0..20)).min(text.len());
                        let end = (end..=text.len())
                            .find(|&i| text.is_char_boundary(i))
                            .unwrap();
                        text.replace_range(at..end, "");
                    }
                    _ => text.insert(at, char::from(rng.random_range(0x20u8..0x7f))),
                }
            }
            let Ok(mut s) = parse(&text) else { continue };
            let names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
            for _ in 0..rng.random_range(0..3) {
                let name = names[rng.random_range(0..names.len())];
                let value = pieces[rng.random_range(0..pieces.len())];
                let _ = s.set(&format!("{name}={value}"));
            }
            if s.recheck().is_ok() {
                assert!(s.swept().len() <= s.sweep.len());
            }
        }
    }

    #[test]
    fn defaults_and_values() {
        let s =
            parse("[link]\nkind = \"uart\"\nbaud = 9600\n[transfer]\nthrottle_pps = 40\n").unwrap();
        let c = &s.configs()[0];
        assert_eq!(c.str("link"), Some("uart"));
        assert_eq!(c.values["baud"], 9600);
        assert_eq!(c.values["throttle_pps"], 40.0);
        assert_eq!(c.values["block_size"], 50);
        assert_eq!(s.configs().len(), 1);
    }

    #[test]
    fn unknown_key_names_line_column_and_key() {
        let e = parse("name = \"x\"\n[transfer]\nblok_size = 50\n").unwrap_err();
        assert_eq!(e.at, Some((3, 1)));
        assert_eq!(e.key.as_deref(), Some("transfer.blok_size"));
        let msg = e.to_string();
        assert!(
            msg.starts_with("t.toml:3:1: key `transfer.blok_size`: unknown key"),
            "{msg}"
        );
        assert!(msg.contains("block_size"), "lists the known keys: {msg}");
    }

    #[test]
    fn wrong_type_and_range() {
        let e = parse("[transfer]\nblock_size = \"fifty\"\n").unwrap_err();
        assert_eq!(e.at, Some((2, 14)));
        assert!(
            e.to_string()
                .contains("expected an integer 1..=249, found string"),
            "{e}"
        );
        let e = parse("[transfer]\nblock_size = 250\n").unwrap_err();
        assert!(e.to_string().contains("250 is out of range"), "{e}");
        let e = parse("[link]\nkind = \"carrier-pigeon\"\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("not one of loopback, pipe, uart, serial"),
            "{e}"
        );
    }

    #[test]
    fn order_is_rounds_unless_the_file_says_configs() {
        assert_eq!(parse("name = \"x\"\n").unwrap().order, Order::Rounds);
        let s = parse("name = \"x\"\norder = \"configs\"\n").unwrap();
        assert_eq!(s.order, Order::Configs);
        let e = parse("name = \"x\"\norder = \"shuffled\"\n").unwrap_err();
        assert_eq!(e.at, Some((2, 9)));
        assert_eq!(e.key.as_deref(), Some("order"));
        assert!(
            e.to_string()
                .contains("`shuffled` is not one of rounds, configs"),
            "{e}"
        );
        let e = parse("order = 2\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("order"));
    }

    #[test]
    fn rounds_take_one_run_of_every_configuration_in_turn() {
        // Three configurations, two runs each; the second configuration's
        // runs continue after two already recorded (`--append`).
        let first = [0, 2, 0];
        let of = |o: Order| o.schedule(&first, 2).collect::<Vec<_>>();
        assert_eq!(
            of(Order::Configs),
            [(0, 0), (0, 1), (1, 2), (1, 3), (2, 0), (2, 1)]
        );
        assert_eq!(
            of(Order::Rounds),
            [(0, 0), (1, 2), (2, 0), (0, 1), (1, 3), (2, 1)]
        );
        assert_eq!(Order::Rounds.schedule(&[], 3).count(), 0);
        assert_eq!(Order::Configs.schedule(&[5], 0).count(), 0);
        // At the file's limits the schedule is made as it is taken.
        let many = vec![0u32; 100_000];
        let start: Vec<_> = Order::Rounds.schedule(&many, 10_000).take(3).collect();
        assert_eq!(start, [(0, 0), (1, 0), (2, 0)]);
        let start: Vec<_> = Order::Configs.schedule(&many, 10_000).take(2).collect();
        assert_eq!(start, [(0, 0), (0, 1)]);
        // Said only where the order matters.
        assert_eq!(Order::Rounds.phrase(1, 5), "");
        assert_eq!(Order::Configs.phrase(4, 1), "");
        assert_eq!(Order::Rounds.phrase(4, 5), ", in rounds");
        assert_eq!(
            Order::Configs.phrase(4, 5),
            ", configuration by configuration"
        );
    }

    #[test]
    fn invalid_toml_has_position() {
        let e = parse("[transfer\nblock_size = 1\n").unwrap_err();
        assert!(e.at.is_some());
        assert!(e.to_string().contains("invalid TOML"), "{e}");
    }

    #[test]
    fn sweep_is_cartesian_in_file_order() {
        let s = parse("[sweep]\nblock_size = [50, 249]\nrepeats = [0, 1, 3]\n").unwrap();
        let cs = s.configs();
        assert_eq!(cs.len(), 6);
        let pairs: Vec<_> = cs
            .iter()
            .map(|c| {
                (
                    c.values["block_size"].as_u64(),
                    c.values["repeats"].as_u64(),
                )
            })
            .collect();
        assert_eq!(
            pairs,
            [(50, 0), (50, 1), (50, 3), (249, 0), (249, 1), (249, 3)]
                .map(|(b, r)| (Some(b), Some(r)))
        );
        assert_eq!(s.swept(), vec!["block_size", "repeats"]);
    }

    #[test]
    fn sweep_errors() {
        let e = parse("[sweep]\nblock_size = 50\n").unwrap_err();
        assert!(e.to_string().contains("expected an array"), "{e}");
        let e = parse("[sweep]\nblock_size = [50, 300]\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("sweep.block_size"));
        assert_eq!(e.at, Some((2, 19)));
        let e = parse("[sweep]\nnope = [1]\n").unwrap_err();
        assert!(e.to_string().contains("unknown parameter"), "{e}");
    }

    #[test]
    fn set_overrides_and_sweeps() {
        let mut s = parse("[sweep]\nblock_size = [50, 249]\n").unwrap();
        s.set("block_size=100").unwrap();
        assert_eq!(s.configs().len(), 1);
        assert_eq!(s.configs()[0].values["block_size"], 100);
        s.set("framing=cobs").unwrap();
        assert_eq!(s.configs()[0].str("framing"), Some("cobs"));
        s.set("repeats=[0,3]").unwrap();
        assert_eq!(s.configs().len(), 2);
        assert!(s.set("block_size=0").unwrap_err().contains("out of range"));
        assert!(s.set("bogus=1").unwrap_err().contains("unknown parameter"));
        assert!(s.set("noequals").unwrap_err().contains("KEY=VALUE"));
    }

    #[test]
    fn implementations_sweep_as_commands() {
        let s = parse("[link]\nkind = \"pipe\"\n[sweep]\nreceiver_cmd = [\"perfkit\", [\"python3\", \"rx.py\", \"{output}\"]]\n").unwrap();
        let cs = s.configs();
        assert_eq!(cs.len(), 2);
        let receiver = |c| match crate::spec::RunSpec::from_config(c).unwrap().link {
            crate::spec::LinkSpec::Pipe { receiver, .. } => receiver,
            other => panic!("not a pipe: {other:?}"),
        };
        assert_eq!(receiver(&cs[0]), crate::spec::PipeEnd::Perfkit, "built-in");
        assert_eq!(
            receiver(&cs[1]),
            crate::spec::PipeEnd::Command(vec![
                "python3".into(),
                "rx.py".into(),
                "{output}".into()
            ])
        );
        let e = parse("[link]\nkind = \"pipe\"\nreceiver_cmd = []\n").unwrap_err();
        assert!(e.to_string().contains("non-empty"), "{e}");
    }

    #[test]
    fn integers_beyond_i64_are_out_of_range() {
        for text in [
            "runs = 99999999999999999999\n",
            "[transfer]\nrepeats = 99999999999999999999\n",
            "[transfer]\nthrottle_pps = -99999999999999999999\n",
        ] {
            let e = parse(text).unwrap_err();
            assert!(
                e.to_string()
                    .contains("99999999999999999999 is out of range"),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn gate_table() {
        let s = parse("[gate]\n\"rx.bps\" = 5\n\"stage.wire::crc16.p99_ns\" = 20.5\n").unwrap();
        assert_eq!(s.gate["rx.bps"], 5.0);
        let e = parse("[gate]\n\"rx.bps\" = \"five\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("gate.rx.bps"));
        // A name the gate does not know fails here, at its line, not in
        // every later `perfkit gate`.
        let e = parse("name = \"g\"\n[gate]\n\"rx.bsp\" = 5\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("gate.rx.bsp"));
        assert!(e.to_string().contains(":3:1:"), "{e}");
        assert!(e.to_string().contains("unknown metric `rx.bsp`"), "{e}");
    }

    #[test]
    fn record_key() {
        assert!(!parse("").unwrap().record);
        assert!(parse("record = true\n").unwrap().record);
        let e = parse("record = \"yes\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("record"));
    }

    #[test]
    fn a_link_kind_shares_a_parameter_only_with_its_type() {
        let core = core_params();
        for k in perfkit_link::LINK_KINDS {
            for lp in k.params {
                if let Some(p) = core.iter().find(|p| p.name == lp.key) {
                    assert_eq!(
                        describe(&p.ty),
                        describe(&link_ty(lp.ty)),
                        "`{}` of link kind {}",
                        lp.key,
                        k.name
                    );
                    assert_eq!(p.section, "link", "`{}`", lp.key);
                }
            }
        }
    }

    #[test]
    fn stream_link_kinds_are_choices_with_their_parameters() {
        let link = param("link").unwrap();
        let Ty::Choice(c) = link.ty else {
            panic!("link is not a choice")
        };
        assert!(c.contains(&"serial") && c.contains(&"tcp"), "{c:?}");
        assert_eq!(param("tcp_nodelay").unwrap().section, "link");
        let s = parse("[link]\nkind = \"tcp\"\nsndbuf = 65536\n").unwrap();
        assert_eq!(s.base["sndbuf"], 65536);
        let e = parse("[link]\nkind = \"loopback\"\nsndbuf = 65536\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("link.sndbuf"));
        assert!(e.message.contains("only applies to link kind `tcp`"), "{e}");
        let e =
            parse("[link]\nkind = \"udp\"\n[sweep]\ntcp_nodelay = [true, false]\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("link.tcp_nodelay"));
        assert!(parse("[link]\nkind = \"udp\"\nrcvbuf = 65536\n").is_ok());
        let e = parse("[link]\nkind = \"serial\"\ndevice = \"/dev/ttyUSB0\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("link.peer_device"));
        let e = parse("[link]\nkind = \"tcp\"\nlisten = \"nowhere\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("link.listen"));
    }

    #[test]
    fn observation_and_placement_are_recorded_only_when_set() {
        let s = parse("[link]\nkind = \"tcp\"\n[transfer]\nlatency = true\n").unwrap();
        let r = s.configs()[0].recorded("transfer", &[]);
        assert_eq!(r["latency"], true);
        assert!(!r.contains_key("compare_iperf3"), "{r:?}");
        assert!(!r.contains_key("sender_host"), "{r:?}");
        let s = parse("[hosts]\nreceiver = \"netns\"\n[link]\nkind = \"udp\"\n").unwrap();
        let r = s.configs()[0].recorded("transfer", &[]);
        assert_eq!(r["receiver_host"], "netns");
        assert!(!r.contains_key("latency"), "{r:?}");
    }

    #[test]
    fn every_param_default_converts() {
        for p in PARAMS.iter() {
            let d = p.default.clone();
            assert!(
                !(matches!(p.ty, Ty::Int(..)) && !d.is_null() && d.as_i64().is_none()),
                "{}",
                p.name
            );
        }
    }

    #[test]
    fn device_stages_are_written_as_nested_tables_or_swept_by_flat_name() {
        let s = parse(
            "[link]\nkind = \"uart\"\n[device.send.crc16]\nper_call_us = 700\n\
             [device]\nspread_seed = 3\n[sweep]\n\"device.receive.scale\" = [1.0, 0.5]\n",
        )
        .unwrap();
        assert_eq!(s.base["device.send.crc16.per_call_us"], 700.0);
        assert_eq!(s.base["device.spread_seed"], 3);
        assert_eq!(s.configs().len(), 2);
        let rec = s.configs()[0].recorded("transfer", &s.swept());
        assert!(rec.contains_key("device.send.crc16.per_call_us"));
        // Unset, a device parameter is not recorded: earlier records keep their identity.
        assert!(!rec.contains_key("device.send.meta.per_call_us"));
        let e = parse("[device.send.crc]\nper_call_us = 1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("device.send.crc.per_call_us"));
        let e = parse("[link]\nkind = \"loopback\"\n[device]\nscale = 2\n").unwrap_err();
        assert!(e.message.contains("uart"), "{e}");
    }
}
