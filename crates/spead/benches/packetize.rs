//! In-memory costs of the heap builder (headers written, payload referenced)
//! and of reassembly, per heap size, at packet size 9000.
//!
//! `cargo bench -p perfkit-spead --bench packetize -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use perfkit_spead::packetize::{Item, Packetizer};
use perfkit_spead::reasm::{Config, Reassembler};
use std::hint::black_box;

const SIZES: [usize; 4] = [8 << 10, 64 << 10, 1 << 20, 4 << 20];

fn packetize(c: &mut Criterion) {
    let mut g = c.benchmark_group("packetize");
    for size in SIZES {
        let samples = vec![1u8; size];
        let items = [
            Item::immediate(0x1600, 0),
            Item::addressed(0x3300, &samples),
        ];
        let mut header = vec![0u8; 1 << 16];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                let mut p = Packetizer::new(1, black_box(&items), 9000).unwrap();
                let (mut n, mut at) = (0usize, 0usize);
                while let Some(len) = p.next_packet(&mut header[at..], |s| n += s.len()) {
                    at = (at + len.header) & 0x7fff;
                }
                black_box(n)
            })
        });
    }
    g.finish();
}

fn reassemble(c: &mut Criterion) {
    let mut g = c.benchmark_group("reassemble");
    for size in SIZES {
        let samples = vec![1u8; size];
        let items = [
            Item::immediate(0x1600, 0),
            Item::addressed(0x3300, &samples),
        ];
        let mut packets = Packetizer::new(1, &items, 9000).unwrap().into_datagrams();
        let mut r = Reassembler::new(Config::default());
        let mut cnt = 0u64;
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| {
                cnt += 1;
                // Rewrite HEAP_CNT so each iteration is a new heap.
                let mut done = None;
                for pkt in &mut packets {
                    pkt[11..16].copy_from_slice(&cnt.to_be_bytes()[3..]);
                    r.add_packet(pkt, &mut |h| done = Some(h)).unwrap();
                }
                r.recycle(done.expect("complete heap"));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, packetize, reassemble);
criterion_main!(benches);
