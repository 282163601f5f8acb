//! The sending half: the stack's [`Sender`], and framing for byte links.

use perfkit_stack::{Framer, Framing, Poll, Sender, Source};

/// Largest message the sender produces.
const MESSAGE: usize = 256;
/// Room for one framed message under either of the stack's framings (the
/// dttk stuffing's worst case, 2 + 2n); a framing that may need more fails
/// its first message with an error naming the sizes.
const FRAMED: usize = Framing::Dttk.max_encoded_len(MESSAGE);
const _: () = assert!(Framing::Cobs.max_encoded_len(MESSAGE) <= FRAMED);

/// What the sender does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// Put these bytes on the link: one framed message for a byte link,
    /// one bare message for a packet link.
    Send(&'a [u8]),
    /// Nothing to send before this time (ns on the run's clock): throttled.
    WaitUntil(u64),
    /// END has been sent.
    Done,
}

/// What [`TxPump::poll_into`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// This many bytes of the destination now hold the next framed message
    /// (a bare message for a packet link).
    Wrote(usize),
    /// Nothing to send before this time (ns on the run's clock): throttled.
    WaitUntil(u64),
    /// END has been sent.
    Done,
}

/// Room [`TxPump::poll_into`] needs in its destination: one message framed
/// in the worst case under either of the stack's framings.
pub const MAX_FRAME: usize = FRAMED;

/// A sender, and the framing its link needs (none for packet links, which
/// keep message boundaries themselves).
///
/// The framing is any [`Framer`] (the run-time [`Framing`] choice by
/// default), compiled in: no dynamic dispatch per message or byte.
/// No allocation and no clock: [`poll`](Self::poll) takes the time, so the
/// same pump runs in real time, in virtual time and in firmware.
pub struct TxPump<'s, S, F = Framing> {
    sender: &'s mut Sender<S>,
    framing: Option<F>,
    msg: [u8; MESSAGE],
    /// Length of the last message built (in `msg`).
    last: usize,
    framed: [u8; FRAMED],
}

impl<'s, S: Source> TxPump<'s, S> {
    /// A pump for a packet link: one bare message per packet.
    pub fn packets(sender: &'s mut Sender<S>) -> Self {
        Self::new(sender, None)
    }
}

impl<'s, S: Source, F: Framer> TxPump<'s, S, F> {
    /// A pump for a byte link: every message is framed with `framing`.
    pub fn framed(sender: &'s mut Sender<S>, framing: F) -> Self {
        Self::new(sender, Some(framing))
    }

    fn new(sender: &'s mut Sender<S>, framing: Option<F>) -> Self {
        TxPump {
            sender,
            framing,
            msg: [0; MESSAGE],
            last: 0,
            framed: [0; FRAMED],
        }
    }

    /// The framing on the link (`None` for packets).
    pub fn framing(&self) -> Option<&F> {
        self.framing.as_ref()
    }

    /// The last message [`poll`](Self::poll) built, before framing.
    pub fn last_message(&self) -> &[u8] {
        &self.msg[..self.last.min(MESSAGE)]
    }

    /// The sender, for its stats and counters.
    pub fn sender(&self) -> &Sender<S> {
        self.sender
    }

    /// The sender's step at `now_ns`, a message (in `msg`) remembered as
    /// the last one: what both polls start with.
    #[inline(always)]
    fn next(&mut self, now_ns: u64) -> Result<Poll, crate::Error> {
        let step = self
            .sender
            .poll(now_ns, &mut self.msg)
            .map_err(|e| crate::Error::Stack("sender", e))?;
        if let Poll::Message(n) = step {
            self.last = n;
        }
        Ok(step)
    }

    /// One step at `now_ns`.
    // Never inlined: a per-function profile (callgrind, `perfkit run
    // --measure instructions`) counts the sending side as what runs under it.
    #[inline(never)]
    pub fn poll(&mut self, now_ns: u64) -> Result<Next<'_>, crate::Error> {
        match self.next(now_ns)? {
            Poll::Message(n) => match &self.framing {
                None => Ok(Next::Send(&self.msg[..n])),
                Some(f) => {
                    let m = f
                        .encode(&self.msg[..n], &mut self.framed)
                        .map_err(|e| crate::Error::Stack("framing", e))?;
                    Ok(Next::Send(&self.framed[..m]))
                }
            },
            Poll::WaitUntil(t) => Ok(Next::WaitUntil(t)),
            Poll::Done => Ok(Next::Done),
        }
    }

    /// [`poll`](Self::poll), with the framed message written straight into
    /// `dst` (a batch being filled for the link) instead of the pump's own
    /// buffer, so it is not copied again. `dst` needs [`MAX_FRAME`] bytes
    /// for any message; a framing that finds it too small fails with an
    /// error naming the sizes.
    // Never inlined, like `poll`: a per-function profile counts the sending
    // side as what runs under it.
    #[inline(never)]
    pub fn poll_into(&mut self, now_ns: u64, dst: &mut [u8]) -> Result<Step, crate::Error> {
        match self.next(now_ns)? {
            Poll::Message(n) => {
                let msg = &self.msg[..n];
                match &self.framing {
                    None => match dst.get_mut(..n) {
                        Some(d) => {
                            d.copy_from_slice(msg);
                            Ok(Step::Wrote(n))
                        }
                        None => Err(crate::Error::Stack(
                            "framing",
                            perfkit_stack::ErrorKind::BufferTooSmall {
                                need: n,
                                have: dst.len(),
                            }
                            .into(),
                        )),
                    },
                    Some(f) => f
                        .encode(msg, dst)
                        .map(Step::Wrote)
                        .map_err(|e| crate::Error::Stack("framing", e)),
                }
            }
            Poll::WaitUntil(t) => Ok(Step::WaitUntil(t)),
            Poll::Done => Ok(Step::Done),
        }
    }
}
