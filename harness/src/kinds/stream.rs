//! Driving a sender or a receiver over a byte link in real time: shared by
//! `perfkit send`/`recv`, the serial kind and the pipe relay.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use perfkit_link::{ByteLink, ReadOutcome};
use perfkit_stack::{Event, Framing, Poll, Sender, Source, State};

use super::endpoint::Rx;

/// Nanoseconds since `t0`.
pub fn ns_since(t0: Instant) -> u64 {
    t0.elapsed().as_nanos() as u64
}

/// Sleeps until `t0 + at_ns` (the throttle's next slot).
pub fn sleep_until(t0: Instant, at_ns: u64) {
    let now = ns_since(t0);
    if at_ns > now {
        std::thread::sleep(Duration::from_nanos(at_ns - now));
    }
}

/// Runs a sender to completion over a byte link, framing each message.
/// Returns the framed bytes written.
pub fn send<S: Source>(
    tx: &mut Sender<S>,
    link: &mut dyn ByteLink,
    framing: Framing,
    t0: Instant,
    deadline: Duration,
    cancel: &AtomicBool,
) -> anyhow::Result<u64> {
    let mut msg = [0u8; 256];
    let mut framed = vec![0u8; framing.max_encoded_len(256)];
    // Batch small frames into one write: a write per 57-byte frame would
    // measure system calls, not the stack.
    let mut out: Vec<u8> = Vec::with_capacity(1 << 16);
    let mut wire = 0u64;
    loop {
        if cancel.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        if t0.elapsed() > deadline {
            bail!(
                "sender gave up after {:.1} s (timeout_s)",
                deadline.as_secs_f64()
            );
        }
        match tx
            .poll(ns_since(t0), &mut msg)
            .map_err(|e| anyhow!("sender: {e}"))?
        {
            Poll::Message(n) => {
                let m = framing
                    .encode(&msg[..n], &mut framed)
                    .map_err(|e| anyhow!("framing: {e}"))?;
                out.extend_from_slice(&framed[..m]);
                if out.len() >= (1 << 16) - 600 {
                    wire += write_out(link, &mut out)?;
                }
            }
            Poll::WaitUntil(t) => {
                // Throttled: what is framed goes out now, then wait for the slot.
                if !out.is_empty() {
                    wire += write_out(link, &mut out)?;
                    link.flush()?;
                }
                sleep_until(t0, t);
            }
            Poll::Done => break,
        }
    }
    if !out.is_empty() {
        wire += write_out(link, &mut out)?;
    }
    link.flush()?;
    Ok(wire)
}

/// Writes and empties the batch of framed messages; returns the bytes written.
fn write_out(link: &mut dyn ByteLink, out: &mut Vec<u8>) -> anyhow::Result<u64> {
    perfkit::measure!("harness::write", bytes = out.len(), link.write(out))?;
    let n = out.len() as u64;
    out.clear();
    Ok(n)
}

/// How a receive loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvEnd {
    /// Every block arrived and the SHA-256 matched.
    Complete,
    /// END arrived with blocks missing.
    EndIncomplete,
    /// The transfer failed (conflicting META, SHA mismatch).
    Failed,
    /// The link closed before END.
    Eof,
    /// Nothing arrived for the idle time after the transfer started.
    Idle,
}

/// Feeds a receiver from a byte link until the transfer ends, the link
/// closes, or it stays silent for `idle` once bytes have flowed.
/// Returns how it ended and the bytes read.
pub fn recv(
    rx: &mut Rx,
    link: &mut dyn ByteLink,
    chunk: usize,
    t0: Instant,
    idle: Duration,
    deadline: Duration,
    cancel: &AtomicBool,
) -> anyhow::Result<(RecvEnd, u64)> {
    let mut buf = vec![0u8; chunk.max(1)];
    let mut wire = 0u64;
    let mut last_data = Instant::now();
    let mut ended = None;
    loop {
        if cancel.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        if t0.elapsed() > deadline {
            bail!(
                "receiver gave up after {:.1} s (timeout_s)",
                deadline.as_secs_f64()
            );
        }
        match link.read(&mut buf, Duration::from_millis(50))? {
            ReadOutcome::Data(n) => {
                wire += n as u64;
                last_data = Instant::now();
                let now = ns_since(t0);
                rx.on_bytes(&buf[..n], now, &mut |ev| match ev {
                    Event::Complete { .. } => ended = Some(RecvEnd::Complete),
                    Event::End { missing } if missing > 0 => {
                        ended.get_or_insert(RecvEnd::EndIncomplete);
                    }
                    Event::Failed(_) => ended = Some(RecvEnd::Failed),
                    _ => {}
                });
                if let Some(e) = ended {
                    return Ok((e, wire));
                }
            }
            ReadOutcome::Timeout => {
                if wire > 0 && last_data.elapsed() > idle {
                    return Ok((RecvEnd::Idle, wire));
                }
            }
            ReadOutcome::Eof => {
                let end = match rx.state() {
                    State::Complete => RecvEnd::Complete,
                    State::Failed => RecvEnd::Failed,
                    _ => RecvEnd::Eof,
                };
                return Ok((end, wire));
            }
        }
    }
}
