//! Transfer statistics in the profile's format.

use core::fmt;

/// Blocks and bytes moved between two injected instants.
///
/// `Display` gives the profile's line `T:<whole s> blk:<n> by:<n> PPS:<int> BPS:<int>`.
/// As in the reference, rates are the counts divided by the elapsed *whole*
/// seconds (so `T:22 blk:695 by:34710` gives `PPS:31 BPS:1577`); below one
/// second the exact elapsed nanoseconds are used instead of dividing by zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TransferStats {
    /// Data messages (sender, repeats included) or distinct blocks stored
    /// (receiver).
    pub blocks: u64,
    /// Payload bytes of those blocks.
    pub bytes: u64,
    /// Time of the first message, if any.
    pub first_ns: Option<u64>,
    /// Time of the latest message.
    pub last_ns: u64,
}

impl TransferStats {
    /// Note activity at `now_ns`.
    pub fn touch(&mut self, now_ns: u64) {
        if self.first_ns.is_none() {
            self.first_ns = Some(now_ns);
        }
        self.last_ns = self.last_ns.max(now_ns);
    }

    /// Elapsed time between first and latest message.
    pub fn elapsed_ns(&self) -> u64 {
        self.first_ns
            .map(|f| self.last_ns.saturating_sub(f))
            .unwrap_or(0)
    }

    /// Elapsed whole seconds (the profile's `T`).
    pub fn whole_secs(&self) -> u64 {
        self.elapsed_ns() / 1_000_000_000
    }

    fn rate(&self, n: u64) -> u64 {
        if let Some(r) = n.checked_div(self.whole_secs()) {
            return r;
        }
        match self.elapsed_ns() {
            0 => 0,
            ns => (n as u128 * 1_000_000_000 / ns as u128) as u64,
        }
    }

    /// Packets (data messages) per second as printed.
    pub fn pps(&self) -> u64 {
        self.rate(self.blocks)
    }

    /// Payload bytes per second as printed.
    pub fn bps(&self) -> u64 {
        self.rate(self.bytes)
    }
}

impl fmt::Display for TransferStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "T:{} blk:{} by:{} PPS:{} BPS:{}",
            self.whole_secs(),
            self.blocks,
            self.bytes,
            self.pps(),
            self.bps()
        )
    }
}

/// Link-level counters kept by a receiver (or a channel multiplexer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkCounters {
    /// Messages handed to the receiver.
    pub messages: u64,
    /// Messages whose CRC failed.
    pub crc_errors: u64,
    /// Messages too short or whose len byte disagrees with their length.
    pub bad_lengths: u64,
    /// Sequence gaps (resynchronised, not dropped).
    pub seq_gaps: u64,
    /// Messages for a channel nobody listens on.
    pub other_channel: u64,
}

impl fmt::Display for LinkCounters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "msgs:{} crc:{} badlen:{} gaps:{} otherchn:{}",
            self.messages, self.crc_errors, self.bad_lengths, self.seq_gaps, self.other_channel
        )
    }
}

impl fmt::Display for crate::framing::DeframerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bytes:{} frames:{} junk:{} violations:{} overflows:{} badlen:{}",
            self.bytes,
            self.frames,
            self.junk_bytes,
            self.protocol_violations,
            self.overflows,
            self.bad_lengths
        )
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    fn line(t_ns: u64, blk: u64, by: u64) -> std::string::String {
        TransferStats {
            blocks: blk,
            bytes: by,
            first_ns: Some(5),
            last_ns: 5 + t_ns,
        }
        .to_string()
    }

    #[test]
    fn reproduces_the_reference_lines() {
        // Elapsed times inside the reported whole second.
        assert_eq!(
            line(22_600_000_000, 695, 34710),
            "T:22 blk:695 by:34710 PPS:31 BPS:1577"
        );
        assert_eq!(
            line(72_100_000_000, 2780, 138840),
            "T:72 blk:2780 by:138840 PPS:38 BPS:1928"
        );
        assert_eq!(
            line(75_900_000_000, 695, 34710),
            "T:75 blk:695 by:34710 PPS:9 BPS:462"
        );
        assert_eq!(
            line(500_000_000, 10, 100),
            "T:0 blk:10 by:100 PPS:20 BPS:200"
        );
        assert_eq!(
            TransferStats::default().to_string(),
            "T:0 blk:0 by:0 PPS:0 BPS:0"
        );
    }
}
