//! One complete measured run: receiver thread, sender (perfkit's or spead2's),
//! verification, figures. This is what the harness's `heaps` scenario kind
//! calls for each point of a sweep.
//!
//! The data follow spead2's tutorial: heap `i` carries a timestamp item
//! (0x1600, `u40`, value `i * heap_size`) and an `adc_samples` item (0x3300,
//! `int8[heap_size]`, every byte `i mod 256`); the first heap also carries both
//! descriptors; a stop heap ends the stream. The receiver derives `i` from the
//! timestamp and checks every sample byte.
//!
//! Figures are sender-side, as the tutorial measures: MB/s = payload bytes /
//! seconds from the first heap built to the last data heap handed to the
//! kernel. Loopback drops datagrams when the receiver falls behind; that loss
//! is reported in [`RxStats`], never hidden.
//!
//! Nothing here looks for files: the caller says where spead2's Python and
//! sender script are ([`Spead2Sender`]), and passes the cancel flag that
//! both ends watch (an [`ErrorKind::Interrupted`] error once it is set).

use crate::affinity::{self, CpuClaim, CpuSet, ThreadCpus};
use crate::descriptor::{DescriptorRepr, ItemDescriptor};
use crate::packetize::{Item, Packetizer};
use crate::reasm::{self, Heap, Stream};
use crate::recv::{self, UdpReceiver};
use crate::send::{self, HeapRef, Mode, UdpSender};
use crate::usage::{Counts, Usage};
use crate::wire::{self, id};
use serde::{Deserialize, Serialize};
use std::borrow::ToOwned;
use std::format;
use std::io::{self, BufRead, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::string::{String, ToString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use std::vec::Vec;
use std::{fmt, thread};

/// Item ID of the timestamp.
pub const TIMESTAMP_ID: u32 = 0x1600;
/// Item ID of the samples.
pub const SAMPLES_ID: u32 = 0x3300;

/// Which sender runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Impl {
    /// This crate's [`UdpSender`].
    Perfkit,
    /// spead2's Python API (`scripts/spead2/send.py`) as a child process,
    /// started as [`RunConfig::spead2`] says.
    Spead2,
}

impl Impl {
    /// Name in scenario files and results.
    pub fn as_str(self) -> &'static str {
        match self {
            Impl::Perfkit => "perfkit",
            Impl::Spead2 => "spead2",
        }
    }
}

impl fmt::Display for Impl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Impl {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "perfkit" => Ok(Impl::Perfkit),
            "spead2" => Ok(Impl::Spead2),
            other => Err(Error::config(format!(
                "unknown implementation {other:?} (expected perfkit or spead2)"
            ))),
        }
    }
}

/// One run's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunConfig {
    /// Bytes of samples per heap.
    pub heap_size: usize,
    /// Largest datagram.
    pub packet_size: usize,
    /// How heaps are submitted (spead2 has no separate GSO switch: its
    /// batched API uses GSO where the kernel allows, so `batch` and
    /// `batch+gso` both run its batched sender).
    pub mode: Mode,
    /// Whose sender.
    pub implementation: Impl,
    /// Payload bytes to send (rounded down to whole heaps, at least one).
    pub volume_bytes: u64,
    /// The sender stops early after this long.
    pub time_cap: Duration,
    /// Sender rate limit in bytes/s, 0 = unlimited.
    pub rate_bytes_per_s: u64,
    /// Receiver address (port 0 picks a free port).
    pub addr: SocketAddr,
    /// How to start spead2's sender; needed when `implementation` is
    /// [`Impl::Spead2`].
    pub spead2: Option<Spead2Sender>,
    /// Receiver limits.
    pub reasm: reasm::Config,
    /// The receiving end's nice value for the run (-20..=19, lower runs
    /// first; see [`crate::priority`]), `None` = as it was started. Applies
    /// to perfkit's receiving thread, or to spead2's receiver process.
    pub rx_nice: Option<i32>,
    /// The one CPU the receiving end runs on for the run (see
    /// [`crate::affinity`]): perfkit's receiving thread, or spead2's
    /// receiver process, threads and all. `None` = wherever the scheduler
    /// puts it.
    pub rx_cpu: Option<usize>,
    /// A CPU the sender keeps off for the run: perfkit's sending threads,
    /// or spead2's sender process. Set it to [`RunConfig::rx_cpu`] when
    /// both ends share this machine, so the receiver has its CPU to itself.
    /// `None` = any CPU.
    pub tx_avoid_cpu: Option<usize>,
    /// The receiving socket's buffer asked for (SO_RCVBUF, forced past
    /// `rmem_max` when privileged; Linux grants twice it), bytes: what
    /// holds datagrams while the receiver is off its core or behind.
    /// perfkit's receiver or spead2's alike.
    pub rx_buffer: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            heap_size: 1 << 20,
            packet_size: 9000,
            mode: Mode::BatchGso,
            implementation: Impl::Perfkit,
            volume_bytes: 256 << 20,
            time_cap: Duration::from_secs(5),
            rate_bytes_per_s: 0,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            spead2: None,
            reasm: reasm::Config {
                max_heap_size: 64 << 20,
                max_live_heaps: 32,
                ..reasm::Config::default()
            },
            rx_nice: None,
            rx_cpu: None,
            tx_avoid_cpu: None,
            rx_buffer: recv::Config::default().rcvbuf,
        }
    }
}

impl RunConfig {
    /// What [`run`] refuses before starting: sizes out of range, a spead2
    /// sender without its command.
    pub fn validate(&self) -> Result<(), Error> {
        if self.heap_size == 0 || self.heap_size as u64 > self.reasm.max_heap_size {
            return Err(Error::config(format!(
                "heap size {} must be between 1 and {} bytes",
                self.heap_size, self.reasm.max_heap_size
            )));
        }
        if self.packet_size < 64 || self.packet_size > 65_000 {
            return Err(Error::config(format!(
                "packet size {} must be between 64 and 65000 bytes",
                self.packet_size
            )));
        }
        if self.implementation == Impl::Spead2 {
            spead2_command(self)?;
        }
        Ok(())
    }
}

/// The command that runs spead2's sender: `PYTHON SCRIPT --mode ... HOST PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spead2Sender {
    /// A Python that imports `spead2` and `numpy`.
    pub python: PathBuf,
    /// The sender script (`scripts/spead2/send.py` in the repository).
    pub script: PathBuf,
}

/// Receiver-side results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RxStats {
    /// Data heaps the sender reported sending.
    pub heaps_expected: u64,
    /// Heaps that arrived complete (data heaps, the stop heap included).
    pub heaps_complete: u64,
    /// Heaps evicted or cut off before all their bytes arrived.
    pub heaps_incomplete: u64,
    /// Data heaps never seen complete (`heaps_expected - verified - failed`).
    pub heaps_lost: u64,
    /// Duplicate packets plus packets of already completed heaps.
    pub duplicates: u64,
    /// Datagrams that were not valid SPEAD-64-40.
    pub bad_packets: u64,
    /// Heaps evicted and packets dropped to keep the receiver's memory
    /// within its budget.
    pub over_budget: u64,
    /// Datagrams received.
    pub packets: u64,
    /// Payload bytes accepted.
    pub payload_bytes: u64,
    /// Data heaps whose timestamp and every sample byte matched the pattern.
    pub verified_heaps: u64,
    /// Data heaps with a wrong timestamp, size or sample byte.
    pub verify_failures: u64,
    /// No verification failure and at least one verified heap.
    pub verified_ok: bool,
    /// The stop heap arrived.
    pub stopped_cleanly: bool,
    /// Names of the descriptors received.
    pub descriptors: Vec<String>,
    /// `recvmmsg` calls.
    pub recv_calls: u64,
    /// UDP GRO was on.
    pub gro: bool,
    /// SO_RCVBUF granted.
    pub rcvbuf: usize,
    /// From the first datagram to the last one received, seconds.
    pub seconds: f64,
    /// CPU seconds the receiver used (perfkit: its receiving thread, from
    /// `recvmmsg` to verification; spead2: its whole process, the C++
    /// reader thread and the Python loop that checks each heap). Less
    /// sensitive to other load on the machine than `seconds`.
    #[serde(default)]
    pub cpu_seconds: f64,
    /// The kernel's counts for the receiver over the run (perfkit: its
    /// receiving thread; spead2: its whole process): how often it waited,
    /// how often its core was taken (while only the socket buffer held
    /// datagrams), and the fresh pages it touched. `None` when not known
    /// (an agent from before the counts).
    #[serde(default)]
    pub counts: Option<Counts>,
    /// Whether the receiver ran at the nice value the run asked for
    /// ([`RunConfig::rx_nice`]): `None` when it asked for none, `Some(false)`
    /// when the system refused it (a raised priority needs `CAP_SYS_NICE`).
    #[serde(default)]
    pub nice_set: Option<bool>,
    /// Whether the receiver ran on the one CPU the run asked for
    /// ([`RunConfig::rx_cpu`]): `None` when it asked for none, `Some(false)`
    /// when the CPU is not one it may use (or an agent that does not know
    /// the setting ran it), or when another perfkit run's receiver had
    /// claimed the same CPU ([`crate::affinity::CpuClaim`]).
    #[serde(default)]
    pub cpu_set: Option<bool>,
}

/// Results of one run.
#[derive(Debug, Clone, Serialize)]
pub struct RunStats {
    /// Which sender.
    pub implementation: Impl,
    /// Which mode (as configured).
    pub mode: String,
    /// Heap size.
    pub heap_size: usize,
    /// Sender seconds (data heaps only).
    pub seconds: f64,
    /// Data heaps sent.
    pub heaps: u64,
    /// Datagrams sent (for spead2: computed from its packet split, which
    /// matches ours byte for byte).
    pub packets: u64,
    /// Payload bytes sent (`heaps * heap_size`).
    pub bytes: u64,
    /// Heaps per second.
    pub heaps_per_s: f64,
    /// Packets per second.
    pub packets_per_s: f64,
    /// 10^6 payload bytes per second.
    pub mb_per_s: f64,
    /// CPU seconds the sender used over `seconds` (perfkit: its sending
    /// threads; spead2: the whole Python process, C++ worker thread included).
    /// Less sensitive to other load on the machine than `seconds`.
    pub sender_cpu_seconds: f64,
    /// The kernel's counts for the sender over `seconds`, taken as
    /// `sender_cpu_seconds` is; `None` when not known.
    pub sender_counts: Option<Counts>,
    /// Whether the sender kept off [`RunConfig::tx_avoid_cpu`]: `None` when
    /// the run asked for nothing.
    pub sender_cpu_set: Option<bool>,
    /// Payload MB per sender CPU-second.
    pub mb_per_cpu_s: f64,
    /// `sendmmsg` calls (perfkit only).
    pub send_calls: u64,
    /// Messages handed to the kernel (perfkit only; fewer than packets when
    /// GSO merges them).
    pub send_messages: u64,
    /// Times GSO was refused and the sender fell back (perfkit only).
    pub gso_fallbacks: u64,
    /// GSO still on at the end (perfkit `batch+gso` only).
    pub gso_active: bool,
    /// The run hit its time cap before sending the whole volume.
    pub time_capped: bool,
    /// Receiver side.
    pub rx: RxStats,
    /// perfkit sites named `spead.*`, cumulative since the last `perfkit::reset()`.
    pub stages: Vec<perfkit::SiteSnapshot>,
}

/// What went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Settings out of range.
    Config,
    /// A socket or thread failed.
    Io,
    /// spead2 is missing or its script failed.
    Spead2,
    /// The perfkit sender failed.
    Send,
    /// The cancel flag was set; the run stopped part way.
    Interrupted,
}

/// Error of a run: a kind and a message with context.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    fn config(message: String) -> Self {
        Error {
            kind: ErrorKind::Config,
            message,
        }
    }
    fn io(context: &str, e: io::Error) -> Self {
        Error {
            kind: ErrorKind::Io,
            message: format!("{context}: {e}"),
        }
    }
    fn spead2(message: String) -> Self {
        Error {
            kind: ErrorKind::Spead2,
            message,
        }
    }
    fn interrupted() -> Self {
        Error {
            kind: ErrorKind::Interrupted,
            message: "interrupted".to_owned(),
        }
    }
    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<send::Error> for Error {
    fn from(e: send::Error) -> Self {
        match e {
            send::Error::Interrupted => Error::interrupted(),
            e => Error {
                kind: ErrorKind::Send,
                message: e.to_string(),
            },
        }
    }
}

/// The dtype header spead2 writes for `int8[n]` samples.
pub fn samples_dtype(heap_size: usize) -> String {
    format!("{{'descr': '|i1', 'fortran_order': False, 'shape': ({heap_size},)}}")
}

/// The two descriptors (timestamp, samples) as nested packets.
pub fn descriptor_packets(heap_size: usize) -> [Vec<u8>; 2] {
    let dtype = samples_dtype(heap_size);
    let shape = [Some(heap_size as u64)];
    let ts = DescriptorRepr {
        id: TIMESTAMP_ID,
        name: "timestamp",
        description: "Index of the first sample",
        shape: &[],
        format: &[(b'u', 40)],
        dtype: None,
    };
    let samples = DescriptorRepr {
        id: SAMPLES_ID,
        name: "adc_samples",
        description: "ADC converter output",
        shape: &shape,
        format: &[],
        dtype: Some(&dtype),
    };
    [ts, samples].map(|d| {
        let mut b = std::vec![0u8; d.buffer_len()];
        d.emit(&mut b);
        b
    })
}

/// Checks one received heap against the pattern; `None` for heaps without
/// samples (descriptor-only, stop).
pub fn verify_heap(heap: &Heap, heap_size: usize) -> Option<bool> {
    let samples = heap.item(SAMPLES_ID)?;
    let ts = heap.item(TIMESTAMP_ID).and_then(|v| v.as_u64());
    Some(stage!("spead.verify", bytes = heap_size as u64, {
        match (samples, ts) {
            (reasm::ItemValue::Bytes(b), Some(ts)) if b.len() == heap_size && heap_size > 0 => {
                let want = (ts / heap_size as u64) as u8;
                ts % heap_size as u64 == 0 && all_are(b, want)
            }
            _ => false,
        }
    }))
}

/// Whether every byte of `bytes` is `b`. With AVX2 where the CPU has it
/// (asked once, then a load and a test), which checks about three times as
/// many bytes a cycle from L1 as the SSE2 every x86_64 build may assume,
/// twice as many from L2.
fn all_are(bytes: &[u8], b: u8) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2 (asked just above).
        return unsafe { all_are_avx2(bytes, b) };
    }
    all_are_portable(bytes, b)
}

#[inline(always)]
fn all_are_portable(bytes: &[u8], b: u8) -> bool {
    // OR-fold instead of an early exit: the compiler vectorises it.
    bytes.iter().fold(0u8, |acc, &x| acc | (x ^ b)) == 0
}

/// [`all_are_portable`], vectorised for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn all_are_avx2(bytes: &[u8], b: u8) -> bool {
    all_are_portable(bytes, b)
}

/// The pattern checked packet by packet, while each datagram's payload is
/// still in cache from the kernel's copy, so that a complete heap need not
/// be read again: per heap (a slot per `cnt mod SLOTS`), the first payload
/// byte seen, whether every payload byte seen equalled it, and how many
/// were seen. A heap whose slot covers exactly its payload, all one byte,
/// is checked by that byte alone; any other heap (the first, with
/// descriptors; one whose slot another heap took; one with a duplicate or
/// a wrong byte) is read in full by [`verify_heap`], so the verdict is
/// always the full check's.
struct PacketCheck {
    slots: Vec<Slot>,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    cnt: u64,
    byte: u8,
    uniform: bool,
    bytes: u64,
}

impl PacketCheck {
    const SLOTS: usize = 256;

    fn new() -> Self {
        PacketCheck {
            slots: std::vec![Slot::default(); Self::SLOTS],
        }
    }

    fn datagram(&mut self, d: &[u8]) {
        let Ok(p) = wire::Packet::new_checked(d) else {
            return;
        };
        let Ok(r) = wire::Repr::parse(&p) else {
            return;
        };
        let payload = r.payload(&p);
        let Some(&first) = payload.first() else {
            return;
        };
        let uniform = stage!(
            "spead.verify_packet",
            bytes = payload.len() as u64,
            all_are(payload, first)
        );
        let slot = &mut self.slots[(r.heap_cnt % Self::SLOTS as u64) as usize];
        if slot.cnt == r.heap_cnt && slot.bytes > 0 {
            slot.uniform &= uniform && first == slot.byte;
            slot.bytes += payload.len() as u64;
        } else {
            *slot = Slot {
                cnt: r.heap_cnt,
                byte: first,
                uniform,
                bytes: payload.len() as u64,
            };
        }
    }

    /// The full check's verdict on `heap`, from the packets' where they
    /// cover it.
    fn verify(&mut self, heap: &Heap, heap_size: usize) -> Option<bool> {
        let slot = &mut self.slots[(heap.cnt % Self::SLOTS as u64) as usize];
        let covered = slot.cnt == heap.cnt
            && slot.bytes > 0
            && slot.uniform
            && slot.bytes == heap.payload().len() as u64;
        let byte = slot.byte;
        *slot = Slot::default();
        if !covered {
            return verify_heap(heap, heap_size);
        }
        let samples = heap.item(SAMPLES_ID)?;
        let ts = heap.item(TIMESTAMP_ID).and_then(|v| v.as_u64());
        Some(match (samples, ts) {
            (reasm::ItemValue::Bytes(b), Some(ts)) if b.len() == heap_size && heap_size > 0 => {
                // Every payload byte, so every sample byte, is `byte`.
                ts % heap_size as u64 == 0 && (ts / heap_size as u64) as u8 == byte
            }
            _ => false,
        })
    }
}

struct RxOutcome {
    stats: RxStats,
}

/// When a receiver whose sender has gone quiet gives up on the stop heap.
#[derive(Clone, Copy)]
enum Done<'a> {
    /// The sender (in this process) raises the flag when it is done; 500 ms
    /// of silence after that ends the run.
    Flag(&'a AtomicBool),
    /// The sender is elsewhere: this long without a datagram, once some
    /// have arrived, ends the run.
    Idle(Duration),
}

/// [`receiver_thread`] on a scoped thread of its own ("spead-recv"), which
/// every receiver gets: a priority the run asks for ends with that thread,
/// never staying with a caller's.
struct RxThread<'s>(thread::ScopedJoinHandle<'s, io::Result<RxOutcome>>);

impl<'s> RxThread<'s> {
    fn start(
        s: &'s thread::Scope<'s, '_>,
        rx: UdpReceiver,
        cfg: &'s RunConfig,
        done: Done<'s>,
        cancel: &'s AtomicBool,
        hard_deadline: Instant,
    ) -> Result<Self, Error> {
        thread::Builder::new()
            .name("spead-recv".into())
            .spawn_scoped(s, move || {
                receiver_thread(rx, cfg, done, cancel, hard_deadline)
            })
            .map(RxThread)
            .map_err(|e| Error::io("starting the receiver thread", e))
    }

    /// The receiver's outcome once it has stopped.
    fn join(self) -> Result<RxOutcome, Error> {
        self.0
            .join()
            .map_err(|_| Error::io("receiver thread", io::Error::other("panicked")))?
            .map_err(|e| Error::io("receiving", e))
    }
}

/// How often a receiver on a CPU of its own looks whether another run's
/// receiver has claimed it too ([`CpuClaim::check`]).
const CLAIM_CHECK: Duration = Duration::from_millis(10);

fn receiver_thread(
    mut rx: UdpReceiver,
    cfg: &RunConfig,
    done: Done<'_>,
    cancel: &AtomicBool,
    hard_deadline: Instant,
) -> io::Result<RxOutcome> {
    let (config, heap_size) = (cfg.reasm, cfg.heap_size);
    // For as long as this runs, on its own thread ([`RxThread`]).
    let nice = cfg.rx_nice.map(crate::priority::ThreadNice::set);
    let cpu = cfg.rx_cpu.map(ThreadCpus::receiver);
    // Held to the end and checked as the receiver goes: the CPU counts as
    // this receiver's own only when no other run's receiver had it.
    let mut claim = cfg.rx_cpu.map(CpuClaim::take);
    let mut claim_checked = Instant::now();
    let usage0 = Usage::thread();
    let mut stream = Stream::new(config);
    let (mut verified, mut failed) = (0u64, 0u64);
    let mut idle_since: Option<Instant> = None;
    let (mut first, mut last): (Option<Instant>, Option<Instant>) = (None, None);
    // Shared by the two closures below, which never run at the same time.
    let check = std::cell::RefCell::new(PacketCheck::new());
    let mut on_heap = |h: &Heap, _: &[ItemDescriptor]| match check.borrow_mut().verify(h, heap_size)
    {
        Some(true) => verified += 1,
        Some(false) => failed += 1,
        None => {}
    };
    recv::receive_inspecting(
        &mut rx,
        &mut stream,
        |n| {
            let now = Instant::now();
            if let Some(c) = claim
                .as_mut()
                .filter(|_| now - claim_checked >= CLAIM_CHECK)
            {
                c.check();
                claim_checked = now;
            }
            if n > 0 {
                first.get_or_insert(now);
                last = Some(now);
            }
            if now > hard_deadline || cancel.load(Ordering::Relaxed) {
                return false;
            }
            let (quiet_for, sender_done) = match done {
                Done::Flag(f) => (Duration::from_millis(500), f.load(Ordering::Acquire)),
                Done::Idle(d) => (d, first.is_some()),
            };
            if n > 0 || !sender_done {
                idle_since = None;
                return true;
            }
            // Sender finished and nothing arrives: the stop heap was lost.
            let since = *idle_since.get_or_insert(now);
            now - since < quiet_for
        },
        |d| check.borrow_mut().datagram(d),
        &mut on_heap,
    )?;
    let seconds = match (first, last) {
        (Some(f), Some(l)) => (l - f).as_secs_f64(),
        _ => 0.0,
    };
    let used = Usage::thread_since(usage0);
    if let Some(c) = claim.as_mut() {
        c.check();
    }
    let c = *stream.counters();
    let (calls, _) = rx.counts();
    Ok(RxOutcome {
        stats: RxStats {
            heaps_complete: c.heaps_complete,
            heaps_incomplete: c.heaps_incomplete,
            duplicates: c.duplicate_packets + c.duplicate_heaps,
            bad_packets: c.bad_packets,
            over_budget: c.over_budget,
            packets: c.packets,
            payload_bytes: c.payload_bytes,
            verified_heaps: verified,
            verify_failures: failed,
            verified_ok: failed == 0 && verified > 0,
            stopped_cleanly: stream.is_stopped(),
            descriptors: stream
                .descriptors()
                .iter()
                .map(|d| d.name.clone())
                .collect(),
            recv_calls: calls,
            gro: rx.gro(),
            rcvbuf: rx.rcvbuf(),
            seconds,
            cpu_seconds: used.cpu_seconds,
            counts: used.counts,
            nice_set: nice.as_ref().map(crate::priority::ThreadNice::is_set),
            cpu_set: cpu.as_ref().map(|c| c.is_set() && !shared(&claim)),
            ..RxStats::default()
        },
    })
}

/// A sender's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TxOutcome {
    /// Messages handed to the kernel.
    pub send_messages: u64,
    /// Data heaps sent.
    pub heaps: u64,
    /// Datagrams sent.
    pub packets: u64,
    /// Sending seconds (data heaps).
    pub seconds: f64,
    /// CPU seconds the sender used.
    pub cpu_seconds: f64,
    /// The kernel's counts for the sender; `None` when not known.
    #[serde(default)]
    pub counts: Option<Counts>,
    /// `sendmmsg` calls.
    pub send_calls: u64,
    /// Times GSO was refused.
    pub gso_fallbacks: u64,
    /// GSO still on at the end.
    pub gso_active: bool,
    /// Whether the sender kept off [`RunConfig::tx_avoid_cpu`]; `None` when
    /// the run asked for nothing.
    #[serde(default)]
    pub cpu_set: Option<bool>,
}

/// Runs one measured transfer. Setting `cancel` stops both ends within one
/// poll (50 ms) with an [`ErrorKind::Interrupted`] error.
pub fn run(cfg: &RunConfig, cancel: &AtomicBool) -> Result<RunStats, Error> {
    cfg.validate()?;
    let n_heaps = (cfg.volume_bytes / cfg.heap_size as u64).max(1);
    let rx = UdpReceiver::bind(cfg.addr, rx_config(cfg))
        .map_err(|e| Error::io(&format!("binding the receiver on {}", cfg.addr), e))?;
    let dest = rx
        .local_addr()
        .map_err(|e| Error::io("receiver address", e))?;
    let sender_done = AtomicBool::new(false);
    let hard_deadline = Instant::now() + cfg.time_cap + Duration::from_secs(30);
    // The sender looks at `cancel` before every send call, and the receiver
    // closes its socket only after seeing it set: a cancelled sender stops
    // with "interrupted", never with the receiver's refusal.
    let (tx, rx) = thread::scope(|s| -> Result<_, Error> {
        let done = Done::Flag(&sender_done);
        let rx_thread = RxThread::start(s, rx, cfg, done, cancel, hard_deadline)?;
        let tx = match cfg.implementation {
            Impl::Perfkit => perfkit_send(cfg, dest, n_heaps, cancel),
            Impl::Spead2 => spead2_send(cfg, dest, n_heaps, cancel),
        };
        sender_done.store(true, Ordering::Release);
        Ok((tx, rx_thread.join()?))
    })?;
    Ok(combine(cfg, tx?, rx.stats))
}

/// One run's figures from its sender's and its receiver's, wherever each
/// ran: what the receiver lost is what the sender sent beyond what it
/// verified, and every rate is over the sender's time.
pub fn combine(cfg: &RunConfig, tx: TxOutcome, mut rxs: RxStats) -> RunStats {
    let n_heaps = (cfg.volume_bytes / cfg.heap_size.max(1) as u64).max(1);
    if cfg.rx_nice.is_some() && rxs.nice_set.is_none() {
        // Asked for, and the receiver said nothing of it (an agent from
        // before `rx_nice`): it did not run at it.
        rxs.nice_set = Some(false);
    }
    if cfg.rx_cpu.is_some() && rxs.cpu_set.is_none() {
        // Likewise for its CPU.
        rxs.cpu_set = Some(false);
    }
    rxs.heaps_expected = tx.heaps;
    rxs.heaps_lost = tx
        .heaps
        .saturating_sub(rxs.verified_heaps + rxs.verify_failures);
    let bytes = tx.heaps * cfg.heap_size as u64;
    let per_s = |x: f64| {
        if tx.seconds > 0.0 {
            x / tx.seconds
        } else {
            0.0
        }
    };
    let stages = perfkit::snapshot()
        .sites
        .into_iter()
        .filter(|s| s.name.starts_with("spead."))
        .collect();
    RunStats {
        implementation: cfg.implementation,
        mode: cfg.mode.as_str().to_owned(),
        heap_size: cfg.heap_size,
        seconds: tx.seconds,
        heaps: tx.heaps,
        packets: tx.packets,
        bytes,
        heaps_per_s: per_s(tx.heaps as f64),
        packets_per_s: per_s(tx.packets as f64),
        mb_per_s: per_s(bytes as f64) / 1e6,
        sender_cpu_seconds: tx.cpu_seconds,
        sender_counts: tx.counts,
        sender_cpu_set: tx.cpu_set,
        mb_per_cpu_s: if tx.cpu_seconds > 0.0 {
            bytes as f64 / tx.cpu_seconds / 1e6
        } else {
            0.0
        },
        send_calls: tx.send_calls,
        send_messages: tx.send_messages,
        gso_fallbacks: tx.gso_fallbacks,
        gso_active: tx.gso_active,
        time_capped: tx.heaps < n_heaps,
        rx: rxs,
        stages,
    }
}

/// Sends the configuration's heaps (perfkit's sender or spead2's) to a
/// receiver elsewhere, at `dest`; the stop heap ends the stream.
pub fn send_to(cfg: &RunConfig, dest: SocketAddr, cancel: &AtomicBool) -> Result<TxOutcome, Error> {
    let n_heaps = (cfg.volume_bytes / cfg.heap_size.max(1) as u64).max(1);
    match cfg.implementation {
        Impl::Perfkit => perfkit_send(cfg, dest, n_heaps, cancel),
        Impl::Spead2 => spead2_send(cfg, dest, n_heaps, cancel),
    }
}

/// A receiver bound and waiting for a sender elsewhere.
pub struct Receiving {
    rx: UdpReceiver,
    address: SocketAddr,
}

/// perfkit's receiving socket for `cfg`: its buffer as asked.
fn rx_config(cfg: &RunConfig) -> recv::Config {
    recv::Config {
        rcvbuf: cfg.rx_buffer,
        ..recv::Config::default()
    }
}

impl Receiving {
    /// Binds `addr` (port 0 = any free port) for the heaps of `cfg`.
    pub fn bind(addr: SocketAddr, cfg: &RunConfig) -> Result<Receiving, Error> {
        let rx = UdpReceiver::bind(addr, rx_config(cfg))
            .map_err(|e| Error::io(&format!("binding the receiver on {addr}"), e))?;
        let address = rx
            .local_addr()
            .map_err(|e| Error::io("receiver address", e))?;
        Ok(Receiving { rx, address })
    }

    /// Where senders send.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Receives, reassembles and verifies heaps until the stop heap, or 2 s
    /// without a datagram once some have arrived, or the time cap (plus
    /// 30 s), or `cancel`. On a thread of the run's own, so a priority the
    /// run asks for ends with it and never stays with the caller's thread.
    pub fn receive(self, cfg: &RunConfig, cancel: &AtomicBool) -> Result<RxStats, Error> {
        let deadline = Instant::now() + cfg.time_cap + Duration::from_secs(30);
        let done = Done::Idle(Duration::from_secs(2));
        let out =
            thread::scope(|s| RxThread::start(s, self.rx, cfg, done, cancel, deadline)?.join())?;
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::interrupted());
        }
        Ok(out.stats)
    }
}

/// spead2's receiver (`scripts/spead2/recv.py --pattern`) bound and waiting
/// for a sender elsewhere: a `spead2.recv.Stream` with a memory pool sized
/// for the heaps, a ring of completed heaps, and the same socket receive
/// buffer as perfkit's receiver. The script checks every heap against the
/// pattern itself and reports only its totals, so that what is measured is
/// spead2 receiving, not a pipe of per-heap reports.
pub struct Spead2Receiving {
    child: Child,
    lines: io::Lines<io::BufReader<std::process::ChildStdout>>,
    address: SocketAddr,
    rcvbuf: usize,
    nice_set: Option<bool>,
    cpu_set: Option<bool>,
    /// The receiver's claim on its CPU, held and checked until it has ended.
    claim: Option<CpuClaim>,
}

/// Heaps spead2's stream assembles at once (its `max_heaps`): enough for
/// the reordering a loopback or a veth pair brings; perfkit's receiver
/// allows [`RunConfig::reasm`]'s `max_live_heaps`.
pub const SPEAD2_MAX_HEAPS: usize = 8;

impl Spead2Receiving {
    /// Starts `script` with `python` bound to `ip` (a free port) for the
    /// heaps of `cfg`, giving up on the stream after `timeout` without its
    /// stop heap.
    pub fn start(
        python: &std::path::Path,
        script: &std::path::Path,
        ip: std::net::IpAddr,
        cfg: &RunConfig,
        timeout: Duration,
    ) -> Result<Spead2Receiving, Error> {
        let mut cmd = Command::new(python);
        cmd.arg(script)
            .args(["--host", &ip.to_string(), "--port", "0"])
            .args(["--timeout", &timeout.as_secs_f64().to_string()])
            .args(["--max-packet", &(cfg.packet_size + 64).to_string()])
            .args(["--rcvbuf", &cfg.rx_buffer.to_string()])
            .args(["--pattern", &cfg.heap_size.to_string()])
            .args(["--max-heaps", &SPEAD2_MAX_HEAPS.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(n) = cfg.rx_nice {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the forked child before exec and
            // makes one async-signal-safe system call. The whole receiver
            // gets the value: threads spead2 starts later inherit it. A
            // refusal is read back below, not fatal here.
            unsafe {
                cmd.pre_exec(move || {
                    crate::priority::set_nice(0, n);
                    Ok(())
                });
            }
        }
        let claim = cfg.rx_cpu.map(CpuClaim::take);
        let cpus = cfg.rx_cpu.map(affinity::receiver_set);
        let mut child = spawn_on(&mut cmd, python, cpus.flatten())?;
        let cpu_set = cpus.map(|want| child_on(&child, want));
        let nice_set = cfg
            .rx_nice
            .map(|n| crate::priority::nice_of(child.id()) == Some(n));
        let out = child
            .stdout
            .take()
            .ok_or_else(|| Error::spead2("spead2 receiver has no stdout".into()))?;
        let mut lines = io::BufReader::new(out).lines();
        let ready: serde_json::Value = lines
            .next()
            .and_then(|l| l.ok())
            .and_then(|l| serde_json::from_str(&l).ok())
            .unwrap_or_default();
        let port = ready["ready"].as_u64().and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::spead2(
                "spead2 receiver did not report its port (is spead2 installed? scripts/setup.d/30-spead2.sh)"
                    .into(),
            ));
        };
        Ok(Spead2Receiving {
            child,
            lines,
            address: SocketAddr::new(ip, port),
            rcvbuf: ready["rcvbuf"].as_u64().unwrap_or(0) as usize,
            nice_set,
            cpu_set,
            claim,
        })
    }

    /// Where senders send.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Waits for spead2's end line (after its stop heap, or its timeout)
    /// and returns its figures.
    pub fn receive(mut self, cancel: &AtomicBool) -> Result<RxStats, Error> {
        let pid = self.child.id();
        let done = AtomicBool::new(false);
        let lines = &mut self.lines;
        let claim = &mut self.claim;
        let end = thread::scope(|scope| {
            // The lines are read on this thread; a cancel kills the child,
            // which ends them. The receiver's claim on its CPU is checked
            // while it runs.
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    if cancel.load(Ordering::Relaxed) {
                        // SAFETY: kill(2) of this process's own child.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                        break;
                    }
                    if let Some(c) = claim.as_mut() {
                        c.check();
                    }
                    thread::sleep(CHILD_POLL);
                }
            });
            let end = lines
                .map_while(Result::ok)
                .find_map(|l| parse_spead2_end(&l));
            done.store(true, Ordering::Relaxed);
            end
        });
        let _ = self.child.kill();
        let _ = self.child.wait();
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::interrupted());
        }
        let mut st = end
            .ok_or_else(|| Error::spead2("spead2 receiver ended without its report line".into()))?;
        st.rcvbuf = self.rcvbuf;
        st.nice_set = self.nice_set;
        st.cpu_set = self.cpu_set.map(|on| on && !shared(&self.claim));
        Ok(st)
    }
}

/// spead2's end line in `--pattern` mode as receiver figures; `None` for
/// any other line.
fn parse_spead2_end(line: &str) -> Option<RxStats> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let f = |k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
    let verified = v.get("verified")?.as_u64()?;
    let failures = n("failures");
    Some(RxStats {
        // The stop heap is a complete heap too, as perfkit counts them.
        heaps_complete: verified + failures + u64::from(v["stop"].as_bool() == Some(true)),
        heaps_incomplete: n("incomplete"),
        packets: n("packets"),
        payload_bytes: n("payload_bytes"),
        verified_heaps: verified,
        verify_failures: failures,
        verified_ok: failures == 0 && verified > 0,
        stopped_cleanly: v["stop"].as_bool() == Some(true),
        descriptors: v["descriptors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(ToOwned::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        seconds: f("seconds"),
        cpu_seconds: f("cpu_seconds"),
        counts: counts_in(&v),
        ..RxStats::default()
    })
}

/// The items of pattern heap `i` (timestamp, samples), preceded by the two
/// descriptor items when `descriptors` is given (the first heap). Held in
/// place, so building a heap allocates nothing.
pub fn heap_items<'a>(
    i: u64,
    samples: &'a [u8],
    descriptors: Option<&'a [Vec<u8>; 2]>,
) -> HeapItems<'a> {
    let timestamp = Item::immediate(TIMESTAMP_ID, (i * samples.len() as u64) & wire::MAX_VALUE);
    let samples = Item::addressed(SAMPLES_ID, samples);
    match descriptors {
        Some(d) => HeapItems {
            items: [
                Item::addressed(id::DESCRIPTOR, &d[0]),
                Item::addressed(id::DESCRIPTOR, &d[1]),
                timestamp,
                samples,
            ],
            len: 4,
        },
        None => HeapItems {
            items: [timestamp, samples, timestamp, samples],
            len: 2,
        },
    }
}

/// The items of one pattern heap ([`heap_items`]); derefs to the item slice.
#[derive(Debug, Clone, Copy)]
pub struct HeapItems<'a> {
    items: [Item<'a>; 4],
    // 2 or 4: only `heap_items` builds this.
    len: usize,
}

impl<'a> core::ops::Deref for HeapItems<'a> {
    type Target = [Item<'a>];
    fn deref(&self) -> &[Item<'a>] {
        &self.items[..self.len]
    }
}

struct Batch {
    first: u64,
    count: usize,
    buf: Vec<u8>,
}

fn perfkit_send(
    cfg: &RunConfig,
    dest: SocketAddr,
    n_heaps: u64,
    cancel: &AtomicBool,
) -> Result<TxOutcome, Error> {
    // For the whole send, on this thread and the I/O thread it starts;
    // this thread's CPUs come back when it returns.
    let cpus = cfg.tx_avoid_cpu.map(ThreadCpus::sender);
    let hs = cfg.heap_size;
    let config = send::Config {
        max_packet_size: cfg.packet_size,
        gso: cfg.mode == Mode::BatchGso,
        // Equal-size packets are what GSO merges (see Packetizer::even).
        even_packets: cfg.mode == Mode::BatchGso,
        rate_bytes_per_s: cfg.rate_bytes_per_s,
        ..send::Config::default()
    };
    let mut sender = UdpSender::connect(dest, config)
        .map_err(|e| Error::io(&format!("connecting to {dest}"), e))?;
    let descriptors = descriptor_packets(hs);
    let cap = Instant::now() + cfg.time_cap;
    let start = Instant::now();
    let usage0 = Usage::thread();
    let mut io_usage = Usage::default();
    let mut sent = 0u64;
    if cfg.mode == Mode::Heap {
        let mut buf = std::vec![0u8; hs];
        while sent < n_heaps && (sent & 15 != 0 || Instant::now() < cap) {
            stage!("spead.heap_build", bytes = hs as u64, buf.fill(sent as u8));
            let items = heap_items(sent, &buf, (sent == 0).then_some(&descriptors));
            let heap = HeapRef {
                cnt: sent + 1,
                items: &items,
            };
            sender.send_heaps_cancellable(&[heap], cancel)?;
            sent += 1;
        }
    } else {
        let batch_heaps = (512 * 1024 / hs).max(1);
        let (to_io, io_rx) = mpsc::sync_channel::<Batch>(2);
        let (free_tx, free) = mpsc::sync_channel::<Batch>(2);
        for _ in 0..2 {
            let _ = free_tx.send(Batch {
                first: 0,
                count: 0,
                buf: std::vec![0u8; batch_heaps * hs],
            });
        }
        let io = thread::scope(|s| -> Result<(UdpSender, Usage), Error> {
            let descriptors = &descriptors;
            let io = s.spawn(move || -> Result<(UdpSender, Usage), send::Error> {
                let usage0 = Usage::thread();
                for b in io_rx {
                    {
                        // Small allocations per batch; the items borrow this batch's buffer.
                        let items: Vec<HeapItems<'_>> = (b.first..)
                            .zip(b.buf.chunks_exact(hs).take(b.count))
                            .map(|(i, samples)| {
                                heap_items(i, samples, (i == 0).then_some(descriptors))
                            })
                            .collect();
                        let refs: Vec<HeapRef<'_, '_>> = (b.first + 1..)
                            .zip(&items)
                            .map(|(cnt, items)| HeapRef { cnt, items })
                            .collect();
                        sender.send_heaps_cancellable(&refs, cancel)?;
                    }
                    if free_tx.send(b).is_err() {
                        break;
                    }
                }
                Ok((sender, Usage::thread_since(usage0)))
            });
            while sent < n_heaps && Instant::now() < cap && !cancel.load(Ordering::Relaxed) {
                let Ok(mut b) = free.recv() else {
                    break;
                };
                let count = (n_heaps - sent).min(batch_heaps as u64) as usize;
                stage!("spead.heap_build", bytes = (count * hs) as u64, {
                    for j in 0..count {
                        b.buf[j * hs..(j + 1) * hs].fill((sent + j as u64) as u8);
                    }
                });
                b.first = sent;
                b.count = count;
                if to_io.send(b).is_err() {
                    break; // the I/O thread failed: its error is returned below
                }
                sent += count as u64;
            }
            drop(to_io);
            let (sender, used) = io
                .join()
                .map_err(|_| Error::io("sender thread", io::Error::other("panicked")))??;
            Ok((sender, used))
        })?;
        sender = io.0;
        io_usage = io.1;
        if cancel.load(Ordering::Relaxed) {
            return Err(Error::interrupted());
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let used = Usage::thread_since(usage0) + io_usage;
    let stats = *sender.stats();
    // The stop heap, not timed.
    let stop = [Item::immediate(id::STREAM_CTRL, wire::ctrl::STOP)];
    sender.send_heap(HeapRef {
        cnt: n_heaps.max(sent) + 1,
        items: &stop,
    })?;
    Ok(TxOutcome {
        heaps: sent,
        packets: stats.packets,
        seconds,
        cpu_seconds: used.cpu_seconds,
        counts: used.counts,
        send_calls: stats.calls,
        send_messages: stats.messages,
        gso_fallbacks: sender.stats().gso_fallbacks,
        gso_active: sender.gso_active(),
        cpu_set: cpus.as_ref().map(ThreadCpus::is_set),
    })
}

#[derive(Debug, Default)]
struct Spead2Report {
    heaps: u64,
    seconds: f64,
    cpu_seconds: f64,
    counts: Option<Counts>,
}

/// The kernel's counts a spead2 script reports, if it reports them all.
fn counts_in(v: &serde_json::Value) -> Option<Counts> {
    let n = |k: &str| v.get(k)?.as_u64();
    Some(Counts {
        voluntary_switches: n("voluntary_switches")?,
        involuntary_switches: n("involuntary_switches")?,
        minor_faults: n("minor_faults")?,
    })
}

fn parse_spead2_report(line: &str) -> Option<Spead2Report> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(Spead2Report {
        heaps: v.get("heaps")?.as_u64()?,
        seconds: v.get("seconds")?.as_f64()?,
        cpu_seconds: v.get("cpu_seconds").and_then(|c| c.as_f64()).unwrap_or(0.0),
        counts: counts_in(&v),
    })
}

/// The command that starts spead2's sender, or an error naming the setting.
fn spead2_command(cfg: &RunConfig) -> Result<&Spead2Sender, Error> {
    cfg.spead2.as_ref().ok_or_else(|| {
        Error::config(
            "implementation spead2 needs the Python and script that run its sender (RunConfig::spead2)"
                .to_owned(),
        )
    })
}

/// How often a wait for a child process looks at the cancel flag.
const CHILD_POLL: Duration = Duration::from_millis(10);

/// Starts one of spead2's Python scripts, on `cpus` when given (threads
/// it starts later inherit them), saying how to install spead2 when its
/// Python is missing.
fn spawn_on(
    cmd: &mut Command,
    python: &std::path::Path,
    cpus: Option<CpuSet>,
) -> Result<Child, Error> {
    if let Some(cpus) = cpus {
        use std::os::unix::process::CommandExt;
        // SAFETY: the closure runs in the forked child before exec and
        // makes one async-signal-safe system call on a set made before the
        // fork, allocating nothing. A refusal is read back by `child_on`,
        // not fatal here.
        unsafe {
            cmd.pre_exec(move || {
                affinity::set_cpus(0, &cpus);
                Ok(())
            });
        }
    }
    cmd.spawn().map_err(|e| {
        Error::spead2(format!(
            "cannot start {} (install spead2 with scripts/setup.d/30-spead2.sh): {e}",
            python.display()
        ))
    })
}

/// Another run's receiver held the CPU a claim asked for.
fn shared(claim: &Option<CpuClaim>) -> bool {
    claim.as_ref().is_some_and(CpuClaim::is_shared)
}

/// Whether a started child runs on the set asked for (`None`: a set that
/// could not be made, so it does not).
fn child_on(child: &Child, want: Option<CpuSet>) -> bool {
    let pid = libc::pid_t::try_from(child.id()).unwrap_or(0);
    want.is_some() && pid > 0 && affinity::cpus_of(pid) == want
}

/// Waits for `child`, killing it once `cancel` is set.
fn wait_or_cancel(child: &mut Child, cancel: &AtomicBool) -> Result<ExitStatus, Error> {
    loop {
        if cancel.load(Ordering::Relaxed) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::interrupted());
        }
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => thread::sleep(CHILD_POLL),
            Err(e) => return Err(Error::io("waiting for the spead2 sender", e)),
        }
    }
}

fn spead2_send(
    cfg: &RunConfig,
    dest: SocketAddr,
    n_heaps: u64,
    cancel: &AtomicBool,
) -> Result<TxOutcome, Error> {
    let Spead2Sender { python, script } = spead2_command(cfg)?;
    if !script.exists() {
        return Err(Error::spead2(format!(
            "spead2 sender script {} not found",
            script.display()
        )));
    }
    let mode = if cfg.mode == Mode::Heap {
        "heap"
    } else {
        "batch"
    };
    let mut cmd = Command::new(python);
    cmd.arg(script)
        .args(["--mode", mode])
        .args(["--heaps", &n_heaps.to_string()])
        .args(["--heap-size", &cfg.heap_size.to_string()])
        .args(["--packet-size", &cfg.packet_size.to_string()])
        .args(["--rate", &cfg.rate_bytes_per_s.to_string()])
        .args(["--time-cap", &cfg.time_cap.as_secs_f64().to_string()])
        .arg(dest.ip().to_string())
        .arg(dest.port().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpus = cfg.tx_avoid_cpu.map(affinity::sender_set);
    let mut child = spawn_on(&mut cmd, python, cpus.flatten())?;
    let cpu_set = cpus.map(|want| child_on(&child, want));
    // The child's output is read on threads so that this one can watch the
    // cancel flag; killing the child closes the pipes and ends them.
    let (status, report, err) = thread::scope(|s| {
        let out = child.stdout.take().map(|out| {
            s.spawn(move || {
                io::BufReader::new(out)
                    .lines()
                    .map_while(Result::ok)
                    .filter_map(|line| parse_spead2_report(&line))
                    .last()
            })
        });
        let err = child.stderr.take().map(|mut e| {
            s.spawn(move || {
                let mut text = String::new();
                let _ = e.read_to_string(&mut text);
                text
            })
        });
        let status = wait_or_cancel(&mut child, cancel);
        let report = out.and_then(|h| h.join().ok()).flatten();
        let err = err.and_then(|h| h.join().ok()).unwrap_or_default();
        (status, report, err)
    });
    let status = status?;
    let report = match report {
        Some(r) if status.success() => r,
        _ => {
            return Err(Error::spead2(format!(
                "spead2 sender {} failed ({status}); if spead2 is missing run scripts/setup.d/30-spead2.sh: {}",
                script.display(),
                err.trim()
            )))
        }
    };
    // spead2 splits heaps exactly like the packetiser: count its packets the same way.
    let samples = std::vec![0u8; cfg.heap_size];
    let per_heap = Packetizer::new(1, &heap_items(1, &samples, None), cfg.packet_size)
        .map(|p| p.totals().0 as u64)
        .unwrap_or(0);
    Ok(TxOutcome {
        heaps: report.heaps,
        packets: report.heaps * per_heap,
        seconds: report.seconds,
        cpu_seconds: report.cpu_seconds,
        counts: report.counts,
        send_calls: 0,
        send_messages: 0,
        gso_fallbacks: 0,
        gso_active: false,
        cpu_set,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("spead2".parse::<Impl>().unwrap(), Impl::Spead2);
        assert_eq!("perfkit".parse::<Impl>().unwrap(), Impl::Perfkit);
        let e = "c++".parse::<Impl>().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
    }

    #[test]
    fn spead2_report_line_parses() {
        let r =
            parse_spead2_report(r#"{"mode": "batch", "heaps": 12, "bytes": 1, "seconds": 0.5}"#)
                .unwrap();
        assert_eq!((r.heaps, r.seconds), (12, 0.5));
        // A script from before the kernel's counts: not known, not zero.
        assert_eq!(r.counts, None);
        let r = parse_spead2_report(
            r#"{"heaps": 1, "seconds": 0.5, "voluntary_switches": 7, "involuntary_switches": 3,
                "minor_faults": 90}"#,
        )
        .unwrap();
        let want = Counts {
            voluntary_switches: 7,
            involuntary_switches: 3,
            minor_faults: 90,
        };
        assert_eq!(r.counts, Some(want));
        assert!(parse_spead2_report("Traceback").is_none());
    }

    #[test]
    fn packet_check_gives_the_full_check_s_verdict() {
        let hs = 32768;
        let samples = std::vec![5u8; hs];
        let items = heap_items(5, &samples, None);
        let pk = Packetizer::new(6, &items, 9000).unwrap().into_datagrams();
        // The first heap, with descriptors: not all one byte, read in full.
        let zeros = std::vec![0u8; hs];
        let descriptors = descriptor_packets(hs);
        let first_heap = Packetizer::new(1, &heap_items(0, &zeros, Some(&descriptors)), 9000)
            .unwrap()
            .into_datagrams();
        // Intact; a wrong byte in the first packet, in the last one; a
        // duplicate packet (the slot then covers more than the heap).
        for (corrupt, dup, want) in [
            (None, false, true),
            (Some(0usize), false, false),
            (Some(pk.len() - 1), false, false),
            (None, true, true),
        ] {
            let mut check = PacketCheck::new();
            let mut stream = Stream::new(reasm::Config::default());
            let mut got = Vec::new();
            let mut sent: Vec<Vec<u8>> = pk.clone();
            if let Some(j) = corrupt {
                let n = sent[j].len();
                sent[j][n - 1] ^= 1;
            }
            if dup {
                sent.insert(1, sent[0].clone());
            }
            for p in first_heap.iter().chain(&sent) {
                check.datagram(p);
                stream.add_packet(p, &mut |h, _| got.push(check.verify(h, hs)));
            }
            assert_eq!(got, [Some(true), Some(want)], "{corrupt:?} {dup}");
        }
    }

    #[test]
    fn a_single_wrong_byte_is_found_anywhere() {
        // Lengths around the vector widths, and a datagram's; a wrong byte
        // at every place of the short ones, at the edges of the long one.
        for len in (0..=130).chain([8951, 9000]) {
            let mut v = std::vec![0x5Au8; len];
            assert!(all_are(&v, 0x5A), "{len}");
            assert_eq!(all_are(&v, 0x5B), len == 0, "{len}");
            let places: Vec<usize> = if len <= 130 {
                (0..len).collect()
            } else {
                [0, 1, 31, 32, 63, 64, len / 2, len - 33, len - 32, len - 1].into()
            };
            for i in places {
                v[i] ^= 0x80;
                assert!(!all_are(&v, 0x5A), "{len} {i}");
                assert!(!all_are_portable(&v, 0x5A), "{len} {i}");
                v[i] ^= 0x80;
            }
        }
    }

    #[test]
    fn spead2_end_line_parses() {
        assert!(parse_spead2_end(r#"{"ready": 4000, "rcvbuf": 1}"#).is_none());
        assert!(parse_spead2_end("Traceback").is_none());
        let line = r#"{"stop": true, "heaps": 9, "verified": 8, "failures": 1, "incomplete": 2,
            "payload_bytes": 800, "descriptors": ["timestamp", "adc_samples"],
            "seconds": 0.5, "cpu_seconds": 0.25, "packets": 30,
            "voluntary_switches": 40, "involuntary_switches": 2, "minor_faults": 7}"#;
        let st = parse_spead2_end(&line.replace('\n', " ")).unwrap();
        assert_eq!((st.verified_heaps, st.verify_failures), (8, 1));
        assert_eq!(
            (st.heaps_complete, st.heaps_incomplete, st.packets),
            (10, 2, 30)
        );
        assert_eq!(
            (st.seconds, st.cpu_seconds, st.payload_bytes),
            (0.5, 0.25, 800)
        );
        let want = Counts {
            voluntary_switches: 40,
            involuntary_switches: 2,
            minor_faults: 7,
        };
        assert_eq!(st.counts, Some(want));
        assert!(st.stopped_cleanly && !st.verified_ok);
        assert_eq!(st.descriptors, ["timestamp", "adc_samples"]);
    }

    #[test]
    fn bad_config_is_an_error_not_a_panic() {
        let cfg = RunConfig {
            heap_size: 0,
            ..RunConfig::default()
        };
        assert_eq!(
            run(&cfg, &AtomicBool::new(false)).unwrap_err().kind(),
            ErrorKind::Config
        );
        let cfg = RunConfig {
            packet_size: 10,
            ..RunConfig::default()
        };
        assert_eq!(
            run(&cfg, &AtomicBool::new(false)).unwrap_err().kind(),
            ErrorKind::Config
        );
    }

    #[test]
    fn spead2_without_its_command_is_a_config_error() {
        let cfg = RunConfig {
            implementation: Impl::Spead2,
            ..RunConfig::default()
        };
        let e = run(&cfg, &AtomicBool::new(false)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("RunConfig::spead2"), "{e}");
    }

    #[test]
    fn cancel_stops_a_run_in_every_mode() {
        for mode in Mode::ALL {
            // Paced to take 40 s: only the cancel can end it early.
            let cfg = RunConfig {
                heap_size: 64 * 1024,
                mode,
                volume_bytes: 400 << 20,
                rate_bytes_per_s: 10 << 20,
                time_cap: Duration::from_secs(40),
                ..RunConfig::default()
            };
            let cancel = AtomicBool::new(false);
            let r = thread::scope(|s| {
                s.spawn(|| {
                    thread::sleep(Duration::from_millis(200));
                    cancel.store(true, Ordering::Relaxed);
                });
                run(&cfg, &cancel)
            });
            let e = r.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Interrupted, "{mode}: {e}");
            assert_eq!(e.to_string(), "interrupted");
        }
    }

    #[test]
    fn perfkit_runs_verify_in_every_mode() {
        for mode in Mode::ALL {
            let cfg = RunConfig {
                heap_size: 32 * 1024,
                mode,
                volume_bytes: 4 << 20,
                // Paced so that loopback drops nothing on a busy machine.
                rate_bytes_per_s: 100 << 20,
                ..RunConfig::default()
            };
            let s = run(&cfg, &AtomicBool::new(false)).unwrap();
            assert_eq!(s.heaps, 128, "{mode}");
            assert!(s.rx.verified_ok, "{mode}: {:?}", s.rx);
            assert!(s.rx.stopped_cleanly, "{mode}: {:?}", s.rx);
            assert_eq!(s.rx.verified_heaps, 128, "{mode}: {:?}", s.rx);
            assert_eq!(s.rx.descriptors, ["timestamp", "adc_samples"]);
            assert!(s.mb_per_s > 0.0);
            let names: Vec<&str> = s.stages.iter().map(|st| st.name.as_str()).collect();
            assert!(
                names.contains(&"spead.send_call"),
                "{names:?} {:?}",
                perfkit::snapshot().sites.len()
            );
        }
    }

    #[test]
    fn a_receiver_s_priority_is_its_own_thread_s_never_its_caller_s() {
        let caller = std::sync::atomic::AtomicI32::new(0);
        let seen = std::sync::Mutex::new(Vec::new());
        let before = crate::priority::nice_of(0).unwrap();
        // A higher nice needs no privilege.
        let want = (before + 3).min(19);
        let cfg = RunConfig {
            heap_size: 32 * 1024,
            volume_bytes: 4 << 20,
            rate_bytes_per_s: 100 << 20,
            rx_nice: Some(want),
            ..RunConfig::default()
        };
        let receiving = Receiving::bind(cfg.addr, &cfg).unwrap();
        let dest = receiving.address();
        let cancel = AtomicBool::new(false);
        let rx = thread::scope(|s| {
            s.spawn(|| {
                // While the receiver waits for the stream, the thread that
                // called `receive` keeps its own priority.
                let tid = loop {
                    match caller.load(Ordering::Acquire) {
                        0 => thread::sleep(Duration::from_millis(1)),
                        t => break t,
                    }
                };
                thread::sleep(Duration::from_millis(50));
                for _ in 0..5 {
                    seen.lock()
                        .unwrap()
                        .push(crate::priority::nice_of(tid as u32));
                    thread::sleep(Duration::from_millis(20));
                }
                send_to(&cfg, dest, &cancel).unwrap();
            });
            // SAFETY: gettid reads no memory.
            caller.store(unsafe { libc::gettid() }, Ordering::Release);
            receiving.receive(&cfg, &cancel).unwrap()
        });
        assert_eq!(rx.nice_set, Some(true), "{rx:?}");
        assert_eq!(rx.verified_heaps, 128, "{rx:?}");
        assert_eq!(*seen.lock().unwrap(), std::vec![Some(before); 5]);
        assert_eq!(crate::priority::nice_of(0), Some(before));
    }

    #[test]
    fn a_receiver_that_says_nothing_of_its_cpu_did_not_run_on_it() {
        let cfg = RunConfig {
            rx_cpu: Some(0),
            ..RunConfig::default()
        };
        let tx = TxOutcome::default();
        assert_eq!(
            combine(&cfg, tx.clone(), RxStats::default()).rx.cpu_set,
            Some(false)
        );
        let asked_none = RunConfig::default();
        let st = combine(&asked_none, tx, RxStats::default());
        assert_eq!(st.rx.cpu_set, None);
        assert_eq!(st.sender_cpu_set, None);
    }
}
