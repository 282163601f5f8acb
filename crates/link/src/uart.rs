//! A deterministic, virtual-time model of a UART.
//!
//! One [`Line`] is one direction: a transmitter with a transmit buffer, the
//! wire, and a receiver with a bounded receive buffer. Time is in virtual
//! nanoseconds supplied by the caller; nothing sleeps and nothing runs on
//! its own. A character takes `bits_per_char / baud` seconds on the wire
//! (8N1 = 10 bits); characters written back to back follow each other with
//! no gap, and the end time of character `k` of a burst is computed exactly
//! as `origin + ceil(k * bits * 1e9 / baud)`, so rounding never accumulates.
//!
//! - **Transmit buffer** (`tx_buffer` bytes): a write returns once at most
//!   that many of the bytes written so far are still not completely on the
//!   wire. `0` = a write returns when its last byte has been sent; the
//!   RP2040's hardware FIFO is 32 bytes.
//! - **Receive buffer** (`rx_buffer` bytes): a byte that arrives (its stop
//!   bit ends) while the buffer is full is lost and counted. The Pico used
//!   544 = 512 + the 32-byte FIFO.
//!
//! Calls must come in time order per direction, as a discrete-event loop
//! makes them (see [`crate::sim`]); a read at an earlier time than a
//! previous one is treated as happening at the later time.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::{ByteLink, Error, LinkStats, ReadOutcome, Result, VirtualClock};

/// Line settings of one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UartConfig {
    /// Bits per second.
    pub baud: u32,
    /// Bits per character including start and stop bits (8N1 = 10).
    pub bits_per_char: u32,
    /// Receive buffer capacity in bytes (at least 1).
    pub rx_buffer: usize,
    /// Transmit buffer capacity in bytes (0 = writes block until sent).
    pub tx_buffer: usize,
}

impl UartConfig {
    /// 8N1 at `baud` with the Pico's buffers: 544-byte receive buffer and the
    /// 32-byte hardware transmit FIFO.
    pub fn pico(baud: u32) -> Self {
        Self {
            baud,
            bits_per_char: 10,
            rx_buffer: 544,
            tx_buffer: 32,
        }
    }

    /// Refuses a zero baud rate, bit count or receive buffer.
    pub fn validate(&self) -> Result<()> {
        if self.baud == 0 {
            return Err(Error::config("baud", "must be positive"));
        }
        if !(1..=64).contains(&self.bits_per_char) {
            return Err(Error::config("bits_per_char", "must be in 1..=64"));
        }
        if self.rx_buffer == 0 {
            return Err(Error::config("rx_buffer", "must be at least 1 byte"));
        }
        Ok(())
    }

    /// Wire time of `n` characters sent back to back, in nanoseconds
    /// (rounded up; `u64::MAX` for a zero baud rate or an overflow).
    pub fn wire_ns(&self, n: u64) -> u64 {
        if self.baud == 0 {
            return u64::MAX;
        }
        let num = n as u128 * self.bits_per_char as u128 * 1_000_000_000u128;
        u64::try_from(num.div_ceil(self.baud as u128)).unwrap_or(u64::MAX)
    }

    /// Characters per second the line carries at most.
    pub fn chars_per_second(&self) -> f64 {
        self.baud as f64 / self.bits_per_char as f64
    }

    /// Link utilisation: `wire_bytes / (baud / bits_per_char * T)`, with `T`
    /// in nanoseconds. 0 when `T` is 0.
    pub fn utilisation(&self, wire_bytes: u64, elapsed_ns: u64) -> f64 {
        if elapsed_ns == 0 {
            return 0.0;
        }
        wire_bytes as f64 / (self.chars_per_second() * elapsed_ns as f64 * 1e-9)
    }
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineStats {
    /// Bytes written by the transmitter (all of them go on the wire).
    pub written: u64,
    /// Bytes that arrived and found room in the receive buffer.
    pub delivered: u64,
    /// Bytes that arrived to a full receive buffer and were lost.
    pub overflow: u64,
    /// Bytes the receiver took from its buffer.
    pub read: u64,
    /// Most bytes ever held in the receive buffer.
    pub rx_high_water: usize,
    /// Virtual time the first byte started on the wire.
    pub first_start_ns: Option<u64>,
    /// Virtual time the last byte written so far ends on the wire.
    pub last_end_ns: u64,
}

/// One direction of a UART in virtual time.
#[derive(Debug, Clone)]
pub struct Line {
    cfg: UartConfig,
    /// Bytes on the wire or in the transmit buffer, with their arrival time
    /// (the end of their stop bit), in order.
    wire: VecDeque<(u64, u8)>,
    /// Bytes in the receive buffer with their arrival time.
    rx: VecDeque<(u64, u8)>,
    burst_origin: u64,
    burst_len: u64,
    /// Latest time the receiving side has been advanced to.
    rx_now: u64,
    stats: LineStats,
}

impl Line {
    /// An idle line at time 0.
    pub fn new(cfg: UartConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self {
            cfg,
            wire: VecDeque::new(),
            rx: VecDeque::new(),
            burst_origin: 0,
            burst_len: 0,
            rx_now: 0,
            stats: LineStats::default(),
        })
    }

    /// The line settings.
    pub fn config(&self) -> &UartConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> LineStats {
        self.stats
    }

    /// Writes `bytes` at virtual time `now`; returns the time the write
    /// returns to the writer, per the transmit-buffer rule (never before `now`).
    pub fn write(&mut self, now: u64, bytes: &[u8]) -> u64 {
        if bytes.is_empty() {
            return now;
        }
        for &b in bytes {
            if now > self.stats.last_end_ns || self.burst_len == 0 {
                // The line went idle: a new burst starts now.
                self.burst_origin = now.max(self.stats.last_end_ns);
                self.burst_len = 0;
                self.stats.first_start_ns.get_or_insert(self.burst_origin);
            }
            self.burst_len += 1;
            let end = self
                .burst_origin
                .saturating_add(self.cfg.wire_ns(self.burst_len));
            self.wire.push_back((end, b));
            self.stats.last_end_ns = end;
        }
        self.stats.written += bytes.len() as u64;
        // Bytes not completely sent at `now`: entries whose end is after now.
        let sent = self.wire.partition_point(|&(end, _)| end <= now);
        let outstanding = self.wire.len() - sent;
        if outstanding <= self.cfg.tx_buffer {
            now
        } else {
            // Return when only tx_buffer bytes remain unsent.
            self.wire[self.wire.len() - self.cfg.tx_buffer - 1].0
        }
    }

    /// Moves every byte that has arrived by `now` into the receive buffer,
    /// losing (and counting) those that find it full.
    pub fn advance(&mut self, now: u64) {
        let now = now.max(self.rx_now);
        self.rx_now = now;
        while let Some(&(end, b)) = self.wire.front() {
            if end > now {
                break;
            }
            self.wire.pop_front();
            if self.rx.len() < self.cfg.rx_buffer {
                self.rx.push_back((end, b));
                self.stats.delivered += 1;
                self.stats.rx_high_water = self.stats.rx_high_water.max(self.rx.len());
            } else {
                self.stats.overflow += 1;
            }
        }
    }

    /// Takes up to `buf.len()` bytes from the receive buffer at time `now`.
    pub fn read(&mut self, now: u64, buf: &mut [u8]) -> usize {
        self.read_timed(now, buf).0
    }

    /// As [`read`](Self::read), also returning how long the bytes taken
    /// had waited in the buffer: the longest wait and the sum, ns.
    pub fn read_timed(&mut self, now: u64, buf: &mut [u8]) -> (usize, u64, u64) {
        self.advance(now);
        let now = self.rx_now;
        let n = buf.len().min(self.rx.len());
        let (mut max, mut sum) = (0u64, 0u64);
        for (dst, (at, src)) in buf.iter_mut().zip(self.rx.drain(..n)) {
            *dst = src;
            let w = now.saturating_sub(at);
            max = max.max(w);
            sum = sum.saturating_add(w);
        }
        self.stats.read += n as u64;
        (n, max, sum)
    }

    /// Bytes written and not yet arrived at `now` (transmit buffer and
    /// wire), without moving the line.
    pub fn in_flight(&self, now: u64) -> usize {
        self.wire.len() - self.wire.partition_point(|&(end, _)| end <= now)
    }

    /// The receive buffer as it is at `now`, without moving the line:
    /// `(fill, bytes that found it full since the last advance, bytes
    /// arrived since the last advance)`. Arrivals take the free room in
    /// order and the rest are lost, so this is exact.
    pub fn peek(&self, now: u64) -> (usize, u64, u64) {
        let pending = self
            .wire
            .partition_point(|&(end, _)| end <= now.max(self.rx_now));
        let want = self.rx.len() + pending;
        let fill = want.min(self.cfg.rx_buffer);
        (fill, (want - fill) as u64, pending as u64)
    }

    /// Bytes waiting in the receive buffer (as of the last advance).
    pub fn rx_len(&self) -> usize {
        self.rx.len()
    }

    /// Arrival time of the next byte still on the wire.
    pub fn next_arrival(&self) -> Option<u64> {
        self.wire.front().map(|&(end, _)| end)
    }

    /// True when nothing is on the wire and the receive buffer is empty.
    pub fn is_drained(&self) -> bool {
        self.wire.is_empty() && self.rx.is_empty()
    }
}

/// One direction of the UART model as a byte link in virtual time: what is
/// written at the clock's time goes on the line, and a read takes what has
/// arrived by then. Both calls move the shared [`VirtualClock`] the way the
/// hardware would make a caller wait: a write until the transmit-buffer rule
/// lets it return, a read that finds the buffer empty until the next byte
/// arrives (or its timeout passes). One clock serves both ends, so the
/// link suits a driver that runs both on one thread; two devices with
/// their own CPU costs and timelines are [`crate::sim`]'s job.
#[derive(Debug)]
pub struct UartLink {
    line: Line,
    clock: VirtualClock,
    stats: LinkStats,
}

impl UartLink {
    /// A line per `cfg`, timed by `clock`.
    pub fn new(cfg: UartConfig, clock: VirtualClock) -> Result<Self> {
        Ok(Self {
            line: Line::new(cfg)?,
            clock,
            stats: LinkStats::default(),
        })
    }

    /// The line, for its counters (overflow, high water).
    pub fn line(&self) -> &Line {
        &self.line
    }
}

impl ByteLink for UartLink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let done = self.line.write(self.clock.now_ns(), bytes);
        self.clock.advance_to(done);
        self.stats.sent(bytes.len());
        Ok(())
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        let now = self.clock.now_ns();
        let mut n = self.line.read(now, buf);
        if n == 0 {
            let limit = now.saturating_add(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX));
            match self.line.next_arrival() {
                Some(t) if t <= limit => {
                    self.clock.advance_to(t);
                    n = self.line.read(t, buf);
                }
                _ => self.clock.advance_to(limit),
            }
        }
        if n == 0 {
            return Ok(ReadOutcome::Timeout);
        }
        self.stats.received(n);
        Ok(ReadOutcome::Data(n))
    }

    fn stats(&self) -> LinkStats {
        let mut s = self.stats;
        s.dropped = self.line.stats().overflow;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rx: usize, tx: usize) -> UartConfig {
        UartConfig {
            baud: 115_200,
            bits_per_char: 10,
            rx_buffer: rx,
            tx_buffer: tx,
        }
    }

    #[test]
    fn character_time_is_exact() {
        let c = cfg(16, 0);
        assert_eq!(c.wire_ns(1), 86_806); // 86,805.55 rounded up
        assert_eq!(c.wire_ns(115_200), 10_000_000_000);
        // 11,520 characters are exactly one second at 115200 8N1.
        assert_eq!(c.wire_ns(11_520), 1_000_000_000);
    }

    #[test]
    fn blocking_write_returns_when_last_byte_is_sent() {
        let mut line = Line::new(cfg(100, 0)).unwrap();
        let t = line.write(1_000, &[0u8; 10]);
        assert_eq!(t, 1_000 + cfg(1, 0).wire_ns(10));
        // The next write continues the burst with no gap.
        let t2 = line.write(t, &[0u8; 10]);
        assert_eq!(t2, 1_000 + cfg(1, 0).wire_ns(20));
    }

    #[test]
    fn fifo_write_returns_early() {
        let c = cfg(100, 4);
        let mut line = Line::new(c).unwrap();
        assert_eq!(line.write(0, &[0u8; 3]), 0, "fits the FIFO");
        // 10 more: 13 outstanding, return when 4 remain, i.e. when byte 9 ends.
        assert_eq!(line.write(0, &[0u8; 10]), c.wire_ns(9));
    }

    #[test]
    fn overflow_loses_and_counts() {
        let mut line = Line::new(cfg(4, 0)).unwrap();
        let t = line.write(0, b"abcdefgh");
        let mut buf = [0u8; 16];
        assert_eq!(line.read(t, &mut buf), 4);
        assert_eq!(&buf[..4], b"abcd");
        let s = line.stats();
        assert_eq!((s.delivered, s.overflow, s.read), (4, 4, 4));
    }

    #[test]
    fn reading_in_time_keeps_everything() {
        let c = cfg(2, 0);
        let mut line = Line::new(c).unwrap();
        line.write(0, b"abcdefgh");
        let mut got = Vec::new();
        let mut buf = [0u8; 1];
        while let Some(t) = line.next_arrival() {
            if line.read(t, &mut buf) == 1 {
                got.push(buf[0]);
            }
        }
        assert_eq!(got, b"abcdefgh");
        assert_eq!(line.stats().overflow, 0);
    }

    #[test]
    fn idle_gap_starts_a_new_burst() {
        let c = cfg(100, 0);
        let mut line = Line::new(c).unwrap();
        line.write(0, b"a");
        let t = line.write(1_000_000, b"b");
        assert_eq!(t, 1_000_000 + c.wire_ns(1));
        assert_eq!(line.stats().first_start_ns, Some(0));
    }

    #[test]
    fn the_link_waits_in_virtual_time() {
        let c = cfg(4, 0);
        let clock = VirtualClock::new();
        let mut link = UartLink::new(c, clock.clone()).unwrap();
        link.write(b"abcdef").unwrap();
        // A blocking write returns when its last byte is on the wire.
        assert_eq!(clock.now_ns(), c.wire_ns(6));
        let mut buf = [0u8; 16];
        // The 4-byte buffer kept the first four; the rest were lost and counted.
        assert_eq!(
            link.read(&mut buf, Duration::ZERO).unwrap(),
            ReadOutcome::Data(4)
        );
        assert_eq!(&buf[..4], b"abcd");
        assert_eq!(link.stats().dropped, 2);
        // Nothing more on the wire: a read waits out its timeout.
        let t = clock.now_ns();
        let r = link.read(&mut buf, Duration::from_millis(5)).unwrap();
        assert_eq!(r, ReadOutcome::Timeout);
        assert_eq!(clock.now_ns(), t + 5_000_000);
    }

    #[test]
    fn zero_settings_are_refused() {
        assert!(Line::new(cfg(0, 0)).is_err());
        assert!(Line::new(UartConfig {
            baud: 0,
            ..cfg(1, 0)
        })
        .is_err());
    }
}
