//! Replays a memory-amplification attack on the SPEAD receiver and prints
//! its resident memory: a UDP receiver with the heaps run's limits, then
//! hostile datagrams that each open a new heap declaring the largest
//! accepted HEAP_LENGTH but carrying a few bytes, at its start or at its end.
//! With a payload size, datagrams carry that many bytes and fill heaps for
//! real (1024 per heap, spread over it, never completing it): memory then
//! grows to the receiver's budget and stops there.
//!
//! ```sh
//! cargo run --release -p perfkit-spead --example hostile_heaps -- 28000
//! cargo run --release -p perfkit-spead --example hostile_heaps -- 8192 60000
//! ```

use perfkit_spead::reasm::{probe_packet, Stream};
use perfkit_spead::recv::{self, UdpReceiver};
use perfkit_spead::run::RunConfig;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};

/// VmRSS and VmHWM (peak) of this process, in MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn main() -> std::io::Result<()> {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(28_000);
    let fill: Option<usize> = std::env::args().nth(2).and_then(|a| a.parse().ok());
    let limits = RunConfig::default().reasm;
    let mut rx = UdpReceiver::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        recv::Config::default(),
    )?;
    let dest = rx.local_addr()?;
    let (before, _) = rss_mb();
    let done = AtomicBool::new(false);
    let received = std::thread::scope(|s| {
        let rx_thread = s.spawn(|| {
            let mut stream = Stream::new(limits);
            let mut idle = 0;
            recv::receive_until_stop(
                &mut rx,
                &mut stream,
                |got| {
                    idle = if got == 0 { idle + 1 } else { 0 };
                    !(done.load(Ordering::Acquire) && idle >= 4)
                },
                &mut |_, _| {},
            )
            .map(|()| *stream.counters())
        });
        let tx = UdpSocket::bind("127.0.0.1:0")?;
        let len = limits.max_heap_size;
        for i in 1..=n {
            let packet = match fill {
                // 1024 datagrams per heap, each at the start of its 1024th.
                Some(size) => probe_packet(i / 1024, len, (i % 1024) * (len / 1024), size),
                // Alternate: a few bytes at the start, then a few at the end.
                None => probe_packet(i, len, if i % 2 == 0 { len - 25 } else { 0 }, 25),
            };
            tx.send_to(&packet, dest)?;
            if i % if fill.is_some() { 16 } else { 256 } == 0 {
                // Loopback drops what the receiver has no room for; pace a little.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
        done.store(true, Ordering::Release);
        rx_thread.join().expect("receiver thread")
    })?;
    let (after, peak) = rss_mb();
    println!(
        "{n} hostile datagrams ({} bytes each): {} received, RSS before {before:.1} MB, after {after:.1} MB, peak {peak:.1} MB",
        probe_packet(0, 0, 0, fill.unwrap_or(25)).len(),
        received.packets
    );
    println!("{received:?}");
    Ok(())
}
