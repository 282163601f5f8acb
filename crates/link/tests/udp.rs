//! The UDP link over real sockets on 127.0.0.1.

use std::time::Duration;

use perfkit_link::faults::{FaultConfig, Faulty};
use perfkit_link::{ErrorKind, PacketLink, UdpLink};

const WAIT: Duration = Duration::from_secs(5);

#[test]
fn datagrams_arrive_whole_and_in_order() {
    let (mut a, mut b) = UdpLink::pair_localhost().unwrap();
    let mut buf = [0u8; 2048];
    for i in 0..500usize {
        let pkt: Vec<u8> = (0..(i % 300)).map(|j| (i + j) as u8).collect();
        a.send(&pkt).unwrap();
        let n = b
            .recv(&mut buf, WAIT)
            .unwrap()
            .expect("datagram lost on loopback");
        assert_eq!(&buf[..n], &pkt[..]);
    }
    // And back the other way.
    b.send(b"pong").unwrap();
    assert_eq!(a.recv(&mut buf, WAIT).unwrap(), Some(4));
    assert_eq!(&buf[..4], b"pong");
    assert_eq!(a.stats().packets_out, 500);
    assert_eq!(b.stats().packets_in, 500);
}

#[test]
fn nothing_to_receive_returns_none() {
    let (_a, mut b) = UdpLink::pair_localhost().unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(b.recv(&mut buf, Duration::ZERO).unwrap(), None);
    assert_eq!(b.recv(&mut buf, Duration::from_millis(20)).unwrap(), None);
}

#[test]
fn over_mtu_refused_and_short_buffer_detected() {
    let (a, mut b) = UdpLink::pair_localhost().unwrap();
    let mut a = a.with_mtu(100);
    let err = a.send(&[0u8; 101]).unwrap_err();
    assert!(matches!(
        err.kind(),
        ErrorKind::TooLarge { len: 101, mtu: 100 }
    ));
    a.send(&[7u8; 100]).unwrap();
    let mut small = [0u8; 10];
    let err = b.recv(&mut small, WAIT).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::BufferTooSmall { len: 100, buf: 10 }),
        "{err}"
    );
    assert_eq!(b.stats().dropped, 1);
}

#[test]
fn seeded_loss_over_udp_repeats_exactly() {
    let run = || {
        let (a, mut b) = UdpLink::pair_localhost().unwrap();
        let cfg = FaultConfig {
            seed: 42,
            packet_loss: 0.3,
            bit_error_rate: 1e-3,
            ..FaultConfig::default()
        };
        let mut a = Faulty::new(a, &cfg).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        for i in 0..200u8 {
            a.send(&[i; 40]).unwrap();
            while let Some(n) = b.recv(&mut buf, Duration::ZERO).unwrap() {
                got.push(buf[..n].to_vec());
            }
        }
        // Whatever the scheduler delayed: wait for exactly what was not lost.
        let expected = 200 - a.fault_stats().packets_lost as usize;
        while got.len() < expected {
            let n = b
                .recv(&mut buf, WAIT)
                .unwrap()
                .expect("datagram lost on loopback");
            got.push(buf[..n].to_vec());
        }
        (got, a.fault_stats())
    };
    let (first, stats) = run();
    let (second, stats2) = run();
    assert_eq!(first, second);
    assert_eq!(stats, stats2);
    assert_eq!(first.len() as u64, 200 - stats.packets_lost);
    assert!(
        stats.packets_lost > 30 && stats.packets_lost < 100,
        "{stats:?}"
    );
}
