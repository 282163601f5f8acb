//! The dttk byte-stream framing (`docs/specs/dttk-wire.md` section 5):
//! `0xFF | escaped message | 0xFF`, with 0xFF sent as `0xFE 0xFD` and 0xFE
//! as `0xFE 0xFE`. Worst case doubles the message (2 + 2n bytes: 514 for
//! the largest message), which is why the reference sizes its buffers at
//! 512/544 bytes.
//!
//! On x86_64 both halves take sixteen bytes a step between escapes (one
//! SSE2 compare finds the next 0xFE/0xFF; the bytes before it were copied
//! whole), and the byte-exact code takes the tails: the frames, the bytes
//! and the counters are those of the byte-exact code alone, which other
//! targets (firmware) run.
//!
//! [`Stuffing`] implements both halves of the framing interface
//! ([`Framer`], [`Deframe`]); [`Framing::Dttk`](crate::Framing::Dttk)
//! selects it at run time.

use crate::error::{ErrorKind, Result};
use crate::framing::scan;
use crate::profile::{Deframe, DeframeState, FrameBuf, Framer};

/// Frame delimiter of the dttk framing.
pub const FLAG: u8 = 0xFF;
/// Escape byte of the dttk framing.
pub const ESC: u8 = 0xFE;
/// Escaped form of 0xFF (after [`ESC`]).
pub const ESC_FF: u8 = 0xFD;
/// The reference transmit buffer size.
pub const TX_BUFFER: usize = 512;
/// The reference receive buffer size (512 + the 32-byte UART FIFO).
pub const RX_BUFFER: usize = 544;

/// The dttk 0xFF-delimited, 0xFE-escaped framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stuffing;

impl Stuffing {
    /// Worst-case framed size of a `len`-byte message (`2 + 2 * len`).
    pub const fn max_encoded_len(len: usize) -> usize {
        2 + 2 * len
    }
}

impl Framer for Stuffing {
    #[inline]
    fn max_encoded_len(&self, len: usize) -> usize {
        Stuffing::max_encoded_len(len)
    }

    #[inline]
    fn encode(&self, msg: &[u8], out: &mut [u8]) -> Result<usize> {
        stage!("framing::encode", bytes = msg.len(), encode(msg, out))
    }
}

impl Deframe for Stuffing {
    fn start(&self) -> DeframeState {
        DeframeState::Hunt
    }

    #[inline]
    fn step<const N: usize>(&self, buf: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize> {
        step(buf, input)
    }
}

fn encode(msg: &[u8], out: &mut [u8]) -> Result<usize> {
    // Worst case first, so the copy loop cannot run out of room; count the
    // exact size only for a caller buffer below the worst case.
    if out.len() < 2 + 2 * msg.len() {
        let specials = msg.iter().filter(|&&b| b >= ESC).count();
        let need = 2 + msg.len() + specials;
        if out.len() < need {
            return Err(ErrorKind::BufferTooSmall {
                need,
                have: out.len(),
            }
            .into());
        }
    }
    out[0] = FLAG;
    let mut o = 1;
    let mut rest = msg;
    // Sixteen bytes at a time while the message and the output have them:
    // copy all, keep those before the first special byte, escape it. (On
    // x86_64; elsewhere, firmware included, the run copy below does it all.)
    #[cfg(target_arch = "x86_64")]
    loop {
        let (moved, hit) = copy_plain(rest, &mut out[o..]);
        o += moved;
        rest = &rest[moved..];
        let Some((&b, tail)) = rest.split_first().filter(|_| hit) else {
            break;
        };
        // The check above left room for every escape pair.
        out[o] = ESC;
        out[o + 1] = if b == FLAG { ESC_FF } else { ESC };
        o += 2;
        rest = tail;
    }
    while !rest.is_empty() {
        // Copy the run of ordinary bytes in one go.
        let run = find_special(rest);
        out[o..o + run].copy_from_slice(&rest[..run]);
        o += run;
        rest = &rest[run..];
        if let Some((&b, tail)) = rest.split_first() {
            out[o] = ESC;
            out[o + 1] = if b == FLAG { ESC_FF } else { ESC };
            o += 2;
            rest = tail;
        }
    }
    out[o] = FLAG;
    Ok(o + 1)
}

/// First byte that is 0xFE or 0xFF (or `s.len()`).
#[inline]
pub(crate) fn find_special(s: &[u8]) -> usize {
    // b | 1 == 0xFF exactly for 0xFE and 0xFF; invert so those become zero.
    scan(s, |w| !(w | crate::framing::LO), |b| b >= ESC)
}

/// First 0xFF (or `s.len()`).
#[inline]
pub(crate) fn find_flag(s: &[u8]) -> usize {
    scan(s, |w| !w, |b| b == FLAG)
}

/// Bytes the wide paths move per step.
#[cfg(target_arch = "x86_64")]
const WIDE: usize = 16;

/// Index of the first 0xFE or 0xFF in the [`WIDE`] bytes, if any: a
/// vector compare and a mask move (SSE2, part of every x86_64 CPU).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn first_special(v: &[u8; WIDE]) -> Option<usize> {
    use core::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is part of every x86_64 CPU, and the load is an
    // unaligned 16-byte read of a 16-byte array.
    let m = unsafe {
        let x = _mm_loadu_si128(v.as_ptr().cast());
        // b | 1 == 0xFF exactly for 0xFE and 0xFF.
        _mm_movemask_epi8(_mm_cmpeq_epi8(
            _mm_or_si128(x, _mm_set1_epi8(1)),
            _mm_set1_epi8(-1),
        )) as u32
    };
    (m != 0).then(|| m.trailing_zeros() as usize)
}

/// Copy [`WIDE`] bytes a step from `src` to `dst` while both have them,
/// stopping at the first 0xFE or 0xFF. Returns the bytes before it (all
/// copied) and whether one was found; `dst` may hold more than that many
/// bytes of `src` (the rest of the step that found it). Iterating the two
/// in chunks leaves no bounds check in the loop.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn copy_plain(src: &[u8], dst: &mut [u8]) -> (usize, bool) {
    let mut moved = 0;
    for (s, d) in src.chunks_exact(WIDE).zip(dst.chunks_exact_mut(WIDE)) {
        d.copy_from_slice(s);
        if let Some(k) = s.first_chunk::<WIDE>().and_then(first_special) {
            return (moved + k, true);
        }
        moved += WIDE;
    }
    (moved, false)
}

/// The collecting state's fast path, while the input and the frame buffer's
/// room both hold [`WIDE`] bytes: copy all of them, keep those before the
/// first special byte, and undo an escape pair on the spot. Returns a
/// completed frame's length; `None` hands the rest (a short tail, a full
/// buffer, an escape split across chunks or a bad one) to the byte-exact
/// state machine, which sees the same bytes it would have seen without this
/// path: the frames and the counters are the same.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn collect_wide<const N: usize>(fb: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize> {
    // Work on locals (the room, how much of it is the frame's, the input)
    // and write them back once: through `fb` and `input` every step would
    // wait on the last step's stores.
    let mut rest = *input;
    let fb_was_empty = fb.is_empty();
    let room = fb.room();
    let mut n = 0;
    let closed = loop {
        let (moved, hit) = copy_plain(rest, &mut room[n..]);
        n += moved;
        rest = &rest[moved..];
        if !hit {
            break false;
        }
        match *rest {
            [ESC, second @ (ESC | ESC_FF), ..] => {
                // The step that found the escape had room for all sixteen.
                room[n] = if second == ESC { ESC } else { FLAG };
                n += 1;
                rest = &rest[2..];
            }
            [FLAG, ..] => {
                rest = &rest[1..];
                if n > 0 || !fb_was_empty {
                    break true;
                }
                // A run of flags between frames.
            }
            _ => break false,
        }
    };
    fb.commit(n);
    *input = rest;
    // Closing flag; it also opens the next frame.
    closed.then(|| fb.drop_frame(DeframeState::Collect))
}

// Inlined into the deframer's loop, as a method of it would be: its state
// stays in registers across the bytes of a call.
#[inline(always)]
fn step<const N: usize>(fb: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize> {
    while !input.is_empty() {
        match fb.state() {
            DeframeState::Hunt => {
                let i = find_flag(input);
                match (i < input.len()).then_some(i) {
                    Some(i) => {
                        fb.stats_mut().junk_bytes += i as u64;
                        *input = &input[i + 1..];
                        fb.drop_frame(DeframeState::Collect);
                    }
                    None => {
                        fb.stats_mut().junk_bytes += input.len() as u64;
                        *input = &[];
                    }
                }
            }
            DeframeState::Collect => {
                #[cfg(target_arch = "x86_64")]
                if let Some(n) = collect_wide(fb, input) {
                    return Some(n);
                }
                let run = find_special(input);
                let (plain, rest) = input.split_at(run);
                *input = rest;
                if !fb.append(plain) {
                    // The overflowing run counts as skipped.
                    fb.stats_mut().junk_bytes += plain.len() as u64;
                    continue;
                }
                let Some((&b, rest)) = input.split_first() else {
                    break;
                };
                *input = rest;
                if b == ESC {
                    fb.set_state(DeframeState::Escaped);
                } else if fb.is_empty() {
                    // A run of flags between frames.
                } else {
                    // Closing flag; it also opens the next frame.
                    return Some(fb.drop_frame(DeframeState::Collect));
                }
            }
            DeframeState::Escaped => {
                let b = input[0];
                *input = &input[1..];
                let out = match b {
                    ESC_FF => FLAG,
                    ESC => ESC,
                    FLAG => {
                        // `0xFE 0xFF`: drop and resynchronise on this flag.
                        fb.stats_mut().protocol_violations += 1;
                        fb.drop_frame(DeframeState::Collect);
                        continue;
                    }
                    _ => {
                        fb.stats_mut().protocol_violations += 1;
                        fb.drop_frame(DeframeState::Hunt);
                        continue;
                    }
                };
                fb.set_state(DeframeState::Collect);
                if !fb.append(&[out]) {
                    // The escape pair that overflowed counts as skipped.
                    fb.stats_mut().junk_bytes += 2;
                }
            }
        }
    }
    None
}
