//! One conformance suite, run by the same engine over every link: the
//! in-memory byte loopback, a real pipe through a `cat` process, the link
//! crate's kinds (a pty pair as a serial device, TCP, UDP datagrams), and
//! the virtual-time UART model. Each link
//! must deliver the file byte for byte, honour a raised cancel flag within
//! one poll, and stop at the deadline with the one wording.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use perfkit_engine::{drive, Clock, Error, Policy, RecvEnd, RxPump, Stop, TxPump, WallClock};
use perfkit_link::uart::UartConfig;
use perfkit_link::{
    ByteLink, ByteLoopback, End, LinkStats, PacketLink, PipeLink, ReadOutcome, UartLink,
    VirtualClock,
};
use perfkit_stack::{Framing, MemorySource, Receiver, Sender, SenderConfig, VecSink};
use rand::{RngCore, SeedableRng};

/// Raises a cancel flag on its `trip`-th write and counts every write.
struct Tripwire<L> {
    inner: L,
    writes: Arc<AtomicU64>,
    trip: u64,
    flag: Arc<AtomicBool>,
}

impl<L> Tripwire<L> {
    fn count(&self) {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.trip {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

impl<L: ByteLink> ByteLink for Tripwire<L> {
    fn write(&mut self, bytes: &[u8]) -> perfkit_link::Result<()> {
        self.count();
        self.inner.write(bytes)
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> perfkit_link::Result<ReadOutcome> {
        self.inner.read(buf, timeout)
    }
    fn flush(&mut self) -> perfkit_link::Result<()> {
        self.inner.flush()
    }
    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

impl<L: PacketLink> PacketLink for Tripwire<L> {
    fn send(&mut self, packet: &[u8]) -> perfkit_link::Result<()> {
        self.count();
        self.inner.send(packet)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> perfkit_link::Result<Option<usize>> {
        self.inner.recv(buf, timeout)
    }
    fn mtu(&self) -> usize {
        self.inner.mtu()
    }
    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

/// Makes tripwires that share one counter and flag.
struct Wire {
    writes: Arc<AtomicU64>,
    trip: u64,
    flag: Arc<AtomicBool>,
}

impl Wire {
    fn around<L>(&self, inner: L) -> Tripwire<L> {
        Tripwire {
            inner,
            writes: self.writes.clone(),
            trip: self.trip,
            flag: self.flag.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Loopback,
    Pipe,
    /// A kind from the link crate's table, opened with its defaults and
    /// these settings.
    Registered(&'static str, &'static [(&'static str, i64)]),
    Uart,
}

/// What a run gave: each end's result (the same one twice where one driver
/// runs both ends), the writes made, and the receiver's data.
struct Ran {
    sent: Result<(), String>,
    got: Result<RecvEnd, String>,
    writes: u64,
    data: Vec<u8>,
}

fn file(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(7).fill_bytes(&mut v);
    v
}

/// Runs `data` over `kind` with the engine; the cancel flag trips on write
/// `trip` (0 = never).
fn run(kind: Kind, data: &[u8], sc: SenderConfig, timeout_s: f64, trip: u64) -> Ran {
    let flag = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let wire = Wire {
        writes: writes.clone(),
        trip,
        flag: flag.clone(),
    };
    let policy = Policy::seconds(timeout_s).cancel_on(&flag);
    let mut tx = Sender::new(MemorySource::new(data, b"f.bin"), sc).unwrap();
    let mut rx: Receiver<VecSink> = Receiver::new(0, VecSink::new(1 << 24), Framing::Dttk);
    let mut txp = TxPump::framed(&mut tx, Framing::Dttk);
    let mut rxp = RxPump::new(&mut rx);
    let idle = Duration::from_secs(2);
    let (sent, got) = match kind {
        Kind::Loopback | Kind::Uart => {
            let (clock, link): (Box<dyn Clock>, Box<dyn ByteLink>) = match kind {
                Kind::Loopback => (Box::new(WallClock::start()), Box::new(ByteLoopback::new())),
                _ => {
                    let clock = VirtualClock::new();
                    let cfg = UartConfig {
                        baud: 115_200,
                        bits_per_char: 10,
                        rx_buffer: 1 << 16,
                        tx_buffer: 32,
                    };
                    let link = UartLink::new(cfg, clock.clone()).unwrap();
                    (Box::new(clock), Box::new(link))
                }
            };
            let mut link = wire.around(link);
            let r = drive::interleave(
                clock.as_ref(),
                &policy,
                &mut txp,
                &mut rxp,
                &mut link,
                4096,
                idle,
            );
            let sent = r.as_ref().map(|_| ()).map_err(Error::to_string);
            (sent, r.map(|(end, _)| end).map_err(|e| e.to_string()))
        }
        Kind::Registered(name, set) => {
            let kind = perfkit_link::link_kind(name).expect("a registered link kind");
            let mut settings = kind.settings(|_| None);
            for (k, v) in set {
                settings.insert((*k).to_owned(), (*v).into());
            }
            let ends = kind.open(&settings).expect("open");
            let mut tx_end = match ends.tx {
                End::Bytes(l) => End::Bytes(Box::new(wire.around(l))),
                End::Packets(l) => End::Packets(Box::new(wire.around(l))),
            };
            let mut rx_end = ends.rx;
            let (sent, got) = drive::across(
                &WallClock::start(),
                &policy,
                &mut tx,
                Framing::Dttk,
                &mut tx_end,
                &mut rx,
                &mut rx_end,
                4096,
                idle,
            );
            (
                sent.map(|_| ()).map_err(|e| e.to_string()),
                got.map(|(end, _)| end).map_err(|e| e.to_string()),
            )
        }
        Kind::Pipe => {
            let clock = WallClock::start();
            let mut c = Command::new("cat")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("cat");
            let a = PipeLink::from_child_pipes(c.stdin.take(), None);
            let mut b = PipeLink::from_child_pipes(None, c.stdout.take());
            let mut a = wire.around(a);
            let (sent, got) = drive::duplex(
                &clock, &policy, &mut txp, &mut a, &mut rxp, &mut b, 4096, idle,
            );
            drop(a);
            let _ = c.kill();
            let _ = c.wait();
            (
                sent.map(|_| ()).map_err(|e| e.to_string()),
                got.map(|(end, _)| end).map_err(|e| e.to_string()),
            )
        }
    };
    Ran {
        sent,
        got,
        writes: writes.load(Ordering::SeqCst),
        data: rx.sink().data.clone(),
    }
}

fn err<T>(r: &Result<T, String>) -> Option<&str> {
    r.as_ref().err().map(String::as_str)
}

fn plain() -> SenderConfig {
    SenderConfig {
        block_size: 50,
        repeats: 0,
        ..SenderConfig::default()
    }
}

fn delivers_byte_exact(kind: Kind) {
    let data = file(20_000);
    let r = run(kind, &data, plain(), 30.0, 0);
    assert_eq!(r.sent, Ok(()), "{kind:?}");
    assert_eq!(r.got, Ok(RecvEnd::Complete), "{kind:?}");
    assert!(r.data == data, "{kind:?}: the received file differs");
}

fn cancel_is_honoured_within_one_poll(kind: Kind) {
    // Throttled, so every frame is its own write and the trip lands mid-run.
    let sc = SenderConfig {
        throttle_pps: 2_000,
        ..plain()
    };
    let r = run(kind, &file(20_000), sc, 30.0, 3);
    assert_eq!(r.writes, 3, "{kind:?}: wrote after the flag was raised");
    assert_eq!(err(&r.sent), Some("interrupted"), "{kind:?}");
    assert_eq!(err(&r.got), Some("interrupted"), "{kind:?}");
}

fn deadline_has_one_wording(kind: Kind) {
    // 10 packets a second cannot move 400 blocks in 0.3 s.
    let sc = SenderConfig {
        throttle_pps: 10,
        ..plain()
    };
    let r = run(kind, &file(20_000), sc, 0.3, 0);
    let want = Stop::TimedOut {
        after_ns: 300_000_000,
    }
    .to_string();
    assert_eq!(want, "gave up after 0.3 s (timeout_s)");
    assert_eq!(err(&r.sent), Some(want.as_str()), "{kind:?}");
    assert_eq!(err(&r.got), Some(want.as_str()), "{kind:?}");
}

macro_rules! conformance {
    ($($name:ident => $kind:expr),* $(,)?) => {$(
        mod $name {
            use super::*;
            #[test]
            fn delivers_byte_exact() {
                super::delivers_byte_exact($kind)
            }
            #[test]
            fn cancel_is_honoured_within_one_poll() {
                super::cancel_is_honoured_within_one_poll($kind)
            }
            #[test]
            fn deadline_has_one_wording() {
                super::deadline_has_one_wording($kind)
            }
        }
    )*};
}

conformance! {
    loopback => Kind::Loopback,
    pipe => Kind::Pipe,
    serial => Kind::Registered("serial", &[]),
    tcp => Kind::Registered("tcp", &[]),
    // Forced where permitted: an unread burst must not overflow the
    // receiver's socket, or the byte-exact test measures the machine's load.
    udp => Kind::Registered("udp", &[("rcvbuf", 8 << 20)]),
    uart_model => Kind::Uart,
}

/// A newly registered link kind must be added above.
#[test]
fn every_registered_link_kind_is_in_the_suite() {
    let names: Vec<_> = perfkit_link::LINK_KINDS.iter().map(|k| k.name).collect();
    assert_eq!(names, ["serial", "tcp", "udp"]);
}
