//! A run's perfkit snapshot shows the whole pipeline, stage by stage.
#![cfg(not(feature = "perf-off"))]

use perfkit_stack::{
    Event, Framing, MemorySink, MemorySource, Poll, Receiver, Sender, SenderConfig,
};

#[test]
fn every_stage_is_measured() {
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut tx = Sender::new(MemorySource::new(&data, b"d"), SenderConfig::default()).unwrap();
    let mut rx: Receiver<_, 64> =
        Receiver::new(0, MemorySink::new(vec![0u8; 10_000]), Framing::Dttk);
    let (mut msg, mut framed) = ([0u8; 256], [0u8; 600]);
    let mut complete = false;
    let mut fed = 0u64;
    // Chunks of many frames, as a pipe or UART read delivers them.
    let mut chunk = Vec::new();
    let mut done = false;
    while !done {
        match tx.poll(0, &mut msg).unwrap() {
            Poll::Message(n) => {
                let m = Framing::Dttk.encode(&msg[..n], &mut framed).unwrap();
                chunk.extend_from_slice(&framed[..m]);
            }
            _ => done = true,
        }
        if chunk.len() > 2_000 || (done && !chunk.is_empty()) {
            fed += chunk.len() as u64;
            rx.on_bytes(&chunk, 0, &mut |e| {
                complete |= matches!(e, Event::Complete { .. })
            });
            chunk.clear();
        }
    }
    assert!(complete);
    let snap = perfkit::snapshot();
    let messages = tx.counters().messages;
    for (name, min_calls, bytes) in [
        ("sender::read_block", 200 * 4, 10_000 * 4),
        ("sender::add_header", messages, 0),
        ("sender::sha256", 1, 10_000),
        ("wire::crc16", 2 * messages, 0),
        ("framing::encode", messages, 0),
        ("framing::decode", messages, 0),
        ("receiver::parse", messages, 0),
        ("receiver::crc_check", messages, 0),
        ("receiver::store", 200, 10_000),
        // Hashed where the sink holds it, in passes of many blocks.
        ("receiver::sha256", 2, 10_000),
    ] {
        // A stage may have several call sites (the CRC on each side).
        let (calls, b) = snap
            .sites
            .iter()
            .filter(|s| s.name == name)
            .fold((0, 0), |(c, b), s| (c + s.calls, b + s.bytes.unwrap_or(0)));
        assert!(
            calls >= min_calls,
            "{name}: {calls} calls < {min_calls} in\n{}",
            snap.text()
        );
        assert!(b >= bytes, "{name}: {b} bytes < {bytes}");
    }
    // The deframer counts each byte once, however many frames a chunk holds.
    let decoded: u64 = snap
        .sites
        .iter()
        .filter(|s| s.name == "framing::decode")
        .filter_map(|s| s.bytes)
        .sum();
    assert_eq!(decoded, fed);
}

#[test]
fn nested_stages_give_folded_stacks() {
    let mut msg = [0u8; 256];
    let n = perfkit_stack::wire::build(&mut msg, 0, 0x80, 0, 1, |p| {
        p[0] = 0xFF;
        Ok(())
    })
    .unwrap();
    let mut rx: Receiver<_, 8> = Receiver::new(0, MemorySink::new([0u8; 8]), Framing::Dttk);
    assert_eq!(rx.on_message(&msg[..n], 0), Event::End { missing: 0 });
    let folded = perfkit::snapshot().folded();
    // The CRC is measured inside the receiver's CRC check.
    assert!(
        folded.contains("receiver::crc_check;wire::crc16"),
        "{folded}"
    );
}
