//! The device control protocol, host side: the codec is
//! [`perfkit_stack::device`] (shared with the firmware); this module
//! collects a device's report into owned values.

use perfkit::SiteRecord;
pub use perfkit_stack::device::{
    kind, Config, DecodeError, DeviceRole, Hello, Message, Summary, CHANNEL, VERSION,
};

/// Collects a device's report from its control messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportCollector {
    /// The summary, once received.
    pub summary: Option<Summary>,
    /// Counters received so far.
    pub counters: Vec<(String, u32)>,
    /// Site records received so far, durations in device ticks.
    pub sites: Vec<SiteRecord<String>>,
    /// DONE totals, once received.
    pub done: Option<(u16, u16)>,
}

impl ReportCollector {
    /// Takes one report message; other messages are ignored (returns false).
    pub fn push(&mut self, msg: Message<'_>) -> bool {
        match msg {
            Message::Summary(s) => self.summary = Some(s),
            Message::Counters(c) => self
                .counters
                .extend(c.iter().map(|(n, v)| (n.to_owned(), v))),
            Message::Sites(s) => self
                .sites
                .extend(s.iter().map(|r| r.map_name(str::to_owned))),
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
    // SITES, DONE, each a dttk frame on channel 0xFE (seqno 2..5). Written
    // out from the format with an independent CRC-16/SPI-FUJITSU, so the
    // codec is checked against the format, not against its own encoder.
    fn rtt_fixture() -> Vec<u8> {
        let hex = concat!(
            "ff4902fefe0000c3010000000000000003e80000000000002328000002b700008796",
            "2000000000008796",
            "0101010101010101010101010101010101010101010101010101010101010101",
            "e328ff",
            "ff2403fefe0000c4020a6372635f6572726f727300000001087365715f676170730000000085d2ff",
            "ff4404fefe0000c5010f72656365697665723a3a73746f7265000002b7000009a8000019c0",
            "0000000000468d60000009a800000a00000012c0",
            "00001900",         // p99.9 6400
            "0000000000008796", // bytes 34,710
            "a904ff",
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
        assert_eq!(
            r.sites,
            vec![SiteRecord {
                name: "receiver::store".to_owned(),
                calls: 695,
                min_ns: 2472,
                max_ns: 6592,
                cum_ns: 4_623_712,
                p50_ns: 2472,
                p90_ns: 2560,
                p99_ns: 4800,
                p999_ns: 6400,
                bytes: Some(34_710),
                tmean_ns: None,
                cum_cycles: None,
            }]
        );
        // Junk around the frames (a probe attaching mid-stream) is skipped;
        // a truncated capture is reported as incomplete, not a panic.
        let mut noisy = b"\x00junk".to_vec();
        noisy.extend(rtt_fixture());
        assert_eq!(decode_report_stream(&noisy).check(), Ok(()));
        let cut = rtt_fixture();
        for n in 0..cut.len() {
            assert!(decode_report_stream(&cut[..n]).check().is_err());
        }
    }

    #[test]
    fn collector_checks_totals() {
        let mut c = ReportCollector::default();
        assert!(c.check().is_err());
        let capture = rtt_fixture();
        let whole = decode_report_stream(&capture);
        c.sites = whole.sites.clone();
        c.push(Message::Done {
            sites: 3,
            counters: 0,
        });
        assert_eq!(c.check(), Err("no SUMMARY message"));
        c.summary = whole.summary;
        assert_eq!(c.check(), Err("site records lost"));
        assert!(!c.push(Message::Ready));
    }
}
