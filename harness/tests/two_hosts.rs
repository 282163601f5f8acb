//! Two hosts on one machine: `[hosts] receiver = "netns"` runs the
//! receiving end on an agent in a network namespace joined by a veth pair
//! (scenarios/two-hosts.toml). Needs root, as the test command has; without
//! it these tests say so and check nothing.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{exe, root};
use perfkit_report::model::Results;

/// One namespace run at a time: the shaped-rate check measures throughput,
/// which the other tests' CPU would disturb on a small machine.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    let root = String::from_utf8_lossy(&out.stdout).trim() == "0";
    if !root {
        eprintln!("not root: network namespaces cannot be made here; nothing checked");
    }
    root
}

fn namespaces() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the shipped scenario with `--set`s; its output, results and the
/// namespace name it used.
fn run(out: &std::path::Path, set: &[&str]) -> (Output, Results, String) {
    let mut cmd = Command::new(exe());
    cmd.args([
        "run",
        "scenarios/two-hosts.toml",
        "--no-report",
        "--quiet",
        "--out",
    ])
    .arg(out)
    .current_dir(root())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for s in set {
        cmd.args(["--set", s]);
    }
    let child = cmd.spawn().unwrap();
    let ns = format!("perfkit-{}", child.id());
    let o = child.wait_with_output().unwrap();
    let r = Results::load(out.join("results.json"))
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
    (o, r, ns)
}

#[test]
fn the_shipped_scenario_crosses_the_veth_pair_whole_and_leaves_nothing() {
    if !is_root() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (o, r, ns) = run(dir.path(), &["input_size=[0,2000000]"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(r.runs.len(), 2 * 2 * 3, "tcp/udp x two sizes x 3 runs");
    for rec in &r.runs {
        assert!(rec.integrity.ok, "{:?}: {:?}", rec.config, rec.integrity);
        let agent = &rec.hosts["receiver"];
        assert!(agent.starts_with("agent: "), "{:?}", rec.hosts);
        assert!(rec.hosts.contains_key("sender"));
        // Both ends' stage tables in one record.
        let names: Vec<_> = rec.stages.sites.iter().map(|s| s.name.as_str()).collect();
        assert!(names.contains(&"sender::sha256"), "{names:?}");
        // The receiving agent hashes (on its own thread for files of 1 MiB
        // and more) and waits for the last pass.
        assert!(
            names.contains(&"receiver::sha256")
                || names.contains(&"hash_thread::sha256") && names.contains(&"receiver::hash_wait"),
            "{names:?}"
        );
        // iperf3 over the same veth pair, in the same run.
        assert!(rec.metrics["iperf3_mb_s"] > 0.0, "{:?}", rec.metrics);
    }
    assert!(
        !namespaces().contains(&ns),
        "{ns} left behind: {}",
        namespaces()
    );
}

#[test]
fn throughput_through_a_shaped_veth_pair_is_the_shaper_s_rate() {
    if !is_root() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    // A rate a debug build keeps up with on a busy machine (the release
    // build holds 100 Mbit/s to within 0.5 %; see scenarios/README.md).
    let (o, r, _) = run(
        dir.path(),
        &[
            "link=tcp",
            "input_size=2000000",
            "netns_rate_mbit=8",
            "compare_iperf3=false",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // tbf counts Ethernet frames: 1,514 bytes carry 1,448 of TCP payload
    // (with timestamps), so TCP moves 1448 / 1514 of the rate at most.
    let expected = 8.0 * 1448.0 / 1514.0;
    let mut best: f64 = 0.0;
    for rec in &r.runs {
        assert!(rec.integrity.ok);
        let wire = rec.link.counters["rx_wire_bytes"] as f64;
        let mbit = wire * 8.0 / rec.rx.seconds / 1e6;
        // The shaper is a ceiling: no run may beat it (a figure above it
        // means the shaping or the clock is wrong).
        assert!(
            mbit < expected * 1.05,
            "{mbit:.3} Mbit/s, above the shaper's {expected:.3}"
        );
        best = best.max(mbit);
    }
    // A busy machine slows a run, never speeds it up: the fastest of the
    // three is the shaper's rate.
    let off = (best - expected).abs() / expected;
    assert!(
        off < 0.05,
        "fastest run {best:.3} Mbit/s against {expected:.3}: {:.1} % off",
        off * 100.0
    );
}

#[test]
fn datagrams_lost_on_the_way_are_counted_and_tcp_still_delivers() {
    if !is_root() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let (_, r, _) = run(
        dir.path(),
        &[
            "link=[\"udp\",\"tcp\"]",
            "input_size=4000000",
            "packet_loss=0.01",
            "compare_iperf3=false",
        ],
    );
    for rec in r.runs.iter().filter(|r| r.config["link"] == "udp") {
        let c = &rec.link.counters;
        let (sent, lost, injected) = (
            c["packets_sent"] as f64,
            c["packets_lost"],
            c["faults.packets_lost"],
        );
        // Nothing else loses datagrams on the veth pair with this buffer:
        // the count is the injector's, exactly.
        assert_eq!(lost, injected, "{c:?}");
        // And the injector's is Binomial(sent, 1 %): inside its 99 % interval.
        let (mean, sd) = (sent * 0.01, (sent * 0.01 * 0.99).sqrt());
        assert!(
            (lost as f64 - mean).abs() < 2.576 * sd,
            "{lost} lost of {sent}: outside {mean:.0} +- {:.0}",
            2.576 * sd
        );
        assert!(
            !rec.integrity.ok,
            "a lossy transfer must not pass as intact"
        );
        assert!(!rec.integrity.missing_blocks.is_empty());
    }
    for rec in r.runs.iter().filter(|r| r.config["link"] == "tcp") {
        assert!(rec.integrity.ok, "{:?}", rec.integrity);
    }
}

#[test]
fn ctrl_c_mid_run_removes_the_namespace() {
    if !is_root() {
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(exe())
        .args([
            "run",
            "scenarios/two-hosts.toml",
            "--no-report",
            "--quiet",
            "--out",
        ])
        .arg(dir.path())
        .args([
            "--set",
            "link=tcp",
            "--set",
            "throttle_pps=500",
            "--set",
            "input_size=2000000",
        ])
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ns = format!("perfkit-{}", child.id());
    let t0 = Instant::now();
    while !namespaces().contains(&ns) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no namespace appeared"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted run does not pass");
    assert!(
        !namespaces().contains(&ns),
        "{ns} left behind: {}",
        namespaces()
    );
}

#[test]
fn heaps_cross_the_veth_pair_both_ways_between_perfkit_and_spead2() {
    if !is_root() {
        return;
    }
    let _one = serial();
    let cpu = *perfkit_spead::affinity::cpus_of(0)
        .unwrap()
        .cpus()
        .last()
        .unwrap();
    for (sender, receiver) in [("local", "netns"), ("netns", "local")] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(exe());
        cmd.args([
            "run",
            "scenarios/two-hosts-heaps.toml",
            "--no-report",
            "--quiet",
        ])
        .arg("--out")
        .arg(dir.path())
        .args([
            "--set",
            "volume_mb=8",
            "--set",
            &format!("sender_host={sender}"),
        ])
        .args(["--set", &format!("receiver_host={receiver}")])
        .args(["--set", "receiver_implementation=[\"perfkit\",\"spead2\"]"])
        // A higher nice than started (a lower priority) needs no
        // privilege: the value reaches the receiving end wherever it runs,
        // and its record says so.
        .args(["--set", "receiver_nice=5"])
        // The receiver's CPU reaches it too; with one end on an agent the
        // sender is not kept off it (the agent's host is another's).
        .args(["--set", &format!("receiver_cpu={cpu}")])
        .current_dir(root());
        let o = cmd.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = Results::load(dir.path().join("results.json")).unwrap();
        assert_eq!(r.runs.len(), 2 * 2 * 3, "senders x receivers x runs");
        for rec in &r.runs {
            assert!(rec.integrity.ok, "{:?}: {:?}", rec.config, rec.rx.errors);
            assert_eq!(rec.rx.blocks, 128, "8 MiB in 64 KiB heaps");
            assert_eq!(
                rec.link.counters.get("rx_nice_set"),
                Some(&1),
                "{:?}",
                rec.config
            );
            assert_eq!(
                rec.link.counters.get("rx_cpu_set"),
                Some(&1),
                "{:?}",
                rec.config
            );
            assert_eq!(rec.link.counters.get("tx_cpu_set"), None);
            // The receiver's kernel counts crossed from wherever it ran
            // (a receiver that starts behind may never wait, so a count of
            // zero is a figure too).
            for c in [
                "rx_switches_voluntary",
                "rx_switches_involuntary",
                "rx_minor_faults",
            ] {
                assert!(
                    rec.link.counters.contains_key(c),
                    "{c} of {:?}: {:?}",
                    rec.config,
                    rec.link.counters
                );
            }
            let agent_end = if sender == "netns" {
                "sender"
            } else {
                "receiver"
            };
            assert!(
                rec.hosts[agent_end].starts_with("agent: "),
                "{:?}",
                rec.hosts
            );
            // perfkit's own stages, unless spead2 is at both ends.
            let perfkit_end = rec.config["implementation"] == "perfkit"
                || rec.config["receiver_implementation"] == "perfkit";
            let measured = rec
                .stages
                .sites
                .iter()
                .any(|s| s.name.starts_with("spead."));
            assert_eq!(measured, perfkit_end, "{:?}", rec.config);
        }
    }
}

#[test]
fn jumbo_frames_on_the_veth_pair_let_gso_merge_whole_packets() {
    if !is_root() {
        return;
    }
    let _one = serial();
    // 8972-byte packets: whole on a 9000-byte MTU (GSO merges runs of
    // them), fragmented on Ethernet's 1500 (GSO refused, plain datagrams).
    for (mtu, fallbacks) in [("9000", false), ("1500", true)] {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(exe())
            .args([
                "run",
                "scenarios/two-hosts-heaps.toml",
                "--no-report",
                "--quiet",
                "--runs",
                "1",
            ])
            .arg("--out")
            .arg(dir.path())
            .args(["--set", "volume_mb=8", "--set", "implementation=perfkit"])
            .args([
                "--set",
                "mode=batch+gso",
                "--set",
                &format!("netns_mtu={mtu}"),
            ])
            .current_dir(root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let r = Results::load(dir.path().join("results.json")).unwrap();
        let rec = &r.runs[0];
        assert!(rec.integrity.ok, "mtu {mtu}: {:?}", rec.rx.errors);
        let c = &rec.link.counters;
        assert_eq!(c["gso_fallbacks"] > 0, fallbacks, "mtu {mtu}: {c:?}");
        assert_eq!(c["gso_active"] == 1, !fallbacks, "mtu {mtu}: {c:?}");
    }
    assert_eq!(namespaces(), "", "a namespace was left behind");
}

#[test]
fn check_makes_no_namespace_and_starts_no_agent() {
    if !is_root() {
        return;
    }
    let _one = serial();
    for scenario in ["scenarios/two-hosts.toml", "scenarios/two-hosts-heaps.toml"] {
        let child = Command::new(exe())
            .args(["check", scenario])
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let ns = format!("perfkit-{}", child.id());
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        // A namespace made by the check would be left behind, with its
        // agent running: a check has nothing that removes it.
        assert!(!namespaces().contains(&ns), "{scenario}: {ns} was made");
    }
}
