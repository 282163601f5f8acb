//! Typed settings: a configuration's flat parameters, converted once into
//! the specs the runners use.
//!
//! Loading a scenario checks every value against the parameter table
//! ([`crate::scenario::PARAMS`]) and keeps the file, line and key for its
//! errors; a [`Config`] is then one point of the sweep, still flat (it is
//! what a results file records and what the gate pairs on). This module is
//! the second stage: [`RunSpec::from_config`] reads each parameter exactly
//! once, by name, here and nowhere else, and builds enums and structs; the
//! runners match on those. A parameter that is missing or of the wrong type
//! is an error naming it, never a silent zero.

use anyhow::{anyhow, bail};
use perfkit_link::faults::FaultConfig;
use perfkit_stack::{Framing, SenderConfig};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scenario::Config;

/// Everything one run needs, typed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    /// The file transfer's settings (transfer and pico kinds).
    pub transfer: TransferSpec,
    /// The link the transfer crosses.
    pub link: LinkSpec,
    /// Seeded faults injected on the link.
    pub faults: FaultConfig,
    /// SPEAD heaps over UDP (heaps kind).
    pub heaps: HeapsSpec,
    /// The RP2040 run (pico kind).
    pub pico: PicoSpec,
    /// Where each end runs.
    pub hosts: HostsSpec,
}

/// Where one end of a transfer runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Host {
    /// In this process.
    Local,
    /// On a `perfkit agent` at this control address (`HOST:PORT`).
    Agent(String),
    /// On an agent this run starts in a network namespace of its own,
    /// joined to this one by a veth pair.
    Netns,
}

impl Host {
    /// `local` or `agent://HOST:PORT`.
    pub fn parse(s: &str) -> Result<Host, String> {
        match s {
            "local" => return Ok(Host::Local),
            "netns" => return Ok(Host::Netns),
            _ => {}
        }
        match s.strip_prefix("agent://") {
            Some(addr)
                if addr.rsplit_once(':').is_some_and(|(h, p)| {
                    !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0)
                }) =>
            {
                Ok(Host::Agent(addr.to_owned()))
            }
            _ => Err(format!(
                "`{s}`: expected `local`, `agent://HOST:PORT` (a running `perfkit agent`) or `netns` (one started in a network namespace)"
            )),
        }
    }
}

impl HostsSpec {
    /// Both ends run in this process: nothing to place. Unlike
    /// [`HostsSpec::remote`], this starts nothing.
    pub fn all_local(&self) -> bool {
        self.sender == Host::Local && self.receiver == Host::Local
    }

    /// The end an agent runs and where, with the token; `None` when both
    /// ends run here. A `netns` end is made here, with its agent: call it
    /// to run, never to check.
    pub fn remote(&self) -> Option<anyhow::Result<crate::remote::client::Placement>> {
        use crate::remote::proto::{load_token, Role};
        let (host, role) = match (&self.sender, &self.receiver) {
            (Host::Local, Host::Local) => return None,
            (h, Host::Local) => (h, Role::Sender),
            (Host::Local, h) => (h, Role::Receiver),
            _ => return Some(Err(anyhow!("one end must run here (local)"))),
        };
        let placed = match host {
            Host::Agent(a) => load_token(self.token_file.as_deref().map(std::path::Path::new))
                .map(|token| (a.clone(), token)),
            Host::Netns => crate::remote::netns::agent(self.rate_mbit, self.mtu),
            Host::Local => unreachable!("matched above"),
        };
        Some(placed.map(|(agent, token)| crate::remote::client::Placement { agent, role, token }))
    }
}

/// Where the ends of a transfer run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostsSpec {
    /// The sending end.
    pub sender: Host,
    /// The receiving end.
    pub receiver: Host,
    /// The agent's shared token, from this file (else the environment).
    pub token_file: Option<String>,
    /// `netns` hosts: the veth pair's rate limit, Mbit/s (0 = none).
    pub rate_mbit: f64,
    /// `netns` hosts: the veth pair's MTU, bytes.
    pub mtu: u32,
}

/// The byte-stream framing, as scenarios name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FramingSpec {
    /// The profile's 0xFF/0xFE stuffing.
    Dttk,
    /// COBS.
    Cobs,
}

impl FramingSpec {
    /// The stack's framing.
    pub fn framing(self) -> Framing {
        match self {
            FramingSpec::Dttk => Framing::Dttk,
            FramingSpec::Cobs => Framing::Cobs,
        }
    }

    /// The name scenarios and flags use.
    pub fn name(self) -> &'static str {
        match self {
            FramingSpec::Dttk => "dttk",
            FramingSpec::Cobs => "cobs",
        }
    }
}

/// A dttk file transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSpec {
    /// Payload bytes per data message.
    pub block_size: u8,
    /// META messages on the first ticks.
    pub start_meta: u32,
    /// A META every N ticks after that.
    pub meta_every: u32,
    /// Extra copies of every block.
    pub repeats: u32,
    /// Sender limit, packets per second (0 = unthrottled).
    pub throttle_pps: f64,
    /// Deliberate busy-wait per sent packet, ns.
    pub slowdown_ns_per_packet: u64,
    /// Deliberate counted work per data message in `sender::read_block`
    /// (a test knob for the exact instruction-count gate).
    #[serde(default)]
    pub extra_work_per_packet: u32,
    /// Byte-stream framing.
    pub framing: FramingSpec,
    /// Data channel.
    pub channel: u8,
    /// Generate this many seeded bytes instead of reading the input (0 = read it).
    pub input_size: u64,
    /// Seed of generated input.
    pub seed: u64,
    /// Pipe: also time `cat` over a real pipe as a yardstick.
    pub compare_cat: bool,
    /// TCP and UDP links: also measure `iperf3` over the same path.
    pub compare_iperf3: bool,
    /// TCP and UDP links: measure each block's one-way delay.
    #[serde(default)]
    pub latency: bool,
    /// Give up after this many (real or virtual) seconds.
    pub timeout_s: f64,
    /// Record perfkit's stage table (false: recording off at run time).
    #[serde(default = "yes")]
    pub stages: bool,
    /// The receiving host hashes on a second thread (see
    /// [`crate::kinds::endpoint::receiver`]).
    #[serde(default = "yes")]
    pub hash_thread: bool,
    /// Transfers multiplexed over the one link (uart), on consecutive channels.
    #[serde(default = "one")]
    pub mux_transfers: u8,
}

fn yes() -> bool {
    true
}

fn one() -> u8 {
    1
}

impl TransferSpec {
    /// The stack's sender settings, validated.
    pub fn sender_config(&self) -> anyhow::Result<SenderConfig> {
        // As the stack's own refusals below, so a check names the key.
        let refused = |key, reason| {
            anyhow::Error::new(perfkit_stack::Error::from(
                perfkit_stack::error::ErrorKind::Config { key, reason },
            ))
            .context("sender settings")
        };
        if self.start_meta == 0 && self.meta_every == 0 {
            return Err(refused(
                "meta_every",
                "0 with start_meta 0 sends no META at all, and no receiver can finish without one",
            ));
        }
        // The sender paces whole packets per second: 0.3 would round to 0
        // (unthrottled) and 1.7 would run at 2 while the results say 1.7.
        if self.throttle_pps.fract() != 0.0 {
            return Err(refused(
                "throttle_pps",
                "must be a whole number of packets per second (0 = unthrottled)",
            ));
        }
        let c = SenderConfig {
            block_size: self.block_size,
            start_meta: self.start_meta,
            meta_every: self.meta_every,
            repeats: self.repeats,
            channel: self.channel,
            throttle_pps: self.throttle_pps.round() as u32,
            throttle_burst: 1,
            slowdown_ns_per_packet: self.slowdown_ns_per_packet,
            extra_work_per_packet: self.extra_work_per_packet,
        };
        // Kept as the stack's error, so a check can tell which key it names.
        c.validate()
            .map_err(|e| anyhow::Error::new(e).context("sender settings"))?;
        Ok(c)
    }

    /// The stack's framing.
    pub fn framing(&self) -> Framing {
        self.framing.framing()
    }
}

/// One end of a pipe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipeEnd {
    /// perfkit's own `send` or `recv`.
    Perfkit,
    /// An external program (argv, with `{input}`, `{output}`, `{param}` placeholders).
    Command(Vec<String>),
}

/// The link a transfer crosses, with only the settings that kind has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LinkSpec {
    /// Sender and receiver in one process, packets through memory.
    Loopback {
        /// Largest packet, bytes.
        mtu: usize,
    },
    /// Two processes joined by a pipe.
    Pipe {
        /// Largest read, bytes.
        chunk: usize,
        /// Who writes the stream.
        sender: PipeEnd,
        /// Who reads it.
        receiver: PipeEnd,
    },
    /// The virtual-time UART model between two simulated devices.
    Uart {
        /// Line rate, bits per second.
        baud: u32,
        /// Bits per character on the wire.
        bits_per_char: u32,
        /// Receiving device's buffer (default: its profile's).
        rx_buffer: Option<usize>,
        /// Sending device's buffer (default: its profile's).
        tx_buffer: Option<usize>,
        /// Sending device's cost profile (a name or a path).
        tx_profile: String,
        /// Receiving device's cost profile.
        rx_profile: String,
        /// The device model's parameters that were set (`send.crc16.per_call_us`
        /// -> value, without the `device.` prefix).
        #[serde(default)]
        device: std::collections::BTreeMap<String, f64>,
    },
    /// A link kind from the link crate's table
    /// ([`perfkit_link::LINK_KINDS`]): a serial device, TCP, UDP.
    Registered {
        /// The kind's name (`serial`, `tcp`, `udp`).
        name: String,
        /// Its parameters, checked by the kind.
        settings: perfkit_link::registry::Settings,
    },
}

/// How heaps are handed to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeapMode {
    /// One heap per call.
    Heap,
    /// A batch per call.
    Batch,
    /// A batch per call with UDP GSO.
    #[serde(rename = "batch+gso")]
    BatchGso,
}

/// Whose sender moves the heaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeapSender {
    /// perfkit's own.
    Perfkit,
    /// spead2's Python API.
    Spead2,
}

/// SPEAD heaps over UDP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeapsSpec {
    /// Payload bytes per heap.
    pub heap_size: usize,
    /// Largest UDP payload.
    pub packet_size: usize,
    /// How heaps are sent.
    pub mode: HeapMode,
    /// Whose sender.
    pub implementation: HeapSender,
    /// Whose receiver (perfkit's or spead2's).
    #[serde(default = "perfkit_receiver")]
    pub receiver: HeapSender,
    /// Payload to move per run, MiB.
    pub volume_mb: f64,
    /// Stop a run after this many seconds.
    pub time_cap_s: f64,
    /// Sender rate limit, MiB/s (0 = unlimited).
    pub rate_mb_s: f64,
    /// The receiving end's nice value for the run (unset = as started).
    #[serde(default)]
    pub receiver_nice: Option<i32>,
    /// The one CPU the receiving end runs on for the run (unset = wherever
    /// the scheduler puts it); with both ends here the sender keeps off it.
    #[serde(default)]
    pub receiver_cpu: Option<usize>,
    /// The receiving socket's buffer asked for, MiB (unset = 64 MiB; left
    /// out of the spec sent to an agent then, so an older one takes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receiver_buffer_mb: Option<usize>,
}

fn perfkit_receiver() -> HeapSender {
    HeapSender::Perfkit
}

/// Where the firmware runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "target", rename_all = "snake_case")]
pub enum PicoTarget {
    /// rp2040js, cycle-counted virtual time.
    Emulator,
    /// A real board through a debug probe.
    Hardware {
        /// Probe selector (VID:PID[:serial]).
        probe: Option<String>,
        /// The serial device wired to the board's UART0.
        device: Option<String>,
    },
}

/// The RP2040 run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PicoSpec {
    /// Where the firmware runs.
    pub target: PicoTarget,
    /// True when the device receives and the host sends.
    pub device_receives: bool,
    /// Firmware ELF (default: the one the setup builds).
    pub elf: Option<String>,
    /// UART line rate.
    pub baud: u32,
}

/// Reads a configuration's parameters by name: the only place that does.
struct Params<'a>(&'a Config);

impl Params<'_> {
    fn value(&self, name: &str) -> anyhow::Result<&Value> {
        self.0
            .values
            .get(name)
            .ok_or_else(|| anyhow!("the configuration has no `{name}`"))
    }
    fn int<T: TryFrom<u64>>(&self, name: &str) -> anyhow::Result<T> {
        let v = self.value(name)?;
        v.as_u64()
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| anyhow!("`{name}`: expected an integer in range, found {v}"))
    }
    fn opt_int<T: TryFrom<u64>>(&self, name: &str) -> anyhow::Result<Option<T>> {
        match self.0.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.int(name).map(Some),
        }
    }
    fn opt_signed<T: TryFrom<i64>>(&self, name: &str) -> anyhow::Result<Option<T>> {
        match self.0.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .and_then(|n| T::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| anyhow!("`{name}`: expected an integer in range, found {v}")),
        }
    }
    fn float(&self, name: &str) -> anyhow::Result<f64> {
        let v = self.value(name)?;
        v.as_f64()
            .ok_or_else(|| anyhow!("`{name}`: expected a number, found {v}"))
    }
    fn bool(&self, name: &str) -> anyhow::Result<bool> {
        let v = self.value(name)?;
        v.as_bool()
            .ok_or_else(|| anyhow!("`{name}`: expected true or false, found {v}"))
    }
    fn opt_str(&self, name: &str) -> anyhow::Result<Option<String>> {
        match self.0.values.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => bail!("`{name}`: expected a string, found {v}"),
        }
    }
    fn str(&self, name: &str) -> anyhow::Result<String> {
        self.opt_str(name)?
            .ok_or_else(|| anyhow!("the configuration has no `{name}`"))
    }
    /// Every `device.*` parameter that is set.
    fn device(&self) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
        let mut out = std::collections::BTreeMap::new();
        for (name, v) in &self.0.values {
            if let (Some(key), false) = (name.strip_prefix("device."), v.is_null()) {
                out.insert(key.to_owned(), self.float(name)?);
            }
        }
        Ok(out)
    }

    fn pipe_end(&self, name: &str) -> anyhow::Result<PipeEnd> {
        match self.0.values.get(name) {
            None | Some(Value::Null) => Ok(PipeEnd::Perfkit),
            Some(Value::String(s)) if s == "perfkit" => Ok(PipeEnd::Perfkit),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .filter(|argv| !argv.is_empty())
                .map(PipeEnd::Command)
                .ok_or_else(|| anyhow!("`{name}`: expected a non-empty array of strings")),
            Some(v) => bail!("`{name}`: expected an array of strings or \"perfkit\", found {v}"),
        }
    }
}

impl RunSpec {
    /// Converts a checked configuration, once.
    pub fn from_config(cfg: &Config) -> anyhow::Result<RunSpec> {
        let p = Params(cfg);
        let framing = match p.str("framing")?.as_str() {
            "dttk" => FramingSpec::Dttk,
            "cobs" => FramingSpec::Cobs,
            other => bail!("`framing`: unknown framing `{other}`"),
        };
        let transfer = TransferSpec {
            block_size: p.int("block_size")?,
            start_meta: p.int("start_meta")?,
            meta_every: p.int("meta_every")?,
            repeats: p.int("repeats")?,
            throttle_pps: p.float("throttle_pps")?,
            slowdown_ns_per_packet: p.int("slowdown_ns_per_packet")?,
            extra_work_per_packet: p.int("extra_work_per_packet")?,
            framing,
            channel: p.int("channel")?,
            input_size: p.int("input_size")?,
            seed: p.int("seed")?,
            compare_cat: p.bool("compare_cat")?,
            compare_iperf3: p.bool("compare_iperf3")?,
            latency: p.bool("latency")?,
            timeout_s: p.float("timeout_s")?,
            stages: p.bool("stages")?,
            // Counted runs hash on the receiving thread: a second thread's
            // passes follow the scheduler, and the counts must repeat.
            hash_thread: p.bool("hash_thread")?
                && p.str("measure")? != crate::instructions::INSTRUCTIONS,
            mux_transfers: p.int("mux_transfers")?,
        };
        let link = match p.str("link")?.as_str() {
            "loopback" => LinkSpec::Loopback { mtu: p.int("mtu")? },
            "pipe" => LinkSpec::Pipe {
                chunk: p.int("chunk")?,
                sender: p.pipe_end("sender_cmd")?,
                receiver: p.pipe_end("receiver_cmd")?,
            },
            "uart" => {
                let both = p.str("profile")?;
                LinkSpec::Uart {
                    baud: p.int("baud")?,
                    bits_per_char: p.int("bits_per_char")?,
                    rx_buffer: p.opt_int("rx_buffer")?,
                    tx_buffer: p.opt_int("tx_buffer")?,
                    tx_profile: p.opt_str("tx_profile")?.unwrap_or_else(|| both.clone()),
                    rx_profile: p.opt_str("rx_profile")?.unwrap_or(both),
                    device: p.device()?,
                }
            }
            other => {
                let kind = perfkit_link::link_kind(other)
                    .ok_or_else(|| anyhow!("`link`: unknown link kind `{other}`"))?;
                let settings = kind.settings(|key| cfg.values.get(key));
                kind.check(&settings)
                    .map_err(|(key, why)| anyhow!("`{key}`: {why}"))?;
                LinkSpec::Registered {
                    name: other.to_owned(),
                    settings,
                }
            }
        };
        let faults = FaultConfig {
            seed: p.int("seed")?,
            bit_error_rate: p.float("bit_error_rate")?,
            byte_drop: p.float("byte_drop")?,
            byte_duplicate: p.float("byte_dup")?,
            packet_loss: p.float("packet_loss")?,
            packet_duplicate: p.float("packet_dup")?,
            reorder: p.float("reorder")?,
            ..FaultConfig::default()
        };
        faults.validate().map_err(|e| anyhow!("faults: {e}"))?;
        let heaps = HeapsSpec {
            heap_size: p.int("heap_size")?,
            packet_size: p.int("packet_size")?,
            mode: match p.str("mode")?.as_str() {
                "heap" => HeapMode::Heap,
                "batch" => HeapMode::Batch,
                "batch+gso" => HeapMode::BatchGso,
                other => bail!("`mode`: unknown heap mode `{other}`"),
            },
            implementation: match p.str("implementation")?.as_str() {
                "perfkit" => HeapSender::Perfkit,
                "spead2" => HeapSender::Spead2,
                other => bail!("`implementation`: unknown sender `{other}`"),
            },
            receiver: match p.str("receiver_implementation")?.as_str() {
                "perfkit" => HeapSender::Perfkit,
                "spead2" => HeapSender::Spead2,
                other => bail!("`receiver_implementation`: unknown receiver `{other}`"),
            },
            volume_mb: p.float("volume_mb")?,
            time_cap_s: p.float("time_cap_s")?,
            rate_mb_s: p.float("rate_mb_s")?,
            receiver_nice: p.opt_signed("receiver_nice")?,
            receiver_cpu: p.opt_int("receiver_cpu")?,
            receiver_buffer_mb: p.opt_int("receiver_buffer_mb")?,
        };
        let pico = PicoSpec {
            target: match p.str("target")?.as_str() {
                "emulator" => PicoTarget::Emulator,
                "hardware" => PicoTarget::Hardware {
                    probe: p.opt_str("probe")?,
                    device: p.opt_str("device")?,
                },
                other => bail!("`target`: unknown target `{other}`"),
            },
            device_receives: match p.str("role")?.as_str() {
                "sender" => false,
                "receiver" => true,
                other => bail!("`role`: unknown role `{other}`"),
            },
            elf: p.opt_str("elf")?,
            baud: p.int("baud")?,
        };
        let host = |name: &str| -> anyhow::Result<Host> {
            Host::parse(&p.str(name)?).map_err(|e| anyhow!("`{name}`: {e}"))
        };
        let hosts = HostsSpec {
            sender: host("sender_host")?,
            receiver: host("receiver_host")?,
            token_file: p.opt_str("agent_token_file")?,
            rate_mbit: p.float("netns_rate_mbit")?,
            mtu: p.int("netns_mtu")?,
        };
        Ok(RunSpec {
            transfer,
            link,
            faults,
            heaps,
            pico,
            hosts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PARAMS;

    fn defaults() -> Config {
        Config {
            values: PARAMS
                .iter()
                .map(|p| (p.name.to_owned(), p.default.clone()))
                .collect(),
        }
    }

    #[test]
    fn every_default_converts() {
        let spec = RunSpec::from_config(&defaults()).unwrap();
        assert_eq!(spec.link, LinkSpec::Loopback { mtu: 256 });
        assert_eq!(spec.transfer.block_size, 50);
        assert_eq!(spec.transfer.framing, FramingSpec::Dttk);
        assert_eq!(spec.heaps.mode, HeapMode::Batch);
        assert_eq!(spec.pico.target, PicoTarget::Emulator);
    }

    #[test]
    fn a_missing_or_mistyped_parameter_is_named() {
        let mut cfg = defaults();
        cfg.values.remove("block_size");
        let e = RunSpec::from_config(&cfg).unwrap_err().to_string();
        assert_eq!(e, "the configuration has no `block_size`");
        let mut cfg = defaults();
        cfg.values.insert("channel".into(), serde_json::json!(300));
        let e = RunSpec::from_config(&cfg).unwrap_err().to_string();
        assert!(
            e.starts_with("`channel`: expected an integer in range"),
            "{e}"
        );
    }

    #[test]
    fn uart_profiles_fall_back_to_the_shared_one() {
        let mut cfg = defaults();
        cfg.values.insert("link".into(), "uart".into());
        cfg.values
            .insert("profile".into(), "pico-micropython".into());
        cfg.values.insert("rx_profile".into(), "host".into());
        let LinkSpec::Uart {
            tx_profile,
            rx_profile,
            rx_buffer,
            ..
        } = RunSpec::from_config(&cfg).unwrap().link
        else {
            panic!("not a uart link");
        };
        assert_eq!(
            (tx_profile.as_str(), rx_profile.as_str()),
            ("pico-micropython", "host")
        );
        assert_eq!(rx_buffer, None);
    }

    #[test]
    fn pipe_ends_are_perfkit_or_a_command() {
        let mut cfg = defaults();
        cfg.values.insert("link".into(), "pipe".into());
        cfg.values.insert("sender_cmd".into(), "perfkit".into());
        cfg.values
            .insert("receiver_cmd".into(), serde_json::json!(["cat"]));
        let LinkSpec::Pipe {
            sender, receiver, ..
        } = RunSpec::from_config(&cfg).unwrap().link
        else {
            panic!("not a pipe link");
        };
        assert_eq!(sender, PipeEnd::Perfkit);
        assert_eq!(receiver, PipeEnd::Command(vec!["cat".into()]));
    }

    #[test]
    fn a_registered_link_takes_its_own_parameters() {
        let mut cfg = defaults();
        cfg.values.insert("link".into(), "tcp".into());
        cfg.values.insert("sndbuf".into(), serde_json::json!(4096));
        let LinkSpec::Registered { name, settings } = RunSpec::from_config(&cfg).unwrap().link
        else {
            panic!("not a registered link");
        };
        assert_eq!(name, "tcp");
        assert_eq!(settings["sndbuf"], 4096);
        assert_eq!(settings["listen"], "127.0.0.1:0");
        assert!(!settings.contains_key("mtu"));
        cfg.values.insert("link".into(), "serial".into());
        cfg.values.insert("device".into(), "/dev/ttyS0".into());
        let e = RunSpec::from_config(&cfg).unwrap_err().to_string();
        assert!(e.starts_with("`peer_device`: give both"), "{e}");
    }

    #[test]
    fn hosts_are_local_or_an_agent_address() {
        assert_eq!(Host::parse("local"), Ok(Host::Local));
        assert_eq!(
            Host::parse("agent://10.0.0.2:7117"),
            Ok(Host::Agent("10.0.0.2:7117".into()))
        );
        for bad in [
            "agent://",
            "agent://h",
            "agent://:7",
            "agent://h:0",
            "tcp://h:1",
            "",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_spec_round_trips_through_json() {
        let spec = RunSpec::from_config(&defaults()).unwrap();
        let back: RunSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
}
