//! A small stand-in for the transfer stack, written from the dttk wire spec
//! (`docs/specs/dttk-wire.md`), for driving the simulation in this crate's tests
//! and benches without depending on `perfkit-stack`: the real message
//! layout, CRC, byte-stream framing and sender schedule, so frame sizes and
//! escapes are those of a real transfer.
#![allow(dead_code)]

use perfkit_link::sim::{SenderStep, SimReceiver, SimSender};

/// CRC-16/SPI-FUJITSU (poly 0x1021, init 0x1D0F, no reflection).
pub fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0x1D0F;
    for &b in bytes {
        crc ^= (b as u16) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// One link message: len, seqno, chn, blockno, payload, crc.
pub fn message(seq: u8, chn: u8, blockno: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = vec![(payload.len() + 6) as u8, seq, chn];
    m.extend_from_slice(&blockno.to_be_bytes());
    m.extend_from_slice(payload);
    let crc = crc16(&m);
    m.extend_from_slice(&crc.to_be_bytes());
    m
}

/// Byte-stream framing: 0xFF, escaped message, 0xFF.
pub fn frame(msg: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(0xFF);
    for &b in msg {
        match b {
            0xFF => out.extend_from_slice(&[0xFE, 0xFD]),
            0xFE => out.extend_from_slice(&[0xFE, 0xFE]),
            _ => out.push(b),
        }
    }
    out.push(0xFF);
}

/// The test image.
pub fn test_image() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/test35k.jpg");
    std::fs::read(path).expect("fixtures/test35k.jpg")
}

/// The reference sender schedule: META on ticks < start_meta and every
/// meta_every-th tick, each block 1 + repeats times, then END; optionally
/// throttled to `pps` messages per second on a fixed grid.
pub struct Sender {
    file: Vec<u8>,
    block: usize,
    repeats: u32,
    start_meta: u64,
    meta_every: u64,
    period_ns: Option<u64>,
    meta: Vec<u8>,
    tick: u64,
    next_block: usize,
    sent_of_block: u32,
    seq: u8,
    ended: bool,
    frame: Vec<u8>,
    /// Data messages sent.
    pub data_messages: u64,
}

impl Sender {
    pub fn new(file: Vec<u8>, block: usize, repeats: u32, pps: Option<u32>) -> Self {
        let nblocks = (file.len() / block) as u16;
        let mut meta = vec![0x01];
        meta.extend_from_slice(&nblocks.to_be_bytes());
        meta.push(block as u8);
        meta.push((file.len() % block) as u8);
        meta.extend_from_slice(&[0x5A; 32]); // a SHA-256 stand-in: sizes are what matter here
        meta.extend_from_slice(b"test35k.jpg\0");
        Self {
            file,
            block,
            repeats,
            start_meta: 8,
            meta_every: 50,
            period_ns: pps.map(|p| 1_000_000_000 / p as u64),
            meta,
            tick: 0,
            next_block: 0,
            sent_of_block: 0,
            seq: 0,
            ended: false,
            frame: Vec::new(),
            data_messages: 0,
        }
    }

    pub fn blocks(&self) -> usize {
        self.file.len().div_ceil(self.block)
    }
}

impl SimSender for Sender {
    fn poll(&mut self, now_ns: u64) -> SenderStep<'_> {
        if self.ended {
            return SenderStep::Done;
        }
        if let Some(period) = self.period_ns {
            let slot = self.tick * period;
            if now_ns < slot {
                return SenderStep::WaitUntil(slot);
            }
        }
        let t = self.tick;
        self.tick += 1;
        let msg = if t < self.start_meta || t % self.meta_every == 0 {
            message(self.seq, 0x80, 0, &self.meta)
        } else if self.next_block < self.blocks() {
            let b = self.next_block;
            let end = ((b + 1) * self.block).min(self.file.len());
            let m = message(self.seq, 0x00, b as u16, &self.file[b * self.block..end]);
            self.data_messages += 1;
            self.sent_of_block += 1;
            if self.sent_of_block > self.repeats {
                self.sent_of_block = 0;
                self.next_block += 1;
            }
            m
        } else {
            self.ended = true;
            message(self.seq, 0x80, 0, &[0xFF])
        };
        self.seq = self.seq.wrapping_add(1);
        frame(&msg, &mut self.frame);
        SenderStep::Frame(&self.frame)
    }
}

/// A receiver per the spec's deframing rules, recording which blocks
/// arrived intact.
pub struct Receiver {
    have: Vec<bool>,
    missing: usize,
    buf: Vec<u8>,
    in_frame: bool,
    escape: bool,
    /// Frames that failed the length or CRC check, or overflowed.
    pub bad_frames: u64,
    /// Frames that passed.
    pub good_frames: u64,
}

impl Receiver {
    pub fn new(blocks: usize) -> Self {
        Self {
            have: vec![false; blocks],
            missing: blocks,
            buf: Vec::new(),
            in_frame: false,
            escape: false,
            bad_frames: 0,
            good_frames: 0,
        }
    }

    pub fn missing_blocks(&self) -> usize {
        self.missing
    }

    fn end_frame(&mut self) -> bool {
        let m = std::mem::take(&mut self.buf);
        if m.is_empty() {
            return false;
        }
        let ok = m.len() >= 7
            && m[0] as usize + 1 == m.len()
            && crc16(&m[..m.len() - 2]) == u16::from_be_bytes([m[m.len() - 2], m[m.len() - 1]]);
        if !ok {
            self.bad_frames += 1;
            return true;
        }
        self.good_frames += 1;
        if m[2] == 0x00 {
            let b = u16::from_be_bytes([m[3], m[4]]) as usize;
            if b < self.have.len() && !self.have[b] {
                self.have[b] = true;
                self.missing -= 1;
            }
        }
        true
    }
}

impl SimReceiver for Receiver {
    fn on_bytes(&mut self, _now_ns: u64, bytes: &[u8]) -> u32 {
        let mut done = 0;
        for &b in bytes {
            if b == 0xFF {
                if self.escape {
                    // 0xFE 0xFF: protocol violation, drop the partial frame.
                    self.escape = false;
                    self.buf.clear();
                    self.bad_frames += 1;
                } else if self.in_frame && self.end_frame() {
                    done += 1;
                }
                self.in_frame = true;
                continue;
            }
            if !self.in_frame {
                continue;
            }
            if self.escape {
                self.escape = false;
                self.buf.push(if b == 0xFD { 0xFF } else { b });
            } else if b == 0xFE {
                self.escape = true;
            } else {
                self.buf.push(b);
            }
            if self.buf.len() > 544 {
                self.buf.clear();
                self.in_frame = false;
                self.bad_frames += 1;
            }
        }
        done
    }

    fn finished(&self) -> bool {
        self.missing == 0
    }
}
