//! The push-based receiver and the channel multiplexer.
//!
//! A [`Receiver`] owns the state of one transfer on one channel: META,
//! a bitmap of blocks held (capacity `8 * B` blocks, `B` bytes of bitmap, so
//! the default 8 KiB covers the profile's 65,536 blocks), counters, and a
//! running SHA-256. Drive it with [`Receiver::on_message`] on packet links or
//! [`Receiver::on_bytes`] on byte streams (it holds a [`Deframer`]). Both
//! return [`Event`]s and never panic on any input.
//!
//! Blocks are written once, at `blockno * blocksz`, straight from the
//! received message. Hashing is incremental, over the in-order prefix of
//! the file. A sink that holds the file in memory ([`Sink::stored`]) is
//! hashed where it lies, in passes of [`HASH_PASS`] bytes as the prefix
//! grows: one call into SHA-256 (and one measurement) per pass rather than
//! per block, over whole 64-byte rounds with no partial-block buffering.
//! Another sink is hashed block by block: while blocks arrive in order each
//! is hashed from the message it came in; blocks that arrived ahead of a
//! gap are read back from the sink when the gap fills. Either way
//! completion costs at most one pass in the common case. A sink that hashes
//! the file itself ([`Sink::hashes`], such as `HashingSink`, which does it
//! on a thread of its own) is told the prefix in the same passes
//! ([`Sink::hash_upto`]) and asked for the digest at the end.
//!
//! [`Mux`] runs several receivers over one link, one per channel 1..=127.
//!
//! The rules are the dttk transfer protocol's (META and END payloads, block
//! numbering, SHA-256). The link message they arrive in is a type parameter
//! (any [`PacketFormat`], the dttk link message by default), and so is the
//! byte-stream framing (any [`Deframe`], the run-time [`Framing`] choice by
//! default): both are compiled in, with no dynamic dispatch per message.

use sha2::{Digest, Sha256};

use crate::dttk::wire::{Control, MetaRepr, CONTROL_BIT, MAX_PAYLOAD};
use crate::dttk::LinkMessage;
use crate::framing::{Deframer, DeframerStats, Framing, RX_BUFFER};
use crate::io::Sink;
use crate::profile::{Deframe, PacketFormat, PacketView};
use crate::stats::{LinkCounters, TransferStats};

/// Bytes of in-order file a receiver whose sink lends its bytes hashes at
/// once: large enough that the per-call cost vanishes, small enough that
/// the blocks are still in the cache and that the pass the last block
/// completes is short.
pub const HASH_PASS: u64 = 4096;

/// Why a message was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than 7 bytes or len byte disagrees with the length.
    BadLength,
    /// CRC mismatch.
    Crc,
    /// Another channel's message.
    OtherChannel,
    /// A data block before any META.
    NoMeta,
    /// Block number past the announced block count.
    OutOfRange,
    /// Block payload of the wrong size for its number.
    WrongBlockLength,
    /// META too short or with block size 0.
    BadMeta,
    /// Control type this profile does not define.
    UnknownControl,
    /// The transfer already failed.
    Finished,
}

/// Why a transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A META differing from the first one.
    MetaConflict,
    /// All blocks present but the SHA-256 differs from META's.
    ShaMismatch,
    /// More blocks than this receiver's bitmap holds.
    TooManyBlocks {
        /// Blocks announced.
        blocks: u32,
        /// Capacity.
        capacity: u32,
    },
    /// The sink refused the size or a write.
    Sink(crate::ErrorKind),
}

impl core::fmt::Display for Failure {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Failure::MetaConflict => f.write_str("a META differing from the first one arrived"),
            Failure::ShaMismatch => {
                f.write_str("every block arrived but the SHA-256 differs from META's")
            }
            Failure::TooManyBlocks { blocks, capacity } => write!(
                f,
                "META announces {blocks} blocks, more than this receiver holds ({capacity})"
            ),
            Failure::Sink(kind) => write!(
                f,
                "the output refused the file META describes: {}",
                crate::Error::from(*kind)
            ),
        }
    }
}

/// What one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// First META accepted.
    Meta {
        /// Blocks in the file.
        blocks: u32,
        /// File size in bytes.
        size: u64,
    },
    /// A repeat of the accepted META.
    MetaRepeat,
    /// A new block stored.
    Block {
        /// Block number.
        blockno: u16,
        /// Payload bytes.
        len: u8,
    },
    /// A block already held (repeat), ignored.
    Duplicate {
        /// Block number.
        blockno: u16,
    },
    /// END arrived; `missing` blocks are absent (0 if complete).
    End {
        /// Blocks still missing.
        missing: u32,
    },
    /// Every block stored and the SHA-256 matches.
    Complete {
        /// File size.
        size: u64,
    },
    /// The transfer failed; further messages are dropped.
    Failed(Failure),
    /// The message was counted and dropped.
    Dropped(DropReason),
}

/// Transfer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No META yet.
    WaitMeta,
    /// Receiving blocks.
    Receiving,
    /// END arrived with blocks missing (late blocks are still taken).
    Incomplete,
    /// All blocks present and verified.
    Complete,
    /// Failed (see the event that said why).
    Failed,
}

/// Per-transfer counters beyond the link counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverCounters {
    /// Link-level counters (when driven directly, not through [`Mux`]).
    pub link: LinkCounters,
    /// META messages seen (first and repeats).
    pub metas: u64,
    /// Duplicate blocks ignored.
    pub duplicates: u64,
    /// Data blocks before META.
    pub no_meta: u64,
    /// Block numbers out of range.
    pub out_of_range: u64,
    /// Blocks of the wrong size.
    pub wrong_block_length: u64,
    /// Malformed META or unknown control messages.
    pub bad_control: u64,
    /// Messages dropped after the transfer failed.
    pub after_failure: u64,
}

/// Everything a receiver keeps except its deframer, so a frame borrowed from
/// the deframer can be handled without copying it out.
struct Core<K, const B: usize> {
    channel: u8,
    sink: K,
    have: [u8; B],
    have_count: u32,
    meta: [u8; MAX_PAYLOAD],
    meta_len: usize,
    /// The accepted META's numbers; its name stays in `meta`.
    info: Option<MetaRepr<'static>>,
    state: State,
    failure: Option<Failure>,
    hasher: Sha256,
    /// Blocks of the in-order prefix: hashed, or (hashing in place) held.
    hashed: u32,
    /// Hashing in place ([`Sink::stored`]): bytes of the prefix hashed.
    hashed_bytes: u64,
    /// The sink lends its bytes, so the prefix is hashed in place.
    in_place: bool,
    /// Bytes per in-place pass; 0 hashes block by block whatever the sink.
    hash_pass: u64,
    /// The sink hashes the prefix itself ([`Sink::hashes`]); the receiver
    /// announces it in passes and asks for the digest at the end.
    sink_hashes: bool,
    expected_seq: Option<u8>,
    counters: ReceiverCounters,
    stats: TransferStats,
}

impl<K: Sink, const B: usize> Core<K, B> {
    fn new(channel: u8, sink: K) -> Self {
        Core {
            channel: channel & !CONTROL_BIT,
            sink,
            have: [0; B],
            have_count: 0,
            meta: [0; MAX_PAYLOAD],
            meta_len: 0,
            info: None,
            state: State::WaitMeta,
            failure: None,
            hasher: Sha256::new(),
            hashed: 0,
            hashed_bytes: 0,
            in_place: false,
            hash_pass: HASH_PASS,
            sink_hashes: false,
            expected_seq: None,
            counters: ReceiverCounters::default(),
            stats: TransferStats::default(),
        }
    }

    /// Block capacity (`8 * B`).
    pub const CAPACITY: u32 = if B as u64 * 8 > u32::MAX as u64 {
        u32::MAX
    } else {
        (B * 8) as u32
    };

    /// The accepted META, if any.
    pub fn meta(&self) -> Option<MetaRepr<'_>> {
        self.info
            .and_then(|_| MetaRepr::parse(&self.meta[..self.meta_len]).ok())
    }
    /// Blocks announced by META (0 before META).
    pub fn block_count(&self) -> u32 {
        self.info.map(|m| m.block_count()).unwrap_or(0)
    }
    /// True if block `n` is stored.
    pub fn has_block(&self, n: u32) -> bool {
        let i = (n / 8) as usize;
        i < B && self.have[i] & (1 << (n % 8)) != 0
    }
    /// Block numbers still missing (empty before META).
    pub fn missing_blocks(&self) -> MissingBlocks<'_, K, B> {
        MissingBlocks {
            rx: self,
            next: 0,
            end: self.block_count(),
        }
    }

    /// Handle one link message received at `now_ns`.
    pub fn on_message<P: PacketFormat>(&mut self, msg: &[u8], now_ns: u64) -> Event {
        let packet = match check_link::<P>(&mut self.counters.link, &mut self.expected_seq, msg) {
            Ok(p) => p,
            Err(dropped) => return dropped,
        };
        if packet.channel_id() != self.channel {
            self.counters.link.other_channel += 1;
            return Event::Dropped(DropReason::OtherChannel);
        }
        self.on_verified(&packet, now_ns)
    }

    /// Handle a message whose length and CRC are verified and whose channel
    /// id is this receiver's.
    pub fn on_verified<V: PacketView>(&mut self, packet: &V, now_ns: u64) -> Event {
        if self.state == State::Failed {
            self.counters.after_failure += 1;
            return Event::Dropped(DropReason::Finished);
        }
        self.stats.touch(now_ns);
        if packet.is_control() {
            self.on_control(packet.payload())
        } else {
            self.on_data(packet.blockno(), packet.payload())
        }
    }

    fn fail(&mut self, f: Failure) -> Event {
        self.state = State::Failed;
        self.failure = Some(f);
        Event::Failed(f)
    }

    fn on_control(&mut self, payload: &[u8]) -> Event {
        match Control::parse(payload) {
            Control::Meta(m) => {
                self.counters.metas += 1;
                if self.info.is_some() {
                    return if payload == &self.meta[..self.meta_len] {
                        Event::MetaRepeat
                    } else {
                        self.fail(Failure::MetaConflict)
                    };
                }
                if m.blocksz == 0 {
                    self.counters.bad_control += 1;
                    return Event::Dropped(DropReason::BadMeta);
                }
                let count = m.block_count();
                if count > Self::CAPACITY {
                    return self.fail(Failure::TooManyBlocks {
                        blocks: count,
                        capacity: Self::CAPACITY,
                    });
                }
                let size = m.file_size();
                if let Err(e) = self.sink.set_len(size) {
                    return self.fail(Failure::Sink(*e.kind()));
                }
                self.meta[..payload.len()].copy_from_slice(payload);
                self.meta_len = payload.len();
                self.sink_hashes = self.sink.hashes();
                self.in_place =
                    !self.sink_hashes && self.hash_pass > 0 && self.sink.stored(0, 0).is_some();
                self.info = Some(MetaRepr { name: &[], ..m });
                self.state = State::Receiving;
                if count == 0 {
                    return self.finish();
                }
                Event::Meta {
                    blocks: count,
                    size,
                }
            }
            Control::End => {
                let missing = self.block_count() - self.have_count;
                if self.state != State::Complete && (missing > 0 || self.info.is_none()) {
                    self.state = State::Incomplete;
                }
                Event::End { missing }
            }
            Control::Unknown(_) => {
                self.counters.bad_control += 1;
                Event::Dropped(
                    if payload.first() == Some(&crate::dttk::wire::control::META) {
                        DropReason::BadMeta
                    } else {
                        DropReason::UnknownControl
                    },
                )
            }
        }
    }

    fn on_data(&mut self, blockno: u16, payload: &[u8]) -> Event {
        let Some(info) = self.info else {
            self.counters.no_meta += 1;
            return Event::Dropped(DropReason::NoMeta);
        };
        let n = blockno as u32;
        let Some(want) = info.block_len(n) else {
            self.counters.out_of_range += 1;
            return Event::Dropped(DropReason::OutOfRange);
        };
        if payload.len() != want {
            self.counters.wrong_block_length += 1;
            return Event::Dropped(DropReason::WrongBlockLength);
        }
        if self.has_block(n) {
            self.counters.duplicates += 1;
            return Event::Duplicate { blockno };
        }
        let offset = n as u64 * info.blocksz as u64;
        if let Err(e) = stage!(
            "receiver::store",
            bytes = payload.len(),
            self.sink.write_at(offset, payload)
        ) {
            return self.fail(Failure::Sink(*e.kind()));
        }
        self.have[(n / 8) as usize] |= 1 << (n % 8);
        self.have_count += 1;
        self.stats.blocks += 1;
        self.stats.bytes += payload.len() as u64;
        if n == self.hashed && (self.in_place || self.sink_hashes) {
            self.hashed += 1;
            while info.block_len(self.hashed).is_some() && self.has_block(self.hashed) {
                self.hashed += 1;
            }
            if self.sink_hashes {
                let end = (self.hashed as u64 * info.blocksz as u64).min(info.file_size());
                if end - self.hashed_bytes >= self.hash_pass {
                    self.sink.hash_upto(end);
                    self.hashed_bytes = end;
                }
            } else if let Err(f) = self.hash_in_place(&info, self.hash_pass) {
                return self.fail(f);
            }
        } else if n == self.hashed {
            stage!(
                "receiver::sha256",
                bytes = payload.len(),
                self.hasher.update(payload)
            );
            self.hashed += 1;
            if let Err(f) = self.hash_ahead(&info) {
                return self.fail(f);
            }
        }
        if self.have_count == info.block_count() {
            return self.finish();
        }
        Event::Block {
            blockno,
            len: want as u8,
        }
    }

    /// Hash blocks already stored beyond the in-order point.
    fn hash_ahead(&mut self, info: &MetaRepr<'_>) -> Result<(), Failure> {
        let mut buf = [0u8; MAX_PAYLOAD];
        while let Some(len) = info.block_len(self.hashed) {
            let n = self.hashed;
            if !self.has_block(n) {
                break;
            }
            let b = &mut buf[..len];
            self.sink
                .read_at(n as u64 * info.blocksz as u64, b)
                .map_err(|e| Failure::Sink(*e.kind()))?;
            stage!("receiver::sha256", bytes = len, self.hasher.update(&*b));
            self.hashed += 1;
        }
        Ok(())
    }

    /// Hashing in place: hash the held prefix beyond what is hashed, once
    /// it is at least `min` bytes.
    fn hash_in_place(&mut self, info: &MetaRepr<'_>, min: u64) -> Result<(), Failure> {
        let end = (self.hashed as u64 * info.blocksz as u64).min(info.file_size());
        let len = end - self.hashed_bytes;
        if len == 0 || len < min {
            return Ok(());
        }
        let at = self.hashed_bytes;
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|n| self.sink.stored(at, n))
            // A sink that lent its bytes at META and no longer does.
            .ok_or(Failure::Sink(crate::ErrorKind::OutOfBounds {
                offset: at,
                len: len as usize,
                size: info.file_size(),
            }))?;
        stage!(
            "receiver::sha256",
            bytes = bytes.len(),
            self.hasher.update(bytes)
        );
        self.hashed_bytes = end;
        Ok(())
    }

    fn finish(&mut self) -> Event {
        let Some(info) = self.info else {
            return Event::Dropped(DropReason::NoMeta);
        };
        let digest: [u8; 32] = if self.sink_hashes {
            self.sink.hash_upto(info.file_size());
            match self.sink.digest() {
                Some(d) => d,
                None => {
                    return self.fail(Failure::Sink(crate::ErrorKind::Io {
                        op: "hashing the received file",
                        code: None,
                    }))
                }
            }
        } else {
            if self.in_place {
                if let Err(f) = self.hash_in_place(&info, 0) {
                    return self.fail(f);
                }
            }
            core::mem::take(&mut self.hasher).finalize().into()
        };
        if digest == info.sha256 {
            self.state = State::Complete;
            Event::Complete {
                size: info.file_size(),
            }
        } else {
            self.fail(Failure::ShaMismatch)
        }
    }
}

/// The link-level part of handling a message, shared by [`Receiver`] and
/// [`Mux`]: count it, check its length and CRC, and note a sequence gap.
/// A message that fails a check comes back as the event that drops it.
fn check_link<'m, P: PacketFormat>(
    link: &mut LinkCounters,
    expected_seq: &mut Option<u8>,
    msg: &'m [u8],
) -> Result<P::Packet<'m>, Event> {
    link.messages += 1;
    let Ok(packet) = stage!("receiver::parse", P::packet(msg)) else {
        link.bad_lengths += 1;
        return Err(Event::Dropped(DropReason::BadLength));
    };
    if stage!("receiver::crc_check", packet.verify()).is_err() {
        link.crc_errors += 1;
        return Err(Event::Dropped(DropReason::Crc));
    }
    let seq = packet.seqno();
    if expected_seq.is_some_and(|e| e != seq) {
        link.seq_gaps += 1;
    }
    *expected_seq = Some(seq.wrapping_add(1));
    Ok(packet)
}

/// One transfer's receiving side. `K` is the sink, `B` the bitmap size in
/// bytes (capacity `8 * B` blocks), `F` the framing of byte streams and `P`
/// the link message format.
pub struct Receiver<K, const B: usize = 8192, F = Framing, P = LinkMessage> {
    core: Core<K, B>,
    deframer: Deframer<RX_BUFFER, F, P>,
}

impl<K: Sink, const B: usize, F: Deframe> Receiver<K, B, F, LinkMessage> {
    /// A receiver of dttk link messages for transfers on `channel` (0..=127;
    /// the control channel is `0x80 | channel`) writing into `sink`;
    /// `framing` is used by [`Receiver::on_bytes`].
    pub fn new(channel: u8, sink: K, framing: F) -> Self {
        Self::for_format(channel, sink, framing)
    }
}

impl<K: Sink, const B: usize, F: Deframe, P: PacketFormat> Receiver<K, B, F, P> {
    /// As [`Receiver::new`], for link messages of format `P`.
    pub fn for_format(channel: u8, sink: K, framing: F) -> Self {
        Receiver {
            core: Core::new(channel, sink),
            deframer: Deframer::for_format(framing),
        }
    }

    /// Block capacity (`8 * B`).
    pub const CAPACITY: u32 = Core::<K, B>::CAPACITY;

    /// Hashes a sink that lends its bytes in passes of `bytes` (default
    /// [`HASH_PASS`]); 0 hashes each block as it arrives, as for any other
    /// sink. A device that polls its link between messages wants 0: a pass
    /// holds its loop for the whole pass (4 KiB is about 5 ms on an
    /// RP2040), far longer than its UART's FIFO lasts at speed.
    pub fn with_hash_pass(mut self, bytes: u64) -> Self {
        self.core.hash_pass = bytes;
        self
    }

    /// The channel id.
    pub fn channel(&self) -> u8 {
        self.core.channel
    }
    /// Transfer state.
    pub fn state(&self) -> State {
        self.core.state
    }
    /// Why the transfer failed, once it has.
    pub fn failure(&self) -> Option<Failure> {
        self.core.failure
    }
    /// Counters.
    pub fn counters(&self) -> &ReceiverCounters {
        &self.core.counters
    }
    /// Deframer counters (byte streams).
    pub fn deframer_stats(&self) -> &DeframerStats {
        self.deframer.stats()
    }
    /// Distinct blocks and bytes stored, first/last message time.
    pub fn stats(&self) -> &TransferStats {
        &self.core.stats
    }
    /// The accepted META, if any.
    pub fn meta(&self) -> Option<MetaRepr<'_>> {
        self.core.meta()
    }
    /// Blocks announced by META (0 before META).
    pub fn block_count(&self) -> u32 {
        self.core.block_count()
    }
    /// Blocks stored.
    pub fn blocks_held(&self) -> u32 {
        self.core.have_count
    }
    /// True if block `n` is stored.
    pub fn has_block(&self, n: u32) -> bool {
        self.core.has_block(n)
    }
    /// Block numbers still missing (empty before META).
    pub fn missing_blocks(&self) -> MissingBlocks<'_, K, B> {
        self.core.missing_blocks()
    }
    /// The sink.
    pub fn sink(&self) -> &K {
        &self.core.sink
    }
    /// Give the sink back.
    pub fn into_sink(self) -> K {
        self.core.sink
    }

    /// Handle one link message received at `now_ns`.
    pub fn on_message(&mut self, msg: &[u8], now_ns: u64) -> Event {
        self.core.on_message::<P>(msg, now_ns)
    }

    /// Feed stream bytes received at `now_ns`; each complete frame goes
    /// through [`Receiver::on_message`] (straight from the deframer's
    /// buffer) and its event to `on_event`.
    pub fn on_bytes(&mut self, bytes: &[u8], now_ns: u64, on_event: &mut impl FnMut(Event)) {
        self.on_bytes_shared(bytes, now_ns, &mut |_| false, on_event);
    }

    /// [`Receiver::on_bytes`] on a stream shared with another protocol (a
    /// device's control channel): each frame is offered to `claim` first,
    /// and one it takes (returns `true`) never reaches the receiver, so it
    /// counts neither as a message nor as a sequence gap.
    pub fn on_bytes_shared(
        &mut self,
        mut bytes: &[u8],
        now_ns: u64,
        claim: &mut impl FnMut(&[u8]) -> bool,
        on_event: &mut impl FnMut(Event),
    ) {
        while let Some(frame) = self.deframer.decode(&mut bytes) {
            if !claim(frame) {
                on_event(self.core.on_message::<P>(frame, now_ns));
            }
        }
    }

    /// Handle a message whose length and CRC are verified and whose channel
    /// id is this receiver's.
    pub fn on_verified<V: PacketView>(&mut self, packet: &V, now_ns: u64) -> Event {
        self.core.on_verified(packet, now_ns)
    }
}

/// Iterator over missing block numbers.
pub struct MissingBlocks<'a, K, const B: usize> {
    rx: &'a Core<K, B>,
    next: u32,
    end: u32,
}

impl<K: Sink, const B: usize> Iterator for MissingBlocks<'_, K, B> {
    type Item = u32;
    fn next(&mut self) -> Option<u32> {
        while self.next < self.end {
            let n = self.next;
            self.next += 1;
            if !self.rx.has_block(n) {
                return Some(n);
            }
        }
        None
    }
}

/// Several transfers over one link: `C` receivers, each on its own channel,
/// with link counters and one deframer shared by the link.
pub struct Mux<K, const C: usize, const B: usize = 8192, F = Framing, P = LinkMessage> {
    core: MuxCore<K, C, B, F, P>,
    deframer: Deframer<RX_BUFFER, F, P>,
}

struct MuxCore<K, const C: usize, const B: usize, F, P> {
    receivers: [Receiver<K, B, F, P>; C],
    link: LinkCounters,
    expected_seq: Option<u8>,
}

impl<K: Sink, const C: usize, const B: usize, F: Deframe, P: PacketFormat> Mux<K, C, B, F, P> {
    /// Multiplex `receivers` (give each a distinct channel; the first one
    /// listening on a channel gets its messages).
    pub fn new(receivers: [Receiver<K, B, F, P>; C], framing: F) -> Self {
        Mux {
            core: MuxCore {
                receivers,
                link: LinkCounters::default(),
                expected_seq: None,
            },
            deframer: Deframer::for_format(framing),
        }
    }

    /// Link counters (CRC errors, gaps, unknown channels, ...).
    pub fn link_counters(&self) -> &LinkCounters {
        &self.core.link
    }
    /// Deframer counters.
    pub fn deframer_stats(&self) -> &DeframerStats {
        self.deframer.stats()
    }
    /// The receivers.
    pub fn receivers(&self) -> &[Receiver<K, B, F, P>; C] {
        &self.core.receivers
    }
    /// The receiver for `channel`.
    pub fn receiver(&self, channel: u8) -> Option<&Receiver<K, B, F, P>> {
        self.core
            .receivers
            .iter()
            .find(|r| r.core.channel == channel)
    }
    /// Give the receivers back.
    pub fn into_receivers(self) -> [Receiver<K, B, F, P>; C] {
        self.core.receivers
    }

    /// Handle one link message; returns the channel it went to (if any) and
    /// the event.
    pub fn on_message(&mut self, msg: &[u8], now_ns: u64) -> (Option<u8>, Event) {
        self.core.on_message(msg, now_ns)
    }

    /// Feed stream bytes; events go to `on_event` with their channel.
    pub fn on_bytes(
        &mut self,
        mut bytes: &[u8],
        now_ns: u64,
        on_event: &mut impl FnMut(Option<u8>, Event),
    ) {
        while let Some(frame) = self.deframer.decode(&mut bytes) {
            let (ch, ev) = self.core.on_message(frame, now_ns);
            on_event(ch, ev);
        }
    }
}

impl<K: Sink, const C: usize, const B: usize, F: Deframe, P: PacketFormat> MuxCore<K, C, B, F, P> {
    /// Handle one link message; returns the channel it went to (if any) and
    /// the event.
    pub fn on_message(&mut self, msg: &[u8], now_ns: u64) -> (Option<u8>, Event) {
        let packet = match check_link::<P>(&mut self.link, &mut self.expected_seq, msg) {
            Ok(p) => p,
            Err(dropped) => return (None, dropped),
        };
        let ch = packet.channel_id();
        match self.receivers.iter_mut().find(|r| r.core.channel == ch) {
            Some(rx) => {
                rx.core.counters.link.messages += 1;
                (Some(ch), rx.on_verified(&packet, now_ns))
            }
            None => {
                self.link.other_channel += 1;
                (None, Event::Dropped(DropReason::OtherChannel))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dttk::wire::{self, EndRepr};
    use crate::io::MemorySink;

    fn msg(out: &mut [u8; 256], seq: u8, chn: u8, block: u16, payload: &[u8]) -> usize {
        wire::build(out, seq, chn, block, payload.len(), |p| {
            p.copy_from_slice(payload);
            Ok(())
        })
        .unwrap()
    }

    fn meta(out: &mut [u8; 256], chn: u8, data: &[u8], bs: u8) -> usize {
        use sha2::Digest;
        let sha: [u8; 32] = Sha256::digest(data).into();
        let m = MetaRepr::for_file(data.len() as u64, bs, sha, b"t").unwrap();
        let mut p = [0u8; MAX_PAYLOAD];
        m.emit(&mut p).unwrap();
        msg(out, 0, chn | CONTROL_BIT, 0, &p[..m.buffer_len()])
    }

    /// A memory sink that lends its bytes or keeps them to itself (as a
    /// file does, so the receiver hashes block by block), and counts how
    /// often it is asked to lend.
    struct Lending {
        sink: MemorySink<std::vec::Vec<u8>>,
        lends: bool,
        asked: core::cell::Cell<u32>,
    }

    impl Lending {
        fn new(len: usize, lends: bool) -> Self {
            Lending {
                sink: MemorySink::new(std::vec![0u8; len]),
                lends,
                asked: Default::default(),
            }
        }
    }

    impl Sink for Lending {
        fn set_len(&mut self, len: u64) -> crate::Result<()> {
            self.sink.set_len(len)
        }
        fn write_at(&mut self, offset: u64, data: &[u8]) -> crate::Result<()> {
            self.sink.write_at(offset, data)
        }
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> crate::Result<()> {
            self.sink.read_at(offset, buf)
        }
        fn stored(&self, offset: u64, len: usize) -> Option<&[u8]> {
            self.asked.set(self.asked.get() + 1);
            self.sink.stored(offset, len).filter(|_| self.lends)
        }
    }

    /// Delivers `data` in 200-byte blocks in a scrambled order (META first),
    /// with block `flip` damaged in a way the CRC does not see; returns the
    /// last event.
    fn scrambled<K: Sink>(sink: K, data: &[u8], flip: Option<u16>) -> (Event, K) {
        scrambled_with(Receiver::new(0, sink, Framing::Dttk), data, flip)
    }

    fn scrambled_with<K: Sink>(
        mut rx: Receiver<K, 64>,
        data: &[u8],
        flip: Option<u16>,
    ) -> (Event, K) {
        let mut m = [0u8; 256];
        let n = meta(&mut m, 0, data, 200);
        assert!(matches!(rx.on_message(&m[..n], 0), Event::Meta { .. }));
        let blocks = data.len().div_ceil(200) as u16;
        let mut last = Event::MetaRepeat;
        // Every 7th block, then the rest: a gap that fills late, passes
        // that start mid-file, and in-order runs.
        let order = (0..blocks)
            .step_by(7)
            .chain((0..blocks).filter(|b| b % 7 != 0));
        for (seq, b) in order.enumerate() {
            let start = b as usize * 200;
            let mut payload = data[start..(start + 200).min(data.len())].to_vec();
            if flip == Some(b) {
                payload[3] ^= 0x40;
            }
            let n = msg(&mut m, seq as u8 + 1, 0, b, &payload);
            last = rx.on_message(&m[..n], 0);
        }
        (last, rx.into_sink())
    }

    #[test]
    fn a_hash_pass_of_zero_hashes_a_lending_sink_block_by_block() {
        let data: std::vec::Vec<u8> = (0..20_345u32).map(|i| (i * 31 % 251) as u8).collect();
        for (pass, flip) in [(0, None), (0, Some(50)), (HASH_PASS, None)] {
            let rx = Receiver::new(0, Lending::new(data.len(), true), Framing::Dttk)
                .with_hash_pass(pass);
            let (ev, sink) = scrambled_with(rx, &data, flip);
            match flip {
                None => assert_eq!(
                    ev,
                    Event::Complete {
                        size: data.len() as u64
                    }
                ),
                Some(_) => assert_eq!(ev, Event::Failed(Failure::ShaMismatch)),
            }
            // Passes borrow the sink's bytes; block by block never does.
            assert_eq!(sink.asked.get() == 0, pass == 0, "pass {pass}");
        }
    }

    #[test]
    fn in_place_and_per_block_hashing_agree() {
        let data: std::vec::Vec<u8> = (0..20_345u32).map(|i| (i * 37 % 253) as u8).collect();
        let size = data.len() as u64;
        let lent = MemorySink::new(std::vec![0u8; data.len()]);
        let (ev, lent) = scrambled(lent, &data, None);
        assert_eq!(ev, Event::Complete { size });
        assert_eq!(lent.data(), &data[..]);
        let (ev, _) = scrambled(Lending::new(data.len(), false), &data, None);
        assert_eq!(ev, Event::Complete { size });
        // Damage in the middle of a pass and in the last block.
        for flip in [50, 101] {
            let (ev, _) = scrambled(
                MemorySink::new(std::vec![0u8; data.len()]),
                &data,
                Some(flip),
            );
            assert_eq!(ev, Event::Failed(Failure::ShaMismatch), "block {flip}");
        }
    }

    #[test]
    fn drops_are_counted_and_blocks_tracked() {
        let data = b"abcdefghij";
        let mut rx: Receiver<_, 1> = Receiver::new(3, MemorySink::new([0u8; 16]), Framing::Dttk);
        let mut m = [0u8; 256];
        let n = msg(&mut m, 0, 3, 0, b"abcd");
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Dropped(DropReason::NoMeta)
        );
        let n = meta(&mut m, 3, data, 4);
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Meta {
                blocks: 3,
                size: 10
            }
        );
        let n = msg(&mut m, 2, 3, 3, b"ab");
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Dropped(DropReason::OutOfRange)
        );
        let n = msg(&mut m, 3, 3, 1, b"efg");
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Dropped(DropReason::WrongBlockLength)
        );
        let n = msg(&mut m, 4, 3, 2, b"ij");
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Block { blockno: 2, len: 2 }
        );
        assert_eq!(rx.on_message(&m[..n], 0), Event::Duplicate { blockno: 2 });
        let n = msg(&mut m, 5, 4, 0, b"abcd");
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Dropped(DropReason::OtherChannel)
        );
        let n = wire::build(&mut m, 6, 0x83, 0, 1, |p| EndRepr.emit(p)).unwrap();
        assert_eq!(rx.on_message(&m[..n], 0), Event::End { missing: 2 });
        assert_eq!(rx.state(), State::Incomplete);
        let mut missing = [0u32; 4];
        let k = rx
            .missing_blocks()
            .zip(missing.iter_mut())
            .map(|(b, s)| *s = b)
            .count();
        assert_eq!(&missing[..k], &[0, 1]);
        // Late blocks still complete the file; block 1 is hashed from the
        // sink after block 0 fills the gap.
        let n = msg(&mut m, 7, 3, 0, b"abcd");
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Block { blockno: 0, len: 4 }
        );
        let n = msg(&mut m, 8, 3, 1, b"efgh");
        assert_eq!(rx.on_message(&m[..n], 0), Event::Complete { size: 10 });
        assert_eq!(rx.sink().data(), data);
        let c = rx.counters();
        assert_eq!(
            (
                c.no_meta,
                c.out_of_range,
                c.wrong_block_length,
                c.duplicates
            ),
            (1, 1, 1, 1)
        );
        assert_eq!(c.link.other_channel, 1);
        // seq 0,0,2,3,4,4,5,... : 0->0 and 4->4 and 0->2 are gaps.
        assert_eq!(c.link.seq_gaps, 3);
    }

    #[test]
    fn capacity_and_damage_never_panic() {
        let mut rx: Receiver<_, 1> = Receiver::new(0, MemorySink::new([0u8; 64]), Framing::Dttk);
        let mut m = [0u8; 256];
        let n = meta(&mut m, 0, &[7u8; 40], 4); // 10 blocks > 8
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Failed(Failure::TooManyBlocks {
                blocks: 10,
                capacity: 8
            })
        );
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Dropped(DropReason::Finished)
        );
        let mut rx: Receiver<_, 8> = Receiver::new(0, MemorySink::new([0u8; 4]), Framing::Dttk);
        assert!(matches!(
            rx.on_message(&m[..n], 0),
            Event::Failed(Failure::Sink(_))
        ));
        // The receiver says why it failed, not a guess between two causes.
        let mut why = std::string::String::new();
        core::fmt::write(&mut why, format_args!("{}", rx.failure().unwrap())).unwrap();
        assert!(
            why.starts_with("the output refused the file META describes"),
            "{why}"
        );
        let mut rx: Receiver<_, 8> = Receiver::new(0, MemorySink::new([0u8; 64]), Framing::Dttk);
        assert_eq!(rx.on_message(&[], 0), Event::Dropped(DropReason::BadLength));
        m[n - 1] ^= 1;
        assert_eq!(rx.on_message(&m[..n], 0), Event::Dropped(DropReason::Crc));
        let n = msg(&mut m, 0, 0x80, 0, &[0x01; 20]);
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Dropped(DropReason::BadMeta)
        );
        let n = msg(&mut m, 0, 0x80, 0, &[0x42]);
        assert_eq!(
            rx.on_message(&m[..n], 0),
            Event::Dropped(DropReason::UnknownControl)
        );
    }

    #[test]
    fn mux_counts_unknown_channels() {
        let mut mux: Mux<_, 2, 1> = Mux::new(
            [
                Receiver::new(1, MemorySink::new([0u8; 8]), Framing::Dttk),
                Receiver::new(2, MemorySink::new([0u8; 8]), Framing::Dttk),
            ],
            Framing::Dttk,
        );
        let mut m = [0u8; 256];
        let n = meta(&mut m, 2, b"xy", 2);
        assert_eq!(
            mux.on_message(&m[..n], 0),
            (Some(2), Event::Meta { blocks: 1, size: 2 })
        );
        let n = msg(&mut m, 1, 9, 0, b"xy");
        assert_eq!(
            mux.on_message(&m[..n], 0),
            (None, Event::Dropped(DropReason::OtherChannel))
        );
        assert_eq!(mux.link_counters().other_channel, 1);
        assert_eq!(mux.receiver(1).unwrap().state(), State::WaitMeta);
    }
}
