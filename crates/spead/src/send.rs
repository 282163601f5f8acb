//! Batched UDP sender: `sendmmsg` with scatter/gather datagrams, optional
//! UDP GSO, rate limit.
//!
//! [`UdpSender::send_heaps`] packetises a list of heaps (headers written into
//! a reusable scratch area, payload referenced in place), groups the packets
//! into messages and submits them with as few `sendmmsg` calls as possible.
//! With GSO on, each run of equal-size packets (the last one may be shorter)
//! up to 64 segments and 64 000 bytes becomes one message carrying a
//! `UDP_SEGMENT` control message; the kernel cuts it into datagrams. If the
//! kernel refuses (`EIO`, `EINVAL`: no checksum offload, odd sizes;
//! `EMSGSIZE`: segments larger than the path's MTU, as on a veth pair of
//! MTU 1500 with 9000-byte packets, which plain datagrams cross as IP
//! fragments), the
//! sender counts a fallback, turns GSO off for the rest of the run and
//! resends the refused packets as plain datagrams.

use crate::packetize::{self, Item, Packetizer};
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use std::vec::Vec;
use std::{fmt, mem, ptr};

/// How heaps are submitted to the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// One heap per `sendmmsg` call, filled and sent in turn.
    Heap,
    /// A list of heaps per call, two batches in flight.
    Batch,
    /// As `Batch`, with equal-size packets merged by UDP GSO.
    BatchGso,
}

impl Mode {
    /// All modes, in the order reports list them.
    pub const ALL: [Mode; 3] = [Mode::Heap, Mode::Batch, Mode::BatchGso];

    /// The name used in scenario files and results (`heap`, `batch`, `batch+gso`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Heap => "heap",
            Mode::Batch => "batch",
            Mode::BatchGso => "batch+gso",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not `heap`, `batch` or `batch+gso`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMode(pub std::string::String);

impl fmt::Display for UnknownMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown send mode {:?} (expected heap, batch or batch+gso)",
            self.0
        )
    }
}

impl std::error::Error for UnknownMode {}

impl std::str::FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "heap" => Ok(Mode::Heap),
            "batch" => Ok(Mode::Batch),
            "batch+gso" | "batch-gso" | "gso" => Ok(Mode::BatchGso),
            other => Err(UnknownMode(other.into())),
        }
    }
}

/// Sender settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Largest datagram, bytes (spead2's default is 1472; the scenarios use 9000).
    pub max_packet_size: usize,
    /// Merge equal-size packets with UDP GSO.
    pub gso: bool,
    /// Datagram bytes per second; 0 = unlimited.
    pub rate_bytes_per_s: u64,
    /// Messages per `sendmmsg` call at most.
    pub max_messages_per_call: usize,
    /// Split heaps into equal-size packets ([`Packetizer::even`]) so that
    /// GSO runs continue across heaps.
    pub even_packets: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_packet_size: 9000,
            gso: false,
            rate_bytes_per_s: 0,
            max_messages_per_call: 256,
            even_packets: false,
        }
    }
}

/// Totals kept by a sender.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Heaps submitted.
    pub heaps: u64,
    /// SPEAD packets (datagrams on the wire).
    pub packets: u64,
    /// Datagram bytes (headers + payload).
    pub bytes: u64,
    /// `sendmmsg` calls made.
    pub calls: u64,
    /// Messages handed to the kernel (fewer than packets with GSO).
    pub messages: u64,
    /// Times the kernel refused GSO and the sender fell back to plain datagrams.
    pub gso_fallbacks: u64,
    /// Seconds spent sleeping for the rate limit.
    pub rate_sleep_s: f64,
}

/// A heap to send: its HEAP_CNT and items.
#[derive(Debug, Clone, Copy)]
pub struct HeapRef<'h, 'a> {
    /// HEAP_CNT.
    pub cnt: u64,
    /// Items, in order.
    pub items: &'h [Item<'a>],
}

/// Why a send failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The heap could not be split into packets.
    Packetize(packetize::Error),
    /// The socket call failed.
    Io(io::Error),
    /// The cancel flag was set.
    Interrupted,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Packetize(e) => write!(f, "cannot packetise heap: {e}"),
            Error::Io(e) => write!(f, "sendmmsg failed: {e}"),
            Error::Interrupted => f.write_str("interrupted"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Packetize(_) | Error::Interrupted => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

#[derive(Debug, Clone, Copy)]
struct Pkt {
    iov_start: usize,
    iov_len: usize,
    len: usize,
}

/// Byte-rate limiter: sleeps so that bytes sent never run ahead of `rate * t`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: f64,
    start: Option<Instant>,
    sent: u64,
}

impl RateLimiter {
    /// `rate` bytes per second, 0 = unlimited.
    pub fn new(rate: u64) -> Self {
        RateLimiter {
            rate: rate as f64,
            start: None,
            sent: 0,
        }
    }

    /// How long to wait before sending `bytes` more at time `now`.
    pub fn delay(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.rate <= 0.0 {
            return Duration::ZERO;
        }
        let start = *self.start.get_or_insert(now);
        let due = Duration::from_secs_f64(self.sent as f64 / self.rate);
        self.sent += bytes;
        (start + due).saturating_duration_since(now)
    }
}

const SEGMENT_CMSG_SPACE: usize = 32;
const MAX_GSO_BYTES: usize = 64_000;
const MAX_GSO_SEGMENTS: usize = 64;
/// Longest a rate-limit sleep goes without looking at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// The cancel flag of the plain [`UdpSender::send_heaps`]: never set.
static NEVER: AtomicBool = AtomicBool::new(false);

/// Sends heaps to one UDP destination.
pub struct UdpSender {
    socket: UdpSocket,
    config: Config,
    gso: bool,
    headers: Vec<u8>,
    iov: Vec<libc::iovec>,
    pkts: Vec<Pkt>,
    msgs: Vec<libc::mmsghdr>,
    msg_first: Vec<usize>,
    cmsgs: Vec<[u64; SEGMENT_CMSG_SPACE / 8]>,
    limiter: RateLimiter,
    stats: Stats,
}

impl fmt::Debug for UdpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSender")
            .field("socket", &self.socket)
            .field("config", &self.config)
            .field("gso", &self.gso)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

// SAFETY: the raw pointers in `iov`/`msgs` are scratch rebuilt by every
// `send_heaps` call and never dereferenced outside it.
unsafe impl Send for UdpSender {}

impl UdpSender {
    /// A sender connected to `dest`, from an ephemeral port on the matching
    /// address family.
    pub fn connect(dest: SocketAddr, config: Config) -> io::Result<Self> {
        let bind: SocketAddr = if dest.is_ipv4() {
            "0.0.0.0:0".parse().expect("literal")
        } else {
            "[::]:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(dest)?;
        let s2 = socket2::SockRef::from(&socket);
        let _ = s2.set_send_buffer_size(4 << 20);
        Ok(UdpSender {
            socket,
            config,
            gso: config.gso,
            headers: Vec::new(),
            iov: Vec::new(),
            pkts: Vec::new(),
            msgs: Vec::new(),
            msg_first: Vec::new(),
            cmsgs: Vec::new(),
            limiter: RateLimiter::new(config.rate_bytes_per_s),
            stats: Stats::default(),
        })
    }

    /// Totals so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The socket (for options this type does not cover).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// Whether GSO is (still) in use.
    pub fn gso_active(&self) -> bool {
        self.gso
    }

    /// Sends one heap (one `sendmmsg` call unless it has more packets than
    /// a call takes).
    pub fn send_heap(&mut self, heap: HeapRef<'_, '_>) -> Result<(), Error> {
        self.send_heaps(&[heap])
    }

    /// Sends a list of heaps with as few `sendmmsg` calls as possible.
    pub fn send_heaps(&mut self, heaps: &[HeapRef<'_, '_>]) -> Result<(), Error> {
        self.send_heaps_cancellable(heaps, &NEVER)
    }

    /// As [`send_heaps`](Self::send_heaps), but stops with
    /// [`Error::Interrupted`] once `cancel` is set: it is checked before every
    /// `sendmmsg` call and at least every 50 ms of a rate-limit sleep. Heaps
    /// already partly sent stay partly sent.
    pub fn send_heaps_cancellable(
        &mut self,
        heaps: &[HeapRef<'_, '_>],
        cancel: &AtomicBool,
    ) -> Result<(), Error> {
        let packets = stage!("spead.packetize", self.packetize(heaps))?;
        self.stats.heaps += heaps.len() as u64;
        let mut first = 0;
        while first < packets {
            if cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            first = self.submit(first, cancel)?;
        }
        self.stats.packets += packets as u64;
        Ok(())
    }

    /// Writes all headers and builds the iovec list; returns the packet count.
    fn packetize(&mut self, heaps: &[HeapRef<'_, '_>]) -> Result<usize, Error> {
        let mut gens = Vec::with_capacity(heaps.len());
        let (mut n_pkts, mut hdr_total, mut max_hdr) = (0, 0, 0);
        for h in heaps {
            let mut g = Packetizer::new(h.cnt, h.items, self.config.max_packet_size)
                .map_err(Error::Packetize)?;
            if self.config.even_packets {
                g = g.even();
            }
            let (n, bytes) = g.totals();
            n_pkts += n;
            hdr_total += bytes;
            max_hdr = max_hdr.max(g.max_header_len());
            gens.push(g);
        }
        if self.headers.len() < hdr_total + max_hdr {
            self.headers.resize(hdr_total + max_hdr, 0);
        }
        self.iov.clear();
        self.pkts.clear();
        self.pkts.reserve(n_pkts);
        let mut off = 0usize;
        for mut g in gens {
            loop {
                let hdr_slot = self.iov.len();
                self.iov.push(libc::iovec {
                    iov_base: ptr::null_mut(),
                    iov_len: 0,
                });
                let iov = &mut self.iov;
                let Some(len) = g.next_packet(&mut self.headers[off..], |s| {
                    iov.push(libc::iovec {
                        iov_base: s.as_ptr() as *mut libc::c_void,
                        iov_len: s.len(),
                    })
                }) else {
                    self.iov.pop();
                    break;
                };
                // The base is patched below, once no more headers are written.
                self.iov[hdr_slot] = libc::iovec {
                    iov_base: off as *mut libc::c_void,
                    iov_len: len.header,
                };
                off += len.header;
                self.pkts.push(Pkt {
                    iov_start: hdr_slot,
                    iov_len: self.iov.len() - hdr_slot,
                    len: len.len(),
                });
            }
        }
        let base = self.headers.as_mut_ptr();
        for p in &self.pkts {
            let v = &mut self.iov[p.iov_start];
            // SAFETY: the offset plus the header length lies within `headers`
            // (sized above), which is not touched again until the next call.
            v.iov_base = unsafe { base.add(v.iov_base as usize) } as *mut libc::c_void;
        }
        Ok(self.pkts.len())
    }

    /// Groups packets from `first` into messages and makes one `sendmmsg`
    /// call; returns the index of the first packet not yet sent.
    fn submit(&mut self, first: usize, cancel: &AtomicBool) -> Result<usize, Error> {
        let max_msgs = self.config.max_messages_per_call.clamp(1, 1024);
        self.msgs.clear();
        self.msg_first.clear();
        if self.cmsgs.len() < max_msgs {
            self.cmsgs.resize(max_msgs, [0; SEGMENT_CMSG_SPACE / 8]);
        }
        let mut i = first;
        let mut bytes = 0u64;
        while i < self.pkts.len() && self.msgs.len() < max_msgs {
            let seg = self.pkts[i].len;
            let mut j = i + 1;
            let mut total = seg;
            if self.gso {
                while j < self.pkts.len()
                    && j - i < MAX_GSO_SEGMENTS
                    && total + self.pkts[j].len <= MAX_GSO_BYTES
                    && self.pkts[j].len <= seg
                {
                    total += self.pkts[j].len;
                    j += 1;
                    if self.pkts[j - 1].len < seg {
                        break; // a shorter segment must be the last one
                    }
                }
            }
            let iov_start = self.pkts[i].iov_start;
            let iov_end = self.pkts[j - 1].iov_start + self.pkts[j - 1].iov_len;
            // SAFETY: an all-zero mmsghdr is a valid "no name, no control" header.
            let mut m: libc::mmsghdr = unsafe { mem::zeroed() };
            m.msg_hdr.msg_iov = self.iov[iov_start..].as_mut_ptr();
            m.msg_hdr.msg_iovlen = (iov_end - iov_start) as _;
            if j - i > 1 {
                let slot = self.msgs.len();
                let buf = self.cmsgs[slot].as_mut_ptr() as *mut u8;
                // SAFETY: the cmsg buffer is SEGMENT_CMSG_SPACE bytes, 8-aligned,
                // enough for one cmsghdr with a u16 payload.
                unsafe {
                    let space = libc::CMSG_SPACE(mem::size_of::<u16>() as u32) as usize;
                    m.msg_hdr.msg_control = buf as *mut libc::c_void;
                    m.msg_hdr.msg_controllen = space as _;
                    let c = libc::CMSG_FIRSTHDR(&m.msg_hdr);
                    (*c).cmsg_level = libc::SOL_UDP;
                    (*c).cmsg_type = libc::UDP_SEGMENT;
                    (*c).cmsg_len = libc::CMSG_LEN(mem::size_of::<u16>() as u32) as _;
                    ptr::write_unaligned(libc::CMSG_DATA(c) as *mut u16, seg as u16);
                }
            }
            self.msgs.push(m);
            self.msg_first.push(i);
            bytes += total as u64;
            i = j;
        }
        let wait = self.limiter.delay(bytes, Instant::now());
        if !wait.is_zero() {
            let until = Instant::now() + wait;
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err(Error::Interrupted);
                }
                let left = until.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(CANCEL_POLL));
            }
            self.stats.rate_sleep_s += wait.as_secs_f64();
        }
        let fd = self.socket.as_raw_fd();
        let n_msgs = self.msgs.len();
        // SAFETY: msgs point into iov (valid payload/header pointers for this
        // call) and cmsgs, all alive and unmoved during the call.
        let rc = stage!("spead.send_call", bytes = bytes, unsafe {
            libc::sendmmsg(fd, self.msgs.as_mut_ptr(), n_msgs as u32, 0)
        });
        self.stats.calls += 1;
        if rc < 0 {
            let e = io::Error::last_os_error();
            let gso_msg = self.msgs[0].msg_hdr.msg_controllen != 0;
            match e.raw_os_error() {
                Some(libc::EIO) | Some(libc::EINVAL) | Some(libc::EMSGSIZE) if gso_msg => {
                    self.gso = false;
                    self.stats.gso_fallbacks += 1;
                    return Ok(first);
                }
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR) => {
                    std::thread::yield_now();
                    return Ok(first);
                }
                _ => return Err(Error::Io(e)),
            }
        }
        let sent = rc as usize;
        self.stats.messages += sent as u64;
        let next = if sent < n_msgs {
            self.msg_first[sent]
        } else {
            i
        };
        self.stats.bytes += self.pkts[first..next]
            .iter()
            .map(|p| p.len as u64)
            .sum::<u64>();
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;

    #[test]
    fn mode_names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
        }
        let e = "fast".parse::<Mode>().unwrap_err();
        assert!(e.to_string().contains("heap, batch or batch+gso"));
    }

    #[test]
    fn rate_limiter_paces_bytes() {
        let mut r = RateLimiter::new(1000);
        let t0 = Instant::now();
        assert_eq!(r.delay(500, t0), Duration::ZERO);
        // 500 bytes already sent at 1000 B/s: the next send is due at t0 + 0.5 s.
        assert_eq!(
            r.delay(500, t0 + Duration::from_millis(100)),
            Duration::from_millis(400)
        );
        assert_eq!(r.delay(10, t0 + Duration::from_secs(2)), Duration::ZERO);
        let mut unlimited = RateLimiter::new(0);
        assert_eq!(unlimited.delay(1 << 30, t0), Duration::ZERO);
    }

    fn roundtrip(
        config: Config,
        heap_size: usize,
        heaps: usize,
    ) -> (Stats, std::vec::Vec<std::vec::Vec<u8>>) {
        roundtrip_with(config, heap_size, heaps, |_| {})
    }

    fn roundtrip_with(
        config: Config,
        heap_size: usize,
        heaps: usize,
        prepare: impl FnOnce(&UdpSender),
    ) -> (Stats, std::vec::Vec<std::vec::Vec<u8>>) {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&rx)
            .set_recv_buffer_size(8 << 20)
            .unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut tx = UdpSender::connect(rx.local_addr().unwrap(), config).unwrap();
        prepare(&tx);
        let bufs: std::vec::Vec<std::vec::Vec<u8>> =
            (0..heaps).map(|i| std::vec![i as u8; heap_size]).collect();
        let items: std::vec::Vec<[Item<'_>; 2]> = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| {
                [
                    Item::immediate(0x1600, i as u64),
                    Item::addressed(0x3300, b),
                ]
            })
            .collect();
        let refs: std::vec::Vec<HeapRef<'_, '_>> = items
            .iter()
            .enumerate()
            .map(|(i, it)| HeapRef {
                cnt: i as u64 + 1,
                items: it,
            })
            .collect();
        tx.send_heaps(&refs).unwrap();
        let stats = *tx.stats();
        let mut got = std::vec::Vec::new();
        let mut buf = std::vec![0u8; 65536];
        for _ in 0..stats.packets {
            let n = rx.recv(&mut buf).unwrap();
            got.push(buf[..n].to_vec());
        }
        (stats, got)
    }

    #[test]
    fn cancel_stops_a_rate_limited_send_mid_sleep() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // One datagram per call at 1000 B/s: the second heap waits about 8 s.
        let config = Config {
            rate_bytes_per_s: 1000,
            max_messages_per_call: 1,
            ..Config::default()
        };
        let mut tx = UdpSender::connect(rx.local_addr().unwrap(), config).unwrap();
        let bufs = [[1u8; 8192], [2u8; 8192]];
        let items = bufs.each_ref().map(|b| [Item::addressed(0x3300, b)]);
        let refs = [0, 1].map(|i| HeapRef {
            cnt: i + 1,
            items: &items[i as usize],
        });
        let cancel = AtomicBool::new(false);
        let r = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(100));
                cancel.store(true, Ordering::Relaxed);
            });
            tx.send_heaps_cancellable(&refs, &cancel)
        });
        assert!(matches!(r, Err(Error::Interrupted)), "{r:?}");
        assert_eq!(
            tx.stats().messages,
            1,
            "the first heap went, the second did not"
        );
        // Already set: nothing more is sent.
        let r = tx.send_heaps_cancellable(&refs, &cancel);
        assert_eq!(r.unwrap_err().to_string(), "interrupted");
        assert_eq!(tx.stats().messages, 1);
    }

    #[test]
    fn batch_arrives_as_spead_packets() {
        let (stats, got) = roundtrip(Config::default(), 20_000, 3);
        assert_eq!(stats.packets, 9);
        assert_eq!(stats.messages, 9);
        assert_eq!(stats.calls, 1);
        let mut s = crate::reasm::Stream::new(crate::reasm::Config::default());
        let mut heaps = 0;
        for p in &got {
            s.add_packet(p, &mut |h, _| {
                let i = h.item(0x1600).unwrap().as_u64().unwrap();
                assert_eq!(
                    h.item(0x3300).unwrap(),
                    crate::reasm::ItemValue::Bytes(&[i as u8; 20_000][..])
                );
                heaps += 1;
            });
        }
        assert_eq!(heaps, 3);
    }

    #[test]
    fn gso_merges_or_falls_back_cleanly() {
        let config = Config {
            gso: true,
            ..Config::default()
        };
        let (stats, got) = roundtrip(config, 8192, 20);
        assert_eq!(stats.packets, 20);
        assert_eq!(
            got.len(),
            20,
            "the kernel segments GSO messages into datagrams"
        );
        assert!(got.iter().all(|p| p.len() == 8192 + 56));
        if stats.gso_fallbacks == 0 {
            assert!(stats.messages < 20, "{stats:?}");
        } else {
            assert_eq!(stats.messages, 20);
        }
    }

    #[test]
    fn gso_refused_by_the_kernel_falls_back_and_counts() {
        // With UDP checksums off (SO_NO_CHECK) the kernel refuses UDP_SEGMENT
        // with EINVAL: a real refusal, as on a device without checksum offload.
        let config = Config {
            gso: true,
            ..Config::default()
        };
        let (stats, got) = roundtrip_with(config, 8192, 20, |tx| {
            crate::sockopt::set_int(tx.socket(), libc::SOL_SOCKET, libc::SO_NO_CHECK, 1).unwrap();
        });
        assert_eq!(stats.gso_fallbacks, 1, "{stats:?}");
        assert_eq!(stats.messages, 20);
        assert_eq!(got.len(), 20);
    }
}
