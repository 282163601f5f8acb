//! COBS byte-stream framing (consistent-overhead byte stuffing, the
//! `corncobs` crate): each frame terminated by 0x00. Worst case
//! n + ceil(n/254) + 1 bytes (259 for the largest dttk message): bounded
//! and nearly constant. Not part of the dttk profile; a framing any packet
//! format can travel in ([`Framing::Cobs`](crate::Framing::Cobs) selects it
//! at run time).

use crate::error::{ErrorKind, Result};
use crate::framing::scan;
use crate::profile::{Deframe, DeframeState, FrameBuf, Framer};

/// COBS, 0x00-delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cobs;

impl Cobs {
    /// Worst-case framed size of a `len`-byte message.
    pub const fn max_encoded_len(len: usize) -> usize {
        corncobs::max_encoded_len(len)
    }
}

impl Framer for Cobs {
    #[inline]
    fn max_encoded_len(&self, len: usize) -> usize {
        Cobs::max_encoded_len(len)
    }

    #[inline]
    fn encode(&self, msg: &[u8], out: &mut [u8]) -> Result<usize> {
        stage!("framing::encode", bytes = msg.len(), encode(msg, out))
    }
}

fn encode(msg: &[u8], out: &mut [u8]) -> Result<usize> {
    let need = corncobs::max_encoded_len(msg.len());
    if out.len() < need {
        return Err(ErrorKind::BufferTooSmall {
            need,
            have: out.len(),
        }
        .into());
    }
    Ok(corncobs::encode_buf(msg, out))
}

impl Deframe for Cobs {
    /// A COBS stream starts at a frame boundary.
    fn start(&self) -> DeframeState {
        DeframeState::Collect
    }

    #[inline]
    fn step<const N: usize>(&self, buf: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize> {
        step(buf, input)
    }
}

/// First 0x00 (or `s.len()`).
#[inline]
pub(crate) fn find_zero(s: &[u8]) -> usize {
    scan(s, |w| w, |b| b == 0)
}

// Inlined into the deframer's loop, as a method of it would be: its state
// stays in registers across the bytes of a call.
#[inline(always)]
fn step<const N: usize>(fb: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize> {
    while !input.is_empty() {
        let run = find_zero(input);
        let zero = (run < input.len()).then_some(run);
        let (chunk, rest) = input.split_at(run);
        match fb.state() {
            DeframeState::Hunt | DeframeState::Escaped => {
                fb.stats_mut().junk_bytes += chunk.len() as u64;
            }
            DeframeState::Collect => {
                if !fb.append(chunk) {
                    fb.stats_mut().junk_bytes += chunk.len() as u64;
                }
            }
        }
        *input = rest;
        if zero.is_none() {
            break;
        }
        // Consume the delimiter.
        *input = &input[1..];
        let was_collecting = fb.state() == DeframeState::Collect;
        let n = fb.drop_frame(DeframeState::Collect);
        if !was_collecting || n == 0 {
            continue;
        }
        match corncobs::decode_in_place(fb.frame_mut(n)) {
            Ok(m) if m > 0 => return Some(m),
            Ok(_) => fb.stats_mut().bad_lengths += 1,
            Err(_) => fb.stats_mut().protocol_violations += 1,
        }
    }
    None
}
