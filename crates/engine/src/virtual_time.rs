//! Two devices in virtual time: the pumps as the sender and receiver of the
//! UART model's discrete-event simulation (`perfkit_link::sim`), each
//! charged its device profile's CPU costs.

use perfkit_link::sim::{self, SenderStep, SimConfig, SimReceiver, SimReport, SimSender};
use perfkit_link::stages::{MessageInfo, MessageKind};
use perfkit_stack::{Deframe, Event, Framer, PacketFormat, Sink, Source};

use crate::{Error, Next, RxPump, TxPump};

struct Tx<'p, 's, S, F> {
    pump: &'p mut TxPump<'s, S, F>,
    error: Option<Error>,
}

impl<S: Source, F: Framer> SimSender for Tx<'_, '_, S, F> {
    fn poll(&mut self, now_ns: u64) -> SenderStep<'_> {
        match self.pump.poll(now_ns) {
            Ok(Next::Send(frame)) => SenderStep::Frame(frame),
            Ok(Next::WaitUntil(t)) => SenderStep::WaitUntil(t),
            Ok(Next::Done) => SenderStep::Done,
            Err(e) => {
                self.error = Some(e);
                SenderStep::Done
            }
        }
    }

    fn message_info(&self) -> MessageInfo {
        let m = self.pump.last_message();
        MessageInfo {
            len: m.len(),
            // The channel byte's top bit marks control messages (META, END).
            kind: match m.get(2) {
                Some(chn) if chn & 0x80 != 0 => MessageKind::Control,
                _ => MessageKind::Data,
            },
        }
    }
}

impl<K: Sink, const B: usize, D: Deframe, P: PacketFormat> SimReceiver for RxPump<'_, K, B, D, P> {
    fn on_bytes(&mut self, now_ns: u64, bytes: &[u8]) -> u32 {
        // Every frame the deframer completes is one message the device
        // spends its per-message cost on.
        RxPump::on_bytes(self, bytes, now_ns)
    }
    fn on_bytes_info(&mut self, now_ns: u64, bytes: &[u8], out: &mut Vec<MessageInfo>) -> u32 {
        // Each deframed message is offered to `claim` (which only notes its
        // length) and then yields one event, in order.
        let mut lens = Vec::new();
        let mut kinds = Vec::new();
        let n = self.on_bytes_shared(
            bytes,
            now_ns,
            |m| {
                lens.push(m.len());
                false
            },
            |ev| kinds.push(message_kind(ev)),
        );
        out.extend(
            lens.into_iter()
                .zip(kinds)
                .map(|(len, kind)| MessageInfo { len, kind }),
        );
        n
    }
    fn finished(&self) -> bool {
        RxPump::finished(self)
    }
}

/// What a receiver's event says a message was, for its stage costs.
pub fn message_kind(ev: Event) -> MessageKind {
    match ev {
        Event::Block { .. } | Event::Duplicate { .. } | Event::Complete { .. } => MessageKind::Data,
        Event::Meta { .. } | Event::MetaRepeat | Event::End { .. } => MessageKind::Control,
        Event::Failed(_) | Event::Dropped(_) => MessageKind::Other,
    }
}

/// Runs a transfer between two simulated devices over the virtual UART in
/// `cfg`: the same pumps as every other driver, time entirely virtual.
pub fn simulate<S: Source, F: Framer, K: Sink, const B: usize, D: Deframe, P: PacketFormat>(
    cfg: &SimConfig,
    tx: &mut TxPump<'_, S, F>,
    rx: &mut RxPump<'_, K, B, D, P>,
) -> Result<SimReport, Error> {
    let mut sender = Tx {
        pump: tx,
        error: None,
    };
    let report = sim::run(cfg, &mut sender, rx)?;
    match sender.error {
        Some(e) => Err(e),
        None => Ok(report),
    }
}
