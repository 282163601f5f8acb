//! Heaps runs: spead2's receiver as the peer of perfkit's and spead2's
//! senders, and Ctrl-C during a long run ends it part way, recorded as
//! interrupted.

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_perfkit"))
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

#[test]
fn spead2_receives_what_perfkit_and_spead2_send() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_perfkit"))
        .args([
            "run",
            "scenarios/batched-heaps.toml",
            "--no-report",
            "--quiet",
            "--out",
        ])
        .arg(&out)
        .args([
            "--set",
            "receiver_implementation=spead2",
            "--set",
            "heap_size=65536",
        ])
        .args([
            "--set",
            "mode=batch",
            "--set",
            "volume_mb=8",
            "--set",
            "rate_mb_s=100",
        ])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let r = Results::load(out.join("results.json")).unwrap();
    assert_eq!(r.runs.len(), 2, "perfkit's and spead2's senders");
    for run in &r.runs {
        assert_eq!(run.config["receiver_implementation"], "spead2");
        assert!(run.integrity.ok, "{:?}: {:?}", run.config, run.rx.errors);
        // 8 MiB in 64 KiB heaps, every one checked against the pattern.
        assert_eq!(run.rx.blocks, 128);
        assert_eq!(run.rx.errors["verify_failures"], 0);
    }
}
