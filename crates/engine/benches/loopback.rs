//! The in-memory stack as the `loopback` kind runs it: the sender and the
//! receiver on one thread over the in-process packet loopback, driven by
//! `drive::exchange` on the wall clock, the received file in a
//! [`HashingSink`] hashed on a thread of its own. 249-byte blocks, no
//! repeats, 4 MiB per iteration (a new sender and receiver each time, made
//! outside the timing; the sender's own SHA-256 of the file too).
//!
//! `cargo bench -p perfkit-engine --bench loopback`
//!
//! Throughput is payload bytes. `loopback/off` has perfkit's recording
//! switched off at run time, `loopback/on` records every stage. The same
//! figure from the scenario: `perfkit run scenarios/gate-loopback.toml --set
//! 'stages=[true,false]'`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use perfkit_engine::{drive, Policy, RxPump, TxPump, WallClock};
use perfkit_link::Loopback;
use perfkit_stack::{Framing, HashingSink, MemorySource, Receiver, Sender, SenderConfig};
use rand::{RngCore, SeedableRng};

const FILE: usize = 4 << 20;

fn loopback(c: &mut Criterion) {
    let mut data = vec![0u8; FILE];
    rand_chacha::ChaCha8Rng::seed_from_u64(11).fill_bytes(&mut data);
    let cfg = SenderConfig {
        block_size: 249,
        repeats: 0,
        ..SenderConfig::default()
    };
    let mut g = c.benchmark_group("loopback");
    g.throughput(Throughput::Bytes(FILE as u64));
    g.sample_size(30);
    for (name, on) in [("off", false), ("on", true)] {
        g.bench_function(name, |b| {
            perfkit::set_enabled(on);
            b.iter_batched_ref(
                || {
                    let tx = Sender::new(MemorySource::new(&data, b"bench"), cfg).unwrap();
                    let rx: Box<Receiver<HashingSink>> = Box::new(Receiver::new(
                        0,
                        HashingSink::new(FILE, true),
                        Framing::Dttk,
                    ));
                    (tx, rx, Loopback::new(256))
                },
                |(tx, rx, link)| {
                    drive::exchange(
                        &WallClock::start(),
                        &Policy::seconds(60.0),
                        &mut TxPump::packets(tx),
                        &mut RxPump::new(rx),
                        link,
                    )
                    .unwrap();
                    assert_eq!(rx.state(), perfkit_stack::State::Complete);
                },
                BatchSize::LargeInput,
            );
        });
    }
    perfkit::set_enabled(true);
    g.finish();
}

criterion_group!(benches, loopback);
criterion_main!(benches);
