//! The receiving half: the stack's [`Receiver`] fed from a link, and how a
//! transfer ended.

use perfkit_stack::dttk::LinkMessage;
use perfkit_stack::{Deframe, Event, Framing, PacketFormat, Receiver, Sink, State};

/// How a receive loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvEnd {
    /// Every block arrived and the SHA-256 matched.
    Complete,
    /// END arrived with blocks missing.
    EndIncomplete,
    /// The transfer failed (conflicting META, SHA-256 mismatch).
    Failed,
    /// The link closed before END.
    Eof,
    /// Nothing arrived for the idle time after bytes had flowed.
    Idle,
}

impl RecvEnd {
    /// Why a transfer that ended this way left no verified file.
    pub fn why_incomplete(self) -> &'static str {
        match self {
            RecvEnd::Failed => "the transfer failed (the receiver's failure says why)",
            RecvEnd::EndIncomplete => "END arrived with blocks missing",
            RecvEnd::Eof => "the stream ended before the transfer completed",
            RecvEnd::Idle => "the link went quiet before the transfer completed",
            RecvEnd::Complete => "verification failed",
        }
    }
}

/// A receiver and what its events said so far. `F` and `P` are the
/// receiver's framing and link message format (see
/// [`perfkit_stack::profile`]), compiled in.
pub struct RxPump<'r, K, const B: usize = 8192, F = Framing, P = LinkMessage> {
    receiver: &'r mut Receiver<K, B, F, P>,
    ended: Option<RecvEnd>,
}

impl<'r, K: Sink, const B: usize, F: Deframe, P: PacketFormat> RxPump<'r, K, B, F, P> {
    /// A pump feeding `receiver`.
    pub fn new(receiver: &'r mut Receiver<K, B, F, P>) -> Self {
        RxPump {
            receiver,
            ended: None,
        }
    }

    /// The receiver, for its state, stats and sink.
    pub fn receiver(&self) -> &Receiver<K, B, F, P> {
        self.receiver
    }

    /// Feeds bytes from a byte link at `now_ns`; returns how many messages
    /// they completed (every deframed frame yields one event).
    pub fn on_bytes(&mut self, bytes: &[u8], now_ns: u64) -> u32 {
        self.on_bytes_shared(bytes, now_ns, |_| false, |_| {})
    }

    /// Feeds bytes from a byte link shared with another protocol (a
    /// device's control channel): every deframed frame is offered to `claim`
    /// first, and one it takes (returns `true`) never reaches the receiver.
    /// The receiver's events also go to `on_event`. Returns how many
    /// messages reached the receiver.
    // Never inlined (nor `on_message`): a per-function profile (callgrind,
    // `perfkit run --measure instructions`) counts the receiving side as
    // what runs under these two.
    #[inline(never)]
    pub fn on_bytes_shared(
        &mut self,
        bytes: &[u8],
        now_ns: u64,
        mut claim: impl FnMut(&[u8]) -> bool,
        mut on_event: impl FnMut(Event),
    ) -> u32 {
        let mut messages = 0;
        let ended = &mut self.ended;
        self.receiver
            .on_bytes_shared(bytes, now_ns, &mut claim, &mut |ev| {
                messages += 1;
                note(ended, ev);
                on_event(ev);
            });
        messages
    }

    /// Feeds one message from a packet link at `now_ns`.
    #[inline(never)]
    pub fn on_message(&mut self, msg: &[u8], now_ns: u64) {
        let ev = self.receiver.on_message(msg, now_ns);
        note(&mut self.ended, ev);
    }

    /// How the transfer ended, once an event said so.
    pub fn ended(&self) -> Option<RecvEnd> {
        self.ended
    }

    /// The receiver needs nothing more: complete, or failed for good.
    pub fn finished(&self) -> bool {
        matches!(self.receiver.state(), State::Complete | State::Failed)
    }

    /// How the transfer ended when the link closed.
    pub fn on_eof(&self) -> RecvEnd {
        match self.receiver.state() {
            State::Complete => RecvEnd::Complete,
            State::Failed => RecvEnd::Failed,
            _ => RecvEnd::Eof,
        }
    }
}

fn note(ended: &mut Option<RecvEnd>, ev: Event) {
    match ev {
        Event::Complete { .. } => *ended = Some(RecvEnd::Complete),
        Event::End { missing } if missing > 0 => {
            ended.get_or_insert(RecvEnd::EndIncomplete);
        }
        Event::Failed(_) => *ended = Some(RecvEnd::Failed),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use perfkit_stack::wire::{self, EndRepr};
    use perfkit_stack::{Framing, MemorySink, Receiver};

    use super::*;

    /// One framed dttk message on `chn` with a one-byte payload.
    fn frame(out: &mut Vec<u8>, seq: u8, chn: u8, payload: u8) {
        let mut msg = [0u8; 16];
        let n = wire::build(&mut msg, seq, chn, 0, 1, |p| {
            p[0] = payload;
            Ok(())
        })
        .unwrap();
        let mut f = [0u8; 40];
        let m = Framing::Dttk.encode(&msg[..n], &mut f).unwrap();
        out.extend_from_slice(&f[..m]);
    }

    #[test]
    fn claimed_frames_never_reach_the_receiver() {
        // Data (channel 0) with a control message of another protocol
        // (channel 0xFE, its own sequence numbers) in between.
        let mut bytes = Vec::new();
        frame(&mut bytes, 0, 0x80, 0xAA); // a control type dttk does not define
        frame(&mut bytes, 40, 0xFE, 0xC7);
        let mut end = [0u8; 1];
        EndRepr.emit(&mut end).unwrap();
        frame(&mut bytes, 1, 0x80, end[0]);
        let mut rx: Receiver<_, 1> = Receiver::new(0, MemorySink::new([0u8; 8]), Framing::Dttk);
        let mut pump = RxPump::new(&mut rx);
        let mut claimed = Vec::new();
        let mut events = 0;
        let n = pump.on_bytes_shared(
            &bytes,
            7,
            |f| {
                let theirs = f.get(2) == Some(&0xFE);
                if theirs {
                    claimed.push(f[wire::HEADER_LEN]);
                }
                theirs
            },
            |_| events += 1,
        );
        assert_eq!((n, events), (2, 2));
        assert_eq!(claimed, [0xC7]);
        let c = pump.receiver().counters();
        assert_eq!(
            (c.link.messages, c.link.seq_gaps, c.link.other_channel),
            (2, 0, 0)
        );
    }
}
