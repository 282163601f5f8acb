//! The dttk link message (`docs/specs/dttk-wire.md` sections 1-3), smoltcp style.
//!
//! ```text
//! offset  size  field
//! 0       1     len      bytes after this one (message = len + 1 bytes)
//! 1       1     seqno    +1 per message, modulo 256
//! 2       1     chn      bit 7 = control; low 7 bits = channel id
//! 3       2     blockno  big-endian u16 (0 for control messages)
//! 5       n     payload  0..=249 bytes
//! 5+n     2     crc      big-endian CRC-16/SPI-FUJITSU over bytes 0..5+n
//! ```
//!
//! Contract: once [`Packet::new_checked`] succeeds no getter panics, and
//! [`Repr::emit`] never panics on a buffer of [`Repr::buffer_len`] bytes.
//! Control payloads (META, END) have their own [`MetaRepr`] and [`EndRepr`].

use core::fmt;

use crate::buffer::{Buffer, NoRoom};
use crate::error::{Error, ErrorKind, Result};

/// CRC-16/SPI-FUJITSU (a.k.a. CRC-16/AUG-CCITT), the profile's checksum.
///
/// Four implementations: the `crc` crate's three table variants, portable
/// and the reference, and on x86_64 a carry-less-multiplication (PCLMULQDQ)
/// folding path ([`clmul`](self::crc::clmul), in `dttk/wire/crc_clmul.rs`).
/// Measured on the development host (2-core AMD EPYC VM, shared;
/// `cargo bench -p perfkit-stack --bench stages -- crc16`):
///
/// | variant | 50 B | 249 B | 64 KiB |
/// |---|---|---|---|
/// | [`clmul`](self::crc::clmul) | 5.0 GiB/s | 8.1 GiB/s | 13.2 GiB/s |
/// | [`SLICE16`](self::crc::SLICE16) | 2.7 GiB/s | 3.0 GiB/s | 4.1 GiB/s |
/// | [`TABLE1`](self::crc::TABLE1) | 460 MiB/s | 410 MiB/s | 400 MiB/s |
/// | [`NOTABLE`](self::crc::NOTABLE) | 100 MiB/s | 100 MiB/s | 100 MiB/s |
///
/// [`crc16`] picks, in this order:
///
/// 1. `crc-notable` (firmware): no table; else `crc-table1`: one table.
/// 2. On x86_64, when CPUID reports PCLMULQDQ, SSSE3 and SSE4.1 (asked once,
///    then cached: one relaxed atomic load per call) and the input is at
///    least 16 bytes: folding. Below 16 bytes there is no block to fold;
///    from 16 bytes up folding measured faster at every length tried
///    (4.6 ns against 7.0 ns at 16 bytes, 5.8 against 10.6 at 32).
/// 3. Otherwise slice-by-16.
///
/// End to end (`e2e/Dttk/249`, two CRC passes per 254-byte message) the
/// folding path took the pipeline from 554 to 453 ns per message (419 to
/// 513 MiB/s of payload).
///
/// On an RP2040 the trade-off is memory: [`SLICE16`](self::crc::SLICE16)
/// keeps 16 x 256 x 2 = 8 KiB of tables in flash (the Cortex-M0+ executes
/// from XIP flash through a 16 KiB cache, so a large table competes with code
/// for cache), [`TABLE1`](self::crc::TABLE1) 512 bytes,
/// [`NOTABLE`](self::crc::NOTABLE) none at roughly 8 shifts per byte; the
/// firmware selects a smaller variant with the `crc-table1` or `crc-notable`
/// feature (`crc-notable` wins when both are on); unused statics are dropped
/// by the linker. Nothing x86-specific is compiled for other architectures.
pub mod crc {
    use crc::{Crc, NoTable, Table, CRC_16_SPI_FUJITSU};

    /// Slice-by-16 tables (8 KiB).
    pub static SLICE16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_SPI_FUJITSU);
    /// One 256-entry table (512 bytes).
    pub static TABLE1: Crc<u16, Table<1>> = Crc::<u16, Table<1>>::new(&CRC_16_SPI_FUJITSU);
    /// Bitwise, no table.
    pub static NOTABLE: Crc<u16, NoTable> = Crc::<u16, NoTable>::new(&CRC_16_SPI_FUJITSU);

    /// Carry-less multiplication (x86_64 PCLMULQDQ with SSSE3 and SSE4.1):
    /// `Some(crc)` when the CPU has them, `None` on other CPUs and
    /// architectures. Inputs shorter than 16 bytes are computed with
    /// [`SLICE16`] inside. Independent of the `crc-*` features.
    #[inline]
    pub fn clmul(bytes: &[u8]) -> Option<u16> {
        #[cfg(target_arch = "x86_64")]
        if super::crc_clmul::supported() {
            return Some(
                super::crc_clmul::checksum(bytes).unwrap_or_else(|| SLICE16.checksum(bytes)),
            );
        }
        let _ = bytes;
        None
    }

    /// The profile's CRC with the variant selected at build time (and, on
    /// x86_64 hosts, at run time: see the module documentation).
    #[inline]
    pub fn crc16(bytes: &[u8]) -> u16 {
        #[cfg(feature = "crc-notable")]
        {
            NOTABLE.checksum(bytes)
        }
        #[cfg(all(feature = "crc-table1", not(feature = "crc-notable")))]
        {
            TABLE1.checksum(bytes)
        }
        #[cfg(not(any(feature = "crc-table1", feature = "crc-notable")))]
        {
            #[cfg(target_arch = "x86_64")]
            if let Some(c) = super::crc_clmul::checksum(bytes) {
                return c;
            }
            SLICE16.checksum(bytes)
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod crc_clmul;

pub use crc::crc16;

mod field {
    use core::ops::{Range, RangeFrom};
    pub const LEN: usize = 0;
    pub const SEQNO: usize = 1;
    pub const CHN: usize = 2;
    pub const BLOCKNO: Range<usize> = 3..5;
    pub const PAYLOAD: RangeFrom<usize> = 5..;
}

/// Header bytes before the payload.
pub const HEADER_LEN: usize = 5;
/// CRC trailer bytes.
pub const CRC_LEN: usize = 2;
/// Total per-message overhead.
pub const OVERHEAD: usize = HEADER_LEN + CRC_LEN;
/// Largest payload (len byte = payload + 6 <= 255).
pub const MAX_PAYLOAD: usize = 249;
/// Largest link message.
pub const MAX_MESSAGE: usize = MAX_PAYLOAD + OVERHEAD;
/// Bit 7 of `chn`: control channel.
pub const CONTROL_BIT: u8 = 0x80;

/// A read/write view of a link message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap without checking; getters may panic on a short buffer.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wrap and check lengths; after success no getter panics.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Packet::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The buffer is at least 7 bytes and exactly `len + 1` bytes long.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < OVERHEAD {
            return Err(ErrorKind::Truncated {
                len: b.len(),
                need: OVERHEAD,
            }
            .into());
        }
        let declared = b[field::LEN] as usize + 1;
        if declared != b.len() {
            return Err(ErrorKind::BadLength {
                declared,
                actual: b.len(),
            }
            .into());
        }
        Ok(())
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The len byte (bytes after it).
    pub fn len_field(&self) -> u8 {
        self.buffer.as_ref()[field::LEN]
    }

    /// Link sequence number.
    pub fn seqno(&self) -> u8 {
        self.buffer.as_ref()[field::SEQNO]
    }

    /// Raw channel byte.
    pub fn chn(&self) -> u8 {
        self.buffer.as_ref()[field::CHN]
    }

    /// True for a control-channel message.
    pub fn is_control(&self) -> bool {
        self.chn() & CONTROL_BIT != 0
    }

    /// Channel id (low 7 bits).
    pub fn channel_id(&self) -> u8 {
        self.chn() & !CONTROL_BIT
    }

    /// Block number.
    pub fn blockno(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::BLOCKNO];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// Payload bytes.
    pub fn payload(&self) -> &[u8] {
        let b = self.buffer.as_ref();
        &b[field::PAYLOAD.start..b.len() - CRC_LEN]
    }

    /// CRC trailer as received.
    pub fn crc(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[b.len() - 2], b[b.len() - 1]])
    }

    /// CRC computed over header and payload.
    pub fn compute_crc(&self) -> u16 {
        let b = self.buffer.as_ref();
        let body = &b[..b.len() - CRC_LEN];
        stage!("wire::crc16", bytes = body.len(), crc16(body))
    }

    /// Check the CRC trailer.
    pub fn verify_crc(&self) -> Result<()> {
        let computed = self.compute_crc();
        let received = self.crc();
        if computed == received {
            Ok(())
        } else {
            Err(ErrorKind::Crc { computed, received }.into())
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the len byte.
    pub fn set_len_field(&mut self, v: u8) {
        self.buffer.as_mut()[field::LEN] = v;
    }
    /// Set the sequence number.
    pub fn set_seqno(&mut self, v: u8) {
        self.buffer.as_mut()[field::SEQNO] = v;
    }
    /// Set the raw channel byte.
    pub fn set_chn(&mut self, v: u8) {
        self.buffer.as_mut()[field::CHN] = v;
    }
    /// Set the block number.
    pub fn set_blockno(&mut self, v: u16) {
        self.buffer.as_mut()[field::BLOCKNO].copy_from_slice(&v.to_be_bytes());
    }
    /// Payload bytes, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let b = self.buffer.as_mut();
        let end = b.len() - CRC_LEN;
        &mut b[field::PAYLOAD.start..end]
    }
    /// Compute and write the CRC trailer.
    pub fn fill_crc(&mut self) {
        let c = self.compute_crc();
        let b = self.buffer.as_mut();
        let n = b.len();
        b[n - 2..].copy_from_slice(&c.to_be_bytes());
    }
}

/// High-level view of a link message header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Sequence number.
    pub seqno: u8,
    /// Raw channel byte (bit 7 = control).
    pub chn: u8,
    /// Block number (0 for control).
    pub blockno: u16,
    /// Payload length, 0..=249.
    pub payload_len: usize,
}

impl Repr {
    /// Parse a checked packet, verifying its CRC.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr> {
        packet.check_len()?;
        packet.verify_crc()?;
        Ok(Repr {
            seqno: packet.seqno(),
            chn: packet.chn(),
            blockno: packet.blockno(),
            payload_len: packet.payload().len(),
        })
    }

    /// Message length for this header.
    pub const fn buffer_len(&self) -> usize {
        self.payload_len + OVERHEAD
    }

    /// Write the header into `packet` (whose buffer is `buffer_len()` bytes);
    /// the caller fills the payload, then calls [`Packet::fill_crc`].
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        packet.set_len_field((self.payload_len + OVERHEAD - 1) as u8);
        packet.set_seqno(self.seqno);
        packet.set_chn(self.chn);
        packet.set_blockno(self.blockno);
    }
}

impl fmt::Display for Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "dttk seq={} chn={:#04x} block={} len={}",
            self.seqno, self.chn, self.blockno, self.payload_len
        )
    }
}

fn no_room(e: NoRoom) -> Error {
    ErrorKind::BufferTooSmall {
        need: e.wanted,
        have: e.available,
    }
    .into()
}

/// Turn the payload in `buf`'s window into a link message in place: the
/// header goes into the headroom (at least [`HEADER_LEN`] bytes) and the CRC
/// into the tailroom (at least [`CRC_LEN`]); the payload does not move.
pub fn encapsulate<S: AsRef<[u8]> + AsMut<[u8]>>(
    buf: &mut Buffer<S>,
    seqno: u8,
    chn: u8,
    blockno: u16,
) -> Result<()> {
    let payload_len = buf.len();
    if payload_len > MAX_PAYLOAD {
        return Err(ErrorKind::PayloadTooLong { len: payload_len }.into());
    }
    if buf.tailroom() < CRC_LEN {
        return Err(no_room(NoRoom {
            wanted: CRC_LEN,
            available: buf.tailroom(),
        }));
    }
    // `?` outside the measured body: the body may be a function of its own
    // (perfkit's `outline` feature).
    stage!("sender::add_header", {
        buf.prepend(HEADER_LEN).map(|h| {
            h[field::LEN] = (payload_len + OVERHEAD - 1) as u8;
            h[field::SEQNO] = seqno;
            h[field::CHN] = chn;
            h[field::BLOCKNO].copy_from_slice(&blockno.to_be_bytes());
        })
    })
    .map_err(no_room)?;
    let body = buf.as_slice();
    let crc = stage!("wire::crc16", bytes = body.len(), crc16(body));
    buf.append(CRC_LEN)
        .map_err(no_room)?
        .copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Check the link message in `buf`'s window (length, CRC) and strip header
/// and CRC by moving the window's ends, leaving the payload in place.
pub fn decapsulate<S: AsRef<[u8]> + AsMut<[u8]>>(buf: &mut Buffer<S>) -> Result<Repr> {
    let repr = Repr::parse(&Packet::new_checked(buf.as_slice())?)?;
    buf.strip_front(HEADER_LEN).map_err(no_room)?;
    buf.strip_back(CRC_LEN).map_err(no_room)?;
    Ok(repr)
}

/// Size first, then write in place: build a whole link message in `out`,
/// letting `fill` write the payload directly into its final place (a
/// [`Buffer`] window after [`HEADER_LEN`] bytes of headroom), then add header
/// and CRC around it with [`encapsulate`]. Returns the message length.
pub fn build(
    out: &mut [u8],
    seqno: u8,
    chn: u8,
    blockno: u16,
    payload_len: usize,
    fill: impl FnOnce(&mut [u8]) -> Result<()>,
) -> Result<usize> {
    if payload_len > MAX_PAYLOAD {
        return Err(ErrorKind::PayloadTooLong { len: payload_len }.into());
    }
    let n = payload_len + OVERHEAD;
    let have = out.len();
    let out = out
        .get_mut(..n)
        .ok_or(Error::new(ErrorKind::BufferTooSmall { need: n, have }))?;
    let mut buf = Buffer::new(out, HEADER_LEN);
    fill(buf.append(payload_len).map_err(no_room)?)?;
    encapsulate(&mut buf, seqno, chn, blockno)?;
    Ok(buf.len())
}

/// Control message type numbers (first payload byte).
pub mod control {
    /// File metadata.
    pub const META: u8 = 0x01;
    /// End of transfer.
    pub const END: u8 = 0xFF;
}

/// META payload: `0x01 | u16 nblocks | u8 blocksz | u8 lastblock | sha256[32] | name | 0x00`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaRepr<'a> {
    /// Number of full blocks (`size / blocksz`).
    pub nblocks: u16,
    /// Block size.
    pub blocksz: u8,
    /// Bytes in the final short block (`size % blocksz`), 0 if none.
    pub lastblock: u8,
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
    /// File base name (without the terminating 0x00).
    pub name: &'a [u8],
}

/// Bytes of a META payload before the name.
pub const META_FIXED_LEN: usize = 37;
/// Longest file name that fits in a META message.
pub const MAX_NAME_LEN: usize = MAX_PAYLOAD - META_FIXED_LEN - 1;

impl<'a> MetaRepr<'a> {
    /// Describe a file of `size` bytes sent in blocks of `blocksz`.
    pub fn for_file(size: u64, blocksz: u8, sha256: [u8; 32], name: &'a [u8]) -> Result<Self> {
        if blocksz == 0 || blocksz as usize > MAX_PAYLOAD {
            return Err(Error::config("block_size", "must be in 1..=249"));
        }
        let nblocks = size / blocksz as u64;
        if nblocks > u16::MAX as u64 {
            return Err(ErrorKind::FileTooLarge {
                size,
                block_size: blocksz,
            }
            .into());
        }
        if name.len() > MAX_NAME_LEN {
            return Err(ErrorKind::NameTooLong {
                len: name.len(),
                max: MAX_NAME_LEN,
            }
            .into());
        }
        Ok(MetaRepr {
            nblocks: nblocks as u16,
            blocksz,
            lastblock: (size % blocksz as u64) as u8,
            sha256,
            name,
        })
    }

    /// Parse a control payload whose first byte is META. Payloads shorter
    /// than 37 bytes are rejected (the profile ignores them). The name runs
    /// to the first 0x00 (or the end if the terminator is missing).
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        if payload.len() < META_FIXED_LEN {
            return Err(ErrorKind::Truncated {
                len: payload.len(),
                need: META_FIXED_LEN,
            }
            .into());
        }
        if payload[0] != control::META {
            return Err(Error::config("META", "payload does not start with 0x01"));
        }
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&payload[5..37]);
        let rest = &payload[META_FIXED_LEN..];
        let name = match rest.iter().position(|&b| b == 0) {
            Some(i) => &rest[..i],
            None => rest,
        };
        Ok(MetaRepr {
            nblocks: u16::from_be_bytes([payload[1], payload[2]]),
            blocksz: payload[3],
            lastblock: payload[4],
            sha256,
            name,
        })
    }

    /// Total number of blocks, including a final short one.
    pub fn block_count(&self) -> u32 {
        self.nblocks as u32 + (self.lastblock != 0) as u32
    }

    /// File size in bytes.
    pub fn file_size(&self) -> u64 {
        self.nblocks as u64 * self.blocksz as u64 + self.lastblock as u64
    }

    /// Length of a block's payload, or `None` past the end.
    pub fn block_len(&self, blockno: u32) -> Option<usize> {
        if blockno < self.nblocks as u32 {
            Some(self.blocksz as usize)
        } else if blockno == self.nblocks as u32 && self.lastblock != 0 {
            Some(self.lastblock as usize)
        } else {
            None
        }
    }

    /// Payload length.
    pub fn buffer_len(&self) -> usize {
        META_FIXED_LEN + self.name.len() + 1
    }

    /// Write the payload into `out[..buffer_len()]`.
    pub fn emit(&self, out: &mut [u8]) -> Result<()> {
        let n = self.buffer_len();
        let have = out.len();
        let out = out
            .get_mut(..n)
            .ok_or(Error::new(ErrorKind::BufferTooSmall { need: n, have }))?;
        out[0] = control::META;
        out[1..3].copy_from_slice(&self.nblocks.to_be_bytes());
        out[3] = self.blocksz;
        out[4] = self.lastblock;
        out[5..37].copy_from_slice(&self.sha256);
        out[37..37 + self.name.len()].copy_from_slice(self.name);
        out[n - 1] = 0;
        Ok(())
    }
}

impl fmt::Display for MetaRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "META blocks={} blocksz={} last={} size={} name=",
            self.nblocks,
            self.blocksz,
            self.lastblock,
            self.file_size()
        )?;
        for &b in self.name {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// END payload: the single byte 0xFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndRepr;

impl EndRepr {
    /// Parse an END payload (exactly `[0xFF]`).
    pub fn parse(payload: &[u8]) -> Result<Self> {
        if payload == [control::END] {
            Ok(EndRepr)
        } else {
            Err(ErrorKind::BadLength {
                declared: 1,
                actual: payload.len(),
            }
            .into())
        }
    }
    /// Payload length (1).
    pub const fn buffer_len(&self) -> usize {
        1
    }
    /// Write the payload.
    pub fn emit(&self, out: &mut [u8]) -> Result<()> {
        let have = out.len();
        let b = out
            .first_mut()
            .ok_or(Error::new(ErrorKind::BufferTooSmall { need: 1, have }))?;
        *b = control::END;
        Ok(())
    }
}

/// A parsed control payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control<'a> {
    /// File metadata.
    Meta(MetaRepr<'a>),
    /// End of transfer.
    End,
    /// A type this profile does not define, or a malformed META/END.
    Unknown(u8),
}

impl<'a> Control<'a> {
    /// Classify a control payload; never fails (unknown or malformed
    /// payloads come back as `Unknown` with the type byte, 0 if empty).
    pub fn parse(payload: &'a [u8]) -> Control<'a> {
        match payload.first() {
            Some(&control::META) => match MetaRepr::parse(payload) {
                Ok(m) => Control::Meta(m),
                Err(_) => Control::Unknown(control::META),
            },
            Some(&control::END) if payload.len() == 1 => Control::End,
            Some(&t) => Control::Unknown(t),
            None => Control::Unknown(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value_and_variants_agree() {
        assert_eq!(crc::SLICE16.checksum(b"123456789"), 0xE5CC);
        assert_eq!(crc::TABLE1.checksum(b"123456789"), 0xE5CC);
        assert_eq!(crc::NOTABLE.checksum(b"123456789"), 0xE5CC);
        assert_eq!(crc16(b"123456789"), 0xE5CC);
    }

    #[test]
    fn crc_equals_augmented_ccitt_as_the_spec_describes() {
        // poly 0x1021, init 0xFFFF, MSB first, then 16 zero bits pushed through.
        fn augmented(data: &[u8]) -> u16 {
            let mut reg: u16 = 0xFFFF;
            let bits = data
                .iter()
                .flat_map(|&b| (0..8).rev().map(move |i| (b >> i) & 1))
                .chain(core::iter::repeat_n(0u8, 16));
            for bit in bits {
                let top = reg & 0x8000 != 0;
                reg = (reg << 1) | bit as u16;
                if top {
                    reg ^= 0x1021;
                }
            }
            reg
        }
        for data in [&b"123456789"[..], b"", b"\xff\xfe\x00", &[0xAB; 300]] {
            assert_eq!(augmented(data), crc16(data));
        }
    }

    #[test]
    fn build_parse_roundtrip() {
        let mut out = [0u8; MAX_MESSAGE];
        let n = build(&mut out, 7, 0x05, 0x1234, 3, |p| {
            p.copy_from_slice(b"xyz");
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 10);
        let p = Packet::new_checked(&out[..n]).unwrap();
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr {
                seqno: 7,
                chn: 5,
                blockno: 0x1234,
                payload_len: 3
            }
        );
        assert_eq!(p.payload(), b"xyz");
        let mut bad = out;
        bad[6] ^= 1;
        let p = Packet::new_checked(&bad[..n]).unwrap();
        assert!(matches!(
            Repr::parse(&p).unwrap_err().kind(),
            ErrorKind::Crc { .. }
        ));
    }

    #[test]
    fn encapsulate_and_decapsulate_move_offsets_only() {
        let mut b: Buffer<[u8; 64]> = Buffer::with_headroom(HEADER_LEN);
        b.append(4).unwrap().copy_from_slice(b"data");
        let payload_at = b.headroom();
        encapsulate(&mut b, 3, 0x01, 9).unwrap();
        assert_eq!(b.headroom(), 0);
        assert_eq!(b.len(), 4 + OVERHEAD);
        assert_eq!(&b.as_slice()[..5], &[10, 3, 1, 0, 9]);
        let r = decapsulate(&mut b).unwrap();
        assert_eq!(r.blockno, 9);
        assert_eq!(b.as_slice(), b"data");
        assert_eq!(b.headroom(), payload_at);
        // No headroom: an error, not a panic.
        let mut b: Buffer<[u8; 64]> = Buffer::with_headroom(2);
        b.append(1).unwrap();
        assert!(encapsulate(&mut b, 0, 0, 0).is_err());
    }

    #[test]
    fn oversize_payload_and_short_buffers_are_errors() {
        let mut out = [0u8; 300];
        assert!(build(&mut out, 0, 0, 0, 250, |_| Ok(())).is_err());
        assert!(build(&mut out[..8], 0, 0, 0, 2, |_| Ok(())).is_err());
        assert!(Packet::new_checked(&out[..6]).is_err());
        out[0] = 9;
        assert!(Packet::new_checked(&out[..9]).is_err());
    }

    #[test]
    fn meta_roundtrip_and_limits() {
        let m = MetaRepr::for_file(34710, 50, [7; 32], b"test35k.jpg").unwrap();
        assert_eq!((m.nblocks, m.lastblock, m.block_count()), (694, 10, 695));
        let mut p = [0u8; MAX_PAYLOAD];
        m.emit(&mut p).unwrap();
        let n = m.buffer_len();
        assert_eq!(MetaRepr::parse(&p[..n]).unwrap(), m);
        assert_eq!(Control::parse(&p[..n]), Control::Meta(m));
        assert_eq!(Control::parse(&p[..36]), Control::Unknown(control::META));
        assert!(MetaRepr::for_file(65536 * 10, 10, [0; 32], b"").is_err());
        assert!(MetaRepr::for_file(65535 * 10 + 9, 10, [0; 32], b"").is_ok());
        assert!(MetaRepr::for_file(10, 0, [0; 32], b"").is_err());
        assert!(MetaRepr::for_file(10, 250, [0; 32], b"").is_err());
        assert!(MetaRepr::for_file(10, 5, [0; 32], &[b'a'; MAX_NAME_LEN + 1]).is_err());
        assert_eq!(Control::parse(&[0xFF]), Control::End);
        assert_eq!(Control::parse(&[0xFF, 0]), Control::Unknown(0xFF));
        assert_eq!(Control::parse(&[]), Control::Unknown(0));
    }
}
