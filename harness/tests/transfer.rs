//! End-to-end runs of the real `perfkit` binary: the shipped transfer
//! scenarios, `send | recv` as a shell pipeline, serial over a pty pair,
//! external programs at one end of a pipe, and Ctrl-C-safe results.

use std::process::{Command, Output, Stdio};

mod common;

use common::{exe, root};
use perfkit_report::model::{Results, TimeBase};

/// Runs `perfkit ARGS` from the repository root.
fn perfkit(args: &[&str]) -> Output {
    Command::new(exe())
        .args(args)
        .current_dir(root())
        .output()
        .unwrap()
}

fn run_scenario(scenario: &str, extra: &[&str]) -> (Output, Results, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run",
        scenario,
        "--out",
        out.path().to_str().unwrap(),
        "--no-report",
    ];
    args.extend_from_slice(extra);
    let o = perfkit(&args);
    let results = Results::load(out.path().join("results.json"))
        .unwrap_or_else(|e| panic!("{scenario}: {e}\n{}", String::from_utf8_lossy(&o.stderr)));
    (o, results, out)
}

fn image_sha() -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(std::fs::read(root().join("fixtures/test35k.jpg")).unwrap());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn send_pipe_recv_moves_the_image_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jpg");
    let mut send = Command::new(exe())
        .args(["send", "fixtures/test35k.jpg"])
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let recv = Command::new(exe())
        .args(["recv", out.to_str().unwrap()])
        .stdin(Stdio::from(send.stdout.take().unwrap()))
        .output()
        .unwrap();
    let send = send.wait_with_output().unwrap();
    assert!(send.status.success());
    assert!(
        recv.status.success(),
        "{}",
        String::from_utf8_lossy(&recv.stderr)
    );
    assert_eq!(
        std::fs::read(&out).unwrap(),
        std::fs::read(root().join("fixtures/test35k.jpg")).unwrap()
    );
    let tx = String::from_utf8_lossy(&send.stderr);
    let rx = String::from_utf8_lossy(&recv.stderr);
    assert!(
        tx.contains("tx transfer: T:0 blk:2780 by:138840 PPS:"),
        "{tx}"
    );
    assert!(
        rx.contains("rx transfer: T:0 blk:695 by:34710 PPS:"),
        "{rx}"
    );
    // The per-site lines: the field's order, every time with its unit, and
    // `span!` sites labelled as spans.
    for (side, text, span_site) in [
        ("tx", &tx, "link.pipe.write"),
        ("rx", &rx, "framing::decode"),
    ] {
        assert!(
            text.contains(&format!("\n{span_site} span: calls:")),
            "{side}: {text}"
        );
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(" measure: ") || l.contains(" span: "))
            .collect();
        assert!(lines.len() >= 4, "{side}: {text}");
        for line in lines {
            let (_, figures) = line.split_once(": ").unwrap();
            let fields: Vec<&str> = figures.split(' ').collect();
            let keys: Vec<&str> = fields
                .iter()
                .map(|f| f.split(':').next().unwrap())
                .collect();
            assert_eq!(keys[..4], ["calls", "min", "max", "cum"], "{line}");
            for f in &fields[1..8] {
                let v = f.split(':').nth(1).unwrap();
                let unit =
                    v.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ',');
                assert!(["ns", "us", "ms", "s"].contains(&unit), "{f} in {line}");
            }
        }
    }
}

#[test]
fn recv_writes_nothing_for_a_truncated_stream() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jpg");
    // The first 20,000 bytes of a framed transfer: META and some blocks, no END.
    let send = Command::new(exe())
        .args(["send", "fixtures/test35k.jpg", "--repeats", "0", "--quiet"])
        .current_dir(root())
        .output()
        .unwrap();
    let mut recv = Command::new(exe())
        .args(["recv", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    recv.stdin
        .take()
        .unwrap()
        .write_all(&send.stdout[..20_000])
        .unwrap();
    let o = recv.wait_with_output().unwrap();
    // A file announced but not received whole: data lost (4), not a failed run (3).
    assert_eq!(o.status.code(), Some(4));
    assert!(!out.exists(), "a partial file must not be written");
    assert!(String::from_utf8_lossy(&o.stderr).contains("block(s) missing"));
}

#[test]
fn uart_throttled_reproduces_the_field_figures() {
    let (o, r, _d) = run_scenario("scenarios/uart-throttled.toml", &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = &r.runs[0];
    assert_eq!(rec.time_base, TimeBase::Virtual);
    assert!(rec.integrity.ok);
    assert_eq!(rec.integrity.sha256_received, image_sha());
    // Field: T:72 blk:2780 by:138840 (tx), receiver BPS 462..490; within 15 %.
    assert_eq!(rec.tx.blocks, 2780);
    assert_eq!(rec.tx.bytes, 138_840);
    assert!(
        (72.0 * 0.85..=72.0 * 1.15).contains(&rec.tx.seconds),
        "{}",
        rec.tx.seconds
    );
    assert!(
        (462.0 * 0.85..=490.0 * 1.15).contains(&rec.rx.bps),
        "{}",
        rec.rx.bps
    );
    assert_eq!(rec.link.counters["overflow_drops"], 0);
    let u = rec.link.utilisation.unwrap();
    assert!(u > 0.0 && u <= 1.0);
    assert!(!rec.stages.sites.is_empty(), "per-stage stats are recorded");
}

#[test]
fn uart_unthrottled_reports_its_losses() {
    let (o, r, _d) = run_scenario("scenarios/uart-unthrottled.toml", &[]);
    assert!(
        o.status.success(),
        "a scenario that declares its loss is not a failed run"
    );
    assert_eq!(r.meta.scenario.expect.as_deref(), Some("loss"));
    let rec = &r.runs[0];
    assert!(!rec.integrity.ok);
    assert!(!rec.integrity.missing_blocks.is_empty());
    assert!(rec.link.counters["overflow_drops"] > 0);
    // Field: the unthrottled sender reached about 115 packets/s.
    assert!(
        (115.0 * 0.85..=115.0 * 1.15).contains(&rec.tx.pps),
        "{}",
        rec.tx.pps
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("integrity: FAILED"), "{text}");
}

#[test]
fn uart_sweep_is_deterministic() {
    let (_, a, _d1) = run_scenario("scenarios/uart-sweep.toml", &["--quiet"]);
    let (_, b, _d2) = run_scenario("scenarios/uart-sweep.toml", &["--quiet"]);
    assert_eq!(a.runs.len(), 36);
    for (x, y) in a.runs.iter().zip(&b.runs) {
        assert_eq!(
            (x.tx.clone(), x.rx.clone(), x.link.clone()),
            (y.tx.clone(), y.rx.clone(), y.link.clone())
        );
        assert!(x.integrity.ok, "config {} lost data", x.config_id);
    }
    assert_eq!(a.meta.swept, vec!["throttle_pps", "block_size", "repeats"]);
}

#[test]
fn loopback_and_pipe_scenarios_move_the_bytes_intact() {
    for (scenario, extra) in [
        ("scenarios/loopback.toml", vec!["--repeat", "1"]),
        // A smaller generated input keeps the debug build quick.
        (
            "scenarios/pipe.toml",
            vec!["--repeat", "1", "--set", "input_size=300000"],
        ),
        ("scenarios/noisy-pipe.toml", vec![]),
    ] {
        let (o, r, _d) = run_scenario(scenario, &extra);
        assert!(
            o.status.success(),
            "{scenario}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!r.runs.is_empty());
        for rec in &r.runs {
            assert!(
                rec.integrity.ok,
                "{scenario} config {}: {:?}",
                rec.config_id, rec.integrity
            );
            assert!(rec.rx.bps > 0.0 && rec.tx.bps > 0.0);
            // `stages = false` switches recording off: no table then.
            let recorded = rec.config.get("stages") != Some(&serde_json::Value::Bool(false));
            assert_eq!(
                !rec.stages.sites.is_empty(),
                recorded,
                "{scenario}: stage stats"
            );
        }
    }
}

#[test]
fn noisy_pipe_injects_faults_and_counts_them() {
    let (_, r, _d) = run_scenario("scenarios/noisy-pipe.toml", &["--set", "seed=7"]);
    let rec = &r.runs[0];
    assert!(rec.link.counters["faults.bytes_dropped"] > 0);
    assert!(
        rec.rx.errors["crc_errors"] + rec.rx.errors["bad_lengths"] > 0,
        "{:?}",
        rec.rx.errors
    );
    assert!(rec.integrity.ok, "3 repeats recover the file");
    // Without repeats the same faults lose blocks, and the receiver names them.
    let (_, r, _d) = run_scenario(
        "scenarios/noisy-pipe.toml",
        &[
            "--set",
            "seed=7",
            "--set",
            "repeats=0",
            "--set",
            "byte_drop=0.002",
        ],
    );
    let rec = &r.runs[0];
    assert!(!rec.integrity.ok);
    assert!(!rec.integrity.missing_blocks.is_empty());
}

#[test]
fn serial_over_a_pty_pair() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("serial.toml");
    let image = root().join("fixtures/test35k.jpg");
    std::fs::write(
        &s,
        format!(
            "input = {:?}\n[link]\nkind = \"serial\"\nbaud = 115200\n[transfer]\nrepeats = 1\n",
            image.display().to_string()
        ),
    )
    .unwrap();
    let (o, r, _d) = run_scenario(s.to_str().unwrap(), &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(r.runs[0].integrity.ok, "{:?}", r.runs[0].integrity);
    assert_eq!(r.runs[0].rx.bytes, 34_710);
}

#[test]
fn the_shipped_tcp_scenario_moves_the_file_over_a_real_connection() {
    let (o, r, _d) = run_scenario(
        "scenarios/tcp.toml",
        &["--set", "input_size=300000", "--set", "sndbuf=[0,8192]"],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(r.runs.len(), 2 * 2 * 3, "nodelay x sndbuf x runs");
    for run in &r.runs {
        assert!(run.integrity.ok, "{:?}", run.integrity);
        assert_eq!(run.rx.bytes, 300_000);
        assert_eq!(run.config["link"], "tcp");
        assert!(run.config.contains_key("tcp_nodelay"), "{:?}", run.config);
        assert!(!run.config.contains_key("mtu"), "{:?}", run.config);
    }
    // The socket's calls are stages of their own.
    let names: Vec<_> = r.runs[0]
        .stages
        .sites
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert!(names.contains(&"link.tcp.write"), "{names:?}");
}

#[test]
fn udp_datagrams_carry_the_file_and_count_what_they_lose() {
    let (o, r, _d) = run_scenario(
        "scenarios/tcp.toml",
        &[
            "--set",
            "link=udp",
            "--set",
            "tcp_nodelay=true",
            "--set",
            "sndbuf=0",
            "--set",
            "input_size=300000",
            "--set",
            "rcvbuf=8388608",
            "--set",
            "latency=true",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for run in &r.runs {
        assert!(run.integrity.ok, "{:?}", run.integrity);
        let c = &run.link.counters;
        // 300,000 bytes in 249-byte blocks, META and END besides.
        assert!(c["packets_sent"] > 1205, "{c:?}");
        assert_eq!(c["packets_lost"], 0, "{c:?}");
        assert_eq!(c["packets_arrived"], c["packets_sent"], "{c:?}");
        // Every block's one-way delay (300,000 / 249 rounded up), one clock.
        assert_eq!(
            run.metrics["one_way_delay_blocks"], 1205.0,
            "{:?}",
            run.metrics
        );
        assert!(
            run.metrics["one_way_delay_min_us"] > 0.0,
            "{:?}",
            run.metrics
        );
    }
    // A key only TCP reads, swept, is refused for a UDP run, before running.
    let o = perfkit(&[
        "run",
        "scenarios/tcp.toml",
        "--set",
        "link=udp",
        "--out",
        "/nonexistent",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("link.tcp_nodelay"), "{err}");
}

/// A pipe scenario in `dir` that moves the test image with one end (`end`:
/// `sender_cmd` or `receiver_cmd`) run as an external program, `perfkit
/// ARGS`; its path.
fn external_end(dir: &std::path::Path, end: &str, args: &[&str]) -> String {
    let argv: Vec<String> = std::iter::once(format!("{:?}", exe()))
        .chain(args.iter().map(|a| format!("{a:?}")))
        .collect();
    let s = dir.join("ext.toml");
    std::fs::write(
        &s,
        format!(
            "input = {:?}\n[link]\nkind = \"pipe\"\n{end} = [{}]\n",
            root().join("fixtures/test35k.jpg").display().to_string(),
            argv.join(", ")
        ),
    )
    .unwrap();
    s.display().to_string()
}

#[test]
fn external_receiver_is_measured_through_the_relay() {
    let dir = tempfile::tempdir().unwrap();
    let s = external_end(
        dir.path(),
        "receiver_cmd",
        &["recv", "{output}", "--quiet", "--framing", "{framing}"],
    );
    let (o, r, _d) = run_scenario(&s, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rec = &r.runs[0];
    assert!(rec.integrity.ok, "{:?}", rec.integrity);
    assert_eq!(rec.rx.bytes, 34_710);
    assert!(rec.link.counters["tap.frames"] > 0);
}

#[test]
fn a_whole_file_other_than_the_input_is_not_intact() {
    // An external sender sends another file, whole, with its own META:
    // perfkit recv verifies it against that META and calls it intact; the
    // run holds it to the input it was given.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.bin");
    std::fs::write(&other, vec![7u8; 5000]).unwrap();
    let other = other.display().to_string();
    let s = external_end(
        dir.path(),
        "sender_cmd",
        &["send", &other, "--quiet", "--framing", "{framing}"],
    );
    let (o, r, _d) = run_scenario(&s, &[]);
    assert!(
        !o.status.success(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let i = &r.runs[0].integrity;
    assert!(!i.ok, "{i:?}");
    assert_eq!(i.sha256_sent, image_sha());
    let why = i.reason.as_deref().unwrap_or_default();
    assert!(why.contains("not this run's input"), "{why}");
    assert!(why.contains("external sender"), "{why}");
}

#[test]
fn batched_heaps_scenario_runs_both_implementations() {
    // Small volumes: this checks the plumbing; the figures come from the full scenario.
    let (o, r, _d) = run_scenario(
        "scenarios/batched-heaps.toml",
        &[
            "--set",
            "heap_size=[8192,65536]",
            "--set",
            "volume_mb=4",
            "--set",
            "time_cap_s=3",
            // The senders' plumbing; tests/heaps.rs covers both receivers.
            "--set",
            "receiver_implementation=perfkit",
            "--quiet",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(r.runs.len(), 2 * 2 * 3);
    for rec in &r.runs {
        assert!(rec.integrity.ok, "{:?}: {:?}", rec.config, rec.rx.errors);
        assert!(rec.metrics["mb_per_s"] > 0.0);
        assert_eq!(rec.link.counters["stopped_cleanly"], 1);
    }
    let impls: std::collections::BTreeSet<String> = r
        .runs
        .iter()
        .map(|x| x.config["implementation"].to_string())
        .collect();
    assert_eq!(impls.len(), 2);
}

#[test]
fn pico_scenario_moves_the_image_both_ways_on_the_emulator() {
    let (o, r, _d) = run_scenario(
        "scenarios/uart-pico.toml",
        &[
            "--set",
            "throttle_pps=0",
            "--set",
            "block_size=50",
            "--quiet",
        ],
    );
    assert!(
        o.status.success(),
        "needs the firmware and emulator from scripts/setup.d/40-firmware.sh: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(r.runs.len(), 2, "device as sender and as receiver");
    for rec in &r.runs {
        assert_eq!(rec.time_base, TimeBase::Virtual);
        assert!(
            rec.integrity.ok,
            "{:?}: {:?}",
            rec.config["role"], rec.integrity
        );
        assert_eq!(rec.integrity.sha256_received, image_sha());
        let dev = rec.device_stages.as_ref().expect("device snapshot");
        assert!(!dev.sites.is_empty(), "device stages reported");
        assert!(rec.link.utilisation.unwrap() > 0.5);
    }
}

/// Ctrl-C reaches the pico kind: the emulated run stops at its next slice
/// with the engine's wording and is recorded as such.
#[test]
fn pico_run_stops_on_ctrl_c_as_interrupted() {
    let out = tempfile::tempdir().unwrap();
    // 40 packets/s with 3 repeats: 71 virtual seconds, several real ones.
    let child = common::signals_default(&mut Command::new(exe()))
        .args([
            "run",
            "scenarios/uart-pico.toml",
            "--set",
            "role=receiver",
            "--set",
            "throttle_pps=40",
            "--set",
            "block_size=50",
            "--out",
            out.path().to_str().unwrap(),
            "--no-report",
            "--quiet",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signals a child this test started and still owns.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = Results::load(out.path().join("results.json")).unwrap();
    assert_eq!(r.runs.len(), 1);
    assert_eq!(r.runs[0].error.as_deref(), Some("interrupted"));
}
