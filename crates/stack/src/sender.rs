//! The tick-driven sender (`docs/specs/dttk-wire.md` section 4).
//!
//! Each [`Sender::poll`] is one tick: it writes at most one link message into
//! the caller's buffer. On tick `t` the sender sends META if
//! `t < start_meta` or `t % meta_every == 0`, otherwise the next data message;
//! each block goes out `1 + repeats` times in a row; END follows the last
//! block. A token bucket over the injected time throttles to `throttle_pps`.
//! The block is read from the [`Source`] straight into the message's payload
//! position, then header and CRC are added around it: no payload copy.

use crate::dttk::wire::{self, EndRepr, MetaRepr, CONTROL_BIT, MAX_PAYLOAD};
use crate::error::{Error, Result};
use crate::io::Source;
use crate::stats::TransferStats;

/// Sender settings. [`Default`] gives the reference settings (block 50,
/// START_META 8, META_EVERY_N 50, 3 repeats, channel 0, unthrottled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderConfig {
    /// Block size, 1..=249.
    pub block_size: u8,
    /// Ticks at the start that all send META (START_META).
    pub start_meta: u32,
    /// Send META on every tick divisible by this (META_EVERY_N); 0 = never
    /// after the start.
    pub meta_every: u32,
    /// Extra copies of each block (NUM_REPEATS).
    pub repeats: u32,
    /// Channel id, 0..=127 (data on `channel`, control on `0x80 | channel`).
    pub channel: u8,
    /// Messages per second, 0 = unthrottled.
    pub throttle_pps: u32,
    /// Token bucket depth in messages (0 is taken as 1: strict pacing).
    pub throttle_burst: u32,
    /// Deliberate busy-wait per message in nanoseconds (a known slowdown for
    /// testing regression gates); 0 costs nothing. Needs a real clock: under
    /// `std` `std::time::Instant`, otherwise a spin function given with
    /// [`Sender::with_spin`].
    pub slowdown_ns_per_packet: u64,
    /// Deliberate extra work in the `sender::read_block` stage: this many
    /// rounds of a small integer loop per data message (a known, counted
    /// change for testing exact instruction-count gates); 0 costs nothing.
    pub extra_work_per_packet: u32,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            block_size: 50,
            start_meta: 8,
            meta_every: 50,
            repeats: 3,
            channel: 0,
            throttle_pps: 0,
            throttle_burst: 1,
            slowdown_ns_per_packet: 0,
            extra_work_per_packet: 0,
        }
    }
}

impl SenderConfig {
    /// Check every value, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        if self.block_size == 0 || self.block_size as usize > MAX_PAYLOAD {
            return Err(Error::config(
                "block_size",
                "must be 1..=249 (len byte = payload + 6 must fit in 255)",
            ));
        }
        if self.channel > 0x7F {
            return Err(Error::config("channel", "must be 0..=127"));
        }
        if self.meta_every == 1 {
            // Every tick would be a META tick: no data would ever be sent.
            return Err(Error::config(
                "meta_every",
                "1 makes every tick a META tick and no block is ever sent; use 0 (never) or >= 2",
            ));
        }
        Ok(())
    }
}

/// What one tick produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// One link message of this many bytes is in the output buffer.
    Message(usize),
    /// Throttled: poll again at or after this time.
    WaitUntil(u64),
    /// END has been sent.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Sending,
    Done,
}

/// Counters beyond [`TransferStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderCounters {
    /// All messages sent (META, data, END).
    pub messages: u64,
    /// META messages sent.
    pub metas: u64,
    /// Polls refused by the throttle.
    pub throttled: u64,
}

/// The sender. `S` is the [`Source`] the file is read from.
pub struct Sender<S> {
    source: S,
    cfg: SenderConfig,
    meta: [u8; MAX_PAYLOAD],
    meta_len: usize,
    block_count: u32,
    size: u64,
    tick: u64,
    /// `tick % meta_every`, kept by counting: a 64-bit division per
    /// message costs more than the rest of the schedule.
    tick_in_period: u32,
    seqno: u8,
    block: u32,
    copies: u32,
    phase: Phase,
    /// GCRA form of the token bucket: theoretical arrival time of the next
    /// message.
    tat_ns: u64,
    interval_ns: u64,
    spin: Option<fn(u64)>,
    stats: TransferStats,
    counters: SenderCounters,
}

impl<S: Source> Sender<S> {
    /// Validate `cfg`, hash the whole source (SHA-256 for META) and get
    /// ready to send.
    pub fn new(mut source: S, cfg: SenderConfig) -> Result<Self> {
        cfg.validate()?;
        let size = source.size();
        let sha = stage!("sender::sha256", bytes = size, hash_source(&mut source))?;
        let mut meta = [0u8; MAX_PAYLOAD];
        let repr = MetaRepr::for_file(size, cfg.block_size, sha, source.name())?;
        repr.emit(&mut meta)?;
        let interval_ns = match cfg.throttle_pps {
            0 => 0,
            pps => 1_000_000_000 / pps as u64,
        };
        #[cfg(feature = "std")]
        let spin: Option<fn(u64)> = Some(spin_std);
        #[cfg(not(feature = "std"))]
        let spin: Option<fn(u64)> = None;
        Ok(Sender {
            meta_len: repr.buffer_len(),
            block_count: repr.block_count(),
            size,
            source,
            cfg,
            meta,
            tick: 0,
            tick_in_period: 0,
            seqno: 0,
            block: 0,
            copies: 0,
            phase: Phase::Sending,
            tat_ns: 0,
            interval_ns,
            spin,
            stats: TransferStats::default(),
            counters: SenderCounters::default(),
        })
    }

    /// Use `spin(ns)` to busy-wait for `slowdown_ns_per_packet` (no_std
    /// builds have no clock of their own).
    pub fn with_spin(mut self, spin: fn(u64)) -> Self {
        self.spin = Some(spin);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &SenderConfig {
        &self.cfg
    }

    /// Number of blocks in the file.
    pub fn block_count(&self) -> u32 {
        self.block_count
    }

    /// Whether a META and every block have been sent at least once: what
    /// is left is repeats, META ticks and END, which a receiver that has
    /// the file does not need.
    pub fn whole_file_sent(&self) -> bool {
        let blocks = self.block >= self.block_count
            || (self.copies > 0 && self.block + 1 >= self.block_count);
        blocks && self.counters.metas > 0
    }

    /// File size.
    pub fn file_size(&self) -> u64 {
        self.size
    }

    /// The META payload this sender announces.
    pub fn meta_payload(&self) -> &[u8] {
        &self.meta[..self.meta_len]
    }

    /// Data messages and payload bytes sent, first/last message time.
    pub fn stats(&self) -> &TransferStats {
        &self.stats
    }

    /// Message counters.
    pub fn counters(&self) -> &SenderCounters {
        &self.counters
    }

    /// True once END has been sent.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Give the source back.
    pub fn into_source(self) -> S {
        self.source
    }

    /// One tick: write the next message into `out` (at least 256 bytes is
    /// always enough) or say when to come back.
    pub fn poll(&mut self, now_ns: u64, out: &mut [u8]) -> Result<Poll> {
        if self.phase == Phase::Done {
            return Ok(Poll::Done);
        }
        if self.interval_ns != 0 {
            // Allow when the bucket (depth `burst` messages) has a token.
            let depth = self.cfg.throttle_burst.max(1) as u64 - 1;
            let allowed_at = self.tat_ns.saturating_sub(depth * self.interval_ns);
            if now_ns < allowed_at {
                self.counters.throttled += 1;
                return Ok(Poll::WaitUntil(allowed_at));
            }
        }
        let n = self.next_message(out)?;
        if self.interval_ns != 0 {
            self.tat_ns = self.tat_ns.max(now_ns) + self.interval_ns;
        }
        if self.cfg.slowdown_ns_per_packet != 0 {
            if let Some(spin) = self.spin {
                spin(self.cfg.slowdown_ns_per_packet);
            }
        }
        self.stats.touch(now_ns);
        Ok(Poll::Message(n))
    }

    fn next_message(&mut self, out: &mut [u8]) -> Result<usize> {
        let t = self.tick;
        let data_chn = self.cfg.channel;
        let ctl_chn = CONTROL_BIT | data_chn;
        let seq = self.seqno;
        // END only once a META has gone out: with START_META 0 and an empty
        // file, the schedule's tick 0 (0 % META_EVERY_N == 0) is still a META
        // tick, and without it a receiver never learns the file exists.
        let n = if self.block >= self.block_count
            && t >= self.cfg.start_meta as u64
            && self.counters.metas > 0
        {
            let end = EndRepr;
            let n = wire::build(out, seq, ctl_chn, 0, end.buffer_len(), |p| end.emit(p))?;
            self.phase = Phase::Done;
            n
        } else if t < self.cfg.start_meta as u64
            || (self.cfg.meta_every != 0 && self.tick_in_period == 0)
            || self.block >= self.block_count
        {
            let meta = &self.meta[..self.meta_len];
            let n = wire::build(out, seq, ctl_chn, 0, meta.len(), |p| {
                p.copy_from_slice(meta);
                Ok(())
            })?;
            self.counters.metas += 1;
            n
        } else {
            let bs = self.cfg.block_size as u64;
            let offset = self.block as u64 * bs;
            let len = (self.size - offset).min(bs) as usize;
            let source = &mut self.source;
            let extra = self.cfg.extra_work_per_packet;
            let n = wire::build(out, seq, data_chn, self.block as u16, len, |p| {
                stage!("sender::read_block", bytes = len, {
                    extra_work(extra);
                    source.read_at(offset, p)
                })
            })?;
            self.stats.blocks += 1;
            self.stats.bytes += len as u64;
            self.copies += 1;
            if self.copies > self.cfg.repeats {
                self.copies = 0;
                self.block += 1;
            }
            n
        };
        self.tick += 1;
        if self.cfg.meta_every != 0 {
            self.tick_in_period += 1;
            if self.tick_in_period == self.cfg.meta_every {
                self.tick_in_period = 0;
            }
        }
        self.seqno = self.seqno.wrapping_add(1);
        self.counters.messages += 1;
        Ok(n)
    }
}

/// `rounds` no-op instructions the optimiser cannot remove (with the loop
/// around them, a few instructions per round), whatever the clock says.
#[inline(always)]
fn extra_work(rounds: u32) {
    for _ in 0..rounds {
        // SAFETY: `nop` reads and writes nothing; every target has it.
        unsafe { core::arch::asm!("nop", options(nomem, nostack, preserves_flags)) };
    }
}

fn hash_source<S: Source>(source: &mut S) -> Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = [0u8; 512];
    let size = source.size();
    let mut off = 0u64;
    while off < size {
        let n = (size - off).min(buf.len() as u64) as usize;
        source.read_at(off, &mut buf[..n])?;
        h.update(&buf[..n]);
        off += n as u64;
    }
    Ok(h.finalize().into())
}

#[cfg(feature = "std")]
fn spin_std(ns: u64) {
    let until = std::time::Instant::now() + std::time::Duration::from_nanos(ns);
    while std::time::Instant::now() < until {
        core::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dttk::wire::{Control, Packet, Repr};
    use crate::io::MemorySource;

    fn kinds(cfg: SenderConfig, data: &[u8]) -> ([u8; 64], usize) {
        // 'M' meta, digit = block number mod 10, 'E' end.
        let mut s = Sender::new(MemorySource::new(data, b"f"), cfg).unwrap();
        let mut out = [0u8; 256];
        let mut k = [0u8; 64];
        let mut i = 0;
        while let Poll::Message(n) = s.poll(0, &mut out).unwrap() {
            let p = Packet::new_checked(&out[..n]).unwrap();
            let r = Repr::parse(&p).unwrap();
            assert_eq!(r.seqno, i as u8);
            k[i] = if p.is_control() {
                match Control::parse(p.payload()) {
                    Control::Meta(_) => b'M',
                    Control::End => b'E',
                    Control::Unknown(_) => b'?',
                }
            } else {
                b'0' + (p.blockno() % 10) as u8
            };
            i += 1;
        }
        (k, i)
    }

    #[test]
    fn schedule_follows_the_profile() {
        let cfg = SenderConfig {
            block_size: 2,
            start_meta: 2,
            meta_every: 5,
            repeats: 1,
            ..SenderConfig::default()
        };
        let (k, n) = kinds(cfg, b"abcde");
        // ticks: 0 M, 1 M, 2 b0, 3 b0, 4 b1, 5 M, 6 b1, 7 b2, 8 b2, 9 E
        assert_eq!(&k[..n], b"MM001M122E");
    }

    #[test]
    fn empty_file_sends_meta_then_end() {
        let (k, n) = kinds(SenderConfig::default(), b"");
        assert_eq!(&k[..n], b"MMMMMMMME");
    }

    #[test]
    fn empty_file_without_start_meta_still_announces_itself() {
        let cfg = SenderConfig {
            start_meta: 0,
            meta_every: 7,
            ..SenderConfig::default()
        };
        let (k, n) = kinds(cfg, b"");
        assert_eq!(&k[..n], b"ME");
    }

    #[test]
    fn meta_every_one_is_refused() {
        let cfg = SenderConfig {
            meta_every: 1,
            ..SenderConfig::default()
        };
        let e = Sender::new(MemorySource::new(b"abc", b"f"), cfg)
            .err()
            .unwrap();
        assert!(
            matches!(
                e.kind(),
                crate::ErrorKind::Config {
                    key: "meta_every",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn throttle_waits_on_injected_time() {
        let cfg = SenderConfig {
            throttle_pps: 40,
            ..SenderConfig::default()
        };
        let mut s = Sender::new(MemorySource::new(&[1; 100], b"f"), cfg).unwrap();
        let mut out = [0u8; 256];
        assert!(matches!(s.poll(1_000, &mut out), Ok(Poll::Message(_))));
        assert_eq!(s.poll(1_000, &mut out), Ok(Poll::WaitUntil(25_001_000)));
        assert!(matches!(s.poll(25_001_000, &mut out), Ok(Poll::Message(_))));
        assert_eq!(s.counters().throttled, 1);
    }

    #[test]
    fn config_errors_name_the_key() {
        for (cfg, key) in [
            (
                SenderConfig {
                    block_size: 250,
                    ..SenderConfig::default()
                },
                "block_size",
            ),
            (
                SenderConfig {
                    block_size: 0,
                    ..SenderConfig::default()
                },
                "block_size",
            ),
            (
                SenderConfig {
                    channel: 128,
                    ..SenderConfig::default()
                },
                "channel",
            ),
        ] {
            let e = Sender::new(MemorySource::new(b"x", b"f"), cfg)
                .err()
                .unwrap();
            assert!(
                matches!(e.kind(), crate::ErrorKind::Config { key: k, .. } if *k == key),
                "{e}"
            );
        }
    }

    #[test]
    fn slowdown_spins_for_the_configured_time() {
        use core::sync::atomic::{AtomicU64, Ordering};
        static SPUN: AtomicU64 = AtomicU64::new(0);
        fn spin(ns: u64) {
            SPUN.fetch_add(ns, Ordering::Relaxed);
        }
        let cfg = SenderConfig {
            slowdown_ns_per_packet: 1_000,
            ..SenderConfig::default()
        };
        let mut s = Sender::new(MemorySource::new(b"xyz", b"f"), cfg)
            .unwrap()
            .with_spin(spin);
        let mut out = [0u8; 256];
        let mut n = 0;
        while let Poll::Message(_) = s.poll(0, &mut out).unwrap() {
            n += 1;
        }
        assert_eq!(SPUN.load(Ordering::Relaxed), n * 1_000);
    }

    #[test]
    fn short_output_buffer_is_an_error() {
        let mut s = Sender::new(MemorySource::new(b"x", b"f"), SenderConfig::default()).unwrap();
        assert!(s.poll(0, &mut [0u8; 8]).is_err());
    }
}
