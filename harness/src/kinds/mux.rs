//! Several transfers of the input at once over one virtual-time UART, on
//! consecutive channels: the senders take turns message by message (round
//! robin, skipping one that waits for its throttle or has finished), and
//! one receiving device runs the stack's multiplexer ([`Mux`]), one
//! receiver per channel. The record's sides are the aggregate; each
//! transfer's own rates and Jain's fairness index over their receive rates
//! are in its metrics.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use perfkit_engine::{message_kind, Next, TxPump};
use perfkit_link::sim::{self, SenderStep, SimConfig, SimReceiver, SimSender};
use perfkit_link::stages::{MessageInfo, MessageKind};
use perfkit_report::model::Side;
use perfkit_stack::{Event, Framing, HashingSink, MemorySource, Mux, State};

use super::endpoint::{self, Rx};
use super::input::Input;
use super::Outcome;
use crate::spec::TransferSpec;

/// The senders, taking turns.
struct RoundRobin<'p, 's> {
    pumps: Vec<TxPump<'p, MemorySource<'s>>>,
    next: usize,
    last: usize,
    done: Vec<bool>,
    frame: Vec<u8>,
    error: Option<perfkit_engine::Error>,
}

impl SimSender for RoundRobin<'_, '_> {
    fn poll(&mut self, now_ns: u64) -> SenderStep<'_> {
        let n = self.pumps.len();
        let mut wake: Option<u64> = None;
        for k in 0..n {
            let i = (self.next + k) % n;
            if self.done[i] {
                continue;
            }
            match self.pumps[i].poll(now_ns) {
                Ok(Next::Send(f)) => {
                    // Copied out: a borrow of one pump cannot leave the loop.
                    self.frame.clear();
                    self.frame.extend_from_slice(f);
                    self.last = i;
                    self.next = i + 1;
                    return SenderStep::Frame(&self.frame);
                }
                Ok(Next::WaitUntil(t)) => wake = Some(wake.map_or(t, |w| w.min(t))),
                Ok(Next::Done) => self.done[i] = true,
                Err(e) => {
                    self.error = Some(e);
                    return SenderStep::Done;
                }
            }
        }
        match wake {
            Some(t) => SenderStep::WaitUntil(t),
            None => SenderStep::Done,
        }
    }

    fn message_info(&self) -> MessageInfo {
        let m = self.pumps[self.last].last_message();
        MessageInfo {
            len: m.len(),
            kind: match m.get(2) {
                Some(chn) if chn & 0x80 != 0 => MessageKind::Control,
                _ => MessageKind::Data,
            },
        }
    }
}

/// The receiving device: one receiver per channel behind the multiplexer.
struct MuxRx<const C: usize>(Mux<HashingSink, C>);

impl<const C: usize> SimReceiver for MuxRx<C> {
    fn on_bytes(&mut self, now_ns: u64, bytes: &[u8]) -> u32 {
        let mut n = 0;
        self.0.on_bytes(bytes, now_ns, &mut |_, _| n += 1);
        n
    }

    fn on_bytes_info(&mut self, now_ns: u64, bytes: &[u8], out: &mut Vec<MessageInfo>) -> u32 {
        let mut n = 0;
        self.0.on_bytes(bytes, now_ns, &mut |_, ev| {
            n += 1;
            let len = match ev {
                Event::Block { len, .. } => len as usize + 7,
                _ => 0,
            };
            out.push(MessageInfo {
                len,
                kind: message_kind(ev),
            });
        });
        n
    }

    fn finished(&self) -> bool {
        self.0
            .receivers()
            .iter()
            .all(|r| matches!(r.state(), State::Complete | State::Failed))
    }
}

/// Runs `t.mux_transfers` transfers of the input over the line of `sc`.
pub fn run(sc: &SimConfig, t: &TransferSpec, input: &Input) -> anyhow::Result<Outcome> {
    match t.mux_transfers {
        2 => run_n::<2>(sc, t, input),
        3 => run_n::<3>(sc, t, input),
        4 => run_n::<4>(sc, t, input),
        n => bail!("`mux_transfers`: {n} is not one of 2, 3, 4"),
    }
}

fn run_n<const C: usize>(
    sc: &SimConfig,
    t: &TransferSpec,
    input: &Input,
) -> anyhow::Result<Outcome> {
    if t.channel as usize + C - 1 > 127 {
        bail!(
            "`channel`: {} transfers from channel {} need channels up to {}, above 127",
            C,
            t.channel,
            t.channel as usize + C - 1
        );
    }
    let framing: Framing = t.framing();
    let name = endpoint::file_name(&input.path);
    let mut senders = Vec::with_capacity(C);
    for k in 0..C {
        let mut one = t.clone();
        one.channel = t.channel + k as u8;
        senders.push(endpoint::sender(&one, &input.bytes, &name)?);
    }
    let receivers: [Rx; C] =
        std::array::from_fn(|k| endpoint::receiver(t.channel + k as u8, framing, false));
    let mut rx = MuxRx(Mux::new(receivers, framing));
    let mut tx = RoundRobin {
        pumps: senders
            .iter_mut()
            .map(|s| TxPump::framed(s, framing))
            .collect(),
        next: 0,
        last: 0,
        done: vec![false; C],
        frame: Vec::new(),
        error: None,
    };
    let report = sim::run(sc, &mut tx, &mut rx).context("uart model")?;
    if let Some(e) = tx.error.take() {
        return Err(anyhow::Error::new(e).context("uart model"));
    }
    drop(tx);
    // Aggregate sides: every transfer's blocks and bytes over the span.
    let blocks: u64 = senders.iter().map(|s| s.stats().blocks).sum();
    let bytes: u64 = senders.iter().map(|s| s.stats().bytes).sum();
    let tx_side = Side::new(report.sender.span_ns() as f64 / 1e9, blocks, bytes);
    let rxs = rx.0.receivers();
    let first = rxs.iter().filter_map(|r| r.stats().first_ns).min();
    let last = rxs.iter().map(|r| r.stats().last_ns).max().unwrap_or(0);
    let span = first.map_or(0, |f| last.saturating_sub(f));
    let rx_side = Side::new(
        span as f64 / 1e9,
        rxs.iter().map(|r| r.stats().blocks).sum(),
        rxs.iter().map(|r| r.stats().bytes).sum(),
    );
    // The run is intact when every transfer is; otherwise the first that is not says why.
    let verdicts: Vec<_> = rxs
        .iter()
        .map(|r| endpoint::integrity(&input.sha256, r))
        .collect();
    let integrity = verdicts
        .iter()
        .find(|v| !v.ok)
        .unwrap_or(&verdicts[0])
        .clone();
    let mut out = super::uart::outcome(sc, &report, tx_side, rx_side, integrity);
    let mut rates = Vec::with_capacity(C);
    for (k, (s, r)) in senders.iter().zip(rxs.iter()).enumerate() {
        let (ts, rs) = (endpoint::side(s.stats()), endpoint::side(r.stats()));
        let m: BTreeMap<String, f64> = [
            ("tx_pps", ts.pps),
            ("tx_bps", ts.bps),
            ("rx_pps", rs.pps),
            ("rx_bps", rs.bps),
            ("intact", verdicts[k].ok as u8 as f64),
        ]
        .into_iter()
        .map(|(name, v)| (format!("transfer{}.{name}", k + 1), v))
        .collect();
        out.metrics.extend(m);
        rates.push(rs.bps);
    }
    out.metrics.insert("fairness_jain".into(), jain(&rates));
    Ok(out)
}

/// Jain's fairness index: 1 when every share is equal, 1/n when one takes all.
fn jain(x: &[f64]) -> f64 {
    let sum: f64 = x.iter().sum();
    let sq: f64 = x.iter().map(|v| v * v).sum();
    if sq == 0.0 {
        0.0
    } else {
        sum * sum / (x.len() as f64 * sq)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn jain_is_one_for_equal_shares_and_one_over_n_for_one_taker() {
        assert!((super::jain(&[5.0, 5.0, 5.0]) - 1.0).abs() < 1e-12);
        assert!((super::jain(&[9.0, 0.0, 0.0]) - 1.0 / 3.0).abs() < 1e-12);
    }
}
