//! `transfer`: a file through the dttk stack over one of the link kinds.
//!
//! - `loopback`: sender and receiver on one thread, packets through memory.
//! - `pipe`: two real processes joined by a pipe (`perfkit send | perfkit
//!   recv`, or an external program at either end); with faults or an
//!   external end, the bytes pass through this process, which injects the
//!   faults and watches the wire.
//! - `uart`: the virtual-time UART model with device cost profiles.
//! - the link crate's kinds (`serial`: real serial devices or a pty pair;
//!   `tcp`: a TCP connection; `udp`: datagrams): one driver for all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use perfkit_engine::{drive, Clock, Policy, RecvEnd, RxPump, TxPump, WallClock};
use perfkit_link::faults::{FaultConfig, FaultStats, Faulty};
use perfkit_link::{ByteLink, Ends, Loopback, PacketLink, PipeLink, ReadOutcome};
use perfkit_report::model::{Integrity, LinkStats, Side, TimeBase};
use perfkit_stack::Deframer;

use super::children::Stopped;
use super::endpoint::{self, EndReport};
use super::input::Input;
use super::latency::{self, Stamper};
use super::{uart, yardstick, Outcome};
use crate::integrity::sha256_hex;
use crate::scenario::Config;
use crate::spec::{LinkSpec, PipeEnd, RunSpec, TransferSpec};

/// The `transfer` kind.
pub struct Transfer;

/// perfkit's run-time recording switch, put back as found when dropped.
struct Recording(bool);

impl Recording {
    fn set(on: bool) -> Self {
        let was = perfkit::enabled();
        perfkit::set_enabled(on);
        Recording(was)
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        perfkit::set_enabled(self.0);
    }
}

impl super::Kind for Transfer {
    fn name(&self) -> &'static str {
        "transfer"
    }
    fn preflight(
        &self,
        s: &crate::scenario::Scenario,
        spec: &RunSpec,
    ) -> Result<(), super::Refusal> {
        super::preflight::transfer(s, spec)
    }
    fn run(&self, ctx: &super::RunCtx<'_>) -> anyhow::Result<Outcome> {
        let spec = ctx.spec;
        let t = &spec.transfer;
        // Off for this run only: the next run's setting is its own.
        let _recording = Recording::set(t.stages);
        let input = Input::prepare(ctx.scenario, t)?;
        match &spec.link {
            LinkSpec::Loopback { mtu } => loopback(spec, *mtu, &input, ctx.cancel),
            LinkSpec::Pipe {
                sender, receiver, ..
            } => pipe(ctx.config, spec, [sender, receiver], &input, ctx.cancel),
            LinkSpec::Uart { .. } => uart::run(ctx.scenario, spec, &input),
            LinkSpec::Registered { name, settings } => {
                if let Some(place) = spec.hosts.remote() {
                    let hash = crate::remote::config_hash(ctx.config);
                    let mut outcome =
                        crate::remote::client::transfer(spec, &hash, &input, &place?, ctx.cancel)?;
                    if t.compare_iperf3 {
                        let (ns, ip) = crate::remote::netns::current().ok_or_else(|| {
                            anyhow!("compare_iperf3 needs both ends on this machine (here or a netns host)")
                        })?;
                        iperf3_metrics(&mut outcome, t, name, &ip, Some(&ns))?;
                    }
                    return Ok(outcome);
                }
                let kind = perfkit_link::link_kind(name)
                    .ok_or_else(|| anyhow!("unknown link kind `{name}`"))?;
                let ends = kind
                    .open(settings)
                    .with_context(|| format!("cannot open the {} link", kind.name))?;
                let mut outcome = registered(t, ends, faults(spec), &input, ctx.cancel)?;
                if t.compare_iperf3 {
                    iperf3_metrics(&mut outcome, t, name, "127.0.0.1", None)?;
                }
                Ok(outcome)
            }
        }
    }
}

/// `iperf3`'s TCP throughput over the same path, beside the run's own;
/// over a UDP link also its UDP throughput in datagrams of the transfer's
/// largest message.
fn iperf3_metrics(
    o: &mut Outcome,
    t: &TransferSpec,
    link: &str,
    server: &str,
    ns: Option<&str>,
) -> anyhow::Result<()> {
    if link == "udp" {
        let len = t.block_size as usize + perfkit_stack::wire::OVERHEAD;
        let bps = yardstick::iperf3(server, ns, 1, Some(len))?;
        o.metrics.insert("iperf3_udp_mb_s".into(), bps / 1e6);
        if o.rx.seconds > 0.0 {
            o.metrics.insert("rx_vs_iperf3_udp".into(), o.rx.bps / bps);
        }
    }
    let bps = yardstick::iperf3(server, ns, 1, None)?;
    o.metrics.insert("iperf3_mb_s".into(), bps / 1e6);
    if o.rx.seconds > 0.0 {
        o.metrics.insert("rx_mb_s".into(), o.rx.bps / 1e6);
        o.metrics.insert("rx_vs_iperf3".into(), o.rx.bps / bps);
    }
    Ok(())
}

/// The seeded faults a configuration asks for, if any.
fn faults(spec: &RunSpec) -> Option<&FaultConfig> {
    spec.faults.injects_any().then_some(&spec.faults)
}

pub(crate) fn fault_counters(f: &FaultStats, into: &mut BTreeMap<String, u64>) {
    for (k, v) in [
        ("faults.bits_flipped", f.bits_flipped),
        ("faults.bytes_dropped", f.bytes_dropped),
        ("faults.bytes_duplicated", f.bytes_duplicated),
        ("faults.packets_lost", f.packets_lost),
        ("faults.packets_duplicated", f.packets_duplicated),
        ("faults.packets_reordered", f.packets_reordered),
    ] {
        into.insert(k.to_owned(), v);
    }
}

/// The run's one cancel and deadline policy.
fn policy<'a>(t: &TransferSpec, cancel: &'a AtomicBool) -> Policy<'a> {
    Policy::seconds(t.timeout_s).cancel_on(cancel)
}

fn loopback(
    spec: &RunSpec,
    mtu: usize,
    input: &Input,
    cancel: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let t = &spec.transfer;
    let name = endpoint::file_name(&input.path);
    let mut tx = endpoint::sender(t, &input.bytes, &name)?;
    let mut rx = endpoint::receiver(t.channel, t.framing(), t.hash_thread);
    let mut link: Box<dyn LoopLink> = match faults(spec) {
        Some(fc) => {
            Box::new(Faulty::new(Loopback::new(mtu), fc).map_err(|e| anyhow!("faults: {e}"))?)
        }
        None => Box::new(Loopback::new(mtu)),
    };
    let clock = WallClock::start();
    drive::exchange(
        &clock,
        &policy(t, cancel),
        &mut TxPump::packets(&mut tx),
        &mut RxPump::new(&mut rx),
        &mut link,
    )
    .with_context(|| format!("loopback (mtu = {mtu})"))?;
    let stats = link.stats();
    let mut counters = BTreeMap::from([
        ("packets".to_owned(), stats.packets_out),
        ("dropped".to_owned(), stats.dropped),
        ("oversize".to_owned(), stats.oversize),
    ]);
    if let Some(f) = link.fault_stats() {
        fault_counters(&f, &mut counters);
    }
    let rx_side = endpoint::rx_side(&rx);
    Ok(Outcome {
        time_base: TimeBase::Real,
        tx: endpoint::side(tx.stats()),
        rx: rx_side,
        integrity: endpoint::integrity(&input.sha256, &rx),
        link: LinkStats {
            wire_bytes: stats.bytes_out,
            utilisation: None,
            counters,
        },
        ..Default::default()
    })
}

/// A sending end with seeded faults injected in front of it (datagrams
/// lost, duplicated, reordered; bytes flipped, dropped, duplicated), kept
/// so its counters can be read after the run.
pub(crate) enum Injector {
    /// No faults asked for.
    Plain(Option<perfkit_link::End<'static>>),
    /// A faulty byte stream.
    Bytes(Faulty<Box<dyn ByteLink + Send>>),
    /// A faulty packet link.
    Packets(Faulty<Box<dyn PacketLink + Send>>),
}

impl Injector {
    /// Wraps `end` when `fc` injects anything.
    pub(crate) fn new(
        end: perfkit_link::End<'static>,
        fc: Option<&FaultConfig>,
    ) -> anyhow::Result<Injector> {
        use perfkit_link::End;
        let fault = |e: perfkit_link::Error| anyhow!("faults: {e}");
        Ok(match (end, fc) {
            (end, None) => Injector::Plain(Some(end)),
            (End::Bytes(l), Some(fc)) => Injector::Bytes(Faulty::new(l, fc).map_err(fault)?),
            (End::Packets(l), Some(fc)) => Injector::Packets(Faulty::new(l, fc).map_err(fault)?),
        })
    }

    /// The end to drive (once).
    pub(crate) fn end(&mut self) -> perfkit_link::End<'_> {
        use perfkit_link::End;
        match self {
            Injector::Plain(e) => e.take().expect("the end is taken once"),
            Injector::Bytes(f) => End::Bytes(Box::new(f)),
            Injector::Packets(f) => End::Packets(Box::new(f)),
        }
    }

    /// What was injected, when anything could be.
    pub(crate) fn fault_stats(&self) -> Option<FaultStats> {
        match self {
            Injector::Plain(_) => None,
            Injector::Bytes(f) => Some(f.fault_stats()),
            Injector::Packets(f) => Some(f.fault_stats()),
        }
    }
}

/// A link that may carry injected faults, so a runner can report them.
trait FaultSource {
    fn fault_stats(&self) -> Option<FaultStats> {
        None
    }
}
impl FaultSource for Loopback {}
impl FaultSource for PipeLink {}
impl<L> FaultSource for Faulty<L> {
    fn fault_stats(&self) -> Option<FaultStats> {
        Some(Faulty::fault_stats(self))
    }
}
trait LoopLink: PacketLink + FaultSource {}
impl<T: PacketLink + FaultSource> LoopLink for T {}
trait RelayOut: ByteLink + FaultSource {}
impl<T: ByteLink + FaultSource> RelayOut for T {}

/// Replaces `{param}` in an external command with the configuration's values
/// (and `{input}`, `{output}`).
fn substitute(argv: &[String], cfg: &Config, input: &Path, output: &Path) -> Vec<String> {
    argv.iter()
        .map(|a| {
            let mut a = a.replace("{input}", &input.display().to_string());
            a = a.replace("{output}", &output.display().to_string());
            for (k, v) in &cfg.values {
                let pat = format!("{{{k}}}");
                if a.contains(&pat) {
                    let v = v
                        .as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string());
                    a = a.replace(&pat, &v);
                }
            }
            a
        })
        .collect()
}

/// `perfkit send` / `perfkit recv` flags for a transfer.
fn wire_flags(t: &TransferSpec) -> Vec<String> {
    [
        ("--framing", t.framing.name().to_owned()),
        ("--channel", t.channel.to_string()),
        ("--timeout-s", t.timeout_s.to_string()),
    ]
    .into_iter()
    .flat_map(|(flag, v)| [flag.to_owned(), v])
    .chain(["--quiet".to_owned()])
    .chain((!t.stages).then(|| "--no-stages".to_owned()))
    .chain((!t.hash_thread).then(|| "--no-hash-thread".to_owned()))
    .collect()
}

fn sender_flags(t: &TransferSpec) -> Vec<String> {
    let mut v = wire_flags(t);
    for (flag, value) in [
        ("--block-size", t.block_size.to_string()),
        ("--start-meta", t.start_meta.to_string()),
        ("--meta-every", t.meta_every.to_string()),
        ("--repeats", t.repeats.to_string()),
        ("--slowdown-ns", t.slowdown_ns_per_packet.to_string()),
        ("--throttle-pps", t.throttle_pps.to_string()),
    ] {
        v.push(flag.to_owned());
        v.push(value);
    }
    v
}

fn perfkit_exe() -> anyhow::Result<PathBuf> {
    std::env::current_exe().context("cannot find the perfkit executable")
}

/// One end of a pipe: our own `perfkit send`/`recv`, or an external program.
struct End {
    cmd: Command,
    report: Option<PathBuf>,
    external: bool,
}

fn pipe(
    cfg: &Config,
    spec: &RunSpec,
    [sender, receiver]: [&PipeEnd; 2],
    input: &Input,
    cancel: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let t = &spec.transfer;
    let dir = tempfile::tempdir()?;
    let output = dir.path().join("received.bin");
    let exe = perfkit_exe()?;
    let make_end = |role: &str, end: &PipeEnd| -> anyhow::Result<End> {
        if let PipeEnd::Command(argv) = end {
            let argv = substitute(argv, cfg, &input.path, &output);
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..]);
            return Ok(End {
                cmd,
                report: None,
                external: true,
            });
        }
        let report = dir.path().join(format!("{role}.json"));
        let mut cmd = Command::new(&exe);
        cmd.arg(role);
        if role == "send" {
            cmd.arg(&input.path).args(sender_flags(t));
        } else {
            cmd.arg(&output).args(wire_flags(t));
        }
        cmd.arg("--stats-json").arg(&report);
        Ok(End {
            cmd,
            report: Some(report),
            external: false,
        })
    };
    let mut tx_end = make_end("send", sender)?;
    let mut rx_end = make_end("recv", receiver)?;
    tx_end.cmd.stderr(Stdio::inherit());
    rx_end.cmd.stderr(Stdio::inherit());
    let fc = faults(spec);
    let relay = fc.is_some() || tx_end.external || rx_end.external;
    let policy = policy(t, cancel);
    let clock = WallClock::start();

    let mut counters = BTreeMap::new();
    let mut tap: Option<Tap> = None;
    let (tx_exit, rx_exit) = if !relay {
        // Sender's stdout is the receiver's stdin: nothing in between.
        let (a, b) = perfkit_link::spawn_pipeline(tx_end.cmd, rx_end.cmd)?;
        let (mut a, mut b) = (Stopped::new(a), Stopped::new(b));
        let sa = a.wait(&clock, &policy)?;
        let sb = b.wait(&clock, &policy)?;
        (sa, sb)
    } else {
        tx_end.cmd.stdout(Stdio::piped());
        rx_end.cmd.stdin(Stdio::piped());
        let mut a = Stopped::new(tx_end.cmd.spawn().context("cannot start the sender")?);
        let mut b = Stopped::new(rx_end.cmd.spawn().context("cannot start the receiver")?);
        let from = PipeLink::from_child_pipes(None, a.child().stdout.take());
        let to = PipeLink::from_child_pipes(b.child().stdin.take(), None);
        let mut watch = Tap::new(t.framing(), t.channel);
        let fstats = relay_bytes(from, to, fc, &mut watch, &clock, &policy)?;
        if let Some(f) = fstats {
            fault_counters(&f, &mut counters);
        }
        tap = Some(watch);
        let sa = a.wait(&clock, &policy)?;
        let sb = b.wait(&clock, &policy)?;
        (sa, sb)
    };
    let rx_wall = clock.now_ns() as f64 / 1e9;
    let (tx_status, rx_status) = (tx_exit.status, rx_exit.status);
    if !tx_status.success() && !tx_end.external {
        bail!("perfkit send failed ({tx_status})");
    }

    let mut peer = perfkit_report::model::Stages::default();
    let mut wire_bytes = 0;
    let tx_side = match &tx_end.report {
        Some(p) => {
            let r = EndReport::load(p)?;
            wire_bytes = r.wire_bytes;
            crate::run::merge_stages(&mut peer, r.stages);
            r.side
        }
        None => tap.as_ref().map(Tap::side).unwrap_or_default(),
    };
    let (rx_side, integrity) = match &rx_end.report {
        Some(p) => {
            let r = EndReport::load(p)?;
            crate::run::merge_stages(&mut peer, r.stages);
            if wire_bytes == 0 {
                wire_bytes = r.wire_bytes;
            }
            // `perfkit recv` judged what arrived by META; held here to
            // the input this run gave its sender.
            let verdict = r.integrity.unwrap_or_default();
            let suspect = if tx_end.external {
                "an external sender sent another file?"
            } else {
                "the input changed on disk during the run?"
            };
            (r.side, endpoint::of_input(verdict, &input.sha256, suspect))
        }
        None => external_rx(&output, input, t, rx_wall, rx_status.success()),
    };
    if let Some(t) = &tap {
        wire_bytes = wire_bytes.max(t.wire_bytes);
        counters.insert("tap.frames".into(), t.frames);
    }
    let mut metrics = BTreeMap::new();
    // CPU time of each end's whole process, beside cat's: what moving the
    // bytes costs whatever the scheduler did with two busy processes (and
    // a hash thread) on the machine's cores, which the rates depend on.
    let secs = |ns: u64| ns as f64 / 1e9;
    let cpu_ns = tx_exit.cpu_ns + rx_exit.cpu_ns;
    metrics.insert("tx_cpu_seconds".into(), secs(tx_exit.cpu_ns));
    metrics.insert("rx_cpu_seconds".into(), secs(rx_exit.cpu_ns));
    if t.compare_cat {
        let cat = yardstick::cat_fastest(&input.path)?;
        let cat_mb_s = input.bytes.len() as f64 / cat.secs / 1e6;
        metrics.insert("cat_mb_s".into(), cat_mb_s);
        if rx_side.seconds > 0.0 {
            metrics.insert("rx_mb_s".into(), rx_side.bps / 1e6);
            metrics.insert("rx_vs_cat".into(), rx_side.bps / 1e6 / cat_mb_s);
        }
        metrics.insert("cat_cpu_seconds".into(), secs(cat.cpu_ns));
        if cpu_ns > 0 {
            metrics.insert("cpu_vs_cat".into(), cat.cpu_ns as f64 / cpu_ns as f64);
        }
    }
    Ok(Outcome {
        time_base: TimeBase::Real,
        tx: tx_side,
        rx: rx_side,
        integrity,
        link: LinkStats {
            wire_bytes,
            utilisation: None,
            counters,
        },
        peer_stages: Some(peer),
        metrics,
        ..Default::default()
    })
}

/// Passes bytes from the sender's stdout to the receiver's stdin through
/// this process, injecting faults on the way, and watches what the sender
/// put on the wire.
fn relay_bytes(
    mut from: PipeLink,
    to: PipeLink,
    fc: Option<&FaultConfig>,
    tap: &mut Tap,
    clock: &dyn Clock,
    policy: &Policy<'_>,
) -> anyhow::Result<Option<FaultStats>> {
    let mut to: Box<dyn RelayOut> = match fc {
        Some(fc) => Box::new(Faulty::new(to, fc).map_err(|e| anyhow!("faults: {e}"))?),
        None => Box::new(to),
    };
    let mut buf = vec![0u8; 1 << 16];
    loop {
        if let Err(stop) = policy.check(clock.now_ns()) {
            bail!("relay: {stop}");
        }
        match from.read(&mut buf, drive::POLL)? {
            ReadOutcome::Data(n) => {
                tap.feed(&buf[..n], clock.now_ns());
                // A receiver that exits early closes the pipe; what it got is what counts.
                if to.write(&buf[..n]).is_err() {
                    break;
                }
            }
            ReadOutcome::Timeout => {}
            ReadOutcome::Eof => break,
        }
    }
    let _ = to.flush();
    let stats = to.fault_stats();
    drop(to); // closes the receiver's stdin: it sees end of stream
    Ok(stats)
}

/// Watches a byte stream and counts the data messages on it, giving the
/// sending side's figures when the sender is an external program.
struct Tap {
    deframer: Deframer,
    channel: u8,
    frames: u64,
    blocks: u64,
    bytes: u64,
    first_ns: Option<u64>,
    last_ns: u64,
    wire_bytes: u64,
}

impl Tap {
    fn new(framing: perfkit_stack::Framing, channel: u8) -> Tap {
        Tap {
            deframer: Deframer::new(framing),
            channel,
            frames: 0,
            blocks: 0,
            bytes: 0,
            first_ns: None,
            last_ns: 0,
            wire_bytes: 0,
        }
    }
    fn feed(&mut self, bytes: &[u8], now: u64) {
        self.wire_bytes += bytes.len() as u64;
        let (mut frames, mut blocks, mut payload) = (0, 0, 0);
        let chn = self.channel;
        self.deframer.push(bytes, |f| {
            frames += 1;
            // len, seqno, chn, blockno(2), payload, crc(2)
            if f.len() >= 7 && f[2] == chn {
                blocks += 1;
                payload += (f.len() - 7) as u64;
            }
        });
        if frames > 0 {
            self.first_ns.get_or_insert(now);
            self.last_ns = now;
        }
        self.frames += frames;
        self.blocks += blocks;
        self.bytes += payload;
    }
    fn side(&self) -> Side {
        let secs = self.first_ns.map_or(0, |f| self.last_ns - f) as f64 / 1e9;
        Side::new(secs, self.blocks, self.bytes)
    }
}

/// The receiving side's figures when the receiver is an external program:
/// its wall time and what it wrote.
fn external_rx(
    output: &Path,
    input: &Input,
    t: &TransferSpec,
    wall: f64,
    ok: bool,
) -> (Side, Integrity) {
    let data = std::fs::read(output).unwrap_or_default();
    let block = u64::from(t.block_size.max(1));
    let blocks = (data.len() as u64).div_ceil(block);
    let sha = if data.is_empty() {
        String::new()
    } else {
        sha256_hex(&data)
    };
    let side = Side::new(wall, blocks, data.len() as u64);
    let integrity = Integrity {
        ok: ok && sha == input.sha256,
        missing_blocks: Vec::new(),
        sha256_sent: input.sha256.clone(),
        sha256_received: sha,
        reason: None,
    };
    (side, integrity)
}

/// Datagrams the receiver had no need to read (it completed first) still
/// arrived: drains them and returns every datagram that arrived, so what
/// the sender sent beyond it was lost.
pub(crate) fn drain(rx: &mut dyn PacketLink) -> u64 {
    let mut buf = vec![0u8; 1 << 16];
    while let Ok(Some(_)) = rx.recv(&mut buf, Duration::from_millis(20)) {}
    rx.stats().packets_in
}

/// `packets_sent`, `packets_arrived` and `packets_lost` from the two ends' counts.
pub(crate) fn packet_counters(sent: u64, arrived: u64, counters: &mut BTreeMap<String, u64>) {
    counters.insert("packets_sent".into(), sent);
    counters.insert("packets_arrived".into(), arrived);
    counters.insert("packets_lost".into(), sent.saturating_sub(arrived));
}

/// Both ends over one of the link crate's kinds (serial devices, a pty
/// pair, TCP, UDP), the sender on a second thread, faults injected in front
/// of the sender's end.
fn registered(
    t: &TransferSpec,
    ends: Ends,
    fc: Option<&FaultConfig>,
    input: &Input,
    cancel: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let name = endpoint::file_name(&input.path);
    let mut tx = endpoint::sender(t, &input.bytes, &name)?;
    let mut rx = endpoint::receiver(t.channel, t.framing(), t.hash_thread);
    let mut injector = Injector::new(ends.tx, fc)?;
    let mut tx_stamper = Stamper::new(injector.end(), t.latency, t.channel, t.framing());
    let mut rx_stamper = Stamper::new(ends.rx, t.latency, t.channel, t.framing());
    let mut tx_end = tx_stamper.end();
    let mut rx_end = rx_stamper.end();
    let (sent, got) = drive::across(
        &WallClock::start(),
        &policy(t, cancel),
        &mut tx,
        t.framing(),
        &mut tx_end,
        &mut rx,
        &mut rx_end,
        ends.chunk,
        Duration::from_secs(2),
    );
    drop(rx_end);
    let wire = sent?;
    let (end, _read) = got?;
    let tx_side = endpoint::side(tx.stats());
    let rx_side = endpoint::rx_side(&rx);
    let seconds = tx_side.seconds.max(rx_side.seconds);
    let utilisation = ends
        .capacity_bytes_per_s
        .filter(|_| seconds > 0.0)
        .map(|cap| wire as f64 / (cap * seconds));
    let mut counters = BTreeMap::from([("ended_idle".to_owned(), (end == RecvEnd::Idle) as u64)]);
    // A fault wrapper reports the counters of the link underneath.
    let on_wire = tx_end.stats().packets_out;
    drop(tx_end);
    let mut metrics = BTreeMap::new();
    if let (Some(a), Some(b)) = (&tx_stamper.stamps, &rx_stamper.stamps) {
        // One clock at both ends: no offset.
        latency::metrics(latency::delays(&a.pairs(), &b.pairs(), 0), &mut metrics);
    }
    drop(tx_stamper);
    let injected = injector.fault_stats();
    if let Some(f) = &injected {
        fault_counters(f, &mut counters);
    }
    if let perfkit_link::End::Packets(link) = rx_stamper.inner() {
        let f = injected.unwrap_or_default();
        let sent = (on_wire + f.packets_lost).saturating_sub(f.packets_duplicated);
        packet_counters(sent, drain(link.as_mut()), &mut counters);
    }
    Ok(Outcome {
        time_base: TimeBase::Real,
        tx: tx_side,
        rx: rx_side,
        integrity: endpoint::integrity(&input.sha256, &rx),
        link: LinkStats {
            wire_bytes: wire,
            utilisation,
            counters,
        },
        metrics,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_fills_placeholders() {
        let mut values = BTreeMap::new();
        values.insert("block_size".to_owned(), serde_json::json!(50));
        values.insert("framing".to_owned(), serde_json::json!("dttk"));
        let cfg = Config { values };
        let argv = vec![
            "x".into(),
            "{input}".into(),
            "--bs={block_size}".into(),
            "{framing}:{output}".into(),
        ];
        let out = substitute(&argv, &cfg, Path::new("/in"), Path::new("/out"));
        assert_eq!(out, vec!["x", "/in", "--bs=50", "dttk:/out"]);
    }
}
