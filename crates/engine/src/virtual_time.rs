//! Two devices in virtual time: the pumps as the sender and receiver of the
//! UART model's discrete-event simulation (`perfkit_link::sim`), each
//! charged its device profile's CPU costs.

use perfkit_link::sim::{self, SenderStep, SimConfig, SimReceiver, SimReport, SimSender};
use perfkit_stack::{Deframe, Framer, PacketFormat, Sink, Source};

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
}

impl<K: Sink, const B: usize, D: Deframe, P: PacketFormat> SimReceiver for RxPump<'_, K, B, D, P> {
    fn on_bytes(&mut self, now_ns: u64, bytes: &[u8]) -> u32 {
        // Every frame the deframer completes is one message the device
        // spends its per-message cost on.
        RxPump::on_bytes(self, bytes, now_ns)
    }
    fn finished(&self) -> bool {
        RxPump::finished(self)
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
