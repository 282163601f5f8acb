//! The per-stage device model: what each stage of a device's send and
//! receive path costs, charged stage by stage in virtual time, and the
//! stage table the simulated device would have printed.
//!
//! The stages are the functions the field timed on its MicroPython agent
//! (`add_header_and_send`, `crc16`, `get_next_packet_into`) and the steps
//! around them. A stage costs `per_call_us + per_byte_us x bytes`, where
//! the bytes are the stage's own (below). With `min_us`/`max_us` set and a
//! run that asks for spread (a non-zero seed), each call's fixed part is
//! drawn between them with the mean kept at `per_call_us`, so the table's
//! min and max look like a real device's; without, every call costs its
//! mean, and the model is exactly the lump profile it was derived from.
//!
//! | side | stage | charged for | bytes |
//! |---|---|---|---|
//! | send | `read_block` | every data message | payload |
//! | send | `meta` | every control message (META, END) | message |
//! | send | `add_header_and_send` | every message | frame on the wire |
//! | send | `crc16` (inside `add_header_and_send`) | every message | CRC'd bytes (message - 2) |
//! | send | `uart_write` (inside `add_header_and_send`) | every write call (a frame, or each chunk of it) | bytes written |
//! | receive | `get_next_packet_into` | every byte taken from the buffer | those bytes |
//! | receive | `parse` | every completed message | message |
//! | receive | `crc16` | every completed message | CRC'd bytes |
//! | receive | `store` | every data message (new or repeat) | payload |
//! | receive | `meta` | every control message | message |
//!
//! The sender spends all of a message's CPU before it writes the frame (the
//! write then blocks per the UART's transmit buffer, timed as `uart.write`
//! inside `add_header_and_send`); the receiver spends its costs after taking
//! bytes, as the lump model did, so a profile whose stages add up to its lump
//! costs gives the same figures to the nanosecond.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::profile::{Costs, ReceiveCosts};
use crate::{Error, Result};

/// What a message is, as far as its costs go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MessageKind {
    /// A data message (a block, new or repeated).
    #[default]
    Data,
    /// A control message (META, END).
    Control,
    /// A message the receiver dropped (bad CRC, other channel, ...).
    Other,
}

/// What the model knows of one message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MessageInfo {
    /// Bytes of the message before framing (0 when unknown).
    pub len: usize,
    /// Its kind.
    pub kind: MessageKind,
}

/// Overhead of a dttk message around its payload (header 5, CRC 2).
const OVERHEAD: usize = 7;

impl MessageInfo {
    fn crc_bytes(&self) -> u64 {
        self.len.saturating_sub(2) as u64
    }
    fn payload(&self) -> u64 {
        self.len.saturating_sub(OVERHEAD) as u64
    }
}

/// One stage's cost, in microseconds (fractions allowed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageCost {
    /// Fixed cost of one call.
    #[serde(default)]
    pub per_call_us: f64,
    /// Cost per byte the stage handles.
    #[serde(default)]
    pub per_byte_us: f64,
    /// Shortest fixed cost of a call, when the run draws a spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_us: Option<f64>,
    /// Longest fixed cost of a call, when the run draws a spread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_us: Option<f64>,
}

fn ns(us: f64) -> u64 {
    // Checked finite and non-negative when loaded or set.
    (us * 1000.0).round() as u64
}

impl StageCost {
    /// True when the stage costs nothing.
    pub fn is_free(&self) -> bool {
        self.per_call_us == 0.0 && self.per_byte_us == 0.0
    }

    /// Cost of one call over `bytes`, ns; the fixed part drawn from the
    /// spread when `rng` is given and the stage has one.
    fn charge(&self, bytes: u64, rng: Option<&mut ChaCha8Rng>) -> u64 {
        let mean = self.per_call_us;
        let fixed = match (rng, self.min_us, self.max_us) {
            (Some(rng), Some(lo), Some(hi)) if lo <= mean && mean <= hi && lo < hi => {
                // Above the mean with probability p, below it otherwise,
                // uniform within each part: E = mean exactly.
                let p = (mean - lo) / (hi - lo);
                let u: f64 = rng.random();
                let v: f64 = rng.random();
                if u < p {
                    mean + v * (hi - mean)
                } else {
                    lo + v * (mean - lo)
                }
            }
            _ => mean,
        };
        ns(fixed).saturating_add(ns(self.per_byte_us).saturating_mul(bytes))
    }

    fn check(&self, what: &str) -> Result<()> {
        let vals = [
            Some(self.per_call_us),
            Some(self.per_byte_us),
            self.min_us,
            self.max_us,
        ];
        if vals.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::config(
                what,
                "stage costs must be finite and not negative",
            ));
        }
        if let (Some(lo), Some(hi)) = (self.min_us, self.max_us) {
            if !(lo <= self.per_call_us && self.per_call_us <= hi) {
                return Err(Error::config(
                    what,
                    format!(
                        "min_us {lo} <= per_call_us {} <= max_us {hi} does not hold",
                        self.per_call_us
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The sending device's stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendStages {
    /// Fetching the next block for a data message.
    #[serde(default)]
    pub read_block: StageCost,
    /// Building a control message (META, END).
    #[serde(default)]
    pub meta: StageCost,
    /// Adding the header, framing and writing one message (its own part;
    /// `crc16` and the write are timed inside it).
    #[serde(default)]
    pub add_header_and_send: StageCost,
    /// The message's CRC.
    #[serde(default)]
    pub crc16: StageCost,
    /// One call of the UART driver's write: its own CPU per call and per
    /// byte handed over (the wait for room is the line's, not this cost).
    #[serde(default)]
    pub uart_write: StageCost,
}

/// The receiving device's stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiveStages {
    /// Taking bytes from the UART buffer and deframing them.
    #[serde(default)]
    pub get_next_packet_into: StageCost,
    /// Checking a completed message's header and length.
    #[serde(default)]
    pub parse: StageCost,
    /// Checking its CRC.
    #[serde(default)]
    pub crc16: StageCost,
    /// Storing a data message's block (or recognising a repeat).
    #[serde(default)]
    pub store: StageCost,
    /// Handling a control message (META, END).
    #[serde(default)]
    pub meta: StageCost,
}

/// Names of the send stages, as profiles, parameters and tables write them.
pub const SEND_STAGES: &[&str] = &[
    "read_block",
    "meta",
    "add_header_and_send",
    "crc16",
    "uart_write",
];
/// Names of the receive stages.
pub const RECEIVE_STAGES: &[&str] = &["get_next_packet_into", "parse", "crc16", "store", "meta"];

/// Both devices' stages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stages {
    /// The sending device's.
    #[serde(default)]
    pub send: SendStages,
    /// The receiving device's.
    #[serde(default)]
    pub receive: ReceiveStages,
}

/// Which device a stage belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The sender.
    Send,
    /// The receiver.
    Receive,
}

impl Side {
    /// `send` or `receive`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Send => "send",
            Side::Receive => "receive",
        }
    }

    /// Its stage names.
    pub fn stages(self) -> &'static [&'static str] {
        match self {
            Side::Send => SEND_STAGES,
            Side::Receive => RECEIVE_STAGES,
        }
    }
}

impl Stages {
    /// The stages equivalent to lump costs: the sender's whole per-message
    /// and per-byte cost in `add_header_and_send`, the receiver's per-byte
    /// cost in `get_next_packet_into` and per-message cost in `parse`.
    pub fn from_lumps(send: &Costs, receive: &ReceiveCosts) -> Self {
        let us = |ns: u64| ns as f64 / 1000.0;
        let mut s = Stages::default();
        s.send.add_header_and_send.per_call_us = us(send.per_message_ns);
        s.send.add_header_and_send.per_byte_us = us(send.per_byte_ns);
        s.receive.get_next_packet_into.per_byte_us = us(receive.per_byte_ns);
        s.receive.parse.per_call_us = us(receive.per_message_ns);
        s
    }

    /// A stage by side and name.
    pub fn stage_mut(&mut self, side: Side, name: &str) -> Option<&mut StageCost> {
        let (s, r) = (&mut self.send, &mut self.receive);
        Some(match (side, name) {
            (Side::Send, "read_block") => &mut s.read_block,
            (Side::Send, "meta") => &mut s.meta,
            (Side::Send, "add_header_and_send") => &mut s.add_header_and_send,
            (Side::Send, "crc16") => &mut s.crc16,
            (Side::Send, "uart_write") => &mut s.uart_write,
            (Side::Receive, "get_next_packet_into") => &mut r.get_next_packet_into,
            (Side::Receive, "parse") => &mut r.parse,
            (Side::Receive, "crc16") => &mut r.crc16,
            (Side::Receive, "store") => &mut r.store,
            (Side::Receive, "meta") => &mut r.meta,
            _ => return None,
        })
    }

    /// A stage by side and name, read only.
    pub fn stage(&self, side: Side, name: &str) -> Option<StageCost> {
        let mut copy = *self;
        copy.stage_mut(side, name).map(|c| *c)
    }

    /// Sets one figure of a stage: `field` is `per_call_us`, `per_byte_us`,
    /// or `scale` (multiplies the stage's every figure, spread included).
    pub fn set(&mut self, side: Side, stage: &str, field: &str, value: f64) -> Result<()> {
        let what = format!("device.{}.{stage}.{field}", side.name());
        if !value.is_finite() || value < 0.0 {
            return Err(Error::config(&what, "must be finite and not negative"));
        }
        let c = self.stage_mut(side, stage).ok_or_else(|| {
            Error::config(
                &what,
                format!(
                    "no {} stage `{stage}` (known: {})",
                    side.name(),
                    side.stages().join(", ")
                ),
            )
        })?;
        match field {
            "per_call_us" => {
                // A new mean outside the old spread moves the spread with it.
                let shift = value - c.per_call_us;
                c.per_call_us = value;
                c.min_us = c.min_us.map(|v| (v + shift).max(0.0));
                c.max_us = c.max_us.map(|v| v + shift);
            }
            "per_byte_us" => c.per_byte_us = value,
            "scale" => {
                c.per_call_us *= value;
                c.per_byte_us *= value;
                c.min_us = c.min_us.map(|v| v * value);
                c.max_us = c.max_us.map(|v| v * value);
            }
            other => {
                return Err(Error::config(
                    &what,
                    format!("`{other}` is not one of per_call_us, per_byte_us, scale"),
                ))
            }
        }
        c.check(&what)
    }

    /// Multiplies every stage of one side.
    pub fn scale_side(&mut self, side: Side, factor: f64) -> Result<()> {
        for name in side.stages() {
            self.set(side, name, "scale", factor)?;
        }
        Ok(())
    }

    /// Refuses negative, infinite or inconsistent figures.
    pub fn check(&self) -> Result<()> {
        for side in [Side::Send, Side::Receive] {
            for name in side.stages() {
                if let Some(c) = self.stage(side, name) {
                    c.check(&format!("stages.{}.{name}", side.name()))?;
                }
            }
        }
        Ok(())
    }
}

/// One charged stage call: which stage and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Charge {
    pub stage: &'static str,
    pub ns: u64,
    pub bytes: u64,
}

/// Charges stages and draws their spread.
#[derive(Debug)]
pub(crate) struct Charger {
    stages: Stages,
    rng: Option<ChaCha8Rng>,
}

impl Charger {
    pub fn new(stages: Stages, spread_seed: u64) -> Self {
        Charger {
            stages,
            rng: (spread_seed != 0).then(|| ChaCha8Rng::seed_from_u64(spread_seed)),
        }
    }

    fn one(&mut self, out: &mut Vec<Charge>, stage: &'static str, c: StageCost, bytes: u64) {
        if c.is_free() {
            return;
        }
        let ns = c.charge(bytes, self.rng.as_mut());
        out.push(Charge { stage, ns, bytes });
    }

    /// The sender's stages for one message of `frame_len` framed bytes, in
    /// the order they run; `add_header_and_send` is its own part only.
    pub fn send(&mut self, m: &MessageInfo, frame_len: usize, out: &mut Vec<Charge>) {
        let s = self.stages.send;
        out.clear();
        match m.kind {
            MessageKind::Control => self.one(out, "meta", s.meta, m.len as u64),
            _ => self.one(out, "read_block", s.read_block, m.payload()),
        }
        self.one(
            out,
            "add_header_and_send",
            s.add_header_and_send,
            frame_len as u64,
        );
        self.one(out, "crc16", s.crc16, m.crc_bytes());
    }

    /// The CPU of one UART write call handing over `bytes`, ns.
    pub fn write_call(&mut self, bytes: usize) -> u64 {
        let c = self.stages.send.uart_write;
        if c.is_free() {
            return 0;
        }
        c.charge(bytes as u64, self.rng.as_mut())
    }

    /// The receiver's stages for `bytes` taken from the buffer, which
    /// completed `messages`.
    pub fn receive(&mut self, bytes: usize, messages: &[MessageInfo], out: &mut Vec<Charge>) {
        let r = self.stages.receive;
        out.clear();
        self.one(
            out,
            "get_next_packet_into",
            r.get_next_packet_into,
            bytes as u64,
        );
        for m in messages {
            self.one(out, "parse", r.parse, m.len as u64);
            self.one(out, "crc16", r.crc16, m.crc_bytes());
            match m.kind {
                MessageKind::Data => self.one(out, "store", r.store, m.payload()),
                MessageKind::Control => self.one(out, "meta", r.meta, m.len as u64),
                MessageKind::Other => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(c: &[Charge]) -> u64 {
        c.iter().map(|c| c.ns).sum()
    }

    #[test]
    fn lump_stages_cost_what_the_lumps_cost() {
        let send = Costs {
            per_message_ns: 5_703_000,
            per_byte_ns: 11_000,
        };
        let receive = ReceiveCosts {
            per_message_ns: 700,
            per_byte_ns: 4,
            poll_interval_ns: 0,
        };
        let mut ch = Charger::new(Stages::from_lumps(&send, &receive), 0);
        let mut out = Vec::new();
        for (len, kind) in [(57, MessageKind::Data), (63, MessageKind::Control)] {
            let m = MessageInfo { len, kind };
            ch.send(&m, len + 3, &mut out);
            assert_eq!(total(&out), send.cost_ns(1, len as u64 + 3));
            ch.receive(100, &[m, m], &mut out);
            assert_eq!(total(&out), receive.cost_ns(2, 100));
        }
    }

    #[test]
    fn pico_profile_stages_add_up_to_its_lumps() {
        let p = crate::DeviceProfile::builtin("pico-micropython").unwrap();
        let mut ch = Charger::new(p.stages(), 0);
        let mut out = Vec::new();
        for (len, kind) in [
            (57, MessageKind::Data),
            (56, MessageKind::Control),
            (8, MessageKind::Other),
        ] {
            let m = MessageInfo { len, kind };
            for frame in [len + 2, len + 9] {
                ch.send(&m, frame, &mut out);
                assert_eq!(total(&out), p.send.cost_ns(1, frame as u64), "{m:?}");
            }
            ch.receive(23, &[m, m, m], &mut out);
            assert_eq!(total(&out), p.receive.cost_ns(3, 23), "{m:?}");
        }
    }

    #[test]
    fn spread_keeps_the_mean_and_the_bounds() {
        let mut s = Stages::default();
        s.send.crc16 = StageCost {
            per_call_us: 100.0,
            per_byte_us: 0.0,
            min_us: Some(10.0),
            max_us: Some(1000.0),
        };
        let mut ch = Charger::new(s, 7);
        let mut out = Vec::new();
        let (mut sum, mut lo, mut hi) = (0u64, u64::MAX, 0u64);
        let n = 20_000;
        for _ in 0..n {
            ch.send(&MessageInfo::default(), 10, &mut out);
            let c = out.iter().find(|c| c.stage == "crc16").unwrap().ns;
            sum += c;
            lo = lo.min(c);
            hi = hi.max(c);
        }
        let mean = sum as f64 / n as f64;
        assert!((mean - 100_000.0).abs() < 3_000.0, "mean {mean}");
        assert!((10_000..15_000).contains(&lo) && (900_001..=1_000_000).contains(&hi));
        // No seed: every call costs the mean.
        let mut ch = Charger::new(s, 0);
        ch.send(&MessageInfo::default(), 10, &mut out);
        assert_eq!(out[0].ns, 100_000);
    }

    #[test]
    fn set_names_the_stage_and_field() {
        let mut s = Stages::default();
        s.set(Side::Send, "crc16", "per_call_us", 700.0).unwrap();
        s.set(Side::Send, "crc16", "scale", 2.0).unwrap();
        assert_eq!(s.send.crc16.per_call_us, 1400.0);
        let e = s.set(Side::Send, "crc", "per_call_us", 1.0).unwrap_err();
        assert!(e.to_string().contains("known: read_block"), "{e}");
        let e = s.set(Side::Receive, "store", "per_day", 1.0).unwrap_err();
        assert!(e.to_string().contains("per_call_us"), "{e}");
        assert!(s.set(Side::Send, "crc16", "per_call_us", -1.0).is_err());
    }
}
