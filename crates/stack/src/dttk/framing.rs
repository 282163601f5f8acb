//! The dttk byte-stream framing (`docs/specs/dttk-wire.md` section 5):
//! `0xFF | escaped message | 0xFF`, with 0xFF sent as `0xFE 0xFD` and 0xFE
//! as `0xFE 0xFE`. Worst case doubles the message (2 + 2n bytes: 514 for
//! the largest message), which is why the reference sizes its buffers at
//! 512/544 bytes.
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
