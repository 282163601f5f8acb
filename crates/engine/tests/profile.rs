//! The pumps take the framing through the stack's profile interface: a
//! framing type chosen at build time (not the run-time `Framing` choice)
//! puts the same bytes on the link and carries a whole transfer.

use std::time::Duration;

use perfkit_engine::{drive, Policy, RecvEnd, RxPump, TxPump, WallClock};
use perfkit_link::{ByteLink, ByteLoopback, ReadOutcome};
use perfkit_stack::cobs::Cobs;
use perfkit_stack::dttk::framing::Stuffing;
use perfkit_stack::{Framer, Framing, MemorySource, Receiver, Sender, SenderConfig, VecSink};
use rand::{RngCore, SeedableRng};

fn file(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(3).fill_bytes(&mut v);
    v
}

fn sender(data: &[u8]) -> Sender<MemorySource<'_>> {
    Sender::new(MemorySource::new(data, b"f.bin"), SenderConfig::default()).unwrap()
}

/// What `drive::send` puts on a byte link with `framer`.
fn on_the_wire(framer: impl Framer, data: &[u8]) -> Vec<u8> {
    let mut tx = sender(data);
    let mut pump = TxPump::framed(&mut tx, framer);
    let mut link = ByteLoopback::new();
    let clock = WallClock::start();
    drive::send(&clock, &Policy::seconds(30.0), &mut pump, &mut link).unwrap();
    link.close();
    let (mut buf, mut out) = (vec![0u8; 1 << 16], Vec::new());
    while let ReadOutcome::Data(n) = link.read(&mut buf, Duration::ZERO).unwrap() {
        out.extend_from_slice(&buf[..n]);
    }
    out
}

#[test]
fn a_static_framing_puts_the_same_bytes_on_the_link() {
    let data = file(6000);
    let dttk = on_the_wire(Framing::Dttk, &data);
    assert!(on_the_wire(Stuffing, &data) == dttk);
    let cobs = on_the_wire(Framing::Cobs, &data);
    assert!(on_the_wire(Cobs, &data) == cobs);
    assert!(dttk != cobs);
}

#[test]
fn a_static_framing_carries_a_transfer() {
    let data = file(20_000);
    let mut tx = sender(&data);
    let mut rx: Receiver<VecSink, 8192, Cobs> = Receiver::new(0, VecSink::new(1 << 16), Cobs);
    let (end, wire) = drive::interleave(
        &WallClock::start(),
        &Policy::seconds(30.0),
        &mut TxPump::framed(&mut tx, Cobs),
        &mut RxPump::new(&mut rx),
        &mut ByteLoopback::new(),
        4096,
        Duration::from_secs(2),
    )
    .unwrap();
    assert_eq!(end, RecvEnd::Complete);
    assert!(rx.sink().data == data);
    assert_eq!(rx.deframer_stats().bytes, wire);
}

/// The frames [`TxPump::poll`] hands out one by one, end to end: what
/// `drive::send`, which encodes straight into its batch, must write.
fn frame_by_frame(framer: impl Framer, data: &[u8], cfg: SenderConfig) -> Vec<u8> {
    let mut tx = Sender::new(MemorySource::new(data, b"f.bin"), cfg).unwrap();
    let mut pump = TxPump::framed(&mut tx, framer);
    let mut out = Vec::new();
    loop {
        match pump.poll(u64::MAX / 2).unwrap() {
            perfkit_engine::Next::Send(f) => out.extend_from_slice(f),
            perfkit_engine::Next::WaitUntil(_) => unreachable!("no throttle at the end of time"),
            perfkit_engine::Next::Done => return out,
        }
    }
}

#[test]
fn the_batched_sender_writes_the_frames_the_pump_hands_out() {
    // More than one 64 KiB batch of wire bytes, and a throttled run whose
    // batches go out early at each wait.
    let data = file(150_000);
    for framing in [Framing::Dttk, Framing::Cobs] {
        let want = frame_by_frame(framing, &data, SenderConfig::default());
        assert!(want.len() > 2 * drive::BATCH);
        assert!(on_the_wire(framing, &data) == want, "{framing:?}");
        let throttled = SenderConfig {
            throttle_pps: 100_000,
            ..SenderConfig::default()
        };
        let mut tx = Sender::new(MemorySource::new(&data, b"f.bin"), throttled).unwrap();
        let mut pump = TxPump::framed(&mut tx, framing);
        let mut link = ByteLoopback::new();
        let wire = drive::send(
            &WallClock::start(),
            &Policy::seconds(30.0),
            &mut pump,
            &mut link,
        )
        .unwrap();
        link.close();
        let (mut buf, mut got) = (vec![0u8; 1 << 16], Vec::new());
        while let ReadOutcome::Data(n) = link.read(&mut buf, Duration::ZERO).unwrap() {
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(wire, got.len() as u64);
        assert!(got == want, "{framing:?} throttled");
        assert!(tx.counters().throttled > 0);
    }
}
