//! Property tests: the fault wrapper is deterministic and accounts for every
//! fault; the UART model loses nothing it does not count, never exceeds the
//! line rate, and keeps time moving forward.

mod common;

use std::time::Duration;

use perfkit_link::faults::{FaultConfig, Faulty};
use perfkit_link::sim::{run, SimConfig};
use perfkit_link::uart::{Line, UartConfig};
use perfkit_link::{ByteLink, ByteLoopback, Loopback, PacketLink, ReadOutcome};
use proptest::prelude::*;

fn rate() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..0.3f64, Just(1.0)]
}

fn byte_faults() -> impl Strategy<Value = FaultConfig> {
    (any::<u64>(), 0.0..0.05f64, rate(), rate()).prop_map(|(seed, ber, drop, dup)| FaultConfig {
        seed,
        bit_error_rate: ber,
        byte_drop: drop,
        byte_duplicate: dup,
        ..FaultConfig::default()
    })
}

fn through_bytes(
    cfg: &FaultConfig,
    chunks: &[Vec<u8>],
) -> (Vec<u8>, perfkit_link::faults::FaultStats) {
    let mut link = Faulty::new(ByteLoopback::new(), cfg).unwrap();
    for c in chunks {
        link.write(c).unwrap();
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let ReadOutcome::Data(n) = link.read(&mut buf, Duration::ZERO).unwrap() {
        out.extend_from_slice(&buf[..n]);
    }
    (out, link.fault_stats())
}

proptest! {
    #[test]
    fn byte_faults_repeat_exactly_and_are_counted(
        cfg in byte_faults(),
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
    ) {
        let (a, sa) = through_bytes(&cfg, &chunks);
        let (b, sb) = through_bytes(&cfg, &chunks);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(sa, sb);
        let sent: usize = chunks.iter().map(Vec::len).sum();
        prop_assert_eq!(
            a.len() as u64,
            sent as u64 - sa.bytes_dropped + sa.bytes_duplicated
        );
        if cfg.byte_drop == 0.0 && cfg.byte_duplicate == 0.0 {
            let input: Vec<u8> = chunks.concat();
            let flipped: u64 = input.iter().zip(&a).map(|(x, y)| (x ^ y).count_ones() as u64).sum();
            prop_assert_eq!(flipped, sa.bits_flipped);
        }
    }

    #[test]
    fn packet_faults_repeat_exactly_and_conserve_packets(
        seed in any::<u64>(),
        loss in rate(),
        dup in rate(),
        reorder in rate(),
        window in 1usize..6,
        n in 0usize..300,
    ) {
        let cfg = FaultConfig { seed, packet_loss: loss, packet_duplicate: dup, reorder, reorder_window: window, ..FaultConfig::default() };
        let run_once = || {
            let mut link = Faulty::new(Loopback::new(8), &cfg).unwrap();
            for i in 0..n {
                link.send(&(i as u32).to_be_bytes()).unwrap();
            }
            link.flush().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 8];
            while let Some(k) = link.recv(&mut buf, Duration::ZERO).unwrap() {
                got.push(u32::from_be_bytes(buf[..k].try_into().unwrap()));
            }
            (got, link.fault_stats())
        };
        let (a, sa) = run_once();
        let (b, sb) = run_once();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(sa, sb);
        prop_assert_eq!(a.len() as u64, n as u64 - sa.packets_lost + sa.packets_duplicated);
        prop_assert!(a.iter().all(|&v| (v as usize) < n));
        if sa.packets_reordered == 0 {
            prop_assert!(a.windows(2).all(|w| w[0] <= w[1]), "in order without reordering");
        }
    }

    #[test]
    fn uart_counts_every_byte_and_time_moves_forward(
        rx_buffer in 1usize..200,
        tx_buffer in 0usize..64,
        baud in prop_oneof![Just(9600u32), Just(115_200u32), 300u32..2_000_000],
        ops in prop::collection::vec((any::<bool>(), 1usize..120, 0u64..3_000_000), 1..60),
    ) {
        let cfg = UartConfig { baud, bits_per_char: 10, rx_buffer, tx_buffer };
        let mut line = Line::new(cfg).unwrap();
        let mut now = 0u64;
        let mut written = Vec::new();
        let mut read = Vec::new();
        let mut buf = vec![0u8; 256];
        for (is_write, len, gap) in ops {
            now += gap;
            if is_write {
                let bytes: Vec<u8> = (0..len).map(|i| (written.len() + i) as u8).collect();
                let back = line.write(now, &bytes);
                prop_assert!(back >= now);
                // Never later than the last byte's end, never earlier than
                // the moment only tx_buffer bytes remain.
                prop_assert!(back <= line.stats().last_end_ns);
                written.extend_from_slice(&bytes);
                now = back;
            } else {
                let k = line.read(now, &mut buf[..len.min(256)]);
                read.extend_from_slice(&buf[..k]);
            }
            let s = line.stats();
            prop_assert!(s.delivered + s.overflow <= s.written);
            prop_assert!(s.read <= s.delivered);
            prop_assert!(s.rx_high_water <= rx_buffer);
        }
        line.advance(u64::MAX);
        let s = line.stats();
        prop_assert_eq!(s.written, written.len() as u64);
        prop_assert_eq!(s.delivered + s.overflow, s.written, "delivered + dropped = sent");
        // What was read is what was written, minus lost bytes, in order.
        let mut it = written.iter();
        for b in &read {
            prop_assert!(it.any(|w| w == b), "read bytes are a subsequence of written ones");
        }
        if let Some(first) = s.first_start_ns {
            let u = cfg.utilisation(s.written, s.last_end_ns - first);
            prop_assert!(u <= 1.0 + 1e-9, "utilisation {}", u);
        }
    }

    #[test]
    fn simulation_invariants(
        send_msg in 0u64..20_000_000,
        send_byte in 0u64..50_000,
        recv_msg in 0u64..30_000_000,
        recv_byte in 0u64..50_000,
        rx_buffer in 1usize..2000,
        tx_buffer in 0usize..64,
        pps in prop::option::of(1u32..400),
        poll in prop_oneof![Just(0u64), 1u64..5_000_000],
    ) {
        let file: Vec<u8> = (0..3000u32).map(|i| (i * 37 % 256) as u8).collect();
        let mut tx = common::dttk::Sender::new(file.clone(), 50, 1, pps);
        let mut rx = common::dttk::Receiver::new(tx.blocks());
        let cfg = SimConfig {
            uart: UartConfig { baud: 115_200, bits_per_char: 10, rx_buffer, tx_buffer },
            send: perfkit_link::profile::Costs { per_message_ns: send_msg, per_byte_ns: send_byte },
            receive: perfkit_link::profile::ReceiveCosts { per_message_ns: recv_msg, per_byte_ns: recv_byte, poll_interval_ns: poll },
            time_cap_ns: 3_600_000_000_000,
            stages: None,
            spread_seed: 0,
            write_chunk: 0,
        };
        let r = run(&cfg, &mut tx, &mut rx).unwrap();
        // The same costs as stages give the same run to the nanosecond.
        let staged = SimConfig {
            stages: Some(perfkit_link::stages::Stages::from_lumps(&cfg.send, &cfg.receive)),
            ..cfg
        };
        let mut tx2 = common::dttk::Sender::new(file.clone(), 50, 1, pps);
        let mut rx2 = common::dttk::Receiver::new(tx2.blocks());
        let r2 = run(&staged, &mut tx2, &mut rx2).unwrap();
        prop_assert!(r2.device.is_some());
        prop_assert_eq!((r2.sender, r2.receiver, r2.end_ns, r2.overflow_drops), (r.sender, r.receiver, r.end_ns, r.overflow_drops));
        prop_assert!(!r.timed_out);
        prop_assert_eq!(r.wire_bytes, r.sender.bytes);
        prop_assert_eq!(r.delivered_bytes + r.overflow_drops, r.wire_bytes);
        prop_assert_eq!(r.receiver.bytes, r.delivered_bytes);
        prop_assert!(r.utilisation <= 1.0 + 1e-9, "utilisation {}", r.utilisation);
        prop_assert!(r.sender.first_message_ns <= r.sender.last_message_ns);
        prop_assert!(r.receiver.first_message_ns <= r.receiver.last_message_ns);
        prop_assert!(r.end_ns >= r.sender.last_message_ns.unwrap_or(0));
        if r.overflow_drops == 0 {
            prop_assert_eq!(rx.missing_blocks(), 0, "nothing lost, nothing missing");
            prop_assert_eq!(rx.bad_frames, 0);
        }
    }
}
