//! Move a file (default: 1 MiB of seeded random bytes) through sender ->
//! framing -> deframer -> receiver in memory and print both stats lines.
//!
//! `cargo run --release -p perfkit-stack --example loopback -- [FILE|-] [BLOCK] [dttk|cobs] [REPEATS] [perf|noperf]`
//!
//! `noperf` switches perfkit recording off at run time; `perf` (default)
//! records and prints the stage table after the stats lines.

use std::time::Instant;

use perfkit_stack::{
    Event, Framing, MemorySink, MemorySource, Poll, Receiver, Sender, SenderConfig,
};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let data = match args.first().filter(|a| *a != "-") {
        Some(path) => std::fs::read(path).unwrap_or_else(|e| {
            eprintln!("loopback: cannot read {path}: {e}");
            std::process::exit(2)
        }),
        None => (0..1u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    };
    let block: u8 = args.get(1).and_then(|b| b.parse().ok()).unwrap_or(249);
    let framing = match args.get(2).map(String::as_str) {
        Some("cobs") => Framing::Cobs,
        _ => Framing::Dttk,
    };
    let repeats: u32 = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(0);
    let record = args.get(4).map(String::as_str) != Some("noperf");
    perfkit::set_enabled(record);
    let cfg = SenderConfig {
        block_size: block,
        repeats,
        ..SenderConfig::default()
    };
    let mut tx = match Sender::new(MemorySource::new(&data, b"loopback"), cfg) {
        Ok(tx) => tx,
        Err(e) => {
            eprintln!("loopback: {e}");
            std::process::exit(2)
        }
    };
    let mut rx: Box<Receiver<_>> = Box::new(Receiver::new(
        0,
        // Pre-touched: measure the stack, not page faults.
        MemorySink::new(vec![0xA5u8; data.len()]),
        framing,
    ));
    let (mut msg, mut framed) = ([0u8; 256], [0u8; 600]);
    let start = Instant::now();
    let now = || start.elapsed().as_nanos() as u64;
    let mut result = None;
    loop {
        let t = now();
        match tx.poll(t, &mut msg) {
            Ok(Poll::Message(n)) => {
                let m = framing
                    .encode(&msg[..n], &mut framed)
                    .expect("600 bytes fit any frame");
                rx.on_bytes(&framed[..m], t, &mut |e| {
                    if matches!(e, Event::Complete { .. } | Event::Failed(_)) {
                        result = Some(e)
                    }
                });
            }
            Ok(Poll::WaitUntil(_)) => std::hint::spin_loop(),
            Ok(Poll::Done) => break,
            Err(e) => {
                eprintln!("loopback: {e}");
                std::process::exit(3)
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("tx {}", tx.stats());
    println!("rx {}", rx.stats());
    println!(
        "link {}  framing {}",
        rx.counters().link,
        rx.deframer_stats()
    );
    println!(
        "{:?} in {:.3} ms: {:.1} MB/s payload, {:.0} messages/s",
        result,
        secs * 1e3,
        data.len() as f64 / secs / 1e6,
        tx.counters().messages as f64 / secs
    );
    if record {
        print!("{}", perfkit::snapshot());
    }
    if !matches!(result, Some(Event::Complete { .. })) {
        std::process::exit(3);
    }
}
