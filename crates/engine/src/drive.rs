//! Drivers: the loops that move a transfer through real or virtual links.
//! Each checks the [`Policy`] once per poll and reads only the injected
//! [`Clock`].
//!
//! - [`send`] / [`receive`]: one end over a byte link (a pipe to another
//!   process, a serial device), each on its own thread or process.
//! - [`exchange`]: both ends on one thread over a packet link (loopback).
//! - [`interleave`]: both ends on one thread over one byte link object that
//!   carries the stream from its write side to its read side (the byte
//!   loopback, the virtual-time UART).
//! - [`duplex`]: both ends over two byte links, the sender on a second thread.
//! - [`send_packets`] / [`receive_packets`]: one end over a packet link
//!   that leaves this object (UDP), one message per packet.
//! - [`send_end`] / [`receive_end`] / [`across`]: the same for either kind
//!   of [`End`] a link kind opens, so a runner or `perfkit agent` need not
//!   know whether its link is a stream or datagrams.
//! - [`simulate`](crate::simulate): both ends as two devices in virtual
//!   time over the UART model, each charged its device's CPU costs.

use std::time::Duration;

use perfkit_link::{ByteLink, End, ErrorKind, PacketLink, ReadOutcome};
use perfkit_stack::{Deframe, Framer, Framing, PacketFormat, Receiver, Sender, Sink, Source};

use crate::{Clock, Error, Next, Policy, RecvEnd, RxPump, Step, TxPump, MAX_FRAME};

/// How long one read may wait: the longest a raised cancel flag or a passed
/// deadline goes unnoticed.
pub const POLL: Duration = Duration::from_millis(50);

/// Framed messages are gathered into writes of up to this many bytes: a
/// write per 57-byte frame would measure system calls, not the stack.
pub const BATCH: usize = 1 << 16;

/// Runs the sender to END over a byte link. Returns the bytes written.
pub fn send<S: Source, F: Framer>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    tx: &mut TxPump<'_, S, F>,
    link: &mut dyn ByteLink,
) -> Result<u64, Error> {
    // Frames are encoded straight into the batch: one copy fewer per frame.
    let mut out = vec![0u8; BATCH];
    let mut fill = 0;
    // What the bytes written so far (not those still in the batch) hold:
    // what a closed link is judged and counted by.
    let mut written = Written::default();
    loop {
        // One clock read serves the policy and the sender.
        let now = clock.now_ns();
        policy.check(now)?;
        match tx.poll_into(now, &mut out[fill..])? {
            Step::Wrote(n) => {
                fill += n;
                if BATCH - fill < MAX_FRAME {
                    written.flush(link, &out[..fill], tx.sender())?;
                    fill = 0;
                }
            }
            Step::WaitUntil(t) => {
                // Throttled: what is framed goes out now, then wait for the slot.
                if fill > 0 {
                    written.flush(link, &out[..fill], tx.sender())?;
                    fill = 0;
                    link.flush().map_err(|e| written.closed(e))?;
                }
                wait(clock, t);
            }
            Step::Done => break,
        }
    }
    if fill > 0 {
        written.flush(link, &out[..fill], tx.sender())?;
    }
    link.flush().map_err(|e| written.closed(e))?;
    Ok(written.wire)
}

/// What [`send`] has written whole.
#[derive(Default)]
struct Written {
    /// Bytes.
    wire: u64,
    /// A META and every block were among them.
    whole_file: bool,
    /// The sender's counts as of the last frame among them.
    stats: perfkit_stack::TransferStats,
}

impl Written {
    /// Writes a batch that holds every frame `sender` has made so far.
    fn flush<S: Source>(
        &mut self,
        link: &mut dyn ByteLink,
        out: &[u8],
        sender: &Sender<S>,
    ) -> Result<(), Error> {
        match write_out(link, out) {
            Ok(n) => {
                self.wire += n;
                self.whole_file = sender.whole_file_sent();
                self.stats = *sender.stats();
                Ok(())
            }
            Err(Error::Link(e)) => Err(self.closed(e)),
            Err(e) => Err(e),
        }
    }

    /// A link error, as [`Error::Closed`] when the peer closed it.
    fn closed(&self, e: perfkit_link::Error) -> Error {
        if e.is_closed() {
            Error::Closed {
                wire: self.wire,
                whole_file: self.whole_file,
                sent: self.stats,
            }
        } else {
            Error::Link(e)
        }
    }
}

/// Waits for a throttle slot, at most one [`POLL`] at a time, so the policy
/// is checked again before a long wait ends.
fn wait(clock: &dyn Clock, t_ns: u64) {
    let poll = POLL.as_nanos() as u64;
    clock.wait_until_ns(t_ns.min(clock.now_ns().saturating_add(poll)));
}

fn write_out(link: &mut dyn ByteLink, out: &[u8]) -> Result<u64, Error> {
    perfkit::measure!("engine::write", bytes = out.len(), link.write(out))?;
    Ok(out.len() as u64)
}

/// Feeds the receiver from a byte link until the transfer ends, the link
/// closes, or nothing arrives for `idle` once bytes have flowed. Returns how
/// it ended and the bytes read.
pub fn receive<K: Sink, const B: usize, D: Deframe, P: PacketFormat>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    rx: &mut RxPump<'_, K, B, D, P>,
    link: &mut dyn ByteLink,
    chunk: usize,
    idle: Duration,
) -> Result<(RecvEnd, u64), Error> {
    let mut reader = Reader::new(clock, chunk, idle);
    loop {
        policy.check(clock.now_ns())?;
        let may_idle = reader.read > 0;
        if let Some(end) = reader.step(clock, rx, link, POLL, may_idle)? {
            return Ok((end, reader.read));
        }
    }
}

/// The receiving half of a driver: one read fed to the receiver, and the
/// idle rule.
struct Reader {
    buf: Vec<u8>,
    idle_ns: u64,
    last_data: u64,
    /// Bytes read so far.
    read: u64,
}

impl Reader {
    fn new(clock: &dyn Clock, chunk: usize, idle: Duration) -> Self {
        Reader {
            buf: vec![0u8; chunk.max(1)],
            idle_ns: u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX),
            last_data: clock.now_ns(),
            read: 0,
        }
    }

    /// Reads once, waiting at most `wait`; `Some` when the transfer ended.
    /// Silence longer than the idle time ends it only when `may_idle`.
    fn step<K: Sink, const B: usize, D: Deframe, P: PacketFormat>(
        &mut self,
        clock: &dyn Clock,
        rx: &mut RxPump<'_, K, B, D, P>,
        link: &mut dyn ByteLink,
        wait: Duration,
        may_idle: bool,
    ) -> Result<Option<RecvEnd>, Error> {
        match link.read(&mut self.buf, wait)? {
            ReadOutcome::Data(n) => {
                self.read += n as u64;
                self.last_data = clock.now_ns();
                rx.on_bytes(&self.buf[..n], self.last_data);
                Ok(rx.ended())
            }
            ReadOutcome::Timeout => {
                let silent = clock.now_ns().saturating_sub(self.last_data) > self.idle_ns;
                Ok((may_idle && silent).then_some(RecvEnd::Idle))
            }
            ReadOutcome::Eof => Ok(Some(rx.on_eof())),
        }
    }
}

/// Both ends on one thread over a packet link: one message out, then
/// everything that has arrived in. Each packet's whole trip is measured as
/// `loopback::packet`, the figure a busy machine disturbs least.
pub fn exchange<S: Source, F: Framer, K: Sink, const B: usize, D: Deframe, P: PacketFormat>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    tx: &mut TxPump<'_, S, F>,
    rx: &mut RxPump<'_, K, B, D, P>,
    link: &mut dyn PacketLink,
) -> Result<(), Error> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let now = clock.now_ns();
        policy.check(now)?;
        let packet = perfkit::span!("loopback::packet");
        match tx.poll(now)? {
            Next::Send(msg) => link.send(msg)?,
            Next::WaitUntil(t) => {
                drop(packet);
                wait(clock, t);
                continue;
            }
            Next::Done => break,
        }
        while let Some(n) = link.recv(&mut buf, Duration::ZERO)? {
            rx.on_message(&buf[..n], clock.now_ns());
        }
        drop(packet);
    }
    link.flush()?;
    while let Some(n) = link.recv(&mut buf, Duration::ZERO)? {
        rx.on_message(&buf[..n], clock.now_ns());
    }
    Ok(())
}

/// Both ends on one thread over one byte link object: a frame in, then what
/// has arrived out. Once the sender is done, nothing arriving for `idle`
/// ends the run as [`RecvEnd::Idle`]. Returns how it ended and the bytes
/// written.
pub fn interleave<S: Source, F: Framer, K: Sink, const B: usize, D: Deframe, P: PacketFormat>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    tx: &mut TxPump<'_, S, F>,
    rx: &mut RxPump<'_, K, B, D, P>,
    link: &mut dyn ByteLink,
    chunk: usize,
    idle: Duration,
) -> Result<(RecvEnd, u64), Error> {
    let mut reader = Reader::new(clock, chunk, idle);
    let mut wire = 0u64;
    let mut tx_done = false;
    loop {
        let now = clock.now_ns();
        policy.check(now)?;
        if !tx_done {
            match tx.poll(now)? {
                Next::Send(frame) => {
                    link.write(frame)?;
                    wire += frame.len() as u64;
                }
                Next::WaitUntil(t) => wait(clock, t),
                Next::Done => {
                    link.flush()?;
                    tx_done = true;
                }
            }
        }
        let patience = if tx_done { POLL } else { Duration::ZERO };
        if let Some(end) = reader.step(clock, rx, link, patience, tx_done)? {
            return Ok((end, wire));
        }
    }
}

/// What [`duplex`] returns: each end's result, the sender's first.
pub type DuplexResult = (Result<u64, Error>, Result<(RecvEnd, u64), Error>);

/// Both ends over two byte links joined outside this process (a pty pair,
/// two serial devices, a pipe): the sender on a second thread, the receiver
/// on this one, one clock and one policy.
#[allow(clippy::too_many_arguments)]
pub fn duplex<
    S: Source + Send,
    F: Framer + Send,
    K: Sink,
    const B: usize,
    D: Deframe,
    P: PacketFormat,
>(
    clock: &(dyn Clock + Sync),
    policy: &Policy<'_>,
    tx: &mut TxPump<'_, S, F>,
    tx_link: &mut (dyn ByteLink + Send),
    rx: &mut RxPump<'_, K, B, D, P>,
    rx_link: &mut dyn ByteLink,
    chunk: usize,
    idle: Duration,
) -> DuplexResult {
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| send(clock, policy, tx, tx_link));
        let got = receive(clock, policy, rx, rx_link, chunk, idle);
        let sent = sender
            .join()
            .unwrap_or(Err(Error::Panicked("the sender thread")));
        (sent, got)
    })
}

/// Runs the sender to END over a packet link, one message per packet.
/// Returns the bytes sent.
pub fn send_packets<S: Source>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    tx: &mut TxPump<'_, S>,
    link: &mut dyn PacketLink,
) -> Result<u64, Error> {
    let mut wire = 0u64;
    loop {
        let now = clock.now_ns();
        policy.check(now)?;
        match tx.poll(now)? {
            Next::Send(msg) => {
                link.send(msg)?;
                wire += msg.len() as u64;
            }
            Next::WaitUntil(t) => wait(clock, t),
            Next::Done => break,
        }
    }
    link.flush()?;
    Ok(wire)
}

/// Feeds the receiver from a packet link until the transfer ends or nothing
/// arrives for `idle` once packets have flowed (a datagram link has no end
/// of stream). A datagram too large for the buffer is dropped and counted
/// by the link, not fatal. Returns how it ended and the bytes received.
pub fn receive_packets<K: Sink, const B: usize, D: Deframe, P: PacketFormat>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    rx: &mut RxPump<'_, K, B, D, P>,
    link: &mut dyn PacketLink,
    idle: Duration,
) -> Result<(RecvEnd, u64), Error> {
    let mut buf = vec![0u8; 1 << 16];
    let idle_ns = u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX);
    let (mut last, mut got) = (clock.now_ns(), 0u64);
    loop {
        policy.check(clock.now_ns())?;
        match link.recv(&mut buf, POLL) {
            Ok(Some(n)) => {
                got += n as u64;
                last = clock.now_ns();
                rx.on_message(&buf[..n], last);
                if let Some(end) = rx.ended() {
                    return Ok((end, got));
                }
            }
            Ok(None) => {
                if got > 0 && clock.now_ns().saturating_sub(last) > idle_ns {
                    return Ok((RecvEnd::Idle, got));
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::BufferTooSmall { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs a sender to END over either kind of end: framed with `framing` on
/// a byte stream, one message per packet on datagrams. Returns the bytes
/// put on the wire.
pub fn send_end<S: Source>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    sender: &mut Sender<S>,
    framing: Framing,
    end: &mut End<'_>,
) -> Result<u64, Error> {
    match end {
        End::Bytes(link) => send(
            clock,
            policy,
            &mut TxPump::framed(sender, framing),
            link.as_mut(),
        ),
        End::Packets(link) => {
            send_packets(clock, policy, &mut TxPump::packets(sender), link.as_mut())
        }
    }
}

/// Feeds a receiver from either kind of end until the transfer ends.
pub fn receive_end<K: Sink, const B: usize>(
    clock: &dyn Clock,
    policy: &Policy<'_>,
    receiver: &mut Receiver<K, B>,
    end: &mut End<'_>,
    chunk: usize,
    idle: Duration,
) -> Result<(RecvEnd, u64), Error> {
    let mut rx = RxPump::new(receiver);
    match end {
        End::Bytes(link) => receive(clock, policy, &mut rx, link.as_mut(), chunk, idle),
        End::Packets(link) => receive_packets(clock, policy, &mut rx, link.as_mut(), idle),
    }
}

/// Both ends of a link kind's [`End`]s, the sender on a second thread, the
/// receiver on this one, one clock and one policy.
#[allow(clippy::too_many_arguments)]
pub fn across<S: Source + Send, K: Sink, const B: usize>(
    clock: &(dyn Clock + Sync),
    policy: &Policy<'_>,
    sender: &mut Sender<S>,
    framing: Framing,
    tx: &mut End<'_>,
    receiver: &mut Receiver<K, B>,
    rx: &mut End<'_>,
    chunk: usize,
    idle: Duration,
) -> DuplexResult {
    std::thread::scope(|scope| {
        let sending = scope.spawn(|| send_end(clock, policy, sender, framing, tx));
        let got = receive_end(clock, policy, receiver, rx, chunk, idle);
        let sent = sending
            .join()
            .unwrap_or(Err(Error::Panicked("the sender thread")));
        (sent, got)
    })
}
