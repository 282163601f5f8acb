//! Byte-stream framing: the run-time choice between the dttk profile's
//! 0xFF/0xFE stuffing (`docs/specs/dttk-wire.md` section 5) and COBS, and the
//! resumable [`Deframer`] any framing runs in.
//!
//! * [`Framing::Dttk`]: [`Stuffing`], `0xFF | escaped message | 0xFF`;
//!   worst case 2 + 2n bytes (514 for the largest message).
//! * [`Framing::Cobs`]: [`Cobs`], each frame terminated
//!   by 0x00; worst case n + ceil(n/254) + 1 bytes (259).
//!
//! [`Deframer`] is a resumable state machine: feed it chunks of any size (one
//! byte to megabytes) and it yields complete, length-checked frames, counting
//! what it drops in [`DeframerStats`]. It never allocates; its buffer is a
//! const generic (`N`, default 544 as in the reference receiver). It is
//! generic over the framing (any [`Deframe`]) and over the check its frames
//! must pass (any [`FrameCheck`]: the dttk link message's length byte by
//! default): see [`crate::profile`].

use core::marker::PhantomData;

use crate::cobs::Cobs;
use crate::dttk::framing::Stuffing;
pub use crate::dttk::framing::{ESC, ESC_FF, FLAG, RX_BUFFER, TX_BUFFER};
use crate::dttk::LinkMessage;
use crate::error::Result;
use crate::profile::{Deframe, DeframeState, FrameBuf, FrameCheck, Framer};

/// Which byte-stream framing a link uses, chosen at run time (a setting);
/// code that knows its framing at build time can use [`Stuffing`] or
/// [`Cobs`] directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// The dttk profile's 0xFF-delimited, 0xFE-escaped framing.
    #[default]
    Dttk,
    /// COBS, 0x00-delimited.
    Cobs,
}

impl Framing {
    /// Worst-case framed size of a `len`-byte message.
    pub const fn max_encoded_len(self, len: usize) -> usize {
        match self {
            Framing::Dttk => Stuffing::max_encoded_len(len),
            Framing::Cobs => Cobs::max_encoded_len(len),
        }
    }

    /// Frame `msg` into `out`, returning the number of bytes written.
    /// Fails (without panicking) if `out` may be too small.
    #[inline]
    pub fn encode(self, msg: &[u8], out: &mut [u8]) -> Result<usize> {
        match self {
            Framing::Dttk => Stuffing.encode(msg, out),
            Framing::Cobs => Cobs.encode(msg, out),
        }
    }
}

impl Framer for Framing {
    #[inline]
    fn max_encoded_len(&self, len: usize) -> usize {
        Framing::max_encoded_len(*self, len)
    }

    #[inline]
    fn encode(&self, msg: &[u8], out: &mut [u8]) -> Result<usize> {
        Framing::encode(*self, msg, out)
    }
}

impl Deframe for Framing {
    fn start(&self) -> DeframeState {
        match self {
            Framing::Dttk => Stuffing.start(),
            Framing::Cobs => Cobs.start(),
        }
    }

    #[inline]
    fn step<const N: usize>(&self, buf: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize> {
        match self {
            Framing::Dttk => Stuffing.step(buf, input),
            Framing::Cobs => Cobs.step(buf, input),
        }
    }
}

pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Index of the first zero byte in the little-endian word, if any (the
/// classic SWAR test; only bytes above a true zero can be false positives,
/// and the lowest set bit is always a true one).
#[inline(always)]
fn first_zero_byte(w: u64) -> Option<usize> {
    let m = w.wrapping_sub(LO) & !w & HI;
    if m == 0 {
        None
    } else {
        Some((m.trailing_zeros() / 8) as usize)
    }
}

/// Scan for the first byte where `hit` holds (the framings' delimiter and
/// escape searches). Chunks of 32 bytes are tested with a branch-free fold
/// that LLVM vectorises (SSE2 compares and a mask on x86_64), then eight
/// bytes at a time with `zero_if` (a word that has a zero byte exactly where
/// `hit` holds), then byte by byte.
#[inline(always)]
pub(crate) fn scan(s: &[u8], zero_if: impl Fn(u64) -> u64, hit: impl Fn(u8) -> bool) -> usize {
    let mut i = 0;
    let mut wide = s.chunks_exact(32);
    for c in &mut wide {
        if c.iter().fold(false, |a, &b| a | hit(b)) {
            break;
        }
        i += 32;
    }
    let rest = &s[i..];
    let mut chunks = rest.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        if let Some(k) = first_zero_byte(zero_if(w)) {
            return i + k;
        }
        i += 8;
    }
    i + chunks
        .remainder()
        .iter()
        .position(|&b| hit(b))
        .unwrap_or(chunks.remainder().len())
}

/// Counters kept by a [`Deframer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeframerStats {
    /// Bytes fed in.
    pub bytes: u64,
    /// Frames delivered (length-checked).
    pub frames: u64,
    /// Bytes skipped outside any frame.
    pub junk_bytes: u64,
    /// Bad escapes (dttk) or corrupt COBS.
    pub protocol_violations: u64,
    /// Frames dropped for growing past the buffer.
    pub overflows: u64,
    /// Frames whose length the packet format rejects (dttk: the len byte
    /// + 1 differs from the frame's length).
    pub bad_lengths: u64,
}

/// Resumable deframer with an `N`-byte frame buffer, for framing `F`,
/// delivering frames that pass `P`'s [`FrameCheck`].
#[derive(Clone)]
pub struct Deframer<const N: usize = RX_BUFFER, F = Framing, P = LinkMessage> {
    framing: F,
    buf: FrameBuf<N>,
    format: PhantomData<fn() -> P>,
}

impl<const N: usize, F: Deframe> Deframer<N, F, LinkMessage> {
    /// A deframer for `framing` delivering dttk link messages, waiting for
    /// the first delimiter (dttk) or at a frame start (COBS).
    pub fn new(framing: F) -> Self {
        Self::for_format(framing)
    }
}

impl<const N: usize, F: Deframe, P: FrameCheck> Deframer<N, F, P> {
    /// A deframer for `framing` delivering frames that pass `P`'s check
    /// (a [`PacketFormat`](crate::PacketFormat), or
    /// [`AnyFrame`](crate::profile::AnyFrame)).
    pub fn for_format(framing: F) -> Self {
        Deframer {
            buf: FrameBuf::new(framing.start()),
            framing,
            format: PhantomData,
        }
    }

    /// The framing in use.
    pub fn framing(&self) -> &F {
        &self.framing
    }

    /// Counters so far.
    pub fn stats(&self) -> &DeframerStats {
        self.buf.stats()
    }

    /// Bytes of a partial frame currently held.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Feed `bytes`, calling `on_frame` for each complete frame.
    pub fn push(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(&[u8])) {
        while let Some(frame) = self.decode(&mut bytes) {
            on_frame(frame);
        }
    }

    /// Consume bytes from the front of `input` until one frame completes and
    /// return it, or return `None` once `input` is exhausted (the partial frame
    /// is kept for the next call). Pull-style, so the consumer's work is not
    /// counted as deframing time.
    pub fn decode<'s>(&'s mut self, input: &mut &[u8]) -> Option<&'s [u8]> {
        let before = input.len();
        // Bytes are counted as consumed, known only afterwards: a call stops
        // at the end of a frame, so counting what was offered would count
        // the rest of the chunk again on every later call.
        let mut guard = perfkit::span!("framing::decode");
        let mut done = None;
        while let Some(n) = self.framing.step(&mut self.buf, input) {
            if P::frame_ok(self.buf.frame(n)) {
                self.buf.stats_mut().frames += 1;
                done = Some(n);
                break;
            }
            self.buf.stats_mut().bad_lengths += 1;
        }
        let consumed = (before - input.len()) as u64;
        guard.add_bytes(consumed);
        drop(guard);
        self.buf.stats_mut().bytes += consumed;
        done.map(move |n| self.buf.frame(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cobs::find_zero;
    use crate::dttk::framing::{find_flag, find_special};

    fn collect<const N: usize>(
        d: &mut Deframer<N>,
        bytes: &[u8],
        out: &mut [[u8; 64]; 8],
    ) -> usize {
        let mut k = 0;
        d.push(bytes, |f| {
            out[k][..f.len()].copy_from_slice(f);
            k += 1;
        });
        k
    }

    #[test]
    fn escapes_ff_and_fe() {
        let msg = [4u8, 0xFF, 0xFE, 0x00, 0xFD];
        let mut out = [0u8; 16];
        let n = Framing::Dttk.encode(&msg, &mut out).unwrap();
        assert_eq!(
            &out[..n],
            &[0xFF, 4, 0xFE, 0xFD, 0xFE, 0xFE, 0x00, 0xFD, 0xFF]
        );
        let mut d: Deframer<64> = Deframer::new(Framing::Dttk);
        let mut got = [[0u8; 64]; 8];
        assert_eq!(collect(&mut d, &out[..n], &mut got), 1);
        assert_eq!(&got[0][..5], &msg);
    }

    #[test]
    fn counts_junk_violations_overflow_bad_length() {
        let mut d: Deframer<8> = Deframer::new(Framing::Dttk);
        let mut got = [[0u8; 64]; 8];
        // 3 junk bytes, a violation (FE FF), a good frame sharing that flag.
        let k = collect(
            &mut d,
            &[1, 2, 3, 0xFF, 9, 0xFE, 0xFF, 1, 0xAA, 0xFF],
            &mut got,
        );
        assert_eq!(k, 1);
        assert_eq!(&got[0][..2], &[1, 0xAA]);
        // Bad length, then overflow, then bad escape.
        collect(&mut d, &[5, 1, 0xFF], &mut got);
        collect(&mut d, &[0; 9], &mut got);
        collect(&mut d, &[0xFF, 0xFF, 3, 0xFE, 0x01, 0xFF], &mut got);
        let s = *d.stats();
        assert_eq!(s.frames, 1);
        assert_eq!(s.protocol_violations, 2);
        assert_eq!(s.bad_lengths, 1);
        assert_eq!(s.overflows, 1);
        assert!(s.junk_bytes >= 3);
    }

    #[test]
    fn cobs_roundtrip_and_corruption() {
        let msg = [6u8, 0, 0xFF, 0, 1, 2, 3];
        let mut out = [0u8; 32];
        let n = Framing::Cobs.encode(&msg, &mut out).unwrap();
        assert!(n <= Framing::Cobs.max_encoded_len(msg.len()));
        assert!(!out[..n - 1].contains(&0));
        let mut d: Deframer<64> = Deframer::new(Framing::Cobs);
        let mut got = [[0u8; 64]; 8];
        let mut stream = [0u8; 64];
        stream[..n].copy_from_slice(&out[..n]);
        stream[n..2 * n].copy_from_slice(&out[..n]);
        stream[n + 1] = 0x55; // corrupt the code byte's data in the 2nd frame
        let k = collect(&mut d, &stream[..2 * n], &mut got);
        assert!(k >= 1);
        assert_eq!(&got[0][..msg.len()], &msg);
    }

    #[test]
    fn swar_scans_agree_with_bytewise() {
        let mut data = [0x10u8; 40];
        for pos in 0..40 {
            for v in [0x00u8, 0xFD, 0xFE, 0xFF, 0x7F, 0x80, 0x01] {
                let mut d = data;
                d[pos] = v;
                for start in 0..8 {
                    let s = &d[start..];
                    let by =
                        |f: &dyn Fn(u8) -> bool| s.iter().position(|&b| f(b)).unwrap_or(s.len());
                    assert_eq!(find_special(s), by(&|b| b >= 0xFE));
                    assert_eq!(find_flag(s), by(&|b| b == 0xFF));
                    assert_eq!(find_zero(s), by(&|b| b == 0));
                }
            }
        }
        data[3] = 0xFF;
        data[5] = 0xFE;
        assert_eq!(find_special(&data), 3);
    }

    #[test]
    fn short_output_buffer_is_an_error() {
        let mut out = [0u8; 4];
        assert!(Framing::Dttk.encode(&[1, 2, 3], &mut out).is_err());
        assert!(Framing::Cobs.encode(&[1, 2, 3, 4], &mut out).is_err());
    }
}
