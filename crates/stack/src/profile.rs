//! The wire-profile seam: what the stack asks of a byte-stream framing and
//! of a link message, so a profile is a set of implementations, not a fork.
//!
//! A wire profile has two halves:
//!
//! * **Framing**, how messages travel on a byte stream: [`Framer`] frames
//!   one message into a caller buffer (worst case known up front), and
//!   [`Deframe`] is the decoding state machine that [`Deframer`] drives,
//!   resumably, over chunks of any size, with the buffer and counters
//!   ([`FrameBuf`], [`DeframerStats`]) every framing shares. The dttk
//!   0xFF/0xFE stuffing ([`dttk::framing::Stuffing`]) and COBS
//!   ([`cobs::Cobs`]) implement both; [`Framing`] chooses one at run time.
//! * **Packets**, what one link message looks like: [`PacketFormat`] checks
//!   a frame and opens a [`PacketView`] on it, which gives the receiver the
//!   fields it acts on (sequence number, channel, control flag, block
//!   number, payload, integrity). The dttk link message
//!   ([`dttk::LinkMessage`]) is the implementation the stack ships. A
//!   deframer needs only the format's [`FrameCheck`]; [`AnyFrame`] passes
//!   every frame, for packets (SPEAD) that travel without a length byte.
//!
//! Everything is generic, not a trait object: each call site is compiled
//! for its framing, and the byte loops run without dynamic dispatch.
//!
//! [`Deframer`]: crate::framing::Deframer
//! [`DeframerStats`]: crate::framing::DeframerStats
//! [`Framing`]: crate::framing::Framing
//! [`dttk::framing::Stuffing`]: crate::dttk::framing::Stuffing
//! [`dttk::LinkMessage`]: crate::dttk::LinkMessage
//! [`cobs::Cobs`]: crate::cobs::Cobs

use crate::error::Result;
use crate::framing::DeframerStats;

/// The sending half of a byte-stream framing.
pub trait Framer {
    /// Worst-case framed size of a `len`-byte message: a buffer this large
    /// never makes [`encode`](Self::encode) fail.
    fn max_encoded_len(&self, len: usize) -> usize;

    /// Frame `msg` into `out`, returning the number of bytes written; an
    /// error (never a panic) if `out` is too small.
    fn encode(&self, msg: &[u8], out: &mut [u8]) -> Result<usize>;
}

/// Where a deframer stands between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeframeState {
    /// Skipping bytes until a frame delimiter.
    Hunt,
    /// Collecting a frame's bytes.
    Collect,
    /// Collecting, and the previous byte was an escape (framings that
    /// escape bytes inside a frame).
    Escaped,
}

/// The receiving half of a byte-stream framing: a state machine over a
/// [`FrameBuf`], driven by [`Deframer`](crate::framing::Deframer).
pub trait Deframe {
    /// The state a fresh deframer starts in: [`DeframeState::Hunt`] to wait
    /// for a first delimiter, [`DeframeState::Collect`] when the stream
    /// starts at a frame boundary.
    fn start(&self) -> DeframeState;

    /// Consume bytes from the front of `input` until a frame is complete in
    /// `buf` and return its length (the frame is `buf.frame(len)`), or
    /// return `None` once `input` is exhausted, the partial frame kept in
    /// `buf` for the next call. Count what is dropped in `buf.stats_mut()`
    /// (junk, protocol violations; [`FrameBuf::append`] counts overflows);
    /// the caller counts frames and checks their length.
    fn step<const N: usize>(&self, buf: &mut FrameBuf<N>, input: &mut &[u8]) -> Option<usize>;
}

/// The frame being collected, the deframer's state and its counters: what
/// every framing's [`Deframe`] works on.
#[derive(Clone)]
pub struct FrameBuf<const N: usize> {
    state: DeframeState,
    /// Bytes of the frame being collected in `buf`.
    len: usize,
    buf: [u8; N],
    stats: DeframerStats,
}

impl<const N: usize> FrameBuf<N> {
    /// An empty buffer in `state`.
    pub const fn new(state: DeframeState) -> Self {
        FrameBuf {
            state,
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

    /// The state.
    pub fn state(&self) -> DeframeState {
        self.state
    }

    /// Change the state, keeping the bytes collected.
    pub fn set_state(&mut self, state: DeframeState) {
        self.state = state;
    }

    /// Bytes of the frame collected so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no frame bytes are held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forget the frame being collected and go to `state`; returns how many
    /// bytes it held, which stay readable through [`frame`](Self::frame)
    /// and [`frame_mut`](Self::frame_mut) until the next append.
    pub fn drop_frame(&mut self, state: DeframeState) -> usize {
        let n = self.len;
        self.len = 0;
        self.state = state;
        n
    }

    /// Append a run of frame bytes. On overflow the frame is dropped,
    /// counted, its bytes held so far counted as junk (the caller counts
    /// the run's), the state set to [`DeframeState::Hunt`], and `false`
    /// returned. Counting the held bytes keeps the statistics a function of
    /// the byte stream alone: however the stream was chunked, the frame's
    /// bytes are junk once.
    #[inline]
    pub fn append(&mut self, run: &[u8]) -> bool {
        if self.len + run.len() > N {
            self.stats.overflows += 1;
            self.stats.junk_bytes += self.len as u64;
            self.drop_frame(DeframeState::Hunt);
            false
        } else {
            self.buf[self.len..self.len + run.len()].copy_from_slice(run);
            self.len += run.len();
            true
        }
    }

    /// The free room after the bytes collected, for a deframer that copies
    /// whole words in and then [`commit`](Self::commit)s those that belong
    /// to the frame.
    #[inline(always)]
    pub fn room(&mut self) -> &mut [u8] {
        &mut self.buf[self.len..]
    }

    /// Count the next `n` bytes of [`room`](Self::room) as the frame's
    /// (at most the room there is).
    #[inline(always)]
    pub fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(N);
    }

    /// The first `len` bytes of the buffer (a frame just completed); an
    /// empty slice past the capacity.
    pub fn frame(&self, len: usize) -> &[u8] {
        self.buf.get(..len).unwrap_or(&[])
    }

    /// The first `len` bytes, mutable (to decode a frame in place).
    pub fn frame_mut(&mut self, len: usize) -> &mut [u8] {
        self.buf.get_mut(..len).unwrap_or(&mut [])
    }

    /// Counters so far.
    pub fn stats(&self) -> &DeframerStats {
        &self.stats
    }

    /// Counters, for a framing to count what it drops.
    pub fn stats_mut(&mut self) -> &mut DeframerStats {
        &mut self.stats
    }
}

/// What the receiver reads from one link message whose length has been
/// checked: after [`PacketFormat::packet`] succeeds, no method panics.
pub trait PacketView {
    /// Link sequence number (+1 per message, modulo 256).
    fn seqno(&self) -> u8;
    /// Channel id, 0..=127.
    fn channel_id(&self) -> u8;
    /// True for a control message (META, END) rather than a data block.
    fn is_control(&self) -> bool;
    /// Block number of a data message.
    fn blockno(&self) -> u16;
    /// Payload bytes.
    fn payload(&self) -> &[u8];
    /// Check the message's integrity (the dttk CRC), an error naming the
    /// mismatch otherwise.
    fn verify(&self) -> Result<()>;
}

/// The check a [`Deframer`](crate::framing::Deframer) applies to each
/// frame it completes: a frame that fails is dropped there and counted as a
/// bad length.
pub trait FrameCheck {
    /// True if `frame` (never empty) may be a message of this format (the
    /// dttk `len` byte must match the frame's length).
    fn frame_ok(frame: &[u8]) -> bool;
}

/// Every frame passes: for messages that carry no length of their own, such
/// as SPEAD packets sent over a byte link, whose own parser checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AnyFrame;

impl FrameCheck for AnyFrame {
    #[inline]
    fn frame_ok(_: &[u8]) -> bool {
        true
    }
}

/// The packet half of a wire profile: how a link message is recognised.
pub trait PacketFormat: FrameCheck {
    /// A checked view over one message's bytes.
    type Packet<'a>: PacketView;

    /// Check the message's length and open a view on it.
    fn packet(msg: &[u8]) -> Result<Self::Packet<'_>>;
}
