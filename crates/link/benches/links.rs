//! Speed of the links and of the virtual-time simulation.
//!
//! `cargo bench -p perfkit-link --bench links -- --warm-up-time 1 --measurement-time 3`

#[path = "../tests/common/dttk.rs"]
mod dttk;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use perfkit_link::sim::{run, SimConfig};
use perfkit_link::{
    ByteLink, ChildLink, DeviceProfile, Loopback, PacketLink, ReadOutcome, UdpLink,
};

fn simulation(c: &mut Criterion) {
    let image = dttk::test_image();
    let pico = DeviceProfile::builtin("pico-micropython").unwrap();
    let cfg = SimConfig::from_profiles(115_200, 10, &pico, &pico);
    let mut g = c.benchmark_group("sim");
    for (name, pps) in [
        ("pico_35k_x4_throttled_40pps", Some(40)),
        ("pico_35k_x4_unthrottled", None),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut tx = dttk::Sender::new(image.clone(), 50, 3, pps);
                let mut rx = dttk::Receiver::new(tx.blocks());
                black_box(run(&cfg, &mut tx, &mut rx).unwrap())
            })
        });
    }
    g.finish();
}

fn loopback(c: &mut Criterion) {
    let mut g = c.benchmark_group("loopback");
    let pkt = [0x5Au8; 256];
    g.throughput(Throughput::Bytes(256 * 1000));
    g.bench_function("1000x256B", |b| {
        let mut link = Loopback::new(256);
        let mut buf = [0u8; 256];
        b.iter(|| {
            for _ in 0..1000 {
                link.send(&pkt).unwrap();
                black_box(link.recv(&mut buf, Duration::ZERO).unwrap());
            }
        })
    });
    g.finish();
}

fn pipe(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipe");
    let chunk = vec![0xA5u8; 4096];
    g.throughput(Throughput::Bytes(64 * 4096));
    g.bench_function("cat_echo_256KiB", |b| {
        let mut link = ChildLink::spawn(&["cat"]).unwrap();
        let mut buf = vec![0u8; 65536];
        b.iter(|| {
            let mut back = 0;
            for _ in 0..64 {
                link.write(&chunk).unwrap();
                while let ReadOutcome::Data(n) = link.read(&mut buf, Duration::ZERO).unwrap() {
                    back += n;
                }
            }
            while back < 64 * 4096 {
                back += link.read(&mut buf, Duration::from_secs(5)).unwrap().len();
            }
        })
    });
    g.finish();
}

fn udp(c: &mut Criterion) {
    let mut g = c.benchmark_group("udp");
    let pkt = [0x33u8; 1024];
    g.throughput(Throughput::Bytes(1024 * 100));
    g.bench_function("100x1KiB_localhost", |b| {
        let (mut a, mut z) = UdpLink::pair_localhost().unwrap();
        let mut buf = [0u8; 2048];
        b.iter(|| {
            for _ in 0..100 {
                a.send(&pkt).unwrap();
                black_box(z.recv(&mut buf, Duration::from_secs(1)).unwrap());
            }
        })
    });
    g.finish();
}

criterion_group!(benches, simulation, loopback, pipe, udp);
criterion_main!(benches);
