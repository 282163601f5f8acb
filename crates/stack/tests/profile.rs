//! The wire-profile seam: a framing the stack does not ship (SLIP, RFC 1055)
//! carries a whole transfer through the deframer and receiver by
//! implementing the profile traits alone; frames without a length byte pass
//! with `AnyFrame`; the stack's own framings framed statically give the
//! bytes the run-time choice gives.

use perfkit_stack::cobs::Cobs;
use perfkit_stack::dttk::framing::Stuffing;
use perfkit_stack::profile::{AnyFrame, DeframeState, FrameBuf};
use perfkit_stack::{
    Deframe, Deframer, Event, Framer, Framing, Receiver, Result, SenderConfig, State, VecSink,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod common;

const END: u8 = 0xC0;
const ESC: u8 = 0xDB;
const ESC_END: u8 = 0xDC;
const ESC_ESC: u8 = 0xDD;

/// SLIP: `END | escaped message | END`, END sent as `ESC ESC_END`, ESC as
/// `ESC ESC_ESC`. Written against the traits only, byte by byte.
struct Slip;

impl Framer for Slip {
    fn max_encoded_len(&self, len: usize) -> usize {
        2 + 2 * len
    }

    fn encode(&self, msg: &[u8], out: &mut [u8]) -> Result<usize> {
        if out.len() < self.max_encoded_len(msg.len()) {
            return Err(perfkit_stack::ErrorKind::BufferTooSmall {
                need: self.max_encoded_len(msg.len()),
                have: out.len(),
            }
            .into());
        }
        let mut o = 0;
        let mut put = |b: u8| {
            out[o] = b;
            o += 1;
        };
        put(END);
        for &b in msg {
            match b {
                END => [ESC, ESC_END].into_iter().for_each(&mut put),
                ESC => [ESC, ESC_ESC].into_iter().for_each(&mut put),
                b => put(b),
            }
        }
        put(END);
        Ok(o)
    }
}

impl Deframe for Slip {
    fn start(&self) -> DeframeState {
        DeframeState::Hunt
    }

    fn step<const N: usize>(&self, fb: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize> {
        while let Some((&b, rest)) = input.split_first() {
            *input = rest;
            match (fb.state(), b) {
                (DeframeState::Hunt, END) => {
                    fb.drop_frame(DeframeState::Collect);
                }
                (DeframeState::Hunt, _) => fb.stats_mut().junk_bytes += 1,
                (DeframeState::Collect, END) if fb.is_empty() => {}
                (DeframeState::Collect, END) => return Some(fb.drop_frame(DeframeState::Collect)),
                (DeframeState::Collect, ESC) => fb.set_state(DeframeState::Escaped),
                (DeframeState::Collect, b) => {
                    fb.append(&[b]);
                }
                (DeframeState::Escaped, ESC_END | ESC_ESC) => {
                    fb.set_state(DeframeState::Collect);
                    fb.append(&[if b == ESC_END { END } else { ESC }]);
                }
                (DeframeState::Escaped, _) => {
                    fb.stats_mut().protocol_violations += 1;
                    let next = if b == END {
                        DeframeState::Collect
                    } else {
                        DeframeState::Hunt
                    };
                    fb.drop_frame(next);
                }
            }
        }
        None
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    ChaCha8Rng::seed_from_u64(12).fill_bytes(&mut v);
    v
}

/// Every message of a transfer of `data` (no repeats), framed by `framer`,
/// as one stream; and the number of messages.
fn stream(framer: &impl Framer, data: &[u8]) -> (Vec<u8>, u64) {
    let cfg = SenderConfig {
        repeats: 0,
        ..SenderConfig::default()
    };
    common::framed_stream(framer, data, cfg)
}

#[test]
fn a_plugged_framing_carries_a_transfer() {
    let data = random(5000);
    let (bytes, messages) = stream(&Slip, &data);
    // The stream really is SLIP: frames are END-delimited, so the dttk
    // stuffing would find none of them.
    assert_eq!(bytes.first(), Some(&END));
    assert!(bytes.contains(&ESC));
    let mut rx: Receiver<VecSink, 64, Slip> = Receiver::new(0, VecSink::new(1 << 16), Slip);
    let mut complete = false;
    for chunk in bytes.chunks(7) {
        rx.on_bytes(chunk, 0, &mut |ev| {
            complete |= matches!(ev, Event::Complete { .. })
        });
    }
    assert!(complete);
    assert_eq!(rx.state(), State::Complete);
    assert_eq!(rx.sink().data, data);
    let s = rx.deframer_stats();
    assert_eq!(
        (s.frames, s.junk_bytes, s.bytes),
        (messages, 0, bytes.len() as u64)
    );

    // Damage is counted by the plugged framing, the length check by the
    // deframer that runs it.
    let mut d: Deframer<64, Slip> = Deframer::new(Slip);
    let mut frames = 0;
    d.push(
        &[1, 2, END, 5, ESC, 7, END, 4, 9, END, END, 3, 0, 0],
        |_| frames += 1,
    );
    let s = *d.stats();
    assert_eq!((frames, s.frames), (0, 0));
    assert_eq!((s.junk_bytes, s.protocol_violations), (2, 1));
    assert_eq!(s.bad_lengths, 1); // [4, 9]: its len byte says 5 bytes
    d.push(&[END], |f| {
        assert_eq!(f, [2, 0, 0]);
        frames += 1
    });
    assert_eq!(frames, 0, "[3, 0, 0] has a bad len byte");
    d.push(&[2, 0, 0, END], |f| {
        assert_eq!(f, [2, 0, 0]);
        frames += 1
    });
    assert_eq!(frames, 1);
}

#[test]
fn frames_without_a_length_byte_pass_with_any_frame() {
    let packets: [&[u8]; 3] = [&[0x53, 4, 2, 6, 0, 0, 0, 1], &[0, 0, 0xFF], &[9]];
    let mut bytes = Vec::new();
    for p in packets {
        let mut f = [0u8; 32];
        let n = Cobs.encode(p, &mut f).unwrap();
        bytes.extend_from_slice(&f[..n]);
    }
    let mut any: Deframer<64, Cobs, AnyFrame> = Deframer::for_format(Cobs);
    let mut got: Vec<Vec<u8>> = Vec::new();
    any.push(&bytes, |f| got.push(f.to_vec()));
    assert_eq!(got, packets.map(<[u8]>::to_vec));
    // The dttk link message's check refuses them all.
    let mut dttk: Deframer<64, Cobs> = Deframer::new(Cobs);
    dttk.push(&bytes, |_| panic!("not a dttk message"));
    assert_eq!(dttk.stats().bad_lengths, 3);
}

/// Re-frame, with `framer`, each message of the stream `framing` made.
fn reframe(framer: &impl Framer, framing: Framing, framed: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 600];
    let mut rest = framed;
    let mut d: Deframer = Deframer::new(framing);
    while let Some(msg) = d.decode(&mut rest) {
        let n = framer.encode(msg, &mut buf).unwrap();
        assert!(n <= framer.max_encoded_len(msg.len()));
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn static_framings_frame_as_the_runtime_choice() {
    let data = random(3000);
    let (dttk, _) = stream(&Framing::Dttk, &data);
    assert!(reframe(&Stuffing, Framing::Dttk, &dttk) == dttk);
    let (cobs, _) = stream(&Framing::Cobs, &data);
    assert!(reframe(&Cobs, Framing::Cobs, &cobs) == cobs);
    assert_eq!(Stuffing.max_encoded_len(256), 514);
    assert_eq!(Cobs.max_encoded_len(256), 259);
}
