//! A discrete-event simulation of a sender device and a receiver device
//! joined by one direction of a virtual-time UART ([`crate::uart::Line`]),
//! each charged the CPU costs of its [`DeviceProfile`].
//!
//! The two ends are the caller's ([`SimSender`], [`SimReceiver`]), so the
//! real transfer stack (framing, schedule, reassembly) runs unchanged inside
//! the model while this crate stays independent of it.
//!
//! Semantics:
//! - **Sender**: polled at its current virtual time. For a frame it first
//!   spends `send.per_message_ns + send.per_byte_ns x len` of CPU time, then
//!   writes the frame, which blocks per the transmit-buffer rule, then is
//!   polled again. `WaitUntil(t)` idles until `t` (a throttle); `Done` ends it.
//! - **Receiver**: when idle, takes every byte in its receive buffer (waiting
//!   for the next arrival when it is empty, rounded up to its poll interval),
//!   hands them to [`SimReceiver::on_bytes`], and is then busy for
//!   `receive.per_byte_ns x bytes + receive.per_message_ns x messages
//!   completed`. Meanwhile arrivals keep filling the buffer; what finds it
//!   full is lost and counted.
//! - The run stops when the sender is done, the line has drained and the
//!   receiver has processed everything (so every byte written is counted as
//!   delivered or lost), or at the virtual time cap.
//!
//! Events are processed in time order (sender first on ties); the cost is
//! one event per frame plus one per receiver wake-up, so a 140 KB transfer
//! simulates in milliseconds.

use serde::{Deserialize, Serialize};

use perfkit::record::TRIMMED_KEEP;
use perfkit::SiteRecord;

use crate::profile::{Costs, DeviceProfile, ReceiveCosts};
use crate::stages::{Charge, Charger, MessageInfo, Stages};
use crate::timeline::{Sample, Timeline};
use crate::uart::{Line, UartConfig};
use crate::Result;

/// What the sender does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SenderStep<'a> {
    /// Send this frame (one message, already framed for the byte stream).
    Frame(&'a [u8]),
    /// Nothing to send before this virtual time (ns).
    WaitUntil(u64),
    /// The transfer is over.
    Done,
}

/// The sending end, driven in virtual time.
pub trait SimSender {
    /// Called at virtual time `now_ns` when the sender is ready to do work.
    fn poll(&mut self, now_ns: u64) -> SenderStep<'_>;

    /// What the frame the last [`poll`](Self::poll) returned carries, for
    /// the per-stage model (by default: a data message of unknown length).
    fn message_info(&self) -> MessageInfo {
        MessageInfo::default()
    }
}

/// The receiving end, driven in virtual time.
pub trait SimReceiver {
    /// Bytes taken from the receive buffer at `now_ns`; returns how many
    /// messages they completed (each is charged the per-message cost).
    fn on_bytes(&mut self, now_ns: u64, bytes: &[u8]) -> u32;

    /// As [`on_bytes`](Self::on_bytes), also saying what each completed
    /// message was (pushed to `out` in order), for the per-stage model.
    /// By default every message is a data message of unknown length.
    fn on_bytes_info(&mut self, now_ns: u64, bytes: &[u8], out: &mut Vec<MessageInfo>) -> u32 {
        let n = self.on_bytes(now_ns, bytes);
        out.extend((0..n).map(|_| MessageInfo::default()));
        n
    }

    /// True once the receiver needs nothing more (e.g. the file is complete);
    /// reported as [`SimReport::receiver_finished`].
    fn finished(&self) -> bool {
        false
    }
}

/// Settings of one simulation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The line from sender to receiver.
    pub uart: UartConfig,
    /// The sender's costs.
    pub send: Costs,
    /// The receiver's costs.
    pub receive: ReceiveCosts,
    /// Stop at this virtual time even if the transfer is not over.
    pub time_cap_ns: u64,
    /// Per-stage costs ([`crate::stages`]): when set they replace the costs
    /// of `send` and `receive` (not its poll interval), and the report
    /// carries each device's stage table.
    #[serde(default)]
    pub stages: Option<Stages>,
    /// Seed of the stages' spread (0: every call costs its mean).
    #[serde(default)]
    pub spread_seed: u64,
    /// The sender writes each frame in calls of at most this many bytes,
    /// each charged the `uart_write` stage (0: one call per frame).
    #[serde(default)]
    pub write_chunk: usize,
}

impl SimConfig {
    /// A line at `baud` with `bits_per_char`, the sender's transmit buffer
    /// and costs from `sender`, the receiver's receive buffer and costs from
    /// `receiver`, and a cap of one virtual hour.
    pub fn from_profiles(
        baud: u32,
        bits_per_char: u32,
        sender: &DeviceProfile,
        receiver: &DeviceProfile,
    ) -> Self {
        Self {
            uart: UartConfig {
                baud,
                bits_per_char,
                rx_buffer: receiver.uart.rx_buffer,
                tx_buffer: sender.uart.tx_buffer,
            },
            send: sender.send,
            receive: receiver.receive,
            time_cap_ns: 3_600_000_000_000,
            stages: Some(Stages {
                send: sender.stages().send,
                receive: receiver.stages().receive,
            }),
            spread_seed: 0,
            write_chunk: 0,
        }
    }
}

/// Activity of one end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SideReport {
    /// Messages sent (sender) or completed (receiver).
    pub messages: u64,
    /// Bytes written (sender) or taken from the buffer (receiver).
    pub bytes: u64,
    /// Sender: when the first write began. Receiver: when the first
    /// message was completed and processed.
    pub first_message_ns: Option<u64>,
    /// Sender: when the last write returned. Receiver: when the last
    /// message was completed and processed.
    pub last_message_ns: Option<u64>,
    /// Virtual CPU time charged.
    pub busy_ns: u64,
    /// Sender: time blocked in writes, waiting for room in the transmit
    /// buffer (the line's pace).
    #[serde(default)]
    pub write_wait_ns: u64,
}

impl SideReport {
    /// Time from first to last message, ns (0 with fewer than one message).
    pub fn span_ns(&self) -> u64 {
        match (self.first_message_ns, self.last_message_ns) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

/// Outcome of a simulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// The sender's activity.
    pub sender: SideReport,
    /// The receiver's activity.
    pub receiver: SideReport,
    /// Virtual time the run ended.
    pub end_ns: u64,
    /// Bytes put on the wire.
    pub wire_bytes: u64,
    /// Bytes that reached the receive buffer.
    pub delivered_bytes: u64,
    /// Bytes lost to receive-buffer overflow.
    pub overflow_drops: u64,
    /// Most bytes held in the receive buffer at once.
    pub rx_high_water: usize,
    /// Wire bytes / line capacity over the time from the first byte on the
    /// wire to the last byte's arrival (0..=1).
    pub utilisation: f64,
    /// True if the run hit the time cap.
    pub timed_out: bool,
    /// True if the receiver reported it had finished.
    pub receiver_finished: bool,
    /// Events processed (sender polls and receiver wake-ups).
    pub events: u64,
    /// Each device's stage table in virtual time, when the run charged
    /// stages ([`SimConfig::stages`]).
    #[serde(default)]
    pub device: Option<StageTable>,
    /// The link over time.
    #[serde(default)]
    pub timeline: Timeline,
    /// Longest a byte waited in the receive buffer before the receiver
    /// took it, ns.
    #[serde(default)]
    pub max_byte_wait_ns: u64,
    /// Mean of that wait over every byte taken, ns.
    #[serde(default)]
    pub mean_byte_wait_ns: f64,
}

/// The simulated devices' stage tables: per stage (`send.crc16`,
/// `receive.get_next_packet_into`, ...) calls, min, max and cumulative
/// virtual time, and the folded stacks (`send;add_header_and_send;crc16`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTable {
    /// One record per stage that ran, durations in virtual ns.
    pub sites: Vec<SiteRecord<String>>,
    /// Folded stacks with their self time, ns.
    pub folded: Vec<(String, u64)>,
}

/// Collects stage calls during a run.
#[derive(Debug, Default)]
struct Recorder {
    sites: Vec<(String, Vec<u64>, u64)>,
    folded: Vec<(String, u64)>,
}

impl Recorder {
    fn call(&mut self, name: String, ns: u64, bytes: u64) {
        match self.sites.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, d, b)) => {
                d.push(ns);
                *b += bytes;
            }
            None => self.sites.push((name, vec![ns], bytes)),
        }
    }

    fn fold(&mut self, stack: String, ns: u64) {
        match self.folded.iter_mut().find(|(s, _)| *s == stack) {
            Some((_, t)) => *t = t.saturating_add(ns),
            None => self.folded.push((stack, ns)),
        }
    }

    fn finish(self) -> StageTable {
        let sites = self
            .sites
            .into_iter()
            .map(|(name, mut d, bytes)| {
                d.sort_unstable();
                // Nearest rank: the smallest value with at least q of the calls at or below it.
                let rank = |q: f64| ((q * d.len() as f64).ceil() as usize).clamp(1, d.len());
                let q = |q: f64| d[rank(q) - 1];
                // The trimmed mean over the same ranks: the fastest 99 %.
                let kept = &d[..rank(TRIMMED_KEEP)];
                let kept_sum = kept.iter().map(|&x| x as u128).sum::<u128>();
                let tmean = (kept_sum + kept.len() as u128 / 2) / kept.len() as u128;
                SiteRecord {
                    name,
                    calls: d.len() as u64,
                    min_ns: d[0],
                    max_ns: d[d.len() - 1],
                    cum_ns: d.iter().fold(0u64, |a, &x| a.saturating_add(x)),
                    p50_ns: q(0.5),
                    p90_ns: q(0.9),
                    p99_ns: q(0.99),
                    p999_ns: q(0.999),
                    bytes: (bytes > 0).then_some(bytes),
                    tmean_ns: Some(u64::try_from(tmean).unwrap_or(u64::MAX)),
                    cum_cycles: None,
                }
            })
            .collect();
        StageTable {
            sites,
            folded: self.folded,
        }
    }
}

/// The state of the line at `t` for the timeline, without moving it.
fn sample(line: &Line, t: u64) -> Sample {
    let (rx_fill, pending_drops, pending) = line.peek(t);
    let st = line.stats();
    Sample {
        in_flight: line.in_flight(t) as u64,
        rx_fill: rx_fill as u64,
        arrived: st.delivered + st.overflow + pending,
        dropped: st.overflow + pending_drops,
    }
}

/// Runs `sender` and `receiver` over a virtual UART per `cfg`.
pub fn run(
    cfg: &SimConfig,
    sender: &mut dyn SimSender,
    receiver: &mut dyn SimReceiver,
) -> Result<SimReport> {
    let mut line = Line::new(cfg.uart)?;
    let mut buf = vec![0u8; cfg.uart.rx_buffer.min(1 << 16)];
    let mut tx = SideReport::default();
    let mut rx = SideReport::default();
    let mut s_time: u64 = 0;
    let mut s_done = false;
    // The receiver is idle from this time on.
    let mut r_ready: u64 = 0;
    let mut events = 0u64;
    let mut timed_out = false;
    let mut end_ns = 0u64;
    let poll = cfg.receive.poll_interval_ns;
    let mut charger = cfg.stages.map(|s| Charger::new(s, cfg.spread_seed));
    let mut rec = Recorder::default();
    let mut charges: Vec<Charge> = Vec::new();
    let mut frame: Vec<u8> = Vec::new();
    let mut infos: Vec<MessageInfo> = Vec::new();
    // Each write call of the current frame: (its CPU and wait, bytes).
    let mut writes: Vec<(u64, u64)> = Vec::new();
    let mut timeline = Timeline::new();
    // The receiver's current get_next_packet_into call began here.
    let mut rx_call_from: u64 = 0;
    let (mut wait_max, mut wait_sum, mut waited) = (0u64, 0u128, 0u64);

    loop {
        // When does the receiver next take bytes?
        let r_next = if line.rx_len() > 0 {
            Some(r_ready)
        } else {
            line.next_arrival().map(|arrival| {
                if arrival <= r_ready {
                    r_ready
                } else if poll > 0 {
                    r_ready.saturating_add((arrival - r_ready).div_ceil(poll).saturating_mul(poll))
                } else {
                    arrival
                }
            })
        };
        let s_next = (!s_done).then_some(s_time);
        let sender_turn = match (s_next, r_next) {
            (None, None) => break,
            (Some(s), Some(r)) => s <= r,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        let t = if sender_turn {
            s_time
        } else {
            r_next.unwrap_or(r_ready)
        };
        // u64::MAX: time saturated (costs or waits beyond any cap).
        if t > cfg.time_cap_ns || t == u64::MAX {
            timed_out = true;
            end_ns = cfg.time_cap_ns.min(t);
            break;
        }
        events += 1;
        if sender_turn {
            // The frame is copied out so the sender can be asked what it is.
            let step = match sender.poll(s_time) {
                SenderStep::Frame(f) => {
                    frame.clear();
                    frame.extend_from_slice(f);
                    None
                }
                other => Some(other.clone_step()),
            };
            match step {
                None => {
                    let cost = match charger.as_mut() {
                        Some(ch) => {
                            ch.send(&sender.message_info(), frame.len(), &mut charges);
                            charges.iter().fold(0u64, |a, c| a.saturating_add(c.ns))
                        }
                        None => cfg.send.cost_ns(1, frame.len() as u64),
                    };
                    let start = s_time.saturating_add(cost);
                    // One write call per chunk, each its CPU then its wait.
                    let chunk = match cfg.write_chunk {
                        0 => frame.len().max(1),
                        n => n,
                    };
                    let (mut done, mut write_cpu) = (start, 0u64);
                    writes.clear();
                    for piece in frame.chunks(chunk) {
                        let c = charger.as_mut().map_or(0, |ch| ch.write_call(piece.len()));
                        let at = done.saturating_add(c);
                        done = line.write(at, piece);
                        write_cpu = write_cpu.saturating_add(c);
                        writes.push((done - at + c, piece.len() as u64));
                    }
                    let wait = done - start - write_cpu;
                    if charger.is_some() {
                        record_send(&mut rec, &charges, &writes);
                    }
                    timeline.observe(start, sample(&line, start));
                    tx.first_message_ns.get_or_insert(start);
                    tx.last_message_ns = Some(done);
                    tx.messages += 1;
                    tx.bytes += frame.len() as u64;
                    tx.busy_ns += cost + write_cpu;
                    tx.write_wait_ns += wait;
                    s_time = done;
                }
                // Always move on by at least 1 ns, so a sender that keeps
                // asking to wait for the past cannot stall the loop.
                Some(Step::WaitUntil(until)) => s_time = until.max(s_time.saturating_add(1)),
                Some(Step::Done) => {
                    s_done = true;
                    end_ns = end_ns.max(s_time);
                }
            }
        } else {
            // Arrivals by now go into the buffer (as the read would do), so
            // the timeline sees the fill the receiver finds.
            line.advance(t);
            timeline.observe(t, sample(&line, t));
            let (n, w_max, w_sum) = line.read_timed(t, &mut buf);
            if n == 0 {
                // Woke for an arrival that was lost; look again.
                r_ready = t;
                continue;
            }
            wait_max = wait_max.max(w_max);
            wait_sum += w_sum as u128;
            waited += n as u64;
            infos.clear();
            let messages = receiver.on_bytes_info(t, &buf[..n], &mut infos);
            let cost = match charger.as_mut() {
                Some(ch) => {
                    ch.receive(n, &infos, &mut charges);
                    charges.iter().fold(0u64, |a, c| a.saturating_add(c.ns))
                }
                None => cfg.receive.cost_ns(messages as u64, n as u64),
            };
            if charger.is_some() && messages > 0 {
                record_receive(&mut rec, &charges, t.saturating_sub(rx_call_from), messages);
                rx_call_from = t.saturating_add(cost);
            }
            r_ready = t.saturating_add(cost);
            rx.bytes += n as u64;
            rx.busy_ns += cost;
            if messages > 0 {
                rx.messages += messages as u64;
                rx.first_message_ns.get_or_insert(r_ready);
                rx.last_message_ns = Some(r_ready);
            }
            end_ns = end_ns.max(r_ready);
        }
    }

    let ls = line.stats();
    let span = ls
        .first_start_ns
        .map_or(0, |first| ls.last_end_ns.saturating_sub(first));
    Ok(SimReport {
        sender: tx,
        receiver: rx,
        end_ns,
        wire_bytes: ls.written,
        delivered_bytes: ls.delivered,
        overflow_drops: ls.overflow,
        rx_high_water: ls.rx_high_water,
        utilisation: cfg.uart.utilisation(ls.written, span),
        timed_out,
        receiver_finished: receiver.finished(),
        events,
        device: charger.is_some().then(|| rec.finish()),
        timeline,
        max_byte_wait_ns: wait_max,
        mean_byte_wait_ns: if waited > 0 {
            wait_sum as f64 / waited as f64
        } else {
            0.0
        },
    })
}

/// A sender step without the frame's borrow.
enum Step {
    WaitUntil(u64),
    Done,
}

impl SenderStep<'_> {
    fn clone_step(&self) -> Step {
        match *self {
            SenderStep::WaitUntil(t) => Step::WaitUntil(t),
            _ => Step::Done,
        }
    }
}

/// One message's send stages: `add_header_and_send` holds `crc16` and the
/// write calls (`uart.write`: each call's CPU and its wait for room);
/// `read_block` and `meta` run before it.
fn record_send(rec: &mut Recorder, charges: &[Charge], writes: &[(u64, u64)]) {
    let inside = |c: &&Charge| matches!(c.stage, "add_header_and_send" | "crc16");
    let written = writes.iter().fold(0u64, |a, w| a.saturating_add(w.0));
    let call = charges
        .iter()
        .filter(inside)
        .fold(written, |a, c| a.saturating_add(c.ns));
    let bytes = charges
        .iter()
        .find(|c| c.stage == "add_header_and_send")
        .map_or(0, |c| c.bytes);
    rec.call("send.add_header_and_send".into(), call, bytes);
    for c in charges {
        let stack = match c.stage {
            "add_header_and_send" => "send;add_header_and_send".to_owned(),
            "crc16" => "send;add_header_and_send;crc16".to_owned(),
            other => format!("send;{other}"),
        };
        if c.stage != "add_header_and_send" {
            rec.call(format!("send.{}", c.stage), c.ns, c.bytes);
        }
        rec.fold(stack, c.ns);
    }
    for &(ns, bytes) in writes {
        rec.call("send.uart.write".into(), ns, bytes);
    }
    rec.fold("send;add_header_and_send;uart.write".into(), written);
}

/// One wake-up's receive stages. `get_next_packet_into` is timed as the
/// field timed it, waiting included: from the end of the previous message's
/// processing to the bytes that complete this one (`waited_ns`) plus taking
/// them; further messages completed by the same bytes return at once.
fn record_receive(rec: &mut Recorder, charges: &[Charge], waited_ns: u64, messages: u32) {
    let take = charges
        .iter()
        .find(|c| c.stage == "get_next_packet_into")
        .copied();
    let first = waited_ns + take.map_or(0, |c| c.ns);
    for k in 0..messages {
        let (d, b) = if k == 0 {
            (first, take.map_or(0, |c| c.bytes))
        } else {
            (0, 0)
        };
        rec.call("receive.get_next_packet_into".into(), d, b);
    }
    rec.fold("receive;get_next_packet_into".into(), first);
    for c in charges.iter().filter(|c| c.stage != "get_next_packet_into") {
        rec.call(format!("receive.{}", c.stage), c.ns, c.bytes);
        rec.fold(format!("receive;{}", c.stage), c.ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `frames` frames of `len` bytes, the k-th not before `k * gap_ns`.
    struct Frames {
        left: usize,
        sent: u64,
        gap_ns: u64,
        buf: Vec<u8>,
    }

    impl Frames {
        fn new(left: usize, gap_ns: u64, buf: Vec<u8>) -> Self {
            Frames {
                left,
                sent: 0,
                gap_ns,
                buf,
            }
        }
    }

    impl SimSender for Frames {
        fn poll(&mut self, now: u64) -> SenderStep<'_> {
            if self.left == 0 {
                return SenderStep::Done;
            }
            let slot = self.sent * self.gap_ns;
            if now < slot {
                return SenderStep::WaitUntil(slot);
            }
            self.left -= 1;
            self.sent += 1;
            SenderStep::Frame(&self.buf)
        }
    }

    /// Records each call; a message completes every `per` bytes.
    #[derive(Default)]
    struct Calls {
        per: usize,
        seen: usize,
        calls: Vec<(u64, usize)>,
    }

    impl Calls {
        fn every(per: usize) -> Self {
            Calls {
                per,
                ..Calls::default()
            }
        }
    }

    impl SimReceiver for Calls {
        fn on_bytes(&mut self, now: u64, bytes: &[u8]) -> u32 {
            self.calls.push((now, bytes.len()));
            let before = self.seen / self.per;
            self.seen += bytes.len();
            (self.seen / self.per - before) as u32
        }
    }

    fn cfg(rx_buffer: usize, tx_buffer: usize) -> SimConfig {
        SimConfig {
            uart: UartConfig {
                baud: 115_200,
                bits_per_char: 10,
                rx_buffer,
                tx_buffer,
            },
            send: Costs {
                per_message_ns: 1_000,
                per_byte_ns: 10,
            },
            receive: ReceiveCosts::default(),
            time_cap_ns: u64::MAX,
            stages: None,
            spread_seed: 0,
            write_chunk: 0,
        }
    }

    #[test]
    fn one_frame_timeline() {
        let c = cfg(64, 0);
        let mut tx = Frames::new(1, 0, vec![7; 10]);
        let mut rx = Calls::every(10);
        let mut c2 = c;
        c2.receive.per_message_ns = 5_000;
        let r = run(&c2, &mut tx, &mut rx).unwrap();
        // CPU first (1,000 + 10 x 10 ns), then a write that blocks until sent.
        let start = 1_100;
        let done = start + c.uart.wire_ns(10);
        assert_eq!(r.sender.first_message_ns, Some(start));
        assert_eq!(r.sender.last_message_ns, Some(done));
        // An idle receiver with free bytes takes each byte as it arrives.
        assert_eq!(rx.calls.len(), 10);
        for (k, &(t, n)) in rx.calls.iter().enumerate() {
            assert_eq!((t, n), (start + c.uart.wire_ns(k as u64 + 1), 1));
        }
        assert_eq!(r.receiver.last_message_ns, Some(done + 5_000));
        assert_eq!(r.end_ns, done + 5_000);
        assert_eq!((r.wire_bytes, r.overflow_drops), (10, 0));
    }

    #[test]
    fn busy_receiver_overflows_and_then_drains() {
        let mut c = cfg(4, 0);
        c.receive.per_message_ns = 1_000_000_000; // one second per message
        let mut tx = Frames::new(2, 0, vec![1; 10]);
        // Every call completes a message, so the first byte makes it busy.
        let mut rx = Calls::every(1);
        let r = run(&c, &mut tx, &mut rx).unwrap();
        // Byte 1 is taken; of the 19 that arrive while busy, 4 fit.
        assert_eq!(r.overflow_drops, 15);
        assert_eq!(r.delivered_bytes, 5);
        assert_eq!(rx.calls.len(), 2);
        assert_eq!(
            rx.calls[1].1, 4,
            "the second wake-up takes the whole buffer"
        );
        assert_eq!(r.rx_high_water, 4);
    }

    #[test]
    fn throttle_spaces_frames_and_fifo_returns_early() {
        let c = cfg(1000, 32);
        let gap = 10_000_000;
        let mut tx = Frames::new(3, gap, vec![0; 20]);
        let mut rx = Calls::every(20);
        let r = run(&c, &mut tx, &mut rx).unwrap();
        // 20 bytes fit the 32-byte FIFO, so each write returns at once; the
        // last frame is written at 2 x gap + CPU.
        assert_eq!(r.sender.first_message_ns, Some(1_200));
        assert_eq!(r.sender.last_message_ns, Some(2 * gap + 1_200));
        assert_eq!(r.receiver.messages, 3);
        let line_time = c.uart.wire_ns(20);
        assert_eq!(r.end_ns, 2 * gap + 1_200 + line_time);
        let u = r.utilisation;
        let expect = c.uart.utilisation(60, 2 * gap + line_time);
        assert!((u - expect).abs() < 1e-12, "{u} vs {expect}");
    }

    #[test]
    fn absurd_costs_end_at_the_cap_without_overflow() {
        let mut c = cfg(64, 0);
        c.send.per_message_ns = u64::MAX;
        c.time_cap_ns = u64::MAX;
        let mut tx = Frames::new(5, 0, vec![0; 3]);
        let mut rx = Calls::every(3);
        let r = run(&c, &mut tx, &mut rx).unwrap();
        assert!(r.timed_out);
    }

    #[test]
    fn chunked_writes_pay_each_call_and_leave_the_line_idle_between() {
        let mut c = cfg(64, 0);
        c.send = Costs::default();
        let mut st = Stages::default();
        st.send.uart_write.per_call_us = 1.0;
        c.stages = Some(st);
        c.write_chunk = 4;
        let mut tx = Frames::new(1, 0, vec![7; 10]);
        let mut rx = Calls::every(10);
        let r = run(&c, &mut tx, &mut rx).unwrap();
        // Three calls (4 + 4 + 2 bytes), each 1 us of CPU after the last
        // returned; a blocking write returns when its bytes are sent.
        let w = |n| c.uart.wire_ns(n);
        assert_eq!(r.sender.last_message_ns, Some(3_000 + w(4) + w(4) + w(2)));
        assert_eq!(r.sender.busy_ns, 3_000);
        let t = r.device.unwrap();
        let calls = t
            .sites
            .iter()
            .find(|s| s.name == "send.uart.write")
            .unwrap();
        assert_eq!((calls.calls, calls.bytes), (3, Some(10)));
        assert_eq!(calls.max_ns, 1_000 + w(4));
    }

    #[test]
    fn poll_interval_delays_wake_ups() {
        let mut c = cfg(64, 0);
        c.receive.poll_interval_ns = 1_000_000;
        let mut tx = Frames::new(1, 0, vec![0; 3]);
        let mut rx = Calls::every(3);
        run(&c, &mut tx, &mut rx).unwrap();
        // All three bytes arrive within the first 1 ms: one wake-up at 1 ms.
        assert_eq!(rx.calls, vec![(1_000_000, 3)]);
    }
}
