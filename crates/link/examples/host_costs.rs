//! Measures the per-message and per-byte CPU costs behind
//! `fixtures/profiles/host.toml`: the sender builds a dttk message (header,
//! CRC-16), frames it for the byte stream and writes it to a pipe (to a `cat`
//! child whose output is drained by the receiving side); the receiver reads
//! the stream, deframes it and checks each message. Frames of two payload
//! sizes (10 and 249 bytes) give the per-byte slope and the per-message
//! intercept. The CRC here is bitwise, so the figures are an upper bound for
//! a table-driven stack.
//!
//! `cargo run -p perfkit-link --release --example host_costs`

#[path = "../tests/common/dttk.rs"]
mod dttk;

use std::time::{Duration, Instant};

use perfkit_link::sim::SimReceiver;
use perfkit_link::{ByteLink, ChildLink, ReadOutcome};

/// (sender ns per message, receiver ns per message, framed bytes per message)
fn measure(payload: usize, messages: usize) -> (f64, f64, f64) {
    let data = vec![0x42u8; payload];
    let mut link = ChildLink::spawn(&["cat"]).expect("cat");
    let mut frame = Vec::new();
    let mut rx = dttk::Receiver::new(1);
    let mut buf = vec![0u8; 65536];
    let (mut tx_ns, mut rx_ns, mut framed) = (0u128, 0u128, 0usize);
    let mut got = 0u32;
    for i in 0..messages {
        let t = Instant::now();
        let msg = dttk::message(i as u8, 0, 0, &data);
        dttk::frame(&msg, &mut frame);
        link.write(&frame).unwrap();
        tx_ns += t.elapsed().as_nanos();
        framed += frame.len();
        if i % 64 == 63 {
            // Drain what cat echoed (untimed wait, timed processing).
            while (got as usize) < i + 1 {
                if let ReadOutcome::Data(n) = link.read(&mut buf, Duration::from_secs(5)).unwrap() {
                    let t = Instant::now();
                    got += rx.on_bytes(0, &buf[..n]);
                    rx_ns += t.elapsed().as_nanos();
                }
            }
        }
    }
    // The receive side's read(2) calls, timed separately: one per 64 messages
    // above, so add the cost of a read per message as a real receiver
    // polling a pipe would pay.
    let t = Instant::now();
    for _ in 0..messages {
        let _ = link.read(&mut buf, Duration::ZERO);
    }
    rx_ns += t.elapsed().as_nanos();
    let n = messages as f64;
    (tx_ns as f64 / n, rx_ns as f64 / n, framed as f64 / n)
}

fn main() {
    let messages = 64 * 400;
    measure(50, 64 * 50); // warm-up
    let (tx_s, rx_s, len_s) = measure(10, messages);
    let (tx_l, rx_l, len_l) = measure(249, messages);
    let slope = |a: f64, b: f64| (b - a) / (len_l - len_s);
    let (tx_b, rx_b) = (slope(tx_s, tx_l), slope(rx_s, rx_l));
    println!("framed sizes: {len_s:.0} and {len_l:.0} bytes");
    println!("send:    {tx_s:.0} ns and {tx_l:.0} ns per message -> per_byte {tx_b:.1} ns, per_message {:.0} ns", tx_s - tx_b * len_s);
    println!("receive: {rx_s:.0} ns and {rx_l:.0} ns per message -> per_byte {rx_b:.1} ns, per_message {:.0} ns", rx_s - rx_b * len_s);
}
