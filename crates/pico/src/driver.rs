//! The emulated run: host side of the transfer in lockstep with the runner.
//!
//! The host's ends are the engine's pumps ([`TxPump`], [`RxPump`]) and its
//! one [`Policy`]; the loop around them is the lockstep with the runner, whose
//! cycle count is the run's clock: the pumps get it in ns, the policy checks
//! it once per slice.

use std::collections::BTreeMap;
use std::path::Path;

use perfkit::SiteRecord;
use perfkit_engine::{Next, Policy, RxPump, Stop, TxPump};
use perfkit_stack::framing::FLAG;
use perfkit_stack::wire::{self, Packet};
use perfkit_stack::{Framing, MemorySource, Receiver, Sender, SenderConfig, VecSink};
use sha2::{Digest, Sha256};

use crate::emulator::{Emulator, Slice, CPU_HZ};
use crate::proto::{self, Config, DeviceRole, Hello, Message, ReportCollector};
use crate::{
    Error, ErrorKind, Integrity, LinkStats, PicoRunConfig, PicoRunOutcome, Side, Stage, Stages,
    BITS_PER_CHAR,
};

/// Virtual time slice while the host only listens (5 ms: about 58 bytes).
const LISTEN_SLICE: u64 = CPU_HZ / 200;
/// How long the device may take to boot and answer HELLO/READY.
const HANDSHAKE_LIMIT: u64 = CPU_HZ;
/// Host sends FINISH this long after its END if the device has not reported.
const FINISH_AFTER: u64 = CPU_HZ;

/// What the device said on the control channel.
#[derive(Default)]
pub(crate) struct Control {
    pub(crate) hello: Option<Hello>,
    /// When HELLO arrived (cycles; the host's clock on hardware).
    pub(crate) hello_at: u64,
    pub(crate) ready: bool,
    pub(crate) report: ReportCollector,
    /// Control messages that failed to decode.
    pub(crate) bad_control: u64,
}

impl Control {
    /// Takes `frame` if it is on the control channel (whether or not it
    /// decodes); `t` is when it arrived, in cycles.
    fn claim(&mut self, frame: &[u8], t: u64) -> bool {
        if frame.get(2) != Some(&proto::CHANNEL) {
            return false;
        }
        let packet = Packet::new_checked(frame)
            .ok()
            .filter(|p| p.verify_crc().is_ok());
        let msg = packet
            .as_ref()
            .and_then(|p| Message::decode(p.payload()).ok());
        match msg {
            // The firmware says HELLO again when it is ready for the
            // next run; the first one is this run's.
            Some(Message::Hello(h)) => {
                if self.hello.is_none() {
                    self.hello = Some(h);
                    self.hello_at = t;
                }
            }
            Some(Message::Ready) => self.ready = true,
            Some(m) => {
                self.report.push(m);
            }
            None => self.bad_control += 1,
        }
        true
    }
}

/// The host's receiver: the file when the device sends; when it receives,
/// only the deframer of the device's control messages.
pub(crate) fn host_receiver() -> Receiver<VecSink> {
    Receiver::new(0, VecSink::new(16 << 20), Framing::Dttk)
}

/// Host-side view of everything the device sends.
pub(crate) struct DeviceSide<'r> {
    char_cycles: f64,
    pub(crate) ctl: Control,
    /// The host's receiver; it deframes the whole stream and hands the
    /// control channel's frames to `ctl`.
    pub(crate) rx: RxPump<'r, VecSink>,
    /// Bytes of data frames (not the control protocol) the device sent.
    pub(crate) data_wire_bytes: u64,
    pending_bytes: u64,
    pub(crate) overruns: u64,
    /// (virtual cycle, overruns so far) at each slice end where it changed.
    overrun_log: Vec<(u64, u64)>,
}

impl<'r> DeviceSide<'r> {
    pub(crate) fn new(baud: u32, receiver: &'r mut Receiver<VecSink>) -> Self {
        DeviceSide {
            char_cycles: BITS_PER_CHAR as f64 * CPU_HZ as f64 / baud as f64,
            ctl: Control::default(),
            rx: RxPump::new(receiver),
            data_wire_bytes: 0,
            pending_bytes: 0,
            overruns: 0,
            overrun_log: Vec::new(),
        }
    }

    pub(crate) fn feed_slice(&mut self, slice: &Slice) {
        if slice.overruns != self.overruns {
            self.overrun_log.push((slice.now, slice.overruns));
        }
        self.overruns = slice.overruns;
        for (t, bytes) in &slice.runs {
            self.feed(*t, bytes);
        }
    }

    /// Takes a run of bytes whose first byte ended at cycle `t_first`.
    pub(crate) fn feed(&mut self, t_first: u64, bytes: &[u8]) {
        // A dttk frame can only end on a FLAG byte: fed in pieces that each
        // end on one, a frame completes on its piece's last byte, and that
        // byte's time is the frame's.
        let mut offset = 0;
        for piece in bytes.split_inclusive(|&b| b == FLAG) {
            offset += piece.len();
            let t = t_first + ((offset - 1) as f64 * self.char_cycles).round() as u64;
            self.pending_bytes += piece.len() as u64;
            let mut control = false;
            let ctl = &mut self.ctl;
            let data = self.rx.on_bytes_shared(
                piece,
                cycles_to_ns(t),
                |frame| {
                    let theirs = ctl.claim(frame, t);
                    control |= theirs;
                    theirs
                },
                |_| {},
            );
            if data > 0 {
                self.data_wire_bytes += self.pending_bytes;
            }
            if control || data > 0 {
                self.pending_bytes = 0;
            }
        }
    }
}

/// `PERFKIT_PICO_TRACE=1` prints the device's bytes as they arrive.
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("PERFKIT_PICO_TRACE").is_some_and(|v| v != "0"))
}

pub(crate) fn cycles_to_ns(c: u64) -> u64 {
    // 8 ns per cycle at 125 MHz; u128 keeps any rate exact.
    (c as u128 * 1_000_000_000 / CPU_HZ as u128) as u64
}

pub(crate) fn ns_to_cycles_ceil(ns: u64) -> u64 {
    (ns as u128 * CPU_HZ as u128).div_ceil(1_000_000_000) as u64
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The run's one cancel and deadline policy (`timeout_s` from the run's
/// start: the emulator's boot, or the board's reset).
pub(crate) fn policy<'a>(cfg: &PicoRunConfig<'a>) -> Policy<'a> {
    let p = Policy::seconds(cfg.timeout_s);
    match cfg.cancel {
        Some(flag) => p.cancel_on(flag),
        None => p,
    }
}

impl From<Stop> for Error {
    fn from(s: Stop) -> Self {
        Error::new(ErrorKind::Stopped(s))
    }
}

/// The host's sender when the device receives: the input under its file name.
pub(crate) fn host_sender<'i>(
    cfg: &'i PicoRunConfig<'_>,
    input: &'i [u8],
) -> Result<Sender<MemorySource<'i>>, Error> {
    let name = cfg
        .input
        .file_name()
        .map_or(&b"input"[..], |n| n.as_encoded_bytes());
    Sender::new(MemorySource::new(input, name), sender_config(cfg)).map_err(|e| {
        Error::new(ErrorKind::Config {
            key: "sender",
            message: e.to_string(),
        })
    })
}

/// A failed step of the host's sender.
pub(crate) fn host_sender_error(e: perfkit_engine::Error) -> Error {
    match e {
        perfkit_engine::Error::Stopped(s) => s.into(),
        e => Error::device(format!("host {e}")),
    }
}

/// Frames a control message of the host protocol.
pub(crate) fn control_frame(seq: u8, message: &Message<'_>) -> Vec<u8> {
    let mut payload = [0u8; wire::MAX_PAYLOAD];
    let len = message
        .encode(&mut payload)
        .expect("control messages fit a payload");
    let payload = &payload[..len];
    let mut msg = [0u8; wire::MAX_MESSAGE];
    let n = wire::build(&mut msg, seq, proto::CHANNEL, 0, payload.len(), |p| {
        p.copy_from_slice(payload);
        Ok(())
    })
    .expect("control payloads are short");
    let mut out = vec![0u8; Framing::Dttk.max_encoded_len(n)];
    let m = Framing::Dttk
        .encode(&msg[..n], &mut out)
        .expect("sized by max_encoded_len");
    out.truncate(m);
    out
}

/// The CONFIG message for a run.
pub(crate) fn config_message(cfg: &PicoRunConfig<'_>) -> Message<'static> {
    Message::Config(Config {
        role: cfg.role,
        blocksz: cfg.block_size,
        start_meta: cfg.start_meta as u16,
        meta_every: cfg.meta_every as u16,
        repeats: cfg.repeats as u8,
        throttle_pps: cfg.throttle_pps as u16,
        baud: cfg.baud,
    })
}

/// The host sender's settings when the device receives.
pub(crate) fn sender_config(cfg: &PicoRunConfig<'_>) -> SenderConfig {
    SenderConfig {
        block_size: cfg.block_size,
        start_meta: cfg.start_meta,
        meta_every: cfg.meta_every,
        repeats: cfg.repeats,
        throttle_pps: cfg.throttle_pps,
        ..SenderConfig::default()
    }
}

/// Runs the emulator to `until` (one slice) and feeds what the device sent.
fn step(emu: &mut Emulator, dev: &mut DeviceSide<'_>, until: u64) -> Result<(), Error> {
    let slice = emu.run_until(until)?;
    if trace() {
        for (t, b) in &slice.runs {
            eprintln!(
                "pico: t={t} device sent {} bytes: {:02x?}",
                b.len(),
                &b[..b.len().min(48)]
            );
        }
    }
    dev.feed_slice(&slice);
    Ok(())
}

/// Listens slice by slice until `done`, checking the policy before each
/// slice; a handshake also has its own `limit` (cycles).
fn wait_for(
    emu: &mut Emulator,
    dev: &mut DeviceSide<'_>,
    policy: &Policy<'_>,
    limit: Option<u64>,
    what: &str,
    done: impl Fn(&DeviceSide<'_>) -> bool,
) -> Result<(), Error> {
    let deadline = limit.map(|l| emu.now() + l);
    while !done(dev) {
        policy.check(cycles_to_ns(emu.now()))?;
        if let (Some(limit), Some(d)) = (limit, deadline) {
            if emu.now() >= d {
                return Err(Error::device(format!(
                    "no {what} from the firmware within {:.1} virtual seconds",
                    limit as f64 / CPU_HZ as f64
                )));
            }
        }
        let t = emu.now() + LISTEN_SLICE;
        step(emu, dev, deadline.map_or(t, |d| t.min(d)))?;
    }
    Ok(())
}

pub(crate) fn run_emulated(
    cfg: &PicoRunConfig<'_>,
    runner: &Path,
) -> Result<PicoRunOutcome, Error> {
    let input = std::fs::read(&cfg.input).map_err(|e| Error::io(&cfg.input, e))?;
    if input.is_empty() {
        return Err(Error::new(ErrorKind::Config {
            key: "input",
            message: format!("{} is empty", cfg.input.display()),
        }));
    }
    let policy = policy(cfg);
    let mut emu = Emulator::spawn(runner, &cfg.elf, cfg.baud)?;
    let mut host_rx = host_receiver();
    let mut dev = DeviceSide::new(cfg.baud, &mut host_rx);
    let char_cycles = dev.char_cycles;

    let handshake = Some(HANDSHAKE_LIMIT);
    wait_for(&mut emu, &mut dev, &policy, handshake, "HELLO", |d| {
        d.ctl.hello.is_some()
    })?;
    let hello = dev.ctl.hello.expect("waited for it");
    if cfg.role == DeviceRole::Receiver && input.len() as u64 > hello.rx_capacity as u64 {
        return Err(Error::new(ErrorKind::Config {
            key: "input",
            message: format!(
                "{} is {} bytes; the device receives at most {}",
                cfg.input.display(),
                input.len(),
                hello.rx_capacity
            ),
        }));
    }
    let mut ctl_seq = 0u8;
    emu.write(&control_frame(ctl_seq, &config_message(cfg)))?;
    ctl_seq = ctl_seq.wrapping_add(1);
    wait_for(&mut emu, &mut dev, &policy, handshake, "READY", |d| {
        d.ctl.ready
    })?;

    // Host side of the transfer.
    let mut host_tx: Option<(Side, u64)> = None;
    match cfg.role {
        DeviceRole::Sender => {
            wait_for(&mut emu, &mut dev, &policy, None, "report", |d| {
                d.ctl.report.is_done()
            })?;
        }
        DeviceRole::Receiver => {
            let mut sender = host_sender(cfg, &input)?;
            let mut tx = TxPump::framed(&mut sender, Framing::Dttk);
            let mut t = emu.now();
            let mut wire_free = t as f64;
            let mut wire_bytes = 0u64;
            let start = t;
            loop {
                step(&mut emu, &mut dev, t)?;
                if dev.ctl.report.is_done() {
                    break; // the device gave up early
                }
                let now_ns = cycles_to_ns(t);
                policy.check(now_ns)?;
                match tx.poll(now_ns).map_err(host_sender_error)? {
                    Next::Send(frame) => {
                        emu.write(frame)?;
                        wire_bytes += frame.len() as u64;
                        // Blocking write, no transmit buffer: the next poll
                        // comes when these bytes have left.
                        wire_free = wire_free.max(t as f64) + frame.len() as f64 * char_cycles;
                        t = wire_free.ceil() as u64;
                    }
                    Next::WaitUntil(ns) => t = ns_to_cycles_ceil(ns).max(t + 1),
                    Next::Done => break,
                }
            }
            let end = wire_free.ceil() as u64;
            let stats = *sender.stats();
            let secs = (end - start) as f64 / CPU_HZ as f64;
            let mut side = Side::new(secs, stats.blocks, stats.bytes);
            let c = *sender.counters();
            side.errors.insert("throttled".into(), c.throttled);
            host_tx = Some((side, wire_bytes));
            // Wait for the device's report; nudge it with FINISH if it waits
            // for more (blocks lost and END seen, or END itself lost).
            let finish_at = end + FINISH_AFTER;
            let mut finished = false;
            while !dev.ctl.report.is_done() {
                if let Err(stop) = policy.check(cycles_to_ns(emu.now())) {
                    if trace() {
                        let state = emu.state().unwrap_or_default();
                        eprintln!("pico: no report; {} RX overruns; {state}", dev.overruns);
                    }
                    return Err(stop.into());
                }
                if !finished && emu.now() >= finish_at {
                    emu.write(&control_frame(ctl_seq, &Message::Finish))?;
                    finished = true;
                }
                let t = emu.now() + LISTEN_SLICE;
                step(&mut emu, &mut dev, t)?;
            }
        }
    }
    let out = finish(cfg, &input, dev, host_tx, |addr, len| {
        emu.read_memory(addr, len)
    });
    drop(emu);
    out
}

/// Builds the outcome from the device's report and the host side's figures;
/// `read_mem` reads the device's RAM (the received file).
pub(crate) fn finish(
    cfg: &PicoRunConfig<'_>,
    input: &[u8],
    dev: DeviceSide<'_>,
    host_tx: Option<(Side, u64)>,
    mut read_mem: impl FnMut(u32, u32) -> Result<Vec<u8>, Error>,
) -> Result<PicoRunOutcome, Error> {
    let ctl = &dev.ctl;
    let hello = ctl.hello.ok_or_else(|| Error::device("no HELLO"))?;
    // The report is whole once DONE arrived; nothing else follows.
    ctl.report
        .check()
        .map_err(|e| Error::device(format!("device report: {e}")))?;
    let summary = ctl.report.summary.expect("checked");
    let tick_hz = hello.tick_hz.max(1) as u64;
    let device_secs = summary.end_ticks.saturating_sub(summary.start_ticks) as f64 / tick_hz as f64;
    let mut device_side = Side::new(device_secs, summary.blocks as u64, summary.bytes as u64);
    let device_counters: BTreeMap<String, u64> = ctl
        .report
        .counters
        .iter()
        .map(|(k, v)| (k.clone(), *v as u64))
        .collect();
    device_side.errors = device_counters
        .iter()
        .filter(|(k, _)| is_error_counter(k))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let mut device_stages = device_stages(&ctl.report.sites, tick_hz);
    device_stages.probe_ns_per_scope = device_counters
        .get("probe_cycles_per_scope")
        .map(|&c| c as f64 * 1e9 / tick_hz as f64);

    let sha_sent = sha256_hex(input);
    let (tx, rx, received, wire_bytes, missing) = match cfg.role {
        DeviceRole::Sender => {
            let rx = dev.rx.receiver();
            let stats = *rx.stats();
            let mut side = Side::new(stats.elapsed_ns() as f64 / 1e9, stats.blocks, stats.bytes);
            let c = *rx.counters();
            let d = *rx.deframer_stats();
            for (k, v) in [
                ("crc_errors", c.link.crc_errors),
                ("bad_lengths", c.link.bad_lengths + d.bad_lengths),
                ("seq_gaps", c.link.seq_gaps),
                ("duplicates", c.duplicates),
                ("junk_bytes", d.junk_bytes),
                ("protocol_violations", d.protocol_violations),
                ("frame_overflows", d.overflows),
            ] {
                side.errors.insert(k.into(), v);
            }
            let missing: Vec<u32> = rx.missing_blocks().collect();
            let complete = rx.state() == perfkit_stack::State::Complete;
            let data = &rx.sink().data;
            let received = if complete || !data.is_empty() {
                data.clone()
            } else {
                Vec::new()
            };
            (device_side, side, received, dev.data_wire_bytes, missing)
        }
        DeviceRole::Receiver => {
            let (side, wire_bytes) = host_tx.expect("host sent");
            let received = if summary.buf_len > 0 {
                read_mem(summary.buf_addr, summary.buf_len)?
            } else {
                Vec::new()
            };
            let bs = cfg.block_size as usize;
            let missing = input
                .chunks(bs)
                .enumerate()
                .filter(|(i, blk)| received.get(i * bs..i * bs + blk.len()) != Some(*blk))
                .map(|(i, _)| i as u32)
                .collect();
            (side, device_side, received, wire_bytes, missing)
        }
    };

    if let Some(out) = &cfg.output {
        std::fs::write(out, &received).map_err(|e| Error::io(out, e))?;
    }
    let sha_received = if received.is_empty() {
        String::new()
    } else {
        sha256_hex(&received)
    };
    let integrity = Integrity {
        ok: sha_received == sha_sent,
        missing_blocks: missing,
        sha256_sent: sha_sent,
        sha256_received: sha_received,
        reason: None,
    };
    let bytes_per_sec = cfg.baud as f64 / BITS_PER_CHAR as f64;
    let mut link = LinkStats {
        wire_bytes,
        utilisation: (tx.seconds > 0.0).then(|| wire_bytes as f64 / (bytes_per_sec * tx.seconds)),
        counters: BTreeMap::new(),
    };
    // Overruns while the device was receiving, and after it stopped reading
    // (a receiver that completed early while the host still sends repeats).
    // The device counts ticks from shortly after reset, before its HELLO:
    // its end is at most `hello_at` later in the runner's time. Slices are a
    // few ms at most, so the split is that precise.
    let end_cycles =
        (summary.end_ticks as u128 * CPU_HZ as u128 / tick_hz as u128) as u64 + ctl.hello_at;
    let during = dev
        .overrun_log
        .iter()
        .take_while(|(t, _)| *t <= end_cycles)
        .last()
        .map_or(0, |(_, n)| *n);
    if trace() {
        eprintln!(
            "pico: device end at cycle <= {end_cycles}; overruns at {:?}",
            dev.overrun_log
        );
    }
    link.counters.insert("uart_rx_overruns".into(), during);
    link.counters
        .insert("uart_rx_overruns_after_end".into(), dev.overruns - during);
    link.counters.insert("bad_control".into(), ctl.bad_control);
    let run_seconds = summary.end_ticks as f64 / tick_hz as f64;
    Ok(PicoRunOutcome {
        role: cfg.role,
        tx,
        rx,
        integrity,
        link,
        device_stages,
        device_counters,
        device_status: summary.status_text().to_owned(),
        device_cpu_hz: hello.cpu_hz as u64,
        run_seconds,
    })
}

/// Device counters that count errors (the rest are activity and timing).
fn is_error_counter(name: &str) -> bool {
    matches!(
        name,
        "crc_errors"
            | "bad_lengths"
            | "seq_gaps"
            | "junk_bytes"
            | "protocol_violations"
            | "frame_overflows"
            | "missing_blocks"
            | "uart_rx_errors"
    )
}

/// Device site records (in device ticks) as the results model's stages.
pub(crate) fn device_stages(sites: &[SiteRecord<String>], tick_hz: u64) -> Stages {
    let ns = |ticks: u64| (ticks as u128 * 1_000_000_000 / tick_hz as u128) as u64;
    let mut v: Vec<Stage> = sites
        .iter()
        .map(|s| SiteRecord {
            tmean_ns: None,
            cum_cycles: (tick_hz == CPU_HZ).then_some(s.cum_ns),
            ..s.clone().map_durations(ns)
        })
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Stages {
        sites: v,
        folded: Vec::new(),
        probe_ns_per_scope: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_side_splits_control_and_data_with_times() {
        // A READY control frame followed by a data frame, as one byte run.
        let mut bytes = control_frame(0, &Message::Ready);
        let ready_len = bytes.len();
        let mut msg = [0u8; 64];
        let n = wire::build(&mut msg, 0, 0x80, 0, 1, |p| {
            p[0] = 0xFF; // END
            Ok(())
        })
        .unwrap();
        let mut f = [0u8; 200];
        let m = Framing::Dttk.encode(&msg[..n], &mut f).unwrap();
        bytes.extend_from_slice(&f[..m]);
        let mut rx = host_receiver();
        let mut d = DeviceSide::new(115_200, &mut rx);
        d.feed(1000, &bytes);
        assert!(d.ctl.ready);
        assert_eq!(d.data_wire_bytes, m as u64);
        assert_eq!(d.rx.receiver().counters().link.messages, 1);
        // Its time is the last byte's: 1000 + (len - 1) character times.
        let t = d.rx.receiver().stats().last_ns;
        let last = 1000 + ((ready_len + m - 1) as f64 * d.char_cycles).round() as u64;
        assert_eq!(t, cycles_to_ns(last));
    }

    #[test]
    fn the_first_hello_is_the_runs() {
        let hello = Message::Hello(Hello {
            cpu_hz: 125_000_000,
            tick_hz: 125_000_000,
            image_len: 1,
            rx_capacity: 2,
        });
        let mut rx = host_receiver();
        let mut d = DeviceSide::new(115_200, &mut rx);
        d.feed(100, &control_frame(0, &hello));
        let first = d.ctl.hello_at;
        // After its report the firmware says HELLO again, ready for more.
        d.feed(1_000_000, &control_frame(9, &hello));
        assert_eq!(d.ctl.hello_at, first);
        assert!((100..1_000_000).contains(&first));
    }

    #[test]
    fn corrupt_control_frames_are_counted() {
        let mut bytes = control_frame(0, &Message::Ready);
        let k = bytes.len() - 3;
        bytes[k] ^= 0x01; // break the CRC
        let mut rx = host_receiver();
        let mut d = DeviceSide::new(115_200, &mut rx);
        d.feed(0, &bytes);
        assert!(!d.ctl.ready);
        assert_eq!(d.ctl.bad_control, 1);
        assert_eq!(d.rx.receiver().counters().link.messages, 0);
    }

    #[test]
    fn only_error_counters_are_errors() {
        assert!(is_error_counter("crc_errors"));
        assert!(!is_error_counter("rx_message_cycles_max"));
        assert!(!is_error_counter("duplicates"));
    }

    #[test]
    fn stages_convert_ticks_to_ns() {
        let s = device_stages(
            &[SiteRecord {
                name: "wire::crc16".into(),
                calls: 2,
                min_ns: 125,
                max_ns: 250,
                cum_ns: 375,
                p50_ns: 125,
                p90_ns: 250,
                p99_ns: 250,
                p999_ns: 249,
                bytes: Some(10),
                tmean_ns: None,
                cum_cycles: None,
            }],
            CPU_HZ,
        );
        let st = &s.sites[0];
        assert_eq!((st.min_ns, st.max_ns, st.cum_ns), (1000, 2000, 3000));
        assert_eq!((st.p50_ns, st.p99_ns, st.p999_ns), (1000, 2000, 1992));
        assert_eq!((st.calls, st.bytes), (2, Some(10)));
        assert_eq!(st.cum_cycles, Some(375));
    }
}
