//! Interop with the real spead2 (PyPI), both directions, for heaps that fit
//! one packet and heaps that span many. Needs spead2 in `build/venv`
//! (`scripts/setup.d/30-spead2.sh`, run by `scripts/test.sh`).

use perfkit_spead::reasm::{self, Heap, Stream};
use perfkit_spead::recv::{self, UdpReceiver};
use perfkit_spead::run::{self, Impl, RunConfig, Spead2Sender, SAMPLES_ID, TIMESTAMP_ID};
use perfkit_spead::send::{self, HeapRef, Mode, UdpSender};
use perfkit_spead::wire::{ctrl, id};
use perfkit_spead::{descriptor::ItemDescriptor, packetize::Item};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The checkout under test (the library itself looks for nothing).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `build/venv/bin/python` when scripts/setup.d/30-spead2.sh made it, else `python3`.
fn python() -> PathBuf {
    let venv = root().join("build/venv/bin/python");
    let py = if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    };
    let ok = Command::new(&py)
        .args(["-c", "import spead2, numpy"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        ok,
        "spead2 is not importable with {}: run scripts/setup.d/30-spead2.sh (or scripts/test.sh) first",
        py.display()
    );
    py
}

struct Spead2Recv {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    port: u16,
}

impl Spead2Recv {
    fn start() -> Self {
        let script = root().join("scripts/spead2/recv.py");
        let mut child = Command::new(python())
            .arg(&script)
            .args(["--timeout", "20"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start spead2 receiver");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let port = first["ready"].as_u64().expect("ready line") as u16;
        Spead2Recv { child, lines, port }
    }

    fn finish(mut self) -> Vec<Value> {
        let out: Vec<Value> = self
            .lines
            .by_ref()
            .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
            .collect();
        assert!(self.child.wait().unwrap().success());
        out
    }
}

/// Sends pattern heaps `0..heaps` (descriptors in heap 0), heap `i` filled
/// with `byte(i)` or left out where that is `None`, then the stop heap.
fn send_pattern(
    tx: &mut UdpSender,
    heap_size: usize,
    heaps: u64,
    byte: impl Fn(u64) -> Option<u8>,
) {
    let descriptors = run::descriptor_packets(heap_size);
    let mut samples = vec![0u8; heap_size];
    for i in 0..heaps {
        let Some(b) = byte(i) else { continue };
        samples.fill(b);
        let items = run::heap_items(i, &samples, (i == 0).then_some(&descriptors));
        tx.send_heap(HeapRef {
            cnt: i + 1,
            items: &items,
        })
        .unwrap();
    }
    let stop = [Item::immediate(id::STREAM_CTRL, ctrl::STOP)];
    tx.send_heap(HeapRef {
        cnt: heaps + 1,
        items: &stop,
    })
    .unwrap();
}

/// perfkit sender -> spead2 receiver: descriptors, values and stop arrive.
fn perfkit_to_spead2(heap_size: usize, packet_size: usize, heaps: u64, even_packets: bool) {
    let rx = Spead2Recv::start();
    let config = send::Config {
        max_packet_size: packet_size,
        gso: true,
        rate_bytes_per_s: 20 << 20,
        even_packets,
        ..send::Config::default()
    };
    let mut tx = UdpSender::connect(([127, 0, 0, 1], rx.port).into(), config).unwrap();
    send_pattern(&mut tx, heap_size, heaps, |i| Some(i as u8));
    let per_heap = tx.stats().packets / (heaps + 1);
    let out = rx.finish();

    let descs: Vec<&Value> = out.iter().filter_map(|v| v.get("descriptor")).collect();
    assert_eq!(descs.len(), 2, "{out:?}");
    assert_eq!(descs[0]["name"], "timestamp");
    assert_eq!(descs[0]["id"], TIMESTAMP_ID);
    assert_eq!(descs[0]["format"], serde_json::json!([["u", 40]]));
    assert_eq!(descs[1]["name"], "adc_samples");
    assert_eq!(descs[1]["id"], SAMPLES_ID);
    assert_eq!(descs[1]["dtype"], "int8");
    assert_eq!(descs[1]["shape"], serde_json::json!([heap_size]));

    let heaps_seen: Vec<&Value> = out.iter().filter(|v| v.get("heap").is_some()).collect();
    assert_eq!(heaps_seen.len() as u64, heaps, "{out:?}");
    for (i, h) in heaps_seen.iter().enumerate() {
        assert_eq!(h["heap"], i as u64 + 1);
        assert_eq!(h["items"]["timestamp"], (i * heap_size) as u64);
        let s = &h["items"]["adc_samples"];
        assert_eq!(s["len"], heap_size as u64);
        assert_eq!(s["first"], (i % 256) as u64);
        assert_eq!(s["uniform"], true);
    }
    let end = out.last().unwrap();
    assert_eq!(end["stop"], true, "stream did not stop cleanly: {end}");
    assert_eq!(end["incomplete"], 0);
    assert!(per_heap >= 1);
}

#[test]
fn perfkit_to_spead2_single_packet_heaps() {
    perfkit_to_spead2(4096, 9000, 5, false);
}

#[test]
fn perfkit_to_spead2_many_packet_heaps() {
    // 100 000 bytes at 1472-byte packets: 70 packets per heap.
    perfkit_to_spead2(100_000, 1472, 4, false);
}

#[test]
fn perfkit_to_spead2_even_split_heaps() {
    // The batch+gso split: equal-size packets, merged by GSO.
    perfkit_to_spead2(65536, 9000, 6, true);
}

/// spead2 sender -> perfkit receiver, checked in detail.
fn spead2_to_perfkit(mode: &str, heap_size: usize, packet_size: usize, heaps: u64) {
    let mut rx = UdpReceiver::bind(([127, 0, 0, 1], 0).into(), recv::Config::default()).unwrap();
    let port = rx.local_addr().unwrap().port();
    let mut child = Command::new(python())
        .arg(spead2_sender().script)
        .args(["--mode", mode, "--heaps", &heaps.to_string()])
        .args(["--heap-size", &heap_size.to_string()])
        .args(["--packet-size", &packet_size.to_string()])
        .args(["--rate", "20000000", "127.0.0.1", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stream = Stream::new(reasm::Config::default());
    let mut values = Vec::new();
    let mut descs: Vec<ItemDescriptor> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    recv::receive_until_stop(
        &mut rx,
        &mut stream,
        |_| Instant::now() < deadline,
        &mut |h: &Heap, d: &[ItemDescriptor]| {
            descs = d.to_vec();
            if let Some(ok) = run::verify_heap(h, heap_size) {
                let ts = h.item(TIMESTAMP_ID).and_then(|v| v.as_u64());
                values.push((h.cnt, ts, ok));
            }
        },
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    assert!(stream.is_stopped(), "no stop heap: {:?}", stream.counters());
    let expect: Vec<(u64, Option<u64>, bool)> = (0..heaps)
        .map(|i| (i + 1, Some(i * heap_size as u64), true))
        .collect();
    assert_eq!(values, expect);
    let c = stream.counters();
    assert_eq!(
        (c.heaps_incomplete, c.bad_packets, c.duplicate_packets),
        (0, 0, 0)
    );
    assert_eq!(descs.len(), 2);
    let ts = descs.iter().find(|d| d.id == TIMESTAMP_ID).unwrap();
    assert_eq!(
        (ts.name.as_str(), ts.format.as_slice()),
        ("timestamp", &[(b'u', 40)][..])
    );
    let s = descs.iter().find(|d| d.id == SAMPLES_ID).unwrap();
    assert_eq!(s.name, "adc_samples");
    assert_eq!(s.shape, [Some(heap_size as u64)]);
    assert_eq!(
        s.dtype.as_deref(),
        Some(run::samples_dtype(heap_size).as_str())
    );
}

#[test]
fn spead2_to_perfkit_single_packet_heaps() {
    spead2_to_perfkit("batch", 8192, 9000, 20);
}

#[test]
fn spead2_to_perfkit_many_packet_heaps() {
    spead2_to_perfkit("heap", 100_000, 1472, 6);
}

fn spead2_sender() -> Spead2Sender {
    Spead2Sender {
        python: python(),
        script: root().join("scripts/spead2/send.py"),
    }
}

/// The harness path: one measured run with spead2 as the sender.
#[test]
fn measured_run_with_spead2_sender_verifies() {
    for (mode, heap_size) in [(Mode::Batch, 8192), (Mode::Heap, 256 * 1024)] {
        let cfg = RunConfig {
            heap_size,
            mode,
            implementation: Impl::Spead2,
            volume_bytes: 4 << 20,
            rate_bytes_per_s: 100 << 20,
            spead2: Some(spead2_sender()),
            ..RunConfig::default()
        };
        let s = run::run(&cfg, &AtomicBool::new(false)).unwrap();
        assert!(
            s.rx.verified_ok && s.rx.stopped_cleanly,
            "{mode}: {:?}",
            s.rx
        );
        assert_eq!(s.rx.verified_heaps, s.heaps, "{mode}: {:?}", s.rx);
        assert_eq!(s.heaps, (4 << 20) / heap_size as u64);
        assert_eq!(s.rx.descriptors, ["timestamp", "adc_samples"]);
        assert!(s.mb_per_s > 0.0);
    }
}

/// Cancelling a run stops spead2's sender too (the child is killed).
#[test]
fn cancel_stops_a_run_with_spead2_sender() {
    // Paced to take 40 s: only the cancel can end it early.
    let cfg = RunConfig {
        heap_size: 64 * 1024,
        mode: Mode::Batch,
        implementation: Impl::Spead2,
        volume_bytes: 400 << 20,
        rate_bytes_per_s: 10 << 20,
        time_cap: Duration::from_secs(40),
        spead2: Some(spead2_sender()),
        ..RunConfig::default()
    };
    let cancel = AtomicBool::new(false);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(500));
            cancel.store(true, Ordering::Relaxed);
        });
        run::run(&cfg, &cancel)
    });
    let e = r.unwrap_err();
    assert_eq!(e.kind(), run::ErrorKind::Interrupted, "{e}");
    assert_eq!(e.to_string(), "interrupted");
}

/// spead2's measured receiver (`recv.py --pattern`), fed heap by heap:
/// every heap sent arrives verified and none is lost, or, with one heap
/// left out and one sent with a wrong sample byte, exactly that loss and
/// that failure are reported.
fn spead2_pattern_receiver(skip: Option<u64>, corrupt: Option<u64>) -> run::RunStats {
    let heap_size = 16384;
    let heaps = 40u64;
    let cfg = RunConfig {
        heap_size,
        volume_bytes: heaps * heap_size as u64,
        ..RunConfig::default()
    };
    let waiting = run::Spead2Receiving::start(
        &python(),
        &root().join("scripts/spead2/recv.py"),
        [127, 0, 0, 1].into(),
        &cfg,
        Duration::from_secs(20),
    )
    .unwrap();
    let config = send::Config {
        max_packet_size: cfg.packet_size,
        // Paced so that loopback drops nothing on a busy machine.
        rate_bytes_per_s: 20 << 20,
        ..send::Config::default()
    };
    let mut tx = UdpSender::connect(waiting.address(), config).unwrap();
    send_pattern(&mut tx, heap_size, heaps, |i| match i {
        _ if Some(i) == skip => None,
        _ if Some(i) == corrupt => Some(i as u8 + 1),
        _ => Some(i as u8),
    });
    let rx = waiting.receive(&AtomicBool::new(false)).unwrap();
    let sent = run::TxOutcome {
        heaps,
        seconds: 1.0,
        ..run::TxOutcome::default()
    };
    run::combine(&cfg, sent, rx)
}

#[test]
fn spead2_pattern_receiver_reports_zero_loss() {
    let s = spead2_pattern_receiver(None, None);
    let rx = &s.rx;
    assert!(rx.stopped_cleanly && rx.verified_ok, "{rx:?}");
    assert_eq!((rx.verified_heaps, rx.verify_failures), (40, 0), "{rx:?}");
    assert_eq!(rx.heaps_lost, 0, "{rx:?}");
    assert_eq!(rx.payload_bytes, 40 * 16384);
    assert_eq!(rx.descriptors, ["timestamp", "adc_samples"]);
    // Its own figures are recorded (time, CPU), and its socket got the
    // same receive buffer as perfkit's receiver does here.
    assert!(rx.seconds > 0.0 && rx.cpu_seconds > 0.0, "{rx:?}");
    let perfkit = UdpReceiver::bind(([127, 0, 0, 1], 0).into(), recv::Config::default()).unwrap();
    assert_eq!(rx.rcvbuf, perfkit.rcvbuf(), "{rx:?}");
}

#[test]
fn spead2_pattern_receiver_reports_loss_and_bad_heaps() {
    let s = spead2_pattern_receiver(Some(7), Some(12));
    let rx = &s.rx;
    assert!(rx.stopped_cleanly, "{rx:?}");
    assert_eq!((rx.verified_heaps, rx.verify_failures), (38, 1), "{rx:?}");
    assert_eq!(rx.heaps_lost, 1, "{rx:?}");
    assert!(!rx.verified_ok, "{rx:?}");
}
