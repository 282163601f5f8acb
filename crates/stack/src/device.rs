//! The device control protocol: what a host and perfkit's firmware say to
//! each other around a transfer, on top of the dttk wire profile. One
//! `no_std`, allocation-free codec that the firmware and the host both use.
//!
//! Every message is the payload of a dttk link message on control channel
//! [`CHANNEL`] (0xFE: control bit + channel id 0x7E), so it travels through
//! the same framing and CRC as the transfer itself, and a dttk receiver that
//! does not know it counts it as a message for another channel. The first
//! payload byte is the type; integers are big-endian like the rest of the
//! profile.
//!
//! ```text
//! HELLO    C1 | ver u8 | cpu_hz u32 | tick_hz u32 | image_len u32 | rx_capacity u32
//! CONFIG   C0 | ver u8 | role u8 | blocksz u8 | start_meta u16 | meta_every u16
//!             | repeats u8 | throttle_pps u16 | baud u32
//! READY    C2
//! SUMMARY  C3 | role u8 | status u8 | start_ticks u64 | end_ticks u64 | blocks u32
//!             | bytes u32 | buf_addr u32 | buf_len u32 | sha256 [32]
//! COUNTERS C4 | n u8 | n x { name_len u8 | name | value u32 }
//! SITES    C5 | n u8 | n x site record (perfkit::record's binary form)
//! DONE     C6 | sites u16 | counters u16
//! FINISH   C7
//! ```
//!
//! The firmware sends HELLO after boot, the host answers CONFIG, the firmware
//! answers READY and runs the transfer; at its end the firmware sends its
//! report: SUMMARY, COUNTERS and SITES messages (as many as the records need,
//! packed by a [`Batcher`]), then DONE carrying the totals so the host knows
//! nothing was lost. A receiving device stops early on FINISH. Site times
//! are in ticks of the device clock (`tick_hz`; the CPU clock for SysTick:
//! cycles).
//!
//! Decoding borrows from the payload: COUNTERS and SITES are checked whole
//! by [`Message::decode`] and then iterated without allocating.

use core::fmt;

use perfkit::record::{self, SiteRecord};

use crate::dttk::wire::MAX_PAYLOAD;

/// The dttk channel byte the control protocol uses (control bit | 0x7E).
pub const CHANNEL: u8 = 0xFE;
/// Protocol version carried in HELLO and CONFIG (2: SITES records carry
/// p99.9 and bytes).
pub const VERSION: u8 = 2;

/// Message type bytes.
pub mod kind {
    /// Host -> device: transfer settings.
    pub const CONFIG: u8 = 0xC0;
    /// Device -> host: booted, here is what I am.
    pub const HELLO: u8 = 0xC1;
    /// Device -> host: configured, transfer starts.
    pub const READY: u8 = 0xC2;
    /// Device -> host: transfer figures.
    pub const SUMMARY: u8 = 0xC3;
    /// Device -> host: named error counters.
    pub const COUNTERS: u8 = 0xC4;
    /// Device -> host: perfkit call-site statistics.
    pub const SITES: u8 = 0xC5;
    /// Device -> host: end of report.
    pub const DONE: u8 = 0xC6;
    /// Host -> device (receiver): stop waiting and report now.
    pub const FINISH: u8 = 0xC7;
}

/// Error decoding a control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Which message type was being decoded (0 when the payload was empty).
    pub kind: u8,
    /// What was wrong.
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "control message 0x{:02X}: {}", self.kind, self.what)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeError {}

/// Which side of the transfer the device plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceRole {
    /// The device sends its embedded image; the host receives.
    Sender,
    /// The host sends the image; the device receives and stores it in RAM.
    Receiver,
}

impl DeviceRole {
    /// The role's byte in CONFIG and SUMMARY.
    pub fn code(self) -> u8 {
        match self {
            DeviceRole::Sender => 0,
            DeviceRole::Receiver => 1,
        }
    }

    /// The role of a CONFIG or SUMMARY byte, if it is one.
    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(DeviceRole::Sender),
            1 => Some(DeviceRole::Receiver),
            _ => None,
        }
    }
}

impl fmt::Display for DeviceRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DeviceRole::Sender => "sender",
            DeviceRole::Receiver => "receiver",
        })
    }
}

/// HELLO: what the firmware is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// CPU clock in Hz.
    pub cpu_hz: u32,
    /// Rate of the clock perfkit measures with.
    pub tick_hz: u32,
    /// Size of the image embedded in flash (what the device sends).
    pub image_len: u32,
    /// Largest file the device can receive (its RAM buffer).
    pub rx_capacity: u32,
}

/// CONFIG: the transfer settings the host asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Role of the device.
    pub role: DeviceRole,
    /// Block size in bytes (1..=249).
    pub blocksz: u8,
    /// Ticks at the start that send META.
    pub start_meta: u16,
    /// META every N ticks (0: never after the start).
    pub meta_every: u16,
    /// Extra copies of each block.
    pub repeats: u8,
    /// Sender throttle in messages per second (0: unthrottled).
    pub throttle_pps: u16,
    /// UART baud rate.
    pub baud: u32,
}

/// SUMMARY status: transfer complete and verified.
pub const STATUS_COMPLETE: u8 = 0;
/// SUMMARY status: the received file's SHA-256 differs from META's.
pub const STATUS_SHA_MISMATCH: u8 = 1;
/// SUMMARY status: the receiver stopped before the file was complete.
pub const STATUS_INCOMPLETE: u8 = 2;
/// SUMMARY status: the file is larger than the device's buffer.
pub const STATUS_TOO_LARGE: u8 = 3;
/// SUMMARY status: the stack reported an error.
pub const STATUS_ERROR: u8 = 4;

/// SUMMARY: the device's transfer figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Role the device played.
    pub role: DeviceRole,
    /// [`STATUS_COMPLETE`] or another `STATUS_*`; see [`Summary::status_text`].
    pub status: u8,
    /// Tick at the start of the transfer.
    pub start_ticks: u64,
    /// Tick at its end.
    pub end_ticks: u64,
    /// Data messages sent (repeats included) or distinct blocks stored.
    pub blocks: u32,
    /// Payload bytes sent or stored.
    pub bytes: u32,
    /// Address of the received file in device RAM (receiver).
    pub buf_addr: u32,
    /// Its length.
    pub buf_len: u32,
    /// SHA-256 of the received file (receiver) or of the image sent (sender).
    pub sha256: [u8; 32],
}

impl Summary {
    /// Human meaning of [`Summary::status`].
    pub fn status_text(&self) -> &'static str {
        match self.status {
            STATUS_COMPLETE => "complete",
            STATUS_SHA_MISMATCH => "SHA-256 mismatch",
            STATUS_INCOMPLETE => "incomplete (timed out)",
            STATUS_TOO_LARGE => "file larger than the device buffer",
            STATUS_ERROR => "transfer error",
            _ => "unknown status",
        }
    }
}

/// The records of one COUNTERS message, checked by [`Message::decode`]:
/// iterating yields `(name, value)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters<'a> {
    n: u8,
    bytes: &'a [u8],
}

/// The records of one SITES message, checked by [`Message::decode`]:
/// iterating yields [`SiteRecord`]s in device ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sites<'a> {
    n: u8,
    bytes: &'a [u8],
}

impl<'a> Counters<'a> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.n as usize
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// The records.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, u32)> {
        let mut b = self.bytes;
        // Checked whole by decode: a record that failed would end the walk.
        (0..self.n).map_while(move |_| decode_counter(&mut b).ok())
    }
}

impl<'a> Sites<'a> {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.n as usize
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }
    /// The records, durations in device ticks.
    pub fn iter(&self) -> impl Iterator<Item = SiteRecord<&'a str>> {
        let mut b = self.bytes;
        (0..self.n).map_while(move |_| SiteRecord::decode(&mut b).ok())
    }
}

/// One decoded control message, borrowing from its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`Config`].
    Config(Config),
    /// The device is configured.
    Ready,
    /// See [`Summary`].
    Summary(Summary),
    /// Named counters.
    Counters(Counters<'a>),
    /// Call-site statistics.
    Sites(Sites<'a>),
    /// End of report with the totals sent.
    Done {
        /// Site records sent.
        sites: u16,
        /// Counters sent.
        counters: u16,
    },
    /// Stop receiving and report.
    Finish,
}

/// Longest payload [`Message::encode`] writes (the dttk profile's payload limit).
pub const MAX_MESSAGE: usize = MAX_PAYLOAD;

struct Reader<'a> {
    kind: u8,
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            kind: self.kind,
            what,
        }
    }
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let Some((a, b)) = self.buf.split_first_chunk::<N>() else {
            return Err(self.err("truncated"));
        };
        self.buf = b;
        Ok(*a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.take()?))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.take()?))
    }
    fn version(&mut self) -> Result<(), DecodeError> {
        if self.u8()? != VERSION {
            return Err(self.err("unsupported protocol version"));
        }
        Ok(())
    }
    fn role(&mut self) -> Result<DeviceRole, DecodeError> {
        DeviceRole::from_code(self.u8()?).ok_or(self.err("bad role"))
    }
    /// `n u8` then `n` records, each checked with `one`; returns `(n, records' bytes)`.
    fn records(
        &mut self,
        one: fn(&mut &'a [u8]) -> Result<(), record::DecodeError>,
    ) -> Result<(u8, &'a [u8]), DecodeError> {
        let n = self.u8()?;
        let start = self.buf;
        for _ in 0..n {
            one(&mut self.buf).map_err(|e| self.err(e.as_str()))?;
        }
        Ok((n, &start[..start.len() - self.buf.len()]))
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

/// One COUNTERS record: `name_len u8 | name | value u32`.
fn decode_counter<'a>(b: &mut &'a [u8]) -> Result<(&'a str, u32), record::DecodeError> {
    let (&n, rest) = b.split_first().ok_or(record::DecodeError::Truncated)?;
    let (name, rest) = rest
        .split_at_checked(n as usize)
        .ok_or(record::DecodeError::Truncated)?;
    let (value, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(record::DecodeError::Truncated)?;
    let name = core::str::from_utf8(name).map_err(|_| record::DecodeError::NameNotUtf8)?;
    *b = rest;
    Ok((name, u32::from_be_bytes(*value)))
}

/// A counter name as sent: at most [`record::MAX_NAME`] bytes, cut at a
/// character boundary.
fn wire_name(s: &str) -> &[u8] {
    let mut n = s.len().min(record::MAX_NAME);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s.as_bytes()[..n]
}

fn counter_len(name: &str) -> usize {
    1 + wire_name(name).len() + 4
}

/// Writes one COUNTERS record to the start of `out` (sized by `counter_len`).
fn encode_counter(name: &str, value: u32, out: &mut [u8]) -> Option<usize> {
    let name = wire_name(name);
    let len = 1 + name.len() + 4;
    let out = out.get_mut(..len)?;
    out[0] = name.len() as u8;
    out[1..1 + name.len()].copy_from_slice(name);
    out[1 + name.len()..].copy_from_slice(&value.to_be_bytes());
    Some(len)
}

/// Sequential writes into a payload buffer that stop (return `None`) when it is full.
struct Writer<'o> {
    out: &'o mut [u8],
    len: usize,
}

impl Writer<'_> {
    fn put(&mut self, b: &[u8]) -> Option<()> {
        self.out
            .get_mut(self.len..self.len + b.len())?
            .copy_from_slice(b);
        self.len += b.len();
        Some(())
    }
}

impl<'a> Message<'a> {
    /// Decodes a control-channel payload. Unknown types and malformed
    /// payloads are errors, never panics.
    pub fn decode(payload: &'a [u8]) -> Result<Message<'a>, DecodeError> {
        let Some((&kind, rest)) = payload.split_first() else {
            return Err(DecodeError {
                kind: 0,
                what: "empty payload",
            });
        };
        let mut r = Reader { kind, buf: rest };
        let msg = match kind {
            kind::HELLO => {
                r.version()?;
                Message::Hello(Hello {
                    cpu_hz: r.u32()?,
                    tick_hz: r.u32()?,
                    image_len: r.u32()?,
                    rx_capacity: r.u32()?,
                })
            }
            kind::CONFIG => {
                r.version()?;
                Message::Config(Config {
                    role: r.role()?,
                    blocksz: r.u8()?,
                    start_meta: r.u16()?,
                    meta_every: r.u16()?,
                    repeats: r.u8()?,
                    throttle_pps: r.u16()?,
                    baud: r.u32()?,
                })
            }
            kind::READY => Message::Ready,
            kind::SUMMARY => Message::Summary(Summary {
                role: r.role()?,
                status: r.u8()?,
                start_ticks: r.u64()?,
                end_ticks: r.u64()?,
                blocks: r.u32()?,
                bytes: r.u32()?,
                buf_addr: r.u32()?,
                buf_len: r.u32()?,
                sha256: r.take()?,
            }),
            kind::COUNTERS => {
                let (n, bytes) = r.records(|b| decode_counter(b).map(drop))?;
                Message::Counters(Counters { n, bytes })
            }
            kind::SITES => {
                let (n, bytes) = r.records(|b| SiteRecord::decode(b).map(drop))?;
                Message::Sites(Sites { n, bytes })
            }
            kind::DONE => Message::Done {
                sites: r.u16()?,
                counters: r.u16()?,
            },
            kind::FINISH => Message::Finish,
            _ => return Err(r.err("unknown message type")),
        };
        r.end()?;
        Ok(msg)
    }

    /// Writes the message as a control-channel payload to the start of
    /// `out` and returns its length, or `None` when `out` is too short
    /// ([`MAX_MESSAGE`] bytes always suffice for what a [`Batcher`] packs).
    pub fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let mut w = Writer { out, len: 0 };
        match self {
            Message::Hello(h) => {
                w.put(&[kind::HELLO, VERSION])?;
                w.put(&h.cpu_hz.to_be_bytes())?;
                w.put(&h.tick_hz.to_be_bytes())?;
                w.put(&h.image_len.to_be_bytes())?;
                w.put(&h.rx_capacity.to_be_bytes())?;
            }
            Message::Config(c) => {
                w.put(&[kind::CONFIG, VERSION, c.role.code(), c.blocksz])?;
                w.put(&c.start_meta.to_be_bytes())?;
                w.put(&c.meta_every.to_be_bytes())?;
                w.put(&[c.repeats])?;
                w.put(&c.throttle_pps.to_be_bytes())?;
                w.put(&c.baud.to_be_bytes())?;
            }
            Message::Ready => w.put(&[kind::READY])?,
            Message::Summary(s) => {
                w.put(&[kind::SUMMARY, s.role.code(), s.status])?;
                w.put(&s.start_ticks.to_be_bytes())?;
                w.put(&s.end_ticks.to_be_bytes())?;
                w.put(&s.blocks.to_be_bytes())?;
                w.put(&s.bytes.to_be_bytes())?;
                w.put(&s.buf_addr.to_be_bytes())?;
                w.put(&s.buf_len.to_be_bytes())?;
                w.put(&s.sha256)?;
            }
            Message::Counters(c) => {
                w.put(&[kind::COUNTERS, c.n])?;
                w.put(c.bytes)?;
            }
            Message::Sites(s) => {
                w.put(&[kind::SITES, s.n])?;
                w.put(s.bytes)?;
            }
            Message::Done { sites, counters } => {
                w.put(&[kind::DONE])?;
                w.put(&sites.to_be_bytes())?;
                w.put(&counters.to_be_bytes())?;
            }
            Message::Finish => w.put(&[kind::FINISH])?,
        }
        Some(w.len)
    }
}

/// Packs COUNTERS or SITES records into as few payloads as fit
/// [`MAX_MESSAGE`], handing each full payload to `out`. The firmware sends
/// its report through two of these; a host encodes the same way.
pub struct Batcher {
    buf: [u8; MAX_MESSAGE],
    len: usize,
    total: u16,
}

impl Batcher {
    /// An empty batch of COUNTERS records.
    pub fn counters() -> Self {
        Self::new(kind::COUNTERS)
    }

    /// An empty batch of SITES records.
    pub fn sites() -> Self {
        Self::new(kind::SITES)
    }

    fn new(kind: u8) -> Self {
        let mut buf = [0u8; MAX_MESSAGE];
        buf[0] = kind;
        Batcher {
            buf,
            len: 2,
            total: 0,
        }
    }

    /// Adds a named counter (names cut to [`record::MAX_NAME`] bytes).
    pub fn counter(&mut self, name: &str, value: u32, out: &mut impl FnMut(&[u8])) {
        self.push(counter_len(name), out, |b| encode_counter(name, value, b));
    }

    /// Adds a site record (durations in the sender's ticks).
    pub fn site<N: AsRef<str>>(&mut self, rec: &SiteRecord<N>, out: &mut impl FnMut(&[u8])) {
        self.push(rec.encoded_len(), out, |b| rec.encode(b));
    }

    fn push(
        &mut self,
        len: usize,
        out: &mut impl FnMut(&[u8]),
        write: impl FnOnce(&mut [u8]) -> Option<usize>,
    ) {
        if self.len + len > MAX_MESSAGE || self.buf[1] == u8::MAX {
            self.flush(out);
        }
        // Every record is far shorter than a payload (names are capped), so
        // after a flush it fits; the check keeps a mistake from panicking.
        if let Some(n) = write(&mut self.buf[self.len..]) {
            self.len += n;
            self.buf[1] += 1;
            self.total = self.total.saturating_add(1);
        }
    }

    fn flush(&mut self, out: &mut impl FnMut(&[u8])) {
        if self.buf[1] > 0 {
            out(&self.buf[..self.len]);
        }
        self.len = 2;
        self.buf[1] = 0;
    }

    /// Sends what is left and returns the number of records sent in all
    /// (what DONE carries).
    pub fn finish(mut self, out: &mut impl FnMut(&[u8])) -> u16 {
        self.flush(out);
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Message<'static> {
        Message::Hello(Hello {
            cpu_hz: 125_000_000,
            tick_hz: 125_000_000,
            image_len: 34_710,
            rx_capacity: 40_960,
        })
    }

    #[test]
    fn decodes_hello_fixture() {
        let b = [
            0xC1, 0x02, 0x07, 0x73, 0x59, 0x40, 0x07, 0x73, 0x59, 0x40, 0x00, 0x00, 0x87, 0x96,
            0x00, 0x00, 0xA0, 0x00,
        ];
        assert_eq!(Message::decode(&b), Ok(hello()));
        let mut out = [0u8; 18];
        assert_eq!(hello().encode(&mut out), Some(18));
        assert_eq!(out, b);
        assert_eq!(hello().encode(&mut out[..17]), None);
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert_eq!(Message::decode(&[]).unwrap_err().what, "empty payload");
        assert_eq!(
            Message::decode(&[0x42]).unwrap_err().what,
            "unknown message type"
        );
        let old = [0xC1, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            Message::decode(&old).unwrap_err().what,
            "unsupported protocol version"
        );
        let mut done = [0u8; 6];
        let n = Message::Done {
            sites: 1,
            counters: 1,
        }
        .encode(&mut done)
        .unwrap();
        assert_eq!(
            Message::decode(&done[..n + 1]).unwrap_err().what,
            "trailing bytes"
        );
        let bad = [0xC4, 0x01, 0x01, 0xFF, 0, 0, 0, 1];
        assert_eq!(Message::decode(&bad).unwrap_err().what, "name is not UTF-8");
        // SITES claiming two records but holding one.
        let mut b = Batcher::sites();
        let mut sent = [0u8; MAX_MESSAGE];
        let mut len = 0;
        b.site(&site("x", 1), &mut |_| ());
        b.finish(&mut |p| {
            sent[..p.len()].copy_from_slice(p);
            len = p.len();
        });
        sent[1] = 2;
        assert_eq!(Message::decode(&sent[..len]).unwrap_err().what, "truncated");
    }

    fn site(name: &'static str, calls: u64) -> SiteRecord<&'static str> {
        SiteRecord {
            name,
            calls,
            min_ns: 10,
            max_ns: 90,
            cum_ns: 100 * calls,
            p50_ns: 50,
            p90_ns: 80,
            p99_ns: 89,
            p999_ns: 90,
            bytes: None,
            tmean_ns: None,
            cum_cycles: None,
        }
    }

    #[test]
    fn batcher_splits_at_the_payload_limit_and_counts() {
        // 40 records of 109 bytes: two per 249-byte payload.
        let name = "a_site_name_that_is_sixty_four_bytes_long_aaaaaaaaaaaaaaaaaaaaaa";
        assert_eq!(name.len(), 64);
        let mut payloads = 0;
        let mut seen = 0u64;
        let mut out = |p: &[u8]| {
            assert!(p.len() <= MAX_MESSAGE);
            payloads += 1;
            let Ok(Message::Sites(s)) = Message::decode(p) else {
                panic!("not SITES: {p:?}")
            };
            for r in s.iter() {
                assert_eq!(r.name, name);
                seen += r.calls;
            }
        };
        let mut b = Batcher::sites();
        for i in 0..40 {
            b.site(&site(name, i), &mut out);
        }
        assert_eq!(b.finish(&mut out), 40);
        assert_eq!(payloads, 20);
        assert_eq!(seen, (0..40).sum::<u64>());
    }

    #[test]
    fn counters_round_trip_through_a_batch() {
        let mut got = [("", 0u32); 3];
        let mut buf = [0u8; MAX_MESSAGE];
        let mut len = 0;
        let mut b = Batcher::counters();
        for (name, v) in [("crc_errors", 3), ("seq_gaps", 0), ("é", u32::MAX)] {
            b.counter(name, v, &mut |_| panic!("fits one payload"));
        }
        assert_eq!(
            b.finish(&mut |p| {
                buf[..p.len()].copy_from_slice(p);
                len = p.len();
            }),
            3
        );
        let Ok(Message::Counters(c)) = Message::decode(&buf[..len]) else {
            panic!()
        };
        assert_eq!(c.len(), 3);
        for (slot, rec) in got.iter_mut().zip(c.iter()) {
            *slot = rec;
        }
        assert_eq!(got, [("crc_errors", 3), ("seq_gaps", 0), ("é", u32::MAX)]);
    }

    proptest::proptest! {
        // Every message a peer can send comes back from its bytes as it was.
        #[test]
        fn fixed_messages_round_trip(
            a: u32, b: u32, c: u32, d: u32, t0: u64, t1: u64, role: bool,
            sha: [u8; 32], small: (u8, u16, u16, u8, u16, u8),
        ) {
            let role = if role { DeviceRole::Receiver } else { DeviceRole::Sender };
            let msgs = [
                Message::Hello(Hello { cpu_hz: a, tick_hz: b, image_len: c, rx_capacity: d }),
                Message::Config(Config {
                    role,
                    blocksz: small.0,
                    start_meta: small.1,
                    meta_every: small.2,
                    repeats: small.3,
                    throttle_pps: small.4,
                    baud: a,
                }),
                Message::Ready,
                Message::Finish,
                Message::Summary(Summary {
                    role,
                    status: small.5,
                    start_ticks: t0,
                    end_ticks: t1,
                    blocks: a,
                    bytes: b,
                    buf_addr: c,
                    buf_len: d,
                    sha256: sha,
                }),
                Message::Done { sites: small.1, counters: small.2 },
            ];
            for m in msgs {
                let mut out = [0u8; MAX_MESSAGE];
                let n = m.encode(&mut out).unwrap();
                proptest::prop_assert_eq!(Message::decode(&out[..n]), Ok(m));
            }
        }

        // A batch of site records with any values the form carries comes back whole.
        #[test]
        fn site_batches_round_trip(
            recs in proptest::collection::vec(
                ("[a-z:_]{0,70}", proptest::array::uniform8(0..=u32::MAX as u64), proptest::option::of(1..=u64::MAX)),
                0..12,
            ),
        ) {
            let mut sent = 0usize;
            let mut out = |p: &[u8]| {
                let Ok(Message::Sites(s)) = Message::decode(p) else {
                    panic!("not SITES")
                };
                for got in s.iter() {
                    let (name, v, bytes) = &recs[sent];
                    let want = SiteRecord {
                        name: &name[..name.len().min(record::MAX_NAME)],
                        calls: v[0], min_ns: v[1], max_ns: v[2], cum_ns: v[3],
                        p50_ns: v[4], p90_ns: v[5], p99_ns: v[6], p999_ns: v[7],
                        bytes: *bytes, tmean_ns: None, cum_cycles: None,
                    };
                    assert_eq!(got, want);
                    sent += 1;
                }
            };
            let mut b = Batcher::sites();
            for (name, v, bytes) in &recs {
                let r = SiteRecord {
                    name: name.as_str(),
                    calls: v[0], min_ns: v[1], max_ns: v[2], cum_ns: v[3],
                    p50_ns: v[4], p90_ns: v[5], p99_ns: v[6], p999_ns: v[7],
                    bytes: *bytes, tmean_ns: None, cum_cycles: None,
                };
                b.site(&r, &mut out);
            }
            proptest::prop_assert_eq!(b.finish(&mut out) as usize, recs.len());
            proptest::prop_assert_eq!(sent, recs.len());
        }

        // Truncated or garbage payloads are errors, never panics; and what
        // decodes encodes back to the same bytes.
        #[test]
        fn garbage_is_an_error_or_round_trips(
            kind in 0xBFu8..=0xC8,
            rest in proptest::collection::vec(proptest::num::u8::ANY, 0..120),
        ) {
            let mut p = [0u8; 121];
            p[0] = kind;
            p[1..1 + rest.len()].copy_from_slice(&rest);
            let p = &p[..1 + rest.len()];
            if let Ok(m) = Message::decode(p) {
                let mut out = [0u8; 200];
                let n = m.encode(&mut out).unwrap();
                proptest::prop_assert_eq!(&out[..n], p);
            }
            for cut in 0..p.len() {
                let _ = Message::decode(&p[..cut]);
            }
        }
    }
}
