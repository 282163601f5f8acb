//! The device control protocol: what the host and the firmware say to each
//! other around a transfer, on top of the dttk wire profile.
//!
//! Every message here is the payload of a dttk link message on control
//! channel [`CHANNEL`] (0xFE: control bit + channel id 0x7E), so it travels
//! through the same framing and CRC as the transfer itself, and a dttk
//! receiver that does not know it counts it as a message for another channel.
//! The first payload byte is the type; integers are big-endian like the rest
//! of the profile.
//!
//! ```text
//! HELLO    C1 | ver u8 | cpu_hz u32 | tick_hz u32 | image_len u32 | rx_capacity u32
//! CONFIG   C0 | ver u8 | role u8 | blocksz u8 | start_meta u16 | meta_every u16
//!             | repeats u8 | throttle_pps u16 | baud u32
//! READY    C2
//! SUMMARY  C3 | role u8 | status u8 | start_ticks u64 | end_ticks u64 | blocks u32
//!             | bytes u32 | buf_addr u32 | buf_len u32 | sha256 [32]
//! COUNTERS C4 | n u8 | n x { name_len u8 | name | value u32 }
//! SITES    C5 | n u8 | n x { name_len u8 | name | calls u32 | min u32 | max u32 | cum u64
//!                            | p50 u32 | p90 u32 | p99 u32 }
//! DONE     C6 | sites u16 | counters u16
//! FINISH   C7
//! ```
//!
//! The firmware sends HELLO after boot, the host answers CONFIG, the firmware
//! answers READY and runs the transfer; at its end the firmware sends its
//! report: SUMMARY, COUNTERS and SITES messages (as many as the records need),
//! then DONE carrying the totals so the host knows nothing was lost. Site
//! times are in ticks of the device clock (`tick_hz`, the CPU clock for
//! SysTick): cycles.

use core::fmt;

/// The dttk channel byte the control protocol uses (control bit | 0x7E).
pub const CHANNEL: u8 = 0xFE;
/// Protocol version carried in HELLO and CONFIG.
pub const VERSION: u8 = 1;

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

impl std::error::Error for DecodeError {}

/// Which side of the transfer the device plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceRole {
    /// The device sends its embedded image; the host receives.
    Sender,
    /// The host sends the image; the device receives and stores it in RAM.
    Receiver,
}

impl DeviceRole {
    fn code(self) -> u8 {
        match self {
            DeviceRole::Sender => 0,
            DeviceRole::Receiver => 1,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
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

/// SUMMARY: the device's transfer figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Role the device played.
    pub role: DeviceRole,
    /// 0: transfer complete and verified; other values: see [`Summary::status_text`].
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
            0 => "complete",
            1 => "SHA-256 mismatch",
            2 => "incomplete (timed out)",
            3 => "file larger than the device buffer",
            4 => "transfer error",
            _ => "unknown status",
        }
    }
}

/// Statistics of one device call site, in device ticks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRecord {
    /// Site name.
    pub name: String,
    /// Completed measurements.
    pub calls: u32,
    /// Shortest, in ticks.
    pub min: u32,
    /// Longest, in ticks.
    pub max: u32,
    /// Sum, in ticks.
    pub cum: u64,
    /// Median, in ticks (from the device's histogram).
    pub p50: u32,
    /// 90th percentile, in ticks.
    pub p90: u32,
    /// 99th percentile, in ticks.
    pub p99: u32,
}

/// One decoded control message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// See [`Hello`].
    Hello(Hello),
    /// See [`Config`].
    Config(Config),
    /// The device is configured.
    Ready,
    /// See [`Summary`].
    Summary(Summary),
    /// Named counters.
    Counters(Vec<(String, u32)>),
    /// Call-site statistics.
    Sites(Vec<SiteRecord>),
    /// End of report with the totals sent.
    Done {
        /// Site records sent.
        sites: u16,
        /// Counters sent.
        counters: u16,
    },
}

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
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(self.err("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    fn name(&mut self) -> Result<String, DecodeError> {
        let n = self.u8()? as usize;
        let b = self.take(n)?;
        core::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| self.err("name is not UTF-8"))
    }
    fn end(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

impl Message {
    /// Decodes a control-channel payload. Unknown types and malformed
    /// payloads are errors, never panics.
    pub fn decode(payload: &[u8]) -> Result<Message, DecodeError> {
        let Some((&kind, rest)) = payload.split_first() else {
            return Err(DecodeError {
                kind: 0,
                what: "empty payload",
            });
        };
        let mut r = Reader { kind, buf: rest };
        let msg = match kind {
            kind::HELLO => {
                if r.u8()? != VERSION {
                    return Err(r.err("unsupported protocol version"));
                }
                Message::Hello(Hello {
                    cpu_hz: r.u32()?,
                    tick_hz: r.u32()?,
                    image_len: r.u32()?,
                    rx_capacity: r.u32()?,
                })
            }
            kind::CONFIG => {
                if r.u8()? != VERSION {
                    return Err(r.err("unsupported protocol version"));
                }
                let role = DeviceRole::from_code(r.u8()?).ok_or(r.err("bad role"))?;
                Message::Config(Config {
                    role,
                    blocksz: r.u8()?,
                    start_meta: r.u16()?,
                    meta_every: r.u16()?,
                    repeats: r.u8()?,
                    throttle_pps: r.u16()?,
                    baud: r.u32()?,
                })
            }
            kind::READY => Message::Ready,
            kind::SUMMARY => {
                let role = DeviceRole::from_code(r.u8()?).ok_or(r.err("bad role"))?;
                let status = r.u8()?;
                let start_ticks = r.u64()?;
                let end_ticks = r.u64()?;
                let blocks = r.u32()?;
                let bytes = r.u32()?;
                let buf_addr = r.u32()?;
                let buf_len = r.u32()?;
                let mut sha256 = [0u8; 32];
                sha256.copy_from_slice(r.take(32)?);
                Message::Summary(Summary {
                    role,
                    status,
                    start_ticks,
                    end_ticks,
                    blocks,
                    bytes,
                    buf_addr,
                    buf_len,
                    sha256,
                })
            }
            kind::COUNTERS => {
                let n = r.u8()?;
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let name = r.name()?;
                    v.push((name, r.u32()?));
                }
                Message::Counters(v)
            }
            kind::SITES => {
                let n = r.u8()?;
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(SiteRecord {
                        name: r.name()?,
                        calls: r.u32()?,
                        min: r.u32()?,
                        max: r.u32()?,
                        cum: r.u64()?,
                        p50: r.u32()?,
                        p90: r.u32()?,
                        p99: r.u32()?,
                    });
                }
                Message::Sites(v)
            }
            kind::DONE => Message::Done {
                sites: r.u16()?,
                counters: r.u16()?,
            },
            _ => return Err(r.err("unknown message type")),
        };
        r.end()?;
        Ok(msg)
    }

    /// Encodes the message as a control-channel payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let name = |v: &mut Vec<u8>, s: &str| {
            let b = &s.as_bytes()[..s.len().min(255)];
            v.push(b.len() as u8);
            v.extend_from_slice(b);
        };
        match self {
            Message::Hello(h) => {
                v.extend([kind::HELLO, VERSION]);
                v.extend(h.cpu_hz.to_be_bytes());
                v.extend(h.tick_hz.to_be_bytes());
                v.extend(h.image_len.to_be_bytes());
                v.extend(h.rx_capacity.to_be_bytes());
            }
            Message::Config(c) => {
                v.extend([kind::CONFIG, VERSION, c.role.code(), c.blocksz]);
                v.extend(c.start_meta.to_be_bytes());
                v.extend(c.meta_every.to_be_bytes());
                v.push(c.repeats);
                v.extend(c.throttle_pps.to_be_bytes());
                v.extend(c.baud.to_be_bytes());
            }
            Message::Ready => v.push(kind::READY),
            Message::Summary(s) => {
                v.extend([kind::SUMMARY, s.role.code(), s.status]);
                v.extend(s.start_ticks.to_be_bytes());
                v.extend(s.end_ticks.to_be_bytes());
                v.extend(s.blocks.to_be_bytes());
                v.extend(s.bytes.to_be_bytes());
                v.extend(s.buf_addr.to_be_bytes());
                v.extend(s.buf_len.to_be_bytes());
                v.extend(s.sha256);
            }
            Message::Counters(cs) => {
                v.extend([kind::COUNTERS, cs.len() as u8]);
                for (n, val) in cs {
                    name(&mut v, n);
                    v.extend(val.to_be_bytes());
                }
            }
            Message::Sites(ss) => {
                v.extend([kind::SITES, ss.len() as u8]);
                for s in ss {
                    name(&mut v, &s.name);
                    v.extend(s.calls.to_be_bytes());
                    v.extend(s.min.to_be_bytes());
                    v.extend(s.max.to_be_bytes());
                    v.extend(s.cum.to_be_bytes());
                    v.extend(s.p50.to_be_bytes());
                    v.extend(s.p90.to_be_bytes());
                    v.extend(s.p99.to_be_bytes());
                }
            }
            Message::Done { sites, counters } => {
                v.push(kind::DONE);
                v.extend(sites.to_be_bytes());
                v.extend(counters.to_be_bytes());
            }
        }
        v
    }
}

/// Collects a device's report from its control messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportCollector {
    /// The summary, once received.
    pub summary: Option<Summary>,
    /// Counters received so far.
    pub counters: Vec<(String, u32)>,
    /// Site records received so far.
    pub sites: Vec<SiteRecord>,
    /// DONE totals, once received.
    pub done: Option<(u16, u16)>,
}

impl ReportCollector {
    /// Takes one report message; other messages are ignored (returns false).
    pub fn push(&mut self, msg: Message) -> bool {
        match msg {
            Message::Summary(s) => self.summary = Some(s),
            Message::Counters(c) => self.counters.extend(c),
            Message::Sites(s) => self.sites.extend(s),
            Message::Done { sites, counters } => self.done = Some((sites, counters)),
            _ => return false,
        }
        true
    }

    /// True once DONE arrived.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// Checks the report is whole: a summary, and as many records as DONE says.
    pub fn check(&self) -> Result<(), &'static str> {
        let Some((sites, counters)) = self.done else {
            return Err("no DONE message");
        };
        if self.summary.is_none() {
            return Err("no SUMMARY message");
        }
        if sites as usize != self.sites.len() {
            return Err("site records lost");
        }
        if counters as usize != self.counters.len() {
            return Err("counters lost");
        }
        Ok(())
    }
}

/// Decodes a report from a byte stream of framed control messages (what the
/// firmware writes to RTT, or a capture of its UART). Frames on other
/// channels, bad CRCs and unknown messages are skipped; the caller checks the
/// result with [`ReportCollector::check`].
pub fn decode_report_stream(bytes: &[u8]) -> ReportCollector {
    use perfkit_stack::{wire::Packet, Deframer, Framing};
    let mut deframer: Deframer = Deframer::new(Framing::Dttk);
    let mut report = ReportCollector::default();
    deframer.push(bytes, |frame| {
        let Ok(p) = Packet::new_checked(frame) else {
            return;
        };
        if p.chn() != CHANNEL || p.verify_crc().is_err() {
            return;
        }
        if let Ok(m) = Message::decode(p.payload()) {
            report.push(m);
        }
    });
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    // A whole report as the firmware writes it to RTT: SUMMARY, COUNTERS,
    // SITES, DONE, each a dttk frame on channel 0xFE (seqno 2..5). The DONE
    // frame's CRC (0x3262) was checked against an independent CRC-16/SPI-FUJITSU.
    fn rtt_fixture() -> Vec<u8> {
        let hex = concat!(
            "ff4902fefe0000c3010000000000000003e80000000000002328000002b700008796",
            "2000000000008796",
            "0101010101010101010101010101010101010101010101010101010101010101",
            "e328ff",
            "ff2403fefe0000c4020a6372635f6572726f727300000001087365715f676170730000000085d2ff",
            "ff3804fefe0000c5010f72656365697665723a3a73746f7265000002b7000009a8000019c0",
            "0000000000468d60000009a800000a00000012c0b83bff",
            "ff0b05fefe0000c6000100023262ff",
        );
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn decodes_an_rtt_report_capture() {
        let r = decode_report_stream(&rtt_fixture());
        assert_eq!(r.check(), Ok(()));
        let s = r.summary.unwrap();
        assert_eq!(s.role, DeviceRole::Receiver);
        assert_eq!(
            (s.start_ticks, s.end_ticks, s.blocks, s.bytes),
            (1000, 9000, 695, 34_710)
        );
        assert_eq!((s.buf_addr, s.buf_len), (0x2000_0000, 34_710));
        assert_eq!(
            r.counters,
            vec![("crc_errors".to_owned(), 1), ("seq_gaps".to_owned(), 0)]
        );
        assert_eq!(r.sites.len(), 1);
        assert_eq!(r.sites[0].name, "receiver::store");
        assert_eq!(
            (r.sites[0].calls, r.sites[0].min, r.sites[0].max),
            (695, 2472, 6592)
        );
        // Junk around the frames (a probe attaching mid-stream) is skipped;
        // a truncated capture is reported as incomplete, not a panic.
        let mut noisy = b"\x00junk".to_vec();
        noisy.extend(rtt_fixture());
        assert_eq!(decode_report_stream(&noisy).check(), Ok(()));
        let cut = rtt_fixture();
        assert!(decode_report_stream(&cut[..cut.len() - 5]).check().is_err());
    }

    // Bytes as the firmware emits them (fixture written out by hand from the
    // format above, so the decoder is checked against the format, not against
    // its own encoder).
    const SITES_FIXTURE: &[u8] = &[
        0xC5, 0x02, // SITES, 2 records
        0x05, b'c', b'r', b'c', b'1', b'6', // name
        0x00, 0x00, 0x02, 0xB7, // calls 695
        0x00, 0x00, 0x0B, 0xB8, // min 3000
        0x00, 0x00, 0x0F, 0xA0, // max 4000
        0x00, 0x00, 0x00, 0x00, 0x00, 0x22, 0xB8, 0x78, // cum 2_275_448
        0x00, 0x00, 0x0C, 0x1C, // p50 3100
        0x00, 0x00, 0x0C, 0x80, // p90 3200
        0x00, 0x00, 0x0F, 0x3C, // p99 3900
        0x01, b'x', //
        0x00, 0x00, 0x00, 0x01, //
        0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0x07,
    ];

    #[test]
    fn decodes_sites_fixture() {
        let m = Message::decode(SITES_FIXTURE).unwrap();
        let Message::Sites(s) = &m else {
            panic!("{m:?}")
        };
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "crc16");
        assert_eq!(
            (s[0].calls, s[0].min, s[0].max, s[0].cum),
            (695, 3000, 4000, 2_275_448)
        );
        assert_eq!((s[0].p50, s[0].p90, s[0].p99), (3100, 3200, 3900));
        assert_eq!(s[1].name, "x");
        assert_eq!(m.encode(), SITES_FIXTURE);
    }

    #[test]
    fn decodes_hello_fixture() {
        let b = [
            0xC1, 0x01, 0x07, 0x73, 0x59, 0x40, 0x07, 0x73, 0x59, 0x40, 0x00, 0x00, 0x87, 0x96,
            0x00, 0x00, 0xA0, 0x00,
        ];
        assert_eq!(
            Message::decode(&b).unwrap(),
            Message::Hello(Hello {
                cpu_hz: 125_000_000,
                tick_hz: 125_000_000,
                image_len: 34_710,
                rx_capacity: 40_960
            })
        );
    }

    #[test]
    fn every_message_round_trips() {
        let msgs = [
            Message::Hello(Hello {
                cpu_hz: 1,
                tick_hz: 2,
                image_len: 3,
                rx_capacity: 4,
            }),
            Message::Config(Config {
                role: DeviceRole::Receiver,
                blocksz: 50,
                start_meta: 8,
                meta_every: 50,
                repeats: 3,
                throttle_pps: 40,
                baud: 115_200,
            }),
            Message::Ready,
            Message::Summary(Summary {
                role: DeviceRole::Sender,
                status: 0,
                start_ticks: 1 << 40,
                end_ticks: (1 << 40) + 5,
                blocks: 695,
                bytes: 34_710,
                buf_addr: 0x2000_0000,
                buf_len: 34_710,
                sha256: [7; 32],
            }),
            Message::Counters(vec![("crc_errors".into(), 3), ("overruns".into(), 0)]),
            Message::Done {
                sites: 5,
                counters: 2,
            },
        ];
        for m in msgs {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert_eq!(Message::decode(&[]).unwrap_err().what, "empty payload");
        assert_eq!(
            Message::decode(&[0x42]).unwrap_err().what,
            "unknown message type"
        );
        // Truncated at every length: an error each time, never a panic.
        let full = Message::Done {
            sites: 1,
            counters: 1,
        }
        .encode();
        for n in 1..full.len() {
            assert_eq!(Message::decode(&full[..n]).unwrap_err().what, "truncated");
        }
        assert!(Message::decode(&SITES_FIXTURE[..SITES_FIXTURE.len() - 1]).is_err());
        let mut extra = full.clone();
        extra.push(0);
        assert_eq!(Message::decode(&extra).unwrap_err().what, "trailing bytes");
        // A name that is not UTF-8.
        let bad = [0xC4, 0x01, 0x01, 0xFF, 0, 0, 0, 1];
        assert_eq!(Message::decode(&bad).unwrap_err().what, "name is not UTF-8");
    }

    #[test]
    fn collector_checks_totals() {
        let mut c = ReportCollector::default();
        assert!(c.check().is_err());
        c.push(Message::decode(SITES_FIXTURE).unwrap());
        c.push(Message::Done {
            sites: 3,
            counters: 0,
        });
        assert_eq!(c.check(), Err("no SUMMARY message"));
        assert!(!c.push(Message::Ready));
    }
}
