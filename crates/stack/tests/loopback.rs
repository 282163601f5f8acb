//! Move the 34,710-byte test image through sender -> framing -> byte stream
//! -> deframer -> receiver with the reference settings, clean and with
//! seeded corruption (bit flips, dropped and duplicated bytes, lost frames).

use std::path::PathBuf;

use perfkit_stack::{
    Event, FileSink, FileSource, Framing, MemorySource, Poll, Receiver, Sender, SenderConfig, Sink,
    State, VecSink,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

fn image() -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/test35k.jpg"))
        .unwrap()
}

/// How to damage each framed message.
#[derive(Clone, Copy)]
struct Faults {
    flip: f64,
    drop_byte: f64,
    dup_byte: f64,
    lose_frame: f64,
}

const CLEAN: Faults = Faults {
    flip: 0.0,
    drop_byte: 0.0,
    dup_byte: 0.0,
    lose_frame: 0.0,
};

struct Outcome {
    events: Vec<Event>,
    tx_line: String,
    rx_line: String,
}

/// Run a whole transfer; the stream is fed in random chunk sizes, one
/// simulated millisecond per message.
fn transfer<K: Sink>(
    rx: &mut Receiver<K>,
    data: &[u8],
    cfg: SenderConfig,
    framing: Framing,
    faults: Faults,
    seed: u64,
) -> Outcome {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tx = Sender::new(MemorySource::new(data, b"test35k.jpg"), cfg).unwrap();
    let mut msg = [0u8; 256];
    let mut framed = [0u8; 600];
    let mut stream: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut now = 0u64;
    loop {
        match tx.poll(now, &mut msg).unwrap() {
            Poll::Message(n) => {
                let m = framing.encode(&msg[..n], &mut framed).unwrap();
                let mut f = framed[..m].to_vec();
                if rng.random_bool(faults.lose_frame) {
                    f.clear();
                }
                if !f.is_empty() && rng.random_bool(faults.flip) {
                    let i = rng.random_range(0..f.len());
                    f[i] ^= 1 << rng.random_range(0..8);
                }
                if !f.is_empty() && rng.random_bool(faults.drop_byte) {
                    f.remove(rng.random_range(0..f.len()));
                }
                if !f.is_empty() && rng.random_bool(faults.dup_byte) {
                    let i = rng.random_range(0..f.len());
                    f.insert(i, f[i]);
                }
                stream.extend_from_slice(&f);
                // Deliver in random chunks, keeping some bytes in flight.
                while stream.len() > 64 || (!stream.is_empty() && rng.random_bool(0.3)) {
                    let c = rng.random_range(1..=stream.len().min(700));
                    let chunk: Vec<u8> = stream.drain(..c).collect();
                    rx.on_bytes(&chunk, now, &mut |e| events.push(e));
                }
            }
            Poll::WaitUntil(t) => now = t,
            Poll::Done => break,
        }
        now += 1_000_000;
    }
    rx.on_bytes(&stream, now, &mut |e| events.push(e));
    Outcome {
        events,
        tx_line: tx.stats().to_string(),
        rx_line: rx.stats().to_string(),
    }
}

#[test]
fn moves_the_image_with_reference_settings() {
    let data = image();
    assert_eq!(data.len(), 34710);
    for framing in [Framing::Dttk, Framing::Cobs] {
        let mut rx = Receiver::new(0, VecSink::new(1 << 20), framing);
        let out = transfer(&mut rx, &data, SenderConfig::default(), framing, CLEAN, 1);
        assert_eq!(rx.state(), State::Complete);
        assert!(out.events.contains(&Event::Complete { size: 34710 }));
        assert_eq!(out.events.last(), Some(&Event::End { missing: 0 }));
        assert_eq!(rx.sink().data, data);
        assert_eq!(
            Sha256::digest(&rx.sink().data)[..],
            rx.meta().unwrap().sha256[..]
        );
        // 695 blocks x 4 copies, one message per simulated ms.
        assert!(
            out.tx_line.contains("blk:2780 by:138840"),
            "{}",
            out.tx_line
        );
        assert!(out.rx_line.contains("blk:695 by:34710"), "{}", out.rx_line);
        assert_eq!(rx.counters().duplicates, 695 * 3);
        assert_eq!(rx.counters().link.crc_errors, 0);
        assert_eq!(rx.counters().link.seq_gaps, 0);
        assert_eq!(rx.deframer_stats().junk_bytes, 0);
    }
}

#[test]
fn file_source_to_file_sink() {
    let dir = std::env::temp_dir().join(format!("perfkit-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("out.jpg");
    let src = FileSource::open(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/test35k.jpg"),
    )
    .unwrap();
    let cfg = SenderConfig {
        repeats: 0,
        block_size: 249,
        ..SenderConfig::default()
    };
    let mut tx = Sender::new(src, cfg).unwrap();
    let mut rx: Receiver<_> = Receiver::new(0, FileSink::create(&out_path).unwrap(), Framing::Dttk);
    let mut msg = [0u8; 256];
    let mut last = None;
    while let Poll::Message(n) = tx.poll(0, &mut msg).unwrap() {
        last = Some(rx.on_message(&msg[..n], 0));
        if let Some(Event::Complete { .. }) = last {
            break;
        }
    }
    assert_eq!(last, Some(Event::Complete { size: 34710 }));
    drop(rx);
    assert_eq!(std::fs::read(&out_path).unwrap(), image());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every block the receiver holds must equal the original.
fn assert_no_corrupt_block(rx: &Receiver<VecSink>, data: &[u8], bs: usize) {
    for n in 0..rx.block_count() {
        if rx.has_block(n) {
            let s = n as usize * bs;
            let e = (s + bs).min(data.len());
            assert_eq!(&rx.sink().data[s..e], &data[s..e], "block {n} corrupted");
        }
    }
}

#[test]
fn corruption_is_recovered_by_repeats_or_named() {
    let data = image();
    let mut completes = 0;
    let mut named = 0;
    for (i, rate) in [0.02, 0.1, 0.3, 0.6].into_iter().enumerate() {
        for framing in [Framing::Dttk, Framing::Cobs] {
            for seed in 0..3u64 {
                let faults = Faults {
                    flip: rate,
                    drop_byte: rate / 2.0,
                    dup_byte: rate / 2.0,
                    lose_frame: rate / 4.0,
                };
                let mut rx = Receiver::new(0, VecSink::new(1 << 20), framing);
                let out = transfer(
                    &mut rx,
                    &data,
                    SenderConfig::default(),
                    framing,
                    faults,
                    1000 * i as u64 + seed,
                );
                assert_no_corrupt_block(&rx, &data, 50);
                assert!(!out.events.iter().any(|e| matches!(e, Event::Failed(_))));
                let missing: Vec<u32> = rx.missing_blocks().collect();
                match rx.state() {
                    State::Complete => {
                        completes += 1;
                        assert!(missing.is_empty());
                        assert_eq!(rx.sink().data, data);
                    }
                    State::Incomplete | State::Receiving => {
                        named += 1;
                        assert!(!missing.is_empty());
                        assert_eq!(missing.len() as u32, rx.block_count() - rx.blocks_held());
                        if let Some(Event::End { missing: m }) =
                            out.events.iter().find(|e| matches!(e, Event::End { .. }))
                        {
                            assert_eq!(*m as usize, missing.len());
                        }
                    }
                    s => panic!("unexpected state {s:?} at rate {rate}"),
                }
                if rate >= 0.1 {
                    let c = rx.counters();
                    let d = rx.deframer_stats();
                    assert!(
                        c.link.crc_errors
                            + c.link.bad_lengths
                            + d.bad_lengths
                            + d.protocol_violations
                            > 0
                    );
                }
            }
        }
    }
    // Low rates recover fully thanks to the three repeats; the highest one
    // loses blocks, and the receiver names them.
    assert!(completes >= 6, "{completes} complete");
    assert!(named >= 1, "{named} named");
}

#[test]
fn conflicting_meta_fails_the_transfer() {
    let data = image();
    let mut rx: Receiver<_> = Receiver::new(0, VecSink::new(1 << 20), Framing::Dttk);
    let mut msg = [0u8; 256];
    let mut tx = Sender::new(MemorySource::new(&data, b"a.jpg"), SenderConfig::default()).unwrap();
    let Poll::Message(n) = tx.poll(0, &mut msg).unwrap() else {
        panic!()
    };
    assert!(matches!(rx.on_message(&msg[..n], 0), Event::Meta { .. }));
    let mut other = Sender::new(
        MemorySource::new(&data[1..], b"a.jpg"),
        SenderConfig::default(),
    )
    .unwrap();
    let Poll::Message(n) = other.poll(0, &mut msg).unwrap() else {
        panic!()
    };
    assert_eq!(
        rx.on_message(&msg[..n], 0),
        Event::Failed(perfkit_stack::Failure::MetaConflict)
    );
    assert_eq!(rx.state(), State::Failed);
}

#[test]
fn sha_mismatch_is_reported() {
    // A sender whose META claims a different hash: all blocks arrive, the
    // hash check fails.
    let data = b"0123456789abcdef".repeat(10);
    let mut tx = Sender::new(
        MemorySource::new(&data, b"x"),
        SenderConfig {
            repeats: 0,
            ..SenderConfig::default()
        },
    )
    .unwrap();
    let mut rx: Receiver<_> = Receiver::new(0, VecSink::new(1000), Framing::Dttk);
    let mut msg = [0u8; 256];
    let mut evs = Vec::new();
    while let Poll::Message(n) = tx.poll(0, &mut msg).unwrap() {
        evs.push(rx.on_message(&with_wrong_sha(&msg[..n]), 0));
    }
    assert!(evs.contains(&Event::Failed(perfkit_stack::Failure::ShaMismatch)));
}

/// `msg`, or if it is a META, a copy whose SHA-256 field is damaged (with a
/// CRC that matches, so the receiver accepts the META).
fn with_wrong_sha(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    let p = perfkit_stack::wire::Packet::new_checked(&m[..]).unwrap();
    if p.is_control() && p.payload()[0] == 1 {
        m[10] ^= 0xFF; // inside the SHA-256 field
        let mut p = perfkit_stack::wire::Packet::new_unchecked(&mut m[..]);
        p.fill_crc();
    }
    m
}

#[test]
fn channels_are_multiplexed() {
    use perfkit_stack::Mux;
    let a = image();
    let b: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    let mut txa = Sender::new(
        MemorySource::new(&a, b"a"),
        SenderConfig {
            channel: 1,
            ..SenderConfig::default()
        },
    )
    .unwrap();
    let mut txb = Sender::new(
        MemorySource::new(&b, b"b"),
        SenderConfig {
            channel: 127,
            block_size: 249,
            ..SenderConfig::default()
        },
    )
    .unwrap();
    let mut mux: Mux<VecSink, 2> = Mux::new(
        [
            Receiver::new(1, VecSink::new(1 << 20), Framing::Dttk),
            Receiver::new(127, VecSink::new(1 << 20), Framing::Dttk),
        ],
        Framing::Dttk,
    );
    let mut msg = [0u8; 256];
    let mut framed = [0u8; 600];
    let mut completed = Vec::new();
    let (mut da, mut db) = (false, false);
    let mut seq = 0u8;
    while !(da && db) {
        for (tx, done) in [(&mut txa, &mut da), (&mut txb, &mut db)] {
            match tx.poll(0, &mut msg).unwrap() {
                Poll::Message(n) => {
                    // One link, one sequence: renumber as a shared link would.
                    msg[1] = seq;
                    seq = seq.wrapping_add(1);
                    perfkit_stack::wire::Packet::new_unchecked(&mut msg[..n]).fill_crc();
                    let m = Framing::Dttk.encode(&msg[..n], &mut framed).unwrap();
                    mux.on_bytes(&framed[..m], 0, &mut |ch, e| {
                        if let Event::Complete { .. } = e {
                            completed.push(ch)
                        }
                    });
                }
                _ => *done = true,
            }
        }
    }
    completed.sort();
    assert_eq!(completed, [Some(1), Some(127)]);
    assert_eq!(mux.receiver(1).unwrap().sink().data, a);
    assert_eq!(mux.receiver(127).unwrap().sink().data, b);
    assert_eq!(mux.link_counters().seq_gaps, 0);
    assert_eq!(mux.link_counters().other_channel, 0);
}

/// A file large enough to be hashed on the sink's own thread, through a
/// lossy stream: blocks that arrive after a gap complete the in-order
/// prefix out of order, and the hash (on either thread) must still be the
/// file's; a META claiming another hash still fails the transfer.
#[test]
fn a_hashing_sink_verifies_what_arrives_out_of_order_on_either_thread() {
    use perfkit_stack::hashing::THREAD_MIN;
    use perfkit_stack::HashingSink;
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let data: Vec<u8> = (0..THREAD_MIN as usize + 300_000)
        .map(|_| rng.random())
        .collect();
    let cfg = SenderConfig {
        block_size: 249,
        repeats: 3,
        ..SenderConfig::default()
    };
    let lossy = Faults {
        lose_frame: 0.05,
        ..CLEAN
    };
    for thread in [true, false] {
        let mut rx: Receiver<_> =
            Receiver::new(0, HashingSink::new(4 << 20, thread), Framing::Dttk);
        let out = transfer(&mut rx, &data, cfg, Framing::Dttk, lossy, 3);
        assert_eq!(rx.sink().on_thread(), thread);
        assert_eq!(rx.state(), State::Complete, "thread: {thread}");
        assert!(out.events.contains(&Event::Complete {
            size: data.len() as u64
        }));
        assert!(rx.counters().link.seq_gaps > 0, "no loss to reorder");
        assert_eq!(rx.sink().data(), &data[..]);
    }
    // The sender hashes the same file; a receiver whose META says
    // otherwise must fail on either thread.
    for thread in [true, false] {
        let mut tx = Sender::new(MemorySource::new(&data, b"x"), cfg).unwrap();
        let mut rx: Receiver<_> =
            Receiver::new(0, HashingSink::new(4 << 20, thread), Framing::Dttk);
        let mut msg = [0u8; 256];
        let mut failed = false;
        while let Poll::Message(n) = tx.poll(0, &mut msg).unwrap() {
            failed |= rx.on_message(&with_wrong_sha(&msg[..n]), 0)
                == Event::Failed(perfkit_stack::Failure::ShaMismatch);
        }
        assert!(failed, "thread: {thread}");
    }
}
