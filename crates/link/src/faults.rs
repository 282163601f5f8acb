//! Seeded fault injection over any link.
//!
//! [`Faulty`] wraps a [`PacketLink`] or a [`ByteLink`] and damages what
//! crosses it in the chosen [`Direction`]: bit errors (at a bit error rate),
//! byte drop and duplication, and for packet links packet loss, duplication
//! and reordering within a bounded window. Each direction draws from its own
//! ChaCha8 stream seeded from [`FaultConfig::seed`], so the same traffic with
//! the same seed is damaged in exactly the same way on every run and every
//! machine. Every injected fault is counted in [`FaultStats`].
//!
//! Bit errors are placed by drawing the gap to the next flipped bit from a
//! geometric distribution, so a low error rate costs nothing per byte.

use std::collections::VecDeque;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{ByteLink, Error, ErrorKind, LinkStats, PacketLink, ReadOutcome, Result};

/// Which traffic the faults apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// What this end writes or sends.
    #[default]
    Tx,
    /// What this end reads or receives.
    Rx,
    /// Both (each with its own random stream).
    Both,
}

/// Fault rates (probabilities in 0..=1) and the seed. Deserialises from a
/// TOML table; unknown keys are refused and missing ones default to no fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Seed of the random streams.
    pub seed: u64,
    /// Probability that any one bit is flipped.
    pub bit_error_rate: f64,
    /// Probability that a byte is dropped.
    pub byte_drop: f64,
    /// Probability that a byte is sent twice.
    pub byte_duplicate: f64,
    /// Probability that a packet is lost (packet links).
    pub packet_loss: f64,
    /// Probability that a packet is delivered twice (packet links).
    pub packet_duplicate: f64,
    /// Probability that a packet is held back behind later ones (packet links).
    pub reorder: f64,
    /// Most packets held back at once, and most packets a held one waits for.
    pub reorder_window: usize,
    /// Which traffic is damaged.
    pub direction: Direction,
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            bit_error_rate: 0.0,
            byte_drop: 0.0,
            byte_duplicate: 0.0,
            packet_loss: 0.0,
            packet_duplicate: 0.0,
            reorder: 0.0,
            reorder_window: 4,
            direction: Direction::Tx,
        }
    }
}

impl FaultConfig {
    /// Every fault rate, by key.
    fn rates(&self) -> [(&'static str, f64); 6] {
        [
            ("bit_error_rate", self.bit_error_rate),
            ("byte_drop", self.byte_drop),
            ("byte_duplicate", self.byte_duplicate),
            ("packet_loss", self.packet_loss),
            ("packet_duplicate", self.packet_duplicate),
            ("reorder", self.reorder),
        ]
    }

    /// True if any fault rate is above zero.
    pub fn injects_any(&self) -> bool {
        self.rates().iter().any(|&(_, p)| p > 0.0)
    }

    /// Checks every rate is a probability and the window is usable.
    pub fn validate(&self) -> Result<()> {
        for (key, p) in self.rates() {
            if !(0.0..=1.0).contains(&p) {
                return Err(Error::config(
                    key,
                    format!("{p} is not a probability in 0..=1"),
                ));
            }
        }
        if self.reorder > 0.0 && self.reorder_window == 0 {
            return Err(Error::config(
                "reorder_window",
                "must be at least 1 when reorder > 0",
            ));
        }
        Ok(())
    }
}

/// Counts of injected faults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultStats {
    /// Bits flipped.
    pub bits_flipped: u64,
    /// Bytes dropped.
    pub bytes_dropped: u64,
    /// Bytes duplicated.
    pub bytes_duplicated: u64,
    /// Packets lost.
    pub packets_lost: u64,
    /// Packets duplicated.
    pub packets_duplicated: u64,
    /// Packets held back and delivered after later ones.
    pub packets_reordered: u64,
}

impl FaultStats {
    fn add(&mut self, o: &FaultStats) {
        self.bits_flipped += o.bits_flipped;
        self.bytes_dropped += o.bytes_dropped;
        self.bytes_duplicated += o.bytes_duplicated;
        self.packets_lost += o.packets_lost;
        self.packets_duplicated += o.packets_duplicated;
        self.packets_reordered += o.packets_reordered;
    }

    /// Total number of injected faults.
    pub fn total(&self) -> u64 {
        self.bits_flipped
            + self.bytes_dropped
            + self.bytes_duplicated
            + self.packets_lost
            + self.packets_duplicated
            + self.packets_reordered
    }
}

/// One direction's fault state: its random stream, held packets, counters.
#[derive(Debug)]
struct Injector {
    cfg: FaultConfig,
    rng: ChaCha8Rng,
    /// Clean bits left before the next flipped one (u64::MAX = never).
    bits_to_error: u64,
    /// Packets emitted so far, the clock of the reorder window.
    emitted: u64,
    /// Held packets with the emission count after which they are released.
    held: Vec<(u64, Vec<u8>)>,
    stats: FaultStats,
}

impl Injector {
    fn new(cfg: &FaultConfig, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        rng.set_stream(stream);
        let mut me = Self {
            cfg: cfg.clone(),
            rng,
            bits_to_error: u64::MAX,
            emitted: 0,
            held: Vec::new(),
            stats: FaultStats::default(),
        };
        me.bits_to_error = me.next_gap();
        me
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.random::<f64>() < p
    }

    /// Number of clean bits before the next error: geometric with parameter BER.
    fn next_gap(&mut self) -> u64 {
        let p = self.cfg.bit_error_rate;
        if p <= 0.0 {
            return u64::MAX;
        }
        if p >= 1.0 {
            return 0;
        }
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u: f64 = 1.0 - self.rng.random::<f64>();
        let gap = (u.ln() / (1.0 - p).ln()).floor();
        if gap >= u64::MAX as f64 {
            u64::MAX
        } else {
            gap as u64
        }
    }

    /// Applies bit errors, byte drop and byte duplication to `input`,
    /// appending the result to `out` but never growing it past `limit`.
    fn bytes(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) {
        let byte_faults = self.cfg.byte_drop > 0.0 || self.cfg.byte_duplicate > 0.0;
        if !byte_faults && self.bits_to_error >= 8 * input.len() as u64 {
            // Fast path: no fault lands in this input.
            out.extend_from_slice(input);
            if self.bits_to_error != u64::MAX {
                self.bits_to_error -= 8 * input.len() as u64;
            }
            return;
        }
        for &b in input {
            let mut b = b;
            let mut bit = 0u32;
            while self.bits_to_error < 8 - bit as u64 {
                bit += self.bits_to_error as u32;
                b ^= 0x80 >> bit;
                self.stats.bits_flipped += 1;
                bit += 1;
                self.bits_to_error = self.next_gap();
            }
            if self.bits_to_error != u64::MAX {
                self.bits_to_error -= (8 - bit) as u64;
            }
            if self.chance(self.cfg.byte_drop) {
                self.stats.bytes_dropped += 1;
                continue;
            }
            if out.len() < limit {
                out.push(b);
            }
            if self.chance(self.cfg.byte_duplicate) && out.len() < limit {
                out.push(b);
                self.stats.bytes_duplicated += 1;
            }
        }
    }

    /// Damages one packet and queues what should be delivered now on `out`.
    fn packet(&mut self, input: &[u8], limit: usize, out: &mut VecDeque<Vec<u8>>) {
        let mut pkt = Vec::with_capacity(input.len());
        self.bytes(input, &mut pkt, limit);
        if self.chance(self.cfg.packet_loss) {
            self.stats.packets_lost += 1;
            return;
        }
        let copies = if self.chance(self.cfg.packet_duplicate) {
            self.stats.packets_duplicated += 1;
            2
        } else {
            1
        };
        for i in 0..copies {
            let p = if i + 1 == copies {
                std::mem::take(&mut pkt)
            } else {
                pkt.clone()
            };
            self.emitted += 1;
            let window = self.cfg.reorder_window;
            if self.held.len() < window && self.chance(self.cfg.reorder) {
                let wait = self.rng.random_range(1..=window as u64);
                self.held.push((self.emitted + wait, p));
                self.stats.packets_reordered += 1;
            } else {
                out.push_back(p);
            }
            self.release_due(out);
        }
    }

    fn release_due(&mut self, out: &mut VecDeque<Vec<u8>>) {
        let now = self.emitted;
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 <= now {
                out.push_back(self.held.remove(i).1);
            } else {
                i += 1;
            }
        }
    }

    fn release_all(&mut self, out: &mut VecDeque<Vec<u8>>) {
        self.held.sort_by_key(|(due, _)| *due);
        out.extend(self.held.drain(..).map(|(_, p)| p));
    }
}

/// A link wrapped with seeded fault injection.
///
/// Packets held back for reordering are released after later packets, by
/// [`PacketLink::flush`] (call it when the sender is done), or, in the rx
/// direction, as soon as the wrapped link has nothing more to deliver.
#[derive(Debug)]
pub struct Faulty<L> {
    inner: L,
    tx: Option<Injector>,
    rx: Option<Injector>,
    /// Packets (or one byte chunk) ready to go to the inner link.
    tx_queue: VecDeque<Vec<u8>>,
    /// Packets received and damaged, waiting for the caller.
    rx_packets: VecDeque<Vec<u8>>,
    /// Bytes received and damaged, waiting for the caller.
    rx_bytes: VecDeque<u8>,
    scratch: Vec<u8>,
}

impl<L> Faulty<L> {
    /// Wraps `inner` with the faults of `cfg` (validated first).
    pub fn new(inner: L, cfg: &FaultConfig) -> Result<Self> {
        cfg.validate()?;
        let tx = matches!(cfg.direction, Direction::Tx | Direction::Both);
        let rx = matches!(cfg.direction, Direction::Rx | Direction::Both);
        Ok(Self {
            inner,
            tx: tx.then(|| Injector::new(cfg, 1)),
            rx: rx.then(|| Injector::new(cfg, 2)),
            tx_queue: VecDeque::new(),
            rx_packets: VecDeque::new(),
            rx_bytes: VecDeque::new(),
            scratch: Vec::new(),
        })
    }

    /// Faults injected so far, both directions together.
    pub fn fault_stats(&self) -> FaultStats {
        let mut s = FaultStats::default();
        for inj in [&self.tx, &self.rx].into_iter().flatten() {
            s.add(&inj.stats);
        }
        s
    }

    /// The wrapped link.
    pub fn inner(&self) -> &L {
        &self.inner
    }

    /// The wrapped link, mutably.
    pub fn inner_mut(&mut self) -> &mut L {
        &mut self.inner
    }

    /// Unwraps the link (packets still held back are lost).
    pub fn into_inner(self) -> L {
        self.inner
    }
}

impl<L: PacketLink> Faulty<L> {
    fn drain_tx(&mut self) -> Result<()> {
        while let Some(p) = self.tx_queue.pop_front() {
            if let Err(e) = self.inner.send(&p) {
                if matches!(e.kind(), ErrorKind::Full) {
                    // Keep it for the next call; the caller lets the receiver run.
                    self.tx_queue.push_front(p);
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

impl<L: PacketLink> PacketLink for Faulty<L> {
    fn send(&mut self, packet: &[u8]) -> Result<()> {
        let mtu = self.inner.mtu();
        if packet.len() > mtu {
            // Let the inner link refuse and count it.
            return self.inner.send(packet);
        }
        match self.tx.as_mut() {
            Some(inj) => inj.packet(packet, mtu, &mut self.tx_queue),
            None => self.tx_queue.push_back(packet.to_vec()),
        }
        self.drain_tx()
    }

    fn recv(&mut self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        let Some(inj) = self.rx.as_mut() else {
            return self.inner.recv(buf, timeout);
        };
        let cap = self.inner.mtu().max(buf.len()).min(1 << 16);
        self.scratch.resize(cap, 0);
        let mut wait = timeout;
        while self.rx_packets.is_empty() {
            match self.inner.recv(&mut self.scratch, wait)? {
                Some(n) => inj.packet(&self.scratch[..n], cap, &mut self.rx_packets),
                None => {
                    // The line is quiet: whatever was held back arrives now.
                    inj.release_all(&mut self.rx_packets);
                    break;
                }
            }
            wait = Duration::ZERO;
        }
        let Some(p) = self.rx_packets.pop_front() else {
            return Ok(None);
        };
        if p.len() > buf.len() {
            return Err(Error::new(ErrorKind::BufferTooSmall {
                len: p.len(),
                buf: buf.len(),
            }));
        }
        buf[..p.len()].copy_from_slice(&p);
        Ok(Some(p.len()))
    }

    fn mtu(&self) -> usize {
        self.inner.mtu()
    }

    fn flush(&mut self) -> Result<()> {
        if let Some(inj) = self.tx.as_mut() {
            inj.release_all(&mut self.tx_queue);
        }
        self.drain_tx()?;
        self.inner.flush()
    }

    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

impl<L: ByteLink> ByteLink for Faulty<L> {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self.tx.as_mut() {
            Some(inj) => {
                self.scratch.clear();
                inj.bytes(bytes, &mut self.scratch, usize::MAX);
                self.inner.write(&self.scratch)
            }
            None => self.inner.write(bytes),
        }
    }

    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> Result<ReadOutcome> {
        let Some(inj) = self.rx.as_mut() else {
            return self.inner.read(buf, timeout);
        };
        if self.rx_bytes.is_empty() {
            self.scratch.resize(buf.len().max(1), 0);
            match self.inner.read(&mut self.scratch, timeout)? {
                ReadOutcome::Data(n) => {
                    let mut damaged = Vec::with_capacity(n + 8);
                    inj.bytes(&self.scratch[..n], &mut damaged, usize::MAX);
                    self.rx_bytes.extend(damaged);
                }
                other => return Ok(other),
            }
        }
        let n = buf.len().min(self.rx_bytes.len());
        if n == 0 {
            // Everything that arrived was dropped.
            return Ok(ReadOutcome::Timeout);
        }
        for (dst, src) in buf.iter_mut().zip(self.rx_bytes.drain(..n)) {
            *dst = src;
        }
        Ok(ReadOutcome::Data(n))
    }

    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    fn stats(&self) -> LinkStats {
        self.inner.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ByteLoopback, Loopback};

    fn cfg() -> FaultConfig {
        FaultConfig {
            seed: 7,
            ..FaultConfig::default()
        }
    }

    #[test]
    fn no_faults_is_transparent() {
        let mut link = Faulty::new(ByteLoopback::new(), &cfg()).unwrap();
        let data: Vec<u8> = (0..=255).collect();
        link.write(&data).unwrap();
        let mut buf = [0u8; 512];
        assert_eq!(
            link.read(&mut buf, Duration::ZERO).unwrap(),
            ReadOutcome::Data(256)
        );
        assert_eq!(&buf[..256], &data[..]);
        assert_eq!(link.fault_stats().total(), 0);
    }

    #[test]
    fn bit_error_rate_one_flips_every_bit() {
        let c = FaultConfig {
            bit_error_rate: 1.0,
            ..cfg()
        };
        let mut link = Faulty::new(ByteLoopback::new(), &c).unwrap();
        link.write(&[0x00, 0xFF, 0x5A]).unwrap();
        let mut buf = [0u8; 8];
        let n = link.read(&mut buf, Duration::ZERO).unwrap().len();
        assert_eq!(&buf[..n], &[0xFF, 0x00, 0xA5]);
        assert_eq!(link.fault_stats().bits_flipped, 24);
    }

    #[test]
    fn bit_errors_are_near_the_rate() {
        let c = FaultConfig {
            bit_error_rate: 1e-3,
            ..cfg()
        };
        let mut link = Faulty::new(ByteLoopback::new(), &c).unwrap();
        let data = vec![0u8; 100_000];
        link.write(&data).unwrap();
        let mut out = vec![0u8; 100_000];
        let n = link.read(&mut out, Duration::ZERO).unwrap().len();
        assert_eq!(n, data.len());
        let flipped: u64 = out.iter().map(|b| b.count_ones() as u64).sum();
        assert_eq!(flipped, link.fault_stats().bits_flipped);
        // 800 expected; 5 sigma is about 140.
        assert!((650..=950).contains(&flipped), "{flipped} bits flipped");
    }

    #[test]
    fn packet_loss_one_loses_everything() {
        let c = FaultConfig {
            packet_loss: 1.0,
            ..cfg()
        };
        let mut link = Faulty::new(Loopback::new(64), &c).unwrap();
        for _ in 0..10 {
            link.send(b"hello").unwrap();
        }
        let mut buf = [0u8; 64];
        assert_eq!(link.recv(&mut buf, Duration::ZERO).unwrap(), None);
        assert_eq!(link.fault_stats().packets_lost, 10);
    }

    #[test]
    fn reordering_keeps_every_packet_within_the_window() {
        let c = FaultConfig {
            reorder: 0.5,
            reorder_window: 3,
            ..cfg()
        };
        let mut link = Faulty::new(Loopback::new(64), &c).unwrap();
        for i in 0..200u8 {
            link.send(&[i]).unwrap();
        }
        link.flush().unwrap();
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while let Some(n) = link.recv(&mut buf, Duration::ZERO).unwrap() {
            assert_eq!(n, 1);
            got.push(buf[0]);
        }
        assert!(link.fault_stats().packets_reordered > 0);
        assert_ne!(got, (0..200).collect::<Vec<u8>>());
        for (pos, &v) in got.iter().enumerate() {
            // A packet is delayed by at most window emissions, plus the
            // other held packets released ahead of it.
            assert!(pos as i64 - v as i64 <= 6, "packet {v} at {pos}");
        }
        got.sort_unstable();
        assert_eq!(got, (0..200).collect::<Vec<u8>>());
    }

    #[test]
    fn rx_direction_damages_what_is_read() {
        let c = FaultConfig {
            byte_drop: 1.0,
            direction: Direction::Rx,
            ..cfg()
        };
        let mut link = Faulty::new(ByteLoopback::new(), &c).unwrap();
        link.write(b"abc").unwrap();
        assert_eq!(link.inner().pending(), 3, "tx side untouched");
        let mut buf = [0u8; 8];
        assert_eq!(
            link.read(&mut buf, Duration::ZERO).unwrap(),
            ReadOutcome::Timeout
        );
        assert_eq!(link.fault_stats().bytes_dropped, 3);
    }

    #[test]
    fn bad_rates_are_refused() {
        let c = FaultConfig {
            byte_drop: 1.5,
            ..cfg()
        };
        let err = Faulty::new(ByteLoopback::new(), &c).unwrap_err();
        assert!(err.to_string().contains("byte_drop"), "{err}");
        let e = toml::from_str::<FaultConfig>("seed = 1\nbyte_dorp = 0.1\n").unwrap_err();
        assert!(e.to_string().contains("byte_dorp"), "{e}");
    }
}
