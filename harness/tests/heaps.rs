//! Heaps runs: perfkit's and spead2's receivers, each fed by perfkit's and
//! spead2's senders, with their loss in the record and the report; and
//! Ctrl-C during a long run ends it part way, recorded as interrupted.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use perfkit_report::model::Results;

#[test]
fn ctrl_c_stops_a_heaps_run() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("long-heaps.toml");
    // Paced to take 60 s: only the cancel can end it early.
    std::fs::write(
        &scenario,
        "name = \"long-heaps\"\nkind = \"heaps\"\n\
         [heaps]\nheap_size = 65536\nmode = \"batch\"\n\
         volume_mb = 100000\ntime_cap_s = 60\nrate_mb_s = 10\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut child = common::signals_default(&mut Command::new(common::exe()))
        .args(["run", "--no-report", "--out"])
        .arg(&out)
        .arg(&scenario)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The Ctrl-C handler is in place once the run announces itself; the
    // pause lets the heaps run get going before it is cancelled.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("configuration(s)") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no start line");
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on the child we started.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let mut rest = String::new();
    for l in stderr.lines().map_while(Result::ok) {
        rest.push_str(&l);
        rest.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    let results = Results::load(out.join("results.json")).unwrap();
    assert_eq!(results.runs.len(), 1);
    assert_eq!(results.runs[0].error.as_deref(), Some("interrupted"));
}

/// The checkout, where the shipped scenarios are.
fn root() -> &'static std::path::Path {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
}

/// The kernel's counts each end of a heaps run records, after `rx_` or
/// `tx_`: its context switches, then its page faults.
const KERNEL_COUNTS: [&str; 3] = ["switches_voluntary", "switches_involuntary", "minor_faults"];

/// perfkit's and spead2's receivers in one run, each fed by perfkit's and
/// spead2's senders: every record holds the sender's figures, its
/// receiver's loss (none here: paced) and the receiver's own rate and CPU.
#[test]
fn both_receivers_record_their_figures_beside_each_sender() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The receiver on a CPU of its own, the last this process may use,
    // where there are two.
    let cpus = perfkit_spead::affinity::cpus_of(0).unwrap().cpus();
    let cpu = (cpus.len() >= 2).then(|| cpus[cpus.len() - 1]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfkit"));
    cmd.args(["run", "scenarios/batched-heaps.toml", "--quiet", "--out"])
        .arg(&out)
        .args(["--set", "heap_size=65536", "--set", "mode=batch"])
        .args(["--set", "volume_mb=8", "--set", "rate_mb_s=100"])
        .args(["--set", "receiver_nice=-10"])
        .args(["--set", "receiver_buffer_mb=24"]);
    if let Some(cpu) = cpu {
        cmd.args(["--set", &format!("receiver_cpu={cpu}")]);
    }
    let o = cmd.current_dir(root()).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = Results::load(out.join("results.json")).unwrap();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for run in &r.runs {
        let who = |k: &str| run.config[k].as_str().unwrap_or_default().to_owned();
        pairs.push((who("implementation"), who("receiver_implementation")));
        assert!(run.integrity.ok, "{:?}: {:?}", run.config, run.rx.errors);
        // 8 MiB in 64 KiB heaps, every one checked against the pattern.
        assert_eq!(
            (run.tx.blocks, run.rx.blocks),
            (128, 128),
            "{:?}",
            run.config
        );
        assert_eq!(run.rx.errors["heaps_lost"], 0, "{:?}", run.config);
        assert_eq!(run.rx.errors["verify_failures"], 0);
        // Either receiver's socket got the buffer asked for: twice it, as
        // Linux grants, where root may force it past rmem_max.
        let granted = run.link.counters["rx_rcvbuf"];
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            assert_eq!(granted, 2 * (24 << 20), "{:?}", run.config);
        } else {
            assert!(granted > 0, "{:?}", run.config);
        }
        // The receiver's priority was raised, and each record says whether
        // it ran at it: with the privilege it does; without, it was refused.
        let granted = perfkit_spead::priority::may_raise_priority();
        assert_eq!(run.config["receiver_nice"], -10);
        assert_eq!(
            run.link.counters.get("rx_nice_set"),
            Some(&u64::from(granted)),
            "{:?}",
            run.config
        );
        // And each record says whether the receiver ran on its CPU and the
        // sender on the others, perfkit's threads and spead2's processes.
        if cpu.is_some() {
            for key in ["rx_cpu_set", "tx_cpu_set"] {
                assert_eq!(
                    run.link.counters.get(key),
                    Some(&1),
                    "{key}: {:?}",
                    run.config
                );
            }
        }
        // Each end's kernel counts are recorded, wherever it ran.
        for end in ["rx", "tx"] {
            for kind in KERNEL_COUNTS {
                let c = format!("{end}_{kind}");
                assert!(
                    run.link.counters.contains_key(&c),
                    "{c} of {:?}: {:?}",
                    run.config,
                    run.link.counters
                );
            }
        }
        for m in [
            "mb_per_s",
            "rx_mb_per_s",
            "rx_mb_per_cpu_s",
            "rx_cpu_seconds",
        ] {
            assert!(
                run.metrics[m] > 0.0,
                "{m} of {:?}: {:?}",
                run.config,
                run.metrics
            );
        }
    }
    // A thread that runs for a while leaves its core now and then, by
    // waiting or by being switched out: any one run may count none (one
    // that starts behind and holds a core throughout), but over every run
    // each end of each implementation counts some. Zeros everywhere would
    // mean the figure was never read.
    for (end, key) in [("rx", "receiver_implementation"), ("tx", "implementation")] {
        for imp in ["perfkit", "spead2"] {
            // The sum of these counts over this end's runs of `imp`.
            let total = |kinds: &[&str]| -> u64 {
                r.runs
                    .iter()
                    .filter(|run| run.config[key] == imp)
                    .flat_map(|run| {
                        kinds
                            .iter()
                            .map(move |k| run.link.counters[&format!("{end}_{k}")])
                    })
                    .sum()
            };
            assert!(
                total(&KERNEL_COUNTS[..2]) > 0,
                "{imp}'s {end} counted no context switch in any run"
            );
            // Every receiver fills fresh heap buffers, and every sender
            // fresh batches, at least in a process's first run.
            assert!(
                total(&KERNEL_COUNTS[2..]) > 0,
                "{imp}'s {end} counted no page fault in any run"
            );
        }
    }
    pairs.sort();
    let want: Vec<(String, String)> = [
        ("perfkit", "perfkit"),
        ("perfkit", "spead2"),
        ("spead2", "perfkit"),
        ("spead2", "spead2"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(pairs, want);
    // Nothing lost: the report says so by not naming any loss.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("4/4 intact") || html.matches("1/1 intact").count() == 4);
    assert!(!html.contains("heaps lost"));
}

/// A receiver's CPU this process may not use is refused before any run,
/// naming the key and the CPUs it may use.
#[test]
fn a_receiver_cpu_out_of_reach_is_refused_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let now = perfkit_spead::affinity::cpus_of(0).unwrap();
    let missing = (0..1024).find(|&c| !now.contains(c)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_perfkit"))
        .args(["run", "scenarios/batched-heaps.toml", "--quiet", "--out"])
        .arg(dir.path().join("out"))
        .args([
            "--set",
            "heap_size=65536",
            "--set",
            &format!("receiver_cpu={missing}"),
        ])
        .current_dir(root())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("heaps.receiver_cpu"), "{err}");
    assert!(
        err.contains(&format!(
            "CPU {missing} is not one this process may run on ({})",
            now.describe()
        )),
        "{err}"
    );
    assert!(!dir.path().join("out").join("results.json").exists());
}

/// A run that loses heaps says how many beside the sender's figures: the
/// record's `heaps_lost` and the report's integrity cell.
#[test]
fn lost_heaps_are_reported_beside_the_sender() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results.json");
    // A paced run, then the same record with a receiver that lost 3 heaps.
    let o = Command::new(env!("CARGO_BIN_EXE_perfkit"))
        .args([
            "run",
            "scenarios/batched-heaps.toml",
            "--quiet",
            "--no-report",
            "--out",
        ])
        .arg(dir.path())
        .args([
            "--set",
            "heap_size=65536",
            "--set",
            "mode=batch",
            "--set",
            "implementation=perfkit",
        ])
        .args([
            "--set",
            "receiver_implementation=perfkit",
            "--set",
            "volume_mb=4",
            "--set",
            "rate_mb_s=100",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut r = Results::load(&results).unwrap();
    assert_eq!(r.runs[0].rx.errors["heaps_lost"], 0);
    r.runs[0].rx.errors.insert("heaps_lost".into(), 3);
    std::fs::write(&results, serde_json::to_string(&r).unwrap()).unwrap();
    let html = dir.path().join("report.html");
    let o = Command::new(env!("CARGO_BIN_EXE_perfkit"))
        .arg("report")
        .arg(&results)
        .arg("-o")
        .arg(&html)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(html.contains("3 of 64 heaps lost"), "no loss in the report");
}
