//! Links for perfkit: the things that move bytes and packets between a sender
//! and a receiver, and a virtual-time model of a UART with device costs.
//!
//! # Two small traits
//!
//! A link is either a **packet link** ([`PacketLink`]: loopback, UDP), which
//! keeps message boundaries, or a **byte link** ([`ByteLink`]: pipe, serial
//! device, TCP), whose reads return the stream in arbitrary chunks so the caller
//! frames its messages itself. Both are driven from a poll loop on one thread:
//!
//! ```
//! use perfkit_link::{Loopback, PacketLink};
//! use std::time::Duration;
//!
//! let mut link = Loopback::new(255);
//! let mut buf = [0u8; 255];
//! for i in 0..3u8 {
//!     // sender step: send may refuse (MTU, full) with an error, never truncates
//!     link.send(&[i; 10]).unwrap();
//!     // receiver step: a zero timeout never blocks
//!     while let Some(n) = link.recv(&mut buf, Duration::ZERO).unwrap() {
//!         assert_eq!(&buf[..n], &[i; 10]);
//!     }
//! }
//! assert_eq!(link.stats().packets_in, 3);
//! ```
//!
//! A byte link is read the same way; the reader keeps its partial frame
//! between reads, since a frame may arrive in several chunks:
//!
//! ```
//! use perfkit_link::{ByteLink, ByteLoopback, ReadOutcome};
//! use std::time::Duration;
//!
//! let mut link = ByteLoopback::with_max_chunk(3); // reads return <= 3 bytes
//! link.write(b"\xffhello\xff").unwrap();
//! link.close(); // the peer is done: EOF once drained
//! let (mut buf, mut stream) = ([0u8; 64], Vec::new());
//! loop {
//!     match link.read(&mut buf, Duration::from_millis(10)).unwrap() {
//!         ReadOutcome::Data(n) => stream.extend_from_slice(&buf[..n]), // feed the deframer
//!         ReadOutcome::Timeout => continue, // run the other end, check a deadline
//!         ReadOutcome::Eof => break,
//!     }
//! }
//! assert_eq!(stream, b"\xffhello\xff");
//! ```
//!
//! Every read takes a timeout (`Duration::ZERO` = non-blocking), so a runner
//! never hangs on a dead peer; byte links report end of stream as
//! [`ReadOutcome::Eof`]. Writes either complete or return an error (a pipe
//! write gives up after its write timeout). Each link counts what crossed it
//! in [`LinkStats`]. The traits are object-safe, so runners hold
//! `Box<dyn ByteLink>` when the kind is chosen at run time.
//!
//! # Instrumentation
//!
//! The system calls that move data are measured with `perfkit`, so a run's
//! stage table shows the links next to the stack: `link.pipe.write` (with
//! waiting for room, and bytes), `link.pipe.read` (the read(2) alone, not
//! the wait for data), `link.pipe.wait` (a receiver waiting for data to
//! arrive, so its idle time is measured rather than missing), `link.serial.write`, `link.tcp.write`,
//! `link.tcp.read`, `link.udp.send`, `link.udp.recv`. The in-memory loopback is not measured: it costs less
//! than a measurement would.
//!
//! # Link kinds a scenario names
//!
//! The kinds that can join two ends outside one object (`serial`, `tcp`,
//! `udp`) are listed in [`registry`], each with its own parameter table and
//! settings type, and opened in one process or, listening and connecting,
//! across two hosts; the scenario loader, the harness's runner and `perfkit
//! agent` take every kind from there, so a new one is its module plus one
//! line in [`LINK_KINDS`].
//!
//! # Wrappers
//!
//! [`faults::Faulty`] injects seeded faults (bit errors, byte drop and
//! duplication, packet loss, duplication and reordering) over any link, in
//! either direction; [`capture::Capture`] writes everything that crosses a
//! link to a file. Both implement the same traits as what they wrap.
//!
//! # Virtual time
//!
//! A 35 KB transfer over a 115200-baud UART takes seconds of real time, and
//! its outcome on a microcontroller depends on CPU costs a host does not
//! have. [`uart`] models the line (baud, bits per character, transmit and
//! receive buffers, overflow) in virtual nanoseconds, [`profile`] describes
//! what each device spends per message and per byte, and [`sim`] runs a sender
//! and a receiver (supplied by the caller as traits, so this crate does not
//! depend on the transfer stack) over the model in a discrete-event loop. No
//! threads and no sleeping: the same inputs give the same numbers, in
//! milliseconds of wall time. The trade-off is fidelity: the model knows only
//! what the profile says, so a profile is derived from measurements and its
//! derivation is written next to its numbers (see `fixtures/profiles/`).
//! [`stages`] splits a device's costs into the stages the field timed and
//! gives the simulation's stage tables, [`timeline`] samples the link over
//! time, and [`bottleneck`] names what bounded a run.
#![deny(missing_docs)]

pub mod bottleneck;
pub mod capture;
mod clock;
mod error;
pub mod faults;
pub mod loopback;
pub mod pipe;
pub mod profile;
pub mod registry;
pub mod serial;
pub mod sim;
pub mod stages;
mod sys;
pub mod tcp;
pub mod timeline;
pub mod uart;
pub mod udp;

pub use clock::VirtualClock;
pub use error::{Error, ErrorKind, Result};
pub use loopback::{ByteLoopback, Loopback};
pub use pipe::{spawn_pipeline, ChildLink, PipeLink};
pub use profile::DeviceProfile;
pub use registry::{link_kind, End, Ends, LinkKind, Registered, LINK_KINDS};
pub use serial::SerialLink;
pub use tcp::TcpLink;
pub use uart::UartLink;
pub use udp::UdpLink;

use std::time::Duration;

/// Counters of what crossed a link, as seen by this end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LinkStats {
    /// Bytes handed to the link (written or sent).
    pub bytes_out: u64,
    /// Bytes taken from the link (read or received).
    pub bytes_in: u64,
    /// Packets sent (packet links) or write calls (byte links).
    pub packets_out: u64,
    /// Packets received (packet links) or read calls that returned data (byte links).
    pub packets_in: u64,
    /// Packets or bytes the link itself lost: a received packet that did not
    /// fit the caller's buffer, a datagram from a stranger.
    pub dropped: u64,
    /// Packets refused because they exceeded the MTU.
    pub oversize: u64,
}

impl LinkStats {
    pub(crate) fn sent(&mut self, len: usize) {
        self.bytes_out += len as u64;
        self.packets_out += 1;
    }

    pub(crate) fn received(&mut self, len: usize) {
        self.bytes_in += len as u64;
        self.packets_in += 1;
    }

    /// Refuses a packet longer than `mtu` with [`ErrorKind::TooLarge`],
    /// counting it in `oversize`: the check every packet link makes before
    /// sending.
    pub(crate) fn check_mtu(&mut self, len: usize, mtu: usize) -> Result<()> {
        if len > mtu {
            self.oversize += 1;
            return Err(Error::new(ErrorKind::TooLarge { len, mtu }));
        }
        Ok(())
    }
}

/// What a byte-link read produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// This many bytes were stored at the start of the buffer (never 0).
    Data(usize),
    /// Nothing arrived within the timeout; try again later.
    Timeout,
    /// The peer closed its end; no more bytes will come.
    Eof,
}

impl ReadOutcome {
    /// Bytes read: `n` for `Data(n)`, 0 otherwise.
    pub fn len(self) -> usize {
        match self {
            ReadOutcome::Data(n) => n,
            _ => 0,
        }
    }

    /// True unless bytes were read.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A link that keeps message boundaries: one `send` is one `recv`.
pub trait PacketLink {
    /// Sends one packet. A packet longer than [`mtu`](Self::mtu) is refused
    /// with [`ErrorKind::TooLarge`] (and counted in `oversize`), never truncated.
    fn send(&mut self, packet: &[u8]) -> Result<()>;

    /// Receives one packet into `buf`, waiting at most `timeout`
    /// (`Duration::ZERO` = do not wait). `Ok(None)` when nothing arrived. A
    /// packet that does not fit `buf` is dropped, counted, and reported as
    /// [`ErrorKind::BufferTooSmall`].
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>>;

    /// Largest packet this link carries.
    fn mtu(&self) -> usize;

    /// Pushes out anything a wrapper holds back (e.g. packets delayed for
    /// reordering). Call it once the sender is done.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Counters so far.
    fn stats(&self) -> LinkStats;
}

/// A byte stream: writes go out whole, reads return whatever has arrived.
pub trait ByteLink {
    /// Writes all of `bytes` (or fails: [`ErrorKind::Closed`] when the peer
    /// has gone, [`ErrorKind::TimedOut`] when it stopped reading).
    fn write(&mut self, bytes: &[u8]) -> Result<()>;

    /// Reads what has arrived into `buf`, waiting at most `timeout` for the
    /// first byte (`Duration::ZERO` = do not wait).
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome>;

    /// Pushes out anything buffered on this side.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Counters so far.
    fn stats(&self) -> LinkStats;
}

/// Both link traits through a box or a borrow, so a runner may hold a link
/// of either kind behind `Box<dyn ...>` or lend one it keeps.
macro_rules! forward_links {
    ($($ptr:ty),*) => {$(
        impl<L: PacketLink + ?Sized> PacketLink for $ptr {
            fn send(&mut self, packet: &[u8]) -> Result<()> {
                (**self).send(packet)
            }
            fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
                (**self).recv(buf, timeout)
            }
            fn mtu(&self) -> usize {
                (**self).mtu()
            }
            fn flush(&mut self) -> Result<()> {
                (**self).flush()
            }
            fn stats(&self) -> LinkStats {
                (**self).stats()
            }
        }

        impl<L: ByteLink + ?Sized> ByteLink for $ptr {
            fn write(&mut self, bytes: &[u8]) -> Result<()> {
                (**self).write(bytes)
            }
            fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
                (**self).read(buf, timeout)
            }
            fn flush(&mut self) -> Result<()> {
                (**self).flush()
            }
            fn stats(&self) -> LinkStats {
                (**self).stats()
            }
        }
    )*};
}

forward_links!(Box<L>, &mut L);
