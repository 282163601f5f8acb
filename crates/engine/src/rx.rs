//! The receiving half: the stack's [`Receiver`] fed from a link, and how a
//! transfer ended.

use perfkit_stack::{Event, Receiver, Sink, State};

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
            RecvEnd::Failed => "the transfer failed (conflicting META or SHA-256 mismatch)",
            RecvEnd::EndIncomplete => "END arrived with blocks missing",
            RecvEnd::Eof => "the stream ended before the transfer completed",
            RecvEnd::Idle => "the link went quiet before the transfer completed",
            RecvEnd::Complete => "verification failed",
        }
    }
}

/// A receiver and what its events said so far.
pub struct RxPump<'r, K, const B: usize = 8192> {
    receiver: &'r mut Receiver<K, B>,
    ended: Option<RecvEnd>,
}

impl<'r, K: Sink, const B: usize> RxPump<'r, K, B> {
    /// A pump feeding `receiver`.
    pub fn new(receiver: &'r mut Receiver<K, B>) -> Self {
        RxPump {
            receiver,
            ended: None,
        }
    }

    /// The receiver, for its state, stats and sink.
    pub fn receiver(&self) -> &Receiver<K, B> {
        self.receiver
    }

    /// Feeds bytes from a byte link at `now_ns`; returns how many messages
    /// they completed (every deframed frame yields one event).
    pub fn on_bytes(&mut self, bytes: &[u8], now_ns: u64) -> u32 {
        let mut messages = 0;
        let ended = &mut self.ended;
        self.receiver.on_bytes(bytes, now_ns, &mut |ev| {
            messages += 1;
            note(ended, ev);
        });
        messages
    }

    /// Feeds one message from a packet link at `now_ns`.
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
