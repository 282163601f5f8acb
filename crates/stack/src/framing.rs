//! Byte-stream framing: the profile's 0xFF/0xFE stuffing (`docs/specs/dttk-wire.md`
//! section 5) and COBS as a selectable alternative.
//!
//! * [`Framing::Dttk`]: `0xFF | escaped message | 0xFF`, with 0xFF sent as
//!   `0xFE 0xFD` and 0xFE as `0xFE 0xFE`. Worst case doubles the message
//!   (2 + 2n bytes: 514 for the largest message), which is why the reference
//!   sizes its buffers at 512/544 bytes.
//! * [`Framing::Cobs`]: consistent-overhead byte stuffing (the `corncobs`
//!   crate), each frame terminated by 0x00. Worst case n + ceil(n/254) + 1
//!   bytes (259 for the largest message): bounded and nearly constant.
//!
//! [`Deframer`] is a resumable state machine: feed it chunks of any size (one
//! byte to megabytes) and it yields complete, length-checked frames, counting
//! what it drops in [`DeframerStats`]. It never allocates; its buffer is a
//! const generic (`N`, default 544 as in the reference receiver).

use crate::error::{ErrorKind, Result};

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

/// Which byte-stream framing a link uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Framing {
    /// The profile's 0xFF-delimited, 0xFE-escaped framing.
    #[default]
    Dttk,
    /// COBS, 0x00-delimited.
    Cobs,
}

impl Framing {
    /// Worst-case framed size of a `len`-byte message.
    pub const fn max_encoded_len(self, len: usize) -> usize {
        match self {
            Framing::Dttk => 2 + 2 * len,
            Framing::Cobs => corncobs::max_encoded_len(len),
        }
    }

    /// Frame `msg` into `out`, returning the number of bytes written.
    /// Fails (without panicking) if `out` may be too small.
    pub fn encode(self, msg: &[u8], out: &mut [u8]) -> Result<usize> {
        stage!(
            "framing::encode",
            bytes = msg.len(),
            match self {
                Framing::Dttk => encode_dttk(msg, out),
                Framing::Cobs => {
                    let need = corncobs::max_encoded_len(msg.len());
                    if out.len() < need {
                        Err(ErrorKind::BufferTooSmall {
                            need,
                            have: out.len(),
                        }
                        .into())
                    } else {
                        Ok(corncobs::encode_buf(msg, out))
                    }
                }
            }
        )
    }
}

fn encode_dttk(msg: &[u8], out: &mut [u8]) -> Result<usize> {
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

const LO: u64 = 0x0101_0101_0101_0101;
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

/// Scan for the first byte where `hit` holds. Chunks of 32 bytes are tested
/// with a branch-free fold that LLVM vectorises (SSE2 compares and a mask
/// on x86_64), then eight bytes at a time with `zero_if` (a word that has a
/// zero byte exactly where `hit` holds), then byte by byte.
#[inline(always)]
fn scan(s: &[u8], zero_if: impl Fn(u64) -> u64, hit: impl Fn(u8) -> bool) -> usize {
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

/// First byte that is 0xFE or 0xFF (or `s.len()`).
#[inline]
fn find_special(s: &[u8]) -> usize {
    // b | 1 == 0xFF exactly for 0xFE and 0xFF; invert so those become zero.
    scan(s, |w| !(w | LO), |b| b >= ESC)
}

/// First 0xFF (or `s.len()`).
#[inline]
fn find_flag(s: &[u8]) -> usize {
    scan(s, |w| !w, |b| b == FLAG)
}

/// First 0x00 (or `s.len()`).
#[inline]
fn find_zero(s: &[u8]) -> usize {
    scan(s, |w| w, |b| b == 0)
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
    /// Frames whose len byte + 1 differs from their length.
    pub bad_lengths: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Skipping until a delimiter.
    Hunt,
    /// Collecting frame bytes.
    Collect,
    /// Collecting, previous byte was ESC (dttk only).
    Escape,
}

/// Resumable deframer with an `N`-byte frame buffer.
#[derive(Clone)]
pub struct Deframer<const N: usize = RX_BUFFER> {
    framing: Framing,
    state: State,
    /// Bytes of the frame being collected in `buf`.
    len: usize,
    buf: [u8; N],
    stats: DeframerStats,
}

impl<const N: usize> Deframer<N> {
    /// A deframer for `framing`, waiting for the first delimiter (dttk) or at
    /// a frame start (COBS).
    pub const fn new(framing: Framing) -> Self {
        Deframer {
            framing,
            state: match framing {
                Framing::Dttk => State::Hunt,
                Framing::Cobs => State::Collect,
            },
            len: 0,
            buf: [0; N],
            stats: DeframerStats {
                bytes: 0,
                frames: 0,
                junk_bytes: 0,
                protocol_violations: 0,
                overflows: 0,
                bad_lengths: 0,
            },
        }
    }

    /// The framing in use.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Counters so far.
    pub fn stats(&self) -> &DeframerStats {
        &self.stats
    }

    /// Bytes of a partial frame currently held.
    pub fn pending(&self) -> usize {
        self.len
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
        let done = match self.framing {
            Framing::Dttk => self.step_dttk(input),
            Framing::Cobs => self.step_cobs(input),
        };
        let consumed = (before - input.len()) as u64;
        guard.add_bytes(consumed);
        drop(guard);
        self.stats.bytes += consumed;
        done.map(move |n| &self.buf[..n])
    }

    fn drop_frame(&mut self, state: State) {
        self.len = 0;
        self.state = state;
    }

    /// Append a run of plain bytes; false (and the frame dropped) on overflow.
    #[inline]
    fn append(&mut self, run: &[u8]) -> bool {
        if self.len + run.len() > N {
            self.stats.overflows += 1;
            self.drop_frame(State::Hunt);
            false
        } else {
            self.buf[self.len..self.len + run.len()].copy_from_slice(run);
            self.len += run.len();
            true
        }
    }

    /// A frame is complete: length-check it. Returns its length if good.
    fn finish(&mut self, n: usize) -> Option<usize> {
        // n >= 1 here.
        if self.buf[0] as usize + 1 == n {
            self.stats.frames += 1;
            Some(n)
        } else {
            self.stats.bad_lengths += 1;
            None
        }
    }

    fn step_dttk(&mut self, input: &mut &[u8]) -> Option<usize> {
        while !input.is_empty() {
            match self.state {
                State::Hunt => {
                    let i = find_flag(input);
                    match (i < input.len()).then_some(i) {
                        Some(i) => {
                            self.stats.junk_bytes += i as u64;
                            *input = &input[i + 1..];
                            self.drop_frame(State::Collect);
                        }
                        None => {
                            self.stats.junk_bytes += input.len() as u64;
                            *input = &[];
                        }
                    }
                }
                State::Collect => {
                    let run = find_special(input);
                    let (plain, rest) = input.split_at(run);
                    *input = rest;
                    if !self.append(plain) {
                        // The overflowing run counts as skipped.
                        self.stats.junk_bytes += plain.len() as u64;
                        continue;
                    }
                    let Some((&b, rest)) = input.split_first() else {
                        break;
                    };
                    *input = rest;
                    if b == ESC {
                        self.state = State::Escape;
                    } else if self.len == 0 {
                        // A run of flags between frames.
                    } else {
                        // Closing flag; it also opens the next frame.
                        let n = self.len;
                        self.len = 0;
                        if let Some(n) = self.finish(n) {
                            return Some(n);
                        }
                    }
                }
                State::Escape => {
                    let b = input[0];
                    *input = &input[1..];
                    let out = match b {
                        ESC_FF => FLAG,
                        ESC => ESC,
                        FLAG => {
                            // `0xFE 0xFF`: drop and resynchronise on this flag.
                            self.stats.protocol_violations += 1;
                            self.drop_frame(State::Collect);
                            continue;
                        }
                        _ => {
                            self.stats.protocol_violations += 1;
                            self.drop_frame(State::Hunt);
                            continue;
                        }
                    };
                    self.state = State::Collect;
                    self.append(&[out]);
                }
            }
        }
        None
    }

    fn step_cobs(&mut self, input: &mut &[u8]) -> Option<usize> {
        while !input.is_empty() {
            let run = find_zero(input);
            let zero = (run < input.len()).then_some(run);
            let (chunk, rest) = input.split_at(run);
            match self.state {
                State::Hunt | State::Escape => {
                    self.stats.junk_bytes += chunk.len() as u64;
                }
                State::Collect => {
                    if !self.append(chunk) {
                        self.stats.junk_bytes += chunk.len() as u64;
                    }
                }
            }
            *input = rest;
            if zero.is_none() {
                break;
            }
            // Consume the delimiter.
            *input = &input[1..];
            let was_collecting = self.state == State::Collect;
            let n = self.len;
            self.drop_frame(State::Collect);
            if !was_collecting || n == 0 {
                continue;
            }
            match corncobs::decode_in_place(&mut self.buf[..n]) {
                Ok(m) if m > 0 => {
                    if let Some(m) = self.finish(m) {
                        return Some(m);
                    }
                }
                Ok(_) => self.stats.bad_lengths += 1,
                Err(_) => self.stats.protocol_violations += 1,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
