//! A cancelled heaps run stops: Ctrl-C during a long `heaps` scenario ends
//! the run part way and records it as interrupted.

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
