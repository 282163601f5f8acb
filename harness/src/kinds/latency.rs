//! One-way delay per block: each end notes when it first handed a block to
//! the link (sender) or first read it from the link (receiver), on its own
//! clock; the delays are the differences, less the clocks' offset when the
//! ends are on two hosts.
//!
//! The stamps come from the bytes on the link, read as the dttk profile's
//! link messages (`blockno` at offset 3, big-endian; control messages have
//! bit 7 of `chn` set and are skipped), so neither end's transfer stack is
//! changed by measuring it. On a byte stream the link's bytes are deframed a
//! second time for this, which costs CPU: it is switched on per scenario
//! (`latency = true`). A sender's stamp is when the write holding the block
//! began: the engine gathers frames into writes of up to 64 KiB, so on a
//! stream the delay includes that batching.

use std::time::Duration;

use perfkit_link::{ByteLink, End, LinkStats, PacketLink, ReadOutcome};
use perfkit_stack::{Deframer, Framing};

/// When each block was first seen at one end: ns on that end's clock since
/// the Unix epoch, 0 = never.
pub struct Stamps {
    channel: u8,
    deframer: Option<Deframer>,
    first: Vec<u64>,
}

impl Stamps {
    /// Stamps for data messages on `channel`; `framing` for a byte stream,
    /// `None` for datagrams (one message each).
    pub fn new(channel: u8, framing: Option<Framing>) -> Stamps {
        Stamps {
            channel,
            deframer: framing.map(Deframer::new),
            first: vec![0; 1 << 16],
        }
    }

    fn message(first: &mut [u64], channel: u8, msg: &[u8], now: u64) {
        // len, seqno, chn, blockno (2), payload, crc (2)
        if msg.len() >= 7 && msg[2] == channel {
            let b = usize::from(u16::from_be_bytes([msg[3], msg[4]]));
            if first[b] == 0 {
                first[b] = now.max(1);
            }
        }
    }

    fn bytes(&mut self, bytes: &[u8], now: u64) {
        let (first, channel) = (&mut self.first, self.channel);
        match self.deframer.as_mut() {
            Some(d) => d.push(bytes, |m| Self::message(first, channel, m, now)),
            None => Self::message(first, channel, bytes, now),
        }
    }

    /// The stamps as bytes: (block u16, ns u64) big-endian per stamped block.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (b, &t) in self.first.iter().enumerate().filter(|(_, t)| **t != 0) {
            out.extend_from_slice(&(b as u16).to_be_bytes());
            out.extend_from_slice(&t.to_be_bytes());
        }
        out
    }

    /// Reads [`Stamps::encode`]'s bytes; `None` if malformed.
    pub fn decode(bytes: &[u8]) -> Option<Vec<(u16, u64)>> {
        if bytes.len() % 10 != 0 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(10)
                .map(|c| {
                    let b = u16::from_be_bytes([c[0], c[1]]);
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&c[2..]);
                    (b, u64::from_be_bytes(t))
                })
                .collect(),
        )
    }

    /// This end's stamps as (block, ns) pairs.
    pub fn pairs(&self) -> Vec<(u16, u64)> {
        Self::decode(&self.encode()).unwrap_or_default()
    }
}

/// One-way delays in ns for every block both ends stamped: the receiver's
/// stamp less the sender's, less `offset_ns` (the receiver's clock minus
/// the sender's).
pub fn delays(tx: &[(u16, u64)], rx: &[(u16, u64)], offset_ns: i64) -> Vec<i64> {
    let mut sent = vec![0u64; 1 << 16];
    for &(b, t) in tx {
        sent[usize::from(b)] = t;
    }
    rx.iter()
        .filter(|(b, _)| sent[usize::from(*b)] != 0)
        .map(|&(b, t)| t as i64 - sent[usize::from(b)] as i64 - offset_ns)
        .collect()
}

/// Percentiles of the delays, in microseconds, as metrics named
/// `one_way_delay_{min,p50,p90,p99,max}_us`, and the number of blocks.
pub fn metrics(mut d: Vec<i64>, into: &mut std::collections::BTreeMap<String, f64>) {
    if d.is_empty() {
        return;
    }
    d.sort_unstable();
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize] as f64 / 1e3;
    for (name, q) in [
        ("min", 0.0),
        ("p50", 0.5),
        ("p90", 0.9),
        ("p99", 0.99),
        ("max", 1.0),
    ] {
        into.insert(format!("one_way_delay_{name}_us"), at(q));
    }
    into.insert("one_way_delay_blocks".into(), d.len() as f64);
}

/// The wall clock both ends stamp with.
fn now() -> u64 {
    crate::remote::proto::wall_ns()
}

/// An end whose traffic is stamped (when `stamps` is set).
pub struct Stamper<'a> {
    end: End<'a>,
    /// The stamps, when measuring.
    pub stamps: Option<Stamps>,
}

impl<'a> Stamper<'a> {
    /// Stamps `end` when `on`, for data messages on `channel`.
    pub fn new(end: End<'a>, on: bool, channel: u8, framing: Framing) -> Stamper<'a> {
        let stamps = on.then(|| {
            let framing = matches!(end, End::Bytes(_)).then_some(framing);
            Stamps::new(channel, framing)
        });
        Stamper { end, stamps }
    }

    /// The end to drive.
    pub fn end(&mut self) -> End<'_> {
        match (&mut self.end, self.stamps.as_mut()) {
            (End::Bytes(l), None) => End::Bytes(Box::new(&mut **l)),
            (End::Packets(l), None) => End::Packets(Box::new(&mut **l)),
            (End::Bytes(l), Some(s)) => End::Bytes(Box::new(Stamped {
                link: &mut **l,
                stamps: s,
            })),
            (End::Packets(l), Some(s)) => End::Packets(Box::new(Stamped {
                link: &mut **l,
                stamps: s,
            })),
        }
    }

    /// The end itself (to drain or read its counters afterwards).
    pub fn inner(&mut self) -> &mut End<'a> {
        &mut self.end
    }
}

struct Stamped<'s, L: ?Sized> {
    link: &'s mut L,
    stamps: &'s mut Stamps,
}

impl<L: ByteLink + ?Sized> ByteLink for Stamped<'_, L> {
    fn write(&mut self, bytes: &[u8]) -> perfkit_link::Result<()> {
        self.stamps.bytes(bytes, now());
        self.link.write(bytes)
    }
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> perfkit_link::Result<ReadOutcome> {
        let r = self.link.read(buf, timeout)?;
        if let ReadOutcome::Data(n) = r {
            self.stamps.bytes(&buf[..n], now());
        }
        Ok(r)
    }
    fn flush(&mut self) -> perfkit_link::Result<()> {
        self.link.flush()
    }
    fn stats(&self) -> LinkStats {
        self.link.stats()
    }
}

impl<L: PacketLink + ?Sized> PacketLink for Stamped<'_, L> {
    fn send(&mut self, packet: &[u8]) -> perfkit_link::Result<()> {
        self.stamps.bytes(packet, now());
        self.link.send(packet)
    }
    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> perfkit_link::Result<Option<usize>> {
        let r = self.link.recv(buf, timeout)?;
        if let Some(n) = r {
            self.stamps.bytes(&buf[..n], now());
        }
        Ok(r)
    }
    fn mtu(&self) -> usize {
        self.link.mtu()
    }
    fn flush(&mut self) -> perfkit_link::Result<()> {
        self.link.flush()
    }
    fn stats(&self) -> LinkStats {
        self.link.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(chn: u8, block: u16) -> Vec<u8> {
        let mut m = vec![6, 0, chn, 0, 0, 0xaa, 0, 0];
        m[3..5].copy_from_slice(&block.to_be_bytes());
        m
    }

    #[test]
    fn first_sight_counts_and_control_messages_do_not() {
        let mut s = Stamps::new(0, None);
        s.bytes(&msg(0, 7), 100);
        s.bytes(&msg(0, 7), 200);
        s.bytes(&msg(0x80, 9), 300);
        s.bytes(&msg(1, 10), 400);
        s.bytes(&[1, 2], 500);
        assert_eq!(s.pairs(), vec![(7, 100)]);
        assert_eq!(Stamps::decode(&s.encode()).unwrap(), vec![(7, 100)]);
        assert!(Stamps::decode(&[0; 9]).is_none());
    }

    #[test]
    fn delays_pair_blocks_and_remove_the_offset() {
        let tx = [(1, 1_000), (2, 2_000), (3, 3_000)];
        let rx = [(2, 7_500), (1, 6_000), (4, 9_000)];
        assert_eq!(delays(&tx, &rx, 5_000), vec![500, 0]);
        let mut m = std::collections::BTreeMap::new();
        metrics(vec![1_000, 3_000, 2_000], &mut m);
        assert_eq!(m["one_way_delay_p50_us"], 2.0);
        assert_eq!(m["one_way_delay_max_us"], 3.0);
        assert_eq!(m["one_way_delay_blocks"], 3.0);
    }
}
