//! Per-stage and end-to-end benchmarks of the transfer stack.
//!
//! `cargo bench -p perfkit-stack --bench stages -- --warm-up-time 1 --measurement-time 3`
//!
//! Throughput is payload bytes, so criterion prints MB/s; packets/s follow
//! from the message counts printed at start-up. Stage benches run with
//! perfkit recording switched off at run time; `e2e` is also run with it on
//! (`e2e_instrumented`).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use perfkit_stack::wire::{self, crc};
use perfkit_stack::{
    Deframer, Framing, MemorySink, MemorySource, Poll, Receiver, Sender, SenderConfig,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    ChaCha8Rng::seed_from_u64(42).fill_bytes(&mut v);
    v
}

/// The `crc` crate's table variants and, where the CPU has PCLMULQDQ
/// (x86_64), the carry-less-multiplication path `crc16` picks on hosts.
fn crc16(c: &mut Criterion) {
    let mut g = c.benchmark_group("crc16");
    if crc::clmul(&[]).is_none() {
        eprintln!("crc16/clmul: not supported on this CPU, skipped");
    }
    for n in [50usize, 249, 64 * 1024] {
        let data = random(n);
        g.throughput(Throughput::Bytes(n as u64));
        if crc::clmul(&data).is_some() {
            g.bench_function(format!("clmul/{n}"), |b| {
                b.iter(|| crc::clmul(black_box(&data)))
            });
        }
        g.bench_function(format!("slice16/{n}"), |b| {
            b.iter(|| crc::SLICE16.checksum(black_box(&data)))
        });
        g.bench_function(format!("table1/{n}"), |b| {
            b.iter(|| crc::TABLE1.checksum(black_box(&data)))
        });
        g.bench_function(format!("notable/{n}"), |b| {
            b.iter(|| crc::NOTABLE.checksum(black_box(&data)))
        });
    }
    g.finish();
}

/// The `i`th of a set of link messages with `payload` random bytes each.
fn message(payload: usize, i: u64) -> Vec<u8> {
    let mut data = vec![0u8; payload];
    ChaCha8Rng::seed_from_u64(42 + i).fill_bytes(&mut data);
    let mut m = [0u8; 256];
    let n = wire::build(&mut m, 1, 0, 7, payload, |p| {
        p.copy_from_slice(&data);
        Ok(())
    })
    .unwrap();
    m[..n].to_vec()
}

/// Messages per framing bench iteration: each has its own random bytes, so
/// the escapes fall where they would in a real transfer and the branch
/// predictor cannot learn one message's pattern (it does learn a single
/// message repeated, which made the framings look faster than they run).
const FRAMES: usize = 64;

fn framing(c: &mut Criterion) {
    perfkit::set_enabled(false);
    let mut g = c.benchmark_group("frame");
    for payload in [50usize, 249] {
        let msgs: Vec<Vec<u8>> = (0..FRAMES as u64).map(|i| message(payload, i)).collect();
        let total: usize = msgs.iter().map(Vec::len).sum();
        g.throughput(Throughput::Bytes(total as u64));
        for f in [Framing::Dttk, Framing::Cobs] {
            let mut out = [0u8; 600];
            g.bench_function(format!("encode/{f:?}/{payload}x{FRAMES}"), |b| {
                b.iter(|| {
                    msgs.iter()
                        .map(|m| f.encode(black_box(m), &mut out).unwrap())
                        .sum::<usize>()
                })
            });
            // A stream of the same frames, deframed in one push.
            let mut stream = Vec::new();
            for m in &msgs {
                let n = f.encode(m, &mut out).unwrap();
                stream.extend_from_slice(&out[..n]);
            }
            g.bench_function(format!("deframe/{f:?}/{payload}x{FRAMES}"), |b| {
                let mut d: Deframer = Deframer::new(f);
                b.iter(|| {
                    let mut k = 0;
                    d.push(black_box(&stream), |fr| k += fr.len());
                    k
                })
            });
        }
    }
    g.finish();
}

/// All messages of a transfer of `data` (no repeats).
fn messages(data: &[u8], block: u8) -> Vec<Vec<u8>> {
    let cfg = SenderConfig {
        block_size: block,
        repeats: 0,
        ..SenderConfig::default()
    };
    let mut tx = Sender::new(MemorySource::new(data, b"bench"), cfg).unwrap();
    let mut out = [0u8; 256];
    let mut v = Vec::new();
    while let Poll::Message(n) = tx.poll(0, &mut out).unwrap() {
        v.push(out[..n].to_vec());
    }
    v
}

const FILE: usize = 1 << 20;

fn receiver(c: &mut Criterion) {
    perfkit::set_enabled(false);
    let mut g = c.benchmark_group("receiver");
    let data = random(FILE);
    for block in [50u8, 249] {
        let msgs = messages(&data, block);
        g.throughput(Throughput::Bytes(FILE as u64));
        // parse + crc check + store + sha256 for every message of a 1 MiB file.
        g.bench_function(format!("on_message/{block}"), |b| {
            b.iter_batched_ref(
                || {
                    Box::new(Receiver::<_, 8192>::new(
                        0,
                        MemorySink::new(vec![1u8; FILE]),
                        Framing::Dttk,
                    ))
                },
                |rx| {
                    for m in &msgs {
                        black_box(rx.on_message(m, 0));
                    }
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Sender -> frame -> deframe -> receiver -> sink, one message at a time.
fn end_to_end(c: &mut Criterion, group: &str) {
    let mut g = c.benchmark_group(group);
    let data = random(FILE);
    for block in [50u8, 249] {
        for framing in [Framing::Dttk, Framing::Cobs] {
            let cfg = SenderConfig {
                block_size: block,
                repeats: 0,
                ..SenderConfig::default()
            };
            let n_msgs = messages(&data, block).len();
            eprintln!("{group}/{framing:?}/{block}: {n_msgs} messages per 1 MiB iteration");
            g.throughput(Throughput::Bytes(FILE as u64));
            g.bench_function(format!("{framing:?}/{block}"), |b| {
                b.iter_batched_ref(
                    || {
                        (
                            Sender::new(MemorySource::new(&data, b"bench"), cfg).unwrap(),
                            Box::new(Receiver::<_, 8192>::new(
                                0,
                                MemorySink::new(vec![1u8; FILE]),
                                framing,
                            )),
                        )
                    },
                    |(tx, rx)| {
                        let mut msg = [0u8; 256];
                        let mut framed = [0u8; 600];
                        let mut ok = false;
                        while let Poll::Message(n) = tx.poll(0, &mut msg).unwrap() {
                            let m = framing.encode(&msg[..n], &mut framed).unwrap();
                            rx.on_bytes(&framed[..m], 0, &mut |e| {
                                ok |= matches!(e, perfkit_stack::Event::Complete { .. })
                            });
                        }
                        assert!(ok);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

fn sha256(c: &mut Criterion) {
    use sha2::{Digest, Sha256};
    let mut g = c.benchmark_group("sha256");
    for n in [249usize, 64 * 1024] {
        let data = random(n);
        g.throughput(Throughput::Bytes(n as u64));
        g.bench_function(format!("{n}"), |b| {
            b.iter(|| Sha256::digest(black_box(&data)))
        });
    }
    g.finish();
}

/// End to end with perfkit recording off at run time (the target figure)
/// and on (what an instrumented run costs).
fn e2e(c: &mut Criterion) {
    perfkit::set_enabled(false);
    end_to_end(c, "e2e");
    perfkit::set_enabled(true);
    end_to_end(c, "e2e_instrumented");
}

criterion_group!(benches, crc16, framing, sha256, receiver, e2e);
criterion_main!(benches);
